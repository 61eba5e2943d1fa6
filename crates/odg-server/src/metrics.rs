//! The HTTP metrics this crate measures, the Prometheus recorder, and `/metrics` rendering with
//! process and runtime gauges sampled at scrape time.
//!
//! Labels come from fixed sets only: the method (one of a few), the matched route *template*
//! (never the raw path), the status code. The in-flight gauge is decremented by a guard's `Drop`,
//! so an error, a panic or a client that goes away can never leak it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, PoisonError, RwLock};
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;
use metrics::{counter, gauge, histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

pub const HTTP_REQUEST_DURATION: &str = "http_server_request_duration_seconds";
pub const HTTP_ACTIVE_REQUESTS: &str = "http_server_active_requests";
/// Histogram: seconds requests waited for admission (the queue's sojourn time; 0 for requests
/// admitted at once, recorded also for requests shed after waiting).
pub const QUEUE_WAIT: &str = "odg_request_queue_wait_seconds";
/// Gauge: requests waiting for admission now.
pub const QUEUE_WAITING: &str = "odg_request_queue_waiting";
/// Counter: requests answered 503 by load shedding, by `reason` (queue_full, queue_timeout,
/// codel).
pub const REQUESTS_SHED: &str = "odg_requests_shed_total";
/// Gauge: the admission limit now (requests handled at once; fixed, or as adapted).
pub const ADMISSION_LIMIT: &str = "odg_admission_limit";
/// Gauge: adaptive admission's baseline: the 90th percentile of handler times at low concurrency,
/// seconds.
pub const ADMISSION_BASELINE: &str = "odg_admission_latency_baseline_seconds";
/// Gauge: requests admitted and being handled now.
pub const ADMITTED_IN_FLIGHT: &str = "odg_request_admitted_in_flight";
pub const BUILD_INFO: &str = "odg_build_info";
/// Gauge: connections open now, by `listener` (api, admin).
pub const HTTP_CONNECTIONS_OPEN: &str = "odg_http_connections_open";
/// Counter: connections accepted, by `listener`.
pub const HTTP_CONNECTIONS_ACCEPTED: &str = "odg_http_connections_accepted_total";
/// Counter: connections closed, by `listener` and `reason` (finished, error, header_timeout,
/// idle_timeout).
pub const HTTP_CONNECTIONS_CLOSED: &str = "odg_http_connections_closed_total";
/// Counter: times the accept loop reached the connection limit and stopped accepting until a
/// connection closed, by `listener` (connections beyond the limit wait in the listen backlog).
pub const HTTP_CONNECTION_LIMIT_WAITS: &str = "odg_http_connection_limit_waits_total";
pub const RUNTIME_WORKERS: &str = "tokio_runtime_workers";
pub const RUNTIME_ALIVE_TASKS: &str = "tokio_runtime_alive_tasks";
pub const RUNTIME_GLOBAL_QUEUE_DEPTH: &str = "tokio_runtime_global_queue_depth";
pub const RUNTIME_BUSY_SECONDS: &str = "tokio_runtime_worker_busy_seconds_total";
/// Gauge: share of worker time spent busy since the previous scrape (0..1).
pub const RUNTIME_BUSY_RATIO: &str = "tokio_runtime_busy_ratio";

/// OpenTelemetry's recommended buckets for HTTP durations, in seconds.
const DURATION_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
];
/// Finer buckets for queue and pool waits, where microseconds matter.
const WAIT_BUCKETS: &[f64] = &[
    0.0001, 0.0005, 0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the process-wide Prometheus recorder once and returns its handle.
#[allow(
    clippy::expect_used,
    reason = "start-up: constant bucket lists, and the first recorder of the process"
)]
pub fn install_recorder() -> PrometheusHandle {
    HANDLE
        .get_or_init(|| {
            let handle = PrometheusBuilder::new()
                .set_buckets(DURATION_BUCKETS)
                .and_then(|builder| {
                    builder.set_buckets_for_metric(
                        Matcher::Suffix("wait_seconds".into()),
                        WAIT_BUCKETS,
                    )
                })
                .expect("bucket lists are non-empty")
                .install_recorder()
                .expect("no other metrics recorder is installed");
            gauge!(BUILD_INFO, "version" => env!("CARGO_PKG_VERSION")).set(1.0);
            // Series that exist before the first event, so dashboards and alerts see zeros, not gaps.
            gauge!(QUEUE_WAITING).set(0.0);
            gauge!(ADMITTED_IN_FLIGHT).set(0.0);
            for reason in crate::admission::Shed::ALL {
                counter!(REQUESTS_SHED, "reason" => reason.as_str()).increment(0);
            }
            metrics_process::Collector::default().describe();
            handle
        })
        .clone()
}

/// Prometheus text with process and runtime figures sampled now.
pub fn render(handle: &PrometheusHandle) -> String {
    metrics_process::Collector::default().collect();
    sample_runtime();
    handle.render()
}

fn sample_runtime() {
    static LAST_BUSY: Mutex<Option<(Instant, Duration)>> = Mutex::new(None);
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return;
    };
    let metrics = runtime.metrics();
    let workers = metrics.num_workers();
    gauge!(RUNTIME_WORKERS).set(workers as f64);
    gauge!(RUNTIME_ALIVE_TASKS).set(metrics.num_alive_tasks() as f64);
    gauge!(RUNTIME_GLOBAL_QUEUE_DEPTH).set(metrics.global_queue_depth() as f64);
    let busy: Duration = (0..workers)
        .map(|worker| metrics.worker_total_busy_duration(worker))
        .sum();
    counter!(RUNTIME_BUSY_SECONDS).absolute(busy.as_secs());
    let now = Instant::now();
    let mut last = LAST_BUSY
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some((at, busy_then)) = *last {
        let wall = now.duration_since(at).as_secs_f64() * workers.max(1) as f64;
        if wall > 0.0 {
            let ratio = busy.saturating_sub(busy_then).as_secs_f64() / wall;
            gauge!(RUNTIME_BUSY_RATIO).set(ratio.clamp(0.0, 1.0));
        }
    }
    *last = Some((now, busy));
}

/// The methods we label by name; any other is `_OTHER`.
const METHOD_LABELS: [&str; 8] = [
    "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "_OTHER",
];

fn method_index(method: &axum::http::Method) -> usize {
    METHOD_LABELS[..7]
        .iter()
        .position(|label| *label == method.as_str())
        .unwrap_or(7)
}

/// One route template's metric handles, registered on its first request: a request then costs
/// atomic operations on handles, not a registry lookup with label strings built per request.
struct RouteMetrics {
    route: Box<str>,
    by_method: [OnceLock<MethodMetrics>; 8],
}

struct MethodMetrics {
    active: metrics::Gauge,
    /// Duration histograms of the statuses nearly every answer has, found without a lock.
    common_durations: [OnceLock<metrics::Histogram>; COMMON_STATUSES.len()],
    /// Duration histograms by status: a handful per route.
    durations: RwLock<HashMap<u16, metrics::Histogram>>,
}

const COMMON_STATUSES: [u16; 6] = [200, 304, 400, 404, 500, 503];

impl RouteMetrics {
    fn method(&self, index: usize) -> &MethodMetrics {
        self.by_method[index].get_or_init(|| MethodMetrics {
            active: gauge!(HTTP_ACTIVE_REQUESTS, "method" => METHOD_LABELS[index], "route" => self.route.to_string()),
            common_durations: Default::default(),
            durations: RwLock::new(HashMap::new()),
        })
    }

    fn record_duration(&self, index: usize, status: u16, seconds: f64) {
        let method = self.method(index);
        let register = || {
            histogram!(
                HTTP_REQUEST_DURATION,
                "method" => METHOD_LABELS[index],
                "route" => self.route.to_string(),
                "status" => status.to_string()
            )
        };
        if let Some(common) = COMMON_STATUSES.iter().position(|known| *known == status) {
            method.common_durations[common]
                .get_or_init(register)
                .record(seconds);
            return;
        }
        if let Some(histogram) = method
            .durations
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&status)
        {
            histogram.record(seconds);
            return;
        }
        method
            .durations
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(status)
            .or_insert_with(register)
            .record(seconds);
    }
}

/// The handles of `route`, registered on first use and kept for the process's life (the
/// registry keeps them as long anyway): a request holds a plain reference, with no reference
/// count that every core would update. Routes are the templates of the route table (and
/// `unmatched`), so there are as many as the table has.
fn route_metrics(route: &str) -> &'static RouteMetrics {
    static ROUTES: OnceLock<RwLock<HashMap<Box<str>, &'static RouteMetrics>>> = OnceLock::new();
    let routes = ROUTES.get_or_init(Default::default);
    if let Some(found) = routes
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .get(route)
    {
        return found;
    }
    routes
        .write()
        .unwrap_or_else(PoisonError::into_inner)
        .entry(route.into())
        .or_insert_with(|| {
            Box::leak(Box::new(RouteMetrics {
                route: route.into(),
                by_method: Default::default(),
            }))
        })
}

/// The metric handles of one route, found on its first request and then kept by the route's
/// middleware, so later requests skip the lookup by template.
#[derive(Clone, Default)]
pub(crate) struct RouteMetricsCell(Arc<OnceLock<&'static RouteMetrics>>);

impl RouteMetricsCell {
    fn get(&self, request: &Request) -> &'static RouteMetrics {
        self.0.get_or_init(|| route_metrics(matched_route(request)))
    }
}

fn matched_route(request: &Request) -> &str {
    request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", MatchedPath::as_str)
}

/// Counts a request in flight until dropped; records its duration with the status it ended with.
pub(crate) struct InFlight {
    metrics: &'static RouteMetrics,
    method: usize,
    started: Instant,
    status: Option<u16>,
}

impl InFlight {
    /// Starts counting `request` under its matched route template.
    pub(crate) fn start(request: &Request) -> InFlight {
        InFlight::of_route(route_metrics(matched_route(request)), request)
    }

    /// [`InFlight::start`] for a route whose handles its middleware keeps.
    pub(crate) fn start_cached(cell: &RouteMetricsCell, request: &Request) -> InFlight {
        InFlight::of_route(cell.get(request), request)
    }

    fn of_route(metrics: &'static RouteMetrics, request: &Request) -> InFlight {
        let method = method_index(request.method());
        metrics.method(method).active.increment(1.0);
        InFlight {
            metrics,
            method,
            started: Instant::now(),
            status: None,
        }
    }

    /// The request ends with `response`'s status (recorded when this is dropped).
    pub(crate) fn answered(&mut self, response: &Response) {
        self.status = Some(response.status().as_u16());
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.metrics.method(self.method).active.decrement(1.0);
        // No status: the handler panicked (answered 500 by the panic layer) or the client left (499).
        let status = self
            .status
            .unwrap_or(if std::thread::panicking() { 500 } else { 499 });
        self.metrics
            .record_duration(self.method, status, self.started.elapsed().as_secs_f64());
    }
}

/// Route-level middleware: duration histogram and in-flight gauge per route template.
pub async fn http_metrics(request: Request, next: Next) -> Response {
    let mut in_flight = InFlight::start(&request);
    let response = next.run(request).await;
    in_flight.answered(&response);
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::routing::get;
    use axum::Router;
    use tower::ServiceExt;
    use tower_http::catch_panic::CatchPanicLayer;

    #[tokio::test]
    async fn a_panicking_handler_does_not_leak_the_in_flight_gauge() {
        let handle = install_recorder();
        let router = Router::new()
            .route(
                "/boom/{id}",
                get(|| async {
                    panic!("handler bug");
                    #[allow(unreachable_code)]
                    ""
                }),
            )
            .route_layer(axum::middleware::from_fn(http_metrics))
            .layer(CatchPanicLayer::new());
        for id in 0..3 {
            let response = router
                .clone()
                .oneshot(
                    axum::http::Request::get(format!("/boom/{id}"))
                        .body(Body::empty())
                        .unwrap(),
                )
                .await
                .unwrap();
            assert_eq!(
                response.status(),
                axum::http::StatusCode::INTERNAL_SERVER_ERROR
            );
        }
        let text = handle.render();
        let active = text
            .lines()
            .find(|line| {
                line.starts_with(HTTP_ACTIVE_REQUESTS) && line.contains(r#"route="/boom/{id}""#)
            })
            .expect("gauge present");
        assert!(active.ends_with(" 0"), "{active}");
        assert!(text.lines().any(|line| line
            .starts_with("http_server_request_duration_seconds_count")
            && line.contains(r#"status="500""#)
            && line.ends_with(" 3")));
    }
}
