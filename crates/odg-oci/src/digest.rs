//! Content digests (`sha256:<hex>`, `sha512:<hex>`): computing, validating and verifying them.
//!
//! Always hash the raw bytes as received; never re-serialise a document to get its digest.

use sha2::{Digest as _, Sha256, Sha512};

use crate::error::OciError;

/// The digest algorithms this crate can verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DigestAlgorithm {
    Sha256,
    Sha512,
}

impl DigestAlgorithm {
    pub fn as_str(self) -> &'static str {
        match self {
            DigestAlgorithm::Sha256 => "sha256",
            DigestAlgorithm::Sha512 => "sha512",
        }
    }

    fn hex_len(self) -> usize {
        match self {
            DigestAlgorithm::Sha256 => 64,
            DigestAlgorithm::Sha512 => 128,
        }
    }
}

/// `sha256:<lower-case hex>` of `bytes`.
pub fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// Splits a digest into its algorithm and hex part, requiring a known algorithm and exactly the
/// right number of lower-case hex characters. Errors are `Protocol` (malformed or unknown algorithm).
pub fn parse_digest(digest: &str) -> Result<(DigestAlgorithm, &str), OciError> {
    let (algorithm, encoded) = digest
        .split_once(':')
        .ok_or_else(|| OciError::protocol(format!("malformed digest {:?}", truncate(digest))))?;
    let algorithm = match algorithm {
        "sha256" => DigestAlgorithm::Sha256,
        "sha512" => DigestAlgorithm::Sha512,
        other => {
            return Err(OciError::protocol(format!(
                "unsupported digest algorithm {:?}",
                truncate(other)
            )))
        }
    };
    let well_formed = encoded.len() == algorithm.hex_len()
        && encoded
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if !well_formed {
        return Err(OciError::protocol(format!(
            "malformed {} digest {:?}",
            algorithm.as_str(),
            truncate(digest)
        )));
    }
    Ok((algorithm, encoded))
}

/// Checks the syntax of a digest (known algorithm, right length, lower-case hex). Errors are `Protocol`.
pub fn validate_digest(digest: &str) -> Result<(), OciError> {
    parse_digest(digest).map(|_| ())
}

/// Whether `reference` is meant as a digest rather than a tag (tags cannot contain `:`).
pub fn is_digest_reference(reference: &str) -> bool {
    reference.contains(':')
}

/// Verifies `bytes` against `expected`. A mismatch is `Corrupt`; a malformed or unknown digest is `Protocol`.
pub fn verify_digest(expected: &str, bytes: &[u8]) -> Result<(), OciError> {
    let (algorithm, expected_hex) = parse_digest(expected)?;
    let actual_hex = match algorithm {
        DigestAlgorithm::Sha256 => hex::encode(Sha256::digest(bytes)),
        DigestAlgorithm::Sha512 => hex::encode(Sha512::digest(bytes)),
    };
    if actual_hex == expected_hex {
        Ok(())
    } else {
        Err(OciError::corrupt(format!(
            "digest mismatch: expected {expected}, content ({} bytes) hashes to {}:{actual_hex}",
            bytes.len(),
            algorithm.as_str()
        )))
    }
}

fn truncate(value: &str) -> &str {
    match value.char_indices().nth(80) {
        Some((index, _)) => &value[..index],
        None => value,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::OciErrorKind;

    const EMPTY_SHA256: &str =
        "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn sha256_of_empty_input() {
        assert_eq!(sha256_digest(b""), EMPTY_SHA256);
    }

    #[test]
    fn verify_accepts_matching_sha256_and_sha512() {
        verify_digest(EMPTY_SHA256, b"").unwrap();
        let sha512 = format!("sha512:{}", hex::encode(Sha512::digest(b"abc")));
        verify_digest(&sha512, b"abc").unwrap();
    }

    #[test]
    fn verify_mismatch_is_corrupt() {
        let error = verify_digest(EMPTY_SHA256, b"not empty").unwrap_err();
        assert_eq!(error.kind(), OciErrorKind::Corrupt);
    }

    #[test]
    fn malformed_or_unknown_digests_are_protocol_errors() {
        for digest in [
            "sha256",
            "sha256:",
            "sha256:abc",
            "md5:d41d8cd98f00b204e9800998ecf8427e",
            "sha256:E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855",
            "sha256:../../../../etc/passwd/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        ] {
            assert_eq!(
                validate_digest(digest).unwrap_err().kind(),
                OciErrorKind::Protocol,
                "{digest}"
            );
            assert_eq!(
                verify_digest(digest, b"").unwrap_err().kind(),
                OciErrorKind::Protocol
            );
        }
        validate_digest(EMPTY_SHA256).unwrap();
    }

    #[test]
    fn digest_references_are_told_from_tags() {
        assert!(is_digest_reference(EMPTY_SHA256));
        assert!(!is_digest_reference("1.0.0"));
    }
}
