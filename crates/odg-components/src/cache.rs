//! Caching of component data: the kinds, their keys and default policies, the codecs of their
//! values, and the [`CachedComponentSource`] decorator.
//!
//! Kinds and why their policies differ:
//! - `descriptor` — (repository, name, version) -> descriptor. Immutable once published, so it is
//!   kept in every tier and never goes stale; "not in this repository" answers are cached too, but
//!   only for [`ABSENT_DESCRIPTOR_FRESH_FOR`], since the version may be published any moment.
//!   So are "stored, but unreadable" answers (a layer refused by the decoder's limits, a broken
//!   manifest, the wrong identity), for [`UNREADABLE_DESCRIPTOR_FRESH_FOR`]: a hostile layer costs
//!   its decode once a minute, not once a request, and a re-push of the tag is seen within that time.
//! - `versions` — (repository, name) -> tags. Changes upstream: fresh for 60 s, then served stale
//!   for up to 10 min while one refresh runs; memory and Redis only. `greatest` follows it.
//! - `dependencies` — the shape of a pinned version's tree. Immutable like the descriptors it is
//!   made of; any descriptor invalidation also drops all trees (see [`ComponentService::invalidate`]).
//! - `answer` — the rendered bytes of a descriptor or tree answer (see [`crate::answer`]). Memory
//!   only: the tiers below already hold the descriptors and tree shapes, which are what costs a
//!   registry round trip; re-rendering from them takes microseconds to milliseconds, about what
//!   reading megabytes back from disk or Redis would, and would double the shared tier's bytes.
//!   Dropped with the trees (an answer embeds every descriptor of its tree).
//! - `responsibles` — the rendered responsibles of a pinned version (and artefact), read from
//!   one descriptor's labels. Memory only, like `answer`: the descriptor below is what costs a
//!   registry round trip. Scoped to its component version, so invalidating that version (or
//!   the component) drops it precisely; other descriptor invalidations (by id or kind) drop all.
//! - `diff` — the rendered difference of two pinned versions' trees (see [`crate::diff`]).
//!   Kept in every tier: a miss costs both trees, each possibly thousands of elements, while
//!   a diff is usually small. Scoped to the left version, and dropped with the trees, since it
//!   depends on every descriptor of both.
//!
//! [`ComponentService::invalidate`]: crate::ComponentService::invalidate

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use odg_cache::{CacheKey, CacheMode, CacheValue, Kind, KindPolicy, Scope, TieredCache};
use odg_ocm::{ComponentDescriptor, OcmRepositoryUrl};
use serde_json::Value;

use crate::source::{ComponentId, ComponentSource, FetchedDescriptor};
use crate::ComponentError;

pub const KIND_DESCRIPTOR: &str = "descriptor";
pub const KIND_VERSIONS: &str = "versions";
pub const KIND_DEPENDENCIES: &str = "dependencies";
pub const KIND_ANSWER: &str = "answer";
pub const KIND_RESPONSIBLES: &str = "responsibles";
pub const KIND_DIFF: &str = "diff";

/// How long "this version is not in this repository" is believed.
pub const ABSENT_DESCRIPTOR_FRESH_FOR: Duration = Duration::from_secs(60);
/// How long "this version's stored descriptor is unreadable" is believed.
pub const UNREADABLE_DESCRIPTOR_FRESH_FOR: Duration = Duration::from_secs(60);

/// The default policy of every kind this crate caches.
pub fn default_policies() -> HashMap<String, KindPolicy> {
    HashMap::from([
        (KIND_DESCRIPTOR.to_string(), KindPolicy::immutable()),
        (
            KIND_VERSIONS.to_string(),
            KindPolicy::mutable(Duration::from_secs(60), Duration::from_secs(600)),
        ),
        (KIND_DEPENDENCIES.to_string(), KindPolicy::immutable()),
        (
            KIND_ANSWER.to_string(),
            KindPolicy {
                disk: false,
                shared: false,
                ..KindPolicy::immutable()
            },
        ),
        (
            KIND_RESPONSIBLES.to_string(),
            KindPolicy {
                disk: false,
                shared: false,
                ..KindPolicy::immutable()
            },
        ),
        (KIND_DIFF.to_string(), KindPolicy::immutable()),
    ])
}

#[allow(
    clippy::expect_used,
    reason = "called with this crate's constant kind names, each checked by the tests"
)]
pub(crate) fn kind(name: &'static str) -> Kind {
    Kind::from_static(name).expect("the kinds of this crate are valid")
}

tokio::task_local! {
    /// The cache mode of the request being served (`Shortcut-Cache`, `ignore_cache`).
    static CACHE_MODE: CacheMode;
}

/// Runs `future` with every cache lookup it makes in `mode`. The HTTP layer wraps each request
/// in this, so the mode reaches every lookup of the request without threading it through each call.
pub fn with_cache_mode<F: Future>(
    mode: CacheMode,
    future: F,
) -> tokio::task::futures::TaskLocalFuture<CacheMode, F> {
    CACHE_MODE.scope(mode, future)
}

pub(crate) fn current_cache_mode() -> CacheMode {
    CACHE_MODE
        .try_with(|mode| *mode)
        .unwrap_or(CacheMode::Normal)
}

/// A [`ComponentSource`] that asks the tiered cache first.
#[derive(Debug, Clone)]
pub struct CachedComponentSource {
    origin: Arc<dyn ComponentSource>,
    cache: TieredCache,
}

impl CachedComponentSource {
    pub fn new(origin: Arc<dyn ComponentSource>, cache: TieredCache) -> Self {
        CachedComponentSource { origin, cache }
    }
}

#[async_trait]
impl ComponentSource for CachedComponentSource {
    /// Straight to the origin: blobs are streamed through, never cached.
    async fn local_blob(
        &self,
        repository: &OcmRepositoryUrl,
        component_name: &str,
        digest: &str,
        range: Option<odg_oci::ByteRange>,
    ) -> Result<odg_oci::BlobRead, ComponentError> {
        self.origin
            .local_blob(repository, component_name, digest, range)
            .await
    }

    async fn descriptor(
        &self,
        repository: &OcmRepositoryUrl,
        component: &ComponentId,
    ) -> Result<Option<Arc<FetchedDescriptor>>, ComponentError> {
        let key = CacheKey::new(
            kind(KIND_DESCRIPTOR),
            &[
                &repository.to_string(),
                &component.name.to_lowercase(),
                &component.version,
            ],
            Scope::component_version(&component.name, &component.version),
        );
        let origin = self.origin.clone();
        let (repository, requested) = (repository.clone(), component.clone());
        let cached = self
            .cache
            .get_or_load(&key, current_cache_mode(), move || async move {
                match origin.descriptor(&repository, &requested).await {
                    Ok(Some(found)) => Ok(MaybeDescriptor::Present(found)),
                    Ok(None) => Ok(MaybeDescriptor::Absent),
                    Err(ComponentError::CorruptDescriptor {
                        repository, reason, ..
                    }) => Ok(MaybeDescriptor::Unreadable { repository, reason }),
                    Err(error) => Err(error),
                }
            })
            .await?;
        match cached.as_ref() {
            MaybeDescriptor::Present(found) => Ok(Some(found.clone())),
            MaybeDescriptor::Absent => Ok(None),
            MaybeDescriptor::Unreadable { repository, reason } => {
                Err(ComponentError::CorruptDescriptor {
                    name: component.name.clone(),
                    version: component.version.clone(),
                    repository: repository.clone(),
                    reason: reason.clone(),
                })
            }
        }
    }

    async fn versions(
        &self,
        repository: &OcmRepositoryUrl,
        component_name: &str,
    ) -> Result<Vec<String>, ComponentError> {
        let key = CacheKey::new(
            kind(KIND_VERSIONS),
            &[&repository.to_string(), &component_name.to_lowercase()],
            Scope::component(component_name),
        );
        let origin = self.origin.clone();
        let (repository, name) = (repository.clone(), component_name.to_string());
        let cached = self
            .cache
            .get_or_load(&key, current_cache_mode(), move || async move {
                origin.versions(&repository, &name).await.map(VersionList)
            })
            .await?;
        Ok(cached.0.clone())
    }
}

/// A descriptor lookup's answer, including "not in this repository" and "stored but unreadable".
#[derive(Debug, Clone)]
pub(crate) enum MaybeDescriptor {
    Present(Arc<FetchedDescriptor>),
    Absent,
    /// What [`ComponentError::CorruptDescriptor`] said; the name and version are the key's.
    Unreadable {
        repository: String,
        reason: String,
    },
}

const TAG_ABSENT: u8 = 0;
const TAG_PRESENT: u8 = 1;
const TAG_UNREADABLE: u8 = 2;

/// A repository's tags of one component, as versions.
#[derive(Debug, Clone)]
pub(crate) struct VersionList(pub Vec<String>);

/// The shape of a dependency tree: components in pre-order, each with the index of its parent.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub(crate) struct TreeShape {
    pub nodes: Vec<(String, String, Option<u32>)>,
}

impl TreeShape {
    /// The shape of a walked tree: each node's path ends in itself, so its parent is the node
    /// that ended the path one shorter, the latest such node before it in pre-order.
    pub(crate) fn of(nodes: &[crate::DependencyNode]) -> TreeShape {
        let mut last_at_depth: Vec<u32> = Vec::new();
        let mut shape = Vec::with_capacity(nodes.len());
        for (index, node) in nodes.iter().enumerate() {
            let depth = node.path.len().saturating_sub(1);
            let parent = depth
                .checked_sub(1)
                .and_then(|parent_depth| last_at_depth.get(parent_depth).copied());
            last_at_depth.truncate(depth);
            last_at_depth.push(index as u32);
            let component = &node.descriptor.descriptor.component;
            shape.push((component.name.clone(), component.version.clone(), parent));
        }
        TreeShape { nodes: shape }
    }
}

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
    out.extend_from_slice(bytes);
}

fn take_bytes<'a>(input: &mut &'a [u8]) -> Result<&'a [u8], String> {
    let Some((length, rest)) = input.split_first_chunk::<4>() else {
        return Err("truncated length".into());
    };
    let length = u32::from_le_bytes(*length) as usize;
    if rest.len() < length {
        return Err("truncated field".into());
    }
    let (field, remaining) = rest.split_at(length);
    *input = remaining;
    Ok(field)
}

fn take_text(input: &mut &[u8]) -> Result<String, String> {
    String::from_utf8(take_bytes(input)?.to_vec()).map_err(|_| "field is not UTF-8".to_string())
}

/// Estimated bytes a JSON tree holds in memory (values, strings, map and vector slots).
fn json_footprint(value: &Value) -> usize {
    const VALUE: usize = std::mem::size_of::<Value>();
    match value {
        Value::String(text) => VALUE + text.capacity(),
        Value::Array(items) => {
            VALUE + items.capacity() * VALUE + items.iter().map(json_footprint).sum::<usize>()
        }
        // An ordered map entry: key string, value slot, hash and index bookkeeping.
        Value::Object(map) => {
            VALUE
                + map
                    .iter()
                    .map(|(key, child)| 48 + key.capacity() + json_footprint(child))
                    .sum::<usize>()
        }
        _ => VALUE,
    }
}

/// What the memory tier is charged for a cached descriptor (before its per-entry overhead): the
/// stored document, the model's JSON tree, the repository strings. Public so that the memory
/// tests estimate RSS from the very weights the service uses.
pub fn descriptor_footprint(fetched: &FetchedDescriptor) -> usize {
    let tree = serde_json::to_value(&fetched.descriptor)
        .map(|value| json_footprint(&value))
        .unwrap_or(0);
    std::mem::size_of::<FetchedDescriptor>()
        + fetched.document.capacity()
        + tree
        + fetched.repository.host.capacity()
        + fetched.repository.path.capacity()
}

impl CacheValue for MaybeDescriptor {
    /// A tag byte, then for a present descriptor length-prefixed repository, stored document and
    /// descriptor as JSON; for an unreadable one length-prefixed repository and reason.
    fn encode(&self) -> Vec<u8> {
        match self {
            MaybeDescriptor::Absent => vec![TAG_ABSENT],
            MaybeDescriptor::Present(fetched) => {
                let mut out = vec![TAG_PRESENT];
                put_bytes(&mut out, fetched.repository.to_string().as_bytes());
                put_bytes(&mut out, fetched.document.as_bytes());
                #[allow(
                    clippy::expect_used,
                    reason = "the descriptor model has only string map keys: it always serialises"
                )]
                put_bytes(
                    &mut out,
                    &serde_json::to_vec(&fetched.descriptor).expect("descriptors serialise"),
                );
                out
            }
            MaybeDescriptor::Unreadable { repository, reason } => {
                let mut out = vec![TAG_UNREADABLE];
                put_bytes(&mut out, repository.as_bytes());
                put_bytes(&mut out, reason.as_bytes());
                out
            }
        }
    }

    fn decode(payload: &[u8]) -> Result<Self, String> {
        let (&tag, mut rest) = payload.split_first().ok_or("empty payload")?;
        match tag {
            TAG_ABSENT => Ok(MaybeDescriptor::Absent),
            TAG_PRESENT => {
                let repository: OcmRepositoryUrl = take_text(&mut rest)?
                    .parse()
                    .map_err(|_| "bad repository")?;
                let document = take_text(&mut rest)?;
                let descriptor: ComponentDescriptor =
                    serde_json::from_slice(take_bytes(&mut rest)?)
                        .map_err(|error| error.to_string())?;
                Ok(MaybeDescriptor::Present(Arc::new(FetchedDescriptor {
                    descriptor,
                    document,
                    repository,
                })))
            }
            TAG_UNREADABLE => {
                let repository = take_text(&mut rest)?;
                let reason = take_text(&mut rest)?;
                Ok(MaybeDescriptor::Unreadable { repository, reason })
            }
            other => Err(format!("unknown descriptor answer tag {other}")),
        }
    }

    fn footprint(&self) -> usize {
        std::mem::size_of::<Self>()
            + match self {
                MaybeDescriptor::Present(fetched) => descriptor_footprint(fetched),
                MaybeDescriptor::Absent => 0,
                MaybeDescriptor::Unreadable { repository, reason } => {
                    repository.capacity() + reason.capacity()
                }
            }
    }

    fn fresh_for(&self, kind_default: Option<Duration>) -> Option<Duration> {
        match self {
            MaybeDescriptor::Present(_) => kind_default,
            MaybeDescriptor::Absent => Some(ABSENT_DESCRIPTOR_FRESH_FOR),
            MaybeDescriptor::Unreadable { .. } => Some(UNREADABLE_DESCRIPTOR_FRESH_FOR),
        }
    }
}

impl CacheValue for VersionList {
    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for version in &self.0 {
            put_bytes(&mut out, version.as_bytes());
        }
        out
    }

    fn decode(payload: &[u8]) -> Result<Self, String> {
        let mut rest = payload;
        let mut versions = Vec::new();
        while !rest.is_empty() {
            versions.push(take_text(&mut rest)?);
        }
        Ok(VersionList(versions))
    }

    fn footprint(&self) -> usize {
        std::mem::size_of::<Self>()
            + self.0.capacity() * std::mem::size_of::<String>()
            + self.0.iter().map(String::capacity).sum::<usize>()
    }
}

impl CacheValue for TreeShape {
    #[allow(
        clippy::expect_used,
        reason = "a tree shape is lists of strings: it always serialises"
    )]
    fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("tree shapes serialise")
    }

    fn decode(payload: &[u8]) -> Result<Self, String> {
        serde_json::from_slice(payload).map_err(|error| error.to_string())
    }

    fn footprint(&self) -> usize {
        std::mem::size_of::<Self>()
            + self
                .nodes
                .iter()
                .map(|(name, version, _)| {
                    std::mem::size_of::<(String, String, Option<u32>)>()
                        + name.capacity()
                        + version.capacity()
                })
                .sum::<usize>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fetched() -> FetchedDescriptor {
        let descriptor: ComponentDescriptor = serde_json::from_value(serde_json::json!({
            "meta": {"schemaVersion": "v2"},
            "component": {"name": "acme.org/a", "version": "1.0.0+b", "provider": "p", "repositoryContexts": [],
                          "sources": [], "resources": [{"name": "r", "type": "x", "access": {"type": "unknownAccess", "deep": [1, {"k": "v"}]}}],
                          "componentReferences": [], "labels": [], "unknownField": {"kept": true}},
        }))
        .unwrap();
        FetchedDescriptor {
            descriptor,
            document: "meta: ...".into(),
            repository: "http://127.0.0.1:5000/ocm".parse().unwrap(),
        }
    }

    #[test]
    fn descriptor_values_round_trip_and_refuse_garbage() {
        let fetched = Arc::new(fetched());
        let value = MaybeDescriptor::Present(fetched.clone());
        let MaybeDescriptor::Present(decoded) = MaybeDescriptor::decode(&value.encode()).unwrap()
        else {
            panic!("a present descriptor decodes as present");
        };
        assert_eq!(decoded, fetched);
        assert!(matches!(
            MaybeDescriptor::decode(&MaybeDescriptor::Absent.encode()).unwrap(),
            MaybeDescriptor::Absent
        ));
        let unreadable = MaybeDescriptor::Unreadable {
            repository: "registry.example.com/ocm".into(),
            reason: "component descriptor nests deeper than 64 levels".into(),
        };
        let MaybeDescriptor::Unreadable { repository, reason } =
            MaybeDescriptor::decode(&unreadable.encode()).unwrap()
        else {
            panic!("an unreadable answer decodes as unreadable");
        };
        assert_eq!(repository, "registry.example.com/ocm");
        assert_eq!(reason, "component descriptor nests deeper than 64 levels");
        assert!(MaybeDescriptor::decode(&[7]).is_err());
        let encoded = value.encode();
        for length in [0, 1, 3, 10, encoded.len() - 1] {
            assert!(
                MaybeDescriptor::decode(&encoded[..length]).is_err(),
                "{length}"
            );
        }
        assert!(
            value.footprint() > encoded.len(),
            "a decoded tree takes more room than its encoding"
        );
    }

    #[test]
    fn absent_and_unreadable_descriptors_expire_and_present_ones_follow_the_kind() {
        assert_eq!(
            MaybeDescriptor::Absent.fresh_for(None),
            Some(ABSENT_DESCRIPTOR_FRESH_FOR)
        );
        let unreadable = MaybeDescriptor::Unreadable {
            repository: String::new(),
            reason: String::new(),
        };
        assert_eq!(
            unreadable.fresh_for(None),
            Some(UNREADABLE_DESCRIPTOR_FRESH_FOR)
        );
        assert_eq!(
            MaybeDescriptor::Present(Arc::new(fetched())).fresh_for(None),
            None
        );
    }

    #[test]
    fn version_lists_and_tree_shapes_round_trip() {
        let list = VersionList(vec!["1.0.0".into(), "".into(), "2.0.0+b".into()]);
        assert_eq!(VersionList::decode(&list.encode()).unwrap().0, list.0);
        assert!(VersionList::decode(&[1, 0, 0, 0]).is_err());
        let shape = TreeShape {
            nodes: vec![
                ("a".into(), "1".into(), None),
                ("b".into(), "2".into(), Some(0)),
            ],
        };
        assert_eq!(
            TreeShape::decode(&shape.encode()).unwrap().nodes,
            shape.nodes
        );
    }
}
