//! One logical registry request: per-host concurrency bound, authorization (Basic or cached Bearer
//! tokens), manual redirects (only blob and manifest GETs, a few hops, never with credentials, only
//! to targets `RedirectGuard` allows), retries with backoff and `Retry-After` for what can change
//! (never for certificate errors or 4xx other than 408 and 429), and bodies read under a size limit.
//! Everything above it (`registry.rs`) only maps answers.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use bytes::{Bytes, BytesMut};
use reqwest::header::{self, HeaderMap, HeaderValue};
use reqwest::{Method, StatusCode};
use tokio::sync::Semaphore;
use tokio::time::Instant;
use url::Url;

use crate::auth::{
    bearer_header, choose_scheme, parse_token_response, AuthState, CachedToken, Credentials,
    HostAuthScheme,
};
use crate::error::OciError;
use crate::metrics::{
    record_exchange, record_redirect, record_retry, Operation, Outcome, RedirectOutcome,
};
use crate::redirect::{RedirectError, RedirectGuard};
use crate::tls::permanent_tls_failure;
use odg_retry::{is_retryable_status, parse_retry_after, RetryPolicy};

/// Redirects followed per request: storage answers the first; a CDN in front may add one or two.
const MAX_REDIRECTS: usize = 3;
/// How much of an error body is read for a diagnostic message.
const MAX_ERROR_BODY_BYTES: u64 = 16 * 1024;
/// Limit for a token service answer.
const MAX_TOKEN_RESPONSE_BYTES: u64 = 1024 * 1024;

/// The two clients for one set of trusted CAs: both send no redirect on their own; `redirected`
/// resolves through the redirect guard's pins.
#[derive(Debug)]
pub(crate) struct TrustedClients {
    pub direct: reqwest::Client,
    pub redirected: reqwest::Client,
}

/// The HTTP clients of a transport: they differ only in whom they trust and how they resolve.
#[derive(Debug)]
pub(crate) struct HttpClients {
    /// For every registry host without a CA file of its own.
    pub default: TrustedClients,
    /// Hosts (`host[:port]`, lower case) with their own CA file: they, and their redirects
    /// (on-prem storage under the same CA), trust it besides the common roots.
    pub by_host: HashMap<String, TrustedClients>,
    pub redirect_guard: RedirectGuard,
}

/// How a request authenticates.
#[derive(Debug, Clone)]
pub(crate) enum RequestAuth {
    /// A registry request: react to challenges, use tokens for this scope (`repository:<name>:pull`).
    Registry { scope: String },
    /// A token request to a realm: basic credentials if given, no challenge handling.
    Realm { credentials: Option<Credentials> },
    /// Nothing (a different origin, e.g. an upload location on another host).
    Anonymous,
}

/// What to send, and how to treat the answer.
#[derive(Debug, Clone)]
pub(crate) struct RequestSpec {
    pub operation: Operation,
    pub method: Method,
    pub url: Url,
    pub auth: RequestAuth,
    pub accept: Option<&'static str>,
    pub content_type: Option<String>,
    pub body: Option<Bytes>,
    /// Limit for a 2xx body; larger is `TooLarge`, detected from `Content-Length` or while streaming.
    pub body_limit: u64,
    /// What is being fetched, for messages: "manifest 127.0.0.1:5000/a/b:1.0".
    pub what: String,
    /// A `Range` header to send (blob GETs).
    pub range: Option<String>,
    /// A 2xx body is not read: the answer carries the response to stream it from (`body_limit`
    /// does not apply; the caller bounds what it holds).
    pub stream: bool,
}

/// A final answer (after redirects, auth and retries). The body is the 2xx body, or a prefix of an error body.
#[derive(Debug)]
pub(crate) struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
    /// The URL that produced this answer (after redirects): the base for relative `Link`s.
    pub url: Url,
    /// A streaming request's 2xx response, its body unread (boxed: answers are moved through
    /// the retry loop, and most have none).
    pub response: Option<Box<reqwest::Response>>,
}

impl Answer {
    pub fn header_str(&self, name: header::HeaderName) -> Option<&str> {
        self.headers.get(name).and_then(|value| value.to_str().ok())
    }
}

/// What one attempt came to.
enum Attempt {
    Done(Answer),
    Retryable {
        error: OciError,
        retry_after: Option<std::time::Duration>,
    },
    Fatal(OciError),
}

/// The auth that an attempt sent, to react to a 401.
#[derive(Debug, Clone, PartialEq, Eq)]
enum SentAuth {
    None,
    Basic,
    Bearer { scope: String, token: String },
}

/// The shared state behind `RegistryClient`: its HTTP clients, one auth state, one semaphore per host.
#[derive(Debug)]
pub(crate) struct Transport {
    pub http: HttpClients,
    pub retry: RetryPolicy,
    pub credentials: HashMap<String, Credentials>,
    pub max_concurrent_requests_per_host: usize,
    pub auth: AuthState,
    semaphores: Mutex<HashMap<String, Arc<Semaphore>>>,
}

impl Transport {
    pub fn new(
        http: HttpClients,
        retry: RetryPolicy,
        credentials: HashMap<String, Credentials>,
        max_concurrent_requests_per_host: usize,
    ) -> Self {
        Transport {
            http,
            retry,
            // Keys are compared with `host_label`, which is lower-case like every URL host.
            credentials: credentials
                .into_iter()
                .map(|(host, credentials)| (host.to_ascii_lowercase(), credentials))
                .collect(),
            max_concurrent_requests_per_host: max_concurrent_requests_per_host.max(1),
            auth: AuthState::default(),
            semaphores: Mutex::new(HashMap::new()),
        }
    }

    fn semaphore(&self, host: &str) -> Arc<Semaphore> {
        let mut semaphores = self
            .semaphores
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        semaphores
            .entry(host.to_owned())
            .or_insert_with(|| Arc::new(Semaphore::new(self.max_concurrent_requests_per_host)))
            .clone()
    }

    /// Runs a request to its final answer: retries transient failures, answers challenges once or twice.
    /// Non-retryable statuses (404, 403, ...) come back as an `Answer` for the caller to map.
    /// The span names the host and operation, never the URL's query or credentials.
    #[tracing::instrument(level = "info", name = "registry_request", skip_all, fields(host = %host_label(&spec.url), operation = spec.operation.as_str()))]
    pub async fn execute(&self, spec: &RequestSpec) -> Result<Answer, OciError> {
        let host = host_label(&spec.url);
        let mut retries = 0u32;
        let mut challenges_answered = 0u32;
        loop {
            let (authorization, sent) = self.authorization(spec, &host).await?;
            let attempt = self.attempt(spec, &host, authorization).await;
            match attempt {
                Attempt::Done(answer) => {
                    let may_answer_challenge = matches!(spec.auth, RequestAuth::Registry { .. })
                        && answer.status == StatusCode::UNAUTHORIZED
                        && challenges_answered < 2;
                    if may_answer_challenge && self.answer_challenge(&host, &answer, &sent).await {
                        challenges_answered += 1;
                        continue;
                    }
                    return Ok(answer);
                }
                Attempt::Retryable { error, retry_after } => {
                    if !self.retry.allows(retries) {
                        return Err(error);
                    }
                    let delay = self.retry.delay(retries, retry_after);
                    retries += 1;
                    record_retry(&host, spec.operation);
                    tracing::debug!(
                        host = %host,
                        operation = spec.operation.as_str(),
                        path = spec.url.path(),
                        retry = retries,
                        delay_ms = delay.as_millis() as u64,
                        error = %error,
                        "retrying registry request"
                    );
                    tokio::time::sleep(delay).await;
                }
                Attempt::Fatal(error) => return Err(error),
            }
        }
    }

    /// One attempt: hold a permit for `host`, send, follow allowed redirects, read the body.
    async fn attempt(
        &self,
        spec: &RequestSpec,
        host: &str,
        authorization: Option<HeaderValue>,
    ) -> Attempt {
        let Ok(_permit) = self.semaphore(host).acquire_owned().await else {
            return Attempt::Fatal(OciError::protocol("request semaphore closed"));
        };
        let mut url = spec.url.clone();
        let mut authorization = authorization;
        let clients = self.http.by_host.get(host).unwrap_or(&self.http.default);
        let mut client = &clients.direct;
        let mut redirects = 0usize;
        loop {
            let started = Instant::now();
            // Exchanges with redirect targets are labelled with the registry's host (bounded label set).
            let mut request = client.request(spec.method.clone(), url.clone());
            if let Some(accept) = spec.accept {
                request = request.header(header::ACCEPT, accept);
            }
            if let Some(content_type) = &spec.content_type {
                request = request.header(header::CONTENT_TYPE, content_type.as_str());
            }
            if let Some(value) = &authorization {
                request = request.header(header::AUTHORIZATION, value.clone());
            }
            if let Some(range) = &spec.range {
                request = request.header(header::RANGE, range.as_str());
            }
            if let Some(body) = &spec.body {
                request = request.body(body.clone());
            } else if spec.method == Method::POST || spec.method == Method::PUT {
                request = request.header(header::CONTENT_LENGTH, "0");
            }
            let mut response = match request.send().await {
                Ok(response) => response,
                Err(error) => {
                    let (outcome, error, retryable) = transport_error(spec, &url, &error);
                    record_exchange(host, spec.operation, outcome, started.elapsed());
                    return if retryable {
                        Attempt::Retryable {
                            error,
                            retry_after: None,
                        }
                    } else {
                        Attempt::Fatal(error)
                    };
                }
            };
            let status = response.status();
            let location = status
                .is_redirection()
                .then(|| response.headers().get(header::LOCATION))
                .flatten()
                .and_then(|value| value.to_str().ok());
            if let Some(location) = location.filter(|_| follows_redirects(spec)) {
                record_exchange(host, spec.operation, Outcome::Ok, started.elapsed());
                let mut next = match url.join(location) {
                    Ok(next) if redirects < MAX_REDIRECTS => next,
                    Ok(_) => {
                        return self.refuse_redirect(
                            spec,
                            host,
                            format!("more than {MAX_REDIRECTS} redirects"),
                        )
                    }
                    Err(_) => {
                        return self.refuse_redirect(spec, host, "unusable location".to_owned())
                    }
                };
                match self.http.redirect_guard.check(&spec.url, &next).await {
                    Ok(()) => {}
                    Err(RedirectError::Refused(reason)) => {
                        return self.refuse_redirect(spec, host, format!("to {reason}"))
                    }
                    Err(RedirectError::Unresolved(reason)) => {
                        return Attempt::Retryable {
                            error: OciError::Unavailable {
                                message: format!("{}: redirect to {reason}", spec.what),
                            },
                            retry_after: None,
                        }
                    }
                }
                record_redirect(host, RedirectOutcome::Followed);
                tracing::debug!(host = %host, from = url.path(), to_host = next.host_str(), "following redirect");
                // Never credentials along a redirect: signed storage URLs need none, and a
                // registry must not be able to send our tokens or passwords elsewhere. User
                // info in the location would become an Authorization header too.
                authorization = None;
                let _ = next.set_username("");
                let _ = next.set_password(None);
                client = &clients.redirected;
                redirects += 1;
                url = next;
                continue;
            }
            if status.is_redirection() {
                // Not followed (a HEAD, PUT, tag list, token): the caller sees the 3xx itself.
                record_redirect(host, RedirectOutcome::Refused);
            }
            if is_retryable_status(status.as_u16()) {
                let retry_after = response
                    .headers()
                    .get(header::RETRY_AFTER)
                    .and_then(|value| value.to_str().ok())
                    .and_then(|value| parse_retry_after(value, SystemTime::now()));
                let body = read_error_body(&mut response).await;
                record_exchange(
                    host,
                    spec.operation,
                    Outcome::of_status(status.as_u16()),
                    started.elapsed(),
                );
                return Attempt::Retryable {
                    error: status_error(spec, status, &body),
                    retry_after,
                };
            }
            let headers = response.headers().clone();
            if spec.stream && status.is_success() {
                record_exchange(host, spec.operation, Outcome::Ok, started.elapsed());
                return Attempt::Done(Answer {
                    status,
                    headers,
                    body: Bytes::new(),
                    url,
                    response: Some(Box::new(response)),
                });
            }
            let body = if status.is_success() {
                if spec.method == Method::HEAD {
                    Bytes::new()
                } else {
                    match read_limited(&mut response, spec.body_limit).await {
                        Ok(body) => body,
                        Err(ReadError::TooLarge) => {
                            record_exchange(
                                host,
                                spec.operation,
                                Outcome::Error,
                                started.elapsed(),
                            );
                            return Attempt::Fatal(OciError::too_large(
                                spec.what.clone(),
                                spec.body_limit,
                            ));
                        }
                        Err(ReadError::Transport(error)) => {
                            let (outcome, error, _) = transport_error(spec, &url, &error);
                            record_exchange(host, spec.operation, outcome, started.elapsed());
                            return Attempt::Retryable {
                                error,
                                retry_after: None,
                            };
                        }
                    }
                }
            } else {
                read_error_body(&mut response).await
            };
            record_exchange(
                host,
                spec.operation,
                Outcome::of_status(status.as_u16()),
                started.elapsed(),
            );
            return Attempt::Done(Answer {
                status,
                headers,
                body,
                url,
                response: None,
            });
        }
    }

    /// Ends an attempt at a redirect it may not follow; retrying would meet the same answer.
    fn refuse_redirect(&self, spec: &RequestSpec, host: &str, reason: String) -> Attempt {
        record_redirect(host, RedirectOutcome::Refused);
        tracing::warn!(host = %host, operation = spec.operation.as_str(), reason = %reason, "redirect refused");
        Attempt::Fatal(OciError::protocol(format!(
            "{}: redirect refused: {reason}",
            spec.what
        )))
    }

    /// The `Authorization` value for an attempt, fetching a token when the host wants Bearer.
    /// Runs before a permit is taken, so a token fetch to the same host cannot starve on its semaphore.
    async fn authorization(
        &self,
        spec: &RequestSpec,
        host: &str,
    ) -> Result<(Option<HeaderValue>, SentAuth), OciError> {
        match &spec.auth {
            RequestAuth::Anonymous => Ok((None, SentAuth::None)),
            RequestAuth::Realm { credentials } => Ok((
                credentials.as_ref().map(Credentials::basic_header),
                SentAuth::None,
            )),
            RequestAuth::Registry { scope } => match self.auth.host_scheme(host) {
                None => Ok((None, SentAuth::None)),
                Some(HostAuthScheme::Basic) => match self.credentials.get(host) {
                    Some(credentials) => Ok((Some(credentials.basic_header()), SentAuth::Basic)),
                    None => Ok((None, SentAuth::None)),
                },
                Some(HostAuthScheme::Bearer { realm, service }) => {
                    let token = self.token(host, scope, &realm, service.as_deref()).await?;
                    Ok((
                        Some(bearer_header(&token)),
                        SentAuth::Bearer {
                            scope: scope.clone(),
                            token,
                        },
                    ))
                }
            },
        }
    }

    /// Reacts to a 401: remembers the host's scheme, drops a rejected token. True when trying again can help.
    async fn answer_challenge(&self, host: &str, answer: &Answer, sent: &SentAuth) -> bool {
        let challenge = answer
            .headers
            .get_all(header::WWW_AUTHENTICATE)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .collect::<Vec<_>>()
            .join(", ");
        let Some(scheme) = choose_scheme(&challenge, &answer.url) else {
            return false;
        };
        tracing::debug!(host = %host, bearer = matches!(scheme, HostAuthScheme::Bearer { .. }), "registry challenged");
        self.auth.remember_host_scheme(host, scheme.clone());
        match scheme {
            HostAuthScheme::Bearer { .. } => {
                if let SentAuth::Bearer { scope, token } = sent {
                    let slot = self.auth.token_slot(host, scope);
                    let mut cached = slot.lock().await;
                    if cached.as_ref().is_some_and(|cached| &cached.token == token) {
                        *cached = None;
                    }
                }
                true
            }
            HostAuthScheme::Basic => {
                self.credentials.contains_key(host) && *sent != SentAuth::Basic
            }
        }
    }

    /// A token for (host, scope): cached while fresh; concurrent callers share one fetch.
    async fn token(
        &self,
        host: &str,
        scope: &str,
        realm: &Url,
        service: Option<&str>,
    ) -> Result<String, OciError> {
        let slot = self.auth.token_slot(host, scope);
        let mut cached = slot.lock().await;
        if let Some(token) = cached
            .as_ref()
            .filter(|token| token.is_fresh(Instant::now()))
        {
            return Ok(token.token.clone());
        }
        let (token, lifetime) = self.fetch_token(host, scope, realm, service).await?;
        *cached = Some(CachedToken {
            token: token.clone(),
            expires_at: Instant::now() + lifetime,
        });
        Ok(token)
    }

    async fn fetch_token(
        &self,
        host: &str,
        scope: &str,
        realm: &Url,
        service: Option<&str>,
    ) -> Result<(String, std::time::Duration), OciError> {
        let mut url = realm.clone();
        {
            let mut query = url.query_pairs_mut();
            query.append_pair("scope", scope);
            if let Some(service) = service {
                query.append_pair("service", service);
            }
        }
        // Registry credentials go to its realm only over HTTPS, or to the registry's own host.
        let realm_is_trusted =
            realm.scheme() == "https" || realm.host_str() == host_without_port(host);
        let credentials = self
            .credentials
            .get(host)
            .filter(|_| realm_is_trusted)
            .cloned();
        tracing::debug!(host = %host, scope = %scope, realm_host = realm.host_str(), with_credentials = credentials.is_some(), "fetching registry token");
        let spec = RequestSpec {
            operation: Operation::Token,
            method: Method::GET,
            url,
            auth: RequestAuth::Realm { credentials },
            accept: Some("application/json"),
            content_type: None,
            body: None,
            body_limit: MAX_TOKEN_RESPONSE_BYTES,
            what: format!("token for {host} ({scope})"),
            range: None,
            stream: false,
        };
        let answer = Box::pin(self.execute(&spec)).await?;
        if !answer.status.is_success() {
            return Err(status_error(&spec, answer.status, &answer.body));
        }
        parse_token_response(&answer.body, SystemTime::now())
    }
}

/// `host[:port]` of a URL: the key for credentials, semaphores, tokens and the metrics label.
pub(crate) fn host_label(url: &Url) -> String {
    let host = url.host_str().unwrap_or_default();
    match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_owned(),
    }
}

fn host_without_port(host: &str) -> Option<&str> {
    if host.starts_with('[') {
        return host
            .split_once(']')
            .map(|(ipv6, _)| &host[..ipv6.len() + 1]);
    }
    Some(host.rsplit_once(':').map_or(host, |(name, _)| name))
}

enum ReadError {
    TooLarge,
    Transport(reqwest::Error),
}

/// Reads a body chunk by chunk, failing as soon as it would pass `limit` (never buffers more).
async fn read_limited(response: &mut reqwest::Response, limit: u64) -> Result<Bytes, ReadError> {
    if response
        .content_length()
        .is_some_and(|length| length > limit)
    {
        return Err(ReadError::TooLarge);
    }
    let expected = response
        .content_length()
        .unwrap_or(0)
        .min(limit)
        .min(1 << 20);
    let mut body = BytesMut::with_capacity(usize::try_from(expected).unwrap_or(0));
    while let Some(chunk) = response.chunk().await.map_err(ReadError::Transport)? {
        if (body.len() + chunk.len()) as u64 > limit {
            return Err(ReadError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

/// A prefix of an error body, for diagnostics only; failures to read it are ignored.
async fn read_error_body(response: &mut reqwest::Response) -> Bytes {
    let mut body = BytesMut::new();
    while let Ok(Some(chunk)) = response.chunk().await {
        let room = MAX_ERROR_BODY_BYTES as usize - body.len();
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if body.len() as u64 >= MAX_ERROR_BODY_BYTES {
            break;
        }
    }
    body.freeze()
}

/// Maps a transport failure (connect, timeout, broken body, TLS) to an outcome, an error without URL
/// or query, and whether trying again can help (not for a certificate the client does not trust).
fn transport_error(
    spec: &RequestSpec,
    url: &Url,
    error: &reqwest::Error,
) -> (Outcome, OciError, bool) {
    let place = format!(
        "{} ({} {}{})",
        spec.what,
        spec.method,
        host_label(url),
        url.path()
    );
    if let Some(tls) = permanent_tls_failure(error) {
        let message = format!("{place}: {tls}");
        return (Outcome::Tls, OciError::Tls { message }, false);
    }
    let mut causes = Vec::new();
    let mut source: Option<&dyn std::error::Error> = std::error::Error::source(error);
    while let Some(cause) = source {
        let text = cause.to_string();
        if !causes.contains(&text) {
            causes.push(text);
        }
        source = cause.source();
    }
    let kind = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "cannot connect"
    } else if error.is_body() || error.is_decode() {
        "broken response body"
    } else {
        "request failed"
    };
    let message = format!(
        "{place}: {kind}{}",
        causes
            .iter()
            .map(|cause| format!(": {cause}"))
            .collect::<String>()
    );
    if error.is_timeout() {
        (Outcome::Timeout, OciError::Timeout { message }, true)
    } else {
        (
            Outcome::Unavailable,
            OciError::Unavailable { message },
            true,
        )
    }
}

/// Only GETs of blobs and manifests follow redirects: that is where registries send clients to
/// storage. Anything else (HEAD, PUT, uploads, tag lists, tokens) gets the 3xx as its answer.
fn follows_redirects(spec: &RequestSpec) -> bool {
    spec.method == Method::GET && matches!(spec.operation, Operation::Blob | Operation::Manifest)
}

/// Maps a final non-success status to an error, with the registry's error code when it sent one.
pub(crate) fn status_error(spec: &RequestSpec, status: StatusCode, body: &[u8]) -> OciError {
    let detail = registry_error_summary(body)
        .map(|summary| format!(" ({summary})"))
        .unwrap_or_default();
    let message = format!(
        "{}: {} {}{} answered {}{detail}",
        spec.what,
        spec.method,
        host_label(&spec.url),
        spec.url.path(),
        status.as_u16()
    );
    match status.as_u16() {
        401 => OciError::Unauthorized { message },
        403 => OciError::Forbidden { message },
        404 => OciError::NotFound {
            what: format!("{}{detail}", spec.what),
        },
        408 => OciError::Timeout { message },
        429 => OciError::RateLimited { message },
        500..=599 => OciError::Unavailable { message },
        _ => OciError::Protocol { message },
    }
}

/// `CODE: message` of the first entry of a distribution error body, shortened and printable.
fn registry_error_summary(body: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct ErrorBody {
        errors: Vec<ErrorEntry>,
    }
    #[derive(serde::Deserialize)]
    struct ErrorEntry {
        code: Option<String>,
        message: Option<String>,
    }
    let parsed: ErrorBody = serde_json::from_slice(body).ok()?;
    let first = parsed.errors.into_iter().next()?;
    let summary = match (first.code, first.message) {
        (Some(code), Some(message)) => format!("{code}: {message}"),
        (Some(code), None) => code,
        (None, Some(message)) => message,
        (None, None) => return None,
    };
    Some(
        summary
            .chars()
            .filter(|character| !character.is_control())
            .take(200)
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_labels() {
        assert_eq!(
            host_label(&Url::parse("http://127.0.0.1:5000/v2/").unwrap()),
            "127.0.0.1:5000"
        );
        assert_eq!(
            host_label(&Url::parse("https://ghcr.io/v2/").unwrap()),
            "ghcr.io"
        );
        assert_eq!(
            host_label(&Url::parse("https://ghcr.io:443/v2/").unwrap()),
            "ghcr.io"
        );
        assert_eq!(host_without_port("127.0.0.1:5000"), Some("127.0.0.1"));
        assert_eq!(host_without_port("ghcr.io"), Some("ghcr.io"));
        assert_eq!(host_without_port("[::1]:5000"), Some("[::1]"));
    }

    #[test]
    fn error_summaries() {
        let body = br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":{"Tag":"x"}}]}"#;
        assert_eq!(
            registry_error_summary(body).as_deref(),
            Some("MANIFEST_UNKNOWN: manifest unknown")
        );
        assert_eq!(registry_error_summary(b"<html>"), None);
        assert_eq!(registry_error_summary(br#"{"errors":[]}"#), None);
    }

    #[test]
    fn status_mapping() {
        let spec = RequestSpec {
            operation: Operation::Manifest,
            method: Method::GET,
            url: Url::parse("http://r.example/v2/a/manifests/1?secret=x").unwrap(),
            auth: RequestAuth::Anonymous,
            accept: None,
            content_type: None,
            body: None,
            body_limit: 1,
            what: "manifest r.example/a:1".to_owned(),
            range: None,
            stream: false,
        };
        use crate::error::OciErrorKind::*;
        for (status, kind) in [
            (401, Unauthorized),
            (403, Forbidden),
            (404, NotFound),
            (429, RateLimited),
            (503, Unavailable),
            (400, Protocol),
        ] {
            let error = status_error(&spec, StatusCode::from_u16(status).unwrap(), b"");
            assert_eq!(error.kind(), kind);
            assert!(!error.to_string().contains("secret"));
        }
    }
}
