//! The extensions of the delivery service as clients of its HTTP API: the artefact enumerator
//! (`odg enumerate`: list versions, walk dependency trees, fetch every descriptor, query the
//! artefact metadata, with bounded concurrency and a jittered start) and the cache prefill of `odg cache-manager`.
//!
//! Knows nothing of the binary's configuration format nor of the server's internals: it speaks
//! the public routes, and reads the service's `/metrics` only to report the cache effect of a run.

// Production code neither unwraps nor expects: failures become errors, and the few invariants
// that cannot fail are marked where they are, each with its reason (checked by the tidy test).
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

mod client;
mod enumerate;
mod error;
mod prefill;
mod run;
mod service_metrics;
mod summary;
mod target;

pub use client::{ClientOptions, RequestError, RequestStats, Route, ServiceClient};
pub use enumerate::{
    enumerate, EnumerateOptions, EnumerateReport, MetadataReport, DEFAULT_METADATA_BATCH_SIZE,
};
pub use error::ExtensionError;
pub use prefill::{prefill, PrefillOptions, PrefillReport};
pub use service_metrics::{scrape, ServiceCounters};
pub use summary::{Failure, RunSummary, ServiceEffect};
pub use target::{Target, VersionSelection};
