//! Blocking file IO (the disk tier's reads and writes, snapshots): on tokio's blocking threads,
//! not bounded by the CPU slots, because such a job waits on the disk rather than using a core,
//! and a slow disk must not hold the slots that descriptor decoding needs.

use metrics::gauge;

use crate::OffloadError;

/// Gauge: blocking file-IO jobs running now.
pub const BLOCKING_IO_IN_FLIGHT: &str = "odg_blocking_io_in_flight";

/// Runs `job` (file IO) on the blocking threads, in the caller's span.
pub async fn run_blocking_io<T, F>(job: F) -> Result<T, OffloadError>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    let span = tracing::Span::current();
    gauge!(BLOCKING_IO_IN_FLIGHT).increment(1.0);
    let result = tokio::task::spawn_blocking(move || span.in_scope(job)).await;
    gauge!(BLOCKING_IO_IN_FLIGHT).decrement(1.0);
    result.map_err(|error| {
        if error.is_cancelled() {
            OffloadError::Closed
        } else {
            OffloadError::Failed(error.to_string())
        }
    })
}
