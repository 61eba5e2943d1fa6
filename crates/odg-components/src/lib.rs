//! Component lookups over OCM repositories: version lists, descriptors and dependency walks.
//!
//! This crate joins the OCM model (`odg-ocm`) with OCI transport (`odg-oci`). It knows nothing of
//! HTTP servers or of the binary's configuration format: callers hand it a [`RepositoryMapping`]
//! and a [`StoreProvider`].
//!
//! [`RepositoryMapping`]: odg_ocm::RepositoryMapping

// Production code neither unwraps nor expects: failures become errors, and the few invariants
// that cannot fail are marked where they are, each with its reason (checked by the tidy test).
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

mod answer;
mod answers;
mod cache;
mod diff;
mod error;
mod oci_source;
mod publish;
mod render;
mod responsibles;
mod service;
mod source;
mod stores;
mod walk;

pub use answer::{ContentEncoding, RenderedAnswer, COMPRESSION_THRESHOLD_BYTES, INLINE_WORK_BYTES};
pub use cache::{
    default_policies, descriptor_footprint, with_cache_mode, CachedComponentSource,
    ABSENT_DESCRIPTOR_FRESH_FOR, KIND_ANSWER, KIND_DEPENDENCIES, KIND_DESCRIPTOR, KIND_DIFF,
    KIND_RESPONSIBLES, KIND_VERSIONS,
};
pub use diff::diff_json;
pub use error::{ComponentError, ComponentErrorKind};
pub use oci_source::{OciComponentSource, OciSourceLimits};
/// Blob streams (`local_blob`), re-exported so that the server need not know the OCI crate.
pub use odg_oci::{BlobRead, BlobStream, ByteRange, OciError};
pub use publish::{
    push_descriptor, push_descriptor_with_blobs, with_repository_context, LocalBlob,
    PushedDescriptor,
};
pub use render::Populate;
pub use responsibles::{main_source_repo_url, responsibles_json, RESPONSIBLES_LABEL};
pub use service::{
    is_iso_date, ComponentService, ComponentServiceConfig, VersionQuery, GREATEST,
    IGNORE_LOOKUP_NEEDS_REPOSITORY,
};
pub use source::{ComponentId, ComponentSource, FetchedDescriptor};
pub use stores::{RepositoryStores, StoreProvider};
pub use walk::{DependencyNode, WalkOptions};
