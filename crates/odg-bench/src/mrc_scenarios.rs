//! The miss-ratio-curve validation (`--only miss-ratio-curves`): two traces replayed, one request
//! at a time, through real pods at several memory bounds. The memory tier's curve (all kinds)
//! read from the first pod predicts the miss ratio at every bound (its model: the miniature
//! simulations of quick_cache; the LRU histogram's prediction is shown beside it); each pod's
//! own counters give the miss ratio measured at its bound. Traces: Zipf-distributed lookups of pinned versions, and
//! the same with scan bursts as `odg enumerate` makes them (every version of every component, once).

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Context;
use odg_cache::Curve;
use odg_components::{push_descriptor, with_repository_context};
use odg_oci::{RegistryClient, RegistryClientConfig};
use odg_ocm::{ComponentDescriptor, OcmRepositoryUrl};
use odg_test_support::prometheus::sum;
use odg_test_support::RegistryServer;

use crate::harness::{metric_sum, Pod};

const COMPONENTS: usize = 100;
const VERSIONS: usize = 5;
/// Label padding per descriptor: entries of a few KiB, so the bounds below cut into the working set.
const PADDING_BYTES: usize = 2048;
const ZIPF_SKEW: f64 = 0.9;
const TRACE_LENGTH: usize = 12_000;
/// A scan burst (all versions of all components) after this many Zipf lookups.
const SCAN_EVERY: usize = 3_000;
const BOUNDS_MIB: [u64; 4] = [1, 2, 3, 5];

fn name(component: usize) -> String {
    format!("mrc.example.org/component-{component:04}")
}

fn version(version: usize) -> String {
    format!("1.{version}.0")
}

fn descriptor(component: usize, version_index: usize) -> anyhow::Result<ComponentDescriptor> {
    let padding = "x".repeat(PADDING_BYTES);
    Ok(serde_json::from_value(serde_json::json!({
        "meta": {"schemaVersion": "v2"},
        "component": {"name": name(component), "version": version(version_index), "provider": "bench",
                      "repositoryContexts": [], "sources": [], "resources": [], "componentReferences": [],
                      "labels": [{"name": "padding", "value": padding}]},
    }))?)
}

fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E3779B97F4A7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58476D1CE4E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D049BB133111EB);
    x ^ (x >> 31)
}

/// `(component, version)` per request. Zipf ranks are shuffled over the pairs (fixed seed).
fn zipf_trace(scans: bool) -> Vec<(usize, usize)> {
    let pairs = COMPONENTS * VERSIONS;
    let mut order: Vec<usize> = (0..pairs).collect();
    order.sort_by_key(|pair| splitmix(*pair as u64 ^ 0x5eed));
    let mut cumulative = Vec::with_capacity(pairs);
    let mut total = 0.0;
    for rank in 1..=pairs {
        total += 1.0 / (rank as f64).powf(ZIPF_SKEW);
        cumulative.push(total);
    }
    let mut state = 42u64;
    let mut trace = Vec::new();
    for position in 0..TRACE_LENGTH {
        state = splitmix(state);
        let draw = (state >> 11) as f64 / (1u64 << 53) as f64 * total;
        let rank = cumulative.partition_point(|c| *c < draw).min(pairs - 1);
        let pair = order[rank];
        trace.push((pair / VERSIONS, pair % VERSIONS));
        if scans && position % SCAN_EVERY == SCAN_EVERY - 1 {
            for component in 0..COMPONENTS {
                for version_index in 0..VERSIONS {
                    trace.push((component, version_index));
                }
            }
        }
    }
    trace
}

struct Measured {
    bound_mib: u64,
    measured_miss: f64,
    /// The memory tier's lookups (every kind): they depend on the bound, since a rendered
    /// answer's miss looks up its descriptor.
    lookups: f64,
    curve: Curve,
}

async fn replay(
    client: &reqwest::Client,
    repository: &str,
    bound_mib: u64,
    trace: &[(usize, usize)],
) -> anyhow::Result<Measured> {
    let pod = Pod::start(&[
        "--ocm-repo".into(),
        repository.into(),
        "--memory-cache-bytes".into(),
        format!("{bound_mib}MiB"),
        "--disk-cache-bytes".into(),
        "0".into(),
    ])
    .await?;
    for (component, version_index) in trace {
        let url = format!(
            "{}/ocm/component?component_name={}&version={}",
            pod.url,
            name(*component),
            version(*version_index)
        );
        let status = client.get(&url).send().await?.status();
        anyhow::ensure!(status.is_success(), "{url}: {status}");
    }
    let metrics = pod.metrics_text(client).await?;
    let family = "odg_cache_lookups_total";
    let memory = "tier=\"memory\"";
    let all = metric_sum(&metrics, family, Some(memory));
    let misses = sum(&metrics, family, &[memory, "result=\"miss\""])
        + sum(&metrics, family, &[memory, "result=\"invalid\""]);
    let report: serde_json::Value = client
        .get(format!("{}/cache/miss-ratio-curves", pod.url))
        .send()
        .await?
        .json()
        .await?;
    let curve: Curve = serde_json::from_value(report["tiers"][0]["kinds"][0]["curve"].clone())
        .context("the memory tier's curve over all kinds")?;
    pod.stop();
    Ok(Measured {
        bound_mib,
        measured_miss: if all > 0.0 { misses / all } else { 0.0 },
        lookups: all,
        curve,
    })
}

pub struct TraceResult {
    pub name: &'static str,
    /// (bound MiB, predicted, predicted by the LRU histogram, measured, the pod's memory lookups)
    pub rows: Vec<(u64, f64, f64, f64, f64)>,
    pub curve: Curve,
    pub largest_error: f64,
}

pub async fn run(client: &reqwest::Client, out_dir: &Path) -> anyhow::Result<String> {
    let registry = RegistryServer::start().await;
    let repository: OcmRepositoryUrl = format!("http://{}/mrc", registry.host()).parse()?;
    let registry_client = RegistryClient::new(RegistryClientConfig::default())?;
    let store = registry_client.endpoint(true, &repository.host);
    eprintln!("seeding {} descriptors", COMPONENTS * VERSIONS);
    for component in 0..COMPONENTS {
        for version_index in 0..VERSIONS {
            let descriptor =
                with_repository_context(descriptor(component, version_index)?, &repository);
            push_descriptor(&store, &repository, &descriptor)
                .await
                .context("seeding")?;
        }
    }
    let repository_arg = format!("http://{}/mrc", registry.host());
    let mut results = Vec::new();
    for (trace_name, scans) in [("zipf", false), ("zipf with scan bursts", true)] {
        let trace = zipf_trace(scans);
        eprintln!("trace {trace_name}: {} requests", trace.len());
        let mut measured = Vec::new();
        for bound in BOUNDS_MIB {
            measured.push(replay(client, &repository_arg, bound, &trace).await?);
        }
        // the curve of the pod at the first bound predicts all the others
        let curve = measured[0].curve.clone();
        let rows: Vec<(u64, f64, f64, f64, f64)> = measured
            .iter()
            .map(|m| {
                let bytes = (m.bound_mib << 20) as f64;
                let predicted = curve.miss_ratio_at(bytes).unwrap_or(f64::NAN);
                let lru = curve.lru_miss_ratio_at(bytes).unwrap_or(f64::NAN);
                (m.bound_mib, predicted, lru, m.measured_miss, m.lookups)
            })
            .collect();
        let largest_error = rows
            .iter()
            .skip(1)
            .map(|(_, predicted, _, measured, _)| (predicted - measured).abs())
            .fold(0.0, f64::max);
        results.push(TraceResult {
            name: trace_name,
            rows,
            curve,
            largest_error,
        });
    }
    let markdown = markdown(&results);
    std::fs::write(out_dir.join("miss-ratio-curves.md"), &markdown)?;
    std::fs::write(out_dir.join("miss-ratio-curves.svg"), svg(&results))?;
    Ok(markdown)
}

fn markdown(results: &[TraceResult]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "### miss-ratio-curves\n\n{COMPONENTS} components x {VERSIONS} versions (descriptors padded by {PADDING_BYTES} bytes), `GET /ocm/component` one request at a time; Zipf({ZIPF_SKEW}) over the {} pinned versions, {TRACE_LENGTH} lookups; the scan trace adds a burst of every version of every component after every {SCAN_EVERY} lookups. A fresh pod per memory bound (disk tier off). Predicted: the memory tier's curve (all kinds) read from the pod at {} MiB; measured: each pod's `odg_cache_lookups_total{{tier=\"memory\"}}` (miss and invalid out of all).\n",
        COMPONENTS * VERSIONS,
        BOUNDS_MIB[0]
    );
    for result in results {
        let _ = writeln!(
            out,
            "| {} | predicted miss ratio ({}) | measured miss ratio | difference (points) | LRU model (old) | LRU difference | memory lookups of the pod |\n|---|---|---|---|---|---|---|",
            result.name,
            result.curve.model()
        );
        for (bound, predicted, lru, measured, lookups) in &result.rows {
            let _ = writeln!(
                out,
                "| {bound} MiB | {:.1} % | {:.1} % | {:+.1} | {:.1} % | {:+.1} | {lookups:.0} |",
                predicted * 100.0,
                measured * 100.0,
                (predicted - measured) * 100.0,
                lru * 100.0,
                (lru - measured) * 100.0
            );
        }
        let _ = writeln!(
            out,
            "\nLargest difference at the other bounds: {:.1} points; sampled lookups {} of {:.0} (rate {:.3}), working set {:.1} MiB.\n",
            result.largest_error * 100.0,
            result.curve.sampled_references,
            result.curve.references,
            result.curve.sampling_rate,
            result.curve.working_set_bytes / (1 << 20) as f64
        );
    }
    let _ = writeln!(out, "![miss-ratio-curves](miss-ratio-curves.svg)\n");
    out
}

/// Predicted curves (lines) and measured miss ratios (dots) over the memory bound in MiB.
fn svg(results: &[TraceResult]) -> String {
    let (width, height, left, bottom, top, right) = (760.0, 360.0, 60.0, 310.0, 40.0, 740.0);
    let max_mib = 8.0;
    let x = |mib: f64| left + mib.min(max_mib) / max_mib * (right - left);
    let y = |ratio: f64| bottom - ratio * (bottom - top);
    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="11"><text x="{left}" y="20" font-size="14">memory tier miss ratio over its bound (MiB): predicted (line) and measured (dots)</text>"#
    );
    let _ = write!(
        svg,
        r#"<line x1="{left}" y1="{bottom}" x2="{right}" y2="{bottom}" stroke="black"/><line x1="{left}" y1="{top}" x2="{left}" y2="{bottom}" stroke="black"/><text x="5" y="{top}">100 %</text><text x="5" y="{bottom}">0 %</text><text x="{}" y="{}">{max_mib} MiB</text>"#,
        right - 40.0,
        bottom + 15.0
    );
    let colors = ["#4c78a8", "#e45756"];
    for (index, result) in results.iter().enumerate() {
        let color = colors[index % colors.len()];
        let points: Vec<String> = (1..=160)
            .filter_map(|step| {
                let mib = step as f64 * max_mib / 160.0;
                let ratio = result.curve.miss_ratio_at(mib * (1 << 20) as f64)?;
                Some(format!("{:.1},{:.1}", x(mib), y(ratio)))
            })
            .collect();
        let _ = write!(
            svg,
            r#"<polyline fill="none" stroke="{color}" stroke-width="1.5" points="{}"/>"#,
            points.join(" ")
        );
        for (bound, _, _, measured, _) in &result.rows {
            let _ = write!(
                svg,
                r#"<circle cx="{:.1}" cy="{:.1}" r="4" fill="{color}"/>"#,
                x(*bound as f64),
                y(*measured)
            );
        }
        let _ = write!(
            svg,
            r#"<text x="{}" y="{}" fill="{color}">{}</text>"#,
            right - 200.0,
            top + 14.0 * (index as f64 + 1.0),
            result.name
        );
    }
    svg.push_str("</svg>");
    svg
}
