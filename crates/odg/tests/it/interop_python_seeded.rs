//! Interop A: the reference library writes, `odg serve` reads. What odg answers for every component
//! version, version list and tree must be what the library itself reads back from the same registry.

use std::collections::BTreeSet;

use odg_test_support::RegistryServer;
use serde_json::Value;

use crate::fixtures::{
    assert_json_eq, library_tree, library_view, odg_tree, repository_contexts, versions_of,
    write_descriptor_set, CreationTimes, COMPONENTS, ROOT_NAME, ROOT_VERSION,
};
use crate::harness::OdgServer;
use crate::python::{PythonLibrary, Query};

#[tokio::test]
async fn odg_serves_what_the_python_library_uploaded() {
    let python = PythonLibrary::locate();
    let registry = RegistryServer::start().await;
    let repository = format!("{}/ocm", registry.url());
    let files = tempfile::tempdir().unwrap();
    let set = write_descriptor_set(files.path(), CreationTimes::Keep);

    let uploaded = python.upload(&repository, &set.files).await;
    assert_eq!(uploaded.len(), set.files.len());
    for entry in &uploaded {
        assert_eq!(entry["skipped"], false, "fresh registry: {entry}");
    }
    // The library stores `+` as `.build-` in the tag, as the OCM spec says.
    assert!(uploaded
        .iter()
        .any(|entry| entry["version"] == "2.1.0+build.7" && entry["tag"] == "2.1.0.build-build.7"));

    let odg = OdgServer::start(&["--ocm-repo", &repository]).await;

    // Everything the library can tell about the repository, in one interpreter.
    let mut queries = Vec::new();
    for (name, version) in &set.component_versions {
        queries.push(Query::read(name, version));
        queries.push(Query::dependencies(name, version));
    }
    for name in COMPONENTS {
        queries.push(Query::versions(name));
    }
    let answers = python.query(&repository, &queries).await;
    let mut answers = answers.into_iter();

    for (name, version) in &set.component_versions {
        let library_read = answers.next().unwrap();
        let library_dependencies = answers.next().unwrap();
        let what = format!("{name}:{version}");

        // /ocm/component
        let ours = odg
            .get_ok(
                "/ocm/component",
                &[("component_name", name), ("version", version)],
            )
            .await;
        assert_json_eq(
            &library_view(&ours),
            &library_view(&library_read),
            &format!("/ocm/component {what}"),
        );
        // The library wrote the repository context and reads it back unchanged; odg serves it as stored.
        assert_eq!(
            repository_contexts(&ours),
            repository_contexts(&library_read),
            "{what}: repositoryContexts"
        );
        // Stronger, and true here: the stored document was written by the library, so it holds
        // exactly the fields the library models (unknown ones were dropped before upload, defaults
        // were written out); odg must serve that document unchanged, field for field.
        assert_json_eq(
            &ours,
            &library_read,
            &format!("/ocm/component {what} (whole)"),
        );

        // /ocm/component/dependencies: same nodes, same depth-first order, duplicates included.
        let ours = odg
            .get_ok(
                "/ocm/component/dependencies",
                &[
                    ("component_name", name),
                    ("version", version),
                    ("populate", "componentReferences"),
                ],
            )
            .await;
        assert_eq!(
            odg_tree(&ours),
            library_tree(&library_dependencies),
            "/ocm/component/dependencies {what}: (name, version, path) sequences differ"
        );
    }

    for name in COMPONENTS {
        let library_versions = answers.next().unwrap();
        check_versions(&odg, name, &library_versions, &versions_of(&set, name)).await;
    }

    // The root's tree, spelled out once, so that a reader sees what the comparison covered.
    let root = odg
        .get_ok(
            "/ocm/component/dependencies",
            &[
                ("component_name", ROOT_NAME),
                ("version", ROOT_VERSION),
                ("populate", "componentReferences"),
            ],
        )
        .await;
    let order: Vec<String> = odg_tree(&root)
        .into_iter()
        .map(|(name, version, path)| format!("{}{name}:{version}", "  ".repeat(path.len() - 1)))
        .collect();
    assert_eq!(
        order,
        [
            "acme.org/interop/landscape:1.0.0",
            "  acme.org/interop/frontend:2.1.0+build.7",
            "    acme.org/interop/base:1.4.0",
            "  acme.org/interop/backend:v3.0.0",
            "    acme.org/interop/base:1.4.0",
            "  acme.org/interop/tooling:0.1.0",
        ]
    );
}

/// `/ocm/component/versions?max=0` is the library's version list as a set, and both agree on the
/// greatest version (with and without pre-releases) and on what `version=greatest` resolves to.
/// Both must also list exactly the versions that were uploaded (`uploaded`).
pub async fn check_versions(odg: &OdgServer, name: &str, library: &Value, uploaded: &[String]) {
    let strings = |value: &Value| -> Vec<String> {
        value
            .as_array()
            .unwrap_or_else(|| panic!("{name}: not a list: {value}"))
            .iter()
            .map(|v| v.as_str().expect("a version string").to_owned())
            .collect()
    };
    let ours = strings(
        &odg.get_ok(
            "/ocm/component/versions",
            &[("component_name", name), ("max", "0")],
        )
        .await,
    );
    let library_all: BTreeSet<String> = strings(&library["versions"])
        .into_iter()
        .chain(strings(&library["unparsable"]))
        .collect();
    assert_eq!(
        ours.iter().cloned().collect::<BTreeSet<_>>(),
        library_all,
        "{name}: version sets differ"
    );
    assert_eq!(
        ours.len(),
        library_all.len(),
        "{name}: duplicates in {ours:?}"
    );
    assert_eq!(
        library_all,
        uploaded.iter().cloned().collect::<BTreeSet<_>>(),
        "{name}: not the uploaded versions"
    );
    // Both order parsable versions by semver precedence.
    assert_eq!(ours, strings(&library["versions"]), "{name}: version order");

    let greatest = library["greatest"].as_str().expect("a greatest version");
    assert_eq!(
        ours.last().map(String::as_str),
        Some(greatest),
        "{name}: greatest"
    );
    let resolved = odg
        .get_ok("/ocm/component", &[("component_name", name)])
        .await;
    assert_eq!(
        resolved["component"]["version"], greatest,
        "{name}: version=greatest resolves differently"
    );
    let releases = odg
        .get_ok(
            "/ocm/component/versions",
            &[
                ("component_name", name),
                ("version_filter", "semver_releases"),
                ("max", "1"),
            ],
        )
        .await;
    assert_eq!(
        releases
            .as_array()
            .and_then(|r| r.last())
            .cloned()
            .unwrap_or(Value::Null),
        library["greatestRelease"],
        "{name}: greatest release"
    );
}
