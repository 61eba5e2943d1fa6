//! A built Delivery Dashboard (the original's React UI) served on the API's own origin, so that
//! one `odg serve --dashboard-dir DIR` brings up the UI: its static files through tower-http's
//! `ServeDir` (which refuses `..` and anything outside the directory), and `dynamic/config.js`,
//! which the bundle reads for its service URL, answered here with the page's own origin. These
//! answers sit outside admission control and authentication: they are the same public files for
//! everyone, and the UI logs in through the API afterwards.

use std::path::Path;

use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use tower_http::services::ServeDir;

/// The bundle's run-time configuration: the service is whatever origin served the page.
const CONFIG_JS: &str = "window.REACT_APP_DELIVERY_SERVICE_API_URL = window.location.origin;\nwindow.REACT_APP_DASHBOARD_TITLE = \"Open Delivery Gear\";\n";

/// The directory's files; `/` is its `index.html`, a missing file a 404.
pub fn files(directory: &Path) -> ServeDir {
    ServeDir::new(directory).append_index_html_on_directories(true)
}

/// `GET /dynamic/config.js`: points the UI at this origin (never cached, so a moved service is
/// picked up on the next load).
pub async fn config_js() -> Response {
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/javascript; charset=utf-8"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        CONFIG_JS,
    )
        .into_response()
}
