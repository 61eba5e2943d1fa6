//! The shared tier: entries, fleet leases, generation counters and invalidation messages in
//! Redis (one server or a cluster), reachable by every pod.
//!
//! Keys (`<prefix>` is configured, `odg` by default):
//! `<prefix>:entry:<32 hex id>` holds an entry in the binary envelope of `entry.rs`,
//! `<prefix>:lease:<32 hex id>` a fleet fill lease (random token, `PX` lease TTL),
//! `<prefix>:generations` the hash of generation counters (field names from `generations.rs`),
//! and `<prefix>:invalidations` is the pub/sub channel. No key carries a hash tag: in a cluster,
//! entries and leases spread over all slots, every script touches exactly one key, and classic
//! `PUBLISH` reaches subscribers on every node.
//!
//! Failure model: Redis is an optimisation, never a dependency. Every call is bounded by
//! `operation_timeout`. A connection-level failure (I/O error, timeout, LOADING, CLUSTERDOWN, ...)
//! marks the tier unavailable; while unavailable every call fails at once without touching the
//! network, and one background probe per tier reconnects with a capped backoff (first attempt
//! immediately, then 100 ms doubling up to 1 s) and marks the tier available again. The
//! subscriber's own connection feeds the same flag. The URL's userinfo and lease tokens are
//! never logged.
//!
//! The tier is three jobs in three files: this one is the data API (entries, leases,
//! generations, publishing), `connection.rs` the command connection's availability state machine
//! and its reconnect probe, `subscriber.rs` the pub/sub subscriber task.

mod connection;
mod subscriber;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use redis::{Cmd, Script};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use crate::entry::{decode_entry, encode_entry, StoredEntry};
use crate::generations::EPOCH_FIELD;
use crate::key::EntryId;
use crate::metrics::{CORRUPT_ENTRIES_TOTAL, OVERSIZE_SKIPPED_TOTAL, TIER_SHARED};
use crate::selector::SelectorMessage;
use crate::CacheError;
use connection::{Connection, Operation};
use subscriber::Subscriber;

/// Opening a connection may take longer than one operation (TCP + handshake), but it only ever
/// happens in `connect` and in background tasks, never on a request's path.
const MIN_CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// Release a lease only if it still holds our token (never another holder's lease).
const RELEASE_LEASE_SCRIPT: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
    return redis.call('DEL', KEYS[1])
end
return 0
";
/// Make sure the epoch exists (a lost hash gets a new random one), then return the whole hash.
const LOAD_GENERATIONS_SCRIPT: &str = r"
redis.call('HSETNX', KEYS[1], 'epoch', ARGV[1])
return redis.call('HGETALL', KEYS[1])
";
/// As above, and increment one counter, atomically.
const BUMP_GENERATION_SCRIPT: &str = r"
redis.call('HSETNX', KEYS[1], 'epoch', ARGV[1])
redis.call('HINCRBY', KEYS[1], ARGV[2], 1)
return redis.call('HGETALL', KEYS[1])
";

/// Where and how to reach Redis; resolved by the binary from its config.
#[derive(Clone)]
pub struct SharedTierConfig {
    /// `redis://[user:password@]host:port/db` (`rediss://` needs the redis crate's TLS feature),
    /// or with `cluster`, several node URLs separated by commas. May hold a password: never logged.
    pub url: String,
    pub cluster: bool,
    /// First part of every key and of the channel, so several deployments can share one Redis.
    pub key_prefix: String,
    /// Encoded entries larger than this stay out of Redis: large values cost the single-threaded
    /// server and the network more than they save.
    pub max_value_bytes: usize,
    /// Upper bound of every call; a slow Redis must not slow requests. A timeout is an error and
    /// marks the tier unavailable.
    pub operation_timeout: Duration,
    /// How long a fleet fill lease lives when its holder never releases it (crash, partition).
    pub lease_ttl: Duration,
}

impl SharedTierConfig {
    pub const DEFAULT_KEY_PREFIX: &'static str = "odg";
    pub const DEFAULT_MAX_VALUE_BYTES: usize = 512 * 1024;
    pub const DEFAULT_OPERATION_TIMEOUT: Duration = Duration::from_millis(250);
    pub const DEFAULT_LEASE_TTL: Duration = Duration::from_secs(5);

    /// A single-server config with every other setting at its default.
    pub fn new(url: impl Into<String>) -> SharedTierConfig {
        SharedTierConfig {
            url: url.into(),
            cluster: false,
            key_prefix: SharedTierConfig::DEFAULT_KEY_PREFIX.to_string(),
            max_value_bytes: SharedTierConfig::DEFAULT_MAX_VALUE_BYTES,
            operation_timeout: SharedTierConfig::DEFAULT_OPERATION_TIMEOUT,
            lease_ttl: SharedTierConfig::DEFAULT_LEASE_TTL,
        }
    }

    fn validate(&self) -> Result<(), CacheError> {
        let invalid =
            |message: &str| Err(CacheError::InvalidInput(format!("shared cache: {message}")));
        if self.key_prefix.is_empty()
            || self
                .key_prefix
                .chars()
                .any(|c| c.is_whitespace() || c.is_control())
        {
            return invalid("key prefix must be non-empty, without whitespace");
        }
        if self.max_value_bytes == 0 {
            return invalid("max value bytes must be positive");
        }
        if self.operation_timeout.is_zero() {
            return invalid("operation timeout must be positive");
        }
        if self.lease_ttl < Duration::from_millis(1) {
            return invalid("lease TTL must be at least 1 ms");
        }
        Ok(())
    }

    /// Opening connections: never shorter than one operation, at least a second.
    fn connect_timeout(&self) -> Duration {
        self.operation_timeout.max(MIN_CONNECT_TIMEOUT)
    }
}

impl Default for SharedTierConfig {
    fn default() -> SharedTierConfig {
        SharedTierConfig::new("redis://127.0.0.1:6379")
    }
}

impl fmt::Debug for SharedTierConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedTierConfig")
            .field("url", &redact_url(&self.url))
            .field("cluster", &self.cluster)
            .field("key_prefix", &self.key_prefix)
            .field("max_value_bytes", &self.max_value_bytes)
            .field("operation_timeout", &self.operation_timeout)
            .field("lease_ttl", &self.lease_ttl)
            .finish()
    }
}

/// A fleet-wide fill lease on one entry, held until released or until `lease_ttl` passes.
pub struct Lease {
    id: EntryId,
    /// Random; proves ownership on release. Never logged.
    token: String,
}

impl Lease {
    pub fn id(&self) -> EntryId {
        self.id
    }
}

impl fmt::Debug for Lease {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lease")
            .field("id", &self.id)
            .field("token", &"<redacted>")
            .finish()
    }
}

/// What `publish` sends on `<prefix>:invalidations` (as JSON) and subscribers receive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvalidationMessage {
    /// The publishing pod, so it can skip its own messages.
    pub origin: String,
    pub selector: SelectorMessage,
    /// The epoch and the counter the invalidation raised, with their values after the bump
    /// (only the epoch for `Id` selectors, which raise nothing).
    pub generations: Vec<(String, u64)>,
}

/// What the subscriber reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SharedEvent {
    /// Subscribed, and the command connection answered: reload generations now, since messages
    /// sent while disconnected are lost. Sent after every (re)connect, and at once to a receiver
    /// that subscribes while connected.
    Connected,
    /// The subscription was lost; invalidations may be missed until the next `Connected`.
    Disconnected,
    Invalidation(InvalidationMessage),
}

/// The shared tier. Cheap to clone; all clones share one connection, one availability flag and
/// one subscriber.
#[derive(Clone)]
pub struct SharedTier {
    inner: Arc<Inner>,
}

impl fmt::Debug for SharedTier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedTier")
            .field("url", &self.inner.connection.redacted_url())
            .field("cluster", &self.inner.config.cluster)
            .field("key_prefix", &self.inner.config.key_prefix)
            .field("available", &self.is_available())
            .finish()
    }
}

impl SharedTier {
    /// Never fails because Redis is down: returns a tier that reports unavailable and reconnects
    /// in the background. Fails only for a malformed URL or config. Takes at most about
    /// `max(operation_timeout, 1 s)` twice (connect, then PING).
    pub async fn connect(config: SharedTierConfig) -> Result<SharedTier, CacheError> {
        config.validate()?;
        let connection = Connection::connect(&config).await?;
        let keys = Keys {
            prefix: config.key_prefix.clone(),
        };
        let subscriber = Arc::new(Subscriber::new(connection.clone(), keys.channel()));
        let inner = Arc::new(Inner {
            keys,
            config,
            connection,
            subscriber,
            release_script: Script::new(RELEASE_LEASE_SCRIPT),
            load_generations_script: Script::new(LOAD_GENERATIONS_SCRIPT),
            bump_generation_script: Script::new(BUMP_GENERATION_SCRIPT),
        });
        Ok(SharedTier { inner })
    }

    /// Whether calls currently go to Redis (false: they fail at once).
    pub fn is_available(&self) -> bool {
        self.inner.connection.is_available()
    }

    /// The entry, if Redis holds a readable one; an undecodable value is deleted, counted and
    /// reported as absent. Checking the key text and generation stamp is the caller's job.
    pub async fn get(&self, id: &EntryId) -> Result<Option<StoredEntry>, CacheError> {
        let key = self.inner.keys.entry(id);
        let mut command = redis::cmd("GET");
        command.arg(&key);
        let Some(bytes) = self
            .query::<Option<Vec<u8>>>(Operation::Get, command)
            .await?
        else {
            return Ok(None);
        };
        match decode_entry(&bytes) {
            Ok(entry) => Ok(Some(entry)),
            Err(error) => {
                metrics::counter!(CORRUPT_ENTRIES_TOTAL, "tier" => TIER_SHARED).increment(1);
                tracing::warn!(id = %id, %error, "dropping unreadable shared cache entry");
                // A racing writer's fresh value may go with it; that costs one miss, no harm.
                let mut unlink = redis::cmd("UNLINK");
                unlink.arg(&key);
                if let Err(error) = self.query::<()>(Operation::Delete, unlink).await {
                    tracing::debug!(id = %id, %error, "could not delete unreadable shared cache entry");
                }
                Ok(None)
            }
        }
    }

    /// Stores the entry (replacing any), expiring after `ttl` if given. `Ok(false)`: skipped
    /// because its encoding exceeds `max_value_bytes`.
    pub async fn put(
        &self,
        id: &EntryId,
        entry: &StoredEntry,
        ttl: Option<Duration>,
    ) -> Result<bool, CacheError> {
        let limit = self.inner.config.max_value_bytes;
        // The payload alone being too large spares encoding a copy of it.
        let encoded = (entry.payload.len() <= limit).then(|| encode_entry(entry));
        let Some(encoded) = encoded.filter(|encoded| encoded.len() <= limit) else {
            metrics::counter!(OVERSIZE_SKIPPED_TOTAL, "tier" => TIER_SHARED).increment(1);
            tracing::debug!(id = %id, payload_bytes = entry.payload.len(), limit, "entry too large for the shared tier");
            return Ok(false);
        };
        let mut command = redis::cmd("SET");
        command.arg(self.inner.keys.entry(id)).arg(encoded);
        if let Some(ttl) = ttl {
            command.arg("PX").arg(whole_millis(ttl));
        }
        self.query::<()>(Operation::Put, command).await?;
        Ok(true)
    }

    /// Deletes the entry (UNLINK: the memory is freed off the server's main thread).
    pub async fn delete(&self, id: &EntryId) -> Result<(), CacheError> {
        let mut command = redis::cmd("UNLINK");
        command.arg(self.inner.keys.entry(id));
        self.query::<()>(Operation::Delete, command).await
    }

    /// Takes the fleet fill lease on `id` for `lease_ttl`, unless another holder has it (`None`).
    pub async fn try_lease(&self, id: &EntryId) -> Result<Option<Lease>, CacheError> {
        let token = format!("{:032x}", rand::random::<u128>());
        let mut command = redis::cmd("SET");
        command
            .arg(self.inner.keys.lease(id))
            .arg(&token)
            .arg("NX")
            .arg("PX")
            .arg(whole_millis(self.inner.config.lease_ttl));
        let reply: Option<String> = self.query(Operation::Lease, command).await?;
        Ok(reply.map(|_| Lease { id: *id, token }))
    }

    /// Releases the lease if this holder still has it; an expired lease that another pod has
    /// taken since is left alone.
    pub async fn release(&self, lease: &Lease) -> Result<(), CacheError> {
        let mut invocation = self
            .inner
            .release_script
            .key(self.inner.keys.lease(&lease.id));
        invocation.arg(&lease.token);
        let deleted: i64 = self
            .inner
            .connection
            .run(Operation::Release, |mut connection| async move {
                invocation.invoke_async(&mut connection).await
            })
            .await?;
        if deleted == 0 {
            tracing::debug!(id = %lease.id, "lease had expired before release");
        }
        Ok(())
    }

    /// Every generation counter, after making sure the `epoch` field exists: if Redis lost the
    /// hash (a restart without persistence), a new random epoch invalidates everything before.
    pub async fn load_generations(&self) -> Result<Vec<(String, u64)>, CacheError> {
        let mut invocation = self
            .inner
            .load_generations_script
            .key(self.inner.keys.generations());
        invocation.arg(new_epoch());
        let flat: Vec<String> = self
            .inner
            .connection
            .run(Operation::Generations, |mut connection| async move {
                invocation.invoke_async(&mut connection).await
            })
            .await?;
        Ok(parse_generations(flat))
    }

    /// Increments one counter (ensuring the epoch in the same atomic script) and returns the
    /// whole hash afterwards. The epoch itself is not bumped: `all` invalidates everything.
    pub async fn bump_generation(&self, field: &str) -> Result<Vec<(String, u64)>, CacheError> {
        if field == EPOCH_FIELD || field.is_empty() {
            return Err(CacheError::InvalidInput(format!(
                "generation field {field:?} cannot be bumped"
            )));
        }
        let mut invocation = self
            .inner
            .bump_generation_script
            .key(self.inner.keys.generations());
        invocation.arg(new_epoch()).arg(field);
        let flat: Vec<String> = self
            .inner
            .connection
            .run(Operation::Generations, |mut connection| async move {
                invocation.invoke_async(&mut connection).await
            })
            .await?;
        Ok(parse_generations(flat))
    }

    /// The current values of some generation counters (absent ones are 0), in one `HMGET`.
    /// Readers that must not serve an entry invalidated by a write that has already answered
    /// (on any pod) check the counters covering it here instead of waiting for pub/sub.
    pub async fn read_generations(&self, fields: &[String]) -> Result<Vec<u64>, CacheError> {
        if fields.is_empty() {
            return Ok(Vec::new());
        }
        let mut command = redis::cmd("HMGET");
        command.arg(self.inner.keys.generations());
        for field in fields {
            command.arg(field);
        }
        let values: Vec<Option<String>> = self.query(Operation::Generations, command).await?;
        Ok(values
            .into_iter()
            .map(|value| value.and_then(|text| text.parse().ok()).unwrap_or(0))
            .collect())
    }

    /// Sends the message to every subscribed pod (fire and forget: pods disconnected now miss
    /// it and catch up by reloading generations on reconnect).
    pub async fn publish(&self, message: &InvalidationMessage) -> Result<(), CacheError> {
        let json = serde_json::to_string(message)
            .map_err(|error| CacheError::InvalidInput(format!("invalidation message: {error}")))?;
        let mut command = redis::cmd("PUBLISH");
        command.arg(self.inner.keys.channel()).arg(json);
        let receivers: i64 = self.query(Operation::Publish, command).await?;
        tracing::debug!(receivers, "published invalidation");
        Ok(())
    }

    /// Starts (once per tier) a background task with its own pub/sub connection, which reconnects
    /// with backoff, and returns a receiver of its events. Every call returns a new receiver fed
    /// by the same task; the task stops once every receiver is dropped. Needs a Tokio runtime.
    pub fn subscribe(&self) -> mpsc::Receiver<SharedEvent> {
        self.inner.subscriber.subscribe()
    }

    async fn query<T: redis::FromRedisValue>(
        &self,
        operation: Operation,
        command: Cmd,
    ) -> Result<T, CacheError> {
        self.inner.connection.query(operation, command).await
    }
}

/// The names of the tier's keys and channel under the configured prefix.
struct Keys {
    prefix: String,
}

impl Keys {
    fn entry(&self, id: &EntryId) -> String {
        format!("{}:entry:{}", self.prefix, id.to_hex())
    }

    fn lease(&self, id: &EntryId) -> String {
        format!("{}:lease:{}", self.prefix, id.to_hex())
    }

    fn generations(&self) -> String {
        format!("{}:generations", self.prefix)
    }

    fn channel(&self) -> String {
        format!("{}:invalidations", self.prefix)
    }
}

struct Inner {
    config: SharedTierConfig,
    keys: Keys,
    connection: Arc<Connection>,
    subscriber: Arc<Subscriber>,
    release_script: Script,
    load_generations_script: Script,
    bump_generation_script: Script,
}

/// Redis rejects `PX 0`; sub-millisecond TTLs round up.
fn whole_millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis())
        .unwrap_or(u64::MAX)
        .max(1)
}

/// A random non-zero epoch, within Redis's signed 64-bit integers.
fn new_epoch() -> u64 {
    rand::rng().random_range(1..=i64::MAX as u64)
}

/// `HGETALL`'s flat field/value list as sorted pairs; fields whose value is not a counter are
/// skipped (nothing of ours writes them).
fn parse_generations(flat: Vec<String>) -> Vec<(String, u64)> {
    let mut fields: Vec<(String, u64)> = flat
        .chunks_exact(2)
        .filter_map(|pair| match pair[1].parse::<u64>() {
            Ok(value) => Some((pair[0].clone(), value)),
            Err(_) => {
                tracing::warn!(field = %pair[0], "ignoring non-numeric generation counter");
                None
            }
        })
        .collect();
    fields.sort();
    fields
}

/// The URL(s) fit for logs: userinfo and query (both may hold credentials) replaced by `***`.
pub(crate) fn redact_url(url: &str) -> String {
    url.split(',')
        .map(|part| {
            let part = part.trim();
            let (scheme, rest) = match part.split_once("://") {
                Some((scheme, rest)) => (Some(scheme), rest),
                None => (None, part),
            };
            let rest = match rest.rfind('@') {
                Some(at) => format!("***@{}", &rest[at + 1..]),
                None => rest.to_string(),
            };
            let rest = match rest.find(['?', '#']) {
                Some(start) => format!("{}?***", &rest[..start]),
                None => rest,
            };
            match scheme {
                Some(scheme) => format!("{scheme}://{rest}"),
                None => rest,
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests;
