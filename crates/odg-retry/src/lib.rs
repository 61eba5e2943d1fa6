//! When and how long to wait before retrying, the same for every client of odg: the registry
//! client, the extensions' client of the service, and the Redis tier's reconnects.
//!
//! Exponential backoff with jitter, and a server's `Retry-After` (seconds or an HTTP date)
//! honoured as a minimum, capped, and jittered upwards: a pod that sheds load answers every
//! client the same `Retry-After`, and without jitter their retries would arrive in step.

// Production code neither unwraps nor expects: failures become errors, and the few invariants
// that cannot fail are marked where they are, each with its reason (checked by the tidy test).
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

use std::time::{Duration, SystemTime};

use rand::Rng;

/// Retry timing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries after the first attempt; `0` means one attempt only.
    pub max_retries: u32,
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
    /// Upper bound for a server's `Retry-After`; larger requests are shortened to this.
    pub max_retry_after: Duration,
}

impl RetryPolicy {
    /// The wait before retry number `retry` (0-based): when the server sent `Retry-After`, that
    /// (capped at `max_retry_after`) plus up to a quarter more; else `initial * 2^retry` capped at
    /// `max_backoff`, jittered into `[delay/2, delay]`.
    pub fn delay(&self, retry: u32, retry_after: Option<Duration>) -> Duration {
        if let Some(retry_after) = retry_after {
            let base = retry_after.min(self.max_retry_after);
            return base + jitter(base / 4);
        }
        let exponential = self
            .initial_backoff
            .saturating_mul(2u32.saturating_pow(retry.min(30)))
            .min(self.max_backoff);
        let half = exponential / 2;
        half + jitter(exponential - half)
    }

    /// Whether retry number `retry` (0-based) may be made at all.
    pub fn allows(&self, retry: u32) -> bool {
        retry < self.max_retries
    }
}

/// A uniformly random duration in `[0, at_most]`.
fn jitter(at_most: Duration) -> Duration {
    let nanos = u64::try_from(at_most.as_nanos()).unwrap_or(u64::MAX);
    if nanos == 0 {
        return Duration::ZERO;
    }
    Duration::from_nanos(rand::rng().random_range(0..=nanos))
}

/// Whether an HTTP status is worth retrying: 408, 429 and 5xx except 501 and 505 (these will not change).
pub fn is_retryable_status(status: u16) -> bool {
    matches!(status, 408 | 429) || ((500..=599).contains(&status) && !matches!(status, 501 | 505))
}

/// Parses `Retry-After`: delta-seconds or an HTTP date (a date in the past means "now").
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let date = httpdate::parse_http_date(value).ok()?;
    Some(date.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> RetryPolicy {
        RetryPolicy {
            max_retries: 6,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(10),
            max_retry_after: Duration::from_secs(30),
        }
    }

    #[test]
    fn retry_after_seconds_and_dates() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(parse_retry_after("3", now), Some(Duration::from_secs(3)));
        assert_eq!(parse_retry_after(" 0 ", now), Some(Duration::ZERO));
        let in_five = httpdate::fmt_http_date(now + Duration::from_secs(5));
        assert_eq!(
            parse_retry_after(&in_five, now),
            Some(Duration::from_secs(5))
        );
        let past = httpdate::fmt_http_date(now - Duration::from_secs(5));
        assert_eq!(parse_retry_after(&past, now), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-1", now), None);
        assert_eq!(parse_retry_after("1.5", now), None);
    }

    #[test]
    fn retry_after_is_a_capped_minimum_jittered_upwards() {
        for _ in 0..100 {
            let capped = policy().delay(0, Some(Duration::from_secs(3600)));
            assert!(
                capped >= Duration::from_secs(30) && capped <= Duration::from_millis(37_500),
                "{capped:?}"
            );
            let asked = policy().delay(5, Some(Duration::from_secs(2)));
            assert!(
                asked >= Duration::from_secs(2) && asked <= Duration::from_millis(2_500),
                "{asked:?}"
            );
        }
        assert_eq!(policy().delay(0, Some(Duration::ZERO)), Duration::ZERO);
    }

    #[test]
    fn clients_told_the_same_retry_after_do_not_retry_in_step() {
        let waits: std::collections::BTreeSet<Duration> = (0..50)
            .map(|_| policy().delay(0, Some(Duration::from_secs(1))))
            .collect();
        // 50 draws from a billion nanosecond values: equal ones would mean no jitter at all
        assert!(waits.len() > 40, "{waits:?}");
    }

    #[test]
    fn the_number_of_retries_is_bounded() {
        let policy = policy();
        assert!(policy.allows(0) && policy.allows(5));
        assert!(!policy.allows(6));
    }

    #[test]
    fn backoff_grows_exponentially_with_jitter_and_is_capped() {
        let policy = policy();
        for _ in 0..100 {
            let first = policy.delay(0, None);
            assert!(first >= Duration::from_millis(50) && first <= Duration::from_millis(100));
            let third = policy.delay(2, None);
            assert!(third >= Duration::from_millis(200) && third <= Duration::from_millis(400));
            let late = policy.delay(40, None);
            assert!(late >= Duration::from_secs(5) && late <= Duration::from_secs(10));
        }
    }

    #[test]
    fn retryable_statuses() {
        for status in [408, 429, 500, 502, 503, 504] {
            assert!(is_retryable_status(status), "{status}");
        }
        for status in [200, 400, 401, 403, 404, 413, 501, 505] {
            assert!(!is_retryable_status(status), "{status}");
        }
    }
}
