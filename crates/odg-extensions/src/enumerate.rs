//! `odg enumerate`: the artefact enumerator's load. For every configured component: list its
//! versions, walk each version's dependency tree (`/ocm/component/dependencies`), then fetch
//! every descriptor of every tree (`/ocm/component`), each distinct component version once per
//! run, with at most `concurrency` requests in flight and after a jittered start. Then, unless
//! skipped, the artefact metadata of those component versions (`POST /artefacts/metadata/query`,
//! each distinct name and version once, `metadata_batch_size` entries per request).

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::{json, Value};

use crate::client::{RequestError, Route, ServiceClient};
use crate::run::{
    bounded, failure, jittered_start, resolve_versions, CounterBaseline, RootVersion,
};
use crate::summary::{Failure, RunSummary};
use crate::target::Target;

#[derive(Debug, Clone)]
pub struct EnumerateOptions {
    /// Requests in flight at once.
    pub concurrency: usize,
    /// The run starts after a random delay in `0..=max_start_jitter`.
    pub max_start_jitter: Duration,
    /// `/metrics` URLs scraped before and after, for the cache effect (empty: none).
    pub metrics_urls: Vec<String>,
    /// Query the artefact metadata of the walked component versions.
    pub metadata: bool,
    /// Entries (component versions) per metadata query.
    pub metadata_batch_size: usize,
}

impl Default for EnumerateOptions {
    fn default() -> Self {
        EnumerateOptions {
            concurrency: 8,
            max_start_jitter: Duration::ZERO,
            metrics_urls: Vec::new(),
            metadata: true,
            metadata_batch_size: DEFAULT_METADATA_BATCH_SIZE,
        }
    }
}

/// Entries per metadata query unless configured otherwise.
pub const DEFAULT_METADATA_BATCH_SIZE: usize = 100;

/// What the metadata queries of a run found.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct MetadataReport {
    /// Distinct (component name, version) pairs queried.
    pub component_versions: usize,
    /// Query requests sent (failed ones included).
    pub queries: usize,
    pub failed_queries: usize,
    /// Rows the successful queries returned, summed over the queries.
    pub rows: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct EnumerateReport {
    pub command: &'static str,
    pub components: usize,
    /// Root versions whose trees were walked.
    pub root_versions: usize,
    /// Distinct component versions in all trees (each fetched once).
    pub component_versions: usize,
    /// `None` when skipped (`--no-metadata`).
    pub metadata: Option<MetadataReport>,
    #[serde(flatten)]
    pub summary: RunSummary,
}

impl EnumerateReport {
    pub fn render_text(&self) -> String {
        let metadata = match &self.metadata {
            Some(metadata) => format!(
                "metadata: {} queries ({} failed) for {} component versions, {} rows",
                metadata.queries,
                metadata.failed_queries,
                metadata.component_versions,
                metadata.rows
            ),
            None => "metadata: skipped".to_string(),
        };
        format!(
            "enumerate: {} in {:.2} s (after a {:.1} s jittered start): {} components, {} root versions, {} component versions in their trees\n{metadata}\n{}",
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
    let pairs: BTreeSet<(String, String)> = members
        .iter()
        .map(|member| (member.component_name.clone(), member.version.clone()))
        .collect();
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

    let metadata = if options.metadata {
        Some(query_metadata(client, pairs, options, &mut failures).await)
    } else {
        None
    };

    let duration = started.elapsed();
    let service = baseline.effect(client).await;
    let summary = RunSummary::new(client.stats(), duration, start_delay, service, failures);
    EnumerateReport {
        command: "enumerate",
        components: targets.len(),
        root_versions: roots.len(),
        component_versions,
        metadata,
        summary,
    }
}

/// Queries the metadata of `pairs`, `metadata_batch_size` per request, at most `concurrency`
/// requests at once; counts the rows. A failed query is one failure, named by its first entry.
async fn query_metadata(
    client: &ServiceClient,
    pairs: BTreeSet<(String, String)>,
    options: &EnumerateOptions,
    failures: &mut Vec<Failure>,
) -> MetadataReport {
    let pairs: Vec<(String, String)> = pairs.into_iter().collect();
    let batches: Vec<&[(String, String)]> =
        pairs.chunks(options.metadata_batch_size.max(1)).collect();
    let mut report = MetadataReport {
        component_versions: pairs.len(),
        queries: batches.len(),
        ..MetadataReport::default()
    };
    let answers = bounded(batches, options.concurrency, |batch| {
        let client = client.clone();
        async move {
            let entries: Vec<Value> = batch
                .iter()
                .map(
                    |(name, version)| json!({"component_name": name, "component_version": version}),
                )
                .collect();
            let answer = client
                .post(Route::MetadataQuery, &[], &json!({ "entries": entries }))
                .await
                .and_then(|body| match body {
                    Value::Array(rows) => Ok(rows.len() as u64),
                    _ => Err(RequestError {
                        status: None,
                        message: "the metadata answer is not a JSON array".to_string(),
                    }),
                });
            (batch, answer)
        }
    })
    .await;
    for (batch, answer) in answers {
        match answer {
            Ok(rows) => report.rows += rows,
            Err(mut error) => {
                report.failed_queries += 1;
                error.message = format!(
                    "{} (a query of {} component versions, this one first)",
                    error.message,
                    batch.len()
                );
                let (name, version) = &batch[0];
                failures.push(failure(Route::MetadataQuery, name, Some(version), error));
            }
        }
    }
    report
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::client::RequestStats;

    fn report(metadata: Option<MetadataReport>) -> EnumerateReport {
        let mut stats = RequestStats::default();
        stats.by_route.insert(Route::MetadataQuery.label(), 2);
        EnumerateReport {
            command: "enumerate",
            components: 1,
            root_versions: 1,
            component_versions: 150,
            metadata,
            summary: RunSummary::new(stats, Duration::ZERO, Duration::ZERO, None, Vec::new()),
        }
    }

    #[test]
    fn the_summary_reports_the_metadata_queries_and_rows() {
        let report = report(Some(MetadataReport {
            component_versions: 150,
            queries: 2,
            failed_queries: 0,
            rows: 7,
        }));
        let text = report.render_text();
        assert!(
            text.contains("\nmetadata: 2 queries (0 failed) for 150 component versions, 7 rows\n"),
            "{text}"
        );
        assert!(text.contains("(metadata 2)"), "{text}");
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["metadata"]["rows"], 7);
        assert_eq!(json["metadata"]["queries"], 2);
        assert_eq!(json["requests"]["by_route"]["metadata"], 2);
    }

    #[test]
    fn skipped_metadata_is_null_and_said_so() {
        let report = report(None);
        assert!(report.render_text().contains("\nmetadata: skipped\n"));
        assert!(serde_json::to_value(&report).unwrap()["metadata"].is_null());
    }
}
