//! Compressed request bodies. The original's Python client gzips every body it sends
//! (`Content-Encoding: gzip`), so every route that reads a body takes `gzip` and `deflate` (and
//! `identity`). Bodies are decoded while the handler reads them, and the route's body limit
//! counts the decoded bytes, so a small body that inflates past it (a "gzip bomb") is cut off
//! at the limit with 413 instead of filling memory. A body that does not decode is a 400; a
//! coding we do not decode is a 415 naming the ones we do.
//!
//! Two steps: [`checked_coding`] checks and canonicalises the header (content codings are
//! case-insensitive, `x-gzip` is gzip, `identity` is no coding), then tower-http's
//! [`RequestDecompressionLayer`] does the decoding on exactly the canonical tokens.

use axum::extract::Request;
use axum::http::header::{ACCEPT_ENCODING, CONTENT_ENCODING};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use tower_http::decompression::RequestDecompressionLayer;

use super::json_errors::is_json;
use crate::ApiError;

/// What a 415 advertises in `Accept-Encoding` (RFC 9110, 12.5.3).
const ACCEPTED_CODINGS: &str = "gzip, deflate, identity";

/// Decodes gzip and deflate (zlib) bodies; brotli and zstd are refused even if another crate
/// turns on their tower-http features, since [`checked_coding`] would not let them through anyway.
pub fn decompression() -> RequestDecompressionLayer {
    RequestDecompressionLayer::new()
        .gzip(true)
        .deflate(true)
        .no_br()
        .no_zstd()
}

/// Refuses unknown or stacked codings: the body's one coding, with the header rewritten to its
/// canonical token; or the message of the 415 to answer ([`unsupported`]).
pub fn checked_coding(request: &mut Request) -> Result<Option<&'static str>, String> {
    let coding = body_coding(request.headers())?;
    let headers = request.headers_mut();
    if headers.contains_key(CONTENT_ENCODING) {
        headers.remove(CONTENT_ENCODING);
        if let Some(coding) = coding {
            headers.insert(CONTENT_ENCODING, HeaderValue::from_static(coding));
        }
    }
    Ok(coding)
}

/// The 415 for a coding we do not decode, advertising the ones we do.
pub fn unsupported(message: String) -> Response {
    let mut response = ApiError::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, message).into_response();
    response
        .headers_mut()
        .insert(ACCEPT_ENCODING, HeaderValue::from_static(ACCEPTED_CODINGS));
    response
}

/// After the handler: the framework's 413 says only "length limit exceeded"; for
/// a compressed body the client needs to know that the limit is on the decoded size, which it
/// cannot see from its side.
pub fn explain_too_large(coding: Option<&'static str>, response: Response) -> Response {
    if coding.is_some() && response.status() == StatusCode::PAYLOAD_TOO_LARGE && !is_json(&response)
    {
        return ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "the request body is too large once decompressed",
        )
        .into_response();
    }
    response
}

/// The one coding of the body (`None`: identity), from every `Content-Encoding` header.
fn body_coding(headers: &HeaderMap) -> Result<Option<&'static str>, String> {
    let mut codings = Vec::new();
    for value in headers.get_all(CONTENT_ENCODING) {
        let text = value
            .to_str()
            .map_err(|_| "the Content-Encoding header is not ASCII".to_string())?;
        for token in text.split(',').map(str::trim) {
            if token.is_empty() || token.eq_ignore_ascii_case("identity") {
                continue;
            }
            let coding =
                if token.eq_ignore_ascii_case("gzip") || token.eq_ignore_ascii_case("x-gzip") {
                    "gzip"
                } else if token.eq_ignore_ascii_case("deflate") {
                    "deflate"
                } else {
                    // Header values are bounded by the connection's header limits; cut anyway so
                    // that the answer stays a line.
                    let shown: String = token.chars().take(64).collect();
                    return Err(format!(
                        "Content-Encoding {shown:?} is not supported; send {ACCEPTED_CODINGS}"
                    ));
                };
            codings.push(coding);
        }
    }
    match codings.as_slice() {
        [] => Ok(None),
        [coding] => Ok(Some(coding)),
        _ => Err(format!(
            "a body compressed more than once ({}) is not supported; send one of {ACCEPTED_CODINGS}",
            codings.join(", ")
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn coding(values: &[&str]) -> Result<Option<&'static str>, String> {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append(CONTENT_ENCODING, HeaderValue::from_str(value).unwrap());
        }
        body_coding(&headers)
    }

    #[test]
    fn codings_are_case_insensitive_with_aliases_and_identity() {
        assert_eq!(coding(&[]), Ok(None));
        assert_eq!(coding(&["identity"]), Ok(None));
        assert_eq!(coding(&["GZIP"]), Ok(Some("gzip")));
        assert_eq!(coding(&["x-gzip"]), Ok(Some("gzip")));
        assert_eq!(coding(&[" Deflate "]), Ok(Some("deflate")));
        assert_eq!(coding(&["identity, gzip"]), Ok(Some("gzip")));
    }

    #[test]
    fn unknown_and_stacked_codings_are_refused() {
        assert!(coding(&["br"]).unwrap_err().contains("\"br\""));
        assert!(coding(&["compress"]).is_err());
        assert!(coding(&["gzip, gzip"])
            .unwrap_err()
            .contains("more than once"));
        assert!(coding(&["gzip", "deflate"]).is_err());
    }
}
