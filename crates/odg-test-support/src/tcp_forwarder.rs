//! `TcpForwarder`: a loopback TCP forwarder in front of any server (e.g. Redis) that a test can cut
//! and restore, and slow down, to partition one client from the server while others keep it.
//!
//! - [`TcpForwarder::cut`] closes every forwarded connection at once and refuses new ones (each
//!   accepted connection is closed immediately), as a network partition or a firewall reset would;
//!   [`TcpForwarder::restore`] lets new connections through again.
//! - [`TcpForwarder::set_latency`] delays every chunk by the same amount in each direction (bytes
//!   keep their order), as a distant or overloaded server would.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

/// A running forwarder from `127.0.0.1:PORT` to a target; stops (closing everything) on drop.
#[derive(Debug)]
pub struct TcpForwarder {
    addr: SocketAddr,
    state: Arc<ForwarderState>,
    task: tokio::task::JoinHandle<()>,
}

#[derive(Debug)]
struct ForwarderState {
    target: SocketAddr,
    cut: AtomicBool,
    /// One-way latency in microseconds, applied in both directions.
    latency_us: AtomicU64,
    /// Bumped by `cut`: every connection accepted before ends when it changes.
    severed: watch::Sender<u64>,
    accepted: AtomicUsize,
    refused: AtomicUsize,
}

impl TcpForwarder {
    /// Forwards connections to `target` (which need not be up yet: a connection that cannot reach
    /// it is closed).
    pub async fn start(target: SocketAddr) -> TcpForwarder {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a loopback port");
        TcpForwarder::serve(listener, target)
    }

    /// Like [`TcpForwarder::start`], on a given address: a port a client was told about while
    /// nothing listened there (a server that comes up late). `None` if it cannot be bound.
    pub async fn start_on(listen: SocketAddr, target: SocketAddr) -> Option<TcpForwarder> {
        let listener = TcpListener::bind(listen).await.ok()?;
        Some(TcpForwarder::serve(listener, target))
    }

    fn serve(listener: TcpListener, target: SocketAddr) -> TcpForwarder {
        let addr = listener.local_addr().expect("local address");
        let (severed, _) = watch::channel(0u64);
        let state = Arc::new(ForwarderState {
            target,
            cut: AtomicBool::new(false),
            latency_us: AtomicU64::new(0),
            severed,
            accepted: AtomicUsize::new(0),
            refused: AtomicUsize::new(0),
        });
        let accept_state = state.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    continue;
                };
                if accept_state.cut.load(Ordering::SeqCst) {
                    accept_state.refused.fetch_add(1, Ordering::SeqCst);
                    drop(client);
                    continue;
                }
                accept_state.accepted.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(forward(accept_state.clone(), client));
            }
        });
        TcpForwarder { addr, state, task }
    }

    /// `127.0.0.1:PORT`
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Closes every forwarded connection now and refuses new ones until [`TcpForwarder::restore`].
    pub fn cut(&self) {
        self.state.cut.store(true, Ordering::SeqCst);
        self.state
            .severed
            .send_modify(|generation| *generation += 1);
    }

    /// Accepts and forwards new connections again.
    pub fn restore(&self) {
        self.state.cut.store(false, Ordering::SeqCst);
    }

    pub fn is_cut(&self) -> bool {
        self.state.cut.load(Ordering::SeqCst)
    }

    /// Delays every chunk by `latency` in each direction from now on (a round trip costs twice that).
    pub fn set_latency(&self, latency: Duration) {
        self.state
            .latency_us
            .store(latency.as_micros() as u64, Ordering::SeqCst);
    }

    /// Connections forwarded so far.
    pub fn accepted(&self) -> usize {
        self.state.accepted.load(Ordering::SeqCst)
    }

    /// Connections closed at once because the forwarder was cut.
    pub fn refused(&self) -> usize {
        self.state.refused.load(Ordering::SeqCst)
    }
}

impl Drop for TcpForwarder {
    fn drop(&mut self) {
        self.state.cut.store(true, Ordering::SeqCst);
        self.state
            .severed
            .send_modify(|generation| *generation += 1);
        self.task.abort();
    }
}

async fn forward(state: Arc<ForwarderState>, client: TcpStream) {
    let mut severed = state.severed.subscribe();
    severed.mark_unchanged();
    let Ok(Ok(server)) =
        tokio::time::timeout(Duration::from_secs(2), TcpStream::connect(state.target)).await
    else {
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (client_read, client_write) = client.into_split();
    let (server_read, server_write) = server.into_split();
    let both = async {
        tokio::join!(
            pump(&state, client_read, server_write),
            pump(&state, server_read, client_write)
        )
    };
    tokio::select! {
        _ = both => {}
        _ = severed.changed() => {}
    }
    // Dropping the halves here closes both sockets.
}

/// Copies `from` to `to`, each chunk delayed by the latency in force when it was read; on EOF
/// shuts `to` down for writing after the chunks before it were written.
async fn pump(
    state: &ForwarderState,
    mut from: impl AsyncRead + Unpin,
    mut to: impl AsyncWrite + Unpin,
) {
    let (sender, mut receiver) = mpsc::unbounded_channel::<(Instant, Vec<u8>)>();
    let reader = async move {
        let mut buffer = vec![0u8; 16 * 1024];
        loop {
            match from.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(read) => {
                    let latency = Duration::from_micros(state.latency_us.load(Ordering::SeqCst));
                    if sender
                        .send((Instant::now() + latency, buffer[..read].to_vec()))
                        .is_err()
                    {
                        break;
                    }
                }
            }
        }
    };
    let writer = async move {
        while let Some((due, chunk)) = receiver.recv().await {
            tokio::time::sleep_until(due).await;
            if to.write_all(&chunk).await.is_err() {
                return;
            }
        }
        let _ = to.shutdown().await;
    };
    tokio::join!(reader, writer);
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn echo_server() -> (SocketAddr, tokio::task::JoinHandle<()>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let (mut read, mut write) = socket.split();
                    let _ = tokio::io::copy(&mut read, &mut write).await;
                });
            }
        });
        (addr, task)
    }

    async fn round_trip(stream: &mut TcpStream, message: &[u8]) -> std::io::Result<Vec<u8>> {
        stream.write_all(message).await?;
        let mut answer = vec![0u8; message.len()];
        stream.read_exact(&mut answer).await?;
        Ok(answer)
    }

    #[tokio::test]
    async fn forwards_delays_cuts_and_restores() {
        let (target, _server) = echo_server().await;
        let forwarder = TcpForwarder::start(target).await;
        let mut stream = TcpStream::connect(forwarder.addr()).await.unwrap();
        assert_eq!(round_trip(&mut stream, b"hello").await.unwrap(), b"hello");

        forwarder.set_latency(Duration::from_millis(40));
        let started = std::time::Instant::now();
        assert_eq!(round_trip(&mut stream, b"slow").await.unwrap(), b"slow");
        assert!(started.elapsed() >= Duration::from_millis(80));
        forwarder.set_latency(Duration::ZERO);

        forwarder.cut();
        let mut buffer = [0u8; 1];
        let closed = tokio::time::timeout(Duration::from_secs(2), stream.read(&mut buffer))
            .await
            .expect("the cut closes live connections");
        assert!(matches!(closed, Ok(0) | Err(_)));
        let mut refused = TcpStream::connect(forwarder.addr()).await.unwrap();
        assert!(round_trip(&mut refused, b"x").await.is_err());
        assert!(forwarder.refused() >= 1);

        forwarder.restore();
        let mut again = TcpStream::connect(forwarder.addr()).await.unwrap();
        assert_eq!(round_trip(&mut again, b"back").await.unwrap(), b"back");
        assert_eq!(forwarder.accepted(), 2);
    }
}
