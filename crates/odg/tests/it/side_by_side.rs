//! odg and the original on one PostgreSQL database. The original's schema is created from its
//! `pg_dump` (`crates/odg-delivery-db/tests/data/original-delivery-db-schema.sql`) and filled with
//! rows shaped as the original writes them (Python's JSON, naive `isoformat` dates, `character(n)`
//! ids, a user with role bindings, a refresh token and an identifier, a blob); `odg serve` starts
//! on it and answers from those rows: the metadata query, the compliance summary with the
//! original's rescoring applied, `/auth/refresh` with the stored refresh token. Then the reverse:
//! what odg writes (PUT, DELETE, a login) read back through plain SQL in the original's shapes,
//! ids and digests recomputed from the columns as the original reads them. `odg db check` sees the
//! database as usable before and after.

use odg_test_support::TestDatabase;
use reqwest::StatusCode;
use serde_json::{json, Value};
use sha1::{Digest, Sha1};
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::Row;

use crate::harness::{
    odg_command, run_bounded, scanner_bot_login, scanner_bot_token_login, set_cookie, OdgServer,
};
use crate::metadata_support::vulnerability_categorisation;

const ORIGINAL_SCHEMA: &str =
    include_str!("../../../odg-delivery-db/tests/data/original-delivery-db-schema.sql");
const COMPONENT: &str = "acme.org/shop/cart";
const USER_ID: &str = "5f0c3a52-8d1e-4c4b-9a7e-2f1d6c0b9e11";
const REFRESH_IDENTIFIER: &str = "0b6f1f52-3c2d-4e0a-8f5b-6a7c8d9e0f12";

/// The original's `to_db_artefact_metadata`: columns from the entry, the id and data key as it
/// computes them (odg's identity is checked against the original's reference examples), the JSON
/// as Python's `json.dumps` writes it, the creation date from `meta`.
async fn insert_as_the_original(pool: &PgPool, entry: &Value) -> String {
    let prepared = odg_delivery_db::PreparedEntry::from_json(entry).expect("a valid entry");
    let artefact = &entry["artefact"];
    let local = &artefact["artefact"];
    let python_json = |value: &Value| {
        // Python's separators: ", " and ": "
        serde_json::to_string(value)
            .unwrap()
            .replace("\",\"", "\", \"")
            .replace("\":", "\": ")
    };
    let meta = python_json(&entry["meta"]);
    sqlx::query(
        "INSERT INTO artefact_metadata (id, creation_date, type, component_name, component_version, \
         artefact_kind, artefact_name, artefact_version, artefact_type, artefact_extra_id_normalised, \
         artefact_extra_id, meta, data, data_key, datasource, referenced_type, discovery_date, \
         allowed_processing_time) VALUES ($1, $2::timestamptz, $3, $4, $5, $6, $7, $8, $9, $10, \
         $11::json, $12::json, $13::json, $14, $15, $16, $17::date, $18)",
    )
    .bind(&prepared.id)
    .bind(entry["meta"]["creation_date"].as_str())
    .bind(entry["meta"]["type"].as_str())
    .bind(artefact["component_name"].as_str())
    .bind(artefact["component_version"].as_str())
    .bind(artefact["artefact_kind"].as_str())
    .bind(local["artefact_name"].as_str())
    .bind(local["artefact_version"].as_str())
    .bind(local["artefact_type"].as_str())
    .bind(
        prepared
            .metadata
            .artefact
            .artefact
            .as_ref()
            .map(|local| local.normalised_extra_id())
            .unwrap_or_default(),
    )
    .bind(python_json(&local["artefact_extra_id"]))
    .bind(meta)
    .bind(python_json(&entry["data"]))
    .bind(prepared.data_key_hash.as_deref())
    .bind(entry["meta"]["datasource"].as_str())
    .bind(prepared.referenced_type.as_deref())
    .bind(entry["discovery_date"].as_str())
    .bind(entry["allowed_processing_time"].as_str())
    .execute(pool)
    .await
    .expect("an original row");
    prepared.id
}

fn meta(datasource: &str, r#type: &str) -> Value {
    // all six keys, as `dataclasses.asdict` writes them; naive local `isoformat`
    json!({"datasource": datasource, "type": r#type, "creation_date": "2025-03-04T10:15:00.123456",
           "last_update": "2025-03-04T10:15:00.123456", "responsibles": null, "assignee_mode": null})
}

fn vulnerability(
    component_version: Option<&str>,
    artefact: &Value,
    cve: &str,
    severity: &str,
) -> Value {
    json!({"artefact": {"component_name": COMPONENT, "component_version": component_version, "artefact_kind": "resource", "artefact": artefact},
           "meta": meta("bdba", "finding/vulnerability"),
           "data": {"severity": severity, "package_name": "openssl", "package_version": "3.0.7", "base_url": "https://bdba",
                    "report_url": "https://bdba/1", "product_id": 1, "group_id": 2, "cve": cve,
                    "cvss_v3_score": 7.4, "cvss": {}, "summary": null},
           "discovery_date": "2025-03-04", "allowed_processing_time": "2592000s"})
}

async fn odg_db(subcommand: &str, url: &str) -> (bool, Value) {
    let mut command = odg_command();
    command.args(["db", subcommand, "--database-url", url, "--json"]);
    let output = run_bounded(command, "odg db").await;
    let report = serde_json::from_slice(&output.stdout).unwrap_or_else(|_| {
        panic!(
            "odg db {subcommand} printed no JSON: {}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    });
    (output.status.success(), report)
}

fn rows_of(report: &Value, table: &str) -> i64 {
    report["tables"]
        .as_array()
        .unwrap()
        .iter()
        .find(|entry| entry["name"] == table)
        .and_then(|entry| entry["rows"].as_i64())
        .unwrap_or(-1)
}

#[tokio::test]
async fn odg_runs_on_the_originals_database_and_writes_what_the_original_reads() {
    let database = TestDatabase::create("side_by_side").await;
    let url = database.url();
    let pool = PgPoolOptions::new()
        .max_connections(2)
        .connect(&url)
        .await
        .unwrap();
    sqlx::raw_sql(ORIGINAL_SCHEMA).execute(&pool).await.unwrap();

    // The original's users, identifiers and blobs, before odg ever saw the database.
    let exp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 3600;
    sqlx::query("INSERT INTO users (id, role_bindings, refresh_tokens) VALUES ($1, $2::json, $3::json)")
        .bind(USER_ID)
        .bind(r#"[{"name": "writer", "origin": {"type": "github", "hostname": "github.example", "organisation": "acme", "team": "scanners", "username": null, "app": null}}]"#)
        .bind(format!(r#"[{{"identifier": "{REFRESH_IDENTIFIER}", "exp": {exp}}}]"#))
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query("INSERT INTO user_identifiers (user_id, type, identifier_normalised_digest, identifier) VALUES ($1, 'github', $2, $3::json)")
        .bind(USER_ID)
        .bind(hex(&Sha1::digest(b"username:old-bot_email_address:None_hostname:github.example")))
        .bind(r#"{"username": "old-bot", "email_address": null, "hostname": "github.example"}"#)
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query("INSERT INTO blob_store (digest, creation_date, size, mime_type, ref) VALUES ('sha256:0123', now(), 3, 'text/plain', 'blobs/sha256:0123')")
        .execute(&pool)
        .await
        .unwrap();

    let (usable, report) = odg_db("check", &url).await;
    assert!(usable, "{report}");
    assert_eq!(report["pending_migrations"], json!([1, 2, 3, 4]));
    assert_eq!(rows_of(&report, "users"), 1);
    assert_eq!(rows_of(&report, "blob_store"), 1);
    assert_eq!(
        report["missing_indexes"],
        json!(["odg_artefact_metadata_siblings"])
    );

    // odg with a GitHub login, on that database.
    let directory = tempfile::tempdir().unwrap();
    let (github, config) = scanner_bot_login(directory.path()).await;
    let server = OdgServer::start(&["--config", &config, "--database-url", &url]).await;
    let base = server.base_url().to_string();
    let http = reqwest::Client::new();

    // The original's refresh token gives a session with the original's role bindings.
    let response = http
        .post(format!("{base}/auth/refresh"))
        .header(
            reqwest::header::COOKIE,
            format!("refresh_token={USER_ID}|{REFRESH_IDENTIFIER}"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK, "{}", server.log());
    let session = set_cookie(&response, "bearer_token").expect("a session");
    let rotated = set_cookie(&response, "refresh_token").expect("a new refresh token");
    let claims: Value = response.json().await.unwrap();
    assert_eq!(claims["roles"], json!(["writer"]));
    let tokens: String = sqlx::query_scalar("SELECT refresh_tokens::text FROM users WHERE id = $1")
        .bind(USER_ID)
        .fetch_one(&pool)
        .await
        .unwrap();
    let tokens: Value = serde_json::from_str(&tokens).unwrap();
    let new_identifier = rotated.split_once('|').unwrap().1;
    assert_eq!(tokens.as_array().unwrap().len(), 1, "{tokens}");
    assert_eq!(tokens[0]["identifier"], new_identifier, "rotated in place");
    assert!(tokens[0]["exp"].as_i64().unwrap() > 0);
    let auth = format!("bearer_token={session}");

    // Rows the original writes while odg runs: a scan info, two findings (BDBA writes them
    // without a component version), a rescoring of one of them, a compliance snapshot.
    let descriptor: Value = http
        .get(format!("{base}/ocm/component"))
        .header(reqwest::header::COOKIE, &auth)
        .query(&[("component_name", COMPONENT)])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let version = descriptor["component"]["version"]
        .as_str()
        .unwrap()
        .to_owned();
    let resource = &descriptor["component"]["resources"][0];
    let artefact = json!({"artefact_name": resource["name"], "artefact_version": resource["version"],
                          "artefact_type": resource["type"], "artefact_extra_id": resource.get("extraIdentity").cloned().unwrap_or(json!({}))});
    let scan_info = json!({"artefact": {"component_name": COMPONENT, "component_version": version, "artefact_kind": "resource", "artefact": artefact},
                           "meta": meta("bdba", "meta/artefact_scan_info"), "data": {}});
    let critical = vulnerability(None, &artefact, "CVE-2023-0001", "CRITICAL");
    let medium = vulnerability(None, &artefact, "CVE-2023-0002", "MEDIUM");
    let rescoring = json!({"artefact": {"component_name": COMPONENT, "component_version": null, "artefact_kind": "resource",
                                        "artefact": {"artefact_name": resource["name"], "artefact_version": null, "artefact_type": resource["type"], "artefact_extra_id": {}}},
                           "meta": meta("delivery-dashboard", "rescorings"),
                           "data": {"finding": {"package_name": "openssl", "cve": "CVE-2023-0001"}, "referenced_type": "finding/vulnerability",
                                    "severity": "NONE", "user": {"username": "jane"}, "matching_rules": ["original-severity"], "comment": "not reachable"}});
    let snapshot = json!({"artefact": {"component_name": COMPONENT, "component_version": version, "artefact_kind": "resource", "artefact": artefact},
                          "meta": meta("delivery-dashboard", "compliance/snapshots"),
                          "data": {"cfg_name": "bdba", "latest_processing_date": "2025-03-04", "correlation_id": "abc",
                                   "state": [{"timestamp": "2025-03-04T10:15:00", "status": "in_progress", "service": "bdba"}]}});
    let mut original_ids = Vec::new();
    for entry in [&scan_info, &critical, &medium, &rescoring, &snapshot] {
        original_ids.push(insert_as_the_original(&pool, entry).await);
    }

    // The query answers the original's rows in the original's shape.
    let response = http
        .post(format!("{base}/artefacts/metadata/query"))
        .header(reqwest::header::COOKIE, &auth)
        .json(&json!({"entries": [{"component_name": COMPONENT}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let rows: Vec<Value> = response.json().await.unwrap();
    let find = |rows: &[Value], r#type: &str, cve: Option<&str>| {
        rows.iter()
            .find(|row| {
                row["meta"]["type"] == r#type && cve.is_none_or(|cve| row["data"]["cve"] == cve)
            })
            .cloned()
            .unwrap_or_else(|| panic!("no {type} {cve:?} in {rows:?}"))
    };
    let read = find(&rows, "finding/vulnerability", Some("CVE-2023-0001"));
    assert_eq!(read["meta"], critical["meta"]);
    assert_eq!(read["data"], critical["data"]);
    assert_eq!(read["discovery_date"], "2025-03-04");
    assert_eq!(read["allowed_processing_time"], "2592000s");
    assert_eq!(
        read["artefact"]["artefact"],
        critical["artefact"]["artefact"]
    );
    assert_eq!(read["artefact"]["component_version"], Value::Null);
    assert_eq!(
        find(&rows, "compliance/snapshots", None)["data"],
        snapshot["data"]
    );
    assert_eq!(find(&rows, "rescorings", None)["data"], rescoring["data"]);

    // The summary applies the original's rescoring: CRITICAL rescored to NONE leaves MEDIUM.
    let summary_query = [
        ("component_name", COMPONENT),
        ("version", version.as_str()),
        ("recursion_depth", "0"),
    ];
    let summary = async || {
        let response = http
            .get(format!("{base}/components/compliance-summary"))
            .header(reqwest::header::COOKIE, &auth)
            .query(&summary_query)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        response.json::<Value>().await.unwrap()
    };
    assert_eq!(vulnerability_categorisation(&summary().await), "MEDIUM");

    // The reverse: a login, a PUT and a DELETE through odg, read back as the original reads them.
    let api_url = github.url().to_string();
    let response = scanner_bot_token_login(&http, &base, &api_url).await;
    assert_eq!(response.status(), StatusCode::OK, "{}", server.log());
    let login_refresh = set_cookie(&response, "refresh_token").expect("a refresh token");
    let (login_user, login_token) = login_refresh.split_once('|').unwrap();
    let user = sqlx::query(
        "SELECT id, length(id) AS length, role_bindings::text AS role_bindings, refresh_tokens::text AS refresh_tokens, \
         pg_typeof(role_bindings)::text AS json_type FROM users WHERE id = $1",
    )
    .bind(login_user)
    .fetch_one(&pool)
    .await
    .expect("the login's user row");
    assert_eq!(user.get::<i32, _>("length"), 36, "a uuid in character(36)");
    assert_eq!(user.get::<String, _>("json_type"), "json");
    let bindings: Value = serde_json::from_str(&user.get::<String, _>("role_bindings")).unwrap();
    assert!(
        bindings
            .as_array()
            .unwrap()
            .iter()
            .all(|binding| binding["name"].is_string() && binding["origin"]["type"].is_string()),
        "{bindings}"
    );
    let tokens: Value = serde_json::from_str(&user.get::<String, _>("refresh_tokens")).unwrap();
    assert_eq!(tokens[0]["identifier"], login_token);
    assert!(tokens[0]["exp"].is_i64());
    let identifier = sqlx::query(
        "SELECT type, identifier_normalised_digest AS digest, identifier::text AS identifier \
         FROM user_identifiers WHERE user_id = $1",
    )
    .bind(login_user)
    .fetch_one(&pool)
    .await
    .unwrap();
    let identity: Value = serde_json::from_str(&identifier.get::<String, _>("identifier")).unwrap();
    let normalised = format!(
        "username:{}_email_address:{}_hostname:{}",
        identity["username"].as_str().unwrap(),
        identity["email_address"].as_str().unwrap_or("None"),
        identity["hostname"].as_str().unwrap()
    );
    assert_eq!(identifier.get::<String, _>("type"), "github");
    assert_eq!(
        identifier.get::<String, _>("digest"),
        hex(&Sha1::digest(normalised.as_bytes()))
    );

    // The original's cached summary part of this component version's vulnerabilities (its id
    // as the original computes it; the unit tests of `compliance_summary_cache_ids` hold
    // vectors made by the original's own code) and an unrelated entry of its cache.
    let [part] = <[String; 1]>::try_from(odg_delivery_db::compliance_summary_cache_ids(
        Some(COMPONENT),
        Some(&version),
        "finding/vulnerability",
        "bdba",
    ))
    .unwrap();
    for id in [part.as_str(), "0123456789abcdef0123456789abcdef"] {
        sqlx::query(
            "INSERT INTO cache (id, descriptor, value) VALUES ($1, '{}'::json, '\\x00'::bytea)",
        )
        .bind(id)
        .execute(&pool)
        .await
        .unwrap();
    }

    // odg writes a finding (the original's client leaves dates out) and updates the rescored one.
    let mut written = vulnerability(None, &artefact, "CVE-2023-0003", "HIGH");
    written["meta"] = json!({"datasource": "bdba", "type": "finding/vulnerability"});
    written.as_object_mut().unwrap().remove("discovery_date");
    let mut rescanned = critical.clone();
    rescanned["meta"]["last_update"] = json!("2025-06-01T00:00:00+00:00");
    rescanned["data"]["summary"] = json!("rescanned");
    // The scan info is versioned: it makes the original's parts of its datasource stale (the
    // version-less findings cannot: the original has no id for them and skips them too).
    let mut rescan_info = scan_info.clone();
    rescan_info["meta"]["last_update"] = json!("2025-06-01T00:00:00+00:00");
    let response = http
        .put(format!("{base}/artefacts/metadata"))
        .header(reqwest::header::COOKIE, &auth)
        .json(&json!({"entries": [written, rescanned, rescan_info]}))
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success(), "{}", server.log());
    assert_eq!(vulnerability_categorisation(&summary().await), "HIGH");
    // ... and marks the original's stale part for deletion, as the original's own write would.
    let marked: Vec<(String, bool)> =
        sqlx::query_as("SELECT trim(id), delete_after IS NOT NULL FROM cache ORDER BY id")
            .fetch_all(&pool)
            .await
            .unwrap();
    for (id, is_marked) in &marked {
        assert_eq!(*is_marked, *id == part, "{id}: {marked:?}");
    }

    let stored = sqlx::query(
        "SELECT id, type, component_name, component_version, artefact_kind, artefact_name, artefact_version, \
         artefact_type, artefact_extra_id_normalised, artefact_extra_id::text AS extra, meta::text AS meta, \
         data::text AS data, data_key, datasource, referenced_type, discovery_date::text AS discovery_date, \
         allowed_processing_time, creation_date IS NOT NULL AS created, pg_typeof(meta)::text AS json_type \
         FROM artefact_metadata WHERE type = 'finding/vulnerability' ORDER BY id",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(stored.len(), 3);
    for row in &stored {
        // As the original's `db_artefact_metadata_to_dict` rebuilds an entry from the columns.
        let meta: Value = serde_json::from_str(&row.get::<String, _>("meta")).unwrap();
        let mut keys: Vec<&String> = meta.as_object().unwrap().keys().collect();
        keys.sort();
        assert_eq!(
            keys,
            [
                "assignee_mode",
                "creation_date",
                "datasource",
                "last_update",
                "responsibles",
                "type"
            ],
            "the original's Metadata fields only (it reads them strictly)"
        );
        let entry = json!({
            "artefact": {"component_name": row.get::<Option<String>, _>("component_name"),
                         "component_version": row.get::<Option<String>, _>("component_version"),
                         "artefact_kind": row.get::<Option<String>, _>("artefact_kind"),
                         "artefact": {"artefact_name": row.get::<Option<String>, _>("artefact_name"),
                                      "artefact_version": row.get::<Option<String>, _>("artefact_version"),
                                      "artefact_type": row.get::<Option<String>, _>("artefact_type"),
                                      "artefact_extra_id": serde_json::from_str::<Value>(&row.get::<String, _>("extra")).unwrap()}},
            "meta": meta,
            "data": serde_json::from_str::<Value>(&row.get::<String, _>("data")).unwrap(),
            "discovery_date": row.get::<Option<String>, _>("discovery_date"),
            "allowed_processing_time": row.get::<Option<String>, _>("allowed_processing_time"),
        });
        let recomputed = odg_delivery_db::PreparedEntry::from_json(&entry).expect("readable");
        assert_eq!(
            row.get::<String, _>("id"),
            recomputed.id,
            "the id recomputes"
        );
        assert_eq!(
            row.get::<Option<String>, _>("data_key"),
            recomputed.data_key_hash
        );
        assert_eq!(
            row.get::<String, _>("artefact_extra_id_normalised"),
            recomputed
                .metadata
                .artefact
                .artefact
                .as_ref()
                .unwrap()
                .normalised_extra_id()
        );
        assert_eq!(row.get::<String, _>("json_type"), "json");
        assert!(row.get::<bool, _>("created"));
        if entry["data"]["cve"] == "CVE-2023-0001" {
            assert_eq!(
                row.get::<String, _>("id"),
                original_ids[1],
                "updated in place"
            );
            assert_eq!(entry["data"]["summary"], "rescanned");
            assert_eq!(entry["meta"]["creation_date"], "2025-03-04T10:15:00.123456");
            assert_eq!(entry["meta"]["last_update"], "2025-06-01T00:00:00+00:00");
            assert_eq!(entry["discovery_date"], "2025-03-04");
        }
    }

    // DELETE by the original's id.
    let response = http
        .delete(format!("{base}/artefacts/metadata"))
        .header(reqwest::header::COOKIE, &auth)
        .json(&json!({"entries": [medium]}))
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success());
    let left: i64 = sqlx::query_scalar("SELECT count(*) FROM artefact_metadata WHERE id = $1")
        .bind(&original_ids[2])
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(left, 0);

    // A value longer than the original's column: a 400 naming the field, nothing written.
    let mut long = vulnerability(None, &artefact, "CVE-2023-0004", "LOW");
    long["artefact"]["component_version"] = json!("1".repeat(65));
    let response = http
        .put(format!("{base}/artefacts/metadata"))
        .header(reqwest::header::COOKIE, &auth)
        .json(&json!({"entries": [long]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body: Value = response.json().await.unwrap();
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("artefact.component_version"),
        "{body}"
    );

    let (usable, report) = odg_db("check", &url).await;
    assert!(usable, "{report}");
    assert_eq!(report["pending_migrations"], json!([]));
    assert_eq!(report["missing_indexes"], json!([]));
    assert_eq!(rows_of(&report, "artefact_metadata"), 5);
    assert_eq!(rows_of(&report, "users"), 2);
    assert!(report["tables"]
        .as_array()
        .unwrap()
        .iter()
        .all(|table| table["different_types"] == json!([])));
    drop(server);
    pool.close().await;
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}
