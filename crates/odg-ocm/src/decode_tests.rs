//! Tests of `decode.rs`: every media type, sniffing, and the size, nesting and alias-expansion limits.

use super::*;
use crate::descriptor_tar::encode_descriptor_tar;
use crate::error::OcmErrorKind;
use crate::media_types::{
    MEDIA_TYPE_DESCRIPTOR_JSON, MEDIA_TYPE_DESCRIPTOR_JSON_TAR, MEDIA_TYPE_DESCRIPTOR_TAR_LEGACY,
    MEDIA_TYPE_DESCRIPTOR_YAML, MEDIA_TYPE_DESCRIPTOR_YAML_TAR,
};

const YAML_DOCUMENT: &str = "\
meta:
  schemaVersion: v2
component:
  name: example.com/demo/App
  version: 1.0.0
  provider: example-provider
  repositoryContexts: [{type: ociRegistry, baseUrl: registry.example.com/ocm}]
  resources:
  - {name: app-image, version: 1.0.0, type: ociImage, relation: external,
     access: {type: ociRegistry, imageReference: registry.example.com/images/app:1.0.0}}
  componentReferences:
  - {name: lib, componentName: example.com/demo/lib, version: 0.3.1}
signatures: []
nestedDigests: []
";

const JSON_DOCUMENT: &str = r#"{"meta": {"schemaVersion": "v2"},
 "component": {"name": "example.com/demo/App", "version": "1.0.0", "provider": "example-provider",
  "repositoryContexts": [{"type": "ociRegistry", "baseUrl": "registry.example.com/ocm"}],
  "componentReferences": null, "resources": null, "sources": null, "labels": null},
 "signatures": null}"#;

fn limits() -> DecodeLimits {
    DecodeLimits::default()
}

fn assert_kind<T: std::fmt::Debug>(result: Result<T, OcmError>, kind: OcmErrorKind) -> OcmError {
    let error = result.expect_err("decoding must fail");
    assert_eq!(error.kind(), kind, "{error}");
    error
}

#[test]
fn each_media_type_decodes_and_keeps_the_document_verbatim() {
    let yaml_tar = encode_descriptor_tar(YAML_DOCUMENT);
    let json_tar = encode_descriptor_tar(JSON_DOCUMENT);
    let cases: [(&str, &[u8], &str); 5] = [
        (MEDIA_TYPE_DESCRIPTOR_TAR_LEGACY, &yaml_tar, YAML_DOCUMENT),
        (MEDIA_TYPE_DESCRIPTOR_YAML_TAR, &yaml_tar, YAML_DOCUMENT),
        (
            MEDIA_TYPE_DESCRIPTOR_YAML,
            YAML_DOCUMENT.as_bytes(),
            YAML_DOCUMENT,
        ),
        (
            MEDIA_TYPE_DESCRIPTOR_JSON,
            JSON_DOCUMENT.as_bytes(),
            JSON_DOCUMENT,
        ),
        (MEDIA_TYPE_DESCRIPTOR_JSON_TAR, &json_tar, JSON_DOCUMENT),
    ];
    for (media_type, bytes, document) in cases {
        let decoded = decode_descriptor_layer(media_type, bytes, &limits()).unwrap();
        assert_eq!(decoded.document, document, "{media_type}");
        assert_eq!(decoded.descriptor.component.name, "example.com/demo/App");
        assert_eq!(decoded.descriptor.component.version, "1.0.0");
    }
}

#[test]
fn unknown_media_types_are_sniffed() {
    for bytes in [
        encode_descriptor_tar(YAML_DOCUMENT),
        YAML_DOCUMENT.as_bytes().to_vec(),
        JSON_DOCUMENT.as_bytes().to_vec(),
    ] {
        let decoded =
            decode_descriptor_layer("application/octet-stream", &bytes, &limits()).unwrap();
        assert_eq!(decoded.descriptor.component.version, "1.0.0");
    }
}

#[test]
fn the_python_tar_without_end_blocks_decodes() {
    let archive = include_bytes!("testdata/python-tarfile-without-end-blocks.tar");
    let decoded =
        decode_descriptor_layer(MEDIA_TYPE_DESCRIPTOR_TAR_LEGACY, archive, &limits()).unwrap();
    assert_eq!(decoded.descriptor.component.name, "example.com/demo/app");
    assert!(decoded.descriptor.component.component_references.is_empty());
}

#[test]
fn yaml_labelled_as_json_and_flow_yaml_still_parse() {
    let decoded = decode_descriptor_layer(
        MEDIA_TYPE_DESCRIPTOR_JSON,
        YAML_DOCUMENT.as_bytes(),
        &limits(),
    )
    .unwrap();
    assert_eq!(decoded.descriptor.component.version, "1.0.0");
    let flow_yaml = "{meta: {schemaVersion: v2}, component: {name: a.b/c, version: '1'}}";
    assert_eq!(
        parse_descriptor_document(flow_yaml, &limits())
            .unwrap()
            .component
            .name,
        "a.b/c"
    );
}

#[test]
fn a_leading_byte_order_mark_is_ignored_but_kept_in_the_document() {
    let text = format!("\u{feff}{YAML_DOCUMENT}");
    let decoded =
        decode_descriptor_layer(MEDIA_TYPE_DESCRIPTOR_YAML, text.as_bytes(), &limits()).unwrap();
    assert_eq!(decoded.document, text);
}

#[test]
fn empty_content_is_an_error() {
    assert_eq!(
        decode_descriptor_layer(MEDIA_TYPE_DESCRIPTOR_YAML, b"", &limits()),
        Err(OcmError::EmptyContent)
    );
    assert_eq!(
        decode_descriptor_layer(MEDIA_TYPE_DESCRIPTOR_YAML, b"  \n", &limits()),
        Err(OcmError::EmptyContent)
    );
    let empty_entry = encode_descriptor_tar("");
    assert_eq!(
        decode_descriptor_layer(MEDIA_TYPE_DESCRIPTOR_TAR_LEGACY, &empty_entry, &limits()),
        Err(OcmError::EmptyContent)
    );
}

#[test]
fn broken_content_is_malformed() {
    let not_a_tar = YAML_DOCUMENT.as_bytes();
    assert_kind(
        decode_descriptor_layer(MEDIA_TYPE_DESCRIPTOR_YAML_TAR, not_a_tar, &limits()),
        OcmErrorKind::Malformed,
    );
    for document in [
        "meta: [unclosed",
        "- just\n- a list\n",
        "plain scalar",
        "{\"meta\": {\"schemaVersion\": \"v2\"}}",
        "meta: {schemaVersion: v2}\ncomponent: {name: a.b/c}\n",
        "a: 1\n---\nb: 2\n",
    ] {
        assert_kind(
            parse_descriptor_document(document, &limits()),
            OcmErrorKind::Malformed,
        );
    }
    assert_kind(
        decode_descriptor_layer(MEDIA_TYPE_DESCRIPTOR_YAML, b"\xff\xfe", &limits()),
        OcmErrorKind::Malformed,
    );
}

#[test]
fn documents_and_tars_over_the_size_limits_are_refused() {
    let small = DecodeLimits {
        max_document_bytes: YAML_DOCUMENT.len() - 1,
        ..DecodeLimits::default()
    };
    assert_kind(
        decode_descriptor_layer(MEDIA_TYPE_DESCRIPTOR_YAML, YAML_DOCUMENT.as_bytes(), &small),
        OcmErrorKind::TooLarge,
    );
    let archive = encode_descriptor_tar(YAML_DOCUMENT);
    assert_kind(
        decode_descriptor_layer(MEDIA_TYPE_DESCRIPTOR_YAML_TAR, &archive, &small),
        OcmErrorKind::TooLarge,
    );
    let small_tar = DecodeLimits {
        max_tar_bytes: archive.len() - 1,
        ..DecodeLimits::default()
    };
    assert_kind(
        decode_descriptor_layer(MEDIA_TYPE_DESCRIPTOR_YAML_TAR, &archive, &small_tar),
        OcmErrorKind::TooLarge,
    );
}

#[test]
fn deep_nesting_is_refused_in_yaml_and_json() {
    let deep_yaml = "[".repeat(10_000);
    let deep_json = format!("{}{}", "{\"a\":".repeat(10_000), "}".repeat(10_000));
    let deep_yaml_map = (0..2_000)
        .map(|level| format!("{}k:\n", " ".repeat(level)))
        .collect::<String>();
    for document in [&deep_yaml, &deep_json, &deep_yaml_map] {
        let error = assert_kind(
            parse_descriptor_document(document, &limits()),
            OcmErrorKind::TooLarge,
        );
        assert_eq!(error, OcmError::NestingTooDeep { limit: 64 });
    }
}

#[test]
fn nesting_within_the_limit_is_fine_and_beyond_it_is_not() {
    let nested = |depth: usize| {
        format!(
            "meta: {{schemaVersion: v2}}\ncomponent: {{name: a.b/c, version: '1', provider: {}1{}}}\n",
            "[".repeat(depth),
            "]".repeat(depth)
        )
    };
    // the document map and the component map are two levels already
    let limits = DecodeLimits {
        max_nesting_depth: 10,
        ..DecodeLimits::default()
    };
    assert!(parse_descriptor_document(&nested(8), &limits).is_ok());
    assert_eq!(
        parse_descriptor_document(&nested(9), &limits),
        Err(OcmError::NestingTooDeep { limit: 10 })
    );
}

#[test]
fn a_billion_laughs_alias_bomb_is_refused() {
    let bomb = "\
a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
";
    assert_kind(
        parse_descriptor_document(bomb, &limits()),
        OcmErrorKind::TooLarge,
    );
}

#[test]
fn an_alias_bomb_hidden_in_a_large_document_is_refused() {
    // serde_yaml_ng's own guard allows 100 alias jumps per event, so padding the document with
    // many events would let a bomb expand far; the expansion budget must catch it regardless.
    let padding: String = (0..20_000)
        .map(|index| format!("p{index}: [1, 2, 3, 4]\n"))
        .collect();
    let bomb = format!(
        "{padding}a: &a [{}]\nb: &b [{}]\nc: &c [{}]\nd: [{}]\n",
        vec!["\"lol lol lol lol\""; 64].join(","),
        vec!["*a"; 64].join(","),
        vec!["*b"; 64].join(","),
        vec!["*c"; 64].join(","),
    );
    // How fast the refusal is, is measured in `benches/hostile_decode.rs`, not asserted here.
    let error = assert_kind(
        parse_descriptor_document(&bomb, &limits()),
        OcmErrorKind::TooLarge,
    );
    assert!(
        matches!(error, OcmError::ExpansionTooLarge { .. }),
        "{error}"
    );
}

#[test]
fn descriptor_to_yaml_round_trips_through_the_tar_encoding() {
    let original = parse_descriptor_document(YAML_DOCUMENT, &limits()).unwrap();
    let yaml = descriptor_to_yaml(&original);
    let archive = encode_descriptor_tar(&yaml);
    let decoded =
        decode_descriptor_layer(MEDIA_TYPE_DESCRIPTOR_TAR_LEGACY, &archive, &limits()).unwrap();
    assert_eq!(decoded.descriptor, original);
    assert_eq!(decoded.document, yaml);
    assert!(yaml.contains("nestedDigests"));
}

#[test]
fn verify_identity_compares_names_ignoring_case_and_versions_exactly() {
    let descriptor = parse_descriptor_document(YAML_DOCUMENT, &limits()).unwrap();
    assert_eq!(
        verify_identity(&descriptor, "example.com/demo/App", "1.0.0"),
        Ok(())
    );
    assert_eq!(
        verify_identity(&descriptor, "example.com/demo/app", "1.0.0"),
        Ok(())
    );
    assert_kind(
        verify_identity(&descriptor, "example.com/demo/other", "1.0.0"),
        OcmErrorKind::Mismatch,
    );
    assert_kind(
        verify_identity(&descriptor, "example.com/demo/app", "v1.0.0"),
        OcmErrorKind::Mismatch,
    );
    assert_kind(
        verify_identity(&descriptor, "example.com/demo/app", "1.0.0+b"),
        OcmErrorKind::Mismatch,
    );
}

#[test]
fn a_hostile_flow_nesting_label_is_refused_and_odd_valid_text_decodes() {
    let brackets = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let hostile = format!(
        "meta:\n  schemaVersion: v2\ncomponent:\n  name: a.b/c\n  version: '1'\n  labels:\n  - name: x\n    value: {brackets}\n"
    );
    assert_eq!(
        parse_descriptor_document(&hostile, &limits()),
        Err(OcmError::NestingTooDeep { limit: 64 })
    );
    let odd = include_str!("testdata/odd-but-valid.yaml");
    let descriptor = parse_descriptor_document(odd, &limits()).expect("odd but valid");
    assert_eq!(descriptor.component.name, "example.com/odd/[brackets]");
}
