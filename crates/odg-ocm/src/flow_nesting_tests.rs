//! Tests of `flow_nesting.rs`: hostile nesting is refused, brackets that are text are not counted,
//! and no document the parser accepts within a depth is refused by the scan at that depth.

use super::check_flow_nesting;
use crate::error::OcmError;

fn refused(text: &str, max_depth: usize) -> bool {
    match check_flow_nesting(text, max_depth) {
        Ok(()) => false,
        Err(error) => {
            assert_eq!(error, OcmError::NestingTooDeep { limit: max_depth });
            true
        }
    }
}

/// The deepest nesting of lists and maps (block and flow) in a document the YAML parser accepts.
fn parsed_depth(text: &str) -> usize {
    fn depth(value: &serde_yaml_ng::Value) -> usize {
        match value {
            serde_yaml_ng::Value::Sequence(items) => 1 + items.iter().map(depth).max().unwrap_or(0),
            serde_yaml_ng::Value::Mapping(map) => {
                1 + map
                    .iter()
                    .map(|(key, value)| depth(key).max(depth(value)))
                    .max()
                    .unwrap_or(0)
            }
            serde_yaml_ng::Value::Tagged(tagged) => depth(&tagged.value),
            _ => 0,
        }
    }
    let value: serde_yaml_ng::Value = serde_yaml_ng::from_str(text)
        .unwrap_or_else(|error| panic!("not valid YAML: {error}\n{text}"));
    depth(&value)
}

#[test]
fn the_reported_label_value_and_other_deep_flow_shapes_are_refused() {
    let brackets = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let documents = [
        format!("component:\n  labels:\n  - name: x\n    value: {brackets}\n"),
        format!("- {brackets}\n"),
        format!("{}{}", "{a: ".repeat(50_000), "}".repeat(50_000)),
        format!("{}1{}", "[{a: ".repeat(30_000), "}]".repeat(30_000)),
        format!("key: &anchor !tag {brackets}\n"),
        format!("? {brackets}\n: value\n"),
        format!("--- {brackets}\n"),
        // unclosed: the parser would still scan every one of them
        "[".repeat(100_000),
    ];
    for document in &documents {
        assert!(refused(document, 64), "{}", &document[..40]);
    }
}

#[test]
fn the_depth_counted_is_the_flow_depth() {
    let nested = |depth: usize| format!("a: {}1{}\n", "[".repeat(depth), "]".repeat(depth));
    assert!(!refused(&nested(8), 8));
    assert!(refused(&nested(9), 8));
    let nested_maps = |depth: usize| format!("{}1{}", "{a: ".repeat(depth), "}".repeat(depth));
    assert!(!refused(&nested_maps(8), 8));
    assert!(refused(&nested_maps(9), 8));
    // siblings do not add up
    assert!(!refused("a: [[1], [2], {b: [3]}]\nb: [[[4]]]\n", 3));
}

#[test]
fn brackets_that_are_text_are_not_counted() {
    let documents = [
        // quoted, with the quote escapes of each style, over several lines
        "a: '[[[[''[[[['\nb: \"[[[[\\\"[[[[\"\nc: \"[[[\n  [[[\"\n",
        // comments, at line start and after a value
        "# [[[[[[\na: 1 # [[[[[[\n",
        // plain scalars in block context may hold brackets, quotes and hashes anywhere but first
        "a: x[[[[[[\nb: it's [[[[[ here\nc: a#[[[[[[\n",
        // a plain scalar continued on deeper lines
        "a: first\n  [[[[[[ second\n  third\n",
        "- first\n  [[[[[[ second\n",
        // block scalars, also inside sequences and with headers
        "a: |\n  [[[[[[\n  {{{{{{\nb: >-\n    [[[[[[\n",
        "- key: |\n    [[[[[[\n  other: |+\n    {{{{{{\n",
        "- |\n  [[[[[[\n",
        // quoted scalars inside flow collections, and JSON's adjacent values
        "a: ['[[[[[[', \"{{{{{{\"]\n",
        "{\"a\":\"[[[[[[\", \"b\":'{{{{{{'}\n",
        // tags and anchors
        "a: !!str '[[[[[['\nb: &anchor x[[[[[[\n",
        // a plain scalar in flow context holding a quote
        "a: [it's, '[[[[[[']\n",
    ];
    for document in documents {
        assert!(!refused(document, 2), "{document}");
        assert!(parsed_depth(document) <= 2, "{document}");
    }
}

#[test]
fn text_hidden_behind_line_breaks_the_parser_knows_is_counted() {
    // NEL, LINE SEPARATOR and PARAGRAPH SEPARATOR end a comment for libyaml
    for separator in ["\u{85}", "\u{2028}", "\u{2029}", "\r"] {
        let document = format!("a: 1 # comment{separator}b: [[[[[[1]]]]]]\n");
        assert!(refused(&document, 3), "{separator:?}");
    }
}

#[test]
fn lines_less_indented_than_a_block_scalar_needs_are_scanned() {
    // the block scalar of `- key: |` needs lines deeper than column 2; the line at column 2 is a key
    assert!(refused("- key: |\n  [[[[[[1]]]]]]: x\n", 3));
    // likewise after a plain scalar: a line at the mapping's column is not a continuation
    assert!(refused("- key: value\n  [[[[[[1]]]]]]: x\n", 3));
    assert!(refused("key: value\n[[[[[[1]]]]]]: x\n", 3));
    // and a comment ends a plain scalar, so the next line is read as tokens
    assert!(refused(
        "key: value\n  more # comment\n[[[[[[1]]]]]]: x\n",
        3
    ));
}

/// No false refusals: every document here parses, and the scan passes it at the depth it really has.
#[test]
fn documents_the_parser_accepts_pass_at_their_parsed_depth() {
    let documents = [
        include_str!("testdata/odd-but-valid.yaml"),
        "meta:\n  schemaVersion: v2\ncomponent:\n  name: a.b/c\n  version: '1'\n  labels:\n  - name: x\n    value: {a: [1, {b: [2, [3]]}]}\n",
        "a: [1,\n  [2,\n    [3]],\n  # [[[ a comment\n  {k: v}]\n",
        "? [a, [b]]\n: [c]\n",
        "[a, b]: value\n",
        "a: {b: c}   # [[[\nd: e\n",
        "--- # [[[\na: [1]\n...\n",
        "a: 'x'\nb: \"y\" # [[[\n",
        "a:\n- - - [1]\n",
        "a: [b: c, d: [e]]\n",
        "a: [\"x\":[1], 'y': {z: [2]}]\n",
    ];
    for document in documents {
        let depth = parsed_depth(document);
        assert!(!refused(document, depth), "{document}");
    }
}
