//! Turning descriptor layer bytes into a [`ComponentDescriptor`] within limits, and back into YAML.
//!
//! Every document, whatever its media type, goes through [`parse_descriptor_document`]: JSON is tried
//! first when the text starts with `{` (faster and exact), YAML otherwise or when that fails (YAML is a
//! superset of JSON, and flow-style YAML also starts with `{`). Both parsers feed the bounded value
//! builder, so nesting and alias expansion are limited the same way for both. YAML text is first
//! pre-scanned for flow nesting (`flow_nesting.rs`), because the YAML parser's own cost is quadratic
//! in it and is spent before the value builder sees anything.

use serde::de::DeserializeSeed;

use crate::bounded_value::{LimitHit, ValueBudget};
use crate::descriptor::ComponentDescriptor;
use crate::descriptor_tar::{find_descriptor_entry, looks_like_tar};
use crate::error::OcmError;
use crate::flow_nesting::check_flow_nesting;
use crate::media_types::DescriptorLayerFormat;

/// The inverse of decoding a `+tar` layer; lives with the tar reader.
pub use crate::descriptor_tar::encode_descriptor_tar;

/// Limits applied while decoding untrusted layers. All defaults live here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeLimits {
    /// The YAML or JSON text itself (for `+tar` layers: the `component-descriptor.yaml` entry).
    pub max_document_bytes: usize,
    /// The whole `+tar` layer.
    pub max_tar_bytes: usize,
    /// Nested lists and maps. The parsers refuse more than 128 on their own, whatever this says.
    pub max_nesting_depth: usize,
}

impl Default for DecodeLimits {
    fn default() -> DecodeLimits {
        DecodeLimits {
            max_document_bytes: 4 * 1024 * 1024,
            max_tar_bytes: 8 * 1024 * 1024,
            max_nesting_depth: 64,
        }
    }
}

/// A decoded layer: the model, and the text exactly as stored (served verbatim for `raw=true`).
#[derive(Debug, Clone, PartialEq)]
pub struct DecodedDescriptor {
    pub descriptor: ComponentDescriptor,
    pub document: String,
}

/// Decodes a descriptor layer by its media type; for media types that say nothing, by sniffing the
/// content (tar header, else text). Does not check which component the descriptor describes: see
/// [`verify_identity`].
pub fn decode_descriptor_layer(
    media_type: &str,
    bytes: &[u8],
    limits: &DecodeLimits,
) -> Result<DecodedDescriptor, OcmError> {
    if bytes.is_empty() {
        return Err(OcmError::EmptyContent);
    }
    let format = DescriptorLayerFormat::from_media_type(media_type).unwrap_or_else(|| {
        if looks_like_tar(bytes) {
            DescriptorLayerFormat::Tar
        } else {
            DescriptorLayerFormat::Yaml
        }
    });
    let document_bytes = match format {
        DescriptorLayerFormat::Tar => {
            check_size("descriptor tar", bytes.len(), limits.max_tar_bytes)?;
            find_descriptor_entry(bytes, limits.max_document_bytes)?
        }
        DescriptorLayerFormat::Yaml | DescriptorLayerFormat::Json => {
            // before the UTF-8 check, which would otherwise scan an oversized layer in full
            check_size(
                "component descriptor",
                bytes.len(),
                limits.max_document_bytes,
            )?;
            bytes
        }
    };
    let document = std::str::from_utf8(document_bytes)
        .map_err(|error| OcmError::malformed_descriptor(format!("not UTF-8 text: {error}")))?;
    let descriptor = parse_descriptor_document(document, limits)?;
    Ok(DecodedDescriptor {
        descriptor,
        document: document.to_owned(),
    })
}

/// Parses YAML or JSON text into a descriptor, within `limits`. A leading byte-order mark is ignored.
pub fn parse_descriptor_document(
    text: &str,
    limits: &DecodeLimits,
) -> Result<ComponentDescriptor, OcmError> {
    check_size(
        "component descriptor",
        text.len(),
        limits.max_document_bytes,
    )?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    if text.trim().is_empty() {
        return Err(OcmError::EmptyContent);
    }
    let value = if text.trim_start().starts_with('{') {
        match value_from_json(text, limits) {
            Ok(value) => value,
            Err(JsonFailure::Limit(error)) => return Err(error),
            Err(JsonFailure::NotJson) => value_from_yaml(text, limits)?,
        }
    } else {
        value_from_yaml(text, limits)?
    };
    if !value.is_object() {
        return Err(OcmError::malformed_descriptor("the document is not a map"));
    }
    serde_json::from_value(value).map_err(OcmError::malformed_descriptor)
}

/// The descriptor as YAML, for pushing: every string quoted (see `yaml_writer`). Field order is the
/// model's; unknown fields come last.
#[allow(
    clippy::expect_used,
    reason = "the model has only string map keys, so it always converts to a JSON value"
)]
pub fn descriptor_to_yaml(descriptor: &ComponentDescriptor) -> String {
    let value = serde_json::to_value(descriptor).expect("the model has only string map keys");
    crate::yaml_writer::quoted_yaml(&value)
}

/// Checks that the descriptor is the component version that was asked for (the Python reader does not).
///
/// Names compare case-insensitively, because OCI repository paths are lower-cased: two names that differ
/// only in case live at the same place, and the descriptor keeps the original case. Versions compare exactly.
pub fn verify_identity(
    descriptor: &ComponentDescriptor,
    name: &str,
    version: &str,
) -> Result<(), OcmError> {
    let component = &descriptor.component;
    let name_matches =
        component.name == name || component.name.to_lowercase() == name.to_lowercase();
    if name_matches && component.version == version {
        return Ok(());
    }
    Err(OcmError::IdentityMismatch {
        expected_name: name.to_owned(),
        expected_version: version.to_owned(),
        found_name: component.name.clone(),
        found_version: component.version.clone(),
    })
}

fn check_size(what: &'static str, actual: usize, limit: usize) -> Result<(), OcmError> {
    if actual > limit {
        return Err(OcmError::TooLarge {
            what,
            actual,
            limit,
        });
    }
    Ok(())
}

enum JsonFailure {
    /// A limit was hit: the answer is final, YAML would not do better.
    Limit(OcmError),
    /// Not valid JSON: try YAML.
    NotJson,
}

fn value_from_json(text: &str, limits: &DecodeLimits) -> Result<serde_json::Value, JsonFailure> {
    let budget = ValueBudget::for_document(text.len(), limits.max_nesting_depth);
    let mut deserializer = serde_json::Deserializer::from_str(text);
    let result = budget
        .seed()
        .deserialize(&mut deserializer)
        .and_then(|value| deserializer.end().map(|()| value));
    result.map_err(
        |error| match limit_error(&budget, limits, &error.to_string()) {
            Some(limit_error) => JsonFailure::Limit(limit_error),
            None => JsonFailure::NotJson,
        },
    )
}

fn value_from_yaml(text: &str, limits: &DecodeLimits) -> Result<serde_json::Value, OcmError> {
    // before the parser, whose work grows with the square of the flow nesting (see flow_nesting.rs)
    check_flow_nesting(text, limits.max_nesting_depth.min(128))?;
    let budget = ValueBudget::for_document(text.len(), limits.max_nesting_depth);
    budget
        .seed()
        .deserialize(serde_yaml_ng::Deserializer::from_str(text))
        .map_err(|error| {
            let message = error.to_string();
            limit_error(&budget, limits, &message).unwrap_or_else(|| {
                OcmError::malformed_descriptor(format!("invalid YAML: {message}"))
            })
        })
}

/// Our own limits are reported through the budget; the parsers' built-in guards (serde_json's and
/// serde_yaml_ng's recursion limit of 128, serde_yaml_ng's alias repetition limit) only through their
/// messages, which is the one stable thing they expose.
fn limit_error(
    budget: &ValueBudget,
    limits: &DecodeLimits,
    parser_message: &str,
) -> Option<OcmError> {
    match budget.limit_hit() {
        Some(LimitHit::Depth) => Some(OcmError::NestingTooDeep {
            limit: limits.max_nesting_depth,
        }),
        Some(LimitHit::Expansion) => Some(OcmError::ExpansionTooLarge {
            limit: budget.total_units(),
        }),
        None if parser_message.starts_with("recursion limit exceeded") => {
            Some(OcmError::NestingTooDeep {
                limit: limits.max_nesting_depth.min(128),
            })
        }
        None if parser_message.starts_with("repetition limit exceeded") => {
            Some(OcmError::ExpansionTooLarge {
                limit: budget.total_units(),
            })
        }
        None => None,
    }
}

#[cfg(test)]
#[path = "decode_tests.rs"]
mod tests;
