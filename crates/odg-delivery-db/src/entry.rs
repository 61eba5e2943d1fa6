//! An entry ready to be written: parsed, its dates filled, its payload typed and its id computed.

use serde_json::Value;
use sha1::{Digest, Sha1};

use crate::identity::{entry_id, entry_key};
use crate::model::{ArtefactMetadata, InvalidEntry};
use crate::payload::classify;

/// Types whose entries point at another type (`referenced_type` column).
pub const REFERENCING_TYPES: [&str; 3] = ["rescorings", "sla_violation", "meta/responsibles"];

#[derive(Debug, Clone, PartialEq)]
pub struct PreparedEntry {
    pub metadata: ArtefactMetadata,
    /// Hex of BLAKE2s-16 over the entry's key.
    pub id: String,
    /// The payload class the data was read as (`None`: a plain object).
    pub payload_class: Option<&'static str>,
    /// SHA-1 hex of the data key of a typed payload (`data_key` column); `None` for plain objects.
    pub data_key_hash: Option<String>,
    pub referenced_type: Option<String>,
}

impl PreparedEntry {
    /// Parses and validates one entry of a write request. PUT and DELETE need `artefact.artefact`
    /// (the original dereferences it). Missing `meta` dates become the local time now.
    pub fn from_json(value: &Value) -> Result<PreparedEntry, InvalidEntry> {
        let mut metadata = ArtefactMetadata::from_json(value)?;
        if metadata.artefact.artefact.is_none() {
            return Err(InvalidEntry::new(
                "artefact.artefact",
                "is required for writes (name, version, type and extra identity of the artefact)",
            ));
        }
        let now = crate::time::local_now();
        if metadata.meta.creation_date.is_none() {
            metadata.meta.creation_date = Some(now.clone());
        }
        if metadata.meta.last_update.is_none() {
            metadata.meta.last_update = Some(now);
        }
        PreparedEntry::new(metadata)
    }

    /// Computes the identity of an already parsed entry.
    pub fn new(metadata: ArtefactMetadata) -> Result<PreparedEntry, InvalidEntry> {
        let data = metadata
            .data
            .as_object()
            .ok_or_else(|| InvalidEntry::new("data", "must be an object"))?;
        let payload = classify(data)?;
        let key = entry_key(&metadata, payload.data_key.as_deref());
        let data_key_hash = payload
            .class
            .and(payload.data_key.as_ref())
            .map(|key| hex::encode(Sha1::digest(key.as_bytes())));
        let referenced_type = REFERENCING_TYPES
            .contains(&metadata.meta.r#type.as_str())
            .then(|| data.get("referenced_type").and_then(Value::as_str))
            .flatten()
            .map(str::to_string);
        Ok(PreparedEntry {
            id: entry_id(&key),
            payload_class: payload.class,
            data_key_hash,
            referenced_type,
            metadata,
        })
    }
}

/// Parses the `entries` of a write body: all or nothing, the first invalid entry named by index.
pub fn prepare_entries(entries: &[Value]) -> Result<Vec<PreparedEntry>, crate::StoreError> {
    entries
        .iter()
        .enumerate()
        .map(|(index, value)| {
            PreparedEntry::from_json(value)
                .map_err(|source| crate::StoreError::InvalidEntry { index, source })
        })
        .collect()
}
