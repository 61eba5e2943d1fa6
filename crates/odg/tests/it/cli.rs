//! The command line as operators use it: configuration mistakes fail fast, no configuration serves
//! the demo, and the `ODG_*` variables work like the flags.

use std::time::{Duration, Instant};

use odg_test_support::RegistryServer;

use crate::fixtures::minimal_descriptor;
use crate::harness::{odg_command, odg_push, run_within, OdgServer};

#[tokio::test]
async fn unknown_config_keys_fail_fast_naming_the_key() {
    let directory = tempfile::tempdir().unwrap();
    for (file, config, key) in [
        (
            "top.yaml",
            "listen: 127.0.0.1:0\nlistn: 127.0.0.1:0\n",
            "listn",
        ),
        ("nested.yaml", "registry:\n  max_retry: 3\n", "max_retry"),
    ] {
        let path = directory.path().join(file);
        std::fs::write(&path, config).unwrap();
        let mut command = odg_command();
        command
            .current_dir(directory.path())
            .arg("serve")
            .arg("--config")
            .arg(&path)
            .arg("--listen")
            .arg("127.0.0.1:0")
            .arg("--cache-dir")
            .arg(directory.path().join("cache"));
        let started = Instant::now();
        // Were the key accepted, the server would run until this bound kills it: that fails too.
        let output = run_within(
            command,
            "odg serve with a bad config",
            Duration::from_secs(20),
        )
        .await;
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{file}: {stderr}");
        assert!(
            stderr.contains(&format!("unknown field `{key}`")),
            "{file}: the message must name the key {key:?}: {stderr}"
        );
        assert!(
            stderr.contains(file),
            "{file}: the message must name the file: {stderr}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{file}: not fast"
        );
    }
}

#[tokio::test]
async fn without_a_repository_the_demo_is_served_from_the_cache_dir() {
    let odg = OdgServer::start(&[]).await;
    let body = odg
        .get_ok(
            "/ocm/component",
            &[("component_name", "acme.org/landscape")],
        )
        .await;
    assert_eq!(body["component"]["name"], "acme.org/landscape");
    let greatest = body["component"]["version"].as_str().unwrap().to_owned();

    let versions = odg
        .get_ok(
            "/ocm/component/versions",
            &[("component_name", "acme.org/landscape"), ("max", "0")],
        )
        .await;
    assert_eq!(
        versions.as_array().and_then(|v| v.last()),
        Some(&serde_json::json!(greatest))
    );
    let tree = odg
        .get_ok(
            "/ocm/component/dependencies",
            &[
                ("component_name", "acme.org/landscape"),
                ("populate", "componentReferences"),
            ],
        )
        .await;
    let elements = tree["componentDependencies"].as_array().unwrap();
    assert!(elements.len() > 1, "{tree}");
    assert_eq!(elements[0]["name"], "acme.org/landscape");

    // The demo repository was written below --cache-dir, not into the default `.odg`.
    assert!(odg.cache_dir().join("demo-ocm-repository").is_dir());
    assert!(!odg.working_dir().join(".odg").exists());

    let (status, body) = odg
        .get("/ocm/component", &[("component_name", "acme.org/absent")])
        .await;
    assert_eq!(status, reqwest::StatusCode::NOT_FOUND, "{body}");
}

/// A pod's stderr is a pipe, and its log plain text without terminal colour codes, although
/// nothing asks for that: `NO_COLOR`, which the tests' launcher sets, is taken away here.
#[tokio::test]
async fn a_piped_log_has_no_colour_codes() {
    let odg = OdgServer::start_with(|command, setup| {
        setup.serve(command).env_remove("NO_COLOR");
    })
    .await;
    let log = odg.log();
    assert!(log.contains("INFO"), "{log}");
    assert!(
        !log.contains('\u{1b}'),
        "escape codes in a piped log: {log:?}"
    );
}

#[tokio::test]
async fn environment_variables_configure_serve() {
    let registry = RegistryServer::start().await;
    let first = format!("{}/first", registry.url());
    let second = format!("{}/second", registry.url());
    let files = tempfile::tempdir().unwrap();
    let file = |name: &str, version: &str| minimal_descriptor(files.path(), name, version);
    odg_push(
        &first,
        &[
            file("acme.org/env/first-only", "1.0.0"),
            file("acme.org/env/both", "1.0.0"),
        ],
    )
    .await;
    odg_push(
        &second,
        &[
            file("acme.org/env/second-only", "1.0.0"),
            file("acme.org/env/both", "2.0.0"),
        ],
    )
    .await;

    let repositories = format!("{first},{second}");
    let odg = OdgServer::start_with(|command, setup| {
        command
            .arg("serve")
            .env("ODG_LISTEN", setup.listen)
            .env("ODG_OCM_REPOS", &repositories)
            .env("ODG_CACHE_DIR", setup.cache_dir);
    })
    .await;

    // ODG_LISTEN: the server answers where the variable said (start_with waited on that address).
    // ODG_OCM_REPOS: comma-separated, both repositories are served, versions are their union.
    for name in ["acme.org/env/first-only", "acme.org/env/second-only"] {
        let body = odg
            .get_ok("/ocm/component", &[("component_name", name)])
            .await;
        assert_eq!(body["component"]["name"], name);
    }
    let versions = odg
        .get_ok(
            "/ocm/component/versions",
            &[("component_name", "acme.org/env/both")],
        )
        .await;
    assert_eq!(versions, serde_json::json!(["1.0.0", "2.0.0"]));
    let body = odg
        .get_ok("/ocm/component", &[("component_name", "acme.org/env/both")])
        .await;
    assert_eq!(body["component"]["version"], "2.0.0");
    // ODG_CACHE_DIR: created by serve.
    assert!(odg.cache_dir().is_dir());
    assert!(!odg.working_dir().join(".odg").exists());
}

/// `ODG_CORS_ALLOWED_ORIGINS` (comma-separated) reaches the server over a real socket: a browser's
/// preflight from a listed origin is answered as the dashboard needs, another origin's is not; a
/// query gzipped as the Python client sends it (`Content-Encoding`, compressed `Content-Length`)
/// answers as a plain one.
#[tokio::test]
async fn cors_origins_from_the_environment_and_gzipped_bodies_over_a_socket() {
    use std::io::Write;

    let odg = OdgServer::start_with(|command, setup| {
        setup.serve(command).env(
            "ODG_CORS_ALLOWED_ORIGINS",
            "https://dashboard.example.org, http://localhost:3000/",
        );
    })
    .await;
    let http = crate::harness::http_client();
    let url = format!("{}/artefacts/metadata/query", odg.base_url());
    for (origin, allowed) in [
        ("https://dashboard.example.org", true),
        ("http://localhost:3000", true),
        ("https://evil.example.org", false),
    ] {
        let response = http
            .request(reqwest::Method::OPTIONS, &url)
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "content-type,shortcut-cache",
            )
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), reqwest::StatusCode::OK, "{origin}");
        let headers = response.headers();
        let allow_origin = headers
            .get("access-control-allow-origin")
            .map(|value| value.to_str().unwrap());
        if allowed {
            assert_eq!(allow_origin, Some(origin));
            assert_eq!(headers["access-control-allow-credentials"], "true");
            let allowed_headers = headers["access-control-allow-headers"].to_str().unwrap();
            assert!(
                allowed_headers.contains("shortcut-cache"),
                "{allowed_headers}"
            );
        } else {
            assert_eq!(allow_origin, None, "{origin}");
        }
    }

    let query =
        br#"{"entries": [{"component_name": "acme.org/nothing", "component_version": "1.0.0"}]}"#;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(query).unwrap();
    let gzipped = encoder.finish().unwrap();
    for (coding, body) in [(None, query.to_vec()), (Some("gzip"), gzipped)] {
        let mut request = http
            .post(&url)
            .header("content-type", "application/json")
            .header("origin", "https://dashboard.example.org");
        if let Some(coding) = coding {
            request = request.header("content-encoding", coding);
        }
        let response = request.body(body).send().await.unwrap();
        assert_eq!(response.status(), reqwest::StatusCode::OK, "{coding:?}");
        assert_eq!(
            response.headers()["access-control-allow-origin"],
            "https://dashboard.example.org"
        );
        let answer: serde_json::Value = response.json().await.unwrap();
        assert_eq!(answer, serde_json::json!([]), "{coding:?}");
    }
}
