//! The descriptor set both interoperability tests upload, and the comparisons they share.
//!
//! The landscape (10 component versions of 5 components):
//!
//! ```text
//! landscape 1.0.0 ──frontend──> frontend 2.1.0+build.7 ──base──> base 1.4.0
//!                 ──backend───> backend v3.0.0 ─────────base──> base 1.4.0   (shared, 2 paths)
//!                 ──label─────> tooling 0.1.0       (extra-component-references label)
//! frontend 2.0.0, backend v2.9.0, base 1.3.0 / 1.10.0 / 2.0.0-rc.1: further versions, no edges
//! ```
//!
//! Deliberately included: a `+` version (stored under a `.build-` tag), `v`-prefixed versions, a
//! pre-release that is the greatest version, `1.10.0` after `1.4.0` (numeric, not textual order),
//! an unknown access type with nested values, unknown fields at top level and in `component`, a map
//! provider, labels with structured values, a GitHub source.
//!
//! Deliberately avoided, because the library **normalises** them on parse and the comparison would
//! test the library rather than odg: alias types (`blob` becomes `blob/v1`, `ociArtifact` becomes
//! `ociRegistry`), omitted fields with library defaults (`localBlob` gains
//! `mediaType: application/data`, sources gain `type: git`). Every version and timestamp is quoted:
//! the library parses files with PyYAML (YAML 1.1), which turns unquoted timestamps into `datetime`s
//! its model refuses.

use std::path::{Path, PathBuf};

use serde_json::{json, Map, Value};

pub const ROOT_NAME: &str = "acme.org/interop/landscape";
pub const ROOT_VERSION: &str = "1.0.0";

const LANDSCAPE: &str = r#"meta:
  schemaVersion: 'v2'
component:
  name: 'acme.org/interop/landscape'
  version: '1.0.0'
  provider: 'acme'
  creationTime: '2026-03-01T10:00:00Z'
  repositoryContexts: []
  labels:
  - name: 'acme.org/team'
    value: {owner: 'platform', oncall: ['alice', 'bob'], tier: 1}
  - name: 'ocm.software/ocm-gear/extra-component-references'
    value:
    - component_reference: {name: 'acme.org/interop/tooling', version: '0.1.0'}
      purpose: ['lint']
  sources:
  - name: 'landscape-src'
    version: '1.0.0'
    type: 'git'
    access: {type: 'github', repoUrl: 'github.com/acme/landscape', ref: 'refs/tags/1.0.0', commit: 'a1b2c3d4'}
  resources: []
  componentReferences:
  - name: 'frontend'
    componentName: 'acme.org/interop/frontend'
    version: '2.1.0+build.7'
    extraIdentity: {}
  - name: 'backend'
    componentName: 'acme.org/interop/backend'
    version: 'v3.0.0'
    extraIdentity: {}
  futureComponentField: {stage: 'beta'}
futureTopLevelField: {introducedIn: 'v3', flags: [1, 2]}
signatures: []
"#;

const FRONTEND_2_1: &str = r#"meta:
  schemaVersion: 'v2'
component:
  name: 'acme.org/interop/frontend'
  version: '2.1.0+build.7'
  provider: {name: 'acme', labels: []}
  creationTime: '2026-02-20T08:30:00Z'
  repositoryContexts: []
  sources: []
  resources:
  - name: 'web'
    version: '2.1.0+build.7'
    type: 'ociImage'
    relation: 'external'
    access: {type: 'ociRegistry', imageReference: 'registry.acme.org/web:2.1.0'}
    extraIdentity: {platform: 'linux-amd64'}
  componentReferences:
  - name: 'base'
    componentName: 'acme.org/interop/base'
    version: '1.4.0'
    extraIdentity: {}
"#;

const FRONTEND_2_0: &str = r#"meta:
  schemaVersion: 'v2'
component:
  name: 'acme.org/interop/frontend'
  version: '2.0.0'
  provider: 'acme'
  creationTime: '2026-02-01T08:30:00Z'
  repositoryContexts: []
  sources: []
  resources: []
  componentReferences: []
"#;

const BACKEND_3: &str = r#"meta:
  schemaVersion: 'v2'
component:
  name: 'acme.org/interop/backend'
  version: 'v3.0.0'
  provider: 'acme'
  creationTime: '2026-02-21T09:00:00Z'
  repositoryContexts: []
  sources: []
  resources:
  - name: 'api'
    version: 'v3.0.0'
    type: 'ociImage'
    relation: 'external'
    access: {type: 'ociRegistry', imageReference: 'registry.acme.org/api:v3.0.0'}
  - name: 'model'
    version: 'v3.0.0'
    type: 'acme.org/model'
    relation: 'local'
    access: {type: 'acme.org/vaultBlob/v2', location: 'vault://models/api', options: {retries: 3, mirrors: ['eu', 'us']}}
  componentReferences:
  - name: 'base'
    componentName: 'acme.org/interop/base'
    version: '1.4.0'
    extraIdentity: {}
"#;

const BACKEND_2_9: &str = r#"meta:
  schemaVersion: 'v2'
component:
  name: 'acme.org/interop/backend'
  version: 'v2.9.0'
  provider: 'acme'
  creationTime: '2026-01-21T09:00:00Z'
  repositoryContexts: []
  sources: []
  resources: []
  componentReferences: []
"#;

const TOOLING: &str = r#"meta:
  schemaVersion: 'v2'
component:
  name: 'acme.org/interop/tooling'
  version: '0.1.0'
  provider: 'acme'
  creationTime: '2026-01-02T00:00:00Z'
  repositoryContexts: []
  sources: []
  resources: []
  componentReferences: []
"#;

/// `@VERSION@` is replaced per version.
const BASE: &str = r#"meta:
  schemaVersion: 'v2'
component:
  name: 'acme.org/interop/base'
  version: '@VERSION@'
  provider: 'acme'
  creationTime: '2026-01-15T00:00:00Z'
  repositoryContexts: []
  sources: []
  resources:
  - name: 'base-image'
    version: '@VERSION@'
    type: 'ociImage'
    relation: 'external'
    access: {type: 'ociRegistry', imageReference: 'registry.acme.org/base:@VERSION@'}
  componentReferences: []
"#;

const BASE_VERSIONS: [&str; 4] = ["1.3.0", "1.4.0", "1.10.0", "2.0.0-rc.1"];

/// The component names of the set, each once.
pub const COMPONENTS: [&str; 5] = [
    "acme.org/interop/landscape",
    "acme.org/interop/frontend",
    "acme.org/interop/backend",
    "acme.org/interop/base",
    "acme.org/interop/tooling",
];

/// Whether the files carry `creationTime`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CreationTimes {
    Keep,
    /// Drop every `creationTime` line (see `interop_odg_pushed` for why).
    Drop,
}

/// The written files and the (name, version) each holds, in the same order.
pub struct DescriptorSet {
    pub files: Vec<PathBuf>,
    pub component_versions: Vec<(String, String)>,
}

/// A descriptor with nothing but its identity, written into `directory`; its path.
pub fn minimal_descriptor(directory: &Path, name: &str, version: &str) -> PathBuf {
    let path = directory.join(format!("{}-{version}.yaml", name.replace('/', "_")));
    std::fs::write(
        &path,
        format!(
            "meta:\n  schemaVersion: 'v2'\ncomponent:\n  name: '{name}'\n  version: '{version}'\n  \
             provider: 'acme'\n  repositoryContexts: []\n  sources: []\n  resources: []\n  \
             componentReferences: []\n"
        ),
    )
    .unwrap();
    path
}

/// Writes the set into `directory`, one YAML file per component version.
pub fn write_descriptor_set(directory: &Path, creation_times: CreationTimes) -> DescriptorSet {
    let mut documents: Vec<String> = vec![
        LANDSCAPE.into(),
        FRONTEND_2_0.into(),
        FRONTEND_2_1.into(),
        BACKEND_2_9.into(),
        BACKEND_3.into(),
        TOOLING.into(),
    ];
    documents.extend(
        BASE_VERSIONS
            .iter()
            .map(|version| BASE.replace("@VERSION@", version)),
    );
    let mut set = DescriptorSet {
        files: Vec::new(),
        component_versions: Vec::new(),
    };
    for (index, document) in documents.iter().enumerate() {
        let document: String = document
            .lines()
            .filter(|line| {
                creation_times == CreationTimes::Keep
                    || !line.trim_start().starts_with("creationTime:")
            })
            .map(|line| format!("{line}\n"))
            .collect();
        let parsed = parse_yaml(&document);
        let name = parsed["component"]["name"].as_str().unwrap().to_owned();
        let version = parsed["component"]["version"].as_str().unwrap().to_owned();
        let path = directory.join(format!("{index:02}-{}.yaml", name.replace('/', "_")));
        std::fs::write(&path, document).expect("write a descriptor file");
        set.files.push(path);
        set.component_versions.push((name, version));
    }
    set
}

/// A YAML document as JSON.
pub fn parse_yaml(text: &str) -> Value {
    serde_yaml_ng::from_str(text).expect("fixture YAML parses")
}

/// The versions the set holds of `name`, in file order.
pub fn versions_of(set: &DescriptorSet, name: &str) -> Vec<String> {
    set.component_versions
        .iter()
        .filter(|(n, _)| n == name)
        .map(|(_, v)| v.clone())
        .collect()
}

/// The fields of a descriptor that **both** sides keep, in a comparable shape.
///
/// Why an intersection and not the whole document: the Python library parses into dataclasses,
/// so it drops every field its model does not know (unknown top-level and component fields,
/// `componentNameMapping` in repository contexts) and adds every field it knows with its default
/// (`digest: null`, `srcRefs: []`, `signing: false`, `nestedDigests: []`, ...). odg keeps unknown
/// fields (its tolerance promise) and does not invent fields it did not read. What must agree is
/// the content a client acts on: identity, provider, creation time, labels (name and value),
/// sources, resources (name, version, type, relation, access incl. unknown access types, extra
/// identity), component references and signatures. Repository contexts are compared by each test
/// separately, because the library rewrites them on read (it appends the repository it read from
/// unless that is already the last entry).
pub fn library_view(descriptor: &Value) -> Value {
    let component = &descriptor["component"];
    let list = |value: &Value| -> Vec<Value> { value.as_array().cloned().unwrap_or_default() };
    let pick = |item: &Value, keys: &[&str]| -> Value {
        let mut picked = Map::new();
        for key in keys {
            let value = match (*key, item.get(*key)) {
                // `null` and `{}` both mean "no extra identity".
                ("extraIdentity", None | Some(Value::Null)) => json!({}),
                (_, value) => value.cloned().unwrap_or(Value::Null),
            };
            picked.insert((*key).to_owned(), value);
        }
        Value::Object(picked)
    };
    json!({
        "meta": {"schemaVersion": descriptor["meta"]["schemaVersion"]},
        "component": {
            "name": component["name"],
            "version": component["version"],
            "provider": component["provider"],
            "creationTime": component.get("creationTime").cloned().unwrap_or(Value::Null),
            "labels": list(&component["labels"]).iter().map(|l| pick(l, &["name", "value"])).collect::<Vec<_>>(),
            "sources": list(&component["sources"]).iter()
                .map(|s| pick(s, &["name", "version", "type", "access", "extraIdentity"])).collect::<Vec<_>>(),
            "resources": list(&component["resources"]).iter()
                .map(|r| pick(r, &["name", "version", "type", "relation", "access", "extraIdentity"])).collect::<Vec<_>>(),
            "componentReferences": list(&component["componentReferences"]).iter()
                .map(|r| pick(r, &["name", "componentName", "version", "extraIdentity"])).collect::<Vec<_>>(),
        },
        "signatures": list(&descriptor["signatures"]),
    })
}

/// `(type, baseUrl, subPath)` of each repository context: the fields the library models.
pub fn repository_contexts(descriptor: &Value) -> Vec<(Value, Value, Value)> {
    descriptor["component"]["repositoryContexts"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|context| {
            let field = |key: &str| context.get(key).cloned().unwrap_or(Value::Null);
            (field("type"), field("baseUrl"), field("subPath"))
        })
        .collect()
}

/// One element of a dependency answer: the component and its path from the root (root first).
pub type TreeNode = (String, String, Vec<(String, String)>);

/// `(name, version, path)` per element of odg's `componentDependencies` (populate=componentReferences).
pub fn odg_tree(body: &Value) -> Vec<TreeNode> {
    let text = |value: &Value| value.as_str().expect("a string").to_owned();
    body["componentDependencies"]
        .as_array()
        .unwrap_or_else(|| panic!("no componentDependencies: {body}"))
        .iter()
        .map(|element| {
            let path = element["comp_ref"]
                .as_array()
                .expect("comp_ref is a list")
                .iter()
                .map(|entry| (text(&entry["name"]), text(&entry["version"])))
                .collect();
            (text(&element["name"]), text(&element["version"]), path)
        })
        .collect()
}

/// `(name, version, path)` per node of `ocm_interop.py dependencies`.
pub fn library_tree(body: &Value) -> Vec<TreeNode> {
    let text = |value: &Value| value.as_str().expect("a string").to_owned();
    body.as_array()
        .unwrap_or_else(|| panic!("dependencies is not a list: {body}"))
        .iter()
        .map(|node| {
            let path = node["path"]
                .as_array()
                .expect("path is a list")
                .iter()
                .map(|entry| (text(&entry[0]), text(&entry[1])))
                .collect();
            (text(&node["name"]), text(&node["version"]), path)
        })
        .collect()
}

/// `assert_eq!` for JSON with both sides pretty-printed.
#[track_caller]
pub fn assert_json_eq(odg: &Value, library: &Value, context: &str) {
    if odg != library {
        panic!(
            "{context}: odg and the Python library disagree\n--- odg ---\n{}\n--- library ---\n{}",
            serde_json::to_string_pretty(odg).unwrap(),
            serde_json::to_string_pretty(library).unwrap()
        );
    }
}
