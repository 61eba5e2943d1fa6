//! Processes the end-to-end tests drive: the real `odg` binary (`serve` in the background through
//! `odg_test_support`'s [`OdgProcess`], `push` to completion) and a small HTTP client for the API.
//! Every wait is bounded; every child is killed when its handle is dropped.

use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use odg_test_support::odg_process::{OdgProcess, ServeSetup};
use odg_test_support::{FakeGithub, FakeGithubUser};
use reqwest::StatusCode;
use serde_json::Value;

pub use odg_test_support::odg_process::http_client;

/// Longest run of a subprocess that should finish (push, the Python library, a failing serve).
pub const PROCESS_TIMEOUT: Duration = Duration::from_secs(60);

/// The binary under test.
fn odg_binary() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_odg"))
}

/// `odg.yaml` in `directory` with login against a (fake) GitHub at `github_url`: an RS256
/// session key (`TEST_RSA_PRIVATE_KEY`, written beside it), one provider with `client_id` and
/// `client_secret` binding `roles` to the members of `team` (`org/slug`), and `extra` top-level
/// lines before it. Returns the file's path, for `--config`.
pub fn write_login_config(
    directory: &Path,
    github_url: &str,
    (client_id, client_secret): (&str, &str),
    (roles, team): (&str, &str),
    extra: &str,
) -> String {
    let key_path = directory.join("signing.pem");
    std::fs::write(&key_path, odg_test_support::jwt::TEST_RSA_PRIVATE_KEY).unwrap();
    let config_path = directory.join("odg.yaml");
    std::fs::write(
        &config_path,
        format!(
            "{extra}auth:\n  login:\n    issuer: http://odg.test\n    signing_keys:\n      - {{id: rsa-1, algorithm: RS256, private_key_file: {}}}\n    github:\n      - name: Fake\n        api_url: {github_url}\n        client_id: {client_id}\n        client_secret: {client_secret}\n        role_bindings:\n          - {{roles: [{roles}], subjects: [{{type: github-team, name: {team}}}]}}\n",
            key_path.display(),
        ),
    )
    .unwrap();
    config_path.display().to_string()
}

/// The client secret of [`scanner_bot_login`]'s fake GitHub (tests check no log holds it).
pub const SCANNER_BOT_CLIENT_SECRET: &str = "client-secret-for-the-fake";
/// The GitHub token of the fake user `scanner-bot`.
pub const SCANNER_BOT_TOKEN: &str = "ghp_fake_scanner";

/// A fake GitHub with one user, `scanner-bot` (token [`SCANNER_BOT_TOKEN`]) in the team
/// `acme/scanners`, and an `odg.yaml` in `directory` logging in against it (client
/// `odg-client-id`) with the `writer` role for that team. Returns the fake, to keep it running,
/// and the file's path, for `--config`.
pub async fn scanner_bot_login(directory: &Path) -> (FakeGithub, String) {
    let github = FakeGithub::start(
        "odg-client-id",
        SCANNER_BOT_CLIENT_SECRET,
        vec![FakeGithubUser {
            login: "scanner-bot".into(),
            token: SCANNER_BOT_TOKEN.into(),
            teams: vec![("acme".into(), "scanners".into())],
            ..FakeGithubUser::default()
        }],
    )
    .await;
    let config = write_login_config(
        directory,
        github.url(),
        ("odg-client-id", SCANNER_BOT_CLIENT_SECRET),
        ("writer", "acme/scanners"),
        "",
    );
    (github, config)
}

/// The login `odg_client` does with a GitHub token: `GET /auth` as `scanner-bot` against the
/// GitHub at `api_url`, asking for a refresh token too. The answer sets the session cookies.
pub async fn scanner_bot_token_login(
    http: &reqwest::Client,
    base_url: &str,
    api_url: &str,
) -> reqwest::Response {
    http.get(format!("{base_url}/auth"))
        .query(&[
            ("access_token", SCANNER_BOT_TOKEN),
            ("api_url", api_url),
            ("use_refresh_token", "true"),
        ])
        .send()
        .await
        .unwrap()
}

/// The value of the cookie `name` that `response` sets, if it sets one.
pub fn set_cookie(response: &reqwest::Response, name: &str) -> Option<String> {
    response
        .headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .filter_map(|value| value.split(';').next())
        .filter_map(|pair| pair.split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.to_string())
}

/// The workspace root (`crates/odg/../..`).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("the workspace root exists")
}

/// A command for the `odg` binary under test, hermetic: no `ODG_*` variable of the caller leaks in.
pub fn odg_command() -> std::process::Command {
    odg_test_support::odg_process::odg_command(odg_binary(), "info")
}

/// Runs a command to completion within [`PROCESS_TIMEOUT`], killing it otherwise.
pub async fn run_bounded(command: std::process::Command, what: &str) -> Output {
    run_within(command, what, PROCESS_TIMEOUT).await
}

/// Runs a command to completion within `timeout`, killing it otherwise.
pub async fn run_within(command: std::process::Command, what: &str, timeout: Duration) -> Output {
    let mut command = tokio::process::Command::from(command);
    command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let started = Instant::now();
    let child = command
        .spawn()
        .unwrap_or_else(|error| panic!("{what}: cannot start: {error}"));
    match tokio::time::timeout(timeout, child.wait_with_output()).await {
        Ok(Ok(output)) => output,
        Ok(Err(error)) => panic!("{what}: {error}"),
        Err(_) => panic!(
            "{what}: still running after {:?}; killed",
            started.elapsed()
        ),
    }
}

/// A running `odg serve` (killed on drop, its log printed when a test panics) with the tests'
/// HTTP helpers.
pub struct OdgServer {
    process: OdgProcess,
    http: reqwest::Client,
}

impl OdgServer {
    /// `odg serve --listen 127.0.0.1:PORT --cache-dir <temp dir> ARGS...`
    pub async fn start(args: &[&str]) -> OdgServer {
        let process = OdgProcess::serve(odg_binary(), "info", args)
            .await
            .unwrap_or_else(|error| panic!("{error}"));
        Self::around(process)
    }

    /// Starts the command `configure` builds (flags or `ODG_*` variables) for a free port; see
    /// [`OdgProcess::start`].
    pub async fn start_with(configure: impl Fn(&mut std::process::Command, &ServeSetup)) -> Self {
        let process = OdgProcess::start(odg_binary(), "info", configure)
            .await
            .unwrap_or_else(|error| panic!("{error}"));
        Self::around(process)
    }

    fn around(process: OdgProcess) -> OdgServer {
        OdgServer {
            process,
            http: http_client(),
        }
    }

    pub fn cache_dir(&self) -> &Path {
        self.process.cache_dir()
    }

    /// `http://127.0.0.1:PORT`, for requests [`OdgServer::get`] does not make (other methods,
    /// headers, or answers that may fail).
    pub fn base_url(&self) -> &str {
        self.process.base_url()
    }

    /// The process id of `odg serve` (e.g. to read `/proc/<pid>/status`).
    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    /// The server's working directory (its temp dir; the cache dir is inside it).
    pub fn working_dir(&self) -> &Path {
        self.process.working_dir()
    }

    /// What the server logged so far.
    pub fn log(&self) -> String {
        self.process.log()
    }

    /// The pod's `/metrics` text.
    pub async fn metrics_text(&self) -> String {
        self.http
            .get(format!("{}/metrics", self.base_url()))
            .send()
            .await
            .expect("GET /metrics")
            .text()
            .await
            .expect("the metrics text")
    }

    /// The sum of the samples of `family` whose lines contain every one of `fragments`.
    pub async fn metric_sum(&self, family: &str, fragments: &[&str]) -> f64 {
        odg_test_support::prometheus::sum(&self.metrics_text().await, family, fragments)
    }

    /// Waits until every fill this pod has answered has also been written into the disk and
    /// shared tiers (`odg_cache_writebacks_in_flight` back at 0): a fill answers its waiters
    /// before it writes, so a test that reads another pod next must wait on this, not sleep.
    pub async fn writebacks_landed(&self) {
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            let pending = self.metric_sum("odg_cache_writebacks_in_flight", &[]).await;
            if pending == 0.0 {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "write-backs still pending: {pending}"
            );
            // polling the gauge, not ordering by time
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// GETs `path` with `query` (percent-encoded here, so `+` in versions survives) and returns the
    /// status and the JSON body; every answer of the API must be JSON, errors `{"error": ...}`.
    pub async fn get(&self, path: &str, query: &[(&str, &str)]) -> (StatusCode, Value) {
        let url = format!("{}{path}", self.base_url());
        let response = self
            .http
            .get(&url)
            .query(query)
            .send()
            .await
            .unwrap_or_else(|error| panic!("GET {path} {query:?}: {error}"));
        let status = response.status();
        let content_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned);
        let bytes = response.bytes().await.expect("read the body");
        assert_eq!(
            content_type.as_deref(),
            Some("application/json"),
            "GET {path} {query:?}: {status}, body {bytes:?}"
        );
        let body: Value = serde_json::from_slice(&bytes)
            .unwrap_or_else(|error| panic!("GET {path} {query:?}: not JSON ({error}): {bytes:?}"));
        if !status.is_success() {
            assert!(
                body["error"].is_string(),
                "GET {path} {query:?}: error without message: {body}"
            );
        }
        (status, body)
    }

    /// Like [`OdgServer::get`], but the answer must be 200.
    pub async fn get_ok(&self, path: &str, query: &[(&str, &str)]) -> Value {
        let (status, body) = self.get(path, query).await;
        assert_eq!(status, StatusCode::OK, "GET {path} {query:?}: {body}");
        body
    }
}

/// One line of `odg push` output: `HOST PATH:TAG (DIGEST)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pushed {
    /// `PATH:TAG` inside the registry, the tag with `.build-` for `+`.
    pub reference: String,
    pub manifest_digest: String,
}

/// `odg push --ocm-repo REPOSITORY FILES...`; must succeed. One entry per file, in order.
pub async fn odg_push(repository: &str, files: &[PathBuf]) -> Vec<Pushed> {
    let mut command = odg_command();
    command
        .arg("push")
        .arg("--ocm-repo")
        .arg(repository)
        .args(files);
    let output = run_bounded(command, "odg push").await;
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "odg push failed ({}):\nstdout: {stdout}\nstderr: {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let pushed: Vec<Pushed> = stdout
        .lines()
        .map(|line| {
            let parse = || -> Option<Pushed> {
                let (_host, rest) = line.split_once(' ')?;
                let (reference, digest) = rest.split_once(" (")?;
                Some(Pushed {
                    reference: reference.to_owned(),
                    manifest_digest: digest.strip_suffix(')')?.to_owned(),
                })
            };
            parse().unwrap_or_else(|| panic!("odg push printed an unexpected line: {line:?}"))
        })
        .collect();
    assert_eq!(pushed.len(), files.len(), "one line per file: {stdout}");
    pushed
}
