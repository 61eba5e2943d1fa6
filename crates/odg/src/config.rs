//! Configuration in two stages: the YAML file layer (every default in one place), then resolution
//! with flags and `ODG_*` variables into the typed configs the library crates take.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context};
use odg_components::WalkOptions;
use odg_oci::{Credentials, RegistryClientConfig};
use odg_ocm::{RepositoryMapping, RepositoryRule, RepositoryRuleConfig};
use serde::Deserialize;

use crate::cli::ServeArgs;

pub const DEFAULT_LISTEN: &str = "127.0.0.1:5000";
pub const DEFAULT_CACHE_DIR: &str = ".odg";

/// The configuration file as written by operators.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub listen: Option<String>,
    pub cache_dir: Option<PathBuf>,
    /// The repository mapping: tried in order, each rule matching by `prefixes` or `component_filter`.
    #[serde(default)]
    pub ocm_repositories: Vec<RepositoryRuleConfig>,
    #[serde(default)]
    pub allowed_ocm_repo_hosts: Vec<String>,
    #[serde(default)]
    pub registry: RegistryFileConfig,
    #[serde(default)]
    pub dependencies: DependenciesFileConfig,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistryFileConfig {
    #[serde(default)]
    pub credentials: Vec<CredentialFileConfig>,
    /// Requests in flight per registry host [default: 32].
    pub max_concurrent_requests_per_host: Option<usize>,
    /// Whole-request timeout [default: 30].
    pub request_timeout_seconds: Option<u64>,
    /// Connection timeout [default: 5].
    pub connect_timeout_seconds: Option<u64>,
    /// Retries on connection errors, 429 and 5xx [default: 6].
    pub max_retries: Option<u32>,
}

/// Credentials for one registry host; the password may come from a variable so the file holds no secret.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CredentialFileConfig {
    pub host: String,
    pub username: String,
    pub password: Option<String>,
    pub password_env: Option<String>,
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

    let rules: Vec<RepositoryRule> = if !args.ocm_repos.is_empty() {
        args.ocm_repos
            .iter()
            .map(|url| rule_for_every_component(url))
            .collect::<anyhow::Result<_>>()?
    } else {
        file.ocm_repositories
            .into_iter()
            .map(|rule| {
                let repository = rule.repository.clone();
                RepositoryRule::try_from(rule)
                    .with_context(|| format!("repository mapping entry {repository:?}"))
            })
            .collect::<anyhow::Result<_>>()?
    };
    let mapping = (!rules.is_empty()).then_some(RepositoryMapping { rules });

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

    let registry = registry_config(file.registry)?;
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
    Ok(ServeConfig {
        listen,
        cache_dir,
        mapping,
        allowed_hosts,
        registry,
        walk,
    })
}

fn rule_for_every_component(url: &str) -> anyhow::Result<RepositoryRule> {
    let config = RepositoryRuleConfig {
        repository: url.to_string(),
        prefixes: None,
        component_filter: None,
        version_filter: None,
    };
    RepositoryRule::try_from(config).with_context(|| format!("--ocm-repo {url:?}"))
}

fn registry_config(file: RegistryFileConfig) -> anyhow::Result<RegistryClientConfig> {
    let defaults = RegistryClientConfig::default();
    let mut credentials = HashMap::new();
    for entry in file.credentials {
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
        credentials.insert(
            entry.host.to_ascii_lowercase(),
            Credentials {
                username: entry.username,
                password,
            },
        );
    }
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
}
