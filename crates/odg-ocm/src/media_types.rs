//! Media types of OCM component versions in OCI, and how a descriptor layer's media type maps to its encoding.

/// Config blob media type written by the Python library (and so by `odg push`).
pub const MEDIA_TYPE_CONFIG_LEGACY: &str =
    "application/vnd.gardener.cloud.cnudie.component.config.v1+json";
/// Config blob media type of the current OCM specification. Readers must not depend on either.
pub const MEDIA_TYPE_CONFIG: &str = "application/vnd.ocm.software.component.config.v1+json";

/// The common case: what the Python library writes.
pub const MEDIA_TYPE_DESCRIPTOR_TAR_LEGACY: &str =
    "application/vnd.gardener.cloud.cnudie.component-descriptor.v2+yaml+tar";
pub const MEDIA_TYPE_DESCRIPTOR_YAML_TAR: &str =
    "application/vnd.ocm.software.component-descriptor.v2+yaml+tar";
pub const MEDIA_TYPE_DESCRIPTOR_YAML: &str =
    "application/vnd.ocm.software.component-descriptor.v2+yaml";
pub const MEDIA_TYPE_DESCRIPTOR_JSON: &str =
    "application/vnd.ocm.software.component-descriptor.v2+json";
pub const MEDIA_TYPE_DESCRIPTOR_JSON_TAR: &str =
    "application/vnd.ocm.software.component-descriptor.v2+json+tar";

/// Every descriptor layer media type a reader must understand.
pub const DESCRIPTOR_LAYER_MEDIA_TYPES: [&str; 5] = [
    MEDIA_TYPE_DESCRIPTOR_TAR_LEGACY,
    MEDIA_TYPE_DESCRIPTOR_YAML_TAR,
    MEDIA_TYPE_DESCRIPTOR_YAML,
    MEDIA_TYPE_DESCRIPTOR_JSON,
    MEDIA_TYPE_DESCRIPTOR_JSON_TAR,
];

/// What `odg push` writes: the legacy types, as the Python library does, so that every existing reader copes.
pub const PUSH_CONFIG_MEDIA_TYPE: &str = MEDIA_TYPE_CONFIG_LEGACY;
pub const PUSH_DESCRIPTOR_LAYER_MEDIA_TYPE: &str = MEDIA_TYPE_DESCRIPTOR_TAR_LEGACY;

/// How a descriptor layer is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DescriptorLayerFormat {
    /// A tar holding `component-descriptor.yaml` (YAML or JSON text; both parse as YAML).
    Tar,
    /// The document itself, YAML.
    Yaml,
    /// The document itself, JSON.
    Json,
}

impl DescriptorLayerFormat {
    /// The format a media type declares, or `None` when the media type says nothing useful (the caller sniffs).
    ///
    /// Besides the exact types above, any component-descriptor type ending in `+yaml+tar`, `+json+tar`,
    /// `+tar`, `+yaml` or `+json` is understood, ignoring case and parameters such as `; charset=utf-8`.
    pub fn from_media_type(media_type: &str) -> Option<DescriptorLayerFormat> {
        let essence = media_type
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        if !essence.contains("component-descriptor") {
            return None;
        }
        if essence.ends_with("+tar") {
            Some(DescriptorLayerFormat::Tar)
        } else if essence.ends_with("+yaml") {
            Some(DescriptorLayerFormat::Yaml)
        } else if essence.ends_with("+json") {
            Some(DescriptorLayerFormat::Json)
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_known_descriptor_media_type_has_a_format() {
        let expected = [
            DescriptorLayerFormat::Tar,
            DescriptorLayerFormat::Tar,
            DescriptorLayerFormat::Yaml,
            DescriptorLayerFormat::Json,
            DescriptorLayerFormat::Tar,
        ];
        for (media_type, format) in DESCRIPTOR_LAYER_MEDIA_TYPES.iter().zip(expected) {
            assert_eq!(
                DescriptorLayerFormat::from_media_type(media_type),
                Some(format),
                "{media_type}"
            );
        }
    }

    #[test]
    fn parameters_and_case_are_ignored() {
        assert_eq!(
            DescriptorLayerFormat::from_media_type(
                "Application/VND.ocm.software.component-descriptor.v2+YAML; charset=utf-8"
            ),
            Some(DescriptorLayerFormat::Yaml)
        );
    }

    #[test]
    fn unrelated_media_types_have_no_format() {
        for media_type in [
            "application/octet-stream",
            "application/x-tar",
            "",
            MEDIA_TYPE_CONFIG,
        ] {
            assert_eq!(
                DescriptorLayerFormat::from_media_type(media_type),
                None,
                "{media_type}"
            );
        }
    }

    #[test]
    fn push_writes_the_legacy_types() {
        assert_eq!(
            PUSH_CONFIG_MEDIA_TYPE,
            "application/vnd.gardener.cloud.cnudie.component.config.v1+json"
        );
        assert_eq!(
            PUSH_DESCRIPTOR_LAYER_MEDIA_TYPE,
            "application/vnd.gardener.cloud.cnudie.component-descriptor.v2+yaml+tar"
        );
    }
}
