//! Blobs read as streams, whole or one byte range, for callers that pass them on (the
//! `/ocm/artefacts/blob` route) instead of parsing them: nothing here holds a blob in memory.
//!
//! A range goes to the registry as a `Range` header; a registry that answers 206 sends only those
//! bytes, one that ignores the header (200) is cut to the range while streaming. A whole blob is
//! verified against its digest as it streams: a mismatch ends the stream with a `Corrupt` error
//! (the status has gone out by then, so the caller can only abort the response).

use bytes::Bytes;
use futures::stream::BoxStream;
use futures::StreamExt;
use sha2::{Digest, Sha256};

use crate::error::OciError;

/// One `bytes` range (RFC 9110, 14.1.2), before the blob's size is known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ByteRange {
    /// `bytes=first-` or `bytes=first-last` (inclusive).
    From { first: u64, last: Option<u64> },
    /// `bytes=-length`: the last `length` bytes.
    Suffix { length: u64 },
}

impl ByteRange {
    /// The inclusive bytes `(first, last)` of a blob of `size` bytes; `None` if the range selects
    /// nothing of it (a 416).
    pub fn resolve(self, size: u64) -> Option<(u64, u64)> {
        match self {
            ByteRange::From { first, last } if first < size => {
                Some((first, last.map_or(size - 1, |last| last.min(size - 1))))
            }
            ByteRange::Suffix { length } if length > 0 && size > 0 => {
                Some((size.saturating_sub(length), size - 1))
            }
            _ => None,
        }
    }

    /// The `Range` header value asking for this range.
    pub fn header_value(self) -> String {
        match self {
            ByteRange::From { first, last: None } => format!("bytes={first}-"),
            ByteRange::From {
                first,
                last: Some(last),
            } => format!("bytes={first}-{last}"),
            ByteRange::Suffix { length } => format!("bytes=-{length}"),
        }
    }
}

/// A blob's bytes on their way.
pub struct BlobStream {
    /// The blob's whole size, when the store said (a registry that sends neither a length nor a
    /// `Content-Range` does not).
    pub size: Option<u64>,
    /// The inclusive bytes this stream carries when a range was asked for and served.
    pub range: Option<(u64, u64)>,
    pub body: BoxStream<'static, Result<Bytes, OciError>>,
}

impl std::fmt::Debug for BlobStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlobStream")
            .field("size", &self.size)
            .field("range", &self.range)
            .finish()
    }
}

/// What reading a blob came to.
#[derive(Debug)]
pub enum BlobRead {
    Content(BlobStream),
    /// The range asked for is not within the blob (of `size` bytes, when known).
    Unsatisfiable {
        size: Option<u64>,
    },
}

/// Checks the whole stream against `digest` (`sha256:<hex>`; other algorithms pass unchecked).
pub(crate) fn verified(
    body: BoxStream<'static, Result<Bytes, OciError>>,
    digest: &str,
) -> BoxStream<'static, Result<Bytes, OciError>> {
    let Some(expected) = digest.strip_prefix("sha256:").map(str::to_ascii_lowercase) else {
        return body;
    };
    let digest = digest.to_string();
    futures::stream::unfold((body, Some(Sha256::new())), move |(mut body, hasher)| {
        let expected = expected.clone();
        let digest = digest.clone();
        async move {
            let mut hasher = hasher?;
            match body.next().await {
                Some(Ok(chunk)) => {
                    hasher.update(&chunk);
                    Some((Ok(chunk), (body, Some(hasher))))
                }
                Some(Err(error)) => Some((Err(error), (body, None))),
                None => {
                    let actual = hex::encode(hasher.finalize());
                    if actual == expected {
                        None
                    } else {
                        Some((
                            Err(OciError::corrupt(format!(
                                "blob {digest}: the content's digest is sha256:{actual}"
                            ))),
                            (body, None),
                        ))
                    }
                }
            }
        }
    })
    .boxed()
}

/// Cuts a whole blob's stream to the inclusive bytes `first..=last`; stops reading after `last`.
pub(crate) fn sliced(
    body: BoxStream<'static, Result<Bytes, OciError>>,
    first: u64,
    last: u64,
) -> BoxStream<'static, Result<Bytes, OciError>> {
    body.scan(0u64, move |position, chunk| {
        let item = match chunk {
            Err(error) => Some(Some(Err(error))),
            Ok(_) if *position > last => None,
            Ok(chunk) => {
                let start = *position;
                let end = start + chunk.len() as u64; // exclusive
                *position = end;
                let from = first.max(start);
                let to = (last + 1).min(end);
                Some(
                    (from < to)
                        .then(|| Ok(chunk.slice((from - start) as usize..(to - start) as usize))),
                )
            }
        };
        std::future::ready(item)
    })
    .filter_map(std::future::ready)
    .boxed()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts() -> BoxStream<'static, Result<Bytes, OciError>> {
        futures::stream::iter((0..10u8).map(|i| Ok(Bytes::from(vec![i; 10])))).boxed()
    }

    #[tokio::test]
    async fn slices_cross_chunks_and_digests_are_checked_at_the_end() {
        let bytes: Vec<u8> = sliced(parts(), 15, 34)
            .map(|chunk| chunk.unwrap().to_vec())
            .concat()
            .await;
        assert_eq!(bytes, [vec![1u8; 5], vec![2u8; 10], vec![3u8; 5]].concat());
        let whole: Vec<u8> = (0..10u8).flat_map(|i| vec![i; 10]).collect();
        let good = crate::sha256_digest(&whole);
        let read: Vec<Result<Bytes, OciError>> = verified(parts(), &good).collect().await;
        assert!(read.iter().all(Result::is_ok));
        let bad = format!("sha256:{}", "0".repeat(64));
        let read: Vec<Result<Bytes, OciError>> = verified(parts(), &bad).collect().await;
        assert!(read.last().unwrap().is_err());
        assert_eq!(ByteRange::Suffix { length: 5 }.resolve(3), Some((0, 2)));
        assert_eq!(
            ByteRange::From {
                first: 3,
                last: None
            }
            .resolve(3),
            None
        );
    }
}
