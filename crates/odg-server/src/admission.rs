//! Admission control: at most `max_concurrent` requests are handled at once, at most `max_queued`
//! wait for a slot, and none waits longer than `max_wait`. Everything beyond is shed at once with
//! 503, `Retry-After` and a JSON error, so an overloaded pod stays responsive for the requests it
//! admits and tells the others clearly to come back (or go to another pod).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use metrics::{counter, gauge, histogram};
use tokio::sync::Semaphore;

use crate::metrics::{ADMITTED_IN_FLIGHT, QUEUE_WAIT, QUEUE_WAITING, REQUESTS_SHED};
use crate::ApiError;

#[derive(Debug, Clone)]
pub struct AdmissionConfig {
    pub max_concurrent: usize,
    pub max_queued: usize,
    pub max_wait: Duration,
}

impl Default for AdmissionConfig {
    fn default() -> Self {
        AdmissionConfig {
            max_concurrent: 256,
            max_queued: 1024,
            max_wait: Duration::from_secs(2),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Admission {
    permits: Arc<Semaphore>,
    waiting: Arc<AtomicUsize>,
    config: AdmissionConfig,
}

/// Decrements the waiting count however the wait ends (admitted, timed out, client gone).
struct Waiting<'a>(&'a AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
        gauge!(QUEUE_WAITING).decrement(1.0);
    }
}

/// Counts an admitted request until it ends, however it ends.
struct Admitted;

impl Drop for Admitted {
    fn drop(&mut self) {
        gauge!(ADMITTED_IN_FLIGHT).decrement(1.0);
    }
}

impl Admission {
    pub fn new(config: AdmissionConfig) -> Admission {
        Admission {
            permits: Arc::new(Semaphore::new(config.max_concurrent.max(1))),
            waiting: Arc::new(AtomicUsize::new(0)),
            config,
        }
    }

    fn shed(&self, reason: &'static str) -> Response {
        counter!(REQUESTS_SHED, "reason" => reason).increment(1);
        let retry_after = self.config.max_wait.as_secs().max(1);
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "the service is at capacity; retry after the time in Retry-After",
        )
        .with("reason", serde_json::Value::String(reason.into()))
        .with_retry_after(retry_after)
        .into_response()
    }
}

/// Route-level middleware admitting requests through the concurrency limit and its queue.
pub async fn admit(State(admission): State<Admission>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let permit = match admission.permits.clone().try_acquire_owned() {
        Ok(permit) => permit,
        Err(_) => {
            if admission.waiting.fetch_add(1, Ordering::SeqCst) >= admission.config.max_queued {
                admission.waiting.fetch_sub(1, Ordering::SeqCst);
                return admission.shed("queue_full");
            }
            gauge!(QUEUE_WAITING).increment(1.0);
            let waiting = Waiting(&admission.waiting);
            let acquired = tokio::time::timeout(
                admission.config.max_wait,
                admission.permits.clone().acquire_owned(),
            )
            .await;
            drop(waiting);
            match acquired {
                Ok(Ok(permit)) => permit,
                _ => {
                    histogram!(QUEUE_WAIT).record(started.elapsed().as_secs_f64());
                    return admission.shed("wait_timeout");
                }
            }
        }
    };
    histogram!(QUEUE_WAIT).record(started.elapsed().as_secs_f64());
    gauge!(ADMITTED_IN_FLIGHT).increment(1.0);
    let admitted = Admitted;
    let response = next.run(request).await;
    drop(admitted);
    drop(permit);
    response
}
