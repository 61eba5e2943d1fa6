//! The error type of component lookups and the kinds callers branch on.

use std::sync::Arc;

use odg_oci::{OciError, OciErrorKind};
use odg_ocm::OcmError;

/// What went wrong, coarse enough for a caller (the HTTP layer) to pick a status from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ComponentErrorKind {
    /// A parameter was missing or malformed (HTTP 400).
    InvalidInput,
    /// The caller named a repository that is neither mapped nor allowed (HTTP 403).
    Forbidden,
    /// The component, version or artefact does not exist in any candidate repository (HTTP 404).
    NotFound,
    /// A descriptor inside a dependency tree is missing or broken (HTTP 424).
    BrokenDependency,
    /// The request is well-formed but cannot be answered: a dependency cycle, or a tree too large (HTTP 422).
    Unprocessable,
    /// A stored descriptor could not be read or is not the one asked for (HTTP 502).
    CorruptDescriptor,
    /// The registry failed or refused us (HTTP 502).
    Upstream,
    /// The registry did not answer in time (HTTP 504).
    UpstreamTimeout,
    /// Our own plumbing failed: a task that died, a closed pool, an inconsistent cached value
    /// (HTTP 500; a bug or a resource problem of this pod, not the registry's).
    Internal,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum ComponentError {
    #[error("{0}")]
    InvalidInput(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("component {name}:{version} not found")]
    VersionNotFound { name: String, version: String },
    #[error("no versions of component {name} found")]
    ComponentNotFound { name: String },
    #[error("{name}:{version} has no artefact named {artefact:?}")]
    ArtefactNotFound {
        name: String,
        version: String,
        artefact: String,
    },
    #[error("descriptor {name}:{version} in the dependency tree is unavailable: {source}")]
    BrokenDependency {
        name: String,
        version: String,
        /// Path from the root to the broken component, as `name:version` strings.
        path: Vec<String>,
        #[source]
        source: Box<ComponentError>,
    },
    #[error("dependency cycle: {}", .cycle.join(" -> "))]
    Cycle {
        /// The components of the cycle as `name:version`, the first repeated at the end.
        cycle: Vec<String>,
    },
    #[error(
        "the dependency tree of {root} has more than {limit} elements (shared subtrees count once per path); \
         ask for a smaller recursion_depth"
    )]
    TreeTooLarge { root: String, limit: usize },
    #[error("descriptor {name}:{version} in {repository} is unreadable: {reason}")]
    CorruptDescriptor {
        name: String,
        version: String,
        repository: String,
        reason: String,
    },
    #[error("registry {repository}: {source}")]
    Registry {
        repository: String,
        /// Shared so that one failed load can answer every request that waited for it.
        #[source]
        source: Arc<OciError>,
    },
    #[error("internal task failed: {0}")]
    Task(String),
}

impl ComponentError {
    pub fn kind(&self) -> ComponentErrorKind {
        match self {
            ComponentError::InvalidInput(_) => ComponentErrorKind::InvalidInput,
            ComponentError::Forbidden(_) => ComponentErrorKind::Forbidden,
            ComponentError::VersionNotFound { .. }
            | ComponentError::ComponentNotFound { .. }
            | ComponentError::ArtefactNotFound { .. } => ComponentErrorKind::NotFound,
            // A registry failure deep in a tree is still a registry failure (502/504), not a broken tree.
            ComponentError::BrokenDependency { source, .. } => match source.kind() {
                kind @ (ComponentErrorKind::Upstream | ComponentErrorKind::UpstreamTimeout) => kind,
                _ => ComponentErrorKind::BrokenDependency,
            },
            ComponentError::Cycle { .. } | ComponentError::TreeTooLarge { .. } => {
                ComponentErrorKind::Unprocessable
            }
            ComponentError::CorruptDescriptor { .. } => ComponentErrorKind::CorruptDescriptor,
            ComponentError::Registry { source, .. } => match source.kind() {
                OciErrorKind::Timeout => ComponentErrorKind::UpstreamTimeout,
                _ => ComponentErrorKind::Upstream,
            },
            ComponentError::Task(_) => ComponentErrorKind::Internal,
        }
    }

    pub(crate) fn registry(repository: &impl std::fmt::Display, source: OciError) -> Self {
        ComponentError::Registry {
            repository: repository.to_string(),
            source: Arc::new(source),
        }
    }
}

/// OCM errors reach callers only from validating their input (names, versions, filters, URLs);
/// errors in stored documents are wrapped in [`ComponentError::CorruptDescriptor`] instead.
impl From<OcmError> for ComponentError {
    fn from(error: OcmError) -> Self {
        ComponentError::InvalidInput(error.to_string())
    }
}

/// An offloaded job that panicked, or a pool shutting down: our own failure.
impl From<odg_offload::OffloadError> for ComponentError {
    fn from(error: odg_offload::OffloadError) -> Self {
        ComponentError::Task(error.to_string())
    }
}

/// The cache fails only in its own plumbing (a fill task that died); loader errors pass through.
impl From<odg_cache::CacheError> for ComponentError {
    fn from(error: odg_cache::CacheError) -> Self {
        ComponentError::Task(error.to_string())
    }
}
