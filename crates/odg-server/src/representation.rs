//! Sending a [`RenderedAnswer`]: the coding negotiated from `Accept-Encoding` (q-values, RFC 9110
//! 12.5.3), its strong `ETag`, `304 Not Modified` on a matching `If-None-Match` (weak comparison,
//! RFC 9110 13.1.2), `Cache-Control` by how long the answer holds, and `Vary: Accept-Encoding`.
//!
//! The body is the cached [`bytes::Bytes`] itself: nothing is copied or re-encoded per request.

use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use odg_components::{ContentEncoding, RenderedAnswer};

use crate::ApiError;

/// How long a client or proxy may reuse an answer without asking again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Freshness {
    /// A pinned version's answer never changes (descriptors are immutable once published).
    Immutable,
    /// Depends on a version list that changes upstream (`greatest`, `/versions`): store, but
    /// revalidate with the `ETag` each time; an unchanged answer costs a 304.
    Revalidate,
}

impl Freshness {
    fn cache_control(self) -> HeaderValue {
        match self {
            Freshness::Immutable => HeaderValue::from_static("public, max-age=31536000, immutable"),
            Freshness::Revalidate => HeaderValue::from_static("no-cache"),
        }
    }
}

/// The codings we can send, in our order of preference among equal q-values: brotli is the
/// smallest, zstd the cheapest to decode, gzip the most widely understood.
const OFFERED: [ContentEncoding; 3] = [
    ContentEncoding::Brotli,
    ContentEncoding::Zstd,
    ContentEncoding::Gzip,
];

/// q-values in thousandths, so they compare exactly.
fn quality(parameters: &str) -> Option<u16> {
    for parameter in parameters.split(';') {
        let Some((name, value)) = parameter.split_once('=') else {
            continue;
        };
        if name.trim().eq_ignore_ascii_case("q") {
            let value: f32 = value.trim().parse().ok()?;
            return (0.0..=1.0)
                .contains(&value)
                .then(|| (value * 1000.0).round() as u16);
        }
    }
    Some(1000)
}

/// The coding to send for `Accept-Encoding`, or `None` for identity. Codings with q=0 are
/// refused, `*` stands for every coding not named, and identity wins only when the client
/// ranks it above every coding we offer. A malformed element is skipped, not an error.
pub fn negotiate_encoding(headers: &HeaderMap) -> Option<ContentEncoding> {
    let mut named: Vec<(String, u16)> = Vec::new();
    for value in headers.get_all(header::ACCEPT_ENCODING) {
        let Ok(text) = value.to_str() else { continue };
        for element in text.split(',') {
            let (coding, parameters) = element.split_once(';').unwrap_or((element, ""));
            let coding = coding.trim().to_ascii_lowercase();
            if coding.is_empty() {
                continue;
            }
            if let Some(q) = quality(parameters) {
                named.push((coding, q));
            }
        }
    }
    let q_of = |token: &str| {
        named
            .iter()
            .find(|(coding, _)| coding == token)
            .or_else(|| named.iter().find(|(coding, _)| coding == "*"))
            .map(|(_, q)| *q)
    };
    let (best, best_q) = OFFERED
        .iter()
        .filter_map(|encoding| Some((*encoding, q_of(encoding.token())?)))
        .filter(|(_, q)| *q > 0)
        .fold(
            None,
            |best: Option<(ContentEncoding, u16)>, candidate| match best {
                Some(current) if current.1 >= candidate.1 => Some(current),
                _ => Some(candidate),
            },
        )?;
    let identity_q = named
        .iter()
        .find(|(coding, _)| coding == "identity")
        .map(|(_, q)| *q);
    match identity_q {
        Some(identity_q) if identity_q > best_q => None,
        _ => Some(best),
    }
}

/// Whether `If-None-Match` names `etag` (or is `*`), by the weak comparison RFC 9110 requires
/// for it: `W/"x"` matches `"x"`. Malformed lists match nothing, so the full answer goes out.
pub fn if_none_match_matches(if_none_match: &[HeaderValue], etag: &str) -> bool {
    let opaque = etag.trim_start_matches("W/");
    if_none_match
        .iter()
        .filter_map(|value| value.to_str().ok())
        .any(|list| list.trim() == "*" || entity_tags(list).any(|tag| tag == opaque))
}

/// The opaque tags (quotes included, `W/` dropped) of an entity-tag list. A tag may contain
/// commas, so the list is scanned quote by quote rather than split.
fn entity_tags(list: &str) -> impl Iterator<Item = &str> {
    let mut rest = list;
    std::iter::from_fn(move || {
        rest = rest.trim_start_matches(|c: char| c == ',' || c.is_ascii_whitespace());
        let tag_start = rest.strip_prefix("W/").unwrap_or(rest);
        let closing = tag_start
            .strip_prefix('"')
            .and_then(|after_quote| after_quote.find('"'));
        match closing {
            Some(end) => {
                let tag = &tag_start[..end + 2];
                rest = &tag_start[end + 2..];
                Some(tag)
            }
            // The end, or something that is not a tag: stop reading the list.
            None => {
                rest = "";
                None
            }
        }
    })
}

/// What a request says about the representations it takes: the coding it prefers and the
/// entity tags it holds. Read from the request's head without copying the rest of its headers
/// (axum's `HeaderMap` extractor clones the whole map).
#[derive(Debug, Default)]
pub struct Negotiation {
    encoding: Option<ContentEncoding>,
    if_none_match: Vec<HeaderValue>,
}

impl Negotiation {
    pub fn of(headers: &HeaderMap) -> Negotiation {
        Negotiation {
            encoding: negotiate_encoding(headers),
            if_none_match: headers
                .get_all(header::IF_NONE_MATCH)
                .iter()
                .cloned()
                .collect(),
        }
    }

    /// Only the coding: for answers that have no conditional form (a POST's).
    pub fn encoding_only(headers: &HeaderMap) -> Negotiation {
        Negotiation {
            encoding: negotiate_encoding(headers),
            if_none_match: Vec::new(),
        }
    }
}

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Negotiation {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _state: &S,
    ) -> Result<Self, Self::Rejection> {
        Ok(Negotiation::of(&parts.headers))
    }
}

/// The response for `answer` given what the request negotiates: 304 when the client holds it,
/// otherwise the answer in the negotiated coding.
pub async fn answer_response(
    negotiation: &Negotiation,
    answer: &RenderedAnswer,
    freshness: Freshness,
) -> Result<Response, ApiError> {
    let wanted = if answer.compressible() {
        negotiation.encoding
    } else {
        None
    };
    let (encoding, body) = match wanted {
        Some(encoding) => match answer.compressed(encoding).await? {
            Some(compressed) => (Some(encoding), compressed),
            None => (None, answer.json().clone()),
        },
        None => (None, answer.json().clone()),
    };
    let not_modified =
        if_none_match_matches(&negotiation.if_none_match, answer.etag_text(encoding));
    let mut response = if not_modified {
        let mut response = Response::new(Body::empty());
        *response.status_mut() = StatusCode::NOT_MODIFIED;
        response
    } else {
        Response::new(Body::from(body))
    };
    let headers = response.headers_mut();
    // these five, and the request id and CORS headers the front door adds: one allocation
    headers.reserve(10);
    if let Ok(etag) = HeaderValue::from_maybe_shared(answer.etag_for(encoding).clone()) {
        headers.insert(header::ETAG, etag);
    }
    headers.insert(header::CACHE_CONTROL, freshness.cache_control());
    headers.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    if !not_modified {
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        if let Some(encoding) = encoding {
            headers.insert(
                header::CONTENT_ENCODING,
                HeaderValue::from_static(encoding.token()),
            );
        }
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(name: header::HeaderName, values: &[&str]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for value in values {
            map.append(name.clone(), HeaderValue::from_str(value).unwrap());
        }
        map
    }

    fn accept(values: &[&str]) -> Option<ContentEncoding> {
        negotiate_encoding(&headers(header::ACCEPT_ENCODING, values))
    }

    #[test]
    fn accept_encoding_follows_q_values() {
        assert_eq!(accept(&[]), None);
        assert_eq!(accept(&["gzip"]), Some(ContentEncoding::Gzip));
        assert_eq!(accept(&["GZIP, deflate"]), Some(ContentEncoding::Gzip));
        assert_eq!(accept(&["gzip, br"]), Some(ContentEncoding::Brotli));
        assert_eq!(
            accept(&["gzip;q=1.0, br;q=0.5, zstd;q=0.8"]),
            Some(ContentEncoding::Gzip)
        );
        assert_eq!(accept(&["gzip;q=0"]), None);
        assert_eq!(accept(&["*"]), Some(ContentEncoding::Brotli));
        assert_eq!(accept(&["*;q=0.5, br;q=0"]), Some(ContentEncoding::Zstd));
        assert_eq!(accept(&["identity"]), None);
        assert_eq!(accept(&["gzip;q=0.5, identity"]), None);
        assert_eq!(accept(&["gzip, identity"]), Some(ContentEncoding::Gzip));
        assert_eq!(accept(&["deflate", "zstd"]), Some(ContentEncoding::Zstd));
        assert_eq!(accept(&["gzip;q=nonsense, br;q=2"]), None);
        assert_eq!(accept(&[" , ;q=1, gzip"]), Some(ContentEncoding::Gzip));
    }

    #[test]
    fn if_none_match_uses_weak_comparison_and_lists() {
        let tag = "\"abc\"";
        let matches = |values: &[&str]| {
            let values: Vec<HeaderValue> = values
                .iter()
                .map(|value| HeaderValue::from_str(value).unwrap())
                .collect();
            if_none_match_matches(&values, tag)
        };
        assert!(!matches(&[]));
        assert!(matches(&["\"abc\""]));
        assert!(matches(&["W/\"abc\""]));
        assert!(matches(&["*"]));
        assert!(matches(&["\"x\", \"abc\""]));
        assert!(matches(&["\"a,b\",W/\"abc\""]));
        assert!(matches(&["\"x\"", "\"abc\""]));
        assert!(!matches(&["\"abcd\""]));
        assert!(!matches(&["abc"]));
        assert!(!matches(&["\"ab"]));
        assert!(!matches(&["\"x\", junk, \"abc\""]));
    }
}
