//! Integration tests of odg-oci: a real docker-registry per test, and a fake registry for faults and token auth.

mod auth;
mod fake;
mod faults;
mod metrics;
mod redirects;
mod registry;
mod tls;

use std::time::Duration;

use odg_oci::{OciStore, RegistryClient, RegistryClientConfig, RegistryEndpoint};
use odg_test_support::OciImageFixture;

/// Retries in milliseconds so fault tests stay fast.
pub fn fast_config() -> RegistryClientConfig {
    RegistryClientConfig {
        max_retries: 3,
        initial_backoff: Duration::from_millis(5),
        max_backoff: Duration::from_millis(40),
        max_retry_after: Duration::from_millis(300),
        connect_timeout: Duration::from_secs(2),
        request_timeout: Duration::from_secs(10),
        ..RegistryClientConfig::default()
    }
}

pub fn endpoint(host: &str) -> RegistryEndpoint {
    RegistryClient::new(fast_config())
        .expect("a client")
        .endpoint(true, host)
}

/// Pushes an image's blobs and its manifest under `tag`; returns the manifest digest.
pub async fn push_image(
    store: &dyn OciStore,
    repository: &str,
    tag: &str,
    image: &OciImageFixture,
) -> String {
    for (digest, bytes) in image.blobs() {
        store
            .put_blob(repository, &digest, bytes)
            .await
            .expect("push a blob");
    }
    store
        .put_manifest(
            repository,
            tag,
            odg_oci::OCI_MANIFEST_MEDIA_TYPE,
            image.manifest.clone(),
        )
        .await
        .expect("push a manifest")
}
