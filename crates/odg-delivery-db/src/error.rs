//! Errors of the delivery DB and the kinds callers branch on.

use std::time::Duration;

use crate::model::InvalidEntry;

/// What went wrong, coarse enough for the HTTP layer to pick a status from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreErrorKind {
    /// An entry of the request is malformed (400).
    InvalidInput,
    /// The database cannot take the request now: every connection busy past the acquire timeout,
    /// the server unreachable, a statement timeout, a locked SQLite file (503 + `Retry-After`).
    Unavailable,
    /// A bug or a broken database (500).
    Internal,
}

/// Cloneable (messages, not sources), so one failure can answer every request that waited for it.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    #[error("entries[{index}].{source}")]
    InvalidEntry {
        index: usize,
        #[source]
        source: InvalidEntry,
    },
    #[error("{0}")]
    InvalidInput(String),
    #[error("every database connection is busy (waited {waited:?}); retry")]
    PoolExhausted { waited: Duration },
    #[error("the database is unavailable: {0}")]
    Unavailable(String),
    #[error("database error: {0}")]
    Database(String),
    #[error("stored entry {id} is unreadable: {reason}")]
    Corrupt { id: String, reason: String },
    #[error("database configuration: {0}")]
    Config(String),
}

impl std::error::Error for InvalidEntry {}

impl StoreError {
    pub fn kind(&self) -> StoreErrorKind {
        match self {
            StoreError::InvalidEntry { .. } | StoreError::InvalidInput(_) => {
                StoreErrorKind::InvalidInput
            }
            StoreError::PoolExhausted { .. } | StoreError::Unavailable(_) => {
                StoreErrorKind::Unavailable
            }
            StoreError::Database(_) | StoreError::Corrupt { .. } | StoreError::Config(_) => {
                StoreErrorKind::Internal
            }
        }
    }

    /// Maps a driver error; `waited` is the pool's acquire timeout.
    pub(crate) fn from_sqlx(error: sqlx::Error, waited: Duration) -> StoreError {
        match error {
            sqlx::Error::PoolTimedOut => StoreError::PoolExhausted { waited },
            sqlx::Error::Io(error) => StoreError::Unavailable(error.to_string()),
            sqlx::Error::Tls(error) => StoreError::Unavailable(format!("TLS: {error}")),
            sqlx::Error::PoolClosed | sqlx::Error::WorkerCrashed => {
                StoreError::Unavailable("the connection pool is closed".into())
            }
            sqlx::Error::Database(error) => {
                let code = error
                    .code()
                    .map(|code| code.into_owned())
                    .unwrap_or_default();
                // PostgreSQL: connection exceptions (08xxx), statement timeout / cancel (57014),
                // too many connections (53300), shutting down (57P01..57P03). SQLite: busy (5),
                // locked (6).
                let unavailable = code.starts_with("08")
                    || matches!(
                        code.as_str(),
                        "57014" | "53300" | "57P01" | "57P02" | "57P03" | "5" | "6" | "517" | "262"
                    );
                if unavailable {
                    StoreError::Unavailable(error.to_string())
                } else {
                    StoreError::Database(error.to_string())
                }
            }
            other => StoreError::Database(other.to_string()),
        }
    }
}
