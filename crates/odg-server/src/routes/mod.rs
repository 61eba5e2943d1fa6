//! The route table and the layers every route shares.

mod cache;
mod health;
mod ocm;

use axum::extract::Request;
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get};
use axum::Router;
use odg_cache::CacheMode;
use tower_http::catch_panic::CatchPanicLayer;

use crate::{ApiError, AppState};

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/ocm/component", get(ocm::component))
        .route("/ocm/component/versions", get(ocm::versions))
        .route("/ocm/component/dependencies", get(ocm::dependencies))
        .route("/cache", delete(cache::invalidate))
        .route("/ready", get(health::ready))
        .route("/live", get(health::live))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state)
        .layer(middleware::from_fn(cache_mode))
        .layer(CatchPanicLayer::custom(panic_response))
}

async fn not_found() -> ApiError {
    ApiError::not_found("no such route")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method not allowed on this route",
    )
}

/// A panic is a bug: log it, answer a generic JSON 500, keep serving.
fn panic_response(panic: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let detail = panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or("unknown panic");
    tracing::error!(%detail, "handler panicked");
    ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response()
}

/// The original's cache switches, for every route: `Shortcut-Cache: true` (or `shortcutCache`)
/// skips lookups but stores results; `ignore_cache=true` neither looks up nor stores.
async fn cache_mode(request: Request, next: Next) -> Response {
    let truthy = |value: &str| {
        matches!(
            value.to_ascii_lowercase().as_str(),
            "true" | "t" | "yes" | "y" | "1" | "on"
        )
    };
    let header_shortcut = request
        .headers()
        .get("shortcut-cache")
        .and_then(|value| value.to_str().ok())
        .is_some_and(truthy);
    let mut query_shortcut = false;
    let mut ignore = false;
    if let Some(query) = request.uri().query() {
        for (name, value) in url::form_urlencoded::parse(query.as_bytes()) {
            match name.as_ref() {
                "shortcutCache" => query_shortcut |= truthy(&value),
                "ignore_cache" => ignore |= truthy(&value),
                _ => {}
            }
        }
    }
    let mode = if ignore {
        CacheMode::Bypass
    } else if header_shortcut || query_shortcut {
        CacheMode::Refresh
    } else {
        CacheMode::Normal
    };
    odg_components::with_cache_mode(mode, next.run(request)).await
}
