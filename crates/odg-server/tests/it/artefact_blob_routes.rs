//! `GET /ocm/artefacts/blob` over the real registry (Debian's docker-registry) and the embedded
//! demo's CTF directory: the original's parameters and headers, the artefact matching, byte
//! ranges passed to the registry (206, 416), `unzip` of gzip blobs, and the repository check.

use std::io::Write;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use bytes::Bytes;
use odg_components::{
    push_descriptor_with_blobs, with_repository_context, LocalBlob, RepositoryStores,
};
use odg_oci::{RegistryClient, RegistryClientConfig};
use odg_ocm::{ComponentDescriptor, OcmRepositoryUrl};
use odg_test_support::RegistryServer;
use serde_json::json;

use crate::support::{app_over, demo_app, rule, send_whole, TestApp, WholeAnswer};

async fn get(app: &TestApp, uri: &str, range: Option<&str>) -> WholeAnswer {
    let mut request = Request::get(uri);
    if let Some(range) = range {
        request = request.header("range", range);
    }
    send_whole(&app.router, request.body(Body::empty()).unwrap()).await
}

fn gzip(content: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(content).unwrap();
    encoder.finish().unwrap()
}

fn digest(content: &[u8]) -> String {
    odg_oci::sha256_digest(content)
}

fn manual_descriptor(pdf: &[u8], gz: &[u8]) -> ComponentDescriptor {
    serde_json::from_value(json!({
        "meta": {"schemaVersion": "v2"},
        "component": {"name": "acme.org/docs", "version": "1.0.0", "provider": "test",
            "repositoryContexts": [], "labels": [], "componentReferences": [],
            "sources": [],
            "resources": [
                {"name": "manual", "version": "1.0.0", "type": "document",
                 "extraIdentity": {"language": "en"},
                 "access": {"type": "localBlob", "localReference": digest(pdf), "mediaType": "application/pdf"}},
                {"name": "manual", "version": "1.0.0", "type": "document",
                 "extraIdentity": {"language": "de"},
                 "access": {"type": "localBlob/v1", "localReference": "sha256:0000000000000000000000000000000000000000000000000000000000000000",
                            "globalAccess": {"digest": digest(gz)}, "mediaType": "application/gzip"}},
                {"name": "image", "version": "1.0.0", "type": "ociImage",
                 "access": {"type": "ociArtifact", "imageReference": "example.org/image:1.0.0"}},
            ]},
    }))
    .unwrap()
}

#[tokio::test]
async fn local_blobs_stream_from_the_registry_with_ranges_and_unzip() {
    let registry = RegistryServer::start().await;
    let repository: OcmRepositoryUrl = format!("http://{}/ocm", registry.host()).parse().unwrap();
    let client = RegistryClient::new(RegistryClientConfig::default()).unwrap();
    let store = client.endpoint(true, &repository.host);
    let pdf: Vec<u8> = (0..200_000u32).map(|i| (i % 241) as u8).collect();
    let text = b"gzip me ".repeat(10_000);
    let gz = gzip(&text);
    let descriptor = with_repository_context(manual_descriptor(&pdf, &gz), &repository);
    let blobs = [
        LocalBlob {
            media_type: "application/pdf".into(),
            content: Bytes::from(pdf.clone()),
        },
        LocalBlob {
            media_type: "application/gzip".into(),
            content: Bytes::from(gz.clone()),
        },
    ];
    push_descriptor_with_blobs(&store, &repository, &descriptor, &blobs)
        .await
        .unwrap();
    let app = app_over(
        RepositoryStores::new(client),
        vec![rule(repository.clone())],
        vec![],
    );

    let base = "/ocm/artefacts/blob?component=acme.org/docs:1.0.0";
    let by_name = get(&app, &format!("{base}&artefact=manual"), None).await;
    assert_eq!(by_name.status, StatusCode::OK);
    assert_eq!(by_name.header("content-type"), "application/pdf");
    assert_eq!(
        by_name.header("content-disposition"),
        "attachment; filename=\"acme.org/docs_1.0.0_manual.pdf\""
    );
    assert_eq!(by_name.header("content-length"), "200000");
    assert_eq!(by_name.body.as_ref(), pdf.as_slice(), "the first match");

    // a range, served by the registry (206 passed through)
    let part = get(
        &app,
        &format!("{base}&artefact=manual"),
        Some("bytes=1000-1999"),
    )
    .await;
    assert_eq!(part.status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(part.header("content-range"), "bytes 1000-1999/200000");
    assert_eq!(part.body.as_ref(), &pdf[1000..2000]);
    let suffix = get(&app, &format!("{base}&artefact=manual"), Some("bytes=-10")).await;
    assert_eq!(suffix.status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(suffix.body.as_ref(), &pdf[pdf.len() - 10..]);
    let past = get(
        &app,
        &format!("{base}&artefact=manual"),
        Some("bytes=200000-"),
    )
    .await;
    assert_eq!(past.status, StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(past.header("content-range"), "bytes */200000");
    assert!(!past.error().is_empty());

    // by identity (JSON), gzip: unzipped by default (Content-Type = the artefact's type), ranges ignored
    let german = urlencode(r#"{"name": "manual", "language": "de"}"#);
    let unzipped = get(
        &app,
        &format!("{base}&artefact={german}"),
        Some("bytes=0-9"),
    )
    .await;
    assert_eq!(unzipped.status, StatusCode::OK);
    assert_eq!(unzipped.header("content-type"), "document");
    assert_eq!(unzipped.body.as_ref(), text.as_slice());
    let raw = get(&app, &format!("{base}&artefact={german}&unzip=false"), None).await;
    assert_eq!(raw.status, StatusCode::OK);
    assert_eq!(raw.header("content-type"), "application/gzip");
    assert_eq!(raw.body.as_ref(), gz.as_slice(), "globalAccess.digest wins");

    // what is refused
    let image = get(&app, &format!("{base}&artefact=image"), None).await;
    assert_eq!(image.status, StatusCode::BAD_REQUEST);
    assert!(image.error().contains("ociArtifact"), "{}", image.error());
    let absent = get(&app, &format!("{base}&artefact=nonesuch"), None).await;
    assert_eq!(absent.status, StatusCode::NOT_FOUND);
    let list = get(&app, &format!("{base}&artefact=%5B1%5D"), None).await;
    assert_eq!(list.status, StatusCode::BAD_REQUEST);
    let malformed = get(
        &app,
        "/ocm/artefacts/blob?component=acme.org/docs&artefact=manual",
        None,
    )
    .await;
    assert_eq!(malformed.status, StatusCode::BAD_REQUEST);
    let missing = get(
        &app,
        "/ocm/artefacts/blob?component=acme.org/docs:1.0.0",
        None,
    )
    .await;
    assert_eq!(missing.status, StatusCode::BAD_REQUEST);
    let unknown = get(
        &app,
        "/ocm/artefacts/blob?component=acme.org/docs:9.9.9&artefact=manual",
        None,
    )
    .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    // never an open proxy: a repository neither mapped nor allowed
    let elsewhere = get(
        &app,
        &format!("{base}&artefact=manual&ocm_repository=evil.example.org/ocm"),
        None,
    )
    .await;
    assert_eq!(elsewhere.status, StatusCode::FORBIDDEN);
    // the mapped repository named explicitly works
    let named = get(
        &app,
        &format!(
            "{base}&artefact=manual&ocm_repository={}",
            urlencode(&repository.to_string())
        ),
        Some("bytes=0-3"),
    )
    .await;
    assert_eq!(named.status, StatusCode::PARTIAL_CONTENT);
}

fn urlencode(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

#[tokio::test]
async fn the_demo_serves_the_landscape_release_notes_as_a_local_blob() {
    let app = demo_app().await;
    let blob = odg_demo::demo_local_blobs().into_iter().next().unwrap();
    let uri = format!(
        "/ocm/artefacts/blob?component={}:{}&artefact=release-notes",
        blob.component_name, blob.component_version
    );
    let whole = get(&app, &uri, None).await;
    assert_eq!(whole.status, StatusCode::OK, "{:?}", whole.body);
    assert_eq!(whole.header("content-type"), "text/markdown");
    assert_eq!(whole.body.as_ref(), blob.content.as_slice());
    let part = get(&app, &uri, Some("bytes=2-5")).await;
    assert_eq!(part.status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(part.body.as_ref(), &blob.content[2..6]);
    assert_eq!(
        part.header("content-range"),
        format!("bytes 2-5/{}", blob.content.len())
    );
    let past = get(&app, &uri, Some(&format!("bytes={}-", blob.content.len()))).await;
    assert_eq!(past.status, StatusCode::RANGE_NOT_SATISFIABLE);
}
