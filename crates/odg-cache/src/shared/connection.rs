//! The shared tier's command connection and its availability: the state machine behind
//! "Redis is an optimisation, never a dependency".
//!
//! States: available (calls go to Redis), unavailable (calls fail at once without touching the
//! network) and, while unavailable, one background probe reconnecting with a capped backoff.
//! A connection-level failure (I/O error, timeout, LOADING, CLUSTERDOWN, ...) makes the tier
//! unavailable; a PING answered on the current or a new connection makes it available again.
//! The subscriber's own connection reports into the same flag (`subscriber.rs`).

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use odg_retry::RetryPolicy;
use redis::aio::{ConnectionLike, MultiplexedConnection};
use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;
use redis::{AsyncConnectionConfig, Cmd, ErrorKind, RedisError, RedisFuture, RedisResult, Value};

use super::{redact_url, SharedTierConfig};
use crate::metrics::{ERRORS_TOTAL, REDIS_RECONNECTS_TOTAL, REDIS_UP, TIER_SHARED};
use crate::CacheError;

/// Reconnect backoff of the probe and the subscriber: 100 ms doubling, capped.
const RECONNECT_BACKOFF_START: Duration = Duration::from_millis(100);
const RECONNECT_BACKOFF_CAP: Duration = Duration::from_secs(1);

/// The fixed set of `operation` label values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Operation {
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
    pub(super) fn label(self) -> &'static str {
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

/// The command connection of one tier (all clones of a `SharedTier` share it), whether calls may
/// use it, and the probe that brings it back.
pub(super) struct Connection {
    redacted_url: String,
    endpoint: Endpoint,
    /// Bounds every call.
    operation_timeout: Duration,
    /// Bounds opening a connection and its PING.
    connect_timeout: Duration,
    /// Present once a connection was ever established; replaced by the probe when it breaks.
    current: RwLock<Option<RedisConnection>>,
    /// Calls go to Redis only while set. Set only after a PING answered on `current`.
    available: AtomicBool,
    /// At most one background probe per tier.
    probe_running: AtomicBool,
    /// Serialises reconnect attempts of the probe and the subscriber.
    restore_lock: tokio::sync::Mutex<()>,
}

impl Connection {
    /// Never fails because Redis is down: the connection starts unavailable and a probe
    /// reconnects in the background. Fails only for a malformed URL.
    pub(super) async fn connect(config: &SharedTierConfig) -> Result<Arc<Connection>, CacheError> {
        let connection = Arc::new(Connection {
            redacted_url: redact_url(&config.url),
            endpoint: Endpoint::parse(config)?,
            operation_timeout: config.operation_timeout,
            connect_timeout: config.connect_timeout(),
            current: RwLock::new(None),
            available: AtomicBool::new(false),
            probe_running: AtomicBool::new(false),
            restore_lock: tokio::sync::Mutex::new(()),
        });
        metrics::gauge!(REDIS_UP).set(0.0);
        if !connection.restore(false).await {
            tracing::warn!(
                redis = %connection.redacted_url,
                "shared cache tier unavailable at start; continuing without it and reconnecting in the background"
            );
            connection.ensure_probe();
        }
        Ok(connection)
    }

    /// The URL(s) fit for logs.
    pub(super) fn redacted_url(&self) -> &str {
        &self.redacted_url
    }

    pub(super) fn connect_timeout(&self) -> Duration {
        self.connect_timeout
    }

    /// Whether calls currently go to Redis (false: they fail at once).
    pub(super) fn is_available(&self) -> bool {
        self.available.load(Ordering::Acquire)
    }

    /// The client for the subscriber's `attempt`-th connection (see [`Endpoint::pubsub_client`]).
    pub(super) fn pubsub_client(&self, attempt: usize) -> redis::Client {
        self.endpoint.pubsub_client(attempt)
    }

    pub(super) async fn query<T: redis::FromRedisValue>(
        self: &Arc<Self>,
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
    pub(super) async fn run<T, F, Fut>(
        self: &Arc<Self>,
        operation: Operation,
        request: F,
    ) -> Result<T, CacheError>
    where
        F: FnOnce(RedisConnection) -> Fut,
        Fut: Future<Output = RedisResult<T>>,
    {
        let Some(connection) = self.usable_connection() else {
            return Err(self.failed(operation, Failure::Unavailable));
        };
        match tokio::time::timeout(self.operation_timeout, request(connection)).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(error)) => Err(self.failed(operation, Failure::Redis(error))),
            Err(_) => Err(self.failed(operation, Failure::TimedOut)),
        }
    }

    fn usable_connection(&self) -> Option<RedisConnection> {
        if !self.is_available() {
            return None;
        }
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn set_available(&self) {
        if !self.available.swap(true, Ordering::AcqRel) {
            metrics::gauge!(REDIS_UP).set(1.0);
            tracing::info!(redis = %self.redacted_url, "shared cache tier available");
        }
    }

    /// Flags the tier unavailable (calls fail at once from now) and makes sure a probe runs.
    pub(super) fn mark_unavailable(self: &Arc<Self>, reason: &str) {
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
                    self.operation_timeout
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
                    let Some(connection) = weak.upgrade() else {
                        return;
                    };
                    if connection.restore(false).await {
                        connection.probe_running.store(false, Ordering::Release);
                        // A failure between `restore` and the store above found the probe
                        // still running and left the work to it: look once more.
                        if connection.is_available()
                            || connection.probe_running.swap(true, Ordering::AcqRel)
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
    pub(super) async fn restore(self: &Arc<Self>, verify_existing: bool) -> bool {
        let _serialised = self.restore_lock.lock().await;
        if !verify_existing && self.is_available() {
            return true;
        }
        let existing = self
            .current
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
        let opened = tokio::time::timeout(self.connect_timeout, self.endpoint.open()).await;
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
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = Some(connection);
        metrics::counter!(REDIS_RECONNECTS_TOTAL).increment(1);
        self.set_available();
        true
    }

    async fn ping(&self, connection: &mut RedisConnection) -> Result<(), String> {
        let ping = redis::cmd("PING");
        match tokio::time::timeout(self.connect_timeout, ping.query_async::<Value>(connection))
            .await
        {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(error)) => Err(error.to_string()),
            Err(_) => Err("PING timed out".to_string()),
        }
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
pub(super) enum RedisConnection {
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
pub(super) fn reconnect_backoff(attempt: u32) -> Duration {
    RetryPolicy {
        max_retries: u32::MAX,
        initial_backoff: RECONNECT_BACKOFF_START,
        max_backoff: RECONNECT_BACKOFF_CAP,
        max_retry_after: RECONNECT_BACKOFF_CAP,
    }
    .delay(attempt, None)
}
