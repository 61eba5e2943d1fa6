//! OCM repositories in OCI registries: their URLs, where a component lives in them, and which
//! component names and versions can be stored there at all.

use std::fmt;
use std::str::FromStr;
use std::sync::LazyLock;

use regex::Regex;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::descriptor::RepositoryContext;
use crate::error::OcmError;
use crate::version::version_to_tag;

/// The folder all component descriptors live under inside an OCM repository.
pub const COMPONENT_DESCRIPTORS_FOLDER: &str = "component-descriptors";

const MAX_COMPONENT_NAME_CHARS: usize = 255;
const MAX_VERSION_CHARS: usize = 128;

/// An OCM repository: a registry host and a path prefix, e.g. `registry.example.com/ocm`.
///
/// Parsed from `http://host/path` (plain HTTP, for loopback test registries), `https://host/path` or
/// `host/path` (both HTTPS). Two spellings of the same repository compare equal after parsing.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct OcmRepositoryUrl {
    pub plain_http: bool,
    /// `host[:port]`, lower-cased (host names are case-insensitive).
    pub host: String,
    /// No leading or trailing `/`; may be empty. Case is kept: OCI paths are lower-case by rule, and a
    /// wrong one is the registry's to refuse, not ours to rewrite.
    pub path: String,
}

impl OcmRepositoryUrl {
    /// The repository a descriptor's repository context points at: `baseUrl` plus optional `subPath`.
    pub fn from_repository_context(
        context: &RepositoryContext,
    ) -> Result<OcmRepositoryUrl, OcmError> {
        let invalid = |reason: String| OcmError::InvalidRepositoryContext { reason };
        if !context.context_type.to_ascii_lowercase().starts_with("oci") {
            return Err(invalid(format!(
                "type {:?} is not an OCI registry",
                context.context_type
            )));
        }
        let base_url = context
            .base_url
            .as_deref()
            .filter(|base_url| !base_url.is_empty())
            .ok_or_else(|| invalid("no baseUrl".into()))?;
        let joined = match context
            .sub_path
            .as_deref()
            .map(|sub_path| sub_path.trim_matches('/'))
        {
            Some(sub_path) if !sub_path.is_empty() => {
                format!("{}/{sub_path}", base_url.trim_end_matches('/'))
            }
            _ => base_url.to_owned(),
        };
        joined
            .parse()
            .map_err(|error: OcmError| invalid(error.to_string()))
    }
}

impl FromStr for OcmRepositoryUrl {
    type Err = OcmError;

    fn from_str(text: &str) -> Result<OcmRepositoryUrl, OcmError> {
        let invalid = |reason: &'static str| OcmError::InvalidRepositoryUrl {
            url: text.to_owned(),
            reason,
        };
        if text.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(invalid("contains whitespace or control characters"));
        }
        if text.contains(['?', '#']) {
            return Err(invalid("query strings and fragments are not allowed"));
        }
        let (plain_http, rest) = match text.split_once("://") {
            None => (false, text),
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case("http") => (true, rest),
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case("https") => (false, rest),
            Some(_) => return Err(invalid("the scheme must be http or https")),
        };
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        if authority.contains('@') {
            return Err(invalid("credentials in the URL are not allowed"));
        }
        validate_authority(authority).map_err(invalid)?;
        let path = path.trim_matches('/');
        if !path.is_empty() {
            for segment in path.split('/') {
                validate_path_segment(segment).map_err(invalid)?;
            }
        }
        Ok(OcmRepositoryUrl {
            plain_http,
            host: authority.to_ascii_lowercase(),
            path: path.to_owned(),
        })
    }
}

fn validate_authority(authority: &str) -> Result<(), &'static str> {
    let (host, port) = split_host_and_port(authority)?;
    if let Some(address) = host
        .strip_prefix('[')
        .and_then(|host| host.strip_suffix(']'))
    {
        let is_ipv6_literal = !address.is_empty()
            && address
                .chars()
                .all(|c| c.is_ascii_hexdigit() || c == ':' || c == '.');
        if !is_ipv6_literal {
            return Err("bad IPv6 address");
        }
    } else {
        let is_host_name = !host.is_empty()
            && host.split('.').all(|label| {
                !label.is_empty()
                    && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                    && !label.starts_with('-')
                    && !label.ends_with('-')
            });
        if !is_host_name {
            return Err("bad host name");
        }
    }
    if let Some(port) = port {
        let is_port = !port.is_empty()
            && port.len() <= 5
            && port.bytes().all(|byte| byte.is_ascii_digit())
            && port
                .parse::<u32>()
                .is_ok_and(|number| (1..=65535).contains(&number));
        if !is_port {
            return Err("bad port");
        }
    }
    Ok(())
}

/// `host`, `host:port`, `[v6]` or `[v6]:port`.
fn split_host_and_port(authority: &str) -> Result<(&str, Option<&str>), &'static str> {
    if authority.is_empty() {
        return Err("the host is empty");
    }
    if authority.starts_with('[') {
        let end = authority.find(']').ok_or("unclosed '[' in host")?;
        let (host, after) = authority.split_at(end + 1);
        return match after {
            "" => Ok((host, None)),
            _ => after
                .strip_prefix(':')
                .map(|port| (host, Some(port)))
                .ok_or("junk after IPv6 address"),
        };
    }
    Ok(match authority.split_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (authority, None),
    })
}

fn validate_path_segment(segment: &str) -> Result<(), &'static str> {
    match segment {
        "" => Err("empty path segment"),
        "." | ".." => Err("'.' and '..' are not allowed in the path"),
        _ if segment
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')) =>
        {
            Ok(())
        }
        _ => Err("path segments may only hold letters, digits, '.', '_' and '-'"),
    }
}

/// `http://` only for plain HTTP; no scheme otherwise, as repository URLs are written in OCM.
impl fmt::Display for OcmRepositoryUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.plain_http {
            f.write_str("http://")?;
        }
        f.write_str(&self.host)?;
        if !self.path.is_empty() {
            write!(f, "/{}", self.path)?;
        }
        Ok(())
    }
}

impl Serialize for OcmRepositoryUrl {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for OcmRepositoryUrl {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<OcmRepositoryUrl, D::Error> {
        String::deserialize(deserializer)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// The OCI repository (without host) of a component: `[path/]component-descriptors/<lower-cased name>`.
/// Does not validate: call [`validate_component_name`] on untrusted names first.
pub fn component_repository_path(repository: &OcmRepositoryUrl, component_name: &str) -> String {
    let lower_name = component_name.to_lowercase();
    if repository.path.is_empty() {
        format!("{COMPONENT_DESCRIPTORS_FOLDER}/{lower_name}")
    } else {
        format!(
            "{}/{COMPONENT_DESCRIPTORS_FOLDER}/{lower_name}",
            repository.path
        )
    }
}

/// A readable reference for logs and messages: `<repository>/component-descriptors/<name>:<tag>`.
pub fn component_version_reference(
    repository: &OcmRepositoryUrl,
    component_name: &str,
    version: &str,
) -> String {
    let mut host = repository.host.clone();
    if repository.plain_http {
        host.insert_str(0, "http://");
    }
    format!(
        "{host}/{}:{}",
        component_repository_path(repository, component_name),
        version_to_tag(version)
    )
}

/// One OCI path component (distribution's grammar): alphanumerics joined by `.`, `_`, `__` or dashes.
#[allow(
    clippy::expect_used,
    reason = "a constant pattern, compiled by every test that validates a name"
)]
static OCI_PATH_COMPONENT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\A[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*\z").expect("static regex compiles")
});

/// A component name must be storable as an OCI repository path once lower-cased. Upper case is allowed
/// (names keep their case in descriptors). The OCM spec's pattern additionally wants a domain as first
/// segment; that is not enforced, so that names from other tooling stay readable.
pub fn validate_component_name(name: &str) -> Result<(), OcmError> {
    let invalid = |reason: &'static str| OcmError::InvalidComponentName {
        name: name.to_owned(),
        reason,
    };
    if name.is_empty() {
        return Err(invalid("empty"));
    }
    if name.chars().count() > MAX_COMPONENT_NAME_CHARS {
        return Err(invalid("longer than 255 characters"));
    }
    if name.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(invalid("contains whitespace or control characters"));
    }
    if name.starts_with('/') || name.ends_with('/') {
        return Err(invalid("starts or ends with '/'"));
    }
    if name.contains("..") {
        return Err(invalid("contains '..'"));
    }
    let lower_name = name.to_lowercase();
    if !lower_name
        .split('/')
        .all(|segment| OCI_PATH_COMPONENT.is_match(segment))
    {
        return Err(invalid(
            "each '/'-separated part must be letters and digits joined by '.', '_', '__' or '-'",
        ));
    }
    Ok(())
}

/// OCI tag grammar.
#[allow(
    clippy::expect_used,
    reason = "a constant pattern, compiled by every test that validates a tag"
)]
/// OCI's tag grammar, `[A-Za-z0-9_][A-Za-z0-9._-]{0,127}`, applied to `version` as
/// [`version_to_tag`] maps it (`+` becomes `.build-`), without building the mapped text: this
/// runs on every request that names a version.
fn is_oci_tag_once_mapped(version: &str) -> bool {
    const MAX_TAG_BYTES: usize = 128;
    let bytes = version.as_bytes();
    let Some(first) = bytes.first() else {
        return false;
    };
    // a leading `+` would map to a leading `.`
    if !(first.is_ascii_alphanumeric() || *first == b'_') {
        return false;
    }
    let mut mapped_length = 0;
    for byte in bytes {
        match byte {
            b'+' => mapped_length += ".build-".len(),
            b'.' | b'_' | b'-' => mapped_length += 1,
            byte if byte.is_ascii_alphanumeric() => mapped_length += 1,
            _ => return false,
        }
    }
    mapped_length <= MAX_TAG_BYTES
}

/// A version must be non-empty, at most 128 characters, and a valid OCI tag once `+` is mapped to `.build-`.
pub fn validate_version(version: &str) -> Result<(), OcmError> {
    let invalid = |reason: &'static str| OcmError::InvalidVersion {
        version: version.to_owned(),
        reason,
    };
    if version.is_empty() {
        return Err(invalid("empty"));
    }
    if version.chars().count() > MAX_VERSION_CHARS {
        return Err(invalid("longer than 128 characters"));
    }
    if !is_oci_tag_once_mapped(version) {
        return Err(invalid(
            "not a valid OCI tag (letters, digits, '_', '.', '-'; '+' maps to '.build-'; at most 128 characters)",
        ));
    }
    Ok(())
}

#[cfg(test)]
#[path = "repository_tests.rs"]
mod tests;
