//! `DelayProxy`: a loopback HTTP reverse proxy that adds a fixed latency to every request and counts
//! requests per `PathKind` and per exact method and path — to simulate a distant registry
//! (benchmarks) and count origin fetches (e.g. "each blob was served exactly once").

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::Response;
use futures::TryStreamExt as _;

use crate::counters::{classify_path, PathKind, RequestCounters};

/// Hop-by-hop headers a proxy must not forward.
const HOP_BY_HOP: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// A running delay proxy in front of `upstream_host`; stops on drop.
#[derive(Debug)]
pub struct DelayProxy {
    addr: SocketAddr,
    state: Arc<ProxyState>,
    task: tokio::task::JoinHandle<()>,
}

#[derive(Debug)]
struct ProxyState {
    upstream_host: String,
    delay: Duration,
    counters: RequestCounters,
    /// Requests per (method, path), query excluded.
    paths: Mutex<HashMap<(String, String), usize>>,
    http: reqwest::Client,
}

impl ProxyState {
    fn paths(&self) -> std::sync::MutexGuard<'_, HashMap<(String, String), usize>> {
        self.paths.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl DelayProxy {
    /// Proxies `http://127.0.0.1:PORT/...` to `http://<upstream_host>/...`, sleeping `delay` before
    /// forwarding each request. The `Host` header is kept, so absolute URLs the upstream builds from it
    /// (upload locations) point back at the proxy.
    pub async fn start(upstream_host: &str, delay: Duration) -> DelayProxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a loopback port");
        let addr = listener.local_addr().expect("local address");
        let state = Arc::new(ProxyState {
            upstream_host: upstream_host.to_owned(),
            delay,
            counters: RequestCounters::default(),
            paths: Mutex::new(HashMap::new()),
            http: reqwest::Client::builder()
                .no_proxy()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("build an HTTP client"),
        });
        let router = axum::Router::new()
            .fallback(forward)
            .with_state(state.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        DelayProxy { addr, state, task }
    }

    /// `127.0.0.1:PORT`
    pub fn host(&self) -> String {
        self.addr.to_string()
    }

    /// `http://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn delay(&self) -> Duration {
        self.state.delay
    }

    /// Requests forwarded so far for a kind of path.
    pub fn requests(&self, kind: PathKind) -> usize {
        self.state.counters.get(kind)
    }

    pub fn total_requests(&self) -> usize {
        self.state.counters.total()
    }

    pub fn counters(&self) -> &RequestCounters {
        &self.state.counters
    }

    pub fn reset_counters(&self) {
        self.state.counters.reset();
        self.state.paths().clear();
    }

    /// Requests forwarded so far per `"METHOD /path"` (query excluded), e.g.
    /// `"GET /v2/ocm/component-descriptors/acme.org/a/blobs/sha256:..."`.
    pub fn path_counts(&self) -> BTreeMap<String, usize> {
        self.state
            .paths()
            .iter()
            .map(|((method, path), count)| (format!("{method} {path}"), *count))
            .collect()
    }

    /// Requests forwarded so far with `method` to paths of `kind`, per path (query excluded).
    pub fn counts_of(&self, method: &str, kind: PathKind) -> BTreeMap<String, usize> {
        self.state
            .paths()
            .iter()
            .filter(|((held, path), _)| held == method && classify_path(path) == kind)
            .map(|((_, path), count)| (path.clone(), *count))
            .collect()
    }
}

impl Drop for DelayProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn forward(State(state): State<Arc<ProxyState>>, request: Request) -> Response {
    state.counters.record(classify_path(request.uri().path()));
    *state
        .paths()
        .entry((
            request.method().to_string(),
            request.uri().path().to_owned(),
        ))
        .or_default() += 1;
    tokio::time::sleep(state.delay).await;
    let (parts, body) = request.into_parts();
    let path_and_query = parts
        .uri
        .path_and_query()
        .map(|value| value.as_str())
        .unwrap_or("/");
    let url = format!("http://{}{path_and_query}", state.upstream_host);
    let mut upstream = state.http.request(parts.method.clone(), url);
    for (name, value) in &parts.headers {
        if !HOP_BY_HOP.contains(&name.as_str()) && name != header::CONTENT_LENGTH {
            upstream = upstream.header(name, value);
        }
    }
    if let Some(length) = parts.headers.get(header::CONTENT_LENGTH) {
        upstream = upstream.header(header::CONTENT_LENGTH, length);
    }
    let has_body = parts.headers.contains_key(header::TRANSFER_ENCODING)
        || parts
            .headers
            .get(header::CONTENT_LENGTH)
            .is_some_and(|length| length.as_bytes() != b"0");
    if has_body {
        let body_stream = body.into_data_stream().map_err(std::io::Error::other);
        upstream = upstream.body(reqwest::Body::wrap_stream(body_stream));
    }
    let answer = match upstream.send().await {
        Ok(answer) => answer,
        Err(error) => {
            return Response::builder()
                .status(StatusCode::BAD_GATEWAY)
                .body(Body::from(format!("delay proxy: upstream failed: {error}")))
                .expect("a valid response")
        }
    };
    let mut response = Response::builder().status(answer.status().as_u16());
    for (name, value) in answer.headers() {
        if !HOP_BY_HOP.contains(&name.as_str()) {
            response = response.header(
                name.as_str(),
                HeaderValue::from_bytes(value.as_bytes()).expect("a header value"),
            );
        }
    }
    response
        .body(Body::from_stream(answer.bytes_stream()))
        .expect("a valid response")
}
