//! Small OCI documents for tests: image manifests with their blobs, and indexes.

use bytes::Bytes;
use sha2::{Digest as _, Sha256};

pub const OCI_MANIFEST_MEDIA_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX_MEDIA_TYPE: &str = "application/vnd.oci.image.index.v1+json";

/// `sha256:<hex>` of `bytes`.
pub fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// An OCI image: its blobs and its manifest, ready to push.
#[derive(Debug, Clone)]
pub struct OciImageFixture {
    pub config_media_type: String,
    pub config: Bytes,
    /// (media type, bytes) per layer.
    pub layers: Vec<(String, Bytes)>,
    pub manifest: Bytes,
    /// `sha256` of `manifest`.
    pub digest: String,
}

impl OciImageFixture {
    /// An image with one config blob and the given layers.
    pub fn new(config_media_type: &str, config: &[u8], layers: &[(&str, &[u8])]) -> Self {
        let layers: Vec<(String, Bytes)> = layers
            .iter()
            .map(|(media_type, bytes)| (media_type.to_string(), Bytes::copy_from_slice(bytes)))
            .collect();
        let manifest = oci_manifest(
            (config_media_type, config),
            &layers
                .iter()
                .map(|(media_type, bytes)| (media_type.as_str(), bytes.as_ref()))
                .collect::<Vec<_>>(),
        );
        OciImageFixture {
            config_media_type: config_media_type.to_owned(),
            config: Bytes::copy_from_slice(config),
            digest: sha256_digest(&manifest),
            manifest: Bytes::from(manifest),
            layers,
        }
    }

    /// A tiny image whose content differs per `seed`.
    pub fn simple(seed: &str) -> Self {
        Self::new(
            "application/vnd.ocm.software.component.config.v1+json",
            format!("{{\"seed\":\"{seed}\"}}").as_bytes(),
            &[(
                "application/octet-stream",
                format!("layer of {seed}").as_bytes(),
            )],
        )
    }

    /// (digest, bytes) of config and layers.
    pub fn blobs(&self) -> Vec<(String, Bytes)> {
        std::iter::once(&self.config)
            .chain(self.layers.iter().map(|(_, bytes)| bytes))
            .map(|bytes| (sha256_digest(bytes), bytes.clone()))
            .collect()
    }

    pub fn size(&self) -> u64 {
        self.manifest.len() as u64
    }
}

/// The bytes of an OCI image manifest (with `mediaType`) over the given config and layers.
pub fn oci_manifest(config: (&str, &[u8]), layers: &[(&str, &[u8])]) -> Vec<u8> {
    let descriptor = |media_type: &str, bytes: &[u8]| serde_json::json!({"mediaType": media_type, "digest": sha256_digest(bytes), "size": bytes.len()});
    serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST_MEDIA_TYPE,
        "config": descriptor(config.0, config.1),
        "layers": layers.iter().map(|(media_type, bytes)| descriptor(media_type, bytes)).collect::<Vec<_>>(),
    }))
    .expect("a manifest serialises")
}

/// The bytes of an OCI index over images, each entry annotated with the given pairs.
pub fn oci_index(entries: &[(&OciImageFixture, &[(&str, &str)])]) -> Vec<u8> {
    let manifests: Vec<serde_json::Value> = entries
        .iter()
        .map(|(image, annotations)| {
            let annotations: serde_json::Map<String, serde_json::Value> = annotations
                .iter()
                .map(|(key, value)| (key.to_string(), serde_json::Value::from(*value)))
                .collect();
            serde_json::json!({
                "mediaType": OCI_MANIFEST_MEDIA_TYPE,
                "digest": image.digest,
                "size": image.size(),
                "annotations": annotations,
            })
        })
        .collect();
    serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX_MEDIA_TYPE,
        "manifests": manifests,
    }))
    .expect("an index serialises")
}
