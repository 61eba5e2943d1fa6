//! `odg db check` and `odg db migrate` as a user runs them, on PostgreSQL and SQLite: a new
//! database (check: nothing applied, exit 0; migrate: everything applied), the original's schema,
//! odg's pre-release schema (exit non-zero, the reason named), a missing SQLite file (not created).

use odg_test_support::TestDatabase;
use serde_json::{json, Value};

use crate::harness::{odg_command, run_bounded};

async fn odg_db(args: &[&str]) -> (bool, String, String) {
    let mut command = odg_command();
    command.arg("db").args(args);
    let output = run_bounded(command, "odg db").await;
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

async fn report(subcommand: &str, url: &str) -> (bool, Value) {
    let (success, stdout, stderr) = odg_db(&[subcommand, "--database-url", url, "--json"]).await;
    let report =
        serde_json::from_str(&stdout).unwrap_or_else(|error| panic!("{error}: {stdout}\n{stderr}"));
    (success, report)
}

#[tokio::test]
async fn check_and_migrate_on_both_backends() {
    let database = TestDatabase::create("db_commands").await;
    let directory = tempfile::tempdir().unwrap();
    let sqlite = format!("sqlite://{}", directory.path().join("db.sqlite").display());
    // The SQLite file must exist for a check (a check creates nothing); migrate creates it.
    let (success, _, stderr) = odg_db(&["check", "--database-url", &sqlite]).await;
    assert!(!success);
    assert!(stderr.contains("no SQLite database"), "{stderr}");
    assert!(!directory.path().join("db.sqlite").exists());
    let sqlite = format!("{sqlite}?mode=rwc");

    for url in [database.url(), sqlite] {
        if url.starts_with("postgres") {
            let (success, report) = report("check", &url).await;
            assert!(success, "{report}");
            assert_eq!(report["applied_migrations"], json!([]));
            assert_eq!(report["pending_migrations"], json!([1, 2, 3, 4]));
            assert!(report["tables"]
                .as_array()
                .unwrap()
                .iter()
                .all(|table| table["present"] == false));
        }
        let (success, report) = report("migrate", &url).await;
        assert!(success, "{report}");
        assert_eq!(report["usable"], true);
        assert_eq!(report["applied_migrations"], json!([1, 2, 3, 4]));
        assert_eq!(report["pending_migrations"], json!([]));
        assert_eq!(report["missing_indexes"], json!([]));
        assert!(report["tables"]
            .as_array()
            .unwrap()
            .iter()
            .all(|table| table["present"] == true && table["rows"] == 0));

        // Human-readable: the same facts.
        let (success, stdout, _) = odg_db(&["check", "--database-url", &url]).await;
        assert!(success);
        assert!(
            stdout.contains("odg migrations applied: 1, 2, 3, 4"),
            "{stdout}"
        );
        assert!(stdout.contains("artefact_metadata"), "{stdout}");
        assert!(stdout.contains("usable: yes"), "{stdout}");
    }
}

#[tokio::test]
async fn the_pre_release_schema_makes_check_fail() {
    let database = TestDatabase::create("db_prerelease").await;
    let pool = sqlx::PgPool::connect(&database.url()).await.unwrap();
    sqlx::raw_sql(
        "CREATE TABLE artefact_metadata (id TEXT PRIMARY KEY, last_update_ms BIGINT, type TEXT, \
         artefact TEXT, meta TEXT, data TEXT)",
    )
    .execute(&pool)
    .await
    .unwrap();
    pool.close().await;
    let (success, report) = report("check", &database.url()).await;
    assert!(!success);
    assert_eq!(report["usable"], false);
    assert_eq!(report["pre_release_schema"], true);
    let (success, stdout, stderr) = odg_db(&["check", "--database-url", &database.url()]).await;
    assert!(!success);
    assert!(stdout.contains("usable: no"), "{stdout}");
    assert!(stdout.contains("unreleased odg"), "{stdout}");
    assert!(stderr.contains("cannot run on this database"), "{stderr}");
    let (success, _, stderr) = odg_db(&["migrate", "--database-url", &database.url()]).await;
    assert!(!success);
    assert!(stderr.contains("unreleased odg"), "{stderr}");
}
