//! Answers as HTTP caches expect them, over a real registry behind a counting proxy: strong
//! `ETag`s stable across pods, 304s, `Cache-Control` by what the answer depends on, compressed
//! forms that decode to the identical bytes, no registry request on the warm path, and
//! invalidation that drops the rendered answers with what they were built from.

use std::io::Read;
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode};
use bytes::Bytes;
use http_body_util::BodyExt;
use odg_components::RepositoryStores;
use odg_oci::{RegistryClient, RegistryClientConfig};
use odg_ocm::{ComponentDescriptor, OcmRepositoryUrl, RepositoryMapping};
use odg_test_support::{DelayProxy, RegistryServer};
use tower::ServiceExt;

use crate::support::{descriptor, rule, seed, service_over, test_authenticator, ADMIN_TOKEN};

/// A registry seeded with a small tree, a proxy counting every request to it, and the
/// repository as pods see it (through the proxy).
struct Landscape {
    registry: RegistryServer,
    proxy: DelayProxy,
    repository: OcmRepositoryUrl,
}

/// `acme.org/app` 1.0.0 and 2.0.0 over twelve libraries that share `acme.org/base`.
fn tree(base_provider: &str) -> Vec<ComponentDescriptor> {
    let libraries: Vec<String> = (0..12).map(|i| format!("acme.org/lib-{i}")).collect();
    let references: Vec<(&str, &str)> = libraries
        .iter()
        .map(|name| (name.as_str(), "1.0.0"))
        .collect();
    let mut descriptors = vec![
        descriptor("acme.org/app", "1.0.0", &references),
        descriptor("acme.org/app", "2.0.0", &references),
        base(base_provider),
    ];
    for name in &libraries {
        descriptors.push(descriptor(name, "1.0.0", &[("acme.org/base", "1.0.0")]));
    }
    descriptors
}

fn base(provider: &str) -> ComponentDescriptor {
    let mut base = descriptor("acme.org/base", "1.0.0", &[]);
    base.component.provider = serde_json::json!(provider);
    base
}

async fn landscape() -> Landscape {
    let registry = RegistryServer::start().await;
    let proxy = DelayProxy::start(&registry.host(), Duration::ZERO).await;
    let repository: OcmRepositoryUrl = format!("http://{}/ocm", proxy.host()).parse().unwrap();
    push(&registry, tree("first")).await;
    Landscape {
        registry,
        proxy,
        repository,
    }
}

/// Pushes straight to the registry, past the proxy, so the counts stay the pods'.
async fn push(registry: &RegistryServer, descriptors: Vec<ComponentDescriptor>) {
    let repository: OcmRepositoryUrl = format!("http://{}/ocm", registry.host()).parse().unwrap();
    let client = RegistryClient::new(RegistryClientConfig::default()).unwrap();
    seed(
        &client.endpoint(true, &repository.host),
        &repository,
        descriptors,
    )
    .await;
}

/// A pod: the API with its own memory cache over the landscape's repository.
async fn pod(landscape: &Landscape) -> axum::Router {
    let cache = odg_cache::TieredCache::new(odg_cache::CacheConfig {
        memory_bytes: 64 << 20,
        policies: odg_components::default_policies(),
        ..odg_cache::CacheConfig::default()
    })
    .await
    .unwrap();
    let stores =
        RepositoryStores::new(RegistryClient::new(RegistryClientConfig::default()).unwrap());
    let mapping = RepositoryMapping::new(vec![rule(landscape.repository.clone())]);
    let service = service_over(stores, mapping, vec![]).with_cache(cache);
    odg_server::router(odg_server::AppState::new(service).with_auth(test_authenticator()))
}

async fn get(
    router: &axum::Router,
    uri: &str,
    headers: &[(&str, &str)],
) -> (StatusCode, HeaderMap, Bytes) {
    let mut request = Request::get(uri);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = router
        .clone()
        .oneshot(request.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let (parts, body) = response.into_parts();
    (
        parts.status,
        parts.headers,
        body.collect().await.unwrap().to_bytes(),
    )
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> &'a str {
    headers
        .get(name)
        .map(|value| value.to_str().unwrap())
        .unwrap_or("")
}

/// Decompresses one coding's body.
type Decoder = fn(&[u8]) -> Vec<u8>;

const APP: &str = "/ocm/component?component_name=acme.org/app&version=1.0.0";
const APP_GREATEST: &str = "/ocm/component?component_name=acme.org/app";
const APP_TREE: &str = "/ocm/component/dependencies?component_name=acme.org/app&version=1.0.0";
const APP_VERSIONS: &str = "/ocm/component/versions?component_name=acme.org/app";

#[tokio::test]
async fn etags_are_strong_stable_across_pods_and_answer_304() {
    let landscape = landscape().await;
    let (first_pod, second_pod) = (pod(&landscape).await, pod(&landscape).await);
    let (status, headers, body) = get(&first_pod, APP, &[]).await;
    assert_eq!(status, StatusCode::OK, "{body:?}");
    let etag = header(&headers, "etag").to_string();
    assert!(
        etag.starts_with('"') && etag.ends_with('"'),
        "strong: {etag}"
    );
    assert_eq!(
        header(&headers, "cache-control"),
        "public, max-age=31536000, immutable"
    );
    assert_eq!(header(&headers, "vary"), "accept-encoding");
    assert_eq!(header(&headers, "content-type"), "application/json");
    assert_eq!(header(&get(&first_pod, APP, &[]).await.1, "etag"), etag);
    let (_, other_headers, other_body) = get(&second_pod, APP, &[]).await;
    assert_eq!(
        header(&other_headers, "etag"),
        etag,
        "the same bytes on another pod"
    );
    assert_eq!(other_body, body);

    let weak = format!("W/{etag}");
    let listed = format!("\"other\", {etag}");
    for if_none_match in [etag.as_str(), weak.as_str(), "*", listed.as_str()] {
        let (status, headers, body) =
            get(&first_pod, APP, &[("if-none-match", if_none_match)]).await;
        assert_eq!(status, StatusCode::NOT_MODIFIED, "{if_none_match}");
        assert!(body.is_empty());
        assert_eq!(header(&headers, "etag"), etag);
        assert_eq!(
            header(&headers, "cache-control"),
            "public, max-age=31536000, immutable"
        );
    }
    let (status, _, _) = get(&first_pod, APP, &[("if-none-match", "\"other\"")]).await;
    assert_eq!(status, StatusCode::OK);

    // `greatest` resolves first: the pinned answer's tag, but no promise that it lasts.
    let (status, headers, body) = get(&first_pod, APP_GREATEST, &[]).await;
    assert_eq!(status, StatusCode::OK);
    let pinned_greatest = get(&first_pod, &APP.replace("1.0.0", "2.0.0"), &[]).await;
    assert_eq!(body, pinned_greatest.2);
    assert_eq!(header(&headers, "etag"), header(&pinned_greatest.1, "etag"));
    assert_eq!(header(&headers, "cache-control"), "no-cache");
    let greatest_etag = header(&headers, "etag").to_string();
    let (status, _, _) = get(
        &first_pod,
        APP_GREATEST,
        &[("if-none-match", &greatest_etag)],
    )
    .await;
    assert_eq!(status, StatusCode::NOT_MODIFIED);

    let (status, headers, body) = get(&first_pod, APP_VERSIONS, &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(&body[..], br#"["1.0.0","2.0.0"]"#);
    assert_eq!(header(&headers, "cache-control"), "no-cache");
    let versions_etag = header(&headers, "etag").to_string();
    assert_eq!(
        header(&get(&second_pod, APP_VERSIONS, &[]).await.1, "etag"),
        versions_etag
    );
    let (status, _, _) = get(
        &first_pod,
        APP_VERSIONS,
        &[("if-none-match", &versions_etag)],
    )
    .await;
    assert_eq!(status, StatusCode::NOT_MODIFIED);

    // Errors stay plain JSON errors, without validators.
    let (status, headers, _) = get(
        &first_pod,
        "/ocm/component?component_name=acme.org/app&version=9.9.9",
        &[("if-none-match", "*")],
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(headers.get("etag").is_none());
}

#[tokio::test]
async fn compressed_answers_decode_to_the_identity_bytes() {
    let landscape = landscape().await;
    let router = pod(&landscape).await;
    let (status, headers, identity) = get(&router, APP_TREE, &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        identity.len() > odg_components::COMPRESSION_THRESHOLD_BYTES,
        "{}",
        identity.len()
    );
    assert!(headers.get("content-encoding").is_none());
    let identity_etag = header(&headers, "etag").to_string();

    let decoders: [(&str, Decoder); 3] = [
        ("gzip", |bytes| {
            let mut out = Vec::new();
            flate2::read::GzDecoder::new(bytes)
                .read_to_end(&mut out)
                .unwrap();
            out
        }),
        ("br", |bytes| {
            let mut out = Vec::new();
            brotli::Decompressor::new(bytes, 4096)
                .read_to_end(&mut out)
                .unwrap();
            out
        }),
        ("zstd", |bytes| zstd::decode_all(bytes).unwrap()),
    ];
    let mut etags = vec![identity_etag.clone()];
    for (coding, decode) in decoders {
        let accept = format!("{coding}, identity;q=0.5");
        let (status, headers, body) = get(&router, APP_TREE, &[("accept-encoding", &accept)]).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(header(&headers, "content-encoding"), coding);
        assert_eq!(header(&headers, "vary"), "accept-encoding");
        assert!(body.len() < identity.len());
        assert_eq!(decode(&body), identity.to_vec(), "{coding}");
        let etag = header(&headers, "etag").to_string();
        assert!(
            !etags.contains(&etag),
            "each coding is its own representation: {etag}"
        );
        let (status, _, _) = get(
            &router,
            APP_TREE,
            &[("accept-encoding", &accept), ("if-none-match", &etag)],
        )
        .await;
        assert_eq!(status, StatusCode::NOT_MODIFIED, "{coding}");
        etags.push(etag);
    }
    let (_, headers, _) = get(
        &router,
        APP_TREE,
        &[("accept-encoding", "gzip;q=0, br;q=0, zstd;q=0")],
    )
    .await;
    assert!(headers.get("content-encoding").is_none());
    assert_eq!(header(&headers, "etag"), identity_etag);

    // Below the threshold the answer goes out as it is, whatever the client accepts.
    let (_, headers, body) = get(
        &router,
        APP_VERSIONS,
        &[("accept-encoding", "gzip, br, zstd")],
    )
    .await;
    assert!(headers.get("content-encoding").is_none());
    assert_eq!(&body[..], br#"["1.0.0","2.0.0"]"#);
}

#[tokio::test]
async fn warm_answers_make_no_registry_request() {
    let landscape = landscape().await;
    let router = pod(&landscape).await;
    let gzip = [("accept-encoding", "gzip")];
    for uri in [APP, APP_GREATEST, APP_TREE, APP_VERSIONS] {
        assert_eq!(get(&router, uri, &[]).await.0, StatusCode::OK, "{uri}");
        assert_eq!(get(&router, uri, &gzip).await.0, StatusCode::OK, "{uri}");
    }
    landscape.proxy.reset_counters();
    for _ in 0..3 {
        for uri in [APP, APP_GREATEST, APP_TREE, APP_VERSIONS] {
            assert_eq!(get(&router, uri, &[]).await.0, StatusCode::OK, "{uri}");
            assert_eq!(get(&router, uri, &gzip).await.0, StatusCode::OK, "{uri}");
        }
    }
    assert_eq!(
        landscape.proxy.total_requests(),
        0,
        "{:?}",
        landscape.proxy.path_counts()
    );
}

#[tokio::test]
async fn invalidation_drops_answers_and_the_next_answer_reflects_the_registry() {
    let landscape = landscape().await;
    let router = pod(&landscape).await;
    let base_uri = "/ocm/component?component_name=acme.org/base&version=1.0.0";
    let (_, tree_headers, tree_before) = get(&router, APP_TREE, &[]).await;
    let (_, base_headers, base_before) = get(&router, base_uri, &[]).await;
    assert!(String::from_utf8_lossy(&tree_before).contains("\"first\""));

    // The registry changes under the same version (a correction); the cached answers stand ...
    push(&landscape.registry, vec![base("second")]).await;
    assert_eq!(get(&router, APP_TREE, &[]).await.2, tree_before);

    // ... until the descriptor is invalidated: then the tree's answer, which embeds it, goes too.
    let request = Request::delete("/cache?component_name=acme.org/base&version=1.0.0")
        .header("authorization", format!("Bearer {ADMIN_TOKEN}"))
        .body(Body::empty())
        .unwrap();
    let response = router.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);

    let (status, headers, tree_after) = get(&router, APP_TREE, &[]).await;
    assert_eq!(status, StatusCode::OK);
    let text = String::from_utf8_lossy(&tree_after);
    assert!(
        text.contains("\"second\"") && !text.contains("\"first\""),
        "{text}"
    );
    assert_ne!(header(&headers, "etag"), header(&tree_headers, "etag"));
    let (_, headers, base_after) = get(&router, base_uri, &[]).await;
    assert_ne!(base_after, base_before);
    assert_ne!(header(&headers, "etag"), header(&base_headers, "etag"));
    let (status, _, _) = get(
        &router,
        base_uri,
        &[("if-none-match", header(&base_headers, "etag"))],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "the old tag no longer matches");
}
