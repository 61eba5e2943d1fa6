//! Query parameters, typed: every route declares its parameters as one `Deserialize` struct and
//! takes [`Params<T>`]. A mistake is a JSON 400 naming the parameter (`"parameter": name`).
//!
//! The rules, the same on every route and for the cache switches:
//! - a value that is empty (or only white space) counts as absent, values are trimmed;
//! - a single-valued parameter given twice is an error; a `Vec` field collects repeats in order;
//! - booleans read the way the original reads them ([`parse_flag`]);
//! - an absent non-`Option`, non-`#[serde(default)]` field is "required".
//!
//! Why a deserializer of our own rather than `serde_urlencoded`: that crate cannot collect a
//! repeated parameter into a `Vec` (the metadata query's `type`), reads booleans as `true`/`false`
//! only, and its errors do not say which parameter was wrong.

use std::borrow::Cow;
use std::fmt;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use serde::de::value::{CowStrDeserializer, StrDeserializer};
use serde::de::{self, DeserializeOwned, IntoDeserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

/// A route's query parameters, deserialised into `T` (see the module docs for the rules).
#[derive(Debug)]
pub struct Params<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Params<T> {
    type Rejection = ParamError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parse_query(parts.uri.query().unwrap_or("")).map(Params)
    }
}

/// Deserialises a raw (still percent-encoded) query string into `T`.
pub fn parse_query<T: DeserializeOwned>(query: &str) -> Result<T, ParamError> {
    // Names and values borrow from the query unless they had to be unescaped: only the fields
    // that keep a value as a `String` copy it (this runs on every request).
    let mut groups: Vec<(Cow<'_, str>, Values<'_>)> = Vec::with_capacity(8);
    for (name, value) in form_pairs(query) {
        let value = trimmed(value);
        if value.is_empty() {
            continue;
        }
        match groups.iter_mut().find(|(known, _)| *known == name) {
            Some((_, values)) => values.push(value),
            None => groups.push((name, smallvec::smallvec![value])),
        }
    }
    T::deserialize(QueryDeserializer { groups })
}

/// One parameter's values: almost always one, kept inline.
type Values<'q> = smallvec::SmallVec<[Cow<'q, str>; 1]>;

/// The (name, value) pairs of an `application/x-www-form-urlencoded` query, as
/// [`url::form_urlencoded::parse`] yields them. A piece without `%` or `+` decodes to itself, so
/// it is borrowed without passing through the decoder; only escaped pieces are decoded by it.
fn form_pairs(query: &str) -> impl Iterator<Item = (Cow<'_, str>, Cow<'_, str>)> {
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            if pair.contains(['%', '+']) {
                url::form_urlencoded::parse(pair.as_bytes())
                    .next()
                    .unwrap_or((Cow::Borrowed(""), Cow::Borrowed("")))
            } else {
                let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
                (Cow::Borrowed(name), Cow::Borrowed(value))
            }
        })
}

/// A value to a visitor: a `String` field takes an owned copy either way, an identifier or a
/// `&str`-reading visitor (the field names, enum tags, numbers parsed by `FromStr`) none.
fn visit_cow<'de, V: Visitor<'de>>(
    visitor: V,
    value: Cow<'_, str>,
) -> Result<V::Value, ParamError> {
    match value {
        Cow::Borrowed(text) => visitor.visit_str(text),
        Cow::Owned(text) => visitor.visit_string(text),
    }
}

/// `value` without surrounding white space, still borrowed if it was.
fn trimmed(value: Cow<'_, str>) -> Cow<'_, str> {
    match value {
        Cow::Borrowed(text) => Cow::Borrowed(text.trim()),
        Cow::Owned(text) if text.trim().len() == text.len() => Cow::Owned(text),
        Cow::Owned(text) => Cow::Owned(text.trim().to_string()),
    }
}

/// A boolean the way the original reads them: true/t/yes/y/1/on and false/f/no/n/0/off, any case.
pub fn parse_flag(value: &str) -> Option<bool> {
    const TRUE: [&str; 6] = ["true", "t", "yes", "y", "1", "on"];
    const FALSE: [&str; 6] = ["false", "f", "no", "n", "0", "off"];
    let value = value.trim();
    if TRUE.iter().any(|word| value.eq_ignore_ascii_case(word)) {
        Some(true)
    } else if FALSE.iter().any(|word| value.eq_ignore_ascii_case(word)) {
        Some(false)
    } else {
        None
    }
}

/// A bad query parameter: which one (when known) and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParamError {
    parameter: Option<String>,
    message: String,
}

impl ParamError {
    pub fn new(parameter: &str, message: impl Into<String>) -> Self {
        ParamError {
            parameter: Some(parameter.to_string()),
            message: message.into(),
        }
    }

    pub fn parameter(&self) -> Option<&str> {
        self.parameter.as_deref()
    }
}

impl fmt::Display for ParamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.parameter {
            Some(parameter) => write!(f, "parameter {parameter}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for ParamError {}

impl de::Error for ParamError {
    fn custom<T: fmt::Display>(message: T) -> Self {
        ParamError {
            parameter: None,
            message: message.to_string(),
        }
    }

    fn missing_field(field: &'static str) -> Self {
        ParamError::new(field, "is required")
    }
}

/// The whole query: a map from parameter name to its values.
struct QueryDeserializer<'q> {
    groups: Vec<(Cow<'q, str>, Values<'q>)>,
}

impl<'de> de::Deserializer<'de> for QueryDeserializer<'_> {
    type Error = ParamError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ParamError> {
        visitor.visit_map(QueryMap {
            groups: self.groups.into_iter(),
            pending: None,
        })
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map struct enum identifier
        ignored_any
    }
}

struct QueryMap<'q> {
    groups: std::vec::IntoIter<(Cow<'q, str>, Values<'q>)>,
    pending: Option<(Cow<'q, str>, Values<'q>)>,
}

impl<'de> MapAccess<'de> for QueryMap<'_> {
    type Error = ParamError;

    fn next_key_seed<K: de::DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, ParamError> {
        let Some((name, values)) = self.groups.next() else {
            return Ok(None);
        };
        let key = seed.deserialize(StrDeserializer::<ParamError>::new(&name));
        self.pending = Some((name, values));
        key.map(Some)
    }

    fn next_value_seed<V: de::DeserializeSeed<'de>>(
        &mut self,
        seed: V,
    ) -> Result<V::Value, ParamError> {
        let (name, values) = self
            .pending
            .take()
            .ok_or_else(|| de::Error::custom("a value without its parameter name"))?;
        seed.deserialize(ValuesDeserializer {
            name: &name,
            values,
        })
        .map_err(|error| match error.parameter {
            Some(_) => error,
            None => ParamError::new(&name, error.message),
        })
    }
}

/// Every value one parameter was given (at least one, none empty).
struct ValuesDeserializer<'a, 'q> {
    name: &'a str,
    values: Values<'q>,
}

impl<'q> ValuesDeserializer<'_, 'q> {
    fn single(self) -> Result<Cow<'q, str>, ParamError> {
        let count = self.values.len();
        let mut values = self.values.into_iter();
        match (values.next(), count) {
            (Some(value), 1) => Ok(value),
            _ => Err(ParamError::new(self.name, "may be given only once")),
        }
    }

    fn number<T: std::str::FromStr>(self, what: &str) -> Result<T, ParamError> {
        let name = self.name;
        let value = self.single()?;
        value
            .parse()
            .map_err(|_| ParamError::new(name, format!("must be {what}, got {value:?}")))
    }
}

macro_rules! deserialize_number {
    ($($method:ident $visit:ident $what:literal),* $(,)?) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ParamError> {
            visitor.$visit(self.number($what)?)
        }
    )*};
}

impl<'de> de::Deserializer<'de> for ValuesDeserializer<'_, '_> {
    type Error = ParamError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ParamError> {
        if self.values.len() == 1 {
            visitor.visit_string(self.single()?.into_owned())
        } else {
            self.deserialize_seq(visitor)
        }
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ParamError> {
        let name = self.name;
        let value = self.single()?;
        match parse_flag(&value) {
            Some(flag) => visitor.visit_bool(flag),
            None => Err(ParamError::new(
                name,
                format!("must be a boolean (true/false, yes/no, 1/0, on/off), got {value:?}"),
            )),
        }
    }

    deserialize_number! {
        deserialize_i8 visit_i8 "an integer",
        deserialize_i16 visit_i16 "an integer",
        deserialize_i32 visit_i32 "an integer",
        deserialize_i64 visit_i64 "an integer",
        deserialize_i128 visit_i128 "an integer",
        deserialize_u8 visit_u8 "a non-negative integer",
        deserialize_u16 visit_u16 "a non-negative integer",
        deserialize_u32 visit_u32 "a non-negative integer",
        deserialize_u64 visit_u64 "a non-negative integer",
        deserialize_u128 visit_u128 "a non-negative integer",
        deserialize_f32 visit_f32 "a number",
        deserialize_f64 visit_f64 "a number",
        deserialize_char visit_char "a single character",
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ParamError> {
        visit_cow(visitor, self.single()?)
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ParamError> {
        visit_cow(visitor, self.single()?)
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ParamError> {
        visit_cow(visitor, self.single()?)
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ParamError> {
        visitor.visit_byte_buf(self.single()?.into_owned().into_bytes())
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ParamError> {
        visitor.visit_byte_buf(self.single()?.into_owned().into_bytes())
    }

    /// Present (empty values were dropped as absent before).
    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ParamError> {
        visitor.visit_some(self)
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ParamError> {
        visitor.visit_unit()
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, ParamError> {
        visitor.visit_unit()
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, ParamError> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ParamError> {
        visitor.visit_seq(ValuesSeq {
            name: self.name,
            values: self.values.into_iter(),
        })
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, ParamError> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, ParamError> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, ParamError> {
        Err(ParamError::new(self.name, "cannot be a structured value"))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        _visitor: V,
    ) -> Result<V::Value, ParamError> {
        Err(ParamError::new(self.name, "cannot be a structured value"))
    }

    /// Unit variants only (`populate=all`); serde's error lists the variants there are.
    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, ParamError> {
        let value: CowStrDeserializer<ParamError> = self.single()?.into_deserializer();
        visitor.visit_enum(value)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ParamError> {
        visitor.visit_unit()
    }
}

struct ValuesSeq<'a, 'q> {
    name: &'a str,
    values: smallvec::IntoIter<[Cow<'q, str>; 1]>,
}

impl<'de> SeqAccess<'de> for ValuesSeq<'_, '_> {
    type Error = ParamError;

    fn next_element_seed<T: de::DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, ParamError> {
        match self.values.next() {
            None => Ok(None),
            Some(value) => seed
                .deserialize(ValuesDeserializer {
                    name: self.name,
                    values: smallvec::smallvec![value],
                })
                .map(Some),
        }
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.values.len())
    }
}

/// A component version as given: an unencoded `+` (build metadata) arrives as a space, and
/// versions never contain spaces, so spaces become `+` again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionParam(pub String);

impl<'de> Deserialize<'de> for VersionParam {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = String::deserialize(deserializer)?;
        // most versions have nothing to trim or replace: keep the String as it came
        let value = if value.contains(char::is_whitespace) {
            value.trim().replace(' ', "+")
        } else {
            value
        };
        Ok(VersionParam(value))
    }
}

/// `recursion_depth`: a non-negative depth, or a negative number (the original's `-1`) for
/// "unlimited" (`None`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DepthParam(pub Option<usize>);

impl<'de> Deserialize<'de> for DepthParam {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let depth = i64::deserialize(deserializer)?;
        Ok(DepthParam(usize::try_from(depth).ok()))
    }
}

/// A calendar date as `YYYY-MM-DD` (the versions' `start_date`/`end_date`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DateParam(pub String);

impl<'de> Deserialize<'de> for DateParam {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = String::deserialize(deserializer)?;
        if odg_components::is_iso_date(&value) {
            Ok(DateParam(value))
        } else {
            Err(de::Error::custom(format!(
                "must be a date as YYYY-MM-DD, got {value:?}"
            )))
        }
    }
}

/// A field read through `FromStr` (`#[serde(deserialize_with = "params::parsed")]`), the
/// parse error becoming the parameter's message.
pub fn parsed<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: de::Deserializer<'de>,
    T: std::str::FromStr,
    T::Err: fmt::Display,
{
    let value = String::deserialize(deserializer)?;
    value.parse().map_err(de::Error::custom)
}

/// `Option` of [`parsed`].
pub fn parsed_option<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: de::Deserializer<'de>,
    T: std::str::FromStr,
    T::Err: fmt::Display,
{
    parsed(deserializer).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    struct Example {
        component_name: String,
        #[serde(default)]
        version: Option<VersionParam>,
        #[serde(default)]
        raw: bool,
        #[serde(default)]
        max: Option<usize>,
        #[serde(default)]
        recursion_depth: Option<DepthParam>,
        #[serde(default, rename = "type")]
        types: Vec<String>,
        #[serde(default)]
        populate: Option<Populate>,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    enum Populate {
        #[serde(rename = "all")]
        All,
        #[serde(rename = "componentReferences")]
        ComponentReferences,
    }

    fn parse(query: &str) -> Result<Example, ParamError> {
        parse_query(query)
    }

    #[test]
    fn decodes_values_and_collects_repeats() {
        let example = parse(
            "component_name=acme.org%2Fa&version=1.0.0+b&type=x&type=y&raw=YES&max=3&unknown=1",
        )
        .unwrap();
        assert_eq!(example.component_name, "acme.org/a");
        assert_eq!(example.version, Some(VersionParam("1.0.0+b".into())));
        assert_eq!(example.types, ["x", "y"]);
        assert!(example.raw);
        assert_eq!(example.max, Some(3));
        assert_eq!(example.populate, None);
    }

    #[test]
    fn empty_values_are_absent_and_required_ones_named() {
        let error = parse("component_name=%20&version=").unwrap_err();
        assert_eq!(error.parameter(), Some("component_name"));
        assert_eq!(error.to_string(), "parameter component_name: is required");
        let example = parse("component_name=a&raw=&max=").unwrap();
        assert!(!example.raw);
        assert_eq!(example.max, None);
    }

    #[test]
    fn every_mistake_names_its_parameter() {
        let cases = [
            (
                "component_name=a&component_name=b",
                "component_name",
                "only once",
            ),
            ("component_name=a&raw=maybe", "raw", "boolean"),
            ("component_name=a&max=-1", "max", "non-negative integer"),
            (
                "component_name=a&recursion_depth=x",
                "recursion_depth",
                "an integer",
            ),
            (
                "component_name=a&populate=some",
                "populate",
                "unknown variant",
            ),
        ];
        for (query, parameter, message) in cases {
            let error = parse(query).unwrap_err();
            assert_eq!(error.parameter(), Some(parameter), "{query}");
            assert!(error.to_string().contains(message), "{query}: {error}");
        }
    }

    #[test]
    fn negative_depth_means_unlimited() {
        let example = parse("component_name=a&recursion_depth=-1").unwrap();
        assert_eq!(example.recursion_depth, Some(DepthParam(None)));
        let example = parse("component_name=a&recursion_depth=2").unwrap();
        assert_eq!(example.recursion_depth, Some(DepthParam(Some(2))));
    }

    #[test]
    fn flags_read_as_the_original_reads_them() {
        for word in ["true", "T", "yes", "y", "1", "on", " On "] {
            assert_eq!(parse_flag(word), Some(true), "{word}");
        }
        for word in ["false", "F", "no", "n", "0", "off"] {
            assert_eq!(parse_flag(word), Some(false), "{word}");
        }
        assert_eq!(parse_flag("maybe"), None);
        assert_eq!(parse_flag(""), None);
    }
}
