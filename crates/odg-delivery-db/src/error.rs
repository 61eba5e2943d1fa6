//! Errors of the delivery DB and the kinds callers branch on.

use std::time::Duration;

use crate::model::InvalidEntry;

/// What went wrong, coarse enough for the HTTP layer to pick a status from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreErrorKind {
    /// An entry of the request is malformed (400).
    InvalidInput,
    /// The database cannot take the request now although it answers: every connection busy past
    /// the acquire timeout, a statement timeout, too many connections, a locked SQLite file
    /// (503 + `Retry-After`).
    Unavailable,
    /// No connection to the database can be had: refused, reset, TLS failure, the server shutting
    /// down, or not reached since start-up (503 + `Retry-After`; it is reconnected in the background).
    Unreachable,
    /// A bug or a broken database (500).
    Internal,
    /// What the request would create exists already (the original answers 422).
    Conflict,
    /// The request's body exceeds the configured limit (413).
    TooLarge,
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
    #[error("delivery DB unreachable: {0}")]
    Unreachable(String),
    #[error("database error: {0}")]
    Database(String),
    #[error("stored entry {id} is unreadable: {reason}")]
    Corrupt { id: String, reason: String },
    #[error("database configuration: {0}")]
    Config(String),
    #[error("a blob with the digest {digest} is already in the blob store")]
    BlobExists { digest: String },
    #[error("the body's digest is {actual}, not the {expected} the request names")]
    DigestMismatch { expected: String, actual: String },
    #[error("the blob exceeds the limit of {limit} bytes")]
    BlobTooLarge { limit: u64 },
    #[error("the upload was cut off: {0}")]
    UploadAborted(String),
}

impl std::error::Error for InvalidEntry {}

impl StoreError {
    pub fn kind(&self) -> StoreErrorKind {
        match self {
            StoreError::InvalidEntry { .. }
            | StoreError::InvalidInput(_)
            | StoreError::DigestMismatch { .. }
            | StoreError::UploadAborted(_) => StoreErrorKind::InvalidInput,
            StoreError::BlobExists { .. } => StoreErrorKind::Conflict,
            StoreError::BlobTooLarge { .. } => StoreErrorKind::TooLarge,
            StoreError::PoolExhausted { .. } | StoreError::Unavailable(_) => {
                StoreErrorKind::Unavailable
            }
            StoreError::Unreachable(_) => StoreErrorKind::Unreachable,
            StoreError::Database(_) | StoreError::Corrupt { .. } | StoreError::Config(_) => {
                StoreErrorKind::Internal
            }
        }
    }

    /// Maps a driver error; `waited` is the pool's acquire timeout. `pool_full` tells whether
    /// every connection the pool may open was open when the wait ran out: sqlx reports both
    /// "all connections busy" and "connecting kept being refused" as `PoolTimedOut` (it retries a
    /// refused connect until the acquire timeout), and only a full pool means busy.
    pub(crate) fn from_sqlx(error: sqlx::Error, waited: Duration, pool_full: bool) -> StoreError {
        match error {
            sqlx::Error::PoolTimedOut if pool_full => StoreError::PoolExhausted { waited },
            sqlx::Error::PoolTimedOut => {
                StoreError::Unreachable(format!("no connection could be opened within {waited:?}"))
            }
            sqlx::Error::Io(error) => StoreError::Unreachable(error.to_string()),
            sqlx::Error::Tls(error) => StoreError::Unreachable(format!("TLS: {error}")),
            sqlx::Error::PoolClosed | sqlx::Error::WorkerCrashed => {
                StoreError::Unavailable("the connection pool is closed".into())
            }
            sqlx::Error::Database(error) => {
                let code = error
                    .code()
                    .map(|code| code.into_owned())
                    .unwrap_or_default();
                // PostgreSQL: connection exceptions (08xxx) and shutting down (57P01..57P03) mean
                // unreachable; statement timeout / cancel (57014) and too many connections
                // (53300) mean busy. SQLite: busy (5), locked (6).
                let unreachable =
                    code.starts_with("08") || matches!(code.as_str(), "57P01" | "57P02" | "57P03");
                let unavailable =
                    matches!(code.as_str(), "57014" | "53300" | "5" | "6" | "517" | "262");
                if unreachable {
                    StoreError::Unreachable(error.to_string())
                } else if unavailable {
                    StoreError::Unavailable(error.to_string())
                } else {
                    StoreError::Database(error.to_string())
                }
            }
            other => StoreError::Database(other.to_string()),
        }
    }
}
