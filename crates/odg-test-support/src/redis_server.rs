//! `RedisServer`: a dedicated `redis-server` child process per test (no persistence, loopback), that
//! a test may kill -9 and start again on the same port; plus a minimal RESP client for the few
//! commands tests send themselves (PING, key clean-up).

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::registry_server::{release_port, reserve_port};

/// Where the binary is unless `ODG_REDIS_SERVER_BIN` says otherwise.
pub const DEFAULT_REDIS_SERVER_BIN: &str = "redis-server";
const START_ATTEMPTS: usize = 6;
const READY_TIMEOUT: Duration = Duration::from_secs(10);

/// A running `redis-server --save "" --appendonly no` on `127.0.0.1:PORT`, killed on drop.
#[derive(Debug)]
pub struct RedisServer {
    child: Option<Child>,
    port: u16,
    directory: tempfile::TempDir,
    /// Further arguments (cluster mode, say), kept for restarts.
    extra_args: Vec<String>,
}

impl RedisServer {
    /// Starts a server on a free port.
    pub async fn start() -> RedisServer {
        RedisServer::start_with(&[]).await
    }

    /// Starts a server on a free port with further arguments; relative paths in them (a cluster
    /// config file, say) land in the server's own directory.
    pub async fn start_with(extra_args: &[&str]) -> RedisServer {
        let mut directory = tempfile::Builder::new()
            .prefix("odg-redis-")
            .tempdir()
            .expect("create a temp dir for redis-server");
        let mut last_log = String::new();
        for _ in 0..START_ATTEMPTS {
            let port = reserve_port();
            let mut server = RedisServer {
                child: None,
                port,
                directory,
                extra_args: extra_args.iter().map(|arg| arg.to_string()).collect(),
            };
            match server.spawn().await {
                Ok(()) => return server,
                Err(log) => {
                    last_log = log;
                    release_port(port);
                    directory = std::mem::replace(
                        &mut server.directory,
                        tempfile::tempdir().expect("create a temp dir"),
                    );
                }
            }
        }
        panic!("redis-server did not start; its log:\n{last_log}");
    }

    /// A free loopback port, held for a server started later with [`RedisServer::start_on`]
    /// (a test of a client that connects before Redis is up).
    pub fn reserve_port() -> u16 {
        reserve_port()
    }

    /// Starts a server on `port` (from [`RedisServer::reserve_port`]).
    pub async fn start_on(port: u16) -> RedisServer {
        let mut server = RedisServer {
            child: None,
            port,
            directory: tempfile::Builder::new()
                .prefix("odg-redis-")
                .tempdir()
                .expect("create a temp dir for redis-server"),
            extra_args: Vec::new(),
        };
        if let Err(log) = server.spawn().await {
            panic!("redis-server did not start on port {port}; its log:\n{log}");
        }
        server
    }

    /// `redis://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|child| matches!(child.try_wait(), Ok(None)))
    }

    /// kill -9, and waits until the process is gone (its data is lost: nothing is persisted).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts a new, empty server on the same port (after [`RedisServer::kill`]).
    pub async fn restart(&mut self) {
        self.kill();
        let mut last_log = String::new();
        for _ in 0..START_ATTEMPTS {
            match self.spawn().await {
                Ok(()) => return,
                // The port may linger for a moment after the kill.
                Err(log) => last_log = log,
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!(
            "redis-server did not restart on port {}; its log:\n{last_log}",
            self.port
        );
    }

    /// What the server logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    fn log_path(&self) -> PathBuf {
        self.directory.path().join("redis.log")
    }

    async fn spawn(&mut self) -> Result<(), String> {
        let binary = std::env::var("ODG_REDIS_SERVER_BIN")
            .unwrap_or_else(|_| DEFAULT_REDIS_SERVER_BIN.to_owned());
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .expect("open the redis log");
        let mut child = Command::new(&binary)
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .arg("--dir")
            .arg(self.directory.path())
            .args(&self.extra_args)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone the log handle"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|error| {
                panic!("cannot start {binary} (Debian's redis-server package): {error}")
            });
        let deadline = Instant::now() + READY_TIMEOUT;
        while Instant::now() < deadline {
            if !matches!(child.try_wait(), Ok(None)) {
                return Err(self.log());
            }
            if resp_command(self.addr(), &["PING"]).is_ok_and(|answer| answer == "PONG") {
                // Another process may own the port: only trust an answer while our child runs.
                if matches!(child.try_wait(), Ok(None)) {
                    self.child = Some(child);
                    return Ok(());
                }
                return Err(self.log());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let _ = child.kill();
        let _ = child.wait();
        Err(format!("not ready after {READY_TIMEOUT:?}\n{}", self.log()))
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
        release_port(self.port);
    }
}

/// Sends one command and returns its reply as text: simple strings and errors (`-ERR ...`) as
/// they are, integers as digits, bulk strings as their content (nil: empty). Arrays are not
/// supported. Bounded by one second per step.
pub fn resp_command(addr: SocketAddr, args: &[&str]) -> std::io::Result<String> {
    let timeout = Duration::from_secs(1);
    let mut stream = TcpStream::connect_timeout(&addr, timeout)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    let mut request = format!("*{}\r\n", args.len()).into_bytes();
    for arg in args {
        request.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
        request.extend_from_slice(arg.as_bytes());
        request.extend_from_slice(b"\r\n");
    }
    stream.write_all(&request)?;
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let line = line.trim_end_matches(['\r', '\n']);
    let invalid =
        |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_owned());
    match line.split_at_checked(1) {
        Some(("+" | ":", rest)) => Ok(rest.to_owned()),
        Some(("-", _)) => Ok(line.to_owned()),
        Some(("$", length)) => {
            let length: i64 = length.parse().map_err(|_| invalid("bad bulk length"))?;
            if length < 0 {
                return Ok(String::new());
            }
            let mut body = vec![0u8; length as usize + 2];
            std::io::Read::read_exact(&mut reader, &mut body)?;
            body.truncate(length as usize);
            String::from_utf8(body).map_err(|_| invalid("bulk reply is not UTF-8"))
        }
        _ => Err(invalid("unsupported reply")),
    }
}

/// Deletes every key starting with `prefix` (tests isolate themselves in a shared Redis by key
/// prefix); returns how many. Uses KEYS inside a script: fine for a test Redis, not for production.
pub fn delete_keys_with_prefix(addr: SocketAddr, prefix: &str) -> std::io::Result<u64> {
    const SCRIPT: &str = "local keys = redis.call('KEYS', ARGV[1]) \
        for i = 1, #keys, 1000 do redis.call('UNLINK', unpack(keys, i, math.min(i + 999, #keys))) end \
        return #keys";
    let pattern = format!("{prefix}*");
    let answer = resp_command(addr, &["EVAL", SCRIPT, "0", &pattern])?;
    answer
        .parse()
        .map_err(|_| std::io::Error::other(format!("redis answered {answer:?}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn starts_answers_dies_and_restarts_on_its_port() {
        let mut server = RedisServer::start().await;
        let addr = server.addr();
        assert_eq!(resp_command(addr, &["SET", "t:a", "1"]).unwrap(), "OK");
        assert_eq!(resp_command(addr, &["GET", "t:a"]).unwrap(), "1");
        assert_eq!(resp_command(addr, &["SET", "t:b", "2"]).unwrap(), "OK");
        assert_eq!(delete_keys_with_prefix(addr, "t:").unwrap(), 2);
        assert_eq!(resp_command(addr, &["GET", "t:a"]).unwrap(), "");

        server.kill();
        assert!(!server.is_running());
        assert!(resp_command(addr, &["PING"]).is_err());
        server.restart().await;
        assert!(server.is_running());
        assert_eq!(resp_command(addr, &["PING"]).unwrap(), "PONG");
    }
}
