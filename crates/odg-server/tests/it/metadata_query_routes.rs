//! `POST /artefacts/metadata/query` at its bounds, over a real registry behind a counting proxy:
//! more entries than allowed is a 400 naming the limit; the largest request makes registry
//! requests in proportion to its distinct component versions, never to its entries.

use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use odg_components::RepositoryStores;
use odg_oci::{RegistryClient, RegistryClientConfig};
use odg_ocm::OcmRepositoryUrl;
use odg_server::MetadataQueryLimits;
use odg_test_support::{DelayProxy, RegistryServer};
use serde_json::{json, Value};

use crate::support::{cached_service_over, compliance_on, descriptor, seed, TestApp};

const PRESENT_COMPONENTS: usize = 50;
const ABSENT_COMPONENTS: usize = 50;

struct QueryApp {
    app: TestApp,
    proxy: DelayProxy,
    _registry: RegistryServer,
}

/// Components `acme.org/present-N` in a real registry behind a counting proxy; a cached service
/// and an SQLite delivery DB over them.
async fn query_app(limits: MetadataQueryLimits) -> QueryApp {
    let registry = RegistryServer::start().await;
    let proxy = DelayProxy::start(&registry.host(), Duration::ZERO).await;
    let client = RegistryClient::new(RegistryClientConfig::default()).unwrap();
    let repository: OcmRepositoryUrl = format!("http://{}/ocm", proxy.host()).parse().unwrap();
    let store = client.endpoint(true, &repository.host);
    let descriptors = (0..PRESENT_COMPONENTS)
        .map(|index| descriptor(&format!("acme.org/present-{index}"), "1.0.0", &[]))
        .collect();
    seed(&store, &repository, descriptors).await;

    let directory = tempfile::tempdir().unwrap();
    let (components, cache) =
        cached_service_over(RepositoryStores::new(client), repository, 16 << 20).await;
    let compliance = compliance_on(
        &components,
        &odg_delivery_db::DatabaseConfig::sqlite_file(&directory.path().join("delivery.sqlite")),
    )
    .await;
    let router = odg_server::router(
        odg_server::AppState::new(components)
            .with_compliance(compliance)
            .with_metadata_query_limits(limits),
    );
    QueryApp {
        app: TestApp {
            router,
            cache: Some(cache),
            _directory: Some(directory),
        },
        proxy,
        _registry: registry,
    }
}

fn query_request(entries: &[Value]) -> Request<Body> {
    Request::post("/artefacts/metadata/query?type=finding/vulnerability")
        .header("content-type", "application/json")
        .body(Body::from(json!({"entries": entries}).to_string()))
        .unwrap()
}

/// `count` entries over the present and absent components in turn, each component version named
/// by many entries that differ in their artefact (so none is a plain repetition).
fn entries(count: usize) -> Vec<Value> {
    let components = PRESENT_COMPONENTS + ABSENT_COMPONENTS;
    (0..count)
        .map(|index| {
            let component = index % components;
            let name = if component < PRESENT_COMPONENTS {
                format!("acme.org/present-{component}")
            } else {
                format!("acme.org/absent-{component}")
            };
            json!({"component_name": name, "component_version": "1.0.0", "artefact_kind": "resource",
                   "artefact": {"artefact_name": format!("image-{}", index / components)}})
        })
        .collect()
}

#[tokio::test]
async fn more_entries_than_allowed_are_refused_naming_the_limit() {
    let limits = MetadataQueryLimits {
        max_entries: 10,
        ..MetadataQueryLimits::default()
    };
    let QueryApp {
        app,
        proxy,
        _registry,
    } = query_app(limits).await;
    proxy.reset_counters();
    let (status, _, body) = app.send(query_request(&entries(11))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["max_entries"], 10);
    let message = body["error"].as_str().unwrap();
    assert!(message.contains("at most 10"), "{message}");
    assert_eq!(proxy.total_requests(), 0, "refused before any lookup");

    let (status, _, body) = app.send(query_request(&entries(10))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn the_largest_query_asks_the_registry_once_per_distinct_component_version() {
    let limits = MetadataQueryLimits::default();
    let QueryApp {
        app,
        proxy,
        _registry,
    } = query_app(limits).await;
    let distinct = PRESENT_COMPONENTS + ABSENT_COMPONENTS;
    proxy.reset_counters();
    let (status, _, body) = app.send(query_request(&entries(limits.max_entries))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, json!([]));
    // a present version: its manifest and its only layer; an absent one: a manifest 404
    let requests = proxy.total_requests();
    assert!(
        (distinct..=3 * distinct).contains(&requests),
        "{requests} registry requests for {distinct} distinct versions in {} entries",
        limits.max_entries
    );

    // the same query again is answered from the cache, absent versions included
    let (status, _, _) = app.send(query_request(&entries(limits.max_entries))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(proxy.total_requests(), requests);
}
