//! Metrics of the delivery DB (through the `metrics` facade); labels from fixed sets.

use std::time::Instant;

use metrics::{counter, histogram};

use crate::{StoreError, StoreErrorKind};

/// Histogram: seconds per database operation, by `operation` and `outcome` (ok, invalid,
/// unavailable, unreachable, error).
pub const OPERATION_DURATION: &str = "odg_delivery_db_operation_duration_seconds";
/// Gauge: 1 while the delivery DB answers (migrated and reachable), 0 while it is unreachable
/// and being reconnected in the background.
pub const DB_UP: &str = "odg_delivery_db_up";
/// Counter: background connection attempts (migration or probe) that failed.
pub const RECONNECT_FAILURES: &str = "odg_delivery_db_reconnect_failures_total";
/// Counter: rows written, by `operation` (insert, update, delete).
pub const ROWS_WRITTEN: &str = "odg_delivery_db_rows_written_total";
/// Counter: rows read, by `operation`.
pub const ROWS_READ: &str = "odg_delivery_db_rows_read_total";

/// The operations this crate times.
pub mod operation {
    pub const PUT: &str = "put";
    pub const DELETE: &str = "delete";
    pub const QUERY: &str = "query";
    pub const COMPONENT_ROWS: &str = "component_rows";
    pub const RESCORINGS: &str = "rescorings";
    pub const ARTEFACT_ROWS: &str = "artefact_rows";
    pub const MIGRATE: &str = "migrate";
    /// Backlog items: listing, creating, updating, deleting, claiming.
    pub const BACKLOG: &str = "backlog";
    /// `POST /artefacts/metadata/query/by-search-expression`.
    pub const SEARCH: &str = "search";
    pub const BLOB_READ: &str = "blob_read";
    pub const BLOB_WRITE: &str = "blob_write";
    pub const BLOB_DELETE: &str = "blob_delete";
}

pub(crate) fn outcome_label<T>(result: &Result<T, StoreError>) -> &'static str {
    match result {
        Ok(_) => "ok",
        Err(error) => match error.kind() {
            StoreErrorKind::InvalidInput | StoreErrorKind::Conflict | StoreErrorKind::TooLarge => {
                "invalid"
            }
            StoreErrorKind::Unavailable => "unavailable",
            StoreErrorKind::Unreachable => "unreachable",
            StoreErrorKind::Internal => "error",
        },
    }
}

pub(crate) fn record<T>(operation: &'static str, started: Instant, result: &Result<T, StoreError>) {
    histogram!(OPERATION_DURATION, "operation" => operation, "outcome" => outcome_label(result))
        .record(started.elapsed().as_secs_f64());
}

pub(crate) fn rows_written(operation: &'static str, rows: u64) {
    counter!(ROWS_WRITTEN, "operation" => operation).increment(rows);
}

pub(crate) fn rows_read(operation: &'static str, rows: usize) {
    counter!(ROWS_READ, "operation" => operation).increment(rows as u64);
}
