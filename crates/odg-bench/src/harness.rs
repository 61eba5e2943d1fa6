//! Processes a benchmark drives: `odg serve` pods, a dedicated Redis, and their resource figures.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use odg_test_support::odg_process::OdgProcess;

pub use odg_test_support::odg_process::free_port;

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

/// One `odg serve` process with its own cache directory, killed on drop (the one launcher of
/// the tests, [`OdgProcess`]), logging warnings only so the log costs the measured pod nothing.
pub struct Pod {
    pub url: String,
    pub pid: u32,
    process: OdgProcess,
}

impl Pod {
    pub async fn start(extra_args: &[String]) -> anyhow::Result<Pod> {
        let args: Vec<&str> = extra_args.iter().map(String::as_str).collect();
        let process = OdgProcess::serve(&odg_binary()?, "warn", &args).await?;
        Ok(Pod {
            url: process.base_url().to_string(),
            pid: process.pid(),
            process,
        })
    }

    /// Peak resident memory since start (VmHWM), in bytes.
    pub fn peak_rss_bytes(&self) -> u64 {
        proc_number(self.pid, "status", "VmHWM:") * 1024
    }

    /// The pod's `/metrics` text.
    pub async fn metrics_text(&self, client: &reqwest::Client) -> anyhow::Result<String> {
        let response = client.get(format!("{}/metrics", self.url)).send().await?;
        Ok(response.text().await?)
    }

    /// Kills the pod now (as dropping it does), before the next one starts.
    pub fn stop(self) {
        drop(self.process);
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
