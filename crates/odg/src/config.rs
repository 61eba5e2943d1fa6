//! Configuration in two stages: the YAML file layer (every default in one place), then resolution
//! with flags and `ODG_*` variables into the typed configs the library crates take.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context};
use odg_components::WalkOptions;
use odg_oci::{Credentials, RegistryClientConfig};
use odg_ocm::{
    RepositoryMapping, RepositoryRule, RepositoryRuleConfig, VirtualRepository,
    VirtualRepositoryConfig,
};
use serde::Deserialize;

use odg_cache::{CacheConfig, DiskConfig, KindPolicy, SharedTierConfig};
use odg_compliance::FindingConfigs;
use odg_delivery_db::DatabaseConfig;
use odg_server::{
    AdmissionConfig, AdmissionMode, AuthConfig, BlobLimits, ConnectionLimits, CorsConfig,
    GithubLoginConfig, JwtAlgorithm, JwtConfig, LoginConfig, MetadataQueryLimits, SigningKeyConfig,
    DEFAULT_CORS_MAX_AGE, DEFAULT_REFRESH_MAX_AGE, DEFAULT_SESSION_MAX_AGE,
};

use crate::byte_size::ByteSize;
use crate::cli::ServeArgs;

pub const DEFAULT_LISTEN: &str = "127.0.0.1:5000";
pub const DEFAULT_CACHE_DIR: &str = ".odg";

/// The configuration file as written by operators.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub listen: Option<String>,
    pub cache_dir: Option<PathBuf>,
    /// The repository mapping: tried in order, each rule matching by `prefixes` or
    /// `component_filter`; entries with `type: virtual` are the original's virtual repositories.
    #[serde(default)]
    pub ocm_repositories: Vec<serde_yaml_ng::Value>,
    #[serde(default)]
    pub allowed_ocm_repo_hosts: Vec<String>,
    #[serde(default)]
    pub registry: RegistryFileConfig,
    #[serde(default)]
    pub dependencies: DependenciesFileConfig,
    #[serde(default)]
    pub cache: CacheFileConfig,
    #[serde(default)]
    pub server: ServerFileConfig,
    #[serde(default)]
    pub auth: AuthFileConfig,
    #[serde(default)]
    pub database: DatabaseFileConfig,
    #[serde(default)]
    pub cors: CorsFileConfig,
    /// Finding configuration file (categorisations, filters, profiles).
    pub findings_config: Option<PathBuf>,
    /// A built Delivery Dashboard to serve on this origin.
    pub dashboard_dir: Option<PathBuf>,
    /// The dashboard's landing-page components (the original's special components); the demo
    /// has one when none are configured.
    #[serde(default)]
    pub special_components: Option<Vec<odg_server::SpecialComponent>>,
    /// The extensions this installation runs, in the original's camel case
    /// (`GET /service-extensions`) [default: none].
    #[serde(default)]
    pub service_extensions: Vec<String>,
    /// The sprint calendar (`/delivery/sprint-infos`): a list or a name pattern, in the
    /// original's field names; the demo generates one when none is configured.
    #[serde(default)]
    pub sprints: Option<odg_server::SprintsConfig>,
    /// Upgrade pull requests (the dashboard's Component Diff tab): on when present, as the
    /// original's `upgradePRs` feature; the GitHubs that serve the components' repositories.
    #[serde(default)]
    pub upgrade_prs: Option<UpgradePrsFile>,
}

/// `upgrade_prs:` in the file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpgradePrsFile {
    #[serde(default)]
    pub github: Vec<UpgradePrsGithubFile>,
}

/// One GitHub of `upgrade_prs.github`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpgradePrsGithubFile {
    /// The repository URLs' host.
    pub host: String,
    /// Default `https://api.github.com` for `github.com`, else `https://<host>/api/v3`.
    #[serde(default)]
    pub api_url: Option<String>,
    #[serde(default)]
    pub token: Option<String>,
    #[serde(default)]
    pub token_file: Option<PathBuf>,
}

/// Browser clients on other origins (the dashboard).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CorsFileConfig {
    /// Origins (`https://host[:port]`) allowed cross-origin with credentials [default: none].
    #[serde(default)]
    pub allowed_origins: Vec<String>,
    /// Seconds a browser may cache a preflight answer [default: that of `--cors-max-age-seconds`].
    pub max_age_seconds: Option<u64>,
}

/// The delivery DB.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseFileConfig {
    /// `postgres://...` or `sqlite://...` [default: `delivery-db.sqlite` under the cache directory].
    pub url: Option<String>,
    /// Connections in the pool [default: 16].
    pub max_connections: Option<u32>,
    /// Longest wait for a free connection before a 503 [default: 3000].
    pub acquire_timeout_ms: Option<u64>,
    /// PostgreSQL statement timeout [default: 30000].
    pub statement_timeout_ms: Option<u64>,
}

/// The SQLite file of the delivery DB when no URL is configured.
pub const DEFAULT_DATABASE_FILE: &str = "delivery-db.sqlite";

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerFileConfig {
    /// A second listener for /metrics, /live and /ready only.
    pub admin_listen: Option<String>,
    /// CPU profiles at `GET /debug/pprof/profile` on the admin listener [default: that of `--admin-profiling`].
    pub admin_profiling: Option<bool>,
    /// `adaptive` or `fixed` (see `odg serve --help`) [default: that of `--admission-mode`].
    pub admission_mode: Option<AdmissionMode>,
    /// Requests handled at once; in adaptive mode the ceiling of the limit [default: that of `--max-concurrent-requests`].
    pub max_concurrent_requests: Option<usize>,
    /// Adaptive mode: the floor of the limit [default: that of `--admission-min-limit`].
    pub admission_min_limit: Option<usize>,
    /// Requests waiting for a slot before shedding [default: that of `--max-queued-requests`].
    pub max_queued_requests: Option<usize>,
    /// Longest wait for a slot [default: that of `--max-queue-wait-ms`].
    pub max_queue_wait_ms: Option<u64>,
    /// Adaptive mode: CoDel's target wait of the queue [default: that of `--admission-queue-target-ms`].
    pub admission_queue_target_ms: Option<u64>,
    /// Entries one metadata query may hold [default: that of `--max-metadata-query-entries`].
    pub max_metadata_query_entries: Option<usize>,
    /// The largest blob `POST /blob` stores [default: that of `--max-blob-bytes`].
    pub max_blob_bytes: Option<ByteSize>,
    /// Longest time for a request head to arrive [default: that of `--header-read-timeout-ms`].
    pub header_read_timeout_ms: Option<u64>,
    /// Longest idle time of a keep-alive connection [default: that of `--idle-timeout-ms`].
    pub idle_timeout_ms: Option<u64>,
    /// Connections open at once per listener [default: that of `--max-connections`].
    pub max_connections: Option<usize>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CacheFileConfig {
    /// Memory tier bound [default: that of `--memory-cache-bytes`].
    pub memory_bytes: Option<ByteSize>,
    /// Disk tier bound under the cache directory; 0 turns it off [default: that of `--disk-cache-bytes`].
    pub disk_bytes: Option<ByteSize>,
    /// Shared tier: Redis or Valkey URL (comma-separated nodes with `redis_cluster`).
    pub redis_url: Option<String>,
    /// The Redis URL names a cluster [default: that of `--redis-cluster`].
    pub redis_cluster: Option<bool>,
    /// Prefix of every Redis key and channel [default: that of `--redis-key-prefix`].
    pub redis_key_prefix: Option<String>,
    /// Values larger than this stay out of Redis [default: 512KiB].
    pub redis_max_value_bytes: Option<ByteSize>,
    /// Longest wait for another pod's fill before loading ourselves [default: 3000].
    pub fleet_wait_ms: Option<u64>,
    /// How long a fleet fill lease lives if its holder never releases it (a crashed pod); a fill
    /// that takes longer lets a second pod load the same key [default: 5000].
    pub fleet_lease_ttl_ms: Option<u64>,
    /// Longest wait for one Redis operation before the shared tier counts as unavailable
    /// [default: 250].
    pub redis_operation_timeout_ms: Option<u64>,
    /// Keep sampled miss-ratio curves per tier and kind [default: that of `--miss-ratio-curves`].
    pub miss_ratio_curves: Option<bool>,
    /// Per-kind policy overrides (`descriptor`, `versions`, `dependencies`).
    #[serde(default)]
    pub kinds: HashMap<String, KindPolicyFileConfig>,
}

/// Overrides of one kind's policy; unset fields keep the kind's default.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KindPolicyFileConfig {
    /// Soft TTL; 0 or absent on an immutable kind = never stale.
    pub fresh_for_seconds: Option<u64>,
    /// Stale-while-revalidate window after the soft TTL.
    pub stale_for_seconds: Option<u64>,
    pub memory: Option<bool>,
    pub disk: Option<bool>,
    pub shared: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthFileConfig {
    /// Prefer ODG_ADMIN_TOKENS over listing tokens here.
    #[serde(default)]
    pub admin_tokens: Vec<String>,
    pub jwt: Option<JwtFileConfig>,
    /// Login through GitHub and session tokens issued by odg (the original's authentication).
    pub login: Option<LoginFileConfig>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginFileConfig {
    /// This service's base URL as clients reach it: the tokens' issuer.
    pub issuer: String,
    /// Whether reads need a session too [default: true, as the original].
    pub require_for_reads: Option<bool>,
    /// [default: 300, the original's]
    pub session_max_age_seconds: Option<u64>,
    /// [default: 183 days, the original's]
    pub refresh_max_age_seconds: Option<u64>,
    pub signing_keys: Vec<SigningKeyFileConfig>,
    pub github: Vec<GithubFileConfig>,
    #[serde(default)]
    pub rbac: odg_server::RbacConfig,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SigningKeyFileConfig {
    pub id: String,
    /// `HS256` or `RS256`.
    pub algorithm: String,
    /// The HS256 secret or the RS256 private key (PEM) itself ...
    pub private_key: Option<String>,
    /// ... or a file holding it.
    pub private_key_file: Option<PathBuf>,
    /// The highest signs [default: 0].
    #[serde(default)]
    pub priority: i64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GithubFileConfig {
    pub name: String,
    pub api_url: String,
    pub client_id: String,
    pub client_secret: Option<String>,
    pub client_secret_file: Option<PathBuf>,
    pub oauth_url: Option<String>,
    pub token_url: Option<String>,
    #[serde(default)]
    pub role_bindings: Vec<odg_server::RoleBindingConfig>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JwtFileConfig {
    /// `HS256` or `RS256`.
    pub algorithm: String,
    /// The HS256 secret or RS256 public key (PEM) itself ...
    pub key: Option<String>,
    /// ... or a file holding it.
    pub key_file: Option<PathBuf>,
    /// Claim with the roles [default: roles].
    pub roles_claim: Option<String>,
    pub issuer: Option<String>,
    pub audience: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistryFileConfig {
    /// Per host: credentials and/or a CA file trusted only for that host.
    #[serde(default)]
    pub credentials: Vec<CredentialFileConfig>,
    /// PEM file of CA certificates trusted for every registry (added to `--registry-ca-file`).
    pub ca_file: Option<PathBuf>,
    /// Requests in flight per registry host [default: 32].
    pub max_concurrent_requests_per_host: Option<usize>,
    /// Whole-request timeout [default: 30].
    pub request_timeout_seconds: Option<u64>,
    /// Connection timeout [default: 5].
    pub connect_timeout_seconds: Option<u64>,
    /// Retries on connection errors, 429 and 5xx [default: 6].
    pub max_retries: Option<u32>,
}

/// One registry host: credentials (the password may come from a variable so the file holds no
/// secret) and/or a CA file trusted for this host only (its own CA, e.g. an on-prem Harbor).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CredentialFileConfig {
    pub host: String,
    pub username: Option<String>,
    pub password: Option<String>,
    pub password_env: Option<String>,
    pub ca_file: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DependenciesFileConfig {
    /// Most elements one dependency answer may have [default: 20000].
    pub max_nodes: Option<usize>,
    /// Descriptor fetches in flight per walk [default: 32].
    pub concurrency: Option<usize>,
}

/// Everything `odg serve` needs, resolved and validated.
#[derive(Debug)]
pub struct ServeConfig {
    pub listen: SocketAddr,
    pub cache_dir: PathBuf,
    /// `None` means: serve the embedded demo repository.
    pub mapping: Option<RepositoryMapping>,
    pub allowed_hosts: Vec<String>,
    pub registry: RegistryClientConfig,
    pub walk: WalkOptions,
    /// `None` when caching is turned off.
    pub cache: Option<CacheConfig>,
    pub auth: AuthConfig,
    pub admin_listen: Option<SocketAddr>,
    /// `GET /debug/pprof/profile` on the admin listener.
    pub admin_profiling: bool,
    pub admission: AdmissionConfig,
    pub metadata_query: MetadataQueryLimits,
    pub blobs: BlobLimits,
    /// The HTTP layer's bounds, for the API and the admin listener alike.
    pub connections: ConnectionLimits,
    pub database: DatabaseConfig,
    pub findings: FindingConfigs,
    pub cors: CorsConfig,
    /// A built Delivery Dashboard served on this origin.
    pub dashboard_dir: Option<PathBuf>,
    /// Landing-page components; `None` when the file has none (the demo then adds its own).
    pub special_components: Option<Vec<odg_server::SpecialComponent>>,
    /// The extensions `GET /service-extensions` lists.
    pub service_extensions: Vec<String>,
    /// The sprint calendar; `None` when the file has none (the demo then adds its own).
    pub sprints: Option<odg_server::SprintCalendar>,
    /// Upgrade pull requests' GitHubs; `None`: the feature is off.
    pub upgrade_prs: Option<Vec<odg_server::GithubRepositoryAccess>>,
    /// No database configured: the SQLite file under the cache directory, odg's own (the demo
    /// writes its findings only there, never into a configured database).
    pub embedded_database: bool,
}

pub fn read_file_config(path: &Path) -> anyhow::Result<FileConfig> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_yaml_ng::from_str(&text).with_context(|| format!("parsing {}", path.display()))
}

pub fn resolve(args: ServeArgs) -> anyhow::Result<ServeConfig> {
    let file = match &args.config {
        Some(path) => read_file_config(path)?,
        None => FileConfig::default(),
    };
    let listen = args
        .listen
        .or(file.listen)
        .unwrap_or_else(|| DEFAULT_LISTEN.to_string());
    let listen: SocketAddr = listen
        .parse()
        .with_context(|| format!("listen address {listen:?} is not host:port"))?;
    let cache_dir = args
        .cache_dir
        .or(file.cache_dir)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_CACHE_DIR));

    let mapping = if !args.ocm_repos.is_empty() {
        let rules = args
            .ocm_repos
            .iter()
            .map(|url| rule_for_every_component(url))
            .collect::<anyhow::Result<_>>()?;
        Some(RepositoryMapping::new(rules))
    } else {
        repository_mapping(file.ocm_repositories)?
    };

    let mut allowed_hosts = args.allowed_ocm_repo_hosts;
    allowed_hosts.extend(file.allowed_ocm_repo_hosts);
    for host in &allowed_hosts {
        if host.is_empty()
            || host.contains('/')
            || host.contains('@')
            || host.contains(char::is_whitespace)
        {
            bail!("allowed OCM repository host {host:?} must be host or host:port");
        }
    }

    let registry = registry_config(file.registry, args.registry_ca_files)?;
    let walk_defaults = WalkOptions::default();
    let walk = WalkOptions {
        max_nodes: file
            .dependencies
            .max_nodes
            .unwrap_or(walk_defaults.max_nodes),
        concurrency: file
            .dependencies
            .concurrency
            .unwrap_or(walk_defaults.concurrency)
            .max(1),
        ..walk_defaults
    };
    let pod_id = args
        .pod_id
        .or_else(|| {
            std::env::var("HOSTNAME")
                .ok()
                .filter(|name| !name.is_empty())
        })
        .unwrap_or_else(|| CacheConfig::default().pod_id);
    let cache = cache_config(
        file.cache,
        &cache_dir,
        CacheFlags {
            memory_bytes: args.memory_cache_bytes,
            disk_bytes: args.disk_cache_bytes,
            redis_url: args.redis_url,
            redis_cluster: args.redis_cluster,
            redis_key_prefix: args.redis_key_prefix,
            miss_ratio_curves: args.miss_ratio_curves,
        },
        pod_id,
    )?;
    let cache = (!args.disable_cache).then_some(cache);
    let mut admin_tokens = args.admin_tokens;
    admin_tokens.extend(file.auth.admin_tokens);
    admin_tokens.retain(|token| !token.trim().is_empty());
    let auth = AuthConfig {
        admin_tokens,
        jwt: file.auth.jwt.map(jwt_config).transpose()?,
        login: file.auth.login.map(login_config).transpose()?,
    };
    let admin_listen = args
        .admin_listen
        .or(file.server.admin_listen)
        .map(|address| {
            address
                .parse::<SocketAddr>()
                .with_context(|| format!("admin listen address {address:?} is not host:port"))
        })
        .transpose()?;
    let admin_profiling = args
        .admin_profiling
        .or(file.server.admin_profiling)
        .unwrap_or(DEFAULT_ADMIN_PROFILING);
    if admin_profiling && admin_listen.is_none() {
        bail!("--admin-profiling needs --admin-listen: profiles are served on the admin listener only");
    }
    let admission_defaults = AdmissionConfig::default();
    let admission_mode = match args.admission_mode {
        Some(mode) => mode
            .parse::<AdmissionMode>()
            .map_err(|error| anyhow::anyhow!("--admission-mode: {error}"))?,
        None => file
            .server
            .admission_mode
            .unwrap_or(admission_defaults.mode),
    };
    let max_concurrent = args
        .max_concurrent_requests
        .or(file.server.max_concurrent_requests)
        .unwrap_or(admission_defaults.max_concurrent)
        .max(1);
    let min_concurrent = match args.admission_min_limit.or(file.server.admission_min_limit) {
        Some(floor) if admission_mode == AdmissionMode::Adaptive && floor > max_concurrent => bail!(
            "the admission limit's floor ({floor}) is above its ceiling, the maximum of concurrent requests ({max_concurrent})"
        ),
        Some(floor) => floor.max(1),
        // The default floor (the CPUs) yields to a lower ceiling.
        None => admission_defaults.min_concurrent.min(max_concurrent),
    };
    let admission = AdmissionConfig {
        mode: admission_mode,
        max_concurrent,
        min_concurrent,
        max_queued: args
            .max_queued_requests
            .or(file.server.max_queued_requests)
            .unwrap_or(admission_defaults.max_queued),
        max_wait: args
            .max_queue_wait_ms
            .or(file.server.max_queue_wait_ms)
            .map_or(admission_defaults.max_wait, Duration::from_millis),
        queue_target: args
            .admission_queue_target_ms
            .or(file.server.admission_queue_target_ms)
            .map_or(admission_defaults.queue_target, |ms| {
                Duration::from_millis(ms.max(1))
            }),
        ..admission_defaults
    };
    let metadata_query_defaults = MetadataQueryLimits::default();
    let metadata_query = MetadataQueryLimits {
        max_entries: args
            .max_metadata_query_entries
            .or(file.server.max_metadata_query_entries)
            .unwrap_or(metadata_query_defaults.max_entries)
            .max(1),
        ..metadata_query_defaults
    };
    let blob_defaults = BlobLimits::default();
    let blobs = BlobLimits {
        max_bytes: args
            .max_blob_bytes
            .or(file.server.max_blob_bytes)
            .map_or(blob_defaults.max_bytes, |ByteSize(bytes)| bytes),
        ..blob_defaults
    };
    if blobs.max_bytes > odg_delivery_db::MAX_BLOB_BYTES {
        bail!(
            "max_blob_bytes is {} bytes; the blob store's size column holds at most {}",
            blobs.max_bytes,
            odg_delivery_db::MAX_BLOB_BYTES
        );
    }
    let connection_defaults = ConnectionLimits::default();
    let connections = ConnectionLimits {
        header_read_timeout: args
            .header_read_timeout_ms
            .or(file.server.header_read_timeout_ms)
            .map_or(connection_defaults.header_read_timeout, |ms| {
                Duration::from_millis(ms.max(1))
            }),
        idle_timeout: args
            .idle_timeout_ms
            .or(file.server.idle_timeout_ms)
            .map_or(connection_defaults.idle_timeout, |ms| {
                Duration::from_millis(ms.max(1))
            }),
        max_connections: args
            .max_connections
            .or(file.server.max_connections)
            .unwrap_or(connection_defaults.max_connections)
            .max(1),
    };
    let cors_origins = if args.cors_allowed_origins.is_empty() {
        file.cors.allowed_origins
    } else {
        args.cors_allowed_origins
    };
    let cors = CorsConfig::new(
        cors_origins
            .iter()
            .map(String::as_str)
            .filter(|origin| !origin.trim().is_empty()),
        args.cors_max_age_seconds
            .or(file.cors.max_age_seconds)
            .map_or(DEFAULT_CORS_MAX_AGE, Duration::from_secs),
    )
    .map_err(|error| anyhow::anyhow!("{error}"))?;
    let dashboard_dir = args.dashboard_dir.or(file.dashboard_dir);
    if let Some(directory) = &dashboard_dir {
        if !directory.join("index.html").is_file() {
            anyhow::bail!(
                "dashboard directory {} holds no index.html (a built dashboard is expected)",
                directory.display()
            );
        }
    }
    let embedded_database = args
        .database_url
        .as_deref()
        .or(file.database.url.as_deref())
        .is_none_or(|url| url.trim().is_empty());
    let database = database_config(args.database_url, file.database, &cache_dir)?;
    let findings = match args.findings_config.or(file.findings_config) {
        Some(path) => FindingConfigs::from_file(&path)
            .map_err(|error| anyhow::anyhow!("findings configuration: {error}"))?,
        None => FindingConfigs::defaults(),
    };
    Ok(ServeConfig {
        listen,
        cache_dir,
        mapping,
        allowed_hosts,
        registry,
        walk,
        cache,
        auth,
        admin_listen,
        admin_profiling,
        admission,
        metadata_query,
        blobs,
        connections,
        database,
        findings,
        cors,
        dashboard_dir,
        special_components: file.special_components,
        service_extensions: service_extensions(file.service_extensions)?,
        sprints: file
            .sprints
            .map(odg_server::SprintCalendar::new)
            .transpose()
            .map_err(|error| anyhow::anyhow!(error))?,
        upgrade_prs: file.upgrade_prs.map(upgrade_prs).transpose()?,
        embedded_database,
    })
}

/// The configured extension names: non-empty, without spaces, each once (the dashboard keys its
/// pages by them).
fn service_extensions(names: Vec<String>) -> anyhow::Result<Vec<String>> {
    let mut seen = std::collections::HashSet::new();
    for name in &names {
        if name.is_empty() || name.chars().any(|c| c.is_whitespace() || c == '/') {
            bail!("service_extensions: {name:?} is not an extension name (camel case, e.g. artefactEnumerator)");
        }
        if !seen.insert(name.as_str()) {
            bail!("service_extensions: {name:?} is listed twice");
        }
    }
    Ok(names)
}

/// The delivery DB: the flag (or `ODG_DATABASE_URL`), the file, or an SQLite file under the cache directory.
fn database_config(
    flag: Option<String>,
    file: DatabaseFileConfig,
    cache_dir: &Path,
) -> anyhow::Result<DatabaseConfig> {
    let mut database = match flag.or(file.url).filter(|url| !url.trim().is_empty()) {
        Some(url) => {
            let url = url.trim().to_string();
            if !["postgres://", "postgresql://", "sqlite:"]
                .iter()
                .any(|scheme| url.starts_with(scheme))
            {
                bail!("the database URL must start with postgres://, postgresql:// or sqlite:");
            }
            DatabaseConfig::new(url)
        }
        None => DatabaseConfig::sqlite_file(&cache_dir.join(DEFAULT_DATABASE_FILE)),
    };
    if let Some(max) = file.max_connections {
        database.max_connections = max.max(1);
    }
    if let Some(ms) = file.acquire_timeout_ms {
        database.acquire_timeout = Duration::from_millis(ms.max(1));
    }
    if let Some(ms) = file.statement_timeout_ms {
        database.statement_timeout = Duration::from_millis(ms.max(1));
    }
    Ok(database)
}

/// Cache settings given as flags or `ODG_*` variables; they win over the file.
struct CacheFlags {
    memory_bytes: Option<ByteSize>,
    disk_bytes: Option<ByteSize>,
    redis_url: Option<String>,
    /// `Some(false)` turns off a `true` from the file.
    redis_cluster: Option<bool>,
    redis_key_prefix: Option<String>,
    /// `Some(false)` turns off a `true` from the file.
    miss_ratio_curves: Option<bool>,
}

pub const DEFAULT_MEMORY_CACHE_BYTES: u64 = CacheConfig::DEFAULT_MEMORY_BYTES;
pub const DEFAULT_DISK_CACHE_BYTES: u64 = 1 << 30;
/// Sampling the curves costs a few hundred nanoseconds per lookup (BENCHMARKS.md); what they tell
/// an operator about sizing is worth that by default.
pub const DEFAULT_MISS_RATIO_CURVES: bool = true;
/// Profiling is opt-in: it runs a signal-driven sampler in the serving process.
pub const DEFAULT_ADMIN_PROFILING: bool = false;

fn cache_config(
    file: CacheFileConfig,
    cache_dir: &Path,
    flags: CacheFlags,
    pod_id: String,
) -> anyhow::Result<CacheConfig> {
    let defaults = CacheConfig::default();
    let memory_bytes = flags
        .memory_bytes
        .or(file.memory_bytes)
        .map_or(DEFAULT_MEMORY_CACHE_BYTES, |size| size.0);
    if memory_bytes < 1 << 20 {
        bail!("the memory cache needs at least 1MiB, got {memory_bytes} bytes");
    }
    let disk_bytes = flags
        .disk_bytes
        .or(file.disk_bytes)
        .map_or(DEFAULT_DISK_CACHE_BYTES, |size| size.0);
    let disk = (disk_bytes > 0).then(|| DiskConfig {
        directory: cache_dir.join("cache-entries"),
        max_bytes: disk_bytes,
    });
    let redis_url = flags
        .redis_url
        .or(file.redis_url)
        .filter(|url| !url.trim().is_empty());
    let shared = redis_url.map(|url| {
        let mut shared = SharedTierConfig::new(url);
        shared.cluster = flags.redis_cluster.or(file.redis_cluster).unwrap_or(false);
        if let Some(prefix) = flags
            .redis_key_prefix
            .clone()
            .or(file.redis_key_prefix.clone())
        {
            shared.key_prefix = prefix;
        }
        if let Some(max) = file.redis_max_value_bytes {
            shared.max_value_bytes = max.0 as usize;
        }
        if let Some(milliseconds) = file.fleet_lease_ttl_ms {
            shared.lease_ttl = Duration::from_millis(milliseconds);
        }
        if let Some(milliseconds) = file.redis_operation_timeout_ms {
            shared.operation_timeout = Duration::from_millis(milliseconds);
        }
        shared
    });
    let mut policies = odg_components::default_policies();
    policies.extend(odg_compliance::default_policies());
    for (kind, overrides) in file.kinds {
        odg_cache::Kind::new(&kind).map_err(|error| anyhow::anyhow!("cache.kinds: {error}"))?;
        let mut policy = policies
            .get(&kind)
            .cloned()
            .unwrap_or_else(KindPolicy::immutable);
        if let Some(seconds) = overrides.fresh_for_seconds {
            policy.fresh_for = (seconds > 0).then(|| Duration::from_secs(seconds));
        }
        if let Some(seconds) = overrides.stale_for_seconds {
            policy.stale_for = Duration::from_secs(seconds);
        }
        policy.memory = overrides.memory.unwrap_or(policy.memory);
        policy.disk = overrides.disk.unwrap_or(policy.disk);
        policy.shared = overrides.shared.unwrap_or(policy.shared);
        policies.insert(kind, policy);
    }
    Ok(CacheConfig {
        memory_bytes,
        disk,
        shared,
        policies,
        fleet_wait: file
            .fleet_wait_ms
            .map_or(defaults.fleet_wait, Duration::from_millis),
        state_directory: Some(cache_dir.to_path_buf()),
        pod_id,
        miss_ratio_curve_keys: flags
            .miss_ratio_curves
            .or(file.miss_ratio_curves)
            .unwrap_or(DEFAULT_MISS_RATIO_CURVES)
            .then_some(odg_cache::DEFAULT_MISS_RATIO_CURVE_KEYS),
        ..defaults
    })
}

/// `upgrade_prs:` resolved: each GitHub with its API URL and token.
fn upgrade_prs(file: UpgradePrsFile) -> anyhow::Result<Vec<odg_server::GithubRepositoryAccess>> {
    file.github
        .into_iter()
        .map(|github| {
            let host = github.host.trim().to_ascii_lowercase();
            if host.is_empty() || host.contains('/') {
                bail!("upgrade_prs.github: host {:?} is no host name", github.host);
            }
            let api_url = github.api_url.unwrap_or_else(|| {
                if host == "github.com" {
                    "https://api.github.com".into()
                } else {
                    format!("https://{host}/api/v3")
                }
            });
            if !(api_url.starts_with("https://") || api_url.starts_with("http://")) {
                bail!("upgrade_prs.github {host}: api_url {api_url:?} is no http(s) URL");
            }
            Ok(odg_server::GithubRepositoryAccess {
                token: secret(
                    &format!("upgrade_prs.github {host}: token"),
                    github.token,
                    github.token_file,
                )?,
                host,
                api_url,
            })
        })
        .collect()
}

/// A secret given inline or as a file (trailing white space of a file is dropped).
fn secret(what: &str, inline: Option<String>, file: Option<PathBuf>) -> anyhow::Result<String> {
    match (inline, file) {
        (Some(value), None) => Ok(value),
        (None, Some(path)) => Ok(std::fs::read_to_string(&path)
            .with_context(|| format!("{what}_file {}", path.display()))?
            .trim_end()
            .to_string()),
        _ => bail!("{what}: give exactly one of {what}, {what}_file"),
    }
}

fn algorithm(what: &str, name: &str) -> anyhow::Result<JwtAlgorithm> {
    match name.to_ascii_uppercase().as_str() {
        "HS256" => Ok(JwtAlgorithm::Hs256),
        "RS256" => Ok(JwtAlgorithm::Rs256),
        other => bail!("{what} {other:?}: use HS256 or RS256"),
    }
}

fn login_config(file: LoginFileConfig) -> anyhow::Result<LoginConfig> {
    let signing_keys = file
        .signing_keys
        .into_iter()
        .map(|key| {
            Ok(SigningKeyConfig {
                algorithm: algorithm("auth.login.signing_keys.algorithm", &key.algorithm)?,
                private_key: secret(
                    &format!("auth.login.signing_keys[{}].private_key", key.id),
                    key.private_key,
                    key.private_key_file,
                )?,
                id: key.id,
                priority: key.priority,
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let github = file
        .github
        .into_iter()
        .map(|github| {
            Ok(GithubLoginConfig {
                client_secret: secret(
                    &format!("auth.login.github[{}].client_secret", github.api_url),
                    github.client_secret,
                    github.client_secret_file,
                )?,
                name: github.name,
                api_url: github.api_url,
                client_id: github.client_id,
                oauth_url: github.oauth_url,
                token_url: github.token_url,
                role_bindings: github.role_bindings,
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(LoginConfig {
        issuer: file.issuer,
        signing_keys,
        github,
        rbac: file.rbac,
        require_for_reads: file.require_for_reads.unwrap_or(true),
        session_max_age: file
            .session_max_age_seconds
            .map_or(DEFAULT_SESSION_MAX_AGE, Duration::from_secs),
        refresh_max_age: file
            .refresh_max_age_seconds
            .map_or(DEFAULT_REFRESH_MAX_AGE, Duration::from_secs),
    })
}

fn jwt_config(file: JwtFileConfig) -> anyhow::Result<JwtConfig> {
    let algorithm = match file.algorithm.to_ascii_uppercase().as_str() {
        "HS256" => JwtAlgorithm::Hs256,
        "RS256" => JwtAlgorithm::Rs256,
        other => bail!("auth.jwt.algorithm {other:?}: use HS256 or RS256"),
    };
    let key = match (file.key, file.key_file) {
        (Some(key), None) => key,
        (None, Some(path)) => std::fs::read_to_string(&path)
            .with_context(|| format!("auth.jwt.key_file {}", path.display()))?,
        _ => bail!("auth.jwt: give exactly one of key, key_file"),
    };
    Ok(JwtConfig {
        algorithm,
        key,
        roles_claim: file.roles_claim.unwrap_or_else(|| "roles".to_string()),
        issuer: file.issuer,
        audience: file.audience,
    })
}

/// The file's `ocm_repositories`: OCI repository rules and virtual repositories (`type:
/// virtual`), each entry read strictly by its type; `None` when there are no rules.
fn repository_mapping(
    entries: Vec<serde_yaml_ng::Value>,
) -> anyhow::Result<Option<RepositoryMapping>> {
    let mut rules = Vec::new();
    let mut virtuals = Vec::new();
    for (index, entry) in entries.into_iter().enumerate() {
        let is_virtual =
            entry.get("type").and_then(serde_yaml_ng::Value::as_str) == Some("virtual");
        if is_virtual {
            let config: VirtualRepositoryConfig = serde_yaml_ng::from_value(entry)
                .with_context(|| format!("ocm_repositories[{index}] (virtual)"))?;
            let name = config.name.clone();
            virtuals.push(
                VirtualRepository::try_from(config)
                    .with_context(|| format!("virtual repository {name:?}"))?,
            );
        } else {
            let config: RepositoryRuleConfig = serde_yaml_ng::from_value(entry)
                .with_context(|| format!("ocm_repositories[{index}]"))?;
            let repository = config.repository.clone();
            rules.push(
                RepositoryRule::try_from(config)
                    .with_context(|| format!("repository mapping entry {repository:?}"))?,
            );
        }
    }
    if rules.is_empty() {
        if !virtuals.is_empty() {
            bail!("ocm_repositories has virtual repositories but no repository for them to select");
        }
        return Ok(None);
    }
    Ok(Some(RepositoryMapping::with_virtuals(rules, virtuals)?))
}

fn rule_for_every_component(url: &str) -> anyhow::Result<RepositoryRule> {
    let config = RepositoryRuleConfig {
        repository: url.to_string(),
        ..RepositoryRuleConfig::default()
    };
    RepositoryRule::try_from(config).with_context(|| format!("--ocm-repo {url:?}"))
}

fn registry_config(
    file: RegistryFileConfig,
    flag_ca_files: Vec<PathBuf>,
) -> anyhow::Result<RegistryClientConfig> {
    let defaults = RegistryClientConfig::default();
    let mut credentials = HashMap::new();
    let mut host_ca_files: HashMap<String, Vec<PathBuf>> = HashMap::new();
    for entry in file.credentials {
        let host = entry.host.to_ascii_lowercase();
        if let Some(ca_file) = entry.ca_file {
            host_ca_files.entry(host.clone()).or_default().push(ca_file);
        } else if entry.username.is_none() {
            bail!(
                "registry entry for {}: give a username (credentials), a ca_file, or both",
                entry.host
            );
        }
        let Some(username) = entry.username else {
            if entry.password.is_some() || entry.password_env.is_some() {
                bail!(
                    "credentials for {}: a password needs a username",
                    entry.host
                );
            }
            continue;
        };
        let password = match (entry.password, entry.password_env) {
            (Some(password), None) => password,
            (None, Some(variable)) => std::env::var(&variable).with_context(|| {
                format!(
                    "credentials for {}: variable {variable} is not set",
                    entry.host
                )
            })?,
            _ => bail!(
                "credentials for {}: give exactly one of password, password_env",
                entry.host
            ),
        };
        credentials.insert(host, Credentials { username, password });
    }
    let mut ca_files = flag_ca_files;
    ca_files.extend(file.ca_file);
    Ok(RegistryClientConfig {
        credentials,
        max_concurrent_requests_per_host: file
            .max_concurrent_requests_per_host
            .unwrap_or(defaults.max_concurrent_requests_per_host)
            .max(1),
        request_timeout: file
            .request_timeout_seconds
            .map(Duration::from_secs)
            .unwrap_or(defaults.request_timeout),
        connect_timeout: file
            .connect_timeout_seconds
            .map(Duration::from_secs)
            .unwrap_or(defaults.connect_timeout),
        max_retries: file.max_retries.unwrap_or(defaults.max_retries),
        ca_files,
        host_ca_files,
        ..defaults
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args() -> ServeArgs {
        ServeArgs {
            config: None,
            listen: None,
            ocm_repos: vec![],
            allowed_ocm_repo_hosts: vec![],
            cache_dir: None,
            memory_cache_bytes: None,
            disk_cache_bytes: None,
            redis_url: None,
            redis_cluster: None,
            redis_key_prefix: None,
            disable_cache: false,
            miss_ratio_curves: None,
            admin_tokens: vec![],
            admin_profiling: None,
            cors_allowed_origins: vec![],
            cors_max_age_seconds: None,
            dashboard_dir: None,
            admin_listen: None,
            admission_mode: None,
            max_concurrent_requests: None,
            admission_min_limit: None,
            max_queued_requests: None,
            max_queue_wait_ms: None,
            admission_queue_target_ms: None,
            max_metadata_query_entries: None,
            max_blob_bytes: None,
            header_read_timeout_ms: None,
            idle_timeout_ms: None,
            max_connections: None,
            pod_id: None,
            database_url: None,
            findings_config: None,
            registry_ca_files: vec![],
        }
    }

    #[test]
    fn defaults_serve_the_demo_repository() {
        let config = resolve(args()).unwrap();
        assert_eq!(config.listen.to_string(), DEFAULT_LISTEN);
        assert!(config.mapping.is_none());
        assert_eq!(config.cache_dir, PathBuf::from(DEFAULT_CACHE_DIR));
    }

    #[test]
    fn file_mapping_and_flag_precedence() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("odg.yaml");
        std::fs::write(
            &path,
            "listen: 127.0.0.1:6000\nocm_repositories:\n  - repository: http://127.0.0.1:5001/ocm\n    prefixes: [acme.org/]\n    version_filter: semver_releases\n  - repository: ghcr.io/acme/ocm\n    component_filter: 'acme\\.org/.*'\n",
        )
        .unwrap();
        let mut from_file = args();
        from_file.config = Some(path.clone());
        let config = resolve(from_file).unwrap();
        assert_eq!(config.listen.to_string(), "127.0.0.1:6000");
        let mapping = config.mapping.unwrap();
        assert_eq!(mapping.rules.len(), 2);
        assert!(mapping.rules[0].repository.plain_http);

        let mut overridden = args();
        overridden.config = Some(path);
        overridden.listen = Some("127.0.0.1:7000".into());
        overridden.ocm_repos = vec!["registry.example.org/other".into()];
        let config = resolve(overridden).unwrap();
        assert_eq!(config.listen.to_string(), "127.0.0.1:7000");
        assert_eq!(config.mapping.unwrap().rules.len(), 1);
    }

    /// The original's `ocm_repo_mappings.yaml` as it ships (a virtual `<auto>` with a filter
    /// override, `prefixes` as one string) is read as it is; a selector that selects nothing
    /// and an entry of an unknown type fail at start-up.
    #[test]
    fn the_originals_repository_mapping_file_with_virtual_repositories() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("odg.yaml");
        let with = |mapping: &str| {
            std::fs::write(&path, format!("ocm_repositories:\n{mapping}")).unwrap();
            let mut from_file = args();
            from_file.config = Some(path.clone());
            resolve(from_file)
        };
        let config = with(
            "  - type: virtual\n    name: <auto>\n    selectors:\n      - version_filter_overwrite: semver_releases\n  - repository: ghcr.io/open-component-model/ocm\n    prefixes: ocm.software/ocmcli\n  - repository: europe-docker.pkg.dev/gardener-project/releases\n    labels: [releases]\n",
        )
        .unwrap();
        let mapping = config.mapping.unwrap();
        assert_eq!(mapping.rules.len(), 2);
        assert_eq!(mapping.virtuals.len(), 1);
        let candidates = mapping.candidates_for("ocm.software/ocmcli", None);
        assert_eq!(candidates.len(), 2);
        assert!(candidates
            .iter()
            .all(|candidate| candidate.version_filter
                == Some(odg_ocm::VersionFilter::SemverReleases)));
        for bad in [
            "  - type: virtual\n    name: nightly\n    selectors: {required_labels: nightly}\n  - repository: ghcr.io/acme/ocm\n",
            "  - type: s3\n    repository: ghcr.io/acme/ocm\n",
            "  - type: virtual\n    name: only\n",
        ] {
            assert!(with(bad).is_err(), "{bad}");
        }
    }

    /// `upgrade_prs:` switches the feature on (none: off); each GitHub gets its API URL's
    /// default from its host and a token from the file; a host with a path is refused.
    #[test]
    fn upgrade_pull_requests_from_the_file() {
        assert!(resolve(args()).unwrap().upgrade_prs.is_none());
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("odg.yaml");
        let token = dir.path().join("token");
        std::fs::write(&token, "ghp_secret\n").unwrap();
        let with = |text: String| {
            std::fs::write(&path, text).unwrap();
            let mut from_file = args();
            from_file.config = Some(path.clone());
            resolve(from_file)
        };
        let githubs = with(format!(
            "upgrade_prs:\n  github:\n    - {{host: GitHub.com, token_file: {}}}\n    - {{host: ghe.corp.example, token: t}}\n",
            token.display()
        ))
        .unwrap()
        .upgrade_prs
        .unwrap();
        assert_eq!(githubs[0].host, "github.com");
        assert_eq!(githubs[0].api_url, "https://api.github.com");
        assert_eq!(githubs[0].token, "ghp_secret");
        assert_eq!(githubs[1].api_url, "https://ghe.corp.example/api/v3");
        assert!(
            !format!("{githubs:?}").contains("ghp_secret"),
            "never in Debug"
        );
        assert_eq!(
            with("upgrade_prs: {}\n".into())
                .unwrap()
                .upgrade_prs
                .unwrap()
                .len(),
            0
        );
        assert!(
            with("upgrade_prs: {github: [{host: github.com/acme, token: t}]}\n".into()).is_err()
        );
        assert!(with("upgrade_prs: {github: [{host: github.com}]}\n".into()).is_err());
    }

    #[test]
    fn miss_ratio_curves_are_on_by_default_and_the_flag_wins_over_the_file() {
        let curves = |config: ServeConfig| config.cache.unwrap().miss_ratio_curve_keys;
        assert_eq!(
            curves(resolve(args()).unwrap()),
            Some(odg_cache::DEFAULT_MISS_RATIO_CURVE_KEYS)
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("odg.yaml");
        std::fs::write(&path, "cache:\n  miss_ratio_curves: false\n").unwrap();
        let mut from_file = args();
        from_file.config = Some(path.clone());
        assert_eq!(curves(resolve(from_file).unwrap()), None);
        let mut overridden = args();
        overridden.config = Some(path);
        overridden.miss_ratio_curves = Some(true);
        assert!(curves(resolve(overridden).unwrap()).is_some());
    }

    #[test]
    fn connection_limits_default_once_and_flags_win_over_the_file() {
        let config = resolve(args()).unwrap();
        assert_eq!(config.connections, ConnectionLimits::default());

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("odg.yaml");
        std::fs::write(
            &path,
            "server:\n  header_read_timeout_ms: 2000\n  idle_timeout_ms: 30000\n  max_connections: 100\n",
        )
        .unwrap();
        let mut from_file = args();
        from_file.config = Some(path.clone());
        let config = resolve(from_file).unwrap();
        assert_eq!(
            config.connections.header_read_timeout,
            Duration::from_secs(2)
        );
        assert_eq!(config.connections.idle_timeout, Duration::from_secs(30));
        assert_eq!(config.connections.max_connections, 100);

        let mut overridden = args();
        overridden.config = Some(path);
        overridden.max_connections = Some(7);
        let config = resolve(overridden).unwrap();
        assert_eq!(config.connections.max_connections, 7);
        assert_eq!(
            config.connections.header_read_timeout,
            Duration::from_secs(2)
        );
    }

    #[test]
    fn the_dashboard_dir_comes_from_the_flag_or_the_file_and_must_hold_an_index() {
        assert_eq!(resolve(args()).unwrap().dashboard_dir, None);
        let dir = tempfile::tempdir().unwrap();
        let built = dir.path().join("build");
        std::fs::create_dir_all(&built).unwrap();
        let path = dir.path().join("odg.yaml");
        std::fs::write(&path, format!("dashboard_dir: {}\n", built.display())).unwrap();
        let mut from_file = args();
        from_file.config = Some(path.clone());
        let error = resolve(from_file).unwrap_err().to_string();
        assert!(error.contains("holds no index.html"), "{error}");

        std::fs::write(built.join("index.html"), "<html></html>").unwrap();
        let mut from_file = args();
        from_file.config = Some(path);
        assert_eq!(
            resolve(from_file).unwrap().dashboard_dir,
            Some(built.clone())
        );
        let mut from_flag = args();
        from_flag.dashboard_dir = Some(built.clone());
        assert_eq!(resolve(from_flag).unwrap().dashboard_dir, Some(built));
    }

    #[test]
    fn only_an_unconfigured_database_is_the_embedded_one() {
        assert!(resolve(args()).unwrap().embedded_database);
        let mut configured = args();
        configured.database_url = Some("postgres://127.0.0.1/odg".into());
        assert!(!resolve(configured).unwrap().embedded_database);
        let mut sqlite = args();
        sqlite.database_url = Some("sqlite:/tmp/elsewhere.db".into());
        assert!(!resolve(sqlite).unwrap().embedded_database);
    }

    #[test]
    fn service_extensions_are_named_once_each() {
        assert!(resolve(args()).unwrap().service_extensions.is_empty());
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("odg.yaml");
        let with = |text: &str| {
            std::fs::write(&path, text).unwrap();
            let mut from_file = args();
            from_file.config = Some(path.clone());
            resolve(from_file)
        };
        assert_eq!(
            with("service_extensions: [artefactEnumerator, cacheManager]\n")
                .unwrap()
                .service_extensions,
            vec!["artefactEnumerator", "cacheManager"]
        );
        let twice = with("service_extensions: [cacheManager, cacheManager]\n").unwrap_err();
        assert!(format!("{twice:#}").contains("listed twice"), "{twice:#}");
        let blank = with("service_extensions: ['']\n").unwrap_err();
        assert!(
            format!("{blank:#}").contains("not an extension name"),
            "{blank:#}"
        );
    }

    #[test]
    fn sprints_are_a_list_or_a_pattern_in_the_originals_field_names() {
        assert!(resolve(args()).unwrap().sprints.is_none());
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("odg.yaml");
        let with = |text: &str| {
            std::fs::write(&path, text).unwrap();
            let mut from_file = args();
            from_file.config = Some(path.clone());
            resolve(from_file)
        };
        let listed = with(
            "sprints:\n  meta: {offsets: [{name: rtc, display_name: RTC, offset_days: 1}]}\n  sprints: [{name: '2501', end_date: 2025-01-08}]\n",
        )
        .unwrap()
        .sprints
        .unwrap();
        let today = "2025-01-01".parse().unwrap();
        assert_eq!(listed.sprints(today)[0].dates.len(), 2);
        let generated = with("sprints: {sprint_name_pattern: '%y%S%C', days_per_sprint: 7}\n")
            .unwrap()
            .sprints
            .unwrap();
        assert!(!generated.sprints(today).is_empty());
        let bad_date = with("sprints: {sprints: [{name: a, end_date: soon}]}\n").unwrap_err();
        assert!(
            format!("{bad_date:#}").contains("not a date"),
            "{bad_date:#}"
        );
        let unknown = with("sprints: {sprint_name_pattern: '%S', weeks: 2}\n").unwrap_err();
        assert!(format!("{unknown:#}").contains("weeks"), "{unknown:#}");
    }

    #[test]
    fn special_components_are_read_in_the_originals_field_names() {
        assert_eq!(resolve(args()).unwrap().special_components, None);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("odg.yaml");
        std::fs::write(
            &path,
            "special_components:\n  - {id: a1, name: example.org/app, displayName: App, type: Apps, version: greatest, dependencies: [{name: example.org/lib, displayName: Lib}]}\n",
        )
        .unwrap();
        let mut from_file = args();
        from_file.config = Some(path.clone());
        let components = resolve(from_file).unwrap().special_components.unwrap();
        assert_eq!(components.len(), 1);
        assert_eq!(components[0].display_name, "App");
        assert_eq!(components[0].kind, "Apps");
        assert_eq!(components[0].dependencies[0].display_name, "Lib");

        std::fs::write(
            &path,
            "special_components:\n  - {id: a1, name: example.org/app, displayName: App, type: Apps, version: greatest, currentVersion: {}}\n",
        )
        .unwrap();
        let mut unsupported = args();
        unsupported.config = Some(path);
        assert!(resolve(unsupported).is_err());
    }

    #[test]
    fn cors_origins_from_the_file_are_replaced_by_flags_and_bad_origins_refused() {
        let config = resolve(args()).unwrap();
        assert_eq!(config.cors, CorsConfig::default());
        assert!(config.cors.allowed_origins().is_empty());

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("odg.yaml");
        std::fs::write(
            &path,
            "cors:\n  allowed_origins: [https://dashboard.example.org, 'http://localhost:3000/']\n  max_age_seconds: 60\n",
        )
        .unwrap();
        let mut from_file = args();
        from_file.config = Some(path.clone());
        let cors = resolve(from_file).unwrap().cors;
        assert_eq!(
            cors.allowed_origins(),
            ["https://dashboard.example.org", "http://localhost:3000"]
        );
        assert_eq!(cors.max_age(), Duration::from_secs(60));

        let mut overridden = args();
        overridden.config = Some(path);
        overridden.cors_allowed_origins = vec!["https://other.example.org".into()];
        overridden.cors_max_age_seconds = Some(5);
        let cors = resolve(overridden).unwrap().cors;
        assert_eq!(cors.allowed_origins(), ["https://other.example.org"]);
        assert_eq!(cors.max_age(), Duration::from_secs(5));

        let mut bad = args();
        bad.cors_allowed_origins = vec!["*".into()];
        let error = format!("{:#}", resolve(bad).unwrap_err());
        assert!(error.contains("CORS origin"), "{error}");
    }

    #[test]
    fn admission_defaults_once_and_flags_win_over_the_file() {
        let defaults = AdmissionConfig::default();
        let config = resolve(args()).unwrap();
        assert_eq!(config.admission.mode, AdmissionMode::Fixed);
        assert_eq!(config.admission.max_concurrent, defaults.max_concurrent);
        assert_eq!(config.admission.min_concurrent, defaults.min_concurrent);
        assert_eq!(config.admission.queue_target, defaults.queue_target);

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("odg.yaml");
        std::fs::write(
            &path,
            "server:\n  admission_mode: fixed\n  max_concurrent_requests: 8\n  admission_min_limit: 3\n  admission_queue_target_ms: 20\n",
        )
        .unwrap();
        let mut from_file = args();
        from_file.config = Some(path.clone());
        let config = resolve(from_file).unwrap();
        assert_eq!(config.admission.mode, AdmissionMode::Fixed);
        assert_eq!(config.admission.max_concurrent, 8);
        assert_eq!(config.admission.min_concurrent, 3);
        assert_eq!(config.admission.queue_target, Duration::from_millis(20));

        let mut overridden = args();
        overridden.config = Some(path);
        overridden.admission_mode = Some("adaptive".into());
        overridden.admission_min_limit = Some(2);
        let config = resolve(overridden).unwrap();
        assert_eq!(config.admission.mode, AdmissionMode::Adaptive);
        assert_eq!(config.admission.min_concurrent, 2);

        // A floor above the ceiling is a mistake; the default floor yields to a low ceiling.
        let mut inverted = args();
        inverted.admission_mode = Some("adaptive".into());
        inverted.max_concurrent_requests = Some(4);
        inverted.admission_min_limit = Some(8);
        assert!(resolve(inverted).is_err());
        let mut low = args();
        low.max_concurrent_requests = Some(1);
        assert_eq!(resolve(low).unwrap().admission.min_concurrent, 1);
    }

    #[test]
    fn a_false_flag_turns_off_a_true_from_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("odg.yaml");
        std::fs::write(
            &path,
            "cache:\n  redis_url: redis://127.0.0.1:7000\n  redis_cluster: true\n",
        )
        .unwrap();
        let cluster = |flag: Option<bool>| {
            let mut arguments = args();
            arguments.config = Some(path.clone());
            arguments.redis_cluster = flag;
            let cache = resolve(arguments).unwrap().cache.unwrap();
            cache.shared.unwrap().cluster
        };
        assert!(cluster(None), "the file's true");
        assert!(!cluster(Some(false)), "--redis-cluster=false");
        assert!(cluster(Some(true)));
    }

    #[test]
    fn unknown_keys_and_bad_values_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("odg.yaml");
        std::fs::write(&path, "listn: 127.0.0.1:6000\n").unwrap();
        let mut bad = args();
        bad.config = Some(path);
        assert!(resolve(bad).is_err());

        let mut bad = args();
        bad.ocm_repos = vec!["ftp://x/y".into()];
        assert!(resolve(bad).is_err());

        let mut bad = args();
        bad.allowed_ocm_repo_hosts = vec!["evil.example/path".into()];
        assert!(resolve(bad).is_err());
    }

    #[test]
    fn login_from_the_file_with_secrets_in_files_and_the_original_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let secret_path = dir.path().join("client-secret");
        std::fs::write(&secret_path, "s3cret\n").unwrap();
        let path = dir.path().join("odg.yaml");
        std::fs::write(
            &path,
            format!(
                "auth:\n  login:\n    issuer: https://odg.example.org\n    signing_keys:\n      - {{id: k1, algorithm: hs256, private_key: an-hs256-secret-of-at-least-32-bytes!}}\n    github:\n      - name: GitHub\n        api_url: https://api.github.com\n        client_id: abc\n        client_secret_file: {}\n        role_bindings:\n          - {{roles: [admin], subjects: [{{type: github-user, name: alice}}]}}\n    rbac:\n      roles: [{{name: auditor, permissions: [read-all]}}]\n",
                secret_path.display()
            ),
        )
        .unwrap();
        let mut with_file = args();
        with_file.config = Some(path.clone());
        let login = resolve(with_file).unwrap().auth.login.unwrap();
        assert_eq!(login.github[0].client_secret, "s3cret");
        assert_eq!(login.signing_keys[0].algorithm, JwtAlgorithm::Hs256);
        assert!(login.require_for_reads);
        assert_eq!(login.session_max_age, DEFAULT_SESSION_MAX_AGE);
        assert_eq!(login.rbac.roles[0].name, "auditor");

        std::fs::write(
            &path,
            "auth:\n  login:\n    issuer: https://odg.example.org\n    signing_keys: []\n    github: []\n    extra: 1\n",
        )
        .unwrap();
        let mut bad = args();
        bad.config = Some(path);
        assert!(resolve(bad).is_err());
    }

    #[test]
    fn registry_ca_files_from_flag_file_and_host_entries() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("odg.yaml");
        std::fs::write(
            &path,
            "registry:\n  ca_file: /etc/odg/corp-ca.pem\n  credentials:\n    - host: Harbor.corp.example\n      ca_file: /etc/odg/harbor-ca.pem\n    - host: artifactory.corp.example:8443\n      username: odg\n      password: secret\n      ca_file: /etc/odg/artifactory-ca.pem\n",
        )
        .unwrap();
        let mut with_flag = args();
        with_flag.config = Some(path);
        with_flag.registry_ca_files = vec![PathBuf::from("/flag/ca.pem")];
        let registry = resolve(with_flag).unwrap().registry;
        assert_eq!(
            registry.ca_files,
            vec![
                PathBuf::from("/flag/ca.pem"),
                PathBuf::from("/etc/odg/corp-ca.pem")
            ]
        );
        assert_eq!(
            registry.host_ca_files["harbor.corp.example"],
            vec![PathBuf::from("/etc/odg/harbor-ca.pem")]
        );
        assert_eq!(
            registry.host_ca_files["artifactory.corp.example:8443"],
            vec![PathBuf::from("/etc/odg/artifactory-ca.pem")]
        );
        assert!(!registry.credentials.contains_key("harbor.corp.example"));
        assert_eq!(
            registry.credentials["artifactory.corp.example:8443"].username,
            "odg"
        );
    }

    #[test]
    fn registry_entries_need_credentials_or_a_ca_file() {
        let dir = tempfile::tempdir().unwrap();
        for (text, expected) in [
            ("registry:\n  credentials:\n    - host: r.example\n", "give a username"),
            (
                "registry:\n  credentials:\n    - host: r.example\n      ca_file: /ca.pem\n      password: x\n",
                "a password needs a username",
            ),
            (
                "registry:\n  credentials:\n    - host: r.example\n      username: u\n",
                "exactly one of password",
            ),
        ] {
            let path = dir.path().join("odg.yaml");
            std::fs::write(&path, text).unwrap();
            let mut bad = args();
            bad.config = Some(path);
            let error = format!("{:#}", resolve(bad).unwrap_err());
            assert!(error.contains(expected), "{text}: {error}");
        }
    }
}
