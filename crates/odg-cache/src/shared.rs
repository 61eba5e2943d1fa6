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

use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock, Weak};
use std::time::Duration;

use futures::StreamExt;
use odg_retry::RetryPolicy;
use rand::Rng;
use redis::aio::{ConnectionLike, MultiplexedConnection};
use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;
use redis::{
    AsyncConnectionConfig, Cmd, ErrorKind, RedisError, RedisFuture, RedisResult, Script, Value,
};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use crate::entry::{decode_entry, encode_entry, StoredEntry};
use crate::generations::EPOCH_FIELD;
use crate::key::EntryId;
use crate::metrics::{
    CORRUPT_ENTRIES_TOTAL, ERRORS_TOTAL, OVERSIZE_SKIPPED_TOTAL, REDIS_RECONNECTS_TOTAL, REDIS_UP,
    TIER_SHARED,
};
use crate::selector::SelectorMessage;
use crate::CacheError;

/// Opening a connection may take longer than one operation (TCP + handshake), but it only ever
/// happens in `connect` and in background tasks, never on a request's path.
const MIN_CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// Reconnect backoff of the probe and the subscriber: 100 ms doubling, capped.
const RECONNECT_BACKOFF_START: Duration = Duration::from_millis(100);
const RECONNECT_BACKOFF_CAP: Duration = Duration::from_secs(1);
/// The subscriber pings its connection this often, so a half-open TCP connection is noticed.
const SUBSCRIBER_PING_INTERVAL: Duration = Duration::from_secs(3);
/// How often the subscriber checks whether anybody still listens (it stops when nobody does).
const SUBSCRIBER_TICK: Duration = Duration::from_secs(1);
/// Events buffered per receiver; a full receiver slows the subscriber down (Redis then buffers,
/// and past its pub/sub output limit drops the connection: a Disconnected/Connected pair follows,
/// and the caller resyncs).
const SUBSCRIBER_CHANNEL_CAPACITY: usize = 1024;

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
            .field("url", &self.inner.redacted_url)
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
        let endpoint = Endpoint::parse(&config)?;
        let inner = Arc::new(Inner {
            redacted_url: redact_url(&config.url),
            keys: Keys {
                prefix: config.key_prefix.clone(),
            },
            endpoint,
            config,
            connection: RwLock::new(None),
            available: AtomicBool::new(false),
            probe_running: AtomicBool::new(false),
            restore_lock: tokio::sync::Mutex::new(()),
            subscribers: Mutex::new(Subscribers::default()),
            release_script: Script::new(RELEASE_LEASE_SCRIPT),
            load_generations_script: Script::new(LOAD_GENERATIONS_SCRIPT),
            bump_generation_script: Script::new(BUMP_GENERATION_SCRIPT),
        });
        metrics::gauge!(REDIS_UP).set(0.0);
        if !inner.restore(false).await {
            tracing::warn!(
                redis = %inner.redacted_url,
                "shared cache tier unavailable at start; continuing without it and reconnecting in the background"
            );
            inner.ensure_probe();
        }
        Ok(SharedTier { inner })
    }

    /// Whether calls currently go to Redis (false: they fail at once).
    pub fn is_available(&self) -> bool {
        self.inner.available.load(Ordering::Acquire)
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
        let (sender, receiver) = mpsc::channel(SUBSCRIBER_CHANNEL_CAPACITY);
        let start = {
            let mut subscribers = self.inner.subscribers();
            if subscribers.connected {
                let _ = sender.try_send(SharedEvent::Connected);
            }
            subscribers.senders.push(sender);
            !std::mem::replace(&mut subscribers.task_running, true)
        };
        if start {
            tokio::spawn(run_subscriber(Arc::downgrade(&self.inner)));
        }
        receiver
    }

    async fn query<T: redis::FromRedisValue>(
        &self,
        operation: Operation,
        command: Cmd,
    ) -> Result<T, CacheError> {
        self.run(operation, |mut connection| async move {
            command.query_async(&mut connection).await
        })
        .await
    }

    /// The one place calls go through: fail fast while unavailable, bound by the timeout,
    /// count errors, and mark the tier unavailable on connection-level failures.
    async fn run<T, F, Fut>(&self, operation: Operation, request: F) -> Result<T, CacheError>
    where
        F: FnOnce(RedisConnection) -> Fut,
        Fut: Future<Output = RedisResult<T>>,
    {
        let inner = &self.inner;
        let Some(connection) = inner.usable_connection() else {
            return Err(inner.failed(operation, Failure::Unavailable));
        };
        match tokio::time::timeout(inner.config.operation_timeout, request(connection)).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(error)) => Err(inner.failed(operation, Failure::Redis(error))),
            Err(_) => Err(inner.failed(operation, Failure::TimedOut)),
        }
    }
}

/// The fixed set of `operation` label values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Operation {
    Get,
    Put,
    Delete,
    Lease,
    Release,
    Generations,
    Publish,
    Subscribe,
}

impl Operation {
    fn label(self) -> &'static str {
        match self {
            Operation::Get => "get",
            Operation::Put => "put",
            Operation::Delete => "delete",
            Operation::Lease => "lease",
            Operation::Release => "release",
            Operation::Generations => "generations",
            Operation::Publish => "publish",
            Operation::Subscribe => "subscribe",
        }
    }
}

enum Failure {
    Unavailable,
    TimedOut,
    Redis(RedisError),
}

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

/// How to open connections: one server, or a cluster (whose pub/sub goes to any one node, since
/// classic `PUBLISH` is forwarded to every node of the cluster).
enum Endpoint {
    Single {
        client: redis::Client,
        connection_config: AsyncConnectionConfig,
    },
    Cluster {
        client: ClusterClient,
        nodes: Vec<redis::Client>,
    },
}

impl Endpoint {
    fn parse(config: &SharedTierConfig) -> Result<Endpoint, CacheError> {
        let redacted = redact_url(&config.url);
        let malformed = |error: RedisError| {
            CacheError::InvalidInput(format!("shared cache URL {redacted}: {error}"))
        };
        let urls: Vec<&str> = config
            .url
            .split(',')
            .map(str::trim)
            .filter(|url| !url.is_empty())
            .collect();
        if urls.is_empty() {
            return Err(CacheError::InvalidInput(
                "shared cache URL is empty".to_string(),
            ));
        }
        if !config.cluster {
            if urls.len() > 1 {
                return Err(CacheError::InvalidInput(format!(
                    "shared cache URL {redacted} names several nodes; that needs cluster mode"
                )));
            }
            let client = redis::Client::open(urls[0]).map_err(malformed)?;
            let connection_config = AsyncConnectionConfig::new()
                .set_connection_timeout(Some(config.connect_timeout()))
                .set_response_timeout(Some(config.operation_timeout));
            return Ok(Endpoint::Single {
                client,
                connection_config,
            });
        }
        let nodes = urls
            .iter()
            .map(|url| redis::Client::open(*url))
            .collect::<Result<Vec<_>, _>>()
            .map_err(malformed)?;
        let client = ClusterClient::builder(urls)
            .connection_timeout(config.connect_timeout())
            .response_timeout(config.operation_timeout)
            // Room to follow a MOVED/ASK redirect; `operation_timeout` bounds the whole call anyway.
            .retries(2)
            .build()
            .map_err(malformed)?;
        Ok(Endpoint::Cluster { client, nodes })
    }

    async fn open(&self) -> RedisResult<RedisConnection> {
        match self {
            Endpoint::Single {
                client,
                connection_config,
            } => client
                .get_multiplexed_async_connection_with_config(connection_config)
                .await
                .map(RedisConnection::Single),
            Endpoint::Cluster { client, .. } => client
                .get_async_connection()
                .await
                .map(RedisConnection::Cluster),
        }
    }

    /// The client for the subscriber's `attempt`-th connection; in a cluster it rotates over the
    /// nodes, so a dead node does not keep the subscriber away.
    fn pubsub_client(&self, attempt: usize) -> redis::Client {
        match self {
            Endpoint::Single { client, .. } => client.clone(),
            Endpoint::Cluster { nodes, .. } => nodes[attempt % nodes.len()].clone(),
        }
    }
}

/// A multiplexed connection to one server or to a cluster; clones share it.
#[derive(Clone)]
enum RedisConnection {
    Single(MultiplexedConnection),
    Cluster(ClusterConnection),
}

impl ConnectionLike for RedisConnection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            RedisConnection::Single(connection) => connection.req_packed_command(cmd),
            RedisConnection::Cluster(connection) => connection.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a redis::Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            RedisConnection::Single(connection) => {
                connection.req_packed_commands(pipeline, offset, count)
            }
            RedisConnection::Cluster(connection) => {
                connection.req_packed_commands(pipeline, offset, count)
            }
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            RedisConnection::Single(connection) => connection.get_db(),
            RedisConnection::Cluster(connection) => connection.get_db(),
        }
    }
}

#[derive(Default)]
struct Subscribers {
    senders: Vec<mpsc::Sender<SharedEvent>>,
    task_running: bool,
    /// Subscribed right now (a new receiver is told `Connected` at once).
    connected: bool,
}

struct Inner {
    config: SharedTierConfig,
    redacted_url: String,
    endpoint: Endpoint,
    keys: Keys,
    /// Present once a connection was ever established; replaced by the probe when it breaks.
    connection: RwLock<Option<RedisConnection>>,
    /// Calls go to Redis only while set. Set only after a PING answered on `connection`.
    available: AtomicBool,
    /// At most one background probe per tier.
    probe_running: AtomicBool,
    /// Serialises reconnect attempts of the probe and the subscriber.
    restore_lock: tokio::sync::Mutex<()>,
    subscribers: Mutex<Subscribers>,
    release_script: Script,
    load_generations_script: Script,
    bump_generation_script: Script,
}

impl Inner {
    fn is_available(&self) -> bool {
        self.available.load(Ordering::Acquire)
    }

    fn usable_connection(&self) -> Option<RedisConnection> {
        if !self.is_available() {
            return None;
        }
        self.connection
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn subscribers(&self) -> MutexGuard<'_, Subscribers> {
        self.subscribers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn set_available(&self) {
        if !self.available.swap(true, Ordering::AcqRel) {
            metrics::gauge!(REDIS_UP).set(1.0);
            tracing::info!(redis = %self.redacted_url, "shared cache tier available");
        }
    }

    /// Flags the tier unavailable (calls fail at once from now) and makes sure a probe runs.
    fn mark_unavailable(self: &Arc<Self>, reason: &str) {
        if self.available.swap(false, Ordering::AcqRel) {
            metrics::gauge!(REDIS_UP).set(0.0);
            tracing::warn!(
                redis = %self.redacted_url,
                reason,
                "shared cache tier unavailable; failing fast and reconnecting in the background"
            );
        }
        self.ensure_probe();
    }

    /// Counts the failure, marks the tier unavailable if the connection is at fault, and turns
    /// it into the caller's error.
    fn failed(self: &Arc<Self>, operation: Operation, failure: Failure) -> CacheError {
        metrics::counter!(ERRORS_TOTAL, "tier" => TIER_SHARED, "operation" => operation.label())
            .increment(1);
        let message = match failure {
            Failure::Unavailable => {
                return CacheError::SharedUnavailable("redis unreachable".to_string())
            }
            Failure::TimedOut => {
                let message = format!(
                    "{} timed out after {:?}",
                    operation.label(),
                    self.config.operation_timeout
                );
                self.mark_unavailable(&message);
                message
            }
            Failure::Redis(error) => {
                let message = format!("{}: {error}", operation.label());
                if is_connection_failure(&error) {
                    self.mark_unavailable(&message);
                } else {
                    tracing::debug!(operation = operation.label(), %error, "shared cache call failed");
                }
                message
            }
        };
        CacheError::SharedUnavailable(message)
    }

    /// Starts the background probe unless one runs: it calls `restore` right away, then with
    /// backoff, until the tier is available again or dropped.
    fn ensure_probe(self: &Arc<Self>) {
        if self.probe_running.swap(true, Ordering::AcqRel) {
            return;
        }
        let weak = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut attempt = 0u32;
            loop {
                {
                    let Some(inner) = weak.upgrade() else { return };
                    if inner.restore(false).await {
                        inner.probe_running.store(false, Ordering::Release);
                        // A failure between `restore` and the store above found the probe
                        // still running and left the work to it: look once more.
                        if inner.is_available() || inner.probe_running.swap(true, Ordering::AcqRel)
                        {
                            return;
                        }
                        attempt = 0;
                        continue;
                    }
                }
                tokio::time::sleep(reconnect_backoff(attempt)).await;
                attempt = attempt.saturating_add(1);
            }
        });
    }

    /// Makes the tier available if Redis answers: a PING on the current connection, else a new
    /// connection. With `verify_existing`, an available tier is checked too (the subscriber does
    /// this before reporting `Connected`, so the caller's resync finds a working connection).
    async fn restore(self: &Arc<Self>, verify_existing: bool) -> bool {
        let _serialised = self.restore_lock.lock().await;
        if !verify_existing && self.is_available() {
            return true;
        }
        let existing = self
            .connection
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        if let Some(mut connection) = existing {
            if self.ping(&mut connection).await.is_ok() {
                self.set_available();
                return true;
            }
            if self.is_available() {
                self.mark_unavailable("connection check failed");
            }
        }
        let opened =
            tokio::time::timeout(self.config.connect_timeout(), self.endpoint.open()).await;
        let mut connection = match opened {
            Ok(Ok(connection)) => connection,
            Ok(Err(error)) => {
                tracing::debug!(redis = %self.redacted_url, %error, "redis connect failed");
                return false;
            }
            Err(_) => {
                tracing::debug!(redis = %self.redacted_url, "redis connect timed out");
                return false;
            }
        };
        if let Err(error) = self.ping(&mut connection).await {
            tracing::debug!(redis = %self.redacted_url, error, "new redis connection does not answer");
            return false;
        }
        *self
            .connection
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Some(connection);
        metrics::counter!(REDIS_RECONNECTS_TOTAL).increment(1);
        self.set_available();
        true
    }

    async fn ping(&self, connection: &mut RedisConnection) -> Result<(), String> {
        let ping = redis::cmd("PING");
        match tokio::time::timeout(
            self.config.connect_timeout(),
            ping.query_async::<Value>(connection),
        )
        .await
        {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(error)) => Err(error.to_string()),
            Err(_) => Err("PING timed out".to_string()),
        }
    }

    /// Sends `event` to every receiver, after applying `update` under the same lock (so a
    /// receiver that subscribes concurrently gets `Connected` exactly once).
    async fn broadcast(&self, event: SharedEvent, update: impl FnOnce(&mut Subscribers)) {
        let senders = {
            let mut subscribers = self.subscribers();
            update(&mut subscribers);
            subscribers.senders.clone()
        };
        for sender in senders {
            let _ = sender.send(event.clone()).await;
        }
    }

    /// Forgets dropped receivers; when none is left, marks the subscriber stopped and says so.
    fn keep_subscriber_running(&self) -> bool {
        let mut subscribers = self.subscribers();
        subscribers.senders.retain(|sender| !sender.is_closed());
        if subscribers.senders.is_empty() {
            subscribers.task_running = false;
            subscribers.connected = false;
            return false;
        }
        true
    }
}

/// Why a subscription ended.
enum SubscriptionEnd {
    /// Nobody listens any more, or the tier was dropped.
    Stopped,
    Lost(&'static str),
}

/// The subscriber task: connect, subscribe, report `Connected`, forward messages, and on loss
/// report `Disconnected` and reconnect with backoff. Holds the tier only weakly.
async fn run_subscriber(weak: Weak<Inner>) {
    let mut attempt = 0usize;
    let mut failures_logged = false;
    loop {
        let (client, channel, connect_timeout) = {
            let Some(inner) = weak.upgrade() else { return };
            if !inner.keep_subscriber_running() {
                return;
            }
            let client = inner.endpoint.pubsub_client(attempt);
            (client, inner.keys.channel(), inner.config.connect_timeout())
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
                    let Some(inner) = weak.upgrade() else { return };
                    metrics::counter!(REDIS_RECONNECTS_TOTAL).increment(1);
                    inner.restore(true).await;
                    tracing::info!(redis = %inner.redacted_url, channel, "subscribed to shared cache invalidations");
                    inner
                        .broadcast(SharedEvent::Connected, |subscribers| {
                            subscribers.connected = true
                        })
                        .await;
                }
                let reason = match listen(&weak, pubsub).await {
                    SubscriptionEnd::Stopped => return,
                    SubscriptionEnd::Lost(reason) => reason,
                };
                let Some(inner) = weak.upgrade() else { return };
                metrics::counter!(ERRORS_TOTAL, "tier" => TIER_SHARED, "operation" => Operation::Subscribe.label())
                    .increment(1);
                tracing::warn!(redis = %inner.redacted_url, reason, "shared cache invalidation subscription lost");
                // Unavailable before the receivers hear of it, so they see a consistent tier.
                inner.mark_unavailable(reason);
                inner
                    .broadcast(SharedEvent::Disconnected, |subscribers| {
                        subscribers.connected = false
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

async fn listen(weak: &Weak<Inner>, pubsub: redis::aio::PubSub) -> SubscriptionEnd {
    let (mut sink, mut stream) = pubsub.split();
    let mut ticker = tokio::time::interval(SUBSCRIBER_TICK);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_ping = tokio::time::Instant::now();
    loop {
        tokio::select! {
            message = stream.next() => {
                let Some(message) = message else { return SubscriptionEnd::Lost("connection closed") };
                let Some(inner) = weak.upgrade() else { return SubscriptionEnd::Stopped };
                match serde_json::from_slice::<InvalidationMessage>(message.get_payload_bytes()) {
                    Ok(invalidation) => inner.broadcast(SharedEvent::Invalidation(invalidation), |_| {}).await,
                    Err(error) => tracing::warn!(%error, "ignoring undecodable invalidation message"),
                }
            }
            _ = ticker.tick() => {
                let Some(inner) = weak.upgrade() else { return SubscriptionEnd::Stopped };
                if !inner.keep_subscriber_running() {
                    return SubscriptionEnd::Stopped;
                }
                if last_ping.elapsed() >= SUBSCRIBER_PING_INTERVAL {
                    last_ping = tokio::time::Instant::now();
                    let pinged = tokio::time::timeout(inner.config.connect_timeout(), sink.ping::<Value>()).await;
                    if !matches!(pinged, Ok(Ok(_))) {
                        return SubscriptionEnd::Lost("ping failed");
                    }
                }
            }
        }
    }
}

/// Errors after which the connection (or the server behind it) cannot serve: the tier goes
/// unavailable. Others (a wrong type, a script error) are the call's own problem.
fn is_connection_failure(error: &RedisError) -> bool {
    if matches!(
        error.kind(),
        ErrorKind::Io
            | ErrorKind::ClusterConnectionNotFound
            | ErrorKind::Parse
            | ErrorKind::AuthenticationFailed
    ) {
        return true;
    }
    matches!(
        error.code(),
        Some(
            "LOADING"
                | "CLUSTERDOWN"
                | "MASTERDOWN"
                | "TRYAGAIN"
                | "READONLY"
                | "NOAUTH"
                | "WRONGPASS"
        )
    ) || error.is_unrecoverable_error()
}

/// 100 ms doubling per attempt up to 1 s, jittered (the shared policy of `odg-retry`) so that a
/// fleet does not reconnect in step.
fn reconnect_backoff(attempt: u32) -> Duration {
    RetryPolicy {
        max_retries: u32::MAX,
        initial_backoff: RECONNECT_BACKOFF_START,
        max_backoff: RECONNECT_BACKOFF_CAP,
        max_retry_after: RECONNECT_BACKOFF_CAP,
    }
    .delay(attempt, None)
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
#[path = "shared_tests.rs"]
mod tests;
