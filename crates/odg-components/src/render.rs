//! The JSON the component routes answer with, in the original's shapes: a descriptor, a stored
//! document as a JSON string, and a dependency tree with each element's `comp_ref` path.
//!
//! Rendering serialises straight into bytes (serde into a `Vec`), never through a
//! `serde_json::Value` tree: the map inserts and hashing of that detour were most of the cost.

use std::collections::HashMap;
use std::sync::Arc;

use odg_ocm::Component;
use serde_json::{json, Map, Value};

use crate::{ComponentError, DependencyNode, FetchedDescriptor};

/// The label the original adds to the first source of components whose sources carry none.
const SOURCE_CLASSIFICATION_LABEL: &str = "cloud.gardener/cicd/source";

/// What each element of `componentDependencies` carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Populate {
    /// The whole component object (the default).
    All,
    /// Name, version and repository contexts only.
    ComponentReferences,
}

impl Populate {
    /// The parameter value, also a part of the answer's cache key.
    pub fn as_str(self) -> &'static str {
        match self {
            Populate::All => "all",
            Populate::ComponentReferences => "componentReferences",
        }
    }
}

fn serialisation_failed(error: serde_json::Error) -> ComponentError {
    ComponentError::Task(format!("serialising the answer failed: {error}"))
}

/// `/ocm/component`: the descriptor as JSON.
pub fn descriptor_json(fetched: &FetchedDescriptor) -> Result<Vec<u8>, ComponentError> {
    serde_json::to_vec(&fetched.descriptor).map_err(serialisation_failed)
}

/// `/ocm/component?raw=true`: the stored document as one JSON string.
pub fn raw_document_json(fetched: &FetchedDescriptor) -> Result<Vec<u8>, ComponentError> {
    serde_json::to_vec(&fetched.document).map_err(serialisation_failed)
}

/// `/ocm/component/dependencies`, assembled from each distinct component's JSON serialised
/// once: a tree repeats shared subtrees (3,151 elements for 300 components in the benchmark
/// tree), so rendering each element from scratch would serialise the same objects thousands
/// of times.
pub fn dependencies_json(nodes: &[DependencyNode], populate: Populate) -> Vec<u8> {
    /// JSON text per distinct descriptor, keyed by the address of its shared allocation.
    fn rendered<'a>(
        memo: &'a mut HashMap<*const FetchedDescriptor, String>,
        fetched: &Arc<FetchedDescriptor>,
        render: impl FnOnce(&Arc<FetchedDescriptor>) -> Map<String, Value>,
    ) -> &'a str {
        memo.entry(Arc::as_ptr(fetched)).or_insert_with(|| {
            serde_json::to_string(&render(fetched)).unwrap_or_else(|_| "{}".into())
        })
    }
    let mut elements: HashMap<*const FetchedDescriptor, String> = HashMap::new();
    let mut path_entries: HashMap<*const FetchedDescriptor, String> = HashMap::new();
    let mut out = Vec::with_capacity(nodes.len() * 256);
    out.extend_from_slice(br#"{"componentDependencies":["#);
    for (index, node) in nodes.iter().enumerate() {
        if index > 0 {
            out.push(b',');
        }
        let element = rendered(&mut elements, &node.descriptor, |fetched| match populate {
            Populate::All => component_with_source_label(&fetched.descriptor.component),
            Populate::ComponentReferences => path_entry(fetched),
        });
        // Reopen the object to append `comp_ref`.
        let open = &element[..element.len() - 1];
        out.extend_from_slice(open.as_bytes());
        if open.len() > 1 {
            out.push(b',');
        }
        out.extend_from_slice(br#""comp_ref":["#);
        for (position, entry) in node.path.iter().enumerate() {
            if position > 0 {
                out.push(b',');
            }
            out.extend_from_slice(rendered(&mut path_entries, entry, path_entry).as_bytes());
        }
        out.extend_from_slice(b"]}");
    }
    out.extend_from_slice(b"]}");
    out
}

/// `{name, version, repositoryContexts}` of a component.
fn path_entry(fetched: &Arc<FetchedDescriptor>) -> Map<String, Value> {
    let component = &fetched.descriptor.component;
    let mut entry = Map::new();
    entry.insert("name".into(), json!(component.name));
    entry.insert("version".into(), json!(component.version));
    entry.insert(
        "repositoryContexts".into(),
        serde_json::to_value(&component.repository_contexts).unwrap_or(Value::Array(vec![])),
    );
    entry
}

/// The component object, with the original's source classification label on its first source
/// when no source carries one.
fn component_with_source_label(component: &Component) -> Map<String, Value> {
    let mut value = match serde_json::to_value(component) {
        Ok(Value::Object(map)) => map,
        _ => Map::new(),
    };
    let has_label = component.sources.iter().any(|source| {
        source
            .labels
            .iter()
            .any(|label| label.name == SOURCE_CLASSIFICATION_LABEL)
    });
    if !has_label {
        if let Some(Value::Object(first_source)) = value
            .get_mut("sources")
            .and_then(|sources| sources.get_mut(0))
        {
            let label = json!({"name": SOURCE_CLASSIFICATION_LABEL, "value": {"repository-classification": "main"}});
            match first_source.get_mut("labels") {
                Some(Value::Array(labels)) => labels.push(label),
                _ => {
                    first_source.insert("labels".into(), json!([label]));
                }
            }
        }
    }
    value
}
