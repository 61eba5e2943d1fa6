//! `/ocm/component`, `/ocm/component/versions` and `/ocm/component/dependencies`, with the
//! original's parameter names and response shapes.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use odg_components::{
    ComponentId, DependencyNode, FetchedDescriptor, VersionQuery, WalkOptions, GREATEST,
};
use odg_ocm::{Component, OcmRepositoryUrl, VersionFilter};
use serde_json::{json, Map, Value};

use crate::params::QueryParams;
use crate::{ApiError, AppState};

/// The label the original adds to the first source of components whose sources carry none.
const SOURCE_CLASSIFICATION_LABEL: &str = "cloud.gardener/cicd/source";

/// Versions never contain spaces, but a `+` in an unencoded query string decodes to one.
fn version_param(params: &QueryParams, name: &str) -> Result<Option<String>, ApiError> {
    Ok(params
        .optional(name)?
        .map(|value| value.trim().replace(' ', "+")))
}

fn repository_param(
    state: &AppState,
    params: &QueryParams,
) -> Result<Option<OcmRepositoryUrl>, ApiError> {
    match params.optional("ocm_repo_url")? {
        None | Some("") => Ok(None),
        Some(url) => Ok(Some(state.components.requested_repository(url)?)),
    }
}

/// Resolves `component_name` + `version` (default `greatest`) to a concrete component version.
async fn requested_component(
    state: &AppState,
    params: &QueryParams,
    repository: Option<&OcmRepositoryUrl>,
) -> Result<ComponentId, ApiError> {
    let name = params.required("component_name")?.trim().to_string();
    let version = version_param(params, "version")?.filter(|version| !version.is_empty());
    let version = version.as_deref().unwrap_or(GREATEST);
    let resolved = state
        .components
        .resolve_version(&name, version, repository)
        .await?;
    Ok(ComponentId::new(name, resolved))
}

/// Serialises on the blocking pool: big descriptors and trees are CPU work.
async fn json_response(
    value: impl FnOnce() -> Value + Send + 'static,
) -> Result<Response, ApiError> {
    let body = odg_components::run_cpu_bound(move || serde_json::to_vec(&value()))
        .await?
        .map_err(|_| {
            ApiError::new(
                axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                "serialisation failed",
            )
        })?;
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}

/// GET `/ocm/component`: the descriptor as JSON, or with `raw=true` the stored document as a JSON string.
pub async fn component(
    State(state): State<AppState>,
    params: QueryParams,
) -> Result<Response, ApiError> {
    let raw = params.boolean("raw")?;
    let _ignore_cache = params.boolean("ignore_cache")?;
    let repository = repository_param(&state, &params)?;
    let component = requested_component(&state, &params, repository.as_ref()).await?;
    let fetched = state
        .components
        .descriptor(&component, repository.as_ref())
        .await?;
    if raw {
        return json_response(move || Value::String(fetched.document.clone())).await;
    }
    json_response(move || serde_json::to_value(&fetched.descriptor).unwrap_or(Value::Null)).await
}

/// GET `/ocm/component/versions`: ascending version strings, the greatest `max` of them.
pub async fn versions(
    State(state): State<AppState>,
    params: QueryParams,
) -> Result<Response, ApiError> {
    let name = params.required("component_name")?.trim().to_string();
    let repository = repository_param(&state, &params)?;
    let version_filter = match params.optional("version_filter")? {
        None | Some("") => None,
        Some(filter) => Some(
            filter
                .parse::<VersionFilter>()
                .map_err(|error| ApiError::bad_request(format!("version_filter: {error}")))?,
        ),
    };
    let date = |name: &str| -> Result<Option<String>, ApiError> {
        match params.optional(name)? {
            None | Some("") => Ok(None),
            Some(value) if odg_components::is_iso_date(value) => Ok(Some(value.to_string())),
            Some(value) => Err(ApiError::bad_request(format!(
                "the parameter {name} must be a date as YYYY-MM-DD, got {value:?}"
            ))),
        }
    };
    let query = VersionQuery {
        version_filter,
        upper_bound: version_param(&params, "version")?.filter(|version| !version.is_empty()),
        max: params.unsigned("max", 5)?,
        start_date: date("start_date")?,
        end_date: date("end_date")?,
    };
    let versions = state
        .components
        .versions(&name, repository.as_ref(), &query)
        .await?;
    json_response(move || json!(versions)).await
}

/// What each element of `componentDependencies` carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Populate {
    All,
    ComponentReferences,
}

/// GET `/ocm/component/dependencies`: the tree depth first, each element with its `comp_ref` path.
pub async fn dependencies(
    State(state): State<AppState>,
    params: QueryParams,
) -> Result<Response, ApiError> {
    let populate = match params.optional("populate")? {
        None | Some("") | Some("all") => Populate::All,
        Some("componentReferences") => Populate::ComponentReferences,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "populate={other:?} is not implemented; use all or componentReferences"
            )))
        }
    };
    let defaults = state.components.walk_options().clone();
    let options = WalkOptions {
        max_depth: params.depth("recursion_depth")?.or(defaults.max_depth),
        ..defaults
    };
    let repository = repository_param(&state, &params)?;
    let root = requested_component(&state, &params, repository.as_ref()).await?;
    let nodes = state
        .components
        .dependencies(&root, repository.as_ref(), &options)
        .await?;
    let body = odg_components::run_cpu_bound(move || dependencies_body(&nodes, populate)).await?;
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}

/// The answer, assembled from each distinct component's JSON serialised once: a tree repeats
/// shared subtrees (3,151 elements for 300 components in the benchmark tree), so rendering each
/// element from scratch would serialise the same objects thousands of times.
fn dependencies_body(nodes: &[DependencyNode], populate: Populate) -> Vec<u8> {
    /// JSON text per distinct descriptor, keyed by the address of its shared allocation.
    fn rendered<'a>(
        memo: &'a mut HashMap<*const FetchedDescriptor, String>,
        fetched: &Arc<FetchedDescriptor>,
        render: impl FnOnce(&Arc<FetchedDescriptor>) -> Map<String, Value>,
    ) -> &'a str {
        memo.entry(Arc::as_ptr(fetched)).or_insert_with(|| {
            serde_json::to_string(&render(fetched)).unwrap_or_else(|_| "{}".into())
        })
    }
    let mut elements: HashMap<*const FetchedDescriptor, String> = HashMap::new();
    let mut path_entries: HashMap<*const FetchedDescriptor, String> = HashMap::new();
    let mut out = Vec::with_capacity(nodes.len() * 256);
    out.extend_from_slice(br#"{"componentDependencies":["#);
    for (index, node) in nodes.iter().enumerate() {
        if index > 0 {
            out.push(b',');
        }
        let element = rendered(&mut elements, &node.descriptor, |fetched| match populate {
            Populate::All => component_with_source_label(&fetched.descriptor.component),
            Populate::ComponentReferences => path_entry(fetched),
        });
        // Reopen the object to append `comp_ref`.
        let open = &element[..element.len() - 1];
        out.extend_from_slice(open.as_bytes());
        if open.len() > 1 {
            out.push(b',');
        }
        out.extend_from_slice(br#""comp_ref":["#);
        for (position, entry) in node.path.iter().enumerate() {
            if position > 0 {
                out.push(b',');
            }
            out.extend_from_slice(rendered(&mut path_entries, entry, path_entry).as_bytes());
        }
        out.extend_from_slice(b"]}");
    }
    out.extend_from_slice(b"]}");
    out
}

/// `{name, version, repositoryContexts}` of a component.
fn path_entry(fetched: &Arc<FetchedDescriptor>) -> Map<String, Value> {
    let component = &fetched.descriptor.component;
    let mut entry = Map::new();
    entry.insert("name".into(), json!(component.name));
    entry.insert("version".into(), json!(component.version));
    entry.insert(
        "repositoryContexts".into(),
        serde_json::to_value(&component.repository_contexts).unwrap_or(Value::Array(vec![])),
    );
    entry
}

/// The component object, with the original's source classification label on its first source
/// when no source carries one.
fn component_with_source_label(component: &Component) -> Map<String, Value> {
    let mut value = match serde_json::to_value(component) {
        Ok(Value::Object(map)) => map,
        _ => Map::new(),
    };
    let has_label = component.sources.iter().any(|source| {
        source
            .labels
            .iter()
            .any(|label| label.name == SOURCE_CLASSIFICATION_LABEL)
    });
    if !has_label {
        if let Some(Value::Object(first_source)) = value
            .get_mut("sources")
            .and_then(|sources| sources.get_mut(0))
        {
            let label = json!({"name": SOURCE_CLASSIFICATION_LABEL, "value": {"repository-classification": "main"}});
            match first_source.get_mut("labels") {
                Some(Value::Array(labels)) => labels.push(label),
                _ => {
                    first_source.insert("labels".into(), json!([label]));
                }
            }
        }
    }
    value
}
