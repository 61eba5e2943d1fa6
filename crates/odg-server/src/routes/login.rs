//! The original's login routes: `/auth/configs`, `/auth` (GitHub OAuth code or GitHub token),
//! `/auth/refresh`, `/auth/logout`, `/auth/user`, `/auth/rbac`, and the OpenID discovery
//! document and key set odg's session tokens verify with.

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use odg_delivery_db::{DeliveryDb, RefreshToken, Rotation};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::params::Params;
use crate::routes::metadata::compliance;
use crate::session::{
    cookie_value, now_seconds, random_uuid, role_names, GithubIdentity, Sessions, REFRESH_COOKIE,
};
use crate::{ApiError, AppState};

/// The original's answer when authentication is not configured (`odg_client` then goes on
/// without logging in).
fn feature_inactive() -> ApiError {
    ApiError::feature_inactive(&["authentication"])
}

fn sessions(state: &AppState) -> Result<&Sessions, ApiError> {
    state.auth.sessions().ok_or_else(feature_inactive)
}

fn db(state: &AppState) -> Result<&DeliveryDb, ApiError> {
    Ok(compliance(state)?.db())
}

/// `GET /auth/configs`: the configured GitHubs (no secrets).
pub async fn configs(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let sessions = sessions(&state)?;
    let configs: Vec<Value> = sessions
        .github
        .iter()
        .map(|provider| {
            let encode = |pairs: &[(&str, &str)]| {
                url::form_urlencoded::Serializer::new(String::new())
                    .extend_pairs(pairs)
                    .finish()
            };
            let redirect_uri = format!(
                "{}/auth?{}",
                sessions.issuer,
                encode(&[("client_id", &provider.config.client_id)])
            );
            let oauth_url_with_redirect = format!(
                "{}?{}",
                provider.oauth_url.trim_end_matches('?'),
                encode(&[
                    ("client_id", &provider.config.client_id),
                    ("redirect_uri", &redirect_uri),
                ])
            );
            json!({
                "name": provider.config.name,
                "github_host": provider.host,
                "api_url": provider.config.api_url,
                "oauth_url": provider.oauth_url,
                "client_id": provider.config.client_id,
                "redirect_uri": redirect_uri,
                "oauth_url_with_redirect": oauth_url_with_redirect,
            })
        })
        .collect();
    Ok(Json(Value::Array(configs)))
}

#[derive(Debug, Deserialize)]
pub struct LoginParams {
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    client_id: Option<String>,
    #[serde(default)]
    access_token: Option<String>,
    #[serde(default)]
    api_url: Option<String>,
    /// Default: yes for the OAuth code, no for a GitHub token (the original's rule).
    #[serde(default)]
    use_refresh_token: Option<bool>,
}

/// The session's answer: the claims as body, the token (and refresh token) as cookies.
fn session_response(
    sessions: &Sessions,
    claims: Value,
    token: &str,
    refresh: Option<(&str, &str)>,
) -> Result<Response, ApiError> {
    let mut response = Json(claims).into_response();
    let headers = response.headers_mut();
    headers.append(header::SET_COOKIE, sessions.session_cookie(token)?);
    if let Some((user_id, identifier)) = refresh {
        headers.append(
            header::SET_COOKIE,
            sessions.refresh_cookie(user_id, identifier)?,
        );
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

/// Issues a session (and, if asked, a refresh token stored with the user) for `user_id`.
async fn start_session(
    sessions: &Sessions,
    db: &DeliveryDb,
    user_id: &str,
    roles: &[String],
    use_refresh_token: bool,
) -> Result<Response, ApiError> {
    let refresh = if use_refresh_token {
        let identifier = random_uuid();
        let token = RefreshToken {
            identifier: identifier.clone(),
            exp: sessions.refresh_expiry(),
        };
        match db
            .rotate_refresh_token(user_id, None, Some(token), now_seconds())
            .await?
        {
            Rotation::Done(_) => Some(identifier),
            Rotation::NoSuchUser | Rotation::UnknownToken => {
                return Err(ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    "the user is not known",
                ))
            }
        }
    } else {
        None
    };
    let (claims, token) = sessions.issue(user_id, roles)?;
    session_response(
        sessions,
        claims,
        &token,
        refresh.as_deref().map(|identifier| (user_id, identifier)),
    )
}

/// `GET /auth`: logs in with `code` + `client_id` (OAuth) or `access_token` + `api_url` (a GitHub
/// token), only against configured GitHubs.
pub async fn login(
    State(state): State<AppState>,
    Params(params): Params<LoginParams>,
) -> Result<Response, ApiError> {
    let sessions = sessions(&state)?;
    let db = db(&state)?;
    let (provider, token) = match (
        &params.access_token,
        &params.api_url,
        &params.code,
        &params.client_id,
    ) {
        (Some(token), Some(api_url), _, _) => {
            let provider = sessions.provider_by_api_url(api_url).ok_or_else(|| {
                ApiError::bad_request(format!("no GitHub is configured for the api_url {api_url}"))
                    .with(
                        "available_api_urls",
                        json!(sessions
                            .github
                            .iter()
                            .map(|p| &p.config.api_url)
                            .collect::<Vec<_>>()),
                    )
            })?;
            (provider, token.clone())
        }
        (_, _, Some(code), Some(client_id)) => {
            let provider = sessions.provider_by_client_id(client_id).ok_or_else(|| {
                ApiError::bad_request(format!(
                    "no GitHub is configured for the client_id {client_id}"
                ))
            })?;
            (provider, sessions.exchange_code(provider, code).await?)
        }
        _ => {
            return Err(ApiError::bad_request(
                "give either code and client_id, or access_token and api_url",
            ))
        }
    };
    let (identity, bindings) = sessions.github_identity(provider, &token).await?;
    let roles = role_names(&bindings);
    if roles.is_empty() {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "no role is bound to you on this service",
        ));
    }
    let user_id = db
        .upsert_user(
            &random_uuid(),
            GithubIdentity::idp_type(),
            &identity.normalised_digest(),
            &identity.to_json(),
            &bindings,
        )
        .await?;
    tracing::info!(user = %user_id, github = %provider.host, roles = ?roles, "login");
    let use_refresh_token = params
        .use_refresh_token
        .unwrap_or(params.access_token.is_none());
    start_session(sessions, db, &user_id, &roles, use_refresh_token).await
}

fn refresh_cookie(headers: &HeaderMap) -> Option<(String, String)> {
    let value = cookie_value(headers, REFRESH_COOKIE)?;
    let (user_id, identifier) = value.split_once('|')?;
    Some((user_id.to_string(), identifier.to_string()))
}

/// `POST /auth/refresh`: a new session and a new refresh token for the refresh-token cookie,
/// which is used up (a second use is refused).
pub async fn refresh(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let sessions = sessions(&state)?;
    let db = db(&state)?;
    let (user_id, old) = refresh_cookie(&headers)
        .ok_or_else(|| ApiError::new(StatusCode::UNAUTHORIZED, "send the refresh_token cookie"))?;
    let identifier = random_uuid();
    let new = RefreshToken {
        identifier: identifier.clone(),
        exp: sessions.refresh_expiry(),
    };
    match db
        .rotate_refresh_token(&user_id, Some(&old), Some(new), now_seconds())
        .await?
    {
        Rotation::Done(bindings) => {
            let roles = role_names(&bindings);
            if roles.is_empty() {
                return Err(ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    "no role is bound to you on this service",
                ));
            }
            let (claims, token) = sessions.issue(&user_id, &roles)?;
            session_response(sessions, claims, &token, Some((&user_id, &identifier)))
        }
        Rotation::NoSuchUser | Rotation::UnknownToken => Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "the refresh token is not valid",
        )),
    }
}

/// `GET /auth/logout`: clears both cookies and revokes the refresh token.
pub async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let sessions = sessions(&state)?;
    if let Some((user_id, old)) = refresh_cookie(&headers) {
        let db = db(&state)?;
        // An unknown user or token is already logged out.
        db.rotate_refresh_token(&user_id, Some(&old), None, now_seconds())
            .await?;
    }
    let mut response = Json(json!({})).into_response();
    for cookie in sessions.cleared_cookies()? {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    Ok(response)
}

fn permissions_json(state: &AppState, roles: &[String]) -> (Vec<Value>, Vec<Value>) {
    let rbac = state.auth.rbac();
    let roles_json = rbac.roles_named(roles).map(|role| json!(role)).collect();
    let permissions = rbac
        .permissions_of(roles)
        .into_iter()
        .map(|permission| json!(permission))
        .collect();
    (roles_json, permissions)
}

/// `GET /auth/user`: the caller, its identities, roles and permissions.
pub async fn user(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let principal = state
        .auth
        .authenticate(&headers)?
        .ok_or_else(|| ApiError::new(StatusCode::UNAUTHORIZED, "log in first"))?;
    if !principal.session {
        // admin tokens and external JWTs: odg's own roles, no stored user
        return Ok(Json(json!({
            "id": principal.subject,
            "identifiers": [],
            "roles": principal.roles.iter().map(|role| json!({"name": role, "permissions": []})).collect::<Vec<_>>(),
            "permissions": [],
        })));
    }
    let db = db(&state)?;
    let user = db
        .user(&principal.subject)
        .await?
        .ok_or_else(|| ApiError::new(StatusCode::UNAUTHORIZED, "the user is not known"))?;
    let (roles, permissions) = permissions_json(&state, &principal.roles);
    Ok(Json(json!({
        "id": user.id,
        "identifiers": user.identifiers.iter().map(|(kind, identifier)| json!({"type": kind, "identifier": identifier})).collect::<Vec<_>>(),
        "roles": roles,
        "permissions": permissions,
    })))
}

/// `GET /auth/rbac`: every role and permission (as the original), for a logged-in caller.
pub async fn rbac(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    state
        .auth
        .authenticate(&headers)?
        .ok_or_else(|| ApiError::new(StatusCode::UNAUTHORIZED, "log in first"))?;
    Ok(Json(json!(state.auth.rbac())))
}

/// `GET /.well-known/openid-configuration`.
pub async fn openid_configuration(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let sessions = sessions(&state)?;
    Ok(Json(json!({
        "issuer": sessions.issuer,
        "jwks_uri": format!("{}/openid/v1/jwks", sessions.issuer),
        "response_types_supported": ["id_token"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256", "HS256"],
    })))
}

/// `GET /openid/v1/jwks`: the public keys (RS256) session tokens verify with.
pub async fn jwks(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    Ok(Json(sessions(&state)?.jwks()))
}
