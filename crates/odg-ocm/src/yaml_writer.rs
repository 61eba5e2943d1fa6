//! Writes descriptors as block-style YAML in which every string is double-quoted.
//!
//! Readers with YAML 1.1 rules (PyYAML, under the Python OCM library) turn plain scalars such as
//! `2026-01-01T00:00:00Z`, `yes`, `12:30` or `1_000` into timestamps, booleans and numbers, and then
//! refuse the descriptor. Quoting every string makes the document mean the same to every reader.
//! Floats always carry a dot and a signed exponent, which YAML 1.1 requires to read them as floats.

use serde_json::Value;

/// Longest quoted key written as an implicit key (`"key": value`); YAML allows 1024 characters.
const MAX_IMPLICIT_KEY_BYTES: usize = 1000;

/// The YAML text of `value` (a JSON-like tree), ending with a newline.
pub fn quoted_yaml(value: &Value) -> String {
    let mut out = String::new();
    match value {
        Value::Object(map) if !map.is_empty() => write_container(value, 0, &mut out),
        Value::Array(items) if !items.is_empty() => write_container(value, 0, &mut out),
        scalar => {
            out.push_str(&scalar_text(scalar));
            out.push('\n');
        }
    }
    out
}

fn is_nonempty_container(value: &Value) -> bool {
    match value {
        Value::Object(map) => !map.is_empty(),
        Value::Array(items) => !items.is_empty(),
        _ => false,
    }
}

/// Writes a non-empty map or list, each line indented by `indent` spaces.
fn write_container(value: &Value, indent: usize, out: &mut String) {
    let pad = " ".repeat(indent);
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                let quoted = quote(key);
                // YAML limits implicit keys to 1024 characters (libyaml and PyYAML refuse longer
                // ones); a longer key is written explicitly: `? "key"` then `: value`.
                let explicit = quoted.len() > MAX_IMPLICIT_KEY_BYTES;
                out.push_str(&pad);
                if explicit {
                    out.push_str("? ");
                    out.push_str(&quoted);
                    out.push('\n');
                    out.push_str(&pad);
                } else {
                    out.push_str(&quoted);
                }
                out.push(':');
                if is_nonempty_container(child) {
                    out.push('\n');
                    // Lists under a key may start at the key's own indentation, as is customary
                    // (not after an explicit `:`, where they are indented like maps).
                    let child_indent = if child.is_array() && !explicit {
                        indent
                    } else {
                        indent + 2
                    };
                    write_container(child, child_indent, out);
                } else {
                    out.push(' ');
                    out.push_str(&scalar_text(child));
                    out.push('\n');
                }
            }
        }
        Value::Array(items) => {
            for item in items {
                if is_nonempty_container(item) {
                    // Write the item at indent + 2, then put the dash where its first line's indentation was.
                    let mut nested = String::new();
                    write_container(item, indent + 2, &mut nested);
                    out.push_str(&pad);
                    out.push_str("- ");
                    out.push_str(&nested[indent + 2..]);
                } else {
                    out.push_str(&pad);
                    out.push_str("- ");
                    out.push_str(&scalar_text(item));
                    out.push('\n');
                }
            }
        }
        _ => unreachable!("only containers are written here"),
    }
}

#[allow(clippy::expect_used, reason = "serialising a string cannot fail")]
fn quote(text: &str) -> String {
    // JSON string escapes are a subset of YAML double-quoted escapes.
    serde_json::to_string(text).expect("strings always serialise")
}

fn scalar_text(value: &Value) -> String {
    match value {
        Value::Null => "null".to_string(),
        Value::Bool(flag) => flag.to_string(),
        Value::Number(number) if number.is_f64() => float_text(number.as_f64().unwrap_or(0.0)),
        Value::Number(number) => number.to_string(),
        Value::String(text) => quote(text),
        Value::Array(_) => "[]".to_string(),
        Value::Object(_) => "{}".to_string(),
    }
}

/// `1.5`, `1.0e+59`, `-2.5e-7`: always a dot, exponents always signed.
fn float_text(number: f64) -> String {
    let text = format!("{number:?}");
    let (mantissa, exponent) = match text.split_once(['e', 'E']) {
        Some((mantissa, exponent)) => (mantissa.to_string(), Some(exponent.to_string())),
        None => (text.clone(), None),
    };
    let mantissa = if mantissa.contains('.') {
        mantissa
    } else {
        format!("{mantissa}.0")
    };
    match exponent {
        Some(exponent) if exponent.starts_with(['-', '+']) => format!("{mantissa}e{exponent}"),
        Some(exponent) => format!("{mantissa}e+{exponent}"),
        None => mantissa,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_string_is_quoted_and_the_tree_round_trips() {
        let value = json!({
            "meta": {"schemaVersion": "v2"},
            "component": {
                "name": "acme.org/a",
                "creationTime": "2026-03-01T10:00:00Z",
                "tricky": ["yes", "on", "12:30", "1_000", "1e3", "0o17", "=", "<<", "~", "null", "", "a: b", "- x", "\"q\"\n\t\\"],
                "numbers": [1, -2, 1.5, 1e59, -2.5e-7, 0.0],
                "flags": [true, false, null],
                "empty": {"list": [], "map": {}},
                "nested": [[1, [2]], {"a": [{"b": "c"}]}, []],
            },
        });
        let text = quoted_yaml(&value);
        assert!(
            text.contains("\"creationTime\": \"2026-03-01T10:00:00Z\""),
            "{text}"
        );
        assert!(text.contains("1.0e+59"), "{text}");
        let parsed: Value = serde_yaml_ng::from_str(&text).unwrap();
        assert_eq!(parsed, value, "{text}");
    }

    #[test]
    fn keys_longer_than_yaml_allows_for_implicit_keys_are_written_explicitly() {
        // Found by the descriptor_layer fuzz target: a label value whose map key had 1,280 characters.
        let long = "k".repeat(1_500);
        let value = json!({"labels": [{"value": {long.clone(): "v", "short": {long.clone(): [1, {"a": "b"}]}}}], long: []});
        let text = quoted_yaml(&value);
        assert!(text.contains("? \""), "{text}");
        let parsed: Value = serde_yaml_ng::from_str(&text).unwrap();
        assert_eq!(parsed, value, "{text}");
    }

    #[test]
    fn floats_follow_yaml_1_1() {
        assert_eq!(float_text(1.5), "1.5");
        assert_eq!(float_text(1e59), "1.0e+59");
        assert_eq!(float_text(-2.5e-7), "-2.5e-7");
        assert_eq!(float_text(3.0), "3.0");
    }
}
