//! Work that must not run on the async workers, in one place: CPU-heavy jobs go through the
//! bounded CPU pool ([`run_cpu_bound`]), blocking file IO through [`run_blocking_io`]. This is
//! the only crate that calls `tokio::task::spawn_blocking` (clippy's `disallowed-methods`
//! refuses it everywhere else), so the pool's bound holds for every crate above it.

// Production code neither unwraps nor expects: failures become errors, and the few invariants
// that cannot fail are marked where they are, each with its reason (checked by the tidy test).
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]
#![allow(clippy::disallowed_methods)] // the one place that may spawn blocking work

mod cpu_pool;
mod io;

pub use cpu_pool::{
    run_cpu_bound, run_cpu_bound_sized, JobSize, CPU_POOL_WAIT, CPU_POOL_WAITING, LARGE_JOB_BYTES,
};
pub use io::{run_blocking_io, BLOCKING_IO_IN_FLIGHT};

/// An offloaded job did not produce its value: it panicked, or the runtime is shutting down.
#[derive(Debug, Clone, thiserror::Error)]
pub enum OffloadError {
    #[error("the blocking pool is closed")]
    Closed,
    #[error("the offloaded job failed: {0}")]
    Failed(String),
}
