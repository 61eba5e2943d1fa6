//! Registry authentication: credentials, `WWW-Authenticate` challenges, token responses, and the token cache.
//!
//! The HTTP exchanges themselves live in `registry.rs`; this module holds the parsing and the state.
//! Invariant: nothing here prints a password or a token (`Debug` redacts both).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use reqwest::header::HeaderValue;
use serde::Deserialize;
use tokio::time::Instant;
use url::Url;

use crate::error::OciError;

/// How long a token without `expires_in` or JWT `exp` is assumed to live.
const DEFAULT_TOKEN_LIFETIME: Duration = Duration::from_secs(300);
/// Tokens are dropped this much before they expire (at most a tenth of their lifetime).
const TOKEN_EXPIRY_MARGIN: Duration = Duration::from_secs(10);

/// Username and password for one registry host. `Debug` redacts the password.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

impl Credentials {
    pub fn new(username: impl Into<String>, password: impl Into<String>) -> Self {
        Credentials {
            username: username.into(),
            password: password.into(),
        }
    }

    /// `Basic <base64(user:password)>`, marked sensitive so it is never logged by the HTTP stack.
    pub(crate) fn basic_header(&self) -> HeaderValue {
        let encoded = base64::engine::general_purpose::STANDARD
            .encode(format!("{}:{}", self.username, self.password));
        let mut value = HeaderValue::from_str(&format!("Basic {encoded}"))
            .unwrap_or_else(|_| HeaderValue::from_static("Basic"));
        value.set_sensitive(true);
        value
    }
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

pub(crate) fn bearer_header(token: &str) -> HeaderValue {
    let mut value = HeaderValue::from_str(&format!("Bearer {token}"))
        .unwrap_or_else(|_| HeaderValue::from_static("Bearer"));
    value.set_sensitive(true);
    value
}

/// One challenge of a `WWW-Authenticate` header: lower-cased scheme, parameters with lower-cased keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Challenge {
    pub scheme: String,
    pub params: BTreeMap<String, String>,
}

/// Parses a `WWW-Authenticate` value into its challenges (RFC 7235; quoted values may hold commas).
pub(crate) fn parse_challenges(header: &str) -> Vec<Challenge> {
    let bytes = header.as_bytes();
    let is_space = |b: u8| b == b' ' || b == b'\t';
    let mut challenges: Vec<Challenge> = Vec::new();
    let mut index = 0;
    while index < bytes.len() {
        if is_space(bytes[index]) || bytes[index] == b',' {
            index += 1;
            continue;
        }
        let start = index;
        while index < bytes.len() && !matches!(bytes[index], b' ' | b'\t' | b',' | b'=') {
            index += 1;
        }
        let token = &header[start..index];
        if token.is_empty() {
            index += 1; // a stray '='
            continue;
        }
        let mut lookahead = index;
        while lookahead < bytes.len() && is_space(bytes[lookahead]) {
            lookahead += 1;
        }
        let is_param = lookahead < bytes.len() && bytes[lookahead] == b'=';
        match challenges.last_mut() {
            Some(challenge) if is_param => {
                index = lookahead + 1;
                while index < bytes.len() && is_space(bytes[index]) {
                    index += 1;
                }
                let value = if index < bytes.len() && bytes[index] == b'"' {
                    let (value, next) = read_quoted(header, index + 1);
                    index = next;
                    value
                } else {
                    let value_start = index;
                    while index < bytes.len() && !matches!(bytes[index], b',' | b' ' | b'\t') {
                        index += 1;
                    }
                    header[value_start..index].to_owned()
                };
                challenge.params.insert(token.to_ascii_lowercase(), value);
            }
            _ if is_param => index = lookahead + 1, // a parameter before any scheme: skip it
            _ => challenges.push(Challenge {
                scheme: token.to_ascii_lowercase(),
                params: BTreeMap::new(),
            }),
        }
    }
    challenges
}

/// Reads a quoted string starting after its opening quote; returns the unescaped value and the index after it.
fn read_quoted(header: &str, start: usize) -> (String, usize) {
    let mut value = String::new();
    let mut escaped = false;
    for (offset, character) in header[start..].char_indices() {
        match character {
            _ if escaped => {
                value.push(character);
                escaped = false;
            }
            '\\' => escaped = true,
            '"' => return (value, start + offset + 1),
            _ => value.push(character),
        }
    }
    (value, header.len())
}

/// What a host asked for the last time it challenged us.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum HostAuthScheme {
    Basic,
    Bearer { realm: Url, service: Option<String> },
}

/// Picks the scheme to use from a `WWW-Authenticate` header: Bearer (with a valid realm URL) over Basic.
pub(crate) fn choose_scheme(header: &str, request_url: &Url) -> Option<HostAuthScheme> {
    let challenges = parse_challenges(header);
    let bearer = challenges.iter().find_map(|challenge| {
        if challenge.scheme != "bearer" {
            return None;
        }
        let realm = request_url.join(challenge.params.get("realm")?).ok()?;
        if !matches!(realm.scheme(), "http" | "https") {
            return None;
        }
        Some(HostAuthScheme::Bearer {
            realm,
            service: challenge.params.get("service").cloned(),
        })
    });
    bearer.or_else(|| {
        challenges
            .iter()
            .any(|challenge| challenge.scheme == "basic")
            .then_some(HostAuthScheme::Basic)
    })
}

/// A token and when to stop using it. `Debug` redacts the token.
#[derive(Clone)]
pub(crate) struct CachedToken {
    pub token: String,
    pub expires_at: Instant,
}

impl std::fmt::Debug for CachedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CachedToken")
            .field("token", &"<redacted>")
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

impl CachedToken {
    pub fn is_fresh(&self, now: Instant) -> bool {
        now < self.expires_at
    }
}

/// A token slot per (host, scope); its async mutex makes concurrent requests share one token fetch.
type TokenSlot = Arc<tokio::sync::Mutex<Option<CachedToken>>>;

/// Authentication state shared by all endpoints of one client.
#[derive(Debug, Default)]
pub(crate) struct AuthState {
    host_schemes: Mutex<HashMap<String, HostAuthScheme>>,
    tokens: Mutex<HashMap<(String, String), TokenSlot>>,
}

impl AuthState {
    pub fn host_scheme(&self, host: &str) -> Option<HostAuthScheme> {
        lock(&self.host_schemes).get(host).cloned()
    }

    pub fn remember_host_scheme(&self, host: &str, scheme: HostAuthScheme) {
        lock(&self.host_schemes).insert(host.to_owned(), scheme);
    }

    pub fn token_slot(&self, host: &str, scope: &str) -> TokenSlot {
        lock(&self.tokens)
            .entry((host.to_owned(), scope.to_owned()))
            .or_default()
            .clone()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // The maps stay consistent even if a holder panicked: every update is a single insert.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[derive(Deserialize)]
struct TokenResponse {
    #[serde(default)]
    token: Option<String>,
    #[serde(default)]
    access_token: Option<String>,
    #[serde(default)]
    expires_in: Option<i64>,
}

/// Reads a token service answer: the token (`token`, else `access_token`) and how long to use it
/// (`expires_in`, else the JWT `exp`, else five minutes), shortened by a safety margin.
pub(crate) fn parse_token_response(
    body: &[u8],
    now: SystemTime,
) -> Result<(String, Duration), OciError> {
    let response: TokenResponse = serde_json::from_slice(body).map_err(|_| {
        OciError::protocol("token service answered with something that is not a token response")
    })?;
    let token = response
        .token
        .filter(|token| !token.is_empty())
        .or(response.access_token.filter(|token| !token.is_empty()))
        .ok_or_else(|| OciError::protocol("token service answer holds no token"))?;
    let lifetime = response
        .expires_in
        .filter(|seconds| *seconds > 0)
        .map(|seconds| Duration::from_secs(seconds.unsigned_abs()))
        .or_else(|| jwt_remaining_lifetime(&token, now))
        .unwrap_or(DEFAULT_TOKEN_LIFETIME);
    let margin = TOKEN_EXPIRY_MARGIN.min(lifetime / 10);
    Ok((token, lifetime - margin))
}

/// Time left until a JWT's `exp` claim, if the token is a JWT with one in the future.
fn jwt_remaining_lifetime(token: &str, now: SystemTime) -> Option<Duration> {
    #[derive(Deserialize)]
    struct Claims {
        exp: Option<f64>,
    }
    let payload = token.split('.').nth(1)?;
    let decoded = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    let exp = serde_json::from_slice::<Claims>(&decoded).ok()?.exp?;
    if !exp.is_finite() || exp <= 0.0 {
        return None;
    }
    let expires = SystemTime::UNIX_EPOCH + Duration::from_secs_f64(exp);
    expires
        .duration_since(now)
        .ok()
        .filter(|left| !left.is_zero())
}

/// The token scope for a repository: `repository:<name>:pull` or `repository:<name>:pull,push`.
pub(crate) fn repository_scope(repository: &str, push: bool) -> String {
    if push {
        format!("repository:{repository}:pull,push")
    } else {
        format!("repository:{repository}:pull")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_bearer_challenge_with_commas_in_quotes() {
        let challenges = parse_challenges(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:samalba/my-app:pull,push""#,
        );
        assert_eq!(challenges.len(), 1);
        assert_eq!(challenges[0].scheme, "bearer");
        assert_eq!(
            challenges[0].params["realm"],
            "https://auth.docker.io/token"
        );
        assert_eq!(challenges[0].params["service"], "registry.docker.io");
        assert_eq!(
            challenges[0].params["scope"],
            "repository:samalba/my-app:pull,push"
        );
    }

    #[test]
    fn parses_several_challenges_unquoted_values_and_escapes() {
        let challenges = parse_challenges(
            r#"Basic realm="Registry \"R\"", BEARER Realm=https://r.example/token , service = svc"#,
        );
        assert_eq!(challenges.len(), 2);
        assert_eq!(challenges[0].scheme, "basic");
        assert_eq!(challenges[0].params["realm"], r#"Registry "R""#);
        assert_eq!(challenges[1].scheme, "bearer");
        assert_eq!(challenges[1].params["realm"], "https://r.example/token");
        assert_eq!(challenges[1].params["service"], "svc");
    }

    #[test]
    fn chooses_bearer_over_basic_and_resolves_relative_realms() {
        let url = Url::parse("http://127.0.0.1:5000/v2/a/manifests/1").unwrap();
        let scheme = choose_scheme(
            r#"Basic realm="x", Bearer realm="/token",service="s""#,
            &url,
        );
        assert_eq!(
            scheme,
            Some(HostAuthScheme::Bearer {
                realm: Url::parse("http://127.0.0.1:5000/token").unwrap(),
                service: Some("s".to_owned()),
            })
        );
        assert_eq!(
            choose_scheme(r#"Basic realm="Registry Realm""#, &url),
            Some(HostAuthScheme::Basic)
        );
        assert_eq!(choose_scheme("Negotiate", &url), None);
        assert_eq!(choose_scheme("", &url), None);
        // A realm that is no HTTP URL is not followed; Basic is the fallback.
        assert_eq!(
            choose_scheme(r#"Bearer realm="file:///etc/passwd""#, &url),
            None
        );
    }

    #[test]
    fn token_response_variants() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let (token, lifetime) =
            parse_token_response(br#"{"token":"t1","expires_in":60}"#, now).unwrap();
        assert_eq!(token, "t1");
        assert_eq!(lifetime, Duration::from_secs(54));
        let (token, lifetime) =
            parse_token_response(br#"{"access_token":"t2","expires_in":3600}"#, now).unwrap();
        assert_eq!(token, "t2");
        assert_eq!(lifetime, Duration::from_secs(3590));
        let (_, lifetime) = parse_token_response(br#"{"token":"t3"}"#, now).unwrap();
        assert_eq!(lifetime, Duration::from_secs(290));
        assert!(parse_token_response(br#"{"token":""}"#, now).is_err());
        assert!(parse_token_response(b"<html>", now).is_err());
    }

    #[test]
    fn token_lifetime_from_jwt_exp() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let claims = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(br#"{"sub":"x","exp":1000120}"#);
        let jwt = format!("eyJhbGciOiJub25lIn0.{claims}.sig");
        let body = serde_json::to_vec(&serde_json::json!({ "token": jwt })).unwrap();
        let (_, lifetime) = parse_token_response(&body, now).unwrap();
        assert_eq!(lifetime, Duration::from_secs(110));
    }

    #[test]
    fn debug_redacts_secrets() {
        let credentials = Credentials::new("alice", "s3cret");
        let printed = format!("{credentials:?}");
        assert!(printed.contains("alice") && !printed.contains("s3cret"));
        let token = CachedToken {
            token: "tok-secret".to_owned(),
            expires_at: Instant::now(),
        };
        assert!(!format!("{token:?}").contains("tok-secret"));
        assert!(credentials.basic_header().is_sensitive());
    }

    #[test]
    fn scopes() {
        assert_eq!(repository_scope("a/b", false), "repository:a/b:pull");
        assert_eq!(repository_scope("a/b", true), "repository:a/b:pull,push");
    }
}
