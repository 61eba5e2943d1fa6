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
