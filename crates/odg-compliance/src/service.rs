//! `ComplianceService`: the summary of a component tree, each (component version, finding type,
//! datasource) part cached in the tiered cache as kind `compliance-summary`, and the invalidation
//! of exactly the parts a metadata write affects, in every pod, before the write answers.
//!
//! Scope of a part: component `"<name>|<finding type>|<datasource>"` (lower-cased by the cache),
//! version = the component version. A write about (name, version, type, source) bumps the
//! generation of that scope-version; a version-less write (findings shared across versions)
//! bumps the scope's component generation, which covers every version; a rescoring without a
//! component name bumps the kind. Nothing else of the cache (descriptors, trees) is touched.
//!
//! Coherence: pub/sub reaches other pods within moments, which is not "before the write
//! answers". So every summary read first brings the generations covering its parts up to date
//! from Redis in one `HMGET` ([`TieredCache::sync_generations`]); the writer bumped them in Redis
//! before answering, so no pod serves a part the write invalidated. A part computed while a write
//! was in flight is stamped with the older generation and never served after the sync.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures::stream::{self, StreamExt, TryStreamExt};
use odg_cache::{
    CacheKey, CacheMode, CacheValue, InvalidationReport, Kind, KindPolicy, Scope, Selector,
    TieredCache,
};
use odg_components::{ComponentId, ComponentService, DependencyNode, WalkOptions};
use odg_delivery_db::{
    ArtefactKind, ComponentArtefactId, DeliveryDb, LocalArtefactId, PreparedEntry,
};
use odg_ocm::RepositoryChoice;
use serde_json::{json, Value};

use crate::config::{artefact_id, FindingConfig, FindingConfigs, RESCORINGS, SCAN_INFO};
use crate::summary::{rows_of_version, summarise, SummaryEntry, TypeSummary};
use crate::ComplianceError;

/// The cache kind of summary parts.
pub const KIND_COMPLIANCE_SUMMARY: &str = "compliance-summary";
/// The original keeps summaries for a day; writes invalidate them exactly, so this is a safety net.
pub const SUMMARY_FRESH_FOR: Duration = Duration::from_secs(24 * 3600);
/// Parts computed at once for one request.
const SUMMARY_CONCURRENCY: usize = 16;

/// The cache policy of summary parts: memory and Redis, fresh for a day (then one refresh while
/// the stale part is served for up to an hour); not on disk, where a restart would find it
/// without knowing which writes it missed.
pub fn default_policies() -> HashMap<String, KindPolicy> {
    HashMap::from([(
        KIND_COMPLIANCE_SUMMARY.to_string(),
        KindPolicy::mutable(SUMMARY_FRESH_FOR, Duration::from_secs(3600)),
    )])
}

#[allow(
    clippy::expect_used,
    reason = "a constant kind name, checked by the tests"
)]
fn kind() -> Kind {
    Kind::new(KIND_COMPLIANCE_SUMMARY).expect("a valid kind")
}

/// The cache scope name of (component, finding type, datasource).
pub fn scope_name(component_name: &str, finding_type: &str, datasource: &str) -> String {
    format!("{component_name}|{finding_type}|{datasource}")
}

impl CacheValue for TypeSummary {
    #[allow(
        clippy::expect_used,
        reason = "a summary has only string map keys: it always serialises"
    )]
    fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("summaries serialise")
    }

    fn decode(payload: &[u8]) -> Result<Self, String> {
        serde_json::from_slice(payload).map_err(|error| error.to_string())
    }

    fn footprint(&self) -> usize {
        std::mem::size_of::<Self>()
            + self
                .artefacts
                .iter()
                .map(|(artefact, entry)| {
                    // About the size of the JSON, times two for the tree's bookkeeping.
                    2 * artefact.to_string().len() + std::mem::size_of_val(entry) + 64
                })
                .sum::<usize>()
    }
}

#[derive(Debug, Clone)]
pub struct ComplianceService {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    db: DeliveryDb,
    components: ComponentService,
    configs: Arc<FindingConfigs>,
}

/// One part to compute: a component version's artefacts and one finding config.
struct Part {
    name: String,
    version: String,
    artefacts: Arc<Vec<ComponentArtefactId>>,
    config: Arc<FindingConfig>,
    key: CacheKey,
}

impl ComplianceService {
    pub fn new(db: DeliveryDb, components: ComponentService, configs: FindingConfigs) -> Self {
        ComplianceService {
            inner: Arc::new(Inner {
                db,
                components,
                configs: Arc::new(configs),
            }),
        }
    }

    pub fn db(&self) -> &DeliveryDb {
        &self.inner.db
    }

    pub fn configs(&self) -> &FindingConfigs {
        &self.inner.configs
    }

    pub fn components(&self) -> &ComponentService {
        &self.inner.components
    }

    fn cache(&self) -> Option<&TieredCache> {
        self.inner.components.cache()
    }

    /// The resources, then the sources, of a descriptor as metadata artefacts.
    pub fn artefacts_of(node: &DependencyNode) -> Vec<ComponentArtefactId> {
        let component = &node.descriptor.descriptor.component;
        component
            .resources
            .iter()
            .map(|resource| {
                artefact_id(
                    &component.name,
                    &component.version,
                    ArtefactKind::Resource,
                    resource,
                )
            })
            .chain(component.sources.iter().map(|source| {
                artefact_id(
                    &component.name,
                    &component.version,
                    ArtefactKind::Source,
                    source,
                )
            }))
            .collect()
    }

    /// The local ids of a component version's artefacts (for the query route's version rule);
    /// empty when the descriptor cannot be read.
    pub async fn version_artefacts(&self, name: &str, version: &str) -> Vec<LocalArtefactId> {
        let component = ComponentId::new(name, version);
        match self.inner.components.descriptor(&component, None).await {
            Ok(fetched) => {
                let component = &fetched.descriptor.component;
                component
                    .resources
                    .iter()
                    .map(|resource| (ArtefactKind::Resource, resource))
                    .chain(
                        component
                            .sources
                            .iter()
                            .map(|source| (ArtefactKind::Source, source)),
                    )
                    .filter_map(|(kind, artefact)| {
                        artefact_id(&component.name, &component.version, kind, artefact).artefact
                    })
                    .collect()
            }
            Err(error) => {
                tracing::debug!(%error, name, version, "no descriptor for the query's version rule");
                Vec::new()
            }
        }
    }

    /// `GET /components/compliance-summary`: the tree walked to `max_depth` (duplicates kept), for
    /// each component the entries of every finding type of the profile, and per artefact.
    pub async fn summary(
        &self,
        root: &ComponentId,
        preferred: Option<&RepositoryChoice>,
        max_depth: Option<usize>,
        profile: Option<&str>,
        mode: CacheMode,
    ) -> Result<Value, ComplianceError> {
        let options = WalkOptions {
            max_depth,
            ..self.inner.components.walk_options().clone()
        };
        let nodes = self
            .inner
            .components
            .dependencies(root, preferred, &options)
            .await?;
        let configs: Vec<Arc<FindingConfig>> = self
            .inner
            .configs
            .for_profile(profile)
            .into_iter()
            .map(|config| Arc::new(config.clone()))
            .collect();

        // Each distinct component version once, in first-seen order.
        let mut distinct: Vec<(String, String, Arc<Vec<ComponentArtefactId>>)> = Vec::new();
        let mut index_of: HashMap<(String, String), usize> = HashMap::new();
        for node in &nodes {
            let component = &node.descriptor.descriptor.component;
            let id = (component.name.clone(), component.version.clone());
            if !index_of.contains_key(&id) {
                index_of.insert(id.clone(), distinct.len());
                distinct.push((id.0, id.1, Arc::new(ComplianceService::artefacts_of(node))));
            }
        }
        let mut parts = Vec::new();
        for (name, version, artefacts) in &distinct {
            for config in &configs {
                parts.push(Part {
                    key: part_key(name, version, artefacts, config),
                    name: name.clone(),
                    version: version.clone(),
                    artefacts: artefacts.clone(),
                    config: config.clone(),
                });
            }
        }
        let mode = self.coherent_mode(&parts, mode).await;
        let futures = parts.into_iter().map(|part| {
            let service = self.clone();
            async move { service.part_summary(&part, mode).await }
        });
        let summaries: Vec<Arc<TypeSummary>> = stream::iter(futures)
            .buffered(SUMMARY_CONCURRENCY)
            .try_collect()
            .await?;

        let per_component = configs.len();
        let mut answer = Vec::with_capacity(nodes.len());
        for node in &nodes {
            let component = &node.descriptor.descriptor.component;
            let index = index_of[&(component.name.clone(), component.version.clone())];
            let own = &summaries[index * per_component..(index + 1) * per_component];
            answer.push(component_json(&component.name, &component.version, own));
        }
        Ok(json!({ "complianceSummary": answer }))
    }

    /// Brings the generations of `parts` up to date (see the module docs). If Redis cannot be
    /// asked, this pod cannot know what other pods invalidated: skip cached reads (`Refresh`).
    async fn coherent_mode(&self, parts: &[Part], mode: CacheMode) -> CacheMode {
        let Some(cache) = self.cache() else {
            return mode;
        };
        if mode != CacheMode::Normal {
            return mode;
        }
        let keys: Vec<&CacheKey> = parts.iter().map(|part| &part.key).collect();
        match cache.sync_generations(&keys).await {
            Ok(()) => mode,
            Err(error) => {
                tracing::warn!(%error, "cannot check summary generations with the shared cache; computing without cached reads");
                CacheMode::Refresh
            }
        }
    }

    async fn part_summary(
        &self,
        part: &Part,
        mode: CacheMode,
    ) -> Result<Arc<TypeSummary>, ComplianceError> {
        let (db, name, version, artefacts, config) = (
            self.inner.db.clone(),
            part.name.clone(),
            part.version.clone(),
            part.artefacts.clone(),
            part.config.clone(),
        );
        let load =
            move || async move { compute_part(&db, &name, &version, &artefacts, &config).await };
        match self.cache() {
            Some(cache) => cache.get_or_load(&part.key, mode, load).await,
            None => load().await.map(Arc::new),
        }
    }

    /// Drops, in every pod, the summary parts that `entries` (just written or deleted) affect.
    /// Call after the transaction committed and before answering.
    pub async fn invalidate_for(
        &self,
        entries: &[PreparedEntry],
    ) -> Result<InvalidationReport, odg_cache::CacheError> {
        let Some(cache) = self.cache() else {
            return Ok(InvalidationReport::default());
        };
        let mut report = InvalidationReport::default();
        for selector in selectors_for(&self.inner.configs, entries) {
            let one = cache.invalidate(&selector).await?;
            report.memory_entries += one.memory_entries;
            report.disk_entries += one.disk_entries;
            report.published |= one.published;
        }
        Ok(report)
    }
}

fn part_key(
    name: &str,
    version: &str,
    artefacts: &[ComponentArtefactId],
    config: &FindingConfig,
) -> CacheKey {
    use sha2::{Digest, Sha256};
    let mut hasher = Sha256::new();
    for artefact in artefacts {
        hasher.update(artefact.key().as_bytes());
        hasher.update([0]);
    }
    let artefacts_digest = hex::encode(&hasher.finalize()[..12]);
    CacheKey::new(
        kind(),
        &[
            &name.to_lowercase(),
            version,
            &config.r#type,
            &config.datasource,
            &config.fingerprint,
            &artefacts_digest,
        ],
        Scope::component_version(
            &scope_name(name, &config.r#type, &config.datasource),
            version,
        ),
    )
}

/// Steps 1 to 3 from the database, then [`summarise`].
async fn compute_part(
    db: &DeliveryDb,
    name: &str,
    version: &str,
    artefacts: &[ComponentArtefactId],
    config: &FindingConfig,
) -> Result<TypeSummary, ComplianceError> {
    let rows = db
        .component_rows(
            name,
            version,
            &config.datasource,
            &[SCAN_INFO, &config.r#type],
        )
        .await?;
    let rows = rows_of_version(rows, version, artefacts);
    let has_findings = rows
        .iter()
        .any(|row| row.metadata.meta.r#type == config.r#type)
        && rows.iter().any(|row| row.metadata.meta.r#type == SCAN_INFO);
    let rescorings = if has_findings {
        db.rescorings(name, version, &config.r#type).await?
    } else {
        Vec::new()
    };
    summarise(config, artefacts, &rows, &rescorings)
}

fn component_json(name: &str, version: &str, parts: &[Arc<TypeSummary>]) -> Value {
    let entries: Vec<&SummaryEntry> = parts
        .iter()
        .filter_map(|part| part.component.as_ref())
        .collect();
    // Artefacts in first-seen order, each with its entries of every type.
    let mut artefacts: Vec<(&Value, Vec<&SummaryEntry>)> = Vec::new();
    for part in parts {
        for (artefact, entry) in &part.artefacts {
            match artefacts.iter_mut().find(|(known, _)| *known == artefact) {
                Some((_, entries)) => entries.push(entry),
                None => artefacts.push((artefact, vec![entry])),
            }
        }
    }
    json!({
        "componentId": {"name": name, "version": version},
        "entries": entries,
        "artefacts": artefacts
            .into_iter()
            .map(|(artefact, entries)| json!({"artefact": artefact, "entries": entries}))
            .collect::<Vec<_>>(),
    })
}

/// The selectors naming exactly the summary parts `entries` affect:
/// - a scan info: every configured type of its datasource;
/// - a finding of a configured type from that type's datasource: that type;
/// - a rescoring: the type it references (every component's when it names no component);
/// - with a component version: that version's parts; without: every version's.
///
/// Entries without a component name (other than rescorings) and of other types affect no summary.
pub fn selectors_for(configs: &FindingConfigs, entries: &[PreparedEntry]) -> Vec<Selector> {
    let mut selectors: Vec<Selector> = Vec::new();
    let mut add = |selector: Selector| {
        if !selectors.contains(&selector) {
            selectors.push(selector);
        }
    };
    for entry in entries {
        let meta = &entry.metadata.meta;
        let artefact = &entry.metadata.artefact;
        let affected: Vec<&FindingConfig> = if meta.r#type == SCAN_INFO {
            configs
                .findings
                .iter()
                .filter(|config| config.datasource == meta.datasource)
                .collect()
        } else if meta.r#type == RESCORINGS {
            entry
                .referenced_type
                .as_deref()
                .and_then(|referenced| configs.get(referenced))
                .into_iter()
                .collect()
        } else {
            configs
                .get(&meta.r#type)
                .filter(|config| config.datasource == meta.datasource)
                .into_iter()
                .collect()
        };
        if affected.is_empty() {
            continue;
        }
        let Some(component_name) = &artefact.component_name else {
            if meta.r#type == RESCORINGS {
                add(Selector::Kind(kind()));
            }
            continue;
        };
        for config in affected {
            let scope = scope_name(component_name, &config.r#type, &config.datasource);
            add(match &artefact.component_version {
                Some(version) => Selector::component_version(&scope, version),
                None => Selector::component(&scope),
            });
        }
    }
    selectors
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn prepared(
        component: Option<&str>,
        version: Option<&str>,
        source: &str,
        r#type: &str,
        data: Value,
    ) -> PreparedEntry {
        PreparedEntry::from_json(&json!({
            "artefact": {"component_name": component, "component_version": version, "artefact_kind": "resource",
                         "artefact": {"artefact_name": "img"}},
            "meta": {"datasource": source, "type": r#type}, "data": data,
        }))
        .unwrap()
    }

    #[test]
    fn writes_select_exactly_the_parts_they_affect() {
        let configs = FindingConfigs::defaults();
        let scope = |r#type: &str, source: &str| scope_name("c", r#type, source);
        // A scan info: every type of its source, this version only.
        assert_eq!(
            selectors_for(
                &configs,
                &[prepared(
                    Some("c"),
                    Some("1"),
                    "bdba",
                    "meta/artefact_scan_info",
                    json!({})
                )]
            ),
            vec![
                Selector::component_version(&scope("finding/vulnerability", "bdba"), "1"),
                Selector::component_version(&scope("finding/license", "bdba"), "1"),
            ]
        );
        // A version-less finding: its type, every version; duplicates collapse.
        let finding = prepared(
            Some("c"),
            None,
            "bdba",
            "finding/vulnerability",
            json!({"key": "k"}),
        );
        assert_eq!(
            selectors_for(&configs, &[finding.clone(), finding]),
            vec![Selector::component(&scope("finding/vulnerability", "bdba"))]
        );
        // A finding from another source than the type's, another type, or no component: nothing.
        assert!(selectors_for(
            &configs,
            &[prepared(
                Some("c"),
                Some("1"),
                "clamav",
                "finding/vulnerability",
                json!({})
            )]
        )
        .is_empty());
        assert!(selectors_for(
            &configs,
            &[prepared(
                Some("c"),
                Some("1"),
                "bdba",
                "structure_info",
                json!({})
            )]
        )
        .is_empty());
        assert!(selectors_for(
            &configs,
            &[prepared(
                None,
                None,
                "bdba",
                "finding/vulnerability",
                json!({})
            )]
        )
        .is_empty());
        // Rescorings: the referenced type's parts; without a component, the whole kind.
        let rescoring = json!({"referenced_type": "finding/malware", "severity": "NONE"});
        assert_eq!(
            selectors_for(
                &configs,
                &[prepared(
                    Some("c"),
                    Some("1"),
                    "delivery-dashboard",
                    "rescorings",
                    rescoring.clone()
                )]
            ),
            vec![Selector::component_version(
                &scope("finding/malware", "clamav"),
                "1"
            )]
        );
        assert_eq!(
            selectors_for(
                &configs,
                &[prepared(
                    None,
                    None,
                    "delivery-dashboard",
                    "rescorings",
                    rescoring
                )]
            ),
            vec![Selector::Kind(kind())]
        );
    }
}
