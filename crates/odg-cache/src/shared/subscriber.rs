//! The shared tier's pub/sub subscriber: one background task per tier with its own pub/sub
//! connection, feeding every receiver `subscribe` handed out with `Connected`, `Disconnected`
//! and invalidation messages. It reconnects with backoff, and stops once every receiver is
//! dropped or the tier is.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::Duration;

use futures::StreamExt;
use redis::{RedisError, Value};
use tokio::sync::mpsc;

use super::connection::{reconnect_backoff, Connection, Operation};
use super::{InvalidationMessage, SharedEvent};
use crate::metrics::{ERRORS_TOTAL, REDIS_RECONNECTS_TOTAL, TIER_SHARED};

/// The subscriber pings its connection this often, so a half-open TCP connection is noticed.
const SUBSCRIBER_PING_INTERVAL: Duration = Duration::from_secs(3);
/// How often the subscriber checks whether anybody still listens (it stops when nobody does).
const SUBSCRIBER_TICK: Duration = Duration::from_secs(1);
/// Events buffered per receiver; a full receiver slows the subscriber down (Redis then buffers,
/// and past its pub/sub output limit drops the connection: a Disconnected/Connected pair follows,
/// and the caller resyncs).
const SUBSCRIBER_CHANNEL_CAPACITY: usize = 1024;

/// The receivers of one tier's events and the state of the task feeding them.
pub(super) struct Subscriber {
    /// The command connection: the subscriber verifies it before reporting `Connected` and marks
    /// it unavailable when the subscription is lost, so both connections report into one flag.
    connection: Arc<Connection>,
    channel: String,
    receivers: Mutex<Receivers>,
}

#[derive(Default)]
struct Receivers {
    senders: Vec<mpsc::Sender<SharedEvent>>,
    task_running: bool,
    /// Subscribed right now (a new receiver is told `Connected` at once).
    connected: bool,
}

/// Why a subscription ended.
enum SubscriptionEnd {
    /// Nobody listens any more, or the tier was dropped.
    Stopped,
    Lost(&'static str),
}

impl Subscriber {
    pub(super) fn new(connection: Arc<Connection>, channel: String) -> Subscriber {
        Subscriber {
            connection,
            channel,
            receivers: Mutex::new(Receivers::default()),
        }
    }

    /// A new receiver of this tier's events; starts the task unless it runs. Needs a Tokio
    /// runtime.
    pub(super) fn subscribe(self: &Arc<Self>) -> mpsc::Receiver<SharedEvent> {
        let (sender, receiver) = mpsc::channel(SUBSCRIBER_CHANNEL_CAPACITY);
        let start = {
            let mut receivers = self.receivers();
            if receivers.connected {
                let _ = sender.try_send(SharedEvent::Connected);
            }
            receivers.senders.push(sender);
            !std::mem::replace(&mut receivers.task_running, true)
        };
        if start {
            tokio::spawn(run_subscriber(Arc::downgrade(self)));
        }
        receiver
    }

    fn receivers(&self) -> MutexGuard<'_, Receivers> {
        self.receivers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Sends `event` to every receiver, after applying `update` under the same lock (so a
    /// receiver that subscribes concurrently gets `Connected` exactly once).
    async fn broadcast(&self, event: SharedEvent, update: impl FnOnce(&mut Receivers)) {
        let senders = {
            let mut receivers = self.receivers();
            update(&mut receivers);
            receivers.senders.clone()
        };
        for sender in senders {
            let _ = sender.send(event.clone()).await;
        }
    }

    /// Forgets dropped receivers; when none is left, marks the task stopped and says so.
    fn keep_running(&self) -> bool {
        let mut receivers = self.receivers();
        receivers.senders.retain(|sender| !sender.is_closed());
        if receivers.senders.is_empty() {
            receivers.task_running = false;
            receivers.connected = false;
            return false;
        }
        true
    }
}

/// The subscriber task: connect, subscribe, report `Connected`, forward messages, and on loss
/// report `Disconnected` and reconnect with backoff. Holds the tier only weakly.
async fn run_subscriber(weak: Weak<Subscriber>) {
    let mut attempt = 0usize;
    let mut failures_logged = false;
    loop {
        let (client, channel, connect_timeout) = {
            let Some(subscriber) = weak.upgrade() else {
                return;
            };
            if !subscriber.keep_running() {
                return;
            }
            let connection = &subscriber.connection;
            (
                connection.pubsub_client(attempt),
                subscriber.channel.clone(),
                connection.connect_timeout(),
            )
        };
        let subscribed = tokio::time::timeout(connect_timeout, async {
            let mut pubsub = client.get_async_pubsub().await?;
            pubsub.subscribe(&channel).await?;
            Ok::<_, RedisError>(pubsub)
        })
        .await;
        match subscribed {
            Ok(Ok(pubsub)) => {
                attempt = 0;
                failures_logged = false;
                {
                    let Some(subscriber) = weak.upgrade() else {
                        return;
                    };
                    metrics::counter!(REDIS_RECONNECTS_TOTAL).increment(1);
                    subscriber.connection.restore(true).await;
                    tracing::info!(redis = %subscriber.connection.redacted_url(), channel, "subscribed to shared cache invalidations");
                    subscriber
                        .broadcast(SharedEvent::Connected, |receivers| {
                            receivers.connected = true
                        })
                        .await;
                }
                let reason = match listen(&weak, pubsub).await {
                    SubscriptionEnd::Stopped => return,
                    SubscriptionEnd::Lost(reason) => reason,
                };
                let Some(subscriber) = weak.upgrade() else {
                    return;
                };
                metrics::counter!(ERRORS_TOTAL, "tier" => TIER_SHARED, "operation" => Operation::Subscribe.label())
                    .increment(1);
                tracing::warn!(redis = %subscriber.connection.redacted_url(), reason, "shared cache invalidation subscription lost");
                // Unavailable before the receivers hear of it, so they see a consistent tier.
                subscriber.connection.mark_unavailable(reason);
                subscriber
                    .broadcast(SharedEvent::Disconnected, |receivers| {
                        receivers.connected = false
                    })
                    .await;
            }
            failed => {
                let error = match failed {
                    Ok(Err(error)) => error.to_string(),
                    _ => "timed out".to_string(),
                };
                metrics::counter!(ERRORS_TOTAL, "tier" => TIER_SHARED, "operation" => Operation::Subscribe.label())
                    .increment(1);
                if !failures_logged {
                    failures_logged = true;
                    tracing::warn!(
                        error,
                        "shared cache subscriber cannot connect; retrying with backoff"
                    );
                }
            }
        }
        tokio::time::sleep(reconnect_backoff(attempt.min(16) as u32)).await;
        attempt = attempt.wrapping_add(1);
    }
}

async fn listen(weak: &Weak<Subscriber>, pubsub: redis::aio::PubSub) -> SubscriptionEnd {
    let (mut sink, mut stream) = pubsub.split();
    let mut ticker = tokio::time::interval(SUBSCRIBER_TICK);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_ping = tokio::time::Instant::now();
    loop {
        tokio::select! {
            message = stream.next() => {
                let Some(message) = message else { return SubscriptionEnd::Lost("connection closed") };
                let Some(subscriber) = weak.upgrade() else { return SubscriptionEnd::Stopped };
                match serde_json::from_slice::<InvalidationMessage>(message.get_payload_bytes()) {
                    Ok(invalidation) => subscriber.broadcast(SharedEvent::Invalidation(invalidation), |_| {}).await,
                    Err(error) => tracing::warn!(%error, "ignoring undecodable invalidation message"),
                }
            }
            _ = ticker.tick() => {
                let Some(subscriber) = weak.upgrade() else { return SubscriptionEnd::Stopped };
                if !subscriber.keep_running() {
                    return SubscriptionEnd::Stopped;
                }
                if last_ping.elapsed() >= SUBSCRIBER_PING_INTERVAL {
                    last_ping = tokio::time::Instant::now();
                    let pinged = tokio::time::timeout(subscriber.connection.connect_timeout(), sink.ping::<Value>()).await;
                    if !matches!(pinged, Ok(Ok(_))) {
                        return SubscriptionEnd::Lost("ping failed");
                    }
                }
            }
        }
    }
}
