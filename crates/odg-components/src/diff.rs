//! `/components/diff`: how the dependency tree of one component version differs from another's,
//! in the original's shape:
//!
//! ```json
//! {"components_added":   [{"name", "version"}],
//!  "components_removed": [{"name", "version"}],
//!  "components_changed": [{"left":  {"name", "version"},
//!                          "right": {"name", "version",
//!                                    "resources": {"added": [..], "removed": [..],
//!                                                  "changed": [{"from": resource, "to": resource + "label_diff"}]},
//!                                    "label_diff": {"labels_only_left", "labels_only_right", "label_pairs_changed"}}}]}
//! ```
//!
//! The semantics are the original's: a component version in only one tree is added or removed
//! unless the other tree has a version of the same name, in which case the two are a changed
//! pair (the first such version of the other tree). Where the original fails (two identical
//! trees make it answer 500; a label name twice in one list, too), odg answers the empty diff
//! and pairs the first labels of a name. Lists follow tree order (pre-order, first appearance),
//! so an answer's bytes, and its `ETag`, are stable.

use std::collections::HashSet;
use std::sync::Arc;

use odg_cache::{CacheKey, Scope};
use odg_ocm::{Artefact, Component, Label};
use serde_json::{json, Map, Value};

use crate::answer::RenderedAnswer;
use crate::cache::{current_cache_mode, kind, KIND_DIFF};
use crate::{ComponentError, ComponentId, ComponentService, DependencyNode, WalkOptions};

/// Trees up to this many elements are diffed inline; larger ones on the CPU pool.
const INLINE_DIFF_ELEMENTS: usize = 64;

/// The distinct components of a tree in pre-order of first appearance.
fn distinct_components(nodes: &[DependencyNode]) -> Vec<&Component> {
    let mut seen = HashSet::new();
    nodes
        .iter()
        .map(|node| &node.descriptor.descriptor.component)
        .filter(|component| seen.insert((component.name.as_str(), component.version.as_str())))
        .collect()
}

fn reference(component: &Component) -> Map<String, Value> {
    let mut object = Map::new();
    object.insert("name".into(), json!(component.name));
    object.insert("version".into(), json!(component.version));
    object
}

fn label_json(label: &Label) -> Value {
    serde_json::to_value(label).unwrap_or(Value::Null)
}

fn artefact_json(artefact: &Artefact) -> Map<String, Value> {
    match serde_json::to_value(artefact) {
        Ok(Value::Object(object)) => object,
        _ => Map::new(),
    }
}

/// Labels only left, only right (by name), and the pairs of a name whose values differ.
struct LabelDiff<'a> {
    only_left: Vec<&'a Label>,
    only_right: Vec<&'a Label>,
    changed: Vec<(&'a Label, &'a Label)>,
}

fn diff_labels<'a>(left: &'a [Label], right: &'a [Label]) -> LabelDiff<'a> {
    let find = |labels: &'a [Label], name: &str| labels.iter().find(|label| label.name == name);
    let mut seen = HashSet::new();
    LabelDiff {
        only_left: left
            .iter()
            .filter(|label| find(right, &label.name).is_none())
            .collect(),
        only_right: right
            .iter()
            .filter(|label| find(left, &label.name).is_none())
            .collect(),
        changed: left
            .iter()
            .filter(|label| seen.insert(label.name.as_str()))
            .filter_map(|label| {
                let other = find(right, &label.name)?;
                (other.value != label.value).then_some((label, other))
            })
            .collect(),
    }
}

/// An artefact's identity among `peers`: name and extra identity, plus the version when name
/// and extra identity alone are not unique among them (as OCM identities are defined).
fn identity(artefact: &Artefact, peers: &[&Artefact]) -> (String, String, Option<String>) {
    let extra = serde_json::to_string(&artefact.extra_identity).unwrap_or_default();
    let same = peers
        .iter()
        .filter(|peer| peer.name == artefact.name && peer.extra_identity == artefact.extra_identity)
        .count();
    let version = (same > 1).then(|| artefact.version.clone().unwrap_or_default());
    (artefact.name.clone(), extra, version)
}

/// Resources only left, only right, and pairs whose versions changed.
#[derive(Default)]
struct ResourceDiff<'a> {
    only_left: Vec<&'a Artefact>,
    only_right: Vec<&'a Artefact>,
    changed: Vec<(&'a Artefact, &'a Artefact)>,
}

fn push_distinct<'a>(list: &mut Vec<&'a Artefact>, artefact: &'a Artefact) {
    if !list
        .iter()
        .any(|known| known.name == artefact.name && known.version == artefact.version)
    {
        list.push(artefact);
    }
}

fn diff_resources<'a>(left: &'a Component, right: &'a Component) -> ResourceDiff<'a> {
    let peers: Vec<&Artefact> = left.resources.iter().chain(&right.resources).collect();
    let left_ids: Vec<_> = left.resources.iter().map(|r| identity(r, &peers)).collect();
    let right_ids: Vec<_> = right
        .resources
        .iter()
        .map(|r| identity(r, &peers))
        .collect();
    let as_set =
        |ids: &[(String, String, Option<String>)]| ids.iter().cloned().collect::<HashSet<_>>();
    let mut diff = ResourceDiff::default();
    if as_set(&left_ids) == as_set(&right_ids) {
        return diff;
    }
    let has_name = |resources: &[Artefact], name: &str| resources.iter().any(|r| r.name == name);
    for resource in &left.resources {
        if !has_name(&right.resources, &resource.name) {
            push_distinct(&mut diff.only_left, resource);
        }
    }
    for resource in &right.resources {
        if !has_name(&left.resources, &resource.name) {
            push_distinct(&mut diff.only_right, resource);
        }
    }
    let mut names_seen = HashSet::new();
    for name in left.resources.iter().map(|r| r.name.as_str()) {
        if !names_seen.insert(name) {
            continue;
        }
        let right_group: Vec<&Artefact> =
            right.resources.iter().filter(|r| r.name == name).collect();
        if right_group.is_empty() {
            continue;
        }
        let left_group: Vec<&Artefact> = left.resources.iter().filter(|r| r.name == name).collect();
        if let ([left_resource], [right_resource]) = (&left_group[..], &right_group[..]) {
            if left_resource.version != right_resource.version {
                diff.changed.push((left_resource, right_resource));
            }
            continue;
        }
        // Several of a name: order by identity, drop versions on both sides, pair the rest
        // in order; what is left over on one side was added or removed.
        let sorted = |mut group: Vec<&'a Artefact>| {
            group.sort_by_cached_key(|r| identity(r, &peers));
            group
        };
        let (left_group, right_group) = (sorted(left_group), sorted(right_group));
        let left_versions: HashSet<_> = left_group.iter().map(|r| &r.version).collect();
        let right_versions: HashSet<_> = right_group.iter().map(|r| &r.version).collect();
        let left_rest: Vec<&Artefact> = left_group
            .into_iter()
            .filter(|r| !right_versions.contains(&r.version))
            .collect();
        let right_rest: Vec<&Artefact> = right_group
            .into_iter()
            .filter(|r| !left_versions.contains(&r.version))
            .collect();
        for (index, left_resource) in left_rest.iter().enumerate() {
            match right_rest.get(index) {
                Some(right_resource) => diff.changed.push((left_resource, right_resource)),
                None => push_distinct(&mut diff.only_left, left_resource),
            }
        }
        for right_resource in right_rest.iter().skip(left_rest.len()) {
            push_distinct(&mut diff.only_right, right_resource);
        }
    }
    diff
}

fn changed_resource(left: &Artefact, right: &Artefact) -> Value {
    let labels = diff_labels(&left.labels, &right.labels);
    let mut to = artefact_json(right);
    to.insert(
        "label_diff".into(),
        json!({
            "added": labels.only_right.iter().map(|l| label_json(l)).collect::<Vec<_>>(),
            "removed": labels.only_left.iter().map(|l| label_json(l)).collect::<Vec<_>>(),
            "changed": labels.changed.iter().map(|(from, to)| json!({"from": label_json(from), "to": label_json(to)})).collect::<Vec<_>>(),
        }),
    );
    json!({"from": artefact_json(left), "to": to})
}

fn changed_component(left: &Component, right: &Component) -> Value {
    let resources = diff_resources(left, right);
    let labels = diff_labels(&left.labels, &right.labels);
    let mut right_json = reference(right);
    right_json.insert(
        "resources".into(),
        json!({
            "added": resources.only_right.iter().map(|r| artefact_json(r)).collect::<Vec<_>>(),
            "removed": resources.only_left.iter().map(|r| artefact_json(r)).collect::<Vec<_>>(),
            "changed": resources.changed.iter().map(|(from, to)| changed_resource(from, to)).collect::<Vec<_>>(),
        }),
    );
    right_json.insert(
        "label_diff".into(),
        json!({
            "labels_only_left": labels.only_left.iter().map(|l| label_json(l)).collect::<Vec<_>>(),
            "labels_only_right": labels.only_right.iter().map(|l| label_json(l)).collect::<Vec<_>>(),
            "label_pairs_changed": labels.changed.iter().map(|(l, r)| json!([label_json(l), label_json(r)])).collect::<Vec<_>>(),
        }),
    );
    json!({"left": reference(left), "right": right_json})
}

/// The diff of two trees (each in pre-order, root first) as the answer's JSON.
pub fn diff_json(
    left: &[DependencyNode],
    right: &[DependencyNode],
) -> Result<Vec<u8>, ComponentError> {
    let left = distinct_components(left);
    let right = distinct_components(right);
    let ids = |components: &[&Component]| -> HashSet<(String, String)> {
        components
            .iter()
            .map(|c| (c.name.clone(), c.version.clone()))
            .collect()
    };
    let (left_ids, right_ids) = (ids(&left), ids(&right));
    let only_left: Vec<&Component> = left
        .iter()
        .copied()
        .filter(|c| !right_ids.contains(&(c.name.clone(), c.version.clone())))
        .collect();
    let only_right: Vec<&Component> = right
        .iter()
        .copied()
        .filter(|c| !left_ids.contains(&(c.name.clone(), c.version.clone())))
        .collect();
    let names = |components: &[&Component]| -> HashSet<String> {
        components.iter().map(|c| c.name.clone()).collect()
    };
    let (names_only_left, names_only_right) = (names(&only_left), names(&only_right));
    let added: Vec<Value> = only_right
        .iter()
        .filter(|c| !names_only_left.contains(&c.name))
        .map(|c| Value::Object(reference(c)))
        .collect();
    let removed: Vec<Value> = only_left
        .iter()
        .filter(|c| !names_only_right.contains(&c.name))
        .map(|c| Value::Object(reference(c)))
        .collect();
    let changed: Vec<Value> = only_left
        .iter()
        .filter_map(|left_component| {
            let right_component = only_right.iter().find(|c| c.name == left_component.name)?;
            Some(changed_component(left_component, right_component))
        })
        .collect();
    serde_json::to_vec(&json!({
        "components_added": added,
        "components_removed": removed,
        "components_changed": changed,
    }))
    .map_err(|error| ComponentError::Task(format!("serialising the answer failed: {error}")))
}

impl ComponentService {
    /// `/components/diff` of two pinned versions over their trees as `options` walks them,
    /// cached per (left, right, walk options) in every tier: a miss costs two whole trees.
    /// Scoped to the left component version; since a diff embeds every descriptor of both
    /// trees, invalidating any descriptor drops all diffs (see [`ComponentService::invalidate`]).
    pub async fn diff_answer(
        &self,
        left: &ComponentId,
        right: &ComponentId,
        options: &WalkOptions,
    ) -> Result<Arc<RenderedAnswer>, ComponentError> {
        let render = {
            let service = self.clone();
            let (left, right, options) = (left.clone(), right.clone(), options.clone());
            move || async move { service.render_diff(&left, &right, &options).await }
        };
        let Some(cache) = self.cache() else {
            return render().await.map(Arc::new);
        };
        let depth = options
            .max_depth
            .map_or_else(|| "-1".to_string(), |depth| depth.to_string());
        let key = CacheKey::new(
            kind(KIND_DIFF),
            &[
                &left.name.to_lowercase(),
                &left.version,
                &right.name.to_lowercase(),
                &right.version,
                &depth,
                &options.max_nodes.to_string(),
            ],
            Scope::component_version(&left.name, &left.version),
        );
        cache.get_or_load(&key, current_cache_mode(), render).await
    }

    #[tracing::instrument(level = "info", skip_all, fields(left = %left, right = %right))]
    async fn render_diff(
        &self,
        left: &ComponentId,
        right: &ComponentId,
        options: &WalkOptions,
    ) -> Result<RenderedAnswer, ComponentError> {
        let (left_nodes, right_nodes) = futures::future::try_join(
            self.dependencies(left, None, options),
            self.dependencies(right, None, options),
        )
        .await?;
        if left_nodes.len() + right_nodes.len() <= INLINE_DIFF_ELEMENTS {
            return diff_json(&left_nodes, &right_nodes).map(RenderedAnswer::new);
        }
        odg_offload::run_cpu_bound(move || {
            diff_json(&left_nodes, &right_nodes).map(RenderedAnswer::new)
        })
        .await?
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::FetchedDescriptor;

    fn component(
        name: &str,
        version: &str,
        resources: Value,
        labels: Value,
    ) -> Arc<FetchedDescriptor> {
        let descriptor = serde_json::from_value(json!({
            "meta": {"schemaVersion": "v2"},
            "component": {"name": name, "version": version, "provider": "p", "repositoryContexts": [],
                          "labels": labels, "sources": [], "resources": resources, "componentReferences": []},
        }))
        .unwrap();
        Arc::new(FetchedDescriptor {
            descriptor,
            document: String::new(),
            repository: "registry.example.com/ocm".parse().unwrap(),
        })
    }

    /// A flat tree: the root and its children (paths are not read by the diff).
    fn tree(components: &[Arc<FetchedDescriptor>]) -> Vec<DependencyNode> {
        components
            .iter()
            .map(|descriptor| DependencyNode {
                descriptor: descriptor.clone(),
                path: vec![descriptor.clone()],
            })
            .collect()
    }

    fn resource(name: &str, version: &str, labels: Value) -> Value {
        json!({"name": name, "version": version, "type": "ociImage", "labels": labels, "access": {}})
    }

    fn diff(left: &[Arc<FetchedDescriptor>], right: &[Arc<FetchedDescriptor>]) -> Value {
        serde_json::from_slice(&diff_json(&tree(left), &tree(right)).unwrap()).unwrap()
    }

    #[test]
    fn added_removed_and_changed_components_with_their_resources_and_labels() {
        let root_1 = component(
            "acme.org/root",
            "1",
            json!([]),
            json!([{"name": "l", "value": 1}, {"name": "gone", "value": 0}]),
        );
        let root_2 = component(
            "acme.org/root",
            "2",
            json!([]),
            json!([{"name": "l", "value": 2}, {"name": "new", "value": 0}]),
        );
        let lib_1 = component(
            "acme.org/lib",
            "1.0",
            json!([
                resource("image", "1.0", json!([{"name": "x", "value": "a"}])),
                resource("old", "1.0", json!([]))
            ]),
            json!([]),
        );
        let lib_2 = component(
            "acme.org/lib",
            "2.0",
            json!([
                resource("image", "2.0", json!([{"name": "x", "value": "b"}])),
                resource("fresh", "2.0", json!([]))
            ]),
            json!([]),
        );
        let shared = component("acme.org/shared", "1", json!([]), json!([]));
        let removed = component("acme.org/removed", "1", json!([]), json!([]));
        let added = component("acme.org/added", "1", json!([]), json!([]));
        let body = diff(
            &[root_1, lib_1, shared.clone(), removed],
            &[root_2, lib_2, shared, added],
        );
        assert_eq!(
            body["components_added"],
            json!([{"name": "acme.org/added", "version": "1"}])
        );
        assert_eq!(
            body["components_removed"],
            json!([{"name": "acme.org/removed", "version": "1"}])
        );
        let changed = body["components_changed"].as_array().unwrap();
        assert_eq!(changed.len(), 2);
        assert_eq!(
            changed[0]["left"],
            json!({"name": "acme.org/root", "version": "1"})
        );
        let root_labels = &changed[0]["right"]["label_diff"];
        assert_eq!(
            root_labels["labels_only_left"],
            json!([{"name": "gone", "value": 0}])
        );
        assert_eq!(
            root_labels["labels_only_right"],
            json!([{"name": "new", "value": 0}])
        );
        assert_eq!(
            root_labels["label_pairs_changed"],
            json!([[{"name": "l", "value": 1}, {"name": "l", "value": 2}]])
        );
        let lib = &changed[1]["right"];
        assert_eq!(lib["version"], "2.0");
        assert_eq!(lib["resources"]["added"][0]["name"], "fresh");
        assert_eq!(lib["resources"]["removed"][0]["name"], "old");
        let image = &lib["resources"]["changed"][0];
        assert_eq!(image["from"]["version"], "1.0");
        assert_eq!(image["to"]["version"], "2.0");
        assert_eq!(
            image["to"]["label_diff"],
            json!({"added": [], "removed": [], "changed": [{"from": {"name": "x", "value": "a"}, "to": {"name": "x", "value": "b"}}]})
        );
    }

    #[test]
    fn identical_trees_are_the_empty_diff() {
        let root = component("acme.org/root", "1", json!([]), json!([]));
        assert_eq!(
            diff(std::slice::from_ref(&root), std::slice::from_ref(&root)),
            json!({"components_added": [], "components_removed": [], "components_changed": []})
        );
    }

    #[test]
    fn several_resources_of_a_name_pair_by_identity_and_leave_the_rest() {
        let left = component(
            "acme.org/root",
            "1",
            json!([
                resource("image", "1", json!([])),
                resource("image", "2", json!([]))
            ]),
            json!([]),
        );
        let right = component(
            "acme.org/root",
            "2",
            json!([
                resource("image", "2", json!([])),
                resource("image", "3", json!([])),
                resource("image", "4", json!([]))
            ]),
            json!([]),
        );
        let body = diff(&[left], &[right]);
        let resources = &body["components_changed"][0]["right"]["resources"];
        assert_eq!(resources["changed"][0]["from"]["version"], "1");
        assert_eq!(resources["changed"][0]["to"]["version"], "3");
        assert_eq!(resources["added"].as_array().unwrap().len(), 1);
        assert_eq!(resources["added"][0]["version"], "4");
        assert_eq!(resources["removed"], json!([]));
    }
}
