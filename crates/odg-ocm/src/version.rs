//! Component versions: relaxed semver parsing and ordering, the delivery service's version filters,
//! and the mapping between versions and OCI tags (`+` is not allowed in tags).

use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::OcmError;
use crate::full_match_regex::FullMatchRegex;

/// A version parsed the way the Python `version.parse_to_semver` does, and a little more tolerant:
/// one leading `v`/`V` is dropped, missing minor and patch are zero (`1.2` is `1.2.0`, `1` is `1.0.0`),
/// and leading zeros in numbers are accepted (`01.002.0` is `1.2.0`).
///
/// Ordering and equality follow semver precedence: build metadata is kept but ignored, so
/// `1.0.0+a == 1.0.0+b`. `Display` gives the normalised form, e.g. `1.2.0-rc.1+build.5`.
#[derive(Debug, Clone)]
pub struct RelaxedVersion {
    major: u64,
    minor: u64,
    patch: u64,
    pre_release: Vec<PreReleaseIdentifier>,
    build: String,
}

/// Semver rules: numeric identifiers compare numerically and sort before alphanumeric ones, which
/// compare in ASCII order. The derived order follows from the variant order and field types.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum PreReleaseIdentifier {
    Numeric(u64),
    AlphaNumeric(String),
}

impl RelaxedVersion {
    /// `None` for anything that is not a (relaxed) semantic version, such as `latest` or `1.2.3.4`.
    pub fn parse(text: &str) -> Option<RelaxedVersion> {
        let text = text
            .strip_prefix('v')
            .or_else(|| text.strip_prefix('V'))
            .unwrap_or(text);
        let (without_build, build) = match text.split_once('+') {
            Some((head, build)) => (head, Some(build)),
            None => (text, None),
        };
        let (core, pre_release) = match without_build.split_once('-') {
            Some((core, pre_release)) => (core, Some(pre_release)),
            None => (without_build, None),
        };

        // One to three numbers; missing ones are zero.
        let mut numbers = [0u64; 3];
        for (index, part) in core.split('.').enumerate() {
            let is_number = !part.is_empty() && part.bytes().all(|byte| byte.is_ascii_digit());
            if index == numbers.len() || !is_number {
                return None;
            }
            numbers[index] = part.parse().ok()?;
        }

        let pre_release = match pre_release {
            None => Vec::new(),
            Some(text) => text
                .split('.')
                .map(parse_pre_release_identifier)
                .collect::<Option<Vec<_>>>()?,
        };
        if let Some(build) = build {
            if !build.split('.').all(is_identifier) {
                return None;
            }
        }
        Some(RelaxedVersion {
            major: numbers[0],
            minor: numbers[1],
            patch: numbers[2],
            pre_release,
            build: build.unwrap_or_default().to_owned(),
        })
    }

    pub fn major(&self) -> u64 {
        self.major
    }

    pub fn minor(&self) -> u64 {
        self.minor
    }

    pub fn patch(&self) -> u64 {
        self.patch
    }

    /// A version with a pre-release part (`1.0.0-rc.1`) is not a release.
    pub fn is_pre_release(&self) -> bool {
        !self.pre_release.is_empty()
    }

    /// A release in the delivery service's sense: no pre-release part and no build metadata.
    pub fn is_release(&self) -> bool {
        self.pre_release.is_empty() && self.build.is_empty()
    }

    /// Build metadata without the `+`; empty when there is none. Never part of comparisons.
    pub fn build_metadata(&self) -> &str {
        &self.build
    }
}

fn is_identifier(text: &str) -> bool {
    !text.is_empty()
        && text
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || byte == b'-')
}

fn parse_pre_release_identifier(text: &str) -> Option<PreReleaseIdentifier> {
    if !is_identifier(text) {
        return None;
    }
    if text.bytes().all(|byte| byte.is_ascii_digit()) {
        // Leading zeros are tolerated here too; numbers beyond u64 are not versions anyone uses.
        return text.parse().ok().map(PreReleaseIdentifier::Numeric);
    }
    Some(PreReleaseIdentifier::AlphaNumeric(text.to_owned()))
}

impl Ord for RelaxedVersion {
    fn cmp(&self, other: &RelaxedVersion) -> Ordering {
        (self.major, self.minor, self.patch)
            .cmp(&(other.major, other.minor, other.patch))
            .then_with(
                || match (self.pre_release.is_empty(), other.pre_release.is_empty()) {
                    (true, true) => Ordering::Equal,
                    (true, false) => Ordering::Greater, // a release is greater than its pre-releases
                    (false, true) => Ordering::Less,
                    (false, false) => self.pre_release.cmp(&other.pre_release),
                },
            )
    }
}

impl PartialOrd for RelaxedVersion {
    fn partial_cmp(&self, other: &RelaxedVersion) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for RelaxedVersion {
    fn eq(&self, other: &RelaxedVersion) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for RelaxedVersion {}

impl Hash for RelaxedVersion {
    fn hash<H: Hasher>(&self, state: &mut H) {
        (self.major, self.minor, self.patch, &self.pre_release).hash(state);
    }
}

impl fmt::Display for RelaxedVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)?;
        for (index, identifier) in self.pre_release.iter().enumerate() {
            f.write_str(if index == 0 { "-" } else { "." })?;
            match identifier {
                PreReleaseIdentifier::Numeric(number) => write!(f, "{number}")?,
                PreReleaseIdentifier::AlphaNumeric(text) => f.write_str(text)?,
            }
        }
        if !self.build.is_empty() {
            write!(f, "+{}", self.build)?;
        }
        Ok(())
    }
}

/// The greatest parsable version; unparsable ones are skipped. Versions of equal precedence
/// (`1.0.0`, `v1.0.0`, `1.0.0+b`) are told apart by their text, so the answer does not depend on the
/// order of the input (registries list tags in no particular order).
pub fn greatest<'a, I: IntoIterator<Item = &'a str>>(versions: I) -> Option<&'a str> {
    versions
        .into_iter()
        .filter_map(|text| RelaxedVersion::parse(text).map(|parsed| (parsed, text)))
        .max()
        .map(|(_, text)| text)
}

/// Sorts ascending by semver precedence, ties broken by text as in [`greatest`]: the one order of
/// version lists (`/ocm/component/versions`).
///
/// Versions that do not parse come first, among themselves by text: the original orders a list
/// with its relaxed parser, which reads them as `0.0`, and a list must still show every tag the
/// repository's filter let through (`version_filter=any` keeps `latest`).
pub fn sort_ascending(versions: &mut [String]) {
    versions.sort_by_cached_key(|version| (RelaxedVersion::parse(version), version.clone()));
}

/// Which versions of a component a repository offers, as configured per repository or given as the
/// `version_filter` query parameter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VersionFilter {
    /// `any`: every version, parsable or not.
    Any,
    /// `semver_any`: every parsable version.
    SemverAny,
    /// `semver_releases`: parsable versions with neither a pre-release part nor build metadata
    /// (plain `MAJOR.MINOR.PATCH`, as the delivery service has it).
    SemverReleases,
    /// `semver_non_releases`: parsable versions with a pre-release part or build metadata (the
    /// complement of `semver_releases` among parsable versions, as in the delivery service).
    SemverNonReleases,
    /// Anything else: a regular expression that must match the whole version.
    Regex(FullMatchRegex),
}

impl VersionFilter {
    pub fn matches(&self, version: &str) -> bool {
        match self {
            VersionFilter::Any => true,
            VersionFilter::SemverAny => RelaxedVersion::parse(version).is_some(),
            VersionFilter::SemverReleases => {
                RelaxedVersion::parse(version).is_some_and(|parsed| parsed.is_release())
            }
            VersionFilter::SemverNonReleases => {
                RelaxedVersion::parse(version).is_some_and(|parsed| !parsed.is_release())
            }
            VersionFilter::Regex(regex) => regex.is_match(version),
        }
    }
}

impl FromStr for VersionFilter {
    type Err = OcmError;

    fn from_str(text: &str) -> Result<VersionFilter, OcmError> {
        Ok(match text {
            "any" => VersionFilter::Any,
            "semver_any" => VersionFilter::SemverAny,
            "semver_releases" => VersionFilter::SemverReleases,
            "semver_non_releases" => VersionFilter::SemverNonReleases,
            // An empty pattern would match only the empty version: surely a mistake.
            "" => {
                return Err(OcmError::InvalidVersionFilter {
                    filter: String::new(),
                    reason: "empty".into(),
                })
            }
            pattern => VersionFilter::Regex(FullMatchRegex::new(pattern).map_err(|error| {
                OcmError::InvalidVersionFilter {
                    filter: pattern.to_owned(),
                    reason: error.to_string(),
                }
            })?),
        })
    }
}

impl fmt::Display for VersionFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            VersionFilter::Any => "any",
            VersionFilter::SemverAny => "semver_any",
            VersionFilter::SemverReleases => "semver_releases",
            VersionFilter::SemverNonReleases => "semver_non_releases",
            VersionFilter::Regex(regex) => regex.as_str(),
        })
    }
}

/// As its string form, so that configuration files can hold filters directly.
impl Serialize for VersionFilter {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for VersionFilter {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<VersionFilter, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// The OCI tag for a version: every `+` becomes `.build-` (the OCM spec's mapping; tags cannot hold `+`).
pub fn version_to_tag(version: &str) -> String {
    version.replace('+', ".build-")
}

/// The version for an OCI tag: only the **last** `.build-` becomes `+`, as the OCM spec says.
/// Exact inverse of [`version_to_tag`] for versions with at most one `+` and no `.build-` after it.
pub fn tag_to_version(tag: &str) -> String {
    match tag.rfind(".build-") {
        Some(position) => format!(
            "{}+{}",
            &tag[..position],
            &tag[position + ".build-".len()..]
        ),
        None => tag.to_owned(),
    }
}

#[cfg(test)]
#[path = "version_tests.rs"]
mod tests;
