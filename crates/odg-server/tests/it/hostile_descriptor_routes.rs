//! Hostile descriptor layers in a real registry: refused with a JSON error, remembered as unreadable
//! so that a retry costs the registry nothing, and forgotten when the cache route invalidates them.

use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use odg_components::RepositoryStores;
use odg_oci::{OciStore, RegistryClient, RegistryClientConfig};
use odg_ocm::{OcmRepositoryUrl, MEDIA_TYPE_DESCRIPTOR_YAML};
use odg_test_support::{sha256_digest, DelayProxy, OciImageFixture, RegistryServer};

use crate::support::{
    cached_service_over, descriptor, seed, test_authenticator, TestApp, ADMIN_TOKEN,
};

const HOSTILE_COMPONENT: &str = "acme.org/hostile";

/// A descriptor whose label value is `[` x 100,000 then `]` x 100,000: about 200 KB.
fn hostile_document() -> String {
    let brackets = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    format!(
        "meta:\n  schemaVersion: v2\ncomponent:\n  name: {HOSTILE_COMPONENT}\n  version: 1.0.0\n  provider: p\n  \
         repositoryContexts: []\n  resources: []\n  sources: []\n  componentReferences: []\n  labels:\n  \
         - name: hostile\n    value: {brackets}\n"
    )
}

/// Pushes `document` as the only layer of the component version's manifest, the way OCM tools do.
async fn push_document(
    store: &dyn OciStore,
    repository: &OcmRepositoryUrl,
    name: &str,
    version: &str,
    document: &str,
) {
    let image = OciImageFixture::new(
        odg_ocm::MEDIA_TYPE_CONFIG,
        b"{}",
        &[(MEDIA_TYPE_DESCRIPTOR_YAML, document.as_bytes())],
    );
    let path = odg_ocm::component_repository_path(repository, name);
    for (digest, bytes) in image.blobs() {
        store.put_blob(&path, &digest, bytes).await.unwrap();
    }
    let digest = store
        .put_manifest(
            &path,
            version,
            odg_oci::OCI_MANIFEST_MEDIA_TYPE,
            image.manifest.clone(),
        )
        .await
        .unwrap();
    assert_eq!(digest, sha256_digest(&image.manifest));
}

/// The API with a memory cache over `stores`, and the admin token for `DELETE /cache`.
async fn cached_app_over(stores: RepositoryStores, repository: OcmRepositoryUrl) -> TestApp {
    let (service, cache) = cached_service_over(stores, repository, 16 << 20).await;
    TestApp {
        router: odg_server::router(
            odg_server::AppState::new(service).with_auth(test_authenticator()),
        ),
        cache: Some(cache),
        _directory: None,
    }
}

#[tokio::test]
async fn a_hostile_layer_is_refused_once_remembered_and_forgotten_on_invalidation() {
    let registry = RegistryServer::start().await;
    let proxy = DelayProxy::start(&registry.host(), Duration::ZERO).await;
    let client = RegistryClient::new(RegistryClientConfig::default()).unwrap();
    let repository: OcmRepositoryUrl = format!("http://{}/ocm", proxy.host()).parse().unwrap();
    let store = client.endpoint(true, &repository.host);
    push_document(
        &store,
        &repository,
        HOSTILE_COMPONENT,
        "1.0.0",
        &hostile_document(),
    )
    .await;
    let app = cached_app_over(RepositoryStores::new(client), repository).await;
    let uri = format!("/ocm/component?component_name={HOSTILE_COMPONENT}&version=1.0.0");

    proxy.reset_counters();
    let (status, body) = app.get(&uri).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{body}");
    let message = body["error"].as_str().unwrap();
    assert!(message.contains("nests deeper than 64 levels"), "{message}");
    let first_requests = proxy.total_requests();
    assert!(first_requests >= 2, "manifest and layer: {first_requests}");

    // the retry is answered from the cache: the same error, no registry request
    let (status, again) = app.get(&uri).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY);
    assert_eq!(again, body);
    assert_eq!(proxy.total_requests(), first_requests);

    // the invalidation route forgets the answer like any other entry
    let request = Request::delete(format!("/cache?component_name={HOSTILE_COMPONENT}"))
        .header("authorization", format!("Bearer {ADMIN_TOKEN}"))
        .body(Body::empty())
        .unwrap();
    let (status, _, body) = app.send(request).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, _) = app.get(&uri).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY);
    assert_eq!(proxy.total_requests(), 2 * first_requests);
}

#[tokio::test]
async fn a_fixed_push_is_served_once_the_unreadable_answer_is_invalidated() {
    let registry = RegistryServer::start().await;
    let client = RegistryClient::new(RegistryClientConfig::default()).unwrap();
    let repository: OcmRepositoryUrl = format!("http://{}/ocm", registry.host()).parse().unwrap();
    let store = client.endpoint(true, &repository.host);
    push_document(
        &store,
        &repository,
        HOSTILE_COMPONENT,
        "1.0.0",
        &hostile_document(),
    )
    .await;
    seed(
        &store,
        &repository,
        vec![descriptor(
            "acme.org/parent",
            "1.0.0",
            &[(HOSTILE_COMPONENT, "1.0.0")],
        )],
    )
    .await;
    let app = cached_app_over(RepositoryStores::new(client), repository.clone()).await;
    let uri = format!("/ocm/component?component_name={HOSTILE_COMPONENT}&version=1.0.0");
    let (status, _) = app.get(&uri).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY);
    // inside a tree, the hostile descriptor is a broken dependency
    let (status, body) = app
        .get("/ocm/component/dependencies?component_name=acme.org/parent&version=1.0.0")
        .await;
    assert_eq!(status, StatusCode::FAILED_DEPENDENCY, "{body}");
    let message = body["error"].as_str().unwrap();
    assert!(message.contains("nests deeper than 64 levels"), "{message}");

    let fixed = format!(
        "meta:\n  schemaVersion: v2\ncomponent:\n  name: {HOSTILE_COMPONENT}\n  version: 1.0.0\n  provider: p\n  \
         repositoryContexts: []\n  resources: []\n  sources: []\n  componentReferences: []\n"
    );
    push_document(&store, &repository, HOSTILE_COMPONENT, "1.0.0", &fixed).await;
    let request = Request::delete(format!(
        "/cache?component_name={HOSTILE_COMPONENT}&version=1.0.0"
    ))
    .header("authorization", format!("Bearer {ADMIN_TOKEN}"))
    .body(Body::empty())
    .unwrap();
    let (status, _, body) = app.send(request).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = app.get(&uri).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["component"]["name"], HOSTILE_COMPONENT);
    // the tree was dropped with the descriptor: it is whole now
    let (status, body) = app
        .get("/ocm/component/dependencies?component_name=acme.org/parent&version=1.0.0")
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["componentDependencies"].as_array().unwrap().len(), 2);
}
