//! Databases for the tests: both backends, and entry builders.

use std::time::Duration;

use odg_delivery_db::{
    prepare_entries, DatabaseConfig, DeliveryDb, DiscoveryDateReuse, PreparedEntry,
};
use odg_test_support::TestDatabase;
use serde_json::{json, Value};

/// A database under test and what keeps it alive.
pub struct Backend {
    pub db: DeliveryDb,
    pub name: &'static str,
    _postgres: Option<TestDatabase>,
    _directory: Option<tempfile::TempDir>,
}

pub async fn sqlite(config: impl Fn(DatabaseConfig) -> DatabaseConfig) -> Backend {
    let directory = tempfile::tempdir().unwrap();
    let db = DeliveryDb::connect(&config(DatabaseConfig::sqlite_file(
        &directory.path().join("nested/delivery.sqlite"),
    )))
    .await
    .expect("open SQLite");
    Backend {
        db,
        name: "sqlite",
        _postgres: None,
        _directory: Some(directory),
    }
}

pub async fn postgres(test: &str, config: impl Fn(DatabaseConfig) -> DatabaseConfig) -> Backend {
    let database = TestDatabase::create(test).await;
    let db = DeliveryDb::connect(&config(DatabaseConfig::new(database.url())))
        .await
        .expect("open PostgreSQL");
    Backend {
        db,
        name: "postgres",
        _postgres: Some(database),
        _directory: None,
    }
}

/// Both backends with the default pool settings.
pub async fn both(test: &str) -> Vec<Backend> {
    vec![sqlite(|c| c).await, postgres(test, |c| c).await]
}

pub fn default_reuse(_: &str) -> DiscoveryDateReuse {
    DiscoveryDateReuse::default()
}

pub fn prepared(values: &[Value]) -> Vec<PreparedEntry> {
    prepare_entries(values).expect("valid entries")
}

pub async fn put(db: &DeliveryDb, values: &[Value]) -> odg_delivery_db::PutReport {
    db.put(&prepared(values), &default_reuse)
        .await
        .expect("put")
}

/// The reference's vulnerability finding (id `2093e5c71e75adb0c50b7890760f4280`).
pub fn vulnerability() -> Value {
    json!({"artefact": {"component_name": "example.org/my-component", "component_version": null, "artefact_kind": "resource",
        "artefact": {"artefact_name": "my-image", "artefact_version": "1.2.3", "artefact_type": "ociImage",
                     "artefact_extra_id": {"version": "1.2.3"}}},
     "meta": {"datasource": "bdba", "type": "finding/vulnerability", "creation_date": "2025-03-04T10:15:00+00:00"},
     "data": {"severity": "HIGH", "package_name": "openssl", "package_version": "3.0.7",
              "base_url": "https://bdba.example.org", "report_url": "https://bdba.example.org/products/4711/",
              "product_id": 4711, "group_id": 42, "cve": "CVE-2023-0286", "cvss_v3_score": 7.4,
              "cvss": {"access_vector": "N", "attack_complexity": "H", "user_interaction": "N", "privileges_required": "N",
                       "scope": "U", "confidentiality": "H", "integrity": "N", "availability": "H"},
              "summary": "X.400 address type confusion"},
     "discovery_date": "2025-03-04", "allowed_processing_time": "2592000s"})
}

/// The reference's scan info (id `f57c6894ca07a1615ef329e5127e6065`).
pub fn scan_info() -> Value {
    json!({"artefact": {"component_name": "example.org/my-component", "component_version": "0.1.0", "artefact_kind": "resource",
        "artefact": {"artefact_name": "my-image", "artefact_version": "1.2.3", "artefact_type": "ociImage",
                     "artefact_extra_id": {"version": "1.2.3"}}},
     "meta": {"datasource": "bdba", "type": "meta/artefact_scan_info", "creation_date": "2025-03-04T10:14:02+00:00"},
     "data": {"report_url": "https://bdba.example.org/products/4711/", "product_id": 4711}})
}

pub const VULNERABILITY_ID: &str = "2093e5c71e75adb0c50b7890760f4280";
pub const SCAN_INFO_ID: &str = "f57c6894ca07a1615ef329e5127e6065";

pub const SHORT: Duration = Duration::from_millis(300);
