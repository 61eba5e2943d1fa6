//! The `ceiling` scenario: warm answers of odg beside the bare-axum ceiling serving the same
//! bytes — a 10 KiB descriptor (identity, 304, gzip) and a 50-component tree of about 1.5 MB
//! (identity, gzip) — each report stating odg's throughput as a share of the ceiling's.

use std::time::Duration;

use anyhow::Context;
use odg_components::{push_descriptor, with_repository_context};
use odg_oci::{RegistryClient, RegistryClientConfig};
use odg_ocm::{ComponentDescriptor, OcmRepositoryUrl};
use odg_test_support::DelayProxy;
use serde_json::{json, Value};

use crate::ceiling::{measure, measure_with_wrk, CapturedAnswer, CeilingServer};
use crate::harness::Pod;
use crate::report::ScenarioReport;

/// Where the ceiling's tree lives in the benchmark registry, apart from the main tree.
const CEILING_REPOSITORY_PATH: &str = "ceiling";
const TREE_COMPONENTS: usize = 50;
const TREE_DEPTH: usize = 6;
const TREE_FAN_OUT: usize = 2;
/// Extra resources (about 500 bytes of JSON each) on the root, for a descriptor of about
/// 10 KiB, and on every other component, so the tree's ~600 elements make about 1.5 MB.
const ROOT_EXTRA_RESOURCES: usize = 18;
const OTHER_EXTRA_RESOURCES: usize = 2;

/// `descriptor` with `extra` more image resources, so answers have realistic sizes.
fn padded(descriptor: &ComponentDescriptor, extra: usize) -> anyhow::Result<ComponentDescriptor> {
    let mut value = serde_json::to_value(descriptor)?;
    let name = descriptor.component.name.clone();
    if let Some(Value::Array(resources)) = value.pointer_mut("/component/resources") {
        for index in 0..extra {
            resources.push(json!({
                "name": format!("image-{index:02}"),
                "version": "1.0.0",
                "type": "ociImage",
                "relation": "external",
                "access": {"type": "ociRegistry",
                           "imageReference": format!("registry.acme.invalid/images/{name}/image-{index:02}:1.0.0")},
                "extraIdentity": {},
                "labels": [{"name": "bench.example.org/purpose", "value": "padding to a realistic descriptor size"}],
                "srcRefs": [],
                "digest": {"hashAlgorithm": "SHA-256", "normalisationAlgorithm": "ociArtifactDigest/v1",
                           "value": format!("{:064x}", index)},
            }));
        }
    }
    Ok(serde_json::from_value(value)?)
}

/// Seeds the padded tree under `/ceiling` and returns the root's name.
async fn seed(registry_host: &str) -> anyhow::Result<String> {
    let tree = odg_demo::benchmark_tree(TREE_COMPONENTS, TREE_DEPTH, TREE_FAN_OUT);
    let repository: OcmRepositoryUrl =
        format!("http://{registry_host}/{CEILING_REPOSITORY_PATH}").parse()?;
    let client = RegistryClient::new(RegistryClientConfig::default())?;
    let store = client.endpoint(true, &repository.host);
    for descriptor in &tree.descriptors {
        let extra = if descriptor.component.name == tree.root_name {
            ROOT_EXTRA_RESOURCES
        } else {
            OTHER_EXTRA_RESOURCES
        };
        let descriptor = with_repository_context(padded(descriptor, extra)?, &repository);
        push_descriptor(&store, &repository, &descriptor)
            .await
            .context("seeding the ceiling tree")?;
    }
    Ok(tree.root_name)
}

/// One case: a URL and request headers, measured on odg and on the ceiling.
struct Case {
    name: &'static str,
    what: &'static str,
    path: String,
    headers: Vec<(&'static str, String)>,
}

/// What sends the ceiling scenario's requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Generator {
    /// `wrk` (from Debian's package): little CPU per request, so the servers set the figures.
    Wrk,
    /// Closed-loop reqwest clients in this process (costlier per request than the servers).
    Reqwest,
}

impl Generator {
    fn describe(self) -> &'static str {
        match self {
            Generator::Wrk => "wrk, one thread",
            Generator::Reqwest => "closed-loop reqwest clients in the bench process",
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn measure_one(
    generator: Generator,
    mode: &str,
    client: &reqwest::Client,
    url: &str,
    headers: &[(&str, &str)],
    clients: usize,
    duration: Duration,
    pid: u32,
) -> anyhow::Result<(crate::load::Summary, f64)> {
    match generator {
        Generator::Wrk => measure_with_wrk(mode, url, headers, clients, duration, pid).await,
        Generator::Reqwest => Ok(measure(mode, client, url, headers, clients, duration, pid).await),
    }
}

pub async fn run(
    client: &reqwest::Client,
    registry_host: &str,
    proxy: &DelayProxy,
    clients: usize,
    duration: Duration,
    generator: Generator,
) -> anyhow::Result<Vec<ScenarioReport>> {
    let root = seed(registry_host).await?;
    let pod = Pod::start(&[
        "--ocm-repo".to_string(),
        format!("http://{}/{CEILING_REPOSITORY_PATH}", proxy.host()),
    ])
    .await?;
    let component_path = format!("/ocm/component?component_name={root}&version=1.0.0");
    let tree_path =
        format!("/ocm/component/dependencies?component_name={root}&version=1.0.0&populate=all");
    let etag = CapturedAnswer::of(client, &format!("{}{component_path}", pod.url), &[])
        .await?
        .headers
        .into_iter()
        .find(|(name, _)| name == "etag")
        .map(|(_, value)| value)
        .context("odg sent no ETag")?;
    let gzip = || vec![("accept-encoding", "gzip".to_string())];
    let cases = [
        Case {
            name: "ceiling-component",
            what: "warm `GET /ocm/component` of a pinned 10 KiB descriptor",
            path: component_path.clone(),
            headers: vec![],
        },
        Case {
            name: "ceiling-component-304",
            what: "the same with `If-None-Match` naming its ETag (304, no body)",
            path: component_path.clone(),
            headers: vec![("if-none-match", etag)],
        },
        Case {
            name: "ceiling-component-gzip",
            what: "the same with `Accept-Encoding: gzip` (the precompressed form)",
            path: component_path,
            headers: gzip(),
        },
        Case {
            name: "ceiling-dependencies",
            what: "warm `GET /ocm/component/dependencies?populate=all` of a 50-component tree",
            path: tree_path.clone(),
            headers: vec![],
        },
        Case {
            name: "ceiling-dependencies-gzip",
            what: "the same with `Accept-Encoding: gzip`",
            path: tree_path,
            headers: gzip(),
        },
    ];
    let mut reports = Vec::new();
    for case in cases {
        eprintln!("scenario {}", case.name);
        let headers: Vec<(&str, &str)> = case
            .headers
            .iter()
            .map(|(name, value)| (*name, value.as_str()))
            .collect();
        let odg_url = format!("{}{}", pod.url, case.path);
        let answer = CapturedAnswer::of(client, &odg_url, &headers).await?;
        let ceiling = CeilingServer::start(&answer).await?;
        let ceiling_url = format!("{}{}", ceiling.url, case.path);
        let (odg, odg_cpu) = measure_one(
            generator, "odg", client, &odg_url, &headers, clients, duration, pod.pid,
        )
        .await?;
        let (bare, bare_cpu) = measure_one(
            generator,
            "ceiling: bare axum, same bytes",
            client,
            &ceiling_url,
            &headers,
            clients,
            duration,
            ceiling.pid(),
        )
        .await?;
        ceiling.stop().await;
        let share = odg.throughput_per_second / bare.throughput_per_second.max(1e-9) * 100.0;
        reports.push(ScenarioReport {
            name: case.name.into(),
            description: format!(
                "{}: status {}, {} body bytes{}; {clients} connections ({}) for {} s after 1 s of warm-up. \
                 **odg / ceiling: {share:.0} %** of the throughput; CPU per request {odg_cpu:.3} ms (odg) vs. {bare_cpu:.3} ms (ceiling).",
                case.what,
                answer.status,
                answer.body.len(),
                answer
                    .headers
                    .iter()
                    .find(|(name, _)| name == "content-encoding")
                    .map(|(_, coding)| format!(" ({coding})"))
                    .unwrap_or_default(),
                generator.describe(),
                duration.as_secs(),
            ),
            modes: vec![odg, bare],
            series: vec![],
        });
    }
    pod.stop();
    Ok(reports)
}
