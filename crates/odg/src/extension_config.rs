//! The extensions' command line and configuration file (`odg enumerate`, `odg cache-manager`):
//! flags, the YAML file layer with every default, and their resolution into `odg_extensions`
//! and `odg_cache::prune` types.
//!
//! The file (`--config`, as the chart's ConfigMap writes it):
//! ```yaml
//! components:
//!   - name: acme.org/landscape
//!     versions: 3                 # the newest 3 (default 1) ...
//!   - name: acme.org/shop/checkout
//!     version: 1.2.0              # ... or exactly this one
//!     ocm_repo_url: europe-docker.pkg.dev/acme/ocm
//!     version_filter: semver_releases
//! concurrency: 8
//! max_start_jitter_seconds: 30
//! prune:
//!   budget: 512MiB
//!   kind_costs: {dependencies: 16, descriptor: 4, versions: 1}
//!   default_cost: 2
//!   idle_half_life_seconds: 3600
//!   age_half_life_seconds: 604800
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context};
use clap::{Args, ValueEnum};
use odg_cache::prune::ScoreWeights;
use odg_extensions::{Target, VersionSelection};
use serde::Deserialize;

use crate::byte_size::ByteSize;

/// Flags both extensions share: where the service is and what to walk.
#[derive(Debug, Args)]
pub struct TargetArgs {
    /// The service's base URL.
    #[arg(long, env = "ODG_URL", default_value = "http://127.0.0.1:5000")]
    pub url: String,
    /// YAML file with `components` and settings; flags add components and override settings.
    #[arg(long, env = "ODG_EXTENSIONS_CONFIG")]
    pub config: Option<PathBuf>,
    /// A component: `NAME` (its newest --versions versions) or `NAME:VERSION`; repeatable.
    #[arg(long = "component", value_name = "NAME[:VERSION]")]
    pub components: Vec<String>,
    /// Newest versions per component given without a version [default: 1].
    #[arg(long)]
    pub versions: Option<usize>,
    /// Requests in flight at once [default: 8; cache-manager 4].
    #[arg(long)]
    pub concurrency: Option<usize>,
    /// Sleep a random 0..=N seconds first, so periodic runs do not align [default: 0].
    #[arg(long, value_name = "SECONDS")]
    pub max_start_jitter: Option<u64>,
    /// A `/metrics` URL read before and after the run for its cache effect; repeatable (each
    /// pod's admin port for a fleet view) [default: URL/metrics].
    #[arg(long = "metrics-url")]
    pub metrics_urls: Vec<String>,
    /// Do not read the service's metrics.
    #[arg(long, conflicts_with = "metrics_urls")]
    pub no_metrics: bool,
    /// Bearer token, if the service requires one.
    #[arg(long, env = "ODG_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// The summary on stdout.
    #[arg(long, value_enum, default_value_t = SummaryFormat::Text)]
    pub summary: SummaryFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SummaryFormat {
    Text,
    Json,
}

#[derive(Debug, Args)]
pub struct EnumerateArgs {
    #[command(flatten)]
    pub targets: TargetArgs,
    /// Skip querying the artefact metadata of the walked component versions.
    #[arg(long)]
    pub no_metadata: bool,
}

#[derive(Debug, Args)]
pub struct CacheManagerArgs {
    #[command(flatten)]
    pub targets: TargetArgs,
    /// Skip the prefill (prune only).
    #[arg(long)]
    pub no_prefill: bool,
    /// Prune the shared tier to this much Redis memory (e.g. 512MiB); needs the Redis URL.
    #[arg(long)]
    pub prune_budget: Option<ByteSize>,
    /// The shared tier (one server; the same URL the pods use).
    #[arg(long, env = "ODG_REDIS_URL", hide_env_values = true)]
    pub redis_url: Option<String>,
    /// The pods' Redis key prefix.
    #[arg(long, env = "ODG_REDIS_KEY_PREFIX", default_value = "odg")]
    pub redis_key_prefix: String,
    /// Report what pruning would delete; delete nothing.
    #[arg(long)]
    pub dry_run: bool,
}

/// The extensions' configuration file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExtensionsFileConfig {
    #[serde(default)]
    pub components: Vec<ComponentFileConfig>,
    pub concurrency: Option<usize>,
    pub max_start_jitter_seconds: Option<u64>,
    #[serde(default)]
    pub prune: PruneFileConfig,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ComponentFileConfig {
    pub name: String,
    /// The newest N versions [default: 1] ...
    pub versions: Option<usize>,
    /// ... or exactly this one.
    pub version: Option<String>,
    pub ocm_repo_url: Option<String>,
    pub version_filter: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PruneFileConfig {
    pub budget: Option<ByteSize>,
    /// Relative cost to recompute, per cache kind.
    #[serde(default)]
    pub kind_costs: BTreeMap<String, f64>,
    pub default_cost: Option<f64>,
    pub idle_half_life_seconds: Option<u64>,
    pub age_half_life_seconds: Option<u64>,
}

/// Everything a run needs, resolved.
#[derive(Debug)]
pub struct RunSettings {
    pub url: String,
    pub targets: Vec<Target>,
    pub concurrency: usize,
    pub max_start_jitter: Duration,
    pub metrics_urls: Vec<String>,
    pub token: Option<String>,
    pub summary: SummaryFormat,
    pub prune: PruneFileConfig,
}

pub fn read_file(path: &Path) -> anyhow::Result<ExtensionsFileConfig> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_yaml_ng::from_str(&text).with_context(|| format!("parsing {}", path.display()))
}

pub fn resolve(args: TargetArgs, default_concurrency: usize) -> anyhow::Result<RunSettings> {
    let file = match &args.config {
        Some(path) => read_file(path)?,
        None => ExtensionsFileConfig::default(),
    };
    let newest = args.versions.unwrap_or(1);
    if newest == 0 {
        bail!("--versions must be at least 1");
    }
    let mut targets = Vec::new();
    for component in file.components {
        let versions = match (component.version, component.versions) {
            (Some(_), Some(_)) => bail!(
                "component {}: give version or versions, not both",
                component.name
            ),
            (Some(version), None) => VersionSelection::Exact(version),
            (None, Some(0)) => bail!("component {}: versions must be at least 1", component.name),
            (None, Some(count)) => VersionSelection::Newest(count),
            (None, None) => VersionSelection::Newest(1),
        };
        targets.push(Target {
            component_name: component.name,
            versions,
            ocm_repo_url: component.ocm_repo_url,
            version_filter: component.version_filter,
        });
    }
    for component in &args.components {
        let (name, versions) = match component.split_once(':') {
            Some((name, version)) if !version.is_empty() => {
                (name, VersionSelection::Exact(version.to_string()))
            }
            Some(_) => bail!("--component {component:?}: empty version"),
            None => (component.as_str(), VersionSelection::Newest(newest)),
        };
        targets.push(Target {
            component_name: name.to_string(),
            versions,
            ocm_repo_url: None,
            version_filter: None,
        });
    }
    if let Some(target) = targets
        .iter()
        .find(|target| target.component_name.trim().is_empty())
    {
        bail!("a component without a name: {target:?}");
    }
    let url = args.url.trim_end_matches('/').to_string();
    let metrics_urls = if args.no_metrics {
        Vec::new()
    } else if args.metrics_urls.is_empty() {
        vec![format!("{url}/metrics")]
    } else {
        args.metrics_urls
    };
    Ok(RunSettings {
        url,
        targets,
        concurrency: args
            .concurrency
            .or(file.concurrency)
            .unwrap_or(default_concurrency)
            .max(1),
        max_start_jitter: Duration::from_secs(
            args.max_start_jitter
                .or(file.max_start_jitter_seconds)
                .unwrap_or(0),
        ),
        metrics_urls,
        token: args.token.filter(|token| !token.trim().is_empty()),
        summary: args.summary,
        prune: file.prune,
    })
}

/// The score weights: the file's overrides on the documented defaults.
pub fn score_weights(file: &PruneFileConfig) -> ScoreWeights {
    let mut weights = ScoreWeights::default();
    for (kind, cost) in &file.kind_costs {
        weights.kind_costs.insert(kind.clone(), *cost);
    }
    if let Some(cost) = file.default_cost {
        weights.default_cost = cost;
    }
    if let Some(seconds) = file.idle_half_life_seconds {
        weights.idle_half_life = Duration::from_secs(seconds);
    }
    if let Some(seconds) = file.age_half_life_seconds {
        weights.age_half_life = Duration::from_secs(seconds);
    }
    weights
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args() -> TargetArgs {
        TargetArgs {
            url: "http://127.0.0.1:5000/".into(),
            config: None,
            components: vec![],
            versions: None,
            concurrency: None,
            max_start_jitter: None,
            metrics_urls: vec![],
            no_metrics: false,
            token: None,
            summary: SummaryFormat::Text,
        }
    }

    #[test]
    fn flags_and_file_combine() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("extensions.yaml");
        std::fs::write(
            &path,
            "components:\n  - name: acme.org/a\n    versions: 3\n  - name: acme.org/b\n    version: 1.0.0+x\n    ocm_repo_url: http://r/ocm\nconcurrency: 5\nmax_start_jitter_seconds: 7\nprune:\n  budget: 1MiB\n  kind_costs: {descriptor: 9}\n",
        )
        .unwrap();
        let mut with_file = args();
        with_file.config = Some(path);
        with_file.components = vec!["acme.org/c".into(), "acme.org/d:2.0.0".into()];
        with_file.versions = Some(2);
        with_file.concurrency = Some(3);
        let settings = resolve(with_file, 8).unwrap();
        assert_eq!(settings.url, "http://127.0.0.1:5000");
        assert_eq!(settings.metrics_urls, ["http://127.0.0.1:5000/metrics"]);
        assert_eq!(settings.concurrency, 3, "the flag wins");
        assert_eq!(settings.max_start_jitter, Duration::from_secs(7));
        let selections: Vec<_> = settings
            .targets
            .iter()
            .map(|target| (target.component_name.as_str(), target.versions.clone()))
            .collect();
        assert_eq!(
            selections,
            [
                ("acme.org/a", VersionSelection::Newest(3)),
                ("acme.org/b", VersionSelection::Exact("1.0.0+x".into())),
                ("acme.org/c", VersionSelection::Newest(2)),
                ("acme.org/d", VersionSelection::Exact("2.0.0".into())),
            ]
        );
        assert_eq!(
            settings.targets[1].ocm_repo_url.as_deref(),
            Some("http://r/ocm")
        );
        assert_eq!(settings.prune.budget, Some(ByteSize(1 << 20)));
        assert_eq!(score_weights(&settings.prune).kind_costs["descriptor"], 9.0);
        assert_eq!(
            score_weights(&settings.prune).kind_costs["dependencies"],
            16.0
        );
    }

    #[test]
    fn mistakes_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("extensions.yaml");
        std::fs::write(
            &path,
            "components:\n  - name: a\n    version: 1.0.0\n    versions: 2\n",
        )
        .unwrap();
        let mut both = args();
        both.config = Some(path.clone());
        assert!(resolve(both, 8).is_err());
        std::fs::write(&path, "component: []\n").unwrap();
        let mut unknown = args();
        unknown.config = Some(path);
        assert!(resolve(unknown, 8).is_err());
        let mut empty_version = args();
        empty_version.components = vec!["a:".into()];
        assert!(resolve(empty_version, 8).is_err());
        let mut no_metrics = args();
        no_metrics.no_metrics = true;
        assert!(resolve(no_metrics, 8).unwrap().metrics_urls.is_empty());
    }
}
