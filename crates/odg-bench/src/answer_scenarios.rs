//! The responsibles and diff scenarios (issue 13): the first answer on a fresh pod (cold: the
//! descriptors, or both trees, come from the registry) beside repeated answers from the cache
//! (warm), over the benchmark tree.

use std::sync::Arc;
use std::time::{Duration, Instant};

use odg_test_support::DelayProxy;

use crate::harness::Pod;
use crate::load::{closed_loop, request, run_clients, send_timed, Sample, Summary};
use crate::report::ScenarioReport;

/// Pods started per cold mode; each measures its first request.
const COLD_PODS: usize = 3;

fn responsibles_url(base: &str, name: &str) -> String {
    format!("{base}/ocm/component/responsibles?component_name={name}&version=1.0.0")
}

/// The diff of the root's tree against one level-one component's subtree: both trees walked,
/// most components "removed".
fn diff_body(root: &str, other: &str) -> String {
    serde_json::json!({
        "left_component": {"name": root, "version": "1.0.0"},
        "right_component": {"name": other, "version": "1.0.0"},
    })
    .to_string()
}

async fn post(client: &reqwest::Client, url: &str, body: &str) -> Sample {
    send_timed(
        client
            .post(url)
            .header("content-type", "application/json")
            .body(body.to_string()),
    )
    .await
}

/// `clients` tasks posting `body` until `duration` passes.
async fn post_loop(
    client: &reqwest::Client,
    url: &str,
    body: &str,
    clients: usize,
    duration: Duration,
) -> (Vec<Sample>, Duration) {
    let (client, url, body) = (
        client.clone(),
        Arc::<str>::from(url),
        Arc::<str>::from(body),
    );
    run_clients(clients.max(1), duration, move || {
        let (client, url, body) = (client.clone(), url.clone(), body.clone());
        Some(async move { post(&client, &url, &body).await })
    })
    .await
}

pub struct AnswerFixture<'a> {
    pub pod_args: Vec<String>,
    pub proxy: &'a DelayProxy,
    pub components: &'a [String],
    pub root: &'a str,
    pub level_one: &'a str,
    pub clients: usize,
    pub seconds: Duration,
    pub latency_ms: u64,
    pub tree_components: usize,
}

pub async fn run(
    client: &reqwest::Client,
    fixture: &AnswerFixture<'_>,
) -> anyhow::Result<Vec<ScenarioReport>> {
    let proxy = fixture.proxy;
    let body = diff_body(fixture.root, fixture.level_one);

    // Cold: the first request on each fresh pod.
    let mut cold_responsibles = Vec::new();
    let mut cold_diff = Vec::new();
    let (mut responsibles_fetches, mut diff_fetches, mut rss) = (0, 0, 0);
    let started = Instant::now();
    for _ in 0..COLD_PODS {
        let pod = Pod::start(&fixture.pod_args).await?;
        proxy.counters().reset();
        cold_responsibles.push(request(client, &responsibles_url(&pod.url, fixture.root)).await);
        responsibles_fetches += proxy.counters().total();
        proxy.counters().reset();
        cold_diff.push(post(client, &format!("{}/components/diff", pod.url), &body).await);
        diff_fetches += proxy.counters().total();
        rss = rss.max(pod.peak_rss_bytes());
        pod.stop();
    }
    let cold_elapsed = started.elapsed();

    // Warm: one pod, one warm-up pass, then closed loops.
    let pod = Pod::start(&fixture.pod_args).await?;
    let urls: Arc<Vec<String>> = Arc::new(
        fixture
            .components
            .iter()
            .map(|name| responsibles_url(&pod.url, name))
            .collect(),
    );
    closed_loop(
        client,
        urls.clone(),
        fixture.clients,
        Duration::from_secs(60),
        1,
    )
    .await;
    let diff_url = format!("{}/components/diff", pod.url);
    post(client, &diff_url, &body).await;
    proxy.counters().reset();
    let (warm_responsibles, responsibles_elapsed) =
        closed_loop(client, urls, fixture.clients, fixture.seconds, usize::MAX).await;
    let warm_responsibles_fetches = proxy.counters().total();
    proxy.counters().reset();
    let (warm_diff, diff_elapsed) = post_loop(
        client,
        &diff_url,
        &body,
        fixture.clients / 2,
        fixture.seconds,
    )
    .await;
    let warm_diff_fetches = proxy.counters().total();
    let warm_rss = pod.peak_rss_bytes();
    pod.stop();

    let cold = |mode: &str, samples: &[Sample], fetches: usize| {
        let mut figures = Summary::of(mode, samples, cold_elapsed, fetches / COLD_PODS, rss);
        figures.throughput_per_second = 0.0; // one request per fresh pod
        figures
    };
    Ok(vec![
        ScenarioReport {
            name: "responsibles".into(),
            description: format!(
                "`GET /ocm/component/responsibles`: cold, the first request on a fresh pod ({COLD_PODS} pods; origin fetches per request); warm, {} closed-loop clients for {} s over {} component versions after one warm-up pass. Registry latency {} ms.",
                fixture.clients,
                fixture.seconds.as_secs(),
                fixture.components.len(),
                fixture.latency_ms
            ),
            modes: vec![
                cold("cold (fresh pod)", &cold_responsibles, responsibles_fetches),
                Summary::of(
                    "warm (cached answers)",
                    &warm_responsibles,
                    responsibles_elapsed,
                    warm_responsibles_fetches,
                    warm_rss,
                ),
            ],
            series: vec![],
        },
        ScenarioReport {
            name: "diff".into(),
            description: format!(
                "`POST /components/diff` of the {}-component root against a level-one component's subtree: cold, the first request on a fresh pod, right after the cold responsibles request (both trees from the registry but the root's descriptor; {COLD_PODS} pods, origin fetches per request); warm, {} closed-loop clients for {} s. Registry latency {} ms.",
                fixture.tree_components,
                fixture.clients / 2,
                fixture.seconds.as_secs(),
                fixture.latency_ms
            ),
            modes: vec![
                cold("cold (fresh pod)", &cold_diff, diff_fetches),
                Summary::of(
                    "warm (cached answer)",
                    &warm_diff,
                    diff_elapsed,
                    warm_diff_fetches,
                    warm_rss,
                ),
            ],
            series: vec![],
        },
    ])
}
