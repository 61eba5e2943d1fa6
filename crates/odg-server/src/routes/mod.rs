//! The route table and the layers every route shares.

mod cache;
mod compliance;
mod dashboard;
mod diff;
mod features;
mod health;
mod json_errors;
mod login;
mod metadata;
mod miss_ratio_curves;
mod ocm;
mod request_encoding;
mod responsibles;
mod service_extensions;
mod special_components;

use axum::extract::Request;
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use axum::Router;
use odg_cache::CacheMode;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

pub use special_components::{SpecialComponent, SpecialComponentDependency};

use crate::{admission, metrics, params};

use crate::{ApiError, AppState};

pub fn router(state: AppState) -> Router {
    let cors = state.cors.layer();
    // Work routes go through admission control; the operational routes never queue.
    let work = Router::new()
        .route("/ocm/component", get(ocm::component))
        .route("/ocm/component/versions", get(ocm::versions))
        .route("/ocm/component/dependencies", get(ocm::dependencies))
        .route(
            "/ocm/component/responsibles",
            get(responsibles::responsibles),
        )
        .route("/components/diff", post(diff::diff))
        .route("/cache", delete(cache::invalidate))
        .route(
            "/artefacts/metadata",
            put(metadata::put).delete(metadata::delete),
        )
        .route("/artefacts/metadata/query", post(metadata::query))
        .route("/components/compliance-summary", get(compliance::summary))
        .route("/service-extensions", get(service_extensions::list))
        .route(
            "/special-component/current-dependencies",
            get(special_components::current_dependencies),
        )
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            require_read_auth,
        ))
        .route("/features", get(features::features))
        .route("/profiles", get(features::profiles))
        .route("/auth/configs", get(login::configs))
        .route("/auth", get(login::login))
        .route("/auth/refresh", post(login::refresh))
        .route("/auth/logout", get(login::logout))
        .route("/auth/user", get(login::user))
        .route("/auth/rbac", get(login::rbac))
        .route(
            "/.well-known/openid-configuration",
            get(login::openid_configuration),
        )
        .route("/openid/v1/jwks", get(login::jwks))
        .layer(axum::extract::DefaultBodyLimit::max(
            metadata::MAX_BODY_BYTES,
        ))
        .route_layer(middleware::from_fn_with_state(
            state.admission.clone(),
            admission::admit,
        ));
    let operations = operations_router();
    let dashboard_dir = state.dashboard_dir.clone();
    let routes = work
        .merge(operations)
        .route_layer(middleware::from_fn(metrics::http_metrics));
    // The dashboard's files are the fallback: every API route above wins over a file of the
    // same path, and without a dashboard an unknown path is the JSON 404.
    let routes = match dashboard_dir {
        Some(directory) => routes
            .route("/dynamic/config.js", get(dashboard::config_js))
            .fallback_service(dashboard::files(&directory)),
        None => routes.fallback(not_found),
    };
    routes
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state)
        // Bodies are decoded as handlers read them, through the routes' body limits, so the
        // limits count decoded bytes.
        .layer(request_encoding::decompression())
        .layer(middleware::from_fn(request_encoding::normalise))
        .layer(middleware::from_fn(json_errors::json_errors))
        .layer(middleware::from_fn(cache_mode))
        // Outermost last: a request id (taken from `X-Request-Id` or made up) before the span
        // that carries it, returned on the response; CORS answers preflights before anything
        // below runs and adds its headers to every answer, errors and panics included; the
        // panic guard right around the routes.
        .layer(CatchPanicLayer::custom(panic_response))
        .layer(cors)
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(TraceLayer::new_for_http().make_span_with(request_span))
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
}

/// `/live`, `/ready`, `/metrics` and `/cache/miss-ratio-curves`, also served alone on the admin listener.
pub fn operations_router() -> Router<AppState> {
    Router::new()
        .route("/ready", get(health::ready))
        .route("/live", get(health::live))
        .route("/metrics", get(health::metrics))
        .route(
            "/cache/miss-ratio-curves",
            get(miss_ratio_curves::miss_ratio_curves),
        )
}

/// The admin listener's router: operational routes only.
pub fn admin_router(state: AppState) -> Router {
    operations_router()
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state)
        .layer(middleware::from_fn(json_errors::json_errors))
        .layer(CatchPanicLayer::custom(panic_response))
}

fn request_span(request: &Request) -> tracing::Span {
    let request_id = request
        .headers()
        .get("x-request-id")
        .and_then(|value| value.to_str().ok())
        .unwrap_or("-");
    tracing::info_span!("request", method = %request.method(), path = %request.uri().path(), request_id = %request_id)
}

/// The routes above it need a session when the login requires one for reads (the original's
/// rule); state-changing routes check their grant in the handler as well.
async fn require_read_auth(
    axum::extract::State(state): axum::extract::State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    match state.auth.authorize_read(
        request.headers(),
        request.method().as_str(),
        request.uri().path(),
    ) {
        Ok(()) => next.run(request).await,
        Err(error) => error.into_response(),
    }
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

/// The original's cache switches, read alike on every route.
#[derive(Debug, Default, serde::Deserialize)]
struct CacheSwitches {
    /// Neither look up nor store.
    #[serde(default)]
    ignore_cache: bool,
    /// Skip lookups but store the results (also the `Shortcut-Cache` header, as the dashboard sends it).
    #[serde(default, rename = "shortcutCache")]
    shortcut_cache: bool,
}

/// Reads the cache switches for every route (a bad value is the same 400 everywhere) and runs
/// the request in that [`CacheMode`].
async fn cache_mode(request: Request, next: Next) -> Response {
    let switches: CacheSwitches = match params::parse_query(request.uri().query().unwrap_or("")) {
        Ok(switches) => switches,
        Err(error) => return error.into_response(),
    };
    let header_shortcut = match request.headers().get("shortcut-cache") {
        None => false,
        Some(value) => match value.to_str().ok().and_then(params::parse_flag) {
            Some(flag) => flag,
            None => {
                return ApiError::bad_request(
                    "the Shortcut-Cache header must be a boolean (true/false)",
                )
                .into_response()
            }
        },
    };
    let mode = if switches.ignore_cache {
        CacheMode::Bypass
    } else if header_shortcut || switches.shortcut_cache {
        CacheMode::Refresh
    } else {
        CacheMode::Normal
    };
    let mut request = request;
    request.extensions_mut().insert(mode);
    odg_components::with_cache_mode(mode, next.run(request)).await
}
