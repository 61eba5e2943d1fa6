//! Against a real docker-registry (CNCF distribution 2.8): push, pull, tags, indexes, not-found kinds.

use std::time::Duration;

use bytes::Bytes;
use odg_oci::{
    parse_manifest, sha256_digest, Manifest, OciErrorKind, OciStore, OCI_INDEX_MEDIA_TYPE,
    OCI_MANIFEST_MEDIA_TYPE,
};
use odg_test_support::{oci_index, DelayProxy, OciImageFixture, PathKind, RegistryServer};

use crate::{endpoint, push_image};

#[tokio::test]
async fn push_then_pull_manifest_blobs_and_tags() {
    let registry = RegistryServer::start().await;
    let store = endpoint(&registry.host());
    let repository = "ocm/component-descriptors/example.com/demo/app";
    let image = OciImageFixture::simple("app");
    let digest = push_image(&store, repository, "1.0.0", &image).await;
    assert_eq!(digest, image.digest);
    push_image(&store, repository, "1.1.0", &image).await;

    for reference in ["1.0.0", digest.as_str()] {
        let fetched = store.get_manifest(repository, reference).await.unwrap();
        assert_eq!(fetched.bytes, image.manifest);
        assert_eq!(fetched.digest, image.digest);
        assert_eq!(fetched.media_type, OCI_MANIFEST_MEDIA_TYPE);
        let Manifest::Image(manifest) = fetched.parse().unwrap() else {
            panic!("expected an image manifest");
        };
        assert_eq!(manifest.layers.len(), 1);
    }
    for (blob_digest, bytes) in image.blobs() {
        assert_eq!(
            store
                .get_blob(repository, &blob_digest, 1024)
                .await
                .unwrap(),
            bytes
        );
        assert!(store.blob_exists(repository, &blob_digest).await.unwrap());
    }
    assert!(!store
        .blob_exists(repository, &sha256_digest(b"absent"))
        .await
        .unwrap());
    let mut tags = store.list_tags(repository).await.unwrap();
    tags.sort();
    assert_eq!(tags, vec!["1.0.0", "1.1.0"]);

    let (layer_digest, _) = &image.blobs()[1];
    let error = store
        .get_blob(repository, layer_digest, 3)
        .await
        .unwrap_err();
    assert_eq!(error.kind(), OciErrorKind::TooLarge);
}

#[tokio::test]
async fn oci_index_by_tag_and_children_by_digest() {
    let registry = RegistryServer::start().await;
    let store = endpoint(&registry.host());
    let repository = "ocm/index";
    let first = OciImageFixture::simple("first");
    let second = OciImageFixture::simple("second");
    for image in [&first, &second] {
        push_image(
            &store,
            repository,
            &format!("child-{}", &image.digest[7..15]),
            image,
        )
        .await;
    }
    let index = oci_index(&[
        (
            &first,
            &[("software.ocm.component.name", "example.com/first")],
        ),
        (
            &second,
            &[("software.ocm.component.name", "example.com/second")],
        ),
    ]);
    let index_digest = store
        .put_manifest(
            repository,
            "1.0.0",
            OCI_INDEX_MEDIA_TYPE,
            Bytes::from(index.clone()),
        )
        .await
        .unwrap();

    let fetched = store.get_manifest(repository, "1.0.0").await.unwrap();
    assert_eq!(fetched.media_type, OCI_INDEX_MEDIA_TYPE);
    assert_eq!(fetched.digest, index_digest);
    let by_digest = store.get_manifest(repository, &index_digest).await.unwrap();
    assert_eq!(by_digest.bytes, index);
    let Manifest::Index(parsed) =
        parse_manifest(&fetched.bytes, Some(&fetched.media_type)).unwrap()
    else {
        panic!("expected an index");
    };
    assert_eq!(parsed.manifests.len(), 2);
    assert_eq!(
        parsed.manifests[1].annotations["software.ocm.component.name"],
        "example.com/second"
    );
    for (entry, image) in parsed.manifests.iter().zip([&first, &second]) {
        let child = store.get_manifest(repository, &entry.digest).await.unwrap();
        assert_eq!(child.bytes, image.manifest);
    }
}

#[tokio::test]
async fn not_found_kinds() {
    let registry = RegistryServer::start().await;
    let store = endpoint(&registry.host());
    let image = OciImageFixture::simple("nf");
    push_image(&store, "present", "1.0.0", &image).await;
    let absent_digest = sha256_digest(b"absent");

    let kind_of = |error: odg_oci::OciError| error.kind();
    assert_eq!(
        kind_of(
            store
                .get_manifest("absent/repo", "1.0.0")
                .await
                .unwrap_err()
        ),
        OciErrorKind::NotFound
    );
    assert_eq!(
        kind_of(store.get_manifest("present", "9.9.9").await.unwrap_err()),
        OciErrorKind::NotFound
    );
    assert_eq!(
        kind_of(
            store
                .get_manifest("present", &absent_digest)
                .await
                .unwrap_err()
        ),
        OciErrorKind::NotFound
    );
    assert_eq!(
        kind_of(
            store
                .get_blob("present", &absent_digest, 10)
                .await
                .unwrap_err()
        ),
        OciErrorKind::NotFound
    );
    assert_eq!(
        kind_of(store.list_tags("absent/repo").await.unwrap_err()),
        OciErrorKind::NotFound
    );
    // Invalid names fail before any request, also as NotFound.
    assert_eq!(
        kind_of(
            store
                .get_manifest("present", "1.0.0+build")
                .await
                .unwrap_err()
        ),
        OciErrorKind::NotFound
    );
    assert_eq!(
        kind_of(
            store
                .put_manifest(
                    "present",
                    "1.0.0+build",
                    OCI_MANIFEST_MEDIA_TYPE,
                    image.manifest.clone()
                )
                .await
                .unwrap_err()
        ),
        OciErrorKind::NotFound
    );
    // A manifest referring to blobs the registry does not have is refused (400 MANIFEST_BLOB_UNKNOWN).
    let orphan = OciImageFixture::simple("orphan");
    let error = store
        .put_manifest(
            "present",
            "orphan",
            OCI_MANIFEST_MEDIA_TYPE,
            orphan.manifest.clone(),
        )
        .await
        .unwrap_err();
    assert_eq!(error.kind(), OciErrorKind::Protocol, "{error}");
    assert!(
        error.to_string().contains("MANIFEST_BLOB_UNKNOWN"),
        "{error}"
    );
}

#[tokio::test]
async fn delay_proxy_counts_requests_and_skips_present_blobs() {
    let registry = RegistryServer::start().await;
    let proxy = DelayProxy::start(&registry.host(), Duration::from_millis(20)).await;
    let store = endpoint(&proxy.host());
    let image = OciImageFixture::simple("proxy");
    push_image(&store, "via/proxy", "1", &image).await;
    // Per blob: HEAD, POST, PUT; then the manifest PUT.
    assert_eq!(proxy.requests(PathKind::Blob), 2);
    assert_eq!(proxy.requests(PathKind::Upload), 4);
    assert_eq!(proxy.requests(PathKind::Manifest), 1);

    proxy.reset_counters();
    push_image(&store, "via/proxy", "2", &image).await;
    assert_eq!(
        proxy.requests(PathKind::Upload),
        0,
        "present blobs are not uploaded again"
    );
    assert_eq!(proxy.requests(PathKind::Blob), 2);

    proxy.reset_counters();
    let started = std::time::Instant::now();
    store.get_manifest("via/proxy", "1").await.unwrap();
    store.list_tags("via/proxy").await.unwrap();
    assert!(started.elapsed() >= Duration::from_millis(40));
    assert_eq!(proxy.requests(PathKind::Manifest), 1);
    assert_eq!(proxy.requests(PathKind::Tags), 1);
}
