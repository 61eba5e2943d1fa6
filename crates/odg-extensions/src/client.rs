//! `ServiceClient`: GETs (and the metadata query's POST) against the service's routes with a
//! bounded number of retries under the shared policy of `odg-retry` (retryable statuses, after
//! their `Retry-After` as a jittered minimum; connection errors and timeouts with backoff),
//! counting every request, its outcome and its latency for the run's summary.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use odg_retry::{is_retryable_status, parse_retry_after, RetryPolicy};

use reqwest::StatusCode;
use serde_json::Value;

use crate::ExtensionError;

/// The routes the extensions use; the label of each in summaries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Route {
    Versions,
    Component,
    Dependencies,
    /// `POST /artefacts/metadata/query` (a read: retried like the GETs).
    MetadataQuery,
}

impl Route {
    pub fn path(self) -> &'static str {
        match self {
            Route::Versions => "/ocm/component/versions",
            Route::Component => "/ocm/component",
            Route::Dependencies => "/ocm/component/dependencies",
            Route::MetadataQuery => "/artefacts/metadata/query",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Route::Versions => "versions",
            Route::Component => "component",
            Route::Dependencies => "dependencies",
            Route::MetadataQuery => "metadata",
        }
    }
}

#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Whole-request timeout of one attempt.
    pub request_timeout: Duration,
    /// Attempts per request, the first included.
    pub max_attempts: u32,
    /// Longest wait before a retry, whatever `Retry-After` says.
    pub max_retry_wait: Duration,
    /// Sent as `Authorization: Bearer`, if the service wants one.
    pub bearer_token: Option<String>,
}

impl ClientOptions {
    /// The shared policy (`odg-retry`): backoff from 500 ms with jitter, the server's
    /// `Retry-After` as a capped minimum, jittered so that shed clients do not return in step.
    pub fn retry_policy(&self) -> RetryPolicy {
        RetryPolicy {
            max_retries: self.max_attempts.saturating_sub(1),
            initial_backoff: Duration::from_millis(500),
            max_backoff: self.max_retry_wait,
            max_retry_after: self.max_retry_wait,
        }
    }
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            request_timeout: Duration::from_secs(60),
            max_attempts: 3,
            max_retry_wait: Duration::from_secs(10),
            bearer_token: None,
        }
    }
}

/// Counts of one run's requests (each logical request once, however many attempts it took).
#[derive(Debug, Clone, Default)]
pub struct RequestStats {
    pub by_route: BTreeMap<&'static str, u64>,
    pub failed: u64,
    /// Attempts after the first.
    pub retries: u64,
    /// Answers 503 (load shedding), retried or not.
    pub shed: u64,
    /// Latency of each successful request, in seconds.
    pub latencies: Vec<f64>,
}

impl RequestStats {
    pub fn total(&self) -> u64 {
        self.by_route.values().sum()
    }
}

/// A client of one service base URL; cheap to clone, clones share their statistics.
#[derive(Debug, Clone)]
pub struct ServiceClient {
    base_url: String,
    http: reqwest::Client,
    options: ClientOptions,
    stats: Arc<Mutex<RequestStats>>,
}

/// Why a request failed, for the summary.
#[derive(Debug, Clone)]
pub struct RequestError {
    pub status: Option<u16>,
    pub message: String,
}

impl ServiceClient {
    pub fn new(base_url: &str, options: ClientOptions) -> Result<ServiceClient, ExtensionError> {
        let parsed = url::Url::parse(base_url)
            .map_err(|error| ExtensionError::InvalidInput(format!("URL {base_url:?}: {error}")))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(ExtensionError::InvalidInput(format!(
                "URL {base_url:?}: use http:// or https://"
            )));
        }
        let http = reqwest::Client::builder()
            .timeout(options.request_timeout)
            .user_agent(concat!("odg-extensions/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|error| ExtensionError::InvalidInput(format!("HTTP client: {error}")))?;
        Ok(ServiceClient {
            base_url: base_url.trim_end_matches('/').to_string(),
            http,
            options,
            stats: Arc::default(),
        })
    }

    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// A copy of the statistics so far.
    pub fn stats(&self) -> RequestStats {
        self.stats
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn record(&self, update: impl FnOnce(&mut RequestStats)) {
        update(&mut self.stats.lock().unwrap_or_else(PoisonError::into_inner));
    }

    /// GET `route` with `query`; the JSON body of a 2xx answer.
    pub async fn get(&self, route: Route, query: &[(&str, &str)]) -> Result<Value, RequestError> {
        let url = format!("{}{}", self.base_url, route.path());
        self.send(route, || self.http.get(&url).query(query)).await
    }

    /// POST `route` with `query` and the JSON `body`; the JSON body of a 2xx answer. Only for
    /// routes that are reads (they are retried like GETs).
    pub async fn post(
        &self,
        route: Route,
        query: &[(&str, &str)],
        body: &Value,
    ) -> Result<Value, RequestError> {
        let url = format!("{}{}", self.base_url, route.path());
        self.send(route, || self.http.post(&url).query(query).json(body))
            .await
    }

    /// Sends the request `build` makes, again for each retry; counts it once under `route`.
    async fn send(
        &self,
        route: Route,
        build: impl Fn() -> reqwest::RequestBuilder,
    ) -> Result<Value, RequestError> {
        self.record(|stats| *stats.by_route.entry(route.label()).or_default() += 1);
        let started = Instant::now();
        let mut attempt = 1;
        let outcome = loop {
            let mut request = build();
            if let Some(token) = &self.options.bearer_token {
                request = request.bearer_auth(token);
            }
            let (retry_after, failure) = match request.send().await {
                Ok(response) => {
                    let status = response.status();
                    if status.is_success() {
                        match response.json::<Value>().await {
                            Ok(body) => break Ok(body),
                            Err(error) => (
                                None,
                                RequestError {
                                    status: Some(status.as_u16()),
                                    message: format!("unreadable body: {error}"),
                                },
                            ),
                        }
                    } else {
                        let retry_after = response
                            .headers()
                            .get(reqwest::header::RETRY_AFTER)
                            .and_then(|value| value.to_str().ok())
                            .and_then(|value| parse_retry_after(value, SystemTime::now()));
                        let body = response.text().await.unwrap_or_default();
                        let message = serde_json::from_str::<Value>(&body)
                            .ok()
                            .and_then(|value| value["error"].as_str().map(str::to_owned))
                            .unwrap_or(body);
                        if status == StatusCode::SERVICE_UNAVAILABLE {
                            self.record(|stats| stats.shed += 1);
                        }
                        (
                            is_retryable_status(status.as_u16()).then_some(retry_after),
                            RequestError {
                                status: Some(status.as_u16()),
                                message,
                            },
                        )
                    }
                }
                Err(error) => (
                    (error.is_connect() || error.is_timeout()).then_some(None),
                    RequestError {
                        status: None,
                        message: error.to_string(),
                    },
                ),
            };
            // `Some(hint)`: worth retrying, after the server's `Retry-After` if it sent one
            match retry_after {
                Some(hint) if self.options.retry_policy().allows(attempt - 1) => {
                    let wait = self.options.retry_policy().delay(attempt - 1, hint);
                    tracing::debug!(route = route.label(), attempt, ?wait, error = %failure.message, "retrying");
                    self.record(|stats| stats.retries += 1);
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                }
                _ => break Err(failure),
            }
        };
        let elapsed = started.elapsed().as_secs_f64();
        match &outcome {
            Ok(_) => self.record(|stats| stats.latencies.push(elapsed)),
            Err(_) => self.record(|stats| stats.failed += 1),
        }
        outcome
    }
}
