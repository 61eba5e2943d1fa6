//! The artefact metadata model with the original's JSON shape, parsed strictly: every mistake is
//! an [`InvalidEntry`] naming the field (the original answers 500 for unknown keys; we answer 400).

use std::collections::BTreeMap;
use std::fmt;

use serde_json::{json, Map, Value};

/// A parse error, with the path of the offending field inside the entry (`artefact.artefact_kind`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidEntry {
    pub path: String,
    pub message: String,
}

impl InvalidEntry {
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> InvalidEntry {
        InvalidEntry {
            path: path.into(),
            message: message.into(),
        }
    }

    /// The same error one level further out (`artefact` + `.artefact_kind`).
    pub fn within(self, prefix: &str) -> InvalidEntry {
        let path = if self.path.is_empty() {
            prefix.to_string()
        } else if self.path.starts_with('[') {
            format!("{prefix}{}", self.path)
        } else {
            format!("{prefix}.{}", self.path)
        };
        InvalidEntry { path, ..self }
    }
}

impl fmt::Display for InvalidEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

/// What an artefact is: an OCM resource or source, a runtime object (cluster, cloud resource), or
/// something else.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ArtefactKind {
    Artefact,
    Resource,
    Runtime,
    Source,
}

impl ArtefactKind {
    pub const ALL: [ArtefactKind; 4] = [
        ArtefactKind::Artefact,
        ArtefactKind::Resource,
        ArtefactKind::Runtime,
        ArtefactKind::Source,
    ];

    pub fn as_str(&self) -> &'static str {
        match self {
            ArtefactKind::Artefact => "artefact",
            ArtefactKind::Resource => "resource",
            ArtefactKind::Runtime => "runtime",
            ArtefactKind::Source => "source",
        }
    }

    pub fn parse(text: &str) -> Option<ArtefactKind> {
        ArtefactKind::ALL
            .into_iter()
            .find(|kind| kind.as_str() == text)
    }
}

/// An artefact within its component (`LocalArtefactId`): every field optional.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct LocalArtefactId {
    pub artefact_name: Option<String>,
    pub artefact_version: Option<String>,
    pub artefact_type: Option<String>,
    /// String values only (the original fails on others while computing the id).
    pub artefact_extra_id: BTreeMap<String, String>,
}

impl LocalArtefactId {
    /// The pairs sorted by key, each `k:v`, joined by `_`; `""` when there are none.
    pub fn normalised_extra_id(&self) -> String {
        normalise_extra_id(&self.artefact_extra_id)
    }

    pub fn to_json(&self) -> Value {
        json!({
            "artefact_name": self.artefact_name,
            "artefact_type": self.artefact_type,
            "artefact_version": self.artefact_version,
            "artefact_extra_id": self.artefact_extra_id,
        })
    }
}

/// The normalised form of an extra identity (what the `artefact_extra_id_normalised` column holds).
pub fn normalise_extra_id(extra_id: &BTreeMap<String, String>) -> String {
    extra_id
        .iter()
        .map(|(key, value)| format!("{key}:{value}"))
        .collect::<Vec<_>>()
        .join("_")
}

/// What a metadata entry is about (`ComponentArtefactId`): every field optional.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct ComponentArtefactId {
    pub component_name: Option<String>,
    pub component_version: Option<String>,
    pub artefact: Option<LocalArtefactId>,
    pub artefact_kind: Option<ArtefactKind>,
    pub references: Vec<ComponentArtefactId>,
}

impl ComponentArtefactId {
    pub fn to_json(&self) -> Value {
        json!({
            "component_name": self.component_name,
            "component_version": self.component_version,
            "artefact": self.artefact.as_ref().map(LocalArtefactId::to_json),
            "artefact_kind": self.artefact_kind.map(|kind| kind.as_str()),
            "references": self.references.iter().map(ComponentArtefactId::to_json).collect::<Vec<_>>(),
        })
    }
}

/// How a new finding's assignees relate to earlier ones (`meta.assignee_mode`).
pub const ASSIGNEE_MODES: [&str; 3] = ["extend", "overwrite", "skip"];

/// `meta`: who wrote the entry, of which type, and when.
#[derive(Debug, Clone, PartialEq)]
pub struct Metadata {
    pub datasource: String,
    pub r#type: String,
    /// ISO 8601 as Python's `isoformat` writes it; filled with the local time when absent.
    pub creation_date: Option<String>,
    pub last_update: Option<String>,
    /// Opaque to this service (a list of responsibles).
    pub responsibles: Option<Value>,
    pub assignee_mode: Option<String>,
}

impl Metadata {
    pub fn to_json(&self) -> Value {
        json!({
            "datasource": self.datasource,
            "type": self.r#type,
            "creation_date": self.creation_date,
            "last_update": self.last_update,
            "responsibles": self.responsibles,
            "assignee_mode": self.assignee_mode,
        })
    }
}

/// One entry of the delivery DB: a finding, a scan info, a rescoring, ...
#[derive(Debug, Clone, PartialEq)]
pub struct ArtefactMetadata {
    pub artefact: ComponentArtefactId,
    pub meta: Metadata,
    pub data: Value,
    /// `YYYY-MM-DD`.
    pub discovery_date: Option<String>,
    /// E.g. `"2592000s"`.
    pub allowed_processing_time: Option<String>,
}

impl ArtefactMetadata {
    /// The original's JSON shape (all keys present, nulls included).
    pub fn to_json(&self) -> Value {
        json!({
            "artefact": self.artefact.to_json(),
            "meta": self.meta.to_json(),
            "data": self.data,
            "discovery_date": self.discovery_date,
            "allowed_processing_time": self.allowed_processing_time,
        })
    }

    /// Parses one entry strictly: unknown keys, wrong types and invalid values are errors.
    pub fn from_json(value: &Value) -> Result<ArtefactMetadata, InvalidEntry> {
        let object = expect_object(value, "")?;
        reject_unknown(
            object,
            &[
                "artefact",
                "meta",
                "data",
                "discovery_date",
                "allowed_processing_time",
            ],
        )?;
        let artefact = ComponentArtefactId::from_json(
            object
                .get("artefact")
                .ok_or_else(|| InvalidEntry::new("artefact", "is required"))?,
            true,
        )
        .map_err(|error| error.within("artefact"))?;
        let meta = parse_meta(
            object
                .get("meta")
                .ok_or_else(|| InvalidEntry::new("meta", "is required"))?,
        )
        .map_err(|error| error.within("meta"))?;
        let data = match object.get("data") {
            Some(Value::Object(data)) => Value::Object(data.clone()),
            Some(_) => return Err(InvalidEntry::new("data", "must be an object")),
            None => return Err(InvalidEntry::new("data", "is required")),
        };
        let discovery_date = optional_string(object, "discovery_date")?
            .map(|text| {
                iso_date(&text).ok_or_else(|| {
                    InvalidEntry::new(
                        "discovery_date",
                        format!("{text:?} is not a date (YYYY-MM-DD)"),
                    )
                })
            })
            .transpose()?;
        let allowed_processing_time = optional_string(object, "allowed_processing_time")?;
        Ok(ArtefactMetadata {
            artefact,
            meta,
            data,
            discovery_date,
            allowed_processing_time,
        })
    }
}

impl ComponentArtefactId {
    /// `strict`: unknown keys are errors (writes); otherwise they are ignored (query bodies,
    /// which the original parses leniently). Types are checked either way.
    pub fn from_json(value: &Value, strict: bool) -> Result<ComponentArtefactId, InvalidEntry> {
        let object = expect_object(value, "")?;
        if strict {
            reject_unknown(
                object,
                &[
                    "component_name",
                    "component_version",
                    "artefact",
                    "artefact_kind",
                    "references",
                ],
            )?;
        }
        let artefact = match object.get("artefact") {
            None | Some(Value::Null) => None,
            Some(value) => Some(
                parse_local_artefact(value, strict).map_err(|error| error.within("artefact"))?,
            ),
        };
        let artefact_kind = optional_string(object, "artefact_kind")?
            .map(|text| {
                ArtefactKind::parse(&text).ok_or_else(|| {
                    InvalidEntry::new(
                        "artefact_kind",
                        format!("{text:?} is not one of artefact, resource, runtime, source"),
                    )
                })
            })
            .transpose()?;
        let references = match object.get("references") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(items)) => items
                .iter()
                .enumerate()
                .map(|(index, item)| {
                    ComponentArtefactId::from_json(item, strict)
                        .map_err(|error| error.within(&format!("references[{index}]")))
                })
                .collect::<Result<_, _>>()?,
            Some(_) => return Err(InvalidEntry::new("references", "must be a list")),
        };
        Ok(ComponentArtefactId {
            component_name: optional_string(object, "component_name")?,
            component_version: optional_string(object, "component_version")?,
            artefact,
            artefact_kind,
            references,
        })
    }
}

fn parse_local_artefact(value: &Value, strict: bool) -> Result<LocalArtefactId, InvalidEntry> {
    let object = expect_object(value, "")?;
    if strict {
        reject_unknown(
            object,
            &[
                "artefact_name",
                "artefact_version",
                "artefact_type",
                "artefact_extra_id",
            ],
        )?;
    }
    let mut artefact_extra_id = BTreeMap::new();
    match object.get("artefact_extra_id") {
        None | Some(Value::Null) => {}
        Some(Value::Object(pairs)) => {
            for (key, value) in pairs {
                match value {
                    Value::String(text) => {
                        artefact_extra_id.insert(key.clone(), text.clone());
                    }
                    _ => {
                        return Err(InvalidEntry::new(
                            format!("artefact_extra_id.{key}"),
                            "values of the extra identity must be strings",
                        ))
                    }
                }
            }
        }
        Some(_) => {
            return Err(InvalidEntry::new(
                "artefact_extra_id",
                "must be an object of strings",
            ))
        }
    }
    Ok(LocalArtefactId {
        artefact_name: optional_string(object, "artefact_name")?,
        artefact_version: optional_string(object, "artefact_version")?,
        artefact_type: optional_string(object, "artefact_type")?,
        artefact_extra_id,
    })
}

fn parse_meta(value: &Value) -> Result<Metadata, InvalidEntry> {
    let object = expect_object(value, "")?;
    reject_unknown(
        object,
        &[
            "datasource",
            "type",
            "creation_date",
            "last_update",
            "responsibles",
            "assignee_mode",
        ],
    )?;
    let required = |name: &str| -> Result<String, InvalidEntry> {
        optional_string(object, name)?
            .filter(|text| !text.is_empty())
            .ok_or_else(|| InvalidEntry::new(name, "is required (a non-empty string)"))
    };
    let timestamp = |name: &str| -> Result<Option<String>, InvalidEntry> {
        optional_string(object, name)?
            .map(|text| {
                crate::time::normalise_timestamp(&text).ok_or_else(|| {
                    InvalidEntry::new(name, format!("{text:?} is not an ISO 8601 timestamp"))
                })
            })
            .transpose()
    };
    let responsibles = match object.get("responsibles") {
        None | Some(Value::Null) => None,
        Some(value @ Value::Array(_)) => Some(value.clone()),
        Some(_) => return Err(InvalidEntry::new("responsibles", "must be a list")),
    };
    let assignee_mode = optional_string(object, "assignee_mode")?;
    if let Some(mode) = &assignee_mode {
        if !ASSIGNEE_MODES.contains(&mode.as_str()) {
            return Err(InvalidEntry::new(
                "assignee_mode",
                format!("{mode:?} is not one of extend, overwrite, skip"),
            ));
        }
    }
    Ok(Metadata {
        datasource: required("datasource")?,
        r#type: required("type")?,
        creation_date: timestamp("creation_date")?,
        last_update: timestamp("last_update")?,
        responsibles,
        assignee_mode,
    })
}

fn expect_object<'a>(value: &'a Value, path: &str) -> Result<&'a Map<String, Value>, InvalidEntry> {
    value
        .as_object()
        .ok_or_else(|| InvalidEntry::new(path, "must be an object"))
}

fn reject_unknown(object: &Map<String, Value>, known: &[&str]) -> Result<(), InvalidEntry> {
    match object.keys().find(|key| !known.contains(&key.as_str())) {
        Some(unknown) => Err(InvalidEntry::new(
            unknown.as_str(),
            format!("unknown key (expected one of {})", known.join(", ")),
        )),
        None => Ok(()),
    }
}

fn optional_string(
    object: &Map<String, Value>,
    name: &str,
) -> Result<Option<String>, InvalidEntry> {
    match object.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => Ok(Some(text.clone())),
        Some(_) => Err(InvalidEntry::new(name, "must be a string or null")),
    }
}

/// `YYYY-MM-DD` of a date or a timestamp starting with one (`datetime.fromisoformat(..).date()`).
pub fn iso_date(text: &str) -> Option<String> {
    let date = text.get(..10)?;
    chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d").ok()?;
    match text.as_bytes().get(10) {
        None => Some(date.to_string()),
        Some(b'T' | b' ') => crate::time::normalise_timestamp(text).map(|_| date.to_string()),
        Some(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strict_parsing_names_the_field() {
        let base = json!({"artefact": {"artefact": {}}, "meta": {"datasource": "bdba", "type": "t"}, "data": {}});
        assert!(ArtefactMetadata::from_json(&base).is_ok());
        let mut unknown = base.clone();
        unknown["id"] = json!("x");
        assert_eq!(
            ArtefactMetadata::from_json(&unknown).unwrap_err().path,
            "id"
        );
        let mut kind = base.clone();
        kind["artefact"]["artefact_kind"] = json!("image");
        assert_eq!(
            ArtefactMetadata::from_json(&kind).unwrap_err().path,
            "artefact.artefact_kind"
        );
        let mut extra = base.clone();
        extra["artefact"]["artefact"]["artefact_extra_id"] = json!({"a": 1});
        assert_eq!(
            ArtefactMetadata::from_json(&extra).unwrap_err().path,
            "artefact.artefact.artefact_extra_id.a"
        );
        let mut meta = base.clone();
        meta["meta"]["unexpected"] = json!(true);
        assert_eq!(
            ArtefactMetadata::from_json(&meta).unwrap_err().path,
            "meta.unexpected"
        );
        let mut date = base.clone();
        date["discovery_date"] = json!("2025-13-01");
        assert!(ArtefactMetadata::from_json(&date).is_err());
        let mut no_type = base;
        no_type["meta"]["type"] = json!(null);
        assert_eq!(
            ArtefactMetadata::from_json(&no_type).unwrap_err().path,
            "meta.type"
        );
    }

    #[test]
    fn dates() {
        assert_eq!(iso_date("2025-03-04").as_deref(), Some("2025-03-04"));
        assert_eq!(
            iso_date("2025-03-04T10:00:00+00:00").as_deref(),
            Some("2025-03-04")
        );
        assert_eq!(iso_date("2025-03-4"), None);
        assert_eq!(iso_date("2025-03-04x"), None);
    }
}
