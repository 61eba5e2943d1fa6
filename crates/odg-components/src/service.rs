//! The component service: version lists, `greatest`, descriptor lookups across candidate
//! repositories, and the guard that keeps `ocm_repo_url` from turning us into an open proxy.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use futures::future::try_join_all;
use futures::stream::{self, StreamExt, TryStreamExt};
use odg_cache::{CacheError, CacheKey, InvalidationReport, Scope, Selector, TieredCache};
use odg_ocm::{
    sort_ascending, validate_component_name, validate_version, Label, OcmRepositoryUrl,
    RepositoryCandidate, RepositoryChoice, RepositoryMapping, VersionFilter,
};

use crate::cache::{
    current_cache_mode, kind, CachedComponentSource, TreeShape, KIND_ANSWER, KIND_DEPENDENCIES,
    KIND_DESCRIPTOR, KIND_DIFF, KIND_RESPONSIBLES,
};
use crate::source::{ComponentId, ComponentSource, FetchedDescriptor};
use crate::walk::{walk_dependencies, DependencyNode, WalkOptions};
use crate::ComponentError;

/// The original's answer to `ignore_lookup` without `ocm_repo_url`.
pub const IGNORE_LOOKUP_NEEDS_REPOSITORY: &str =
    "if `ignore_lookup` is true, an `ocm_repo_url` must be specified explicitly";

/// The version parameter value that asks for the greatest version.
pub const GREATEST: &str = "greatest";

/// Label some descriptors carry instead of `creationTime`.
const CREATION_DATE_LABEL: &str = "cloud.gardener/ocm/creation-date";

/// How many descriptors a date-filtered version listing fetches at once.
const DATE_FILTER_BATCH: usize = 8;

#[derive(Debug, Clone)]
pub struct ComponentServiceConfig {
    pub mapping: RepositoryMapping,
    /// Hosts (`host[:port]`) that `ocm_repo_url` may name besides the hosts of the mapping.
    pub allowed_hosts: Vec<String>,
    /// Defaults for dependency walks.
    pub walk: WalkOptions,
}

/// What `/ocm/component/versions` asks for.
#[derive(Debug, Clone, Default)]
pub struct VersionQuery {
    /// Overrides the repositories' own version filters.
    pub version_filter: Option<VersionFilter>,
    /// Inclusive upper cut-off: versions after this one (in ascending order) are dropped.
    pub upper_bound: Option<String>,
    /// The greatest `max` versions; 0 means all. Ignored with `start_date`, as in the original.
    pub max: usize,
    /// `YYYY-MM-DD`, inclusive; compares the descriptors' creation dates.
    pub start_date: Option<String>,
    /// `YYYY-MM-DD`, inclusive; only used together with `start_date`.
    pub end_date: Option<String>,
}

#[derive(Debug, Clone)]
pub struct ComponentService {
    inner: Arc<ServiceInner>,
}

#[derive(Debug)]
struct ServiceInner {
    mapping: RepositoryMapping,
    /// Set by [`ComponentService::with_cache`]: trees are cached and invalidations go through it.
    cache: Option<TieredCache>,
    /// Hosts `ocm_repo_url` may name: the mapping's hosts plus the configured extra ones.
    allowed_hosts: HashSet<String>,
    walk: WalkOptions,
    source: Arc<dyn ComponentSource>,
}

impl ComponentService {
    pub fn new(config: ComponentServiceConfig, source: Arc<dyn ComponentSource>) -> Self {
        let mut allowed_hosts: HashSet<String> = config
            .allowed_hosts
            .iter()
            .map(|host| host.to_ascii_lowercase())
            .collect();
        allowed_hosts.extend(
            config
                .mapping
                .rules
                .iter()
                .map(|rule| rule.repository.host.clone()),
        );
        ComponentService {
            inner: Arc::new(ServiceInner {
                mapping: config.mapping,
                allowed_hosts,
                walk: config.walk,
                source,
                cache: None,
            }),
        }
    }

    /// Puts `cache` in front of the source (descriptors, version lists) and caches dependency trees.
    pub fn with_cache(self, cache: TieredCache) -> Self {
        let inner = &self.inner;
        let source = CachedComponentSource::new(inner.source.clone(), cache.clone());
        ComponentService {
            inner: Arc::new(ServiceInner {
                mapping: inner.mapping.clone(),
                allowed_hosts: inner.allowed_hosts.clone(),
                walk: inner.walk.clone(),
                source: Arc::new(source),
                cache: Some(cache),
            }),
        }
    }

    pub fn cache(&self) -> Option<&TieredCache> {
        self.inner.cache.as_ref()
    }

    /// Drops what `selector` names from every tier of every pod. A tree embeds descriptors, so
    /// invalidating any descriptor also drops every cached tree, and both drop every rendered
    /// answer (coarse, but descriptors are immutable and invalidated only to correct mistakes,
    /// while trees and answers rebuild from cached parts).
    pub async fn invalidate(&self, selector: &Selector) -> Result<InvalidationReport, CacheError> {
        let Some(cache) = &self.inner.cache else {
            return Ok(InvalidationReport::default());
        };
        let mut report = cache.invalidate(selector).await?;
        let touches_descriptors = match selector {
            Selector::Component { .. } | Selector::ComponentVersion { .. } | Selector::Id(_) => {
                true
            }
            Selector::Kind(kind) => kind.as_str() == KIND_DESCRIPTOR,
            Selector::All => false,
        };
        let touches_trees = touches_descriptors
            || matches!(selector, Selector::Kind(kind) if kind.as_str() == KIND_DEPENDENCIES);
        // Rendered answers embed descriptors and trees: a tree's answer depends on every
        // component in it, so whatever drops either drops every answer.
        let mut dependents = Vec::new();
        if touches_descriptors {
            dependents.push(KIND_DEPENDENCIES);
        }
        if touches_trees {
            dependents.push(KIND_ANSWER);
            // A diff depends on every descriptor of two trees.
            dependents.push(KIND_DIFF);
        }
        // Responsibles depend on their own descriptor only: a component (version) selector
        // reaches them through their scope; a descriptor named by id or kind could be any.
        if matches!(selector, Selector::Id(_))
            || matches!(selector, Selector::Kind(kind) if kind.as_str() == KIND_DESCRIPTOR)
        {
            dependents.push(KIND_RESPONSIBLES);
        }
        for dependent in dependents {
            let dropped = cache.invalidate(&Selector::Kind(kind(dependent))).await?;
            report.memory_entries += dropped.memory_entries;
            report.disk_entries += dropped.disk_entries;
        }
        Ok(report)
    }

    pub fn mapping(&self) -> &RepositoryMapping {
        &self.inner.mapping
    }

    pub fn walk_options(&self) -> &WalkOptions {
        &self.inner.walk
    }

    /// Reads an `ocm_repo_url` parameter: a virtual repository's name (`<auto>` and the
    /// configured ones), else a repository URL whose host must be mapped or allowed.
    pub fn requested_repository(&self, url: &str) -> Result<RepositoryChoice, ComponentError> {
        if self.inner.mapping.is_virtual(url) {
            return Ok(RepositoryChoice::Virtual(url.to_string()));
        }
        let repository: OcmRepositoryUrl = url.parse().map_err(|error: odg_ocm::OcmError| {
            ComponentError::InvalidInput(format!("ocm_repo_url: {error}"))
        })?;
        if !self.inner.allowed_hosts.contains(&repository.host) {
            return Err(ComponentError::Forbidden(format!(
                "ocm_repo_url names host {:?}, which is neither in the repository mapping nor an allowed OCM repository host",
                repository.host
            )));
        }
        Ok(RepositoryChoice::Repository(repository))
    }

    fn candidates(
        &self,
        component_name: &str,
        preferred: Option<&RepositoryChoice>,
    ) -> Result<Vec<RepositoryCandidate>, ComponentError> {
        validate_component_name(component_name)?;
        Ok(self.inner.mapping.candidates_for(component_name, preferred))
    }

    /// Every version of the component over all candidate repositories, each filtered by
    /// `filter_override` or else its repository's filter, deduplicated, in ascending order
    /// (unparsable versions first, as the original sorts them as `0.0`).
    pub async fn all_versions(
        &self,
        component_name: &str,
        preferred: Option<&RepositoryChoice>,
        filter_override: Option<&VersionFilter>,
    ) -> Result<Vec<String>, ComponentError> {
        let candidates = self.candidates(component_name, preferred)?;
        let per_repository = try_join_all(candidates.iter().map(|candidate| async move {
            let versions = self
                .inner
                .source
                .versions(&candidate.repository, component_name)
                .await?;
            let filter = filter_override.or(candidate.version_filter.as_ref());
            Ok::<_, ComponentError>(
                versions
                    .into_iter()
                    .filter(|version| filter.is_none_or(|filter| filter.matches(version)))
                    .collect::<Vec<_>>(),
            )
        }))
        .await?;
        let mut seen = HashSet::new();
        let mut versions: Vec<String> = per_repository
            .into_iter()
            .flatten()
            .filter(|version| seen.insert(version.clone()))
            .collect();
        sort_ascending(&mut versions);
        Ok(versions)
    }

    /// `greatest` resolved over the union of the candidates' (filtered) versions; other values validated.
    pub async fn resolve_version(
        &self,
        component_name: &str,
        version: &str,
        preferred: Option<&RepositoryChoice>,
    ) -> Result<String, ComponentError> {
        if version != GREATEST {
            validate_version(version)?;
            return Ok(version.to_string());
        }
        let versions = self.all_versions(component_name, preferred, None).await?;
        odg_ocm::greatest(versions.iter().map(String::as_str))
            .map(str::to_string)
            .ok_or_else(|| ComponentError::ComponentNotFound {
                name: component_name.to_string(),
            })
    }

    /// The descriptor from the first candidate repository that has it.
    pub async fn descriptor(
        &self,
        component: &ComponentId,
        preferred: Option<&RepositoryChoice>,
    ) -> Result<Arc<FetchedDescriptor>, ComponentError> {
        validate_version(&component.version)?;
        for candidate in self.candidates(&component.name, preferred)? {
            if let Some(found) = self
                .inner
                .source
                .descriptor(&candidate.repository, component)
                .await?
            {
                return Ok(found);
            }
        }
        Err(ComponentError::VersionNotFound {
            name: component.name.clone(),
            version: component.version.clone(),
        })
    }

    /// The descriptor from `repository` alone, the mapping's candidates not consulted (the
    /// original's `ignore_lookup`).
    pub async fn descriptor_in(
        &self,
        component: &ComponentId,
        repository: &OcmRepositoryUrl,
    ) -> Result<Arc<FetchedDescriptor>, ComponentError> {
        validate_component_name(&component.name)?;
        validate_version(&component.version)?;
        self.inner
            .source
            .descriptor(repository, component)
            .await?
            .ok_or_else(|| ComponentError::VersionNotFound {
                name: component.name.clone(),
                version: component.version.clone(),
            })
    }

    /// [`Self::descriptor`], or with `ignore_lookup` [`Self::descriptor_in`] `preferred`, which
    /// must then be given (the original refuses `ignore_lookup` without `ocm_repo_url`).
    pub async fn descriptor_looked_up(
        &self,
        component: &ComponentId,
        preferred: Option<&RepositoryChoice>,
        ignore_lookup: bool,
    ) -> Result<Arc<FetchedDescriptor>, ComponentError> {
        match (
            preferred.and_then(RepositoryChoice::repository),
            ignore_lookup,
        ) {
            (_, false) => self.descriptor(component, preferred).await,
            (Some(repository), true) => self.descriptor_in(component, repository).await,
            (None, true) => Err(ComponentError::InvalidInput(
                IGNORE_LOOKUP_NEEDS_REPOSITORY.into(),
            )),
        }
    }

    /// A `localBlob` of `component` in `repository` (where its descriptor was found), streamed.
    pub async fn local_blob(
        &self,
        repository: &OcmRepositoryUrl,
        component_name: &str,
        digest: &str,
        range: Option<odg_oci::ByteRange>,
    ) -> Result<odg_oci::BlobRead, ComponentError> {
        self.inner
            .source
            .local_blob(repository, component_name, digest, range)
            .await
    }

    /// `/ocm/component/versions`: see [`VersionQuery`] for the semantics kept from the original.
    pub async fn versions(
        &self,
        component_name: &str,
        preferred: Option<&RepositoryChoice>,
        query: &VersionQuery,
    ) -> Result<Vec<String>, ComponentError> {
        let mut versions = self
            .all_versions(component_name, preferred, query.version_filter.as_ref())
            .await?;
        if let Some(bound) = &query.upper_bound {
            if let Some(index) = versions.iter().position(|version| version == bound) {
                versions.truncate(index + 1);
            }
        }
        if let Some(start_date) = &query.start_date {
            return self
                .versions_created_between(
                    component_name,
                    preferred,
                    versions,
                    start_date,
                    query.end_date.as_deref(),
                )
                .await;
        }
        if query.max > 0 && versions.len() > query.max {
            versions.drain(..versions.len() - query.max);
        }
        Ok(versions)
    }

    /// Walks from the greatest version down, keeping versions created in `[start, end]` and
    /// stopping at the first one created before `start`; the answer is descending, as the original's.
    async fn versions_created_between(
        &self,
        component_name: &str,
        preferred: Option<&RepositoryChoice>,
        ascending: Vec<String>,
        start_date: &str,
        end_date: Option<&str>,
    ) -> Result<Vec<String>, ComponentError> {
        let mut selected = Vec::new();
        let descending: Vec<String> = ascending.into_iter().rev().collect();
        for batch in descending.chunks(DATE_FILTER_BATCH) {
            let descriptors = try_join_all(batch.iter().map(|version| {
                let component = ComponentId::new(component_name, version.clone());
                async move { self.descriptor(&component, preferred).await }
            }))
            .await?;
            for (version, fetched) in batch.iter().zip(descriptors) {
                let Some(created) = creation_date(&fetched) else {
                    continue;
                };
                if end_date.is_some_and(|end| created.as_str() > end) {
                    continue;
                }
                if created.as_str() < start_date {
                    return Ok(selected);
                }
                selected.push(version.clone());
            }
        }
        Ok(selected)
    }

    /// The dependency tree of `root` in depth-first pre-order, each element with its path from the root.
    pub async fn dependencies(
        &self,
        root: &ComponentId,
        preferred: Option<&RepositoryChoice>,
        options: &WalkOptions,
    ) -> Result<Vec<DependencyNode>, ComponentError> {
        let Some(cache) = &self.inner.cache else {
            return self.walk(root, preferred, options).await;
        };
        let depth = options
            .max_depth
            .map_or_else(|| "-1".to_string(), |depth| depth.to_string());
        let key = CacheKey::new(
            kind(KIND_DEPENDENCIES),
            &[
                &preferred.map(ToString::to_string).unwrap_or_default(),
                &root.name.to_lowercase(),
                &root.version,
                &depth,
                &options.max_nodes.to_string(),
            ],
            Scope::component_version(&root.name, &root.version),
        );
        let (service, root_id, preferred_owned, walk_options) = (
            self.clone(),
            root.clone(),
            preferred.cloned(),
            options.clone(),
        );
        let shape = cache
            .get_or_load(&key, current_cache_mode(), move || async move {
                let nodes = service
                    .walk(&root_id, preferred_owned.as_ref(), &walk_options)
                    .await?;
                Ok::<_, ComponentError>(TreeShape::of(&nodes))
            })
            .await?;
        self.nodes_from_shape(&shape, preferred).await
    }

    /// Rebuilds a tree from its cached shape; the descriptors come from the descriptor cache.
    async fn nodes_from_shape(
        &self,
        shape: &TreeShape,
        preferred: Option<&RepositoryChoice>,
    ) -> Result<Vec<DependencyNode>, ComponentError> {
        let mut unique: Vec<ComponentId> = shape
            .nodes
            .iter()
            .map(|(name, version, _)| ComponentId::new(name, version))
            .collect();
        unique.sort();
        unique.dedup();
        let concurrency = self.inner.walk.concurrency.max(1);
        let fetched: HashMap<ComponentId, Arc<FetchedDescriptor>> = stream::iter(unique)
            .map(|component| async move {
                let descriptor = self.descriptor(&component, preferred).await?;
                Ok::<_, ComponentError>((component, descriptor))
            })
            .buffer_unordered(concurrency)
            .try_collect()
            .await?;
        let mut nodes: Vec<DependencyNode> = Vec::with_capacity(shape.nodes.len());
        for (name, version, parent) in &shape.nodes {
            let descriptor = fetched[&ComponentId::new(name, version)].clone();
            let mut path = match parent {
                Some(parent) => nodes
                    .get(*parent as usize)
                    .map(|parent| parent.path.clone())
                    .ok_or_else(|| {
                        ComponentError::Task("cached tree shape is inconsistent".into())
                    })?,
                None => Vec::new(),
            };
            path.push(descriptor.clone());
            nodes.push(DependencyNode { descriptor, path });
        }
        Ok(nodes)
    }

    #[tracing::instrument(level = "info", skip_all, fields(root = %root))]
    async fn walk(
        &self,
        root: &ComponentId,
        preferred: Option<&RepositoryChoice>,
        options: &WalkOptions,
    ) -> Result<Vec<DependencyNode>, ComponentError> {
        let root_descriptor = self.descriptor(root, preferred).await?;
        walk_dependencies(root_descriptor, options, |component| {
            let service = self.clone();
            let preferred = preferred.cloned();
            async move { service.descriptor(&component, preferred.as_ref()).await }
        })
        .await
    }
}

/// `YYYY-MM-DD` of the component's creation time, or of the creation-date label.
fn creation_date(fetched: &FetchedDescriptor) -> Option<String> {
    let component = &fetched.descriptor.component;
    let from_label = || {
        component
            .labels
            .iter()
            .find(|label: &&Label| label.name == CREATION_DATE_LABEL)
            .and_then(|label| label.value.as_str().map(str::to_string))
    };
    let timestamp = component.creation_time.clone().or_else(from_label)?;
    let date = timestamp.get(..10)?;
    is_iso_date(date).then(|| date.to_string())
}

/// True for `YYYY-MM-DD` (digits and dashes in place; the calendar is not checked).
pub fn is_iso_date(text: &str) -> bool {
    let bytes = text.as_bytes();
    bytes.len() == 10
        && bytes.iter().enumerate().all(|(index, byte)| match index {
            4 | 7 => *byte == b'-',
            _ => byte.is_ascii_digit(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_dates() {
        assert!(is_iso_date("2026-01-31"));
        assert!(!is_iso_date("2026-1-31"));
        assert!(!is_iso_date("2026/01/31"));
        assert!(!is_iso_date("2026-01-31T00"));
    }
}
