//! Classifying registry request paths (`PathKind`) and counting requests per kind.

use std::sync::atomic::{AtomicUsize, Ordering};

/// What a request path addresses in the distribution API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PathKind {
    /// `/v2/` (API version check).
    Base,
    /// `/v2/<name>/manifests/<reference>`.
    Manifest,
    /// `/v2/<name>/blobs/<digest>`.
    Blob,
    /// `/v2/<name>/blobs/uploads/...`.
    Upload,
    /// `/v2/<name>/tags/list`.
    Tags,
    /// The fake registry's token endpoint `/token`.
    Token,
    Other,
}

impl PathKind {
    const ALL: [PathKind; 7] = [
        PathKind::Base,
        PathKind::Manifest,
        PathKind::Blob,
        PathKind::Upload,
        PathKind::Tags,
        PathKind::Token,
        PathKind::Other,
    ];

    fn index(self) -> usize {
        PathKind::ALL
            .iter()
            .position(|kind| *kind == self)
            .unwrap_or(PathKind::ALL.len() - 1)
    }
}

/// Splits a request path into its kind, repository and the rest (reference, digest or upload id).
pub fn parse_registry_path(path: &str) -> (PathKind, String, String) {
    if path == "/token" {
        return (PathKind::Token, String::new(), String::new());
    }
    if path == "/v2/" || path == "/v2" {
        return (PathKind::Base, String::new(), String::new());
    }
    let Some(rest) = path.strip_prefix("/v2/") else {
        return (PathKind::Other, String::new(), String::new());
    };
    if let Some(repository) = rest.strip_suffix("/tags/list") {
        return (PathKind::Tags, repository.to_owned(), String::new());
    }
    for (marker, kind) in [
        ("/blobs/uploads/", PathKind::Upload),
        ("/blobs/uploads", PathKind::Upload),
        ("/manifests/", PathKind::Manifest),
        ("/blobs/", PathKind::Blob),
    ] {
        if let Some(position) = rest.rfind(marker) {
            let (repository, tail) = rest.split_at(position);
            return (kind, repository.to_owned(), tail[marker.len()..].to_owned());
        }
    }
    (PathKind::Other, String::new(), String::new())
}

/// The kind of a request path.
pub fn classify_path(path: &str) -> PathKind {
    parse_registry_path(path).0
}

/// Requests counted per `PathKind`; shared between a server task and the test.
#[derive(Debug, Default)]
pub struct RequestCounters {
    counts: [AtomicUsize; 7],
}

impl RequestCounters {
    pub fn record(&self, kind: PathKind) {
        self.counts[kind.index()].fetch_add(1, Ordering::SeqCst);
    }

    pub fn get(&self, kind: PathKind) -> usize {
        self.counts[kind.index()].load(Ordering::SeqCst)
    }

    pub fn total(&self) -> usize {
        self.counts
            .iter()
            .map(|count| count.load(Ordering::SeqCst))
            .sum()
    }

    pub fn reset(&self) {
        for count in &self.counts {
            count.store(0, Ordering::SeqCst);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_paths() {
        assert_eq!(
            parse_registry_path("/v2/a/b/manifests/1.0"),
            (PathKind::Manifest, "a/b".to_owned(), "1.0".to_owned())
        );
        assert_eq!(
            parse_registry_path("/v2/a/blobs/sha256:00"),
            (PathKind::Blob, "a".to_owned(), "sha256:00".to_owned())
        );
        assert_eq!(
            parse_registry_path("/v2/a/b/blobs/uploads/"),
            (PathKind::Upload, "a/b".to_owned(), String::new())
        );
        assert_eq!(
            parse_registry_path("/v2/a/b/blobs/uploads/123"),
            (PathKind::Upload, "a/b".to_owned(), "123".to_owned())
        );
        assert_eq!(classify_path("/v2/manifests/tags/list"), PathKind::Tags);
        assert_eq!(classify_path("/v2/"), PathKind::Base);
        assert_eq!(classify_path("/token"), PathKind::Token);
        assert_eq!(classify_path("/metrics"), PathKind::Other);
        let counters = RequestCounters::default();
        counters.record(PathKind::Blob);
        counters.record(PathKind::Blob);
        assert_eq!((counters.get(PathKind::Blob), counters.total()), (2, 2));
        counters.reset();
        assert_eq!(counters.total(), 0);
    }
}
