//! The original's schema: odg migrates a database the original created without changing its
//! tables, writes rows in the original's column types, refuses its own pre-release schema, and
//! refuses values longer than the original's columns before any SQL runs.

use odg_delivery_db::{DatabaseConfig, DeliveryDb, MetadataQuery, StoreErrorKind};
use odg_test_support::TestDatabase;
use serde_json::{json, Value};
use sqlx::postgres::PgPoolOptions;
use sqlx::Row;

use crate::support::{default_reuse, prepared, put, vulnerability, VULNERABILITY_ID};

/// The original's schema as its SQLAlchemy models create it (`pg_dump --schema-only`).
pub const ORIGINAL_SCHEMA: &str = include_str!("../data/original-delivery-db-schema.sql");

/// odg's schema before its first release (the rewritten migration 0001 replaced it).
const PRE_RELEASE_SCHEMA: &str = "CREATE TABLE artefact_metadata (id TEXT PRIMARY KEY NOT NULL, \
    creation_date TEXT, last_update_ms BIGINT, type TEXT NOT NULL, datasource TEXT NOT NULL, \
    component_name TEXT, component_version TEXT, artefact_kind TEXT, artefact_name TEXT, \
    artefact_version TEXT, artefact_type TEXT, artefact_extra_id_normalised TEXT NOT NULL, \
    artefact TEXT NOT NULL, meta TEXT NOT NULL, data TEXT NOT NULL, data_key TEXT, \
    referenced_type TEXT, discovery_date TEXT, allowed_processing_time TEXT)";

async fn pg(database: &TestDatabase) -> sqlx::PgPool {
    PgPoolOptions::new()
        .max_connections(1)
        .connect(&database.url())
        .await
        .unwrap()
}

/// A fresh PostgreSQL database with the original's schema: it, a pool on it, and its config.
async fn original_database(name: &str) -> (TestDatabase, sqlx::PgPool, DatabaseConfig) {
    let database = TestDatabase::create(name).await;
    let pool = pg(&database).await;
    sqlx::raw_sql(ORIGINAL_SCHEMA)
        .execute(&pool)
        .await
        .expect("the original's schema");
    let config = DatabaseConfig::new(database.url());
    (database, pool, config)
}

#[tokio::test]
async fn an_original_database_is_migrated_without_changing_its_tables() {
    let (_database, pool, config) = original_database("originalschema").await;

    let before = DeliveryDb::inspect(&config).await.unwrap();
    assert!(before.usable(), "{:?}", before.problems);
    assert_eq!(before.applied_migrations, Vec::<i64>::new());
    assert_eq!(before.pending_migrations, vec![1, 2, 3, 4]);
    assert!(before.tables.iter().all(|table| table.present
        && table.rows == Some(0)
        && table.missing_columns.is_empty()
        && table.different_types.is_empty()));
    assert_eq!(
        before.missing_indexes,
        vec!["odg_artefact_metadata_siblings"]
    );

    DeliveryDb::migrate(&config).await.unwrap();
    let after = DeliveryDb::inspect(&config).await.unwrap();
    assert!(after.usable(), "{:?}", after.problems);
    assert_eq!(after.applied_migrations, vec![1, 2, 3, 4]);
    assert!(after.pending_migrations.is_empty());
    assert!(after.missing_indexes.is_empty());
    assert_eq!(
        after.tables, before.tables,
        "the original's tables as they were"
    );

    // A write lands in the original's column types.
    let db = DeliveryDb::connect(&config).await.unwrap();
    put(&db, &[vulnerability()]).await;
    let row = sqlx::query(
        "SELECT id, pg_typeof(meta)::text AS meta_type, discovery_date::text AS discovery_date, \
         creation_date = '2025-03-04T10:15:00+00:00'::timestamptz AS created, \
         artefact_extra_id::text AS extra, data->>'cve' AS cve, data_key FROM artefact_metadata",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(row.get::<String, _>("id"), VULNERABILITY_ID);
    assert_eq!(row.get::<String, _>("meta_type"), "json");
    assert_eq!(row.get::<String, _>("discovery_date"), "2025-03-04");
    assert!(row.get::<bool, _>("created"));
    assert_eq!(
        serde_json::from_str::<Value>(&row.get::<String, _>("extra")).unwrap(),
        json!({"version": "1.2.3"})
    );
    assert_eq!(row.get::<String, _>("cve"), "CVE-2023-0286");
    assert_eq!(row.get::<String, _>("data_key").len(), 40);
    let rows = db.query(&MetadataQuery::default()).await.unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].id, VULNERABILITY_ID, "no character(n) padding");
    db.close().await;
    pool.close().await;
}

#[tokio::test]
async fn the_pre_release_schema_is_refused_with_a_clear_error() {
    let directory = tempfile::tempdir().unwrap();
    let sqlite = DatabaseConfig::sqlite_file(&directory.path().join("old.sqlite"));
    let database = TestDatabase::create("prerelease").await;
    let postgres = DatabaseConfig::new(database.url());
    {
        let pool = pg(&database).await;
        sqlx::raw_sql(PRE_RELEASE_SCHEMA)
            .execute(&pool)
            .await
            .unwrap();
        pool.close().await;
        let options: sqlx::sqlite::SqliteConnectOptions = sqlite
            .url
            .parse::<sqlx::sqlite::SqliteConnectOptions>()
            .unwrap();
        let pool = sqlx::SqlitePool::connect_with(options).await.unwrap();
        sqlx::raw_sql(PRE_RELEASE_SCHEMA)
            .execute(&pool)
            .await
            .unwrap();
        pool.close().await;
    }
    for config in [sqlite, postgres] {
        let error = DeliveryDb::connect(&config).await.unwrap_err().to_string();
        assert!(error.contains("unreleased odg"), "{error}");
        let report = DeliveryDb::inspect(&config).await.unwrap();
        assert!(report.pre_release_schema);
        assert!(!report.usable());
        assert!(report.problems[0].contains("unreleased odg"));
    }
}

#[tokio::test]
async fn values_longer_than_the_original_columns_are_refused_before_sql() {
    for backend in crate::support::both("longvalues").await {
        let mut long = vulnerability();
        long["artefact"]["component_name"] = json!("c".repeat(257));
        let error = backend
            .db
            .put(&prepared(&[vulnerability(), long]), &default_reuse)
            .await
            .unwrap_err();
        assert_eq!(
            error.kind(),
            StoreErrorKind::InvalidInput,
            "{}",
            backend.name
        );
        assert!(
            error
                .to_string()
                .starts_with("entries[1].artefact.component_name"),
            "{error}"
        );
        let mut old = vulnerability();
        old["discovery_date"] = json!("0000-01-01");
        let error = backend
            .db
            .put(&prepared(&[old]), &default_reuse)
            .await
            .unwrap_err();
        assert_eq!(error.kind(), StoreErrorKind::InvalidInput);
        assert!(error.to_string().starts_with("entries[0].discovery_date"));
        // At the limit: stored.
        let mut longest = vulnerability();
        longest["artefact"]["component_name"] = json!("c".repeat(256));
        longest["allowed_processing_time"] = json!("1234567890123456");
        put(&backend.db, &[longest]).await;
        assert!(backend
            .db
            .query(&MetadataQuery::default())
            .await
            .unwrap()
            .iter()
            .all(|row| row.metadata.artefact.component_name.as_deref() == Some(&"c".repeat(256))));
    }
}

#[tokio::test]
async fn a_new_sqlite_database_has_the_same_logical_schema() {
    let directory = tempfile::tempdir().unwrap();
    let config = DatabaseConfig::sqlite_file(&directory.path().join("new.sqlite"));
    assert!(
        DeliveryDb::inspect(&config).await.is_err(),
        "a check creates no file"
    );
    assert!(!directory.path().join("new.sqlite").exists());
    DeliveryDb::migrate(&config).await.unwrap();
    let report = DeliveryDb::inspect(&config).await.unwrap();
    assert!(report.usable(), "{:?}", report.problems);
    assert_eq!(report.applied_migrations, vec![1, 2, 3, 4]);
    assert!(report.missing_indexes.is_empty());
    assert!(report
        .tables
        .iter()
        .all(|table| table.present && table.missing_columns.is_empty()));
}

/// The original's `DELETE /cache` on a shared database: odg marks the original's cache row for
/// deletion, now or at the given time, in the original's `timestamp with time zone` column.
#[tokio::test]
async fn original_cache_entries_are_marked_for_deletion_as_the_original_marks_them() {
    let (_database, pool, config) = original_database("originalcachemark").await;
    DeliveryDb::migrate(&config).await.unwrap();
    let db = DeliveryDb::connect(&config).await.unwrap();
    let id = "0123456789abcdef0123456789abcdef";
    sqlx::query("INSERT INTO cache (id, descriptor, size, value) VALUES ($1, '{}', 1, '\\x00')")
        .bind(id)
        .execute(&pool)
        .await
        .unwrap();
    let delete_after = |pool: sqlx::PgPool| async move {
        sqlx::query("SELECT delete_after::text AS at FROM cache WHERE id = $1")
            .bind(id)
            .fetch_one(&pool)
            .await
            .unwrap()
            .get::<Option<String>, _>("at")
    };
    assert_eq!(delete_after(pool.clone()).await, None);
    assert!(db
        .mark_original_cache_entry(id, Some("2099-01-02T03:04:05+00:00"))
        .await
        .unwrap());
    assert_eq!(
        delete_after(pool.clone()).await.as_deref(),
        Some("2099-01-02 03:04:05+00")
    );
    assert!(db.mark_original_cache_entry(id, None).await.unwrap());
    assert!(delete_after(pool.clone()).await.unwrap().starts_with("20"));
    assert!(!db
        .mark_original_cache_entry("ffffffffffffffffffffffffffffffff", None)
        .await
        .unwrap());
}
