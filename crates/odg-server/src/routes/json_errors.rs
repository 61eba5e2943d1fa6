//! Every error answer is `{"error": ...}`, including those our handlers never see: axum's
//! extractor rejections (body too large, wrong content type, unparsable JSON, bad path or query),
//! and whatever a layer answers. One middleware around all routes rewrites any 4xx/5xx answer
//! that is not JSON, keeping its status and headers (`Allow`, `Retry-After`) and its text as the
//! message. hyper's own answers to unparsable requests are rewritten in `connection.rs`.

use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;

/// Rejection texts are a line or two; anything longer is cut to this.
const MAX_MESSAGE_BYTES: usize = 4096;

pub async fn json_errors(request: Request, next: Next) -> Response {
    as_json(next.run(request).await).await
}

/// `response` itself, or for a 4xx/5xx that is not JSON, the same status and headers with its
/// text as `{"error": ...}`.
pub async fn as_json(response: Response) -> Response {
    if !needs_json(&response) {
        return response;
    }
    let status = response.status();
    let (mut parts, body) = response.into_parts();
    let text = match axum::body::to_bytes(body, MAX_MESSAGE_BYTES).await {
        Ok(bytes) => String::from_utf8_lossy(&bytes).trim().to_string(),
        Err(_) => String::new(),
    };
    let message = if text.is_empty() {
        status
            .canonical_reason()
            .unwrap_or("request failed")
            .to_ascii_lowercase()
    } else {
        text
    };
    let body = serde_json::json!({ "error": message }).to_string();
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    parts
        .headers
        .insert(header::CONTENT_LENGTH, body.len().into());
    Response::from_parts(parts, Body::from(body))
}

/// An error answer without a JSON body.
pub(super) fn needs_json(response: &Response) -> bool {
    let status = response.status();
    (status.is_client_error() || status.is_server_error()) && !is_json(response)
}

pub(super) fn is_json(response: &Response) -> bool {
    response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("application/json"))
}

#[cfg(test)]
mod tests {
    use axum::http::{Method, StatusCode};
    use axum::routing::{get, post};
    use axum::{Json, Router};
    use serde_json::Value;
    use tower::ServiceExt;

    use super::*;

    #[derive(serde::Deserialize)]
    struct Entries {
        #[allow(dead_code)]
        entries: Vec<String>,
    }

    /// Routes with axum's own extractors, whose rejections are plain text.
    fn router() -> Router {
        Router::new()
            .route("/json", post(|Json(_): Json<Entries>| async { "ok" }))
            .route(
                "/path/{number}",
                get(|axum::extract::Path(_): axum::extract::Path<u32>| async { "ok" }),
            )
            .route(
                "/query",
                get(
                    |axum::extract::Query(_): axum::extract::Query<
                        std::collections::HashMap<String, u32>,
                    >| async { "ok" },
                ),
            )
            .route("/limited", post(|_: axum::body::Bytes| async { "ok" }))
            .layer(axum::extract::DefaultBodyLimit::max(16))
            .layer(axum::middleware::from_fn(json_errors))
    }

    async fn call(
        method: Method,
        uri: &str,
        content_type: Option<&str>,
        body: &str,
    ) -> (StatusCode, Value) {
        let mut request = Request::builder().method(method).uri(uri);
        if let Some(content_type) = content_type {
            request = request.header(header::CONTENT_TYPE, content_type);
        }
        let response = router()
            .oneshot(request.body(Body::from(body.to_string())).unwrap())
            .await
            .unwrap();
        let status = response.status();
        assert_eq!(response.headers()[header::CONTENT_TYPE], "application/json");
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap();
        (status, serde_json::from_slice(&bytes).unwrap())
    }

    #[tokio::test]
    async fn extractor_rejections_answer_json() {
        let cases = [
            (
                Method::POST,
                "/json",
                Some("text/plain"),
                "{}",
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ),
            (
                Method::POST,
                "/json",
                Some("application/json"),
                "{",
                StatusCode::BAD_REQUEST,
            ),
            (
                Method::POST,
                "/json",
                Some("application/json"),
                "{\"x\":1}",
                StatusCode::UNPROCESSABLE_ENTITY,
            ),
            (Method::GET, "/path/abc", None, "", StatusCode::BAD_REQUEST),
            (Method::GET, "/query?a=b", None, "", StatusCode::BAD_REQUEST),
            (
                Method::POST,
                "/limited",
                None,
                "more than sixteen bytes",
                StatusCode::PAYLOAD_TOO_LARGE,
            ),
            (
                Method::DELETE,
                "/json",
                None,
                "",
                StatusCode::METHOD_NOT_ALLOWED,
            ),
        ];
        for (method, uri, content_type, body, expected) in cases {
            let (status, json) = call(method.clone(), uri, content_type, body).await;
            assert_eq!(status, expected, "{method} {uri}: {json}");
            let message = json["error"].as_str().unwrap_or_default();
            assert!(!message.is_empty(), "{method} {uri}: {json}");
        }
    }
}
