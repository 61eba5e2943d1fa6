//! The component routes' answers as cached bytes: one `answer` entry per (route, repository,
//! component version, representation), rendered from the cached descriptors and trees on a
//! miss and shared as-is on every hit.
//!
//! Keys always name a pinned version: `greatest` is resolved first (through the `versions`
//! kind, with its freshness), so an answer itself never changes and is kept until invalidated.

use std::sync::Arc;

use odg_cache::{CacheKey, Scope};
use odg_ocm::RepositoryChoice;

use crate::answer::{RenderedAnswer, INLINE_WORK_BYTES};
use crate::cache::{current_cache_mode, kind, KIND_ANSWER};
use crate::render::{dependencies_json, descriptor_json, raw_document_json, Populate};
use crate::{
    ComponentError, ComponentId, ComponentService, WalkOptions, IGNORE_LOOKUP_NEEDS_REPOSITORY,
};

/// Trees up to this many elements are rendered inline; a larger one is megabytes of JSON.
const INLINE_TREE_ELEMENTS: usize = 32;

fn answer_key(
    route: &str,
    preferred: Option<&RepositoryChoice>,
    component: &ComponentId,
    variant: &[&str],
) -> CacheKey {
    let preferred = preferred.map(ToString::to_string).unwrap_or_default();
    let name = component.name.to_lowercase();
    // on the stack: every route passes at most four variant parts
    let mut parts = [""; 8];
    let count = 4 + variant.len();
    parts[..4].copy_from_slice(&[route, &preferred, &name, &component.version]);
    parts[4..count].copy_from_slice(variant);
    let key_parts = &parts[..count];
    let scope = Scope {
        version: Some(component.version.clone()),
        component: Some(name.clone()),
    };
    CacheKey::new(kind(KIND_ANSWER), key_parts, scope)
}

impl ComponentService {
    /// `/ocm/component` of a pinned version: the descriptor as JSON, or with `raw` the stored
    /// document as a JSON string. With `ignore_lookup` only `preferred` is asked (the original's
    /// `ignore_lookup`), and it must be given.
    pub async fn descriptor_answer(
        &self,
        component: &ComponentId,
        preferred: Option<&RepositoryChoice>,
        raw: bool,
        ignore_lookup: bool,
    ) -> Result<Arc<RenderedAnswer>, ComponentError> {
        if ignore_lookup && preferred.and_then(RepositoryChoice::repository).is_none() {
            return Err(ComponentError::InvalidInput(
                IGNORE_LOOKUP_NEEDS_REPOSITORY.into(),
            ));
        }
        // called only to load: a warm hit clones nothing
        let render = || {
            let service = self.clone();
            let (component, preferred) = (component.clone(), preferred.cloned());
            async move {
                let fetched = service
                    .descriptor_looked_up(&component, preferred.as_ref(), ignore_lookup)
                    .await?;
                // The stored document's length stands for the answer's: both grow together.
                let inline = fetched.document.len() <= INLINE_WORK_BYTES;
                let serialise = move || {
                    let json = if raw {
                        raw_document_json(&fetched)?
                    } else {
                        descriptor_json(&fetched)?
                    };
                    Ok::<_, ComponentError>(RenderedAnswer::new(json))
                };
                if inline {
                    serialise()
                } else {
                    odg_offload::run_cpu_bound(serialise).await?
                }
            }
        };
        let Some(cache) = self.cache() else {
            return render().await.map(Arc::new);
        };
        let key = answer_key(
            "component",
            preferred,
            component,
            &[
                if raw { "raw" } else { "json" },
                if ignore_lookup { "only" } else { "lookup" },
            ],
        );
        cache.get_or_load(&key, current_cache_mode(), render).await
    }

    /// `/ocm/component/dependencies` of a pinned root: the whole tree's JSON.
    pub async fn dependencies_answer(
        &self,
        root: &ComponentId,
        preferred: Option<&RepositoryChoice>,
        options: &WalkOptions,
        populate: Populate,
    ) -> Result<Arc<RenderedAnswer>, ComponentError> {
        let render = || {
            let service = self.clone();
            let (root, preferred, options) = (root.clone(), preferred.cloned(), options.clone());
            async move {
                let nodes = service
                    .dependencies(&root, preferred.as_ref(), &options)
                    .await?;
                let inline = nodes.len() <= INLINE_TREE_ELEMENTS;
                let serialise = move || RenderedAnswer::new(dependencies_json(&nodes, populate));
                if inline {
                    Ok::<_, ComponentError>(serialise())
                } else {
                    odg_offload::run_cpu_bound(serialise)
                        .await
                        .map_err(ComponentError::from)
                }
            }
        };
        let Some(cache) = self.cache() else {
            return render().await.map(Arc::new);
        };
        let depth = options
            .max_depth
            .map_or_else(|| "-1".to_string(), |depth| depth.to_string());
        let key = answer_key(
            "dependencies",
            preferred,
            root,
            &[&depth, &options.max_nodes.to_string(), populate.as_str()],
        );
        cache.get_or_load(&key, current_cache_mode(), render).await
    }
}
