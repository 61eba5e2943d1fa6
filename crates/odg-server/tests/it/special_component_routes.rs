//! The landing page's components from configuration: `/features` `special-components` and
//! `GET /special-component/current-dependencies` in the original's shapes and errors.

use axum::http::StatusCode;
use odg_server::{SpecialComponent, SpecialComponentDependency};
use serde_json::{json, Value};

use crate::support::{metadata_state, TestApp};

fn component() -> SpecialComponent {
    SpecialComponent {
        id: "c-1".into(),
        name: "example.org/app".into(),
        display_name: "App".into(),
        kind: "Apps".into(),
        version: "greatest".into(),
        icon: None,
        release_pipeline_url: None,
        ocm_repo: None,
        dependencies: vec![SpecialComponentDependency {
            name: "example.org/lib".into(),
            display_name: "Lib".into(),
        }],
    }
}

async fn app(components: Vec<SpecialComponent>) -> (TestApp, tempfile::TempDir) {
    let directory = tempfile::tempdir().unwrap();
    let state = metadata_state(directory.path())
        .await
        .with_special_components(components);
    let app = TestApp {
        router: odg_server::router(state),
        cache: None,
        _directory: None,
    };
    (app, directory)
}

fn special_components(features: &Value) -> &Value {
    features["features"]
        .as_array()
        .unwrap()
        .iter()
        .find(|feature| feature["name"] == "special-components")
        .unwrap()
}

#[tokio::test]
async fn configured_special_components_are_a_feature_with_their_dependencies() {
    let (app, _directory) = app(vec![component()]).await;
    let (status, features) = app.get("/features").await;
    assert_eq!(status, StatusCode::OK);
    let feature = special_components(&features);
    assert_eq!(feature["state"], "available");
    assert_eq!(
        feature["specialComponents"],
        json!([{
            "id": "c-1", "name": "example.org/app", "displayName": "App", "type": "Apps",
            "version": "greatest", "icon": null, "releasePipelineUrl": null, "ocmRepo": null,
            "sprintRules": null, "currentVersion": null,
            "dependencies": [{"name": "example.org/lib", "displayName": "Lib", "currentVersion": null}],
        }])
    );

    let (status, body) = app
        .get("/special-component/current-dependencies?id=c-1")
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        json!({
            "displayName": "App",
            "componentDependencies": [{"name": "example.org/lib", "displayName": "Lib", "version": null}],
            "version": null,
        })
    );
    // an unknown id: an empty object (the original's answer)
    let (status, body) = app
        .get("/special-component/current-dependencies?id=nonesuch")
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!({}));
    // the id is required
    let (status, body) = app.get("/special-component/current-dependencies").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
}

#[tokio::test]
async fn without_special_components_the_feature_is_unavailable_and_the_route_says_so() {
    let (app, _directory) = app(vec![]).await;
    let (_, features) = app.get("/features").await;
    let feature = special_components(&features);
    assert_eq!(feature["state"], "unavailable");
    assert_eq!(feature["specialComponents"], json!([]));
    let (status, body) = app
        .get("/special-component/current-dependencies?id=c-1")
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error_id"], "feature-inactive");
    assert_eq!(body["missing_features"], json!(["special-components"]));
}

#[tokio::test]
async fn service_extensions_lists_the_configured_names_or_none() {
    let (app, _directory) = app(vec![]).await;
    let (status, body) = app.get("/service-extensions").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!([]));
    let directory = tempfile::tempdir().unwrap();
    let state = metadata_state(directory.path())
        .await
        .with_service_extensions(vec!["artefactEnumerator".into(), "cacheManager".into()]);
    let app = TestApp {
        router: odg_server::router(state),
        cache: None,
        _directory: None,
    };
    let (status, body) = app.get("/service-extensions").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!(["artefactEnumerator", "cacheManager"]));
}
