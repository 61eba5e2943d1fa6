//! `GET /ocm/artefacts/blob`: a resource's or source's `localBlob` as the original serves it,
//! streamed from the component's OCI repository (where its descriptor was found) through odg's
//! registry client: `component` (`name:version`), `artefact` (a name, or a JSON object of `name`,
//! `version` and extra-identity attributes; the first match wins), `ocm_repository` (checked like
//! `ocm_repo_url`: never an open proxy), `unzip` (default true: an `application/gzip` blob is
//! decompressed). `Content-Disposition` names `<component>_<version>_<artefact><ending>`.
//!
//! odg's addition: one byte range per request (`Range`), passed on to the registry (206 with
//! `Content-Range`, 416 past the end); a decompressed answer ignores ranges (200).

use std::io::Write;

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures::stream::BoxStream;
use futures::StreamExt;
use odg_components::{BlobRead, ComponentId, OciError};
use odg_ocm::Artefact;
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::byte_range::{content_range, requested_range, unsatisfiable, Unsatisfiable};
use crate::params::Params;
use crate::routes::ocm::requested_repository;
use crate::{ApiError, AppState};

/// Compressed bytes fed to the decoder per step: a deflate stream inflates at most ~1032-fold,
/// so one step's output stays within a few MiB however the blob was made.
const GZIP_INPUT_STEP: usize = 4096;

#[derive(Debug, Deserialize)]
pub struct ArtefactBlobParams {
    component: String,
    artefact: String,
    #[serde(default)]
    ocm_repository: Option<String>,
    #[serde(default = "default_unzip")]
    unzip: bool,
}

fn default_unzip() -> bool {
    true
}

/// What `artefact` asks for.
#[derive(Debug, Default)]
struct ArtefactQuery {
    name: Option<String>,
    version: Option<String>,
    extra_identity: Map<String, Value>,
}

fn artefact_query(text: &str) -> Result<ArtefactQuery, ApiError> {
    let text = text.trim();
    if text.starts_with('[') {
        return Err(ApiError::bad_request(
            "bad artefact: either a name or a JSON object is allowed",
        ));
    }
    if !text.starts_with('{') {
        return Ok(ArtefactQuery {
            name: Some(text.to_string()),
            ..ArtefactQuery::default()
        });
    }
    let Ok(Value::Object(mut attributes)) = serde_json::from_str::<Value>(text) else {
        return Err(ApiError::bad_request("bad artefact: not a JSON object"));
    };
    let mut take = |key: &str| match attributes.remove(key) {
        Some(Value::String(value)) => Ok(Some(value)),
        None | Some(Value::Null) => Ok(None),
        Some(_) => Err(ApiError::bad_request(format!(
            "bad artefact: {key} must be a string"
        ))),
    };
    Ok(ArtefactQuery {
        name: take("name")?,
        version: take("version")?,
        extra_identity: attributes,
    })
}

impl ArtefactQuery {
    /// The original's rule: name and version when given, and every other attribute equal to the
    /// artefact's extra identity (absent there: no match).
    fn matches(&self, artefact: &Artefact) -> bool {
        self.name.as_ref().is_none_or(|name| *name == artefact.name)
            && self
                .version
                .as_ref()
                .is_none_or(|version| Some(version) == artefact.version.as_ref())
            && self
                .extra_identity
                .iter()
                .all(|(key, value)| artefact.extra_identity.get(key) == Some(value))
    }
}

/// The file name ending the original gives a media type.
fn file_ending(media_type: &str) -> &'static str {
    match media_type {
        "application/pdf" => ".pdf",
        "application/tar+gzip" => ".tar.gz",
        "application/tar" => ".tar",
        _ => "",
    }
}

/// `attachment; filename="..."` with what cannot stand inside the quotes replaced.
fn content_disposition(file_name: &str) -> Result<HeaderValue, ApiError> {
    let safe: String = file_name
        .chars()
        .map(|c| {
            if c == '"' || c == '\\' || c.is_control() || !c.is_ascii() {
                '_'
            } else {
                c
            }
        })
        .collect();
    HeaderValue::from_str(&format!("attachment; filename=\"{safe}\""))
        .map_err(|_| ApiError::internal("the file name is not a header value"))
}

fn text_header(value: &str) -> Result<HeaderValue, ApiError> {
    HeaderValue::from_str(value).map_err(|_| {
        ApiError::new(
            StatusCode::BAD_GATEWAY,
            "the descriptor names a media type that is not a header value",
        )
    })
}

/// GET `/ocm/artefacts/blob`.
pub async fn blob(
    State(state): State<AppState>,
    headers: HeaderMap,
    Params(params): Params<ArtefactBlobParams>,
) -> Result<Response, ApiError> {
    let Some((name, version)) = params
        .component
        .split_once(':')
        .filter(|(_, version)| !version.contains(':'))
    else {
        return Err(
            ApiError::bad_request("malformed component id: expected name:version")
                .with("parameter", Value::String("component".into())),
        );
    };
    let query = artefact_query(&params.artefact)?;
    let repository = requested_repository(&state, params.ocm_repository.as_deref())?;
    let component = ComponentId::new(name, version);
    let found = state
        .components
        .descriptor(&component, repository.as_ref())
        .await?;
    let descriptor = &found.descriptor.component;
    let artefact = descriptor
        .resources
        .iter()
        .chain(descriptor.sources.iter())
        .find(|artefact| query.matches(artefact))
        .ok_or_else(|| {
            ApiError::not_found(format!(
                "{component} has no artefact matching {:?}",
                params.artefact
            ))
        })?;
    let access = &artefact.access;
    let access_type = access.get("type").and_then(Value::as_str).unwrap_or("");
    if !matches!(access_type, "localBlob" | "localBlob/v1") {
        return Err(ApiError::bad_request(format!(
            "artefact {:?} has the access type {access_type:?}; only localBlob is supported",
            artefact.name
        )));
    }
    let digest = access
        .get("globalAccess")
        .and_then(|global| global.get("digest"))
        .and_then(Value::as_str)
        .or_else(|| access.get("localReference").and_then(Value::as_str))
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::BAD_GATEWAY,
                "the artefact's localBlob access names no localReference",
            )
        })?;
    let media_type = access
        .get("mediaType")
        .and_then(Value::as_str)
        .unwrap_or("application/octet-stream");
    let file_name = format!(
        "{}_{}_{}{}",
        descriptor.name,
        descriptor.version,
        artefact.name,
        file_ending(media_type)
    );
    let unzip = params.unzip && media_type == "application/gzip";
    let range = if unzip {
        None
    } else {
        requested_range(&headers)
    };
    let read = state
        .components
        .local_blob(&found.repository, &descriptor.name, digest, range)
        .await?;
    let stream = match read {
        BlobRead::Unsatisfiable { size } => {
            return Ok(unsatisfiable(Unsatisfiable {
                size: size.unwrap_or(0),
            }))
        }
        BlobRead::Content(stream) => stream,
    };
    let mut response_headers = HeaderMap::new();
    response_headers.insert(
        header::CONTENT_DISPOSITION,
        content_disposition(&file_name)?,
    );
    if unzip {
        let content_type = artefact
            .artefact_type
            .as_deref()
            .unwrap_or("application/octet-stream");
        response_headers.insert(header::CONTENT_TYPE, text_header(content_type)?);
        let mut response = Response::new(Body::from_stream(gunzip(stream.body)));
        response.headers_mut().extend(response_headers);
        return Ok(response);
    }
    response_headers.insert(header::CONTENT_TYPE, text_header(media_type)?);
    response_headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    let status = match (stream.range, stream.size) {
        (Some((first, last)), size) => {
            response_headers.insert(header::CONTENT_LENGTH, HeaderValue::from(last - first + 1));
            response_headers.insert(
                header::CONTENT_RANGE,
                match size {
                    Some(size) => content_range(first, last, size),
                    None => HeaderValue::from_str(&format!("bytes {first}-{last}/*"))
                        .unwrap_or_else(|_| HeaderValue::from_static("bytes */*")),
                },
            );
            StatusCode::PARTIAL_CONTENT
        }
        (None, Some(size)) => {
            response_headers.insert(header::CONTENT_LENGTH, HeaderValue::from(size));
            StatusCode::OK
        }
        (None, None) => StatusCode::OK,
    };
    let mut response = (status, Body::from_stream(stream.body)).into_response();
    response.headers_mut().extend(response_headers);
    Ok(response)
}

/// Decompresses a gzip stream as it comes (the original's `unzip`), a bounded step at a time.
fn gunzip(
    body: BoxStream<'static, Result<Bytes, OciError>>,
) -> BoxStream<'static, Result<Bytes, std::io::Error>> {
    let decoder = flate2::write::GzDecoder::new(Vec::new());
    futures::stream::unfold((body, Some(decoder)), |(mut body, decoder)| async move {
        let mut decoder = decoder?;
        let result = match body.next().await {
            Some(Ok(chunk)) => {
                let mut output = Vec::new();
                let mut failed = None;
                for step in chunk.chunks(GZIP_INPUT_STEP) {
                    if let Err(error) = decoder.write_all(step) {
                        failed = Some(error);
                        break;
                    }
                    output.append(decoder.get_mut());
                }
                match failed {
                    None => Ok(Bytes::from(output)),
                    Some(error) => Err(error),
                }
            }
            Some(Err(error)) => Err(std::io::Error::other(error)),
            None => {
                return match decoder.try_finish() {
                    Ok(()) => {
                        let rest = std::mem::take(decoder.get_mut());
                        (!rest.is_empty()).then(|| (Ok(Bytes::from(rest)), (body, None)))
                    }
                    Err(error) => Some((Err(error), (body, None))),
                }
            }
        };
        let next = if result.is_ok() { Some(decoder) } else { None };
        Some((result, (body, next)))
    })
    .boxed()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn artefacts_are_matched_as_the_original_matches_them() {
        let artefact: Artefact = serde_json::from_value(serde_json::json!({
            "name": "docs", "version": "1.0", "type": "blob",
            "extraIdentity": {"platform": "linux"}, "access": {"type": "localBlob"}
        }))
        .unwrap();
        assert!(artefact_query("docs").unwrap().matches(&artefact));
        assert!(!artefact_query("other").unwrap().matches(&artefact));
        assert!(
            artefact_query(r#"{"name": "docs", "version": "1.0", "platform": "linux"}"#)
                .unwrap()
                .matches(&artefact)
        );
        assert!(!artefact_query(r#"{"platform": "darwin"}"#)
            .unwrap()
            .matches(&artefact));
        assert!(artefact_query("[1]").is_err());
        assert!(artefact_query("{not json").is_err());
        assert_eq!(
            content_disposition("a/b_1.0_x\"y.pdf").unwrap(),
            "attachment; filename=\"a/b_1.0_x_y.pdf\""
        );
    }
}
