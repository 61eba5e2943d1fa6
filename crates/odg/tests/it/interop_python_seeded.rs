//! Interop A: the reference library writes, `odg serve` reads. What odg answers for every component
//! version, version list and tree must be what the library itself reads back from the same registry.

use odg_test_support::RegistryServer;

use crate::fixtures::{
    assert_json_eq, library_view, odg_tree, repository_contexts, write_descriptor_set,
    CreationTimes, ROOT_NAME, ROOT_VERSION,
};
use crate::harness::OdgServer;
use crate::interop_checks::{check_dependencies, check_every_version_list, read_with_library};
use crate::python::PythonLibrary;

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

    let library = read_with_library(&python, &repository, &set).await;
    for ((name, version), (library_read, library_dependencies)) in set
        .component_versions
        .iter()
        .zip(&library.component_versions)
    {
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
            &library_view(library_read),
            &format!("/ocm/component {what}"),
        );
        // The library wrote the repository context and reads it back unchanged; odg serves it as stored.
        assert_eq!(
            repository_contexts(&ours),
            repository_contexts(library_read),
            "{what}: repositoryContexts"
        );
        // Stronger, and true here: the stored document was written by the library, so it holds
        // exactly the fields the library models (unknown ones were dropped before upload, defaults
        // were written out); odg must serve that document unchanged, field for field.
        assert_json_eq(
            &ours,
            library_read,
            &format!("/ocm/component {what} (whole)"),
        );

        check_dependencies(&odg, (name, version), library_dependencies, &what).await;
    }
    check_every_version_list(&odg, &set, &library).await;

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
