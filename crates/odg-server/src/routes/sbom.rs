//! `GET /components/sbom`: the SBOM documents of a component version's artefacts and of its
//! dependencies', as one tar archive streamed from the delivery DB's blob store, the original's
//! layout: `<component>_<version>/<artefact>_<type>[_<extra id>].json` per artefact whose scan
//! info from the `sbom-generator` datasource names a stored blob (`data.digest`); artefacts
//! without one are skipped, as the original skips them. Each document streams from the blob
//! store in chunks, so the archive is never held whole.

use std::collections::HashSet;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, HeaderValue};
use axum::response::Response;
use futures::stream::{self, BoxStream, StreamExt};
use odg_compliance::ComplianceService;
use serde::Deserialize;
use serde_json::Value;

use crate::params::{DepthParam, Params, VersionParam};
use crate::routes::metadata::compliance;
use crate::routes::ocm::{requested_component, requested_repository};
use crate::{ApiError, AppState};

/// The datasource whose scan infos name the SBOM documents.
const SBOM_GENERATOR: &str = "sbom-generator";
const SCAN_INFO: &str = "meta/artefact_scan_info";
const BLOCK: usize = 512;

#[derive(Debug, Deserialize)]
pub struct SbomParams {
    component_name: String,
    version: VersionParam,
    #[serde(default)]
    ocm_repo_url: Option<String>,
    /// -1 (the default) = the whole tree.
    #[serde(default)]
    recursion_depth: Option<DepthParam>,
}

/// One document of the archive.
struct Entry {
    path: String,
    blob: odg_delivery_db::BlobRecord,
}

/// `<name>_<version>` and `<artefact>_<type>[_<extra id>]` with `/` (and `:` in the file name)
/// replaced by `_`, as the original names them.
fn entry_path(row: &odg_delivery_db::StoredMetadata) -> String {
    let artefact = &row.metadata.artefact;
    let directory = format!(
        "{}_{}",
        artefact.component_name.as_deref().unwrap_or_default(),
        artefact.component_version.as_deref().unwrap_or_default()
    )
    .replace('/', "_");
    let local = artefact.artefact.clone().unwrap_or_default();
    let mut file = format!(
        "{}_{}",
        local.artefact_name.as_deref().unwrap_or_default(),
        local.artefact_type.as_deref().unwrap_or_default()
    );
    if !local.artefact_extra_id.is_empty() {
        file.push('_');
        file.push_str(&local.normalised_extra_id());
    }
    format!("{directory}/{}.json", file.replace(['/', ':'], "_"))
}

/// A tar header block for a regular file of `size` bytes; `None` for a path tar cannot hold.
fn tar_header(path: &str, size: u64) -> Option<Bytes> {
    let mut header = tar::Header::new_ustar();
    header.set_path(path).ok()?;
    header.set_size(size);
    header.set_mode(0o644);
    header.set_entry_type(tar::EntryType::Regular);
    header.set_cksum();
    Some(Bytes::copy_from_slice(header.as_bytes()))
}

async fn entries(
    state: &AppState,
    compliance: &ComplianceService,
    params: &SbomParams,
) -> Result<(String, Vec<Entry>), ApiError> {
    let repository = requested_repository(state, params.ocm_repo_url.as_deref())?;
    let (root, _) = requested_component(
        state,
        &params.component_name,
        Some(&params.version),
        repository.as_ref(),
    )
    .await?;
    let options = odg_components::WalkOptions {
        max_depth: params.recursion_depth.and_then(|DepthParam(depth)| depth),
        ..state.components.walk_options().clone()
    };
    let nodes = state
        .components
        .dependencies(&root, repository.as_ref(), &options)
        .await?;
    let db = compliance.db();
    let mut seen_versions = HashSet::new();
    let mut entries = Vec::new();
    for node in &nodes {
        let component = &node.descriptor.descriptor.component;
        if !seen_versions.insert((component.name.clone(), component.version.clone())) {
            continue;
        }
        let artefacts = ComplianceService::artefacts_of(node);
        let rows = db
            .component_rows(
                &component.name,
                &component.version,
                SBOM_GENERATOR,
                &[SCAN_INFO],
            )
            .await?;
        for row in rows.iter().filter(|row| {
            row.metadata.artefact.component_version.as_deref() == Some(component.version.as_str())
                && artefacts
                    .iter()
                    .any(|artefact| odg_compliance::is_about(row, artefact))
        }) {
            let Some(digest) = row.metadata.data.get("digest").and_then(Value::as_str) else {
                continue;
            };
            let Some(blob) = db.blob(digest).await? else {
                tracing::warn!(digest, "an SBOM scan info names a blob that is not stored");
                continue;
            };
            entries.push(Entry {
                path: entry_path(row),
                blob,
            });
        }
    }
    let filename = format!("{}_{}.sboms.tar", root.name, root.version).replace('/', "_");
    Ok((filename, entries))
}

pub async fn sbom(
    State(state): State<AppState>,
    Params(params): Params<SbomParams>,
) -> Result<Response, ApiError> {
    let compliance = compliance(&state)?;
    let (filename, entries) = entries(&state, compliance, &params).await?;
    let db = compliance.db().clone();
    let documents: Vec<BoxStream<'static, Result<Bytes, odg_delivery_db::StoreError>>> = entries
        .into_iter()
        .filter_map(|entry| {
            let Some(header) = tar_header(&entry.path, entry.blob.size) else {
                tracing::warn!(
                    path = entry.path,
                    "an SBOM path too long for a tar archive; skipped"
                );
                return None;
            };
            let padding = (BLOCK - (entry.blob.size as usize % BLOCK)) % BLOCK;
            let content = db.blob_content(&entry.blob, 0, entry.blob.size);
            Some(
                stream::once(async move { Ok(header) })
                    .chain(content)
                    .chain(stream::once(
                        async move { Ok(Bytes::from(vec![0u8; padding])) },
                    ))
                    .boxed(),
            )
        })
        .collect();
    // the archive ends with two empty blocks
    let end = stream::once(async { Ok(Bytes::from(vec![0u8; 2 * BLOCK])) });
    let body = stream::iter(documents).flatten().chain(end);
    let mut response = Response::new(Body::from_stream(body));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-tar"),
    );
    if let Ok(disposition) = HeaderValue::from_str(&format!("attachment; filename=\"{filename}\""))
    {
        headers.insert(header::CONTENT_DISPOSITION, disposition);
    }
    Ok(response)
}
