//! Identity: the key string of an entry and its id, the hex of the 16-byte BLAKE2s digest of the
//! key, exactly as the original computes them (so ids stay stable across the migration).

use blake2::digest::consts::U16;
use blake2::{Blake2s, Digest};

use crate::model::{ArtefactMetadata, ComponentArtefactId, LocalArtefactId};
use crate::payload::as_key;

impl LocalArtefactId {
    /// `name|version|type|extra`.
    pub fn key(&self) -> String {
        let extra = self.normalised_extra_id();
        as_key([
            self.artefact_name.as_deref(),
            self.artefact_version.as_deref(),
            self.artefact_type.as_deref(),
            Some(extra.as_str()),
        ])
    }
}

impl ComponentArtefactId {
    /// `component_name|component_version|<artefact key or None>|artefact_kind|<sorted reference keys>`.
    pub fn key(&self) -> String {
        let artefact = self.artefact.as_ref().map(LocalArtefactId::key);
        let mut references: Vec<String> = self
            .references
            .iter()
            .map(ComponentArtefactId::key)
            .collect();
        references.sort();
        let references = references.join("|");
        as_key([
            self.component_name.as_deref(),
            self.component_version.as_deref(),
            artefact.as_deref(),
            self.artefact_kind.map(|kind| kind.as_str()),
            Some(references.as_str()),
        ])
    }
}

/// `<artefact key>|datasource|type|<data key>`.
pub fn entry_key(metadata: &ArtefactMetadata, data_key: Option<&str>) -> String {
    let artefact = metadata.artefact.key();
    as_key([
        Some(artefact.as_str()),
        Some(metadata.meta.datasource.as_str()),
        Some(metadata.meta.r#type.as_str()),
        data_key,
    ])
}

/// Hex of BLAKE2s with a 16-byte digest (Python's `hashlib.blake2s(digest_size=16)`; not a
/// truncated 32-byte digest, the output length is a parameter of the hash).
pub fn entry_id(key: &str) -> String {
    let mut hasher = Blake2s::<U16>::new();
    hasher.update(key.as_bytes());
    hex::encode(hasher.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::payload::classify;
    use serde_json::json;

    fn id_of(value: serde_json::Value) -> (String, String) {
        let metadata = ArtefactMetadata::from_json(&value).unwrap();
        let payload = classify(metadata.data.as_object().unwrap()).unwrap();
        let key = entry_key(&metadata, payload.data_key.as_deref());
        let id = entry_id(&key);
        (key, id)
    }

    #[test]
    fn the_reference_examples() {
        let (key, id) = id_of(
            json!({"artefact": {"component_name": "example.org/my-component", "component_version": null, "artefact_kind": "resource",
            "artefact": {"artefact_name": "my-image", "artefact_version": "1.2.3", "artefact_type": "ociImage",
                         "artefact_extra_id": {"version": "1.2.3"}}},
            "meta": {"datasource": "bdba", "type": "finding/vulnerability", "creation_date": "2025-03-04T10:15:00+00:00"},
            "data": {"severity": "HIGH", "package_name": "openssl", "package_version": "3.0.7",
                     "base_url": "https://bdba.example.org", "report_url": "https://bdba.example.org/products/4711/",
                     "product_id": 4711, "group_id": 42, "cve": "CVE-2023-0286", "cvss_v3_score": 7.4,
                     "cvss": {"access_vector": "N", "attack_complexity": "H", "user_interaction": "N", "privileges_required": "N",
                              "scope": "U", "confidentiality": "H", "integrity": "N", "availability": "H"},
                     "summary": "X.400 address type confusion"},
            "discovery_date": "2025-03-04", "allowed_processing_time": "2592000s"}),
        );
        assert_eq!(
            key,
            "example.org/my-component|None|my-image|1.2.3|ociImage|version:1.2.3|resource||bdba|finding/vulnerability|openssl|3.0.7|CVE-2023-0286"
        );
        assert_eq!(id, "2093e5c71e75adb0c50b7890760f4280");

        let (_, id) = id_of(
            json!({"artefact": {"component_name": "example.org/my-component", "component_version": "0.1.0", "artefact_kind": "resource",
            "artefact": {"artefact_name": "my-image", "artefact_version": "1.2.3", "artefact_type": "ociImage",
                         "artefact_extra_id": {"version": "1.2.3"}}},
            "meta": {"datasource": "bdba", "type": "meta/artefact_scan_info", "creation_date": "2025-03-04T10:14:02+00:00"},
            "data": {"report_url": "https://bdba.example.org/products/4711/", "product_id": 4711}}),
        );
        assert_eq!(id, "f57c6894ca07a1615ef329e5127e6065");
    }

    #[test]
    fn absent_artefacts_and_references() {
        let id = ComponentArtefactId {
            component_name: Some("c".into()),
            artefact_kind: None,
            references: vec![
                ComponentArtefactId {
                    component_name: Some("z".into()),
                    ..Default::default()
                },
                ComponentArtefactId {
                    component_name: Some("a".into()),
                    ..Default::default()
                },
            ],
            ..Default::default()
        };
        assert_eq!(
            id.key(),
            "c|None|None|None|a|None|None|None||z|None|None|None|"
        );
    }
}
