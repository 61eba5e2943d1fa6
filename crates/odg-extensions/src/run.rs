//! What both extensions do around their work: the jittered start, the service counters before
//! and after, resolving targets to concrete versions, and running requests with bounded concurrency.

use std::future::Future;
use std::time::Duration;

use futures::stream::{self, StreamExt};
use rand::Rng;

use crate::client::{RequestError, Route, ServiceClient};
use crate::service_metrics::{scrape, ServiceCounters};
use crate::summary::{Failure, ServiceEffect};
use crate::target::{Target, VersionSelection};

/// Sleeps a uniformly random time in `0..=max` (nothing for zero) and returns it.
pub(crate) async fn jittered_start(max: Duration) -> Duration {
    if max.is_zero() {
        return Duration::ZERO;
    }
    let delay = rand::rng().random_range(Duration::ZERO..=max);
    tracing::info!(delay_ms = delay.as_millis() as u64, "jittered start");
    tokio::time::sleep(delay).await;
    delay
}

/// Service counters before a run, to subtract afterwards.
pub(crate) struct CounterBaseline {
    urls: Vec<String>,
    before: Option<ServiceCounters>,
}

impl CounterBaseline {
    pub(crate) async fn take(client: &ServiceClient, urls: &[String]) -> CounterBaseline {
        let before = if urls.is_empty() {
            None
        } else {
            scrape(client.http(), urls).await
        };
        CounterBaseline {
            urls: urls.to_vec(),
            before,
        }
    }

    pub(crate) async fn effect(&self, client: &ServiceClient) -> Option<ServiceEffect> {
        let before = self.before.as_ref()?;
        let after = scrape(client.http(), &self.urls).await?;
        Some(ServiceEffect {
            scraped_endpoints: self.urls.len(),
            delta: after.since(before),
        })
    }
}

/// One concrete version of a target.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct RootVersion {
    pub component_name: String,
    pub version: String,
    pub ocm_repo_url: Option<String>,
}

/// Every target's versions: exact ones as given, newest ones listed through the service.
pub(crate) async fn resolve_versions(
    client: &ServiceClient,
    targets: &[Target],
    concurrency: usize,
    failures: &mut Vec<Failure>,
) -> Vec<RootVersion> {
    let results = bounded(targets.iter().cloned(), concurrency, |target| {
        let client = client.clone();
        async move {
            let versions = match &target.versions {
                VersionSelection::Exact(version) => Ok(vec![version.clone()]),
                VersionSelection::Newest(count) => {
                    list_versions(&client, &target, (*count).max(1)).await
                }
            };
            (target, versions)
        }
    })
    .await;
    let mut roots = Vec::new();
    for (target, versions) in results {
        match versions {
            Ok(versions) if versions.is_empty() => failures.push(Failure {
                route: Route::Versions.label(),
                component_name: target.component_name.clone(),
                version: None,
                status: None,
                message: "no versions".to_string(),
            }),
            Ok(versions) => roots.extend(versions.into_iter().map(|version| RootVersion {
                component_name: target.component_name.clone(),
                version,
                ocm_repo_url: target.ocm_repo_url.clone(),
            })),
            Err(error) => failures.push(failure(
                Route::Versions,
                &target.component_name,
                None,
                error,
            )),
        }
    }
    roots
}

/// The newest `count` versions, as the service lists them (ascending; the newest last).
pub(crate) async fn list_versions(
    client: &ServiceClient,
    target: &Target,
    count: usize,
) -> Result<Vec<String>, RequestError> {
    let max = count.to_string();
    let mut query = vec![
        ("component_name", target.component_name.as_str()),
        ("max", max.as_str()),
    ];
    if let Some(filter) = &target.version_filter {
        query.push(("version_filter", filter));
    }
    if let Some(url) = &target.ocm_repo_url {
        query.push(("ocm_repo_url", url));
    }
    let body = client.get(Route::Versions, &query).await?;
    let versions = body.as_array().ok_or_else(|| RequestError {
        status: None,
        message: "the versions answer is not a JSON array".to_string(),
    })?;
    Ok(versions
        .iter()
        .filter_map(|version| version.as_str().map(str::to_owned))
        .collect())
}

pub(crate) fn failure(
    route: Route,
    component_name: &str,
    version: Option<&str>,
    error: RequestError,
) -> Failure {
    tracing::warn!(route = route.label(), component = component_name, version, status = error.status, error = %error.message, "request failed");
    Failure {
        route: route.label(),
        component_name: component_name.to_string(),
        version: version.map(str::to_owned),
        status: error.status,
        message: error.message,
    }
}

/// Runs `task` on every item, at most `concurrency` at once; results in completion order.
pub(crate) async fn bounded<I, T, F, Fut, R>(items: I, concurrency: usize, task: F) -> Vec<R>
where
    I: IntoIterator<Item = T>,
    F: FnMut(T) -> Fut,
    Fut: Future<Output = R>,
{
    stream::iter(items)
        .map(task)
        .buffer_unordered(concurrency.max(1))
        .collect()
        .await
}
