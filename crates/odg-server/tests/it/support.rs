//! Builders shared by the API tests: a service over a store, and a request helper.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::Router;
use http_body_util::BodyExt;
use odg_components::{
    with_repository_context, ComponentService, ComponentServiceConfig, ComponentSource,
    OciComponentSource, OciSourceLimits, RepositoryStores, WalkOptions,
};
use odg_oci::{CtfDirectory, OciStore, RegistryClient, RegistryClientConfig};
use odg_ocm::{
    ComponentDescriptor, ComponentSelector, OcmRepositoryUrl, RepositoryMapping, RepositoryRule,
};
use serde_json::Value;
use tower::ServiceExt;

pub const DEMO_REPOSITORY: &str = "demo.odg.invalid/ocm";

pub struct TestApp {
    pub router: Router,
    pub cache: Option<odg_cache::TieredCache>,
    pub(crate) _directory: Option<tempfile::TempDir>,
}

pub const ADMIN_TOKEN: &str = "test-admin-token";
pub const JWT_SECRET: &str = "a-test-secret-of-at-least-thirty-two-bytes";

/// Registry stores serving the demo landscape from a fresh CTF directory under `directory`.
pub async fn demo_stores(directory: &std::path::Path) -> (RepositoryStores, OcmRepositoryUrl) {
    let store = CtfDirectory::create_or_open(&directory.join("ctf"))
        .await
        .unwrap();
    let repository: OcmRepositoryUrl = DEMO_REPOSITORY.parse().unwrap();
    seed(&store, &repository, odg_demo::demo_landscape()).await;
    let stores =
        RepositoryStores::new(RegistryClient::new(RegistryClientConfig::default()).unwrap())
            .with_local_host(repository.host.clone(), Arc::new(store));
    (stores, repository)
}

/// The component service over the demo landscape behind a memory cache with every kind's
/// default policy (components and compliance summaries).
pub async fn cached_demo_service(
    directory: &std::path::Path,
) -> (ComponentService, odg_cache::TieredCache) {
    let (stores, repository) = demo_stores(directory).await;
    cached_service_over(stores, repository, 64 << 20).await
}

/// The component service over `stores` (mapped to `repository`) behind a memory cache of
/// `memory_bytes` with every kind's default policy (components and compliance summaries).
pub async fn cached_service_over(
    stores: RepositoryStores,
    repository: OcmRepositoryUrl,
    memory_bytes: u64,
) -> (ComponentService, odg_cache::TieredCache) {
    let mut policies = odg_components::default_policies();
    policies.extend(odg_compliance::default_policies());
    let cache = odg_cache::TieredCache::new(odg_cache::CacheConfig {
        memory_bytes,
        policies,
        ..odg_cache::CacheConfig::default()
    })
    .await
    .unwrap();
    let service = service_over(
        stores,
        RepositoryMapping::new(vec![rule(repository)]),
        vec![],
    )
    .with_cache(cache.clone());
    (service, cache)
}

/// Accepts [`ADMIN_TOKEN`] and HS256 JWTs signed with [`JWT_SECRET`] (roles in `roles`).
pub fn test_authenticator() -> odg_server::Authenticator {
    test_authenticator_with_login(None)
}

/// [`test_authenticator`], and sessions of `login` when given.
pub fn test_authenticator_with_login(
    login: Option<odg_server::LoginConfig>,
) -> odg_server::Authenticator {
    odg_server::Authenticator::new(&odg_server::AuthConfig {
        admin_tokens: vec![ADMIN_TOKEN.into()],
        jwt: Some(odg_server::JwtConfig {
            algorithm: odg_server::JwtAlgorithm::Hs256,
            key: JWT_SECRET.into(),
            roles_claim: "roles".into(),
            issuer: None,
            audience: None,
        }),
        login,
    })
    .unwrap()
}

/// The demo API with a memory cache and both kinds of credentials configured.
pub async fn cached_demo_app() -> TestApp {
    let directory = tempfile::tempdir().unwrap();
    let (service, cache) = cached_demo_service(directory.path()).await;
    TestApp {
        router: odg_server::router(
            odg_server::AppState::new(service).with_auth(test_authenticator()),
        ),
        cache: Some(cache),
        _directory: Some(directory),
    }
}

/// The API over the demo landscape in a fresh CTF directory.
pub async fn demo_app() -> TestApp {
    let directory = tempfile::tempdir().unwrap();
    let (stores, repository) = demo_stores(directory.path()).await;
    let mut app = app_over(stores, vec![rule(repository)], vec![]);
    app._directory = Some(directory);
    app
}

pub fn rule(repository: OcmRepositoryUrl) -> RepositoryRule {
    RepositoryRule {
        repository,
        selector: ComponentSelector::All,
        version_filter: None,
        labels: Vec::new(),
    }
}

pub fn app_over(
    stores: RepositoryStores,
    rules: Vec<RepositoryRule>,
    allowed_hosts: Vec<String>,
) -> TestApp {
    app_over_mapping(stores, RepositoryMapping::new(rules), allowed_hosts)
}

/// [`app_over`] with a whole mapping (virtual repositories included).
pub fn app_over_mapping(
    stores: RepositoryStores,
    mapping: RepositoryMapping,
    allowed_hosts: Vec<String>,
) -> TestApp {
    TestApp {
        router: odg_server::router(odg_server::AppState::new(service_over(
            stores,
            mapping,
            allowed_hosts,
        ))),
        cache: None,
        _directory: None,
    }
}

/// The component service over `stores` without a cache.
pub fn service_over(
    stores: RepositoryStores,
    mapping: RepositoryMapping,
    allowed_hosts: Vec<String>,
) -> ComponentService {
    let source = OciComponentSource::new(Arc::new(stores), OciSourceLimits::default());
    service_of_source(Arc::new(source), mapping, allowed_hosts)
}

/// The component service over any `source` (a fake, a slowed one) without a cache.
pub fn service_of_source(
    source: Arc<dyn ComponentSource>,
    mapping: RepositoryMapping,
    allowed_hosts: Vec<String>,
) -> ComponentService {
    ComponentService::new(
        ComponentServiceConfig {
            mapping,
            allowed_hosts,
            walk: WalkOptions::default(),
        },
        source,
    )
}

pub async fn seed(
    store: &dyn OciStore,
    repository: &OcmRepositoryUrl,
    descriptors: Vec<ComponentDescriptor>,
) {
    for descriptor in descriptors {
        let descriptor = with_repository_context(descriptor, repository);
        // the demo's local blobs (release notes of the landscape) as layers beside it
        let blobs: Vec<odg_components::LocalBlob> = odg_demo::demo_local_blobs_of(
            &descriptor.component.name,
            &descriptor.component.version,
        )
        .into_iter()
        .map(|blob| odg_components::LocalBlob {
            media_type: blob.media_type.to_string(),
            content: blob.content.into(),
        })
        .collect();
        odg_components::push_descriptor_with_blobs(store, repository, &descriptor, &blobs)
            .await
            .unwrap();
    }
}

/// A minimal descriptor referencing `references` (`name:version` pairs).
pub fn descriptor(name: &str, version: &str, references: &[(&str, &str)]) -> ComponentDescriptor {
    let refs: Vec<Value> = references
        .iter()
        .map(|(ref_name, ref_version)| {
            serde_json::json!({"name": ref_name.rsplit('/').next().unwrap(), "componentName": ref_name,
                               "version": ref_version, "extraIdentity": {}})
        })
        .collect();
    serde_json::from_value(serde_json::json!({
        "meta": {"schemaVersion": "v2"},
        "component": {"name": name, "version": version, "provider": "test", "repositoryContexts": [],
                      "sources": [], "resources": [], "componentReferences": refs, "labels": []},
    }))
    .unwrap()
}

impl TestApp {
    /// Sends `request` and returns the status, headers and JSON body (every answer must be JSON).
    pub async fn send(&self, request: Request<Body>) -> (StatusCode, axum::http::HeaderMap, Value) {
        let WholeAnswer {
            status,
            headers,
            body: bytes,
        } = send_whole(&self.router, request).await;
        let body: Value =
            serde_json::from_slice(&bytes).unwrap_or_else(|_| panic!("not JSON: {bytes:?}"));
        if !status.is_success() {
            assert!(
                body["error"].is_string(),
                "error body without message: {body}"
            );
        }
        (status, headers, body)
    }

    /// GETs `uri` and returns the status and the JSON body (every answer must be JSON).
    pub async fn get(&self, uri: &str) -> (StatusCode, Value) {
        let WholeAnswer {
            status,
            headers,
            body: bytes,
        } = send_whole(&self.router, Request::get(uri).body(Body::empty()).unwrap()).await;
        let content_type = headers
            .get("content-type")
            .map(|value| value.to_str().unwrap().to_string());
        assert_eq!(
            content_type.as_deref(),
            Some("application/json"),
            "{uri}: {bytes:?}"
        );
        let body: Value =
            serde_json::from_slice(&bytes).unwrap_or_else(|_| panic!("{uri}: not JSON: {bytes:?}"));
        if !status.is_success() {
            assert!(
                body["error"].is_string(),
                "{uri}: error body without message: {body}"
            );
        }
        (status, body)
    }
}

/// The demo API (memory cache, both kinds of credentials) with a delivery DB in an SQLite file
/// under `directory`, so that the metadata routes work.
pub async fn metadata_state(directory: &std::path::Path) -> odg_server::AppState {
    metadata_state_on(
        directory,
        odg_delivery_db::DatabaseConfig::sqlite_file(&directory.join("delivery.sqlite")),
    )
    .await
}

/// The two delivery DBs the DB-backed routes are tested on.
#[derive(Debug, Clone, Copy)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// [`metadata_state`] on `backend`: an SQLite file under `directory`, or a fresh PostgreSQL
/// database (dropped with the returned guard).
pub async fn metadata_state_with(
    directory: &std::path::Path,
    backend: Backend,
) -> (
    odg_server::AppState,
    Option<odg_test_support::postgres::TestDatabase>,
) {
    match backend {
        Backend::Sqlite => (metadata_state(directory).await, None),
        Backend::Postgres => {
            let database =
                odg_test_support::postgres::TestDatabase::create("odg_server_routes").await;
            let state = metadata_state_on(
                directory,
                odg_delivery_db::DatabaseConfig::new(database.url()),
            )
            .await;
            (state, Some(database))
        }
    }
}

/// The compliance service with the default finding configurations over `components` and the
/// delivery DB `config` (its `db()` is that database).
pub async fn compliance_on(
    components: &ComponentService,
    config: &odg_delivery_db::DatabaseConfig,
) -> odg_compliance::ComplianceService {
    let db = odg_delivery_db::DeliveryDb::connect(config).await.unwrap();
    odg_compliance::ComplianceService::new(
        db,
        components.clone(),
        odg_compliance::FindingConfigs::defaults(),
    )
}

/// The demo API with the delivery DB `config`.
pub async fn metadata_state_on(
    directory: &std::path::Path,
    config: odg_delivery_db::DatabaseConfig,
) -> odg_server::AppState {
    let (components, _cache) = cached_demo_service(directory).await;
    let compliance = compliance_on(&components, &config).await;
    odg_server::AppState::new(components)
        .with_auth(test_authenticator())
        .with_compliance(compliance)
}

/// An answer read whole, its body as bytes (blobs, byte ranges; JSON on demand).
pub struct WholeAnswer {
    pub status: StatusCode,
    pub headers: axum::http::HeaderMap,
    pub body: bytes::Bytes,
}

impl WholeAnswer {
    /// The header's value; panics when the answer has none.
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .unwrap_or_else(|| panic!("no {name} header"))
            .to_str()
            .unwrap()
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|_| panic!("not JSON: {:?}", self.body))
    }

    /// The message of a JSON error answer.
    pub fn error(&self) -> String {
        self.json()["error"].as_str().unwrap().to_string()
    }
}

/// Sends `request` to `router` and reads the answer whole.
pub async fn send_whole(router: &Router, request: Request<Body>) -> WholeAnswer {
    let response = router.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    WholeAnswer {
        status,
        headers,
        body,
    }
}

/// An answer that need not be JSON (files, profiles), its body as text.
pub struct Answer {
    pub status: StatusCode,
    pub content_type: String,
    pub body: String,
}

/// GETs `uri` from `router` and returns the status, `Content-Type` and body, whatever they are.
pub async fn get_raw(router: &Router, uri: &str) -> Answer {
    let answer = send_whole(router, Request::get(uri).body(Body::empty()).unwrap()).await;
    let content_type = answer
        .headers
        .get("content-type")
        .map(|value| value.to_str().unwrap().to_string())
        .unwrap_or_default();
    Answer {
        status: answer.status,
        content_type,
        body: String::from_utf8_lossy(&answer.body).into_owned(),
    }
}

/// An HS256 JWT for the subject `scanner` with `roles`, accepted by [`test_authenticator`].
pub fn jwt(roles: Value) -> String {
    jwt_for("scanner", roles)
}

/// [`jwt`] for another subject (what a route records as its caller).
pub fn jwt_for(subject: &str, roles: Value) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &serde_json::json!({"sub": subject, "roles": roles, "exp": now + 600}),
        &jsonwebtoken::EncodingKey::from_secret(JWT_SECRET.as_bytes()),
    )
    .unwrap()
}

/// A request with a JSON body and, when given, a bearer token.
pub fn request(method: &str, uri: &str, token: Option<&str>, body: Value) -> Request<Body> {
    let mut builder = Request::builder().method(method).uri(uri);
    if let Some(token) = token {
        builder = builder.header("authorization", format!("Bearer {token}"));
    }
    builder.body(Body::from(body.to_string())).unwrap()
}

/// Sends `request` and returns the status and the JSON body, `null` for an empty body (201,
/// 204 without content).
pub async fn send_any(router: &Router, request: Request<Body>) -> (StatusCode, Value) {
    let response = router.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap_or_else(|_| panic!("not JSON: {bytes:?}"))
    };
    (status, body)
}
