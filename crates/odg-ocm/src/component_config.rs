//! The config blob of an OCM component version artefact: which layer holds the descriptor.

use serde::{Deserialize, Serialize};

use crate::error::OcmError;

/// A config blob is a few hundred bytes; anything much larger is not one.
pub const MAX_COMPONENT_CONFIG_BYTES: usize = 64 * 1024;

/// `{"componentDescriptorLayer": {"digest": "...", "mediaType": "...", "size": N}}`.
/// Unknown fields are ignored; a missing or `null` layer reference reads as `None` (readers then fall
/// back to `layers[0]`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ComponentConfig {
    #[serde(
        rename = "componentDescriptorLayer",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub component_descriptor_layer: Option<LayerRef>,
}

/// A reference to a blob, as in an OCI descriptor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerRef {
    /// `sha256:<hex>`; not validated here, the OCI layer does that when fetching.
    pub digest: String,
    #[serde(rename = "mediaType")]
    pub media_type: String,
    pub size: u64,
}

impl ComponentConfig {
    pub fn for_descriptor_layer(layer: LayerRef) -> ComponentConfig {
        ComponentConfig {
            component_descriptor_layer: Some(layer),
        }
    }

    /// Parses a config blob. Readers do not check the config's media type, and neither does this.
    pub fn from_json_bytes(bytes: &[u8]) -> Result<ComponentConfig, OcmError> {
        if bytes.len() > MAX_COMPONENT_CONFIG_BYTES {
            return Err(OcmError::TooLarge {
                what: "component config",
                actual: bytes.len(),
                limit: MAX_COMPONENT_CONFIG_BYTES,
            });
        }
        let malformed = |reason: String| OcmError::MalformedComponentConfig { reason };
        // Through a Value first: serde would otherwise read a struct from a JSON list too.
        let value: serde_json::Value =
            serde_json::from_slice(bytes).map_err(|error| malformed(error.to_string()))?;
        if !value.is_object() {
            return Err(malformed("not a JSON object".into()));
        }
        serde_json::from_value(value).map_err(|error| malformed(error.to_string()))
    }

    /// Compact JSON, as pushed; hash these exact bytes for the config digest.
    #[allow(
        clippy::expect_used,
        reason = "serialising a struct of strings and integers cannot fail"
    )]
    pub fn to_json_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a struct of strings and integers always serialises")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::OcmErrorKind;
    use crate::media_types::PUSH_DESCRIPTOR_LAYER_MEDIA_TYPE;

    #[test]
    fn parses_the_python_shape_and_ignores_unknown_fields() {
        let config = ComponentConfig::from_json_bytes(
            br#"{"componentDescriptorLayer": {"digest": "sha256:ab", "mediaType": "m", "size": 12,
                 "annotations": {}}, "other": 1}"#,
        )
        .unwrap();
        assert_eq!(
            config.component_descriptor_layer,
            Some(LayerRef {
                digest: "sha256:ab".into(),
                media_type: "m".into(),
                size: 12
            })
        );
    }

    #[test]
    fn a_missing_or_null_layer_is_none() {
        for text in [&b"{}"[..], br#"{"componentDescriptorLayer": null}"#] {
            assert_eq!(
                ComponentConfig::from_json_bytes(text).unwrap(),
                ComponentConfig::default()
            );
        }
    }

    #[test]
    fn broken_and_oversized_configs_are_errors() {
        for text in [
            &b""[..],
            b"[]",
            br#"{"componentDescriptorLayer": {"digest": "x"}}"#,
        ] {
            let error = ComponentConfig::from_json_bytes(text).unwrap_err();
            assert_eq!(error.kind(), OcmErrorKind::Malformed);
        }
        let huge = vec![b' '; MAX_COMPONENT_CONFIG_BYTES + 1];
        assert_eq!(
            ComponentConfig::from_json_bytes(&huge).unwrap_err().kind(),
            OcmErrorKind::TooLarge
        );
    }

    #[test]
    fn serialises_to_the_wire_names() {
        let config = ComponentConfig::for_descriptor_layer(LayerRef {
            digest: "sha256:ab".into(),
            media_type: PUSH_DESCRIPTOR_LAYER_MEDIA_TYPE.into(),
            size: 3,
        });
        let text = String::from_utf8(config.to_json_bytes()).unwrap();
        assert_eq!(
            text,
            r#"{"componentDescriptorLayer":{"digest":"sha256:ab","mediaType":"application/vnd.gardener.cloud.cnudie.component-descriptor.v2+yaml+tar","size":3}}"#
        );
        assert_eq!(
            ComponentConfig::from_json_bytes(text.as_bytes()).unwrap(),
            config
        );
    }
}
