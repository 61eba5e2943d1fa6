//! The queue discipline of adaptive admission: CoDel's test for a *standing* queue, applied to
//! requests waiting for a slot (as Facebook's servers do; Nichols and Jacobson, "Controlling Queue
//! Delay", 2012).
//!
//! A queue that fills and drains within moments absorbs a burst: that is what it is for. A queue
//! whose *oldest* waiter has waited longer than `target` at every dequeue of a whole `interval`
//! never drains: it only adds its length to every admitted request's latency. Then the queue is
//! *overloaded* until an interval passes in which the oldest waiter's wait fell below `target`
//! again, and while it is overloaded the admission queue
//! - serves the newest waiter first (LIFO: its wait is the shortest, and the oldest would be the
//!   first to give up anyway),
//! - sheds, with reason `codel`, every waiter that has waited longer than twice the target (when
//!   it is dequeued, and all of them at each interval's end), and
//! - gives new waiters twice the target, not the configured maximum wait, before they are shed.
//!
//! It stays overloaded for the next interval also when, in this one, it still had to shed a
//! waiter: shedding keeps the oldest waiter young, so its wait alone would end the overload while
//! arrivals still outrun the slots.
//!
//! Times are nanoseconds since the admission's epoch and are passed in, never read here, so the
//! tests drive this with made-up times.

use std::time::Duration;

#[derive(Debug)]
pub(crate) struct Codel {
    target: u64,
    interval: u64,
    interval_start: u64,
    /// The shortest wait of the oldest waiter seen at a dequeue in this interval.
    min_oldest_wait: Option<u64>,
    /// Whether a waiter was shed for waiting too long in this interval.
    shed_in_interval: bool,
    overloaded: bool,
}

impl Codel {
    pub(crate) fn new(target: Duration, interval: Duration, now: u64) -> Codel {
        Codel {
            target: nanos(target).max(1),
            interval: nanos(interval).max(1),
            interval_start: now,
            min_oldest_wait: None,
            shed_in_interval: false,
            overloaded: false,
        }
    }

    /// Called at every dequeue with how long the queue's oldest waiter has waited.
    pub(crate) fn on_dequeue(&mut self, oldest_wait: u64) {
        self.min_oldest_wait = Some(
            self.min_oldest_wait
                .map_or(oldest_wait, |m| m.min(oldest_wait)),
        );
    }

    /// A waiter was shed for waiting longer than [`Codel::shed_after`].
    pub(crate) fn on_shed(&mut self) {
        self.shed_in_interval = true;
    }

    /// Ends the interval if it is over, deciding whether the queue is overloaded for the next
    /// one; `oldest_wait` is the current oldest waiter's wait, `None` when the queue is empty.
    /// Returns whether an interval ended.
    pub(crate) fn tick(&mut self, now: u64, oldest_wait: Option<u64>) -> bool {
        let end = self.interval_start.saturating_add(self.interval);
        if now < end {
            return false;
        }
        // No event at all for a whole interval after this one ended: whatever was measured then
        // says nothing about the queue now.
        let stale = now >= end.saturating_add(self.interval);
        let standing = match self.min_oldest_wait.filter(|_| !stale) {
            Some(min) => min > self.target,
            // Nothing was dequeued: overloaded if someone has waited too long all the same (every
            // slot was held throughout); an empty queue is not overloaded.
            None => oldest_wait.is_some_and(|wait| wait > self.target),
        };
        // While overloaded, waiters older than twice the target are shed, so the oldest one's
        // wait can dip below the target right after a shed although arrivals still outrun the
        // slots: a queue that still had to shed stays overloaded. (Leaving would serve the next
        // interval first-in first-out with the full maximum wait, and a queue that fills in
        // it adds a whole handler time or more to the admitted requests: the tail that
        // overload control is for.)
        let still_shedding = self.overloaded && self.shed_in_interval && !stale;
        self.overloaded = standing || still_shedding;
        self.interval_start = now;
        self.min_oldest_wait = None;
        self.shed_in_interval = false;
        true
    }

    pub(crate) fn overloaded(&self) -> bool {
        self.overloaded
    }

    /// While overloaded, waiters that have waited longer than this are shed.
    pub(crate) fn shed_after(&self) -> u64 {
        self.target.saturating_mul(2)
    }
}

pub(crate) fn nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    fn codel() -> Codel {
        Codel::new(Duration::from_millis(5), Duration::from_millis(100), 0)
    }

    #[test]
    fn a_burst_that_drains_is_not_overload() {
        let mut codel = codel();
        // Waits above the target, but once in the interval the oldest waiter had waited 1 ms.
        for wait in [20, 30, 1, 25] {
            codel.on_dequeue(wait * MS);
        }
        assert!(codel.tick(100 * MS, Some(12 * MS)));
        assert!(!codel.overloaded());
    }

    #[test]
    fn a_standing_queue_for_a_whole_interval_is_overload_until_it_drains() {
        let mut codel = codel();
        assert!(
            !codel.tick(50 * MS, Some(30 * MS)),
            "the interval is not over"
        );
        for wait in [8, 12, 6, 9] {
            codel.on_dequeue(wait * MS);
        }
        assert!(codel.tick(100 * MS, Some(9 * MS)));
        assert!(codel.overloaded());
        assert_eq!(codel.shed_after(), 10 * MS);
        // Still overloaded in the next interval while the oldest keeps waiting too long...
        codel.on_dequeue(7 * MS);
        codel.tick(200 * MS, Some(7 * MS));
        assert!(codel.overloaded());
        // ... and no longer once it drained below the target.
        codel.on_dequeue(7 * MS);
        codel.on_dequeue(2 * MS);
        codel.tick(300 * MS, None);
        assert!(!codel.overloaded());
    }

    #[test]
    fn an_overloaded_queue_that_still_sheds_stays_overloaded() {
        let mut codel = codel();
        codel.on_dequeue(30 * MS);
        codel.tick(100 * MS, Some(30 * MS));
        assert!(codel.overloaded());
        // The shed keeps the oldest waiter young: one dequeue finds it at 2 ms...
        codel.on_dequeue(2 * MS);
        codel.on_shed();
        codel.tick(200 * MS, Some(3 * MS));
        assert!(codel.overloaded(), "waiters were still shed");
        // ... and once an interval passes without a shed and with a short wait, it is over.
        codel.on_dequeue(2 * MS);
        codel.tick(300 * MS, Some(MS));
        assert!(!codel.overloaded());
        // A shed alone does not make a queue overloaded that was not.
        codel.on_dequeue(MS);
        codel.on_shed();
        codel.tick(400 * MS, None);
        assert!(!codel.overloaded());
    }

    #[test]
    fn without_dequeues_the_oldest_waiter_decides() {
        let mut codel = codel();
        // Every slot held for the whole interval: nothing dequeued, the oldest waits 80 ms.
        codel.tick(100 * MS, Some(80 * MS));
        assert!(codel.overloaded());
        // The queue emptied (waiters gave up) and nothing came: not overloaded.
        codel.tick(200 * MS, None);
        assert!(!codel.overloaded());
    }

    #[test]
    fn measurements_from_long_ago_do_not_count() {
        let mut codel = codel();
        codel.on_dequeue(50 * MS);
        // The next event comes a second later, to an empty queue.
        codel.tick(1_000 * MS, None);
        assert!(!codel.overloaded());
    }
}
