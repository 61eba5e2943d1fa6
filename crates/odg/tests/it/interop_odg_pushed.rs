//! Interop B: `odg push` writes, the reference library reads. The library must see the descriptors
//! and trees `odg serve` answers, which proves odg's artefacts are readable by other OCM clients;
//! and pushing twice must change nothing.

use odg_test_support::{sha256_digest, RegistryServer};
use serde_json::Value;

use crate::fixtures::{
    assert_json_eq, library_view, parse_yaml, repository_contexts, write_descriptor_set,
    CreationTimes, ROOT_NAME, ROOT_VERSION,
};
use crate::harness::{http_client, odg_push, OdgServer};
use crate::interop_checks::{check_dependencies, check_every_version_list, read_with_library};
use crate::python::PythonLibrary;

#[tokio::test]
async fn the_python_library_reads_what_odg_pushed() {
    let python = PythonLibrary::locate();
    let registry = RegistryServer::start().await;
    let repository = format!("{}/pushed", registry.url());
    let files = tempfile::tempdir().unwrap();
    // Without `creationTime`: odg writes it as a plain YAML scalar, which the library's YAML 1.1
    // parser turns into a datetime and then refuses; see
    // `known_discrepancies::odg_push_writes_yaml_the_python_library_can_read`.
    let set = write_descriptor_set(files.path(), CreationTimes::Drop);

    let first = odg_push(&repository, &set.files).await;
    let second = odg_push(&repository, &set.files).await;
    assert_eq!(
        first, second,
        "pushing the same files twice must be idempotent"
    );
    let http = http_client();
    for pushed in &first {
        // The printed digest is the registry's: the hash of the manifest bytes behind the tag.
        let (path, tag) = pushed.reference.rsplit_once(':').unwrap();
        let manifest = http
            .get(format!("{}/v2/{path}/manifests/{tag}", registry.url()))
            .header("Accept", "application/vnd.oci.image.manifest.v1+json")
            .send()
            .await
            .unwrap();
        assert!(
            manifest.status().is_success(),
            "{pushed:?}: {}",
            manifest.status()
        );
        let bytes = manifest.bytes().await.unwrap();
        assert_eq!(sha256_digest(&bytes), pushed.manifest_digest, "{pushed:?}");
    }
    assert!(first.iter().any(|p| p
        .reference
        .ends_with("/acme.org/interop/frontend:2.1.0.build-build.7")));

    let odg = OdgServer::start(&["--ocm-repo", &repository]).await;
    let library = read_with_library(&python, &repository, &set).await;

    let mut library_root = Value::Null;
    for (((name, version), file), (library_read, library_dependencies)) in set
        .component_versions
        .iter()
        .zip(&set.files)
        .zip(&library.component_versions)
    {
        let what = format!("{name}:{version}");
        let input = parse_yaml(&std::fs::read_to_string(file).unwrap());
        if name == ROOT_NAME && version == ROOT_VERSION {
            library_root = library_read.clone();
        }

        let ours = odg
            .get_ok(
                "/ocm/component",
                &[("component_name", name), ("version", version)],
            )
            .await;
        // odg stored what the file said ...
        assert_json_eq(
            &library_view(&ours),
            &library_view(&input),
            &format!("{what}: odg serves something else than was pushed"),
        );
        // ... and the library reads the same from the registry.
        assert_json_eq(
            &library_view(&ours),
            &library_view(library_read),
            &format!("/ocm/component {what}"),
        );
        // odg push adds the target repository as the current context. The library appends the
        // repository it read from unless it is already the last entry, so its list must start with ours.
        let ours_contexts = repository_contexts(&ours);
        let library_contexts = repository_contexts(library_read);
        assert_eq!(ours_contexts.len(), 1, "{what}: {ours_contexts:?}");
        assert!(
            library_contexts.starts_with(&ours_contexts) && library_contexts.len() <= 2,
            "{what}: odg {ours_contexts:?}, library {library_contexts:?}"
        );

        check_dependencies(&odg, (name, version), library_dependencies, &what).await;
    }
    check_every_version_list(&odg, &set, &library).await;

    // Why the comparison is an intersection: odg keeps what it does not model, the library drops it.
    let ours = odg
        .get_ok(
            "/ocm/component",
            &[("component_name", ROOT_NAME), ("version", ROOT_VERSION)],
        )
        .await;
    assert_eq!(
        ours["futureTopLevelField"]["flags"],
        serde_json::json!([1, 2])
    );
    assert_eq!(ours["component"]["futureComponentField"]["stage"], "beta");
    assert_eq!(library_root["component"]["name"], ROOT_NAME);
    assert_eq!(library_root.get("futureTopLevelField"), None::<&Value>);
    assert_eq!(library_root["component"].get("futureComponentField"), None);
    // The unknown access type reaches the library intact (covered above, spelled out here).
    let backend = odg
        .get_ok(
            "/ocm/component",
            &[
                ("component_name", "acme.org/interop/backend"),
                ("version", "v3.0.0"),
            ],
        )
        .await;
    assert_eq!(
        backend["component"]["resources"][1]["access"],
        serde_json::json!({"type": "acme.org/vaultBlob/v2", "location": "vault://models/api",
                           "options": {"retries": 3, "mirrors": ["eu", "us"]}})
    );
}
