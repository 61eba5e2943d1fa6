//! The routes over a real registry (Debian's docker-registry, CNCF distribution): trees, cycles,
//! broken dependencies, OCI index tags, version filters in the mapping and basic auth.

use std::collections::HashMap;

use axum::http::StatusCode;
use bytes::Bytes;
use odg_components::RepositoryStores;
use odg_oci::{Credentials, OciStore, RegistryClient, RegistryClientConfig, OCI_INDEX_MEDIA_TYPE};
use odg_ocm::{ComponentSelector, OcmRepositoryUrl, RepositoryRule, VersionFilter};
use odg_test_support::RegistryServer;
use serde_json::json;

use crate::support::{app_over, app_over_mapping, descriptor, rule, seed};

fn client(credentials: HashMap<String, Credentials>) -> RegistryClient {
    RegistryClient::new(RegistryClientConfig {
        credentials,
        ..RegistryClientConfig::default()
    })
    .unwrap()
}

async fn registry_with(path: &str) -> (RegistryServer, OcmRepositoryUrl, RegistryClient) {
    let registry = RegistryServer::start().await;
    let repository: OcmRepositoryUrl = format!("http://{}/{path}", registry.host())
        .parse()
        .unwrap();
    (registry, repository, client(HashMap::new()))
}

#[tokio::test]
async fn tree_with_shared_subtree_cycle_and_missing_dependency() {
    let (_registry, repository, client) = registry_with("ocm").await;
    let store = client.endpoint(true, &repository.host);
    seed(
        &store,
        &repository,
        vec![
            descriptor(
                "acme.org/app",
                "1.0.0",
                &[("acme.org/lib-a", "1.0.0"), ("acme.org/lib-b", "1.0.0")],
            ),
            descriptor("acme.org/lib-a", "1.0.0", &[("acme.org/base", "1.0.0")]),
            descriptor("acme.org/lib-b", "1.0.0", &[("acme.org/base", "1.0.0")]),
            descriptor("acme.org/base", "1.0.0", &[]),
            // a -> b -> a
            descriptor(
                "acme.org/cycle-a",
                "1.0.0",
                &[("acme.org/cycle-b", "1.0.0")],
            ),
            descriptor(
                "acme.org/cycle-b",
                "1.0.0",
                &[("acme.org/cycle-a", "1.0.0")],
            ),
            descriptor("acme.org/broken", "1.0.0", &[("acme.org/absent", "0.1.0")]),
        ],
    )
    .await;
    let app = app_over(
        RepositoryStores::new(client),
        vec![rule(repository.clone())],
        vec![],
    );

    let (status, body) = app
        .get("/ocm/component/dependencies?component_name=acme.org/app&populate=componentReferences")
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let order: Vec<(String, usize)> = body["componentDependencies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["name"].as_str().unwrap().to_string(),
                e["comp_ref"].as_array().unwrap().len(),
            )
        })
        .collect();
    // Depth-first pre-order; the shared subtree appears once per path, as in the original.
    assert_eq!(
        order,
        [
            ("acme.org/app".to_string(), 1),
            ("acme.org/lib-a".to_string(), 2),
            ("acme.org/base".to_string(), 3),
            ("acme.org/lib-b".to_string(), 2),
            ("acme.org/base".to_string(), 3),
        ]
    );
    let base_path: Vec<&str> = body["componentDependencies"][4]["comp_ref"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        base_path,
        ["acme.org/app", "acme.org/lib-b", "acme.org/base"]
    );

    let (status, body) = app
        .get("/ocm/component/dependencies?component_name=acme.org/cycle-a")
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(
        body["cycle"],
        json!([
            "acme.org/cycle-a:1.0.0",
            "acme.org/cycle-b:1.0.0",
            "acme.org/cycle-a:1.0.0"
        ])
    );

    let (status, body) = app
        .get("/ocm/component/dependencies?component_name=acme.org/broken")
        .await;
    assert_eq!(status, StatusCode::FAILED_DEPENDENCY, "{body}");
    assert_eq!(
        body["path"],
        json!(["acme.org/broken:1.0.0", "acme.org/absent:0.1.0"])
    );

    // The descriptor itself is still served.
    let (status, _) = app
        .get("/ocm/component?component_name=acme.org/broken")
        .await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn oci_index_tag_selects_the_annotated_entry() {
    let (_registry, repository, client) = registry_with("ocm").await;
    let store = client.endpoint(true, &repository.host);
    seed(
        &store,
        &repository,
        vec![
            descriptor("acme.org/indexed", "2.0.0", &[]),
            descriptor("acme.org/indexed", "1.0.0", &[]),
        ],
    )
    .await;
    // Re-tag the pushed manifest behind an index with a decoy entry (another version) first.
    let path = odg_ocm::component_repository_path(&repository, "acme.org/indexed");
    let manifest = store.get_manifest(&path, "2.0.0").await.unwrap();
    let decoy = store.get_manifest(&path, "1.0.0").await.unwrap();
    let index = json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX_MEDIA_TYPE,
        "manifests": [
            {"mediaType": decoy.media_type, "digest": decoy.digest, "size": decoy.bytes.len(),
             "annotations": {"software.ocm.component.name": "acme.org/indexed", "software.ocm.component.version": "1.0.0"}},
            {"mediaType": manifest.media_type, "digest": manifest.digest, "size": manifest.bytes.len(),
             "annotations": {"software.ocm.component.name": "acme.org/indexed", "software.ocm.component.version": "2.0.0"}},
        ],
    });
    store
        .put_manifest(
            &path,
            "2.0.0",
            OCI_INDEX_MEDIA_TYPE,
            Bytes::from(serde_json::to_vec(&index).unwrap()),
        )
        .await
        .unwrap();
    let app = app_over(
        RepositoryStores::new(client),
        vec![rule(repository)],
        vec![],
    );
    let (status, body) = app
        .get("/ocm/component?component_name=acme.org/indexed&version=2.0.0")
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["component"]["name"], "acme.org/indexed");
    assert_eq!(body["component"]["version"], "2.0.0");
}

#[tokio::test]
async fn mapping_prefixes_version_filters_and_plus_tags() {
    let registry = RegistryServer::start().await;
    let client = client(HashMap::new());
    let releases: OcmRepositoryUrl = format!("http://{}/releases", registry.host())
        .parse()
        .unwrap();
    let snapshots: OcmRepositoryUrl = format!("http://{}/snapshots", registry.host())
        .parse()
        .unwrap();
    let store = client.endpoint(true, &registry.host());
    seed(
        &store,
        &releases,
        vec![
            descriptor("acme.org/tool", "1.0.0", &[]),
            descriptor("acme.org/tool", "1.1.0+build.3", &[]),
        ],
    )
    .await;
    seed(
        &store,
        &snapshots,
        vec![descriptor("acme.org/tool", "1.2.0-dev.1", &[])],
    )
    .await;
    // The `+` version is stored under a `.build-` tag, as OCM maps it.
    let tags = store
        .list_tags(&odg_ocm::component_repository_path(
            &releases,
            "acme.org/tool",
        ))
        .await
        .unwrap();
    assert!(
        tags.contains(&"1.1.0.build-build.3".to_string()),
        "{tags:?}"
    );

    let rules = vec![
        RepositoryRule {
            repository: releases.clone(),
            selector: ComponentSelector::Prefixes(vec!["acme.org/".into()]),
            version_filter: Some("semver_releases".parse::<VersionFilter>().unwrap()),
            labels: Vec::new(),
        },
        RepositoryRule {
            repository: snapshots.clone(),
            selector: ComponentSelector::Prefixes(vec!["acme.org/".into()]),
            version_filter: None,
            labels: Vec::new(),
        },
    ];
    let app = app_over(RepositoryStores::new(client), rules.clone(), vec![]);
    // The releases rule's `semver_releases` drops the build-metadata version, as the original's does.
    let (_, body) = app
        .get("/ocm/component/versions?component_name=acme.org/tool&max=0")
        .await;
    assert_eq!(body, json!(["1.0.0", "1.2.0-dev.1"]));
    let (_, body) = app
        .get("/ocm/component/versions?component_name=acme.org/tool&version_filter=semver_releases")
        .await;
    assert_eq!(body, json!(["1.0.0"]));
    // A query filter replaces the rules' filters; the `.build-` tag lists as its `+` version.
    let (_, body) = app
        .get("/ocm/component/versions?component_name=acme.org/tool&version_filter=semver_any")
        .await;
    assert_eq!(body, json!(["1.0.0", "1.1.0+build.3", "1.2.0-dev.1"]));
    // greatest spans both repositories; the snapshot repository has no filter.
    let (_, body) = app.get("/ocm/component?component_name=acme.org/tool").await;
    assert_eq!(body["component"]["version"], "1.2.0-dev.1");
    let (status, body) = app
        .get("/ocm/component?component_name=acme.org/tool&version=1.1.0%2Bbuild.3")
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // With ocm_repo_url the named repository comes first.
    let uri = format!(
        "/ocm/component?component_name=acme.org/tool&version=1.2.0-dev.1&ocm_repo_url={}",
        snapshots
    );
    let (status, body) = app.get(&uri).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // A component no rule matches is unknown.
    let (status, _) = app
        .get("/ocm/component?component_name=other.org/tool")
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // The original's virtual repositories: `<auto>` (the dashboard's default `ocm_repo_url`)
    // is every rule as no `ocm_repo_url` is; a configured one selects rules by label and may
    // override their version filter.
    let labelled: Vec<RepositoryRule> = rules
        .iter()
        .zip(["releases", "snapshots"])
        .map(|(rule, label)| RepositoryRule {
            labels: vec![label.to_string()],
            ..rule.clone()
        })
        .collect();
    let mapping = odg_ocm::RepositoryMapping::with_virtuals(
        labelled,
        vec![odg_ocm::VirtualRepository {
            name: "releases-only".into(),
            selectors: vec![odg_ocm::VirtualSelector {
                required_labels: vec!["releases".into()],
                version_filter_overwrite: Some(VersionFilter::SemverAny),
            }],
        }],
    )
    .unwrap();
    let app = app_over_mapping(
        RepositoryStores::new(self::client(HashMap::new())),
        mapping,
        vec![],
    );
    let versions = "/ocm/component/versions?component_name=acme.org/tool&max=0";
    let (_, plain) = app.get(versions).await;
    assert_eq!(plain, json!(["1.0.0", "1.2.0-dev.1"]));
    let (status, auto) = app
        .get(&format!("{versions}&ocm_repo_url=%3Cauto%3E"))
        .await;
    assert_eq!((status, auto), (StatusCode::OK, plain));
    let (_, releases_only) = app
        .get(&format!("{versions}&ocm_repo_url=releases-only"))
        .await;
    assert_eq!(releases_only, json!(["1.0.0", "1.1.0+build.3"]));
    let (status, body) = app
        .get("/ocm/component?component_name=acme.org/tool&ocm_repo_url=releases-only")
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["component"]["version"], "1.1.0+build.3");
    // a virtual repository is no repository to look in alone
    let (status, body) = app
        .get("/ocm/component?component_name=acme.org/tool&ocm_repo_url=%3Cauto%3E&ignore_lookup=true")
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
}

#[tokio::test]
async fn basic_auth_registry_needs_the_configured_credentials() {
    let registry = RegistryServer::start_with_htpasswd("odg", "s3cret").await;
    let repository: OcmRepositoryUrl = format!("http://{}/ocm", registry.host()).parse().unwrap();
    let credentials = HashMap::from([(
        registry.host(),
        Credentials {
            username: "odg".into(),
            password: "s3cret".into(),
        },
    )]);
    let authorised = client(credentials);
    seed(
        &authorised.endpoint(true, &repository.host),
        &repository,
        vec![descriptor("acme.org/secret", "1.0.0", &[])],
    )
    .await;

    let app = app_over(
        RepositoryStores::new(authorised),
        vec![rule(repository.clone())],
        vec![],
    );
    let (status, body) = app
        .get("/ocm/component?component_name=acme.org/secret")
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let anonymous = app_over(
        RepositoryStores::new(client(HashMap::new())),
        vec![rule(repository)],
        vec![],
    );
    let (status, body) = anonymous
        .get("/ocm/component?component_name=acme.org/secret&version=1.0.0")
        .await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{body}");
    assert!(!body.to_string().contains("s3cret"));
}
