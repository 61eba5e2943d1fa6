//! The routes over the demo landscape: shapes, parameters and errors.

use axum::http::StatusCode;
use serde_json::Value;

use crate::support::demo_app;

#[tokio::test]
async fn component_defaults_to_greatest_and_returns_the_descriptor() {
    let app = demo_app().await;
    let (status, body) = app
        .get("/ocm/component?component_name=acme.org/landscape")
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["meta"]["schemaVersion"], "v2");
    assert_eq!(body["component"]["name"], "acme.org/landscape");
    assert_eq!(body["component"]["version"], "2026.3.0");
    let contexts = body["component"]["repositoryContexts"].as_array().unwrap();
    assert_eq!(contexts.last().unwrap()["baseUrl"], "demo.odg.invalid/ocm");
}

#[tokio::test]
async fn component_with_plus_version_and_v_prefix() {
    let app = demo_app().await;
    // `+` unencoded decodes to a space in query strings; both spellings must work.
    for uri in [
        "/ocm/component?component_name=acme.org/lib/openssl&version=3.0.15%2Bfips.1",
        "/ocm/component?component_name=acme.org/lib/openssl&version=3.0.15+fips.1",
    ] {
        let (status, body) = app.get(uri).await;
        assert_eq!(status, StatusCode::OK, "{uri}: {body}");
        assert_eq!(body["component"]["version"], "3.0.15+fips.1");
    }
    let (_, body) = app
        .get("/ocm/component?component_name=acme.org/lib/openssl")
        .await;
    assert_eq!(body["component"]["version"], "3.0.15+fips.1");
    let (_, body) = app
        .get("/ocm/component?component_name=acme.org/lib/base-image")
        .await;
    assert_eq!(body["component"]["version"], "v2.5.0");
}

#[tokio::test]
async fn raw_returns_the_stored_document_as_a_json_string() {
    let app = demo_app().await;
    let (status, body) = app
        .get("/ocm/component?component_name=acme.org/shop/cart&version=1.0.0&raw=true")
        .await;
    assert_eq!(status, StatusCode::OK);
    let text = body.as_str().expect("a JSON string");
    assert!(text.contains("\"name\": \"acme.org/shop/cart\""), "{text}");
    let (status, _) = app
        .get("/ocm/component?component_name=acme.org/shop/cart&raw=perhaps")
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn versions_are_ascending_limited_filtered_and_cut_off() {
    let app = demo_app().await;
    let (status, body) = app
        .get("/ocm/component/versions?component_name=acme.org/shop/checkout")
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        serde_json::json!(["1.0.0", "1.1.0", "1.2.0", "1.3.0", "1.4.0-rc.1"])
    );

    let (_, body) = app
        .get("/ocm/component/versions?component_name=acme.org/shop/checkout&max=2")
        .await;
    assert_eq!(body, serde_json::json!(["1.3.0", "1.4.0-rc.1"]));

    let (_, body) = app
        .get("/ocm/component/versions?component_name=acme.org/shop/checkout&version_filter=semver_releases&max=0")
        .await;
    assert_eq!(
        body,
        serde_json::json!(["1.0.0", "1.1.0", "1.2.0", "1.3.0"])
    );

    let (_, body) = app
        .get("/ocm/component/versions?component_name=acme.org/shop/checkout&version_filter=semver_non_releases")
        .await;
    assert_eq!(body, serde_json::json!(["1.4.0-rc.1"]));

    let (_, body) = app
        .get("/ocm/component/versions?component_name=acme.org/shop/checkout&version_filter=1%5C.%5B01%5D%5C..*")
        .await;
    assert_eq!(body, serde_json::json!(["1.0.0", "1.1.0"]));

    let (_, body) = app
        .get("/ocm/component/versions?component_name=acme.org/shop/checkout&version=1.2.0&max=2")
        .await;
    assert_eq!(body, serde_json::json!(["1.1.0", "1.2.0"]));

    // Unknown components have no versions (the original answers [] as well).
    let (status, body) = app
        .get("/ocm/component/versions?component_name=acme.org/nothing")
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, serde_json::json!([]));
}

#[tokio::test]
async fn versions_by_creation_date_walk_down_from_the_greatest() {
    let app = demo_app().await;
    // Demo versions are created on the 15th of months 1..=5 by version index.
    let (status, body) = app
        .get("/ocm/component/versions?component_name=acme.org/shop/checkout&start_date=2026-02-01&end_date=2026-04-30")
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, serde_json::json!(["1.3.0", "1.2.0", "1.1.0"]));
    let (status, _) = app
        .get("/ocm/component/versions?component_name=acme.org/shop/checkout&start_date=yesterday")
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn dependencies_are_preorder_with_paths_from_the_root() {
    let app = demo_app().await;
    let (status, body) = app
        .get("/ocm/component/dependencies?component_name=acme.org/landscape&version=2026.1.0")
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let elements = body["componentDependencies"].as_array().unwrap();
    assert!(elements.len() > 50, "{} elements", elements.len());

    let root = &elements[0];
    assert_eq!(root["name"], "acme.org/landscape");
    assert_eq!(root["comp_ref"].as_array().unwrap().len(), 1);
    assert_eq!(root["comp_ref"][0]["name"], "acme.org/landscape");

    for element in elements {
        let path = element["comp_ref"].as_array().unwrap();
        assert_eq!(path[0]["name"], "acme.org/landscape");
        let last = path.last().unwrap();
        assert_eq!(
            (&last["name"], &last["version"]),
            (&element["name"], &element["version"])
        );
        assert!(last["repositoryContexts"].is_array());
        // Pre-order: the parent of every element comes before it.
        if path.len() > 1 {
            let parent = &path[path.len() - 2];
            assert!(elements
                .iter()
                .any(|other| other["name"] == parent["name"]
                    && other["version"] == parent["version"]));
        }
    }
    // The extra-references label contributes an edge of the root.
    assert!(elements.iter().any(|element| {
        element["name"] == "acme.org/platform/gatekeeper"
            && element["comp_ref"].as_array().unwrap().len() == 2
    }));
    // The original's classification label on the first source.
    let labels = root
        .get("sources")
        .and_then(|s| s.get(0))
        .map(|s| s["labels"].clone());
    if let Some(Value::Array(labels)) = labels {
        assert!(labels
            .iter()
            .any(|label| label["name"] == "cloud.gardener/cicd/source"));
    }
}

#[tokio::test]
async fn dependencies_populate_and_recursion_depth() {
    let app = demo_app().await;
    let (status, body) = app
        .get("/ocm/component/dependencies?component_name=acme.org/landscape&populate=componentReferences&recursion_depth=1")
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let elements = body["componentDependencies"].as_array().unwrap();
    // Root, five products and the label's extra reference.
    assert_eq!(elements.len(), 7, "{body}");
    for element in elements {
        let keys: Vec<&str> = element
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(keys, ["name", "version", "repositoryContexts", "comp_ref"]);
    }
    let (_, body) = app
        .get("/ocm/component/dependencies?component_name=acme.org/landscape&recursion_depth=0")
        .await;
    assert_eq!(body["componentDependencies"].as_array().unwrap().len(), 1);

    let (status, _) = app
        .get("/ocm/component/dependencies?component_name=acme.org/landscape&populate=everything")
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn bad_input_gets_json_4xx() {
    let app = demo_app().await;
    for (uri, expected) in [
        ("/ocm/component", StatusCode::BAD_REQUEST),
        ("/ocm/component?component_name=", StatusCode::BAD_REQUEST),
        ("/ocm/component?component_name=../../etc/passwd", StatusCode::BAD_REQUEST),
        ("/ocm/component?component_name=acme.org/shop/cart&version=..%2F..", StatusCode::BAD_REQUEST),
        ("/ocm/component?component_name=acme.org/shop/cart&component_name=x", StatusCode::BAD_REQUEST),
        ("/ocm/component/versions?component_name=acme.org/shop/cart&max=lots", StatusCode::BAD_REQUEST),
        ("/ocm/component/versions?component_name=acme.org/shop/cart&version_filter=(", StatusCode::BAD_REQUEST),
        ("/ocm/component?component_name=acme.org/nothing", StatusCode::NOT_FOUND),
        ("/ocm/component?component_name=acme.org/shop/cart&version=9.9.9", StatusCode::NOT_FOUND),
        ("/ocm/component/dependencies?component_name=acme.org/nothing", StatusCode::NOT_FOUND),
        ("/no/such/route", StatusCode::NOT_FOUND),
        ("/ocm/component?component_name=acme.org/shop/cart&ocm_repo_url=http://169.254.169.254/latest", StatusCode::FORBIDDEN),
        ("/ocm/component?component_name=acme.org/shop/cart&ocm_repo_url=evil.example.org/ocm", StatusCode::FORBIDDEN),
        ("/ocm/component?component_name=acme.org/shop/cart&ocm_repo_url=file:///etc", StatusCode::BAD_REQUEST),
    ] {
        let (status, body) = app.get(uri).await;
        assert_eq!(status, expected, "{uri}: {body}");
    }
}

#[tokio::test]
async fn mapped_repository_is_accepted_as_ocm_repo_url() {
    let app = demo_app().await;
    let (status, body) = app
        .get("/ocm/component?component_name=acme.org/shop/cart&ocm_repo_url=demo.odg.invalid/ocm")
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, live) = app.get("/live").await;
    assert_eq!(live["status"], "alive");
    let (status, _) = app.get("/ready").await;
    assert_eq!(status, StatusCode::OK);
}

/// One extraction for every route: the same mistake gets the same 400 naming the parameter,
/// whichever route it is sent to (the cache switches included).
#[tokio::test]
async fn every_route_reads_parameters_alike_and_names_the_wrong_one() {
    let app = demo_app().await;
    let routes = [
        "/ocm/component?component_name=acme.org/shop/cart",
        "/ocm/component/versions?component_name=acme.org/shop/cart",
        "/ocm/component/dependencies?component_name=acme.org/shop/cart",
    ];
    for route in routes {
        for (suffix, parameter) in [
            ("&ignore_cache=maybe", "ignore_cache"),
            ("&shortcutCache=perhaps", "shortcutCache"),
            ("&ocm_repo_url=a&ocm_repo_url=b", "ocm_repo_url"),
            ("&component_name=again", "component_name"),
        ] {
            let uri = format!("{route}{suffix}");
            let (status, body) = app.get(&uri).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{uri}: {body}");
            assert_eq!(body["parameter"], parameter, "{uri}: {body}");
        }
        // an empty value is an absent one, and the original's spellings of true are accepted
        for suffix in [
            "&ignore_cache=",
            "&ignore_cache=Yes",
            "&shortcutCache=0",
            "&version=",
        ] {
            let uri = format!("{route}{suffix}");
            let (status, body) = app.get(&uri).await;
            assert_eq!(status, StatusCode::OK, "{uri}: {body}");
        }
    }
    let (status, body) = app.get("/ocm/component").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["parameter"], "component_name", "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("required"),
        "{body}"
    );
}

/// The original's `ignore_lookup` on `/ocm/component` (and `/ocm/component/responsibles`): when true, the descriptor is looked up in
/// `ocm_repo_url` alone instead of there and then in the repository mapping's candidates, and
/// `ocm_repo_url` must be given (400 otherwise). Read as a boolean like every flag.
#[tokio::test]
async fn ignore_lookup_asks_only_the_given_repository() {
    let app = demo_app().await;
    let base = "/ocm/component?component_name=acme.org/shop/cart&version=";
    let (_, body) = app
        .get("/ocm/component?component_name=acme.org/shop/cart")
        .await;
    let version = body["component"]["version"].as_str().unwrap().to_owned();
    let base = format!("{base}{version}");

    // Without ocm_repo_url: refused, as the original refuses it.
    let (status, body) = app.get(&format!("{base}&ignore_lookup=true")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    // A false flag changes nothing.
    let (status, body) = app.get(&format!("{base}&ignore_lookup=false")).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // The mapped repository holds it, with or without the lookup.
    let mapped = format!("{base}&ocm_repo_url=demo.odg.invalid/ocm");
    for flag in ["", "&ignore_lookup=true", "&ignore_lookup=yes"] {
        let (status, body) = app.get(&format!("{mapped}{flag}")).await;
        assert_eq!(status, StatusCode::OK, "{flag}: {body}");
    }

    // A repository without it: the lookup falls back to the mapping, ignore_lookup does not.
    let elsewhere = format!("{base}&ocm_repo_url=demo.odg.invalid/elsewhere");
    let (status, body) = app.get(&elsewhere).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = app.get(&format!("{elsewhere}&ignore_lookup=true")).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");

    let (status, body) = app.get(&format!("{mapped}&ignore_lookup=maybe")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");

    // `/ocm/component/responsibles` reads the descriptor the same way.
    let responsibles =
        format!("/ocm/component/responsibles?component_name=acme.org/shop/cart&version={version}");
    let (status, body) = app.get(&format!("{responsibles}&ignore_lookup=1")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, body) = app
        .get(&format!(
            "{responsibles}&ignore_lookup=1&ocm_repo_url=demo.odg.invalid/ocm"
        ))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let elsewhere = format!("{responsibles}&ocm_repo_url=demo.odg.invalid/elsewhere");
    let (status, body) = app.get(&elsewhere).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = app.get(&format!("{elsewhere}&ignore_lookup=1")).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
}
