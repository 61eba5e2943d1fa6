//! `GET /cache/miss-ratio-curves`: this pod's sampled miss-ratio curves per cache tier and kind,
//! in full, for `odg cache advise` (the `/metrics` points are a fixed subset). Read-only, on the
//! operations router: served on the main listener and on the admin listener.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use crate::{ApiError, AppState};

pub async fn miss_ratio_curves(State(state): State<AppState>) -> Response {
    let Some(cache) = state.components.cache() else {
        return ApiError::not_found("caching is turned off").into_response();
    };
    let cache = cache.clone();
    // snapshots copy every curve's histogram under its lock: CPU work off the async workers
    match odg_offload::run_cpu_bound(move || cache.miss_ratio_curves()).await {
        Ok(Some(report)) => Json(json!({
            "tiers": report.tiers,
            "exported_scales": odg_cache::EXPORTED_SCALES.iter().map(|(scale, _)| scale).collect::<Vec<_>>(),
        }))
        .into_response(),
        Ok(None) => ApiError::not_found(
            "miss-ratio curves are switched off (--miss-ratio-curves=false)",
        )
        .into_response(),
        Err(_) => ApiError::new(
            axum::http::StatusCode::INTERNAL_SERVER_ERROR,
            "reading the miss-ratio curves failed",
        )
        .into_response(),
    }
}
