//! What both interop tests check the same way, whoever wrote the registry: the library's reads of
//! every component version and version list in one interpreter, and odg's trees and version lists
//! against them.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::fixtures::{library_tree, odg_tree, versions_of, DescriptorSet, COMPONENTS};
use crate::harness::OdgServer;
use crate::python::{PythonLibrary, Query};

/// What the reference library reads from a repository holding `set`.
pub struct LibraryReads {
    /// Per component version of the set, in its order: the descriptor and its dependency tree.
    pub component_versions: Vec<(Value, Value)>,
    /// Per component of [`COMPONENTS`], in its order: the version list.
    pub versions: Vec<Value>,
}

/// Everything the library can tell about `repository`, in one interpreter.
pub async fn read_with_library(
    python: &PythonLibrary,
    repository: &str,
    set: &DescriptorSet,
) -> LibraryReads {
    let mut queries = Vec::new();
    for (name, version) in &set.component_versions {
        queries.push(Query::read(name, version));
        queries.push(Query::dependencies(name, version));
    }
    for name in COMPONENTS {
        queries.push(Query::versions(name));
    }
    let mut answers = python.query(repository, &queries).await.into_iter();
    let component_versions = set
        .component_versions
        .iter()
        .map(|_| (answers.next().unwrap(), answers.next().unwrap()))
        .collect();
    let versions = answers.collect();
    LibraryReads {
        component_versions,
        versions,
    }
}

/// `/ocm/component/dependencies`: same nodes as the library's tree, same depth-first order,
/// duplicates included.
pub async fn check_dependencies(
    odg: &OdgServer,
    (name, version): (&str, &str),
    library_dependencies: &Value,
    what: &str,
) {
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
        library_tree(library_dependencies),
        "/ocm/component/dependencies {what}: (name, version, path) sequences differ"
    );
}

/// [`check_versions`] for every component of the set.
pub async fn check_every_version_list(
    odg: &OdgServer,
    set: &DescriptorSet,
    library: &LibraryReads,
) {
    for (name, library_versions) in COMPONENTS.iter().zip(&library.versions) {
        check_versions(odg, name, library_versions, &versions_of(set, name)).await;
    }
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
