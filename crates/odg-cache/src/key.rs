//! Cache keys: a kind (which decides the policy), canonical key text, the scope invalidations
//! select by, and the stable 128-bit id every tier files the entry under.

use std::borrow::Cow;
use std::fmt;

use sha2::{Digest, Sha256};

use crate::CacheError;

/// The kind of data an entry holds (`descriptor`, `versions`, ...): decides policy and metrics labels.
/// The service's kinds are constants: [`Kind::from_static`] borrows them, so building a key on
/// the warm path does not allocate a kind.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Kind(Cow<'static, str>);

impl Kind {
    /// Kinds are short lower-case names (`[a-z][a-z0-9-]{0,31}`), safe as metric labels and key parts.
    pub fn new(name: &str) -> Result<Kind, CacheError> {
        Kind::check(name)?;
        Ok(Kind(Cow::Owned(name.to_string())))
    }

    /// [`Kind::new`] for a name the program holds for its whole run.
    pub fn from_static(name: &'static str) -> Result<Kind, CacheError> {
        Kind::check(name)?;
        Ok(Kind(Cow::Borrowed(name)))
    }

    fn check(name: &str) -> Result<(), CacheError> {
        let valid = !name.is_empty()
            && name.len() <= 32
            && name.starts_with(|c: char| c.is_ascii_lowercase())
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if valid {
            Ok(())
        } else {
            Err(CacheError::InvalidInput(format!(
                "cache kind {name:?} must match [a-z][a-z0-9-]{{0,31}}"
            )))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What an entry is about, so that invalidating a component (or one of its versions) finds it.
/// Component names are kept lower-cased: OCI repositories are, so two spellings are one component.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Scope {
    pub component: Option<String>,
    pub version: Option<String>,
}

impl Scope {
    pub fn none() -> Scope {
        Scope::default()
    }

    pub fn component(name: &str) -> Scope {
        Scope {
            component: Some(name.to_lowercase()),
            version: None,
        }
    }

    pub fn component_version(name: &str, version: &str) -> Scope {
        Scope {
            component: Some(name.to_lowercase()),
            version: Some(version.to_string()),
        }
    }
}

/// The id of an entry: the first 16 bytes of SHA-256 over kind and canonical key text.
/// Shown as 32 hex digits; `DELETE /cache?id=` takes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EntryId(pub [u8; 16]);

impl EntryId {
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    pub fn from_hex(text: &str) -> Result<EntryId, CacheError> {
        let mut bytes = [0u8; 16];
        hex::decode_to_slice(text.trim(), &mut bytes).map_err(|_| {
            CacheError::InvalidInput(format!("cache id {text:?} is not 32 hex digits"))
        })?;
        Ok(EntryId(bytes))
    }
}

impl fmt::Display for EntryId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

/// A key: kind, canonical text built from parts (length-prefixed, so no two part lists collide),
/// scope and id.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CacheKey {
    kind: Kind,
    text: String,
    scope: Scope,
    id: EntryId,
}

impl CacheKey {
    /// Every argument that changes the value must be a part, in a fixed order; absent optional
    /// arguments are passed as empty parts so their presence never shifts the others.
    pub fn new(kind: Kind, parts: &[&str], scope: Scope) -> CacheKey {
        // Built on every lookup: one allocation, sized up front, and no formatting machinery.
        let mut text = String::with_capacity(parts.iter().map(|part| part.len() + 6).sum());
        let mut length = itoa::Buffer::new();
        for part in parts {
            text.push_str(length.format(part.len()));
            text.push(':');
            text.push_str(part);
            text.push(';');
        }
        let mut hasher = Sha256::new();
        hasher.update(kind.as_str().as_bytes());
        hasher.update([0u8]);
        hasher.update(text.as_bytes());
        let digest = hasher.finalize();
        let mut id = [0u8; 16];
        id.copy_from_slice(&digest[..16]);
        CacheKey {
            kind,
            text,
            scope,
            id: EntryId(id),
        }
    }

    pub fn kind(&self) -> &Kind {
        &self.kind
    }

    pub fn text(&self) -> &str {
        &self.text
    }

    pub fn scope(&self) -> &Scope {
        &self.scope
    }

    pub fn id(&self) -> EntryId {
        self.id
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_are_unambiguous_and_ids_stable() {
        let kind = Kind::new("descriptor").unwrap();
        let a = CacheKey::new(kind.clone(), &["ab", "c"], Scope::none());
        let b = CacheKey::new(kind.clone(), &["a", "bc"], Scope::none());
        let c = CacheKey::new(kind.clone(), &["ab", "c"], Scope::component("X"));
        assert_ne!(a.id(), b.id());
        assert_eq!(a.id(), c.id(), "scope does not change identity");
        assert_eq!(EntryId::from_hex(&a.id().to_hex()).unwrap(), a.id());
        let other_kind = CacheKey::new(Kind::new("versions").unwrap(), &["ab", "c"], Scope::none());
        assert_ne!(a.id(), other_kind.id());
    }

    #[test]
    fn kinds_and_ids_are_validated() {
        assert!(Kind::new("compliance-summary").is_ok());
        assert!(Kind::new("Descriptor").is_err());
        assert!(Kind::new("").is_err());
        assert!(Kind::new("a b").is_err());
        assert!(EntryId::from_hex("xyz").is_err());
        assert!(EntryId::from_hex("00").is_err());
        assert_eq!(
            Scope::component("Acme.org/X").component.as_deref(),
            Some("acme.org/x")
        );
    }
}
