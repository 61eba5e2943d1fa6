//! The command line: subcommands and their flags (each flag also settable by an `ODG_*` variable).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

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
    Serve(ServeArgs),
    /// Upload component descriptors (YAML files) to an OCM repository.
    Push(PushArgs),
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// YAML configuration file; flags and ODG_* variables override its values.
    #[arg(long, env = "ODG_CONFIG")]
    pub config: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:5000].
    #[arg(long, env = "ODG_LISTEN")]
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
    /// Directory for whatever the service keeps on disk [default: .odg].
    #[arg(long, env = "ODG_CACHE_DIR")]
    pub cache_dir: Option<PathBuf>,
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
    /// Component descriptor files (YAML or JSON).
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
}
