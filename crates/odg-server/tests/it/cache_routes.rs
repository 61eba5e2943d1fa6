//! `DELETE /cache` (authentication, roles, selectors) and the cache switches of every route.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use jsonwebtoken::{EncodingKey, Header};
use serde_json::json;

use crate::support::{cached_demo_app, ADMIN_TOKEN, JWT_SECRET};

fn delete(uri: &str, token: Option<&str>) -> Request<Body> {
    let mut request = Request::delete(uri);
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    request.body(Body::empty()).unwrap()
}

fn jwt(roles: serde_json::Value, expires_in_seconds: i64) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    jsonwebtoken::encode(
        &Header::default(),
        &json!({"sub": "tester", "roles": roles, "exp": now + expires_in_seconds}),
        &EncodingKey::from_secret(JWT_SECRET.as_bytes()),
    )
    .unwrap()
}

#[tokio::test]
async fn invalidation_needs_a_token_with_the_role() {
    let app = cached_demo_app().await;
    let uri = "/cache?component_name=acme.org/shop/cart";
    let (status, headers, body) = app.send(delete(uri, None)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(headers["www-authenticate"], "Bearer");
    let (status, _, _) = app.send(delete(uri, Some("wrong-token"))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _, _) = app
        .send(delete(uri, Some(&jwt(json!(["reader"]), 300))))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _, _) = app
        .send(delete(uri, Some(&jwt(json!(["cache-admin"]), -300))))
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "expired");
    let (status, _, body) = app
        .send(delete(uri, Some(&jwt(json!("reader cache-admin"), 300))))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, _, body) = app.send(delete(uri, Some(ADMIN_TOKEN))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body["invalidated"],
        json!({"type": "component", "name": "acme.org/shop/cart"})
    );
}

#[tokio::test]
async fn invalidation_drops_what_it_names_and_the_next_read_reloads() {
    let app = cached_demo_app().await;
    let cache = app.cache.clone().unwrap();
    let (status, _) = app
        .get("/ocm/component?component_name=acme.org/shop/cart&version=1.0.0")
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = app
        .get("/ocm/component/dependencies?component_name=acme.org/shop/cart&version=1.0.0")
        .await;
    assert_eq!(status, StatusCode::OK);
    let held = cache.memory().len();
    assert!(held > 3, "{held} entries");

    let (status, _, body) = app
        .send(delete(
            "/cache?component_name=acme.org/shop/cart&version=1.0.0",
            Some(ADMIN_TOKEN),
        ))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // The descriptor, the tree that contains it, and the two rendered answers built from them.
    assert_eq!(body["memoryEntries"], 4, "{body}");
    assert_eq!(body["published"], false);
    assert_eq!(cache.memory().len(), held - 4);

    let (status, _, body) = app
        .send(delete("/cache?kind=versions", Some(ADMIN_TOKEN)))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, _, body) = app.send(delete("/cache?all=true", Some(ADMIN_TOKEN))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(cache.memory().len(), 0);
    let (status, body) = app
        .get("/ocm/component?component_name=acme.org/shop/cart&version=1.0.0")
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["component"]["version"], "1.0.0");
}

#[tokio::test]
async fn selectors_are_validated() {
    let app = cached_demo_app().await;
    for uri in [
        "/cache",
        "/cache?kind=versions&all=true",
        "/cache?version=1.0.0",
        "/cache?id=not-hex",
        "/cache?kind=Not%20A%20Kind",
        "/cache?component_name=../etc",
        "/cache?all=maybe",
    ] {
        let (status, _, body) = app.send(delete(uri, Some(ADMIN_TOKEN))).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{uri}: {body}");
    }
    let (status, _, body) = app
        .send(delete(
            "/cache?id=0123456789abcdef0123456789abcdef",
            Some(ADMIN_TOKEN),
        ))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn ignore_cache_bypasses_and_shortcut_cache_refreshes() {
    let app = cached_demo_app().await;
    let cache = app.cache.clone().unwrap();
    let uri = "/ocm/component?component_name=acme.org/shop/cart&version=1.1.0";
    let (status, _) = app.get(&format!("{uri}&ignore_cache=true")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        cache.memory().len(),
        0,
        "ignore_cache neither looks up nor stores"
    );

    let request = Request::get(uri)
        .header("Shortcut-Cache", "true")
        .body(Body::empty())
        .unwrap();
    let (status, _, _) = app.send(request).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        cache.memory().len(),
        2,
        "Shortcut-Cache stores what it loaded: the descriptor and the rendered answer"
    );
    let (status, _) = app.get(&format!("{uri}&shortcutCache=true")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(cache.memory().len(), 2);
}

/// The original's forms, as `odg_client.mark_cache_for_deletion` sends them: a cache
/// descriptor as the body (a component descriptor's invalidates that component version),
/// `deleteAfter` to schedule; bad forms are 400s.
#[tokio::test]
async fn the_originals_descriptor_body_and_delete_after() {
    let app = cached_demo_app().await;
    let send = |uri: &str, body: serde_json::Value| {
        Request::delete(uri)
            .header("authorization", format!("Bearer {ADMIN_TOKEN}"))
            .header("content-type", "application/json")
            .body(Body::from(body.to_string()))
            .unwrap()
    };
    let descriptor = json!({
        "type": "component-descriptor", "encoding_format": "json",
        "component_name": "acme.org/shop/cart", "component_version": "1.0.0",
        "ocm_repository": {"baseUrl": "demo.odg.invalid/ocm", "type": "OCIRegistry"},
    });
    let (status, _, body) = app.send(send("/cache", descriptor.clone())).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body["invalidated"],
        json!({"type": "component_version", "name": "acme.org/shop/cart", "version": "1.0.0"})
    );
    // another descriptor type only concerns the original's own cache
    let (status, _, body) = app
        .send(send(
            "/cache",
            json!({"type": "http-route", "encoding_format": "json", "route": "/features"}),
        ))
        .await;
    assert_eq!(
        (status, &body["invalidated"]),
        (StatusCode::OK, &json!(null)),
        "{body}"
    );
    // scheduled: nothing is dropped now
    let (status, _, body) = app
        .send(delete(
            "/cache?id=0123456789abcdef0123456789abcdef&deleteAfter=2099-01-01T00:00:00%2B00:00",
            Some(ADMIN_TOKEN),
        ))
        .await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "more than 7 days ahead: {body}"
    );
    let soon = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
    let uri = format!(
        "/cache?id=0123456789abcdef0123456789abcdef&deleteAfter={}",
        soon.replace('+', "%2B")
    );
    let (status, _, body) = app.send(delete(&uri, Some(ADMIN_TOKEN))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body["scheduledFor"].is_string(), "{body}");
    assert!(body.get("memoryEntries").is_none(), "{body}");
    for (uri, body) in [
        (
            "/cache",
            json!({"type": "redis", "encoding_format": "json"}),
        ),
        ("/cache?all=true", descriptor.clone()),
        ("/cache?all=true&deleteAfter=tomorrow", json!(null)),
    ] {
        let request = if body.is_null() {
            delete(uri, Some(ADMIN_TOKEN))
        } else {
            send(uri, body)
        };
        let (status, _, answer) = app.send(request).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{uri}: {answer}");
    }
    // the original's clients send no body with an id: still a selector
    let (status, _, body) = app
        .send(delete(
            "/cache?id=0123456789abcdef0123456789abcdef",
            Some(ADMIN_TOKEN),
        ))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}
