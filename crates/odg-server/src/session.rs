//! Login as the original does it: GitHub (OAuth `code` exchange, or a GitHub token) against the
//! configured GitHub / GitHub Enterprise API URLs only; session JWTs signed by odg with the
//! configured key of highest priority (its id in the header's `kid` and, as the original, in the
//! `key_id` claim); refresh tokens in the delivery DB.
//!
//! Secrets (GitHub tokens and codes, client secrets, signing keys, session and refresh tokens)
//! are never logged nor put into error messages.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::Deserialize;
use serde_json::{json, Map, Value};
use sha1::{Digest, Sha1};

use crate::auth::JwtAlgorithm;
use crate::rbac::{Rbac, RbacConfig};
use crate::ApiError;

/// The session cookie (the original's and `odg_client`'s name).
pub const SESSION_COOKIE: &str = "bearer_token";
/// The refresh-token cookie: `<user id>|<token identifier>`, as the original.
pub const REFRESH_COOKIE: &str = "refresh_token";
/// The original's lifetimes: 5 minutes per session token, 183 days per refresh token.
pub const DEFAULT_SESSION_MAX_AGE: Duration = Duration::from_secs(5 * 60);
pub const DEFAULT_REFRESH_MAX_AGE: Duration = Duration::from_secs(183 * 24 * 60 * 60);
/// The only session-token version issued and accepted (the dashboard checks it).
const TOKEN_VERSION: &str = "v2";
/// The identity provider type stored with users.
const IDP_GITHUB: &str = "github";

/// A key odg signs session tokens with.
#[derive(Clone)]
pub struct SigningKeyConfig {
    /// The key id (`kid`).
    pub id: String,
    pub algorithm: JwtAlgorithm,
    /// The HS256 secret, or the RS256 private key in PEM (PKCS#1 or PKCS#8).
    pub private_key: String,
    /// The highest priority signs; the others still verify (rotation).
    pub priority: i64,
}

impl std::fmt::Debug for SigningKeyConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKeyConfig")
            .field("id", &self.id)
            .field("algorithm", &self.algorithm)
            .field("priority", &self.priority)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SubjectType {
    GithubUser,
    GithubOrg,
    GithubTeam,
    GithubApp,
}

/// Who a role binding is for: a user (name a full-match regular expression, as the original),
/// an organisation, a team (`org/team`) or a GitHub App (regular expression).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubjectConfig {
    #[serde(rename = "type")]
    pub kind: SubjectType,
    pub name: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoleBindingConfig {
    pub roles: Vec<String>,
    pub subjects: Vec<SubjectConfig>,
}

/// One GitHub (or GitHub Enterprise) users log in with: the original's `oauth-cfg`.
#[derive(Clone)]
pub struct GithubLoginConfig {
    pub name: String,
    /// e.g. `https://api.github.com` or `https://github.example.org/api/v3`.
    pub api_url: String,
    pub client_id: String,
    pub client_secret: String,
    /// Default: `https://<host without "api.">/login/oauth/authorize`.
    pub oauth_url: Option<String>,
    /// Default: `https://<host without "api.">/login/oauth/access_token`.
    pub token_url: Option<String>,
    pub role_bindings: Vec<RoleBindingConfig>,
}

impl std::fmt::Debug for GithubLoginConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GithubLoginConfig")
            .field("name", &self.name)
            .field("api_url", &self.api_url)
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone)]
pub struct LoginConfig {
    /// This service's base URL: the tokens' `iss`, and where `/auth` redirects to.
    pub issuer: String,
    pub signing_keys: Vec<SigningKeyConfig>,
    pub github: Vec<GithubLoginConfig>,
    pub rbac: RbacConfig,
    /// Whether reads need a session too (the original: yes, once authentication is configured).
    pub require_for_reads: bool,
    pub session_max_age: Duration,
    pub refresh_max_age: Duration,
}

struct SigningKey {
    id: String,
    algorithm: Algorithm,
    encoding: EncodingKey,
    decoding: DecodingKey,
    /// RS256 only: the public key, as published.
    public_jwk: Option<Value>,
    priority: i64,
}

pub(crate) struct GithubProvider {
    pub(crate) config: GithubLoginConfig,
    pub(crate) host: String,
    pub(crate) oauth_url: String,
    pub(crate) token_url: String,
    /// Per role binding, the compiled user/app name patterns.
    patterns: Vec<Vec<Option<regex::Regex>>>,
}

/// The configured login, resolved: keys parsed, patterns compiled.
pub struct Sessions {
    pub(crate) issuer: String,
    keys: Vec<SigningKey>,
    pub(crate) github: Vec<GithubProvider>,
    pub(crate) rbac: Rbac,
    pub(crate) require_for_reads: bool,
    session_max_age: Duration,
    refresh_max_age: Duration,
    http: reqwest::Client,
}

impl std::fmt::Debug for Sessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sessions")
            .field("issuer", &self.issuer)
            .field(
                "keys",
                &self.keys.iter().map(|key| &key.id).collect::<Vec<_>>(),
            )
            .field(
                "github",
                &self
                    .github
                    .iter()
                    .map(|g| &g.config.api_url)
                    .collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

/// The claims of a session token odg issued.
#[derive(Debug, Clone)]
pub struct SessionClaims {
    pub subject: String,
    pub roles: Vec<String>,
}

/// Who logged in at GitHub: the original's `GitHubUserIdentifier` / `GitHubAppIdentifier`.
#[derive(Debug, Clone)]
pub(crate) enum GithubIdentity {
    User {
        username: String,
        email_address: Option<String>,
        hostname: String,
    },
    App {
        app_name: String,
        hostname: String,
    },
}

impl GithubIdentity {
    pub(crate) fn idp_type() -> &'static str {
        IDP_GITHUB
    }

    /// The original's normalised form (Python's `None` spelled as it prints it), SHA-1 in hex.
    pub(crate) fn normalised_digest(&self) -> String {
        let normalised = match self {
            GithubIdentity::User {
                username,
                email_address,
                hostname,
            } => format!(
                "username:{username}_email_address:{}_hostname:{hostname}",
                email_address.as_deref().unwrap_or("None")
            ),
            GithubIdentity::App { app_name, hostname } => {
                format!("app_name:{app_name}_hostname:{hostname}")
            }
        };
        Sha1::digest(normalised.as_bytes())
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect()
    }

    pub(crate) fn to_json(&self) -> Value {
        match self {
            GithubIdentity::User {
                username,
                email_address,
                hostname,
            } => {
                json!({"username": username, "email_address": email_address, "hostname": hostname})
            }
            GithubIdentity::App { app_name, hostname } => {
                json!({"app_name": app_name, "hostname": hostname})
            }
        }
    }
}

/// What GitHub says about the user beyond its name, fetched only when a binding needs it.
#[derive(Debug, Default)]
struct Memberships {
    orgs: Vec<String>,
    /// `(org, slug, name)`
    teams: Vec<(String, String, String)>,
}

fn host_of(url: &str) -> Result<(String, String), String> {
    let parsed = url::Url::parse(url).map_err(|error| format!("{url:?}: {error}"))?;
    let host = parsed
        .host_str()
        .ok_or_else(|| format!("{url:?} has no host"))?
        .to_ascii_lowercase();
    let authority = match parsed.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.clone(),
    };
    Ok((host, format!("{}://{authority}", parsed.scheme())))
}

pub(crate) fn now_seconds() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| {
            i64::try_from(elapsed.as_secs()).unwrap_or(i64::MAX)
        })
}

/// A random UUID (version 4), the form of the original's user ids and token identifiers.
pub(crate) fn random_uuid() -> String {
    let mut bytes: [u8; 16] = rand::random();
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex: String = bytes.iter().map(|byte| format!("{byte:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

fn unauthorized(message: &str) -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, message)
}

impl Sessions {
    pub fn new(config: &LoginConfig) -> Result<Sessions, String> {
        if config.signing_keys.is_empty() {
            return Err("auth.login needs at least one signing key".into());
        }
        if config.github.is_empty() {
            return Err("auth.login needs at least one GitHub configuration".into());
        }
        let issuer = config.issuer.trim_end_matches('/').to_string();
        url::Url::parse(&issuer)
            .map_err(|error| format!("auth.login.issuer {issuer:?}: {error}"))?;
        let mut keys = Vec::new();
        for key in &config.signing_keys {
            if keys.iter().any(|known: &SigningKey| known.id == key.id) {
                return Err(format!("signing key id {:?} is configured twice", key.id));
            }
            let parsed = match key.algorithm {
                JwtAlgorithm::Hs256 => {
                    if key.private_key.len() < 32 {
                        return Err(format!(
                            "signing key {:?}: an HS256 secret must have at least 32 bytes",
                            key.id
                        ));
                    }
                    SigningKey {
                        id: key.id.clone(),
                        algorithm: Algorithm::HS256,
                        encoding: EncodingKey::from_secret(key.private_key.as_bytes()),
                        decoding: DecodingKey::from_secret(key.private_key.as_bytes()),
                        public_jwk: None,
                        priority: key.priority,
                    }
                }
                JwtAlgorithm::Rs256 => {
                    let encoding =
                        EncodingKey::from_rsa_pem(key.private_key.as_bytes()).map_err(|error| {
                            format!(
                                "signing key {:?}: not an RSA private key in PEM: {error}",
                                key.id
                            )
                        })?;
                    let jwk = Jwk::from_encoding_key(&encoding, Algorithm::RS256)
                        .map_err(|error| format!("signing key {:?}: {error}", key.id))?;
                    let decoding = DecodingKey::from_jwk(&jwk)
                        .map_err(|error| format!("signing key {:?}: {error}", key.id))?;
                    let mut public = serde_json::to_value(&jwk)
                        .map_err(|error| format!("signing key {:?}: {error}", key.id))?;
                    if let Value::Object(fields) = &mut public {
                        fields.insert("kid".into(), Value::String(key.id.clone()));
                        fields.insert("use".into(), Value::String("sig".into()));
                    }
                    SigningKey {
                        id: key.id.clone(),
                        algorithm: Algorithm::RS256,
                        encoding,
                        decoding,
                        public_jwk: Some(public),
                        priority: key.priority,
                    }
                }
            };
            keys.push(parsed);
        }
        let mut github = Vec::new();
        for provider in &config.github {
            let api_url = provider.api_url.trim_end_matches('/').to_string();
            let (host, origin) =
                host_of(&api_url).map_err(|error| format!("GitHub api_url {error}"))?;
            let web = match origin.split_once("://api.") {
                Some((scheme, rest)) => format!("{scheme}://{rest}"),
                None => origin.clone(),
            };
            if github
                .iter()
                .any(|known: &GithubProvider| known.config.api_url == api_url)
            {
                return Err(format!("GitHub api_url {api_url:?} is configured twice"));
            }
            let patterns = provider
                .role_bindings
                .iter()
                .map(|binding| {
                    binding
                        .subjects
                        .iter()
                        .map(|subject| match subject.kind {
                            SubjectType::GithubUser | SubjectType::GithubApp => {
                                regex::Regex::new(&format!("^(?:{})$", subject.name))
                                    .map(Some)
                                    .map_err(|error| format!("subject {:?}: {error}", subject.name))
                            }
                            SubjectType::GithubOrg => Ok(None),
                            SubjectType::GithubTeam => {
                                if subject.name.split('/').count() == 2 {
                                    Ok(None)
                                } else {
                                    Err(format!("team subject {:?}: use org/team", subject.name))
                                }
                            }
                        })
                        .collect::<Result<Vec<_>, String>>()
                })
                .collect::<Result<Vec<_>, String>>()?;
            github.push(GithubProvider {
                config: GithubLoginConfig {
                    api_url,
                    ..provider.clone()
                },
                host,
                oauth_url: provider
                    .oauth_url
                    .clone()
                    .unwrap_or_else(|| format!("{web}/login/oauth/authorize")),
                token_url: provider
                    .token_url
                    .clone()
                    .unwrap_or_else(|| format!("{web}/login/oauth/access_token")),
                patterns,
            });
        }
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(15))
            .redirect(reqwest::redirect::Policy::none())
            .user_agent("odg")
            .build()
            .map_err(|error| format!("HTTP client: {error}"))?;
        Ok(Sessions {
            issuer,
            keys,
            github,
            rbac: Rbac::new(&config.rbac)?,
            require_for_reads: config.require_for_reads,
            session_max_age: config.session_max_age,
            refresh_max_age: config.refresh_max_age,
            http,
        })
    }

    fn signing_key(&self) -> Option<&SigningKey> {
        self.keys.iter().max_by_key(|key| key.priority)
    }

    /// Whether `kid` names one of odg's keys (then the token must verify as a session token).
    pub(crate) fn knows_key(&self, kid: &str) -> bool {
        self.keys.iter().any(|key| key.id == kid)
    }

    /// Verifies a session token odg issued (signature by the key its `kid` names, issuer,
    /// expiry, version).
    pub(crate) fn verify(&self, token: &str, kid: &str) -> Result<SessionClaims, ApiError> {
        let key = self
            .keys
            .iter()
            .find(|key| key.id == kid)
            .ok_or_else(|| unauthorized("the token's key id is unknown"))?;
        let mut validation = Validation::new(key.algorithm);
        validation.set_issuer(&[&self.issuer]);
        validation.validate_aud = false;
        validation.leeway = 30;
        validation.set_required_spec_claims(&["exp", "iss", "sub"]);
        let claims = jsonwebtoken::decode::<Map<String, Value>>(token, &key.decoding, &validation)
            .map_err(|_| unauthorized("invalid or expired session token"))?
            .claims;
        if claims.get("version").and_then(Value::as_str) != Some(TOKEN_VERSION) {
            return Err(unauthorized("the session token's version is not v2"));
        }
        let subject = claims
            .get("sub")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let roles = match claims.get("roles") {
            Some(Value::Array(roles)) => roles
                .iter()
                .filter_map(|role| role.as_str().map(str::to_string))
                .collect(),
            _ => Vec::new(),
        };
        Ok(SessionClaims { subject, roles })
    }

    /// A session token for `user_id` with `roles`: its claims (the body `/auth` answers) and the
    /// signed token.
    pub(crate) fn issue(
        &self,
        user_id: &str,
        roles: &[String],
    ) -> Result<(Value, String), ApiError> {
        let key = self
            .signing_key()
            .ok_or_else(|| ApiError::internal("no signing key"))?;
        let now = now_seconds();
        let claims = json!({
            "version": TOKEN_VERSION,
            "iss": self.issuer,
            "iat": now,
            "exp": now + i64::try_from(self.session_max_age.as_secs()).unwrap_or(i64::MAX / 2),
            "key_id": key.id,
            "sub": user_id,
            "roles": roles,
        });
        let mut header = Header::new(key.algorithm);
        header.kid = Some(key.id.clone());
        header.typ = Some("JWT".into());
        let token = jsonwebtoken::encode(&header, &claims, &key.encoding).map_err(|error| {
            tracing::error!(%error, "signing a session token failed");
            ApiError::internal("signing the session token failed")
        })?;
        Ok((claims, token))
    }

    pub(crate) fn refresh_expiry(&self) -> i64 {
        now_seconds() + i64::try_from(self.refresh_max_age.as_secs()).unwrap_or(i64::MAX / 2)
    }

    /// `Set-Cookie` values: HttpOnly, SameSite=Strict (as the original), Secure over https.
    fn cookie(&self, name: &str, value: &str, max_age: Duration) -> Result<HeaderValue, ApiError> {
        let secure = if self.issuer.starts_with("https://") {
            "; Secure"
        } else {
            ""
        };
        HeaderValue::from_str(&format!(
            "{name}={value}; HttpOnly; SameSite=Strict; Path=/; Max-Age={}{secure}",
            max_age.as_secs()
        ))
        .map_err(|_| ApiError::internal("the cookie could not be set"))
    }

    pub(crate) fn session_cookie(&self, token: &str) -> Result<HeaderValue, ApiError> {
        self.cookie(SESSION_COOKIE, token, self.session_max_age)
    }

    pub(crate) fn refresh_cookie(
        &self,
        user_id: &str,
        identifier: &str,
    ) -> Result<HeaderValue, ApiError> {
        self.cookie(
            REFRESH_COOKIE,
            &format!("{user_id}|{identifier}"),
            self.refresh_max_age,
        )
    }

    pub(crate) fn cleared_cookies(&self) -> Result<[HeaderValue; 2], ApiError> {
        Ok([
            self.cookie(SESSION_COOKIE, "", Duration::ZERO)?,
            self.cookie(REFRESH_COOKIE, "", Duration::ZERO)?,
        ])
    }

    /// The RS256 keys as a JWK set (public parts only; HS256 secrets are never published).
    pub(crate) fn jwks(&self) -> Value {
        json!({"keys": self.keys.iter().filter_map(|key| key.public_jwk.clone()).collect::<Vec<_>>()})
    }

    pub(crate) fn provider_by_api_url(&self, api_url: &str) -> Option<&GithubProvider> {
        let api_url = api_url.trim_end_matches('/');
        self.github
            .iter()
            .find(|provider| provider.config.api_url == api_url)
    }

    pub(crate) fn provider_by_client_id(&self, client_id: &str) -> Option<&GithubProvider> {
        self.github
            .iter()
            .find(|provider| provider.config.client_id == client_id)
    }

    /// Exchanges an OAuth `code` for a GitHub token at the provider's token URL.
    pub(crate) async fn exchange_code(
        &self,
        provider: &GithubProvider,
        code: &str,
    ) -> Result<String, ApiError> {
        let response = self
            .http
            .post(&provider.token_url)
            .header(header::ACCEPT, "application/json")
            .form(&[
                ("client_id", provider.config.client_id.as_str()),
                ("client_secret", provider.config.client_secret.as_str()),
                ("code", code),
            ])
            .send()
            .await
            .map_err(|error| github_unreachable(provider, error))?;
        if !response.status().is_success() {
            tracing::warn!(status = %response.status(), github = %provider.host, "GitHub refused the OAuth code exchange");
            return Err(unauthorized("GitHub refused the OAuth code"));
        }
        let body: Value = response.json().await.map_err(|_| {
            ApiError::new(StatusCode::BAD_GATEWAY, "GitHub's token answer is not JSON")
        })?;
        match body.get("access_token").and_then(Value::as_str) {
            Some(token) if !token.is_empty() => Ok(token.to_string()),
            _ => Err(unauthorized("GitHub refused the OAuth code")),
        }
    }

    async fn github_get(
        &self,
        provider: &GithubProvider,
        path: &str,
        authorization: &str,
    ) -> Result<Value, ApiError> {
        let url = format!("{}/{path}", provider.config.api_url);
        let (body, _) = self.github_page(provider, &url, authorization).await?;
        Ok(body)
    }

    /// Every element of a paginated GitHub list (`/user/orgs`, `/user/teams`): pages of 100,
    /// following `Link: <...>; rel="next"`, at most `GITHUB_MAX_PAGES` of them. A next link must
    /// stay under the provider's API URL: the token goes with every page, so a link elsewhere is
    /// refused rather than followed.
    async fn github_get_all(
        &self,
        provider: &GithubProvider,
        path: &str,
        authorization: &str,
    ) -> Result<Vec<Value>, ApiError> {
        let mut url = format!("{}/{path}?per_page=100", provider.config.api_url);
        let mut items = Vec::new();
        for _ in 0..GITHUB_MAX_PAGES {
            let (body, next) = self.github_page(provider, &url, authorization).await?;
            match body {
                Value::Array(page) => items.extend(page),
                _ => {
                    return Err(ApiError::new(
                        StatusCode::BAD_GATEWAY,
                        format!("GitHub's /{path} is not a list"),
                    ))
                }
            }
            let Some(next) = next else {
                return Ok(items);
            };
            if !within_api(&provider.config.api_url, &next) {
                tracing::warn!(github = %provider.host, path, "GitHub's next page points outside its API URL; not followed");
                return Err(ApiError::new(
                    StatusCode::BAD_GATEWAY,
                    format!(
                        "GitHub's /{path} pagination points outside {}",
                        provider.config.api_url
                    ),
                ));
            }
            url = next;
        }
        tracing::warn!(github = %provider.host, path, pages = GITHUB_MAX_PAGES, "GitHub list longer than the pages read; the rest is ignored");
        Ok(items)
    }

    /// One GET of the GitHub API: the JSON body and the `rel="next"` link, if any.
    async fn github_page(
        &self,
        provider: &GithubProvider,
        url: &str,
        authorization: &str,
    ) -> Result<(Value, Option<String>), ApiError> {
        let path = url
            .strip_prefix(provider.config.api_url.as_str())
            .unwrap_or(url)
            .trim_start_matches('/')
            .split('?')
            .next()
            .unwrap_or_default()
            .to_string();
        let response = self
            .http
            .get(url)
            .header(header::AUTHORIZATION, authorization)
            .header(header::ACCEPT, "application/vnd.github+json")
            .send()
            .await
            .map_err(|error| github_unreachable(provider, error))?;
        let status = response.status();
        if status == reqwest::StatusCode::UNAUTHORIZED || status == reqwest::StatusCode::FORBIDDEN {
            return Err(unauthorized("GitHub did not accept the token"));
        }
        if !status.is_success() {
            tracing::warn!(%status, github = %provider.host, path, "GitHub API failed");
            return Err(ApiError::new(
                StatusCode::BAD_GATEWAY,
                format!("GitHub answered {status} to /{path}"),
            ));
        }
        let next = response
            .headers()
            .get_all(header::LINK)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .find_map(next_link);
        let body = response.json().await.map_err(|_| {
            ApiError::new(
                StatusCode::BAD_GATEWAY,
                format!("GitHub's /{path} is not JSON"),
            )
        })?;
        Ok((body, next))
    }

    /// Who the GitHub token belongs to (a JWT, `ey...`, is a GitHub App's, as the original),
    /// and the role bindings it earns at this provider.
    pub(crate) async fn github_identity(
        &self,
        provider: &GithubProvider,
        token: &str,
    ) -> Result<(GithubIdentity, Vec<Value>), ApiError> {
        let hostname = provider.host.clone();
        if token.starts_with("ey") {
            let app = self
                .github_get(provider, "app", &format!("Bearer {token}"))
                .await?;
            let app_name = app
                .get("slug")
                .and_then(Value::as_str)
                .ok_or_else(|| ApiError::new(StatusCode::BAD_GATEWAY, "GitHub's /app has no slug"))?
                .to_string();
            let bindings = self.bindings(
                provider,
                &GithubIdentity::App {
                    app_name: app_name.clone(),
                    hostname: hostname.clone(),
                },
                &Memberships::default(),
            );
            return Ok((GithubIdentity::App { app_name, hostname }, bindings));
        }
        let authorization = format!("token {token}");
        let user = self.github_get(provider, "user", &authorization).await?;
        let username = user
            .get("login")
            .and_then(Value::as_str)
            .ok_or_else(|| ApiError::new(StatusCode::BAD_GATEWAY, "GitHub's /user has no login"))?
            .to_string();
        let identity = GithubIdentity::User {
            username,
            email_address: user
                .get("email")
                .and_then(Value::as_str)
                .map(str::to_string),
            hostname,
        };
        let kinds: Vec<SubjectType> = provider
            .config
            .role_bindings
            .iter()
            .flat_map(|binding| binding.subjects.iter().map(|subject| subject.kind))
            .collect();
        let mut memberships = Memberships::default();
        if kinds.contains(&SubjectType::GithubOrg) {
            let orgs = self
                .github_get_all(provider, "user/orgs", &authorization)
                .await?;
            memberships.orgs = orgs
                .iter()
                .filter_map(|org| org.get("login").and_then(Value::as_str))
                .map(str::to_string)
                .collect();
        }
        if kinds.contains(&SubjectType::GithubTeam) {
            let teams = self
                .github_get_all(provider, "user/teams", &authorization)
                .await?;
            memberships.teams = teams
                .iter()
                .map(|team| {
                    let text = |value: Option<&Value>| {
                        value
                            .and_then(Value::as_str)
                            .unwrap_or_default()
                            .to_string()
                    };
                    (
                        text(team.get("organization").and_then(|org| org.get("login"))),
                        text(team.get("slug")),
                        text(team.get("name")),
                    )
                })
                .collect();
        }
        let bindings = self.bindings(provider, &identity, &memberships);
        Ok((identity, bindings))
    }

    /// The original's role bindings: per configured binding, its first matching subject binds
    /// each of its roles, with the origin (host and the subject) recorded.
    fn bindings(
        &self,
        provider: &GithubProvider,
        identity: &GithubIdentity,
        memberships: &Memberships,
    ) -> Vec<Value> {
        let mut bindings: Vec<Value> = Vec::new();
        for (binding, patterns) in provider.config.role_bindings.iter().zip(&provider.patterns) {
            let matched = binding
                .subjects
                .iter()
                .zip(patterns)
                .find(|(subject, pattern)| match (identity, subject.kind) {
                    (GithubIdentity::User { username, .. }, SubjectType::GithubUser) => pattern
                        .as_ref()
                        .is_some_and(|pattern| pattern.is_match(username)),
                    (GithubIdentity::User { .. }, SubjectType::GithubOrg) => memberships
                        .orgs
                        .iter()
                        .any(|org| org.eq_ignore_ascii_case(&subject.name)),
                    (GithubIdentity::User { .. }, SubjectType::GithubTeam) => {
                        let (org, team) = subject.name.split_once('/').unwrap_or_default();
                        memberships.teams.iter().any(|(team_org, slug, name)| {
                            team_org.eq_ignore_ascii_case(org)
                                && (slug.eq_ignore_ascii_case(team)
                                    || name.eq_ignore_ascii_case(team))
                        })
                    }
                    (GithubIdentity::App { app_name, .. }, SubjectType::GithubApp) => pattern
                        .as_ref()
                        .is_some_and(|pattern| pattern.is_match(app_name)),
                    _ => false,
                });
            let Some((subject, _)) = matched else {
                continue;
            };
            let name = Some(subject.name.clone());
            let (organisation, team, username, app) = match subject.kind {
                SubjectType::GithubOrg => (name, None, None, None),
                SubjectType::GithubTeam => (None, name, None, None),
                SubjectType::GithubUser => (None, None, name, None),
                SubjectType::GithubApp => (None, None, None, name),
            };
            for role in &binding.roles {
                let value = json!({
                    "name": role,
                    "origin": {
                        "type": "github",
                        "hostname": provider.host,
                        "organisation": organisation,
                        "team": team,
                        "username": username,
                        "app": app,
                    },
                });
                if !bindings.contains(&value) {
                    bindings.push(value);
                }
            }
        }
        bindings
    }
}

/// Pages of a GitHub list read at most (100 entries each): memberships beyond 2,000 orgs or
/// teams are ignored rather than costing a login more requests.
const GITHUB_MAX_PAGES: usize = 20;

/// The `rel="next"` target of one `Link` header value (RFC 8288: `<uri>; rel="next", ...`).
fn next_link(header_value: &str) -> Option<String> {
    header_value.split(',').find_map(|link| {
        let (target, params) = link.trim().split_once(';')?;
        let target = target.trim().strip_prefix('<')?.strip_suffix('>')?;
        let is_next = params.split(';').any(|param| {
            param
                .trim()
                .strip_prefix("rel=")
                .map(|rel| {
                    rel.trim_matches('"')
                        .split_whitespace()
                        .any(|r| r == "next")
                })
                .unwrap_or(false)
        });
        is_next.then(|| target.to_string())
    })
}

/// Whether `candidate` lies under the API base URL: same scheme, host and port, and a path below
/// the base's (GitHub Enterprise serves its API under `/api/v3`).
fn within_api(api_url: &str, candidate: &str) -> bool {
    let (Ok(base), Ok(candidate)) = (url::Url::parse(api_url), url::Url::parse(candidate)) else {
        return false;
    };
    let base_path = base.path().trim_end_matches('/');
    base.origin() == candidate.origin()
        && candidate.username().is_empty()
        && candidate.password().is_none()
        && (candidate.path() == base_path
            || candidate
                .path()
                .strip_prefix(base_path)
                .is_some_and(|rest| rest.starts_with('/')))
}

fn github_unreachable(provider: &GithubProvider, error: reqwest::Error) -> ApiError {
    // reqwest's message names the URL, which holds no secret (tokens go in headers and bodies).
    tracing::warn!(github = %provider.host, error = %error.without_url(), "GitHub unreachable");
    ApiError::new(
        StatusCode::BAD_GATEWAY,
        format!("GitHub at {} is unreachable", provider.host),
    )
}

/// The role names of stored role bindings, each once, in order.
pub(crate) fn role_names(bindings: &[Value]) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for name in bindings
        .iter()
        .filter_map(|binding| binding.get("name").and_then(Value::as_str))
    {
        if !names.iter().any(|known| known == name) {
            names.push(name.to_string());
        }
    }
    names
}

/// A cookie's value from the request's `Cookie` headers.
pub(crate) fn cookie_value(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.trim_matches('"').to_string())
        .filter(|value| !value.is_empty())
}

#[cfg(test)]
mod tests {
    use super::{next_link, within_api};

    #[test]
    fn the_next_link_is_found_among_the_others() {
        let github = r#"<https://api.github.com/user/orgs?per_page=100&page=2>; rel="next", <https://api.github.com/user/orgs?per_page=100&page=3>; rel="last""#;
        assert_eq!(
            next_link(github).as_deref(),
            Some("https://api.github.com/user/orgs?per_page=100&page=2")
        );
        let last_page = r#"<https://api.github.com/user/orgs?page=1>; rel="first", <https://api.github.com/user/orgs?page=2>; rel="prev""#;
        assert_eq!(next_link(last_page), None);
        assert_eq!(
            next_link(r#"<https://x/y>; rel="prev next""#).as_deref(),
            Some("https://x/y")
        );
        assert_eq!(next_link("garbage; rel=next"), None);
        assert_eq!(next_link(""), None);
    }

    #[test]
    fn a_next_page_must_stay_under_the_api_url() {
        let api = "https://github.example.org/api/v3";
        assert!(within_api(
            api,
            "https://github.example.org/api/v3/user/orgs?page=2"
        ));
        for elsewhere in [
            "https://evil.example.org/api/v3/user/orgs?page=2",
            "http://github.example.org/api/v3/user/orgs?page=2",
            "https://github.example.org:8443/api/v3/user/orgs",
            "https://github.example.org/api/v3x/user/orgs",
            "https://github.example.org/other/user/orgs",
            "https://github.example.org/api/v3/../../evil",
            "https://user:pw@github.example.org/api/v3/user/orgs",
            "not a url",
        ] {
            assert!(!within_api(api, elsewhere), "{elsewhere}");
        }
        assert!(within_api(
            "https://api.github.com",
            "https://api.github.com/user/teams?page=4"
        ));
    }
}
