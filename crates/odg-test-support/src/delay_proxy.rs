//! `DelayProxy`: a loopback HTTP reverse proxy that adds a fixed latency to every request and counts
//! requests per `PathKind` and per exact method and path — to simulate a distant registry
//! (benchmarks) and count origin fetches (e.g. "each blob was served exactly once"). A test may
//! also hold back every request of one kind ([`DelayProxy::hold`]) to freeze a fill midway, and
//! let them go on ([`DelayProxy::release`]).

use std::collections::{BTreeMap, HashMap, HashSet};
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
    /// Kinds whose requests wait (counted, not yet forwarded) until released.
    held_kinds: Mutex<HashSet<PathKind>>,
    /// Bumped whenever `held_kinds` changes, so waiting requests look again.
    hold_changes: tokio::sync::watch::Sender<u64>,
    /// Requests waiting right now.
    waiting: std::sync::atomic::AtomicUsize,
    http: reqwest::Client,
}

impl ProxyState {
    fn is_held(&self, kind: PathKind) -> bool {
        self.held_kinds
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .contains(&kind)
    }

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
            held_kinds: Mutex::new(HashSet::new()),
            hold_changes: tokio::sync::watch::channel(0).0,
            waiting: std::sync::atomic::AtomicUsize::new(0),
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

    /// From now on, requests to paths of `kind` are counted but wait before being forwarded,
    /// until [`DelayProxy::release`].
    pub fn hold(&self, kind: PathKind) {
        self.state
            .held_kinds
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(kind);
        self.state.hold_changes.send_modify(|changes| *changes += 1);
    }

    /// Forwards the held requests of `kind` and no longer holds new ones.
    pub fn release(&self, kind: PathKind) {
        self.state
            .held_kinds
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&kind);
        self.state.hold_changes.send_modify(|changes| *changes += 1);
    }

    /// Requests held back right now.
    pub fn waiting(&self) -> usize {
        self.state.waiting.load(std::sync::atomic::Ordering::SeqCst)
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
    let kind = classify_path(request.uri().path());
    state.counters.record(kind);
    *state
        .paths()
        .entry((
            request.method().to_string(),
            request.uri().path().to_owned(),
        ))
        .or_default() += 1;
    let mut changes = state.hold_changes.subscribe();
    if state.is_held(kind) {
        state
            .waiting
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        while state.is_held(kind) {
            if changes.changed().await.is_err() {
                break;
            }
        }
        state
            .waiting
            .fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// An upstream that answers every path with the path itself.
    async fn echo_upstream() -> (SocketAddr, tokio::task::JoinHandle<()>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let router = axum::Router::new()
            .fallback(|request: Request| async move { request.uri().path().to_owned() });
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        (addr, task)
    }

    #[tokio::test]
    async fn counts_paths_and_holds_one_kind_until_released() {
        let (upstream, _server) = echo_upstream().await;
        let proxy = DelayProxy::start(&upstream.to_string(), Duration::ZERO).await;
        let http = reqwest::Client::builder().no_proxy().build().unwrap();
        let get = |path: &'static str| {
            let (http, url) = (http.clone(), proxy.url());
            async move {
                http.get(format!("{url}{path}"))
                    .send()
                    .await
                    .unwrap()
                    .text()
                    .await
                    .unwrap()
            }
        };
        assert_eq!(get("/v2/a/manifests/1").await, "/v2/a/manifests/1");

        proxy.hold(PathKind::Blob);
        let held = tokio::spawn(get("/v2/a/blobs/sha256:00"));
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while proxy.waiting() == 0 {
            assert!(
                std::time::Instant::now() < deadline,
                "the blob request is held"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(
            get("/v2/a/manifests/1").await,
            "/v2/a/manifests/1",
            "other kinds pass"
        );
        assert!(!held.is_finished());
        proxy.release(PathKind::Blob);
        assert_eq!(held.await.unwrap(), "/v2/a/blobs/sha256:00");
        assert_eq!(proxy.waiting(), 0);

        assert_eq!(
            proxy.path_counts(),
            BTreeMap::from([
                ("GET /v2/a/blobs/sha256:00".to_owned(), 1),
                ("GET /v2/a/manifests/1".to_owned(), 2),
            ])
        );
        assert_eq!(
            proxy.counts_of("GET", PathKind::Manifest),
            BTreeMap::from([("/v2/a/manifests/1".to_owned(), 2)])
        );
        proxy.reset_counters();
        assert!(proxy.path_counts().is_empty());
    }
}
