//! Processes a benchmark drives: `odg serve` pods, a dedicated Redis, and their resource figures.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use tokio::process::{Child, Command};

/// A free loopback port (bound, then released; the caller retries on a lost race).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .expect("a free loopback port")
}

/// The `odg` binary next to this one (built together: `cargo build --release -p odg -p odg-bench`).
pub fn odg_binary() -> anyhow::Result<PathBuf> {
    let path = std::env::current_exe()?.with_file_name("odg");
    if !path.exists() {
        bail!(
            "{} not found: build it with `cargo build --release -p odg -p odg-bench`",
            path.display()
        );
    }
    Ok(path)
}

/// One `odg serve` process with its own cache directory, killed on drop.
pub struct Pod {
    child: Child,
    pub url: String,
    pub pid: u32,
    _directory: tempfile::TempDir,
}

impl Pod {
    pub async fn start(extra_args: &[String]) -> anyhow::Result<Pod> {
        let binary = odg_binary()?;
        let directory = tempfile::tempdir()?;
        let port = free_port();
        let log = std::fs::File::create(directory.path().join("odg.log"))?;
        let mut child = Command::new(&binary)
            .arg("serve")
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .arg("--cache-dir")
            .arg(directory.path().join("cache"))
            .args(extra_args)
            .env("ODG_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        let url = format!("http://127.0.0.1:{port}");
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(response) = client.get(format!("{url}/ready")).send().await {
                if response.status().is_success() {
                    break;
                }
            }
            if let Ok(Some(status)) = child.try_wait() {
                let log =
                    std::fs::read_to_string(directory.path().join("odg.log")).unwrap_or_default();
                bail!("odg serve exited with {status}: {log}");
            }
            if Instant::now() > deadline {
                bail!("odg serve did not become ready in 30 s");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let pid = child.id().unwrap_or(0);
        Ok(Pod {
            child,
            url,
            pid,
            _directory: directory,
        })
    }

    /// Peak resident memory since start (VmHWM), in bytes.
    pub fn peak_rss_bytes(&self) -> u64 {
        proc_number(self.pid, "status", "VmHWM:") * 1024
    }

    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

/// A number from `/proc/<pid>/<file>` (`status`, `smaps_rollup`): kB for sizes, a count for
/// `Threads:`; 0 when absent.
pub fn proc_number(pid: u32, file: &str, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/{file}"))
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|line| line.starts_with(field))
                .and_then(|line| line.split_whitespace().nth(1))
                .and_then(|value| value.parse().ok())
        })
        .unwrap_or(0)
}

/// Sums the samples of one metric family in Prometheus text, optionally only lines containing `filter`.
pub fn metric_sum(text: &str, family: &str, filter: Option<&str>) -> f64 {
    odg_test_support::prometheus::sum(text, family, filter.as_slice())
}

pub fn ensure_directory(path: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(path).with_context(|| format!("creating {}", path.display()))
}
