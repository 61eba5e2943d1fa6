//! Uploads component descriptors in the OCM-in-OCI layout (`odg push`, demo seeding, tests).
//!
//! The artefact is what the Python library writes: a config blob naming the descriptor layer
//! (legacy media type) and a tar layer holding `component-descriptor.yaml`. Every byte is
//! deterministic, so pushing the same descriptor twice uploads nothing new and yields the same digest.

use bytes::Bytes;
use odg_oci::{sha256_digest, OciErrorKind, OciStore, OCI_MANIFEST_MEDIA_TYPE};
use odg_ocm::{
    component_repository_path, descriptor_to_yaml, encode_descriptor_tar, validate_component_name,
    validate_version, version_to_tag, ComponentDescriptor, OcmRepositoryUrl, RepositoryContext,
    MEDIA_TYPE_CONFIG_LEGACY, MEDIA_TYPE_DESCRIPTOR_TAR_LEGACY,
};
use serde_json::json;

use crate::ComponentError;

/// What one push did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushedDescriptor {
    /// `name:version` as tagged (the tag has `.build-` for `+`).
    pub reference: String,
    pub manifest_digest: String,
}

/// Appends `repository` as the current repository context unless it already is the last one.
///
/// The base URL is written without a scheme, as the Python library writes and reads it (a scheme
/// there would make it add a second context and build invalid image references).
#[allow(
    clippy::expect_used,
    reason = "a literal context with the three string fields the model requires"
)]
pub fn with_repository_context(
    mut descriptor: ComponentDescriptor,
    repository: &OcmRepositoryUrl,
) -> ComponentDescriptor {
    let base_url = repository_base_url(repository);
    let is_current = descriptor
        .current_repository_context()
        .and_then(|context| context.base_url.as_deref())
        .is_some_and(|current| current == base_url);
    if !is_current {
        let context: RepositoryContext = serde_json::from_value(json!({
            "type": "ociRegistry",
            "baseUrl": base_url,
            "componentNameMapping": "urlPath",
        }))
        .expect("a literal repository context deserialises");
        descriptor.component.repository_contexts.push(context);
    }
    descriptor
}

/// `host[/path]`, the form repository contexts use.
pub fn repository_base_url(repository: &OcmRepositoryUrl) -> String {
    if repository.path.is_empty() {
        repository.host.clone()
    } else {
        format!("{}/{}", repository.host, repository.path)
    }
}

/// A blob stored beside a descriptor (OCM `localBlob` access): a layer of its manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalBlob {
    pub media_type: String,
    pub content: Bytes,
}

/// Uploads `descriptor` to `repository` through `store`; idempotent.
pub async fn push_descriptor(
    store: &dyn OciStore,
    repository: &OcmRepositoryUrl,
    descriptor: &ComponentDescriptor,
) -> Result<PushedDescriptor, ComponentError> {
    push_descriptor_with_blobs(store, repository, descriptor, &[]).await
}

/// [`push_descriptor`] with local blobs, uploaded and listed as layers after the descriptor's
/// (as the OCM tools store them, so that a registry's garbage collection keeps them).
pub async fn push_descriptor_with_blobs(
    store: &dyn OciStore,
    repository: &OcmRepositoryUrl,
    descriptor: &ComponentDescriptor,
    blobs: &[LocalBlob],
) -> Result<PushedDescriptor, ComponentError> {
    let name = &descriptor.component.name;
    let version = &descriptor.component.version;
    validate_component_name(name)?;
    validate_version(version)?;
    let path = component_repository_path(repository, name);
    let tag = version_to_tag(version);

    let layer = Bytes::from(encode_descriptor_tar(&descriptor_to_yaml(descriptor)));
    let layer_digest = sha256_digest(&layer);
    let config = Bytes::from(
        (json!({
            "componentDescriptorLayer": {
                "digest": layer_digest,
                "mediaType": MEDIA_TYPE_DESCRIPTOR_TAR_LEGACY,
                "size": layer.len(),
            }
        }))
        .to_string()
        .into_bytes(),
    );
    let config_digest = sha256_digest(&config);
    let blob_layers: Vec<(String, &LocalBlob)> = blobs
        .iter()
        .map(|blob| (sha256_digest(&blob.content), blob))
        .collect();
    let mut layers = vec![
        json!({"mediaType": MEDIA_TYPE_DESCRIPTOR_TAR_LEGACY, "digest": layer_digest, "size": layer.len()}),
    ];
    layers.extend(blob_layers.iter().map(|(digest, blob)| {
        json!({"mediaType": blob.media_type, "digest": digest, "size": blob.content.len()})
    }));
    let manifest = Bytes::from(
        (json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST_MEDIA_TYPE,
            "config": {"mediaType": MEDIA_TYPE_CONFIG_LEGACY, "digest": config_digest, "size": config.len()},
            "layers": layers,
        }))
        .to_string()
        .into_bytes(),
    );

    let mut uploads = vec![
        (layer_digest.clone(), layer.clone()),
        (config_digest.clone(), config.clone()),
    ];
    uploads.extend(
        blob_layers
            .iter()
            .map(|(digest, blob)| (digest.clone(), blob.content.clone())),
    );
    for (digest, blob) in &uploads {
        let exists = store
            .blob_exists(&path, digest)
            .await
            .or_else(|error| match error.kind() {
                OciErrorKind::NotFound => Ok(false),
                _ => Err(error),
            })
            .map_err(|error| ComponentError::registry(repository, error))?;
        if !exists {
            store
                .put_blob(&path, digest, blob.clone())
                .await
                .map_err(|error| ComponentError::registry(repository, error))?;
        }
    }
    let manifest_digest = store
        .put_manifest(&path, &tag, OCI_MANIFEST_MEDIA_TYPE, manifest)
        .await
        .map_err(|error| ComponentError::registry(repository, error))?;
    Ok(PushedDescriptor {
        reference: format!("{path}:{tag}"),
        manifest_digest,
    })
}
