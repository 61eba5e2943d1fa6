//! Tolerant serde types for OCI/Docker image manifests and indexes, media type constants, and `parse_manifest`.
//!
//! Unknown fields survive a round trip through `extra`; `null` where a list or map is expected means empty.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize};

use crate::error::OciError;

pub const OCI_MANIFEST_MEDIA_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX_MEDIA_TYPE: &str = "application/vnd.oci.image.index.v1+json";
pub const DOCKER_MANIFEST_MEDIA_TYPE: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_MANIFEST_LIST_MEDIA_TYPE: &str =
    "application/vnd.docker.distribution.manifest.list.v2+json";

/// The `Accept` header for manifest GETs. Distribution 2.8 answers 404 when it does not list the stored type.
pub const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.manifest.v1+json, \
application/vnd.oci.image.index.v1+json, \
application/vnd.docker.distribution.manifest.v2+json, \
application/vnd.docker.distribution.manifest.list.v2+json";

/// A content descriptor: what a manifest says about a blob or a child manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Descriptor {
    #[serde(rename = "mediaType", default)]
    pub media_type: String,
    pub digest: String,
    #[serde(default)]
    pub size: u64,
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub annotations: BTreeMap<String, String>,
    /// Fields this type does not model (`urls`, `platform`, `artifactType`, ...), kept as they were.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// An OCI image manifest or Docker v2 schema 2 manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImageManifest {
    #[serde(rename = "schemaVersion")]
    pub schema_version: u32,
    #[serde(rename = "mediaType", default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    pub config: Descriptor,
    #[serde(default, deserialize_with = "null_as_default")]
    pub layers: Vec<Descriptor>,
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub annotations: BTreeMap<String, String>,
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// An OCI image index or Docker manifest list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImageIndex {
    #[serde(rename = "schemaVersion")]
    pub schema_version: u32,
    #[serde(rename = "mediaType", default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub manifests: Vec<Descriptor>,
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub annotations: BTreeMap<String, String>,
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// What a manifest reference resolves to.
#[derive(Debug, Clone, PartialEq)]
pub enum Manifest {
    Image(ImageManifest),
    Index(ImageIndex),
}

impl Manifest {
    /// The media type this document declares, if any.
    pub fn media_type(&self) -> Option<&str> {
        match self {
            Manifest::Image(manifest) => manifest.media_type.as_deref(),
            Manifest::Index(index) => index.media_type.as_deref(),
        }
    }
}

/// Whether `media_type` names an image manifest (OCI or Docker v2).
pub fn is_image_manifest_media_type(media_type: &str) -> bool {
    media_type == OCI_MANIFEST_MEDIA_TYPE || media_type == DOCKER_MANIFEST_MEDIA_TYPE
}

/// Whether `media_type` names an index (OCI index or Docker manifest list).
pub fn is_index_media_type(media_type: &str) -> bool {
    media_type == OCI_INDEX_MEDIA_TYPE || media_type == DOCKER_MANIFEST_LIST_MEDIA_TYPE
}

/// The essence of a `Content-Type` value: parameters dropped, trimmed, lower-cased.
pub fn content_type_essence(content_type: &str) -> String {
    content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase()
}

#[derive(Clone, Copy)]
enum DocumentKind {
    Image,
    Index,
}

/// Parses a manifest document. The kind is decided by `content_type` when it names a manifest or
/// index type, else by the document's own `mediaType`, else by the presence of `manifests`.
/// Bad JSON or a document missing required fields is `Corrupt`.
pub fn parse_manifest(bytes: &[u8], content_type: Option<&str>) -> Result<Manifest, OciError> {
    let from_header = content_type
        .map(content_type_essence)
        .and_then(|essence| kind_of_media_type(&essence));
    let value: serde_json::Value = serde_json::from_slice(bytes)
        .map_err(|error| OciError::corrupt(format!("manifest is not valid JSON: {error}")))?;
    if !value.is_object() {
        return Err(OciError::corrupt("manifest is not a JSON object"));
    }
    let kind = from_header
        .or_else(|| {
            value
                .get("mediaType")
                .and_then(|media_type| media_type.as_str())
                .and_then(kind_of_media_type)
        })
        .unwrap_or(if value.get("manifests").is_some() {
            DocumentKind::Index
        } else {
            DocumentKind::Image
        });
    match kind {
        DocumentKind::Image => serde_json::from_value(value)
            .map(Manifest::Image)
            .map_err(|error| OciError::corrupt(format!("invalid image manifest: {error}"))),
        DocumentKind::Index => serde_json::from_value(value)
            .map(Manifest::Index)
            .map_err(|error| OciError::corrupt(format!("invalid image index: {error}"))),
    }
}

/// The media type of a manifest document when no trustworthy `Content-Type` is at hand: its own
/// `mediaType`, else the OCI index type when it has `manifests`, else the OCI manifest type.
/// Unparsable documents get the OCI manifest type (parsing them later reports the corruption).
pub fn sniff_manifest_media_type(bytes: &[u8]) -> String {
    #[derive(Deserialize)]
    struct Probe {
        #[serde(rename = "mediaType")]
        media_type: Option<String>,
        manifests: Option<serde_json::Value>,
    }
    match serde_json::from_slice::<Probe>(bytes) {
        Ok(Probe {
            media_type: Some(media_type),
            ..
        }) if !media_type.is_empty() => media_type,
        Ok(Probe {
            manifests: Some(_), ..
        }) => OCI_INDEX_MEDIA_TYPE.to_owned(),
        _ => OCI_MANIFEST_MEDIA_TYPE.to_owned(),
    }
}

fn kind_of_media_type(media_type: &str) -> Option<DocumentKind> {
    if is_image_manifest_media_type(media_type) {
        Some(DocumentKind::Image)
    } else if is_index_media_type(media_type) {
        Some(DocumentKind::Index)
    } else {
        None
    }
}

fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::OciErrorKind;

    const IMAGE: &str = r#"{
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.ocm.software.component.config.v1+json",
                   "digest": "sha256:aa", "size": 10},
        "layers": [{"mediaType": "application/vnd.gardener.cloud.cnudie.component-descriptor.v2+yaml+tar",
                    "digest": "sha256:bb", "size": 20, "annotations": {"k": "v"}, "urls": ["x"]}],
        "subject": {"digest": "sha256:cc"}
    }"#;

    const INDEX: &str = r#"{
        "schemaVersion": 2,
        "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": "sha256:aa",
                       "size": 1, "annotations": {"software.ocm.component.name": "example.com/a"}}],
        "annotations": null
    }"#;

    #[test]
    fn parses_image_manifest_and_keeps_unknown_fields() {
        let Manifest::Image(manifest) = parse_manifest(IMAGE.as_bytes(), None).unwrap() else {
            panic!("expected an image manifest");
        };
        assert_eq!(manifest.schema_version, 2);
        assert_eq!(manifest.config.size, 10);
        assert_eq!(manifest.layers[0].annotations["k"], "v");
        assert_eq!(manifest.layers[0].extra["urls"], serde_json::json!(["x"]));
        assert!(manifest.extra.contains_key("subject"));
        let round_trip: serde_json::Value = serde_json::to_value(&manifest).unwrap();
        assert_eq!(round_trip["subject"]["digest"], "sha256:cc");
        assert_eq!(
            round_trip["layers"][0]["mediaType"],
            manifest.layers[0].media_type
        );
    }

    #[test]
    fn index_is_recognised_by_manifests_key_without_media_type() {
        let Manifest::Index(index) = parse_manifest(INDEX.as_bytes(), None).unwrap() else {
            panic!("expected an index");
        };
        assert_eq!(index.manifests.len(), 1);
        assert!(index.annotations.is_empty());
        assert_eq!(
            sniff_manifest_media_type(INDEX.as_bytes()),
            OCI_INDEX_MEDIA_TYPE
        );
    }

    #[test]
    fn content_type_wins_over_the_document() {
        // An index served with a manifest-list content type (with parameters) is an index.
        let manifest = parse_manifest(
            INDEX.as_bytes(),
            Some("application/vnd.docker.distribution.manifest.list.v2+json; charset=utf-8"),
        )
        .unwrap();
        assert!(matches!(manifest, Manifest::Index(_)));
        // A generic content type falls back to the document's mediaType.
        let manifest = parse_manifest(IMAGE.as_bytes(), Some("application/json")).unwrap();
        assert!(matches!(manifest, Manifest::Image(_)));
        // A manifest content type on an index document fails: config is missing.
        let error = parse_manifest(INDEX.as_bytes(), Some(OCI_MANIFEST_MEDIA_TYPE)).unwrap_err();
        assert_eq!(error.kind(), OciErrorKind::Corrupt);
    }

    #[test]
    fn bad_documents_are_corrupt() {
        for bad in [
            "",
            "{",
            "[]",
            "{\"schemaVersion\": 2}",
            "{\"schemaVersion\":\"x\",\"manifests\":[]}",
        ] {
            let error = parse_manifest(bad.as_bytes(), None).unwrap_err();
            assert_eq!(error.kind(), OciErrorKind::Corrupt, "{bad:?}");
        }
    }

    #[test]
    fn sniffs_media_types() {
        assert_eq!(
            sniff_manifest_media_type(IMAGE.as_bytes()),
            OCI_MANIFEST_MEDIA_TYPE
        );
        assert_eq!(
            sniff_manifest_media_type(br#"{"schemaVersion":2,"config":{"digest":"x"}}"#),
            OCI_MANIFEST_MEDIA_TYPE
        );
        assert_eq!(
            content_type_essence(" Application/JSON ; q=1"),
            "application/json"
        );
        assert!(MANIFEST_ACCEPT.contains(DOCKER_MANIFEST_LIST_MEDIA_TYPE));
    }
}
