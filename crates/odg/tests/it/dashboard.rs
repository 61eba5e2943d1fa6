//! The original's web UI, the Delivery Dashboard (vendored in `tests/dashboard/build`), served by
//! `odg serve --dashboard-dir` on the demo landscape with login configured against a fake GitHub,
//! and driven in headless Chromium by `tests/dashboard/drive.py`: it logs in on the token tab,
//! reaches the landing page, opens a demo component and visits each tab the dashboard shows. Any
//! failed request (status >= 400, network error) or console error once logged in fails the test.
//! The screenshots go under `target/`, or to `docs/dashboard/` with `ODG_UPDATE_SCREENSHOTS=1`.

use odg_test_support::{FakeGithub, FakeGithubUser};
use serde_json::Value;

use crate::harness::{workspace_root, write_login_config, OdgServer};
use crate::python::PythonLibrary;

const TOKEN: &str = "ghp_fake_dashboard_user";

#[tokio::test]
async fn the_dashboard_logs_in_and_shows_a_demo_component_without_a_failed_request() {
    let github = FakeGithub::start(
        "odg-dashboard",
        "dashboard-client-secret",
        vec![FakeGithubUser {
            login: "ada-l".into(),
            token: TOKEN.into(),
            teams: vec![("acme".into(), "shop".into())],
            ..FakeGithubUser::default()
        }],
    )
    .await;
    let root = workspace_root();
    let directory = tempfile::tempdir().unwrap();
    let config = write_login_config(
        directory.path(),
        github.url(),
        ("odg-dashboard", "dashboard-client-secret"),
        ("admin", "acme/shop"),
        &format!(
            "dashboard_dir: {}\n",
            root.join("tests/dashboard/build").display()
        ),
    );
    let server = OdgServer::start(&["--config", &config]).await;
    // The committed pictures in docs/dashboard are refreshed on request only, so that a test run
    // leaves the tree as it was: ODG_UPDATE_SCREENSHOTS=1 writes them there.
    let screenshots = if std::env::var_os("ODG_UPDATE_SCREENSHOTS").is_some() {
        root.join("docs/dashboard")
    } else {
        std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("dashboard-screenshots")
    };
    let outcome: Value = PythonLibrary::locate()
        .drive_dashboard(&[
            server.base_url(),
            TOKEN,
            "acme.org/shop/checkout",
            "1.3.0",
            "1.2.0",
            &screenshots.display().to_string(),
            // the demo's landing-page component at its greatest version, loaded
            "2026.3.0",
        ])
        .await;
    let failed: Vec<&str> = outcome["failed_requests"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let errors: Vec<&str> = outcome["console_errors"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        failed.is_empty() && errors.is_empty(),
        "failed requests: {failed:#?}\nconsole errors: {errors:#?}\nanswers: {:#?}\n{}",
        outcome["answers"],
        server.log()
    );
    // Before the token is stored, the page frame reads `/service-extensions`, which needs a
    // session here as in the original (reads require login in this configuration): a 401 is
    // the original's answer too. Routes the original opens to everyone must never be among them.
    for line in outcome["unauthorized_before_login"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
    {
        for open in ["/features", "/profiles", "/auth"] {
            assert!(
                !line.contains(&format!("{}{open}", server.base_url())),
                "{open} needs no session: {line}"
            );
        }
    }
    let strings = |key: &str| -> Vec<String> {
        outcome[key]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect()
    };
    let pages = strings("pages");
    assert_eq!(
        pages,
        [
            "login",
            "landing",
            "component-bom",
            "component-descriptor",
            "component-compliance",
            "component-diff",
            "component-query",
            "rescoring-dialog",
            "rescoring-edited",
            "component-compliance-rescored",
        ]
    );
    // The rescoring applied in the dialog (zlib's CRITICAL CVE to HIGH) shows in the summaries
    // the page loads afterwards: the component's worst vulnerability is HIGH now.
    let summaries = strings("vulnerability_summaries");
    assert_eq!(
        (
            summaries.first().map(String::as_str),
            summaries.last().map(String::as_str)
        ),
        (Some("CRITICAL"), Some("HIGH")),
        "{summaries:?}"
    );
    // what /features lets the dashboard show, and nothing it hides
    let tabs = strings("tabs");
    for shown in [
        "Dependencies (BOM)",
        "Component Descriptor",
        "Component Diff",
        "Compliance",
        "Query",
    ] {
        assert!(
            tabs.iter().any(|tab| tab.eq_ignore_ascii_case(shown)),
            "{shown}: {tabs:?}"
        );
    }
    // the routes behind the tabs were called and answered
    let answers = strings("answers");
    for route in [
        "200 GET /auth?",
        "200 GET /ocm/component?",
        "200 GET /ocm/component/dependencies?",
        "200 GET /ocm/component/responsibles?",
        "200 POST /artefacts/metadata/query",
        "200 GET /components/compliance-summary?",
        "200 GET /rescore?",
        "200 GET /components/upgrade-prs?",
        "200 POST /components/diff",
        "200 GET /artefacts/metadata/query-attributes",
        "200 POST /artefacts/metadata/query/by-search-expression",
        "201 POST /rescore",
    ] {
        let (status_method, path) = route.rsplit_once(' ').unwrap();
        assert!(
            answers
                .iter()
                .any(|answer| answer.starts_with(status_method)
                    && answer.contains(&format!("{}{path}", server.base_url()))),
            "no {route} in {answers:#?}"
        );
    }
}
