//! Liveness and readiness.

use axum::Json;
use serde_json::{json, Value};

/// Ready once the router serves: configuration was validated before the listener opened.
pub async fn ready() -> Json<Value> {
    Json(json!({"status": "ready"}))
}

/// The process answers; never depends on upstreams, so overload cannot make it fail.
pub async fn live() -> Json<Value> {
    Json(json!({"status": "alive"}))
}
