//! CORS as the dashboard needs it: preflights from a configured origin are answered with
//! credentials and the headers the dashboard sends (`Content-Type`, `Shortcut-Cache`), on every
//! route, before admission control and authentication; other origins get nothing; answers to
//! allowed origins, errors included, name the origin and vary on it.

use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{header, HeaderMap, Method, Request, StatusCode};
use axum::Router;
use http_body_util::BodyExt;
use odg_server::{AdmissionConfig, AdmissionMode, AppState, CorsConfig};
use tower::ServiceExt;

use crate::support::{cached_demo_service, test_authenticator, ADMIN_TOKEN};

const DASHBOARD: &str = "https://dashboard.example.org";

async fn app(cors: CorsConfig, admission: AdmissionConfig) -> (Router, tempfile::TempDir) {
    let directory = tempfile::tempdir().unwrap();
    let (service, _cache) = cached_demo_service(directory.path()).await;
    let state = AppState::new(service)
        .with_auth(test_authenticator())
        .with_admission(admission)
        .with_cors(cors);
    (odg_server::router(state), directory)
}

fn dashboard_only() -> CorsConfig {
    CorsConfig::new([DASHBOARD], Duration::from_secs(600)).unwrap()
}

fn preflight(uri: &str, origin: &str, method: &str) -> Request<Body> {
    Request::builder()
        .method(Method::OPTIONS)
        .uri(uri)
        .header(header::ORIGIN, origin)
        .header(header::ACCESS_CONTROL_REQUEST_METHOD, method)
        .header(
            header::ACCESS_CONTROL_REQUEST_HEADERS,
            "content-type,shortcut-cache",
        )
        .body(Body::empty())
        .unwrap()
}

async fn send(router: &Router, request: Request<Body>) -> (StatusCode, HeaderMap, Bytes) {
    let response = router.clone().oneshot(request).await.unwrap();
    let (parts, body) = response.into_parts();
    let bytes = body.collect().await.unwrap().to_bytes();
    (parts.status, parts.headers, bytes)
}

/// A comma-separated header as lower-case items.
fn items(headers: &HeaderMap, name: header::HeaderName) -> Vec<String> {
    headers
        .get_all(name)
        .iter()
        .flat_map(|value| value.to_str().unwrap().split(','))
        .map(|item| item.trim().to_ascii_lowercase())
        .collect()
}

#[tokio::test]
async fn preflight_from_a_configured_origin_allows_credentials_and_the_dashboard_headers() {
    let (router, _directory) = app(dashboard_only(), AdmissionConfig::default()).await;
    // A read, and writes that need a token: the preflight itself carries none.
    for (uri, method) in [
        ("/ocm/component?component_name=acme.org/shop/cart", "GET"),
        ("/artefacts/metadata/query", "POST"),
        ("/artefacts/metadata", "PUT"),
        ("/artefacts/metadata", "DELETE"),
        ("/cache", "DELETE"),
    ] {
        let (status, headers, body) = send(&router, preflight(uri, DASHBOARD, method)).await;
        assert_eq!(status, StatusCode::OK, "{method} {uri}");
        assert!(body.is_empty());
        assert_eq!(headers[header::ACCESS_CONTROL_ALLOW_ORIGIN], DASHBOARD);
        assert_eq!(headers[header::ACCESS_CONTROL_ALLOW_CREDENTIALS], "true");
        assert!(items(&headers, header::ACCESS_CONTROL_ALLOW_METHODS)
            .contains(&method.to_ascii_lowercase()));
        let allowed = items(&headers, header::ACCESS_CONTROL_ALLOW_HEADERS);
        for needed in ["content-type", "shortcut-cache", "authorization"] {
            assert!(
                allowed.contains(&needed.to_string()),
                "{needed}: {allowed:?}"
            );
        }
        assert_eq!(headers[header::ACCESS_CONTROL_MAX_AGE], "600");
        assert!(items(&headers, header::VARY).contains(&"origin".to_string()));
    }
}

#[tokio::test]
async fn preflight_from_another_origin_is_not_allowed() {
    let (router, _directory) = app(dashboard_only(), AdmissionConfig::default()).await;
    for origin in [
        "https://evil.example.org",
        "http://dashboard.example.org",
        "https://dashboard.example.org.evil.example",
    ] {
        let (status, headers, _) =
            send(&router, preflight("/artefacts/metadata", origin, "PUT")).await;
        assert_eq!(status, StatusCode::OK, "{origin}");
        assert!(
            headers.get(header::ACCESS_CONTROL_ALLOW_ORIGIN).is_none(),
            "{origin}"
        );
        assert!(
            headers
                .get(header::ACCESS_CONTROL_ALLOW_CREDENTIALS)
                .is_none(),
            "{origin}"
        );
    }
}

#[tokio::test]
async fn without_configured_origins_nothing_is_allowed_cross_origin() {
    let (router, _directory) = app(CorsConfig::default(), AdmissionConfig::default()).await;
    let (status, headers, _) = send(&router, preflight("/live", DASHBOARD, "GET")).await;
    assert_eq!(status, StatusCode::OK, "a preflight is answered, not a 405");
    assert!(headers.get(header::ACCESS_CONTROL_ALLOW_ORIGIN).is_none());
    let request = Request::get("/live")
        .header(header::ORIGIN, DASHBOARD)
        .body(Body::empty())
        .unwrap();
    let (status, headers, _) = send(&router, request).await;
    assert_eq!(status, StatusCode::OK);
    assert!(headers.get(header::ACCESS_CONTROL_ALLOW_ORIGIN).is_none());
}

#[tokio::test]
async fn answers_to_a_configured_origin_echo_it_and_vary_on_origin() {
    let (router, _directory) = app(dashboard_only(), AdmissionConfig::default()).await;
    let request = Request::get("/ocm/component?component_name=acme.org/shop/cart")
        .header(header::ORIGIN, DASHBOARD)
        .header("shortcut-cache", "false")
        .body(Body::empty())
        .unwrap();
    let (status, headers, _) = send(&router, request).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers[header::ACCESS_CONTROL_ALLOW_ORIGIN], DASHBOARD);
    assert_eq!(headers[header::ACCESS_CONTROL_ALLOW_CREDENTIALS], "true");
    assert!(items(&headers, header::VARY).contains(&"origin".to_string()));
    let exposed = items(&headers, header::ACCESS_CONTROL_EXPOSE_HEADERS);
    assert!(exposed.contains(&"x-request-id".to_string()), "{exposed:?}");
    assert!(exposed.contains(&"retry-after".to_string()), "{exposed:?}");

    // Errors too, or the dashboard could not read why a call failed.
    let request = Request::put("/artefacts/metadata")
        .header(header::ORIGIN, DASHBOARD)
        .body(Body::from("{\"entries\": []}"))
        .unwrap();
    let (status, headers, _) = send(&router, request).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(headers[header::ACCESS_CONTROL_ALLOW_ORIGIN], DASHBOARD);

    // Without an Origin (not a browser's cross-origin call), no allow-origin, still Vary.
    let (status, headers, _) =
        send(&router, Request::get("/live").body(Body::empty()).unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    assert!(headers.get(header::ACCESS_CONTROL_ALLOW_ORIGIN).is_none());
    assert!(items(&headers, header::VARY).contains(&"origin".to_string()));
}

/// With the one admission slot held by a request still sending its body and no queue, work
/// requests are shed; preflights to the same routes are still answered, and the shed answer
/// carries the CORS headers (so the dashboard can read its `Retry-After`).
#[tokio::test]
async fn preflights_pass_a_full_admission_queue() {
    let (router, _directory) = app(
        dashboard_only(),
        AdmissionConfig {
            mode: AdmissionMode::Fixed,
            max_concurrent: 1,
            max_queued: 0,
            max_wait: Duration::from_secs(1),
            ..AdmissionConfig::default()
        },
    )
    .await;
    let (_sender, receiver) = futures::channel::mpsc::channel::<Result<Bytes, std::io::Error>>(1);
    let held = router.clone().oneshot(
        Request::put("/artefacts/metadata")
            .header(header::AUTHORIZATION, format!("Bearer {ADMIN_TOKEN}"))
            .body(Body::from_stream(receiver))
            .unwrap(),
    );
    tokio::pin!(held);
    // One poll runs the layers down to the handler's body read, which waits for the sender.
    assert!(futures::poll!(held.as_mut()).is_pending());

    let request = Request::get("/ocm/component?component_name=acme.org/shop/cart")
        .header(header::ORIGIN, DASHBOARD)
        .body(Body::empty())
        .unwrap();
    let (status, headers, _) = send(&router, request).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "the slot is held");
    assert_eq!(headers[header::ACCESS_CONTROL_ALLOW_ORIGIN], DASHBOARD);
    assert!(headers.contains_key(header::RETRY_AFTER));

    let (status, headers, _) = send(
        &router,
        preflight(
            "/ocm/component?component_name=acme.org/shop/cart",
            DASHBOARD,
            "GET",
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers[header::ACCESS_CONTROL_ALLOW_ORIGIN], DASHBOARD);
}
