//! `/ocm/component/responsibles` and `/components/diff`: shapes over the demo landscape, their
//! parameter and body errors, and, over a real registry behind a counting proxy, warm answers
//! without registry requests and invalidation through `DELETE /cache` that reaches both kinds.

use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use odg_components::{RepositoryStores, RESPONSIBLES_LABEL};
use odg_oci::{RegistryClient, RegistryClientConfig};
use odg_ocm::{ComponentDescriptor, OcmRepositoryUrl};
use odg_test_support::{DelayProxy, RegistryServer};
use serde_json::{json, Value};

use crate::support::{
    cached_demo_app, cached_service_over, descriptor, seed, test_authenticator, TestApp,
    ADMIN_TOKEN,
};

fn diff_request(body: &str) -> Request<Body> {
    Request::post("/components/diff")
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .unwrap()
}

fn diff_body(left: (&str, &str), right: (&str, &str)) -> String {
    json!({
        "left_component": {"name": left.0, "version": left.1},
        "right_component": {"name": right.0, "version": right.1},
    })
    .to_string()
}

#[tokio::test]
async fn responsibles_come_from_the_label_in_the_original_shape() {
    let app = cached_demo_app().await;
    let (status, body) = app
        .get("/ocm/component/responsibles?component_name=acme.org/shop/checkout&version=1.2.0")
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["statuses"], json!([]));
    let responsibles = body["responsibles"].as_array().unwrap();
    assert_eq!(responsibles.len(), 3, "{body}");
    let origin = json!({"source": "acme.org/shop/checkout:1.2.0", "type": "metaOrigin",
                        "origin_type": "component_descriptor"});
    for responsible in responsibles {
        let identifiers = responsible.as_array().unwrap();
        assert_eq!(identifiers.len(), 2, "{responsible}");
        assert_eq!(identifiers[0]["source"], "ComponentDescriptor");
        assert_eq!(identifiers[1], origin);
    }
    let types: Vec<&str> = responsibles
        .iter()
        .map(|r| r[0]["type"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["githubUser", "personalName", "emailAddress"]);
    assert_eq!(responsibles[0][0]["github_hostname"], "github.com");
    assert!(responsibles[0][0]["username"].is_string());
    assert!(
        responsibles[1][0]["first_name"].is_string() && responsibles[1][0]["last_name"].is_string()
    );
    assert!(responsibles[2][0]["email"]
        .as_str()
        .unwrap()
        .ends_with("@acme.invalid"));

    // `greatest` by default, like every component route.
    let (status, greatest) = app
        .get("/ocm/component/responsibles?component_name=acme.org/shop/cart")
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        greatest["responsibles"][0][1]["source"],
        "acme.org/shop/cart:1.3.0"
    );
}

#[tokio::test]
async fn responsibles_without_a_label_are_an_empty_list_not_a_retry() {
    let app = cached_demo_app().await;
    let (status, body) = app
        .get("/ocm/component/responsibles?component_name=acme.org/lib/openssl&version=3.0.14")
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!({"responsibles": [], "statuses": []}));
}

#[tokio::test]
async fn responsibles_of_an_artefact_fall_back_to_the_component_and_unknown_ones_are_404() {
    let app = cached_demo_app().await;
    let base = "/ocm/component/responsibles?component_name=acme.org/shop/cart&version=1.0.0";
    let (_, component) = app.get(base).await;
    for artefact in ["cart", "cart-chart"] {
        let (status, body) = app.get(&format!("{base}&artifact_name={artefact}")).await;
        assert_eq!(status, StatusCode::OK, "{artefact}: {body}");
        assert_eq!(body, component, "{artefact}");
    }
    let (status, body) = app.get(&format!("{base}&artifact_name=nope")).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert!(body["error"].as_str().unwrap().contains("nope"), "{body}");
}

#[tokio::test]
async fn responsibles_parameter_errors_and_unknown_components() {
    let app = cached_demo_app().await;
    let (status, body) = app.get("/ocm/component/responsibles").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["parameter"], "component_name");
    let (status, body) = app
        .get("/ocm/component/responsibles?component_name=acme.org/shop/cart&version=1.0.0&version=1.1.0")
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["parameter"], "version");
    let (status, body) = app
        .get("/ocm/component/responsibles?component_name=acme.org/shop/cart&ignore_cache=perhaps")
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["parameter"], "ignore_cache");
    let (status, _) = app
        .get("/ocm/component/responsibles?component_name=acme.org/nothing-here")
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = app
        .get("/ocm/component/responsibles?component_name=acme.org/shop/cart&version=9.9.9")
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = app
        .get("/ocm/component/responsibles?component_name=acme.org/shop/cart&ocm_repo_url=elsewhere.example.com/ocm")
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn diff_of_two_demo_versions_in_the_original_shape() {
    let app = cached_demo_app().await;
    let (status, headers, body) = app
        .send(diff_request(&diff_body(
            ("acme.org/products/storefront", "2026.1.0"),
            ("acme.org/products/storefront", "2026.2.0"),
        )))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(headers.get("etag").is_some());
    assert_eq!(body["components_added"], json!([]));
    assert_eq!(body["components_removed"], json!([]));
    let changed = body["components_changed"].as_array().unwrap();
    assert_eq!(
        changed[0]["left"],
        json!({"name": "acme.org/products/storefront", "version": "2026.1.0"})
    );
    let right = &changed[0]["right"];
    assert_eq!(right["version"], "2026.2.0");
    // Both resources carry the version: each is a changed pair, the right one with its label diff.
    let resources = &right["resources"];
    assert_eq!(resources["added"], json!([]));
    assert_eq!(resources["removed"], json!([]));
    let pairs = resources["changed"].as_array().unwrap();
    assert_eq!(pairs.len(), 2, "{resources}");
    assert_eq!(pairs[0]["from"]["version"], "2026.1.0");
    assert_eq!(pairs[0]["to"]["version"], "2026.2.0");
    assert_eq!(
        pairs[0]["to"]["label_diff"],
        json!({"added": [], "removed": [], "changed": []})
    );
    assert_eq!(
        right["label_diff"],
        json!({"labels_only_left": [], "labels_only_right": [], "label_pairs_changed": []})
    );
    assert!(
        changed.len() > 5,
        "every dependency moved on: {}",
        changed.len()
    );
    for pair in changed {
        assert_eq!(pair["left"]["name"], pair["right"]["name"]);
        assert_ne!(pair["left"]["version"], pair["right"]["version"]);
    }

    // A version against itself is the empty diff.
    let same = diff_body(
        ("acme.org/products/storefront", "2026.1.0"),
        ("acme.org/products/storefront", "2026.1.0"),
    );
    let (status, _, body) = app.send(diff_request(&same)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        json!({"components_added": [], "components_removed": [], "components_changed": []})
    );
}

#[tokio::test]
async fn diff_body_errors_name_the_field_and_unknown_components_are_404() {
    let app = cached_demo_app().await;
    let cases: [(&str, Option<&str>); 7] = [
        ("not json", None),
        ("[]", None),
        (
            r#"{"right_component": {"name": "acme.org/shop/cart", "version": "1.0.0"}}"#,
            Some("left_component"),
        ),
        (
            r#"{"left_component": {"name": "acme.org/shop/cart", "version": "1.0.0"}}"#,
            Some("right_component"),
        ),
        (
            r#"{"left_component": "acme.org/shop/cart", "right_component": {"name": "acme.org/shop/cart", "version": "1.0.0"}}"#,
            Some("left_component"),
        ),
        (
            r#"{"left_component": {"name": "acme.org/shop/cart"}, "right_component": {"name": "acme.org/shop/cart", "version": "1.0.0"}}"#,
            Some("left_component.version"),
        ),
        (
            r#"{"left_component": {"name": "acme.org/shop/cart", "version": "1.0.0"}, "right_component": {"name": 7, "version": "1.0.0"}}"#,
            Some("right_component.name"),
        ),
    ];
    for (body, field) in cases {
        let (status, _, answer) = app.send(diff_request(body)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {answer}");
        if let Some(field) = field {
            assert_eq!(answer["field"], field, "{body}: {answer}");
        }
    }
    let unknown = diff_body(
        ("acme.org/shop/cart", "1.0.0"),
        ("acme.org/shop/cart", "9.9.9"),
    );
    let (status, _, answer) = app.send(diff_request(&unknown)).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{answer}");
    let (status, _, _) = app
        .send(
            Request::get("/components/diff")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
}

/// A registry seeded with two versions of an app, a proxy counting the pod's requests to it.
struct Landscape {
    registry: RegistryServer,
    proxy: DelayProxy,
    app: TestApp,
}

fn owned_by(mut descriptor: ComponentDescriptor, owner: &str) -> ComponentDescriptor {
    descriptor.component.labels = serde_json::from_value(json!([{
        "name": RESPONSIBLES_LABEL,
        "value": [{"type": "emailAddress", "email": format!("{owner}@acme.invalid")}],
    }]))
    .unwrap();
    descriptor
}

/// app 1.0.0 -> lib-a 1.0.0, lib-b 1.0.0; app 2.0.0 -> lib-a 2.0.0, lib-c 1.0.0.
fn tree(lib_a_owner: &str) -> Vec<ComponentDescriptor> {
    vec![
        descriptor(
            "acme.org/app",
            "1.0.0",
            &[("acme.org/lib-a", "1.0.0"), ("acme.org/lib-b", "1.0.0")],
        ),
        descriptor(
            "acme.org/app",
            "2.0.0",
            &[("acme.org/lib-a", "2.0.0"), ("acme.org/lib-c", "1.0.0")],
        ),
        owned_by(descriptor("acme.org/lib-a", "1.0.0", &[]), lib_a_owner),
        owned_by(descriptor("acme.org/lib-a", "2.0.0", &[]), "second"),
        owned_by(descriptor("acme.org/lib-b", "1.0.0", &[]), "b-owner"),
        descriptor("acme.org/lib-c", "1.0.0", &[]),
    ]
}

/// Pushes straight to the registry, past the proxy, so the counts stay the pod's.
async fn push(registry: &RegistryServer, descriptors: Vec<ComponentDescriptor>) {
    let repository: OcmRepositoryUrl = format!("http://{}/ocm", registry.host()).parse().unwrap();
    let client = RegistryClient::new(RegistryClientConfig::default()).unwrap();
    seed(
        &client.endpoint(true, &repository.host),
        &repository,
        descriptors,
    )
    .await;
}

async fn landscape() -> Landscape {
    let registry = RegistryServer::start().await;
    let proxy = DelayProxy::start(&registry.host(), Duration::ZERO).await;
    push(&registry, tree("first")).await;
    let repository: OcmRepositoryUrl = format!("http://{}/ocm", proxy.host()).parse().unwrap();
    let stores =
        RepositoryStores::new(RegistryClient::new(RegistryClientConfig::default()).unwrap());
    let (service, cache) = cached_service_over(stores, repository, 64 << 20).await;
    let app = TestApp {
        router: odg_server::router(
            odg_server::AppState::new(service).with_auth(test_authenticator()),
        ),
        cache: Some(cache),
        _directory: None,
    };
    Landscape {
        registry,
        proxy,
        app,
    }
}

const APP_DIFF: (&str, &str) = ("acme.org/app", "1.0.0");
const APP_DIFF_RIGHT: (&str, &str) = ("acme.org/app", "2.0.0");
const LIB_A_RESPONSIBLES: &str =
    "/ocm/component/responsibles?component_name=acme.org/lib-a&version=1.0.0";
const LIB_B_RESPONSIBLES: &str =
    "/ocm/component/responsibles?component_name=acme.org/lib-b&version=1.0.0";

async fn app_diff(app: &TestApp) -> Value {
    let (status, _, body) = app
        .send(diff_request(&diff_body(APP_DIFF, APP_DIFF_RIGHT)))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

async fn invalidate(app: &TestApp, query: &str) {
    let request = Request::delete(format!("/cache?{query}"))
        .header("authorization", format!("Bearer {ADMIN_TOKEN}"))
        .body(Body::empty())
        .unwrap();
    let (status, _, body) = app.send(request).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn diffs_find_added_removed_and_changed_components_and_are_served_warm() {
    let landscape = landscape().await;
    let app = &landscape.app;
    let body = app_diff(app).await;
    assert_eq!(
        body["components_added"],
        json!([{"name": "acme.org/lib-c", "version": "1.0.0"}])
    );
    assert_eq!(
        body["components_removed"],
        json!([{"name": "acme.org/lib-b", "version": "1.0.0"}])
    );
    let changed: Vec<(&str, &str, &str)> = body["components_changed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|pair| {
            (
                pair["left"]["name"].as_str().unwrap(),
                pair["left"]["version"].as_str().unwrap(),
                pair["right"]["version"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        changed,
        [
            ("acme.org/app", "1.0.0", "2.0.0"),
            ("acme.org/lib-a", "1.0.0", "2.0.0")
        ]
    );
    let (status, _) = app.get(LIB_A_RESPONSIBLES).await;
    assert_eq!(status, StatusCode::OK);

    landscape.proxy.reset_counters();
    for _ in 0..3 {
        assert_eq!(app_diff(app).await, body);
        let (status, responsibles) = app.get(LIB_A_RESPONSIBLES).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            responsibles["responsibles"][0][0]["email"],
            "first@acme.invalid"
        );
    }
    assert_eq!(
        landscape.proxy.total_requests(),
        0,
        "{:?}",
        landscape.proxy.path_counts()
    );
}

#[tokio::test]
async fn invalidation_reaches_responsibles_precisely_and_diffs_with_their_trees() {
    let landscape = landscape().await;
    let app = &landscape.app;
    let diff_before = app_diff(app).await;
    let lib_a_label = |diff: &Value| diff["components_changed"][1]["right"]["label_diff"].clone();
    assert_eq!(
        lib_a_label(&diff_before)["label_pairs_changed"][0][0]["value"][0]["email"],
        "first@acme.invalid"
    );
    let (_, lib_a_before) = app.get(LIB_A_RESPONSIBLES).await;
    let (_, lib_b_before) = app.get(LIB_B_RESPONSIBLES).await;

    // The registry changes under the same version (a correction); the cached answers stand ...
    push(
        &landscape.registry,
        vec![owned_by(
            descriptor("acme.org/lib-a", "1.0.0", &[]),
            "corrected",
        )],
    )
    .await;
    assert_eq!(app.get(LIB_A_RESPONSIBLES).await.1, lib_a_before);
    assert_eq!(app_diff(app).await, diff_before);

    // ... until that version is invalidated: its responsibles go, and every diff (which embeds
    // its descriptor) with it, while another component's responsibles stay cached.
    invalidate(app, "component_name=acme.org/lib-a&version=1.0.0").await;
    landscape.proxy.reset_counters();
    assert_eq!(app.get(LIB_B_RESPONSIBLES).await.1, lib_b_before);
    assert_eq!(
        landscape.proxy.total_requests(),
        0,
        "{:?}",
        landscape.proxy.path_counts()
    );

    let (_, lib_a_after) = app.get(LIB_A_RESPONSIBLES).await;
    assert_eq!(
        lib_a_after["responsibles"][0][0]["email"],
        "corrected@acme.invalid"
    );
    let diff_after = app_diff(app).await;
    assert_eq!(
        lib_a_label(&diff_after)["label_pairs_changed"][0][0]["value"][0]["email"],
        "corrected@acme.invalid"
    );

    // A kind selector drops every entry of the kind.
    push(
        &landscape.registry,
        vec![owned_by(
            descriptor("acme.org/lib-b", "1.0.0", &[]),
            "b-corrected",
        )],
    )
    .await;
    invalidate(app, "kind=responsibles").await;
    let (_, lib_b_after) = app.get(LIB_B_RESPONSIBLES).await;
    // The descriptor below is still cached: the responsibles are rendered again from it.
    assert_eq!(lib_b_after, lib_b_before);
    invalidate(app, "kind=descriptor").await;
    let (_, lib_b_after) = app.get(LIB_B_RESPONSIBLES).await;
    assert_eq!(
        lib_b_after["responsibles"][0][0]["email"],
        "b-corrected@acme.invalid"
    );
    // Descriptors dropped by kind take the trees and diffs with them; warm them again, then
    // drop only the diffs: they rebuild from the cached trees without the registry.
    assert_eq!(app_diff(app).await, diff_after);
    landscape.proxy.reset_counters();
    invalidate(app, "kind=diff").await;
    assert_eq!(
        app_diff(app).await,
        diff_after,
        "rebuilt from the cached trees"
    );
    assert_eq!(
        landscape.proxy.total_requests(),
        0,
        "{:?}",
        landscape.proxy.path_counts()
    );
}
