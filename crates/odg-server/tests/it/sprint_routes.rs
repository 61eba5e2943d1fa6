//! `/delivery/sprint-infos` and `/delivery/sprint-infos/current` over a configured calendar, and
//! without one (the original's answers: an empty list, 400 for the current sprint).

use axum::http::StatusCode;
use odg_server::{ListedSprint, SprintCalendar, SprintMetadata, SprintOffset, SprintsConfig};
use serde_json::{json, Value};

use crate::support::{metadata_state, TestApp};

async fn app(calendar: Option<SprintCalendar>) -> (TestApp, tempfile::TempDir) {
    let directory = tempfile::tempdir().unwrap();
    let state = metadata_state(directory.path())
        .await
        .with_sprints(calendar);
    let app = TestApp {
        router: odg_server::router(state),
        cache: None,
        _directory: None,
    };
    (app, directory)
}

fn listed() -> SprintCalendar {
    let sprint = |name: &str, end_date: &str| ListedSprint {
        name: name.into(),
        end_date: end_date.parse().unwrap(),
    };
    SprintCalendar::new(SprintsConfig {
        meta: SprintMetadata {
            offsets: vec![SprintOffset {
                name: "release_decision".into(),
                display_name: Some("Release Decision".into()),
                offset_days: -2,
            }],
            finding_due_date_offset_name: None,
        },
        // not in order: the current sprint is found by due date
        sprints: Some(vec![
            sprint("2502", "2025-01-22"),
            sprint("2501", "2025-01-08"),
            sprint("2503", "2025-02-05"),
        ]),
        ..Default::default()
    })
    .unwrap()
}

fn sprints_feature(features: &Value) -> &Value {
    features["features"]
        .as_array()
        .unwrap()
        .iter()
        .find(|feature| feature["name"] == "sprints")
        .unwrap()
}

#[tokio::test]
async fn configured_sprints_are_listed_in_the_originals_shape() {
    let (app, _directory) = app(Some(listed())).await;
    let (status, features) = app.get("/features").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        sprints_feature(&features),
        &json!({"name": "sprints", "state": "available"})
    );
    let (status, body) = app.get("/delivery/sprint-infos").await;
    assert_eq!(status, StatusCode::OK);
    let sprints = body["sprints"].as_array().unwrap();
    assert_eq!(sprints.len(), 3);
    assert_eq!(
        sprints[0],
        json!({
            "name": "2502",
            "dates": [
                {"name": "end_date", "display_name": "End Date", "value": "2025-01-22"},
                {"name": "release_decision", "display_name": "Release Decision", "value": "2025-01-20"},
            ],
            "finding_due_date_offset_name": "end_date",
        })
    );
}

#[tokio::test]
async fn the_current_sprint_follows_before_and_offset() {
    let (app, _directory) = app(Some(listed())).await;
    let name = |body: &Value| body["name"].as_str().unwrap().to_string();
    let (status, body) = app
        .get("/delivery/sprint-infos/current?before=2025-01-09")
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(name(&body), "2502");
    // the end date itself still counts; a date-time counts by its date
    let (_, body) = app
        .get("/delivery/sprint-infos/current?before=2025-01-08T23:00:00%2B00:00")
        .await;
    assert_eq!(name(&body), "2501");
    let (_, body) = app
        .get("/delivery/sprint-infos/current?before=2025-01-09&offset=1")
        .await;
    assert_eq!(name(&body), "2503");
    let (_, body) = app
        .get("/delivery/sprint-infos/current?before=2025-01-09&offset=-7")
        .await;
    assert_eq!(name(&body), "2501", "clamped to the first sprint");
    // every sprint past: the last one
    let (_, body) = app
        .get("/delivery/sprint-infos/current?before=2030-01-01")
        .await;
    assert_eq!(name(&body), "2503");

    let (status, body) = app.get("/delivery/sprint-infos/current?offset=soon").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["parameter"], "offset");
    let (status, body) = app
        .get("/delivery/sprint-infos/current?before=yesterday")
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["parameter"], "before");
}

#[tokio::test]
async fn a_generated_calendar_reaches_past_today() {
    let calendar = SprintCalendar::new(SprintsConfig {
        sprint_name_pattern: Some("%y%S%C".into()),
        ..Default::default()
    })
    .unwrap();
    let (app, _directory) = app(Some(calendar)).await;
    let (status, body) = app.get("/delivery/sprint-infos/current").await;
    assert_eq!(status, StatusCode::OK);
    let end_date = body["dates"][0]["value"].as_str().unwrap();
    let today = chrono::Utc::now().date_naive().to_string();
    assert!(end_date >= today.as_str(), "{end_date} before {today}");
    let (_, infos) = app.get("/delivery/sprint-infos").await;
    let sprints = infos["sprints"].as_array().unwrap();
    assert!(sprints.len() > 26, "a year ahead: {}", sprints.len());
    // newest first
    assert!(sprints[0]["dates"][0]["value"].as_str() > sprints[1]["dates"][0]["value"].as_str());
}

#[tokio::test]
async fn without_sprints_the_list_is_empty_and_there_is_no_current_sprint() {
    let (app, _directory) = app(None).await;
    let (_, features) = app.get("/features").await;
    assert_eq!(sprints_feature(&features)["state"], "unavailable");
    let (status, body) = app.get("/delivery/sprint-infos").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!({"sprints": []}));
    let (status, body) = app.get("/delivery/sprint-infos/current").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["error"].as_str().unwrap().contains("No sprint found"));
}
