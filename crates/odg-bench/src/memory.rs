//! The memory scenario: resident memory of a real `odg serve` process against its memory bound
//! when descriptors carry large scalars (issue 9, row 9), while loaded and after an idle spell,
//! for the allocator settings the binary uses now beside the ones it used before.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use futures::StreamExt as _;
use odg_components::{push_descriptor, with_repository_context};
use odg_oci::{RegistryClient, RegistryClientConfig};
use odg_ocm::{ComponentDescriptor, OcmRepositoryUrl};
use odg_test_support::RegistryServer;
use serde::Serialize;

use crate::harness::{ensure_directory, metric_sum, proc_number, Pod};
use crate::load::{closed_loop, Summary};
use crate::report::publish_summary;

const MIB: u64 = 1024 * 1024;

#[derive(Debug, clap::Args)]
pub struct MemoryArgs {
    /// Where the report (markdown and JSON) goes.
    #[arg(long, default_value = "bench-results")]
    out_dir: PathBuf,
    /// Component versions seeded and read.
    #[arg(long, default_value_t = 400)]
    descriptors: usize,
    /// Resources per descriptor, each with one large label value.
    #[arg(long, default_value_t = 6)]
    resources: usize,
    /// Size of each resource's label value, KiB.
    #[arg(long, default_value_t = 100)]
    label_kib: usize,
    /// Concurrent closed-loop clients.
    #[arg(long, default_value_t = 8)]
    clients: usize,
    /// Passes over all descriptors.
    #[arg(long, default_value_t = 3)]
    passes: usize,
    /// The pod's memory tier bound, MiB.
    #[arg(long, default_value_t = 24)]
    memory_cache_mib: u64,
    /// The pod's disk tier bound, MiB.
    #[arg(long, default_value_t = 64)]
    disk_cache_mib: u64,
    /// Idle seconds after the load before the idle RSS is read.
    #[arg(long, default_value_t = 10)]
    idle_seconds: u64,
    /// Only these allocator modes (comma-separated): bounded, mimalloc-defaults.
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
}

/// The figures of one mode.
#[derive(Debug, Serialize)]
struct MemoryFigures {
    mode: String,
    /// RSS once ready, before any request.
    started_rss_mib: f64,
    /// Highest RSS sampled every 10 ms during the load, and the kernel's high-water mark.
    peak_rss_mib: f64,
    vm_hwm_mib: f64,
    /// Highest `AnonHugePages` sampled (transparent huge pages backing the heap).
    peak_anon_huge_pages_mib: f64,
    /// RSS when the last answer arrived, and after `idle_seconds` without requests.
    rss_after_load_mib: f64,
    rss_after_idle_mib: f64,
    /// Most threads sampled during the load, and threads after the idle spell (each blocking
    /// thread keeps its stack and allocator pages until it exits).
    peak_threads: u64,
    threads_after_idle: u64,
    /// The memory tier's own gauge after the idle spell, and its bound.
    memory_tier_mib: f64,
    bound_mib: f64,
    load: Summary,
}

pub async fn run(args: MemoryArgs) -> anyhow::Result<()> {
    ensure_directory(&args.out_dir)?;
    let registry = RegistryServer::start().await;
    let repository: OcmRepositoryUrl = format!("http://{}/memory", registry.host()).parse()?;
    eprintln!(
        "seeding {} descriptors of {} resources with {} KiB label values",
        args.descriptors, args.resources, args.label_kib
    );
    let names = seed(&repository, &args).await?;
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .build()?;
    let wanted = |name: &str| args.only.is_empty() || args.only.iter().any(|only| only == name);
    let mut modes = Vec::new();
    // `mimalloc-defaults` is the allocator as it was before issue 9 (transparent huge pages
    // allowed, purging delayed until the allocator is next called): the baseline.
    for (mode, allocator) in [
        ("bounded (default)", "bounded"),
        ("mimalloc-defaults (before)", "mimalloc-defaults"),
    ] {
        if !wanted(allocator) {
            continue;
        }
        eprintln!("mode {mode}");
        let pod_args: Vec<String> = vec![
            "--ocm-repo".into(),
            repository.to_string(),
            "--memory-cache-bytes".into(),
            format!("{}MiB", args.memory_cache_mib),
            "--disk-cache-bytes".into(),
            format!("{}MiB", args.disk_cache_mib),
            "--allocator-mode".into(),
            allocator.into(),
        ];
        let pod = Pod::start(&pod_args).await?;
        let figures = measure(&client, &pod, &names, &args, mode).await?;
        pod.stop();
        modes.push(figures);
    }
    let markdown = report_markdown(&args, &modes);
    publish_summary(&args.out_dir, "memory", &markdown, &modes)
}

/// Pushes the descriptors; returns their component names.
async fn seed(repository: &OcmRepositoryUrl, args: &MemoryArgs) -> anyhow::Result<Vec<String>> {
    let client = RegistryClient::new(RegistryClientConfig::default())?;
    let store = Arc::new(client.endpoint(true, &repository.host));
    let names: Vec<String> = (0..args.descriptors)
        .map(|index| format!("acme.org/memory/large-{index:04}"))
        .collect();
    let mut pushes =
        futures::stream::iter(names.clone().into_iter().enumerate().map(|(index, name)| {
            let descriptor = large_descriptor(&name, index, args.resources, args.label_kib * 1024);
            let (store, repository) = (store.clone(), repository.clone());
            async move {
                let descriptor = with_repository_context(descriptor?, &repository);
                push_descriptor(store.as_ref(), &repository, &descriptor)
                    .await
                    .context("seeding")
            }
        }))
        .buffer_unordered(8);
    while let Some(pushed) = pushes.next().await {
        pushed?;
    }
    Ok(names)
}

/// A descriptor whose resources each carry one label with a `label_bytes` string value (text
/// that differs per descriptor and resource, like the build logs or SBOM excerpts found in the wild).
fn large_descriptor(
    name: &str,
    index: usize,
    resources: usize,
    label_bytes: usize,
) -> anyhow::Result<ComponentDescriptor> {
    let resources: Vec<serde_json::Value> = (0..resources)
        .map(|resource| {
            let seed = format!("{index:04}-{resource:02} lorem ipsum dolor sit amet ");
            let value: String = seed.chars().cycle().take(label_bytes).collect();
            serde_json::json!({
                "name": format!("resource-{resource:02}"),
                "version": "1.0.0",
                "type": "ociImage",
                "relation": "external",
                "access": {"type": "ociRegistry", "imageReference": format!("registry.acme.org/{index}/{resource}:1.0.0")},
                "labels": [{"name": "acme.org/build-log", "value": value}],
            })
        })
        .collect();
    Ok(serde_json::from_value(serde_json::json!({
        "meta": {"schemaVersion": "v2"},
        "component": {
            "name": name,
            "version": "1.0.0",
            "provider": "acme",
            "repositoryContexts": [],
            "sources": [],
            "resources": resources,
            "componentReferences": [],
            "labels": [],
        }
    }))?)
}

async fn measure(
    client: &reqwest::Client,
    pod: &Pod,
    names: &[String],
    args: &MemoryArgs,
    mode: &str,
) -> anyhow::Result<MemoryFigures> {
    let pid = pod.pid;
    let started_rss = proc_number(pid, "status", "VmRSS:") * 1024;
    let peak_rss = Arc::new(AtomicU64::new(started_rss));
    let peak_huge = Arc::new(AtomicU64::new(0));
    let peak_threads = Arc::new(AtomicU64::new(0));
    let sampling = Arc::new(AtomicBool::new(true));
    let sampler = {
        let (peak_rss, peak_huge, peak_threads, sampling) = (
            peak_rss.clone(),
            peak_huge.clone(),
            peak_threads.clone(),
            sampling.clone(),
        );
        tokio::spawn(async move {
            let mut round = 0u64;
            while sampling.load(Ordering::Relaxed) {
                peak_rss.fetch_max(
                    proc_number(pid, "status", "VmRSS:") * 1024,
                    Ordering::Relaxed,
                );
                peak_threads.fetch_max(proc_number(pid, "status", "Threads:"), Ordering::Relaxed);
                // smaps_rollup walks every mapping: read it less often.
                if round % 10 == 0 {
                    let huge = proc_number(pid, "smaps_rollup", "AnonHugePages:") * 1024;
                    peak_huge.fetch_max(huge, Ordering::Relaxed);
                }
                round += 1;
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
    };
    let urls: Arc<Vec<String>> = Arc::new(
        names
            .iter()
            .map(|name| {
                format!(
                    "{}/ocm/component?component_name={name}&version=1.0.0",
                    pod.url
                )
            })
            .collect(),
    );
    let (samples, elapsed) = closed_loop(
        client,
        urls,
        args.clients,
        Duration::from_secs(3600),
        args.passes,
    )
    .await;
    let rss_after_load = proc_number(pid, "status", "VmRSS:") * 1024;
    let idle_started = Instant::now();
    while idle_started.elapsed() < Duration::from_secs(args.idle_seconds) {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let rss_after_idle = proc_number(pid, "status", "VmRSS:") * 1024;
    let threads_after_idle = proc_number(pid, "status", "Threads:");
    sampling.store(false, Ordering::Relaxed);
    sampler.await?;
    let metrics = pod.metrics_text(client).await?;
    let memory_tier = metric_sum(&metrics, "odg_cache_bytes", Some("tier=\"memory\""));
    let mib = |bytes: u64| bytes as f64 / MIB as f64;
    Ok(MemoryFigures {
        mode: mode.to_owned(),
        started_rss_mib: mib(started_rss),
        peak_rss_mib: mib(peak_rss.load(Ordering::Relaxed)),
        vm_hwm_mib: mib(pod.peak_rss_bytes()),
        peak_anon_huge_pages_mib: mib(peak_huge.load(Ordering::Relaxed)),
        rss_after_load_mib: mib(rss_after_load),
        rss_after_idle_mib: mib(rss_after_idle),
        peak_threads: peak_threads.load(Ordering::Relaxed),
        threads_after_idle,
        memory_tier_mib: memory_tier / MIB as f64,
        bound_mib: args.memory_cache_mib as f64,
        load: Summary::of(mode, &samples, elapsed, 0, pod.peak_rss_bytes()),
    })
}

fn report_markdown(args: &MemoryArgs, modes: &[MemoryFigures]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "### memory\n\n`GET /ocm/component` of {} descriptors ({} resources with {} KiB label \
         values each), {} passes by {} closed-loop clients, then {} s idle; \
         `--memory-cache-bytes {}MiB --disk-cache-bytes {}MiB`. Goal: peak RSS <= bound + 64 MiB \
         = {} MiB, RSS after idle <= bound + 48 MiB = {} MiB.\n",
        args.descriptors,
        args.resources,
        args.label_kib,
        args.passes,
        args.clients,
        args.idle_seconds,
        args.memory_cache_mib,
        args.disk_cache_mib,
        args.memory_cache_mib + 64,
        args.memory_cache_mib + 48,
    );
    let _ = writeln!(
        out,
        "| allocator | RSS at start MiB | peak RSS MiB | VmHWM MiB | peak AnonHugePages MiB | RSS after load MiB | RSS after {} s idle MiB | threads peak / idle | memory tier MiB | requests | errors | throughput/s | p50 ms | p99 ms |",
        args.idle_seconds
    );
    let _ = writeln!(
        out,
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
    );
    for figures in modes {
        let _ = writeln!(
            out,
            "| {} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} | {} / {} | {:.1} of {:.0} | {} | {} | {:.1} | {:.2} | {:.2} |",
            figures.mode,
            figures.started_rss_mib,
            figures.peak_rss_mib,
            figures.vm_hwm_mib,
            figures.peak_anon_huge_pages_mib,
            figures.rss_after_load_mib,
            figures.rss_after_idle_mib,
            figures.peak_threads,
            figures.threads_after_idle,
            figures.memory_tier_mib,
            figures.bound_mib,
            figures.load.requests,
            figures.load.errors + figures.load.shed,
            figures.load.throughput_per_second,
            figures.load.p50_ms,
            figures.load.p99_ms,
        );
    }
    out
}
