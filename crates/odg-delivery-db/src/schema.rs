//! The schema a database has, as found (read-only): odg's applied migrations, the original's
//! tables with their columns and row counts, odg's indexes, and odg's pre-release schema (which
//! odg refuses: it had an `artefact_metadata` of its own, with `artefact` and `last_update_ms`
//! columns, that neither the original nor this odg reads). Behind `odg db check`, and the check
//! every start runs before migrating.

use serde::Serialize;
use sqlx::Row;

use crate::store::{Backend, DatabaseConfig, DeliveryDb};
use crate::StoreError;

/// A column: name, PostgreSQL type, length.
pub type ExpectedColumn = (&'static str, &'static str, Option<i64>);

/// The original's tables and columns with their PostgreSQL types as `information_schema` names
/// them (`character(n)` is `character` with length n).
pub const ORIGINAL_TABLES: &[(&str, &[ExpectedColumn])] = &[
    (
        "artefact_metadata",
        &[
            ("id", "character", Some(32)),
            ("creation_date", "timestamp with time zone", None),
            ("type", "character varying", Some(64)),
            ("component_name", "character varying", Some(256)),
            ("component_version", "character varying", Some(64)),
            ("artefact_kind", "character varying", Some(32)),
            ("artefact_name", "character varying", Some(128)),
            ("artefact_version", "character varying", Some(64)),
            ("artefact_type", "character varying", Some(64)),
            (
                "artefact_extra_id_normalised",
                "character varying",
                Some(1024),
            ),
            ("artefact_extra_id", "json", None),
            ("meta", "json", None),
            ("data", "json", None),
            ("data_key", "character", Some(40)),
            ("datasource", "character varying", Some(64)),
            ("referenced_type", "character varying", Some(64)),
            ("discovery_date", "date", None),
            ("allowed_processing_time", "character varying", Some(16)),
        ],
    ),
    (
        "users",
        &[
            ("id", "character", Some(36)),
            ("creation_date", "timestamp with time zone", None),
            ("role_bindings", "json", None),
            ("refresh_tokens", "json", None),
        ],
    ),
    (
        "user_identifiers",
        &[
            ("user_id", "character", Some(36)),
            ("type", "character varying", Some(32)),
            ("identifier_normalised_digest", "character", Some(40)),
            ("identifier", "json", None),
        ],
    ),
    (
        "cache",
        &[
            ("id", "character", Some(32)),
            ("descriptor", "json", None),
            ("creation_date", "timestamp with time zone", None),
            ("last_update", "timestamp with time zone", None),
            ("delete_after", "timestamp with time zone", None),
            ("keep_until", "timestamp with time zone", None),
            ("last_read", "timestamp with time zone", None),
            ("read_count", "integer", None),
            ("revision", "integer", None),
            ("costs", "integer", None),
            ("size", "integer", None),
            ("value", "bytea", None),
        ],
    ),
    (
        "blob_store",
        &[
            ("digest", "character varying", Some(256)),
            ("creation_date", "timestamp with time zone", None),
            ("size", "integer", None),
            ("mime_type", "character varying", Some(512)),
            ("ref", "character varying", Some(1024)),
        ],
    ),
];

/// The indexes odg's migrations create on `artefact_metadata` (the first is the original's own).
pub const ODG_INDEXES: [&str; 2] = [
    "ix_artefact_metadata_component_name",
    "odg_artefact_metadata_siblings",
];

/// Columns only odg's pre-release schema had.
const PRE_RELEASE_COLUMNS: [&str; 2] = ["artefact", "last_update_ms"];

/// One of the original's tables as found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TableReport {
    pub name: String,
    pub present: bool,
    /// `None` when the table is absent.
    pub rows: Option<i64>,
    /// Expected columns the table lacks.
    pub missing_columns: Vec<String>,
    /// PostgreSQL: columns whose type differs from the original's, as `column: found (expected)`.
    pub different_types: Vec<String>,
}

/// What `odg db check` reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SchemaReport {
    /// The URL without its password.
    pub database: String,
    pub backend: &'static str,
    /// Versions of odg's migrations applied to this database.
    pub applied_migrations: Vec<i64>,
    /// Versions this odg has and has not applied yet (`odg db migrate` applies them).
    pub pending_migrations: Vec<i64>,
    pub tables: Vec<TableReport>,
    /// odg's indexes absent from `artefact_metadata`.
    pub missing_indexes: Vec<String>,
    /// The database has odg's pre-release `artefact_metadata` (unusable).
    pub pre_release_schema: bool,
    /// Why odg cannot run on this database (empty: it can).
    pub problems: Vec<String>,
}

impl SchemaReport {
    /// Whether odg can run on the database (after `odg db migrate` applies pending migrations).
    pub fn usable(&self) -> bool {
        self.problems.is_empty()
    }
}

/// The message for a database with odg's pre-release schema.
pub(crate) fn pre_release_message(database: &str) -> String {
    format!(
        "{database} has the artefact_metadata table of an unreleased odg (columns artefact and \
         last_update_ms), which this odg cannot read; move it aside (e.g. ALTER TABLE \
         artefact_metadata RENAME TO artefact_metadata_prerelease, and delete its row from \
         _sqlx_migrations) or start on a new database"
    )
}

impl DeliveryDb {
    /// The columns of `table` (empty when it does not exist), with their types and lengths
    /// (PostgreSQL; SQLite gives declared types and no lengths).
    async fn columns_of(
        &self,
        table: &str,
    ) -> Result<Vec<(String, String, Option<i64>)>, StoreError> {
        let sql = match self.backend() {
            Backend::Postgres => {
                "SELECT CAST(column_name AS TEXT) AS name, CAST(data_type AS TEXT) AS type, \
                 CAST(character_maximum_length AS BIGINT) AS length \
                 FROM information_schema.columns \
                 WHERE table_schema = current_schema() AND table_name = $1 ORDER BY ordinal_position"
            }
            Backend::Sqlite => {
                "SELECT name, type, CAST(NULL AS INTEGER) AS length FROM pragma_table_info($1)"
            }
        };
        let rows = sqlx::query(sql)
            .bind(table.to_string())
            .fetch_all(&self.inner().pool)
            .await
            .map_err(|e| self.error(e))?;
        rows.iter()
            .map(|row| {
                let name: String = row.try_get("name").map_err(|e| self.error(e))?;
                let kind: Option<String> = row.try_get("type").map_err(|e| self.error(e))?;
                let length: Option<i64> = row.try_get("length").map_err(|e| self.error(e))?;
                Ok((name, kind.unwrap_or_default(), length))
            })
            .collect()
    }

    /// Refuses odg's pre-release schema (before any migration runs on it).
    pub(crate) async fn refuse_pre_release_schema(&self) -> Result<(), StoreError> {
        let columns = self.columns_of("artefact_metadata").await?;
        if columns
            .iter()
            .any(|(name, _, _)| PRE_RELEASE_COLUMNS.contains(&name.as_str()))
        {
            return Err(StoreError::Config(pre_release_message(
                &self.inner().redacted_url,
            )));
        }
        Ok(())
    }

    async fn table_exists(&self, table: &str) -> Result<bool, StoreError> {
        Ok(!self.columns_of(table).await?.is_empty())
    }

    async fn applied_migrations(&self) -> Result<Vec<i64>, StoreError> {
        if !self.table_exists("_sqlx_migrations").await? {
            return Ok(Vec::new());
        }
        let rows =
            sqlx::query("SELECT version FROM _sqlx_migrations WHERE success ORDER BY version")
                .fetch_all(&self.inner().pool)
                .await
                .map_err(|e| self.error(e))?;
        rows.iter()
            .map(|row| row.try_get::<i64, _>("version").map_err(|e| self.error(e)))
            .collect()
    }

    async fn index_names(&self) -> Result<Vec<String>, StoreError> {
        let sql = match self.backend() {
            Backend::Postgres => {
                "SELECT CAST(indexname AS TEXT) AS name FROM pg_indexes \
                 WHERE schemaname = current_schema() AND tablename = 'artefact_metadata'"
            }
            Backend::Sqlite => {
                "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'artefact_metadata'"
            }
        };
        let rows = sqlx::query(sql)
            .fetch_all(&self.inner().pool)
            .await
            .map_err(|e| self.error(e))?;
        rows.iter()
            .map(|row| row.try_get::<String, _>("name").map_err(|e| self.error(e)))
            .collect()
    }

    /// Reads the schema without changing anything (no migration runs; an SQLite file must exist).
    pub async fn inspect(config: &DatabaseConfig) -> Result<SchemaReport, StoreError> {
        let db = DeliveryDb::unmigrated(config)?;
        let report = db.inspect_schema().await;
        db.close().await;
        report
    }

    async fn inspect_schema(&self) -> Result<SchemaReport, StoreError> {
        let backend = self.backend();
        let mut problems = Vec::new();
        let database = self.inner().redacted_url.clone();

        let applied = self.applied_migrations().await?;
        let known = crate::store::migration_versions();
        let pending = known
            .iter()
            .copied()
            .filter(|version| !applied.contains(version))
            .collect();
        for version in applied.iter().filter(|version| !known.contains(version)) {
            problems.push(format!(
                "migration {version} was applied by a newer odg than this one"
            ));
        }

        let mut tables = Vec::new();
        let mut pre_release_schema = false;
        for (table, expected) in ORIGINAL_TABLES {
            let columns = self.columns_of(table).await?;
            let present = !columns.is_empty();
            if *table == "artefact_metadata"
                && columns
                    .iter()
                    .any(|(name, _, _)| PRE_RELEASE_COLUMNS.contains(&name.as_str()))
            {
                pre_release_schema = true;
                problems.push(pre_release_message(&database));
            }
            let mut missing_columns = Vec::new();
            let mut different_types = Vec::new();
            if present {
                for (name, kind, length) in expected.iter() {
                    match columns.iter().find(|(found, _, _)| found == name) {
                        None => missing_columns.push(name.to_string()),
                        Some((_, found_kind, found_length)) => {
                            if backend == Backend::Postgres
                                && (found_kind != kind || found_length != length)
                            {
                                different_types.push(format!(
                                    "{name}: {} (expected {})",
                                    type_name(found_kind, *found_length),
                                    type_name(kind, *length)
                                ));
                            }
                        }
                    }
                }
                if !missing_columns.is_empty() && !pre_release_schema {
                    problems.push(format!(
                        "table {table} lacks the original's columns {}",
                        missing_columns.join(", ")
                    ));
                }
            }
            let rows = if present {
                let row = sqlx::query(&format!("SELECT COUNT(*) AS n FROM {table}"))
                    .fetch_one(&self.inner().pool)
                    .await
                    .map_err(|e| self.error(e))?;
                Some(row.try_get::<i64, _>("n").map_err(|e| self.error(e))?)
            } else {
                None
            };
            tables.push(TableReport {
                name: table.to_string(),
                present,
                rows,
                missing_columns,
                different_types,
            });
        }

        let indexes = self.index_names().await?;
        let missing_indexes = ODG_INDEXES
            .iter()
            .filter(|name| !indexes.iter().any(|found| found == *name))
            .map(|name| name.to_string())
            .collect();
        Ok(SchemaReport {
            database,
            backend: backend.as_str(),
            applied_migrations: applied,
            pending_migrations: pending,
            tables,
            missing_indexes,
            pre_release_schema,
            problems,
        })
    }
}

fn type_name(kind: &str, length: Option<i64>) -> String {
    match length {
        Some(length) => format!("{kind}({length})"),
        None => kind.to_string(),
    }
}
