//! `/service-extensions/backlog-items` over the delivery DB, on SQLite and PostgreSQL: the
//! original's shapes, names and priority rules, the claim and its lease, roles of writes, and
//! 400s for bad input.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::{json, Value};

use crate::support::{jwt_for, metadata_state_with, Backend, ADMIN_TOKEN};

struct App {
    router: axum::Router,
    _directory: tempfile::TempDir,
    _database: Option<odg_test_support::postgres::TestDatabase>,
}

async fn app(backend: Backend) -> App {
    let directory = tempfile::tempdir().unwrap();
    let (state, database) = metadata_state_with(directory.path(), backend).await;
    App {
        router: odg_server::router(state),
        _directory: directory,
        _database: database,
    }
}

impl App {
    /// Sends a request whose answer may have no body (201/204).
    async fn send(
        &self,
        method: &str,
        uri: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        use http_body_util::BodyExt;
        use tower::ServiceExt;
        let mut builder = Request::builder().method(method).uri(uri);
        if let Some(token) = token {
            builder = builder.header("authorization", format!("Bearer {token}"));
        }
        let body = body.map_or_else(Body::empty, |body| Body::from(body.to_string()));
        let response = self
            .router
            .clone()
            .oneshot(builder.body(body).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap()
        };
        if !status.is_success() {
            assert!(body["error"].is_string(), "{method} {uri}: {status} {body}");
        }
        (status, body)
    }

    async fn items(&self, service: &str) -> Vec<Value> {
        let (status, body) = self
            .send(
                "GET",
                &format!("/service-extensions/backlog-items?service={service}"),
                None,
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body.as_array().unwrap().clone()
    }
}

fn artefact(name: &str) -> Value {
    json!({
        "component_name": "acme.org/shop/checkout",
        "component_version": "1.3.0",
        "artefact_kind": "resource",
        "artefact": {"artefact_name": name, "artefact_version": "1.3.0", "artefact_type": "ociImage", "artefact_extra_id": {}},
    })
}

async fn items_are_created_listed_raised_updated_and_deleted(backend: Backend) {
    let app = app(backend).await;
    let writer = jwt_for("bdba-worker", json!(["backlog-writer"]));
    assert!(app.items("bdba").await.is_empty());

    let (status, body) = app
        .send(
            "POST",
            "/service-extensions/backlog-items?service=bdba&priority=low",
            Some(&writer),
            Some(json!({"artefacts": [artefact("checkout"), artefact("checkout-db")]})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body, json!({"created": 2, "raised": 0, "unchanged": 0}));

    let items = app.items("bdba").await;
    assert_eq!(items.len(), 2);
    let item = items
        .iter()
        .find(|item| item["spec"]["artefact"]["artefact"]["artefact_name"] == "checkout")
        .unwrap();
    let name = item["metadata"]["name"].as_str().unwrap().to_string();
    // the original's resource name: service and the BLAKE2s-16 of the artefact's key
    assert!(
        name.starts_with("bdba-") && name.len() == "bdba-".len() + 32,
        "{name}"
    );
    assert_eq!(
        item["metadata"]["labels"],
        json!({"delivery-gear.gardener.cloud/service": "bdba"})
    );
    assert_eq!(item["metadata"]["annotations"], Value::Null);
    assert!(item["metadata"]["uid"].as_str().unwrap().len() == 36);
    assert!(item["metadata"]["creationTimestamp"]
        .as_str()
        .unwrap()
        .ends_with('Z'));
    assert_eq!(item["spec"]["priority"], 1);
    assert_eq!(
        item["spec"]["artefact"],
        json!({
            "component_name": "acme.org/shop/checkout", "component_version": "1.3.0", "artefact_kind": "resource",
            "artefact": {"artefact_name": "checkout", "artefact_version": "1.3.0", "artefact_type": "ociImage", "artefact_extra_id": {}},
            "references": [],
        })
    );
    assert!(item["spec"]["timestamp"].is_string());
    // other services see none of them
    assert!(app.items("clamav").await.is_empty());

    // the same artefact again: a higher priority raises it, a lower one changes nothing
    let (status, body) = app
        .send(
            "POST",
            "/service-extensions/backlog-items?service=bdba&priority=HIGH",
            Some(&writer),
            Some(json!({"artefacts": [artefact("checkout")]})),
        )
        .await;
    assert_eq!(
        (status, body),
        (
            StatusCode::CREATED,
            json!({"created": 0, "raised": 1, "unchanged": 0})
        )
    );
    let (_, body) = app
        .send(
            "POST",
            "/service-extensions/backlog-items?service=bdba&priority=NONE",
            Some(&writer),
            Some(json!({"artefacts": [artefact("checkout")]})),
        )
        .await;
    assert_eq!(body, json!({"created": 0, "raised": 0, "unchanged": 1}));
    let items = app.items("bdba").await;
    assert_eq!(items.len(), 2);
    let item = items
        .iter()
        .find(|item| item["metadata"]["name"] == name.as_str())
        .unwrap();
    assert_eq!(item["spec"]["priority"], 4);

    // PUT replaces the spec; an unknown name is ignored (processed already)
    let mut spec = item["spec"].clone();
    spec["priority"] = json!(8);
    let (status, _) = app
        .send(
            "PUT",
            &format!("/service-extensions/backlog-items?name={name}"),
            Some(&writer),
            Some(json!({"spec": spec})),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let items = app.items("bdba").await;
    let item = items
        .iter()
        .find(|item| item["metadata"]["name"] == name.as_str())
        .unwrap();
    assert_eq!(item["spec"]["priority"], 8);
    let (status, _) = app
        .send(
            "PUT",
            "/service-extensions/backlog-items?name=bdba-gone",
            Some(&writer),
            Some(json!({"spec": spec})),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);

    // DELETE by name, repeatable; unknown names are fine
    let (status, _) = app
        .send(
            "DELETE",
            &format!("/service-extensions/backlog-items?name={name}&name=bdba-gone"),
            Some(&writer),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(app.items("bdba").await.len(), 1);
}

#[tokio::test]
async fn items_are_created_listed_raised_updated_and_deleted_on_sqlite() {
    items_are_created_listed_raised_updated_and_deleted(Backend::Sqlite).await;
}

#[tokio::test]
async fn items_are_created_listed_raised_updated_and_deleted_on_postgres() {
    items_are_created_listed_raised_updated_and_deleted(Backend::Postgres).await;
}

async fn claims_take_the_highest_priority_then_the_oldest(backend: Backend) {
    let app = app(backend).await;
    let writer = jwt_for("bdba-worker", json!(["backlog-writer"]));
    for (name, priority) in [("a", "LOW"), ("b", "CRITICAL"), ("c", "CRITICAL")] {
        let (status, _) = app
            .send(
                "POST",
                &format!("/service-extensions/backlog-items?service=bdba&priority={priority}"),
                Some(&writer),
                Some(json!({"artefacts": [artefact(name)]})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED);
    }
    let claimed_name = |body: &Value| {
        body["spec"]["artefact"]["artefact"]["artefact_name"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let claim = "/service-extensions/backlog-items/claim?service=bdba";
    let (status, first) = app.send("POST", claim, Some(&writer), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(claimed_name(&first), "b", "critical, and older than c");
    assert_eq!(
        first["metadata"]["labels"]["delivery-gear.gardener.cloud/claimed"],
        "True"
    );
    assert_eq!(
        first["metadata"]["annotations"]["delivery-gear.gardener.cloud/claimed-by"],
        "bdba-worker"
    );
    let (_, second) = app
        .send(
            "POST",
            &format!("{claim}&claimed_by=pod-2"),
            Some(&writer),
            None,
        )
        .await;
    assert_eq!(claimed_name(&second), "c");
    assert_eq!(
        second["metadata"]["annotations"]["delivery-gear.gardener.cloud/claimed-by"],
        "pod-2"
    );
    let (_, third) = app.send("POST", claim, Some(&writer), None).await;
    assert_eq!(claimed_name(&third), "a");
    let (status, body) = app.send("POST", claim, Some(&writer), None).await;
    assert_eq!(
        (status, body),
        (StatusCode::NO_CONTENT, Value::Null),
        "nothing left to claim"
    );

    // a released claim is free again, and listed as released
    let name = second["metadata"]["name"].as_str().unwrap();
    let (status, _) = app
        .send(
            "DELETE",
            &format!("/service-extensions/backlog-items/claim?name={name}"),
            Some(&writer),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let items = app.items("bdba").await;
    let released = items
        .iter()
        .find(|item| item["metadata"]["name"] == name)
        .unwrap();
    assert_eq!(
        released["metadata"]["labels"]["delivery-gear.gardener.cloud/claimed"],
        "False"
    );
    let (_, again) = app.send("POST", claim, Some(&writer), None).await;
    assert_eq!(claimed_name(&again), "c");
    let (status, _) = app
        .send(
            "DELETE",
            "/service-extensions/backlog-items/claim?name=bdba-gone",
            Some(&writer),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn claims_take_the_highest_priority_then_the_oldest_on_sqlite() {
    claims_take_the_highest_priority_then_the_oldest(Backend::Sqlite).await;
}

#[tokio::test]
async fn claims_take_the_highest_priority_then_the_oldest_on_postgres() {
    claims_take_the_highest_priority_then_the_oldest(Backend::Postgres).await;
}

#[tokio::test]
async fn writes_need_the_role_and_bad_input_is_a_400() {
    let app = app(Backend::Sqlite).await;
    let body = Some(json!({"artefacts": [artefact("checkout")]}));
    let uri = "/service-extensions/backlog-items?service=bdba";
    let (status, _) = app.send("POST", uri, None, body.clone()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = app
        .send(
            "POST",
            uri,
            Some(&jwt_for("bdba-worker", json!(["metadata-writer"]))),
            body.clone(),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = app
        .send(
            "DELETE",
            "/service-extensions/backlog-items?name=x",
            None,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = app
        .send(
            "POST",
            "/service-extensions/backlog-items/claim?service=bdba",
            None,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = app.send("POST", uri, Some(ADMIN_TOKEN), body.clone()).await;
    assert_eq!(status, StatusCode::CREATED);

    let bad = [
        ("GET", "/service-extensions/backlog-items".to_string(), None),
        (
            "GET",
            "/service-extensions/backlog-items?service=no%20spaces".to_string(),
            None,
        ),
        ("POST", format!("{uri}&priority=urgent"), body.clone()),
        ("POST", uri.to_string(), Some(json!({"artefacts": "all"}))),
        (
            "POST",
            uri.to_string(),
            Some(json!({"artefacts": [{"artefact_kind": "banana"}]})),
        ),
        (
            "PUT",
            "/service-extensions/backlog-items?name=x".to_string(),
            Some(
                json!({"spec": {"priority": 3, "timestamp": "2025-01-08T10:00:00", "artefact": {}}}),
            ),
        ),
        (
            "PUT",
            "/service-extensions/backlog-items?name=x".to_string(),
            Some(json!({"spec": {"priority": 8, "timestamp": "noon", "artefact": {}}})),
        ),
        (
            "PUT",
            "/service-extensions/backlog-items".to_string(),
            Some(json!({"spec": {}})),
        ),
        (
            "DELETE",
            "/service-extensions/backlog-items".to_string(),
            None,
        ),
    ];
    for (method, uri, body) in bad {
        let (status, answer) = app.send(method, &uri, Some(ADMIN_TOKEN), body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{method} {uri}: {answer}");
    }
}
