//! `FakeGithub`: the parts of the GitHub API odg uses, on 127.0.0.1 — for the login the OAuth
//! code exchange (`POST /login/oauth/access_token`), `/user`, `/user/orgs`, `/user/teams`,
//! `/app`, for users with a token (and optionally an OAuth code) each; for upgrade pull requests
//! `/repos/{owner}/{repo}/pulls` of the repositories a test adds. Nothing leaves the machine.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use axum::extract::{Form, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};

/// A pull request of a repository of the fake.
#[derive(Debug, Clone)]
pub struct FakePullRequest {
    /// `owner/name`
    pub repository: String,
    pub number: u64,
    pub title: String,
    /// `open` or `closed`
    pub state: String,
}

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
    /// Where `Link` headers of paginated lists point: the fake's own URL, unless a test points
    /// them elsewhere (`set_link_base`).
    link_base: std::sync::Mutex<String>,
    pull_requests: std::sync::Mutex<Vec<FakePullRequest>>,
}

/// `per_page` (GitHub's default 30, at most 100) and `page` (from 1) of a list.
struct Page {
    per_page: Option<usize>,
    page: Option<usize>,
}

impl Page {
    fn of(query: &HashMap<String, String>) -> Page {
        Page {
            per_page: query.get("per_page").and_then(|value| value.parse().ok()),
            page: query.get("page").and_then(|value| value.parse().ok()),
        }
    }
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
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let shared = Arc::new(Shared {
            users,
            client_id: client_id.to_string(),
            client_secret: client_secret.to_string(),
            requests: AtomicUsize::new(0),
            link_base: std::sync::Mutex::new(url.clone()),
            pull_requests: std::sync::Mutex::new(Vec::new()),
        });
        let router = Router::new()
            .route("/login/oauth/access_token", post(exchange))
            .route("/user", get(user))
            .route("/user/orgs", get(orgs))
            .route("/user/teams", get(teams))
            .route("/app", get(app))
            .route("/repos/{owner}/{repo}/pulls", get(pulls))
            .with_state(shared.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        FakeGithub { url, shared, task }
    }

    /// The base URL, also the API URL (`/user` is right under it).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Points the `Link` headers of paginated lists at `base` instead of the fake itself, as a
    /// hostile or misconfigured GitHub might.
    pub fn set_link_base(&self, base: &str) {
        *self.shared.link_base.lock().unwrap() = base.to_string();
    }

    /// Adds a pull request; any user's token may list them.
    pub fn add_pull_request(&self, pull_request: FakePullRequest) {
        self.shared.pull_requests.lock().unwrap().push(pull_request);
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

/// GitHub's `GET /repos/{owner}/{repo}/pulls` (`state`: open by default, closed, all), the
/// fields odg reads; 404 for a repository without pull requests, as GitHub answers an unknown one.
async fn pulls(
    State(shared): State<Arc<Shared>>,
    axum::extract::Path((owner, repo)): axum::extract::Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    if caller(&shared, &headers).is_none() {
        return bad_credentials();
    }
    let repository = format!("{owner}/{repo}");
    let wanted = query.get("state").map_or("open", String::as_str);
    let all = shared.pull_requests.lock().unwrap().clone();
    if !all.iter().any(|pull| pull.repository == repository) {
        return (StatusCode::NOT_FOUND, Json(json!({"message": "Not Found"}))).into_response();
    }
    let base = shared.link_base.lock().unwrap().clone();
    let listed: Vec<Value> = all
        .iter()
        .filter(|pull| pull.repository == repository && (wanted == "all" || pull.state == wanted))
        .map(|pull| {
            json!({
                "number": pull.number,
                "title": pull.title,
                "state": pull.state,
                "url": format!("{base}/repos/{repository}/pulls/{}", pull.number),
                "html_url": format!("https://github.example/{repository}/pull/{}", pull.number),
            })
        })
        .collect();
    paginated(
        &shared,
        &format!("/repos/{repository}/pulls"),
        &Page::of(&query),
        listed,
    )
}

async fn user(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    match caller(&shared, &headers) {
        Some(user) => {
            Json(json!({"login": user.login, "email": user.email, "type": "User"})).into_response()
        }
        None => bad_credentials(),
    }
}

async fn orgs(
    State(shared): State<Arc<Shared>>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    match caller(&shared, &headers) {
        Some(user) => {
            let orgs: Vec<Value> = user.orgs.iter().map(|org| json!({"login": org})).collect();
            paginated(&shared, "/user/orgs", &Page::of(&query), orgs)
        }
        None => bad_credentials(),
    }
}

async fn teams(
    State(shared): State<Arc<Shared>>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    match caller(&shared, &headers) {
        Some(user) => {
            let teams: Vec<Value> = user
                .teams
                .iter()
                .map(|(org, slug)| json!({"slug": slug, "name": slug, "organization": {"login": org}}))
                .collect();
            paginated(&shared, "/user/teams", &Page::of(&query), teams)
        }
        None => bad_credentials(),
    }
}

/// One page of `items` as GitHub sends it: the slice, and `Link` with `next` and `last` while
/// more pages follow.
fn paginated(shared: &Shared, path: &str, page: &Page, items: Vec<Value>) -> Response {
    let per_page = page.per_page.unwrap_or(30).clamp(1, 100);
    let number = page.page.unwrap_or(1).max(1);
    let pages = items.len().div_ceil(per_page).max(1);
    let slice: Vec<Value> = items
        .into_iter()
        .skip((number - 1) * per_page)
        .take(per_page)
        .collect();
    let mut response = Json(Value::Array(slice)).into_response();
    if number < pages {
        let base = shared.link_base.lock().unwrap().clone();
        let link = format!(
            "<{base}{path}?per_page={per_page}&page={}>; rel=\"next\", <{base}{path}?per_page={per_page}&page={pages}>; rel=\"last\"",
            number + 1
        );
        response.headers_mut().insert("link", link.parse().unwrap());
    }
    response
}

async fn app(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    match caller(&shared, &headers).and_then(|user| user.app_slug.as_ref()) {
        Some(slug) => Json(json!({"slug": slug, "name": slug})).into_response(),
        None => bad_credentials(),
    }
}
