//! Parity with the reference Python library where the two once disagreed. Each test states the
//! library-compatible behaviour. Items 1, 3 and 4 are fixed and run always; item 2 is still open
//! and `#[ignore]`d (run it with `cargo nextest run -p odg --run-ignored ignored-only`).
//!
//! 1. `odg push` writes YAML that PyYAML (YAML 1.1, what the library and the original service parse
//!    with) reads differently: plain `2026-03-01T10:00:00Z` becomes a `datetime` (the library then
//!    refuses the whole descriptor), `yes`/`on` booleans, `12:30` the integer 750, `1_000` 1000.
//! 2. The other direction: the library writes strings that are not numbers in YAML 1.1 as plain
//!    scalars (`1e3`, `0o17`, `1234e56`), and odg's YAML 1.2 parser serves them as numbers.
//! 3. The dependency walk deduplicates edges by (componentName, version); the library (and so the
//!    original service) emits one node per edge.
//! 4. `odg push` writes the current repository context with the scheme (`http://HOST/PATH`); the
//!    library names repositories without one, so it does not recognise it and appends another.

use odg_test_support::RegistryServer;
use serde_json::json;

use crate::fixtures::{library_tree, odg_tree, repository_contexts};
use crate::harness::{odg_push, OdgServer};
use crate::python::{PythonLibrary, Query};

const AMBIGUOUS_IN_YAML_1_1: [&str; 6] = ["yes", "on", "12:30", "1_000", "2026-03-01", "1:2:3"];

#[tokio::test]
async fn odg_push_writes_yaml_the_python_library_can_read() {
    let python = PythonLibrary::locate();
    let registry = RegistryServer::start().await;
    let repository = format!("{}/ocm", registry.url());
    let files = tempfile::tempdir().unwrap();
    let values: Vec<String> = AMBIGUOUS_IN_YAML_1_1
        .iter()
        .map(|v| format!("'{v}'"))
        .collect();
    let path = files.path().join("probe.yaml");
    std::fs::write(
        &path,
        format!(
            "meta:\n  schemaVersion: 'v2'\ncomponent:\n  name: 'acme.org/probe/yaml'\n  version: '1.0.0'\n  \
             provider: 'acme'\n  creationTime: '2026-03-01T10:00:00Z'\n  repositoryContexts: []\n  \
             labels:\n  - name: 'probe'\n    value: [{}]\n  sources: []\n  resources: []\n  \
             componentReferences: []\n",
            values.join(", ")
        ),
    )
    .unwrap();
    odg_push(&repository, &[path]).await;

    let outcome = python
        .run(&repository, &[Query::read("acme.org/probe/yaml", "1.0.0")])
        .await
        .remove(0);
    // Before the fix: `WrongTypeError: wrong value type for field "component.creationTime" - should
    // be "str | None" instead of value "2026-03-01 10:00:00+00:00" of type "datetime"`.
    let read = outcome.json();
    assert_eq!(read["component"]["creationTime"], "2026-03-01T10:00:00Z");
    assert_eq!(
        read["component"]["labels"][0]["value"],
        json!(AMBIGUOUS_IN_YAML_1_1)
    );
}

#[tokio::test]
#[ignore = "known discrepancy 2: odg reads the library's plain scalars with YAML 1.2 rules"]
async fn odg_reads_strings_the_python_library_wrote_as_strings() {
    let python = PythonLibrary::locate();
    let registry = RegistryServer::start().await;
    let repository = format!("{}/ocm", registry.url());
    let files = tempfile::tempdir().unwrap();
    let path = files.path().join("probe.yaml");
    // A short commit hash of digits around one `e` is a realistic victim.
    std::fs::write(
        &path,
        "meta:\n  schemaVersion: 'v2'\ncomponent:\n  name: 'acme.org/probe/scalars'\n  version: '1.0.0'\n  \
         provider: 'acme'\n  repositoryContexts: []\n  labels:\n  - name: 'probe'\n    value: ['1e3', '0o17']\n  \
         sources:\n  - name: 'src'\n    version: '1.0.0'\n    type: 'git'\n    \
         access: {type: 'github', repoUrl: 'github.com/acme/probe', ref: 'refs/heads/main', commit: '1234e56'}\n  \
         resources: []\n  componentReferences: []\n",
    )
    .unwrap();
    python.upload(&repository, &[path]).await;
    let library = python
        .query(
            &repository,
            &[Query::read("acme.org/probe/scalars", "1.0.0")],
        )
        .await
        .remove(0);
    assert_eq!(
        library["component"]["labels"][0]["value"],
        json!(["1e3", "0o17"])
    );

    let odg = OdgServer::start(&["--ocm-repo", &repository]).await;
    let ours = odg
        .get_ok(
            "/ocm/component",
            &[
                ("component_name", "acme.org/probe/scalars"),
                ("version", "1.0.0"),
            ],
        )
        .await;
    // Today: [1000.0, 15] and 1.234e+59.
    assert_eq!(
        ours["component"]["labels"][0]["value"],
        json!(["1e3", "0o17"])
    );
    assert_eq!(
        ours["component"]["sources"][0]["access"]["commit"],
        "1234e56"
    );
}

#[tokio::test]
async fn dependencies_list_every_edge_like_the_python_library() {
    let python = PythonLibrary::locate();
    let registry = RegistryServer::start().await;
    let repository = format!("{}/ocm", registry.url());
    let files = tempfile::tempdir().unwrap();
    let root = files.path().join("root.yaml");
    // Two references to the same component version under different local names (legal: a
    // reference's identity is its name), plus the same one again through the extra-references label.
    std::fs::write(
        &root,
        "meta:\n  schemaVersion: 'v2'\ncomponent:\n  name: 'acme.org/probe/root'\n  version: '1.0.0'\n  \
         provider: 'acme'\n  repositoryContexts: []\n  sources: []\n  resources: []\n  labels:\n  \
         - name: 'ocm.software/ocm-gear/extra-component-references'\n    value:\n    \
         - component_reference: {name: 'acme.org/probe/lib', version: '1.0.0'}\n  componentReferences:\n  \
         - {name: 'lib-a', componentName: 'acme.org/probe/lib', version: '1.0.0', extraIdentity: {}}\n  \
         - {name: 'lib-b', componentName: 'acme.org/probe/lib', version: '1.0.0', extraIdentity: {}}\n",
    )
    .unwrap();
    let lib = files.path().join("lib.yaml");
    std::fs::write(
        &lib,
        "meta:\n  schemaVersion: 'v2'\ncomponent:\n  name: 'acme.org/probe/lib'\n  version: '1.0.0'\n  \
         provider: 'acme'\n  repositoryContexts: []\n  sources: []\n  resources: []\n  componentReferences: []\n",
    )
    .unwrap();
    python.upload(&repository, &[root, lib]).await;
    let library = python
        .query(
            &repository,
            &[Query::dependencies("acme.org/probe/root", "1.0.0")],
        )
        .await
        .remove(0);
    assert_eq!(library_tree(&library).len(), 4, "root + lib three times");

    let odg = OdgServer::start(&["--ocm-repo", &repository]).await;
    let ours = odg
        .get_ok(
            "/ocm/component/dependencies",
            &[
                ("component_name", "acme.org/probe/root"),
                ("populate", "componentReferences"),
            ],
        )
        .await;
    // Before the fix: root + lib once.
    assert_eq!(odg_tree(&ours), library_tree(&library));
}

#[tokio::test]
async fn the_python_library_recognises_the_repository_context_odg_push_writes() {
    let python = PythonLibrary::locate();
    let registry = RegistryServer::start().await;
    let repository = format!("{}/ocm", registry.url());
    let files = tempfile::tempdir().unwrap();
    let path = files.path().join("plain.yaml");
    std::fs::write(
        &path,
        "meta:\n  schemaVersion: 'v2'\ncomponent:\n  name: 'acme.org/probe/context'\n  version: '1.0.0'\n  \
         provider: 'acme'\n  repositoryContexts: []\n  sources: []\n  resources: []\n  componentReferences: []\n",
    )
    .unwrap();
    odg_push(&repository, &[path]).await;
    let odg = OdgServer::start(&["--ocm-repo", &repository]).await;
    let ours = odg
        .get_ok(
            "/ocm/component",
            &[("component_name", "acme.org/probe/context")],
        )
        .await;
    let library = python
        .query(
            &repository,
            &[Query::read("acme.org/probe/context", "1.0.0")],
        )
        .await
        .remove(0);
    // Before the fix: odg [http://127.0.0.1:PORT/ocm]; library [http://..., 127.0.0.1:PORT/ocm].
    assert_eq!(repository_contexts(&library), repository_contexts(&ours));
}
