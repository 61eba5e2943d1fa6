//! The metrics this crate emits (through the `metrics` facade) and their fixed label values.
//!
//! One `odg_registry_requests_total` and one duration sample per HTTP exchange (each attempt counts),
//! one `odg_registry_retries_total` per retry, one `odg_registry_redirects_total` per redirect answer.
//! Label `host` is the registry (or token realm) host, never a redirect target's.

use std::time::Duration;

/// Counter, labels `host`, `operation`, `outcome`.
pub const REGISTRY_REQUESTS_TOTAL: &str = "odg_registry_requests_total";
/// Histogram (seconds), labels `host`, `operation`.
pub const REGISTRY_REQUEST_DURATION_SECONDS: &str = "odg_registry_request_duration_seconds";
/// Counter, labels `host`, `operation`.
pub const REGISTRY_RETRIES_TOTAL: &str = "odg_registry_retries_total";
/// Counter, labels `host` (the registry's), `outcome` (`followed`, `refused`).
pub const REGISTRY_REDIRECTS_TOTAL: &str = "odg_registry_redirects_total";

/// Registers descriptions and units with the installed recorder. Call once after installing it.
pub fn describe_metrics() {
    metrics::describe_counter!(
        REGISTRY_REQUESTS_TOTAL,
        "HTTP exchanges with OCI registries and token services, by outcome"
    );
    metrics::describe_histogram!(
        REGISTRY_REQUEST_DURATION_SECONDS,
        metrics::Unit::Seconds,
        "Duration of one HTTP exchange with a registry, including reading the body"
    );
    metrics::describe_counter!(
        REGISTRY_RETRIES_TOTAL,
        "Retries of registry requests after connection errors, timeouts, 429 and 5xx"
    );
    metrics::describe_counter!(
        REGISTRY_REDIRECTS_TOTAL,
        "Redirects answered by registries: followed, or refused (not a blob or manifest GET, \
         too many hops, or a target in a network the registry is not in)"
    );
}

/// Label `operation`: what the exchange was for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operation {
    /// GET manifest.
    Manifest,
    /// PUT manifest.
    ManifestPut,
    /// GET blob.
    Blob,
    /// HEAD blob.
    BlobExists,
    /// GET tags list (each page).
    Tags,
    /// GET token from the realm.
    Token,
    /// POST upload session and PUT its content.
    Upload,
}

impl Operation {
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Manifest => "manifest",
            Operation::ManifestPut => "manifest_put",
            Operation::Blob => "blob",
            Operation::BlobExists => "blob_exists",
            Operation::Tags => "tags",
            Operation::Token => "token",
            Operation::Upload => "upload",
        }
    }
}

/// Label `outcome` of one exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// 2xx, or a redirect that was followed.
    Ok,
    NotFound,
    /// 401 and 403.
    Unauthorized,
    RateLimited,
    Timeout,
    /// Connection errors, broken bodies and 5xx.
    Unavailable,
    /// A TLS failure that is not retried (certificate, handshake).
    Tls,
    /// Anything else (other 4xx, too large bodies).
    Error,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::NotFound => "not_found",
            Outcome::Unauthorized => "unauthorized",
            Outcome::RateLimited => "rate_limited",
            Outcome::Timeout => "timeout",
            Outcome::Unavailable => "unavailable",
            Outcome::Tls => "tls",
            Outcome::Error => "error",
        }
    }

    pub(crate) fn of_status(status: u16) -> Outcome {
        match status {
            200..=399 => Outcome::Ok,
            401 | 403 => Outcome::Unauthorized,
            404 => Outcome::NotFound,
            429 => Outcome::RateLimited,
            500..=599 => Outcome::Unavailable,
            _ => Outcome::Error,
        }
    }
}

pub(crate) fn record_exchange(
    host: &str,
    operation: Operation,
    outcome: Outcome,
    elapsed: Duration,
) {
    metrics::counter!(
        REGISTRY_REQUESTS_TOTAL,
        "host" => host.to_owned(),
        "operation" => operation.as_str(),
        "outcome" => outcome.as_str()
    )
    .increment(1);
    metrics::histogram!(
        REGISTRY_REQUEST_DURATION_SECONDS,
        "host" => host.to_owned(),
        "operation" => operation.as_str()
    )
    .record(elapsed.as_secs_f64());
}

pub(crate) fn record_retry(host: &str, operation: Operation) {
    metrics::counter!(
        REGISTRY_RETRIES_TOTAL,
        "host" => host.to_owned(),
        "operation" => operation.as_str()
    )
    .increment(1);
}

/// Label `outcome` of `odg_registry_redirects_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RedirectOutcome {
    Followed,
    Refused,
}

impl RedirectOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            RedirectOutcome::Followed => "followed",
            RedirectOutcome::Refused => "refused",
        }
    }
}

pub(crate) fn record_redirect(host: &str, outcome: RedirectOutcome) {
    metrics::counter!(
        REGISTRY_REDIRECTS_TOTAL,
        "host" => host.to_owned(),
        "outcome" => outcome.as_str()
    )
    .increment(1);
}
