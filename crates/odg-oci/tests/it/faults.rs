//! Faults the real registry cannot produce, through the fake: 429, 5xx, refused connections, broken and huge bodies.

use std::time::{Duration, Instant};

use odg_oci::{sha256_digest, OciErrorKind, OciStore, RegistryClient, RegistryClientConfig};
use odg_test_support::{FakeRegistry, Fault, OciImageFixture, PathKind};

use crate::{endpoint, fast_config};

const REPOSITORY: &str = "team/app";

async fn fake_with(image: &OciImageFixture, faults: Vec<Fault>) -> FakeRegistry {
    let mut builder = FakeRegistry::builder().image(REPOSITORY, "1.0.0", image);
    for fault in faults {
        builder = builder.fault(fault);
    }
    builder.start().await
}

#[tokio::test]
async fn rate_limited_then_success_honours_retry_after() {
    let image = OciImageFixture::simple("429");
    let fake = fake_with(
        &image,
        vec![Fault::rate_limited(PathKind::Manifest, 1, "1")],
    )
    .await;
    // Retry-After: 1 s is capped to 150 ms; backoff alone would wait at most 40 ms.
    let config = RegistryClientConfig {
        max_retry_after: Duration::from_millis(150),
        ..fast_config()
    };
    let store = RegistryClient::new(config)
        .unwrap()
        .endpoint(true, &fake.host());
    let started = Instant::now();
    let fetched = store.get_manifest(REPOSITORY, "1.0.0").await.unwrap();
    let elapsed = started.elapsed();
    assert_eq!(fetched.digest, image.digest);
    assert_eq!(fake.requests(PathKind::Manifest), 2);
    assert!(elapsed >= Duration::from_millis(150), "{elapsed:?}");
    assert!(elapsed < Duration::from_millis(900), "{elapsed:?}");
}

#[tokio::test]
async fn rate_limited_with_http_date_and_then_giving_up() {
    let image = OciImageFixture::simple("429-date");
    let in_a_while =
        httpdate::fmt_http_date(std::time::SystemTime::now() + Duration::from_secs(60));
    let fake = fake_with(
        &image,
        vec![Fault::rate_limited(PathKind::Tags, 10, &in_a_while)],
    )
    .await;
    let config = RegistryClientConfig {
        max_retries: 2,
        max_retry_after: Duration::from_millis(20),
        ..fast_config()
    };
    let store = RegistryClient::new(config)
        .unwrap()
        .endpoint(true, &fake.host());
    let error = store.list_tags(REPOSITORY).await.unwrap_err();
    assert_eq!(error.kind(), OciErrorKind::RateLimited);
    assert_eq!(fake.requests(PathKind::Tags), 3);
}

#[tokio::test]
async fn service_unavailable_twice_then_success() {
    let image = OciImageFixture::simple("503");
    let fake = fake_with(&image, vec![Fault::status(PathKind::Blob, 2, 503)]).await;
    let store = endpoint(&fake.host());
    let (digest, bytes) = image.blobs().remove(1);
    assert_eq!(
        store.get_blob(REPOSITORY, &digest, 1024).await.unwrap(),
        bytes
    );
    assert_eq!(fake.requests(PathKind::Blob), 3);
}

#[tokio::test]
async fn persistent_5xx_is_unavailable_after_all_retries() {
    let image = OciImageFixture::simple("500");
    let fake = fake_with(&image, vec![Fault::status(PathKind::Manifest, 100, 502)]).await;
    let store = endpoint(&fake.host());
    let error = store.get_manifest(REPOSITORY, "1.0.0").await.unwrap_err();
    assert_eq!(error.kind(), OciErrorKind::Unavailable);
    assert_eq!(
        fake.requests(PathKind::Manifest),
        4,
        "1 attempt + 3 retries"
    );
}

#[tokio::test]
async fn client_errors_are_not_retried() {
    let image = OciImageFixture::simple("400");
    let fake = fake_with(
        &image,
        vec![
            Fault::status(PathKind::Manifest, 1, 403),
            Fault::status(PathKind::Manifest, 1, 400),
        ],
    )
    .await;
    let store = endpoint(&fake.host());
    let error = store.get_manifest(REPOSITORY, "1.0.0").await.unwrap_err();
    assert_eq!(error.kind(), OciErrorKind::Forbidden);
    let error = store.get_manifest(REPOSITORY, "1.0.0").await.unwrap_err();
    assert_eq!(error.kind(), OciErrorKind::Protocol);
    assert_eq!(fake.requests(PathKind::Manifest), 2);
}

#[tokio::test]
async fn connection_refused_is_unavailable_after_retries_in_bounded_time() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let store = endpoint(&format!("127.0.0.1:{port}"));
    let started = Instant::now();
    let error = store.get_manifest(REPOSITORY, "1.0.0").await.unwrap_err();
    assert_eq!(error.kind(), OciErrorKind::Unavailable, "{error}");
    assert!(error.to_string().contains("onnect"), "{error}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn truncated_body_is_retried_then_reported() {
    let image = OciImageFixture::simple("truncated");
    let fake = fake_with(&image, vec![Fault::truncated(PathKind::Manifest, 1)]).await;
    let store = endpoint(&fake.host());
    let fetched = store.get_manifest(REPOSITORY, "1.0.0").await.unwrap();
    assert_eq!(fetched.bytes, image.manifest);
    assert_eq!(fake.requests(PathKind::Manifest), 2);

    fake.add_fault(Fault::truncated(PathKind::Blob, 100));
    let (digest, _) = image.blobs().remove(0);
    let error = store.get_blob(REPOSITORY, &digest, 1024).await.unwrap_err();
    assert_eq!(error.kind(), OciErrorKind::Unavailable, "{error}");
    assert!(
        error.to_string().contains("broken response body"),
        "{error}"
    );
    assert_eq!(fake.requests(PathKind::Blob), 4);
}

#[tokio::test]
async fn oversize_manifest_is_too_large_without_reading_it_all() {
    const ONE_GIB: u64 = 1 << 30;
    let image = OciImageFixture::simple("huge");
    for content_length in [true, false] {
        let fake = fake_with(
            &image,
            vec![Fault::oversize(
                PathKind::Manifest,
                1,
                ONE_GIB,
                content_length,
            )],
        )
        .await;
        let store = endpoint(&fake.host());
        let started = Instant::now();
        let error = store.get_manifest(REPOSITORY, "1.0.0").await.unwrap_err();
        assert_eq!(error.kind(), OciErrorKind::TooLarge, "{error}");
        assert!(started.elapsed() < Duration::from_secs(5));
        // Give the server a moment to notice the closed connection, then check how much it produced.
        tokio::time::sleep(Duration::from_millis(50)).await; // under test: the server noticing a closed connection
        let streamed = fake.bytes_streamed();
        assert!(
            streamed < 64 << 20,
            "content_length={content_length}: {streamed} bytes streamed"
        );
        assert_eq!(
            fake.requests(PathKind::Manifest),
            1,
            "TooLarge is not retried"
        );
    }
}

#[tokio::test]
async fn digest_mismatches_are_corrupt() {
    let image = OciImageFixture::simple("corrupt");
    let other = OciImageFixture::simple("other");
    let (layer_digest, _) = image.blobs().remove(1);
    let fake = FakeRegistry::builder()
        .raw_blob(REPOSITORY, &layer_digest, "not the layer")
        .raw_manifest(
            REPOSITORY,
            &image.digest,
            odg_oci::OCI_MANIFEST_MEDIA_TYPE,
            other.manifest.clone(),
        )
        .start()
        .await;
    let store = endpoint(&fake.host());
    let error = store
        .get_blob(REPOSITORY, &layer_digest, 1024)
        .await
        .unwrap_err();
    assert_eq!(error.kind(), OciErrorKind::Corrupt);
    let error = store
        .get_manifest(REPOSITORY, &image.digest)
        .await
        .unwrap_err();
    assert_eq!(error.kind(), OciErrorKind::Corrupt);
    // Refusing to upload bytes that do not match their digest, before any request.
    let error = store
        .put_blob(
            REPOSITORY,
            &sha256_digest(b"a"),
            bytes::Bytes::from_static(b"b"),
        )
        .await
        .unwrap_err();
    assert_eq!(error.kind(), OciErrorKind::Corrupt);
    assert_eq!(fake.requests(PathKind::Upload), 0);
}

#[tokio::test]
async fn concurrency_per_host_is_bounded() {
    let image = OciImageFixture::simple("bounded");
    let fake = fake_with(
        &image,
        vec![Fault::delay(
            PathKind::Manifest,
            100,
            Duration::from_millis(30),
        )],
    )
    .await;
    let config = RegistryClientConfig {
        max_concurrent_requests_per_host: 2,
        ..fast_config()
    };
    let store = RegistryClient::new(config)
        .unwrap()
        .endpoint(true, &fake.host());
    let fetches = (0..8).map(|_| {
        let store = store.clone();
        async move { store.get_manifest(REPOSITORY, "1.0.0").await }
    });
    let results = futures::future::join_all(fetches).await;
    assert!(results.iter().all(|result| result.is_ok()));
    assert_eq!(fake.max_in_flight(), 2);
}
