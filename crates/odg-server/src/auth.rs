//! Authentication and roles for routes that change state: static bearer tokens (admins) and JWTs
//! (HS256 or RS256) whose roles claim grants roles.
//!
//! With nothing configured, every state-changing route answers 401: there is no open default.
//! Tokens are compared as SHA-256 digests, so the comparison time says nothing about the token,
//! and neither tokens nor their digests are ever logged.

use axum::http::{header, HeaderMap, StatusCode};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::ApiError;

/// Grants every role.
pub const ROLE_ADMIN: &str = "admin";
/// May invalidate cache entries (`DELETE /cache`).
pub const ROLE_CACHE_ADMIN: &str = "cache-admin";
/// May write and delete artefact metadata (`PUT`/`DELETE /artefacts/metadata`).
pub const ROLE_METADATA_WRITER: &str = "metadata-writer";

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
}

/// Who made a request, once authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub subject: String,
    pub roles: Vec<String>,
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
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator")
            .field("admin_tokens", &self.admin_token_digests.len())
            .field("jwt", &self.jwt.is_some())
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
        Ok(Authenticator {
            admin_token_digests,
            jwt,
        })
    }

    /// Whether users can log in (`/auth`): the `authentication` feature.
    pub fn login_available(&self) -> bool {
        false
    }

    /// The caller, if its bearer credentials hold `role`: 401 without valid credentials, 403 without the role.
    pub fn authorize(&self, headers: &HeaderMap, role: &str) -> Result<Principal, ApiError> {
        if self.admin_token_digests.is_empty() && self.jwt.is_none() {
            return Err(unauthorized(
                "this route needs authentication, and no admin token or JWT key is configured",
            ));
        }
        let token = headers
            .get(header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| {
                let (scheme, token) = value.trim().split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
            })
            .filter(|token| !token.is_empty())
            .ok_or_else(|| unauthorized("missing bearer token (Authorization: Bearer <token>)"))?;

        let principal = if self.admin_token_digests.contains(&digest(token)) {
            Principal {
                subject: "admin-token".into(),
                roles: vec![ROLE_ADMIN.into()],
            }
        } else if let Some((key, validation, roles_claim)) = &self.jwt {
            let claims =
                jsonwebtoken::decode::<serde_json::Map<String, Value>>(token, key, validation)
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
            Principal { subject, roles }
        } else {
            return Err(unauthorized("invalid token"));
        };
        if principal.has_role(role) {
            Ok(principal)
        } else {
            Err(ApiError::new(
                StatusCode::FORBIDDEN,
                format!("this route needs the role {role}"),
            ))
        }
    }
}
