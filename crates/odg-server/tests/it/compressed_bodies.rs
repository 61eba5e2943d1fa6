//! Request bodies with `Content-Encoding: gzip` or `deflate`, as the original's Python client
//! sends them: writes and queries answer as with plain bodies; a body that inflates past the
//! route's limit is a 413, one that does not decode a 400, an unknown coding a 415, all JSON.

use std::io::Write;

use axum::body::{Body, Bytes};
use axum::http::{header, HeaderMap, Request, StatusCode};
use axum::Router;
use flate2::write::{GzEncoder, ZlibEncoder};
use flate2::Compression;
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tower::ServiceExt;

use crate::support::{metadata_state, ADMIN_TOKEN};

/// `PUT`/`DELETE /artefacts/metadata` and the query read at most this many (decoded) bytes;
/// `MAX_BODY_BYTES` of the metadata routes.
const BODY_LIMIT: usize = 32 * 1024 * 1024;
const COMPONENT: &str = "acme.org/shop/cart";

async fn app() -> (Router, tempfile::TempDir) {
    let directory = tempfile::tempdir().unwrap();
    let state = metadata_state(directory.path()).await;
    (odg_server::router(state), directory)
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

fn deflate(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = ZlibEncoder::new(Vec::new(), Compression::default());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

fn request(method: &str, uri: &str, coding: Option<&str>, body: Vec<u8>) -> Request<Body> {
    // As the Python client: JSON, a token, the coding and the compressed length.
    let mut builder = Request::builder()
        .method(method)
        .uri(uri)
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::AUTHORIZATION, format!("Bearer {ADMIN_TOKEN}"))
        .header(header::CONTENT_LENGTH, body.len());
    if let Some(coding) = coding {
        builder = builder.header(header::CONTENT_ENCODING, coding);
    }
    builder.body(Body::from(body)).unwrap()
}

async fn send(router: &Router, request: Request<Body>) -> (StatusCode, HeaderMap, Value) {
    let response = router.clone().oneshot(request).await.unwrap();
    let (parts, body) = response.into_parts();
    let bytes: Bytes = body.collect().await.unwrap().to_bytes();
    let value = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap()
    };
    (parts.status, parts.headers, value)
}

/// An entry for the first resource of [`COMPONENT`] in the demo landscape.
async fn scan_info_entry(router: &Router) -> (String, Value) {
    let (status, _, descriptor) = send(
        router,
        Request::get(format!("/ocm/component?component_name={COMPONENT}"))
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let version = descriptor["component"]["version"]
        .as_str()
        .unwrap()
        .to_string();
    let resource = &descriptor["component"]["resources"][0];
    let entry = json!({
        "artefact": {"component_name": COMPONENT, "component_version": version, "artefact_kind": "resource",
                     "artefact": {"artefact_name": resource["name"], "artefact_version": resource["version"],
                                  "artefact_type": resource["type"], "artefact_extra_id": {}}},
        "meta": {"datasource": "bdba", "type": "meta/artefact_scan_info"},
        "data": {},
    });
    (version, entry)
}

#[tokio::test]
async fn compressed_writes_and_queries_answer_as_plain_ones() {
    let (router, _directory) = app().await;
    let (version, entry) = scan_info_entry(&router).await;
    let write = json!({"entries": [entry]}).to_string().into_bytes();
    let query = json!({"entries": [{"component_name": COMPONENT, "component_version": version}]})
        .to_string()
        .into_bytes();
    const QUERY: &str = "/artefacts/metadata/query?type=meta/artefact_scan_info";

    let (status, _, answer) = send(
        &router,
        request("PUT", "/artefacts/metadata", Some("gzip"), gzip(&write)),
    )
    .await;
    assert_eq!(
        (status, answer),
        (StatusCode::CREATED, json!({"inserted": 1, "updated": 0}))
    );
    // The same entry again, as deflate (zlib) and with the coding in upper case: an update.
    let (status, _, answer) = send(
        &router,
        request(
            "PUT",
            "/artefacts/metadata",
            Some("DEFLATE"),
            deflate(&write),
        ),
    )
    .await;
    assert_eq!(
        (status, answer),
        (StatusCode::CREATED, json!({"inserted": 0, "updated": 1}))
    );

    let (status, _, plain) = send(&router, request("POST", QUERY, None, query.clone())).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(plain.as_array().unwrap().len(), 1, "{plain}");
    for (coding, body) in [
        ("gzip", gzip(&query)),
        ("x-gzip", gzip(&query)),
        ("deflate", deflate(&query)),
        ("identity", query.clone()),
    ] {
        let (status, _, answer) = send(&router, request("POST", QUERY, Some(coding), body)).await;
        assert_eq!(status, StatusCode::OK, "{coding}: {answer}");
        assert_eq!(answer, plain, "{coding}");
    }

    let (status, _, _) = send(
        &router,
        request("DELETE", "/artefacts/metadata", Some("gzip"), gzip(&write)),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _, answer) =
        send(&router, request("POST", QUERY, Some("gzip"), gzip(&query))).await;
    assert_eq!((status, answer), (StatusCode::OK, json!([])));
}

#[tokio::test]
async fn a_body_inflating_past_the_limit_is_a_413() {
    let (router, _directory) = app().await;
    // 40 MiB of zeros, fed in 1 MiB pieces, compress to some 200 KiB on the wire.
    let mut encoder = GzEncoder::new(Vec::new(), Compression::fast());
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..40 {
        encoder.write_all(&zeros).unwrap();
    }
    let bomb = encoder.finish().unwrap();
    const { assert!(40 << 20 > BODY_LIMIT) };
    assert!(bomb.len() < 1 << 20, "{} bytes on the wire", bomb.len());

    for (method, uri) in [
        ("PUT", "/artefacts/metadata"),
        ("POST", "/artefacts/metadata/query"),
    ] {
        let (status, headers, answer) =
            send(&router, request(method, uri, Some("gzip"), bomb.clone())).await;
        assert_eq!(
            status,
            StatusCode::PAYLOAD_TOO_LARGE,
            "{method} {uri}: {answer}"
        );
        assert_eq!(headers[header::CONTENT_TYPE], "application/json");
        assert!(
            answer["error"].as_str().unwrap().contains("decompressed"),
            "{answer}"
        );
    }
}

#[tokio::test]
async fn a_body_that_does_not_decode_is_a_400() {
    let (router, _directory) = app().await;
    let body = gzip(br#"{"entries": []}"#);
    let truncated = body[..body.len() / 2].to_vec();
    let mut corrupt = body.clone();
    // Past the 10-byte header: the compressed data itself.
    corrupt[12] ^= 0xff;
    corrupt[13] ^= 0xff;
    for (name, coding, bytes) in [
        ("not gzip at all", "gzip", b"{\"entries\": []}".to_vec()),
        ("truncated", "gzip", truncated),
        ("corrupt", "gzip", corrupt),
        ("gzip sent as deflate", "deflate", body),
    ] {
        let (status, headers, answer) = send(
            &router,
            request("POST", "/artefacts/metadata/query", Some(coding), bytes),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{name}: {answer}");
        assert_eq!(headers[header::CONTENT_TYPE], "application/json", "{name}");
        assert!(answer["error"].is_string(), "{name}: {answer}");
    }
}

#[tokio::test]
async fn an_unknown_coding_is_a_415_naming_the_accepted_ones() {
    let (router, _directory) = app().await;
    for coding in ["br", "zstd", "gzip, gzip"] {
        let (status, headers, answer) = send(
            &router,
            request("PUT", "/artefacts/metadata", Some(coding), b"{}".to_vec()),
        )
        .await;
        assert_eq!(
            status,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "{coding}: {answer}"
        );
        assert_eq!(headers[header::CONTENT_TYPE], "application/json");
        assert_eq!(headers[header::ACCEPT_ENCODING], "gzip, deflate, identity");
        assert!(answer["error"].is_string(), "{answer}");
    }
}
