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

/// The original's `varchar(n)` limits of the columns an entry fills, by the field they come from
/// (characters, as PostgreSQL counts them).
const COLUMN_LIMITS: [(&str, usize); 10] = [
    ("meta.type", 64),
    ("meta.datasource", 64),
    ("artefact.component_name", 256),
    ("artefact.component_version", 64),
    ("artefact.artefact.artefact_name", 128),
    ("artefact.artefact.artefact_version", 64),
    ("artefact.artefact.artefact_type", 64),
    ("artefact.artefact.artefact_extra_id", 1024),
    ("data.referenced_type", 64),
    ("allowed_processing_time", 16),
];

impl PreparedEntry {
    /// Whether the entry fits the original's columns: strings within their `varchar(n)` limits
    /// (the normalised extra identity for `artefact_extra_id`), dates and timestamps within what
    /// PostgreSQL stores (years 1 to 9999, offsets under 16 hours). Checked before a write, on
    /// both backends, so that an over-long value is the request's fault, never a database error.
    pub fn check_columns(&self) -> Result<(), InvalidEntry> {
        let metadata = &self.metadata;
        let artefact = &metadata.artefact;
        let local = artefact.artefact.as_ref();
        let extra = local.map(|local| local.normalised_extra_id());
        let values: [Option<&str>; 10] = [
            Some(metadata.meta.r#type.as_str()),
            Some(metadata.meta.datasource.as_str()),
            artefact.component_name.as_deref(),
            artefact.component_version.as_deref(),
            local.and_then(|local| local.artefact_name.as_deref()),
            local.and_then(|local| local.artefact_version.as_deref()),
            local.and_then(|local| local.artefact_type.as_deref()),
            extra.as_deref(),
            self.referenced_type.as_deref(),
            metadata.allowed_processing_time.as_deref(),
        ];
        for ((field, limit), value) in COLUMN_LIMITS.iter().zip(values) {
            let length = value.map_or(0, |value| value.chars().count());
            if length > *limit {
                return Err(InvalidEntry::new(
                    *field,
                    format!("is {length} characters long; the delivery DB stores at most {limit}"),
                ));
            }
        }
        for (field, value) in [
            ("meta.creation_date", metadata.meta.creation_date.as_deref()),
            ("meta.last_update", metadata.meta.last_update.as_deref()),
            ("discovery_date", metadata.discovery_date.as_deref()),
        ] {
            if let Some(value) = value {
                if !crate::time::storable(value) {
                    return Err(InvalidEntry::new(
                        field,
                        format!("{value:?} is outside what the delivery DB stores (years 1 to 9999, offsets under 16 hours)"),
                    ));
                }
            }
        }
        Ok(())
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
