//! Compliance summary of a wide, deep tree (300 components by default) over 50,000 metadata rows
//! in the delivery DB (SQLite by default, or `--database-url postgres://...`): cold (every
//! (component, finding type) part computed from the database; the tree itself cached) vs. cached
//! (every part from the memory tier), p50/p99.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use odg_cache::{CacheConfig, CacheMode, TieredCache};
use odg_compliance::{ComplianceService, FindingConfigs};
use odg_components::{
    push_descriptor, with_repository_context, ComponentId, ComponentService,
    ComponentServiceConfig, OciComponentSource, OciSourceLimits, RepositoryStores, WalkOptions,
};
use odg_delivery_db::{prepare_entries, DatabaseConfig, DeliveryDb, DiscoveryDateReuse};
use odg_oci::{CtfDirectory, RegistryClient, RegistryClientConfig};
use odg_ocm::{ComponentSelector, OcmRepositoryUrl, RepositoryMapping, RepositoryRule};
use serde_json::{json, Value};

#[derive(Debug, clap::Args)]
pub struct ComplianceArgs {
    /// Distinct components in the tree, root included.
    #[arg(long, default_value_t = 300)]
    components: usize,
    /// Metadata rows written before measuring.
    #[arg(long, default_value_t = 50_000)]
    rows: usize,
    /// Delivery DB (default: an SQLite file in a temp dir).
    #[arg(long)]
    database_url: Option<String>,
    #[arg(long, default_value_t = 10)]
    cold_runs: usize,
    #[arg(long, default_value_t = 200)]
    cached_runs: usize,
}

const SEVERITIES: [&str; 5] = ["NONE", "LOW", "MEDIUM", "HIGH", "CRITICAL"];

fn percentile(samples: &mut [Duration], p: usize) -> Duration {
    samples.sort();
    samples[(samples.len() - 1) * p / 100]
}

pub async fn run(args: ComplianceArgs) -> anyhow::Result<()> {
    let directory = tempfile::tempdir()?;
    let tree = odg_demo::benchmark_tree(args.components, 6, 2);
    let repository: OcmRepositoryUrl = "bench.odg.invalid/ocm".parse().expect("a repository URL");
    let store = CtfDirectory::create_or_open(&directory.path().join("ctf")).await?;
    for descriptor in &tree.descriptors {
        let descriptor = with_repository_context(descriptor.clone(), &repository);
        push_descriptor(&store, &repository, &descriptor).await?;
    }
    let stores = RepositoryStores::new(RegistryClient::new(RegistryClientConfig::default())?)
        .with_local_host(repository.host.clone(), Arc::new(store));
    let mut policies = odg_components::default_policies();
    policies.extend(odg_compliance::default_policies());
    let cache = TieredCache::new(CacheConfig {
        memory_bytes: 512 << 20,
        policies,
        ..CacheConfig::default()
    })
    .await?;
    let components = ComponentService::new(
        ComponentServiceConfig {
            mapping: RepositoryMapping::new(vec![RepositoryRule {
                repository,
                selector: ComponentSelector::All,
                version_filter: None,
                labels: Vec::new(),
            }]),
            allowed_hosts: vec![],
            walk: WalkOptions::default(),
        },
        Arc::new(OciComponentSource::new(
            Arc::new(stores),
            OciSourceLimits::default(),
        )),
    )
    .with_cache(cache);
    let config = match &args.database_url {
        Some(url) => DatabaseConfig::new(url.clone()),
        None => DatabaseConfig::sqlite_file(&directory.path().join("delivery.sqlite")),
    };
    let db = DeliveryDb::connect(&config)
        .await
        .context("opening the delivery DB")?;

    // Rows: per component a BDBA and a ClamAV scan info of its resource, the rest vulnerability
    // findings spread evenly (version-less, as BDBA writes them), severities cycling.
    let started = Instant::now();
    let mut entries: Vec<Value> = Vec::with_capacity(args.rows);
    let with_resources: Vec<_> = tree
        .descriptors
        .iter()
        .filter(|descriptor| !descriptor.component.resources.is_empty())
        .collect();
    let count = with_resources.len();
    for (index, descriptor) in with_resources.into_iter().enumerate() {
        let component = &descriptor.component;
        let resource = &component.resources[0];
        let artefact = json!({"artefact_name": resource.name, "artefact_version": resource.version,
                              "artefact_type": resource.artefact_type, "artefact_extra_id": {}});
        for source in ["bdba", "clamav"] {
            entries.push(json!({"artefact": {"component_name": component.name, "component_version": component.version,
                "artefact_kind": "resource", "artefact": artefact}, "meta": {"datasource": source, "type": "meta/artefact_scan_info"}, "data": {}}));
        }
        let findings = (args.rows.saturating_sub(2 * count)) / count
            + usize::from(index < args.rows.saturating_sub(2 * count) % count);
        for finding in 0..findings {
            entries.push(json!({"artefact": {"component_name": component.name, "component_version": null,
                "artefact_kind": "resource", "artefact": artefact},
                "meta": {"datasource": "bdba", "type": "finding/vulnerability"},
                "data": {"severity": SEVERITIES[(index + finding) % SEVERITIES.len()], "package_name": format!("package-{}", finding % 97),
                         "package_version": "1.0.0", "base_url": "https://bdba", "report_url": "https://bdba/1", "product_id": 1,
                         "group_id": 1, "cve": format!("CVE-2025-{finding:05}"), "cvss_v3_score": 5.5, "cvss": {}, "summary": null}}));
        }
    }
    let reuse = |_: &str| DiscoveryDateReuse::default();
    for chunk in entries.chunks(1000) {
        db.put(&prepare_entries(chunk)?, &reuse).await?;
    }
    let written = entries.len();
    eprintln!("wrote {written} rows in {:?}", started.elapsed());

    let compliance = ComplianceService::new(db.clone(), components, FindingConfigs::defaults());
    let root = ComponentId::new(tree.root_name.clone(), tree.root_version.clone());
    let summary = |mode| {
        let (compliance, root) = (compliance.clone(), root.clone());
        async move {
            let started = Instant::now();
            let answer = compliance.summary(&root, None, None, None, mode).await?;
            Ok::<_, anyhow::Error>((started.elapsed(), answer))
        }
    };
    // Warm the tree (descriptors and shape) once; it is not what this measures.
    let (_, answer) = summary(CacheMode::Refresh).await?;
    let tree_components = answer["complianceSummary"].as_array().map_or(0, Vec::len);
    let mut cold = Vec::new();
    for _ in 0..args.cold_runs {
        cold.push(summary(CacheMode::Refresh).await?.0);
    }
    let mut cached = Vec::new();
    for _ in 0..args.cached_runs {
        cached.push(summary(CacheMode::Normal).await?.0);
    }
    let report = json!({
        "backend": db.backend().as_str(),
        "distinct_components": tree.descriptors.len(),
        "tree_elements": tree_components,
        "rows": written,
        "cold_runs": cold.len(),
        "cold_p50_ms": percentile(&mut cold, 50).as_secs_f64() * 1000.0,
        "cold_p99_ms": percentile(&mut cold, 99).as_secs_f64() * 1000.0,
        "cached_runs": cached.len(),
        "cached_p50_ms": percentile(&mut cached, 50).as_secs_f64() * 1000.0,
        "cached_p99_ms": percentile(&mut cached, 99).as_secs_f64() * 1000.0,
    });
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}
