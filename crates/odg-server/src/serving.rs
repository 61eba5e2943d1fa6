//! The accept loop: a bound on open connections, per-connection header-read and idle timeouts
//! (see `connection.rs`), and draining on shutdown.
//!
//! At the connection limit the loop stops accepting until a connection closes, rather than
//! accepting and closing at once: waiting connections stay in the kernel's listen backlog and are
//! served in order as soon as a slot frees, so a burst costs latency instead of errors, and a
//! client that would retry a closed connection at once does not spin against us. Past the backlog
//! the kernel refuses them. Each pause at the limit is counted.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::Request;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use metrics::{counter, gauge};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};
use tower::ServiceExt;

use crate::connection::{Activity, CloseReason, GuardedBody, ObservedStream, RequestGuard};
use crate::metrics::{
    HTTP_CONNECTIONS_ACCEPTED, HTTP_CONNECTIONS_CLOSED, HTTP_CONNECTIONS_OPEN,
    HTTP_CONNECTION_LIMIT_WAITS,
};

/// Bounds of the HTTP layer, per listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// Longest time from a connection's start, or from the first byte of a later request, until
    /// that request's head (request line and headers) is complete; then the connection is closed.
    pub header_read_timeout: Duration,
    /// Longest time a keep-alive connection may wait for its next request after a response.
    pub idle_timeout: Duration,
    /// Connections open at once; at the limit no more are accepted until one closes.
    pub max_connections: usize,
}

impl ConnectionLimits {
    /// Generous for any real client, short enough that a slow-header attack holds little.
    pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
    /// Longer than the usual 60 s idle timeout of load balancers and proxies in front, so they
    /// close an idle connection first and never send a request into one we are closing.
    pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(75);
    /// About 27 KiB of memory per open connection (measured, see BENCHMARKS.md): at most ~110 MiB,
    /// and far above what admission control lets work at once (256 handled + 1024 queued).
    pub const DEFAULT_MAX_CONNECTIONS: usize = 4096;
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits {
            header_read_timeout: ConnectionLimits::DEFAULT_HEADER_READ_TIMEOUT,
            idle_timeout: ConnectionLimits::DEFAULT_IDLE_TIMEOUT,
            max_connections: ConnectionLimits::DEFAULT_MAX_CONNECTIONS,
        }
    }
}

/// Serves `router` on `listener` until `shutdown` resolves, then stops accepting and lets the
/// requests in flight finish (idle connections are closed at once). `name` labels the metrics
/// of this listener (`api`, `admin`).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ConnectionLimits,
    name: &'static str,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let max_connections = limits.max_connections.clamp(1, u32::MAX as usize);
    let slots = Arc::new(Semaphore::new(max_connections));
    let (drain, draining) = watch::channel(false);
    let limits = Arc::new(limits);
    gauge!(HTTP_CONNECTIONS_OPEN, "listener" => name).set(0.0);
    counter!(HTTP_CONNECTION_LIMIT_WAITS, "listener" => name).increment(0);
    for reason in CloseReason::ALL {
        counter!(HTTP_CONNECTIONS_CLOSED, "listener" => name, "reason" => reason.as_str())
            .increment(0);
    }
    tokio::pin!(shutdown);
    // Under a flood the limit is hit once per closed connection: warn once, count every time.
    let mut warned = false;
    loop {
        let slot = match slots.clone().try_acquire_owned() {
            Ok(slot) => slot,
            Err(_) => {
                counter!(HTTP_CONNECTION_LIMIT_WAITS, "listener" => name).increment(1);
                if !warned {
                    warned = true;
                    tracing::warn!(
                        listener = name,
                        max_connections,
                        "connection limit reached: not accepting until a connection closes \
                         (logged once; see odg_http_connection_limit_waits_total)"
                    );
                }
                tokio::select! {
                    slot = slots.clone().acquire_owned() => match slot {
                        Ok(slot) => slot,
                        Err(_) => break,
                    },
                    () = &mut shutdown => break,
                }
            }
        };
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => stream,
                Err(error) => {
                    if !is_per_connection_error(&error) {
                        // Out of file descriptors and the like: back off instead of spinning.
                        tracing::error!(%error, listener = name, "accepting a connection failed");
                        tokio::select! {
                            () = tokio::time::sleep(Duration::from_secs(1)) => {}
                            () = &mut shutdown => break,
                        }
                    }
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        counter!(HTTP_CONNECTIONS_ACCEPTED, "listener" => name).increment(1);
        let router = router.clone();
        let limits = limits.clone();
        let draining = draining.clone();
        tokio::spawn(async move {
            let open = gauge!(HTTP_CONNECTIONS_OPEN, "listener" => name);
            open.increment(1.0);
            let reason = serve_connection(stream, router, &limits, draining).await;
            open.decrement(1.0);
            counter!(HTTP_CONNECTIONS_CLOSED, "listener" => name, "reason" => reason.as_str())
                .increment(1);
            drop(slot);
        });
    }
    // New connections are refused from here on rather than left waiting in the backlog.
    drop(listener);
    let _ = drain.send(true);
    // Every connection task holds a slot until it ends: all slots back means drained.
    let _ = slots.acquire_many(max_connections as u32).await;
    Ok(())
}

/// Errors of one connection that was being accepted; the listener itself is fine.
fn is_per_connection_error(error: &std::io::Error) -> bool {
    matches!(
        error.kind(),
        std::io::ErrorKind::ConnectionRefused
            | std::io::ErrorKind::ConnectionAborted
            | std::io::ErrorKind::ConnectionReset
    )
}

async fn serve_connection(
    stream: TcpStream,
    router: Router,
    limits: &ConnectionLimits,
    mut draining: watch::Receiver<bool>,
) -> CloseReason {
    // Small JSON answers: do not let Nagle's algorithm hold the last segment back.
    let _ = stream.set_nodelay(true);
    let activity = Arc::new(Activity::new());
    let io = TokioIo::new(ObservedStream::new(stream, activity.clone()));
    let service_activity = activity.clone();
    let service = hyper::service::service_fn(move |request: Request<Incoming>| {
        let guard = RequestGuard::start(service_activity.clone());
        let router = router.clone();
        async move {
            let response = match router.oneshot(request).await {
                Ok(response) => response,
                Err(never) => match never {},
            };
            Ok::<_, Infallible>(response.map(|body| GuardedBody {
                body,
                _guard: guard,
            }))
        }
    });
    let connection = hyper::server::conn::http1::Builder::new()
        // Our own timeouts (see connection.rs); hyper's would also cut idle keep-alive.
        .header_read_timeout(None)
        .serve_connection(io, service);
    tokio::pin!(connection);
    let mut drain_started = *draining.borrow();
    if drain_started {
        connection.as_mut().graceful_shutdown();
    }
    // One timer, moved on as the phase goes (see `Activity::next_check`: phase changes do not
    // wake this task).
    let check = tokio::time::sleep_until(
        activity.next_check(limits.header_read_timeout, limits.idle_timeout),
    );
    tokio::pin!(check);
    loop {
        tokio::select! {
            result = connection.as_mut() => {
                return match result {
                    Ok(()) => CloseReason::Finished,
                    Err(error) => {
                        tracing::debug!(%error, "connection ended with an error");
                        CloseReason::Error
                    }
                };
            }
            () = check.as_mut() => {
                // Dropping the connection closes the socket, if the phase's deadline passed.
                if let Some((at, reason)) =
                    activity.deadline(limits.header_read_timeout, limits.idle_timeout)
                {
                    if at <= tokio::time::Instant::now() {
                        tracing::debug!(reason = reason.as_str(), "closing connection");
                        return reason;
                    }
                }
                check.as_mut().reset(
                    activity.next_check(limits.header_read_timeout, limits.idle_timeout),
                );
            }
            _ = draining.changed(), if !drain_started => {
                drain_started = true;
                connection.as_mut().graceful_shutdown();
            }
        }
    }
}
