//! The prefill of `odg cache-manager`: for every configured component, its version list, and for
//! each selected version its descriptor and its dependency graph, requested through the service
//! so that every cache tier (the shared one included) holds them before users ask.

use std::time::{Duration, Instant};

use serde::Serialize;

use crate::client::{Route, ServiceClient};
use crate::run::{bounded, failure, jittered_start, resolve_versions, CounterBaseline};
use crate::summary::RunSummary;
use crate::target::Target;

#[derive(Debug, Clone)]
pub struct PrefillOptions {
    pub concurrency: usize,
    pub max_start_jitter: Duration,
    pub metrics_urls: Vec<String>,
}

impl Default for PrefillOptions {
    fn default() -> Self {
        PrefillOptions {
            concurrency: 4,
            max_start_jitter: Duration::ZERO,
            metrics_urls: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct PrefillReport {
    pub command: &'static str,
    pub components: usize,
    pub root_versions: usize,
    /// Elements of all dependency graphs fetched (their descriptors are cached on the way).
    pub graph_elements: usize,
    #[serde(flatten)]
    pub summary: RunSummary,
}

impl PrefillReport {
    pub fn render_text(&self) -> String {
        format!(
            "prefill: {} in {:.2} s: {} components, {} versions (descriptor and dependency graph each), {} graph elements\n{}",
            if self.summary.ok { "ok" } else { "FAILED" },
            self.summary.duration_seconds,
            self.components,
            self.root_versions,
            self.graph_elements,
            self.summary.render_text()
        )
    }
}

pub async fn prefill(
    client: &ServiceClient,
    targets: &[Target],
    options: &PrefillOptions,
) -> PrefillReport {
    let start_delay = jittered_start(options.max_start_jitter).await;
    let started = Instant::now();
    let baseline = CounterBaseline::take(client, &options.metrics_urls).await;
    let mut failures = Vec::new();
    // Listing the versions fills the version lists.
    let roots = resolve_versions(client, targets, options.concurrency, &mut failures).await;
    let requests = roots.iter().flat_map(|root| {
        [
            (root.clone(), Route::Component),
            (root.clone(), Route::Dependencies),
        ]
    });
    let answers = bounded(requests, options.concurrency, |(root, route)| {
        let client = client.clone();
        async move {
            let mut query = vec![
                ("component_name", root.component_name.as_str()),
                ("version", root.version.as_str()),
            ];
            if route == Route::Dependencies {
                query.push(("populate", "componentReferences"));
            }
            if let Some(url) = &root.ocm_repo_url {
                query.push(("ocm_repo_url", url));
            }
            let answer = client.get(route, &query).await;
            (root, route, answer)
        }
    })
    .await;
    let mut graph_elements = 0;
    for (root, route, answer) in answers {
        match answer {
            Ok(body) if route == Route::Dependencies => {
                graph_elements += body["componentDependencies"].as_array().map_or(0, Vec::len);
            }
            Ok(_) => {}
            Err(error) => failures.push(failure(
                route,
                &root.component_name,
                Some(&root.version),
                error,
            )),
        }
    }
    let duration = started.elapsed();
    let service = baseline.effect(client).await;
    let summary = RunSummary::new(client.stats(), duration, start_delay, service, failures);
    PrefillReport {
        command: "prefill",
        components: targets.len(),
        root_versions: roots.len(),
        graph_elements,
        summary,
    }
}
