//! `FakeRegistry`: an in-memory distribution API on axum for what the real registry cannot produce —
//! scripted faults (429, 5xx, truncated and oversize bodies), Bearer token auth, paginated tags, redirects.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::Response;
use base64::Engine as _;
use bytes::Bytes;
use futures::StreamExt as _;

use crate::counters::{parse_registry_path, PathKind, RequestCounters};
use crate::fixtures::{sha256_digest, OciImageFixture, OCI_MANIFEST_MEDIA_TYPE};

/// What a scripted fault answers instead of the normal response.
#[derive(Debug, Clone)]
pub enum FaultResponse {
    /// A plain answer with the given status, headers and body.
    Status {
        status: u16,
        headers: Vec<(String, String)>,
        body: String,
    },
    /// The real content with its full `Content-Length`, but the connection breaks after half of it.
    TruncatedBody,
    /// `bytes` bytes of filler, generated lazily (see `FakeRegistry::bytes_streamed`).
    Oversize { bytes: u64, content_length: bool },
    /// Waits, then answers normally.
    Delay(Duration),
}

/// A fault for the next `times` requests of a kind (`None`: any kind). Faults are tried in order.
#[derive(Debug, Clone)]
pub struct Fault {
    pub kind: Option<PathKind>,
    pub times: usize,
    pub response: FaultResponse,
}

impl Fault {
    pub fn status(kind: PathKind, times: usize, status: u16) -> Fault {
        Fault {
            kind: Some(kind),
            times,
            response: FaultResponse::Status {
                status,
                headers: Vec::new(),
                body: String::new(),
            },
        }
    }

    /// 429 with `Retry-After: <retry_after>` (seconds or an HTTP date).
    pub fn rate_limited(kind: PathKind, times: usize, retry_after: &str) -> Fault {
        Fault {
            kind: Some(kind),
            times,
            response: FaultResponse::Status {
                status: 429,
                headers: vec![("Retry-After".to_owned(), retry_after.to_owned())],
                body: r#"{"errors":[{"code":"TOOMANYREQUESTS","message":"slow down"}]}"#.to_owned(),
            },
        }
    }

    /// `status` (301, 302, 307, 308) with `Location: <location>`, for any method of that kind.
    pub fn redirect(kind: PathKind, times: usize, status: u16, location: &str) -> Fault {
        Fault {
            kind: Some(kind),
            times,
            response: FaultResponse::Status {
                status,
                headers: vec![("Location".to_owned(), location.to_owned())],
                body: String::new(),
            },
        }
    }

    pub fn truncated(kind: PathKind, times: usize) -> Fault {
        Fault {
            kind: Some(kind),
            times,
            response: FaultResponse::TruncatedBody,
        }
    }

    pub fn oversize(kind: PathKind, times: usize, bytes: u64, content_length: bool) -> Fault {
        Fault {
            kind: Some(kind),
            times,
            response: FaultResponse::Oversize {
                bytes,
                content_length,
            },
        }
    }

    pub fn delay(kind: PathKind, times: usize, delay: Duration) -> Fault {
        Fault {
            kind: Some(kind),
            times,
            response: FaultResponse::Delay(delay),
        }
    }
}

/// Token auth: `/v2/` answers 401 with a Bearer challenge whose realm is this server's `/token`.
#[derive(Debug, Clone, Default)]
pub struct BearerAuth {
    /// Credentials the token endpoint demands (basic auth); `None`: anonymous tokens.
    pub credentials: Option<(String, String)>,
    /// `expires_in` of issued tokens; `None`: omitted.
    pub expires_in: Option<u64>,
    /// Answer with `access_token` instead of `token`.
    pub use_access_token_field: bool,
}

#[derive(Debug, Clone)]
enum FakeAuth {
    Anonymous,
    Basic { user: String, password: String },
    Bearer(BearerAuth),
}

/// Builds a `FakeRegistry`.
#[derive(Debug)]
pub struct FakeRegistryBuilder {
    manifests: HashMap<(String, String), (String, Bytes)>,
    blobs: HashMap<(String, String), Bytes>,
    tags: HashMap<String, Vec<String>>,
    auth: FakeAuth,
    faults: Vec<Fault>,
    tags_page_size: Option<usize>,
    absolute_links: bool,
    blob_redirect: Option<String>,
    docker_content_digest: bool,
}

impl Default for FakeRegistryBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl FakeRegistryBuilder {
    pub fn new() -> Self {
        FakeRegistryBuilder {
            manifests: HashMap::new(),
            blobs: HashMap::new(),
            tags: HashMap::new(),
            auth: FakeAuth::Anonymous,
            faults: Vec::new(),
            tags_page_size: None,
            absolute_links: false,
            blob_redirect: None,
            docker_content_digest: true,
        }
    }

    /// A manifest under its digest and, when given, a tag.
    pub fn manifest(
        mut self,
        repository: &str,
        tag: Option<&str>,
        media_type: &str,
        bytes: impl Into<Bytes>,
    ) -> Self {
        let bytes = bytes.into();
        let entry = (media_type.to_owned(), bytes.clone());
        self.manifests.insert(
            (repository.to_owned(), sha256_digest(&bytes)),
            entry.clone(),
        );
        if let Some(tag) = tag {
            self.manifests
                .insert((repository.to_owned(), tag.to_owned()), entry);
            self.tags
                .entry(repository.to_owned())
                .or_default()
                .push(tag.to_owned());
        }
        self
    }

    pub fn blob(mut self, repository: &str, bytes: impl Into<Bytes>) -> Self {
        let bytes = bytes.into();
        self.blobs
            .insert((repository.to_owned(), sha256_digest(&bytes)), bytes);
        self
    }

    /// A manifest stored under `reference` as is (the digest is not checked: for corruption tests).
    pub fn raw_manifest(
        mut self,
        repository: &str,
        reference: &str,
        media_type: &str,
        bytes: impl Into<Bytes>,
    ) -> Self {
        self.manifests.insert(
            (repository.to_owned(), reference.to_owned()),
            (media_type.to_owned(), bytes.into()),
        );
        self
    }

    /// A blob stored under `digest` as is (for corruption tests).
    pub fn raw_blob(mut self, repository: &str, digest: &str, bytes: impl Into<Bytes>) -> Self {
        self.blobs
            .insert((repository.to_owned(), digest.to_owned()), bytes.into());
        self
    }

    /// An image's blobs and manifest, tagged.
    pub fn image(mut self, repository: &str, tag: &str, image: &OciImageFixture) -> Self {
        for (_, bytes) in image.blobs() {
            self = self.blob(repository, bytes);
        }
        self.manifest(
            repository,
            Some(tag),
            OCI_MANIFEST_MEDIA_TYPE,
            image.manifest.clone(),
        )
    }

    /// Tags listed for `repository` without manifests behind them.
    pub fn tags(mut self, repository: &str, tags: &[&str]) -> Self {
        self.tags
            .entry(repository.to_owned())
            .or_default()
            .extend(tags.iter().map(|tag| tag.to_string()));
        self
    }

    /// Serve tag lists in pages of `size` with `Link: <...>; rel="next"`.
    pub fn tags_page_size(mut self, size: usize) -> Self {
        self.tags_page_size = Some(size.max(1));
        self
    }

    /// Make `Link` targets absolute URLs instead of paths.
    pub fn absolute_links(mut self) -> Self {
        self.absolute_links = true;
        self
    }

    pub fn basic_auth(mut self, user: &str, password: &str) -> Self {
        self.auth = FakeAuth::Basic {
            user: user.to_owned(),
            password: password.to_owned(),
        };
        self
    }

    pub fn bearer_auth(mut self, auth: BearerAuth) -> Self {
        self.auth = FakeAuth::Bearer(auth);
        self
    }

    pub fn fault(mut self, fault: Fault) -> Self {
        self.faults.push(fault);
        self
    }

    /// Answer blob GETs with `307` to `<base_url>/v2/<name>/blobs/<digest>` (another server: storage).
    pub fn redirect_blobs_to(mut self, base_url: &str) -> Self {
        self.blob_redirect = Some(base_url.trim_end_matches('/').to_owned());
        self
    }

    /// Send `Docker-Content-Digest` on manifest answers (default true).
    pub fn docker_content_digest(mut self, send: bool) -> Self {
        self.docker_content_digest = send;
        self
    }

    pub async fn start(self) -> FakeRegistry {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a loopback port");
        let addr = listener.local_addr().expect("local address");
        let state = Arc::new(FakeState {
            addr,
            manifests: Mutex::new(self.manifests),
            blobs: Mutex::new(self.blobs),
            tags: Mutex::new(self.tags),
            uploads: Mutex::new(HashMap::new()),
            faults: Mutex::new(self.faults),
            auth: self.auth,
            valid_tokens: Mutex::new(HashMap::new()),
            counters: RequestCounters::default(),
            authorized_requests: AtomicUsize::new(0),
            in_flight: AtomicUsize::new(0),
            max_in_flight: AtomicUsize::new(0),
            bytes_streamed: Arc::new(AtomicU64::new(0)),
            next_id: AtomicUsize::new(1),
            tags_page_size: self.tags_page_size,
            absolute_links: self.absolute_links,
            blob_redirect: self.blob_redirect,
            docker_content_digest: self.docker_content_digest,
        });
        let router = axum::Router::new()
            .fallback(handle)
            .with_state(state.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        FakeRegistry { addr, state, task }
    }
}

/// A running fake registry; stops on drop.
#[derive(Debug)]
pub struct FakeRegistry {
    addr: SocketAddr,
    state: Arc<FakeState>,
    task: tokio::task::JoinHandle<()>,
}

impl FakeRegistry {
    pub fn builder() -> FakeRegistryBuilder {
        FakeRegistryBuilder::new()
    }

    /// `127.0.0.1:PORT`
    pub fn host(&self) -> String {
        self.addr.to_string()
    }

    /// `http://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Requests received per kind (token requests are `PathKind::Token`).
    pub fn requests(&self, kind: PathKind) -> usize {
        self.state.counters.get(kind)
    }

    pub fn total_requests(&self) -> usize {
        self.state.counters.total()
    }

    pub fn counters(&self) -> &RequestCounters {
        &self.state.counters
    }

    /// Requests that carried an `Authorization` header.
    pub fn authorized_requests(&self) -> usize {
        self.state.authorized_requests.load(Ordering::SeqCst)
    }

    /// The most requests handled at the same time so far (bodies not included).
    pub fn max_in_flight(&self) -> usize {
        self.state.max_in_flight.load(Ordering::SeqCst)
    }

    /// Filler bytes handed to the HTTP stack by `Oversize` faults so far.
    pub fn bytes_streamed(&self) -> u64 {
        self.state.bytes_streamed.load(Ordering::SeqCst)
    }

    /// Invalidates all issued tokens (clients must fetch new ones).
    pub fn revoke_tokens(&self) {
        lock(&self.state.valid_tokens).clear();
    }

    /// Adds a fault at runtime.
    pub fn add_fault(&self, fault: Fault) {
        lock(&self.state.faults).push(fault);
    }

    /// A stored manifest (by tag or digest), as pushed.
    pub fn manifest(&self, repository: &str, reference: &str) -> Option<(String, Bytes)> {
        lock(&self.state.manifests)
            .get(&(repository.to_owned(), reference.to_owned()))
            .cloned()
    }

    pub fn blob(&self, repository: &str, digest: &str) -> Option<Bytes> {
        lock(&self.state.blobs)
            .get(&(repository.to_owned(), digest.to_owned()))
            .cloned()
    }
}

impl Drop for FakeRegistry {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[derive(Debug)]
struct FakeState {
    addr: SocketAddr,
    manifests: Mutex<HashMap<(String, String), (String, Bytes)>>,
    blobs: Mutex<HashMap<(String, String), Bytes>>,
    tags: Mutex<HashMap<String, Vec<String>>>,
    /// Upload id -> repository.
    uploads: Mutex<HashMap<String, String>>,
    faults: Mutex<Vec<Fault>>,
    auth: FakeAuth,
    /// Token -> scope it was issued for.
    valid_tokens: Mutex<HashMap<String, String>>,
    counters: RequestCounters,
    authorized_requests: AtomicUsize,
    /// Requests being handled now, and the most ever at once.
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
    bytes_streamed: Arc<AtomicU64>,
    next_id: AtomicUsize,
    tags_page_size: Option<usize>,
    absolute_links: bool,
    blob_redirect: Option<String>,
    docker_content_digest: bool,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn plain(status: StatusCode, body: impl Into<Body>) -> Response {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json")
        .body(body.into())
        .expect("a valid response")
}

fn registry_error(status: StatusCode, code: &str) -> Response {
    plain(
        status,
        format!(
            r#"{{"errors":[{{"code":"{code}","message":"{}"}}]}}"#,
            code.to_lowercase().replace('_', " ")
        ),
    )
}

async fn handle(
    State(state): State<Arc<FakeState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let now = state.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    state.max_in_flight.fetch_max(now, Ordering::SeqCst);
    let response = respond(&state, method, uri, headers, body).await;
    state.in_flight.fetch_sub(1, Ordering::SeqCst);
    response
}

async fn respond(
    state: &Arc<FakeState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let state = state.as_ref();
    let (kind, repository, rest) = parse_registry_path(uri.path());
    state.counters.record(kind);
    if headers.contains_key(header::AUTHORIZATION) {
        state.authorized_requests.fetch_add(1, Ordering::SeqCst);
    }
    let fault = take_fault(state, kind);
    match fault {
        Some(FaultResponse::Status {
            status,
            headers,
            body,
        }) => {
            let mut response = plain(StatusCode::from_u16(status).expect("a valid status"), body);
            for (name, value) in headers {
                response.headers_mut().insert(
                    header::HeaderName::from_bytes(name.as_bytes()).expect("a header name"),
                    HeaderValue::from_str(&value).expect("a header value"),
                );
            }
            return response;
        }
        Some(FaultResponse::Oversize {
            bytes,
            content_length,
        }) => return oversize(state, bytes, content_length),
        Some(FaultResponse::Delay(delay)) => tokio::time::sleep(delay).await,
        Some(FaultResponse::TruncatedBody) | None => {}
    }
    let truncate = matches!(fault, Some(FaultResponse::TruncatedBody));
    if kind == PathKind::Token {
        return issue_token(state, &uri, &headers);
    }
    let write = !matches!(method, Method::GET | Method::HEAD);
    if let Some(denied) = check_auth(state, &headers, &repository, write) {
        return denied;
    }
    let response = match (kind, method.clone()) {
        (PathKind::Base, _) => plain(StatusCode::OK, "{}"),
        (PathKind::Manifest, Method::GET | Method::HEAD) => {
            get_manifest(state, &repository, &rest, &headers)
        }
        (PathKind::Manifest, Method::PUT) => {
            put_manifest(state, &repository, &rest, &headers, body)
        }
        (PathKind::Blob, Method::GET | Method::HEAD) => {
            get_blob(state, &repository, &rest, method == Method::GET)
        }
        (PathKind::Upload, Method::POST) => start_upload(state, &repository),
        (PathKind::Upload, Method::PUT) => finish_upload(state, &repository, &rest, &uri, body),
        (PathKind::Tags, Method::GET) => list_tags(state, &repository, &uri),
        _ => registry_error(StatusCode::NOT_FOUND, "UNSUPPORTED"),
    };
    if truncate && response.status() == StatusCode::OK {
        return truncated(response).await;
    }
    if method == Method::HEAD {
        let (parts, _) = response.into_parts();
        return Response::from_parts(parts, Body::empty());
    }
    response
}

fn take_fault(state: &FakeState, kind: PathKind) -> Option<FaultResponse> {
    let mut faults = lock(&state.faults);
    let position = faults
        .iter()
        .position(|fault| fault.times > 0 && fault.kind.is_none_or(|wanted| wanted == kind))?;
    faults[position].times -= 1;
    Some(faults[position].response.clone())
}

fn oversize(state: &FakeState, bytes: u64, content_length: bool) -> Response {
    const CHUNK: u64 = 64 * 1024;
    let streamed = state.bytes_streamed.clone();
    let stream = futures::stream::unfold(0u64, move |sent| {
        let streamed = streamed.clone();
        async move {
            if sent >= bytes {
                return None;
            }
            let size = CHUNK.min(bytes - sent);
            streamed.fetch_add(size, Ordering::SeqCst);
            Some((
                Ok::<_, std::io::Error>(Bytes::from(vec![b' '; size as usize])),
                sent + size,
            ))
        }
    });
    let mut builder = Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, OCI_MANIFEST_MEDIA_TYPE);
    if content_length {
        builder = builder.header(header::CONTENT_LENGTH, bytes);
    }
    builder
        .body(Body::from_stream(stream))
        .expect("a valid response")
}

/// Re-sends a complete response with its full `Content-Length`, breaking the connection after half the body.
async fn truncated(response: Response) -> Response {
    let (parts, body) = response.into_parts();
    let full = axum::body::to_bytes(body, usize::MAX)
        .await
        .unwrap_or_default();
    let half = full.slice(..full.len() / 2);
    // Pause before breaking, so headers and the first half reach the client: a cut mid-body.
    let stream =
        futures::stream::once(async move { Ok(half) }).chain(futures::stream::once(async {
            tokio::time::sleep(Duration::from_millis(20)).await;
            Err(std::io::Error::new(
                std::io::ErrorKind::ConnectionReset,
                "truncated on purpose",
            ))
        }));
    let mut response = Response::from_parts(parts, Body::from_stream(stream));
    response
        .headers_mut()
        .insert(header::CONTENT_LENGTH, HeaderValue::from(full.len()));
    response
}

fn challenge(state: &FakeState, repository: &str, write: bool) -> Response {
    let value = match &state.auth {
        FakeAuth::Anonymous => return registry_error(StatusCode::UNAUTHORIZED, "UNAUTHORIZED"),
        FakeAuth::Basic { .. } => r#"Basic realm="fake-registry""#.to_owned(),
        FakeAuth::Bearer(_) => {
            let actions = if write { "pull,push" } else { "pull" };
            let scope = if repository.is_empty() {
                String::new()
            } else {
                format!(r#",scope="repository:{repository}:{actions}""#)
            };
            format!(
                r#"Bearer realm="http://{}/token",service="fake-registry"{scope}"#,
                state.addr
            )
        }
    };
    let mut response = registry_error(StatusCode::UNAUTHORIZED, "UNAUTHORIZED");
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_str(&value).expect("a header value"),
    );
    response
}

fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let encoded = value.strip_prefix("Basic ")?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (user, password) = decoded.split_once(':')?;
    Some((user.to_owned(), password.to_owned()))
}

/// `None` when the request may proceed, else the 401 to send.
fn check_auth(
    state: &FakeState,
    headers: &HeaderMap,
    repository: &str,
    write: bool,
) -> Option<Response> {
    match &state.auth {
        FakeAuth::Anonymous => None,
        FakeAuth::Basic { user, password } => {
            let ok = basic_credentials(headers).is_some_and(|(u, p)| &u == user && &p == password);
            (!ok).then(|| challenge(state, repository, write))
        }
        FakeAuth::Bearer(_) => {
            let token = headers
                .get(header::AUTHORIZATION)
                .and_then(|value| value.to_str().ok())
                .and_then(|value| value.strip_prefix("Bearer "));
            let scope = token.and_then(|token| lock(&state.valid_tokens).get(token).cloned());
            let allowed = scope.is_some_and(|scope| scope_allows(&scope, repository, write));
            (!allowed).then(|| challenge(state, repository, write))
        }
    }
}

fn scope_allows(scope: &str, repository: &str, write: bool) -> bool {
    if repository.is_empty() {
        return true; // `/v2/` needs any valid token
    }
    scope.split(' ').any(|scope| {
        let mut parts = scope.splitn(3, ':');
        let (Some("repository"), Some(name), Some(actions)) =
            (parts.next(), parts.next(), parts.next())
        else {
            return false;
        };
        let actions: Vec<&str> = actions.split(',').collect();
        name == repository && actions.contains(&"pull") && (!write || actions.contains(&"push"))
    })
}

fn issue_token(state: &FakeState, uri: &Uri, headers: &HeaderMap) -> Response {
    let FakeAuth::Bearer(auth) = &state.auth else {
        return registry_error(StatusCode::NOT_FOUND, "NO_TOKEN_SERVICE");
    };
    if let Some((user, password)) = &auth.credentials {
        let ok = basic_credentials(headers).is_some_and(|(u, p)| &u == user && &p == password);
        if !ok {
            return plain(
                StatusCode::UNAUTHORIZED,
                r#"{"details":"incorrect username or password"}"#,
            );
        }
    }
    let query: HashMap<String, String> = uri
        .query()
        .map(|query| {
            query
                .split('&')
                .filter_map(|pair| pair.split_once('='))
                .map(|(key, value)| (percent_decode(key), percent_decode(value)))
                .collect()
        })
        .unwrap_or_default();
    if query.get("service").map(String::as_str) != Some("fake-registry") {
        return plain(StatusCode::BAD_REQUEST, r#"{"details":"unknown service"}"#);
    }
    let scope = query.get("scope").cloned().unwrap_or_default();
    let token = format!(
        "fake-token-{}",
        state.next_id.fetch_add(1, Ordering::SeqCst)
    );
    lock(&state.valid_tokens).insert(token.clone(), scope);
    let field = if auth.use_access_token_field {
        "access_token"
    } else {
        "token"
    };
    let mut body = serde_json::json!({ field: token });
    if let Some(expires_in) = auth.expires_in {
        body["expires_in"] = serde_json::Value::from(expires_in);
    }
    plain(StatusCode::OK, body.to_string())
}

fn percent_decode(value: &str) -> String {
    let bytes = value.as_bytes();
    let hex = |b: u8| (b as char).to_digit(16).map(|digit| digit as u8);
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        let escaped = (bytes[index] == b'%' && index + 2 < bytes.len())
            .then(|| Some(hex(bytes[index + 1])? * 16 + hex(bytes[index + 2])?))
            .flatten();
        match (escaped, bytes[index]) {
            (Some(byte), _) => {
                decoded.push(byte);
                index += 3;
            }
            (None, b'+') => {
                decoded.push(b' ');
                index += 1;
            }
            (None, byte) => {
                decoded.push(byte);
                index += 1;
            }
        }
    }
    String::from_utf8_lossy(&decoded).into_owned()
}

fn get_manifest(
    state: &FakeState,
    repository: &str,
    reference: &str,
    headers: &HeaderMap,
) -> Response {
    let Some((media_type, bytes)) = lock(&state.manifests)
        .get(&(repository.to_owned(), reference.to_owned()))
        .cloned()
    else {
        return registry_error(StatusCode::NOT_FOUND, "MANIFEST_UNKNOWN");
    };
    // Like distribution: a type the client does not accept is not found.
    let accepted = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|accepted| accepted.split(';').next().unwrap_or_default().trim() == media_type);
    if !accepted {
        return registry_error(StatusCode::NOT_FOUND, "MANIFEST_UNKNOWN");
    }
    let mut builder = Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, media_type)
        .header(header::CONTENT_LENGTH, bytes.len());
    if state.docker_content_digest {
        builder = builder.header("Docker-Content-Digest", sha256_digest(&bytes));
    }
    builder.body(Body::from(bytes)).expect("a valid response")
}

fn put_manifest(
    state: &FakeState,
    repository: &str,
    reference: &str,
    headers: &HeaderMap,
    body: Bytes,
) -> Response {
    let media_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let digest = sha256_digest(&body);
    let mut manifests = lock(&state.manifests);
    manifests.insert(
        (repository.to_owned(), digest.clone()),
        (media_type.clone(), body.clone()),
    );
    if !reference.contains(':') {
        manifests.insert(
            (repository.to_owned(), reference.to_owned()),
            (media_type, body),
        );
        let mut tags = lock(&state.tags);
        let tags = tags.entry(repository.to_owned()).or_default();
        if !tags.iter().any(|tag| tag == reference) {
            tags.push(reference.to_owned());
        }
    }
    Response::builder()
        .status(StatusCode::CREATED)
        .header("Docker-Content-Digest", digest.as_str())
        .header(
            header::LOCATION,
            format!("/v2/{repository}/manifests/{digest}"),
        )
        .body(Body::empty())
        .expect("a valid response")
}

fn get_blob(state: &FakeState, repository: &str, digest: &str, is_get: bool) -> Response {
    let Some(bytes) = lock(&state.blobs)
        .get(&(repository.to_owned(), digest.to_owned()))
        .cloned()
    else {
        return registry_error(StatusCode::NOT_FOUND, "BLOB_UNKNOWN");
    };
    if let (Some(base), true) = (&state.blob_redirect, is_get) {
        return Response::builder()
            .status(StatusCode::TEMPORARY_REDIRECT)
            .header(
                header::LOCATION,
                format!("{base}/v2/{repository}/blobs/{digest}"),
            )
            .body(Body::empty())
            .expect("a valid response");
    }
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/octet-stream")
        .header(header::CONTENT_LENGTH, bytes.len())
        .header("Docker-Content-Digest", digest)
        .body(Body::from(bytes))
        .expect("a valid response")
}

fn start_upload(state: &FakeState, repository: &str) -> Response {
    let id = format!("upload-{}", state.next_id.fetch_add(1, Ordering::SeqCst));
    lock(&state.uploads).insert(id.clone(), repository.to_owned());
    Response::builder()
        .status(StatusCode::ACCEPTED)
        // Relative, with a query: the client must append `&digest=`.
        .header(
            header::LOCATION,
            format!("/v2/{repository}/blobs/uploads/{id}?_state=opaque"),
        )
        .body(Body::empty())
        .expect("a valid response")
}

fn finish_upload(
    state: &FakeState,
    repository: &str,
    id: &str,
    uri: &Uri,
    body: Bytes,
) -> Response {
    if lock(&state.uploads).remove(id).as_deref() != Some(repository) {
        return registry_error(StatusCode::NOT_FOUND, "BLOB_UPLOAD_UNKNOWN");
    }
    let digest = uri
        .query()
        .unwrap_or_default()
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(key, _)| *key == "digest")
        .map(|(_, value)| percent_decode(value));
    let Some(digest) = digest else {
        return registry_error(StatusCode::BAD_REQUEST, "DIGEST_INVALID");
    };
    if sha256_digest(&body) != digest {
        return registry_error(StatusCode::BAD_REQUEST, "DIGEST_INVALID");
    }
    lock(&state.blobs).insert((repository.to_owned(), digest.clone()), body);
    Response::builder()
        .status(StatusCode::CREATED)
        .header("Docker-Content-Digest", digest.as_str())
        .header(header::LOCATION, format!("/v2/{repository}/blobs/{digest}"))
        .body(Body::empty())
        .expect("a valid response")
}

fn list_tags(state: &FakeState, repository: &str, uri: &Uri) -> Response {
    let Some(all) = lock(&state.tags).get(repository).cloned() else {
        return registry_error(StatusCode::NOT_FOUND, "NAME_UNKNOWN");
    };
    let query: HashMap<String, String> = uri
        .query()
        .unwrap_or_default()
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .map(|(key, value)| (key.to_owned(), percent_decode(value)))
        .collect();
    let page_size = query
        .get("n")
        .and_then(|n| n.parse().ok())
        .or(state.tags_page_size);
    let start = match query.get("last") {
        Some(last) => all
            .iter()
            .position(|tag| tag == last)
            .map_or(all.len(), |index| index + 1),
        None => 0,
    };
    let end = page_size.map_or(all.len(), |size| (start + size).min(all.len()));
    let page = &all[start..end];
    let mut response = plain(
        StatusCode::OK,
        serde_json::json!({"name": repository, "tags": page}).to_string(),
    );
    if let (Some(size), Some(last)) = (page_size, page.last()) {
        if end < all.len() {
            let path = format!("/v2/{repository}/tags/list?n={size}&last={last}");
            let target = if state.absolute_links {
                format!("http://{}{path}", state.addr)
            } else {
                path
            };
            response.headers_mut().insert(
                header::LINK,
                HeaderValue::from_str(&format!(r#"<{target}>; rel="next""#))
                    .expect("a header value"),
            );
        }
    }
    response
}
