//! `DeliveryDb`: the connection pool (PostgreSQL or an SQLite file), migrations, and the
//! statements behind the routes. One SQL dialect serves both backends through sqlx's `Any`
//! driver (columns read as text, `$n` parameters cast to the column types, `ON CONFLICT`), so each
//! statement exists once. The tables are the original delivery service's (see `migrations/`).
//!
//! Bounds: at most `max_connections` connections; a request that finds them all busy waits at
//! most `acquire_timeout`, then fails with [`StoreError::PoolExhausted`] (503), never hangs.
//! PostgreSQL statements are cut at `statement_timeout`. SQLite allows one writer at a time:
//! writes of this process take a lock first (WAL mode lets reads go on meanwhile), so a write
//! transaction never fails on another's snapshot.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::{AnyPool, Row};

use crate::entry::PreparedEntry;
use crate::health::{self, DbHealth, HealthState};
use crate::metrics::{self, operation};
use crate::model::{ArtefactMetadata, ComponentArtefactId, Metadata};
use crate::query::{MetadataQuery, SqlBuilder};
use crate::{StoreError, StoreErrorKind};

/// Where the database is and how the pool is bounded; resolved by the binary from its config.
#[derive(Debug, Clone)]
pub struct DatabaseConfig {
    /// `postgres://user@host:5432/db` or `sqlite://path/to/file.db` (created when missing).
    /// May hold a password: never logged (see [`redact_url`]).
    pub url: String,
    pub max_connections: u32,
    /// Longest wait for a free connection before answering "unavailable".
    pub acquire_timeout: Duration,
    /// PostgreSQL `statement_timeout` of every connection.
    pub statement_timeout: Duration,
}

impl DatabaseConfig {
    pub const DEFAULT_MAX_CONNECTIONS: u32 = 16;
    pub const DEFAULT_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(3);
    pub const DEFAULT_STATEMENT_TIMEOUT: Duration = Duration::from_secs(30);

    pub fn new(url: impl Into<String>) -> DatabaseConfig {
        DatabaseConfig {
            url: url.into(),
            max_connections: DatabaseConfig::DEFAULT_MAX_CONNECTIONS,
            acquire_timeout: DatabaseConfig::DEFAULT_ACQUIRE_TIMEOUT,
            statement_timeout: DatabaseConfig::DEFAULT_STATEMENT_TIMEOUT,
        }
    }

    /// `sqlite://<path>?mode=rwc` for a file (created with the database when missing).
    pub fn sqlite_file(path: &Path) -> DatabaseConfig {
        DatabaseConfig::new(format!("sqlite://{}?mode=rwc", path.display()))
    }
}

/// The URL without its password, for logs and errors.
pub fn redact_url(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => match rest.split_once('@') {
            Some((userinfo, host)) => {
                let user = userinfo.split(':').next().unwrap_or("");
                format!("{scheme}://{user}:***@{host}")
            }
            None => url.to_string(),
        },
        None => url.to_string(),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Postgres,
    Sqlite,
}

impl Backend {
    fn of(url: &str) -> Result<Backend, StoreError> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Backend::Postgres)
        } else if url.starts_with("sqlite:") {
            Ok(Backend::Sqlite)
        } else {
            Err(StoreError::Config(
                "the database URL must start with postgres://, postgresql:// or sqlite:".into(),
            ))
        }
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            Backend::Postgres => "postgres",
            Backend::Sqlite => "sqlite",
        }
    }

    /// Parameter `$n`, bound as text, as a value of the column's type: PostgreSQL casts it to
    /// the original's type; SQLite's columns are text (a cast to `json` or `date` there would
    /// give the value numeric affinity).
    pub(crate) fn param(&self, n: usize, kind: SqlType) -> String {
        match (self, kind) {
            (Backend::Sqlite, _) | (Backend::Postgres, SqlType::Text) => format!("${n}"),
            (Backend::Postgres, SqlType::Json) => format!("CAST(${n} AS json)"),
            (Backend::Postgres, SqlType::Date) => format!("CAST(${n} AS date)"),
            (Backend::Postgres, SqlType::Timestamp) => {
                format!("CAST(${n} AS timestamp with time zone)")
            }
            (Backend::Postgres, SqlType::Id) => format!("CAST(${n} AS {ID_TYPE})"),
        }
    }
}

/// The type of a column a text parameter is written to (see [`Backend::param`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SqlType {
    Text,
    Json,
    Date,
    Timestamp,
    /// `character(32)`, the type of `artefact_metadata.id`.
    Id,
}

/// How discovery dates of new findings are reused from earlier siblings (per finding type, from
/// the finding configuration).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DiscoveryDateReuse {
    pub enabled: bool,
    /// A sibling last updated longer ago than this does not lend its date.
    pub max_reuse_time: Option<Duration>,
}

impl Default for DiscoveryDateReuse {
    fn default() -> Self {
        DiscoveryDateReuse {
            enabled: true,
            max_reuse_time: None,
        }
    }
}

/// What a PUT did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PutReport {
    pub inserted: usize,
    pub updated: usize,
}

/// A row as stored, with the columns the service needs besides the entry itself.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredMetadata {
    pub id: String,
    pub metadata: ArtefactMetadata,
    pub data_key_hash: Option<String>,
    pub last_update_ms: Option<i64>,
    pub referenced_type: Option<String>,
}

#[derive(Debug, Clone)]
pub struct DeliveryDb {
    inner: Arc<Inner>,
}

#[derive(Debug)]
pub(crate) struct Inner {
    pub(crate) pool: AnyPool,
    backend: Backend,
    acquire_timeout: Duration,
    max_connections: u32,
    /// For errors: the URL without its password.
    pub(crate) redacted_url: String,
    /// SQLite: one writer at a time (taken before the transaction begins).
    write_lock: tokio::sync::Mutex<()>,
    health: HealthState,
    /// Where SQLite blob uploads are spooled until verified (see `blob.rs`).
    pub(crate) spool_directory: std::path::PathBuf,
}

/// The columns a row is read from, each as text (one dialect for both backends: PostgreSQL's
/// `json`, `character(n)`, `varchar(n)` and `date` columns become text, `character(n)` without
/// its padding). `creation_date` is not read: `meta` holds the entry's dates.
pub(crate) const COLUMNS: &str = "CAST(id AS TEXT) AS id, CAST(type AS TEXT) AS type, \
    CAST(datasource AS TEXT) AS datasource, CAST(component_name AS TEXT) AS component_name, \
    CAST(component_version AS TEXT) AS component_version, \
    CAST(artefact_kind AS TEXT) AS artefact_kind, CAST(artefact_name AS TEXT) AS artefact_name, \
    CAST(artefact_version AS TEXT) AS artefact_version, \
    CAST(artefact_type AS TEXT) AS artefact_type, \
    CAST(artefact_extra_id AS TEXT) AS artefact_extra_id, CAST(meta AS TEXT) AS meta, \
    CAST(data AS TEXT) AS data, CAST(data_key AS TEXT) AS data_key, \
    CAST(referenced_type AS TEXT) AS referenced_type, \
    CAST(discovery_date AS TEXT) AS discovery_date, \
    CAST(allowed_processing_time AS TEXT) AS allowed_processing_time";

/// The columns a new row is written to, in the order of [`row_values`].
const INSERT_COLUMNS: &str = "id, creation_date, type, datasource, component_name, \
    component_version, artefact_kind, artefact_name, artefact_version, artefact_type, \
    artefact_extra_id_normalised, artefact_extra_id, meta, data, data_key, referenced_type, \
    discovery_date, allowed_processing_time";

/// The SQL type of `artefact_metadata.id` (for parameters compared with it).
const ID_TYPE: &str = "CHAR(32)";

/// Rows deleted per statement.
const DELETE_CHUNK: usize = 500;

/// The versions of odg's migrations, in order.
pub(crate) fn migration_versions() -> Vec<i64> {
    migrator(Backend::Sqlite)
        .migrations
        .iter()
        .map(|migration| migration.version)
        .collect()
}

fn migrator(backend: Backend) -> Migrator {
    let sql = match backend {
        Backend::Postgres => include_str!("../migrations/postgres/0001_artefact_metadata.sql"),
        Backend::Sqlite => include_str!("../migrations/sqlite/0001_artefact_metadata.sql"),
    };
    let users = match backend {
        Backend::Postgres => include_str!("../migrations/postgres/0002_users.sql"),
        Backend::Sqlite => include_str!("../migrations/sqlite/0002_users.sql"),
    };
    let backlog_items = match backend {
        Backend::Postgres => include_str!("../migrations/postgres/0003_backlog_items.sql"),
        Backend::Sqlite => include_str!("../migrations/sqlite/0003_backlog_items.sql"),
    };
    let blob_chunks = match backend {
        Backend::Postgres => include_str!("../migrations/postgres/0004_blob_chunks.sql"),
        Backend::Sqlite => include_str!("../migrations/sqlite/0004_blob_chunks.sql"),
    };
    let migrations = vec![
        Migration::new(
            1,
            "artefact metadata".into(),
            MigrationType::Simple,
            sql.into(),
            false,
        ),
        Migration::new(
            2,
            "users".into(),
            MigrationType::Simple,
            users.into(),
            false,
        ),
        Migration::new(
            3,
            "backlog items".into(),
            MigrationType::Simple,
            backlog_items.into(),
            false,
        ),
        Migration::new(
            4,
            "blob chunks".into(),
            MigrationType::Simple,
            blob_chunks.into(),
            false,
        ),
    ];
    Migrator {
        migrations: migrations.into(),
        ignore_missing: false,
        locking: true,
        no_tx: false,
    }
}

impl DeliveryDb {
    /// Opens the pool and applies pending migrations (under the migrator's advisory lock on
    /// PostgreSQL, so pods starting together migrate once). An unreachable database fails here.
    /// A background task then probes the database (see [`DeliveryDb::health`]).
    pub async fn connect(config: &DatabaseConfig) -> Result<DeliveryDb, StoreError> {
        let db = DeliveryDb::lazy(config)?;
        db.try_migrate().await?;
        db.spawn_supervisor();
        Ok(db)
    }

    /// Like [`DeliveryDb::connect`], but a database that cannot be reached (or is too busy) now
    /// is no error: every operation answers [`StoreError::Unreachable`] until a background task,
    /// retrying with backoff and jitter, has reached and migrated it. Configuration and
    /// migration errors still fail here.
    pub async fn open(config: &DatabaseConfig) -> Result<DeliveryDb, StoreError> {
        let db = DeliveryDb::lazy(config)?;
        match db.try_migrate().await {
            Ok(()) => {}
            Err(error)
                if matches!(
                    error.kind(),
                    StoreErrorKind::Unreachable | StoreErrorKind::Unavailable
                ) =>
            {
                tracing::warn!(%error, "delivery DB not reachable at start-up; serving without it and reconnecting in the background");
            }
            Err(error) => return Err(error),
        }
        db.spawn_supervisor();
        Ok(db)
    }

    /// Applies odg's pending migrations (`odg db migrate`) and closes the pool.
    pub async fn migrate(config: &DatabaseConfig) -> Result<(), StoreError> {
        let db = DeliveryDb::lazy(config)?;
        let migrated = db.try_migrate().await;
        db.close().await;
        migrated
    }

    /// The pool for reading a database as it is (no migration; an SQLite file must exist, it
    /// is not created).
    pub(crate) fn unmigrated(config: &DatabaseConfig) -> Result<DeliveryDb, StoreError> {
        if Backend::of(&config.url)? == Backend::Sqlite {
            match sqlite_path(&config.url) {
                Some(path) if Path::new(path).is_file() => {}
                Some(path) => {
                    return Err(StoreError::Config(format!("no SQLite database at {path}")))
                }
                None => {
                    return Err(StoreError::Config(
                        "an in-memory SQLite database has no schema to check".into(),
                    ))
                }
            }
        }
        DeliveryDb::lazy(config)
    }

    /// The pool, not connected yet.
    fn lazy(config: &DatabaseConfig) -> Result<DeliveryDb, StoreError> {
        sqlx::any::install_default_drivers();
        let backend = Backend::of(&config.url)?;
        if backend == Backend::Sqlite {
            if let Some(parent) = sqlite_path(&config.url).and_then(|path| {
                Path::new(path)
                    .parent()
                    .filter(|parent| !parent.as_os_str().is_empty())
                    .map(Path::to_path_buf)
            }) {
                std::fs::create_dir_all(&parent).map_err(|error| {
                    StoreError::Config(format!("creating {}: {error}", parent.display()))
                })?;
            }
        }
        let statement_timeout_ms = config.statement_timeout.as_millis().max(1);
        let max_connections = config.max_connections.max(1);
        let pool = AnyPoolOptions::new()
            .max_connections(max_connections)
            .min_connections(0)
            .acquire_timeout(config.acquire_timeout)
            .idle_timeout(Some(Duration::from_secs(300)))
            .after_connect(move |connection, _meta| {
                Box::pin(async move {
                    let statements: Vec<String> = match backend {
                        Backend::Postgres => {
                            vec![format!("SET statement_timeout = {statement_timeout_ms}")]
                        }
                        Backend::Sqlite => vec![
                            "PRAGMA journal_mode = WAL".into(),
                            "PRAGMA synchronous = NORMAL".into(),
                            "PRAGMA busy_timeout = 5000".into(),
                        ],
                    };
                    for statement in statements {
                        sqlx::query(&statement).execute(&mut *connection).await?;
                    }
                    Ok(())
                })
            })
            .connect_lazy(&config.url)
            .map_err(|error| {
                StoreError::Config(format!("database URL {}: {error}", redact_url(&config.url)))
            })?;
        Ok(DeliveryDb {
            inner: Arc::new(Inner {
                pool,
                backend,
                acquire_timeout: config.acquire_timeout,
                max_connections,
                redacted_url: redact_url(&config.url),
                write_lock: tokio::sync::Mutex::new(()),
                health: HealthState::new(),
                spool_directory: crate::blob::spool_directory(sqlite_path(&config.url)),
            }),
        })
    }

    pub(crate) fn inner(&self) -> &Inner {
        &self.inner
    }

    pub(crate) fn from_inner(inner: Arc<Inner>) -> DeliveryDb {
        DeliveryDb { inner }
    }

    pub(crate) fn health_state(&self) -> &HealthState {
        &self.inner.health
    }

    fn spawn_supervisor(&self) {
        tokio::spawn(health::supervise(Arc::downgrade(&self.inner)));
    }

    /// Reaches the database and applies pending migrations; marks it up on success.
    pub(crate) async fn try_migrate(&self) -> Result<(), StoreError> {
        // A connection first, so that an unreachable database is told apart from a failing
        // migration (the migrator folds both into one error type).
        let connection = self.inner.pool.acquire().await.map_err(|error| {
            let error = self.error(error);
            match error {
                StoreError::Unreachable(detail) => StoreError::Unreachable(format!(
                    "connecting to {}: {detail}",
                    self.inner.redacted_url
                )),
                other => other,
            }
        })?;
        drop(connection);
        self.refuse_pre_release_schema().await?;
        let started = Instant::now();
        let migrated = migrator(self.inner.backend)
            .run(&self.inner.pool)
            .await
            .map_err(|error| match error {
                sqlx::migrate::MigrateError::Execute(error) => match self.error(error) {
                    StoreError::Database(detail) => {
                        StoreError::Database(format!("migrations: {detail}"))
                    }
                    other => other,
                },
                other => StoreError::Database(format!("migrations: {other}")),
            });
        metrics::record(operation::MIGRATE, started, &migrated);
        migrated?;
        self.inner.health.mark_migrated();
        Ok(())
    }

    /// One round trip; marks the database up or (on a connection failure) down.
    pub(crate) async fn probe(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1")
            .execute(&self.inner.pool)
            .await
            .map_err(|error| self.error(error))?;
        self.inner.health.mark_up();
        Ok(())
    }

    /// Whether the database is up, still being reached for the first time, or lost.
    pub fn health(&self) -> DbHealth {
        self.inner.health.snapshot()
    }

    /// Every operation's first step: nothing runs before the schema is migrated, nor while the
    /// database is known to be unreachable.
    pub(crate) fn require_available(&self) -> Result<(), StoreError> {
        self.inner.health.check_available()
    }

    pub fn backend(&self) -> Backend {
        self.inner.backend
    }

    /// Connections open now, and how many of them are idle.
    pub fn pool_status(&self) -> (u32, usize) {
        (self.inner.pool.size(), self.inner.pool.num_idle())
    }

    /// Holds one pooled connection for `duration` (tests and diagnostics: shows what a busy
    /// pool does to other requests).
    #[doc(hidden)]
    pub async fn hold_connection_for(&self, duration: Duration) -> Result<(), StoreError> {
        self.require_available()?;
        let connection = self.inner.pool.acquire().await.map_err(|e| self.error(e))?;
        tokio::time::sleep(duration).await;
        drop(connection);
        Ok(())
    }

    pub async fn close(&self) {
        self.inner.pool.close().await;
    }

    /// Classifies a driver error and lets the health state know of connection failures.
    pub(crate) fn error(&self, error: sqlx::Error) -> StoreError {
        let pool_full = self.inner.pool.size() >= self.inner.max_connections;
        let error = StoreError::from_sqlx(error, self.inner.acquire_timeout, pool_full);
        self.inner.health.record_failure(&error);
        error
    }

    pub(crate) async fn write_guard(&self) -> Option<tokio::sync::MutexGuard<'_, ()>> {
        match self.inner.backend {
            Backend::Sqlite => Some(self.inner.write_lock.lock().await),
            Backend::Postgres => None,
        }
    }

    /// Writes `entries` in one transaction with the original's upsert rules (see
    /// `artefact-metadata.md` §2): an entry whose id exists (in the table or earlier in this
    /// request) updates it; otherwise it is inserted, reusing a sibling's discovery date.
    /// Any error rolls everything back.
    pub async fn put(
        &self,
        entries: &[PreparedEntry],
        reuse: &(dyn Fn(&str) -> DiscoveryDateReuse + Sync),
    ) -> Result<PutReport, StoreError> {
        let started = Instant::now();
        let result = self.put_inner(entries, reuse).await;
        metrics::record(operation::PUT, started, &result);
        if let Ok(report) = &result {
            metrics::rows_written("insert", report.inserted as u64);
            metrics::rows_written("update", report.updated as u64);
        }
        result
    }

    async fn put_inner(
        &self,
        entries: &[PreparedEntry],
        reuse: &(dyn Fn(&str) -> DiscoveryDateReuse + Sync),
    ) -> Result<PutReport, StoreError> {
        if entries.is_empty() {
            return Ok(PutReport::default());
        }
        for (index, entry) in entries.iter().enumerate() {
            entry
                .check_columns()
                .map_err(|source| StoreError::InvalidEntry { index, source })?;
        }
        self.require_available()?;
        let _guard = self.write_guard().await;
        let mut transaction = self.inner.pool.begin().await.map_err(|e| self.error(e))?;

        // Candidates: rows sharing component name, artefact name, type and datasource with an
        // entry, newest `last_update` first.
        let mut groups: Vec<(Option<&str>, Option<&str>, &str, &str)> = Vec::new();
        for entry in entries {
            let group = group_of(entry);
            if !groups.contains(&group) {
                groups.push(group);
            }
        }
        let mut candidates: Vec<StoredMetadata> = Vec::new();
        for (component_name, artefact_name, r#type, datasource) in groups {
            let mut sql =
                SqlBuilder::new(&format!("SELECT {COLUMNS} FROM artefact_metadata WHERE "));
            sql.push_nullable_eq("component_name", component_name);
            sql.push(" AND ");
            sql.push_nullable_eq("artefact_name", artefact_name);
            sql.push(" AND type = ");
            sql.push_param(Some(r#type));
            sql.push(" AND datasource = ");
            sql.push_param(Some(datasource));
            let rows = sql
                .query()
                .fetch_all(&mut *transaction)
                .await
                .map_err(|e| self.error(e))?;
            for row in rows {
                candidates.push(decode_row(&row)?);
            }
        }
        candidates.sort_by_key(|row| std::cmp::Reverse(row.last_update_ms));

        let mut report = PutReport::default();
        // This request's earlier inserts, in order.
        let mut inserted: Vec<StoredMetadata> = Vec::new();
        for entry in entries {
            let existing = inserted
                .iter_mut()
                .chain(candidates.iter_mut())
                .find(|row| row.id == entry.id);
            if let Some(existing) = existing {
                let updated = updated_row(existing, entry);
                self.update_row(&mut transaction, &updated).await?;
                *existing = updated;
                report.updated += 1;
                continue;
            }
            let policy = reuse(&entry.metadata.meta.r#type);
            let discovery_date = inserted
                .iter()
                .chain(candidates.iter())
                .find(|row| lends_discovery_date(row, entry, &policy))
                .and_then(|row| row.metadata.discovery_date.clone())
                .or_else(|| entry.metadata.discovery_date.clone());
            let mut row = new_row(entry);
            row.metadata.discovery_date = discovery_date;
            let affected = self.insert_row(&mut transaction, &row).await?;
            if affected == 0 {
                // A concurrent request inserted the same id after we read the candidates: this
                // entry is an update of that row.
                let mut sql = SqlBuilder::new(&format!(
                    "SELECT {COLUMNS} FROM artefact_metadata WHERE id = "
                ));
                sql.push_param_as(Some(&entry.id), ID_TYPE);
                let current = sql
                    .query()
                    .fetch_one(&mut *transaction)
                    .await
                    .map_err(|e| self.error(e))?;
                let updated = updated_row(&decode_row(&current)?, entry);
                self.update_row(&mut transaction, &updated).await?;
                candidates.push(updated);
                report.updated += 1;
                continue;
            }
            inserted.push(row);
            report.inserted += 1;
        }
        self.mark_original_summaries_stale(&mut transaction, entries)
            .await?;
        transaction.commit().await.map_err(|e| self.error(e))?;
        Ok(report)
    }

    async fn insert_row(
        &self,
        transaction: &mut sqlx::Transaction<'_, sqlx::Any>,
        row: &StoredMetadata,
    ) -> Result<u64, StoreError> {
        let values = row_values(row)?;
        let backend = self.inner.backend;
        let placeholders: Vec<String> = values
            .iter()
            .enumerate()
            .map(|(index, (kind, _))| backend.param(index + 1, *kind))
            .collect();
        let sql = format!(
            "INSERT INTO artefact_metadata ({INSERT_COLUMNS}) VALUES ({}) ON CONFLICT (id) DO NOTHING",
            placeholders.join(", ")
        );
        let mut query = sqlx::query(&sql);
        for (_, value) in values {
            query = query.bind(value);
        }
        let result = query
            .execute(&mut **transaction)
            .await
            .map_err(|e| self.error(e))?;
        Ok(result.rows_affected())
    }

    async fn update_row(
        &self,
        transaction: &mut sqlx::Transaction<'_, sqlx::Any>,
        row: &StoredMetadata,
    ) -> Result<(), StoreError> {
        let meta = row.metadata.meta.to_json().to_string();
        let data = row.metadata.data.to_string();
        let backend = self.inner.backend;
        sqlx::query(&format!(
            "UPDATE artefact_metadata SET meta = {}, data = {} WHERE id = {}",
            backend.param(1, SqlType::Json),
            backend.param(2, SqlType::Json),
            backend.param(3, SqlType::Id),
        ))
        .bind(meta)
        .bind(data)
        .bind(row.id.clone())
        .execute(&mut **transaction)
        .await
        .map_err(|e| self.error(e))?;
        Ok(())
    }

    /// Deletes each entry by its id (a missing row is no error), in one transaction; returns the
    /// number of rows deleted.
    pub async fn delete(&self, entries: &[PreparedEntry]) -> Result<u64, StoreError> {
        let started = Instant::now();
        let result = self.delete_inner(entries).await;
        metrics::record(operation::DELETE, started, &result);
        if let Ok(rows) = &result {
            metrics::rows_written("delete", *rows);
        }
        result
    }

    async fn delete_inner(&self, entries: &[PreparedEntry]) -> Result<u64, StoreError> {
        if entries.is_empty() {
            return Ok(0);
        }
        self.require_available()?;
        let _guard = self.write_guard().await;
        let mut transaction = self.inner.pool.begin().await.map_err(|e| self.error(e))?;
        let mut ids: Vec<&str> = entries.iter().map(|entry| entry.id.as_str()).collect();
        ids.sort_unstable();
        ids.dedup();
        let mut deleted = 0;
        for chunk in ids.chunks(DELETE_CHUNK) {
            let mut sql = SqlBuilder::new("DELETE FROM artefact_metadata WHERE id IN (");
            sql.push_list_as(chunk.iter().map(|id| Some(*id)), Some(ID_TYPE));
            sql.push(")");
            deleted += sql
                .query()
                .execute(&mut *transaction)
                .await
                .map_err(|e| self.error(e))?
                .rows_affected();
        }
        self.mark_original_summaries_stale(&mut transaction, entries)
            .await?;
        transaction.commit().await.map_err(|e| self.error(e))?;
        Ok(deleted)
    }

    /// Marks the original's cached compliance-summary parts that these entries make stale for
    /// deletion, as the original does on its own writes (see `original_cache.rs`), so that an
    /// original running beside odg on this database recomputes them. A row only where the
    /// original cached that part; nothing else in `cache` is touched.
    async fn mark_original_summaries_stale(
        &self,
        transaction: &mut sqlx::Transaction<'_, sqlx::Any>,
        entries: &[PreparedEntry],
    ) -> Result<(), StoreError> {
        let mut ids: Vec<String> = entries
            .iter()
            .flat_map(|entry| {
                crate::original_cache::compliance_summary_cache_ids(
                    entry.metadata.artefact.component_name.as_deref(),
                    entry.metadata.artefact.component_version.as_deref(),
                    &entry.metadata.meta.r#type,
                    &entry.metadata.meta.datasource,
                )
            })
            .collect();
        ids.sort_unstable();
        ids.dedup();
        for chunk in ids.chunks(DELETE_CHUNK) {
            let mut sql =
                SqlBuilder::new("UPDATE cache SET delete_after = CURRENT_TIMESTAMP WHERE id IN (");
            sql.push_list_as(chunk.iter().map(|id| Some(id.as_str())), Some(ID_TYPE));
            sql.push(")");
            sql.query()
                .execute(&mut **transaction)
                .await
                .map_err(|e| self.error(e))?;
        }
        Ok(())
    }

    /// The original's `DELETE /cache`: marks its cache entry `id` for deletion at `delete_after`
    /// (RFC 3339; now when `None`), as the original does in the `cache` table it shares with odg
    /// during a switch. Whether a row was marked.
    pub async fn mark_original_cache_entry(
        &self,
        id: &str,
        delete_after: Option<&str>,
    ) -> Result<bool, StoreError> {
        self.require_available()?;
        let mut sql = SqlBuilder::new("UPDATE cache SET delete_after = ");
        match (delete_after, self.inner.backend) {
            (None, _) => sql.push("CURRENT_TIMESTAMP"),
            (Some(at), Backend::Postgres) => {
                sql.push_param_as(Some(at), "TIMESTAMP WITH TIME ZONE")
            }
            (Some(at), Backend::Sqlite) => sql.push_param(Some(at)),
        }
        sql.push(" WHERE id = ");
        sql.push_param_as(Some(id), ID_TYPE);
        let result = sql
            .query()
            .execute(&self.inner.pool)
            .await
            .map_err(|e| self.error(e))?;
        Ok(result.rows_affected() > 0)
    }

    /// `POST /artefacts/metadata/query` (before the finding-config post-filter), ordered by id.
    /// A large query runs as several statements (see `query.rs`), one after the other on one
    /// connection at a time; their rows are united by id.
    pub async fn query(&self, query: &MetadataQuery) -> Result<Vec<StoredMetadata>, StoreError> {
        let started = Instant::now();
        let result = self.query_inner(query).await;
        metrics::record(operation::QUERY, started, &result);
        result
    }

    async fn query_inner(&self, query: &MetadataQuery) -> Result<Vec<StoredMetadata>, StoreError> {
        let mut statements = query.to_statements(COLUMNS)?;
        if statements.len() == 1 {
            if let Some(only) = statements.pop() {
                return self.select(only, operation::QUERY).await;
            }
        }
        // ids are hex digests: their byte order is the database's order too
        let mut rows_by_id: BTreeMap<String, StoredMetadata> = BTreeMap::new();
        for statement in statements {
            for row in self.select(statement, operation::QUERY).await? {
                rows_by_id.entry(row.id.clone()).or_insert(row);
            }
        }
        Ok(rows_by_id.into_values().collect())
    }

    /// Rows of `types` from `datasource` about the component: its name, and its version or none
    /// (the caller keeps the version-less rows that are about this version's artefacts).
    pub async fn component_rows(
        &self,
        component_name: &str,
        component_version: &str,
        datasource: &str,
        types: &[&str],
    ) -> Result<Vec<StoredMetadata>, StoreError> {
        let started = Instant::now();
        let mut sql = SqlBuilder::new(&format!(
            "SELECT {COLUMNS} FROM artefact_metadata WHERE component_name = "
        ));
        sql.push_param(Some(component_name));
        sql.push(" AND (component_version IS NULL OR component_version = ");
        sql.push_param(Some(component_version));
        sql.push(") AND datasource = ");
        sql.push_param(Some(datasource));
        sql.push(" AND type IN (");
        sql.push_list(types.iter().map(|r#type| Some(*r#type)));
        sql.push(")");
        let result = self.select(sql, operation::COMPONENT_ROWS).await;
        metrics::record(operation::COMPONENT_ROWS, started, &result);
        result
    }

    /// Rescorings of `referenced_type` that may apply to the component version: component name
    /// and version each equal or null.
    pub async fn rescorings(
        &self,
        component_name: &str,
        component_version: &str,
        referenced_type: &str,
    ) -> Result<Vec<StoredMetadata>, StoreError> {
        let started = Instant::now();
        let mut sql = SqlBuilder::new(&format!(
            "SELECT {COLUMNS} FROM artefact_metadata WHERE type = 'rescorings' AND referenced_type = "
        ));
        sql.push_param(Some(referenced_type));
        sql.push(" AND (component_name IS NULL OR component_name = ");
        sql.push_param(Some(component_name));
        sql.push(") AND (component_version IS NULL OR component_version = ");
        sql.push_param(Some(component_version));
        sql.push(")");
        let result = self.select(sql, operation::RESCORINGS).await;
        metrics::record(operation::RESCORINGS, started, &result);
        result
    }

    /// Every row about one artefact of a component version, for `/rescore` (the original's
    /// three lookups in one statement): its findings and other data (`type` in `types`, or any
    /// type when empty; never rescorings), with the component version equal or absent; and the
    /// rescorings and scanner write-backs whose scope covers the artefact (each of component
    /// name, component version, artefact name, version and extra id equal or unset), rescorings
    /// only of `referenced_types` when given. `component_version` `None` keeps version-less rows
    /// only, as the original's `component_version == None`.
    pub async fn artefact_rows(
        &self,
        artefact: &ComponentArtefactId,
        types: &[&str],
        referenced_types: &[&str],
    ) -> Result<Vec<StoredMetadata>, StoreError> {
        let started = Instant::now();
        let local = artefact.artefact.clone().unwrap_or_default();
        let kind = artefact.artefact_kind.map(|kind| kind.as_str());
        let extra_id = local.normalised_extra_id();
        let unset_or = |sql: &mut SqlBuilder, column: &str, value: Option<&str>| {
            sql.push(&format!(
                " AND ({column} IS NULL OR {column} = '' OR {column} = "
            ));
            sql.push_param(value);
            sql.push(")");
        };
        let mut sql = SqlBuilder::new(&format!(
            "SELECT {COLUMNS} FROM artefact_metadata WHERE artefact_kind = "
        ));
        sql.push_param(kind);
        sql.push(" AND artefact_type = ");
        sql.push_param(local.artefact_type.as_deref());
        // the finding side: this very artefact
        sql.push(
            " AND ((type NOT IN ('rescorings', 'meta/scanner_writeback') AND component_name = ",
        );
        sql.push_param(artefact.component_name.as_deref());
        match artefact.component_version.as_deref() {
            Some(version) => unset_or(&mut sql, "component_version", Some(version)),
            None => sql.push(" AND (component_version IS NULL OR component_version = '')"),
        }
        sql.push(" AND artefact_name = ");
        sql.push_param(local.artefact_name.as_deref());
        sql.push(" AND artefact_version = ");
        sql.push_param(local.artefact_version.as_deref());
        sql.push(" AND artefact_extra_id_normalised = ");
        sql.push_param(Some(&extra_id));
        if !types.is_empty() {
            sql.push(" AND type IN (");
            sql.push_list(types.iter().map(|r#type| Some(*r#type)));
            sql.push(")");
        }
        // the scope side: rescorings and write-backs covering it
        sql.push(") OR (type IN ('rescorings', 'meta/scanner_writeback')");
        unset_or(
            &mut sql,
            "component_name",
            artefact.component_name.as_deref(),
        );
        unset_or(
            &mut sql,
            "component_version",
            artefact.component_version.as_deref(),
        );
        unset_or(&mut sql, "artefact_name", local.artefact_name.as_deref());
        unset_or(
            &mut sql,
            "artefact_version",
            local.artefact_version.as_deref(),
        );
        sql.push(" AND (artefact_extra_id_normalised = '' OR artefact_extra_id_normalised = ");
        sql.push_param(Some(&extra_id));
        sql.push(")");
        if !referenced_types.is_empty() {
            sql.push(" AND (type = 'meta/scanner_writeback' OR referenced_type IN (");
            sql.push_list(referenced_types.iter().map(|r#type| Some(*r#type)));
            sql.push("))");
        }
        sql.push("))");
        let result = self.select(sql, operation::ARTEFACT_ROWS).await;
        metrics::record(operation::ARTEFACT_ROWS, started, &result);
        result
    }

    pub(crate) async fn select_rows(
        &self,
        sql: SqlBuilder,
        operation: &'static str,
    ) -> Result<Vec<StoredMetadata>, StoreError> {
        self.select(sql, operation).await
    }

    async fn select(
        &self,
        sql: SqlBuilder,
        operation: &'static str,
    ) -> Result<Vec<StoredMetadata>, StoreError> {
        self.require_available()?;
        let rows = sql
            .query()
            .fetch_all(&self.inner.pool)
            .await
            .map_err(|e| self.error(e))?;
        metrics::rows_read(operation, rows.len());
        rows.iter().map(decode_row).collect()
    }
}

fn sqlite_path(url: &str) -> Option<&str> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next()?;
    (!path.is_empty() && path != ":memory:").then_some(path)
}

fn group_of(entry: &PreparedEntry) -> (Option<&str>, Option<&str>, &str, &str) {
    let artefact = &entry.metadata.artefact;
    (
        artefact.component_name.as_deref(),
        artefact
            .artefact
            .as_ref()
            .and_then(|local| local.artefact_name.as_deref()),
        entry.metadata.meta.r#type.as_str(),
        entry.metadata.meta.datasource.as_str(),
    )
}

/// The row a new entry becomes (its discovery date is decided by the caller).
fn new_row(entry: &PreparedEntry) -> StoredMetadata {
    StoredMetadata {
        id: entry.id.clone(),
        metadata: entry.metadata.clone(),
        data_key_hash: entry.data_key_hash.clone(),
        last_update_ms: entry
            .metadata
            .meta
            .last_update
            .as_deref()
            .and_then(crate::time::sort_millis),
        referenced_type: entry.referenced_type.clone(),
    }
}

/// An update: the data is replaced; the stored meta keeps its keys except `last_update`,
/// `responsibles` and `assignee_mode`; dates and the processing time stay.
fn updated_row(existing: &StoredMetadata, entry: &PreparedEntry) -> StoredMetadata {
    let mut row = existing.clone();
    row.metadata.data = entry.metadata.data.clone();
    let meta = &mut row.metadata.meta;
    meta.last_update = entry.metadata.meta.last_update.clone();
    meta.responsibles = entry.metadata.meta.responsibles.clone();
    meta.assignee_mode = entry.metadata.meta.assignee_mode.clone();
    row.last_update_ms = meta
        .last_update
        .as_deref()
        .and_then(crate::time::sort_millis);
    row
}

fn sibling(row: &StoredMetadata, entry: &PreparedEntry) -> bool {
    let (a, b) = (&row.metadata, &entry.metadata);
    let local = |id: &ComponentArtefactId| {
        id.artefact
            .as_ref()
            .map(|local| (local.artefact_name.clone(), local.artefact_type.clone()))
    };
    a.meta.r#type == b.meta.r#type
        && a.artefact.component_name == b.artefact.component_name
        && a.artefact.artefact_kind == b.artefact.artefact_kind
        && local(&a.artefact) == local(&b.artefact)
}

fn field<'a>(data: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter().try_fold(data, |value, name| value.get(name))
}

/// Whether `row` may lend its discovery date to the new `entry` (same finding, by type).
fn lends_discovery_date(
    row: &StoredMetadata,
    entry: &PreparedEntry,
    policy: &DiscoveryDateReuse,
) -> bool {
    if !policy.enabled || row.metadata.discovery_date.is_none() || !sibling(row, entry) {
        return false;
    }
    if let (Some(max), Some(updated)) = (policy.max_reuse_time, row.last_update_ms) {
        let now = chrono::Utc::now().timestamp_millis();
        if now - updated > max.as_millis() as i64 {
            return false;
        }
    }
    let (old, new) = (&row.metadata.data, &entry.metadata.data);
    let same = |paths: &[&[&str]]| {
        paths
            .iter()
            .all(|path| field(old, path) == field(new, path))
    };
    let sorted_labels = |data: &Value| {
        let mut labels: Vec<String> = field(data, &["labels"])
            .and_then(Value::as_array)
            .map(|labels| labels.iter().map(Value::to_string).collect())
            .unwrap_or_default();
        labels.sort();
        labels
    };
    match entry.metadata.meta.r#type.as_str() {
        "finding/vulnerability" => same(&[&["package_name"], &["cve"]]),
        "finding/license" => same(&[&["package_name"], &["license", "name"]]),
        "finding/ip" => {
            same(&[
                &["package_name"],
                &["license", "name"],
                &["policy_violation", "name"],
            ]) && sorted_labels(old) == sorted_labels(new)
        }
        "finding/osid" => same(&[&["osid", "NAME"], &["osid", "VERSION_ID"]]),
        _ => row.data_key_hash == entry.data_key_hash,
    }
}

/// The values of [`INSERT_COLUMNS`], in order, each with its column's type.
fn row_values(row: &StoredMetadata) -> Result<Vec<(SqlType, Option<String>)>, StoreError> {
    let metadata = &row.metadata;
    let artefact = &metadata.artefact;
    let local = artefact.artefact.clone().unwrap_or_default();
    let text = |value: Option<&str>| (SqlType::Text, value.map(str::to_string));
    let extra_id =
        serde_json::to_string(&local.artefact_extra_id).map_err(|error| StoreError::Corrupt {
            id: row.id.clone(),
            reason: format!("artefact_extra_id: {error}"),
        })?;
    Ok(vec![
        (SqlType::Id, Some(row.id.clone())),
        (SqlType::Timestamp, metadata.meta.creation_date.clone()),
        text(Some(&metadata.meta.r#type)),
        text(Some(&metadata.meta.datasource)),
        text(artefact.component_name.as_deref()),
        text(artefact.component_version.as_deref()),
        text(artefact.artefact_kind.map(|kind| kind.as_str())),
        text(local.artefact_name.as_deref()),
        text(local.artefact_version.as_deref()),
        text(local.artefact_type.as_deref()),
        text(Some(&local.normalised_extra_id())),
        (SqlType::Json, Some(extra_id)),
        (SqlType::Json, Some(metadata.meta.to_json().to_string())),
        (SqlType::Json, Some(metadata.data.to_string())),
        text(row.data_key_hash.as_deref()),
        text(row.referenced_type.as_deref()),
        (SqlType::Date, metadata.discovery_date.clone()),
        text(metadata.allowed_processing_time.as_deref()),
    ])
}

/// A row as the original writes it: the artefact from its columns (references are not stored),
/// `meta`'s dates from `meta`, `last_update_ms` derived from `meta.last_update`.
fn decode_row(row: &AnyRow) -> Result<StoredMetadata, StoreError> {
    let id: String = row
        .try_get::<String, _>("id")
        .map(|id| id.trim_end().to_string())
        .map_err(|error| StoreError::Database(format!("reading a row: {error}")))?;
    let corrupt = |reason: String| StoreError::Corrupt {
        id: id.clone(),
        reason,
    };
    let text = |name: &str| -> Result<Option<String>, StoreError> {
        row.try_get::<Option<String>, _>(name)
            .map_err(|error| corrupt(format!("{name}: {error}")))
    };
    // A null JSON column reads as null (`meta`, `artefact_extra_id`) or `{}` (`data`, the
    // original's default).
    let json = |name: &str| -> Result<Value, StoreError> {
        match text(name)? {
            None => Ok(Value::Null),
            Some(raw) => {
                serde_json::from_str(&raw).map_err(|error| corrupt(format!("{name}: {error}")))
            }
        }
    };
    let artefact_json = serde_json::json!({
        "component_name": text("component_name")?,
        "component_version": text("component_version")?,
        "artefact_kind": text("artefact_kind")?,
        "artefact": {
            "artefact_name": text("artefact_name")?,
            "artefact_version": text("artefact_version")?,
            "artefact_type": text("artefact_type")?,
            "artefact_extra_id": json("artefact_extra_id")?,
        },
    });
    let artefact = ComponentArtefactId::from_json(&artefact_json, false)
        .map_err(|error| corrupt(format!("artefact: {error}")))?;
    let meta_json = json("meta")?;
    let meta_text = |name: &str| {
        meta_json
            .get(name)
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    let meta = Metadata {
        datasource: text("datasource")?.unwrap_or_default(),
        r#type: text("type")?.unwrap_or_default(),
        creation_date: meta_text("creation_date"),
        last_update: meta_text("last_update"),
        responsibles: meta_json
            .get("responsibles")
            .filter(|value| !value.is_null())
            .cloned(),
        assignee_mode: meta_text("assignee_mode"),
    };
    let last_update_ms = meta
        .last_update
        .as_deref()
        .and_then(crate::time::sort_millis);
    let data = match json("data")? {
        Value::Null => Value::Object(serde_json::Map::new()),
        data => data,
    };
    Ok(StoredMetadata {
        metadata: ArtefactMetadata {
            artefact,
            meta,
            data,
            discovery_date: text("discovery_date")?,
            allowed_processing_time: text("allowed_processing_time")?,
        },
        data_key_hash: text("data_key")?.map(|key| key.trim_end().to_string()),
        referenced_type: text("referenced_type")?,
        last_update_ms,
        id: id.clone(),
    })
}

/// Rows grouped by id (for tests and tools).
pub fn by_id(rows: Vec<StoredMetadata>) -> HashMap<String, StoredMetadata> {
    rows.into_iter().map(|row| (row.id.clone(), row)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(
            redact_url("postgres://odg:secret@db:5432/odg"),
            "postgres://odg:***@db:5432/odg"
        );
        assert_eq!(redact_url("sqlite://x.db"), "sqlite://x.db");
        assert_eq!(sqlite_path("sqlite://dir/x.db?mode=rwc"), Some("dir/x.db"));
        assert_eq!(sqlite_path("sqlite::memory:"), None);
        assert!(Backend::of("mysql://x").is_err());
    }
}
