//! A registry behind an organisation's own CA (the real registry serving HTTPS with a certificate
//! from a CA made here): without trust a clear 502 after one attempt; trusted through
//! `--registry-ca-file`, `SSL_CERT_FILE` (in the child's environment only) or a host's `ca_file`.

use std::path::{Path, PathBuf};

use odg_test_support::{RegistryServer, TestCa};
use reqwest::StatusCode;

use crate::fixtures::minimal_descriptor;
use crate::harness::{odg_command, run_bounded, OdgServer};

const COMPONENT: &str = "acme.org/private-ca/app";

struct PrivateCaRegistry {
    registry: RegistryServer,
    ca_file: PathBuf,
    files: tempfile::TempDir,
    /// The registry's certificate and key files, removed when this is dropped.
    _certificate: odg_test_support::ServerCertificate,
}

impl PrivateCaRegistry {
    /// `127.0.0.1:PORT/ocm`: no scheme, so HTTPS.
    fn repository(&self) -> String {
        format!("{}/ocm", self.registry.host())
    }
}

/// The registry, its CA's certificate in a file, and one descriptor pushed by `odg push` trusting it.
async fn private_ca_registry() -> PrivateCaRegistry {
    let ca = TestCa::new("odg e2e private CA");
    let certificate = ca.server_certificate(&["127.0.0.1", "localhost"]);
    let registry = RegistryServer::start_with_tls(&certificate).await;
    let files = tempfile::tempdir().unwrap();
    let ca_file = files.path().join("corp-ca.pem");
    ca.write_certificate(&ca_file);
    let setup = PrivateCaRegistry {
        registry,
        ca_file,
        files,
        _certificate: certificate,
    };
    let descriptor = minimal_descriptor(setup.files.path(), COMPONENT, "1.0.0");
    let mut push = odg_command();
    push.arg("push")
        .arg("--ocm-repo")
        .arg(setup.repository())
        .arg("--registry-ca-file")
        .arg(&setup.ca_file)
        .arg(&descriptor);
    let output = run_bounded(push, "odg push to the private-CA registry").await;
    assert!(
        output.status.success(),
        "odg push failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    setup
}

async fn descriptor(odg: &OdgServer) -> (StatusCode, serde_json::Value) {
    odg.get(
        "/ocm/component",
        &[("component_name", COMPONENT), ("version", "1.0.0")],
    )
    .await
}

/// The sum of a registry counter's samples for `host` whose labels contain `label`.
async fn registry_counter(odg: &OdgServer, name: &str, host: &str, label: &str) -> f64 {
    odg.metric_sum(name, &[&format!(r#"host="{host}""#), label])
        .await
}

#[tokio::test]
async fn untrusted_private_ca_is_a_clear_502_after_one_attempt() {
    let setup = private_ca_registry().await;
    let odg = OdgServer::start(&["--ocm-repo", &setup.repository()]).await;
    let (status, body) = descriptor(&odg).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{body}");
    let message = body["error"].as_str().unwrap();
    assert!(
        message.contains("invalid peer certificate") && message.contains("UnknownIssuer"),
        "{message}"
    );
    let host = setup.registry.host();
    let tls_failures = registry_counter(
        &odg,
        "odg_registry_requests_total",
        &host,
        r#"outcome="tls""#,
    )
    .await;
    assert_eq!(tls_failures, 1.0, "one attempt, no more");
    let retries = registry_counter(&odg, "odg_registry_retries_total", &host, "").await;
    assert_eq!(retries, 0.0);
}

#[tokio::test]
async fn registry_ca_file_flag_makes_the_private_ca_trusted() {
    let setup = private_ca_registry().await;
    let ca_file = setup.ca_file.to_string_lossy().into_owned();
    let odg = OdgServer::start(&[
        "--ocm-repo",
        &setup.repository(),
        "--registry-ca-file",
        &ca_file,
    ])
    .await;
    let (status, body) = descriptor(&odg).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["component"]["name"], COMPONENT);
}

/// `odg serve --ocm-repo <the registry>` with `variable=value` in the child's environment only
/// (variables are process-global) and the other certificate variable removed.
async fn serve_with_certificate_variable(
    setup: &PrivateCaRegistry,
    variable: &str,
    value: &Path,
) -> OdgServer {
    let repository = setup.repository();
    OdgServer::start_with(|command, server| {
        server
            .serve(command)
            .arg("--ocm-repo")
            .arg(&repository)
            .env_remove("SSL_CERT_FILE")
            .env_remove("SSL_CERT_DIR")
            .env(variable, value);
    })
    .await
}

#[tokio::test]
async fn ssl_cert_file_and_ssl_cert_dir_in_the_environment_are_honoured() {
    let setup = private_ca_registry().await;
    let odg = serve_with_certificate_variable(&setup, "SSL_CERT_FILE", &setup.ca_file).await;
    let (status, body) = descriptor(&odg).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let directory = setup.files.path().join("certs");
    std::fs::create_dir(&directory).unwrap();
    std::fs::copy(&setup.ca_file, directory.join("corp-ca.pem")).unwrap();
    let odg = serve_with_certificate_variable(&setup, "SSL_CERT_DIR", &directory).await;
    let (status, body) = descriptor(&odg).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn a_hosts_ca_file_in_the_configuration_trusts_that_host() {
    let setup = private_ca_registry().await;
    let config = setup.files.path().join("odg.yaml");
    std::fs::write(
        &config,
        format!(
            "ocm_repositories:\n  - repository: {}\nregistry:\n  credentials:\n    - host: {}\n      ca_file: {}\n",
            setup.repository(),
            setup.registry.host(),
            setup.ca_file.display()
        ),
    )
    .unwrap();
    let config = config.to_string_lossy().into_owned();
    let odg = OdgServer::start(&["--config", &config]).await;
    let (status, body) = descriptor(&odg).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn an_unusable_ca_file_stops_start_up_naming_it() {
    let directory = tempfile::tempdir().unwrap();
    let not_pem = directory.path().join("not-a-ca.pem");
    std::fs::write(&not_pem, "hello\n").unwrap();
    let mut serve = odg_command();
    serve
        .current_dir(directory.path())
        .arg("serve")
        .arg("--listen")
        .arg("127.0.0.1:0")
        .arg("--ocm-repo")
        .arg("registry.example.org/ocm")
        .env("ODG_REGISTRY_CA_FILE", &not_pem);
    let output = run_bounded(serve, "odg serve with a bad CA file").await;
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("not-a-ca.pem") && stderr.contains("no PEM certificate"),
        "{stderr}"
    );
}
