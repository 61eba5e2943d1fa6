//! The delivery DB: artefact metadata (findings, scan infos, rescorings, ...) stored in
//! PostgreSQL or, by default, an SQLite file, with the original delivery service's JSON model,
//! identities (BLAKE2s-16 over the entry's key), upsert rules and query matching rules.
//!
//! Knows nothing of OCM descriptors, HTTP or the cache: callers resolve a component version's
//! artefacts and decide what a write invalidates. Entry points: [`PreparedEntry`] (parse and
//! identify one entry), [`DeliveryDb`] (pool, migrations, put, delete, query), and the blob
//! store of `/blob` (`blob.rs`).

// Production code neither unwraps nor expects: failures become errors, and the few invariants
// that cannot fail are marked where they are, each with its reason (checked by the tidy test).
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

mod backlog;
mod blob;
mod entry;
mod error;
mod health;
mod identity;
pub mod metrics;
mod model;
mod original_cache;
mod payload;
mod query;
mod schema;
mod search;
mod store;
mod time;
mod users;

pub use backlog::{BacklogClaim, BacklogCreation, BacklogItem, NewBacklogItem};
pub use blob::{
    sanitise_blob_digest, BlobRecord, BlobUpload, BLOB_CHUNK_BYTES, BLOB_DIGEST_ALGORITHMS,
    MAX_BLOB_BYTES,
};
pub use entry::{prepare_entries, PreparedEntry, REFERENCING_TYPES};
pub use error::{StoreError, StoreErrorKind};
pub use health::{DbHealth, DbStatus};
pub use identity::{entry_id, entry_key};
pub use model::{
    iso_date, normalise_extra_id, ArtefactKind, ArtefactMetadata, ComponentArtefactId,
    InvalidEntry, LocalArtefactId, Metadata, ASSIGNEE_MODES,
};
pub use original_cache::{
    compliance_summary_cache_ids, original_cache_descriptor, OriginalCacheDescriptor,
};
pub use payload::{classify, rescoring_finding_key, Payload};
pub use query::{MetadataQuery, QueryEntry, NONE_OK_TYPES};
pub use schema::{SchemaReport, TableReport, ODG_INDEXES, ORIGINAL_TABLES};
pub use search::{Attr, Condition, SearchStatement, SortField, TextOp};
pub use store::{
    by_id, redact_url, Backend, DatabaseConfig, DeliveryDb, DiscoveryDateReuse, PutReport,
    StoredMetadata,
};
pub use time::{local_now, normalise_timestamp, sort_millis};
pub use users::{RefreshToken, Rotation, UserRecord};
