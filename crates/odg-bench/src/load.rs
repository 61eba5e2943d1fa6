//! Load generators: closed loop (clients that wait for each answer) and open loop (a fixed offered
//! rate, whatever the answers), recording every request's latency and status.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;

#[derive(Debug, Clone, Copy)]
pub struct Sample {
    pub latency: Duration,
    /// HTTP status, or 0 for a transport error.
    pub status: u16,
}

/// `clients` tasks, each taking the next URL from the shared list until `duration` passes or the
/// list (cycled `passes` times) runs out.
pub async fn closed_loop(
    client: &reqwest::Client,
    urls: Arc<Vec<String>>,
    clients: usize,
    duration: Duration,
    passes: usize,
) -> (Vec<Sample>, Duration) {
    closed_loop_with(
        client,
        urls,
        Arc::new(Vec::new()),
        clients,
        duration,
        passes,
    )
    .await
}

/// [`closed_loop`] with `headers` (name, value) on every request.
pub async fn closed_loop_with(
    client: &reqwest::Client,
    urls: Arc<Vec<String>>,
    headers: Arc<Vec<(String, String)>>,
    clients: usize,
    duration: Duration,
    passes: usize,
) -> (Vec<Sample>, Duration) {
    let next = Arc::new(AtomicUsize::new(0));
    let total = urls.len() * passes.max(1);
    let client = client.clone();
    run_clients(clients, duration, move || {
        let index = next.fetch_add(1, Ordering::Relaxed);
        if index >= total {
            return None;
        }
        let (client, urls, headers) = (client.clone(), urls.clone(), headers.clone());
        Some(async move { request_with(&client, &urls[index % urls.len()], &headers).await })
    })
    .await
}

/// The closed loop itself: `clients` tasks, each awaiting the request `next` makes, then the
/// next, until `duration` passes or `next` has none left; every request's sample and the time
/// taken.
pub async fn run_clients<Next, Request>(
    clients: usize,
    duration: Duration,
    next: Next,
) -> (Vec<Sample>, Duration)
where
    Next: Fn() -> Option<Request> + Clone + Send + 'static,
    Request: Future<Output = Sample> + Send + 'static,
{
    let started = Instant::now();
    let tasks = (0..clients).map(|_| {
        let next = next.clone();
        tokio::spawn(async move {
            let mut samples = Vec::new();
            while started.elapsed() < duration {
                let Some(request) = next() else { break };
                samples.push(request.await);
            }
            samples
        })
    });
    let samples = futures::future::join_all(tasks)
        .await
        .into_iter()
        .flat_map(|samples| samples.unwrap_or_default())
        .collect();
    (samples, started.elapsed())
}

/// Sends `rate` requests per second for `duration`, each on its own task.
pub async fn open_loop(
    client: &reqwest::Client,
    urls: Arc<Vec<String>>,
    rate: u32,
    duration: Duration,
) -> (Vec<Sample>, Duration) {
    let started = Instant::now();
    let interval = Duration::from_secs_f64(1.0 / f64::from(rate.max(1)));
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut tasks = Vec::new();
    let mut index = 0;
    while started.elapsed() < duration {
        ticker.tick().await;
        let (client, url) = (client.clone(), urls[index % urls.len()].clone());
        index += 1;
        tasks.push(tokio::spawn(async move { request(&client, &url).await }));
    }
    let samples = futures::future::join_all(tasks)
        .await
        .into_iter()
        .filter_map(Result::ok)
        .collect();
    (samples, started.elapsed())
}

pub async fn request(client: &reqwest::Client, url: &str) -> Sample {
    request_with(client, url, &[]).await
}

pub async fn request_with(
    client: &reqwest::Client,
    url: &str,
    headers: &[(String, String)],
) -> Sample {
    let mut request = client.get(url);
    for (name, value) in headers {
        request = request.header(name, value);
    }
    send_timed(request).await
}

/// Sends `request` and reads the whole answer (a request is done when its answer has arrived):
/// its status, or 0 for a transport error, and the time it took.
pub async fn send_timed(request: reqwest::RequestBuilder) -> Sample {
    let started = Instant::now();
    let status = match request.send().await {
        Ok(response) => {
            let status = response.status().as_u16();
            match response.bytes().await {
                Ok(_) => status,
                Err(_) => 0,
            }
        }
        Err(_) => 0,
    };
    Sample {
        latency: started.elapsed(),
        status,
    }
}

/// Figures of one mode of one scenario.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub mode: String,
    pub requests: usize,
    pub ok: usize,
    /// 503 answers (load shedding).
    pub shed: usize,
    /// Other failures: non-2xx except 503 and 304, and transport errors.
    pub errors: usize,
    pub seconds: f64,
    pub throughput_per_second: f64,
    /// Latency percentiles of successful requests, milliseconds.
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub origin_fetches: usize,
    pub peak_rss_mib: f64,
}

impl Summary {
    pub fn of(
        mode: &str,
        samples: &[Sample],
        elapsed: Duration,
        origin_fetches: usize,
        peak_rss_bytes: u64,
    ) -> Summary {
        let mut latencies: Vec<Duration> = samples
            .iter()
            // A 304 is a successful answer to a conditional request.
            .filter(|sample| (200..300).contains(&sample.status) || sample.status == 304)
            .map(|sample| sample.latency)
            .collect();
        latencies.sort();
        let percentile = |fraction: f64| -> f64 {
            if latencies.is_empty() {
                return 0.0;
            }
            let index =
                ((latencies.len() as f64 * fraction).ceil() as usize).clamp(1, latencies.len()) - 1;
            latencies[index].as_secs_f64() * 1000.0
        };
        let ok = latencies.len();
        let shed = samples.iter().filter(|sample| sample.status == 503).count();
        Summary {
            mode: mode.to_string(),
            requests: samples.len(),
            ok,
            shed,
            errors: samples.len() - ok - shed,
            seconds: elapsed.as_secs_f64(),
            throughput_per_second: ok as f64 / elapsed.as_secs_f64().max(1e-9),
            p50_ms: percentile(0.50),
            p95_ms: percentile(0.95),
            p99_ms: percentile(0.99),
            max_ms: latencies
                .last()
                .map_or(0.0, |latency| latency.as_secs_f64() * 1000.0),
            origin_fetches,
            peak_rss_mib: peak_rss_bytes as f64 / (1024.0 * 1024.0),
        }
    }
}
