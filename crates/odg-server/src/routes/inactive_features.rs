//! The original's routes whose data source odg does not have: Kubernetes (log collections,
//! container statuses, runtime artefacts: the `cluster-access` feature), GitHub test results
//! (`tests`), DORA metrics (`dora`) and the end-of-life
//! API (OS branches). Each answers as the original does without its feature, so the dashboard
//! handles them as it would there: 400 `feature-inactive` naming the feature, which `/features`
//! reports unavailable. Never a 404 (the dashboard would show a failure) or a 500.

use axum::extract::Path;

use crate::ApiError;

/// The original's feature for Kubernetes access.
pub const CLUSTER_ACCESS: &str = "cluster-access";

/// `/service-extensions/log-collections`, `/container-statuses`, `/runtime-artefacts` (every
/// method): the original reads them from the cluster.
pub async fn cluster_access() -> ApiError {
    ApiError::feature_inactive(&[CLUSTER_ACCESS])
}

/// `GET /components/tests`: test results attached to GitHub releases.
pub async fn tests() -> ApiError {
    ApiError::feature_inactive(&["tests"])
}

/// `GET /dora/dora-metrics`. The original computes these without a feature check (the `dora`
/// feature only shows the dashboard's tab); odg does not compute them and says so the way the
/// dashboard understands, with the feature it reports unavailable.
pub async fn dora() -> ApiError {
    ApiError::feature_inactive(&["dora"])
}

/// `GET /os/{os_id}/branches`: the original asks endoflife.date (or a few built-in files) and
/// answers 400 for an OS it has nothing on; odg has no such source, so every OS is one. The
/// dashboard reads the 400 as "no branch information".
pub async fn os_branches(Path(os_id): Path<String>) -> ApiError {
    ApiError::bad_request(format!("no release information for {os_id:?}"))
        .with("os_id", serde_json::Value::String(os_id))
}
