//! The dependency walk: fetch every (name, version) of a tree once, in parallel, then emit the
//! tree depth first with each node's path from the root, as the original does.
//!
//! Two phases keep the fetching fast and the output exact. Phase one discovers the graph with up
//! to `concurrency` fetches in flight, so resolution time follows the tree's depth rather than its
//! size. Phase two walks the in-memory graph iteratively (no recursion, so no stack overflow on
//! deep trees), reports cycles, and bounds the output size, since shared subtrees are repeated.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;

use futures::stream::{FuturesUnordered, StreamExt};

use crate::source::{ComponentId, FetchedDescriptor};
use crate::ComponentError;

#[derive(Debug, Clone)]
pub struct WalkOptions {
    /// Levels below the root to follow; `None` is unlimited, `Some(0)` only the root.
    pub max_depth: Option<usize>,
    /// Most elements an answer may have (shared subtrees appear once per path).
    pub max_nodes: usize,
    /// Most descriptor fetches in flight for one walk.
    pub concurrency: usize,
}

impl Default for WalkOptions {
    fn default() -> Self {
        WalkOptions {
            max_depth: None,
            max_nodes: 20_000,
            concurrency: 32,
        }
    }
}

/// One element of the answer: a component and the path that reached it (root first, itself last).
#[derive(Debug, Clone)]
pub struct DependencyNode {
    pub descriptor: Arc<FetchedDescriptor>,
    pub path: Vec<Arc<FetchedDescriptor>>,
}

fn id_of(fetched: &FetchedDescriptor) -> ComponentId {
    ComponentId::new(
        &fetched.descriptor.component.name,
        &fetched.descriptor.component.version,
    )
}

fn children_of(fetched: &FetchedDescriptor) -> Vec<ComponentId> {
    fetched
        .descriptor
        .component
        .dependency_edges()
        .into_iter()
        .map(|edge| ComponentId::new(edge.component_name, edge.version))
        .collect()
}

/// What phase one learned: every reachable descriptor within the depth bound.
struct Discovered {
    fetched: HashMap<ComponentId, Arc<FetchedDescriptor>>,
    /// The smallest depth each component was seen at; it decides whether its children are followed.
    depth: HashMap<ComponentId, usize>,
    /// Who first referenced each component, to name the path to a broken one.
    parent: HashMap<ComponentId, ComponentId>,
}

impl Discovered {
    fn path_to(&self, component: &ComponentId) -> Vec<String> {
        let mut path = vec![component.to_string()];
        let mut current = component;
        while let Some(parent) = self.parent.get(current) {
            path.push(parent.to_string());
            current = parent;
            if path.len() > self.parent.len() + 1 {
                break; // a cycle among first-referrers; the path is long enough to be useful
            }
        }
        path.reverse();
        path
    }
}

pub(crate) async fn walk_dependencies<F, Fut>(
    root: Arc<FetchedDescriptor>,
    options: &WalkOptions,
    fetch: F,
) -> Result<Vec<DependencyNode>, ComponentError>
where
    F: Fn(ComponentId) -> Fut,
    Fut: Future<Output = Result<Arc<FetchedDescriptor>, ComponentError>>,
{
    let discovered = discover(root.clone(), options, fetch).await?;
    emit_preorder(&id_of(&root), &discovered, options)
}

async fn discover<F, Fut>(
    root: Arc<FetchedDescriptor>,
    options: &WalkOptions,
    fetch: F,
) -> Result<Discovered, ComponentError>
where
    F: Fn(ComponentId) -> Fut,
    Fut: Future<Output = Result<Arc<FetchedDescriptor>, ComponentError>>,
{
    let root_id = id_of(&root);
    let mut graph = Discovered {
        fetched: HashMap::from([(root_id.clone(), root)]),
        depth: HashMap::from([(root_id.clone(), 0)]),
        parent: HashMap::new(),
    };
    let within_depth = |depth: usize| options.max_depth.is_none_or(|max| depth <= max);
    let concurrency = options.concurrency.max(1);

    let mut waiting: Vec<ComponentId> = Vec::new();
    let mut expand: Vec<ComponentId> = vec![root_id];
    let mut in_flight = FuturesUnordered::new();
    loop {
        // Follow the edges of every component whose depth is known and small enough.
        while let Some(component) = expand.pop() {
            let child_depth = graph.depth[&component] + 1;
            if !within_depth(child_depth) {
                continue;
            }
            for child in children_of(&graph.fetched[&component]) {
                match graph.depth.get(&child) {
                    None => {
                        graph.depth.insert(child.clone(), child_depth);
                        graph.parent.insert(child.clone(), component.clone());
                        waiting.push(child);
                    }
                    // Reached by a shorter path: its subtree may now reach further.
                    Some(&known) if child_depth < known => {
                        graph.depth.insert(child.clone(), child_depth);
                        if graph.fetched.contains_key(&child) {
                            expand.push(child);
                        }
                    }
                    Some(_) => {}
                }
            }
        }
        while in_flight.len() < concurrency {
            let Some(component) = waiting.pop() else {
                break;
            };
            let future = fetch(component.clone());
            in_flight.push(async move { (component, future.await) });
        }
        let Some((component, result)) = in_flight.next().await else {
            break;
        };
        match result {
            Ok(descriptor) => {
                graph.fetched.insert(component.clone(), descriptor);
                expand.push(component);
            }
            Err(error) => {
                return Err(ComponentError::BrokenDependency {
                    name: component.name.clone(),
                    version: component.version.clone(),
                    path: graph.path_to(&component),
                    source: Box::new(error),
                })
            }
        }
    }
    Ok(graph)
}

/// Depth-first pre-order from the root, children in descriptor order, a node once per path.
fn emit_preorder(
    root: &ComponentId,
    graph: &Discovered,
    options: &WalkOptions,
) -> Result<Vec<DependencyNode>, ComponentError> {
    struct Frame {
        component: ComponentId,
        /// Index into the path stack: the path of this frame is `path[..=level]`.
        level: usize,
    }
    let mut nodes = Vec::new();
    let mut path: Vec<ComponentId> = Vec::new();
    let mut path_descriptors: Vec<Arc<FetchedDescriptor>> = Vec::new();
    let mut stack = vec![Frame {
        component: root.clone(),
        level: 0,
    }];
    while let Some(frame) = stack.pop() {
        path.truncate(frame.level);
        path_descriptors.truncate(frame.level);
        if let Some(start) = path.iter().position(|on_path| *on_path == frame.component) {
            let mut cycle: Vec<String> = path[start..].iter().map(ToString::to_string).collect();
            cycle.push(frame.component.to_string());
            return Err(ComponentError::Cycle { cycle });
        }
        // Phase one fetched every component within the depth bound; a miss here is a bug, not bad input.
        let descriptor = graph
            .fetched
            .get(&frame.component)
            .cloned()
            .ok_or_else(|| ComponentError::Task(format!("{} was not fetched", frame.component)))?;
        path.push(frame.component.clone());
        path_descriptors.push(descriptor.clone());
        if nodes.len() >= options.max_nodes {
            return Err(ComponentError::TreeTooLarge {
                root: root.to_string(),
                limit: options.max_nodes,
            });
        }
        nodes.push(DependencyNode {
            descriptor: descriptor.clone(),
            path: path_descriptors.clone(),
        });
        if options.max_depth.is_some_and(|max| frame.level >= max) {
            continue;
        }
        // Push in reverse so the first reference is visited first.
        for child in children_of(&descriptor).into_iter().rev() {
            stack.push(Frame {
                component: child,
                level: frame.level + 1,
            });
        }
    }
    Ok(nodes)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex};

    use odg_ocm::ComponentDescriptor;
    use serde_json::json;

    use super::*;

    /// A descriptor `name` 1.0.0 referencing `children` (each at 1.0.0).
    fn descriptor(name: &str, children: &[&str]) -> Arc<FetchedDescriptor> {
        let references: Vec<_> = children
            .iter()
            .map(|child| {
                json!({"name": child, "componentName": child, "version": "1.0.0", "extraIdentity": {}, "labels": []})
            })
            .collect();
        let descriptor: ComponentDescriptor = serde_json::from_value(json!({
            "meta": {"schemaVersion": "v2"},
            "component": {
                "name": name, "version": "1.0.0", "provider": "acme", "repositoryContexts": [],
                "labels": [], "sources": [], "resources": [], "componentReferences": references,
            },
        }))
        .unwrap();
        Arc::new(FetchedDescriptor {
            descriptor,
            document: String::new(),
            repository: "localhost:5000/ocm".parse().unwrap(),
        })
    }

    /// A graph of descriptors by name; fetches are counted, and a fetch of `held` waits until
    /// `release_on` has been fetched (to make one branch of the discovery finish last).
    struct Graph {
        descriptors: HashMap<String, Arc<FetchedDescriptor>>,
        fetched: Mutex<Vec<String>>,
        held: Option<(String, String, Arc<tokio::sync::Notify>)>,
    }

    impl Graph {
        fn new(edges: &[(&str, &[&str])]) -> Graph {
            Graph {
                descriptors: edges
                    .iter()
                    .map(|(name, children)| (name.to_string(), descriptor(name, children)))
                    .collect(),
                fetched: Mutex::new(Vec::new()),
                held: None,
            }
        }

        fn holding(mut self, held: &str, until_fetched: &str) -> Graph {
            self.held = Some((
                held.to_string(),
                until_fetched.to_string(),
                Arc::new(tokio::sync::Notify::new()),
            ));
            self
        }

        async fn fetch(&self, id: ComponentId) -> Result<Arc<FetchedDescriptor>, ComponentError> {
            if let Some((held, release_on, notify)) = &self.held {
                if id.name == *held {
                    notify.notified().await;
                } else if id.name == *release_on {
                    // a stored permit, if the held fetch has not started waiting yet
                    notify.notify_one();
                }
            }
            self.fetched.lock().unwrap().push(id.name.clone());
            self.descriptors
                .get(&id.name)
                .cloned()
                .ok_or_else(|| ComponentError::InvalidInput(format!("{} is missing", id.name)))
        }

        async fn walk(
            &self,
            root: &str,
            options: &WalkOptions,
        ) -> Result<Vec<String>, ComponentError> {
            let nodes =
                walk_dependencies(self.descriptors[root].clone(), options, |id| self.fetch(id))
                    .await?;
            Ok(nodes
                .iter()
                .map(|node| {
                    node.path
                        .iter()
                        .map(|step| step.descriptor.component.name.as_str())
                        .collect::<Vec<_>>()
                        .join("/")
                })
                .collect())
        }
    }

    fn depth(max_depth: Option<usize>) -> WalkOptions {
        WalkOptions {
            max_depth,
            ..WalkOptions::default()
        }
    }

    #[tokio::test]
    async fn emits_depth_first_with_paths_and_fetches_shared_components_once() {
        let graph = Graph::new(&[
            ("root", &["a", "b"]),
            ("a", &["c"]),
            ("b", &["c"]),
            ("c", &[]),
        ]);
        let paths = graph.walk("root", &depth(None)).await.unwrap();
        assert_eq!(paths, ["root", "root/a", "root/a/c", "root/b", "root/b/c"]);
        let mut fetched = graph.fetched.lock().unwrap().clone();
        fetched.sort();
        assert_eq!(fetched, ["a", "b", "c"], "c once, the root never");
    }

    /// `b` is first found at depth 3 (through `a/p`), where the bound stops its children; then
    /// at depth 2 (through `x`, whose fetch finishes last): its subtree must be followed again,
    /// or `c` would be missing under `root/x/b`.
    #[tokio::test]
    async fn a_shorter_path_found_later_re_expands_the_subtree() {
        let graph = Graph::new(&[
            ("root", &["a", "x"]),
            ("a", &["p"]),
            ("p", &["b"]),
            ("x", &["b"]),
            ("b", &["c"]),
            ("c", &[]),
        ])
        .holding("x", "b");
        let paths = graph.walk("root", &depth(Some(3))).await.unwrap();
        assert_eq!(
            paths,
            [
                "root",
                "root/a",
                "root/a/p",
                "root/a/p/b",
                "root/x",
                "root/x/b",
                "root/x/b/c"
            ]
        );
    }

    #[tokio::test]
    async fn depth_zero_is_the_root_alone() {
        let graph = Graph::new(&[("root", &["a"]), ("a", &[])]);
        assert_eq!(graph.walk("root", &depth(Some(0))).await.unwrap(), ["root"]);
        assert!(graph.fetched.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn more_elements_than_max_nodes_is_a_tree_too_large() {
        // 5 elements: root, a, a/c, b, b/c (shared subtrees repeat per path)
        let graph = Graph::new(&[
            ("root", &["a", "b"]),
            ("a", &["c"]),
            ("b", &["c"]),
            ("c", &[]),
        ]);
        let at_limit = WalkOptions {
            max_nodes: 5,
            ..WalkOptions::default()
        };
        assert_eq!(graph.walk("root", &at_limit).await.unwrap().len(), 5);
        let below = WalkOptions {
            max_nodes: 4,
            ..WalkOptions::default()
        };
        match graph.walk("root", &below).await {
            Err(ComponentError::TreeTooLarge { limit, .. }) => assert_eq!(limit, 4),
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn a_cycle_is_reported_with_its_members() {
        let graph = Graph::new(&[("root", &["a"]), ("a", &["b"]), ("b", &["a"])]);
        match graph.walk("root", &depth(None)).await {
            Err(ComponentError::Cycle { cycle }) => {
                assert_eq!(cycle, ["a:1.0.0", "b:1.0.0", "a:1.0.0"]);
            }
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn a_missing_dependency_names_the_path_to_it() {
        let graph = Graph::new(&[("root", &["a"]), ("a", &["gone"])]);
        match graph.walk("root", &depth(None)).await {
            Err(ComponentError::BrokenDependency { name, path, .. }) => {
                assert_eq!(name, "gone");
                assert_eq!(path, ["root:1.0.0", "a:1.0.0", "gone:1.0.0"]);
            }
            other => panic!("{other:?}"),
        }
    }
}
