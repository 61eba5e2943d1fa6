//! The metadata browser's routes over the demo findings, on SQLite and PostgreSQL:
//! `GET /artefacts/metadata/query-attributes` and `POST .../query/by-search-expression` with the
//! original's criteria, sort, cursor paging, component scopes (version-less rows by artefact) and
//! 400s for bad bodies.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::{json, Value};

use crate::support::{metadata_state_with, Backend, TestApp};

struct App {
    app: TestApp,
    _directory: tempfile::TempDir,
    _database: Option<odg_test_support::postgres::TestDatabase>,
}

/// The demo API with the demo findings written, plus a version-less finding on checkout's
/// image whose extra identity names the version (what the original's scope rule matches) and
/// one whose extra identity does not.
async fn app(backend: Backend) -> App {
    let directory = tempfile::tempdir().unwrap();
    let (state, database) = metadata_state_with(directory.path(), backend).await;
    let mut entries = odg_demo::demo_findings();
    for (name, extra) in [
        ("keyed", json!({"version": "1.3.0"})),
        ("unkeyed", json!({})),
    ] {
        entries.push(json!({
            "artefact": {
                "component_name": "acme.org/shop/checkout", "component_version": null,
                "artefact_kind": "resource",
                "artefact": {"artefact_name": "checkout", "artefact_version": "1.3.0", "artefact_type": "ociImage",
                             "artefact_extra_id": extra},
            },
            "meta": {"datasource": "clamav", "type": "finding/malware"},
            "data": {"finding": {"content_digest": name, "filename": name, "malware": "Eicar-Test-Signature", "severity": "HIGH"},
                     "severity": "HIGH", "summary": format!("version-less {name}")},
        }));
    }
    let compliance = state.compliance.as_ref().unwrap();
    let prepared = odg_delivery_db::prepare_entries(&entries).unwrap();
    compliance
        .db()
        .put(&prepared, &|_: &str| Default::default())
        .await
        .unwrap();
    App {
        app: TestApp {
            router: odg_server::router(state),
            cache: None,
            _directory: None,
        },
        _directory: directory,
        _database: database,
    }
}

impl App {
    async fn search(&self, body: Value) -> (StatusCode, Value) {
        let request = Request::post("/artefacts/metadata/query/by-search-expression")
            .header("content-type", "application/json")
            .body(Body::from(body.to_string()))
            .unwrap();
        let (status, _, body) = self.app.send(request).await;
        (status, body)
    }

    /// Every matching item, following the cursor page by page.
    async fn all(&self, criteria: Value, limit: usize) -> Vec<Value> {
        let mut items = Vec::new();
        let mut cursor = Value::Null;
        for _ in 0..100 {
            let (status, page) = self
                .search(json!({"criteria": criteria, "limit": limit, "cursor": cursor,
                               "sort": [{"field": "meta.creation_date", "order": "desc"}, {"field": "id", "order": "desc"}]}))
                .await;
            assert_eq!(status, StatusCode::OK, "{page}");
            let page_items = page["items"].as_array().unwrap();
            assert!(page_items.len() <= limit);
            items.extend(page_items.iter().cloned());
            cursor = page["nextCursor"].clone();
            if cursor.is_null() {
                return items;
            }
        }
        panic!("the cursor never ended");
    }
}

fn count(items: &[Value], predicate: impl Fn(&Value) -> bool) -> usize {
    items.iter().filter(|item| predicate(item)).count()
}

#[tokio::test]
async fn query_attributes_lists_the_originals_fields() {
    let app = app(Backend::Sqlite).await;
    let (status, body) = app.app.get("/artefacts/metadata/query-attributes").await;
    assert_eq!(status, StatusCode::OK);
    let fields = body["fields"].as_array().unwrap();
    assert_eq!(fields.len(), 15);
    assert_eq!(
        fields[0],
        json!({"name": "ocm", "type": "string", "ops": ["eq"]})
    );
    assert!(fields
        .contains(&json!({"name": "data.severity", "type": "string", "ops": ["cmp", "eq", "in"]})));
    assert_eq!(
        body["defaultSearchFields"],
        json!([
            "data.summary",
            "data.cve",
            "data.package_name",
            "data.package_version",
            "artefact.name",
            "ocm.name"
        ])
    );
}

async fn searches_filter_sort_and_page(backend: Backend) {
    let app = app(backend).await;
    // no criteria: every row, each exactly once across pages of 7
    let everything = app.all(json!([]), 7).await;
    let total = everything.len();
    assert_eq!(total, 28, "the demo findings and the two version-less ones");
    let mut ids: Vec<String> = everything.iter().map(|item| item.to_string()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), total, "no item twice");
    let (_, first) = app.search(json!({"limit": 3})).await;
    assert_eq!(first["items"].as_array().unwrap().len(), 3);
    let cursor = &first["nextCursor"];
    assert!(
        cursor["meta.creation_date"].is_string() && cursor["id"].is_string(),
        "{cursor}"
    );

    // a type, exact
    let vulnerabilities = app
        .all(json!([{"type": "artefact-metadata", "attr": "type", "op": "eq", "value": "finding/vulnerability"}]), 50)
        .await;
    let expected = count(&everything, |item| {
        item["meta"]["type"] == "finding/vulnerability"
    });
    assert_eq!(vulnerabilities.len(), expected);
    assert!(expected > 0);
    // in, and excluded
    let either = app
        .all(json!([{"type": "artefact-metadata", "attr": "type", "op": "in", "values": ["finding/vulnerability", "finding/license"]}]), 50)
        .await;
    assert_eq!(
        either.len(),
        expected
            + count(&everything, |item| item["meta"]["type"]
                == "finding/license")
    );
    let others = app
        .all(json!([{"type": "artefact-metadata", "attr": "type", "value": "finding/vulnerability", "mode": "exclude"}]), 50)
        .await;
    assert_eq!(others.len(), total - expected);
    // JSON fields, wildcards, case-insensitive
    let openssl = app
        .all(
            json!([{"type": "artefact-metadata", "attr": "data.package_name", "value": "OPEN*"}]),
            50,
        )
        .await;
    assert_eq!(
        openssl.len(),
        count(&everything, |item| item["data"]["package_name"]
            == "openssl")
    );
    assert!(!openssl.is_empty());
    // free text over the default fields
    let cve = app
        .all(json!([{"type": "fulltext", "value": "2023-4911"}]), 50)
        .await;
    assert_eq!(
        cve.len(),
        count(&everything, |item| item["data"]["cve"] == "CVE-2023-4911")
    );
    assert!(!cve.is_empty());
    // severities by categorisation value: symbolic with one finding type
    let severe = app
        .all(json!([
            {"type": "artefact-metadata", "attr": "type", "value": "finding/vulnerability"},
            {"type": "artefact-metadata", "attr": "data.severity", "op": "cmp", "cmp": ">=", "value": "HIGH"},
        ]), 50)
        .await;
    assert_eq!(
        severe.len(),
        count(&vulnerabilities, |item| ["HIGH", "CRITICAL"]
            .contains(&item["data"]["severity"].as_str().unwrap()))
    );
    assert!(!severe.is_empty());
    // a time range that holds everything, and one that holds nothing
    let all_time = app
        .all(json!([{"type": "artefact-metadata", "attr": "meta.creation_date", "op": "range", "gte": "2000-01-01T00:00:00Z"}]), 100)
        .await;
    assert_eq!(all_time.len(), total);
    let (_, none) = app
        .search(json!({"criteria": [{"type": "artefact-metadata", "attr": "meta.creation_date", "op": "range", "lte": "2000-01-01T00:00:00Z"}]}))
        .await;
    assert_eq!(none, json!({"items": [], "nextCursor": null}));

    // a component by name; by name and version with its version-less rows by artefact key
    let checkout = app
        .all(
            json!([{"type": "ocm", "value": "acme.org/shop/checkout"}]),
            50,
        )
        .await;
    assert_eq!(
        checkout.len(),
        count(&everything, |item| item["artefact"]["component_name"]
            == "acme.org/shop/checkout")
    );
    let release = app
        .all(
            json!([{"type": "ocm", "value": "acme.org/shop/checkout:1.3.0"}]),
            50,
        )
        .await;
    assert_eq!(
        release.len(),
        count(&everything, |item| item["artefact"]["component_name"]
            == "acme.org/shop/checkout"
            && item["artefact"]["component_version"] == "1.3.0")
            + 1,
        "the keyed version-less finding, not the unkeyed one"
    );
    assert_eq!(
        count(&release, |item| item["data"]["summary"]
            == "version-less keyed"),
        1
    );
    // the landscape's whole tree, recursively, holds the shop's current releases
    let (_, versions) = app
        .app
        .get("/ocm/component/versions?component_name=acme.org/landscape&max=1")
        .await;
    let greatest = versions[0].as_str().unwrap();
    let tree = app
        .all(
            json!([{"type": "ocm", "value": format!("acme.org/landscape:{greatest}"), "recursive": true}]),
            50,
        )
        .await;
    // some of the demo's findings are about components in the greatest landscape's tree, not all
    assert!(!tree.is_empty() && tree.len() < total, "{}", tree.len());
    let non_recursive = app
        .all(
            json!([{"type": "ocm", "value": format!("acme.org/landscape:{greatest}")}]),
            50,
        )
        .await;
    assert!(
        non_recursive.is_empty(),
        "the landscape itself has no findings"
    );
    let without = app
        .all(
            json!([{"type": "ocm", "value": "acme.org/shop/checkout", "mode": "exclude"}]),
            50,
        )
        .await;
    assert_eq!(without.len(), total - checkout.len());
}

#[tokio::test]
async fn searches_filter_sort_and_page_on_sqlite() {
    searches_filter_sort_and_page(Backend::Sqlite).await;
}

#[tokio::test]
async fn searches_filter_sort_and_page_on_postgres() {
    searches_filter_sort_and_page(Backend::Postgres).await;
}

#[tokio::test]
async fn bad_searches_are_400s() {
    let app = app(Backend::Sqlite).await;
    let bad = [
        json!([]),
        json!({"criteria": "all"}),
        json!({"criteria": [{"attr": "type"}]}),
        json!({"criteria": [{"type": "nonsense"}]}),
        json!({"criteria": [{"type": "artefact-metadata", "attr": "password", "value": "x"}]}),
        json!({"criteria": [{"type": "artefact-metadata", "attr": "type"}]}),
        json!({"criteria": [{"type": "artefact-metadata", "attr": "type", "op": "in", "values": []}]}),
        json!({"criteria": [{"type": "artefact-metadata", "attr": "type", "op": "like", "value": "x"}]}),
        json!({"criteria": [{"type": "artefact-metadata", "attr": "meta.creation_date", "op": "range", "gte": "yesterday"}]}),
        json!({"criteria": [{"type": "artefact-metadata", "attr": "data.severity", "op": "cmp", "cmp": ">=", "value": "HIGH"}]}),
        json!({"criteria": [{"type": "artefact-metadata", "attr": "type", "value": "x", "mode": "maybe"}]}),
        json!({"criteria": [{"type": "ocm", "value": "acme.org/shop/checkout", "recursive": true}]}),
        json!({"criteria": [{"type": "ocm", "value": "acme.org/nonesuch:1.0.0"}]}),
        json!({"criteria": [{"type": "fulltext", "value": "x", "fields": ["data.cve", 3]}]}),
        json!({"limit": "many"}),
        json!({"sort": [{"field": "data.cve"}]}),
        json!({"sort": [{"field": "type", "order": "asc"}, {"field": "id", "order": "desc"}]}),
        json!({"cursor": {"id": "x"}}),
        json!({"cursor": {"meta.creation_date": "soon", "id": "x"}}),
    ];
    for body in bad {
        let (status, answer) = app.search(body.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {answer}");
    }
    let request = Request::post("/artefacts/metadata/query/by-search-expression")
        .body(Body::from("{not json"))
        .unwrap();
    let (status, _, _) = app.app.send(request).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}
