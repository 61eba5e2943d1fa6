//! The original's routes odg has no data source for: each answers as the original does without
//! its feature (400 `feature-inactive` naming it, or the original's 400 for OS branches), never a
//! 404 or 500, and `/features` reports each of those features unavailable.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::json;

use crate::support::{metadata_state, TestApp};

async fn app() -> (TestApp, tempfile::TempDir) {
    let directory = tempfile::tempdir().unwrap();
    let state = metadata_state(directory.path()).await;
    let app = TestApp {
        router: odg_server::router(state),
        cache: None,
        _directory: None,
    };
    (app, directory)
}

#[tokio::test]
async fn routes_without_a_data_source_answer_feature_inactive() {
    let (app, _directory) = app().await;
    let cases = [
        (
            "GET",
            "/service-extensions/log-collections?log_level=INFO",
            "cluster-access",
        ),
        (
            "GET",
            "/service-extensions/container-statuses?service=bdba",
            "cluster-access",
        ),
        (
            "GET",
            "/service-extensions/runtime-artefacts",
            "cluster-access",
        ),
        (
            "PUT",
            "/service-extensions/runtime-artefacts",
            "cluster-access",
        ),
        (
            "DELETE",
            "/service-extensions/runtime-artefacts?name=x",
            "cluster-access",
        ),
        (
            "GET",
            "/components/upgrade-prs?componentName=acme.org/shop/checkout",
            "upgrade-prs",
        ),
        (
            "GET",
            "/components/tests?componentName=a&componentVersion=1",
            "tests",
        ),
        (
            "GET",
            "/dora/dora-metrics?target_component_name=acme.org/landscape",
            "dora",
        ),
    ];
    for (method, uri, feature) in cases {
        let request = Request::builder()
            .method(method)
            .uri(uri)
            .body(Body::empty())
            .unwrap();
        let (status, _, body) = app.send(request).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{method} {uri}");
        assert_eq!(body["error_id"], "feature-inactive", "{method} {uri}");
        assert_eq!(body["missing_features"], json!([feature]), "{method} {uri}");
    }

    let (_, features) = app.get("/features").await;
    for feature in ["cluster-access", "upgrade-prs", "tests", "dora"] {
        let entry = features["features"]
            .as_array()
            .unwrap()
            .iter()
            .find(|entry| entry["name"] == feature)
            .unwrap_or_else(|| panic!("{feature} missing from /features"));
        assert_eq!(entry["state"], "unavailable", "{feature}");
    }
}

#[tokio::test]
async fn os_branches_are_unknown_as_the_original_answers_for_an_unknown_os() {
    let (app, _directory) = app().await;
    let (status, body) = app.get("/os/alpine/branches").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["os_id"], "alpine");
}
