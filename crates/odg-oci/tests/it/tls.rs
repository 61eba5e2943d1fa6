//! A real registry serving HTTPS with a certificate from a CA made in the test: trusted only when
//! configured (globally or for its host), and an untrusted certificate fails once, without retries.

use std::collections::HashMap;

use odg_oci::{OciErrorKind, OciStore, RegistryClient, RegistryClientConfig, RegistryEndpoint};
use odg_test_support::{OciImageFixture, RegistryServer, TestCa};

use crate::{fast_config, push_image};

fn https_endpoint(config: RegistryClientConfig, host: &str) -> RegistryEndpoint {
    RegistryClient::new(config).unwrap().endpoint(false, host)
}

#[tokio::test]
async fn private_ca_registry_is_trusted_only_when_configured_and_never_retried() {
    let ca = TestCa::new("odg test private CA");
    let certificate = ca.server_certificate(&["127.0.0.1", "localhost"]);
    let registry = RegistryServer::start_with_tls(&certificate).await;
    let host = registry.host();
    let directory = tempfile::tempdir().unwrap();
    let ca_file = directory.path().join("private-ca.pem");
    ca.write_certificate(&ca_file);
    let image = OciImageFixture::simple("private-ca");

    let trusted = https_endpoint(
        RegistryClientConfig {
            ca_files: vec![ca_file.clone()],
            ..fast_config()
        },
        &host,
    );
    push_image(&trusted, "team/app", "1.0.0", &image).await;
    assert_eq!(
        trusted
            .get_manifest("team/app", "1.0.0")
            .await
            .unwrap()
            .digest,
        image.digest
    );

    let trusted_for_its_host = https_endpoint(
        RegistryClientConfig {
            host_ca_files: HashMap::from([(host.clone(), vec![ca_file.clone()])]),
            ..fast_config()
        },
        &host,
    );
    assert_eq!(
        trusted_for_its_host.list_tags("team/app").await.unwrap(),
        vec!["1.0.0"]
    );

    let values = crate::metrics::values();
    let trusted_for_another_host = https_endpoint(
        RegistryClientConfig {
            host_ca_files: HashMap::from([("registry.example.org".to_owned(), vec![ca_file])]),
            ..fast_config()
        },
        &host,
    );
    for untrusted in [
        https_endpoint(fast_config(), &host),
        trusted_for_another_host,
    ] {
        let error = untrusted
            .get_manifest("team/app", "1.0.0")
            .await
            .unwrap_err();
        assert_eq!(error.kind(), OciErrorKind::Tls, "{error}");
        let message = error.to_string();
        assert!(
            message.contains("invalid peer certificate") && message.contains("UnknownIssuer"),
            "{message}"
        );
    }
    // a series is a counter or a histogram (its sample count); the other kind reads 0
    let get = |key: String| (values.counter(&key) + values.histogram_count(&key)) as f64;
    assert_eq!(
        get(format!(
            "odg_registry_requests_total{{host={host},operation=manifest,outcome=tls}}"
        )),
        2.0,
        "one attempt per client"
    );
    assert_eq!(
        get(format!(
            "odg_registry_retries_total{{host={host},operation=manifest}}"
        )),
        0.0
    );
}

#[tokio::test]
async fn unreadable_or_empty_ca_files_fail_at_construction() {
    let directory = tempfile::tempdir().unwrap();
    let missing = directory.path().join("missing.pem");
    let error = RegistryClient::new(RegistryClientConfig {
        ca_files: vec![missing],
        ..fast_config()
    })
    .unwrap_err();
    assert!(error.to_string().contains("missing.pem"), "{error}");

    let empty = directory.path().join("empty.pem");
    std::fs::write(&empty, "").unwrap();
    let error = RegistryClient::new(RegistryClientConfig {
        host_ca_files: HashMap::from([("r.example".to_owned(), vec![empty])]),
        ..fast_config()
    })
    .unwrap_err();
    assert!(error.to_string().contains("no PEM certificate"), "{error}");
}
