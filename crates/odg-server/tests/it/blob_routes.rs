//! `/blob` against the real PostgreSQL (large objects, as the original stores them) and the
//! SQLite default: upload, headers, download with ranges, delete; the original's errors (digest
//! format and mismatch, missing headers, 404, 422) and odg's bounds (413 past the size limit,
//! 401/403 for writes, a 64 MiB upload and download that never holds the blob in memory).

use axum::body::Body;
use axum::http::{Request, StatusCode};
use bytes::Bytes;
use serde_json::json;
use sha2::{Digest, Sha256};
use tower::ServiceExt;

use crate::support::{
    cached_demo_service, compliance_on, jwt, send_whole, test_authenticator, WholeAnswer,
    ADMIN_TOKEN,
};

struct BlobApp {
    router: axum::Router,
    db: odg_delivery_db::DeliveryDb,
    backend: &'static str,
    _directory: tempfile::TempDir,
    _postgres: Option<odg_test_support::TestDatabase>,
}

/// The API over the demo landscape with its delivery DB on `backend` and a blob limit.
async fn blob_app(backend: &'static str, test: &str, max_bytes: u64) -> BlobApp {
    let directory = tempfile::tempdir().unwrap();
    let (components, _cache) = cached_demo_service(directory.path()).await;
    let (config, postgres) = match backend {
        "postgres" => {
            let database = odg_test_support::TestDatabase::create(test).await;
            (
                odg_delivery_db::DatabaseConfig::new(database.url()),
                Some(database),
            )
        }
        _ => (
            odg_delivery_db::DatabaseConfig::sqlite_file(&directory.path().join("delivery.sqlite")),
            None,
        ),
    };
    let compliance = compliance_on(&components, &config).await;
    let db = compliance.db().clone();
    BlobApp {
        router: odg_server::router(
            odg_server::AppState::new(components)
                .with_auth(test_authenticator())
                .with_compliance(compliance)
                .with_blob_limits(odg_server::BlobLimits {
                    max_bytes,
                    ..odg_server::BlobLimits::default()
                }),
        ),
        db,
        backend,
        _directory: directory,
        _postgres: postgres,
    }
}

fn digest_of(content: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(content)))
}

fn upload_request(token: Option<&str>, digest: &str, body: Body, length: u64) -> Request<Body> {
    let mut builder = Request::post("/blob")
        .header("digest", digest)
        .header("content-type", "application/x-test")
        .header("content-length", length);
    if let Some(token) = token {
        builder = builder.header("authorization", format!("Bearer {token}"));
    }
    builder.body(body).unwrap()
}

async fn send(app: &BlobApp, request: Request<Body>) -> WholeAnswer {
    send_whole(&app.router, request).await
}

async fn call(app: &BlobApp, method: &str, uri: &str, headers: &[(&str, &str)]) -> WholeAnswer {
    let mut builder = Request::builder().method(method).uri(uri);
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    send(app, builder.body(Body::empty()).unwrap()).await
}

#[tokio::test]
async fn blobs_are_stored_read_and_deleted_on_postgres_and_sqlite() {
    for backend in ["sqlite", "postgres"] {
        let app = blob_app(backend, "blob_routes_round_trip", 1 << 20).await;
        let name = app.backend;
        let content: Vec<u8> = (0..300_000u32).map(|i| (i % 253) as u8).collect();
        let digest = digest_of(&content);
        let admin = Some(ADMIN_TOKEN);

        let stored = send(
            &app,
            upload_request(
                admin,
                &digest.to_uppercase().replace("SHA256", "sha256"),
                Body::from(content.clone()),
                content.len() as u64,
            ),
        )
        .await;
        assert_eq!(stored.status, StatusCode::OK, "{name}: {:?}", stored.body);
        assert_eq!(stored.header("digest"), digest, "{name}: lower-cased");
        assert_eq!(stored.header("content-type"), "application/x-test");
        assert!(
            stored.header("created").ends_with("+0000"),
            "{name}: {}",
            stored.header("created")
        );
        assert_eq!(stored.header("content-length"), "0");

        let again = send(
            &app,
            upload_request(
                admin,
                &digest,
                Body::from(content.clone()),
                content.len() as u64,
            ),
        )
        .await;
        assert_eq!(again.status, StatusCode::UNPROCESSABLE_ENTITY, "{name}");
        assert!(again.json()["error"].as_str().unwrap().contains("already"));

        let uri = format!("/blob?digest={digest}");
        let head = call(&app, "HEAD", &uri, &[]).await;
        assert_eq!(head.status, StatusCode::OK, "{name}");
        assert_eq!(head.header("content-length"), content.len().to_string());
        assert_eq!(head.header("digest"), digest);
        assert!(head.body.is_empty());

        let whole = call(&app, "GET", &uri, &[]).await;
        assert_eq!(whole.status, StatusCode::OK, "{name}");
        assert_eq!(whole.header("content-type"), "application/x-test");
        assert_eq!(whole.header("accept-ranges"), "bytes");
        assert_eq!(whole.body.as_ref(), content.as_slice(), "{name}");

        let part = call(&app, "GET", &uri, &[("range", "bytes=262000-262199")]).await;
        assert_eq!(part.status, StatusCode::PARTIAL_CONTENT, "{name}");
        assert_eq!(part.header("content-range"), "bytes 262000-262199/300000");
        assert_eq!(part.body.as_ref(), &content[262_000..262_200]);
        let suffix = call(&app, "GET", &uri, &[("range", "bytes=-5")]).await;
        assert_eq!(
            suffix.body.as_ref(),
            &content[content.len() - 5..],
            "{name}"
        );
        let past = call(&app, "GET", &uri, &[("range", "bytes=300000-")]).await;
        assert_eq!(past.status, StatusCode::RANGE_NOT_SATISFIABLE, "{name}");
        assert_eq!(past.header("content-range"), "bytes */300000");
        assert_eq!(past.json()["size"], json!(300_000));

        let deleted = call(
            &app,
            "DELETE",
            &uri,
            &[("authorization", &format!("Bearer {ADMIN_TOKEN}"))],
        )
        .await;
        assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{name}");
        for method in ["GET", "DELETE"] {
            let gone = call(
                &app,
                method,
                &uri,
                &[("authorization", &format!("Bearer {ADMIN_TOKEN}"))],
            )
            .await;
            assert_eq!(gone.status, StatusCode::NOT_FOUND, "{name} {method}");
            assert!(gone.json()["error"].is_string());
        }
        assert_eq!(
            call(&app, "HEAD", &uri, &[]).await.status,
            StatusCode::NOT_FOUND
        );
    }
}

#[tokio::test]
async fn bad_uploads_are_refused_and_leave_nothing_behind() {
    for backend in ["sqlite", "postgres"] {
        let app = blob_app(backend, "blob_routes_refused", 100_000).await;
        let name = app.backend;
        let content = vec![7u8; 50_000];
        let digest = digest_of(&content);
        let writer = jwt(json!(["writer"]));
        let units = app.db.blob_storage_units().await.unwrap();

        // authentication and roles
        let anonymous = send(
            &app,
            upload_request(None, &digest, Body::from(content.clone()), 50_000),
        )
        .await;
        assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED, "{name}");
        assert!(anonymous.json()["error"].is_string());
        let reader = jwt(json!(["reader"]));
        let forbidden = send(
            &app,
            upload_request(Some(&reader), &digest, Body::from(content.clone()), 50_000),
        )
        .await;
        assert_eq!(forbidden.status, StatusCode::FORBIDDEN, "{name}");
        let uri = format!("/blob?digest={digest}");
        let delete = call(
            &app,
            "DELETE",
            &uri,
            &[("authorization", &format!("Bearer {reader}"))],
        )
        .await;
        assert_eq!(delete.status, StatusCode::FORBIDDEN, "{name}");
        assert_eq!(
            call(&app, "DELETE", &uri, &[]).await.status,
            StatusCode::UNAUTHORIZED
        );

        // the digest: format, algorithm, and the body's own
        for bad in ["sha256", "md5:abcd", "sha256:xyz", "sha256:abcd", "a:b:c"] {
            let answer = send(
                &app,
                upload_request(Some(&writer), bad, Body::from(content.clone()), 50_000),
            )
            .await;
            assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{name} {bad}");
            assert_eq!(
                call(&app, "GET", &format!("/blob?digest={bad}"), &[])
                    .await
                    .status,
                StatusCode::BAD_REQUEST,
                "{bad}"
            );
        }
        let other = digest_of(b"something else");
        let mismatch = send(
            &app,
            upload_request(Some(&writer), &other, Body::from(content.clone()), 50_000),
        )
        .await;
        assert_eq!(mismatch.status, StatusCode::BAD_REQUEST, "{name}");
        assert!(
            mismatch.json()["error"].as_str().unwrap().contains(&digest),
            "{name}: names the body's digest"
        );
        assert_eq!(
            call(&app, "GET", "/blob", &[]).await.status,
            StatusCode::BAD_REQUEST,
            "digest is required"
        );

        // headers the original requires
        let no_type = Request::post("/blob")
            .header("authorization", format!("Bearer {writer}"))
            .header("digest", &digest)
            .header("content-length", 50_000)
            .body(Body::from(content.clone()))
            .unwrap();
        let answer = send(&app, no_type).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{name}");
        assert_eq!(answer.json()["header"], json!("Content-Type"));

        // the size limit: announced, and (chunked, no length) found while streaming
        let big = vec![1u8; 150_000];
        let announced = send(
            &app,
            upload_request(
                Some(&writer),
                &digest_of(&big),
                Body::from(big.clone()),
                150_000,
            ),
        )
        .await;
        assert_eq!(announced.status, StatusCode::PAYLOAD_TOO_LARGE, "{name}");
        assert_eq!(announced.json()["limit"], json!(100_000));
        let parts: Vec<Result<Bytes, std::io::Error>> = big
            .chunks(10_000)
            .map(|part| Ok(Bytes::copy_from_slice(part)))
            .collect();
        let streamed = send(
            &app,
            upload_request(
                Some(&writer),
                &digest_of(&big),
                Body::from_stream(futures::stream::iter(parts)),
                1000,
            ),
        )
        .await;
        assert_eq!(streamed.status, StatusCode::PAYLOAD_TOO_LARGE, "{name}");

        // a body cut off by the client
        let cut: Vec<Result<Bytes, std::io::Error>> = vec![
            Ok(Bytes::from(vec![7u8; 30_000])),
            Err(std::io::Error::new(
                std::io::ErrorKind::ConnectionReset,
                "reset",
            )),
        ];
        let aborted = send(
            &app,
            upload_request(
                Some(&writer),
                &digest,
                Body::from_stream(futures::stream::iter(cut)),
                50_000,
            ),
        )
        .await;
        assert_eq!(aborted.status, StatusCode::BAD_REQUEST, "{name}");

        assert_eq!(
            call(&app, "HEAD", &uri, &[]).await.status,
            StatusCode::NOT_FOUND,
            "{name}"
        );
        assert_eq!(
            app.db.blob_storage_units().await.unwrap(),
            units,
            "{name}: nothing left behind"
        );

        // the writer role may
        let stored = send(
            &app,
            upload_request(Some(&writer), &digest, Body::from(content.clone()), 50_000),
        )
        .await;
        assert_eq!(stored.status, StatusCode::OK, "{name}");
        let deleted = call(
            &app,
            "DELETE",
            &uri,
            &[("authorization", &format!("Bearer {writer}"))],
        )
        .await;
        assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{name}");
    }
}

/// The process's resident set and its peak since `reset_peak_rss` (nextest runs each test in a
/// process of its own, so the peak is this test's).
fn rss_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix(field))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

fn reset_peak_rss() {
    std::fs::write("/proc/self/clear_refs", "5").unwrap();
}

/// 64 MiB made up as it is sent, 64 KiB at a time (the test itself never holds the blob).
fn generated(total: usize) -> impl futures::Stream<Item = Result<Bytes, std::io::Error>> {
    futures::stream::iter((0..total / 65536).map(|part| {
        Ok(Bytes::from(
            (0..65536u32)
                .map(|i| (i as usize ^ part) as u8)
                .collect::<Vec<u8>>(),
        ))
    }))
}

#[tokio::test]
async fn a_64_mib_blob_streams_through_in_both_directions_without_being_held() {
    const TOTAL: usize = 64 << 20;
    for backend in ["postgres", "sqlite"] {
        let app = blob_app(backend, "blob_routes_memory", 1 << 30).await;
        let name = app.backend;
        let mut hasher = Sha256::new();
        let mut parts = Box::pin(generated(TOTAL));
        while let Some(part) = futures::StreamExt::next(&mut parts).await {
            hasher.update(part.unwrap());
        }
        let digest = format!("sha256:{}", hex::encode(hasher.finalize()));

        let before = rss_kib("VmRSS:");
        reset_peak_rss();
        let stored = send(
            &app,
            upload_request(
                Some(ADMIN_TOKEN),
                &digest,
                Body::from_stream(generated(TOTAL)),
                TOTAL as u64,
            ),
        )
        .await;
        assert_eq!(stored.status, StatusCode::OK, "{name}: {:?}", stored.body);

        let response = app
            .router
            .clone()
            .oneshot(
                Request::get(format!("/blob?digest={digest}"))
                    .body(Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let mut body = response.into_body().into_data_stream();
        let mut hasher = Sha256::new();
        let mut received = 0;
        while let Some(chunk) = futures::StreamExt::next(&mut body).await {
            let chunk = chunk.unwrap();
            received += chunk.len();
            hasher.update(&chunk);
        }
        assert_eq!(received, TOTAL, "{name}");
        assert_eq!(
            format!("sha256:{}", hex::encode(hasher.finalize())),
            digest,
            "{name}"
        );
        let peak = rss_kib("VmHWM:");
        let grown_mib = peak.saturating_sub(before) / 1024;
        assert!(
            grown_mib < 32,
            "{name}: the resident set grew by {grown_mib} MiB while 64 MiB went through"
        );
    }
}

/// `GET /components/sbom` on both backends: the SBOM documents the SBOM generator stored
/// (a blob, and a scan info of datasource `sbom-generator` naming its digest) come back as one
/// tar archive in the original's layout; an artefact without one is skipped.
#[tokio::test]
async fn sboms_stream_as_a_tar_archive_in_the_originals_layout() {
    for backend in ["sqlite", "postgres"] {
        let app = blob_app(backend, "sbom_routes", 1 << 20).await;
        let name = app.backend;
        let descriptor = call(
            &app,
            "GET",
            "/ocm/component?component_name=acme.org/shop/cart&version=1.3.0",
            &[],
        )
        .await
        .json();
        let resource = descriptor["component"]["resources"][0].clone();
        let document: Vec<u8> = format!(
            "{{\"bomFormat\": \"CycloneDX\", \"components\": [{}]}}",
            "{\"name\": \"openssl\"},".repeat(300).trim_end_matches(',')
        )
        .into_bytes();
        let digest = digest_of(&document);
        let stored = send(
            &app,
            upload_request(
                Some(ADMIN_TOKEN),
                &digest,
                Body::from(document.clone()),
                document.len() as u64,
            ),
        )
        .await;
        assert_eq!(stored.status, StatusCode::OK, "{name}: {:?}", stored.body);
        let scan_info = json!({"entries": [{
            "artefact": {"component_name": "acme.org/shop/cart", "component_version": "1.3.0",
                         "artefact_kind": "resource",
                         "artefact": {"artefact_name": resource["name"], "artefact_version": resource["version"],
                                      "artefact_type": resource["type"], "artefact_extra_id": {}}},
            "meta": {"datasource": "sbom-generator", "type": "meta/artefact_scan_info"},
            "data": {"digest": digest},
        }]});
        let written = send(
            &app,
            Request::put("/artefacts/metadata")
                .header("authorization", format!("Bearer {ADMIN_TOKEN}"))
                .body(Body::from(scan_info.to_string()))
                .unwrap(),
        )
        .await;
        assert_eq!(
            written.status,
            StatusCode::CREATED,
            "{name}: {:?}",
            written.body
        );

        let archive = call(
            &app,
            "GET",
            "/components/sbom?component_name=acme.org/shop/cart&version=1.3.0",
            &[],
        )
        .await;
        assert_eq!(archive.status, StatusCode::OK, "{name}");
        assert_eq!(archive.header("content-type"), "application/x-tar");
        assert_eq!(
            archive.header("content-disposition"),
            "attachment; filename=\"acme.org_shop_cart_1.3.0.sboms.tar\""
        );
        let mut reader = tar::Archive::new(&archive.body[..]);
        let mut found = Vec::new();
        for entry in reader.entries().unwrap() {
            let mut entry = entry.unwrap();
            let path = entry.path().unwrap().display().to_string();
            let mut content = Vec::new();
            std::io::Read::read_to_end(&mut entry, &mut content).unwrap();
            found.push((path, content));
        }
        let expected_path = format!(
            "acme.org_shop_cart_1.3.0/{}_{}.json",
            resource["name"].as_str().unwrap(),
            resource["type"].as_str().unwrap()
        );
        assert_eq!(found, vec![(expected_path, document)], "{name}");
        // a version without SBOMs: an empty archive
        let empty = call(
            &app,
            "GET",
            "/components/sbom?component_name=acme.org/shop/cart&version=1.2.0&recursion_depth=0",
            &[],
        )
        .await;
        assert_eq!(empty.status, StatusCode::OK, "{name}");
        assert_eq!(empty.body.len(), 1024, "{name}: two empty blocks");
    }
}
