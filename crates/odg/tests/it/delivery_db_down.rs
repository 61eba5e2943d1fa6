//! `odg serve` with its PostgreSQL down at start-up: the OCM routes serve, the metadata routes
//! answer 503 with `Retry-After` and "delivery DB unreachable", `/ready` stays 200 and says so;
//! once PostgreSQL listens at the configured address the metadata routes recover by themselves.
//! Lost again after start, it answers "unreachable" (not "busy") and recovers again.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::harness::{http_client, OdgServer};

/// Longest wait for the background reconnect (backoff is capped at 10 s, plus a connect timeout).
const RECOVERY_DEADLINE: Duration = Duration::from_secs(60);

async fn query(server: &OdgServer) -> (StatusCode, Option<String>, Value) {
    let response = http_client()
        .post(format!("{}/artefacts/metadata/query", server.base_url()))
        .json(&json!({"entries": []}))
        .send()
        .await
        .expect("the query answers");
    let status = response.status();
    let retry_after = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    let body = response.json().await.expect("a JSON answer");
    (status, retry_after, body)
}

async fn db_up_gauge(server: &OdgServer) -> String {
    let text = server.metrics_text().await;
    text.lines()
        .find(|line| line.starts_with("odg_delivery_db_up "))
        .unwrap_or_else(|| panic!("no odg_delivery_db_up in\n{text}"))
        .to_owned()
}

#[tokio::test]
async fn the_service_starts_without_its_database_and_recovers_when_it_comes_up() {
    let database = odg_test_support::TestDatabase::create("dbdown").await;
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .unwrap();
    let url = database.url_via(addr);
    let server = OdgServer::start(&["--database-url", &url]).await;

    server
        .get_ok(
            "/ocm/component",
            &[("component_name", "acme.org/landscape")],
        )
        .await;
    let (status, retry_after, body) = query(&server).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert!(retry_after.is_some(), "{body}");
    let message = body["error"].as_str().unwrap_or_default();
    assert!(message.starts_with("delivery DB unreachable"), "{body}");
    assert!(!message.contains("busy"), "{body}");
    let (status, body) = server
        .get(
            "/components/compliance-summary",
            &[
                ("component_name", "acme.org/landscape"),
                ("version", "greatest"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert!(
        body["error"]
            .as_str()
            .is_some_and(|message| message.starts_with("delivery DB unreachable")),
        "{body}"
    );
    let ready = server.get_ok("/ready", &[]).await;
    assert_eq!(ready["delivery_db"], "connecting", "{ready}");
    assert!(ready["delivery_db_error"].is_string(), "{ready}");
    assert_eq!(db_up_gauge(&server).await, "odg_delivery_db_up 0");

    // PostgreSQL appears at the configured address.
    let _forwarder =
        odg_test_support::TcpForwarder::start_on(addr, odg_test_support::postgres_server_addr())
            .await
            .expect("the port is still free");
    let started = Instant::now();
    loop {
        let (status, _, body) = query(&server).await;
        if status == StatusCode::OK {
            assert_eq!(body, json!([]));
            break;
        }
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
        assert!(
            started.elapsed() < RECOVERY_DEADLINE,
            "still {status} after {RECOVERY_DEADLINE:?}: {body}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await; // polling: until the database is back
    }
    let ready = server.get_ok("/ready", &[]).await;
    assert_eq!(ready["delivery_db"], "up", "{ready}");
    assert_eq!(db_up_gauge(&server).await, "odg_delivery_db_up 1");
    server
        .get_ok(
            "/ocm/component",
            &[("component_name", "acme.org/landscape")],
        )
        .await;
}
