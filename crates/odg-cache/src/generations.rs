//! Generation numbers: the invalidation state every entry is stamped with.
//!
//! An invalidation increments one counter (everything, a kind, a component, or a component
//! version). An entry is valid only while the counters that cover it equal the stamp it was
//! written with, so a lost invalidation message, a reconnecting pod, or a slow fill that finishes
//! after an invalidation can never make an old value valid again. With Redis, the counters live
//! in one hash shared by the fleet; `epoch` changes when that hash was lost (a Redis restart),
//! which invalidates everything written before.

use std::collections::HashMap;

use crate::key::{Kind, Scope};
use crate::selector::Selector;

/// The generations covering one entry when it was written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Stamp {
    pub epoch: u64,
    pub all: u64,
    pub kind: u64,
    pub component: u64,
    pub version: u64,
}

impl Stamp {
    pub fn as_array(&self) -> [u64; 5] {
        [
            self.epoch,
            self.all,
            self.kind,
            self.component,
            self.version,
        ]
    }

    pub fn from_array(values: [u64; 5]) -> Stamp {
        let [epoch, all, kind, component, version] = values;
        Stamp {
            epoch,
            all,
            kind,
            component,
            version,
        }
    }
}

pub const EPOCH_FIELD: &str = "epoch";
pub(crate) const ALL_FIELD: &str = "all";
const KIND_PREFIX: &str = "kind:";
const COMPONENT_PREFIX: &str = "component:";
const VERSION_PREFIX: &str = "version:";

/// All counters; absent ones are 0.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Generations {
    pub epoch: u64,
    all: u64,
    kinds: HashMap<String, u64>,
    components: HashMap<String, u64>,
    /// By component, then version: looked up by `&str` on every cache lookup, without copies.
    versions: HashMap<String, HashMap<String, u64>>,
}

impl Generations {
    pub fn stamp(&self, kind: &Kind, scope: &Scope) -> Stamp {
        let component = scope
            .component
            .as_ref()
            .and_then(|name| self.components.get(name))
            .copied()
            .unwrap_or(0);
        let version = match (&scope.component, &scope.version) {
            (Some(name), Some(version)) => self.version_counter(name, version),
            _ => 0,
        };
        Stamp {
            epoch: self.epoch,
            all: self.all,
            kind: self.kinds.get(kind.as_str()).copied().unwrap_or(0),
            component,
            version,
        }
    }

    fn version_counter(&self, name: &str, version: &str) -> u64 {
        self.versions
            .get(name)
            .and_then(|versions| versions.get(version))
            .copied()
            .unwrap_or(0)
    }

    /// The hash field a selector increments; `Id` selects one entry and has no counter.
    pub fn field_for(selector: &Selector) -> Option<String> {
        match selector {
            Selector::All => Some(ALL_FIELD.to_string()),
            Selector::Kind(kind) => Some(format!("{KIND_PREFIX}{kind}")),
            Selector::Component { name } => Some(format!("{COMPONENT_PREFIX}{name}")),
            Selector::ComponentVersion { name, version } => {
                Some(format!("{VERSION_PREFIX}{name}@{version}"))
            }
            Selector::Id(_) => None,
        }
    }

    /// Sets one counter from its hash field; unknown fields are ignored (a newer pod may add some).
    /// Returns the selector whose entries this change invalidates, if the value changed.
    pub fn set_field(&mut self, field: &str, value: u64) -> Option<Selector> {
        if field == EPOCH_FIELD {
            let changed = self.epoch != value;
            self.epoch = value;
            return changed.then_some(Selector::All);
        }
        if field == ALL_FIELD {
            let changed = self.all != value;
            self.all = value;
            return changed.then_some(Selector::All);
        }
        if let Some(kind) = field.strip_prefix(KIND_PREFIX) {
            let kind = Kind::new(kind).ok()?;
            let previous = self
                .kinds
                .insert(kind.as_str().to_string(), value)
                .unwrap_or(0);
            return (previous != value).then_some(Selector::Kind(kind));
        }
        if let Some(name) = field.strip_prefix(COMPONENT_PREFIX) {
            let previous = self.components.insert(name.to_string(), value).unwrap_or(0);
            return (previous != value).then(|| Selector::component(name));
        }
        if let Some(rest) = field.strip_prefix(VERSION_PREFIX) {
            let (name, version) = rest.rsplit_once('@')?;
            let previous = self
                .versions
                .entry(name.to_string())
                .or_default()
                .insert(version.to_string(), value)
                .unwrap_or(0);
            return (previous != value).then(|| Selector::component_version(name, version));
        }
        None
    }

    /// Increments the counter of `selector` locally (single-pod mode); returns its field and new value.
    pub fn bump(&mut self, selector: &Selector) -> Option<(String, u64)> {
        let field = Generations::field_for(selector)?;
        let next = self.get_field(&field) + 1;
        self.set_field(&field, next);
        Some((field, next))
    }

    pub fn get_field(&self, field: &str) -> u64 {
        if field == EPOCH_FIELD {
            return self.epoch;
        }
        if field == ALL_FIELD {
            return self.all;
        }
        if let Some(kind) = field.strip_prefix(KIND_PREFIX) {
            return self.kinds.get(kind).copied().unwrap_or(0);
        }
        if let Some(name) = field.strip_prefix(COMPONENT_PREFIX) {
            return self.components.get(name).copied().unwrap_or(0);
        }
        if let Some((name, version)) = field
            .strip_prefix(VERSION_PREFIX)
            .and_then(|rest| rest.rsplit_once('@'))
        {
            return self.version_counter(name, version);
        }
        0
    }

    /// Every counter as (field, value), for persisting a snapshot.
    pub fn fields(&self) -> Vec<(String, u64)> {
        let mut fields = vec![
            (EPOCH_FIELD.to_string(), self.epoch),
            (ALL_FIELD.to_string(), self.all),
        ];
        fields.extend(
            self.kinds
                .iter()
                .map(|(kind, value)| (format!("{KIND_PREFIX}{kind}"), *value)),
        );
        fields.extend(
            self.components
                .iter()
                .map(|(name, value)| (format!("{COMPONENT_PREFIX}{name}"), *value)),
        );
        fields.extend(self.versions.iter().flat_map(|(name, versions)| {
            versions
                .iter()
                .map(move |(version, value)| (format!("{VERSION_PREFIX}{name}@{version}"), *value))
        }));
        fields.sort();
        fields
    }

    /// Replaces every counter with `fields` (the authoritative copy from Redis); returns the
    /// selectors whose entries changed validity, so local tiers can drop them at once.
    pub fn replace_with(&mut self, fields: &[(String, u64)]) -> Vec<Selector> {
        let mut next = Generations::default();
        for (field, value) in fields {
            next.set_field(field, *value);
        }
        let mut changed = Vec::new();
        let mut all_fields: Vec<String> =
            self.fields().into_iter().map(|(field, _)| field).collect();
        all_fields.extend(next.fields().into_iter().map(|(field, _)| field));
        all_fields.sort();
        all_fields.dedup();
        for field in all_fields {
            if self.get_field(&field) != next.get_field(&field) {
                let mut probe = Generations::default();
                if let Some(selector) = probe.set_field(&field, 1) {
                    changed.push(selector);
                }
            }
        }
        *self = next;
        if changed.contains(&Selector::All) {
            changed = vec![Selector::All];
        }
        changed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_follow_the_counters_that_cover_the_entry() {
        let kind = Kind::new("descriptor").unwrap();
        let scope = Scope::component_version("acme.org/a", "1.0.0");
        let mut generations = Generations::default();
        let before = generations.stamp(&kind, &scope);
        generations.bump(&Selector::component("acme.org/b"));
        assert_eq!(
            generations.stamp(&kind, &scope),
            before,
            "other components do not matter"
        );
        generations.bump(&Selector::component_version("acme.org/a", "2.0.0"));
        assert_eq!(generations.stamp(&kind, &scope), before);
        for selector in [
            Selector::component_version("Acme.org/A", "1.0.0"),
            Selector::component("acme.org/a"),
            Selector::Kind(kind.clone()),
            Selector::All,
        ] {
            let previous = generations.stamp(&kind, &scope);
            generations.bump(&selector);
            assert_ne!(generations.stamp(&kind, &scope), previous, "{selector:?}");
        }
    }

    #[test]
    fn fields_round_trip_and_replacement_reports_changes() {
        let mut generations = Generations::default();
        generations.bump(&Selector::component_version("acme.org/a", "1.0.0"));
        generations.bump(&Selector::Kind(Kind::new("versions").unwrap()));
        let fields = generations.fields();
        let mut copy = Generations::default();
        let changed = copy.replace_with(&fields);
        assert_eq!(copy, generations);
        assert!(changed.contains(&Selector::component_version("acme.org/a", "1.0.0")));
        assert!(changed.contains(&Selector::Kind(Kind::new("versions").unwrap())));
        assert!(copy.replace_with(&fields).is_empty());

        let mut new_epoch = fields.clone();
        new_epoch.push((EPOCH_FIELD.to_string(), 42));
        assert_eq!(copy.replace_with(&new_epoch), vec![Selector::All]);
    }
}
