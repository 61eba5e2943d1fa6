//! Test fixtures for the workspace: a real docker-registry per test, a scriptable fake registry for faults, a delaying reverse proxy, Redis processes and cuttable TCP links.
//!
//! Entry points: [`RegistryServer`] (CNCF distribution 2.8 child process), [`FakeRegistry`] (axum,
//! faults and token auth the real one cannot produce), [`DelayProxy`] (latency and per-kind and
//! per-path request counts in front of any registry), [`RedisServer`] (a dedicated `redis-server`
//! child that can be killed and restarted), [`SharedRedisPrefix`] (a test's own keys in the suite's Redis), [`TcpForwarder`] (a TCP link that can be cut, restored
//! and slowed down), [`TestCa`] (a private CA and the server certificates it signs), [`jwt`] (HS256 tokens), [`OdgProcess`] (`odg serve` as a child process, for the end-to-end tests and the benchmarks), [`fixtures`] (OCI documents) and [`CapturingRecorder`] (metrics read back in tests). Loopback only.

pub mod counters;
pub mod delay_proxy;
pub mod fake_github;
pub mod fake_registry;
pub mod fixtures;
pub mod jwt;
pub mod odg_process;
pub mod postgres;
pub mod prometheus;
pub mod recorder;
pub mod redis_server;
pub mod registry_server;
pub mod shared_redis;
pub mod tcp_forwarder;
pub mod test_ca;

pub use crate::counters::{classify_path, PathKind, RequestCounters};
pub use crate::delay_proxy::DelayProxy;
pub use crate::fake_github::{FakeGithub, FakeGithubUser, FakePullRequest};
pub use crate::fake_registry::{
    BearerAuth, FakeRegistry, FakeRegistryBuilder, Fault, FaultResponse,
};
pub use crate::fixtures::{oci_index, oci_manifest, sha256_digest, OciImageFixture};
pub use crate::jwt::hs256_jwt;
pub use crate::odg_process::{OdgProcess, OdgStartError, ServeSetup};
pub use crate::postgres::{postgres_admin_url, postgres_server_addr, TestDatabase};
pub use crate::recorder::CapturingRecorder;
pub use crate::redis_server::{delete_keys_with_prefix, resp_command, RedisServer};
pub use crate::registry_server::RegistryServer;
pub use crate::shared_redis::{shared_redis_url, SharedRedisPrefix};
pub use crate::tcp_forwarder::TcpForwarder;
pub use crate::test_ca::{ServerCertificate, TestCa};
