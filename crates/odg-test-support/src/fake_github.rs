//! `FakeGithub`: the parts of the GitHub API odg's login uses, on 127.0.0.1 — the OAuth code
//! exchange (`POST /login/oauth/access_token`), `/user`, `/user/orgs`, `/user/teams`, `/app` — for
//! users with a token (and optionally an OAuth code) each. Nothing leaves the machine.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use axum::extract::{Form, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};

/// A GitHub user of the fake.
#[derive(Debug, Clone, Default)]
pub struct FakeGithubUser {
    pub login: String,
    pub email: Option<String>,
    /// The token `/user` and friends accept for this user.
    pub token: String,
    /// An OAuth code the token endpoint exchanges for `token`.
    pub code: Option<String>,
    pub orgs: Vec<String>,
    /// `(org, team slug)`
    pub teams: Vec<(String, String)>,
    /// Makes this a GitHub App: `/app` answers this slug for `token` (a JWT, `ey...`).
    pub app_slug: Option<String>,
}

struct Shared {
    users: Vec<FakeGithubUser>,
    client_id: String,
    client_secret: String,
    requests: AtomicUsize,
}

/// A running fake GitHub; stops when dropped.
pub struct FakeGithub {
    url: String,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeGithub {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeGithub {
    /// Serves `users`; the code exchange accepts only `client_id` with `client_secret`.
    pub async fn start(
        client_id: &str,
        client_secret: &str,
        users: Vec<FakeGithubUser>,
    ) -> FakeGithub {
        let shared = Arc::new(Shared {
            users,
            client_id: client_id.to_string(),
            client_secret: client_secret.to_string(),
            requests: AtomicUsize::new(0),
        });
        let router = Router::new()
            .route("/login/oauth/access_token", post(exchange))
            .route("/user", get(user))
            .route("/user/orgs", get(orgs))
            .route("/user/teams", get(teams))
            .route("/app", get(app))
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        FakeGithub { url, shared, task }
    }

    /// The base URL, also the API URL (`/user` is right under it).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Requests answered so far.
    pub fn requests(&self) -> usize {
        self.shared.requests.load(Ordering::SeqCst)
    }
}

fn caller<'a>(shared: &'a Shared, headers: &HeaderMap) -> Option<&'a FakeGithubUser> {
    shared.requests.fetch_add(1, Ordering::SeqCst);
    let value = headers.get("authorization")?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    if !(scheme.eq_ignore_ascii_case("token") || scheme.eq_ignore_ascii_case("bearer")) {
        return None;
    }
    shared.users.iter().find(|user| user.token == token)
}

fn bad_credentials() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        Json(json!({"message": "Bad credentials"})),
    )
        .into_response()
}

async fn exchange(
    State(shared): State<Arc<Shared>>,
    Form(form): Form<HashMap<String, String>>,
) -> Json<Value> {
    shared.requests.fetch_add(1, Ordering::SeqCst);
    let client_ok = form.get("client_id") == Some(&shared.client_id)
        && form.get("client_secret") == Some(&shared.client_secret);
    let user = form.get("code").and_then(|code| {
        shared
            .users
            .iter()
            .find(|user| user.code.as_ref() == Some(code))
    });
    match (client_ok, user) {
        (true, Some(user)) => {
            Json(json!({"access_token": user.token, "token_type": "bearer", "scope": "read:org"}))
        }
        (false, _) => Json(json!({"error": "incorrect_client_credentials"})),
        (true, None) => Json(json!({"error": "bad_verification_code"})),
    }
}

async fn user(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    match caller(&shared, &headers) {
        Some(user) => {
            Json(json!({"login": user.login, "email": user.email, "type": "User"})).into_response()
        }
        None => bad_credentials(),
    }
}

async fn orgs(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    match caller(&shared, &headers) {
        Some(user) => Json(json!(user
            .orgs
            .iter()
            .map(|org| json!({"login": org}))
            .collect::<Vec<_>>()))
        .into_response(),
        None => bad_credentials(),
    }
}

async fn teams(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    match caller(&shared, &headers) {
        Some(user) => Json(json!(user
            .teams
            .iter()
            .map(|(org, slug)| json!({"slug": slug, "name": slug, "organization": {"login": org}}))
            .collect::<Vec<_>>()))
        .into_response(),
        None => bad_credentials(),
    }
}

async fn app(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    match caller(&shared, &headers).and_then(|user| user.app_slug.as_ref()) {
        Some(slug) => Json(json!({"slug": slug, "name": slug})).into_response(),
        None => bad_credentials(),
    }
}
