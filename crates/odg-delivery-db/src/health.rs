//! Whether the delivery DB can be used now, and the background task that keeps finding out: it
//! migrates a database that was unreachable at start-up as soon as it answers, and probes a
//! migrated one, reconnecting with backoff and jitter while it is down.
//!
//! The service must not depend on the database to start: the OCM routes never touch it, so a
//! database outage only turns the metadata routes into 503s (see [`crate::StoreErrorKind::Unreachable`]).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use metrics::{counter, gauge};
use rand::Rng;
use tokio::sync::Notify;

use crate::metrics::{DB_UP, RECONNECT_FAILURES};
use crate::store::{DeliveryDb, Inner};
use crate::{StoreError, StoreErrorKind};

/// First wait after a failed attempt; doubled per failure up to [`MAX_BACKOFF`].
const INITIAL_BACKOFF: Duration = Duration::from_millis(250);
/// Longest wait between two attempts while the database is down: recovery shows within this
/// (plus one acquire timeout), and a fleet of pods does not hammer a database coming back.
const MAX_BACKOFF: Duration = Duration::from_secs(10);
/// How often a reachable database is probed, so `/ready` and the gauge notice an outage even
/// when no request touches the database.
const PROBE_INTERVAL: Duration = Duration::from_secs(5);

/// What `/ready` and the metrics report about the delivery DB.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DbStatus {
    /// Migrated and answering.
    Up,
    /// Never reached since start-up: the schema is not migrated yet, so nothing is served.
    Connecting,
    /// Reached before, unreachable now.
    Unreachable,
}

impl DbStatus {
    pub fn as_str(&self) -> &'static str {
        match self {
            DbStatus::Up => "up",
            DbStatus::Connecting => "connecting",
            DbStatus::Unreachable => "unreachable",
        }
    }
}

/// A snapshot of the delivery DB's connectivity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DbHealth {
    pub status: DbStatus,
    /// Why it is not up (the last connection error), without credentials.
    pub last_error: Option<String>,
}

#[derive(Debug)]
pub(crate) struct HealthState {
    migrated: AtomicBool,
    up: AtomicBool,
    last_error: Mutex<Option<String>>,
    /// Wakes the background task when an operation finds the database gone, so that it starts
    /// reconnecting at once instead of after its probe interval.
    lost: Arc<Notify>,
}

impl HealthState {
    pub(crate) fn new() -> HealthState {
        gauge!(DB_UP).set(0.0);
        HealthState {
            migrated: AtomicBool::new(false),
            up: AtomicBool::new(false),
            last_error: Mutex::new(None),
            lost: Arc::new(Notify::new()),
        }
    }

    pub(crate) fn is_migrated(&self) -> bool {
        self.migrated.load(Ordering::SeqCst)
    }

    pub(crate) fn mark_migrated(&self) {
        self.migrated.store(true, Ordering::SeqCst);
        self.mark_up();
    }

    pub(crate) fn mark_up(&self) {
        if !self.up.swap(true, Ordering::SeqCst) && self.is_migrated() {
            tracing::info!("delivery DB reachable");
        }
        gauge!(DB_UP).set(1.0);
        if let Ok(mut last_error) = self.last_error.lock() {
            *last_error = None;
        }
    }

    /// Records a failure; only connection failures mark the database down (a busy pool is up).
    pub(crate) fn record_failure(&self, error: &StoreError) {
        if error.kind() != StoreErrorKind::Unreachable {
            return;
        }
        if self.up.swap(false, Ordering::SeqCst) {
            tracing::warn!(%error, "delivery DB unreachable; reconnecting in the background");
            self.lost.notify_one();
        }
        gauge!(DB_UP).set(0.0);
        if let Ok(mut last_error) = self.last_error.lock() {
            *last_error = Some(error.to_string());
        }
    }

    pub(crate) fn snapshot(&self) -> DbHealth {
        let last_error = self
            .last_error
            .lock()
            .ok()
            .and_then(|last_error| last_error.clone());
        let status = if !self.is_migrated() {
            DbStatus::Connecting
        } else if self.up.load(Ordering::SeqCst) {
            DbStatus::Up
        } else {
            DbStatus::Unreachable
        };
        DbHealth { status, last_error }
    }

    /// `Ok` when operations may run: migrated and not known to be unreachable. While the
    /// database is down, operations fail at once instead of each waiting out the acquire timeout
    /// (and holding an admission slot meanwhile); the background task finds out when it is back.
    pub(crate) fn check_available(&self) -> Result<(), StoreError> {
        if self.is_migrated() && self.up.load(Ordering::SeqCst) {
            return Ok(());
        }
        let reason = self
            .snapshot()
            .last_error
            .unwrap_or_else(|| "not connected yet".to_string());
        Err(StoreError::Unreachable(
            reason
                .strip_prefix("delivery DB unreachable: ")
                .unwrap_or(&reason)
                .to_string(),
        ))
    }
}

/// Runs until every handle of the database is dropped: migrates when not yet migrated, probes
/// otherwise; after a failure waits a jittered, doubling backoff, after a success the probe interval.
pub(crate) async fn supervise(inner: Weak<Inner>) {
    let mut backoff = INITIAL_BACKOFF;
    let Some(lost) = inner
        .upgrade()
        .map(|inner| DeliveryDb::from_inner(inner).health_state().lost.clone())
    else {
        return;
    };
    loop {
        let Some(db) = inner.upgrade().map(DeliveryDb::from_inner) else {
            return;
        };
        let attempt = if db.health_state().is_migrated() {
            db.probe().await
        } else {
            db.try_migrate().await
        };
        let wait = match attempt {
            Ok(()) => {
                backoff = INITIAL_BACKOFF;
                // An operation that finds the database gone cuts this wait short.
                drop(db);
                tokio::select! {
                    () = tokio::time::sleep(PROBE_INTERVAL) => {}
                    () = lost.notified() => {}
                }
                continue;
            }
            Err(error) => {
                counter!(RECONNECT_FAILURES).increment(1);
                tracing::debug!(%error, ?backoff, "delivery DB attempt failed");
                let wait = jittered(backoff);
                backoff = (backoff * 2).min(MAX_BACKOFF);
                wait
            }
        };
        // Hold no handle while sleeping, so dropping the database ends this task.
        drop(db);
        tokio::time::sleep(wait).await;
    }
}

/// Somewhere in `[backoff / 2, backoff]`, so pods that lost the database together do not
/// reconnect in lockstep.
fn jittered(backoff: Duration) -> Duration {
    let half = backoff / 2;
    half + half.mul_f64(rand::rng().random::<f64>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_stays_within_half_and_whole_backoff() {
        for _ in 0..100 {
            let wait = jittered(Duration::from_secs(4));
            assert!(wait >= Duration::from_secs(2) && wait <= Duration::from_secs(4));
        }
    }

    #[test]
    fn only_connection_failures_mark_the_database_down() {
        let health = HealthState::new();
        health.mark_migrated();
        health.record_failure(&StoreError::PoolExhausted {
            waited: Duration::from_secs(1),
        });
        assert_eq!(health.snapshot().status, DbStatus::Up);
        health.record_failure(&StoreError::Unreachable("connection refused".into()));
        let snapshot = health.snapshot();
        assert_eq!(snapshot.status, DbStatus::Unreachable);
        assert_eq!(
            snapshot.last_error.as_deref(),
            Some("delivery DB unreachable: connection refused")
        );
        health.mark_up();
        assert_eq!(
            health.snapshot(),
            DbHealth {
                status: DbStatus::Up,
                last_error: None
            }
        );
    }
}
