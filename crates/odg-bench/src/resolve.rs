//! Dependency resolution of a wide and deep tree behind a registry with injected latency.
//!
//! The parallel walk should take about (depth + 1) x (requests per descriptor) x latency; the
//! sequential baseline (one fetch at a time, as the original walks) about components x requests x latency.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use odg_components::{
    push_descriptor, with_repository_context, ComponentId, ComponentService,
    ComponentServiceConfig, OciComponentSource, OciSourceLimits, RepositoryStores, WalkOptions,
};
use odg_oci::{RegistryClient, RegistryClientConfig};
use odg_ocm::{ComponentSelector, OcmRepositoryUrl, RepositoryMapping, RepositoryRule};
use odg_test_support::{DelayProxy, RegistryServer};
use serde::Serialize;

/// Registry requests per descriptor on the read path: manifest, then the descriptor layer (the
/// config blob is skipped when the only layer is the descriptor layer, as here).
const REQUESTS_PER_DESCRIPTOR: u32 = 2;

#[derive(Debug, clap::Args)]
pub struct ResolveArgs {
    /// Distinct components in the tree, root included.
    #[arg(long, default_value_t = 300)]
    components: usize,
    /// Levels below the root.
    #[arg(long, default_value_t = 6)]
    depth: usize,
    /// References from each component to the next level.
    #[arg(long, default_value_t = 2)]
    fan_out: usize,
    /// Latency the proxy adds to every registry request.
    #[arg(long, default_value_t = 20)]
    latency_ms: u64,
    /// Fetches in flight for the parallel walk.
    #[arg(long, default_value_t = 64)]
    walk_concurrency: usize,
    /// Registry requests in flight per host (the client's bound).
    #[arg(long, default_value_t = 64)]
    per_host_concurrency: usize,
    /// Repetitions per mode; the median is reported.
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Also write the figures as JSON here.
    #[arg(long)]
    json: Option<std::path::PathBuf>,
}

#[derive(Debug, Serialize)]
struct ModeResult {
    mode: String,
    walk_concurrency: usize,
    per_host_concurrency: usize,
    median_ms: f64,
    min_ms: f64,
    max_ms: f64,
    registry_requests_per_run: usize,
    elements: usize,
}

pub async fn run(args: ResolveArgs) -> anyhow::Result<()> {
    let registry = RegistryServer::start().await;
    let tree = odg_demo::benchmark_tree(args.components, args.depth, args.fan_out);
    let direct: OcmRepositoryUrl = format!("http://{}/bench", registry.host()).parse()?;
    let seeding_client = RegistryClient::new(RegistryClientConfig::default())?;
    let store = seeding_client.endpoint(true, &direct.host);
    eprintln!(
        "seeding {} descriptors into {}",
        tree.descriptors.len(),
        direct
    );
    for descriptor in &tree.descriptors {
        let descriptor = with_repository_context(descriptor.clone(), &direct);
        push_descriptor(&store, &direct, &descriptor)
            .await
            .with_context(|| format!("seeding {}", descriptor.component.name))?;
    }

    let latency = Duration::from_millis(args.latency_ms);
    let proxy = DelayProxy::start(&registry.host(), latency).await;
    let behind_proxy: OcmRepositoryUrl = format!("http://{}/bench", proxy.host()).parse()?;
    let root = ComponentId::new(&tree.root_name, &tree.root_version);

    let modes = [
        (
            "parallel walk",
            args.walk_concurrency,
            args.per_host_concurrency,
        ),
        (
            "parallel walk, default per-host bound",
            args.walk_concurrency,
            RegistryClientConfig::default().max_concurrent_requests_per_host,
        ),
        (
            "parallel walk, per-host bound of the Python client",
            args.walk_concurrency,
            8,
        ),
        ("sequential baseline (one fetch at a time)", 1, 1),
    ];
    let mut results = Vec::new();
    for (mode, walk_concurrency, per_host) in modes {
        let mut timings = Vec::new();
        let mut requests = 0;
        let mut elements = 0;
        for _ in 0..args.runs {
            let service = service_over(&behind_proxy, walk_concurrency, per_host)?;
            proxy.counters().reset();
            let started = Instant::now();
            let nodes = service
                .dependencies(&root, None, service.walk_options())
                .await
                .context("resolving the benchmark tree")?;
            timings.push(started.elapsed());
            requests = proxy.counters().total();
            elements = nodes.len();
        }
        timings.sort();
        let ms = |duration: Duration| duration.as_secs_f64() * 1000.0;
        results.push(ModeResult {
            mode: mode.to_string(),
            walk_concurrency,
            per_host_concurrency: per_host,
            median_ms: ms(timings[timings.len() / 2]),
            min_ms: ms(timings[0]),
            max_ms: ms(timings[timings.len() - 1]),
            registry_requests_per_run: requests,
            elements,
        });
    }

    let depth_bound = (args.depth as u32 + 1) * REQUESTS_PER_DESCRIPTOR * latency;
    let size_bound = args.components as u32 * REQUESTS_PER_DESCRIPTOR * latency;
    println!(
        "## Dependency resolution: {} components, depth {}, fan-out {}, {} ms per registry request\n",
        args.components, args.depth, args.fan_out, args.latency_ms
    );
    println!(
        "Reference points: depth x requests x latency = {:.0} ms; components x requests x latency = {:.0} ms.\n",
        depth_bound.as_secs_f64() * 1000.0,
        size_bound.as_secs_f64() * 1000.0
    );
    println!("| mode | walk concurrency | per-host bound | median ms | min ms | max ms | registry requests | answer elements |");
    println!("|---|---|---|---|---|---|---|---|");
    for result in &results {
        println!(
            "| {} | {} | {} | {:.0} | {:.0} | {:.0} | {} | {} |",
            result.mode,
            result.walk_concurrency,
            result.per_host_concurrency,
            result.median_ms,
            result.min_ms,
            result.max_ms,
            result.registry_requests_per_run,
            result.elements
        );
    }
    if let Some(path) = args.json {
        let document = serde_json::json!({
            "scenario": "resolve",
            "components": args.components,
            "depth": args.depth,
            "fan_out": args.fan_out,
            "latency_ms": args.latency_ms,
            "results": results,
        });
        std::fs::write(&path, serde_json::to_vec_pretty(&document)?)?;
    }
    Ok(())
}

fn service_over(
    repository: &OcmRepositoryUrl,
    walk_concurrency: usize,
    per_host: usize,
) -> anyhow::Result<ComponentService> {
    let client = RegistryClient::new(RegistryClientConfig {
        max_concurrent_requests_per_host: per_host,
        credentials: HashMap::new(),
        ..RegistryClientConfig::default()
    })?;
    let source = OciComponentSource::new(
        Arc::new(RepositoryStores::new(client)),
        OciSourceLimits::default(),
    );
    Ok(ComponentService::new(
        ComponentServiceConfig {
            mapping: RepositoryMapping::new(vec![RepositoryRule {
                repository: repository.clone(),
                selector: ComponentSelector::All,
                version_filter: None,
                labels: Vec::new(),
            }]),
            allowed_hosts: vec![],
            walk: WalkOptions {
                concurrency: walk_concurrency,
                ..WalkOptions::default()
            },
        },
        Arc::new(source),
    ))
}
