//! Admission slots: a counter of admitted requests under a limit that may change, and the bounded
//! queue of requests waiting for a slot.
//!
//! The warm path (a slot free, nobody waiting) is one compare-and-swap on the counter and, on
//! release, one subtraction and one load: no lock. The queue's mutex is taken only by requests that
//! must wait and by releases while someone waits.
//!
//! No lost wake-ups: a request about to wait counts itself in `waiting` and then tries for a slot
//! once more, under the queue's lock; a release subtracts from the counter and then reads
//! `waiting`. Both sequentially consistent, so either the waiter's second try sees the freed slot,
//! or the release sees the waiter and dispatches (taking the lock, so after the waiter is queued).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use metrics::gauge;
use tokio::sync::oneshot;
use tokio::time::Instant;

use super::codel::{nanos, Codel};
use super::gradient::{LimitUpdate, Limiter};
use crate::metrics::{ADMISSION_BASELINE, ADMISSION_LIMIT, QUEUE_WAITING};

/// Why a request was not admitted: the `reason` of the shed counter and of the 503's body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shed {
    /// The queue was at `max_queued`.
    QueueFull,
    /// Waited `max_wait` without a slot.
    QueueTimeout,
    /// Shed by the queue discipline: the queue was overloaded and this request had waited longer
    /// than twice the target.
    Codel,
}

impl Shed {
    pub fn as_str(self) -> &'static str {
        match self {
            Shed::QueueFull => "queue_full",
            Shed::QueueTimeout => "queue_timeout",
            Shed::Codel => "codel",
        }
    }

    pub const ALL: [Shed; 3] = [Shed::QueueFull, Shed::QueueTimeout, Shed::Codel];
}

type Reply = Result<Slot, Shed>;

#[derive(Debug)]
struct Waiter {
    id: u64,
    /// Nanoseconds since the epoch.
    enqueued: u64,
    reply: oneshot::Sender<Reply>,
}

#[derive(Debug)]
struct Queue {
    /// In arrival order (removals keep it).
    waiters: VecDeque<Waiter>,
    /// The queue discipline of adaptive mode; FIFO with `max_wait` only without it.
    codel: Option<Codel>,
    next_id: u64,
}

#[derive(Debug)]
pub(crate) struct Slots {
    in_flight: AtomicUsize,
    limit: AtomicUsize,
    /// Requests in the queue or about to enter it (see the module's note on wake-ups).
    waiting: AtomicUsize,
    queue: Mutex<Queue>,
    limiter: Option<Limiter>,
    epoch: Instant,
    max_queued: usize,
    max_wait: Duration,
}

impl Slots {
    /// `limiter` adapts the limit (starting from its own), else the limit stays `limit`; `codel`
    /// is the queue discipline, else the queue is FIFO.
    pub(crate) fn new(
        limit: usize,
        limiter: Option<Limiter>,
        codel: Option<Codel>,
        max_queued: usize,
        max_wait: Duration,
        epoch: Instant,
    ) -> Slots {
        Slots {
            in_flight: AtomicUsize::new(0),
            limit: AtomicUsize::new(limit.max(1)),
            waiting: AtomicUsize::new(0),
            queue: Mutex::new(Queue {
                waiters: VecDeque::new(),
                codel,
                next_id: 0,
            }),
            limiter,
            epoch,
            max_queued,
            max_wait,
        }
    }

    pub(crate) fn limit(&self) -> usize {
        self.limit.load(Ordering::SeqCst)
    }

    #[cfg(test)]
    pub(crate) fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::SeqCst)
    }

    #[cfg(test)]
    pub(crate) fn queued(&self) -> usize {
        self.lock().waiters.len()
    }

    /// Sets the limit and admits the waiters it makes room for (the limiter's updates do the
    /// same in [`Slots::complete`]: publish, then release, which dispatches).
    #[cfg(test)]
    pub(crate) fn set_limit(self: &Arc<Self>, limit: usize) {
        self.limit.store(limit.max(1), Ordering::SeqCst);
        if self.waiting.load(Ordering::SeqCst) > 0 {
            self.dispatch();
        }
    }

    fn now(&self) -> u64 {
        nanos(Instant::now().saturating_duration_since(self.epoch))
    }

    fn lock(&self) -> MutexGuard<'_, Queue> {
        // Nothing panics while holding the lock; were it poisoned, the queue is still consistent.
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn try_take(&self) -> Option<usize> {
        let limit = self.limit.load(Ordering::SeqCst);
        let mut current = self.in_flight.load(Ordering::SeqCst);
        loop {
            if current >= limit {
                return None;
            }
            match self.in_flight.compare_exchange_weak(
                current,
                current + 1,
                Ordering::SeqCst,
                Ordering::SeqCst,
            ) {
                Ok(_) => return Some(current + 1),
                Err(actual) => current = actual,
            }
        }
    }

    fn admitted(self: &Arc<Self>, in_flight: usize) -> Slot {
        if let Some(limiter) = &self.limiter {
            limiter.on_admit(in_flight);
        }
        Slot {
            slots: Some(self.clone()),
        }
    }

    /// A slot now, if one is free (what [`Slots::acquire`] tries first).
    pub(crate) fn try_acquire(self: &Arc<Self>) -> Option<Slot> {
        self.try_take().map(|in_flight| self.admitted(in_flight))
    }

    /// A slot now, or after a wait in the queue, or the reason there is none.
    pub(crate) async fn acquire(self: &Arc<Self>) -> Result<Slot, Shed> {
        if let Some(in_flight) = self.try_take() {
            return Ok(self.admitted(in_flight));
        }
        let (receiver, id, deadline, reason) = {
            let mut queue = self.lock();
            let now = self.now();
            self.tick(&mut queue, now);
            self.waiting.fetch_add(1, Ordering::SeqCst);
            if let Some(in_flight) = self.try_take() {
                self.waiting.fetch_sub(1, Ordering::SeqCst);
                drop(queue);
                return Ok(self.admitted(in_flight));
            }
            if queue.waiters.len() >= self.max_queued {
                self.waiting.fetch_sub(1, Ordering::SeqCst);
                return Err(Shed::QueueFull);
            }
            let (reply, receiver) = oneshot::channel();
            let id = queue.next_id;
            queue.next_id += 1;
            queue.waiters.push_back(Waiter {
                id,
                enqueued: now,
                reply,
            });
            // An overloaded queue gives newcomers twice its target, not the maximum wait.
            let (wait, reason) = match &queue.codel {
                Some(codel) if codel.overloaded() => (
                    Duration::from_nanos(codel.shed_after()).min(self.max_wait),
                    Shed::Codel,
                ),
                _ => (self.max_wait, Shed::QueueTimeout),
            };
            (receiver, id, Instant::now() + wait, reason)
        };
        let mut pending = Pending::new(self.clone(), id, receiver);
        let outcome = match pending.receiver.as_mut() {
            Some(receiver) => tokio::time::timeout_at(deadline, receiver).await,
            None => return Err(reason),
        };
        match outcome {
            // The dispatcher took the waiter out of the queue and answered.
            Ok(Ok(reply)) => {
                pending.receiver = None;
                reply
            }
            // The answer's sender is gone unanswered: only when the queue itself is dropped.
            Ok(Err(_)) => {
                pending.receiver = None;
                Err(reason)
            }
            Err(_elapsed) => pending.give_up(reason),
        }
    }

    /// Takes the waiter `id` out of the queue; false when it is no longer there (answered).
    /// `reason`: why it leaves, when it gave up at its deadline.
    fn remove(&self, id: u64, reason: Option<Shed>) -> bool {
        let mut queue = self.lock();
        match queue.waiters.iter().position(|waiter| waiter.id == id) {
            Some(position) => {
                queue.waiters.remove(position);
                self.waiting.fetch_sub(1, Ordering::SeqCst);
                if reason == Some(Shed::Codel) {
                    if let Some(codel) = &mut queue.codel {
                        codel.on_shed();
                    }
                }
                true
            }
            None => false,
        }
    }

    /// Ends CoDel's interval if it is over; when that finds the queue overloaded, sheds every
    /// waiter that has waited too long (they are the oldest, at the front).
    fn tick(&self, queue: &mut Queue, now: u64) {
        let Queue { waiters, codel, .. } = queue;
        let Some(codel) = codel else {
            return;
        };
        let oldest = waiters
            .front()
            .map(|waiter| now.saturating_sub(waiter.enqueued));
        if !codel.tick(now, oldest) || !codel.overloaded() {
            return;
        }
        let shed_after = codel.shed_after();
        while waiters
            .front()
            .is_some_and(|waiter| now.saturating_sub(waiter.enqueued) > shed_after)
        {
            if let Some(waiter) = waiters.pop_front() {
                self.waiting.fetch_sub(1, Ordering::SeqCst);
                codel.on_shed();
                // The waiter may have just given up; then nobody needs the answer.
                let _ = waiter.reply.send(Err(Shed::Codel));
            }
        }
    }

    /// Hands free slots to waiters: the oldest first, or the newest while CoDel finds the queue
    /// overloaded.
    fn dispatch(self: &Arc<Self>) {
        let mut queue = self.lock();
        let now = self.now();
        self.tick(&mut queue, now);
        while let Some(oldest) = queue.waiters.front() {
            let oldest_wait = now.saturating_sub(oldest.enqueued);
            let Some(in_flight) = self.try_take() else {
                break;
            };
            let (overloaded, shed_after) = match &mut queue.codel {
                Some(codel) => {
                    codel.on_dequeue(oldest_wait);
                    (codel.overloaded(), codel.shed_after())
                }
                None => (false, u64::MAX),
            };
            let waiter = if overloaded {
                queue.waiters.pop_back()
            } else {
                queue.waiters.pop_front()
            };
            let Some(waiter) = waiter else {
                self.in_flight.fetch_sub(1, Ordering::SeqCst);
                break;
            };
            self.waiting.fetch_sub(1, Ordering::SeqCst);
            if overloaded && now.saturating_sub(waiter.enqueued) > shed_after {
                if let Some(codel) = &mut queue.codel {
                    codel.on_shed();
                }
                self.in_flight.fetch_sub(1, Ordering::SeqCst);
                let _ = waiter.reply.send(Err(Shed::Codel));
                continue;
            }
            if let Err(Ok(slot)) = waiter.reply.send(Ok(self.admitted(in_flight))) {
                // The waiter is gone: the slot goes to the next one (its release must not
                // dispatch, which would take this very lock).
                slot.forget();
            }
        }
    }

    fn release(self: &Arc<Self>) {
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        if self.waiting.load(Ordering::SeqCst) > 0 {
            self.dispatch();
        }
    }

    /// A handler finished after `latency`: feeds the limiter, then releases the slot.
    fn complete(self: &Arc<Self>, latency: Duration) {
        if let Some(limiter) = &self.limiter {
            let in_flight = self.in_flight.load(Ordering::Relaxed).saturating_sub(1);
            if let Some(update) = limiter.on_complete(nanos(latency), self.now(), in_flight) {
                self.publish(update);
            }
        }
        self.release();
    }

    fn publish(&self, update: LimitUpdate) {
        self.limit.store(update.limit.max(1), Ordering::SeqCst);
        gauge!(ADMISSION_LIMIT).set(update.limit as f64);
        if let Some(baseline) = update.baseline {
            gauge!(ADMISSION_BASELINE).set(Duration::from_nanos(baseline).as_secs_f64());
        }
    }
}

/// One admitted request's slot: released when dropped, however the request ends.
#[derive(Debug)]
pub(crate) struct Slot {
    slots: Option<Arc<Slots>>,
}

impl Slot {
    /// The handler answered after `latency`: a sample for the limiter (a request whose client
    /// went away is no sample, its slot is only released).
    pub(crate) fn complete(mut self, latency: Duration) {
        if let Some(slots) = self.slots.take() {
            slots.complete(latency);
        }
    }

    fn forget(mut self) {
        if let Some(slots) = self.slots.take() {
            slots.in_flight.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Some(slots) = self.slots.take() {
            slots.release();
        }
    }
}

/// A request in the queue: counted in the waiting gauge, and taken out of the queue if its wait
/// ends any other way than by an answer (the client went away, the deadline passed).
struct Pending {
    slots: Arc<Slots>,
    id: u64,
    /// `None` once answered.
    receiver: Option<oneshot::Receiver<Reply>>,
}

impl Pending {
    fn new(slots: Arc<Slots>, id: u64, receiver: oneshot::Receiver<Reply>) -> Pending {
        gauge!(QUEUE_WAITING).increment(1.0);
        Pending {
            slots,
            id,
            receiver: Some(receiver),
        }
    }

    /// The deadline passed: out of the queue with `reason`, unless an answer came meanwhile.
    fn give_up(mut self, reason: Shed) -> Result<Slot, Shed> {
        if self.slots.remove(self.id, Some(reason)) {
            self.receiver = None;
            return Err(reason);
        }
        // Answered between the deadline and the lock: the answer is in the channel.
        match self.receiver.take().map(|mut receiver| receiver.try_recv()) {
            Some(Ok(reply)) => reply,
            _ => Err(reason),
        }
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        gauge!(QUEUE_WAITING).decrement(1.0);
        if let Some(receiver) = self.receiver.take() {
            self.slots.remove(self.id, None);
            // After the lock is released: a slot sent meanwhile is released by its own drop,
            // which may dispatch (and so take the lock).
            drop(receiver);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admission::gradient::{GradientController, PROBE_INTERVAL};
    use futures::FutureExt;

    fn fixed(limit: usize, max_queued: usize) -> Arc<Slots> {
        Arc::new(Slots::new(
            limit,
            None,
            None,
            max_queued,
            Duration::from_secs(2),
            Instant::now(),
        ))
    }

    fn adaptive(max_queued: usize) -> Arc<Slots> {
        let epoch = Instant::now();
        let controller = GradientController::new(2, 64, PROBE_INTERVAL, 0);
        // No request completes in these tests, so the limiter never changes this limit.
        Arc::new(Slots::new(
            2,
            Some(Limiter::new(controller, 0)),
            Some(Codel::new(
                Duration::from_millis(5),
                Duration::from_millis(100),
                0,
            )),
            max_queued,
            Duration::from_secs(2),
            epoch,
        ))
    }

    /// Polls `future` once: `Some` if it is ready without waiting.
    fn now_or_never<T>(future: impl std::future::Future<Output = T>) -> Option<T> {
        future.now_or_never()
    }

    #[tokio::test(start_paused = true)]
    async fn waiters_are_admitted_in_order_as_slots_free_up() {
        let slots = fixed(1, 8);
        let first = now_or_never(slots.acquire()).and_then(Result::ok);
        assert!(first.is_some());
        let second = tokio::spawn({
            let slots = slots.clone();
            async move { slots.acquire().await.map(drop) }
        });
        let third = tokio::spawn({
            let slots = slots.clone();
            async move { slots.acquire().await }
        });
        tokio::task::yield_now().await;
        assert_eq!(slots.queued(), 2);
        drop(first);
        // The second gets the slot and drops it at once, which hands it to the third.
        assert_eq!(second.await.ok(), Some(Ok(())));
        let third = third.await.ok().and_then(Result::ok);
        assert!(third.is_some());
        assert_eq!(slots.in_flight(), 1);
        drop(third);
        assert_eq!(slots.in_flight(), 0);
        assert_eq!(slots.queued(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_full_queue_sheds_at_once_and_a_long_wait_times_out() {
        let slots = fixed(1, 1);
        let _held = now_or_never(slots.acquire()).and_then(Result::ok);
        let waiting = tokio::spawn({
            let slots = slots.clone();
            async move { slots.acquire().await.map(|_| ()) }
        });
        tokio::task::yield_now().await;
        assert_eq!(
            now_or_never(slots.acquire()).map(|result| result.map(|_| ())),
            Some(Err(Shed::QueueFull))
        );
        // Paused time: the runtime jumps to the deadline once every task waits.
        assert_eq!(waiting.await.ok(), Some(Err(Shed::QueueTimeout)));
        assert_eq!(slots.queued(), 0);
        assert_eq!(slots.waiting.load(Ordering::SeqCst), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_waiter_that_goes_away_leaves_nothing_behind() {
        let slots = fixed(1, 4);
        let held = now_or_never(slots.acquire()).and_then(Result::ok);
        let mut gone = Box::pin(slots.acquire());
        assert!(now_or_never(&mut gone).is_none());
        assert_eq!(slots.queued(), 1);
        drop(gone);
        assert_eq!(slots.queued(), 0);
        drop(held);
        assert_eq!(slots.in_flight(), 0);
        // The slot is free for the next request.
        assert!(now_or_never(slots.acquire()).is_some_and(|result| result.is_ok()));
    }

    #[tokio::test(start_paused = true)]
    async fn a_slot_handed_to_a_waiter_that_went_away_is_not_lost() {
        let slots = fixed(1, 4);
        let held = now_or_never(slots.acquire()).and_then(Result::ok);
        let (sender, receiver) = oneshot::channel();
        drop(receiver);
        slots.lock().waiters.push_back(Waiter {
            id: 99,
            enqueued: 0,
            reply: sender,
        });
        slots.waiting.fetch_add(1, Ordering::SeqCst);
        drop(held);
        assert_eq!(slots.in_flight(), 0);
        assert_eq!(slots.queued(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_higher_limit_admits_waiters_at_once() {
        let slots = fixed(1, 8);
        let _held = now_or_never(slots.acquire()).and_then(Result::ok);
        let waiters: Vec<_> = (0..3)
            .map(|_| {
                let slots = slots.clone();
                tokio::spawn(async move { slots.acquire().await.map(std::mem::forget) })
            })
            .collect();
        tokio::task::yield_now().await;
        assert_eq!(slots.queued(), 3);
        slots.set_limit(4);
        for waiter in waiters {
            assert_eq!(waiter.await.ok(), Some(Ok(())));
        }
        assert_eq!(slots.in_flight(), 4);
    }

    #[tokio::test(start_paused = true)]
    async fn an_overloaded_queue_sheds_the_stale_and_serves_the_newest() {
        let slots = adaptive(64);
        let mut held: Vec<Slot> = (0..2)
            .filter_map(|_| now_or_never(slots.acquire()).and_then(Result::ok))
            .collect();
        let spawn_acquire = || {
            let slots = slots.clone();
            tokio::spawn(async move { slots.acquire().await })
        };
        let first = spawn_acquire();
        tokio::task::yield_now().await;
        assert_eq!(slots.queued(), 1);
        // Every slot held for longer than an interval: a standing queue.
        tokio::time::sleep(Duration::from_millis(120)).await;
        // The next arrival ends the interval: overloaded, and the first waiter (120 ms, more than
        // twice the 5 ms target) is shed.
        let second = spawn_acquire();
        tokio::task::yield_now().await;
        let third = spawn_acquire();
        tokio::task::yield_now().await;
        assert_eq!(slots.queued(), 2);
        // A free slot goes to the newest waiter.
        held.pop();
        let third = third.await.ok();
        assert!(matches!(third, Some(Ok(_))), "{third:?}");
        // The other gets twice the target, not the maximum wait of 2 s.
        let started = Instant::now();
        let second = second.await.ok().map(|result| result.map(drop));
        assert_eq!(second, Some(Err(Shed::Codel)));
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "{:?}",
            started.elapsed()
        );
        let first = first.await.ok().map(|result| result.map(drop));
        assert_eq!(first, Some(Err(Shed::Codel)));
        assert_eq!(slots.queued(), 0);
    }
}
