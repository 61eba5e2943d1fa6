//! What every run reports: its requests (by route, failures, retries, shed, latency), the cache
//! effect it had on the service (counter deltas of `/metrics`), and its failures — as JSON for
//! machines and as a few lines of text for logs.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use serde::Serialize;

use crate::client::RequestStats;
use crate::service_metrics::ServiceCounters;

/// At most this many failures are listed (all are counted).
pub const LISTED_FAILURES: usize = 50;

/// One failed request.
#[derive(Debug, Clone, Serialize)]
pub struct Failure {
    pub route: &'static str,
    pub component_name: String,
    pub version: Option<String>,
    pub status: Option<u16>,
    pub message: String,
}

/// What the run cost the service, from `/metrics` before and after.
#[derive(Debug, Clone, Serialize)]
pub struct ServiceEffect {
    pub scraped_endpoints: usize,
    pub delta: ServiceCounters,
}

#[derive(Debug, Clone, Serialize)]
pub struct LatencySummary {
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub max_ms: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct RequestsSummary {
    pub total: u64,
    pub by_route: BTreeMap<&'static str, u64>,
    pub failed: u64,
    pub retries: u64,
    pub shed: u64,
    pub latency: Option<LatencySummary>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RunSummary {
    pub ok: bool,
    pub duration_seconds: f64,
    /// The jittered start's sleep, not part of `duration_seconds`.
    pub start_delay_seconds: f64,
    pub requests: RequestsSummary,
    /// `None` when not scraped (or a scrape failed).
    pub service: Option<ServiceEffect>,
    pub failures_total: usize,
    pub failures: Vec<Failure>,
}

impl RunSummary {
    pub fn new(
        stats: RequestStats,
        duration: Duration,
        start_delay: Duration,
        service: Option<ServiceEffect>,
        mut failures: Vec<Failure>,
    ) -> RunSummary {
        let failures_total = failures.len();
        failures.truncate(LISTED_FAILURES);
        let mut latencies = stats.latencies.clone();
        latencies.sort_by(f64::total_cmp);
        let latency = (!latencies.is_empty()).then(|| LatencySummary {
            p50_ms: percentile(&latencies, 50) * 1000.0,
            p95_ms: percentile(&latencies, 95) * 1000.0,
            max_ms: latencies.last().copied().unwrap_or(0.0) * 1000.0,
        });
        RunSummary {
            ok: failures_total == 0 && stats.failed == 0,
            duration_seconds: duration.as_secs_f64(),
            start_delay_seconds: start_delay.as_secs_f64(),
            requests: RequestsSummary {
                total: stats.total(),
                by_route: stats.by_route.clone(),
                failed: stats.failed,
                retries: stats.retries,
                shed: stats.shed,
                latency,
            },
            service,
            failures_total,
            failures,
        }
    }

    /// The lines after a command's headline: requests, latency, service effect, failures.
    pub fn render_text(&self) -> String {
        let mut out = String::new();
        let requests = &self.requests;
        let routes: Vec<String> = requests
            .by_route
            .iter()
            .map(|(route, count)| format!("{route} {count}"))
            .collect();
        let _ = writeln!(
            out,
            "requests: {} ({}), {} failed, {} retried, {} shed (503)",
            requests.total,
            routes.join(", "),
            requests.failed,
            requests.retries,
            requests.shed
        );
        if let Some(latency) = &requests.latency {
            let _ = writeln!(
                out,
                "latency: p50 {:.1} ms, p95 {:.1} ms, max {:.1} ms",
                latency.p50_ms, latency.p95_ms, latency.max_ms
            );
        }
        match &self.service {
            Some(effect) => {
                let delta = &effect.delta;
                let _ = writeln!(
                    out,
                    "service ({} metrics endpoint{} scraped): origin fetches {} (registry requests), origin loads {}",
                    effect.scraped_endpoints,
                    if effect.scraped_endpoints == 1 { "" } else { "s" },
                    delta.registry_requests,
                    delta.origin_loads
                );
                let tiers: Vec<String> = delta
                    .lookups
                    .iter()
                    .map(|(tier, results)| {
                        let count = |name: &str| results.get(name).copied().unwrap_or(0.0);
                        let looked_up: f64 = results.values().sum();
                        let ratio = if looked_up > 0.0 {
                            format!(
                                "{:.0}%",
                                100.0 * (count("hit") + count("stale")) / looked_up
                            )
                        } else {
                            "-".to_string()
                        };
                        format!(
                            "{tier} {} hit / {} miss ({ratio})",
                            count("hit") + count("stale"),
                            count("miss") + count("invalid")
                        )
                    })
                    .collect();
                if !tiers.is_empty() {
                    let _ = writeln!(out, "cache lookups: {}", tiers.join(", "));
                }
            }
            None => {
                let _ = writeln!(out, "service: metrics not scraped");
            }
        }
        for failure in &self.failures {
            let _ = writeln!(
                out,
                "failed: {} {}{}: {}{}",
                failure.route,
                failure.component_name,
                failure
                    .version
                    .as_deref()
                    .map(|version| format!(":{version}"))
                    .unwrap_or_default(),
                failure
                    .status
                    .map(|status| format!("{status} "))
                    .unwrap_or_default(),
                failure.message
            );
        }
        if self.failures_total > self.failures.len() {
            let _ = writeln!(
                out,
                "... and {} more failures",
                self.failures_total - self.failures.len()
            );
        }
        out
    }
}

/// p-th percentile (0..=100) of sorted values.
fn percentile(sorted: &[f64], p: usize) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[(sorted.len() - 1) * p / 100]
}
