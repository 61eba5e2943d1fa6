//! A bounded pool for CPU-heavy work (decoding descriptor layers, serialising large answers):
//! at most one job per core runs on the blocking threads at once, the rest wait their turn, and
//! the wait is measured. This keeps the async workers free and stops a burst of big documents
//! from spawning hundreds of blocking threads that fight over two cores.
//!
//! Large jobs (a multi-megabyte descriptor layer takes a second or two to decode) also queue for
//! one of `cores - 1` large-job slots first, so that however many of them arrive, at least one
//! slot stays free for the small jobs everyone else is waiting on.

use std::sync::OnceLock;
use std::time::Instant;

use metrics::{gauge, histogram};
use tokio::sync::Semaphore;

use crate::OffloadError;

/// Histogram: seconds CPU-bound jobs waited for a slot in the pool.
pub const CPU_POOL_WAIT: &str = "odg_cpu_pool_wait_seconds";
/// Gauge: CPU-bound jobs waiting for a slot now.
pub const CPU_POOL_WAITING: &str = "odg_cpu_pool_waiting";

/// How large a job's input is, for the large-job slots.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobSize {
    Small,
    /// Input of [`LARGE_JOB_BYTES`] or more, or otherwise known to take long.
    Large,
}

/// Inputs from this size on make a [`JobSize::Large`] job.
pub const LARGE_JOB_BYTES: usize = 256 * 1024;

impl JobSize {
    pub fn of_input(bytes: usize) -> JobSize {
        if bytes >= LARGE_JOB_BYTES {
            JobSize::Large
        } else {
            JobSize::Small
        }
    }
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(2, |cores| cores.get())
}

fn slots() -> &'static Semaphore {
    static SLOTS: OnceLock<Semaphore> = OnceLock::new();
    SLOTS.get_or_init(|| Semaphore::new(cores()))
}

fn large_job_slots() -> &'static Semaphore {
    static LARGE_JOB_SLOTS: OnceLock<Semaphore> = OnceLock::new();
    LARGE_JOB_SLOTS.get_or_init(|| Semaphore::new(cores().saturating_sub(1).max(1)))
}

/// Runs `job` on the blocking pool once a slot is free.
pub async fn run_cpu_bound<T, F>(job: F) -> Result<T, OffloadError>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    run_cpu_bound_sized(JobSize::Small, job).await
}

/// Runs `job` on the blocking pool once a slot is free, and for a large job a large-job slot too.
pub async fn run_cpu_bound_sized<T, F>(size: JobSize, job: F) -> Result<T, OffloadError>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    let started = Instant::now();
    gauge!(CPU_POOL_WAITING).increment(1.0);
    // the large-job slot first: waiting for it must not hold a slot small jobs could use
    let large_job_permit = match size {
        JobSize::Large => Some(large_job_slots().acquire().await),
        JobSize::Small => None,
    };
    let permit = slots().acquire().await;
    gauge!(CPU_POOL_WAITING).decrement(1.0);
    histogram!(CPU_POOL_WAIT).record(started.elapsed().as_secs_f64());
    let closed = |_| OffloadError::Closed;
    let _large_job_permit = large_job_permit.transpose().map_err(closed)?;
    let _permit = permit.map_err(closed)?;
    // the job runs on another thread: it carries the caller's span, so that what it logs is
    // tied to the request that caused it
    let span = tracing::Span::current();
    tokio::task::spawn_blocking(move || span.in_scope(job))
        .await
        .map_err(|error| {
            if error.is_cancelled() {
                OffloadError::Closed
            } else {
                OffloadError::Failed(error.to_string())
            }
        })
}

#[cfg(test)]
mod tests {
    use std::sync::{mpsc, Arc, Mutex};

    use super::*;

    #[test]
    fn inputs_from_the_threshold_on_are_large() {
        assert_eq!(JobSize::of_input(LARGE_JOB_BYTES - 1), JobSize::Small);
        assert_eq!(JobSize::of_input(LARGE_JOB_BYTES), JobSize::Large);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn large_jobs_leave_a_slot_for_small_ones() {
        let large_slots = large_job_slots().available_permits();
        if large_slots == cores() {
            return; // one core: the one slot is shared, there is nothing to show
        }
        let (started_sender, mut started) = tokio::sync::mpsc::unbounded_channel();
        let (release_sender, release) = mpsc::channel::<()>();
        let release = Arc::new(Mutex::new(release));
        let large_jobs: Vec<_> = (0..=large_slots)
            .map(|_| {
                let (started_sender, release) = (started_sender.clone(), release.clone());
                tokio::spawn(run_cpu_bound_sized(JobSize::Large, move || {
                    started_sender.send(()).unwrap();
                    release.lock().unwrap().recv().unwrap();
                }))
            })
            .collect();
        for _ in 0..large_slots {
            started.recv().await.unwrap();
        }
        // every large-job slot is taken and one more large job waits; a small job still runs
        assert_eq!(run_cpu_bound(|| 7).await.unwrap(), 7);
        assert!(
            started.try_recv().is_err(),
            "a large job ran beyond its slots"
        );
        for _ in 0..=large_slots {
            release_sender.send(()).unwrap();
        }
        for job in large_jobs {
            job.await.unwrap().unwrap();
        }
    }
}
