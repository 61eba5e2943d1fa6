//! The command line: subcommands and their flags (each flag also settable by an `ODG_*` variable).

use std::path::PathBuf;

use clap::builder::PossibleValuesParser;
use clap::{Args, Parser, Subcommand, ValueEnum};
use odg_cache::SharedTierConfig;
use odg_server::{
    admission_defaults, AdmissionMode, BlobLimits, ConnectionLimits, MetadataQueryLimits,
    DEFAULT_CORS_MAX_AGE,
};

use crate::allocator::AllocatorMode;
use crate::byte_size::ByteSize;
use crate::config;

#[derive(Debug, Parser)]
#[command(
    name = "odg",
    version,
    about = "The OCM delivery service: component descriptors, versions and dependency graphs"
)]
pub struct Cli {
    /// Log format on stderr; the level comes from ODG_LOG (e.g. `info`, `odg=debug`).
    #[arg(long, global = true, env = "ODG_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// How the allocator trades memory for speed: `bounded` keeps the resident set near what is
    /// in use (no transparent huge pages, freed pages returned at once); `mimalloc-defaults`
    /// is the benchmarks' baseline.
    #[arg(long, global = true, env = "ODG_ALLOCATOR_MODE", value_enum, default_value_t = AllocatorMode::Bounded)]
    pub allocator_mode: AllocatorMode,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the HTTP API.
    Serve(Box<ServeArgs>),
    /// Upload component descriptors (YAML files) to an OCM repository.
    Push(PushArgs),
    /// Operate on a running service's cache.
    #[command(subcommand)]
    Cache(CacheCommand),
    /// The artefact enumerator: list versions, walk dependency trees and fetch every descriptor
    /// of configured components through a running service; a summary, non-zero exit on failure.
    Enumerate(crate::extension_config::EnumerateArgs),
    /// Prefill configured components through a running service, and prune the shared cache tier
    /// (Redis) to a byte budget.
    CacheManager(crate::extension_config::CacheManagerArgs),
    /// The delivery DB: check whether odg can run on it, or apply odg's migrations.
    #[command(subcommand)]
    Db(DbCommand),
}

#[derive(Debug, Subcommand)]
pub enum DbCommand {
    /// Report, without changing anything, whether odg can run on the database: odg's applied
    /// and pending migrations, the original's tables (columns, types, row counts), missing
    /// indexes, odg's pre-release schema. Exits non-zero when the database is unusable.
    Check(DbArgs),
    /// Apply odg's pending migrations (creates what is absent; never alters the original's
    /// tables), then report as `check` does.
    Migrate(DbArgs),
}

#[derive(Debug, Args)]
pub struct DbArgs {
    /// `postgres://user:password@host:5432/db` or `sqlite://path`.
    #[arg(long, env = "ODG_DATABASE_URL", hide_env_values = true)]
    pub database_url: String,
    /// The report as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum CacheCommand {
    /// Invalidate entries in every tier of every pod (`DELETE /cache`).
    Invalidate(InvalidateArgs),
    /// Size the cache tiers from the pods' miss-ratio curves (`GET /cache/miss-ratio-curves`).
    Advise(AdviseArgs),
}

#[derive(Debug, Args)]
pub struct AdviseArgs {
    /// A pod's base URL (main or admin listener); repeat for several pods, whose curves are merged.
    #[arg(long, required = true)]
    pub url: Vec<String>,
    /// The hit ratio a tier should reach; when no size reaches it, the knee of the curve is advised.
    #[arg(long, default_value_t = 0.95)]
    pub target: f64,
    /// Also draw the curves (hit ratio over size, all kinds per tier) into this SVG file.
    #[arg(long)]
    pub svg: Option<std::path::PathBuf>,
    /// Print the advice as JSON instead of charts.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("selector").required(true).args(["id", "component_name", "kind", "all"])))]
pub struct InvalidateArgs {
    /// The service's base URL.
    #[arg(long, env = "ODG_URL", default_value = "http://127.0.0.1:5000")]
    pub url: String,
    /// Bearer token with the cache-admin (or admin) role.
    #[arg(long, env = "ODG_TOKEN", hide_env_values = true)]
    pub token: String,
    /// One entry, by the id the service reports.
    #[arg(long)]
    pub id: Option<String>,
    /// Every entry of a component (all versions, unless --version is given).
    #[arg(long)]
    pub component_name: Option<String>,
    #[arg(long, requires = "component_name")]
    pub version: Option<String>,
    /// Every entry of a kind (descriptor, versions, dependencies, ...).
    #[arg(long)]
    pub kind: Option<String>,
    /// Everything.
    #[arg(long)]
    pub all: bool,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// YAML configuration file; flags and ODG_* variables override its values.
    #[arg(long, env = "ODG_CONFIG")]
    pub config: Option<PathBuf>,
    #[arg(long, env = "ODG_LISTEN", help = format!("Address to listen on [default: {}]", config::DEFAULT_LISTEN))]
    pub listen: Option<String>,
    /// OCM repository for every component, tried in the order given (`http://` = plain HTTP).
    /// Replaces the configuration file's mapping. Without any, the embedded demo repository is served.
    #[arg(long = "ocm-repo", env = "ODG_OCM_REPOS", value_delimiter = ',')]
    pub ocm_repos: Vec<String>,
    /// Host (`host[:port]`) that the `ocm_repo_url` parameter may name besides the mapped ones.
    #[arg(
        long = "allowed-ocm-repo-host",
        env = "ODG_ALLOWED_OCM_REPO_HOSTS",
        value_delimiter = ','
    )]
    pub allowed_ocm_repo_hosts: Vec<String>,
    #[arg(long, env = "ODG_CACHE_DIR", help = format!(
        "Directory for whatever the service keeps on disk [default: {}]",
        config::DEFAULT_CACHE_DIR
    ))]
    pub cache_dir: Option<PathBuf>,
    #[arg(long, env = "ODG_MEMORY_CACHE_BYTES", help = format!(
        "Bound of the memory cache tier, counting keys, values and per-entry overhead [default: {}]",
        ByteSize::in_binary_units(config::DEFAULT_MEMORY_CACHE_BYTES)
    ))]
    pub memory_cache_bytes: Option<ByteSize>,
    #[arg(long, env = "ODG_DISK_CACHE_BYTES", help = format!(
        "Bound of the disk cache tier under --cache-dir; 0 turns it off [default: {}]",
        ByteSize::in_binary_units(config::DEFAULT_DISK_CACHE_BYTES)
    ))]
    pub disk_cache_bytes: Option<ByteSize>,
    /// Shared cache tier (Redis or Valkey): `redis://host:6379/0`; with --redis-cluster, comma-separated nodes.
    #[arg(long, env = "ODG_REDIS_URL", hide_env_values = true)]
    pub redis_url: Option<String>,
    /// The Redis URL names a cluster (`--redis-cluster=false` overrides a `true` in the file).
    #[arg(long, env = "ODG_REDIS_CLUSTER", num_args = 0..=1, default_missing_value = "true")]
    pub redis_cluster: Option<bool>,
    /// Turn every cache tier off (a baseline for benchmarks; `ignore_cache` for every request).
    #[arg(long, env = "ODG_DISABLE_CACHE")]
    pub disable_cache: bool,
    #[arg(long, env = "ODG_MISS_RATIO_CURVES", num_args = 0..=1, default_missing_value = "true", help = format!(
        "Keep sampled miss-ratio curves per cache tier and kind (`/metrics`, `GET /cache/miss-ratio-curves`, `odg cache advise`); `--miss-ratio-curves=false` turns them off [default: {}]",
        config::DEFAULT_MISS_RATIO_CURVES
    ))]
    pub miss_ratio_curves: Option<bool>,
    #[arg(long, env = "ODG_REDIS_KEY_PREFIX", help = format!(
        "Prefix of every Redis key and channel, so installations can share one Redis [default: {}]",
        SharedTierConfig::DEFAULT_KEY_PREFIX
    ))]
    pub redis_key_prefix: Option<String>,
    /// Bearer token with every role (cache invalidation, metadata writes); repeatable.
    #[arg(
        long = "admin-token",
        env = "ODG_ADMIN_TOKENS",
        value_delimiter = ',',
        hide_env_values = true
    )]
    pub admin_tokens: Vec<String>,
    /// Browser origin allowed to call the API cross-origin with credentials, e.g. the
    /// dashboard's `https://dashboard.example.org`; repeatable. Replaces the file's list; without
    /// any, nothing is allowed cross-origin.
    #[arg(
        long = "cors-allowed-origin",
        env = "ODG_CORS_ALLOWED_ORIGINS",
        value_delimiter = ','
    )]
    pub cors_allowed_origins: Vec<String>,
    #[arg(long, env = "ODG_CORS_MAX_AGE_SECONDS", help = format!(
        "Seconds a browser may cache a preflight answer [default: {}]",
        DEFAULT_CORS_MAX_AGE.as_secs()
    ))]
    pub cors_max_age_seconds: Option<u64>,
    /// A built Delivery Dashboard (the directory holding its `index.html`) to serve on this
    /// origin, its `dynamic/config.js` pointing at this service [default: none].
    #[arg(long, env = "ODG_DASHBOARD_DIR")]
    pub dashboard_dir: Option<PathBuf>,
    /// A second listener serving only /metrics, /live and /ready (e.g. 0.0.0.0:9090).
    #[arg(long, env = "ODG_ADMIN_LISTEN")]
    pub admin_listen: Option<String>,
    #[arg(long, env = "ODG_ADMIN_PROFILING", num_args = 0..=1, default_missing_value = "true", help = format!(
        "CPU profiles (flame graphs) at `GET /debug/pprof/profile?seconds=N` on the admin listener only; `--admin-profiling=false` turns off a `true` from the file [default: {}]",
        config::DEFAULT_ADMIN_PROFILING
    ))]
    pub admin_profiling: Option<bool>,
    // The admission flags' help names the defaults from odg-server, where they are defined.
    #[arg(long, env = "ODG_ADMISSION_MODE", value_parser = PossibleValuesParser::new(AdmissionMode::NAMES), help = format!(
        "How the concurrency limit is set: `adaptive` follows measured latency between --admission-min-limit and --max-concurrent-requests and sheds from a standing queue at once; `fixed` admits --max-concurrent-requests and sheds only a full queue or a wait of --max-queue-wait-ms [default: {}]",
        admission_defaults::MODE
    ))]
    pub admission_mode: Option<String>,
    #[arg(long, env = "ODG_MAX_CONCURRENT_REQUESTS", help = format!(
        "Requests handled at once (adaptive mode: the ceiling of the limit); more wait in the queue [default: {}]",
        admission_defaults::MAX_CONCURRENT
    ))]
    pub max_concurrent_requests: Option<usize>,
    #[arg(long, env = "ODG_ADMISSION_MIN_LIMIT", help = format!(
        "Adaptive mode: the floor of the concurrency limit [default: the CPUs available, at least 2; here {}]",
        admission_defaults::min_concurrent()
    ))]
    pub admission_min_limit: Option<usize>,
    #[arg(long, env = "ODG_MAX_QUEUED_REQUESTS", help = format!(
        "Requests waiting for a slot; beyond that they are shed with 503 [default: {}]",
        admission_defaults::MAX_QUEUED
    ))]
    pub max_queued_requests: Option<usize>,
    #[arg(long, env = "ODG_MAX_QUEUE_WAIT_MS", help = format!(
        "Longest wait for a slot before a 503 [default: {}]",
        admission_defaults::MAX_WAIT_MS
    ))]
    pub max_queue_wait_ms: Option<u64>,
    #[arg(long, env = "ODG_ADMISSION_QUEUE_TARGET_MS", help = format!(
        "Adaptive mode: a queue whose oldest waiter waited longer than this throughout {} ms is overloaded; then it serves the newest first and sheds waiters after twice this [default: {}]",
        admission_defaults::QUEUE_INTERVAL_MS,
        admission_defaults::QUEUE_TARGET_MS
    ))]
    pub admission_queue_target_ms: Option<u64>,
    #[arg(long, env = "ODG_MAX_METADATA_QUERY_ENTRIES", help = format!(
        "Entries one POST /artefacts/metadata/query may hold; more is a 400 [default: {}]",
        MetadataQueryLimits::default().max_entries
    ))]
    pub max_metadata_query_entries: Option<usize>,
    #[arg(long, env = "ODG_MAX_BLOB_BYTES", help = format!(
        "The largest blob POST /blob stores, e.g. 512MiB; more is a 413 [default: {}, at most {} bytes]",
        ByteSize::in_binary_units(BlobLimits::default().max_bytes),
        odg_delivery_db::MAX_BLOB_BYTES
    ))]
    pub max_blob_bytes: Option<ByteSize>,
    #[arg(long, env = "ODG_HEADER_READ_TIMEOUT_MS", help = format!(
        "Longest time for a request's head (request line and headers) to arrive, from the connection's start or the request's first byte; then the connection is closed [default: {}]",
        ConnectionLimits::DEFAULT_HEADER_READ_TIMEOUT.as_millis()
    ))]
    pub header_read_timeout_ms: Option<u64>,
    #[arg(long, env = "ODG_IDLE_TIMEOUT_MS", help = format!(
        "Longest time an idle keep-alive connection is kept open between requests [default: {}]",
        ConnectionLimits::DEFAULT_IDLE_TIMEOUT.as_millis()
    ))]
    pub idle_timeout_ms: Option<u64>,
    #[arg(long, env = "ODG_MAX_CONNECTIONS", help = format!(
        "Connections open at once per listener; beyond it none are accepted until one closes [default: {}]",
        ConnectionLimits::DEFAULT_MAX_CONNECTIONS
    ))]
    pub max_connections: Option<usize>,
    /// This pod's name in invalidation messages and logs [default: $HOSTNAME, else random].
    #[arg(long, env = "ODG_POD_ID")]
    pub pod_id: Option<String>,
    #[arg(long, env = "ODG_DATABASE_URL", hide_env_values = true, help = format!(
        "The delivery DB: `postgres://user:password@host:5432/db`, or `sqlite://path` [default: an SQLite file `{}` under --cache-dir]",
        config::DEFAULT_DATABASE_FILE
    ))]
    pub database_url: Option<String>,
    /// Finding configuration (YAML: categorisations, filters, profiles) [default: the original's
    /// vulnerability, malware and license findings].
    #[arg(long, env = "ODG_FINDINGS_CONFIG")]
    pub findings_config: Option<PathBuf>,
    /// PEM file of CA certificates trusted for every registry (an organisation's own CA), besides
    /// Mozilla's roots and the system store (or SSL_CERT_FILE / SSL_CERT_DIR); repeatable.
    #[arg(long = "registry-ca-file", env = "ODG_REGISTRY_CA_FILE")]
    pub registry_ca_files: Vec<PathBuf>,
}

#[derive(Debug, Args)]
pub struct PushArgs {
    /// Target OCM repository (`http://host:port/path` for plain HTTP, `host/path` for HTTPS).
    #[arg(long = "ocm-repo", env = "ODG_PUSH_OCM_REPO")]
    pub ocm_repo: String,
    /// Registry user name for basic or token authentication.
    #[arg(long, env = "ODG_REGISTRY_USERNAME")]
    pub username: Option<String>,
    /// Registry password; prefer the environment variable over the flag.
    #[arg(long, env = "ODG_REGISTRY_PASSWORD", hide_env_values = true)]
    pub password: Option<String>,
    /// PEM file of CA certificates to trust for the registry (as `odg serve --registry-ca-file`).
    #[arg(long = "registry-ca-file", env = "ODG_REGISTRY_CA_FILE")]
    pub registry_ca_files: Vec<PathBuf>,
    /// Component descriptor files (YAML or JSON).
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
}
