//! Query parameters, parsed by hand so that every mistake gets a JSON 400 naming the parameter.

use std::collections::HashMap;

use axum::extract::{FromRequestParts, RawQuery};
use axum::http::request::Parts;

use crate::ApiError;

/// The query string as name -> values (repeatable parameters keep every value, in order).
#[derive(Debug, Default)]
pub struct QueryParams {
    values: HashMap<String, Vec<String>>,
}

impl QueryParams {
    pub fn parse(query: &str) -> Self {
        let mut values: HashMap<String, Vec<String>> = HashMap::new();
        for (name, value) in url::form_urlencoded::parse(query.as_bytes()) {
            values
                .entry(name.into_owned())
                .or_default()
                .push(value.into_owned());
        }
        QueryParams { values }
    }

    /// The single value of `name`; repeating a single-valued parameter is an error.
    pub fn optional(&self, name: &str) -> Result<Option<&str>, ApiError> {
        match self.values.get(name).map(Vec::as_slice) {
            None => Ok(None),
            Some([value]) => Ok(Some(value.as_str())),
            Some(_) => Err(ApiError::bad_request(format!(
                "parameter {name} may be given only once"
            ))),
        }
    }

    /// Every value of a repeatable parameter, in order (empty values dropped).
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.values
            .get(name)
            .map(|values| {
                values
                    .iter()
                    .map(String::as_str)
                    .filter(|value| !value.is_empty())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The single non-empty value of `name`.
    pub fn required(&self, name: &str) -> Result<&str, ApiError> {
        match self.optional(name)? {
            Some(value) if !value.trim().is_empty() => Ok(value),
            _ => Err(ApiError::bad_request(format!(
                "the {name} parameter is required"
            ))),
        }
    }

    /// A boolean the way the original reads them (true/t/yes/y/1/on, false/f/no/n/0/off).
    pub fn boolean(&self, name: &str) -> Result<bool, ApiError> {
        let Some(value) = self.optional(name)? else {
            return Ok(false);
        };
        match value.to_ascii_lowercase().as_str() {
            "true" | "t" | "yes" | "y" | "1" | "on" => Ok(true),
            "false" | "f" | "no" | "n" | "0" | "off" | "" => Ok(false),
            _ => Err(ApiError::bad_request(format!(
                "the value of the parameter {name} must be a boolean value, got {value:?}"
            ))),
        }
    }

    /// A non-negative integer, or `default` when absent.
    pub fn unsigned(&self, name: &str, default: usize) -> Result<usize, ApiError> {
        match self.optional(name)? {
            None => Ok(default),
            Some(value) => value.trim().parse().map_err(|_| {
                ApiError::bad_request(format!(
                    "the parameter {name} must be a non-negative integer, got {value:?}"
                ))
            }),
        }
    }

    /// An integer where -1 (or any negative value) means "unlimited", as `recursion_depth` in the original.
    pub fn depth(&self, name: &str) -> Result<Option<usize>, ApiError> {
        match self.optional(name)? {
            None => Ok(None),
            Some(value) => {
                let parsed: i64 = value.trim().parse().map_err(|_| {
                    ApiError::bad_request(format!(
                        "the parameter {name} must be an integer, got {value:?}"
                    ))
                })?;
                Ok(usize::try_from(parsed).ok())
            }
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for QueryParams {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let RawQuery(query) = RawQuery::from_request_parts(parts, state)
            .await
            .map_err(|_| ApiError::bad_request("unreadable query string"))?;
        Ok(QueryParams::parse(query.as_deref().unwrap_or("")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_repeated_and_encoded_values() {
        let params = QueryParams::parse("component_name=acme.org%2Fa&version=1.0.0%2Bb&x=1&x=2");
        assert_eq!(params.required("component_name").unwrap(), "acme.org/a");
        assert_eq!(params.optional("version").unwrap(), Some("1.0.0+b"));
        assert!(params.optional("x").is_err());
        assert!(params.required("missing").is_err());
    }

    #[test]
    fn booleans_and_numbers() {
        let params = QueryParams::parse("raw=yes&bad=maybe&max=3&neg=-1&depth=2");
        assert!(params.boolean("raw").unwrap());
        assert!(!params.boolean("absent").unwrap());
        assert!(params.boolean("bad").is_err());
        assert_eq!(params.unsigned("max", 5).unwrap(), 3);
        assert_eq!(params.unsigned("absent", 5).unwrap(), 5);
        assert!(params.unsigned("neg", 5).is_err());
        assert_eq!(params.depth("neg").unwrap(), None);
        assert_eq!(params.depth("depth").unwrap(), Some(2));
    }
}
