//! Liveness, readiness and the metrics endpoint: never queued behind admission control.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use crate::{ApiError, AppState};

/// Ready while serving; 503 once draining for shutdown. Never depends on upstreams or load,
/// so readiness does not flap under a burst. The delivery DB's state is reported in the body
/// but does not make the pod unready: the OCM routes work without it, and a database outage
/// would otherwise take every pod out of service at once.
pub async fn ready(State(state): State<AppState>) -> Response {
    if state.readiness.is_ready() {
        let mut body = json!({"status": "ready"});
        if let Some(compliance) = &state.compliance {
            let health = compliance.db().health();
            body["delivery_db"] = json!(health.status.as_str());
            if let Some(error) = health.last_error {
                body["delivery_db_error"] = json!(error);
            }
        }
        Json(body).into_response()
    } else {
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "draining for shutdown").into_response()
    }
}

/// The process answers; never depends on upstreams, so overload cannot make it fail.
pub async fn live() -> Json<Value> {
    Json(json!({"status": "alive"}))
}

/// Prometheus text format.
pub async fn metrics(State(state): State<AppState>) -> Response {
    match &state.metrics {
        Some(handle) => {
            let handle = handle.clone();
            let cache = state.components.cache().cloned();
            // Sampling /proc, reading the miss-ratio curves and rendering every series is CPU
            // work: off the async workers.
            let render = move || {
                if let Some(cache) = &cache {
                    cache.export_miss_ratio_curve_metrics();
                }
                crate::metrics::render(&handle)
            };
            match odg_offload::run_cpu_bound(render).await {
                Ok(text) => (
                    [(
                        header::CONTENT_TYPE,
                        "text/plain; version=0.0.4; charset=utf-8",
                    )],
                    text,
                )
                    .into_response(),
                Err(_) => ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "metrics rendering failed",
                )
                .into_response(),
            }
        }
        None => ApiError::not_found("metrics are not enabled").into_response(),
    }
}
