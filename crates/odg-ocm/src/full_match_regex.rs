//! [`FullMatchRegex`]: a user-supplied regular expression that must match a whole string.

use std::fmt;

use regex::{Regex, RegexBuilder};

use crate::error::OcmError;

/// Patterns come from configuration and from query parameters (`version_filter`), so both the
/// pattern and its compiled size are bounded.
const MAX_PATTERN_CHARS: usize = 1024;
const MAX_COMPILED_BYTES: usize = 1024 * 1024;

/// A regex that matches only when it matches the whole text, as Python's `re.fullmatch` does.
///
/// Kept as its own type rather than a bare `regex::Regex` so that an unanchored regex cannot slip in,
/// so that `Display` gives back exactly what the user wrote, and so that it has `PartialEq`.
#[derive(Debug, Clone)]
pub struct FullMatchRegex {
    pattern: String,
    anchored: Regex,
}

impl FullMatchRegex {
    pub fn new(pattern: &str) -> Result<FullMatchRegex, OcmError> {
        FullMatchRegex::build(pattern, false)
    }

    /// Matching ASCII and Unicode letters regardless of case (the compliance filters' rule).
    pub fn new_case_insensitive(pattern: &str) -> Result<FullMatchRegex, OcmError> {
        FullMatchRegex::build(pattern, true)
    }

    fn build(pattern: &str, case_insensitive: bool) -> Result<FullMatchRegex, OcmError> {
        let invalid = |reason: String| OcmError::InvalidRegex {
            pattern: pattern.to_owned(),
            reason,
        };
        if pattern.chars().count() > MAX_PATTERN_CHARS {
            return Err(invalid(format!(
                "longer than {MAX_PATTERN_CHARS} characters"
            )));
        }
        // Compile the bare pattern first: wrapping an unbalanced pattern such as `a)|(b` could turn
        // it into a valid regex that is no longer anchored.
        compile(pattern, case_insensitive).map_err(|error| invalid(error.to_string()))?;
        let anchored = compile(&format!(r"\A(?:{pattern})\z"), case_insensitive)
            .map_err(|error| invalid(error.to_string()))?;
        Ok(FullMatchRegex {
            pattern: pattern.to_owned(),
            anchored,
        })
    }

    pub fn is_match(&self, text: &str) -> bool {
        self.anchored.is_match(text)
    }

    /// The pattern as the user wrote it, without the anchoring.
    pub fn as_str(&self) -> &str {
        &self.pattern
    }

    /// The anchored regex, for callers that need the `regex` API itself.
    pub fn regex(&self) -> &Regex {
        &self.anchored
    }
}

fn compile(pattern: &str, case_insensitive: bool) -> Result<Regex, regex::Error> {
    RegexBuilder::new(pattern)
        .case_insensitive(case_insensitive)
        .size_limit(MAX_COMPILED_BYTES)
        .build()
}

impl PartialEq for FullMatchRegex {
    fn eq(&self, other: &FullMatchRegex) -> bool {
        self.pattern == other.pattern
    }
}

impl Eq for FullMatchRegex {}

impl fmt::Display for FullMatchRegex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.pattern)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::OcmErrorKind;

    #[test]
    fn matches_only_whole_strings() {
        let regex = FullMatchRegex::new("a|ab").unwrap();
        assert!(regex.is_match("a"));
        assert!(
            regex.is_match("ab"),
            "alternation must not stop at the shorter branch"
        );
        assert!(!regex.is_match("abc"));
        assert!(!regex.is_match("xab"));
        assert!(!FullMatchRegex::new("a").unwrap().is_match("a\n"));
    }

    #[test]
    fn case_insensitive_ones_are_anchored_too() {
        let regex = FullMatchRegex::new_case_insensitive("Acme.*").unwrap();
        assert!(regex.is_match("acme.org/a"));
        assert!(!regex.is_match("x-acme.org/a"));
        assert!(FullMatchRegex::new_case_insensitive("a)|(b").is_err());
    }

    #[test]
    fn displays_the_pattern_as_written() {
        assert_eq!(
            FullMatchRegex::new(r"1\.2\..*").unwrap().to_string(),
            r"1\.2\..*"
        );
    }

    #[test]
    fn unbalanced_patterns_cannot_escape_the_anchoring() {
        for pattern in ["a)|(b", "(", "[", "a{1000000}{1000000}"] {
            let error = FullMatchRegex::new(pattern).unwrap_err();
            assert_eq!(error.kind(), OcmErrorKind::InvalidInput, "{pattern}");
        }
        assert!(FullMatchRegex::new(&"a".repeat(MAX_PATTERN_CHARS + 1)).is_err());
    }
}
