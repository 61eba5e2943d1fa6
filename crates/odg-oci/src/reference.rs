//! Syntax checks for repository names, tags and manifest references before they go into a URL or a path.
//!
//! Invalid input yields `OciError::InvalidReference` (kind `NotFound`): nothing can exist under such a name.

use crate::digest::{is_digest_reference, parse_digest};
use crate::error::OciError;

/// The longest repository name distribution accepts.
const MAX_REPOSITORY_LEN: usize = 255;
/// The longest tag the distribution spec allows.
const MAX_TAG_LEN: usize = 128;

/// Checks a repository name: `/`-separated components of `[a-z0-9]` runs joined by `.`, `_`, `__` or `-`s.
pub fn validate_repository(repository: &str) -> Result<(), OciError> {
    let invalid =
        || OciError::invalid_reference(format!("repository name {:?}", shorten(repository)));
    if repository.is_empty() || repository.len() > MAX_REPOSITORY_LEN {
        return Err(invalid());
    }
    for component in repository.split('/') {
        if !is_valid_repository_component(component) {
            return Err(invalid());
        }
    }
    Ok(())
}

fn is_valid_repository_component(component: &str) -> bool {
    let bytes = component.as_bytes();
    let (Some(first), Some(last)) = (bytes.first(), bytes.last()) else {
        return false;
    };
    let alphanumeric = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    if !alphanumeric(first) || !alphanumeric(last) {
        return false;
    }
    // Separators: one '.', one or two '_', or any number of '-'; never mixed.
    let mut index = 0;
    while index < bytes.len() {
        let b = bytes[index];
        if alphanumeric(&b) {
            index += 1;
            continue;
        }
        let run_start = index;
        while index < bytes.len() && !alphanumeric(&bytes[index]) {
            index += 1;
        }
        let run = &bytes[run_start..index];
        let ok = match run {
            [b'.'] | [b'_'] | [b'_', b'_'] => true,
            dashes => dashes.iter().all(|&d| d == b'-'),
        };
        if !ok {
            return false;
        }
    }
    true
}

/// Checks a tag: `[A-Za-z0-9_][A-Za-z0-9._-]{0,127}`. OCM versions with `+` are not valid tags.
pub fn validate_tag(tag: &str) -> Result<(), OciError> {
    let bytes = tag.as_bytes();
    let valid = match bytes.first() {
        Some(first) => {
            (first.is_ascii_alphanumeric() || *first == b'_')
                && bytes.len() <= MAX_TAG_LEN
                && bytes
                    .iter()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        }
        None => false,
    };
    if valid {
        Ok(())
    } else {
        Err(OciError::invalid_reference(format!(
            "tag {:?}",
            shorten(tag)
        )))
    }
}

/// Checks a manifest reference: a digest when it contains `:`, else a tag.
pub fn validate_reference(reference: &str) -> Result<(), OciError> {
    if is_digest_reference(reference) {
        validate_digest_reference(reference)
    } else {
        validate_tag(reference)
    }
}

/// Checks a digest given as input (not received from a registry): invalid ones are `InvalidReference`.
pub fn validate_digest_reference(digest: &str) -> Result<(), OciError> {
    parse_digest(digest)
        .map(|_| ())
        .map_err(|_| OciError::invalid_reference(format!("digest {:?}", shorten(digest))))
}

fn shorten(value: &str) -> &str {
    match value.char_indices().nth(100) {
        Some((index, _)) => &value[..index],
        None => value,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::OciErrorKind;

    #[test]
    fn repository_names() {
        for good in [
            "a",
            "ocm/component-descriptors/example.com/demo/app",
            "a__b/c---d/e_f.g",
            "library/ubuntu",
        ] {
            validate_repository(good).unwrap();
        }
        for bad in [
            "", "/a", "a/", "a//b", "A/b", "a/../b", "a/./b", "a..b", "a___b", "a-_b", "-a", "a b",
            "a:b", "a?b",
        ] {
            let error = validate_repository(bad).unwrap_err();
            assert_eq!(error.kind(), OciErrorKind::NotFound, "{bad:?}");
        }
        validate_repository(&"a".repeat(256)).unwrap_err();
    }

    #[test]
    fn tags() {
        for good in ["1.0.0", "_x", "v1.2.3-rc.1", "1.0.0.build-abc", "A"] {
            validate_tag(good).unwrap();
        }
        for bad in ["", "1.0.0+build", ".x", "-x", "a/b", "a:b"] {
            validate_tag(bad).unwrap_err();
        }
        validate_tag(&"a".repeat(128)).unwrap();
        validate_tag(&"a".repeat(129)).unwrap_err();
    }

    #[test]
    fn references() {
        validate_reference("1.0.0").unwrap();
        validate_reference(
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        )
        .unwrap();
        let error = validate_reference("sha256:nothex").unwrap_err();
        assert_eq!(error.kind(), OciErrorKind::NotFound);
    }
}
