//! `odg enumerate`: the artefact enumerator's load. For every configured component: list its
//! versions, walk each version's dependency tree (`/ocm/component/dependencies`), then fetch
//! every descriptor of every tree (`/ocm/component`), each distinct component version once per
//! run, with at most `concurrency` requests in flight and after a jittered start.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::client::{Route, ServiceClient};
use crate::run::{
    bounded, failure, jittered_start, resolve_versions, CounterBaseline, RootVersion,
};
use crate::summary::RunSummary;
use crate::target::Target;

#[derive(Debug, Clone)]
pub struct EnumerateOptions {
    /// Requests in flight at once.
    pub concurrency: usize,
    /// The run starts after a random delay in `0..=max_start_jitter`.
    pub max_start_jitter: Duration,
    /// `/metrics` URLs scraped before and after, for the cache effect (empty: none).
    pub metrics_urls: Vec<String>,
}

impl Default for EnumerateOptions {
    fn default() -> Self {
        EnumerateOptions {
            concurrency: 8,
            max_start_jitter: Duration::ZERO,
            metrics_urls: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct EnumerateReport {
    pub command: &'static str,
    pub components: usize,
    /// Root versions whose trees were walked.
    pub root_versions: usize,
    /// Distinct component versions in all trees (each fetched once).
    pub component_versions: usize,
    #[serde(flatten)]
    pub summary: RunSummary,
}

impl EnumerateReport {
    pub fn render_text(&self) -> String {
        format!(
            "enumerate: {} in {:.2} s (after a {:.1} s jittered start): {} components, {} root versions, {} component versions in their trees\n{}",
            if self.summary.ok { "ok" } else { "FAILED" },
            self.summary.duration_seconds,
            self.summary.start_delay_seconds,
            self.components,
            self.root_versions,
            self.component_versions,
            self.summary.render_text()
        )
    }
}

/// One element of a tree to fetch.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Member {
    component_name: String,
    version: String,
    ocm_repo_url: Option<String>,
}

pub async fn enumerate(
    client: &ServiceClient,
    targets: &[Target],
    options: &EnumerateOptions,
) -> EnumerateReport {
    let start_delay = jittered_start(options.max_start_jitter).await;
    let started = Instant::now();
    let baseline = CounterBaseline::take(client, &options.metrics_urls).await;
    let mut failures = Vec::new();

    let roots = resolve_versions(client, targets, options.concurrency, &mut failures).await;

    let trees = bounded(roots.iter().cloned(), options.concurrency, |root| {
        let client = client.clone();
        async move {
            let mut query = vec![
                ("component_name", root.component_name.as_str()),
                ("version", root.version.as_str()),
                ("populate", "componentReferences"),
            ];
            if let Some(url) = &root.ocm_repo_url {
                query.push(("ocm_repo_url", url));
            }
            let answer = client.get(Route::Dependencies, &query).await;
            (root, answer)
        }
    })
    .await;
    let mut members: BTreeSet<Member> = BTreeSet::new();
    for (root, answer) in trees {
        let RootVersion {
            component_name,
            version,
            ocm_repo_url,
        } = root;
        match answer {
            Ok(body) => {
                let elements = body["componentDependencies"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default();
                for element in elements {
                    if let (Some(name), Some(member_version)) =
                        (element["name"].as_str(), element["version"].as_str())
                    {
                        members.insert(Member {
                            component_name: name.to_string(),
                            version: member_version.to_string(),
                            ocm_repo_url: ocm_repo_url.clone(),
                        });
                    }
                }
            }
            Err(error) => failures.push(failure(
                Route::Dependencies,
                &component_name,
                Some(&version),
                error,
            )),
        }
    }

    let component_versions = members.len();
    let fetched = bounded(members, options.concurrency, |member| {
        let client = client.clone();
        async move {
            let mut query = vec![
                ("component_name", member.component_name.as_str()),
                ("version", member.version.as_str()),
            ];
            if let Some(url) = &member.ocm_repo_url {
                query.push(("ocm_repo_url", url));
            }
            let answer = client.get(Route::Component, &query).await;
            (member, answer.map(|_| ()))
        }
    })
    .await;
    for (member, answer) in fetched {
        if let Err(error) = answer {
            failures.push(failure(
                Route::Component,
                &member.component_name,
                Some(&member.version),
                error,
            ));
        }
    }

    let duration = started.elapsed();
    let service = baseline.effect(client).await;
    let summary = RunSummary::new(client.stats(), duration, start_delay, service, failures);
    EnumerateReport {
        command: "enumerate",
        components: targets.len(),
        root_versions: roots.len(),
        component_versions,
        summary,
    }
}
