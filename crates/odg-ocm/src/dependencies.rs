//! The dependency edges of a component: its `componentReferences` plus the extra-references label.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::descriptor::Component;

/// Label whose value lists further dependencies that are deliberately not `componentReferences`
/// (they are walked, but not replicated with the component). Not part of the OCM specification.
pub const EXTRA_COMPONENT_REFERENCES_LABEL: &str =
    "ocm.software/ocm-gear/extra-component-references";

/// One edge of the dependency graph: the referencing component points at `component_name:version`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct DependencyEdge {
    /// The reference's local name; for label edges without one, the component name (as the Python code does).
    pub name: String,
    #[serde(rename = "componentName")]
    pub component_name: String,
    pub version: String,
}

impl Component {
    /// `componentReferences` first, then the edges of the extra-references label, every one of
    /// them: the original walks a component referenced twice twice, and so do we (the walk still
    /// fetches each component version once).
    ///
    /// Malformed label entries are skipped rather than failing the whole component: the label is a
    /// non-standard add-on and a typo in it must not make the component unreadable.
    pub fn dependency_edges(&self) -> Vec<DependencyEdge> {
        let declared_edges = self
            .component_references
            .iter()
            .map(|reference| DependencyEdge {
                name: reference.name.clone(),
                component_name: reference.component_name.clone(),
                version: reference.version.clone(),
            });
        let label_edges = self
            .labels
            .iter()
            .filter(|label| label.name == EXTRA_COMPONENT_REFERENCES_LABEL)
            .flat_map(|label| edges_from_extra_references_label(&label.value));

        declared_edges.chain(label_edges).collect()
    }
}

/// Reads the label value. Accepted entry shapes, in the order they are tried:
/// - `{component_reference: {name, version}, purpose: [...]}` — what the Python tooling writes; there
///   `name` is the component name (an `ocm.ComponentIdentity`);
/// - `{componentReference: {...}}` — the camelCase spelling of the same;
/// - a plain `{name?, componentName, version}` or `{name, version}` object.
///
/// Inside any of these, `componentName` names the component when present (then `name` is the local
/// reference name), otherwise `name` does.
fn edges_from_extra_references_label(value: &Value) -> Vec<DependencyEdge> {
    let Some(entries) = value.as_array() else {
        return Vec::new();
    };
    entries.iter().filter_map(edge_from_label_entry).collect()
}

fn edge_from_label_entry(entry: &Value) -> Option<DependencyEdge> {
    let entry = entry.as_object()?;
    let reference = match entry
        .get("component_reference")
        .or_else(|| entry.get("componentReference"))
    {
        Some(nested) => nested.as_object()?,
        None => entry,
    };
    edge_from_reference_object(reference)
}

fn edge_from_reference_object(reference: &Map<String, Value>) -> Option<DependencyEdge> {
    let non_empty_string = |key: &str| {
        reference
            .get(key)
            .and_then(Value::as_str)
            .filter(|text| !text.is_empty())
    };
    let version = non_empty_string("version")?;
    let (name, component_name) = match non_empty_string("componentName") {
        Some(component_name) => (
            non_empty_string("name").unwrap_or(component_name),
            component_name,
        ),
        None => {
            let component_name = non_empty_string("name")?;
            (component_name, component_name)
        }
    };
    Some(DependencyEdge {
        name: name.to_owned(),
        component_name: component_name.to_owned(),
        version: version.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::descriptor::{ComponentReference, Label};
    use serde_json::json;

    fn component_with(references: &[(&str, &str, &str)], labels: Vec<Label>) -> Component {
        Component {
            name: "example.com/root".into(),
            version: "1.0.0".into(),
            provider: Value::Null,
            creation_time: None,
            repository_contexts: Vec::new(),
            labels,
            sources: Vec::new(),
            resources: Vec::new(),
            component_references: references
                .iter()
                .map(|(name, component_name, version)| ComponentReference {
                    name: (*name).into(),
                    component_name: (*component_name).into(),
                    version: (*version).into(),
                    extra_identity: Map::new(),
                    labels: Vec::new(),
                    extra: Map::new(),
                })
                .collect(),
            extra: Map::new(),
        }
    }

    fn extra_references_label(value: Value) -> Label {
        Label {
            name: EXTRA_COMPONENT_REFERENCES_LABEL.into(),
            value,
            extra: Map::new(),
        }
    }

    fn edge(name: &str, component_name: &str, version: &str) -> DependencyEdge {
        DependencyEdge {
            name: name.into(),
            component_name: component_name.into(),
            version: version.into(),
        }
    }

    #[test]
    fn component_references_come_first_then_label_edges() {
        let label = extra_references_label(json!([
            {"component_reference": {"name": "example.com/diki", "version": "v0.25.0"}, "purpose": ["lint"]},
            {"componentReference": {"name": "ref", "componentName": "example.com/camel", "version": "1"}},
            {"name": "plain", "componentName": "example.com/plain", "version": "2"},
            {"componentName": "example.com/nameless", "version": "3"},
            {"name": "example.com/identity-only", "version": "4"},
        ]));
        let component = component_with(&[("lib", "example.com/lib", "0.3.1")], vec![label]);
        assert_eq!(
            component.dependency_edges(),
            vec![
                edge("lib", "example.com/lib", "0.3.1"),
                edge("example.com/diki", "example.com/diki", "v0.25.0"),
                edge("ref", "example.com/camel", "1"),
                edge("plain", "example.com/plain", "2"),
                edge("example.com/nameless", "example.com/nameless", "3"),
                edge(
                    "example.com/identity-only",
                    "example.com/identity-only",
                    "4"
                ),
            ]
        );
    }

    #[test]
    fn malformed_label_entries_are_skipped() {
        let label = extra_references_label(json!([
            "just a string",
            42,
            null,
            {"component_reference": "not an object"},
            {"component_reference": {"name": "example.com/no-version"}},
            {"component_reference": {"version": "1"}},
            {"componentName": "", "version": "1"},
            {"componentName": "example.com/version-is-number", "version": 1},
            {"component_reference": {"name": "example.com/good", "version": "1"}},
        ]));
        let component = component_with(&[], vec![label]);
        assert_eq!(
            component.dependency_edges(),
            vec![edge("example.com/good", "example.com/good", "1")]
        );
    }

    #[test]
    fn a_label_value_that_is_not_a_list_yields_no_edges() {
        for value in [json!({"component_reference": {}}), json!("x"), Value::Null] {
            let component = component_with(&[], vec![extra_references_label(value)]);
            assert!(component.dependency_edges().is_empty());
        }
    }

    #[test]
    fn every_edge_is_kept_in_order_as_the_original_walks_them() {
        let label = extra_references_label(json!([
            {"component_reference": {"name": "example.com/lib", "version": "0.3.1"}},
            {"component_reference": {"name": "example.com/lib", "version": "0.4.0"}},
        ]));
        let component = component_with(
            &[
                ("lib", "example.com/lib", "0.3.1"),
                ("lib-again", "example.com/lib", "0.3.1"),
                ("other", "example.com/other", "1"),
            ],
            vec![label],
        );
        assert_eq!(
            component.dependency_edges(),
            vec![
                edge("lib", "example.com/lib", "0.3.1"),
                edge("lib-again", "example.com/lib", "0.3.1"),
                edge("other", "example.com/other", "1"),
                edge("example.com/lib", "example.com/lib", "0.3.1"),
                edge("example.com/lib", "example.com/lib", "0.4.0"),
            ]
        );
    }

    #[test]
    fn other_labels_are_ignored() {
        let unrelated = Label {
            name: "some/other-label".into(),
            value: json!([{"componentName": "example.com/x", "version": "1"}]),
            extra: Map::new(),
        };
        assert!(component_with(&[], vec![unrelated])
            .dependency_edges()
            .is_empty());
    }
}
