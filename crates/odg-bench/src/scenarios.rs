//! The HTTP scenarios: real `odg serve` processes in front of a real registry with injected
//! latency, each scenario measured beside its no-cache baseline in the same run.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use odg_components::{push_descriptor, with_repository_context};
use odg_oci::{RegistryClient, RegistryClientConfig};
use odg_ocm::OcmRepositoryUrl;
use odg_test_support::{DelayProxy, RegistryServer};

use crate::harness::{ensure_directory, metric_sum, Pod};
use crate::load::{closed_loop, open_loop, Sample, Summary};
use crate::report::{publish_summary, ScenarioReport};
use odg_test_support::RedisServer;

#[derive(Debug, clap::Args)]
pub struct HttpArgs {
    /// Where reports (markdown, JSON, SVG) go.
    #[arg(long, default_value = "bench-results")]
    out_dir: PathBuf,
    /// Latency the proxy adds to every registry request.
    #[arg(long, default_value_t = 20)]
    latency_ms: u64,
    /// Seconds each measured phase runs.
    #[arg(long, default_value_t = 5)]
    seconds: u64,
    /// Concurrent clients of the closed-loop scenarios.
    #[arg(long, default_value_t = 16)]
    clients: usize,
    /// Scan-burst clients (enumerator instances walking trees at once).
    #[arg(long, default_value_t = 8)]
    scan_clients: usize,
    /// Offered load of the overload scenario, requests per second [default: --overload-factor
    /// times the capacity measured on the fixed-admission pod].
    #[arg(long)]
    overload_rate: Option<u32>,
    /// The overload scenario offers this multiple of the measured capacity.
    #[arg(long, default_value_t = 3.0)]
    overload_factor: f64,
    /// Concurrent clients of the ceiling scenario (odg beside a bare axum server sending the same bytes).
    #[arg(long, default_value_t = 64)]
    ceiling_clients: usize,
    /// Load generator of the ceiling scenario.
    #[arg(long, value_enum, default_value_t = crate::ceiling_scenarios::Generator::Wrk)]
    ceiling_generator: crate::ceiling_scenarios::Generator,
    /// Only these scenarios (comma-separated): warm-component, warm-dependencies, cold-dependencies, scan-burst, overload, ceiling, responsibles-diff, miss-ratio-curves, profiles.
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// Only these cases of the `profiles` scenario (comma-separated: warm-component,
    /// cold-component, warm-versions, cold-versions, warm-dependencies, cold-dependencies).
    #[arg(long, value_delimiter = ',')]
    profile_cases: Vec<String>,
    /// Samples per second of the `profiles` scenario's CPU profiles.
    #[arg(long, default_value_t = 499)]
    profile_frequency: u32,
    /// Also write the scan-burst metric series here (for the autoscaling replay test).
    #[arg(long)]
    series_out: Option<PathBuf>,
    /// Record the autoscaling series from a sustained burst instead: this many enumerator
    /// clients against one pod without cache (every request reaches the registry) ...
    #[arg(long, default_value_t = 0)]
    series_clients: usize,
    /// ... for this many seconds ...
    #[arg(long, default_value_t = 120)]
    series_load_seconds: u64,
    /// ... followed by this many idle seconds (to show the way down).
    #[arg(long, default_value_t = 420)]
    series_idle_seconds: u64,
}

struct Fixture {
    _registry: RegistryServer,
    components: Vec<String>,
    root: String,
    level_one: Vec<String>,
}

const TREE_COMPONENTS: usize = 300;
const TREE_DEPTH: usize = 6;
const TREE_FAN_OUT: usize = 2;

async fn fixture() -> anyhow::Result<Fixture> {
    let registry = RegistryServer::start().await;
    let tree = odg_demo::benchmark_tree(TREE_COMPONENTS, TREE_DEPTH, TREE_FAN_OUT);
    let repository: OcmRepositoryUrl = format!("http://{}/bench", registry.host()).parse()?;
    let client = RegistryClient::new(RegistryClientConfig::default())?;
    let store = client.endpoint(true, &repository.host);
    for descriptor in &tree.descriptors {
        let descriptor = with_repository_context(descriptor.clone(), &repository);
        push_descriptor(&store, &repository, &descriptor)
            .await
            .context("seeding")?;
    }
    let components: Vec<String> = tree
        .descriptors
        .iter()
        .map(|d| d.component.name.clone())
        .collect();
    let level_one = components
        .iter()
        .filter(|name| name.contains("/level1/"))
        .cloned()
        .collect();
    Ok(Fixture {
        _registry: registry,
        components,
        root: tree.root_name,
        level_one,
    })
}

fn component_url(base: &str, name: &str) -> String {
    format!("{base}/ocm/component?component_name={name}&version=1.0.0")
}

fn dependencies_url(base: &str, name: &str) -> String {
    format!("{base}/ocm/component/dependencies?component_name={name}&version=1.0.0&populate=componentReferences")
}

fn repo_args(proxy: &DelayProxy) -> Vec<String> {
    vec![
        "--ocm-repo".into(),
        format!("http://{}/bench", proxy.host()),
    ]
}

fn no_cache(mut args: Vec<String>) -> Vec<String> {
    args.push("--disable-cache".into());
    args
}

fn summary(
    mode: &str,
    samples: &[Sample],
    elapsed: Duration,
    proxy: &DelayProxy,
    pods: &[&Pod],
) -> Summary {
    let rss = pods
        .iter()
        .map(|pod| pod.peak_rss_bytes())
        .max()
        .unwrap_or(0);
    Summary::of(mode, samples, elapsed, proxy.counters().total(), rss)
}

pub async fn run(args: HttpArgs) -> anyhow::Result<()> {
    ensure_directory(&args.out_dir)?;
    eprintln!("seeding {TREE_COMPONENTS} components into a local registry");
    let fixture = fixture().await?;
    let registry_host = fixture._registry.host();
    let proxy = DelayProxy::start(&registry_host, Duration::from_millis(args.latency_ms)).await;
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .build()?;
    let wanted = |name: &str| args.only.is_empty() || args.only.iter().any(|only| only == name);
    let seconds = Duration::from_secs(args.seconds);
    let mut reports = Vec::new();

    if wanted("warm-component") {
        eprintln!("scenario warm-component");
        let mut modes = Vec::new();
        let mut curves_off = repo_args(&proxy);
        curves_off.push("--miss-ratio-curves=false".into());
        for (mode, pod_args) in [
            ("cache (memory hits)", repo_args(&proxy)),
            ("cache, miss-ratio curves off", curves_off),
            ("no cache (baseline)", no_cache(repo_args(&proxy))),
        ] {
            let pod = Pod::start(&pod_args).await?;
            let urls: Arc<Vec<String>> = Arc::new(
                fixture
                    .components
                    .iter()
                    .map(|name| component_url(&pod.url, name))
                    .collect(),
            );
            closed_loop(
                &client,
                urls.clone(),
                args.clients,
                Duration::from_secs(60),
                1,
            )
            .await; // warm-up pass
            proxy.counters().reset();
            let (samples, elapsed) =
                closed_loop(&client, urls, args.clients, seconds, usize::MAX).await;
            modes.push(summary(mode, &samples, elapsed, &proxy, &[&pod]));
            pod.stop();
        }
        reports.push(ScenarioReport {
            name: "warm-component".into(),
            description: format!(
                "`GET /ocm/component` over {TREE_COMPONENTS} component versions, {} closed-loop clients for {} s after one warm-up pass; registry latency {} ms.",
                args.clients, args.seconds, args.latency_ms
            ),
            modes,
            series: vec![],
        });
    }

    if wanted("warm-dependencies") {
        eprintln!("scenario warm-dependencies");
        let mut modes = Vec::new();
        for (mode, pod_args) in [
            ("cache (warm)", repo_args(&proxy)),
            ("no cache (baseline)", no_cache(repo_args(&proxy))),
        ] {
            let pod = Pod::start(&pod_args).await?;
            let urls = Arc::new(vec![dependencies_url(&pod.url, &fixture.root)]);
            crate::load::request(&client, &urls[0]).await; // warm-up
            proxy.counters().reset();
            let (samples, elapsed) =
                closed_loop(&client, urls, args.clients / 2, seconds, usize::MAX).await;
            modes.push(summary(mode, &samples, elapsed, &proxy, &[&pod]));
            pod.stop();
        }
        reports.push(ScenarioReport {
            name: "warm-dependencies".into(),
            description: format!(
                "`GET /ocm/component/dependencies` of a {TREE_COMPONENTS}-component tree (depth {TREE_DEPTH}, 3,151 elements with shared subtrees), {} clients for {} s; registry latency {} ms.",
                args.clients / 2,
                args.seconds,
                args.latency_ms
            ),
            modes,
            series: vec![],
        });
    }

    if wanted("responsibles-diff") {
        eprintln!("scenario responsibles-diff");
        let level_one = fixture
            .level_one
            .first()
            .context("the benchmark tree has a level-one component")?;
        reports.extend(
            crate::answer_scenarios::run(
                &client,
                &crate::answer_scenarios::AnswerFixture {
                    pod_args: repo_args(&proxy),
                    proxy: &proxy,
                    components: &fixture.components,
                    root: &fixture.root,
                    level_one,
                    clients: args.clients,
                    seconds,
                    latency_ms: args.latency_ms,
                    tree_components: TREE_COMPONENTS,
                },
            )
            .await?,
        );
    }

    if wanted("ceiling") {
        reports.extend(
            crate::ceiling_scenarios::run(
                &client,
                &registry_host,
                &proxy,
                args.ceiling_clients,
                seconds,
                args.ceiling_generator,
            )
            .await?,
        );
    }

    if wanted("cold-dependencies") {
        eprintln!("scenario cold-dependencies");
        let mut modes = Vec::new();
        for latency in [20u64, 50] {
            let cold_proxy =
                DelayProxy::start(&registry_host, Duration::from_millis(latency)).await;
            for (mode, disable) in [("cold, cache on", false), ("no cache (baseline)", true)] {
                let mut samples = Vec::new();
                let mut rss = 0;
                let started = Instant::now();
                cold_proxy.counters().reset();
                for _ in 0..3 {
                    let pod_args = if disable {
                        no_cache(repo_args(&cold_proxy))
                    } else {
                        repo_args(&cold_proxy)
                    };
                    let pod = Pod::start(&pod_args).await?;
                    samples.push(
                        crate::load::request(&client, &dependencies_url(&pod.url, &fixture.root))
                            .await,
                    );
                    rss = rss.max(pod.peak_rss_bytes());
                    pod.stop();
                }
                let elapsed = started.elapsed();
                let mut figures = Summary::of(
                    &format!("{mode}, {latency} ms"),
                    &samples,
                    elapsed,
                    cold_proxy.counters().total() / 3,
                    rss,
                );
                figures.throughput_per_second = 0.0; // one request per fresh pod: throughput is meaningless here
                modes.push(figures);
            }
        }
        reports.push(ScenarioReport {
            name: "cold-dependencies".into(),
            description: format!(
                "First `GET /ocm/component/dependencies` of the {TREE_COMPONENTS}-component tree on a fresh pod (3 pods per mode), registry latency 20 and 50 ms. Origin fetches per request. Depth x 2 requests x latency = {} / {} ms.",
                (TREE_DEPTH + 1) * 2 * 20,
                (TREE_DEPTH + 1) * 2 * 50
            ),
            modes,
            series: vec![],
        });
    }

    if args.series_clients > 0 {
        eprintln!("recording the autoscaling series");
        let pod = Pod::start(&no_cache(repo_args(&proxy))).await?;
        let series = sustained_burst(&client, &fixture, &pod, args.series_clients, &args).await;
        if let Some(path) = &args.series_out {
            write_series(
                path,
                &series,
                &format!(
                    "odg-bench http --series-clients {}: 1 pod without cache, {} enumerator clients for {} s, then {} s idle; registry latency {} ms",
                    args.series_clients, args.series_clients, args.series_load_seconds, args.series_idle_seconds, args.latency_ms
                ),
            )?;
        }
        std::fs::write(
            args.out_dir.join("autoscaling-series.svg"),
            ScenarioReport {
                name: "autoscaling-series".into(),
                description: String::new(),
                modes: vec![],
                series: series_for_chart(&series),
            }
            .svg(),
        )?;
        pod.stop();
    }

    if wanted("scan-burst") {
        eprintln!("scenario scan-burst");
        let redis = RedisServer::start().await;
        let mut modes = Vec::new();
        let mut series = Vec::new();
        let shared = |base: Vec<String>| {
            let mut args = base;
            args.extend(["--redis-url".to_string(), redis.url()]);
            args
        };
        for (mode, pod_count, pod_args) in [
            ("1 pod, cache", 1, repo_args(&proxy)),
            ("2 pods + Redis, cache", 2, shared(repo_args(&proxy))),
            ("1 pod, no cache (baseline)", 1, no_cache(repo_args(&proxy))),
        ] {
            let mut pods = Vec::new();
            for _ in 0..pod_count {
                pods.push(Pod::start(&pod_args).await?);
            }
            proxy.counters().reset();
            let (samples, elapsed, recorded) =
                scan_burst(&client, &fixture, &pods, args.scan_clients).await;
            let pod_refs: Vec<&Pod> = pods.iter().collect();
            modes.push(summary(mode, &samples, elapsed, &proxy, &pod_refs));
            if pod_count == 1 && series.is_empty() {
                series = recorded;
            }
            for pod in pods {
                pod.stop();
            }
        }
        if let (Some(path), 0) = (&args.series_out, args.series_clients) {
            write_series(
                path,
                &series,
                "odg-bench http --only scan-burst (1 pod, cache on, cold at the first wave)",
            )?;
        }
        let mut report = ScenarioReport {
            name: "scan-burst".into(),
            description: format!(
                "{} enumerator clients at once, three waves 4 s apart, each client walking the tree as the artefact enumerator does: list versions, fetch the dependency tree, then every descriptor of the tree ({} requests per client per wave). Cold caches at the first wave. Registry latency {} ms.",
                args.scan_clients,
                fixture.components.len() + 2,
                args.latency_ms
            ),
            modes,
            series: vec![],
        };
        std::fs::write(
            args.out_dir.join("scan-burst-series.svg"),
            ScenarioReport {
                name: "scan-burst-series".into(),
                description: String::new(),
                modes: vec![],
                series: series_for_chart(&series),
            }
            .svg(),
        )?;
        report.description.push_str(
            " In-flight requests over time (1 pod, cache): ![series](scan-burst-series.svg)",
        );
        reports.push(report);
    }

    let mut sections_markdown = String::new();
    if wanted("miss-ratio-curves") {
        eprintln!("scenario miss-ratio-curves");
        sections_markdown = crate::mrc_scenarios::run(&client, &args.out_dir).await?;
    }

    if wanted("profiles") {
        sections_markdown.push_str(&profiles(&args, &fixture, &proxy, &client).await?);
    }

    if wanted("overload") {
        eprintln!("scenario overload");
        reports.push(overload(&args, &fixture, &proxy).await?);
    }

    let mut markdown = String::new();
    for report in &reports {
        report.write(&args.out_dir)?;
        markdown.push_str(&report.markdown());
    }
    markdown.push_str(&sections_markdown);
    publish_summary(&args.out_dir, "summary", &markdown, &reports)
}

/// Where the CPU goes per route, warm and cold: a CPU profile of the pod under load per case.
async fn profiles(
    args: &HttpArgs,
    fixture: &Fixture,
    proxy: &DelayProxy,
    client: &reqwest::Client,
) -> anyhow::Result<String> {
    use crate::profiles::{markdown, profile_case, ProfileCase};
    let component_paths: Vec<String> = fixture
        .components
        .iter()
        .map(|name| component_url("", name))
        .collect();
    let versions_paths: Vec<String> = fixture
        .components
        .iter()
        .map(|name| format!("/ocm/component/versions?component_name={name}&max=100"))
        .collect();
    let level_one_trees: Vec<String> = fixture
        .level_one
        .iter()
        .map(|name| dependencies_url("", name))
        .collect();
    let root_tree = vec![dependencies_url("", &fixture.root)];
    let cases = vec![
        ProfileCase {
            name: "warm-component",
            what: "warm `GET /ocm/component` (memory hits)".into(),
            urls: component_paths.clone(),
            pod_args: repo_args(proxy),
            warm_up_passes: 1,
        },
        ProfileCase {
            name: "cold-component",
            what: "`GET /ocm/component` without cache (registry, decoding, rendering)".into(),
            urls: component_paths,
            pod_args: no_cache(repo_args(proxy)),
            warm_up_passes: 0,
        },
        ProfileCase {
            name: "warm-versions",
            what: "warm `GET /ocm/component/versions`".into(),
            urls: versions_paths.clone(),
            pod_args: repo_args(proxy),
            warm_up_passes: 1,
        },
        ProfileCase {
            name: "cold-versions",
            what: "`GET /ocm/component/versions` without cache (tag lists)".into(),
            urls: versions_paths,
            pod_args: no_cache(repo_args(proxy)),
            warm_up_passes: 0,
        },
        ProfileCase {
            name: "warm-dependencies",
            what: format!(
                "warm `GET /ocm/component/dependencies` of the {TREE_COMPONENTS}-component tree"
            ),
            urls: root_tree,
            pod_args: repo_args(proxy),
            warm_up_passes: 1,
        },
        ProfileCase {
            name: "cold-dependencies",
            what: "`GET /ocm/component/dependencies` of the level-one subtrees without cache"
                .into(),
            urls: level_one_trees,
            pod_args: no_cache(repo_args(proxy)),
            warm_up_passes: 0,
        },
    ];
    let seconds = Duration::from_secs(args.seconds.max(3));
    let mut results = Vec::new();
    for case in &cases {
        if !args.profile_cases.is_empty()
            && !args.profile_cases.iter().any(|name| name == case.name)
        {
            continue;
        }
        eprintln!("scenario profiles: {}", case.name);
        let summary = profile_case(
            client,
            case,
            args.clients,
            seconds,
            args.profile_frequency,
            &args.out_dir,
        )
        .await?;
        results.push((case, summary));
    }
    Ok(format!(
        "## profiles\n\nCPU profiles of the pod (pprof-rs, {} Hz) under {} closed-loop clients for {} s per case; registry latency {} ms. Flame graphs: `profile-<case>.svg`.\n\n{}",
        args.profile_frequency,
        args.clients,
        seconds.as_secs(),
        args.latency_ms,
        markdown(&results)
    ))
}

/// The hard bounds of both overload pods: only the admission mode differs.
const OVERLOAD_BOUNDS: [&str; 6] = [
    "--max-concurrent-requests",
    "8",
    "--max-queued-requests",
    "16",
    "--max-queue-wait-ms",
    "500",
];

/// What one admission mode did under overload, beside its unloaded and capacity runs.
struct OverloadFigures {
    mode: &'static str,
    unloaded: Summary,
    capacity: Summary,
    overload: Summary,
    shed_by_reason: Vec<(&'static str, f64)>,
    /// The lowest and highest limit seen during the overload.
    limit_range: (f64, f64),
    /// The pod's own p99 of admitted answers during the overload (admission wait and handler;
    /// not the parse before it, nor the write after), as the upper bound of its histogram bucket.
    server_p99_bound: f64,
    limit_after: f64,
}

/// Fixed against adaptive admission, each on a fresh pod with the same hard bounds: warm-up, a
/// closed loop (capacity), an unloaded open loop (the p99 baseline), then an open loop at
/// `overload_factor` times the fixed pod's capacity.
///
/// The requests are `GET /ocm/component` with the cache off, so each one does real work in the
/// pod (a registry round trip, decoding, rendering). Warm cached answers cost the pod so little
/// (10,700/s at 16 clients) that three times that is beyond what the load generator, on the same
/// two cores, can offer: such a run measures the generator (transport errors, seconds of latency
/// in both modes alike), not admission.
async fn overload(
    args: &HttpArgs,
    fixture: &Fixture,
    proxy: &DelayProxy,
) -> anyhow::Result<ScenarioReport> {
    // A hung request shows as an error (status 0) instead of stalling the run.
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .timeout(Duration::from_secs(30))
        .build()?;
    let seconds = Duration::from_secs(args.seconds);
    let mut figures: Vec<OverloadFigures> = Vec::new();
    let mut offered: Option<u32> = args.overload_rate;
    for mode in ["fixed", "adaptive"] {
        let mut pod_args = no_cache(repo_args(proxy));
        pod_args.extend(OVERLOAD_BOUNDS.map(String::from));
        pod_args.extend(["--admission-mode".to_string(), mode.to_string()]);
        let pod = Pod::start(&pod_args).await?;
        let urls: Arc<Vec<String>> = Arc::new(
            fixture
                .components
                .iter()
                .map(|name| component_url(&pod.url, name))
                .collect(),
        );
        // Warm-up: connections, the registry client's token and the allocator's pages.
        closed_loop(&client, urls.clone(), 4, Duration::from_secs(2), 1).await;
        proxy.counters().reset();
        let (samples, elapsed) =
            closed_loop(&client, urls.clone(), args.clients, seconds, usize::MAX).await;
        let capacity = summary(
            &format!("{mode}: capacity ({} clients)", args.clients),
            &samples,
            elapsed,
            proxy,
            &[&pod],
        );
        let rate = *offered.get_or_insert_with(|| {
            (capacity.throughput_per_second * args.overload_factor)
                .round()
                .max(1.0) as u32
        });
        let unloaded_rate = (rate as f64 / args.overload_factor / 10.0).round().max(5.0) as u32;
        // Three times as long as the other phases, for enough samples at the low rate that its
        // p99 is not just the maximum.
        let (samples, elapsed) = open_loop(&client, urls.clone(), unloaded_rate, seconds * 3).await;
        let unloaded = summary(
            &format!("{mode}: unloaded ({unloaded_rate}/s)"),
            &samples,
            elapsed,
            proxy,
            &[&pod],
        );
        let server_duration = |text: &str| {
            histogram_buckets(
                text,
                "http_server_request_duration_seconds_bucket",
                &["route=\"/ocm/component\"", "status=\"200\""],
            )
        };
        let before = server_duration(&pod.metrics_text(&client).await?);
        // The limit during the overload, from /metrics every 100 ms.
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let sampler = tokio::spawn({
            let (client, url, stop) =
                (client.clone(), format!("{}/metrics", pod.url), stop.clone());
            async move {
                let mut limits = Vec::new();
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    if let Ok(response) = client.get(&url).send().await {
                        if let Ok(text) = response.text().await {
                            limits.push(metric_sum(&text, "odg_admission_limit", None));
                        }
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                limits
            }
        });
        let (samples, elapsed) = open_loop(&client, urls, rate, seconds).await;
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let limits = sampler.await.unwrap_or_default();
        let overload = summary(
            &format!("{mode}: overload ({rate}/s offered)"),
            &samples,
            elapsed,
            proxy,
            &[&pod],
        );
        let metrics = pod.metrics_text(&client).await?;
        let shed_by_reason = ["queue_full", "queue_timeout", "codel"]
            .into_iter()
            .map(|reason| {
                let label = format!("reason=\"{reason}\"");
                (
                    reason,
                    metric_sum(&metrics, "odg_requests_shed_total", Some(&label)),
                )
            })
            .collect();
        let limit_range = (
            limits.iter().copied().fold(f64::INFINITY, f64::min),
            limits.iter().copied().fold(0.0, f64::max),
        );
        let server_p99_bound = bucket_percentile_between(&before, &server_duration(&metrics), 0.99);
        figures.push(OverloadFigures {
            mode,
            limit_range,
            server_p99_bound,
            unloaded,
            capacity,
            overload,
            shed_by_reason,
            limit_after: metric_sum(&metrics, "odg_admission_limit", None),
        });
        pod.stop();
    }
    let mut description = format!(
        "`GET /ocm/component` over {} component versions with the cache off (every request a registry round trip, decoding and rendering), registry latency {} ms, against two pods with the same hard bounds (8 concurrent, 16 queued, 500 ms maximum wait) and `--admission-mode fixed` or `adaptive`. Each pod: 2 s warm-up; {} closed-loop clients for {} s (capacity); an open loop at a tenth of the fixed pod's capacity for {} s (unloaded baseline); an open loop at {}x the fixed pod's capacity for {} s (overload). Latency percentiles are of admitted (2xx) requests; shed requests get 503 with Retry-After and a JSON reason.\n\n",
        fixture.components.len(),
        args.latency_ms,
        args.clients,
        args.seconds,
        args.seconds * 3,
        args.overload_factor,
        args.seconds,
    );
    description.push_str("| admission | unloaded p99 ms | overload admitted p50 / p99 ms | p99 / unloaded p99 | pod's own p99 of admitted, ms (bucket bound) | admitted/s | shed | shed by reason (queue_full / queue_timeout / codel, whole run) | errors (incl. hung) | limit during overload (min-max) / after |\n|---|---|---|---|---|---|---|---|---|---|\n");
    for figure in &figures {
        let overload = &figure.overload;
        let reasons: Vec<String> = figure
            .shed_by_reason
            .iter()
            .map(|(_, count)| format!("{count:.0}"))
            .collect();
        description.push_str(&format!(
            "| {} | {:.2} | {:.2} / {:.2} | {:.2}x | <= {:.0} | {:.1} | {:.1} % | {} | {} | {:.0}-{:.0} / {:.0} |\n",
            figure.mode,
            figure.unloaded.p99_ms,
            overload.p50_ms,
            overload.p99_ms,
            overload.p99_ms / figure.unloaded.p99_ms.max(1e-9),
            figure.server_p99_bound * 1000.0,
            overload.throughput_per_second,
            100.0 * overload.shed as f64 / overload.requests.max(1) as f64,
            reasons.join(" / "),
            overload.errors,
            figure.limit_range.0,
            figure.limit_range.1,
            figure.limit_after,
        ));
    }
    let modes = figures
        .into_iter()
        .flat_map(|figure| [figure.unloaded, figure.capacity, figure.overload])
        .collect();
    Ok(ScenarioReport {
        name: "overload".into(),
        description,
        modes,
        series: vec![],
    })
}

/// One sample of the pods' load, summed over pods.
#[derive(Debug, Clone, serde::Serialize)]
struct LoadSample {
    t: f64,
    in_flight: f64,
    queue_wait_p95_seconds: f64,
    cpu_cores: f64,
}

/// Runs three waves of enumerator clients and samples the pods' /metrics every second.
async fn scan_burst(
    client: &reqwest::Client,
    fixture: &Fixture,
    pods: &[Pod],
    clients: usize,
) -> (Vec<Sample>, Duration, Vec<LoadSample>) {
    let started = Instant::now();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sampler = {
        let (client, urls, stop) = (
            client.clone(),
            pods.iter().map(|pod| pod.url.clone()).collect::<Vec<_>>(),
            stop.clone(),
        );
        tokio::spawn(async move {
            let mut samples = Vec::new();
            let mut previous_cpu: Option<(Instant, f64)> = None;
            let mut previous_buckets: Vec<Vec<(f64, f64)>> = vec![Vec::new(); urls.len()];
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let mut in_flight = 0.0;
                let mut cpu = 0.0;
                let mut wait_p95: f64 = 0.0;
                for (pod, url) in urls.iter().enumerate() {
                    if let Ok(response) = client.get(format!("{url}/metrics")).send().await {
                        if let Ok(text) = response.text().await {
                            // The scrape itself is one request in flight on /metrics: leave it out.
                            in_flight += metric_sum(&text, "http_server_active_requests", None)
                                - metric_sum(
                                    &text,
                                    "http_server_active_requests",
                                    Some("route=\"/metrics\""),
                                );
                            cpu += metric_sum(&text, "process_cpu_seconds_total", None);
                            let buckets = queue_wait_buckets(&text);
                            wait_p95 = wait_p95
                                .max(queue_wait_p95_between(&previous_buckets[pod], &buckets));
                            previous_buckets[pod] = buckets;
                        }
                    }
                }
                let now = Instant::now();
                let cores = previous_cpu.map_or(0.0, |(at, seconds)| {
                    (cpu - seconds) / now.duration_since(at).as_secs_f64()
                });
                previous_cpu = Some((now, cpu));
                samples.push(LoadSample {
                    t: started.elapsed().as_secs_f64(),
                    in_flight,
                    queue_wait_p95_seconds: wait_p95,
                    cpu_cores: cores.max(0.0),
                });
                tokio::time::sleep(Duration::from_millis(1000)).await;
            }
            samples
        })
    };
    let mut all = Vec::new();
    for wave in 0..3 {
        let wave_start = Instant::now();
        let tasks = (0..clients).map(|index| {
            let client = client.clone();
            let base = pods[index % pods.len()].url.clone();
            let mut urls = vec![
                format!(
                    "{base}/ocm/component/versions?component_name={}",
                    fixture.root
                ),
                dependencies_url(&base, &fixture.root),
            ];
            urls.extend(
                fixture
                    .components
                    .iter()
                    .map(|name| component_url(&base, name)),
            );
            tokio::spawn(async move {
                let mut samples = Vec::new();
                for url in urls {
                    samples.push(crate::load::request(&client, &url).await);
                }
                samples
            })
        });
        for samples in futures::future::join_all(tasks).await {
            all.extend(samples.unwrap_or_default());
        }
        if wave < 2 {
            tokio::time::sleep(
                Duration::from_secs(4)
                    .saturating_sub(wave_start.elapsed())
                    .max(Duration::from_secs(1)),
            )
            .await;
        }
    }
    let elapsed = started.elapsed();
    tokio::time::sleep(Duration::from_secs(2)).await; // an idle tail in the series
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let series = sampler.await.unwrap_or_default();
    (all, elapsed, series)
}

/// Enumerator clients walking the tree again and again for `series_load_seconds`, then idle,
/// with the pod's load sampled every second throughout.
async fn sustained_burst(
    client: &reqwest::Client,
    fixture: &Fixture,
    pod: &Pod,
    clients: usize,
    args: &HttpArgs,
) -> Vec<LoadSample> {
    let started = Instant::now();
    let load_for = Duration::from_secs(args.series_load_seconds);
    let total = load_for + Duration::from_secs(args.series_idle_seconds);
    let workers: Vec<_> = (0..clients)
        .map(|index| {
            let client = client.clone();
            let base = pod.url.clone();
            let mut urls = vec![dependencies_url(&base, &fixture.root)];
            urls.extend(
                fixture
                    .components
                    .iter()
                    .map(|name| component_url(&base, name)),
            );
            let shift = index * 7 % urls.len();
            urls.rotate_left(shift);
            tokio::spawn(async move {
                let mut position = 0;
                while started.elapsed() < load_for {
                    crate::load::request(&client, &urls[position % urls.len()]).await;
                    position += 1;
                }
            })
        })
        .collect();
    let mut samples = Vec::new();
    let mut previous_cpu: Option<(Instant, f64)> = None;
    let mut previous_buckets = Vec::new();
    while started.elapsed() < total {
        if let Ok(response) = client.get(format!("{}/metrics", pod.url)).send().await {
            if let Ok(text) = response.text().await {
                let in_flight = metric_sum(&text, "http_server_active_requests", None)
                    - metric_sum(
                        &text,
                        "http_server_active_requests",
                        Some("route=\"/metrics\""),
                    );
                let cpu = metric_sum(&text, "process_cpu_seconds_total", None);
                let now = Instant::now();
                let cores = previous_cpu.map_or(0.0, |(at, seconds)| {
                    (cpu - seconds) / now.duration_since(at).as_secs_f64()
                });
                previous_cpu = Some((now, cpu));
                let buckets = queue_wait_buckets(&text);
                let queue_wait_p95_seconds = queue_wait_p95_between(&previous_buckets, &buckets);
                previous_buckets = buckets;
                samples.push(LoadSample {
                    t: started.elapsed().as_secs_f64(),
                    in_flight,
                    queue_wait_p95_seconds,
                    cpu_cores: cores.max(0.0),
                });
            }
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    for worker in workers {
        let _ = worker.await;
    }
    samples
}

/// Cumulative bucket counts of the queue wait histogram, by upper bound.
fn queue_wait_buckets(text: &str) -> Vec<(f64, f64)> {
    histogram_buckets(text, "odg_request_queue_wait_seconds_bucket", &[])
}

/// Cumulative bucket counts of a histogram's series whose lines contain every `filter`.
fn histogram_buckets(text: &str, family: &str, filters: &[&str]) -> Vec<(f64, f64)> {
    let mut buckets: Vec<(f64, f64)> = text
        .lines()
        .filter(|line| line.starts_with(family))
        .filter(|line| filters.iter().all(|filter| line.contains(filter)))
        .filter_map(|line| {
            let le = line.split("le=\"").nth(1)?.split('"').next()?;
            let bound = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().ok()?
            };
            let count = line.rsplit(' ').next()?.parse().ok()?;
            Some((bound, count))
        })
        .collect();
    buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    buckets
}

/// The 95th percentile of the queue waits observed between two scrapes (as `histogram_quantile`
/// over a rate would give), 0 when nothing waited in between.
fn queue_wait_p95_between(before: &[(f64, f64)], after: &[(f64, f64)]) -> f64 {
    bucket_percentile_between(before, after, 0.95)
}

/// The upper bound of the bucket holding the `fraction` percentile of the observations between
/// two scrapes; 0 when there were none or it is beyond the last finite bound.
fn bucket_percentile_between(before: &[(f64, f64)], after: &[(f64, f64)], fraction: f64) -> f64 {
    let delta: Vec<(f64, f64)> = after
        .iter()
        .map(|(bound, count)| {
            let previous = before
                .iter()
                .find(|(b, _)| b == bound)
                .map_or(0.0, |(_, c)| *c);
            (*bound, count - previous)
        })
        .collect();
    let total = delta.last().map_or(0.0, |(_, count)| *count);
    if total <= 0.0 {
        return 0.0;
    }
    delta
        .iter()
        .find(|(_, count)| *count >= total * fraction)
        .map_or(
            0.0,
            |(bound, _)| if bound.is_finite() { *bound } else { 0.0 },
        )
}

fn series_for_chart(samples: &[LoadSample]) -> Vec<(String, Vec<(f64, f64)>)> {
    vec![
        (
            "in-flight requests".into(),
            samples.iter().map(|s| (s.t, s.in_flight)).collect(),
        ),
        (
            "CPU cores x10".into(),
            samples.iter().map(|s| (s.t, s.cpu_cores * 10.0)).collect(),
        ),
    ]
}

fn write_series(
    path: &std::path::Path,
    samples: &[LoadSample],
    source: &str,
) -> anyhow::Result<()> {
    if let Some(parent) = path.parent() {
        ensure_directory(parent)?;
    }
    let document = serde_json::json!({
        "source": source,
        "interval_seconds": 1,
        "pods_at_start": 1,
        "samples": samples,
    });
    std::fs::write(path, serde_json::to_vec_pretty(&document)?)?;
    Ok(())
}
