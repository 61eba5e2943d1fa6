//! `/blob`: the original's blob store, content-addressed by `sha256:<hex>`. `POST` stores the body
//! under the `Digest` header (writer or admin; the digest is computed while the body streams into
//! the delivery DB and must match), `HEAD` answers the blob's headers, `GET` streams it (with a
//! single byte range if asked, an addition of odg's), `DELETE` removes it (writer or admin).
//! Neither direction holds a blob in memory (see `odg_delivery_db`'s `blob.rs`).

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use odg_delivery_db::{sanitise_blob_digest, BlobRecord, BlobUpload, DeliveryDb};
use serde::Deserialize;
use serde_json::json;

use crate::auth::ROLE_WRITER;
use crate::byte_range::{content_range, requested_range, unsatisfiable, Unsatisfiable};
use crate::params::Params;
use crate::routes::metadata::compliance;
use crate::{ApiError, AppState};

const DIGEST: HeaderName = HeaderName::from_static("digest");
const CREATED: HeaderName = HeaderName::from_static("created");

/// `digest`: `sha256:<hex>` (the original's one algorithm), any case.
#[derive(Debug, Deserialize)]
pub struct BlobParams {
    digest: String,
}

fn database(state: &AppState) -> Result<&DeliveryDb, ApiError> {
    Ok(compliance(state)?.db())
}

/// A required request header as text; absent or not text is the original's 400.
fn required_header<'h>(headers: &'h HeaderMap, name: &str) -> Result<&'h str, ApiError> {
    headers
        .get(name)
        .and_then(|value| value.to_str().ok())
        .map(str::trim)
        .filter(|value| !value.is_empty())
        .ok_or_else(|| {
            ApiError::bad_request(format!("the {name} header is required"))
                .with("header", json!(name))
        })
}

/// The original's headers: `Digest`, `Created` (`%d/%m/%y %H:%M:%S %z`), `Content-Type`.
fn blob_headers(record: &BlobRecord) -> Result<HeaderMap, ApiError> {
    let mut headers = HeaderMap::new();
    let text = |value: &str| {
        HeaderValue::from_str(value)
            .map_err(|_| ApiError::internal("a stored blob's metadata is not a header value"))
    };
    headers.insert(DIGEST, text(&record.digest)?);
    if let Some(created) = record.creation_date {
        headers.insert(
            CREATED,
            text(&created.format("%d/%m/%y %H:%M:%S %z").to_string())?,
        );
    }
    headers.insert(header::CONTENT_TYPE, text(&record.mime_type)?);
    Ok(headers)
}

/// POST `/blob`: `Digest`, `Content-Length` and `Content-Type` headers are required (as in the
/// original); 200 with the blob's headers, 400 for a bad or mismatching digest, 413 past the
/// size limit, 422 for a digest already stored.
pub async fn upload(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let principal = state
        .auth
        .authorize(&headers, "POST", "/blob", ROLE_WRITER)?;
    let digest = required_header(&headers, "Digest")?;
    let length = required_header(&headers, "Content-Length")?;
    let mime_type = required_header(&headers, "Content-Type")?.to_string();
    let limits = state.blobs;
    let max_bytes = limits.max_bytes.min(odg_delivery_db::MAX_BLOB_BYTES);
    // Refused before a byte is read when the client announces too much (an encoded body's
    // decoded size is checked while it streams).
    if length.parse::<u64>().is_ok_and(|length| length > max_bytes)
        && !headers.contains_key(header::CONTENT_ENCODING)
    {
        return Err(odg_delivery_db::StoreError::BlobTooLarge { limit: max_bytes }.into());
    }
    let digest = sanitise_blob_digest(digest)?;
    let db = database(&state)?;
    let upload = BlobUpload {
        digest,
        mime_type,
        max_bytes,
        idle_timeout: limits.idle_timeout,
    };
    let record = db
        .put_blob(&upload, Box::pin(body.into_data_stream()))
        .await?;
    tracing::info!(subject = %principal.subject, digest = %record.digest, size = record.size, "blob stored");
    let mut response = StatusCode::OK.into_response();
    response.headers_mut().extend(blob_headers(&record)?);
    response
        .headers_mut()
        .insert(header::CONTENT_LENGTH, HeaderValue::from(0));
    Ok(response)
}

async fn stored(state: &AppState, digest: &str) -> Result<BlobRecord, ApiError> {
    let digest = sanitise_blob_digest(digest)?;
    database(state)?.blob(&digest).await?.ok_or_else(|| {
        ApiError::not_found(format!(
            "the blob with the digest {digest} could not be found"
        ))
    })
}

/// HEAD `/blob?digest=`: the blob's headers with its `Content-Length`; 404 if not stored.
pub async fn metadata(
    State(state): State<AppState>,
    Params(params): Params<BlobParams>,
) -> Result<Response, ApiError> {
    let record = stored(&state, &params.digest).await?;
    let mut response = StatusCode::OK.into_response();
    response.headers_mut().extend(blob_headers(&record)?);
    response
        .headers_mut()
        .insert(header::CONTENT_LENGTH, HeaderValue::from(record.size));
    response
        .headers_mut()
        .insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    Ok(response)
}

/// GET `/blob?digest=`: the content, streamed from the delivery DB; a `Range` of one byte range
/// is a 206 (416 past the end).
pub async fn download(
    State(state): State<AppState>,
    headers: HeaderMap,
    Params(params): Params<BlobParams>,
) -> Result<Response, ApiError> {
    let record = stored(&state, &params.digest).await?;
    let db = database(&state)?;
    let (status, first, last) =
        match requested_range(&headers).map(|range| range.resolve(record.size)) {
            None => (StatusCode::OK, 0, record.size.saturating_sub(1)),
            Some(Some((first, last))) => (StatusCode::PARTIAL_CONTENT, first, last),
            Some(None) => return Ok(unsatisfiable(Unsatisfiable { size: record.size })),
        };
    let length = if record.size == 0 {
        0
    } else {
        last - first + 1
    };
    let content = db.blob_content(&record, first, first + length);
    let mut response = Response::new(Body::from_stream(content));
    *response.status_mut() = status;
    let response_headers = response.headers_mut();
    response_headers.extend(blob_headers(&record)?);
    response_headers.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
    response_headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    if status == StatusCode::PARTIAL_CONTENT {
        response_headers.insert(
            header::CONTENT_RANGE,
            content_range(first, last, record.size),
        );
    }
    Ok(response)
}

/// DELETE `/blob?digest=`: 204; 404 if not stored.
pub async fn delete(
    State(state): State<AppState>,
    headers: HeaderMap,
    Params(params): Params<BlobParams>,
) -> Result<StatusCode, ApiError> {
    let principal = state
        .auth
        .authorize(&headers, "DELETE", "/blob", ROLE_WRITER)?;
    let digest = sanitise_blob_digest(&params.digest)?;
    if !database(&state)?.delete_blob(&digest).await? {
        return Err(ApiError::not_found("the blob could not be found"));
    }
    tracing::info!(subject = %principal.subject, digest = %digest, "blob deleted");
    Ok(StatusCode::NO_CONTENT)
}
