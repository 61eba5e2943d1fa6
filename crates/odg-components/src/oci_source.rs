//! Reads component descriptors and version tags from OCI stores, in the OCM-in-OCI layout.
//!
//! Read path: manifest (an index picks its entry by OCM annotations) -> config blob naming the
//! descriptor layer (falling back to `layers[0]`; skipped when the only layer is a descriptor
//! layer) -> layer blob -> decode -> identity check.

use std::sync::Arc;

use async_trait::async_trait;
use odg_oci::{
    parse_manifest, Descriptor, ImageIndex, ImageManifest, Manifest, OciErrorKind, OciStore,
};
use odg_ocm::{
    component_repository_path, decode_descriptor_layer, tag_to_version, verify_identity,
    version_to_tag, ComponentConfig, DecodeLimits, DescriptorLayerFormat, OcmRepositoryUrl,
};

use crate::source::{ComponentId, ComponentSource, FetchedDescriptor};
use crate::stores::StoreProvider;
use crate::ComponentError;
use odg_offload::{run_cpu_bound_sized, JobSize};

const ANNOTATION_COMPONENT_NAME: &str = "software.ocm.component.name";
const ANNOTATION_COMPONENT_VERSION: &str = "software.ocm.component.version";
/// Deprecated single annotation holding `name:version`.
const ANNOTATION_COMPONENT_VERSION_LEGACY: &str = "software.ocm.componentversion";

/// Size bounds for what is read from a registry, so a hostile or broken store cannot exhaust memory.
#[derive(Debug, Clone)]
pub struct OciSourceLimits {
    pub max_config_bytes: u64,
    pub max_layer_bytes: u64,
    pub decode: DecodeLimits,
}

impl Default for OciSourceLimits {
    fn default() -> Self {
        let decode = DecodeLimits::default();
        OciSourceLimits {
            max_config_bytes: 1024 * 1024,
            max_layer_bytes: decode.max_tar_bytes as u64,
            decode,
        }
    }
}

/// The origin: a [`ComponentSource`] reading OCI stores directly.
#[derive(Debug, Clone)]
pub struct OciComponentSource {
    stores: Arc<dyn StoreProvider>,
    limits: OciSourceLimits,
}

impl OciComponentSource {
    pub fn new(stores: Arc<dyn StoreProvider>, limits: OciSourceLimits) -> Self {
        OciComponentSource { stores, limits }
    }

    async fn image_manifest(
        &self,
        store: &dyn OciStore,
        repository: &OcmRepositoryUrl,
        path: &str,
        component: &ComponentId,
    ) -> Result<Option<ImageManifest>, ComponentError> {
        let tag = version_to_tag(&component.version);
        let fetched = match store.get_manifest(path, &tag).await {
            Ok(fetched) => fetched,
            Err(error) if error.kind() == OciErrorKind::NotFound => return Ok(None),
            Err(error) => return Err(ComponentError::registry(repository, error)),
        };
        let corrupt = |reason: String| corrupt(repository, component, reason);
        match parse_manifest(&fetched.bytes, Some(&fetched.media_type)) {
            Ok(Manifest::Image(image)) => Ok(Some(image)),
            Ok(Manifest::Index(index)) => {
                let entry = select_index_entry(&index, component).map_err(corrupt)?;
                let inner = store
                    .get_manifest(path, &entry.digest)
                    .await
                    .map_err(|error| ComponentError::registry(repository, error))?;
                match parse_manifest(&inner.bytes, Some(&inner.media_type)) {
                    Ok(Manifest::Image(image)) => Ok(Some(image)),
                    Ok(Manifest::Index(_)) => Err(corrupt("index entry is an index again".into())),
                    Err(error) => Err(corrupt(format!("index entry manifest: {error}"))),
                }
            }
            Err(error) => Err(corrupt(format!("manifest: {error}"))),
        }
    }

    /// The descriptor layer named by the config blob, else `layers[0]` (as other readers do).
    ///
    /// An artefact whose only layer has a descriptor media type needs no config: the config could
    /// name no other layer. Skipping it saves one registry round trip per descriptor, which is a
    /// third of the origin requests and of the latency chain of a dependency walk.
    async fn descriptor_layer(
        &self,
        store: &dyn OciStore,
        path: &str,
        image: &ImageManifest,
    ) -> Option<(String, String)> {
        if let [only] = image.layers.as_slice() {
            if DescriptorLayerFormat::from_media_type(&only.media_type).is_some() {
                return Some((only.digest.clone(), only.media_type.clone()));
            }
        }
        let from_config = match store
            .get_blob(path, &image.config.digest, self.limits.max_config_bytes)
            .await
        {
            Ok(bytes) => serde_json::from_slice::<ComponentConfig>(&bytes)
                .ok()
                .and_then(|config| config.component_descriptor_layer),
            Err(error) => {
                tracing::debug!(%error, "config blob unreadable, falling back to the first layer");
                None
            }
        };
        match from_config {
            Some(layer) => Some((layer.digest, layer.media_type)),
            None => image
                .layers
                .first()
                .map(|layer| (layer.digest.clone(), layer.media_type.clone())),
        }
    }
}

fn corrupt(
    repository: &OcmRepositoryUrl,
    component: &ComponentId,
    reason: String,
) -> ComponentError {
    ComponentError::CorruptDescriptor {
        name: component.name.clone(),
        version: component.version.clone(),
        repository: repository.to_string(),
        reason,
    }
}

/// Picks the index entry annotated with the component's name and version; several matches are an
/// error, none means the first entry.
fn select_index_entry<'a>(
    index: &'a ImageIndex,
    component: &ComponentId,
) -> Result<&'a Descriptor, String> {
    let legacy_value = format!("{}:{}", component.name, component.version);
    let matches: Vec<&Descriptor> = index
        .manifests
        .iter()
        .filter(|entry| {
            let annotations = &entry.annotations;
            let by_pair = annotations
                .get(ANNOTATION_COMPONENT_NAME)
                .map(String::as_str)
                == Some(component.name.as_str())
                && annotations
                    .get(ANNOTATION_COMPONENT_VERSION)
                    .map(String::as_str)
                    == Some(component.version.as_str());
            let by_legacy =
                annotations.get(ANNOTATION_COMPONENT_VERSION_LEGACY) == Some(&legacy_value);
            by_pair || by_legacy
        })
        .collect();
    match matches.as_slice() {
        [single] => Ok(single),
        [] => index
            .manifests
            .first()
            .ok_or_else(|| "OCI index has no entries".to_string()),
        _ => Err(format!(
            "OCI index has {} entries for {component}",
            matches.len()
        )),
    }
}

#[async_trait]
impl ComponentSource for OciComponentSource {
    async fn local_blob(
        &self,
        repository: &OcmRepositoryUrl,
        component_name: &str,
        digest: &str,
        range: Option<odg_oci::ByteRange>,
    ) -> Result<odg_oci::BlobRead, ComponentError> {
        let store = self.stores.store(repository);
        let path = component_repository_path(repository, component_name);
        store
            .open_blob(&path, digest, range)
            .await
            .map_err(|error| ComponentError::registry(repository, error))
    }

    async fn descriptor(
        &self,
        repository: &OcmRepositoryUrl,
        component: &ComponentId,
    ) -> Result<Option<Arc<FetchedDescriptor>>, ComponentError> {
        let store = self.stores.store(repository);
        let path = component_repository_path(repository, &component.name);
        let Some(image) = self
            .image_manifest(store.as_ref(), repository, &path, component)
            .await?
        else {
            return Ok(None);
        };
        let (layer_digest, layer_media_type) = self
            .descriptor_layer(store.as_ref(), &path, &image)
            .await
            .ok_or_else(|| corrupt(repository, component, "manifest has no layers".into()))?;
        let layer = store
            .get_blob(&path, &layer_digest, self.limits.max_layer_bytes)
            .await
            .map_err(|error| match error.kind() {
                OciErrorKind::NotFound => corrupt(
                    repository,
                    component,
                    "descriptor layer blob missing".into(),
                ),
                OciErrorKind::TooLarge | OciErrorKind::Corrupt => {
                    corrupt(repository, component, format!("descriptor layer: {error}"))
                }
                _ => ComponentError::registry(repository, error),
            })?;

        // Decoding YAML and tar is CPU work: keep it off the async workers, and keep large
        // layers from taking every slot of the pool.
        let limits = self.limits.decode.clone();
        let size = JobSize::of_input(layer.len());
        let decoded = run_cpu_bound_sized(size, move || {
            decode_descriptor_layer(&layer_media_type, &layer, &limits)
        })
        .await?
        .map_err(|error| corrupt(repository, component, error.to_string()))?;
        verify_identity(&decoded.descriptor, &component.name, &component.version)
            .map_err(|error| corrupt(repository, component, error.to_string()))?;
        Ok(Some(Arc::new(FetchedDescriptor {
            descriptor: decoded.descriptor,
            document: decoded.document,
            repository: repository.clone(),
        })))
    }

    async fn versions(
        &self,
        repository: &OcmRepositoryUrl,
        component_name: &str,
    ) -> Result<Vec<String>, ComponentError> {
        let store = self.stores.store(repository);
        let path = component_repository_path(repository, component_name);
        match store.list_tags(&path).await {
            Ok(tags) => Ok(tags.iter().map(|tag| tag_to_version(tag)).collect()),
            Err(error) if error.kind() == OciErrorKind::NotFound => Ok(Vec::new()),
            Err(error) => Err(ComponentError::registry(repository, error)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn entry(digest: &str, annotations: &[(&str, &str)]) -> Descriptor {
        Descriptor {
            media_type: odg_oci::OCI_MANIFEST_MEDIA_TYPE.to_string(),
            digest: digest.to_string(),
            size: 1,
            annotations: annotations
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<BTreeMap<_, _>>(),
            extra: Default::default(),
        }
    }

    fn index(entries: Vec<Descriptor>) -> ImageIndex {
        serde_json::from_value(serde_json::json!({
            "schemaVersion": 2,
            "manifests": entries,
        }))
        .unwrap()
    }

    #[test]
    fn index_entry_by_annotations_then_legacy_then_first() {
        let component = ComponentId::new("example.com/a", "1.0.0");
        let idx = index(vec![
            entry("sha256:1", &[]),
            entry(
                "sha256:2",
                &[
                    (ANNOTATION_COMPONENT_NAME, "example.com/a"),
                    (ANNOTATION_COMPONENT_VERSION, "1.0.0"),
                ],
            ),
        ]);
        assert_eq!(
            select_index_entry(&idx, &component).unwrap().digest,
            "sha256:2"
        );

        let idx = index(vec![
            entry("sha256:1", &[]),
            entry(
                "sha256:3",
                &[(ANNOTATION_COMPONENT_VERSION_LEGACY, "example.com/a:1.0.0")],
            ),
        ]);
        assert_eq!(
            select_index_entry(&idx, &component).unwrap().digest,
            "sha256:3"
        );

        let idx = index(vec![entry("sha256:1", &[]), entry("sha256:4", &[])]);
        assert_eq!(
            select_index_entry(&idx, &component).unwrap().digest,
            "sha256:1"
        );
    }

    #[test]
    fn index_with_two_matching_entries_is_an_error() {
        let component = ComponentId::new("example.com/a", "1.0.0");
        let pair = [
            (ANNOTATION_COMPONENT_NAME, "example.com/a"),
            (ANNOTATION_COMPONENT_VERSION, "1.0.0"),
        ];
        let idx = index(vec![entry("sha256:1", &pair), entry("sha256:2", &pair)]);
        assert!(select_index_entry(&idx, &component).is_err());
        assert!(select_index_entry(&index(vec![]), &component).is_err());
    }
}
