//! Errors of the cache's own making (loader errors pass through untouched).

#[derive(Debug, Clone, thiserror::Error)]
pub enum CacheError {
    #[error("{0}")]
    InvalidInput(String),
    #[error("shared cache unavailable: {0}")]
    SharedUnavailable(String),
    #[error("disk cache: {0}")]
    Disk(String),
}
