//! Authentication and roles: static bearer tokens (admins), externally signed JWTs (HS256 or
//! RS256) whose roles claim grants odg's roles, and session tokens odg issued at login
//! (`session.rs`), whose roles are RBAC roles checked against the route and method (`rbac.rs`).
//! A token comes as `Authorization: Bearer` or, failing that, the `bearer_token` cookie.
//!
//! With nothing configured, every state-changing route answers 401: there is no open default.
//! Tokens are compared as SHA-256 digests, so the comparison time says nothing about the token,
//! and neither tokens nor their digests are ever logged.

use axum::http::{header, HeaderMap, StatusCode};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::Value;
use sha2::{Digest, Sha256};

use std::sync::Arc;

use crate::rbac::{Rbac, RbacConfig};
use crate::session::{cookie_value, LoginConfig, Sessions, SESSION_COOKIE};
use crate::ApiError;

/// Grants every role.
pub const ROLE_ADMIN: &str = "admin";
/// May invalidate cache entries (`DELETE /cache`).
pub const ROLE_CACHE_ADMIN: &str = "cache-admin";
/// May write and delete artefact metadata (`PUT`/`DELETE /artefacts/metadata`).
pub const ROLE_METADATA_WRITER: &str = "metadata-writer";
/// May create, change, delete and claim backlog items (`/service-extensions/backlog-items`).
pub const ROLE_BACKLOG_WRITER: &str = "backlog-writer";
/// The original's built-in `writer` role: may store and delete blobs (`POST`/`DELETE /blob`),
/// as its `write-all` permission allows it.
pub const ROLE_WRITER: &str = "writer";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JwtAlgorithm {
    Hs256,
    Rs256,
}

#[derive(Debug, Clone)]
pub struct JwtConfig {
    pub algorithm: JwtAlgorithm,
    /// The HS256 secret, or the RS256 public key in PEM.
    pub key: String,
    /// The claim holding the roles: a list of strings or one space-separated string.
    pub roles_claim: String,
    pub issuer: Option<String>,
    pub audience: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct AuthConfig {
    /// Bearer tokens with every role.
    pub admin_tokens: Vec<String>,
    pub jwt: Option<JwtConfig>,
    /// Login (`/auth`) and the session tokens odg issues.
    pub login: Option<LoginConfig>,
}

/// Who made a request, once authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub subject: String,
    pub roles: Vec<String>,
    /// A session token odg issued: its roles are RBAC roles, checked per route and method.
    pub session: bool,
}

impl Principal {
    pub fn has_role(&self, role: &str) -> bool {
        self.roles
            .iter()
            .any(|held| held == role || held == ROLE_ADMIN)
    }
}

#[derive(Clone)]
pub struct Authenticator {
    admin_token_digests: Vec<[u8; 32]>,
    jwt: Option<(DecodingKey, Validation, String)>,
    sessions: Option<Arc<Sessions>>,
    /// The login's RBAC, or the built-in roles without login.
    rbac: Arc<Rbac>,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator")
            .field("admin_tokens", &self.admin_token_digests.len())
            .field("jwt", &self.jwt.is_some())
            .field("sessions", &self.sessions)
            .finish()
    }
}

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

fn unauthorized(message: &str) -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, message)
}

impl Authenticator {
    pub fn new(config: &AuthConfig) -> Result<Authenticator, String> {
        let admin_token_digests = config
            .admin_tokens
            .iter()
            .map(|token| token.trim())
            .filter(|token| !token.is_empty())
            .map(digest)
            .collect();
        let jwt = match &config.jwt {
            None => None,
            Some(jwt) => {
                let (key, algorithm) = match jwt.algorithm {
                    JwtAlgorithm::Hs256 => {
                        if jwt.key.len() < 32 {
                            return Err("the HS256 JWT secret must have at least 32 bytes".into());
                        }
                        (
                            DecodingKey::from_secret(jwt.key.as_bytes()),
                            Algorithm::HS256,
                        )
                    }
                    JwtAlgorithm::Rs256 => (
                        DecodingKey::from_rsa_pem(jwt.key.as_bytes()).map_err(|error| {
                            format!("the RS256 public key is not a PEM RSA key: {error}")
                        })?,
                        Algorithm::RS256,
                    ),
                };
                let mut validation = Validation::new(algorithm);
                validation.leeway = 30;
                match &jwt.issuer {
                    Some(issuer) => validation.set_issuer(&[issuer]),
                    None => validation.iss = None,
                }
                match &jwt.audience {
                    Some(audience) => validation.set_audience(&[audience]),
                    None => validation.validate_aud = false,
                }
                Some((key, validation, jwt.roles_claim.clone()))
            }
        };
        let sessions = config
            .login
            .as_ref()
            .map(Sessions::new)
            .transpose()?
            .map(Arc::new);
        let rbac = match &sessions {
            Some(sessions) => Arc::new(sessions.rbac.clone()),
            None => Arc::new(Rbac::new(&RbacConfig::default())?),
        };
        Ok(Authenticator {
            admin_token_digests,
            jwt,
            sessions,
            rbac,
        })
    }

    pub(crate) fn sessions(&self) -> Option<&Sessions> {
        self.sessions.as_deref()
    }

    pub(crate) fn rbac(&self) -> &Rbac {
        &self.rbac
    }

    /// The caller, if it presented a token (`None` if not): 401 for a token that does not verify.
    pub fn authenticate(&self, headers: &HeaderMap) -> Result<Option<Principal>, ApiError> {
        let token = match headers.get(header::AUTHORIZATION) {
            Some(value) => Some(
                value
                    .to_str()
                    .ok()
                    .and_then(|value| {
                        let (scheme, token) = value.trim().split_once(' ')?;
                        scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
                    })
                    .filter(|token| !token.is_empty())
                    .ok_or_else(|| {
                        unauthorized(
                            "malformed Authorization header (Authorization: Bearer <token>)",
                        )
                    })?
                    .to_string(),
            ),
            None => cookie_value(headers, SESSION_COOKIE),
        };
        let Some(token) = token else {
            return Ok(None);
        };
        self.principal_of(&token).map(Some)
    }

    fn principal_of(&self, token: &str) -> Result<Principal, ApiError> {
        if self.admin_token_digests.contains(&digest(token)) {
            return Ok(Principal {
                subject: "admin-token".into(),
                roles: vec![ROLE_ADMIN.into()],
                session: false,
            });
        }
        if let Some(sessions) = &self.sessions {
            let kid = jsonwebtoken::decode_header(token)
                .ok()
                .and_then(|header| header.kid);
            if let Some(kid) = kid.filter(|kid| sessions.knows_key(kid)) {
                let claims = sessions.verify(token, &kid)?;
                return Ok(Principal {
                    subject: claims.subject,
                    roles: claims.roles,
                    session: true,
                });
            }
        }
        let Some((key, validation, roles_claim)) = &self.jwt else {
            return Err(unauthorized("invalid token"));
        };
        let claims = jsonwebtoken::decode::<serde_json::Map<String, Value>>(token, key, validation)
            .map_err(|_| unauthorized("invalid or expired token"))?
            .claims;
        let roles = match claims.get(roles_claim) {
            Some(Value::Array(items)) => items
                .iter()
                .filter_map(|item| item.as_str().map(str::to_string))
                .collect(),
            Some(Value::String(text)) => text.split_whitespace().map(str::to_string).collect(),
            _ => Vec::new(),
        };
        let subject = claims
            .get("sub")
            .and_then(Value::as_str)
            .unwrap_or("jwt")
            .to_string();
        Ok(Principal {
            subject,
            roles,
            session: false,
        })
    }

    /// Whether `principal` may use `method` on `path`: session tokens by RBAC, the others by
    /// odg's `role`.
    fn permits(&self, principal: &Principal, method: &str, path: &str, role: &str) -> bool {
        if principal.session {
            self.rbac.allows(&principal.roles, method, path)
        } else {
            principal.has_role(role)
        }
    }

    /// Whether users can log in (`/auth`): the `authentication` feature.
    pub fn login_available(&self) -> bool {
        self.sessions.is_some()
    }

    /// The caller, if its credentials allow `method` on `path` (session tokens, by RBAC) or hold
    /// `role` (admin tokens and external JWTs): 401 without valid credentials, 403 without the grant.
    pub fn authorize(
        &self,
        headers: &HeaderMap,
        method: &str,
        path: &str,
        role: &str,
    ) -> Result<Principal, ApiError> {
        if self.admin_token_digests.is_empty() && self.jwt.is_none() && self.sessions.is_none() {
            return Err(unauthorized(
                "this route needs authentication, and no admin token, JWT key or login is configured",
            ));
        }
        let principal = self.authenticate(headers)?.ok_or_else(|| {
            unauthorized(
                "missing bearer token (Authorization: Bearer <token> or the bearer_token cookie)",
            )
        })?;
        if self.permits(&principal, method, path, role) {
            Ok(principal)
        } else if principal.session {
            Err(ApiError::new(
                StatusCode::FORBIDDEN,
                format!("your roles do not allow {method} {path}"),
            ))
        } else {
            Err(ApiError::new(
                StatusCode::FORBIDDEN,
                format!("this route needs the role {role}"),
            ))
        }
    }

    /// For reads: with a login that requires it, a session (allowed by RBAC) or any other valid
    /// credential; otherwise open.
    pub(crate) fn authorize_read(
        &self,
        headers: &HeaderMap,
        method: &str,
        path: &str,
    ) -> Result<(), ApiError> {
        let Some(sessions) = &self.sessions else {
            return Ok(());
        };
        if !sessions.require_for_reads {
            return Ok(());
        }
        let principal = self.authenticate(headers)?.ok_or_else(|| {
            unauthorized(
                "log in first (/auth), then send the session token as bearer token or cookie",
            )
        })?;
        if !principal.session || self.rbac.allows(&principal.roles, method, path) {
            Ok(())
        } else {
            Err(ApiError::new(
                StatusCode::FORBIDDEN,
                format!("your roles do not allow {method} {path}"),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;
    use jsonwebtoken::{encode, EncodingKey, Header};
    use odg_test_support::jwt::{OTHER_RSA_PRIVATE_KEY, TEST_RSA_PRIVATE_KEY, TEST_RSA_PUBLIC_KEY};
    use serde_json::json;

    use super::*;

    fn rs256_authenticator() -> Authenticator {
        Authenticator::new(&AuthConfig {
            jwt: Some(JwtConfig {
                algorithm: JwtAlgorithm::Rs256,
                key: TEST_RSA_PUBLIC_KEY.into(),
                roles_claim: "roles".into(),
                issuer: Some("https://issuer.example.org".into()),
                audience: Some("odg".into()),
            }),
            ..AuthConfig::default()
        })
        .unwrap()
    }

    fn now() -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
    }

    fn claims(roles: Value, expires_in: i64) -> Value {
        json!({
            "sub": "scanner",
            "iss": "https://issuer.example.org",
            "aud": "odg",
            "exp": (now() as i64 + expires_in),
            "roles": roles,
        })
    }

    fn rs256(private_pem: &str, claims: &Value) -> String {
        let key = EncodingKey::from_rsa_pem(private_pem.as_bytes()).unwrap();
        encode(&Header::new(Algorithm::RS256), claims, &key).unwrap()
    }

    fn bearer(token: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_str(&format!("Bearer {token}")).unwrap(),
        );
        headers
    }

    #[test]
    fn an_rs256_token_signed_by_the_configured_key_grants_its_roles() {
        let auth = rs256_authenticator();
        let token = rs256(
            TEST_RSA_PRIVATE_KEY,
            &claims(json!(["metadata-writer"]), 60),
        );
        let principal = auth.authenticate(&bearer(&token)).unwrap().unwrap();
        assert_eq!(principal.subject, "scanner");
        assert!(principal.has_role(ROLE_METADATA_WRITER));
        assert!(!principal.has_role(ROLE_CACHE_ADMIN));
        // a space-separated string works as well as a list
        let token = rs256(
            TEST_RSA_PRIVATE_KEY,
            &claims(json!("cache-admin other"), 60),
        );
        let principal = auth.authenticate(&bearer(&token)).unwrap().unwrap();
        assert!(principal.has_role(ROLE_CACHE_ADMIN));
    }

    #[test]
    fn rs256_tokens_that_must_not_verify_are_401() {
        let auth = rs256_authenticator();
        let refused = |token: String, why: &str| {
            let error = auth.authenticate(&bearer(&token)).unwrap_err();
            assert_eq!(error.status(), StatusCode::UNAUTHORIZED, "{why}");
        };
        refused(
            rs256(OTHER_RSA_PRIVATE_KEY, &claims(json!(["admin"]), 60)),
            "signed by another key",
        );
        refused(
            rs256(TEST_RSA_PRIVATE_KEY, &claims(json!(["admin"]), -120)),
            "expired (beyond the leeway)",
        );
        let mut foreign = claims(json!(["admin"]), 60);
        foreign["iss"] = json!("https://elsewhere.example.org");
        refused(rs256(TEST_RSA_PRIVATE_KEY, &foreign), "another issuer");
        let mut other_audience = claims(json!(["admin"]), 60);
        other_audience["aud"] = json!("someone-else");
        refused(
            rs256(TEST_RSA_PRIVATE_KEY, &other_audience),
            "another audience",
        );
        // algorithm confusion: an HS256 token whose secret is the public key must not pass
        let confused = encode(
            &Header::new(Algorithm::HS256),
            &claims(json!(["admin"]), 60),
            &EncodingKey::from_secret(TEST_RSA_PUBLIC_KEY.as_bytes()),
        )
        .unwrap();
        refused(confused, "HS256 with the public key as secret");
        // alg none
        let unsigned = format!(
            "{}.{}.",
            base64::Engine::encode(
                &base64::engine::general_purpose::URL_SAFE_NO_PAD,
                br#"{"alg":"none","typ":"JWT"}"#
            ),
            base64::Engine::encode(
                &base64::engine::general_purpose::URL_SAFE_NO_PAD,
                claims(json!(["admin"]), 60).to_string()
            )
        );
        refused(unsigned, "alg none");
    }

    #[test]
    fn a_public_key_that_is_not_pem_is_refused_at_start() {
        let error = Authenticator::new(&AuthConfig {
            jwt: Some(JwtConfig {
                algorithm: JwtAlgorithm::Rs256,
                key: "not a key".into(),
                roles_claim: "roles".into(),
                issuer: None,
                audience: None,
            }),
            ..AuthConfig::default()
        })
        .err()
        .unwrap();
        assert!(error.contains("RS256"), "{error}");
    }
}
