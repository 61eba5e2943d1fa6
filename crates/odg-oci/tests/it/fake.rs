//! Protocol details through the fake registry: tag pagination, media type detection, limits.

use odg_oci::{
    OciErrorKind, OciStore, RegistryClient, RegistryClientConfig, OCI_INDEX_MEDIA_TYPE,
    OCI_MANIFEST_MEDIA_TYPE,
};
use odg_test_support::{FakeRegistry, OciImageFixture, PathKind};

use crate::{endpoint, fast_config};

#[tokio::test]
async fn tags_follow_relative_and_absolute_link_pages() {
    let tags = ["a", "b", "c", "d", "e"];
    for absolute in [false, true] {
        let mut builder = FakeRegistry::builder()
            .tags("team/app", &tags)
            .tags_page_size(2);
        if absolute {
            builder = builder.absolute_links();
        }
        let fake = builder.start().await;
        let listed = endpoint(&fake.host()).list_tags("team/app").await.unwrap();
        assert_eq!(listed, tags, "absolute={absolute}");
        assert_eq!(fake.requests(PathKind::Tags), 3);
    }
}

#[tokio::test]
async fn media_type_comes_from_content_type_else_the_document() {
    let image = OciImageFixture::simple("media");
    let index = br#"{"schemaVersion":2,"manifests":[]}"#.to_vec();
    let fake = FakeRegistry::builder()
        .image("team/app", "1.0.0", &image)
        // Served with a generic type: the document decides.
        .manifest(
            "team/app",
            Some("generic"),
            "application/json",
            index.clone(),
        )
        .docker_content_digest(false)
        .start()
        .await;
    let config = RegistryClientConfig { ..fast_config() };
    let store = RegistryClient::new(config)
        .unwrap()
        .endpoint(true, &fake.host());
    let fetched = store.get_manifest("team/app", "1.0.0").await.unwrap();
    assert_eq!(fetched.media_type, OCI_MANIFEST_MEDIA_TYPE);
    // The fake (like distribution) hides types missing from Accept: application/json is not listed.
    let error = store.get_manifest("team/app", "generic").await.unwrap_err();
    assert_eq!(error.kind(), OciErrorKind::NotFound);
    let _ = OCI_INDEX_MEDIA_TYPE;
}

#[tokio::test]
async fn manifest_limit_is_configurable() {
    let image = OciImageFixture::simple("limit");
    let fake = FakeRegistry::builder()
        .image("team/app", "1.0.0", &image)
        .start()
        .await;
    let config = RegistryClientConfig {
        max_manifest_bytes: image.manifest.len() as u64 - 1,
        ..fast_config()
    };
    let store = RegistryClient::new(config)
        .unwrap()
        .endpoint(true, &fake.host());
    let error = store.get_manifest("team/app", "1.0.0").await.unwrap_err();
    assert_eq!(error.kind(), OciErrorKind::TooLarge);
    let error = store
        .put_manifest(
            "team/app",
            "2.0.0",
            OCI_MANIFEST_MEDIA_TYPE,
            image.manifest.clone(),
        )
        .await
        .unwrap_err();
    assert_eq!(error.kind(), OciErrorKind::TooLarge);
}
