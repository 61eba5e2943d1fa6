//! Tests of `repository.rs`: URL parsing and display, component paths, name and version validation.

use serde_json::Map;

use super::*;
use crate::error::OcmErrorKind;

fn url(text: &str) -> OcmRepositoryUrl {
    text.parse()
        .unwrap_or_else(|error| panic!("{text}: {error}"))
}

#[test]
fn schemes_select_plain_http_or_https() {
    let plain = url("http://127.0.0.1:5000/ocm");
    assert_eq!(
        plain,
        OcmRepositoryUrl {
            plain_http: true,
            host: "127.0.0.1:5000".into(),
            path: "ocm".into()
        }
    );
    assert!(!url("https://registry.example.com/ocm").plain_http);
    assert!(!url("registry.example.com/ocm").plain_http);
    assert_eq!(
        url("HTTPS://registry.example.com/ocm"),
        url("registry.example.com/ocm")
    );
    assert!(url("HTTP://localhost:5000").plain_http);
}

#[test]
fn hosts_are_lower_cased_and_paths_trimmed() {
    let parsed = url("https://Registry.Example.COM//a/b/");
    assert_eq!(parsed.host, "registry.example.com");
    assert_eq!(parsed.path, "a/b");
    assert_eq!(url("registry.example.com/").path, "");
    assert_eq!(url("registry.example.com").path, "");
    assert_eq!(url("[::1]:5000/ocm").host, "[::1]:5000");
}

#[test]
fn display_writes_a_scheme_only_for_plain_http() {
    for (input, displayed) in [
        ("http://127.0.0.1:5000/ocm", "http://127.0.0.1:5000/ocm"),
        (
            "https://registry.example.com/a/b",
            "registry.example.com/a/b",
        ),
        ("registry.example.com", "registry.example.com"),
        ("http://localhost:5000/", "http://localhost:5000"),
    ] {
        assert_eq!(url(input).to_string(), displayed);
        assert_eq!(url(displayed), url(input), "display must parse back");
    }
}

#[test]
fn bad_urls_are_refused() {
    for text in [
        "",
        "ftp://registry.example.com/ocm",
        "oci://registry.example.com/ocm",
        "https://",
        "https:///path",
        "/path",
        "user@registry.example.com/ocm",
        "https://user:secret@registry.example.com/ocm",
        "registry.example.com/ocm?x=1",
        "registry.example.com/ocm#frag",
        "registry.example.com/o cm",
        " registry.example.com",
        "registry.example.com/ocm\n",
        "registry.example.com:/ocm",
        "registry.example.com:99999/ocm",
        "registry.example.com:abc/ocm",
        "registry..example.com/ocm",
        "-registry.example.com",
        "registry.example.com/a//b",
        "registry.example.com/a/../b",
        "registry.example.com/a/./b",
        "registry.example.com/a/b%20c",
        "[::1/ocm",
        "[zz]:5000",
        "[::1]x",
    ] {
        let error = text.parse::<OcmRepositoryUrl>().expect_err(text);
        assert_eq!(error.kind(), OcmErrorKind::InvalidInput, "{text}");
    }
}

#[test]
fn urls_serialise_as_their_display_form() {
    let parsed: OcmRepositoryUrl =
        serde_json::from_str(r#""https://registry.example.com/ocm""#).unwrap();
    assert_eq!(
        serde_json::to_string(&parsed).unwrap(),
        r#""registry.example.com/ocm""#
    );
}

#[test]
fn repository_contexts_become_urls() {
    let context = |base_url: Option<&str>, sub_path: Option<&str>| RepositoryContext {
        context_type: "ociRegistry".into(),
        base_url: base_url.map(String::from),
        sub_path: sub_path.map(String::from),
        extra: Map::new(),
    };
    let from = |context: RepositoryContext| OcmRepositoryUrl::from_repository_context(&context);
    assert_eq!(
        from(context(Some("registry.example.com/ocm"), None)).unwrap(),
        url("registry.example.com/ocm")
    );
    assert_eq!(
        from(context(Some("registry.example.com/"), Some("/a/b/"))).unwrap(),
        url("registry.example.com/a/b")
    );
    assert_eq!(
        from(context(Some("registry.example.com"), Some(""))).unwrap(),
        url("registry.example.com")
    );
    assert!(from(context(None, None)).is_err());
    let mut not_oci = context(Some("registry.example.com"), None);
    not_oci.context_type = "CommonTransportFormat".into();
    assert_eq!(
        from(not_oci).unwrap_err().kind(),
        OcmErrorKind::InvalidInput
    );
}

#[test]
fn component_paths_lower_case_the_name() {
    assert_eq!(
        component_repository_path(&url("registry.example.com/ocm"), "example.com/Demo/App"),
        "ocm/component-descriptors/example.com/demo/app"
    );
    assert_eq!(
        component_repository_path(&url("registry.example.com"), "example.com/app"),
        "component-descriptors/example.com/app"
    );
    assert_eq!(
        component_version_reference(
            &url("http://127.0.0.1:5000/ocm"),
            "example.com/App",
            "1.0.0+b"
        ),
        "http://127.0.0.1:5000/ocm/component-descriptors/example.com/app:1.0.0.build-b"
    );
}

#[test]
fn reasonable_component_names_are_valid() {
    for name in [
        "example.com/demo/app",
        "github.com/gardener/gardener",
        "Example.com/Demo/App",
        "example.com/a_b/c__d/e--f/g-h.i",
        "localcomponent",
        "a",
    ] {
        assert_eq!(validate_component_name(name), Ok(()), "{name}");
    }
    assert_eq!(validate_component_name(&"a".repeat(255)), Ok(()));
}

#[test]
fn bad_component_names_are_refused() {
    for name in [
        "".to_owned(),
        "a".repeat(256),
        "/example.com/app".into(),
        "example.com/app/".into(),
        "example.com/../app".into(),
        "example.com/a..b".into(),
        "example.com/my app".into(),
        "example.com/app\t".into(),
        "example.com/app\u{7}".into(),
        "example.com//app".into(),
        "example.com/app:1.0".into(),
        "example.com/-app".into(),
        "example.com/app_".into(),
        "example.com/a___b".into(),
        "example.com/ü".into(),
    ] {
        let error = validate_component_name(&name).expect_err(&name);
        assert_eq!(error.kind(), OcmErrorKind::InvalidInput, "{name}");
    }
}

#[test]
fn versions_must_be_valid_tags_after_the_plus_mapping() {
    for version in [
        "1.0.0",
        "v1.2",
        "1.0.0-rc.1+build.5",
        "_x",
        "latest",
        &"1".repeat(128),
    ] {
        assert_eq!(validate_version(version), Ok(()), "{version}");
    }
    let mapped_at_limit = format!("1+{}", "a".repeat(120)); // 122 characters, 128 as a tag
    assert_eq!(validate_version(&mapped_at_limit), Ok(()));
    let mapped_over_limit = format!("1+{}", "a".repeat(121)); // 123 characters, 129 as a tag
    for version in [
        "",
        &"1".repeat(129),
        &mapped_over_limit,
        ".1.0",
        "-1.0",
        "1.0/2",
        "1.0 0",
        "1.0:0",
        "1.0.0\n",
    ] {
        let error = validate_version(version).expect_err(version);
        assert_eq!(error.kind(), OcmErrorKind::InvalidInput, "{version:?}");
    }
}

#[test]
fn the_tag_check_agrees_with_the_oci_grammar_applied_to_the_mapped_version() {
    let grammar = Regex::new(r"\A[A-Za-z0-9_][A-Za-z0-9._-]{0,127}\z").unwrap();
    let alphabet: Vec<char> = "aZ09_.-+/ é:".chars().collect();
    // a deterministic walk over short strings of the alphabet, and lengths around the bound
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut versions: Vec<String> = Vec::new();
    for _ in 0..20_000 {
        let length = (next() % 12) as usize;
        versions.push(
            (0..length)
                .map(|_| alphabet[(next() % alphabet.len() as u64) as usize])
                .collect(),
        );
    }
    for length in [121, 122, 127, 128, 129] {
        versions.push("a".repeat(length));
        versions.push(format!("{}+b", "a".repeat(length - 7)));
    }
    for version in versions {
        assert_eq!(
            is_oci_tag_once_mapped(&version),
            grammar.is_match(&version_to_tag(&version)),
            "{version:?}"
        );
    }
}
