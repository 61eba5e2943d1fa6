//! The tolerant serde model of an OCM component descriptor, schema v2.
//!
//! Tolerance rules, all deliberate:
//! - every struct keeps the fields it does not know in a flattened `extra` map, so they survive a
//!   round trip through JSON and YAML (the Python writer adds fields we never model, e.g. `nestedDigests`);
//! - `null` where a list or map is expected means empty, because the Python writer emits `null` for unset fields;
//! - `access`, `provider` and label values are kept as raw JSON values, so unknown access types survive;
//! - versions written as bare YAML numbers (`version: 1.0`) are accepted and kept as their string form.
//!
//! Serialisation uses the camelCase wire names and writes `null` for unset optional fields, as the Python
//! writer does, so that our JSON answers look like the original service's.

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

/// `Component::dependency_edges` lives in `dependencies.rs`; its edge type is part of this model too.
pub use crate::dependencies::DependencyEdge;

/// A whole component descriptor document: `{meta, component, signatures, ...}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ComponentDescriptor {
    pub meta: Meta,
    pub component: Component,
    /// Kept opaque: this service never verifies signatures, it only passes them on.
    #[serde(default, deserialize_with = "null_as_default")]
    pub signatures: Vec<Value>,
    /// Unknown top-level fields, e.g. `nestedDigests`.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl ComponentDescriptor {
    /// The repository context the descriptor was last stored in: by OCM convention the **last** entry.
    pub fn current_repository_context(&self) -> Option<&RepositoryContext> {
        self.component.repository_contexts.last()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Meta {
    /// `v2` for every descriptor this model is meant for; not checked, so that a reader can still try.
    #[serde(rename = "schemaVersion")]
    pub schema_version: String,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Component {
    /// The component name with its original case; OCI repository paths use it lower-cased.
    pub name: String,
    /// The version exactly as written (relaxed semver at best, arbitrary text at worst).
    #[serde(deserialize_with = "lenient_string")]
    pub version: String,
    /// A plain string or an object such as `{name: ...}`; kept as is.
    #[serde(default)]
    pub provider: Value,
    #[serde(rename = "creationTime", default)]
    pub creation_time: Option<String>,
    /// Where the descriptor has been stored, oldest first; the last entry is the current one.
    #[serde(
        rename = "repositoryContexts",
        default,
        deserialize_with = "null_as_default"
    )]
    pub repository_contexts: Vec<RepositoryContext>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub labels: Vec<Label>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub sources: Vec<Artefact>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub resources: Vec<Artefact>,
    #[serde(
        rename = "componentReferences",
        default,
        deserialize_with = "null_as_default"
    )]
    pub component_references: Vec<ComponentReference>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Component {
    /// The first label with this name, as the Python library's `find_label` does.
    pub fn find_label(&self, name: &str) -> Option<&Label> {
        self.labels.iter().find(|label| label.name == name)
    }
}

/// One entry of `component.repositoryContexts`, e.g. `{type: ociRegistry, baseUrl: registry.example.com/ocm}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RepositoryContext {
    /// `ociRegistry` or `OCIRegistry` in practice.
    #[serde(rename = "type")]
    pub context_type: String,
    #[serde(rename = "baseUrl", default)]
    pub base_url: Option<String>,
    #[serde(rename = "subPath", default)]
    pub sub_path: Option<String>,
    /// e.g. `componentNameMapping: urlPath`.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A dependency edge declared in `component.componentReferences`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ComponentReference {
    /// The local name of the reference inside the referencing component.
    pub name: String,
    /// The referenced component.
    #[serde(rename = "componentName")]
    pub component_name: String,
    #[serde(deserialize_with = "lenient_string")]
    pub version: String,
    #[serde(
        rename = "extraIdentity",
        default,
        deserialize_with = "null_as_default"
    )]
    pub extra_identity: Map<String, Value>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub labels: Vec<Label>,
    /// e.g. `digest`.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Label {
    pub name: String,
    /// Any JSON value; a missing value reads as `null`.
    #[serde(default)]
    pub value: Value,
    /// e.g. `version`, `signing`.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A resource or a source: both share this shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Artefact {
    pub name: String,
    #[serde(default, deserialize_with = "lenient_optional_string")]
    pub version: Option<String>,
    #[serde(rename = "type", default)]
    pub artefact_type: Option<String>,
    /// Kept raw so that access types this crate has never heard of survive unchanged.
    #[serde(default)]
    pub access: Value,
    #[serde(default, deserialize_with = "null_as_default")]
    pub labels: Vec<Label>,
    #[serde(
        rename = "extraIdentity",
        default,
        deserialize_with = "null_as_default"
    )]
    pub extra_identity: Map<String, Value>,
    /// e.g. `relation`, `digest`, `srcRefs`.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `null` reads as the empty value, because the Python writer emits `null` for every unset list and map.
fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

/// A string, or a number or boolean kept in its textual form: unquoted YAML turns `version: 1.0` into a float.
fn lenient_string<'de, D>(deserializer: D) -> Result<String, D::Error>
where
    D: Deserializer<'de>,
{
    match Value::deserialize(deserializer)? {
        Value::String(text) => Ok(text),
        Value::Number(number) => Ok(number.to_string()),
        Value::Bool(flag) => Ok(flag.to_string()),
        other => Err(serde::de::Error::custom(format!(
            "expected a string, found {}",
            json_type_name(&other)
        ))),
    }
}

fn lenient_optional_string<'de, D>(deserializer: D) -> Result<Option<String>, D::Error>
where
    D: Deserializer<'de>,
{
    match Value::deserialize(deserializer)? {
        Value::Null => Ok(None),
        Value::String(text) => Ok(Some(text)),
        Value::Number(number) => Ok(Some(number.to_string())),
        Value::Bool(flag) => Ok(Some(flag.to_string())),
        other => Err(serde::de::Error::custom(format!(
            "expected a string, found {}",
            json_type_name(&other)
        ))),
    }
}

fn json_type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a map",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const DESCRIPTOR_WITH_UNKNOWNS: &str = r#"
meta:
  schemaVersion: v2
  futureMetaField: 7
component:
  name: example.com/demo/App
  version: 1.0.0
  provider: {name: example-provider, labels: []}
  creationTime: '2026-01-01T00:00:00Z'
  repositoryContexts:
  - {type: ociRegistry, baseUrl: old.example.com/ocm, componentNameMapping: urlPath}
  - {type: OCIRegistry, baseUrl: registry.example.com, subPath: ocm}
  labels:
  - {name: some-label, value: {nested: [1, 2.5, true, null]}, version: v1, signing: true}
  sources:
  - name: src
    version: 1.0.0
    type: git
    access: {type: gitHub, repoUrl: github.com/example/app, commit: abc}
    labels: null
  resources:
  - name: app-image
    version: 1.0.0
    type: ociImage
    relation: external
    access: {type: someFutureAccess/v7, whatever: {deeply: [nested]}}
    digest: {hashAlgorithm: SHA-256, value: abc}
    extraIdentity: {platform: linux}
    srcRefs: []
  componentReferences:
  - {name: lib, componentName: example.com/demo/lib, version: 0.3.1, extraIdentity: null, labels: null,
     digest: {value: x}}
  futureComponentField: {a: b}
signatures: null
nestedDigests: []
"#;

    fn parse_yaml(text: &str) -> ComponentDescriptor {
        serde_yaml_ng::from_str(text).expect("descriptor parses")
    }

    #[test]
    fn unknown_fields_and_access_types_survive_a_json_round_trip() {
        let descriptor = parse_yaml(DESCRIPTOR_WITH_UNKNOWNS);
        let json_text = serde_json::to_string(&descriptor).unwrap();
        let reparsed: ComponentDescriptor = serde_json::from_str(&json_text).unwrap();
        assert_eq!(reparsed, descriptor);

        let as_value: Value = serde_json::from_str(&json_text).unwrap();
        assert_eq!(as_value["nestedDigests"], json!([]));
        assert_eq!(as_value["meta"]["futureMetaField"], json!(7));
        assert_eq!(
            as_value["component"]["futureComponentField"],
            json!({"a": "b"})
        );
        assert_eq!(
            as_value["component"]["resources"][0]["access"],
            json!({"type": "someFutureAccess/v7", "whatever": {"deeply": ["nested"]}})
        );
        assert_eq!(
            as_value["component"]["resources"][0]["relation"],
            json!("external")
        );
        assert_eq!(
            as_value["component"]["componentReferences"][0]["digest"],
            json!({"value": "x"})
        );
        assert_eq!(as_value["component"]["labels"][0]["signing"], json!(true));
        assert_eq!(
            as_value["component"]["repositoryContexts"][0]["componentNameMapping"],
            json!("urlPath")
        );
    }

    #[test]
    fn unknown_fields_survive_a_yaml_round_trip() {
        let descriptor = parse_yaml(DESCRIPTOR_WITH_UNKNOWNS);
        let yaml_text = serde_yaml_ng::to_string(&descriptor).unwrap();
        assert_eq!(parse_yaml(&yaml_text), descriptor);
        assert!(yaml_text.contains("someFutureAccess/v7"));
        assert!(yaml_text.contains("futureComponentField"));
    }

    #[test]
    fn null_lists_and_maps_read_as_empty() {
        let descriptor = parse_yaml(DESCRIPTOR_WITH_UNKNOWNS);
        assert!(descriptor.signatures.is_empty());
        assert!(descriptor.component.sources[0].labels.is_empty());
        let reference = &descriptor.component.component_references[0];
        assert!(reference.extra_identity.is_empty());
        assert!(reference.labels.is_empty());

        let minimal = parse_yaml(
            "meta: {schemaVersion: v2}\ncomponent: {name: a.b/c, version: '1', repositoryContexts: null, \
             labels: null, sources: null, resources: null, componentReferences: null}\n",
        );
        assert!(minimal.component.repository_contexts.is_empty());
        assert!(minimal.component.resources.is_empty());
        assert!(minimal.component.component_references.is_empty());
        assert_eq!(minimal.component.provider, Value::Null);
        assert_eq!(minimal.component.creation_time, None);
    }

    #[test]
    fn serialisation_uses_camel_case_wire_names_and_writes_null_for_unset_fields() {
        let descriptor = parse_yaml(
            "meta: {schemaVersion: v2}\ncomponent: {name: a.b/c, version: '1', \
             resources: [{name: r, access: {type: localBlob}}]}\n",
        );
        let as_value = serde_json::to_value(&descriptor).unwrap();
        let component = &as_value["component"];
        for key in [
            "creationTime",
            "repositoryContexts",
            "componentReferences",
            "labels",
            "sources",
            "resources",
            "provider",
        ] {
            assert!(component.get(key).is_some(), "missing {key}");
        }
        assert_eq!(component["creationTime"], Value::Null);
        assert_eq!(component["resources"][0]["type"], Value::Null);
        assert_eq!(component["resources"][0]["extraIdentity"], json!({}));
        assert_eq!(as_value["meta"]["schemaVersion"], json!("v2"));
    }

    #[test]
    fn versions_written_as_bare_yaml_numbers_are_kept_as_text() {
        let descriptor = parse_yaml(
            "meta: {schemaVersion: v2}\ncomponent: {name: a.b/c, version: 1.5, \
             resources: [{name: r, version: 2}], componentReferences: [{name: x, componentName: a.b/x, version: 3}]}\n",
        );
        assert_eq!(descriptor.component.version, "1.5");
        assert_eq!(
            descriptor.component.resources[0].version.as_deref(),
            Some("2")
        );
        assert_eq!(descriptor.component.component_references[0].version, "3");
    }

    #[test]
    fn missing_required_fields_are_errors() {
        let missing_version = "meta: {schemaVersion: v2}\ncomponent: {name: a.b/c}\n";
        assert!(serde_yaml_ng::from_str::<ComponentDescriptor>(missing_version).is_err());
        let list_as_version = "meta: {schemaVersion: v2}\ncomponent: {name: a.b/c, version: [1]}\n";
        assert!(serde_yaml_ng::from_str::<ComponentDescriptor>(list_as_version).is_err());
    }

    #[test]
    fn the_current_repository_context_is_the_last_entry() {
        let descriptor = parse_yaml(DESCRIPTOR_WITH_UNKNOWNS);
        let current = descriptor.current_repository_context().unwrap();
        assert_eq!(current.base_url.as_deref(), Some("registry.example.com"));
        assert_eq!(current.sub_path.as_deref(), Some("ocm"));
        assert_eq!(current.context_type, "OCIRegistry");
    }

    #[test]
    fn find_label_returns_the_first_label_of_that_name() {
        let descriptor = parse_yaml(DESCRIPTOR_WITH_UNKNOWNS);
        let label = descriptor.component.find_label("some-label").unwrap();
        assert_eq!(label.extra["version"], json!("v1"));
        assert!(descriptor.component.find_label("absent").is_none());
    }
}
