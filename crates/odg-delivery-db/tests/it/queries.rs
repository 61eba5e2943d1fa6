//! The query route's matching rules with null fields.

use odg_delivery_db::{ComponentArtefactId, LocalArtefactId, MetadataQuery, QueryEntry};
use serde_json::{json, Value};

use crate::support::{both, put};

fn finding(
    component: Option<&str>,
    version: Option<&str>,
    artefact: &str,
    r#type: &str,
    key: &str,
) -> Value {
    json!({"artefact": {"component_name": component, "component_version": version, "artefact_kind": "resource",
            "artefact": {"artefact_name": artefact, "artefact_version": "1.0", "artefact_type": "ociImage"}},
           "meta": {"datasource": "bdba", "type": r#type}, "data": {"key": key}})
}

fn entry(component: Option<&str>, version: Option<&str>) -> ComponentArtefactId {
    ComponentArtefactId {
        component_name: component.map(str::to_string),
        component_version: version.map(str::to_string),
        ..Default::default()
    }
}

fn keys(rows: &[odg_delivery_db::StoredMetadata]) -> Vec<String> {
    let mut keys: Vec<String> = rows
        .iter()
        .map(|row| row.metadata.data["key"].as_str().unwrap().to_string())
        .collect();
    keys.sort();
    keys
}

#[tokio::test]
async fn null_fields_match_by_the_originals_rules() {
    for backend in both("queries").await {
        let db = &backend.db;
        put(
            db,
            &[
                finding(
                    Some("c"),
                    Some("1"),
                    "img",
                    "finding/vulnerability",
                    "versioned",
                ),
                finding(
                    Some("c"),
                    None,
                    "img",
                    "finding/vulnerability",
                    "shared-own-artefact",
                ),
                finding(
                    Some("c"),
                    None,
                    "other",
                    "finding/vulnerability",
                    "shared-other-artefact",
                ),
                finding(
                    Some("c"),
                    Some("2"),
                    "img",
                    "finding/vulnerability",
                    "other-version",
                ),
                finding(None, None, "img", "rescorings", "global-rescoring"),
                finding(Some("c"), None, "img", "rescorings", "component-rescoring"),
            ],
        )
        .await;
        let version_artefacts = vec![LocalArtefactId {
            artefact_name: Some("img".into()),
            artefact_version: Some("1.0".into()),
            artefact_type: Some("ociImage".into()),
            ..Default::default()
        }];
        let query = |types: &[&str], entries: Vec<QueryEntry>| MetadataQuery {
            types: types.iter().map(|t| t.to_string()).collect(),
            entries,
            ..Default::default()
        };
        let run = |query: MetadataQuery| async move { keys(&db.query(&query).await.unwrap()) };

        // A finding type: the version's own rows, plus version-less rows of its own artefacts.
        let version_entry = QueryEntry {
            id: entry(Some("c"), Some("1")),
            version_artefacts: version_artefacts.clone(),
        };
        assert_eq!(
            run(query(
                &["finding/vulnerability"],
                vec![version_entry.clone()]
            ))
            .await,
            ["shared-own-artefact", "versioned"],
            "{}",
            backend.name
        );
        // Without the descriptor's artefacts, a version-less row does not match.
        assert_eq!(
            run(query(
                &["finding/vulnerability"],
                vec![QueryEntry {
                    id: entry(Some("c"), Some("1")),
                    version_artefacts: vec![]
                }]
            ))
            .await,
            ["versioned"]
        );
        // Rescorings: none_ok, so null names and versions match too.
        assert_eq!(
            run(query(&["rescorings"], vec![version_entry.clone()])).await,
            ["component-rescoring", "global-rescoring"]
        );
        // An omitted component name matches only null names.
        assert_eq!(
            run(query(
                &["finding/vulnerability", "rescorings"],
                vec![QueryEntry {
                    id: entry(None, None),
                    ..Default::default()
                }]
            ))
            .await,
            ["global-rescoring"]
        );
        // No type parameter: none_ok; no version: every version.
        assert_eq!(
            run(query(
                &[],
                vec![QueryEntry {
                    id: entry(Some("c"), None),
                    ..Default::default()
                }]
            ))
            .await
            .len(),
            6
        );
        // Artefact fields only when non-empty; entries OR'd; parameters AND'd.
        let by_artefact = ComponentArtefactId {
            component_name: Some("c".into()),
            artefact: Some(LocalArtefactId {
                artefact_name: Some("other".into()),
                artefact_type: Some(String::new()),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(
            run(query(
                &["finding/vulnerability"],
                vec![
                    QueryEntry {
                        id: by_artefact,
                        ..Default::default()
                    },
                    QueryEntry {
                        id: entry(Some("c"), Some("2")),
                        ..Default::default()
                    }
                ]
            ))
            .await,
            ["other-version", "shared-other-artefact"]
        );
        let mut datasource = query(&["finding/vulnerability"], vec![]);
        datasource.datasources = vec!["clamav".into()];
        assert!(run(datasource).await.is_empty());
    }
}

/// The largest query the route accepts (1,000 entries), each with a descriptor's worth of
/// artefacts for the version rule: far past SQLite's expression depth (1,000) and PostgreSQL's
/// bind parameters (65,535) in one statement, so it runs as several, with the same answer.
#[tokio::test]
async fn the_largest_accepted_query_runs_on_both_backends() {
    const ENTRIES: usize = 1_000;
    const ARTEFACTS_PER_VERSION: usize = 30;
    for backend in both("largest_query").await {
        let db = &backend.db;
        put(
            db,
            &[
                finding(
                    Some("c-0"),
                    Some("1"),
                    "img-0",
                    "finding/vulnerability",
                    "first",
                ),
                finding(
                    Some("c-999"),
                    Some("1"),
                    "img-0",
                    "finding/vulnerability",
                    "last",
                ),
                // version-less, about an artefact of c-500's version 1
                finding(
                    Some("c-500"),
                    None,
                    "img-29",
                    "finding/vulnerability",
                    "shared",
                ),
                finding(
                    Some("c-1000"),
                    Some("1"),
                    "img-0",
                    "finding/vulnerability",
                    "not-asked",
                ),
            ],
        )
        .await;
        let version_artefacts: Vec<LocalArtefactId> = (0..ARTEFACTS_PER_VERSION)
            .map(|index| LocalArtefactId {
                artefact_name: Some(format!("img-{index}")),
                artefact_version: Some("1.0".into()),
                artefact_type: Some("ociImage".into()),
                ..Default::default()
            })
            .collect();
        let entries = (0..ENTRIES)
            .map(|index| QueryEntry {
                id: entry(Some(&format!("c-{index}")), Some("1")),
                version_artefacts: version_artefacts.clone(),
            })
            .collect();
        let query = MetadataQuery {
            types: vec!["finding/vulnerability".into()],
            entries,
            ..Default::default()
        };
        let rows = db.query(&query).await.unwrap_or_else(|error| {
            panic!("{}: {error}", backend.name);
        });
        assert_eq!(keys(&rows), ["first", "last", "shared"], "{}", backend.name);
        let ids: Vec<&str> = rows.iter().map(|row| row.id.as_str()).collect();
        let mut sorted = ids.clone();
        sorted.sort_unstable();
        assert_eq!(ids, sorted, "ordered by id");
    }
}

/// `/rescore`'s rows: this artefact's findings of the asked types (its version's and
/// version-less ones), and the rescorings and write-backs whose scope covers it, on both backends.
#[tokio::test]
async fn artefact_rows_are_the_artefacts_findings_and_the_scopes_covering_it() {
    let scoped = |component: Option<&str>,
                  artefact_name: Option<&str>,
                  r#type: &str,
                  key: &str,
                  referenced: &str| {
        json!({"artefact": {"component_name": component, "component_version": null, "artefact_kind": "resource",
                "artefact": {"artefact_name": artefact_name, "artefact_version": null, "artefact_type": "ociImage"}},
               "meta": {"datasource": "delivery-dashboard", "type": r#type},
               "data": {"key": key, "referenced_type": referenced}})
    };
    for backend in both("artefact_rows").await {
        let db = &backend.db;
        put(
            db,
            &[
                finding(
                    Some("c"),
                    Some("1"),
                    "img",
                    "finding/vulnerability",
                    "versioned",
                ),
                finding(Some("c"), None, "img", "finding/vulnerability", "shared"),
                finding(Some("c"), Some("1"), "img", "finding/malware", "other-type"),
                finding(
                    Some("c"),
                    Some("1"),
                    "other",
                    "finding/vulnerability",
                    "other-artefact",
                ),
                finding(
                    Some("c"),
                    Some("2"),
                    "img",
                    "finding/vulnerability",
                    "other-version",
                ),
                finding(
                    Some("d"),
                    Some("1"),
                    "img",
                    "finding/vulnerability",
                    "other-component",
                ),
                scoped(None, None, "rescorings", "global", "finding/vulnerability"),
                scoped(
                    Some("c"),
                    Some("img"),
                    "rescorings",
                    "artefact",
                    "finding/vulnerability",
                ),
                scoped(
                    Some("c"),
                    Some("other"),
                    "rescorings",
                    "other-artefact-rescoring",
                    "finding/vulnerability",
                ),
                scoped(
                    Some("c"),
                    None,
                    "rescorings",
                    "malware-rescoring",
                    "finding/malware",
                ),
                scoped(
                    Some("d"),
                    None,
                    "rescorings",
                    "other-component-rescoring",
                    "finding/vulnerability",
                ),
                scoped(Some("c"), None, "meta/scanner_writeback", "writeback", ""),
            ],
        )
        .await;
        let artefact = ComponentArtefactId {
            component_name: Some("c".into()),
            component_version: Some("1".into()),
            artefact: Some(LocalArtefactId {
                artefact_name: Some("img".into()),
                artefact_version: Some("1.0".into()),
                artefact_type: Some("ociImage".into()),
                artefact_extra_id: Default::default(),
            }),
            artefact_kind: Some(odg_delivery_db::ArtefactKind::Resource),
            references: Vec::new(),
        };
        let vulnerabilities = ["finding/vulnerability"];
        let rows = db
            .artefact_rows(&artefact, &vulnerabilities, &vulnerabilities)
            .await
            .unwrap();
        assert_eq!(
            keys(&rows),
            ["artefact", "global", "shared", "versioned", "writeback"],
            "{}",
            backend.name
        );
        let rows = db.artefact_rows(&artefact, &[], &[]).await.unwrap();
        assert_eq!(
            keys(&rows),
            [
                "artefact",
                "global",
                "malware-rescoring",
                "other-type",
                "shared",
                "versioned",
                "writeback"
            ],
            "{}",
            backend.name
        );
    }
}
