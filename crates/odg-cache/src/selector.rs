//! What an invalidation names: everything, a kind, a component, a component version, or one entry.

use crate::entry::EntryMeta;
use crate::key::{EntryId, Kind};

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Selector {
    All,
    Kind(Kind),
    /// Every entry of the component, all versions (name compared lower-cased).
    Component {
        name: String,
    },
    ComponentVersion {
        name: String,
        version: String,
    },
    Id(EntryId),
}

impl Selector {
    pub fn component(name: &str) -> Selector {
        Selector::Component {
            name: name.to_lowercase(),
        }
    }

    pub fn component_version(name: &str, version: &str) -> Selector {
        Selector::ComponentVersion {
            name: name.to_lowercase(),
            version: version.to_string(),
        }
    }

    /// Whether the entry filed under `id` with `meta` is selected.
    pub fn matches(&self, id: &EntryId, meta: &EntryMeta) -> bool {
        match self {
            Selector::All => true,
            Selector::Kind(kind) => meta.kind == *kind,
            Selector::Component { name } => meta.scope.component.as_deref() == Some(name.as_str()),
            Selector::ComponentVersion { name, version } => {
                meta.scope.component.as_deref() == Some(name.as_str())
                    && meta.scope.version.as_deref() == Some(version.as_str())
            }
            Selector::Id(selected) => selected == id,
        }
    }

    /// A fixed label for metrics.
    pub fn label(&self) -> &'static str {
        match self {
            Selector::All => "all",
            Selector::Kind(_) => "kind",
            Selector::Component { .. } => "component",
            Selector::ComponentVersion { .. } => "component_version",
            Selector::Id(_) => "id",
        }
    }
}

/// The wire form of a selector in invalidation messages.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum SelectorMessage {
    All,
    Kind { kind: String },
    Component { name: String },
    ComponentVersion { name: String, version: String },
    Id { id: String },
}

impl From<&Selector> for SelectorMessage {
    fn from(selector: &Selector) -> Self {
        match selector {
            Selector::All => SelectorMessage::All,
            Selector::Kind(kind) => SelectorMessage::Kind {
                kind: kind.as_str().to_string(),
            },
            Selector::Component { name } => SelectorMessage::Component { name: name.clone() },
            Selector::ComponentVersion { name, version } => SelectorMessage::ComponentVersion {
                name: name.clone(),
                version: version.clone(),
            },
            Selector::Id(id) => SelectorMessage::Id { id: id.to_hex() },
        }
    }
}

impl TryFrom<&SelectorMessage> for Selector {
    type Error = crate::CacheError;

    fn try_from(message: &SelectorMessage) -> Result<Self, Self::Error> {
        Ok(match message {
            SelectorMessage::All => Selector::All,
            SelectorMessage::Kind { kind } => Selector::Kind(Kind::new(kind)?),
            SelectorMessage::Component { name } => Selector::component(name),
            SelectorMessage::ComponentVersion { name, version } => {
                Selector::component_version(name, version)
            }
            SelectorMessage::Id { id } => Selector::Id(EntryId::from_hex(id)?),
        })
    }
}
