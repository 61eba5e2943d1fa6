//! `OciError`, the one error type of this crate, and the `OciErrorKind` callers branch on.
//!
//! Invariant: no message ever contains a credential, a token, or a URL query string
//! (upload locations carry opaque state there). Messages name a host, a repository and a path.

/// What went wrong, coarse enough to branch on (map to HTTP statuses, decide on retries, cache negatives).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OciErrorKind {
    /// The repository, tag, manifest or blob does not exist (or the name cannot exist: an invalid reference).
    NotFound,
    /// The registry wants credentials we do not have, or rejected the ones we sent.
    Unauthorized,
    /// Authenticated, but not allowed.
    Forbidden,
    /// Still rate limited (429) after all retries.
    RateLimited,
    /// Timed out (connect or whole request) after all retries.
    Timeout,
    /// Connection errors and 5xx answers after all retries.
    Unavailable,
    /// A TLS failure that retrying cannot mend (an untrusted or invalid certificate, no common
    /// protocol): one attempt, no retries.
    Tls,
    /// A body exceeded the configured limit; it was not read beyond the limit.
    TooLarge,
    /// Digest mismatch or a document that does not parse.
    Corrupt,
    /// The other side answered something this protocol does not allow.
    Protocol,
    /// Local file-system error (CTF store).
    Io,
}

impl OciErrorKind {
    /// A stable lower-case name, usable as a metric label or in logs.
    pub fn as_str(self) -> &'static str {
        match self {
            OciErrorKind::NotFound => "not_found",
            OciErrorKind::Unauthorized => "unauthorized",
            OciErrorKind::Forbidden => "forbidden",
            OciErrorKind::RateLimited => "rate_limited",
            OciErrorKind::Timeout => "timeout",
            OciErrorKind::Unavailable => "unavailable",
            OciErrorKind::Tls => "tls",
            OciErrorKind::TooLarge => "too_large",
            OciErrorKind::Corrupt => "corrupt",
            OciErrorKind::Protocol => "protocol",
            OciErrorKind::Io => "io",
        }
    }
}

impl std::fmt::Display for OciErrorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error of every operation in this crate. Branch on [`OciError::kind`], print with `Display`.
#[derive(Debug, thiserror::Error)]
pub enum OciError {
    #[error("not found: {what}")]
    NotFound { what: String },
    /// A repository name, tag or digest that is not valid syntax. Its kind is `NotFound`: nothing can
    /// exist under such a name (a registry answers a manifest PUT with a `+` tag with a plain 404 too).
    #[error("invalid reference: {message}")]
    InvalidReference { message: String },
    #[error("unauthorized: {message}")]
    Unauthorized { message: String },
    #[error("forbidden: {message}")]
    Forbidden { message: String },
    #[error("rate limited: {message}")]
    RateLimited { message: String },
    #[error("timed out: {message}")]
    Timeout { message: String },
    #[error("unavailable: {message}")]
    Unavailable { message: String },
    #[error("TLS failure: {message}")]
    Tls { message: String },
    #[error("too large: {what} exceeds the limit of {limit} bytes")]
    TooLarge { what: String, limit: u64 },
    #[error("corrupt: {message}")]
    Corrupt { message: String },
    #[error("protocol error: {message}")]
    Protocol { message: String },
    #[error("i/o error: {context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
}

impl OciError {
    pub fn kind(&self) -> OciErrorKind {
        match self {
            OciError::NotFound { .. } | OciError::InvalidReference { .. } => OciErrorKind::NotFound,
            OciError::Unauthorized { .. } => OciErrorKind::Unauthorized,
            OciError::Forbidden { .. } => OciErrorKind::Forbidden,
            OciError::RateLimited { .. } => OciErrorKind::RateLimited,
            OciError::Timeout { .. } => OciErrorKind::Timeout,
            OciError::Unavailable { .. } => OciErrorKind::Unavailable,
            OciError::Tls { .. } => OciErrorKind::Tls,
            OciError::TooLarge { .. } => OciErrorKind::TooLarge,
            OciError::Corrupt { .. } => OciErrorKind::Corrupt,
            OciError::Protocol { .. } => OciErrorKind::Protocol,
            OciError::Io { .. } => OciErrorKind::Io,
        }
    }

    pub(crate) fn not_found(what: impl Into<String>) -> Self {
        OciError::NotFound { what: what.into() }
    }

    pub(crate) fn invalid_reference(message: impl Into<String>) -> Self {
        OciError::InvalidReference {
            message: message.into(),
        }
    }

    pub(crate) fn corrupt(message: impl Into<String>) -> Self {
        OciError::Corrupt {
            message: message.into(),
        }
    }

    pub(crate) fn protocol(message: impl Into<String>) -> Self {
        OciError::Protocol {
            message: message.into(),
        }
    }

    pub(crate) fn too_large(what: impl Into<String>, limit: u64) -> Self {
        OciError::TooLarge {
            what: what.into(),
            limit,
        }
    }

    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        OciError::Io {
            context: context.into(),
            source,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_reference_is_not_found() {
        let error = OciError::invalid_reference("tag 1.0+build");
        assert_eq!(error.kind(), OciErrorKind::NotFound);
        assert_eq!(error.to_string(), "invalid reference: tag 1.0+build");
    }
}
