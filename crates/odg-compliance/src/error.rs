//! Errors of the compliance summary and the kinds callers branch on.

use odg_components::{ComponentError, ComponentErrorKind};
use odg_delivery_db::{StoreError, StoreErrorKind};

/// Cloneable, so that one failed computation can answer every request that waited for it.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ComplianceError {
    /// Walking the tree or reading a descriptor failed.
    #[error(transparent)]
    Components(#[from] ComponentError),
    /// The delivery DB failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Stored findings contradict the finding configuration (a severity it does not define).
    #[error("{0}")]
    Data(String),
    #[error("finding configuration: {0}")]
    Config(String),
    /// The cache's own plumbing failed (a fill task that died, the shared tier unreachable).
    #[error("cache: {0}")]
    Cache(#[from] odg_cache::CacheError),
}

impl ComplianceError {
    pub fn component_kind(&self) -> Option<ComponentErrorKind> {
        match self {
            ComplianceError::Components(error) => Some(error.kind()),
            _ => None,
        }
    }

    pub fn store_kind(&self) -> Option<StoreErrorKind> {
        match self {
            ComplianceError::Store(error) => Some(error.kind()),
            _ => None,
        }
    }
}
