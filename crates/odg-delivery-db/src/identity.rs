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
