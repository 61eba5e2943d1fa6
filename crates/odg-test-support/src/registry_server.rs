//! `RegistryServer`: a real CNCF distribution (Debian `docker-registry`) child process per test, on
//! loopback, over plain HTTP or HTTPS with a certificate from a `TestCa`.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Mutex;
use std::time::Duration;

use tokio::process::{Child, Command};

use crate::test_ca::ServerCertificate;

/// Where the binary is unless `ODG_DOCKER_REGISTRY_BIN` says otherwise.
pub const DEFAULT_DOCKER_REGISTRY_BIN: &str = "/usr/bin/docker-registry";
const START_ATTEMPTS: usize = 8;
const READY_TIMEOUT: Duration = Duration::from_secs(20);

/// Ports handed to registries of this process, so parallel tests never pick the same one.
static PORTS_IN_USE: Mutex<Option<HashSet<u16>>> = Mutex::new(None);

/// A running docker-registry with filesystem storage in a temp dir, killed on drop.
#[derive(Debug)]
pub struct RegistryServer {
    child: Child,
    port: u16,
    directory: tempfile::TempDir,
    /// Serves HTTPS (with a `TestCa` certificate) instead of plain HTTP.
    tls: bool,
}

impl RegistryServer {
    /// Starts an anonymous registry (pull and push without credentials).
    pub async fn start() -> RegistryServer {
        Self::start_inner(None, None).await
    }

    /// Starts an anonymous registry serving HTTPS only, with `certificate` (made by a `TestCa`).
    pub async fn start_with_tls(certificate: &ServerCertificate) -> RegistryServer {
        Self::start_inner(None, Some(certificate)).await
    }

    /// Starts a registry that requires basic auth for `user`/`password` (htpasswd, bcrypt).
    pub async fn start_with_htpasswd(user: &str, password: &str) -> RegistryServer {
        Self::start_inner(Some((user, password)), None).await
    }

    /// `127.0.0.1:PORT`
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// `http://127.0.0.1:PORT`, or `https://` when it serves TLS.
    pub fn url(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}", self.host())
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The registry's storage root.
    pub fn storage_dir(&self) -> PathBuf {
        self.directory.path().join("storage")
    }

    /// What the registry logged so far (level warn).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.directory.path().join("registry.log")).unwrap_or_default()
    }

    async fn start_inner(
        htpasswd: Option<(&str, &str)>,
        tls: Option<&ServerCertificate>,
    ) -> RegistryServer {
        let binary = registry_binary();
        let mut directory = tempfile::Builder::new()
            .prefix("odg-registry-")
            .tempdir()
            .expect("create a temp dir for the registry");
        let auth = match htpasswd {
            Some((user, password)) => {
                let path = directory.path().join("htpasswd");
                write_htpasswd(&path, user, password).await;
                format!(
                    "auth:\n  htpasswd:\n    realm: odg-test\n    path: {}\n",
                    path.display()
                )
            }
            None => String::new(),
        };
        let tls_config = match tls {
            Some(certificate) => format!(
                "  tls:\n    certificate: {}\n    key: {}\n",
                certificate.certificate_path().display(),
                certificate.key_path().display()
            ),
            None => String::new(),
        };
        let mut last_log = String::new();
        for _ in 0..START_ATTEMPTS {
            let port = reserve_port();
            let config_path = directory.path().join("config.yml");
            let config = format!(
                "version: 0.1\n\
                 log:\n  level: warn\n  accesslog:\n    disabled: true\n\
                 storage:\n  filesystem:\n    rootdirectory: {storage}\n  delete:\n    enabled: true\n  \
                 maintenance:\n    uploadpurging:\n      enabled: false\n\
                 http:\n  addr: 127.0.0.1:{port}\n  secret: odg-test-support-secret\n\
                 {tls_config}{auth}",
                storage = directory.path().join("storage").display(),
            );
            tokio::fs::write(&config_path, config)
                .await
                .expect("write the registry config");
            let log_path = directory.path().join("registry.log");
            let log = std::fs::File::create(&log_path).expect("create the registry log");
            let child = Command::new(&binary)
                .arg("serve")
                .arg(&config_path)
                .stdin(Stdio::null())
                .stdout(log.try_clone().expect("clone the log file handle"))
                .stderr(log)
                .kill_on_drop(true)
                .spawn()
                .unwrap_or_else(|error| panic!("cannot start {}: {error}", binary.display()));
            let mut server = RegistryServer {
                child,
                port,
                directory,
                tls: tls.is_some(),
            };
            if server.wait_until_ready().await {
                return server;
            }
            last_log = server.log();
            let _ = server.child.kill().await;
            release_port(port);
            directory = std::mem::replace(
                &mut server.directory,
                tempfile::tempdir().expect("create a temp dir"),
            );
            if !last_log.contains("address already in use") {
                break;
            }
        }
        panic!("docker-registry did not become ready; its log:\n{last_log}");
    }

    /// Polls `GET /v2/` until it answers (200, or 401 with auth) while the child lives.
    async fn wait_until_ready(&mut self) -> bool {
        // Readiness only: the test's CA is trusted by the clients under test, not by this probe.
        let client = reqwest::Client::builder()
            .no_proxy()
            .danger_accept_invalid_certs(self.tls)
            .timeout(Duration::from_secs(2))
            .build()
            .expect("build an HTTP client");
        let url = format!("{}/v2/", self.url());
        let deadline = tokio::time::Instant::now() + READY_TIMEOUT;
        while tokio::time::Instant::now() < deadline {
            if !matches!(self.child.try_wait(), Ok(None)) {
                return false;
            }
            if let Ok(response) = client.get(&url).send().await {
                if matches!(response.status().as_u16(), 200 | 401) {
                    // Another process may own the port: only trust an answer while our child still runs.
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    return matches!(self.child.try_wait(), Ok(None));
                }
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        false
    }
}

impl Drop for RegistryServer {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
        release_port(self.port);
    }
}

fn registry_binary() -> PathBuf {
    let binary = std::env::var_os("ODG_DOCKER_REGISTRY_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_DOCKER_REGISTRY_BIN));
    if !binary.is_file() {
        panic!(
            "docker-registry not found at {}: install Debian's `docker-registry` package \
             (`.ci/run` installs it) or point ODG_DOCKER_REGISTRY_BIN at the binary",
            binary.display()
        );
    }
    binary
}

async fn write_htpasswd(path: &Path, user: &str, password: &str) {
    let binary = std::env::var("ODG_HTPASSWD_BIN").unwrap_or_else(|_| "htpasswd".to_owned());
    let output = Command::new(&binary)
        .args(["-nbB", user, password])
        .output()
        .await
        .unwrap_or_else(|error| {
            panic!("cannot run {binary} (apache2-utils; `.ci/run` installs it): {error}")
        });
    assert!(
        output.status.success(),
        "htpasswd failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    tokio::fs::write(path, &output.stdout)
        .await
        .expect("write the htpasswd file");
}

/// A free loopback port not handed out by this process yet: bind to port 0, note it, release it.
pub(crate) fn reserve_port() -> u16 {
    loop {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("bind a loopback port")
            .port();
        let mut ports = PORTS_IN_USE
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if ports.get_or_insert_with(HashSet::new).insert(port) {
            return port;
        }
    }
}

pub(crate) fn release_port(port: u16) {
    let mut ports = PORTS_IN_USE
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(ports) = ports.as_mut() {
        ports.remove(&port);
    }
}
