//! The route table and the layers every route shares.

mod artefacts;
mod backlog_items;
mod blob;
mod cache;
mod compliance;
mod dashboard;
mod diff;
mod every_request;
mod features;
mod guard;
mod health;
mod inactive_features;
mod json_errors;
mod login;
mod metadata;
mod metadata_search;
mod miss_ratio_curves;
mod ocm;
mod profile;
mod request_encoding;
mod rescore;
mod responsibles;
mod sbom;
mod service_extensions;
mod special_components;
mod sprints;
mod upgrade_prs;

use axum::extract::Request;
use axum::http::StatusCode;
use axum::middleware;
use axum::routing::{delete, get, post, put};
use axum::Router;
use odg_cache::CacheMode;
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;

pub use special_components::{SpecialComponent, SpecialComponentDependency};

use crate::front_door::FrontDoorLayer;
use crate::{metrics, params};
use every_request::{panic_response, EveryRequestLayer};
use guard::{Checks, GuardLayer};

use crate::{ApiError, AppState};

pub fn router(state: AppState) -> Router {
    // Each route is wrapped by one guard that does all its group needs (`Checks::Read`,
    // `Checks::Public`), and every request passes the front door and `EveryRequest` around the
    // whole table: axum boxes a route per `route_layer`/`layer` call and clones every box on
    // every request, and its `from_fn` boxes a future, so each separate layer would cost
    // allocations per request. Work routes go through admission control; the operational routes
    // never queue. These need a session when the login requires one for reads.
    let reads = Router::new()
        .route("/ocm/component", get(ocm::component))
        .route("/ocm/component/versions", get(ocm::versions))
        .route("/ocm/component/dependencies", get(ocm::dependencies))
        .route(
            "/ocm/component/responsibles",
            get(responsibles::responsibles),
        )
        .route("/ocm/artefacts/blob", get(artefacts::blob))
        .route("/components/diff", post(diff::diff))
        .route("/cache", delete(cache::invalidate))
        .route(
            "/artefacts/metadata",
            put(metadata::put).delete(metadata::delete),
        )
        .route("/artefacts/metadata/query", post(metadata::query))
        .route(
            "/artefacts/metadata/query-attributes",
            get(metadata_search::query_attributes),
        )
        .route(
            "/artefacts/metadata/query/by-search-expression",
            post(metadata_search::search),
        )
        .route(
            "/blob",
            get(blob::download)
                .head(blob::metadata)
                .post(blob::upload)
                .delete(blob::delete),
        )
        .route("/components/compliance-summary", get(compliance::summary))
        .route("/rescore", get(rescore::preview).post(rescore::apply))
        .route("/service-extensions", get(service_extensions::list))
        .route(
            "/special-component/current-dependencies",
            get(special_components::current_dependencies),
        )
        .route(
            "/service-extensions/backlog-items",
            get(backlog_items::list)
                .post(backlog_items::create)
                .put(backlog_items::update)
                .delete(backlog_items::delete),
        )
        .route(
            "/service-extensions/backlog-items/claim",
            post(backlog_items::claim).delete(backlog_items::release),
        )
        .route("/delivery/sprint-infos", get(sprints::sprint_infos))
        .route("/delivery/sprint-infos/current", get(sprints::current))
        .route(
            "/service-extensions/log-collections",
            get(inactive_features::cluster_access),
        )
        .route(
            "/service-extensions/container-statuses",
            get(inactive_features::cluster_access),
        )
        .route(
            "/service-extensions/runtime-artefacts",
            get(inactive_features::cluster_access)
                .put(inactive_features::cluster_access)
                .delete(inactive_features::cluster_access),
        )
        .route("/components/upgrade-prs", get(upgrade_prs::upgrade_prs))
        .route("/components/tests", get(inactive_features::tests))
        .route("/components/sbom", get(sbom::sbom))
        .route("/dora/dora-metrics", get(inactive_features::dora))
        .route("/os/{os_id}/branches", get(inactive_features::os_branches))
        .route_layer(GuardLayer::new(state.clone(), Checks::Read));
    // What the dashboard reads before a user logged in.
    let public = Router::new()
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
        .route_layer(GuardLayer::new(state.clone(), Checks::Public));
    let operations = operations_router().route_layer(middleware::from_fn(metrics::http_metrics));
    let dashboard_dir = state.dashboard_dir.clone();
    let routes = reads.merge(public).merge(operations);
    // The dashboard's files are the fallback: every API route above wins over a file of the
    // same path, and without a dashboard an unknown path is the JSON 404.
    let routes = match dashboard_dir {
        Some(directory) => routes
            .route("/dynamic/config.js", get(dashboard::config_js))
            .fallback_service(dashboard::files(&directory)),
        None => routes.fallback(not_found),
    };
    let routes = routes
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state.clone());
    // The layers every request passes, around the whole route table once (not per route).
    // Outermost first: the front door (request id, the request's span, CORS: preflights are
    // answered before anything below runs, and every answer, errors and panics included, gets
    // the CORS headers and the request id); the steps every request takes (cache mode, body
    // coding, the panic guard, JSON errors). Bodies are decoded as handlers read them, through the body limit, so the limit
    // counts decoded bytes.
    let every_request = ServiceBuilder::new()
        .layer(FrontDoorLayer::new(state.cors.layer()))
        .layer(EveryRequestLayer)
        .layer(axum::extract::DefaultBodyLimit::max(
            metadata::MAX_BODY_BYTES,
        ))
        .service(routes);
    Router::new().fallback_service(every_request)
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

/// The admin listener's router: operational routes, and CPU profiles when enabled (never on
/// the API listener: a profile shows the code's structure and costs CPU while it records).
pub fn admin_router(state: AppState) -> Router {
    operations_router()
        .route("/debug/pprof/profile", get(profile::profile))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state)
        .layer(middleware::from_fn(json_errors::json_errors))
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

/// The original's cache switches, read alike on every route.
pub(super) fn cache_mode_of(request: &Request) -> Result<CacheMode, ApiError> {
    let query = request.uri().query().unwrap_or("");
    // Most requests name neither switch: skip parsing the query a second time (the handler
    // parses it too). Without a `%`, no escaped spelling of the names can hide in it.
    let may_name_a_switch =
        query.contains('%') || query.contains("ignore_cache") || query.contains("shortcutCache");
    let switches: CacheSwitches = if may_name_a_switch {
        params::parse_query(query)?
    } else {
        CacheSwitches::default()
    };
    let header_shortcut = match request.headers().get("shortcut-cache") {
        None => false,
        Some(value) => match value.to_str().ok().and_then(params::parse_flag) {
            Some(flag) => flag,
            None => {
                return Err(ApiError::bad_request(
                    "the Shortcut-Cache header must be a boolean (true/false)",
                ))
            }
        },
    };
    Ok(if switches.ignore_cache {
        CacheMode::Bypass
    } else if header_shortcut || switches.shortcut_cache {
        CacheMode::Refresh
    } else {
        CacheMode::Normal
    })
}
