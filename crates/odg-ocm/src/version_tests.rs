//! Tests of `version.rs`: parsing, precedence, greatest/sort, every filter, and the tag mapping.

use super::*;
use crate::error::OcmErrorKind;

fn parse(text: &str) -> RelaxedVersion {
    RelaxedVersion::parse(text).unwrap_or_else(|| panic!("{text} should parse"))
}

#[test]
fn relaxed_forms_parse_and_normalise() {
    for (text, normalised) in [
        ("1.2.3", "1.2.3"),
        ("v1.2.3", "1.2.3"),
        ("V1.2.3", "1.2.3"),
        ("1.2", "1.2.0"),
        ("v1", "1.0.0"),
        ("01.002.0003", "1.2.3"),
        ("1.2-rc.1", "1.2.0-rc.1"),
        ("1.0.0-alpha-1.beta", "1.0.0-alpha-1.beta"),
        ("1.0.0-rc.01", "1.0.0-rc.1"),
        ("1.0.0+build.5", "1.0.0+build.5"),
        ("1.0.0-rc.1+build-7", "1.0.0-rc.1+build-7"),
    ] {
        assert_eq!(parse(text).to_string(), normalised, "{text}");
    }
}

#[test]
fn non_versions_do_not_parse() {
    for text in [
        "",
        "v",
        "vv1.0.0",
        "latest",
        "1.2.3.4",
        "1..2",
        ".1",
        "1.",
        "1.2.3-",
        "1.2.3+",
        "1.2.3-rc..1",
        "1.2.3+a..b",
        "1.2.3-rc_1",
        " 1.2.3",
        "1.2.3 ",
        "x1.2.3",
        "-1.2.3",
        "1.2.3-rc.99999999999999999999999",
        "99999999999999999999999.0.0",
    ] {
        assert!(
            RelaxedVersion::parse(text).is_none(),
            "{text:?} should not parse"
        );
    }
}

#[test]
fn accessors_report_the_parts() {
    let version = parse("v1.2.3-rc.1+b");
    assert_eq!(
        (version.major(), version.minor(), version.patch()),
        (1, 2, 3)
    );
    assert!(version.is_pre_release());
    assert_eq!(version.build_metadata(), "b");
    assert!(!parse("1.2.3").is_pre_release());
}

#[test]
fn precedence_follows_semver() {
    // the ordering example of the semver specification, plus relaxed spellings
    let ascending = [
        "1.0.0-alpha",
        "1.0.0-alpha.1",
        "1.0.0-alpha.beta",
        "1.0.0-beta",
        "1.0.0-beta.2",
        "1.0.0-beta.11",
        "1.0.0-rc.1",
        "1.0.0",
        "1.0.1",
        "v1.1",
        "1.10.0",
        "2",
    ];
    for pair in ascending.windows(2) {
        assert!(parse(pair[0]) < parse(pair[1]), "{} < {}", pair[0], pair[1]);
    }
}

#[test]
fn build_metadata_is_ignored_in_comparisons() {
    assert_eq!(parse("1.0.0+a"), parse("1.0.0+b"));
    assert_eq!(parse("v1.0"), parse("1.0.0+x"));
    assert_eq!(
        parse("1.0.0-rc.1+a").cmp(&parse("1.0.0-rc.1")),
        Ordering::Equal
    );
    let hash = |version: &RelaxedVersion| {
        use std::collections::hash_map::DefaultHasher;
        let mut hasher = DefaultHasher::new();
        version.hash(&mut hasher);
        hasher.finish()
    };
    assert_eq!(hash(&parse("1.0.0+a")), hash(&parse("1.0.0+b")));
}

#[test]
fn greatest_handles_prefixes_short_forms_pre_releases_and_unparsable_tags() {
    assert_eq!(
        greatest(["v1.2", "1.1.9", "1.2.0-rc.1", "latest"]),
        Some("v1.2")
    );
    assert_eq!(greatest(["1.10", "1.9.9", "v1.2.3"]), Some("1.10"));
    assert_eq!(
        greatest(["2.0.0-rc.2", "2.0.0-rc.10", "1.99.0"]),
        Some("2.0.0-rc.10")
    );
    assert_eq!(greatest(["1.0.0+build.1", "0.9.0"]), Some("1.0.0+build.1"));
    assert_eq!(greatest(["latest", "main"]), None);
    assert_eq!(greatest(std::iter::empty::<&str>()), None);
}

#[test]
fn greatest_does_not_depend_on_input_order_for_equal_precedence() {
    let forward = greatest(["1.0.0", "v1.0.0", "1.0.0+b", "1.0.0+a"]);
    let backward = greatest(["1.0.0+a", "1.0.0+b", "v1.0.0", "1.0.0"]);
    assert_eq!(forward, backward);
}

#[test]
fn sort_ascending_orders_by_precedence_with_unparsable_first() {
    let mut versions: Vec<String> = [
        "1.10.0",
        "latest",
        "v1.2",
        "1.2.1-rc.1",
        "1.2.1",
        "0.9",
        "not-a-version",
        "1.2.0-rc.1",
    ]
    .map(String::from)
    .to_vec();
    sort_ascending(&mut versions);
    assert_eq!(
        versions,
        [
            "latest",
            "not-a-version",
            "0.9",
            "1.2.0-rc.1",
            "v1.2",
            "1.2.1-rc.1",
            "1.2.1",
            "1.10.0"
        ]
    );
}

#[test]
fn filters_parse_by_name_and_display_back() {
    for name in [
        "any",
        "semver_any",
        "semver_releases",
        "semver_non_releases",
        r"1\.2\..*",
    ] {
        let filter: VersionFilter = name.parse().unwrap();
        assert_eq!(filter.to_string(), name);
    }
    assert!(matches!(
        "1.2.*".parse::<VersionFilter>(),
        Ok(VersionFilter::Regex(_))
    ));
}

#[test]
fn bad_filters_are_invalid_input() {
    for text in ["", "(", "[a-"] {
        let error = text.parse::<VersionFilter>().unwrap_err();
        assert_eq!(error.kind(), OcmErrorKind::InvalidInput, "{text:?}");
    }
}

#[test]
fn every_filter_matches_what_it_says() {
    let versions = [
        "1.0.0",
        "v1.2",
        "1.0.0-rc.1",
        "1.0.0+build",
        "latest",
        "1.2.3.4",
    ];
    let expectations: [(&str, [bool; 6]); 6] = [
        ("any", [true, true, true, true, true, true]),
        ("semver_any", [true, true, true, true, false, false]),
        ("semver_releases", [true, true, false, false, false, false]),
        (
            "semver_non_releases",
            [false, false, true, true, false, false],
        ),
        (r"1\.0\.0.*", [true, false, true, true, false, false]),
        ("1", [false, false, false, false, false, false]), // full match: `1` does not match `1.0.0`
    ];
    for (filter_text, expected) in expectations {
        let filter: VersionFilter = filter_text.parse().unwrap();
        for (version, expected) in versions.iter().zip(expected) {
            assert_eq!(
                filter.matches(version),
                expected,
                "{filter_text} on {version}"
            );
        }
    }
}

#[test]
fn filters_serialise_as_their_string() {
    let filter: VersionFilter = serde_json::from_str(r#""semver_releases""#).unwrap();
    assert_eq!(filter, VersionFilter::SemverReleases);
    assert_eq!(
        serde_json::to_string(&filter).unwrap(),
        r#""semver_releases""#
    );
    assert!(serde_json::from_str::<VersionFilter>(r#""(""#).is_err());
}

#[test]
fn plus_maps_to_build_and_back() {
    assert_eq!(version_to_tag("1.0.0+build.5"), "1.0.0.build-build.5");
    assert_eq!(tag_to_version("1.0.0.build-build.5"), "1.0.0+build.5");
    assert_eq!(version_to_tag("1.0.0"), "1.0.0");
    assert_eq!(tag_to_version("1.0.0"), "1.0.0");
    // only the last `.build-` is reversed
    assert_eq!(tag_to_version("1.0.0.build-a.build-b"), "1.0.0.build-a+b");
}

/// Every string up to five tokens long over an alphabet chosen to provoke the mapping's edge cases.
fn generated_strings() -> Vec<String> {
    const TOKENS: [&str; 7] = ["1", ".", "+", "-", ".build-", "build-", "a"];
    let mut all = vec![String::new()];
    let mut frontier = vec![String::new()];
    for _ in 0..5 {
        frontier = frontier
            .iter()
            .flat_map(|prefix| TOKENS.iter().map(move |token| format!("{prefix}{token}")))
            .collect();
        all.extend(frontier.iter().cloned());
    }
    all
}

#[test]
fn tag_mapping_properties_hold_for_generated_strings() {
    let strings = generated_strings();
    assert!(strings.len() > 10_000);
    for text in &strings {
        let tag = version_to_tag(text);
        assert!(!tag.contains('+'), "a tag never holds '+': {text:?}");

        // version -> tag -> version is exact when the spec's assumptions hold: at most one `+`,
        // and no `.build-` after it (or anywhere, without a `+`)
        let round_trip_is_exact = match text.split_once('+') {
            None => !text.contains(".build-"),
            Some((_, after)) => !after.contains('+') && !after.contains(".build-"),
        };
        if round_trip_is_exact {
            assert_eq!(&tag_to_version(&tag), text, "round trip of {text:?}");
        }

        // tag -> version -> tag is always exact for strings that are valid tags (no `+`)
        if !text.contains('+') {
            assert_eq!(
                &version_to_tag(&tag_to_version(text)),
                text,
                "tag round trip of {text:?}"
            );
        }
    }
}

#[test]
fn parsed_versions_survive_the_tag_mapping_with_equal_precedence() {
    for text in generated_strings() {
        if let Some(parsed) = RelaxedVersion::parse(&text) {
            if text.matches('+').count() <= 1 && !text.contains(".build-") {
                let back = tag_to_version(&version_to_tag(&text));
                assert_eq!(RelaxedVersion::parse(&back), Some(parsed), "{text:?}");
            }
        }
    }
}

/// The delivery service's rule (`lookups.py`, `iter_matching_versions`): `semver_releases` keeps
/// only versions with neither a pre-release part nor build metadata; `semver_non_releases` keeps
/// the parsable rest.
#[test]
fn semver_releases_drops_build_metadata_like_the_original() {
    let releases: VersionFilter = "semver_releases".parse().unwrap();
    let non_releases: VersionFilter = "semver_non_releases".parse().unwrap();
    for version in [
        "1.0.0+build.5",
        "1.0.0+20260101",
        "1.0.0-rc.1+build-7",
        "v2.1+meta",
    ] {
        assert!(!releases.matches(version), "{version}");
        assert!(non_releases.matches(version), "{version}");
    }
    for version in ["1.0.0", "v2.1", "3"] {
        assert!(releases.matches(version), "{version}");
        assert!(!non_releases.matches(version), "{version}");
    }
}
