//! `/rescore`, the dashboard's rescoring dialog: `GET` previews the rescoring proposals of one
//! artefact's findings (see [`odg_compliance::proposals`]); `POST` applies rescorings, written
//! as `rescorings` rows with the caller as their user, and invalidates the summaries they touch
//! in every pod before answering, as the metadata writes do.

use std::collections::BTreeMap;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use odg_compliance::proposals::{RESCORING, STRUCTURE_INFO};
use odg_compliance::{ComplianceService, SprintDue};
use odg_delivery_db::{ArtefactKind, ComponentArtefactId, LocalArtefactId};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::auth::{Principal, ROLE_METADATA_WRITER};
use crate::params::{Params, VersionParam};
use crate::routes::metadata::{compliance, entries_of, timed, write_entries};
use crate::{ApiError, AppState};

/// The original's parameters, camel-cased as the dashboard sends them.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RescoreParams {
    component_name: String,
    /// `greatest` stands for no version (the version-less findings only), as in the original.
    component_version: VersionParam,
    artefact_kind: String,
    artefact_name: String,
    artefact_version: String,
    artefact_type: String,
    /// A JSON object of strings; `{}` when absent.
    #[serde(default)]
    artefact_extra_id: Option<String>,
    /// Finding types (repeatable); none = every configured type.
    #[serde(default, rename = "type")]
    types: Vec<String>,
    /// Sent by the dashboard; the original no longer reads it (the rule set comes from the
    /// finding configuration).
    #[serde(default)]
    #[allow(
        dead_code,
        reason = "accepted for the dashboard, unused as in the original"
    )]
    cve_rescoring_rule_set_name: Option<String>,
}

fn artefact_of(params: &RescoreParams) -> Result<ComponentArtefactId, ApiError> {
    let kind = ArtefactKind::parse(&params.artefact_kind).ok_or_else(|| {
        ApiError::bad_request(format!(
            "artefactKind {:?} is not an artefact kind (resource, source, runtime)",
            params.artefact_kind
        ))
    })?;
    let extra_id = match params.artefact_extra_id.as_deref() {
        None | Some("") => BTreeMap::new(),
        Some(text) => serde_json::from_str::<BTreeMap<String, String>>(text).map_err(|error| {
            ApiError::bad_request(format!(
                "artefactExtraId must be a JSON object of strings: {error}"
            ))
        })?,
    };
    let VersionParam(version) = &params.component_version;
    Ok(ComponentArtefactId {
        component_name: Some(params.component_name.clone()),
        component_version: (version != "greatest").then(|| version.clone()),
        artefact: Some(LocalArtefactId {
            artefact_name: Some(params.artefact_name.clone()),
            artefact_version: Some(params.artefact_version.clone()),
            artefact_type: Some(params.artefact_type.clone()),
            artefact_extra_id: extra_id,
        }),
        artefact_kind: Some(kind),
        references: Vec::new(),
    })
}

/// `GET /rescore`: the proposals for one artefact's findings of the given types; 404 for a type
/// without a finding configuration (the original's answer).
pub async fn preview(
    State(state): State<AppState>,
    Params(params): Params<RescoreParams>,
) -> Result<Response, ApiError> {
    let started = Instant::now();
    let result = preview_inner(&state, &params).await;
    timed(
        "rescore_preview",
        started,
        result
            .as_ref()
            .map_or_else(ApiError::status, |_| StatusCode::OK),
    );
    let body = result?;
    Ok((
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response())
}

async fn preview_inner(state: &AppState, params: &RescoreParams) -> Result<Vec<u8>, ApiError> {
    let compliance = compliance(state)?;
    let configs = compliance.configs();
    if let Some(unknown) = params
        .types
        .iter()
        .find(|r#type| configs.get(r#type).is_none())
    {
        return Err(ApiError::not_found(format!(
            "No configuration for finding type \"{unknown}\" found"
        )));
    }
    let artefact = artefact_of(params)?;
    let referenced: Vec<&str> = params.types.iter().map(String::as_str).collect();
    let mut types = referenced.clone();
    // structure infos carry the filesystem paths of licence and vulnerability findings
    if types.contains(&odg_compliance::config::LICENSE)
        || types.contains(&odg_compliance::config::VULNERABILITY)
    {
        types.push(STRUCTURE_INFO);
    }
    let rows = compliance
        .db()
        .artefact_rows(&artefact, &types, &referenced)
        .await?;
    // the original reads the artefact's CVE categorisation for vulnerabilities only
    let cve_categorisation = if types.contains(&odg_compliance::config::VULNERABILITY) {
        cve_categorisation(state, &artefact).await
    } else {
        None
    };
    let configs = configs.clone();
    let wanted = params.types.clone();
    let sprints = sprints_due(state);
    odg_offload::run_cpu_bound(move || {
        let proposals = odg_compliance::proposals(
            &rows,
            &configs,
            &wanted,
            &sprints,
            cve_categorisation.as_ref(),
        );
        serde_json::to_vec(&proposals)
    })
    .await
    .map_err(ApiError::from)?
    .map_err(|_| ApiError::internal("serialisation failed"))
}

/// The artefact's `gardener.cloud/cve-categorisation` label, else its component's; `None` when
/// there is none or the descriptor cannot be read (the original looks it up `absent_ok`).
async fn cve_categorisation(state: &AppState, artefact: &ComponentArtefactId) -> Option<Value> {
    let name = artefact.component_name.as_deref()?;
    let version = artefact.component_version.as_deref()?;
    let component = odg_components::ComponentId::new(name, version);
    let fetched = match state.components.descriptor(&component, None).await {
        Ok(fetched) => fetched,
        Err(error) => {
            tracing::debug!(%error, name, version, "no descriptor for the CVE categorisation");
            return None;
        }
    };
    let component = &fetched.descriptor.component;
    let local = artefact.artefact.clone().unwrap_or_default();
    let candidates = match artefact.artefact_kind {
        Some(ArtefactKind::Resource) => &component.resources,
        Some(ArtefactKind::Source) => &component.sources,
        _ => return None,
    };
    let found = candidates.iter().find(|candidate| {
        Some(&candidate.name) == local.artefact_name.as_ref()
            && candidate.version == local.artefact_version
            && candidate.artefact_type == local.artefact_type
            && candidate
                .extra_identity
                .iter()
                .map(|(key, value)| (key.clone(), value.as_str().unwrap_or_default().to_string()))
                .collect::<BTreeMap<String, String>>()
                == local.artefact_extra_id
    });
    let label = |labels: &[odg_ocm::Label]| {
        labels
            .iter()
            .find(|label| label.name == odg_compliance::cve_rescoring::CVE_CATEGORISATION_LABEL)
            .map(|label| label.value.clone())
    };
    found
        .and_then(|artefact| label(&artefact.labels))
        .or_else(|| label(&component.labels))
}

/// The calendar's sprints (today's, for a generated one) by the date findings are due in them.
fn sprints_due(state: &AppState) -> Vec<SprintDue> {
    let Some(calendar) = &state.sprints else {
        return Vec::new();
    };
    calendar
        .sprints(super::sprints::today())
        .into_iter()
        .filter_map(|sprint| {
            Some(SprintDue {
                due_date: sprint.due_date()?,
                name: sprint.name,
            })
        })
        .collect()
}

/// The user a rescoring records: the caller's GitHub identity for a session (the original's
/// `GitHubUser`); for an admin token or an external JWT, its subject as a plain `User`.
async fn user_of(compliance: &ComplianceService, principal: &Principal) -> Result<Value, ApiError> {
    if principal.session {
        let user = compliance.db().user(&principal.subject).await?;
        let github = user.as_ref().and_then(|user| {
            user.identifiers.iter().find_map(|(kind, identifier)| {
                let username = identifier.get("username")?.as_str()?;
                (kind == "github").then(|| {
                    json!({
                        "username": username,
                        "github_hostname": identifier.get("hostname").and_then(Value::as_str).unwrap_or_default(),
                        "type": "github-user",
                    })
                })
            })
        });
        if let Some(github) = github {
            return Ok(github);
        }
    }
    Ok(json!({"username": principal.subject, "type": "user"}))
}

/// `POST /rescore`: body `{"entries": [ArtefactMetadata of type rescorings...]}`; each entry's
/// `data.user` is set to the caller; an entry of another type is a 400 and nothing is written.
/// 201 with an empty body once written and invalidated.
pub async fn apply(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let started = Instant::now();
    let result = apply_inner(&state, &headers, &body).await;
    let status = result
        .as_ref()
        .map_or_else(ApiError::status, |()| StatusCode::CREATED);
    timed("rescore_apply", started, status);
    result.map(|()| StatusCode::CREATED.into_response())
}

async fn apply_inner(state: &AppState, headers: &HeaderMap, body: &Bytes) -> Result<(), ApiError> {
    let principal = state
        .auth
        .authorize(headers, "POST", "/rescore", ROLE_METADATA_WRITER)?;
    let compliance = compliance(state)?;
    let mut entries = entries_of(body)?;
    if entries.is_empty() {
        return Ok(());
    }
    let user = user_of(compliance, &principal).await?;
    for (index, entry) in entries.iter_mut().enumerate() {
        let r#type = entry.pointer("/meta/type").and_then(Value::as_str);
        if r#type != Some(RESCORING) {
            return Err(ApiError::bad_request(format!(
                "entries[{index}]: a rescoring must be of type {RESCORING}, not {type:?}"
            ))
            .with("entry", json!(index)));
        }
        match entry.get_mut("data").and_then(Value::as_object_mut) {
            Some(data) => {
                data.insert("user".into(), user.clone());
            }
            None => {
                return Err(ApiError::bad_request(format!(
                    "entries[{index}].data must be an object"
                ))
                .with("entry", json!(index)))
            }
        }
    }
    let report = write_entries(compliance, &entries).await?;
    tracing::info!(subject = %principal.subject, inserted = report.inserted, updated = report.updated, "rescorings applied");
    Ok(())
}
