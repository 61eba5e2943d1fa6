//! HTTP range requests (RFC 9110, 14) for the routes that stream blobs: one `bytes` range per
//! request. A header odg does not serve as a range — several ranges, another unit, a syntax
//! error, or a conditional `If-Range` — is ignored and the whole blob answered with 200, which the
//! RFC allows (a recipient may ignore `Range`); only a well-formed range past the end is a 416.

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

pub use odg_components::ByteRange;

use crate::ApiError;

/// The range of `Range`, if there is one odg serves (see the module docs).
pub fn requested_range(headers: &HeaderMap) -> Option<ByteRange> {
    if headers.contains_key(header::IF_RANGE) {
        return None;
    }
    let mut values = headers.get_all(header::RANGE).iter();
    let value = values.next()?.to_str().ok()?;
    if values.next().is_some() {
        return None;
    }
    let (unit, spec) = value.trim().split_once('=')?;
    if !unit.trim().eq_ignore_ascii_case("bytes") || spec.contains(',') {
        return None;
    }
    let (first, last) = spec.trim().split_once('-')?;
    let number = |text: &str| -> Option<u64> {
        let text = text.trim();
        (!text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()))
            .then(|| text.parse().ok())
            .flatten()
    };
    if first.trim().is_empty() {
        return Some(ByteRange::Suffix {
            length: number(last)?,
        });
    }
    let first = number(first)?;
    let last = if last.trim().is_empty() {
        None
    } else {
        Some(number(last)?)
    };
    if last.is_some_and(|last| last < first) {
        return None;
    }
    Some(ByteRange::From { first, last })
}

/// Why a range cannot be served from a blob of a given size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unsatisfiable {
    pub size: u64,
}

/// `Content-Range: bytes first-last/size`.
pub fn content_range(first: u64, last: u64, size: u64) -> HeaderValue {
    // digits, a space, `-` and `/`: always a valid header value
    HeaderValue::from_str(&format!("bytes {first}-{last}/{size}"))
        .unwrap_or_else(|_| HeaderValue::from_static("bytes */0"))
}

/// The 416: JSON like every error, with `Content-Range: bytes */size`.
pub fn unsatisfiable(Unsatisfiable { size }: Unsatisfiable) -> Response {
    let mut response = ApiError::new(
        StatusCode::RANGE_NOT_SATISFIABLE,
        format!("the requested range is not within the blob's {size} bytes"),
    )
    .with("size", serde_json::json!(size))
    .into_response();
    if let Ok(value) = HeaderValue::from_str(&format!("bytes */{size}")) {
        response.headers_mut().insert(header::CONTENT_RANGE, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(value: &str) -> Option<ByteRange> {
        let mut headers = HeaderMap::new();
        headers.insert(header::RANGE, HeaderValue::from_str(value).unwrap());
        requested_range(&headers)
    }

    #[test]
    fn single_byte_ranges_are_served_and_the_rest_ignored() {
        assert_eq!(range("bytes=0-9").unwrap().resolve(100), Some((0, 9)));
        assert_eq!(range("bytes=90-").unwrap().resolve(100), Some((90, 99)));
        assert_eq!(range("bytes=90-500").unwrap().resolve(100), Some((90, 99)));
        assert_eq!(range("bytes=-10").unwrap().resolve(100), Some((90, 99)));
        assert_eq!(range("bytes=-500").unwrap().resolve(100), Some((0, 99)));
        assert_eq!(range("bytes=100-").unwrap().resolve(100), None);
        assert_eq!(range("bytes=-0").unwrap().resolve(100), None);
        for ignored in [
            "bytes=0-1,5-6",
            "items=0-1",
            "bytes=5-1",
            "bytes=a-",
            "bytes=",
            "bytes=-",
        ] {
            assert_eq!(range(ignored), None, "{ignored}");
        }
        assert_eq!(range("bytes=3-").unwrap().header_value(), "bytes=3-");
        assert_eq!(range("bytes=-3").unwrap().header_value(), "bytes=-3");
    }
}
