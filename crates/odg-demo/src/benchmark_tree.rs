//! Wide and deep component trees for benchmarks: `components` spread over `depth` levels below
//! one root, every component referencing `fan_out` components of the next level, so subtrees
//! are shared and the tree is far larger than the set of distinct components.

use odg_ocm::ComponentDescriptor;

use crate::{descriptor, image_resource};

#[derive(Debug, Clone)]
pub struct BenchmarkTree {
    pub root_name: String,
    pub root_version: String,
    pub descriptors: Vec<ComponentDescriptor>,
}

/// A tree of `components` distinct components (root included) over `depth` levels below the root.
pub fn benchmark_tree(components: usize, depth: usize, fan_out: usize) -> BenchmarkTree {
    assert!(
        depth >= 1 && components > depth,
        "need at least one component per level"
    );
    let below_root = components - 1;
    // Level sizes: as even as possible, each level at least one component.
    let levels: Vec<Vec<String>> = (0..depth)
        .map(|level| {
            let size = below_root / depth + usize::from(level < below_root % depth);
            (0..size)
                .map(|index| format!("bench.example.org/level{}/component-{index:04}", level + 1))
                .collect()
        })
        .collect();
    let version = "1.0.0";
    let mut descriptors = Vec::with_capacity(components);
    let root_name = "bench.example.org/root".to_string();
    let root_refs = levels[0]
        .iter()
        .map(|name| (name.clone(), version.to_string()))
        .collect();
    descriptors.push(descriptor(
        &root_name,
        version,
        "2026-01-01T00:00:00Z",
        vec![],
        root_refs,
        vec![],
    ));
    for (level, names) in levels.iter().enumerate() {
        for (index, name) in names.iter().enumerate() {
            let references = match levels.get(level + 1) {
                Some(next) => (0..fan_out.min(next.len()))
                    .map(|offset| {
                        (
                            next[(index * fan_out + offset) % next.len()].clone(),
                            version.to_string(),
                        )
                    })
                    .collect(),
                None => vec![],
            };
            descriptors.push(descriptor(
                name,
                version,
                "2026-01-01T00:00:00Z",
                vec![image_resource(name, version)],
                references,
                vec![],
            ));
        }
    }
    BenchmarkTree {
        root_name,
        root_version: version.to_string(),
        descriptors,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tree_has_requested_size_and_depth() {
        let tree = benchmark_tree(300, 6, 2);
        assert_eq!(tree.descriptors.len(), 300);
        let deepest = tree
            .descriptors
            .iter()
            .filter(|d| d.component.name.contains("/level6/"))
            .count();
        assert!(deepest > 0);
        assert!(tree
            .descriptors
            .iter()
            .all(|d| !d.component.name.contains("/level7/")));
    }
}
