//! The seam between lookups and storage: where descriptors and tags come from.
//!
//! [`ComponentSource`] is the one trait that caching layers decorate: a cache wraps a source and
//! is itself a source, so the service and the dependency walk never know whether they hit a
//! cache or a registry.

use std::sync::Arc;

use async_trait::async_trait;
use odg_oci::{BlobRead, ByteRange};
use odg_ocm::{ComponentDescriptor, OcmRepositoryUrl};
use serde::Serialize;

use crate::ComponentError;

/// A component version: its name (case as written in descriptors) and version (with `+`, not the tag form).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct ComponentId {
    pub name: String,
    pub version: String,
}

impl ComponentId {
    pub fn new(name: impl Into<String>, version: impl Into<String>) -> Self {
        ComponentId {
            name: name.into(),
            version: version.into(),
        }
    }
}

impl std::fmt::Display for ComponentId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.name, self.version)
    }
}

/// A descriptor as read from one repository, with the document exactly as stored (for `raw=true`).
#[derive(Debug, Clone, PartialEq)]
pub struct FetchedDescriptor {
    pub descriptor: ComponentDescriptor,
    /// The YAML or JSON text as it was stored in the descriptor layer.
    pub document: String,
    /// The repository it was read from.
    pub repository: OcmRepositoryUrl,
}

/// Where descriptors and version tags come from: one repository at a time.
///
/// Implementations answer `Ok(None)` / an empty list for "not in this repository", so that the
/// caller can try the next candidate repository; errors are reserved for failures.
#[async_trait]
pub trait ComponentSource: Send + Sync + std::fmt::Debug {
    /// The descriptor of `name:version` in `repository`, verified to be the one asked for.
    async fn descriptor(
        &self,
        repository: &OcmRepositoryUrl,
        component: &ComponentId,
    ) -> Result<Option<Arc<FetchedDescriptor>>, ComponentError>;

    /// All versions (tags mapped back to versions, `.build-` -> `+`) of `name` in `repository`,
    /// unfiltered and unsorted.
    async fn versions(
        &self,
        repository: &OcmRepositoryUrl,
        component_name: &str,
    ) -> Result<Vec<String>, ComponentError>;

    /// A blob of the component's OCI repository in `repository` (an OCM `localBlob`), streamed
    /// whole or one byte range; never cached (blobs are large and passed on as they come).
    /// Sources that store no blobs answer `NotFound`.
    async fn local_blob(
        &self,
        repository: &OcmRepositoryUrl,
        component_name: &str,
        digest: &str,
        range: Option<ByteRange>,
    ) -> Result<BlobRead, ComponentError> {
        let _ = range;
        Err(ComponentError::registry(
            repository,
            odg_oci::OciError::NotFound {
                what: format!("blob {digest} of {component_name} (this source stores no blobs)"),
            },
        ))
    }
}
