//! `GET /components/upgrade-prs` against a fake GitHub: the upgrade pull requests of a
//! repository in the original's shape, a component's main source repository asked, `[]` for a
//! host without a GitHub, the original's parameter errors, and 502 naming a failing GitHub.

use axum::http::StatusCode;
use odg_test_support::{FakeGithub, FakeGithubUser, FakePullRequest};
use serde_json::json;

use crate::support::{demo_stores, rule, service_over, TestApp};

const TOKEN: &str = "ghp_repository_reader";

async fn github_with_pulls() -> FakeGithub {
    let github = FakeGithub::start(
        "client",
        "secret",
        vec![FakeGithubUser {
            login: "odg-bot".into(),
            token: TOKEN.into(),
            ..FakeGithubUser::default()
        }],
    )
    .await;
    for (number, title, state) in [
        (
            7,
            "[ci:component:acme.org/lib/grpc:1.1.0->1.2.0] bump grpc",
            "open",
        ),
        (6, "Fix a typo", "open"),
        (
            5,
            "[ci:component:acme.org/lib/openssl:3.0.13->3.0.15] bump",
            "closed",
        ),
    ] {
        github.add_pull_request(FakePullRequest {
            repository: "acme/shop".into(),
            number,
            title: title.into(),
            state: state.into(),
        });
    }
    github
}

fn host_of(url: &str) -> String {
    url.trim_start_matches("http://").to_string()
}

#[tokio::test]
async fn upgrade_pull_requests_come_from_the_repositorys_github() {
    let github = github_with_pulls().await;
    let host = host_of(github.url());
    let directory = tempfile::tempdir().unwrap();
    let (stores, repository) = demo_stores(directory.path()).await;
    let service = service_over(
        stores,
        odg_ocm::RepositoryMapping::new(vec![rule(repository)]),
        vec![],
    );
    let app_with_token = |token: &str| TestApp {
        router: odg_server::router(odg_server::AppState::new(service.clone()).with_upgrade_prs(
            Some(odg_server::UpgradePullRequests::new(vec![
                odg_server::GithubRepositoryAccess {
                    host: host.clone(),
                    api_url: github.url().to_string(),
                    token: token.into(),
                },
            ])),
        )),
        cache: None,
        _directory: None,
    };
    let app = app_with_token(TOKEN);

    let (status, body) = app
        .get(&format!("/components/upgrade-prs?repoUrl={host}/acme/shop"))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body,
        json!([{
            "from": {"name": "acme.org/lib/grpc", "version": "1.1.0"},
            "to": {"name": "acme.org/lib/grpc", "version": "1.2.0"},
            "pr": {"title": "[ci:component:acme.org/lib/grpc:1.1.0->1.2.0] bump grpc",
                   "url": format!("{}/repos/acme/shop/pulls/7", github.url()),
                   "html_url": "https://github.example/acme/shop/pull/7", "number": 7},
        }])
    );
    let (_, all) = app
        .get(&format!(
            "/components/upgrade-prs?repoUrl=https://{host}/acme/shop.git&state=all"
        ))
        .await;
    assert_eq!(all.as_array().unwrap().len(), 2, "{all}");
    // the demo's components live on github.com, for which no GitHub is configured here
    let (status, body) = app
        .get("/components/upgrade-prs?componentName=acme.org/shop/checkout")
        .await;
    assert_eq!((status, body), (StatusCode::OK, json!([])));
    // an unknown repository has none
    let (_, body) = app
        .get(&format!(
            "/components/upgrade-prs?repoUrl={host}/acme/unknown"
        ))
        .await;
    assert_eq!(body, json!([]));
    for uri in [
        "/components/upgrade-prs".to_string(),
        format!(
            "/components/upgrade-prs?repoUrl={host}/acme/shop&componentName=acme.org/shop/checkout"
        ),
        format!("/components/upgrade-prs?repoUrl={host}/acme/shop&state=merged"),
    ] {
        let (status, body) = app.get(&uri).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{uri}: {body}");
    }
    // a token GitHub refuses: 502 naming the GitHub, never the token
    let app = app_with_token("ghp_revoked");
    let (status, body) = app
        .get(&format!("/components/upgrade-prs?repoUrl={host}/acme/shop"))
        .await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{body}");
    assert!(!body.to_string().contains("ghp_revoked"), "{body}");
}
