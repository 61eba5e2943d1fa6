//! The `profiles` scenario: where the CPU goes, per route, warm and cold (issue 10, item 4).
//!
//! Each case runs one pod with its admin listener's profiler on (`--admin-profiling`), puts it
//! under closed-loop load, and records a CPU profile of the pod while the load runs. Written per
//! case: the folded stacks, a flame graph (SVG), and a breakdown of the samples by what the code
//! was doing, beside the pod's user and system CPU time per answer and the answers' latency: a
//! route whose latency is far above its CPU time per answer waits on I/O (the registry, the
//! database), one whose latency is its CPU time is CPU-bound.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;

use crate::ceiling::cpu_split;
use crate::harness::{free_port, Pod};
use crate::load::{closed_loop, Summary};

/// One route in one state.
pub struct ProfileCase {
    pub name: &'static str,
    pub what: String,
    pub urls: Vec<String>,
    pub pod_args: Vec<String>,
    /// Requests before the profile starts (fills the caches of a warm case).
    pub warm_up_passes: usize,
}

/// What samples were spent on: the innermost frame of a stack that belongs to a category decides
/// (frames of no category, such as generic futures or `core::fmt`, pass the sample to their
/// caller). Outer frames (the runtime, hyper's dispatch) are on every stack, so matching the
/// innermost one is what tells rendering from routing from the allocator.
const CATEGORIES: &[(&str, &[&str])] = &[
    (
        "compressing answers",
        &[
            "brotli::enc",
            "zstd::stream::write",
            "flate2::zio::Writer",
            "miniz_oxide::deflate",
        ],
    ),
    (
        "decoding descriptors (YAML, tar, gzip)",
        &[
            "odg_ocm::decode",
            "serde_yaml",
            "unsafe_libyaml",
            "tar::",
            "miniz_oxide::inflate",
            "flate2::gz::bufread::GzDecoder",
        ],
    ),
    (
        "rendering JSON",
        &[
            "serde_json::ser",
            "descriptor_json",
            "dependencies_json",
            "serde_json::value::ser",
        ],
    ),
    (
        "registry client (reqwest, hyper client, TLS)",
        &[
            "reqwest::",
            "hyper::client",
            "hyper_util::client",
            "odg_oci::",
            "rustls::",
        ],
    ),
    ("delivery DB (sqlx)", &["sqlx"]),
    (
        "cache tiers and curves",
        &["odg_cache::", "quick_cache::", "foyer", "odg_mrc::"],
    ),
    (
        "metrics",
        &["metrics::", "metrics_exporter_prometheus", "metrics_util"],
    ),
    (
        "tracing",
        &["tracing::", "tracing_subscriber", "tracing_core"],
    ),
    (
        "middleware, routing, handlers",
        &[
            "tower_http::",
            "axum::",
            "odg_server::",
            "odg_components::",
            "tower::",
        ],
    ),
    (
        "HTTP server (hyper)",
        &[
            "hyper::proto",
            "hyper::server",
            "hyper_util::server",
            "hyper::body",
            "odg_server::connection",
        ],
    ),
    ("async runtime (tokio)", &["tokio::"]),
    ("allocator", &["mimalloc", "mi_", "_mi_"]),
];

/// A case's profile, summarised.
pub struct ProfileSummary {
    pub load: Summary,
    pub user_cpu_ms_per_answer: f64,
    pub system_cpu_ms_per_answer: f64,
    pub samples: u64,
    /// Category and its samples, largest first.
    pub by_category: Counts,
    /// The functions most often on top of the stack (leaf frames), and their samples.
    pub hottest: Counts,
}

/// Runs `case` for `duration` with a profile of (almost) the same span, writes
/// `profile-<name>.folded` and `profile-<name>.svg` into `out_dir`.
pub async fn profile_case(
    client: &reqwest::Client,
    case: &ProfileCase,
    clients: usize,
    duration: Duration,
    frequency: u32,
    out_dir: &Path,
) -> anyhow::Result<ProfileSummary> {
    let admin_port = free_port();
    let mut pod_args = case.pod_args.clone();
    pod_args.extend([
        "--admin-listen".to_string(),
        format!("127.0.0.1:{admin_port}"),
        "--admin-profiling".to_string(),
    ]);
    let pod = Pod::start(&pod_args).await?;
    let urls: Arc<Vec<String>> = Arc::new(
        case.urls
            .iter()
            .map(|path| format!("{}{path}", pod.url))
            .collect(),
    );
    if case.warm_up_passes > 0 {
        closed_loop(
            client,
            urls.clone(),
            clients,
            Duration::from_secs(120),
            case.warm_up_passes,
        )
        .await;
    }
    // The profile covers the load but its first and last half second, when clients start and stop.
    let profile_seconds = duration.as_secs().saturating_sub(1).max(1);
    let profile_url = format!(
        "http://127.0.0.1:{admin_port}/debug/pprof/profile?seconds={profile_seconds}&frequency={frequency}&format=folded"
    );
    let (user_before, system_before) = cpu_split(pod.pid);
    let profile = {
        let client = client.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(500)).await;
            let response = client.get(&profile_url).send().await?;
            let status = response.status();
            let text = response.text().await?;
            anyhow::ensure!(status.is_success(), "profile answered {status}: {text}");
            Ok::<_, anyhow::Error>(text)
        })
    };
    let (samples, elapsed) = closed_loop(client, urls, clients, duration, usize::MAX).await;
    let (user_after, system_after) = cpu_split(pod.pid);
    let folded = profile.await.context("profile task")??;
    pod.stop();

    let load = Summary::of(case.name, &samples, elapsed, 0, 0);
    let answers = load.ok.max(1) as f64;
    std::fs::write(
        out_dir.join(format!("profile-{}.folded", case.name)),
        &folded,
    )?;
    write_flame_graph(
        &folded,
        case,
        &out_dir.join(format!("profile-{}.svg", case.name)),
    )?;
    let (samples_total, by_category, hottest) = summarise(&folded);
    Ok(ProfileSummary {
        load,
        user_cpu_ms_per_answer: (user_after - user_before) * 1000.0 / answers,
        system_cpu_ms_per_answer: (system_after - system_before) * 1000.0 / answers,
        samples: samples_total,
        by_category,
        hottest,
    })
}

fn write_flame_graph(folded: &str, case: &ProfileCase, path: &Path) -> anyhow::Result<()> {
    if folded.trim().is_empty() {
        return Ok(());
    }
    let mut options = inferno::flamegraph::Options::default();
    options.title = format!("odg: {}", case.what);
    let file = std::fs::File::create(path)?;
    inferno::flamegraph::from_lines(&mut options, folded.lines(), std::io::BufWriter::new(file))
        .with_context(|| format!("rendering {}", path.display()))
}

/// Names with their sample counts, largest first.
type Counts = Vec<(String, u64)>;

/// Total samples, samples per category (largest first, "other" for the rest) and the 12 hottest
/// leaf functions.
pub fn summarise(folded: &str) -> (u64, Counts, Counts) {
    let mut total = 0;
    let mut by_category: HashMap<&str, u64> = HashMap::new();
    let mut leaves: HashMap<String, u64> = HashMap::new();
    for line in folded.lines() {
        let Some((stack, count)) = line.rsplit_once(' ') else {
            continue;
        };
        let Ok(count) = count.trim().parse::<u64>() else {
            continue;
        };
        total += count;
        let frames: Vec<&str> = stack.split(';').collect();
        let category = frames
            .iter()
            .rev()
            .find_map(|frame| {
                CATEGORIES
                    .iter()
                    .find(|(_, patterns)| patterns.iter().any(|pattern| frame.contains(pattern)))
            })
            .map_or("other", |(name, _)| name);
        *by_category.entry(category).or_default() += count;
        if let Some(leaf) = frames.last() {
            *leaves.entry(short_name(leaf)).or_default() += count;
        }
    }
    let mut by_category: Vec<(String, u64)> = by_category
        .into_iter()
        .map(|(name, count)| (name.to_string(), count))
        .collect();
    by_category.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let mut hottest: Vec<(String, u64)> = leaves.into_iter().collect();
    hottest.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    hottest.truncate(12);
    (total, by_category, hottest)
}

/// A symbol without its hash suffix (`::h0123456789abcdef`), for readable tables.
fn short_name(symbol: &str) -> String {
    match symbol.rsplit_once("::h") {
        Some((name, hash)) if hash.len() == 16 && hash.chars().all(|c| c.is_ascii_hexdigit()) => {
            name.to_string()
        }
        _ => symbol.to_string(),
    }
}

/// The markdown table of one run's cases.
pub fn markdown(cases: &[(&ProfileCase, ProfileSummary)]) -> String {
    let mut text = String::from(
        "| case | answers/s | p50 / p99 ms | user CPU ms/answer | system CPU ms/answer | samples | where the samples went (share) |\n|---|---|---|---|---|---|---|\n",
    );
    for (case, summary) in cases {
        let shares: Vec<String> = summary
            .by_category
            .iter()
            .filter(|(_, count)| *count * 100 >= summary.samples.max(1) * 3)
            .map(|(name, count)| {
                format!(
                    "{name} {:.0} %",
                    *count as f64 * 100.0 / summary.samples.max(1) as f64
                )
            })
            .collect();
        text.push_str(&format!(
            "| {} | {:.1} | {:.2} / {:.2} | {:.3} | {:.3} | {} | {} |\n",
            case.name,
            summary.load.throughput_per_second,
            summary.load.p50_ms,
            summary.load.p99_ms,
            summary.user_cpu_ms_per_answer,
            summary.system_cpu_ms_per_answer,
            summary.samples,
            shares.join(", "),
        ));
    }
    for (case, summary) in cases {
        text.push_str(&format!(
            "\n**{}** ({}): hottest leaf functions\n\n| function | share |\n|---|---|\n",
            case.name, case.what
        ));
        for (function, count) in &summary.hottest {
            text.push_str(&format!(
                "| `{}` | {:.1} % |\n",
                function.replace('|', "\\|"),
                *count as f64 * 100.0 / summary.samples.max(1) as f64
            ));
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_go_to_the_most_specific_category_and_leaves_are_counted() {
        let folded = "\
tokio-runtime-worker;tokio::runtime::task;odg_server::routes::ocm::component;odg_cache::tiered::TieredCache::get_or_load::h0123456789abcdef 7
tokio-runtime-worker;tokio::runtime::task;hyper::proto::h1::dispatch;odg_server::routes::ocm::component;serde_json::ser::format_escaped_str 3
tokio-runtime-worker;tokio::runtime::task;hyper::proto::h1::dispatch::poll_write 5
odg-cpu;something_else 1
not a line
";
        let (total, by_category, hottest) = summarise(folded);
        assert_eq!(total, 16);
        assert_eq!(
            by_category,
            vec![
                ("cache tiers and curves".to_string(), 7),
                ("HTTP server (hyper)".to_string(), 5),
                ("rendering JSON".to_string(), 3),
                ("other".to_string(), 1),
            ]
        );
        assert_eq!(
            hottest[0],
            ("odg_cache::tiered::TieredCache::get_or_load".to_string(), 7)
        );
    }
}
