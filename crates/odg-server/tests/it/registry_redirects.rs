//! Registry redirects seen through the API (fake registries for the redirect answers): a redirect
//! to another loopback registry is followed; one into cloud metadata is a 502 after one request.

use axum::http::StatusCode;
use odg_components::RepositoryStores;
use odg_oci::{RegistryClient, RegistryClientConfig};
use odg_ocm::OcmRepositoryUrl;
use odg_test_support::{FakeRegistry, Fault, PathKind};

use crate::support::{app_over, descriptor, rule, seed};

const COMPONENT_URI: &str = "/ocm/component?component_name=acme.org/app&version=1.0.0";

/// A fake registry holding `acme.org/app:1.0.0` under `ocm`, and the repository URL naming it.
async fn seeded_fake(client: &RegistryClient) -> (FakeRegistry, OcmRepositoryUrl) {
    let fake = FakeRegistry::builder().start().await;
    let repository: OcmRepositoryUrl = format!("http://{}/ocm", fake.host()).parse().unwrap();
    let store = client.endpoint(true, &repository.host);
    seed(
        &store,
        &repository,
        vec![descriptor("acme.org/app", "1.0.0", &[])],
    )
    .await;
    (fake, repository)
}

#[tokio::test]
async fn manifest_redirect_to_another_loopback_registry_is_followed() {
    let client = RegistryClient::new(RegistryClientConfig::default()).unwrap();
    let (registry, repository) = seeded_fake(&client).await;
    // The same documents (the repository context names the registry, so the blobs match).
    let storage = FakeRegistry::builder().start().await;
    seed(
        &client.endpoint(true, &storage.host()),
        &repository,
        vec![descriptor("acme.org/app", "1.0.0", &[])],
    )
    .await;
    let storage_manifests_before = storage.requests(PathKind::Manifest);
    registry.add_fault(Fault::redirect(
        PathKind::Manifest,
        1,
        302,
        &format!(
            "{}/v2/ocm/component-descriptors/acme.org/app/manifests/1.0.0",
            storage.url()
        ),
    ));
    let app = app_over(
        RepositoryStores::new(client),
        vec![rule(repository)],
        vec![],
    );
    let (status, body) = app.get(COMPONENT_URI).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["component"]["name"], "acme.org/app");
    assert_eq!(
        storage.requests(PathKind::Manifest),
        storage_manifests_before + 1
    );
}

#[tokio::test]
async fn redirect_into_cloud_metadata_is_a_502_after_one_request() {
    let client = RegistryClient::new(RegistryClientConfig::default()).unwrap();
    let (registry, repository) = seeded_fake(&client).await;
    registry.add_fault(Fault::redirect(
        PathKind::Blob,
        10,
        307,
        "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
    ));
    let blobs_before = registry.requests(PathKind::Blob);
    let app = app_over(
        RepositoryStores::new(client),
        vec![rule(repository)],
        vec![],
    );
    let (status, body) = app.get(COMPONENT_URI).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{body}");
    let message = body["error"].as_str().unwrap();
    assert!(message.contains("redirect refused"), "{message}");
    assert!(
        message.contains("169.254.169.254 is a link-local address"),
        "{message}"
    );
    assert!(!message.contains("security-credentials"), "{message}");
    assert_eq!(
        registry.requests(PathKind::Blob),
        blobs_before + 1,
        "not retried"
    );
}
