//! The one error type of the OCM crate, [`OcmError`], and the coarse [`OcmErrorKind`] callers branch on.

use std::fmt;

/// What went wrong, coarsely: the server maps these to HTTP statuses, the resolver decides on them whether
/// to try the next repository. Match on this rather than on [`OcmError`] variants, which may grow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OcmErrorKind {
    /// The stored bytes are not a component descriptor we can read (bad tar, bad YAML, missing fields, empty).
    Malformed,
    /// The content is over a size, nesting or expansion limit; it may be well-formed.
    TooLarge,
    /// The descriptor is valid but is not the component version that was asked for.
    Mismatch,
    /// A caller-supplied value (name, version, URL, filter, mapping rule) is not acceptable.
    InvalidInput,
}

impl fmt::Display for OcmErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            OcmErrorKind::Malformed => "malformed",
            OcmErrorKind::TooLarge => "too large",
            OcmErrorKind::Mismatch => "mismatch",
            OcmErrorKind::InvalidInput => "invalid input",
        })
    }
}

/// Every failure of this crate. Messages name the offending value but never contain the whole document.
///
/// `Clone` so that a result can be shared between coalesced requests.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OcmError {
    #[error("component descriptor content is empty")]
    EmptyContent,

    #[error("{what} is {actual} bytes, over the limit of {limit} bytes")]
    TooLarge {
        what: &'static str,
        actual: usize,
        limit: usize,
    },

    #[error("component descriptor nests deeper than {limit} levels")]
    NestingTooDeep { limit: usize },

    /// YAML aliases can make a small text expand into a huge value ("billion laughs").
    #[error("component descriptor expands to more than {limit} units (YAML alias expansion?)")]
    ExpansionTooLarge { limit: usize },

    #[error("malformed tar archive: {reason}")]
    MalformedTar { reason: String },

    #[error("tar archive holds an entry with an unsafe path: {path:?}")]
    UnsafeTarPath { path: String },

    #[error("tar archive holds no component-descriptor.yaml")]
    MissingDescriptorEntry,

    #[error("malformed component descriptor: {reason}")]
    MalformedDescriptor { reason: String },

    #[error("malformed component config: {reason}")]
    MalformedComponentConfig { reason: String },

    #[error(
        "descriptor is {found_name}:{found_version}, expected {expected_name}:{expected_version}"
    )]
    IdentityMismatch {
        expected_name: String,
        expected_version: String,
        found_name: String,
        found_version: String,
    },

    #[error("invalid component name {name:?}: {reason}")]
    InvalidComponentName { name: String, reason: &'static str },

    #[error("invalid component version {version:?}: {reason}")]
    InvalidVersion {
        version: String,
        reason: &'static str,
    },

    #[error("invalid OCM repository URL {url:?}: {reason}")]
    InvalidRepositoryUrl { url: String, reason: &'static str },

    #[error("invalid repository context: {reason}")]
    InvalidRepositoryContext { reason: String },

    #[error("invalid regular expression {pattern:?}: {reason}")]
    InvalidRegex { pattern: String, reason: String },

    #[error("invalid version filter {filter:?}: {reason}")]
    InvalidVersionFilter { filter: String, reason: String },

    #[error("invalid repository mapping rule for {repository:?}: {reason}")]
    InvalidRepositoryRule { repository: String, reason: String },
}

impl OcmError {
    pub fn kind(&self) -> OcmErrorKind {
        match self {
            OcmError::EmptyContent
            | OcmError::MalformedTar { .. }
            | OcmError::UnsafeTarPath { .. }
            | OcmError::MissingDescriptorEntry
            | OcmError::MalformedDescriptor { .. }
            | OcmError::MalformedComponentConfig { .. } => OcmErrorKind::Malformed,
            OcmError::TooLarge { .. }
            | OcmError::NestingTooDeep { .. }
            | OcmError::ExpansionTooLarge { .. } => OcmErrorKind::TooLarge,
            OcmError::IdentityMismatch { .. } => OcmErrorKind::Mismatch,
            OcmError::InvalidComponentName { .. }
            | OcmError::InvalidVersion { .. }
            | OcmError::InvalidRepositoryUrl { .. }
            | OcmError::InvalidRepositoryContext { .. }
            | OcmError::InvalidRegex { .. }
            | OcmError::InvalidVersionFilter { .. }
            | OcmError::InvalidRepositoryRule { .. } => OcmErrorKind::InvalidInput,
        }
    }

    pub(crate) fn malformed_descriptor(reason: impl fmt::Display) -> OcmError {
        OcmError::MalformedDescriptor {
            reason: reason.to_string(),
        }
    }

    pub(crate) fn malformed_tar(reason: impl Into<String>) -> OcmError {
        OcmError::MalformedTar {
            reason: reason.into(),
        }
    }
}
