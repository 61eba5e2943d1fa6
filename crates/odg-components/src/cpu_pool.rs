//! A bounded pool for CPU-heavy work (decoding descriptor layers, serialising large answers):
//! at most one job per core runs on the blocking threads at once, the rest wait their turn, and
//! the wait is measured. This keeps the async workers free and stops a burst of big documents
//! from spawning hundreds of blocking threads that fight over two cores.

use std::sync::OnceLock;
use std::time::Instant;

use metrics::{gauge, histogram};
use tokio::sync::Semaphore;

use crate::ComponentError;

/// Histogram: seconds CPU-bound jobs waited for a slot in the pool.
pub const CPU_POOL_WAIT: &str = "odg_cpu_pool_wait_seconds";
/// Gauge: CPU-bound jobs waiting for a slot now.
pub const CPU_POOL_WAITING: &str = "odg_cpu_pool_waiting";

fn slots() -> &'static Semaphore {
    static SLOTS: OnceLock<Semaphore> = OnceLock::new();
    SLOTS.get_or_init(|| {
        let cores = std::thread::available_parallelism().map_or(2, |cores| cores.get());
        Semaphore::new(cores)
    })
}

/// Runs `job` on the blocking pool once a slot is free.
pub async fn run_cpu_bound<T, F>(job: F) -> Result<T, ComponentError>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    let started = Instant::now();
    gauge!(CPU_POOL_WAITING).increment(1.0);
    let permit = slots().acquire().await;
    gauge!(CPU_POOL_WAITING).decrement(1.0);
    histogram!(CPU_POOL_WAIT).record(started.elapsed().as_secs_f64());
    let _permit = permit.map_err(|_| ComponentError::Task("the CPU pool is closed".into()))?;
    tokio::task::spawn_blocking(job)
        .await
        .map_err(|error| ComponentError::Task(error.to_string()))
}
