//! Test fixtures for the workspace: a real docker-registry per test, a scriptable fake registry for faults, a delaying reverse proxy.
//!
//! Entry points: [`RegistryServer`] (CNCF distribution 2.8 child process), [`FakeRegistry`] (axum,
//! faults and token auth the real one cannot produce), [`DelayProxy`] (latency and per-kind request
//! counts in front of any registry), and [`fixtures`] (OCI documents). Loopback only.

pub mod counters;
pub mod delay_proxy;
pub mod fake_registry;
pub mod fixtures;
pub mod registry_server;

pub use crate::counters::{classify_path, PathKind, RequestCounters};
pub use crate::delay_proxy::DelayProxy;
pub use crate::fake_registry::{
    BearerAuth, FakeRegistry, FakeRegistryBuilder, Fault, FaultResponse,
};
pub use crate::fixtures::{oci_index, oci_manifest, sha256_digest, OciImageFixture};
pub use crate::registry_server::RegistryServer;
