//! Redirects through the fake registry: followed for blob and manifest GETs only, a few hops,
//! without credentials, never into a network the registry is not in (checked before connecting).

use std::collections::HashMap;

use odg_oci::{
    Credentials, OciErrorKind, OciStore, RegistryClient, RegistryClientConfig, RegistryEndpoint,
};
use odg_test_support::{FakeRegistry, Fault, OciImageFixture, PathKind};

use crate::fast_config;

const REPOSITORY: &str = "team/app";

fn endpoint_with_credentials(host: &str) -> RegistryEndpoint {
    let config = RegistryClientConfig {
        credentials: HashMap::from([(host.to_owned(), Credentials::new("bob", "builder"))]),
        ..fast_config()
    };
    RegistryClient::new(config).unwrap().endpoint(true, host)
}

async fn registry_with(image: &OciImageFixture, faults: Vec<Fault>) -> FakeRegistry {
    let mut builder = FakeRegistry::builder()
        .basic_auth("bob", "builder")
        .image(REPOSITORY, "1.0.0", image)
        .tags(REPOSITORY, &["1.0.0"]);
    for fault in faults {
        builder = builder.fault(fault);
    }
    builder.start().await
}

#[tokio::test]
async fn manifest_redirect_to_another_loopback_port_is_followed_without_credentials() {
    let image = OciImageFixture::simple("redirect-manifest");
    let storage = FakeRegistry::builder()
        .image(REPOSITORY, "1.0.0", &image)
        .start()
        .await;
    let registry = registry_with(&image, Vec::new()).await;
    let store = endpoint_with_credentials(&registry.host());
    // Learn that the registry wants Basic auth, so the redirected request carries it.
    store.list_tags(REPOSITORY).await.unwrap();
    let authorized_before = registry.authorized_requests();
    registry.add_fault(Fault::redirect(
        PathKind::Manifest,
        1,
        302,
        // User info in the location must not turn into an Authorization header either.
        &format!(
            "http://mallory:secret@{}/v2/{REPOSITORY}/manifests/1.0.0",
            storage.host()
        ),
    ));
    let fetched = store.get_manifest(REPOSITORY, "1.0.0").await.unwrap();
    assert_eq!(fetched.digest, image.digest);
    assert_eq!(registry.authorized_requests(), authorized_before + 1);
    assert_eq!(storage.requests(PathKind::Manifest), 1);
    assert_eq!(
        storage.authorized_requests(),
        0,
        "credentials followed the redirect"
    );
}

#[tokio::test]
async fn redirects_into_private_and_link_local_ranges_are_refused_without_connecting() {
    let image = OciImageFixture::simple("redirect-private");
    let (config_digest, _) = image.blobs().into_iter().next().unwrap();
    for target in [
        "http://10.0.0.1:5000/v2/team/app/blobs/x?X-Amz-Signature=secret",
        "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
        "http://[fd00::1]/x",
    ] {
        let registry = FakeRegistry::builder()
            .image(REPOSITORY, "1.0.0", &image)
            .fault(Fault::redirect(PathKind::Blob, 1, 307, target))
            .start()
            .await;
        let store = RegistryClient::new(fast_config())
            .unwrap()
            .endpoint(true, &registry.host());
        let error = store
            .get_blob(REPOSITORY, &config_digest, 1 << 20)
            .await
            .unwrap_err();
        // A connection attempt would end as a timeout or "cannot connect" (and be retried):
        // refusal is decided on the address, before any traffic leaves for it.
        assert_eq!(error.kind(), OciErrorKind::Protocol, "{target}: {error}");
        let message = error.to_string();
        assert!(message.contains("redirect refused"), "{message}");
        assert!(message.contains("and the registry is not"), "{message}");
        assert!(
            !message.contains("secret") && !message.contains("meta-data"),
            "{message}"
        );
        // Not retried: the registry would only answer the same.
        assert_eq!(registry.requests(PathKind::Blob), 1);
    }
}

#[tokio::test]
async fn hop_limit_ends_redirect_loops() {
    let image = OciImageFixture::simple("redirect-loop");
    let (config_digest, _) = image.blobs().into_iter().next().unwrap();
    let registry = FakeRegistry::builder()
        .image(REPOSITORY, "1.0.0", &image)
        .start()
        .await;
    let own_blob = format!("{}/v2/{REPOSITORY}/blobs/{config_digest}", registry.url());
    registry.add_fault(Fault::redirect(PathKind::Blob, 100, 302, &own_blob));
    let store = RegistryClient::new(fast_config())
        .unwrap()
        .endpoint(true, &registry.host());
    let error = store
        .get_blob(REPOSITORY, &config_digest, 1 << 20)
        .await
        .unwrap_err();
    assert_eq!(error.kind(), OciErrorKind::Protocol);
    assert!(
        error.to_string().contains("more than 3 redirects"),
        "{error}"
    );
    // The first answer and three followed hops; the fourth redirect is not followed, nothing is retried.
    assert_eq!(registry.requests(PathKind::Blob), 4);
}

#[tokio::test]
async fn head_put_and_tag_list_redirects_are_not_followed() {
    let image = OciImageFixture::simple("redirect-methods");
    let (config_digest, config_bytes) = image.blobs().into_iter().next().unwrap();
    let elsewhere = FakeRegistry::builder().start().await;
    let registry = FakeRegistry::builder()
        .image(REPOSITORY, "1.0.0", &image)
        .fault(Fault::redirect(
            PathKind::Blob,
            1,
            307,
            &format!("{}/v2/{REPOSITORY}/blobs/{config_digest}", elsewhere.url()),
        ))
        .start()
        .await;
    let store = RegistryClient::new(fast_config())
        .unwrap()
        .endpoint(true, &registry.host());

    // A HEAD answered with a redirect to storage means the registry has the blob.
    assert!(store.blob_exists(REPOSITORY, &config_digest).await.unwrap());

    registry.add_fault(Fault::redirect(
        PathKind::Manifest,
        1,
        307,
        &format!("{}/v2/{REPOSITORY}/manifests/2.0.0", elsewhere.url()),
    ));
    let error = store
        .put_manifest(
            REPOSITORY,
            "2.0.0",
            odg_oci::OCI_MANIFEST_MEDIA_TYPE,
            image.manifest.clone(),
        )
        .await
        .unwrap_err();
    assert!(error.to_string().contains("307"), "{error}");

    registry.add_fault(Fault::redirect(
        PathKind::Tags,
        1,
        302,
        &format!("{}/v2/{REPOSITORY}/tags/list", elsewhere.url()),
    ));
    assert!(store.list_tags(REPOSITORY).await.is_err());

    assert_eq!(
        elsewhere.total_requests(),
        0,
        "nothing followed a HEAD, PUT or tag list"
    );
    // The registry is unharmed for GETs.
    assert_eq!(
        store
            .get_blob(REPOSITORY, &config_digest, 1 << 20)
            .await
            .unwrap(),
        config_bytes
    );
}

#[tokio::test]
async fn client_errors_other_than_408_and_429_are_not_retried() {
    let image = OciImageFixture::simple("no-retry-4xx");
    for status in [400, 403, 405, 410] {
        let registry = FakeRegistry::builder()
            .image(REPOSITORY, "1.0.0", &image)
            .fault(Fault::status(PathKind::Manifest, 10, status))
            .start()
            .await;
        let store = RegistryClient::new(fast_config())
            .unwrap()
            .endpoint(true, &registry.host());
        store.get_manifest(REPOSITORY, "1.0.0").await.unwrap_err();
        assert_eq!(registry.requests(PathKind::Manifest), 1, "{status}");
    }
    let registry = FakeRegistry::builder()
        .image(REPOSITORY, "1.0.0", &image)
        .fault(Fault::status(PathKind::Manifest, 1, 408))
        .start()
        .await;
    let store = RegistryClient::new(fast_config())
        .unwrap()
        .endpoint(true, &registry.host());
    store.get_manifest(REPOSITORY, "1.0.0").await.unwrap();
    assert_eq!(registry.requests(PathKind::Manifest), 2);
}
