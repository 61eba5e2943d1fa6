//! `GET /service-extensions`: the names of the extensions this installation runs, in the
//! original's camel case (`artefactEnumerator`, `cacheManager`, ...), as configured
//! (`service_extensions:` in the file; the chart fills it from the CronJobs it deploys). The
//! dashboard's page frame reads it on every page; an installation that runs none answers `[]`.
//! The original reads the same list from its extensions configuration.

use axum::extract::State;
use axum::Json;

use crate::AppState;

pub async fn list(State(state): State<AppState>) -> Json<Vec<String>> {
    Json(state.service_extensions.to_vec())
}
