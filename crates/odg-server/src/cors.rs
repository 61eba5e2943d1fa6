//! CORS for browser clients served from another origin (the Delivery Dashboard): which origins
//! may call the API with credentials, which request headers they may send, which response
//! headers their scripts may read, and how long a browser may cache a preflight answer.
//!
//! The original answers every origin with credentials; odg allows only the origins an operator
//! lists, and none by default. Preflights (`OPTIONS`) are answered by the layer itself on every
//! path, so they never reach admission control, authentication or a handler.

use std::time::Duration;

use axum::http::{header, HeaderName, HeaderValue, Method};
use tower_http::cors::{AllowCredentials, AllowOrigin, CorsLayer};

use crate::front_door::X_REQUEST_ID;

/// How long a browser may reuse a preflight answer. Chromium caps it at 2 hours, Firefox at
/// 24; 10 minutes saves the dashboard most preflights while a changed origin list still reaches
/// open browsers soon.
pub const DEFAULT_CORS_MAX_AGE: Duration = Duration::from_secs(600);

/// Request headers a cross-origin caller may send, besides the CORS-safelisted ones: the
/// dashboard sends `Content-Type` (JSON bodies) and `Shortcut-Cache` on every call; other
/// browser clients authenticate with `Authorization`, may compress bodies (`Content-Encoding`)
/// and may pass their own `X-Request-Id` to correlate with the service's logs.
const ALLOWED_HEADERS: [HeaderName; 5] = [
    header::AUTHORIZATION,
    header::CONTENT_TYPE,
    header::CONTENT_ENCODING,
    HeaderName::from_static("shortcut-cache"),
    X_REQUEST_ID,
];

/// Response headers cross-origin scripts may read beyond the safelisted ones: the request id
/// (to report a failure) and `Retry-After` (how long to back off after a 503).
const EXPOSED_HEADERS: [HeaderName; 2] = [X_REQUEST_ID, header::RETRY_AFTER];

/// Every method a route of the API answers.
const ALLOWED_METHODS: [Method; 5] = [
    Method::GET,
    Method::HEAD,
    Method::POST,
    Method::PUT,
    Method::DELETE,
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CorsConfig {
    /// Origins in their serialised form (`scheme://host[:port]`, lower case, no default port),
    /// which is how browsers send them in `Origin`.
    allowed_origins: Vec<String>,
    max_age: Duration,
}

impl Default for CorsConfig {
    /// Nothing is allowed cross-origin.
    fn default() -> Self {
        CorsConfig {
            allowed_origins: Vec::new(),
            max_age: DEFAULT_CORS_MAX_AGE,
        }
    }
}

impl CorsConfig {
    /// Allows `origins` (e.g. `https://dashboard.example.org`), each normalised to the form
    /// browsers send; an origin that is not `http(s)://host[:port]` is refused with a message
    /// naming it. `*` is refused too: with credentials allowed, any web page could act with the
    /// session of a user who visits it.
    pub fn new<I, S>(origins: I, max_age: Duration) -> Result<Self, String>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut allowed_origins = Vec::new();
        for origin in origins {
            let origin = normalise_origin(origin.as_ref())?;
            if !allowed_origins.contains(&origin) {
                allowed_origins.push(origin);
            }
        }
        Ok(CorsConfig {
            allowed_origins,
            max_age,
        })
    }

    pub fn allowed_origins(&self) -> &[String] {
        &self.allowed_origins
    }

    pub fn max_age(&self) -> Duration {
        self.max_age
    }

    /// The layer answering preflights and adding CORS headers to every other answer.
    pub(crate) fn layer(&self) -> CorsLayer {
        let origins: Vec<HeaderValue> = self
            .allowed_origins
            .iter()
            // Normalised origins are ASCII without control characters, so none is skipped.
            .filter_map(|origin| HeaderValue::from_str(origin).ok())
            .collect();
        let credentialed = origins.clone();
        CorsLayer::new()
            .allow_origin(AllowOrigin::list(origins))
            // Only to allowed origins: to others the header would say nothing true.
            .allow_credentials(AllowCredentials::predicate(move |origin, _| {
                credentialed.contains(origin)
            }))
            .allow_methods(ALLOWED_METHODS)
            .allow_headers(ALLOWED_HEADERS)
            .expose_headers(EXPOSED_HEADERS)
            .max_age(self.max_age)
    }
}

fn normalise_origin(text: &str) -> Result<String, String> {
    let text = text.trim();
    if text == "*" {
        return Err(
            "CORS origin \"*\" is not supported: list the origins (e.g. https://dashboard.example.org)"
                .to_string(),
        );
    }
    let refuse = |why: &str| Err(format!("CORS origin {text:?}: {why}"));
    let Ok(url) = url::Url::parse(text) else {
        return refuse("not a URL like https://dashboard.example.org");
    };
    if !matches!(url.scheme(), "http" | "https") {
        return refuse("the scheme must be http or https");
    }
    if url.host().is_none() {
        return refuse("no host");
    }
    if !url.username().is_empty() || url.password().is_some() {
        return refuse("an origin has no user name or password");
    }
    if !matches!(url.path(), "" | "/") || url.query().is_some() || url.fragment().is_some() {
        return refuse("an origin has no path, query or fragment");
    }
    Ok(url.origin().ascii_serialization())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_normalised_as_browsers_send_them() {
        let config = CorsConfig::new(
            [
                "https://Dashboard.Example.org/",
                "http://localhost:3000",
                "https://dashboard.example.org:443",
            ],
            DEFAULT_CORS_MAX_AGE,
        )
        .unwrap();
        assert_eq!(
            config.allowed_origins(),
            ["https://dashboard.example.org", "http://localhost:3000"]
        );
    }

    #[test]
    fn wildcards_paths_and_other_schemes_are_refused() {
        for origin in [
            "*",
            "dashboard.example.org",
            "ftp://dashboard.example.org",
            "https://dashboard.example.org/app",
            "https://user@dashboard.example.org",
            "https://dashboard.example.org/?x=1",
            "null",
        ] {
            let error = CorsConfig::new([origin], DEFAULT_CORS_MAX_AGE).unwrap_err();
            assert!(error.contains("CORS origin"), "{origin}: {error}");
        }
    }

    #[test]
    fn nothing_is_allowed_by_default() {
        assert!(CorsConfig::default().allowed_origins().is_empty());
    }
}
