//! Login as the original does it, against a fake GitHub on 127.0.0.1: GitHub token and OAuth code
//! logins, the session token as cookie or bearer token, RBAC on writes and reads, refresh-token
//! rotation and logout, the published keys, and the credentials that keep working beside it.

use axum::body::Body;
use axum::http::{header, HeaderMap, Request, StatusCode};
use odg_test_support::{jwt::TEST_RSA_PRIVATE_KEY, FakeGithub, FakeGithubUser};
use serde_json::{json, Value};

use crate::support::{
    metadata_state, test_authenticator_with_login, TestApp, ADMIN_TOKEN, JWT_SECRET,
};

const CLIENT_ID: &str = "fake-client-id";
const CLIENT_SECRET: &str = "fake-client-secret-never-shown";
const HS_SECRET: &str = "an-hs256-session-secret-of-32-bytes-or-more";
const ISSUER: &str = "http://odg.test";

struct LoginApp {
    app: TestApp,
    github: FakeGithub,
    _directory: tempfile::TempDir,
}

async fn login_app() -> LoginApp {
    let github = FakeGithub::start(
        CLIENT_ID,
        CLIENT_SECRET,
        vec![
            FakeGithubUser {
                login: "alice".into(),
                email: Some("alice@example.org".into()),
                token: "gh-token-alice".into(),
                code: Some("code-alice".into()),
                orgs: vec!["acme".into()],
                teams: vec![],
                app_slug: None,
            },
            FakeGithubUser {
                login: "bob".into(),
                token: "gh-token-bob".into(),
                teams: vec![("acme".into(), "readers".into())],
                ..FakeGithubUser::default()
            },
            FakeGithubUser {
                login: "acme-scanner[bot]".into(),
                token: "eyFakeGithubAppJwt".into(),
                app_slug: Some("acme-scanner".into()),
                ..FakeGithubUser::default()
            },
            FakeGithubUser {
                login: "carol".into(),
                token: "gh-token-carol".into(),
                ..FakeGithubUser::default()
            },
            // Member of more orgs and teams than one page holds: the bound ones come late.
            FakeGithubUser {
                login: "dave".into(),
                token: "gh-token-dave".into(),
                orgs: (0..250)
                    .map(|i| {
                        if i == 230 {
                            "acme".into()
                        } else {
                            format!("org-{i}")
                        }
                    })
                    .collect(),
                teams: (0..150)
                    .map(|i| {
                        let slug = if i == 140 {
                            "readers".into()
                        } else {
                            format!("team-{i}")
                        };
                        ("acme".into(), slug)
                    })
                    .collect(),
                ..FakeGithubUser::default()
            },
        ],
    )
    .await;
    let role_bindings: Vec<odg_server::RoleBindingConfig> = serde_yaml_ng::from_str(
        "- {roles: [writer], subjects: [{type: github-org, name: acme}]}\n- {roles: [reader], subjects: [{type: github-team, name: acme/readers}]}\n- {roles: [writer], subjects: [{type: github-app, name: 'acme-.*'}]}\n",
    )
    .unwrap();
    let login = odg_server::LoginConfig {
        issuer: ISSUER.into(),
        signing_keys: vec![
            odg_server::SigningKeyConfig {
                id: "rsa-1".into(),
                algorithm: odg_server::JwtAlgorithm::Rs256,
                private_key: TEST_RSA_PRIVATE_KEY.into(),
                priority: 2,
            },
            odg_server::SigningKeyConfig {
                id: "hs-old".into(),
                algorithm: odg_server::JwtAlgorithm::Hs256,
                private_key: HS_SECRET.into(),
                priority: 1,
            },
        ],
        github: vec![odg_server::GithubLoginConfig {
            name: "Fake GitHub".into(),
            api_url: github.url().to_string(),
            client_id: CLIENT_ID.into(),
            client_secret: CLIENT_SECRET.into(),
            oauth_url: Some(format!("{}/login/oauth/authorize", github.url())),
            token_url: Some(format!("{}/login/oauth/access_token", github.url())),
            role_bindings,
        }],
        rbac: odg_server::RbacConfig::default(),
        require_for_reads: true,
        session_max_age: odg_server::DEFAULT_SESSION_MAX_AGE,
        refresh_max_age: odg_server::DEFAULT_REFRESH_MAX_AGE,
    };
    let auth = test_authenticator_with_login(Some(login));
    let directory = tempfile::tempdir().unwrap();
    let state = metadata_state(directory.path()).await.with_auth(auth);
    LoginApp {
        app: TestApp {
            router: odg_server::router(state),
            cache: None,
            _directory: None,
        },
        github,
        _directory: directory,
    }
}

/// `(name, value, attributes)` of each `Set-Cookie`.
fn set_cookies(headers: &HeaderMap) -> Vec<(String, String, String)> {
    headers
        .get_all(header::SET_COOKIE)
        .iter()
        .map(|value| {
            let text = value.to_str().unwrap();
            let (pair, attributes) = text.split_once(';').unwrap_or((text, ""));
            let (name, value) = pair.split_once('=').unwrap();
            (name.to_string(), value.to_string(), attributes.to_string())
        })
        .collect()
}

fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    set_cookies(headers)
        .into_iter()
        .find(|(cookie, _, _)| cookie == name)
        .map(|(_, value, _)| value)
}

fn request(
    method: &str,
    uri: &str,
    cookie: Option<&str>,
    bearer: Option<&str>,
    body: Value,
) -> Request<Body> {
    let mut builder = Request::builder().method(method).uri(uri);
    if let Some(cookie) = cookie {
        builder = builder.header(header::COOKIE, cookie);
    }
    if let Some(token) = bearer {
        builder = builder.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    builder.body(Body::from(body.to_string())).unwrap()
}

fn finding() -> Value {
    json!({"entries": [{
        "artefact": {"component_name": "example.org/login-test", "component_version": "1.0.0", "artefact_kind": "resource",
                     "artefact": {"artefact_name": "image", "artefact_version": "1.0.0", "artefact_type": "ociImage", "artefact_extra_id": {}}},
        "meta": {"datasource": "bdba", "type": "finding/vulnerability"},
        "data": {"severity": "HIGH", "package_name": "openssl", "package_version": "3.0.7", "base_url": "https://bdba",
                 "report_url": "https://bdba/1", "product_id": 1, "group_id": 2, "cve": "CVE-2023-0286",
                 "cvss_v3_score": 7.4, "cvss": {}, "summary": null},
    }]})
}

fn token_login_uri(github: &FakeGithub, token: &str, refresh: bool) -> String {
    let query = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("access_token", token)
        .append_pair("api_url", github.url())
        .append_pair("use_refresh_token", if refresh { "true" } else { "false" })
        .finish();
    format!("/auth?{query}")
}

#[tokio::test]
async fn token_login_sets_the_cookie_that_writes_metadata_and_refresh_rotates_until_logout() {
    let LoginApp {
        app,
        github,
        _directory,
    } = login_app().await;
    let (status, body) = app.get("/features").await;
    assert_eq!(status, StatusCode::OK);
    let authentication = body["features"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == "authentication")
        .unwrap();
    assert_eq!(authentication["state"], "available");

    // the configs name the GitHub, never its secret
    let (status, _, configs) = app
        .send(request("GET", "/auth/configs", None, None, json!(null)))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(configs[0]["api_url"], github.url());
    assert_eq!(configs[0]["client_id"], CLIENT_ID);
    assert_eq!(configs[0]["github_host"], "127.0.0.1");
    assert_eq!(
        configs[0]["redirect_uri"],
        format!("{ISSUER}/auth?client_id={CLIENT_ID}")
    );
    assert!(!configs.to_string().contains(CLIENT_SECRET));

    // reads need a session once login is configured (the original's rule)
    let (status, _, _) = app
        .send(request(
            "GET",
            "/ocm/component/versions?component_name=x",
            None,
            None,
            json!(null),
        ))
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    let (status, headers, claims) = app
        .send(request(
            "GET",
            &token_login_uri(&github, "gh-token-alice", true),
            None,
            None,
            json!(null),
        ))
        .await;
    assert_eq!(status, StatusCode::OK, "{claims}");
    assert_eq!(claims["version"], "v2");
    assert_eq!(claims["iss"], ISSUER);
    assert_eq!(claims["key_id"], "rsa-1");
    assert_eq!(claims["roles"], json!(["writer"]));
    let cookies = set_cookies(&headers);
    let (_, session, attributes) = cookies
        .iter()
        .find(|(name, _, _)| name == "bearer_token")
        .unwrap();
    assert!(
        attributes.contains("HttpOnly") && attributes.contains("SameSite=Strict"),
        "{attributes}"
    );
    let refresh = cookie(&headers, "refresh_token").unwrap();
    assert!(refresh.starts_with(&format!("{}|", claims["sub"].as_str().unwrap())));
    let session_cookie = format!("bearer_token={session}");

    // the cookie writes metadata (writer: write-all) and reads
    let (status, _, body) = app
        .send(request(
            "PUT",
            "/artefacts/metadata",
            Some(&session_cookie),
            None,
            finding(),
        ))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, _, rows) = app
        .send(request(
            "POST",
            "/artefacts/metadata/query",
            Some(&session_cookie),
            None,
            json!({"entries": []}),
        ))
        .await;
    assert_eq!(status, StatusCode::OK, "{rows}");
    // and so does the same token as bearer token
    let (status, _, user) = app
        .send(request(
            "GET",
            "/auth/user",
            None,
            Some(session),
            json!(null),
        ))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(user["id"], claims["sub"]);
    assert_eq!(user["identifiers"][0]["type"], "github");
    assert_eq!(user["identifiers"][0]["identifier"]["username"], "alice");
    assert_eq!(
        user["identifiers"][0]["identifier"]["hostname"],
        "127.0.0.1"
    );
    assert_eq!(user["roles"][0]["name"], "writer");
    assert!(user["permissions"]
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p["name"] == "write-all"));
    let (status, _, rbac) = app
        .send(request(
            "GET",
            "/auth/rbac",
            Some(&session_cookie),
            None,
            json!(null),
        ))
        .await;
    assert_eq!(status, StatusCode::OK);
    let role_names: Vec<&str> = rbac["roles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(role_names, ["reader", "writer", "admin"]);
    assert!(rbac["permissions"]
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p["name"] == "read-routes-with-post"));

    // refresh: a new session and refresh token; the old refresh token is used up
    let old_refresh = format!("refresh_token={refresh}");
    let (status, headers, refreshed) = app
        .send(request(
            "POST",
            "/auth/refresh",
            Some(&old_refresh),
            None,
            json!(null),
        ))
        .await;
    assert_eq!(status, StatusCode::OK, "{refreshed}");
    assert_eq!(refreshed["sub"], claims["sub"]);
    assert_eq!(refreshed["roles"], json!(["writer"]));
    let new_session = cookie(&headers, "bearer_token").unwrap();
    let new_refresh = format!(
        "refresh_token={}",
        cookie(&headers, "refresh_token").unwrap()
    );
    assert_ne!(new_refresh, old_refresh);
    let (status, _, body) = app
        .send(request(
            "POST",
            "/auth/refresh",
            Some(&old_refresh),
            None,
            json!(null),
        ))
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    let (status, _, _) = app
        .send(request(
            "GET",
            "/auth/user",
            Some(&format!("bearer_token={new_session}")),
            None,
            json!(null),
        ))
        .await;
    assert_eq!(status, StatusCode::OK);

    // logout clears both cookies and revokes the refresh token
    let (status, headers, _) = app
        .send(request(
            "GET",
            "/auth/logout",
            Some(&new_refresh),
            None,
            json!(null),
        ))
        .await;
    assert_eq!(status, StatusCode::OK);
    let cleared = set_cookies(&headers);
    for name in ["bearer_token", "refresh_token"] {
        let (_, value, attributes) = cleared
            .iter()
            .find(|(cookie, _, _)| cookie == name)
            .unwrap();
        assert!(
            value.is_empty() && attributes.contains("Max-Age=0"),
            "{name}: {attributes}"
        );
    }
    for refresh in [&new_refresh, &old_refresh] {
        let (status, _, _) = app
            .send(request(
                "POST",
                "/auth/refresh",
                Some(refresh),
                None,
                json!(null),
            ))
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    assert!(github.requests() >= 2);
}

#[tokio::test]
async fn memberships_beyond_the_first_page_bind_roles_and_links_elsewhere_are_not_followed() {
    let LoginApp {
        app,
        github,
        _directory,
    } = login_app().await;
    let before = github.requests();
    let (status, _, claims) = app
        .send(request(
            "GET",
            &token_login_uri(&github, "gh-token-dave", false),
            None,
            None,
            json!(null),
        ))
        .await;
    assert_eq!(status, StatusCode::OK, "{claims}");
    // acme is the 231st org (page 3 of 100) and acme/readers the 141st team (page 2)
    assert_eq!(claims["roles"], json!(["writer", "reader"]));
    // /user, three pages of orgs, two of teams
    assert_eq!(github.requests() - before, 6);

    // A GitHub whose next links point at another host: the token is not sent there.
    let elsewhere = FakeGithub::start(CLIENT_ID, CLIENT_SECRET, vec![]).await;
    github.set_link_base(elsewhere.url());
    let (status, _, body) = app
        .send(request(
            "GET",
            &token_login_uri(&github, "gh-token-dave", false),
            None,
            None,
            json!(null),
        ))
        .await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("pagination points outside"),
        "{body}"
    );
    assert_eq!(elsewhere.requests(), 0);
}

#[tokio::test]
async fn rbac_roles_come_from_teams_and_orgs_and_guard_writes() {
    let LoginApp {
        app,
        github,
        _directory,
    } = login_app().await;
    // bob is in acme/readers: a reader
    let (status, headers, claims) = app
        .send(request(
            "GET",
            &token_login_uri(&github, "gh-token-bob", false),
            None,
            None,
            json!(null),
        ))
        .await;
    assert_eq!(status, StatusCode::OK, "{claims}");
    assert_eq!(claims["roles"], json!(["reader"]));
    // a GitHub-token login has no refresh token unless asked for (the original's default)
    assert_eq!(cookie(&headers, "refresh_token"), None);
    let bob = format!("bearer_token={}", cookie(&headers, "bearer_token").unwrap());
    let (status, _, _) = app
        .send(request(
            "POST",
            "/artefacts/metadata/query",
            Some(&bob),
            None,
            json!({"entries": []}),
        ))
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _, body) = app
        .send(request(
            "PUT",
            "/artefacts/metadata",
            Some(&bob),
            None,
            finding(),
        ))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (status, _, _) = app
        .send(request(
            "DELETE",
            "/cache?all=true",
            Some(&bob),
            None,
            json!(null),
        ))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // a GitHub App logs in with its JWT (`ey...`) and is bound by its slug
    let (status, headers, claims) = app
        .send(request(
            "GET",
            &token_login_uri(&github, "eyFakeGithubAppJwt", false),
            None,
            None,
            json!(null),
        ))
        .await;
    assert_eq!(status, StatusCode::OK, "{claims}");
    assert_eq!(claims["roles"], json!(["writer"]));
    let bot = format!("bearer_token={}", cookie(&headers, "bearer_token").unwrap());
    let (status, _, user) = app
        .send(request("GET", "/auth/user", Some(&bot), None, json!(null)))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        user["identifiers"][0]["identifier"]["app_name"],
        "acme-scanner"
    );

    // carol has no role here: no session
    let (status, headers, body) = app
        .send(request(
            "GET",
            &token_login_uri(&github, "gh-token-carol", false),
            None,
            None,
            json!(null),
        ))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(set_cookies(&headers).is_empty());

    // the admin token and external JWTs keep working beside sessions, for reads and writes
    let (status, _, body) = app
        .send(request(
            "PUT",
            "/artefacts/metadata",
            None,
            Some(ADMIN_TOKEN),
            finding(),
        ))
        .await;
    assert!(status.is_success(), "{body}");
    let external = odg_test_support::hs256_jwt(
        JWT_SECRET,
        &json!({"sub": "scanner", "roles": ["metadata-writer"], "exp": 4_000_000_000u64}),
    );
    let status = status_of(
        &app,
        request(
            "DELETE",
            "/artefacts/metadata",
            None,
            Some(&external),
            finding(),
        ),
    )
    .await;
    assert!(status.is_success(), "{status}");
    let (status, _, _) = app
        .send(request(
            "POST",
            "/artefacts/metadata/query",
            None,
            Some(&external),
            json!({"entries": []}),
        ))
        .await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn oauth_code_login_exchanges_the_code_and_keeps_a_refresh_token() {
    let LoginApp {
        app,
        github,
        _directory,
    } = login_app().await;
    let (status, headers, claims) = app
        .send(request(
            "GET",
            &format!("/auth?code=code-alice&client_id={CLIENT_ID}"),
            None,
            None,
            json!(null),
        ))
        .await;
    assert_eq!(status, StatusCode::OK, "{claims}");
    assert_eq!(claims["roles"], json!(["writer"]));
    assert!(cookie(&headers, "refresh_token").is_some());
    // the same identity is the same user
    let (_, _, again) = app
        .send(request(
            "GET",
            &token_login_uri(&github, "gh-token-alice", false),
            None,
            None,
            json!(null),
        ))
        .await;
    assert_eq!(again["sub"], claims["sub"]);

    let (status, _, body) = app
        .send(request(
            "GET",
            &format!("/auth?code=wrong&client_id={CLIENT_ID}"),
            None,
            None,
            json!(null),
        ))
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
}

#[tokio::test]
async fn logins_against_unconfigured_githubs_or_with_bad_tokens_are_refused() {
    let LoginApp {
        app,
        github,
        _directory,
    } = login_app().await;
    let before = github.requests();
    for uri in [
        "/auth?access_token=gh-token-alice&api_url=https://api.github.com".to_string(),
        "/auth?access_token=gh-token-alice&api_url=http://127.0.0.1:1".to_string(),
        "/auth?code=code-alice&client_id=other".to_string(),
        "/auth".to_string(),
    ] {
        let (status, headers, body) = app
            .send(request("GET", &uri, None, None, json!(null)))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{uri}: {body}");
        assert!(body["error"].is_string());
        assert!(set_cookies(&headers).is_empty());
    }
    // nothing of those reached any GitHub
    assert_eq!(github.requests(), before);
    let (status, _, body) = app
        .send(request(
            "GET",
            &token_login_uri(&github, "not-a-token", false),
            None,
            None,
            json!(null),
        ))
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert!(!body.to_string().contains("not-a-token"));
}

#[tokio::test]
async fn the_published_keys_verify_issued_tokens_and_tampered_tokens_are_refused() {
    let LoginApp {
        app,
        github,
        _directory,
    } = login_app().await;
    let (status, discovery) = app.get("/.well-known/openid-configuration").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(discovery["issuer"], ISSUER);
    assert_eq!(discovery["jwks_uri"], format!("{ISSUER}/openid/v1/jwks"));
    let (status, jwks) = app.get("/openid/v1/jwks").await;
    assert_eq!(status, StatusCode::OK);
    // only the RSA public key: the HS256 secret is never published
    assert_eq!(jwks["keys"].as_array().unwrap().len(), 1, "{jwks}");
    assert_eq!(jwks["keys"][0]["kid"], "rsa-1");
    assert!(jwks["keys"][0].get("d").is_none() && jwks["keys"][0].get("k").is_none());

    let (_, headers, _) = app
        .send(request(
            "GET",
            &token_login_uri(&github, "gh-token-alice", false),
            None,
            None,
            json!(null),
        ))
        .await;
    let token = cookie(&headers, "bearer_token").unwrap();
    let header = jsonwebtoken::decode_header(&token).unwrap();
    assert_eq!(header.kid.as_deref(), Some("rsa-1"));
    let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(jwks["keys"][0].clone()).unwrap();
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    validation.set_issuer(&[ISSUER]);
    let verified = jsonwebtoken::decode::<Value>(
        &token,
        &jsonwebtoken::DecodingKey::from_jwk(&jwk).unwrap(),
        &validation,
    )
    .unwrap();
    assert_eq!(verified.claims["roles"], json!(["writer"]));

    // one character of the signature changed
    let mut tampered = token.clone().into_bytes();
    let last = tampered.len() - 2;
    tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    // claims changed (roles: admin) under the old signature
    let parts: Vec<&str> = token.split('.').collect();
    use base64::Engine as _;
    let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let mut claims: Value = serde_json::from_slice(&engine.decode(parts[1]).unwrap()).unwrap();
    claims["roles"] = json!(["admin"]);
    let forged = format!(
        "{}.{}.{}",
        parts[0],
        engine.encode(claims.to_string()),
        parts[2]
    );
    for bad in [tampered, forged] {
        let (status, _, body) = app
            .send(request(
                "GET",
                "/auth/user",
                Some(&format!("bearer_token={bad}")),
                None,
                json!(null),
            ))
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
        let (status, _, _) = app
            .send(request(
                "PUT",
                "/artefacts/metadata",
                None,
                Some(&bad),
                finding(),
            ))
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }

    // a token signed with the older (lower-priority) key still verifies, selected by its kid
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    header.kid = Some("hs-old".into());
    let claims = json!({"version": "v2", "iss": ISSUER, "iat": now, "exp": now + 300, "key_id": "hs-old",
                        "sub": verified.claims["sub"], "roles": ["reader"]});
    let old = jsonwebtoken::encode(
        &header,
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(HS_SECRET.as_bytes()),
    )
    .unwrap();
    let (status, _, body) = app
        .send(request("GET", "/auth/user", None, Some(&old), json!(null)))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // the same claims from another issuer are refused
    let mut foreign = claims.clone();
    foreign["iss"] = json!("http://elsewhere");
    let foreign = jsonwebtoken::encode(
        &header,
        &foreign,
        &jsonwebtoken::EncodingKey::from_secret(HS_SECRET.as_bytes()),
    )
    .unwrap();
    let (status, _, _) = app
        .send(request(
            "GET",
            "/auth/user",
            None,
            Some(&foreign),
            json!(null),
        ))
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn without_login_the_auth_routes_say_the_feature_is_inactive_and_reads_stay_open() {
    let directory = tempfile::tempdir().unwrap();
    let app = TestApp {
        router: odg_server::router(metadata_state(directory.path()).await),
        cache: None,
        _directory: None,
    };
    for uri in [
        "/auth/configs",
        "/auth?access_token=x&api_url=https://api.github.com",
    ] {
        let (status, body) = app.get(uri).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{uri}");
        assert_eq!(body["error_id"], "feature-inactive");
        assert_eq!(body["missing_features"], json!(["authentication"]));
    }
    let (status, _, _) = app
        .send(request(
            "POST",
            "/artefacts/metadata/query",
            None,
            None,
            json!({"entries": []}),
        ))
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _, _) = app
        .send(request("PUT", "/artefacts/metadata", None, None, finding()))
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

/// The status of an answer that may have no body (204).
async fn status_of(app: &TestApp, request: Request<Body>) -> StatusCode {
    use tower::ServiceExt;
    app.router.clone().oneshot(request).await.unwrap().status()
}
