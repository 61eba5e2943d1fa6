//! The HTTP layer over real sockets: header-read and idle timeouts close connections, the
//! connection limit holds further connections back until one closes, and answers produced by
//! the framework or by hyper itself (413, 414, 431, 400, 405) are JSON.
//!
//! Timeouts are configured short (1 s) and every wait is on an observable event (the socket
//! closing, a counter moving) with a generous deadline; nothing asserts an upper bound on time.

use std::net::SocketAddr;
use std::time::Duration;

use odg_server::ConnectionLimits;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;

use crate::support::demo_app;

/// Longest wait for anything these tests expect to happen.
const DEADLINE: Duration = Duration::from_secs(30);

struct Server {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
    metrics: metrics_exporter_prometheus::PrometheusHandle,
    name: &'static str,
}

/// The demo API on a loopback port within `limits`; `name` labels its metrics.
async fn start(limits: ConnectionLimits, name: &'static str) -> Server {
    let metrics = odg_server::metrics::install_recorder();
    let app = demo_app().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(odg_server::serve(
        listener,
        app.router,
        limits,
        name,
        async move {
            let _ = stopped.await;
        },
    ));
    Server {
        addr,
        stop: Some(stop),
        task,
        metrics,
        name,
    }
}

impl Server {
    /// This listener's value of a metric family (first sample whose labels contain `labels`).
    fn metric(&self, family: &str, labels: &str) -> f64 {
        let listener = format!("listener=\"{}\"", self.name);
        self.metrics
            .render()
            .lines()
            .find(|line| {
                line.starts_with(family)
                    && line[family.len()..].starts_with('{')
                    && line.contains(&listener)
                    && line.contains(labels)
            })
            .and_then(|line| line.rsplit(' ').next())
            .and_then(|value| value.parse().ok())
            .unwrap_or(0.0)
    }

    async fn wait_for_metric(&self, family: &str, labels: &str, at_least: f64) {
        let waited = tokio::time::timeout(DEADLINE, async {
            while self.metric(family, labels) < at_least {
                tokio::time::sleep(Duration::from_millis(20)).await; // polling: until the metric reaches the value
            }
        })
        .await;
        assert!(
            waited.is_ok(),
            "{family}{{{labels}}} of {} stayed below {at_least}",
            self.name
        );
    }

    async fn shut_down(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        tokio::time::timeout(DEADLINE, self.task)
            .await
            .expect("the server drains and stops")
            .unwrap()
            .unwrap();
    }
}

fn limits(header_read: u64, idle: u64, max_connections: usize) -> ConnectionLimits {
    ConnectionLimits {
        header_read_timeout: Duration::from_millis(header_read),
        idle_timeout: Duration::from_millis(idle),
        max_connections,
    }
}

/// Reads one response: status, lower-cased head, body (by `content-length`).
async fn read_response(stream: &mut TcpStream) -> (u16, String, Vec<u8>) {
    let mut buffer = Vec::new();
    let head_end = loop {
        if let Some(end) = buffer.windows(4).position(|window| window == b"\r\n\r\n") {
            break end + 4;
        }
        let mut chunk = [0u8; 8192];
        let read = tokio::time::timeout(DEADLINE, stream.read(&mut chunk))
            .await
            .expect("an answer within the deadline")
            .expect("read the answer");
        assert!(read > 0, "closed before a complete head: {buffer:?}");
        buffer.extend_from_slice(&chunk[..read]);
    };
    let head = String::from_utf8_lossy(&buffer[..head_end]).to_ascii_lowercase();
    let status = head[9..12].parse().expect("a status code");
    let length: usize = head
        .lines()
        .find_map(|line| line.strip_prefix("content-length:"))
        .map_or(0, |value| value.trim().parse().unwrap());
    let mut body = buffer[head_end..].to_vec();
    while body.len() < length {
        let mut chunk = [0u8; 8192];
        let read = tokio::time::timeout(DEADLINE, stream.read(&mut chunk))
            .await
            .expect("the body within the deadline")
            .expect("read the body");
        assert!(read > 0, "closed before the whole body");
        body.extend_from_slice(&chunk[..read]);
    }
    (status, head, body)
}

/// Waits until the server closes `stream` (EOF or reset); returns the bytes received before.
async fn wait_closed(stream: &mut TcpStream) -> Vec<u8> {
    let mut received = Vec::new();
    tokio::time::timeout(DEADLINE, async {
        let mut chunk = [0u8; 4096];
        loop {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(read) => received.extend_from_slice(&chunk[..read]),
            }
        }
    })
    .await
    .expect("the server closes the connection within the deadline");
    received
}

async fn get(stream: &mut TcpStream, path: &str) -> (u16, Value) {
    stream
        .write_all(format!("GET {path} HTTP/1.1\r\nhost: odg\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let (status, head, body) = read_response(stream).await;
    assert!(head.contains("content-type: application/json"), "{head}");
    (status, serde_json::from_slice(&body).unwrap())
}

#[tokio::test]
async fn a_slow_header_connection_is_closed_after_the_header_read_timeout() {
    let server = start(limits(1_000, 60_000, 64), "test-slow-header").await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    stream.write_all(b"GET /live HTTP/1.1\r\n").await.unwrap();
    let (mut reader, mut writer) = stream.into_split();
    // One more header line every 200 ms, never the blank line that ends the head.
    let trickle = tokio::spawn(async move {
        for line in 0.. {
            let header = format!("x-slow-{line}: still coming\r\n");
            if writer.write_all(header.as_bytes()).await.is_err() {
                return line;
            }
            tokio::time::sleep(Duration::from_millis(200)).await; // under test: a client trickling header lines
        }
        unreachable!()
    });
    let received = tokio::time::timeout(DEADLINE, async {
        let mut received = Vec::new();
        let mut chunk = [0u8; 1024];
        loop {
            match reader.read(&mut chunk).await {
                Ok(0) | Err(_) => return received,
                Ok(read) => received.extend_from_slice(&chunk[..read]),
            }
        }
    })
    .await
    .expect("the slow head is cut within the deadline");
    assert!(
        received.is_empty(),
        "{}",
        String::from_utf8_lossy(&received)
    );
    server
        .wait_for_metric(
            "odg_http_connections_closed_total",
            "reason=\"header_timeout\"",
            1.0,
        )
        .await;
    trickle.abort();
    // A head that completes in time is still served.
    let mut prompt = TcpStream::connect(server.addr).await.unwrap();
    assert_eq!(get(&mut prompt, "/live").await.0, 200);
    drop(prompt);
    server.shut_down().await;
}

#[tokio::test]
async fn a_silent_connection_is_closed_after_the_header_read_timeout() {
    let server = start(limits(1_000, 60_000, 64), "test-silent").await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    assert!(wait_closed(&mut stream).await.is_empty());
    server
        .wait_for_metric(
            "odg_http_connections_closed_total",
            "reason=\"header_timeout\"",
            1.0,
        )
        .await;
    server.shut_down().await;
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed_after_the_idle_timeout() {
    let server = start(limits(60_000, 1_000, 64), "test-idle").await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    assert_eq!(get(&mut stream, "/live").await.0, 200);
    assert!(wait_closed(&mut stream).await.is_empty());
    server
        .wait_for_metric(
            "odg_http_connections_closed_total",
            "reason=\"idle_timeout\"",
            1.0,
        )
        .await;
    assert_eq!(
        server.metric(
            "odg_http_connections_closed_total",
            "reason=\"header_timeout\""
        ),
        0.0
    );
    server.shut_down().await;
}

#[tokio::test]
async fn beyond_the_connection_limit_connections_wait_until_one_closes() {
    let server = start(limits(60_000, 60_000, 2), "test-limit").await;
    let mut first = TcpStream::connect(server.addr).await.unwrap();
    let mut second = TcpStream::connect(server.addr).await.unwrap();
    // Both served, and keep-alive reuses each connection.
    for stream in [&mut first, &mut second] {
        assert_eq!(get(stream, "/live").await.0, 200);
        assert_eq!(get(stream, "/ready").await.0, 200);
    }
    server
        .wait_for_metric("odg_http_connection_limit_waits_total", "", 1.0)
        .await;
    let mut third = TcpStream::connect(server.addr).await.unwrap();
    third
        .write_all(b"GET /live HTTP/1.1\r\nhost: odg\r\n\r\n")
        .await
        .unwrap();
    // The accept loop is paused at the limit with two connections open: the third is not
    // accepted, so it cannot have an answer.
    assert_eq!(
        server.metric("odg_http_connections_accepted_total", ""),
        2.0
    );
    assert_eq!(server.metric("odg_http_connections_open", ""), 2.0);
    let mut probe = [0u8; 1];
    assert!(matches!(
        third.try_read(&mut probe),
        Err(error) if error.kind() == std::io::ErrorKind::WouldBlock
    ));

    drop(first);
    let (status, _, body) = read_response(&mut third).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(
        server.metric("odg_http_connections_accepted_total", ""),
        3.0
    );
    drop(second);
    drop(third);
    server.shut_down().await;
}

/// `(status, body)` of a raw request; the answer must be JSON `{"error": ...}`.
async fn raw_error(addr: SocketAddr, request: Vec<u8>) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let (mut reader, mut writer) = stream.split();
    let (_, (status, head, body)) = tokio::join!(
        async {
            // Large bodies are cut short by the server: stop writing when it closes.
            for chunk in request.chunks(64 * 1024) {
                if writer.write_all(chunk).await.is_err() {
                    break;
                }
            }
        },
        async {
            let mut stream = ReadOnly(&mut reader);
            stream.read_response().await
        }
    );
    assert!(head.contains("content-type: application/json"), "{head}");
    let json: Value = serde_json::from_slice(&body)
        .unwrap_or_else(|error| panic!("{error}: {}", String::from_utf8_lossy(&body)));
    let message = json["error"]
        .as_str()
        .expect("an error message")
        .to_string();
    (status, message)
}

/// [`read_response`] over a read half.
struct ReadOnly<'a, 'b>(&'a mut tokio::net::tcp::ReadHalf<'b>);

impl ReadOnly<'_, '_> {
    async fn read_response(&mut self) -> (u16, String, Vec<u8>) {
        let mut buffer = Vec::new();
        let mut chunk = [0u8; 8192];
        loop {
            let read = tokio::time::timeout(DEADLINE, self.0.read(&mut chunk))
                .await
                .expect("an answer within the deadline")
                .unwrap_or(0);
            if read == 0 {
                break;
            }
            buffer.extend_from_slice(&chunk[..read]);
            if let Some(end) = buffer.windows(4).position(|window| window == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&buffer[..end + 4]).to_ascii_lowercase();
                let length: usize = head
                    .lines()
                    .find_map(|line| line.strip_prefix("content-length:"))
                    .map_or(0, |value| value.trim().parse().unwrap());
                if buffer.len() >= end + 4 + length {
                    let status = head[9..12].parse().unwrap();
                    return (status, head, buffer[end + 4..end + 4 + length].to_vec());
                }
            }
        }
        panic!("no complete answer: {}", String::from_utf8_lossy(&buffer));
    }
}

#[tokio::test]
async fn framework_and_protocol_errors_answer_json() {
    let server = start(limits(10_000, 10_000, 64), "test-json-errors").await;
    let addr = server.addr;

    let long_name = "a".repeat(100 * 1024);
    let (status, message) = raw_error(
        addr,
        format!("GET /ocm/component?component_name={long_name} HTTP/1.1\r\nhost: odg\r\n\r\n")
            .into_bytes(),
    )
    .await;
    assert_eq!(status, 414, "{message}");

    let many_headers: String = (0..200).map(|i| format!("x-h{i}: v\r\n")).collect();
    let (status, message) = raw_error(
        addr,
        format!("GET /live HTTP/1.1\r\nhost: odg\r\n{many_headers}\r\n").into_bytes(),
    )
    .await;
    assert_eq!(status, 431, "{message}");

    let (status, message) = raw_error(addr, b"NOT AN HTTP REQUEST\r\n\r\n".to_vec()).await;
    assert_eq!(status, 400, "{message}");

    let (status, message) = raw_error(
        addr,
        b"POST /ocm/component HTTP/1.1\r\nhost: odg\r\ncontent-length: 0\r\n\r\n".to_vec(),
    )
    .await;
    assert_eq!(status, 405, "{message}");

    // 50 MB against the 32 MiB body limit of the metadata routes.
    let size = 50 * 1000 * 1000;
    let mut request = format!(
        "PUT /artefacts/metadata HTTP/1.1\r\nhost: odg\r\ncontent-type: application/json\r\ncontent-length: {size}\r\n\r\n"
    )
    .into_bytes();
    request.resize(request.len() + size, b' ');
    let (status, message) = raw_error(addr, request).await;
    assert_eq!(status, 413, "{message}");

    server.shut_down().await;
}

#[tokio::test]
async fn shutdown_closes_idle_connections_and_returns() {
    let server = start(limits(60_000, 60_000, 64), "test-drain").await;
    let mut idle = TcpStream::connect(server.addr).await.unwrap();
    assert_eq!(get(&mut idle, "/live").await.0, 200);
    server.shut_down().await;
    assert!(wait_closed(&mut idle).await.is_empty());
}

#[tokio::test]
async fn the_admin_listener_serves_with_the_same_code_and_json_errors() {
    // The operational routes need no repository: a service over no mapping at all.
    let stores = odg_components::RepositoryStores::new(
        odg_oci::RegistryClient::new(odg_oci::RegistryClientConfig::default()).unwrap(),
    );
    let service =
        crate::support::service_over(stores, odg_ocm::RepositoryMapping::default(), vec![]);
    let state =
        odg_server::AppState::new(service).with_metrics(odg_server::metrics::install_recorder());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(odg_server::serve(
        listener,
        odg_server::admin_router(state),
        limits(1_000, 60_000, 8),
        "test-admin",
        async move {
            let _ = stopped.await;
        },
    ));
    let mut stream = TcpStream::connect(addr).await.unwrap();
    assert_eq!(get(&mut stream, "/ready").await.0, 200);
    let (status, message) = raw_error(
        addr,
        b"POST /metrics HTTP/1.1\r\nhost: odg\r\ncontent-length: 0\r\n\r\n".to_vec(),
    )
    .await;
    assert_eq!(status, 405, "{message}");
    let (status, message) = raw_error(
        addr,
        b"GET /ocm/component HTTP/1.1\r\nhost: odg\r\n\r\n".to_vec(),
    )
    .await;
    assert_eq!(status, 404, "{message}");
    // The header-read timeout holds here too.
    let mut silent = TcpStream::connect(addr).await.unwrap();
    assert!(wait_closed(&mut silent).await.is_empty());
    let _ = stop.send(());
    tokio::time::timeout(DEADLINE, task)
        .await
        .expect("the admin listener stops")
        .unwrap()
        .unwrap();
}
