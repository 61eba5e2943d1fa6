//! The framework's ceiling beside odg, in the same run: a bare axum server (its own process, the
//! same runtime settings) that answers every request with exactly the status, headers and
//! bytes odg answered, so every report shows odg as a share of what the stack could do.

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use axum::body::Body;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Response, StatusCode};
use axum::Router;
use bytes::Bytes;
use tokio::process::{Child, Command};

use crate::harness::free_port;
use crate::load::{closed_loop_with, Summary};

/// Headers of odg's answer that the ceiling repeats (the rest are per request or per process).
const REPEATED_HEADERS: [&str; 5] = [
    "content-type",
    "content-encoding",
    "etag",
    "cache-control",
    "vary",
];

#[derive(Debug, clap::Args)]
pub struct CeilingServerArgs {
    /// Where to listen, `host:port`.
    #[arg(long)]
    listen: String,
    /// Status of every answer.
    #[arg(long, default_value_t = 200)]
    status: u16,
    /// File holding the body of every answer.
    #[arg(long)]
    body: PathBuf,
    /// `name: value`, repeatable.
    #[arg(long = "header")]
    headers: Vec<String>,
}

/// The ceiling process itself: every request gets the one prepared answer.
pub async fn serve(args: CeilingServerArgs) -> anyhow::Result<()> {
    let body = Bytes::from(std::fs::read(&args.body)?);
    let status = StatusCode::from_u16(args.status)?;
    let mut headers = HeaderMap::new();
    for header in &args.headers {
        let (name, value) = header
            .split_once(':')
            .with_context(|| format!("header {header:?} is not `name: value`"))?;
        headers.insert(
            HeaderName::from_bytes(name.trim().as_bytes())?,
            HeaderValue::from_str(value.trim())?,
        );
    }
    let prepared = Arc::new((status, headers, body));
    let router = Router::new().fallback(move || {
        let prepared = prepared.clone();
        async move {
            let (status, headers, body) = &*prepared;
            let mut response = Response::new(Body::from(body.clone()));
            *response.status_mut() = *status;
            *response.headers_mut() = headers.clone();
            response
        }
    });
    let listener = tokio::net::TcpListener::bind(&args.listen).await?;
    axum::serve(listener, router).await?;
    Ok(())
}

/// One answer of odg as it went over the wire.
pub struct CapturedAnswer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
}

impl CapturedAnswer {
    pub async fn of(
        client: &reqwest::Client,
        url: &str,
        request_headers: &[(&str, &str)],
    ) -> anyhow::Result<CapturedAnswer> {
        let mut request = client.get(url);
        for (name, value) in request_headers {
            request = request.header(*name, *value);
        }
        let response = request.send().await?;
        let status = response.status().as_u16();
        let headers = REPEATED_HEADERS
            .iter()
            .filter_map(|name| {
                let value = response.headers().get(*name)?.to_str().ok()?;
                Some((name.to_string(), value.to_string()))
            })
            .collect();
        let body = response.bytes().await?;
        Ok(CapturedAnswer {
            status,
            headers,
            body,
        })
    }
}

/// A running ceiling process, killed on drop.
pub struct CeilingServer {
    child: Child,
    pub url: String,
    _directory: tempfile::TempDir,
}

impl CeilingServer {
    pub async fn start(answer: &CapturedAnswer) -> anyhow::Result<CeilingServer> {
        let directory = tempfile::tempdir()?;
        let body = directory.path().join("body");
        std::fs::write(&body, &answer.body)?;
        let port = free_port();
        let mut command = Command::new(std::env::current_exe()?);
        command
            .arg("ceiling-server")
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .arg("--status")
            .arg(answer.status.to_string())
            .arg("--body")
            .arg(&body);
        for (name, value) in &answer.headers {
            command.arg("--header").arg(format!("{name}: {value}"));
        }
        let mut child = command
            .stdout(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .context("starting the ceiling server")?;
        let url = format!("http://127.0.0.1:{port}");
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        while client.get(&url).send().await.is_err() {
            if let Ok(Some(status)) = child.try_wait() {
                bail!("the ceiling server exited with {status}");
            }
            if Instant::now() > deadline {
                bail!("the ceiling server did not listen within 30 s");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(CeilingServer {
            child,
            url,
            _directory: directory,
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id().unwrap_or(0)
    }

    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

/// CPU seconds (user + system) a process has used, from `/proc/<pid>/stat`.
pub fn cpu_seconds(pid: u32) -> f64 {
    let (user, system) = cpu_split(pid);
    user + system
}

/// User and system CPU seconds of a process, from `/proc/<pid>/stat`; zeros when it is gone.
pub fn cpu_split(pid: u32) -> (f64, f64) {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return (0.0, 0.0);
    };
    // Fields after the command name (which may contain spaces) start after the last ')'.
    let Some(after_name) = stat.rsplit_once(')').map(|(_, rest)| rest) else {
        return (0.0, 0.0);
    };
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line, 12 and 13 after the name.
    let ticks = |index: usize| {
        fields
            .get(index)
            .and_then(|field| field.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // USER_HZ is 100 on every Linux configuration we run on.
    (ticks(11) / 100.0, ticks(12) / 100.0)
}

/// A closed-loop measurement of one server, with its CPU time per successful request.
pub async fn measure(
    mode: &str,
    client: &reqwest::Client,
    url: &str,
    request_headers: &[(&str, &str)],
    clients: usize,
    duration: Duration,
    pid: u32,
) -> (Summary, f64) {
    let urls = Arc::new(vec![url.to_string()]);
    let headers: Arc<Vec<(String, String)>> = Arc::new(
        request_headers
            .iter()
            .map(|(name, value)| (name.to_string(), value.to_string()))
            .collect(),
    );
    // A short warm-up, so connections exist and caches are hot before the clock starts.
    closed_loop_with(
        client,
        urls.clone(),
        headers.clone(),
        clients,
        Duration::from_secs(1),
        usize::MAX,
    )
    .await;
    let cpu_before = cpu_seconds(pid);
    let (samples, elapsed) =
        closed_loop_with(client, urls, headers, clients, duration, usize::MAX).await;
    let cpu = cpu_seconds(pid) - cpu_before;
    let summary = Summary::of(mode, &samples, elapsed, 0, 0);
    let cpu_ms_per_request = cpu * 1000.0 / (summary.ok.max(1) as f64);
    (summary, cpu_ms_per_request)
}

/// The same measurement with `wrk` (one thread, `clients` connections) as the load generator:
/// a C client that costs a fraction of the CPU of reqwest's, so on a machine shared with the
/// server the server, not the generator, sets the figure. wrk keeps no per-request samples, so
/// p95 is not reported (0) and p50/p99/max come from its latency distribution.
pub async fn measure_with_wrk(
    mode: &str,
    url: &str,
    request_headers: &[(&str, &str)],
    clients: usize,
    duration: Duration,
    pid: u32,
) -> anyhow::Result<(Summary, f64)> {
    let run = |seconds: u64| {
        let mut command = Command::new("wrk");
        command
            .arg("-t1")
            .arg(format!("-c{clients}"))
            .arg(format!("-d{seconds}s"))
            .arg("--latency");
        for (name, value) in request_headers {
            command.arg("-H").arg(format!("{name}: {value}"));
        }
        command
            .arg(url)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        command
    };
    // Warm-up, as for the reqwest generator.
    run(1)
        .output()
        .await
        .context("running wrk (is it installed?)")?;
    let cpu_before = cpu_seconds(pid);
    let output = run(duration.as_secs().max(1)).output().await?;
    let cpu = cpu_seconds(pid) - cpu_before;
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    if !output.status.success() {
        bail!(
            "wrk failed: {text}{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let summary =
        parse_wrk(mode, &text).with_context(|| format!("reading wrk's report:\n{text}"))?;
    let cpu_ms_per_request = cpu * 1000.0 / (summary.ok.max(1) as f64);
    Ok((summary, cpu_ms_per_request))
}

/// wrk's `--latency` report as a [`Summary`].
pub fn parse_wrk(mode: &str, text: &str) -> Option<Summary> {
    let milliseconds = |value: &str| -> Option<f64> {
        let value = value.trim();
        let (number, factor) = if let Some(number) = value.strip_suffix("us") {
            (number, 0.001)
        } else if let Some(number) = value.strip_suffix("ms") {
            (number, 1.0)
        } else if let Some(number) = value.strip_suffix('s') {
            (number, 1000.0)
        } else if let Some(number) = value.strip_suffix('m') {
            (number, 60_000.0)
        } else {
            return None;
        };
        Some(number.trim().parse::<f64>().ok()? * factor)
    };
    let percentile = |label: &str| {
        text.lines()
            .map(str::trim)
            .find_map(|line| line.strip_prefix(label))
            .and_then(milliseconds)
    };
    // "  123456 requests in 5.00s, 1.23GB read"
    let (requests, seconds) = text.lines().find_map(|line| {
        let (count, rest) = line.trim().split_once(" requests in ")?;
        let elapsed = rest.split(',').next()?;
        Some((
            count.trim().parse::<usize>().ok()?,
            milliseconds(elapsed)? / 1000.0,
        ))
    })?;
    let count_after = |label: &str| -> usize {
        text.lines()
            .find_map(|line| line.trim().strip_prefix(label))
            .map(|rest| {
                rest.split(|c: char| !c.is_ascii_digit())
                    .filter_map(|number| number.parse::<usize>().ok())
                    .sum()
            })
            .unwrap_or(0)
    };
    let non_success = count_after("Non-2xx or 3xx responses:");
    // "Socket errors: connect 0, read 0, write 0, timeout 0"
    let socket_errors = count_after("Socket errors:");
    let ok = requests.saturating_sub(non_success);
    let max_ms = text
        .lines()
        .find_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            (fields.first() == Some(&"Latency")).then(|| fields.get(3).copied())?
        })
        .and_then(milliseconds)
        .unwrap_or(0.0);
    Some(Summary {
        mode: mode.to_string(),
        requests: requests + socket_errors,
        ok,
        shed: 0,
        errors: non_success + socket_errors,
        seconds,
        throughput_per_second: ok as f64 / seconds.max(1e-9),
        p50_ms: percentile("50%")?,
        p95_ms: 0.0,
        p99_ms: percentile("99%")?,
        max_ms,
        origin_fetches: 0,
        peak_rss_mib: 0.0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wrk_report_becomes_a_summary() {
        let report = "\
Running 5s test @ http://127.0.0.1:1234/x
  1 threads and 64 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     1.21ms  512.00us  12.50ms   90.00%
    Req/Sec    50.12k     2.01k   55.00k    80.00%
  Latency Distribution
     50%  635.91us
     75%    1.20ms
     90%    2.14ms
     99%    5.27ms
  250000 requests in 5.00s, 2.50GB read
  Socket errors: connect 0, read 2, write 0, timeout 1
  Non-2xx or 3xx responses: 10
Requests/sec:  50000.00
Transfer/sec:    512.00MB
";
        let summary = parse_wrk("odg", report).unwrap();
        assert_eq!(summary.requests, 250_003);
        assert_eq!(summary.ok, 249_990);
        assert_eq!(summary.errors, 13);
        assert!((summary.seconds - 5.0).abs() < 1e-9);
        assert!((summary.p50_ms - 0.63591).abs() < 1e-9);
        assert!((summary.p99_ms - 5.27).abs() < 1e-9);
        assert!((summary.max_ms - 12.5).abs() < 1e-9);
        assert!((summary.throughput_per_second - 49_998.0).abs() < 1e-6);
        assert!(parse_wrk("odg", "no report").is_none());
    }
}
