//! Builds a `serde_json::Value` from any serde deserializer (JSON or YAML) while enforcing a nesting
//! limit and an expansion budget, so hostile documents fail fast instead of eating the stack or the heap.
//!
//! Why a budget: YAML aliases let a few hundred bytes expand into billions of nodes ("billion laughs").
//! serde_yaml_ng has its own alias guard, but it scales with the document's event count, so a large
//! document could still expand a hundredfold. Here every value costs one unit, every string one more
//! unit per byte, and a map key its length in bytes (one unit when it is not a string).
//!
//! A document without aliases costs at most about 1.5 units per byte of text: almost every unit needs
//! a byte of its own, and the worst shapes found are flow maps of bare keys (`{a,b,c}`: a key and a
//! null value per two bytes) and the escapes `\L`/`\P` (three bytes of string from two of text). So a
//! budget of twice the length plus some slack only ever bites on alias expansion, while the memory a
//! hostile document can claim stays linear in its length.

use std::cell::Cell;
use std::fmt;

use serde::de::{
    DeserializeSeed, Deserializer, EnumAccess, Error as _, MapAccess, SeqAccess, VariantAccess,
    Visitor,
};
use serde_json::{Map, Number, Value};

/// Units allowed per byte of document text.
const UNITS_PER_DOCUMENT_BYTE: usize = 2;
/// Alias expansion allowed on top, so that small documents may use anchors freely.
const EXPANSION_SLACK_UNITS: usize = 256 * 1024;

/// Which limit stopped the parse; read back after the deserializer returned its (stringly) error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LimitHit {
    Depth,
    Expansion,
}

pub(crate) struct ValueBudget {
    max_depth: usize,
    total_units: usize,
    remaining_units: Cell<usize>,
    limit_hit: Cell<Option<LimitHit>>,
}

impl ValueBudget {
    /// A budget for a document of `document_len` bytes, nesting at most `max_depth` containers.
    pub(crate) fn for_document(document_len: usize, max_depth: usize) -> ValueBudget {
        let total_units = document_len
            .saturating_mul(UNITS_PER_DOCUMENT_BYTE)
            .saturating_add(EXPANSION_SLACK_UNITS);
        ValueBudget::new(total_units, max_depth)
    }

    fn new(total_units: usize, max_depth: usize) -> ValueBudget {
        ValueBudget {
            max_depth,
            total_units,
            remaining_units: Cell::new(total_units),
            limit_hit: Cell::new(None),
        }
    }

    pub(crate) fn total_units(&self) -> usize {
        self.total_units
    }

    pub(crate) fn limit_hit(&self) -> Option<LimitHit> {
        self.limit_hit.get()
    }

    pub(crate) fn seed(&self) -> BoundedValueSeed<'_> {
        BoundedValueSeed {
            budget: self,
            depth: 0,
        }
    }

    fn charge<E: serde::de::Error>(&self, units: usize) -> Result<(), E> {
        match self.remaining_units.get().checked_sub(units) {
            Some(remaining) => {
                self.remaining_units.set(remaining);
                Ok(())
            }
            None => {
                self.limit_hit.set(Some(LimitHit::Expansion));
                Err(E::custom("expansion budget exceeded"))
            }
        }
    }

    fn enter_container<E: serde::de::Error>(&self, depth: usize) -> Result<usize, E> {
        let inner_depth = depth + 1;
        if inner_depth > self.max_depth {
            self.limit_hit.set(Some(LimitHit::Depth));
            return Err(E::custom("nesting limit exceeded"));
        }
        self.charge(1)?;
        Ok(inner_depth)
    }
}

/// Deserializes one value; `depth` is the number of containers around it.
pub(crate) struct BoundedValueSeed<'budget> {
    budget: &'budget ValueBudget,
    depth: usize,
}

impl<'de> DeserializeSeed<'de> for BoundedValueSeed<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for BoundedValueSeed<'_> {
    type Value = Value;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("any YAML or JSON value")
    }

    fn visit_bool<E: serde::de::Error>(self, value: bool) -> Result<Value, E> {
        self.budget.charge(1)?;
        Ok(Value::Bool(value))
    }

    fn visit_i64<E: serde::de::Error>(self, value: i64) -> Result<Value, E> {
        self.budget.charge(1)?;
        Ok(Value::Number(value.into()))
    }

    fn visit_u64<E: serde::de::Error>(self, value: u64) -> Result<Value, E> {
        self.budget.charge(1)?;
        Ok(Value::Number(value.into()))
    }

    fn visit_f64<E: serde::de::Error>(self, value: f64) -> Result<Value, E> {
        self.budget.charge(1)?;
        // JSON has no infinities or NaN; keep YAML's spelling of them as text rather than failing.
        Ok(match Number::from_f64(value) {
            Some(number) => Value::Number(number),
            None if value.is_nan() => Value::String(".nan".into()),
            None if value > 0.0 => Value::String(".inf".into()),
            None => Value::String("-.inf".into()),
        })
    }

    fn visit_str<E: serde::de::Error>(self, value: &str) -> Result<Value, E> {
        self.budget.charge(1 + value.len())?;
        Ok(Value::String(value.to_owned()))
    }

    fn visit_string<E: serde::de::Error>(self, value: String) -> Result<Value, E> {
        self.budget.charge(1 + value.len())?;
        Ok(Value::String(value))
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<Value, E> {
        self.budget.charge(1)?;
        Ok(Value::Null)
    }

    fn visit_none<E: serde::de::Error>(self) -> Result<Value, E> {
        self.visit_unit()
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }

    fn visit_newtype_struct<D: Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut sequence: A) -> Result<Value, A::Error> {
        let inner_depth = self.budget.enter_container(self.depth)?;
        let mut items = Vec::new();
        while let Some(item) = sequence.next_element_seed(BoundedValueSeed {
            budget: self.budget,
            depth: inner_depth,
        })? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let inner_depth = self.budget.enter_container(self.depth)?;
        let mut object = Map::new();
        while let Some(key) = map.next_key_seed(MapKeySeed {
            budget: self.budget,
        })? {
            let value = map.next_value_seed(BoundedValueSeed {
                budget: self.budget,
                depth: inner_depth,
            })?;
            // Duplicate keys: the last one wins, as in PyYAML and serde_json.
            object.insert(key, value);
        }
        Ok(Value::Object(object))
    }

    /// serde_yaml_ng reports a custom tag (`!foo value`) as an enum; keep it as `{"!foo": value}`,
    /// which is how serde_yaml_ng itself writes a tagged value into JSON.
    fn visit_enum<A: EnumAccess<'de>>(self, data: A) -> Result<Value, A::Error> {
        let inner_depth = self.budget.enter_container(self.depth)?;
        let (tag, variant) = data.variant_seed(MapKeySeed {
            budget: self.budget,
        })?;
        let value = variant.newtype_variant_seed(BoundedValueSeed {
            budget: self.budget,
            depth: inner_depth,
        })?;
        let key = if tag.starts_with('!') {
            tag
        } else {
            format!("!{tag}")
        };
        let mut object = Map::new();
        object.insert(key, value);
        Ok(Value::Object(object))
    }
}

/// Map keys become strings: YAML allows `1: x` or `true: x`, JSON objects do not.
struct MapKeySeed<'budget> {
    budget: &'budget ValueBudget,
}

impl<'de> DeserializeSeed<'de> for MapKeySeed<'_> {
    type Value = String;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<String, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for MapKeySeed<'_> {
    type Value = String;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("a string, number, boolean or null map key")
    }

    fn visit_str<E: serde::de::Error>(self, value: &str) -> Result<String, E> {
        self.budget.charge(value.len())?;
        Ok(value.to_owned())
    }

    fn visit_string<E: serde::de::Error>(self, value: String) -> Result<String, E> {
        self.budget.charge(value.len())?;
        Ok(value)
    }

    // Non-string keys cost one unit whatever their text: `~` becomes "null", four bytes from one.

    fn visit_bool<E: serde::de::Error>(self, value: bool) -> Result<String, E> {
        self.budget.charge(1)?;
        Ok(value.to_string())
    }

    fn visit_i64<E: serde::de::Error>(self, value: i64) -> Result<String, E> {
        self.budget.charge(1)?;
        Ok(value.to_string())
    }

    fn visit_u64<E: serde::de::Error>(self, value: u64) -> Result<String, E> {
        self.budget.charge(1)?;
        Ok(value.to_string())
    }

    fn visit_f64<E: serde::de::Error>(self, value: f64) -> Result<String, E> {
        self.budget.charge(1)?;
        Ok(value.to_string())
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<String, E> {
        self.budget.charge(1)?;
        Ok("null".to_owned())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, _sequence: A) -> Result<String, A::Error> {
        Err(A::Error::custom("a list cannot be a map key"))
    }

    fn visit_map<A: MapAccess<'de>>(self, _map: A) -> Result<String, A::Error> {
        Err(A::Error::custom("a map cannot be a map key"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn from_yaml(text: &str, max_depth: usize) -> (Result<Value, String>, Option<LimitHit>) {
        let budget = ValueBudget::for_document(text.len(), max_depth);
        let result = budget
            .seed()
            .deserialize(serde_yaml_ng::Deserializer::from_str(text))
            .map_err(|error| error.to_string());
        (result, budget.limit_hit())
    }

    #[test]
    fn yaml_scalars_collections_and_odd_keys_convert() {
        let (value, hit) = from_yaml(
            "a: [1, -2, 2.5, true, null, x]\n1: one\ntrue: yes\n~: nothing\n",
            8,
        );
        assert_eq!(hit, None);
        assert_eq!(
            value.unwrap(),
            json!({"a": [1, -2, 2.5, true, null, "x"], "1": "one", "true": "yes", "null": "nothing"})
        );
    }

    #[test]
    fn custom_yaml_tags_are_kept_as_a_single_key_map() {
        let (value, _) = from_yaml("a: !custom {b: 1}\n", 8);
        assert_eq!(value.unwrap(), json!({"a": {"!custom": {"b": 1}}}));
    }

    #[test]
    fn non_finite_floats_become_text() {
        let (value, _) = from_yaml("[.inf, -.inf, .nan]", 8);
        assert_eq!(value.unwrap(), json!([".inf", "-.inf", ".nan"]));
    }

    #[test]
    fn depth_limit_counts_containers() {
        assert_eq!(from_yaml("[[[1]]]", 3).1, None);
        assert_eq!(from_yaml("[[[1]]]", 2).1, Some(LimitHit::Depth));
        assert_eq!(from_yaml("{a: {b: 1}}", 1).1, Some(LimitHit::Depth));
    }

    /// The shapes that cost the most units per byte of text must fit in the budget without any slack.
    #[test]
    fn alias_free_worst_case_shapes_fit_twice_their_length() {
        let repeated =
            |item: &str, separator: &str, count: usize| vec![item; count].join(separator);
        let documents = [
            format!("{{{}}}", repeated("a", ",", 20_000)),
            format!("{{{}}}", repeated("~", ",", 20_000)),
            format!("{{{}}}", repeated("1", ",", 20_000)),
            format!("[{}]", repeated("a", ",", 20_000)),
            format!("[{}]", repeated("''", ",", 20_000)),
            format!("[{}]", repeated("[]", ",", 20_000)),
            format!("\"{}\"", repeated("\\L", "", 20_000)),
            format!("{}\n", repeated("-", "\n", 20_000)),
            format!("[{}]", repeated("{}", ",", 20_000)),
            format!("{{{}}}", repeated("a: b", ",", 20_000)),
        ];
        for document in &documents {
            let budget = ValueBudget::new(UNITS_PER_DOCUMENT_BYTE * document.len(), 8);
            let result = budget
                .seed()
                .deserialize(serde_yaml_ng::Deserializer::from_str(document));
            let shape = &document[..12.min(document.len())];
            assert!(result.is_ok(), "{shape}: {:?}", result.err());
            let spent = budget.total_units() - budget.remaining_units.get();
            assert!(
                spent * 2 <= document.len() * 3 + 4,
                "{shape}: {spent} units for {} bytes",
                document.len()
            );
        }
    }

    #[test]
    fn legitimate_aliases_within_the_budget_are_expanded() {
        let (value, hit) = from_yaml("base: &base {x: 1}\ncopy: *base\n", 8);
        assert_eq!(hit, None);
        assert_eq!(value.unwrap(), json!({"base": {"x": 1}, "copy": {"x": 1}}));
    }
}
