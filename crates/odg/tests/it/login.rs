//! `odg serve` with `auth.login` in its configuration file, against a fake GitHub on 127.0.0.1:
//! the login `odg_client` does (`/auth/configs`, then `/auth?access_token=...&api_url=...`, the
//! session in the `bearer_token` cookie), metadata written and queried with that cookie, refresh,
//! logout, the published key verifying the session token, and the original's Python client
//! (`odg_client` from PyPI, unchanged) doing all of it.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::harness::{
    scanner_bot_login, scanner_bot_token_login, set_cookie, OdgServer, SCANNER_BOT_CLIENT_SECRET,
    SCANNER_BOT_TOKEN,
};
use crate::python::PythonLibrary;

async fn json_of(response: reqwest::Response) -> (StatusCode, Value) {
    let status = response.status();
    let body = response.json().await.unwrap_or(Value::Null);
    (status, body)
}

#[tokio::test]
async fn a_github_token_login_writes_and_queries_metadata_with_the_session_cookie() {
    let directory = tempfile::tempdir().unwrap();
    let (github, config) = scanner_bot_login(directory.path()).await;
    let server = OdgServer::start(&["--config", &config]).await;
    let base = server.base_url().to_string();
    let http = reqwest::Client::new();

    let (status, configs) = json_of(
        http.get(format!("{base}/auth/configs"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{configs}");
    let api_url = configs[0]["api_url"].as_str().unwrap().to_string();
    assert_eq!(api_url, github.url());

    // reads need the session (the original's rule once login is configured)
    let (status, body) = json_of(
        http.post(format!("{base}/artefacts/metadata/query"))
            .json(&json!({"entries": []}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");

    // an API URL that is not configured is refused before anything is sent anywhere
    let (status, body) = json_of(
        http.get(format!("{base}/auth"))
            .query(&[
                ("access_token", SCANNER_BOT_TOKEN),
                ("api_url", "https://api.github.com"),
            ])
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body["error"].is_string());

    let response = scanner_bot_token_login(&http, &base, &api_url).await;
    let session = set_cookie(&response, "bearer_token").expect("the session cookie");
    let refresh = set_cookie(&response, "refresh_token").expect("the refresh cookie");
    let (status, claims) = json_of(response).await;
    assert_eq!(status, StatusCode::OK, "{claims}");
    assert_eq!(claims["roles"], json!(["writer"]));

    let entry = json!({
        "artefact": {"component_name": "example.org/e2e", "component_version": "1.0.0", "artefact_kind": "resource",
                     "artefact": {"artefact_name": "image", "artefact_version": "1.0.0", "artefact_type": "ociImage", "artefact_extra_id": {}}},
        "meta": {"datasource": "bdba", "type": "finding/vulnerability"},
        "data": {"severity": "HIGH", "package_name": "openssl", "package_version": "3.0.7", "base_url": "https://bdba",
                 "report_url": "https://bdba/1", "product_id": 1, "group_id": 2, "cve": "CVE-2023-0286",
                 "cvss_v3_score": 7.4, "cvss": {}, "summary": null},
    });
    let cookie = format!("bearer_token={session}");
    let (status, body) = json_of(
        http.put(format!("{base}/artefacts/metadata"))
            .header(reqwest::header::COOKIE, &cookie)
            .json(&json!({"entries": [entry]}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert!(status.is_success(), "{status}: {body}\n{}", server.log());
    let (status, rows) = json_of(
        http.post(format!("{base}/artefacts/metadata/query"))
            .header(reqwest::header::COOKIE, &cookie)
            .json(&json!({"entries": [{"component_name": "example.org/e2e"}]}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{rows}");
    assert_eq!(rows.as_array().unwrap().len(), 1, "{rows}");

    // the published key verifies the session token
    let (_, jwks) = json_of(
        http.get(format!("{base}/openid/v1/jwks"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(jwks["keys"][0].clone()).unwrap();
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    validation.set_issuer(&["http://odg.test"]);
    jsonwebtoken::decode::<Value>(
        &session,
        &jsonwebtoken::DecodingKey::from_jwk(&jwk).unwrap(),
        &validation,
    )
    .expect("the JWKS verifies the session token");

    // refresh rotates; logout revokes
    let response = http
        .post(format!("{base}/auth/refresh"))
        .header(reqwest::header::COOKIE, format!("refresh_token={refresh}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let rotated = set_cookie(&response, "refresh_token").unwrap();
    let response = http
        .get(format!("{base}/auth/logout"))
        .header(reqwest::header::COOKIE, format!("refresh_token={rotated}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    for used in [&refresh, &rotated] {
        let response = http
            .post(format!("{base}/auth/refresh"))
            .header(reqwest::header::COOKIE, format!("refresh_token={used}"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }
    // the original's Python client, unchanged: token login, gzipped writes, queries, deletes
    let outcome = PythonLibrary::locate()
        .odg_client_login(&[
            &base,
            SCANNER_BOT_TOKEN,
            &api_url,
            "example.org/python-client",
        ])
        .await;
    assert_eq!(
        outcome,
        json!({"logged_in": true, "written": ["CVE-2023-0286"], "after_delete": 0, "cache_marked": true}),
        "{}",
        server.log()
    );

    // no secret in the log
    let log = server.log();
    for secret in [
        SCANNER_BOT_CLIENT_SECRET,
        SCANNER_BOT_TOKEN,
        session.as_str(),
        refresh.as_str(),
    ] {
        assert!(!log.contains(secret), "the log holds a secret");
    }
}
