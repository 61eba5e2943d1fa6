//! Writes: identities, update vs. insert, discovery dates, all-or-nothing.

use odg_delivery_db::{
    by_id, classify, entry_id, entry_key, ArtefactMetadata, DiscoveryDateReuse, MetadataQuery,
    StoreErrorKind,
};
use serde_json::{json, Value};

use crate::support::{
    both, default_reuse, prepared, put, scan_info, vulnerability, SCAN_INFO_ID, VULNERABILITY_ID,
};

/// The entry key and id of an entry, as `identity.rs` computes them.
fn key_and_id(entry: &Value) -> (String, String) {
    let metadata = ArtefactMetadata::from_json(entry).unwrap();
    let payload = classify(metadata.data.as_object().unwrap()).unwrap();
    let key = entry_key(&metadata, payload.data_key.as_deref());
    let id = entry_id(&key);
    (key, id)
}

#[test]
fn the_reference_examples_have_the_originals_keys_and_ids() {
    let (key, id) = key_and_id(&vulnerability());
    assert_eq!(
        key,
        "example.org/my-component|None|my-image|1.2.3|ociImage|version:1.2.3|resource||bdba|finding/vulnerability|openssl|3.0.7|CVE-2023-0286"
    );
    assert_eq!(id, VULNERABILITY_ID);
    let (_, id) = key_and_id(&scan_info());
    assert_eq!(id, SCAN_INFO_ID);
}

#[tokio::test]
async fn the_reference_examples_keep_their_ids_and_update_in_place() {
    for backend in both("reference").await {
        let db = &backend.db;
        let report = put(db, &[vulnerability(), scan_info()]).await;
        assert_eq!(
            (report.inserted, report.updated),
            (2, 0),
            "{}",
            backend.name
        );
        let rows = by_id(db.query(&MetadataQuery::default()).await.unwrap());
        assert_eq!(rows.len(), 2);
        let stored = &rows[VULNERABILITY_ID];
        assert_eq!(
            stored.metadata.discovery_date.as_deref(),
            Some("2025-03-04")
        );
        assert_eq!(
            stored.metadata.allowed_processing_time.as_deref(),
            Some("2592000s")
        );
        assert!(rows.contains_key(SCAN_INFO_ID));
        let output = stored.metadata.to_json();
        assert_eq!(output["meta"]["creation_date"], "2025-03-04T10:15:00+00:00");
        assert!(
            output["meta"].as_object().unwrap().len() == 6,
            "all six meta keys"
        );

        // The same finding again, rescanned: same id, so an update. Data replaced; creation date,
        // discovery date and processing time kept; last_update and assignee mode taken.
        let mut again = vulnerability();
        again["data"]["summary"] = json!("updated summary");
        again["meta"]["creation_date"] = json!("2025-05-01T00:00:00+00:00");
        again["meta"]["last_update"] = json!("2025-05-01T00:00:00+00:00");
        again["meta"]["assignee_mode"] = json!("skip");
        again["discovery_date"] = json!("2025-05-01");
        again["allowed_processing_time"] = json!("1s");
        let report = put(db, &[again]).await;
        assert_eq!(
            (report.inserted, report.updated),
            (0, 1),
            "{}",
            backend.name
        );
        let rows = by_id(db.query(&MetadataQuery::default()).await.unwrap());
        let updated = &rows[VULNERABILITY_ID].metadata;
        assert_eq!(updated.data["summary"], "updated summary");
        assert_eq!(
            updated.meta.creation_date.as_deref(),
            Some("2025-03-04T10:15:00+00:00")
        );
        assert_eq!(
            updated.meta.last_update.as_deref(),
            Some("2025-05-01T00:00:00+00:00")
        );
        assert_eq!(updated.meta.assignee_mode.as_deref(), Some("skip"));
        assert_eq!(updated.discovery_date.as_deref(), Some("2025-03-04"));
        assert_eq!(updated.allowed_processing_time.as_deref(), Some("2592000s"));

        // One unexpected field in the payload: a plain object with another id, an insert.
        let mut untyped = vulnerability();
        untyped["data"]["unexpected"] = json!(true);
        let report = put(db, &[untyped]).await;
        assert_eq!((report.inserted, report.updated), (1, 0));

        // Delete by computed id; a missing row is a no-op.
        assert_eq!(
            db.delete(&prepared(&[scan_info(), scan_info()]))
                .await
                .unwrap(),
            1
        );
        assert_eq!(db.delete(&prepared(&[scan_info()])).await.unwrap(), 0);
        assert_eq!(db.query(&MetadataQuery::default()).await.unwrap().len(), 2);
    }
}

#[tokio::test]
async fn a_new_finding_reuses_its_siblings_discovery_date() {
    for backend in both("discovery").await {
        let db = &backend.db;
        put(db, &[vulnerability()]).await;
        // The same package and CVE in the next image version: another id, the old date.
        let mut next = vulnerability();
        next["artefact"]["artefact"]["artefact_version"] = json!("1.2.4");
        next["artefact"]["artefact"]["artefact_extra_id"] = json!({"version": "1.2.4"});
        next["discovery_date"] = json!("2025-06-01");
        // Another CVE: its own date.
        let mut other = next.clone();
        other["data"]["cve"] = json!("CVE-2024-0001");
        let report = put(db, &[next.clone(), other.clone()]).await;
        assert_eq!(report.inserted, 2, "{}", backend.name);
        let rows = db.query(&MetadataQuery::default()).await.unwrap();
        let date_of = |cve: &str, version: &str| {
            rows.iter()
                .find(|row| {
                    row.metadata.data["cve"] == cve
                        && row
                            .metadata
                            .artefact
                            .artefact
                            .as_ref()
                            .unwrap()
                            .artefact_version
                            .as_deref()
                            == Some(version)
                })
                .and_then(|row| row.metadata.discovery_date.clone())
        };
        assert_eq!(
            date_of("CVE-2023-0286", "1.2.4").as_deref(),
            Some("2025-03-04"),
            "{}",
            backend.name
        );
        assert_eq!(
            date_of("CVE-2024-0001", "1.2.4").as_deref(),
            Some("2025-06-01")
        );

        // With reuse turned off for the type, the submitted date stays.
        let mut third = vulnerability();
        third["artefact"]["artefact"]["artefact_version"] = json!("1.2.5");
        third["discovery_date"] = json!("2025-07-01");
        let no_reuse = |_: &str| DiscoveryDateReuse {
            enabled: false,
            max_reuse_time: None,
        };
        db.put(&prepared(&[third]), &no_reuse).await.unwrap();
        let rows = db.query(&MetadataQuery::default()).await.unwrap();
        assert!(rows
            .iter()
            .any(|row| row.metadata.discovery_date.as_deref() == Some("2025-07-01")));
        let _ = default_reuse;
    }
}

#[tokio::test]
async fn a_failing_entry_rolls_the_whole_write_back() {
    for backend in both("rollback").await {
        let db = &backend.db;
        // Invalid entries never reach the database: the request is refused naming the entry.
        let mut broken = scan_info();
        broken["artefact"]["artefact_kind"] = json!("image");
        let error = odg_delivery_db::prepare_entries(&[vulnerability(), broken]).unwrap_err();
        assert_eq!(error.kind(), StoreErrorKind::InvalidInput);
        assert!(
            error
                .to_string()
                .starts_with("entries[1].artefact.artefact_kind"),
            "{error}"
        );
        assert!(db
            .query(&MetadataQuery::default())
            .await
            .unwrap()
            .is_empty());
    }
    // PostgreSQL refuses NUL characters in text: a database error in the second statement
    // must take the first insert with it.
    let backend = crate::support::postgres("rollback_pg", |c| c).await;
    let mut nul = scan_info();
    nul["artefact"]["component_name"] = json!("bad\u{0}name");
    let result = backend
        .db
        .put(&prepared(&[vulnerability(), nul]), &default_reuse)
        .await;
    assert!(result.is_err());
    assert!(backend
        .db
        .query(&MetadataQuery::default())
        .await
        .unwrap()
        .is_empty());
}
