//! Single-flight within a pod: concurrent misses of one key share one fill.
//!
//! The fill runs in its own task, so a client that disconnects does not cancel a load that
//! others wait for (and the result still reaches the cache). Waiters watch the flight's channel;
//! the first value sent (possibly a stale one while the refresh goes on) answers them.
//!
//! A flight is keyed by the entry id *and* the generation stamp it loads under: a request that
//! has seen a newer generation (an invalidation) never joins a fill that started before it, whose
//! value may be older than the invalidation.

use std::any::Any;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::watch;

use crate::generations::Stamp;
use crate::key::EntryId;

pub(crate) type AnyValue = Arc<dyn Any + Send + Sync>;

/// What a flight answers: the value, or the loader's error (type-erased, downcast by waiters).
#[derive(Clone)]
pub(crate) enum FlightOutcome {
    Value(AnyValue),
    Error(AnyValue),
}

pub(crate) type FlightReceiver = watch::Receiver<Option<FlightOutcome>>;

#[derive(Default)]
pub(crate) struct Flights {
    running: Mutex<HashMap<(EntryId, Stamp), (u64, FlightReceiver)>>,
    next_token: std::sync::atomic::AtomicU64,
}

/// Held by the task running a fill; removes the flight when dropped, also on panic.
pub(crate) struct FlightHandle {
    flights: Arc<Flights>,
    id: (EntryId, Stamp),
    token: u64,
    pub(crate) sender: watch::Sender<Option<FlightOutcome>>,
}

impl FlightHandle {
    /// Sends the final answer. The flight stays joinable until the fill task ends (it may still be
    /// writing the lower tiers): a newcomer under the same generations gets this same answer
    /// instead of loading again before the writes land.
    pub(crate) fn answer(&self, outcome: FlightOutcome) {
        let _ = self.sender.send(Some(outcome));
    }

    fn close(&self) {
        let mut running = crate::locks::lock(&self.flights.running);
        if running
            .get(&self.id)
            .is_some_and(|(token, _)| *token == self.token)
        {
            running.remove(&self.id);
        }
    }
}

impl Drop for FlightHandle {
    fn drop(&mut self) {
        self.close();
    }
}

/// Joined an existing flight, or leads a new one (and must start the fill with the handle).
pub(crate) enum Joined {
    Waiter(FlightReceiver),
    Leader(FlightHandle, FlightReceiver),
}

impl Flights {
    pub(crate) fn join_or_lead(self: &Arc<Self>, id: EntryId, stamp: Stamp) -> Joined {
        let id = (id, stamp);
        let mut running = crate::locks::lock(&self.running);
        if let Some((_, receiver)) = running.get(&id) {
            return Joined::Waiter(receiver.clone());
        }
        let (sender, receiver) = watch::channel(None);
        let token = self
            .next_token
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        running.insert(id, (token, receiver.clone()));
        Joined::Leader(
            FlightHandle {
                flights: self.clone(),
                id,
                token,
                sender,
            },
            receiver,
        )
    }

    /// Leads a new flight unless one runs already (used to start a background refresh).
    pub(crate) fn lead_if_idle(
        self: &Arc<Self>,
        id: EntryId,
        stamp: Stamp,
    ) -> Option<FlightHandle> {
        match self.join_or_lead(id, stamp) {
            Joined::Leader(handle, _) => Some(handle),
            Joined::Waiter(_) => None,
        }
    }
}

/// Waits for the first outcome of a flight; `None` if the fill task died without answering.
pub(crate) async fn first_outcome(mut receiver: FlightReceiver) -> Option<FlightOutcome> {
    loop {
        if let Some(outcome) = receiver.borrow_and_update().clone() {
            return Some(outcome);
        }
        if receiver.changed().await.is_err() {
            return receiver.borrow().clone();
        }
    }
}
