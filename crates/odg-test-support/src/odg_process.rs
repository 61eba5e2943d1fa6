//! `odg serve` as a child process, for the end-to-end tests and the benchmarks alike: a hermetic
//! command, a free port (retried when another process takes it first), a wait until that very
//! child is ready, its log, its pid, and a kill when the handle is dropped.
//!
//! This crate sits below the binary, so callers pass the binary's path: the tests
//! `env!("CARGO_BIN_EXE_odg")`, `odg-bench` the `odg` next to its own executable.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Longest wait for a server to answer `/ready`: a bound against hangs, not a speed requirement
/// (a debug build starting beside a loaded machine's other work has been seen to need over 20 s).
pub const READY_TIMEOUT: Duration = Duration::from_secs(60);
const POLL_INTERVAL: Duration = Duration::from_millis(50);
/// Ports are picked free and handed over; another process may grab one meanwhile: retry a few times.
const START_ATTEMPTS: usize = 6;
/// The target of `odg serve`'s start-up lines, `listening` among them: logged at `info` whatever
/// level the caller asks for, since readiness is recognised by that line.
const STARTUP_LOG_DIRECTIVE: &str = "odg::cmd::serve=info";

/// A free loopback port, as far as the kernel knows right now (bound, then released: the caller
/// must cope with losing it to another process, as [`OdgProcess::start`] does).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("bind a loopback port")
        .port()
}

/// An HTTP client for a local `odg`: no proxy, and a timeout so a hanging server fails the caller.
pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(20))
        .build()
        .expect("build an HTTP client")
}

/// A command for `binary`, hermetic: no `ODG_*` variable of the caller leaks in, logs at
/// `log_filter` (`ODG_LOG` syntax) without colours, no stdin.
pub fn odg_command(binary: &Path, log_filter: &str) -> Command {
    let mut command = Command::new(binary);
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("ODG_") {
            command.env_remove(&name);
        }
    }
    command
        .env("ODG_LOG", log_filter)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null());
    command
}

/// Where `odg serve` is asked to run; [`OdgProcess::start`] fills it in for each attempt.
pub struct ServeSetup<'a> {
    /// `127.0.0.1:PORT`, free when picked.
    pub listen: &'a str,
    /// A fresh directory inside the process's temp dir.
    pub cache_dir: &'a Path,
}

impl ServeSetup<'_> {
    /// `serve --listen <listen> --cache-dir <cache_dir>` on `command`, for further flags.
    pub fn serve<'c>(&self, command: &'c mut Command) -> &'c mut Command {
        command
            .arg("serve")
            .arg("--listen")
            .arg(self.listen)
            .arg("--cache-dir")
            .arg(self.cache_dir)
    }
}

/// Why `odg serve` did not become ready; the message carries its log.
#[derive(Debug)]
pub struct OdgStartError(String);

impl std::fmt::Display for OdgStartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for OdgStartError {}

/// A running `odg serve`, killed on drop. Its log (stdout and stderr) is printed when the thread
/// drops it panicking, so a failed test shows what the server said.
pub struct OdgProcess {
    child: Child,
    base_url: String,
    log_path: PathBuf,
    cache_dir: PathBuf,
    directory: tempfile::TempDir,
}

impl OdgProcess {
    /// `binary serve --listen 127.0.0.1:PORT --cache-dir <temp dir> ARGS...`
    pub async fn serve(
        binary: &Path,
        log_filter: &str,
        args: &[&str],
    ) -> Result<OdgProcess, OdgStartError> {
        Self::start(binary, log_filter, |command, setup| {
            setup.serve(command).args(args);
        })
        .await
    }

    /// Starts the command `configure` builds on [`odg_command`] (flags or `ODG_*` variables) for
    /// a free port and waits until that very child logged `listening` and answers `/ready`;
    /// retries when another process took the port in between.
    pub async fn start(
        binary: &Path,
        log_filter: &str,
        configure: impl Fn(&mut Command, &ServeSetup),
    ) -> Result<OdgProcess, OdgStartError> {
        let directory = tempfile::Builder::new()
            .prefix("odg-serve-")
            .tempdir()
            .map_err(|error| OdgStartError(format!("create a temp dir: {error}")))?;
        let cache_dir = directory.path().join("cache");
        let log_filter = format!("{log_filter},{STARTUP_LOG_DIRECTIVE}");
        let http = http_client();
        let mut last_log = String::new();
        for attempt in 0..START_ATTEMPTS {
            let listen = format!("127.0.0.1:{}", free_port());
            let log_path = directory.path().join(format!("serve-{attempt}.log"));
            let log = File::create(&log_path).expect("create the server log");
            let mut command = odg_command(binary, &log_filter);
            configure(
                &mut command,
                &ServeSetup {
                    listen: &listen,
                    cache_dir: &cache_dir,
                },
            );
            // Never the repository: a default `.odg` would land in the temp dir, where tests can see it.
            command
                .current_dir(directory.path())
                .stdout(log.try_clone().expect("clone the log handle"))
                .stderr(log);
            let mut child = command.spawn().map_err(|error| {
                OdgStartError(format!("start {} serve: {error}", binary.display()))
            })?;
            let base_url = format!("http://{listen}");
            match wait_until_ready(&mut child, &http, &base_url, &log_path).await {
                Ok(()) => {
                    return Ok(OdgProcess {
                        child,
                        base_url,
                        log_path,
                        cache_dir,
                        directory,
                    })
                }
                Err(reason) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    last_log = std::fs::read_to_string(&log_path).unwrap_or_default();
                    if !last_log.contains("Address already in use") {
                        return Err(OdgStartError(format!(
                            "odg serve did not become ready ({reason}); its log:\n{last_log}"
                        )));
                    }
                }
            }
        }
        Err(OdgStartError(format!(
            "odg serve did not start in {START_ATTEMPTS} attempts; last log:\n{last_log}"
        )))
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The process id of `odg serve` (e.g. to read `/proc/<pid>/status`).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn cache_dir(&self) -> &Path {
        &self.cache_dir
    }

    /// The server's working directory (its temp dir; the cache dir is inside it).
    pub fn working_dir(&self) -> &Path {
        self.directory.path()
    }

    /// What the server logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }
}

impl Drop for OdgProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!(
                "--- log of odg serve at {} ---\n{}",
                self.base_url,
                self.log()
            );
        }
    }
}

/// Polls every [`POLL_INTERVAL`] until the child logged `listening` (so the port is its own, not
/// some other process's) and `/ready` answers 200; fails when the child exits or after [`READY_TIMEOUT`].
async fn wait_until_ready(
    child: &mut Child,
    http: &reqwest::Client,
    base_url: &str,
    log_path: &Path,
) -> Result<(), String> {
    let deadline = Instant::now() + READY_TIMEOUT;
    let ready_url = format!("{base_url}/ready");
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("exited with {status}"));
        }
        let listening = std::fs::read_to_string(log_path)
            .map(|log| log.contains("listening"))
            .unwrap_or(false);
        if listening {
            if let Ok(response) = http.get(&ready_url).send().await {
                if response.status() == reqwest::StatusCode::OK {
                    return Ok(());
                }
            }
        }
        tokio::time::sleep(POLL_INTERVAL).await; // polling: until the server is ready
    }
    Err(format!("not ready after {READY_TIMEOUT:?}"))
}
