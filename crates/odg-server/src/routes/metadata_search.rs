//! The dashboard's metadata browser: `GET /artefacts/metadata/query-attributes` (the fields a
//! search may name, the original's fixed list) and `POST /artefacts/metadata/query/by-search-expression`
//! (criteria of three kinds, sorted, paged by a cursor), with the original's body, rules and
//! bounds: `ocm` criteria (a component, or with a version its artefacts, with `recursive` its
//! whole tree: a version-less row about one of their artefacts matches too), `artefact-metadata`
//! criteria on columns and JSON fields (`eq` with `*` wildcards, `in`, `range` of times, `cmp`,
//! severities by their categorisation value), `fulltext` tokens; include criteria OR'd per field
//! and AND'd across, excludes negated. Pages hold at most 200 items; rows a finding
//! configuration's filter refuses are skipped, reading up to ten batches to fill a page.
//!
//! The SQL (`odg_delivery_db::search`) is a superset for the `ocm` scopes: it selects the
//! components' rows and their version-less rows, and the artefact rule is checked here, per row,
//! so that a scope of any size costs a few parameters per component rather than five per artefact.

use std::collections::{HashMap, HashSet};

use axum::body::Bytes;
use axum::extract::State;
use axum::Json;
use odg_compliance::ComplianceService;
use odg_components::ComponentId;
use odg_delivery_db::{
    Attr, Condition, LocalArtefactId, SearchStatement, SortField, StoredMetadata, TextOp,
};
use serde_json::{json, Map, Value};

use super::metadata::compliance;
use crate::{ApiError, AppState};

/// Page size bounds (the original's hard cap).
const MAX_PAGE_SIZE: i64 = 200;
const DEFAULT_PAGE_SIZE: i64 = 50;
/// Rows read per batch at most, and batches per page, while filling a page.
const MAX_BATCH: i64 = 2_000;
const MAX_ROUNDS: usize = 10;
/// Criteria per search, and values per `in` criterion or fulltext field list.
const MAX_CRITERIA: usize = 100;
const MAX_VALUES: usize = 1_000;
/// Component versions one `ocm` scope may cover (a recursive scope: the tree's).
const MAX_SCOPE_COMPONENTS: usize = 2_000;

/// The fields free text is searched in when a `fulltext` criterion names none.
const DEFAULT_SEARCH_FIELDS: [&str; 6] = [
    "data.summary",
    "data.cve",
    "data.package_name",
    "data.package_version",
    "artefact.name",
    "ocm.name",
];

/// `GET /artefacts/metadata/query-attributes`: the fields, their types and operators, and the
/// fields of free-text search, as the original lists them.
pub async fn query_attributes() -> Json<Value> {
    let field =
        |name: &str, kind: &str, ops: &[&str]| json!({"name": name, "type": kind, "ops": ops});
    Json(json!({
        "fields": [
            field("ocm", "string", &["eq"]),
            field("type", "string", &["eq", "in"]),
            field("datasource", "string", &["eq", "in"]),
            field("artefact_kind", "string", &["eq", "in"]),
            field("artefact.name", "string", &["eq", "in"]),
            field("artefact.version", "string", &["eq", "in"]),
            field("artefact.type", "string", &["eq", "in"]),
            field("meta.creation_date", "datetime", &["range", "eq"]),
            field("meta.last_update", "datetime", &["range", "eq"]),
            field("data.cve", "string", &["eq", "in"]),
            field("data.package_name", "string", &["eq", "in"]),
            field("data.package_version", "string", &["eq", "in"]),
            field("data.osid.NAME", "string", &["eq", "in"]),
            field("data.severity", "string", &["cmp", "eq", "in"]),
            field("data.summary", "string", &["eq"]),
        ],
        "defaultSearchFields": DEFAULT_SEARCH_FIELDS,
    }))
}

/// Include (default) or exclude.
fn excluded(entry: &Map<String, Value>) -> Result<bool, ApiError> {
    match entry.get("mode") {
        None | Some(Value::Null) => Ok(false),
        Some(Value::String(mode)) if mode.is_empty() => Ok(false),
        Some(Value::String(mode)) if mode.eq_ignore_ascii_case("include") => Ok(false),
        Some(Value::String(mode)) if mode.eq_ignore_ascii_case("exclude") => Ok(true),
        Some(other) => Err(ApiError::bad_request(format!("invalid mode: {other}"))),
    }
}

/// A JSON value as the original's `str(value)` writes it.
fn text_of(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::Null => "None".into(),
        other => other.to_string(),
    }
}

/// Python's truthiness of a JSON value (the original's `if not value`).
fn truthy(value: Option<&Value>) -> Option<&Value> {
    value.filter(|value| match value {
        Value::Null | Value::Bool(false) => false,
        Value::String(text) => !text.is_empty(),
        Value::Array(items) => !items.is_empty(),
        Value::Object(map) => !map.is_empty(),
        Value::Number(number) => number.as_f64() != Some(0.0),
        Value::Bool(true) => true,
    })
}

/// What an attribute name reads (the original's `_expr_for_attr`).
fn attr_of(name: &str) -> Result<Attr, ApiError> {
    if let Some(key) = name.strip_prefix("meta.") {
        return Ok(Attr::Meta(key.to_string()));
    }
    if let Some(path) = name.strip_prefix("data.") {
        let keys: Vec<String> = path.split('.').map(str::to_string).collect();
        if keys.iter().any(|key| key.is_empty() || key.contains('"')) {
            return Err(ApiError::bad_request(format!("unknown attr={name:?}")));
        }
        return Ok(Attr::Data(keys));
    }
    let column = match name {
        "ocm.name" => "component_name",
        "ocm.version" => "component_version",
        "artefact.name" => "artefact_name",
        "artefact.version" => "artefact_version",
        "artefact.type" => "artefact_type",
        other => other,
    };
    Attr::column(column).ok_or_else(|| ApiError::bad_request(format!("unknown attr={name:?}")))
}

/// `*` as the wildcard, everything else literal (`%`, `_` and `\` escaped).
fn like_pattern(value: &str, contains: bool) -> String {
    let mut pattern = value
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
        .replace('*', "%");
    if contains {
        if !pattern.starts_with('%') {
            pattern.insert(0, '%');
        }
        if !pattern.ends_with('%') {
            pattern.push('%');
        }
    }
    pattern
}

fn like(attr: Attr, value: &str, contains: bool) -> Condition {
    Condition::Text {
        attr,
        op: TextOp::Like,
        value: like_pattern(value, contains),
    }
}

/// An ISO 8601 date-time (`Z` allowed), as Python's `fromisoformat`.
fn iso_time(text: &str) -> Option<String> {
    let text = text.trim();
    let normalised = text.replace('Z', "+00:00");
    let parses = chrono::DateTime::parse_from_rfc3339(&normalised).is_ok()
        || chrono::DateTime::parse_from_str(&normalised, "%Y-%m-%dT%H:%M:%S%.f%:z").is_ok()
        || chrono::DateTime::parse_from_str(&normalised, "%Y-%m-%d %H:%M:%S%.f%:z").is_ok()
        || [
            "%Y-%m-%dT%H:%M:%S%.f",
            "%Y-%m-%dT%H:%M",
            "%Y-%m-%d %H:%M:%S%.f",
        ]
        .iter()
        .any(|format| chrono::NaiveDateTime::parse_from_str(&normalised, format).is_ok())
        || normalised.parse::<chrono::NaiveDate>().is_ok();
    parses.then_some(normalised)
}

/// One `artefact-metadata` criterion as a condition.
fn metadata_condition(
    entry: &Map<String, Value>,
    attr_name: &str,
    selected_type: Option<&str>,
    compliance: &ComplianceService,
) -> Result<Condition, ApiError> {
    let op = match entry.get("op") {
        None | Some(Value::Null) => "eq".to_string(),
        Some(value) => text_of(value).to_lowercase(),
    };
    let op = if op.is_empty() { "eq".to_string() } else { op };
    match op.as_str() {
        "eq" => {
            let value = truthy(entry.get("value")).map(text_of).ok_or_else(|| {
                ApiError::bad_request(format!("missing value for attr={attr_name:?}"))
            })?;
            let attr = attr_of(attr_name)?;
            Ok(if value.contains('*') {
                like(attr, &value, false)
            } else {
                Condition::Text {
                    attr,
                    op: TextOp::Eq,
                    value,
                }
            })
        }
        "in" => {
            let values = match entry.get("values") {
                Some(Value::Array(values)) if !values.is_empty() => values,
                _ => {
                    return Err(ApiError::bad_request(format!(
                        "op=in requires non-empty values for {attr_name}"
                    )))
                }
            };
            if values.len() > MAX_VALUES {
                return Err(ApiError::bad_request(format!(
                    "op=in with {} values for {attr_name}; at most {MAX_VALUES}",
                    values.len()
                )));
            }
            Ok(Condition::In {
                attr: attr_of(attr_name)?,
                values: values.iter().map(text_of).collect(),
            })
        }
        "range" => {
            let attr = attr_of(attr_name)?;
            let mut bounds = Vec::new();
            for (key, op) in [("gte", TextOp::Ge), ("lte", TextOp::Le)] {
                match entry.get(key) {
                    None | Some(Value::Null) => {}
                    Some(raw) => {
                        let value = iso_time(&text_of(raw)).ok_or_else(|| {
                            ApiError::bad_request(format!(
                                "invalid {key} for {attr_name}: {}",
                                text_of(raw)
                            ))
                        })?;
                        bounds.push(Condition::Time {
                            attr: attr.clone(),
                            op,
                            value,
                        });
                    }
                }
            }
            Ok(Condition::And(bounds))
        }
        "cmp" => {
            let cmp = truthy(entry.get("cmp")).map(text_of).ok_or_else(|| {
                ApiError::bad_request(format!("op=cmp requires cmp for {attr_name}"))
            })?;
            let value = truthy(entry.get("value")).map(text_of).ok_or_else(|| {
                ApiError::bad_request(format!("op=cmp requires value for {attr_name}"))
            })?;
            let op = match cmp.as_str() {
                ">=" => TextOp::Ge,
                ">" => TextOp::Gt,
                "<=" => TextOp::Le,
                "<" => TextOp::Lt,
                "!=" => TextOp::Ne,
                "==" | "=" => TextOp::Eq,
                other => {
                    return Err(ApiError::bad_request(format!(
                        "unsupported cmp op={other:?}"
                    )))
                }
            };
            if attr_name == "data.severity" || attr_name == "finding.severity" {
                severity_condition(op, &value, selected_type, compliance)
            } else {
                Ok(Condition::Text {
                    attr: attr_of(attr_name)?,
                    op,
                    value,
                })
            }
        }
        other => Err(ApiError::bad_request(format!(
            "unsupported op={other:?} for attr={attr_name:?}"
        ))),
    }
}

/// A severity comparison by categorisation value: a number, or a categorisation id of the one
/// finding type the criteria select.
fn severity_condition(
    op: TextOp,
    value: &str,
    selected_type: Option<&str>,
    compliance: &ComplianceService,
) -> Result<Condition, ApiError> {
    let configs = compliance.configs();
    let cases = configs
        .findings
        .iter()
        .flat_map(|config| {
            config.categorisations.iter().map(|categorisation| {
                (
                    config.r#type.clone(),
                    categorisation.id.clone(),
                    categorisation.value,
                )
            })
        })
        .collect();
    let right = match value.trim().parse::<i64>() {
        Ok(number) => number,
        Err(_) => {
            let finding_type = selected_type.ok_or_else(|| {
                ApiError::bad_request(
                    "data.severity symbolic comparisons require exactly one finding type",
                )
            })?;
            configs
                .get(finding_type)
                .and_then(|config| config.categorisation(value))
                .map(|categorisation| categorisation.value)
                .ok_or_else(|| ApiError::bad_request("invalid severity value"))?
        }
    };
    Ok(Condition::Severity {
        cases,
        op,
        value: right,
    })
}

/// An artefact as the original keys it for the version rule: kind, name, version, type and the
/// normalised extra identity, into which the artefact's version is added when it has none.
type ArtefactKey = (
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    String,
);

fn key_of(kind: Option<&str>, artefact: &LocalArtefactId) -> ArtefactKey {
    (
        kind.map(str::to_string),
        artefact.artefact_name.clone(),
        artefact.artefact_version.clone(),
        artefact.artefact_type.clone(),
        artefact.normalised_extra_id(),
    )
}

/// A resolved `ocm` criterion with a version: the component versions (the tree's, when
/// recursive) and, per component name, the keys of their artefacts.
#[derive(Debug, Default)]
struct Scope {
    versions: HashSet<(String, String)>,
    artefacts: HashMap<String, HashSet<ArtefactKey>>,
}

enum OcmMatch {
    Name(String),
    Scope(std::sync::Arc<Scope>),
}

impl OcmMatch {
    /// The SQL superset: the component's rows (and for a scope included, its components'
    /// version-less rows, whose artefacts [`OcmMatch::matches`] checks).
    fn condition(&self, include: bool) -> Condition {
        let name_is = |name: &str| Condition::Text {
            attr: Attr::Column("component_name"),
            op: TextOp::Eq,
            value: name.to_string(),
        };
        match self {
            OcmMatch::Name(name) => name_is(name),
            OcmMatch::Scope(scope) => {
                let mut versions: Vec<&(String, String)> = scope.versions.iter().collect();
                versions.sort();
                let mut alternatives: Vec<Condition> = versions
                    .into_iter()
                    .map(|(name, version)| {
                        Condition::And(vec![
                            name_is(name),
                            Condition::Text {
                                attr: Attr::Column("component_version"),
                                op: TextOp::Eq,
                                value: version.clone(),
                            },
                        ])
                    })
                    .collect();
                let mut names: Vec<String> = scope
                    .artefacts
                    .iter()
                    .filter(|(_, keys)| !keys.is_empty())
                    .map(|(name, _)| name.clone())
                    .collect();
                names.sort();
                if include && !names.is_empty() {
                    alternatives.push(Condition::And(vec![
                        Condition::In {
                            attr: Attr::Column("component_name"),
                            values: names,
                        },
                        Condition::Blank(Attr::Column("component_version")),
                    ]));
                }
                Condition::Or(alternatives)
            }
        }
    }

    /// The original's predicate, exactly, on a row.
    fn matches(&self, row: &StoredMetadata) -> bool {
        let artefact = &row.metadata.artefact;
        let Some(name) = artefact.component_name.as_deref() else {
            return false;
        };
        match self {
            OcmMatch::Name(wanted) => name == wanted,
            OcmMatch::Scope(scope) => match artefact.component_version.as_deref() {
                Some(version) if !version.is_empty() => scope
                    .versions
                    .contains(&(name.to_string(), version.to_string())),
                _ => scope.artefacts.get(name).is_some_and(|keys| {
                    let local = artefact.artefact.clone().unwrap_or_default();
                    keys.contains(&key_of(
                        artefact.artefact_kind.map(|kind| kind.as_str()),
                        &local,
                    ))
                }),
            },
        }
    }
}

/// The component versions of a scope and their artefacts, from the descriptors (the tree
/// through the cached dependency walk when recursive).
async fn resolve_scope(
    compliance: &ComplianceService,
    name: &str,
    version: &str,
    recursive: bool,
) -> Result<Scope, ApiError> {
    let components = compliance.components();
    let root = ComponentId::new(name, version);
    let unresolved = |error: odg_components::ComponentError| {
        if error.kind() == odg_components::ComponentErrorKind::NotFound {
            ApiError::bad_request(format!(
                "could not resolve component descriptor for {name}:{version}"
            ))
        } else {
            ApiError::from(error)
        }
    };
    let descriptors = if recursive {
        let mut options = components.walk_options().clone();
        options.max_depth = None;
        components
            .dependencies(&root, None, &options)
            .await
            .map_err(unresolved)?
            .into_iter()
            .map(|node| node.descriptor)
            .collect()
    } else {
        vec![components
            .descriptor(&root, None)
            .await
            .map_err(unresolved)?]
    };
    let mut scope = Scope::default();
    for fetched in descriptors {
        let component = &fetched.descriptor.component;
        if !scope
            .versions
            .insert((component.name.clone(), component.version.clone()))
        {
            continue;
        }
        if scope.versions.len() > MAX_SCOPE_COMPONENTS {
            return Err(ApiError::bad_request(format!(
                "the scope of {name}:{version} holds more than {MAX_SCOPE_COMPONENTS} component versions; search a smaller one"
            )));
        }
        let keys = scope.artefacts.entry(component.name.clone()).or_default();
        let artefacts = component
            .resources
            .iter()
            .map(|artefact| ("resource", artefact))
            .chain(
                component
                    .sources
                    .iter()
                    .map(|artefact| ("source", artefact)),
            );
        for (kind, artefact) in artefacts {
            let kind_enum = if kind == "resource" {
                odg_delivery_db::ArtefactKind::Resource
            } else {
                odg_delivery_db::ArtefactKind::Source
            };
            let mut local = odg_compliance::artefact_id(
                &component.name,
                &component.version,
                kind_enum,
                artefact,
            )
            .artefact
            .unwrap_or_default();
            // the original adds the version to the extra identity for this rule
            if let Some(artefact_version) = &local.artefact_version {
                local
                    .artefact_extra_id
                    .entry("version".into())
                    .or_insert_with(|| artefact_version.clone());
            }
            keys.insert(key_of(Some(kind), &local));
        }
    }
    Ok(scope)
}

/// The single finding type the include criteria select (for symbolic severities).
fn single_selected_type(criteria: &[Map<String, Value>]) -> Result<Option<String>, ApiError> {
    let mut types = HashSet::new();
    for entry in criteria {
        if entry.get("type").and_then(Value::as_str) != Some("artefact-metadata")
            || excluded(entry)?
            || entry.get("attr").and_then(Value::as_str) != Some("type")
        {
            continue;
        }
        let op = entry
            .get("op")
            .map(text_of)
            .unwrap_or_default()
            .to_lowercase();
        if op.is_empty() || op == "eq" {
            if let Some(value) = truthy(entry.get("value")) {
                types.insert(text_of(value));
            }
        } else if op == "in" {
            if let Some(Value::Array(values)) = entry.get("values") {
                types.extend(values.iter().map(text_of));
            }
        }
    }
    Ok(if types.len() == 1 {
        types.into_iter().next()
    } else {
        None
    })
}

/// What a request asks for, parsed and resolved.
struct Search {
    condition: Condition,
    ocm_includes: Vec<OcmMatch>,
    ocm_excludes: Vec<OcmMatch>,
    sort: Vec<SortField>,
    descending: bool,
    cursor: Option<Vec<Option<String>>>,
    page_size: i64,
}

async fn parse(body: &Bytes, compliance: &ComplianceService) -> Result<Search, ApiError> {
    let body: Value = serde_json::from_slice(body)
        .map_err(|error| ApiError::bad_request(format!("the body is not JSON: {error}")))?;
    let Value::Object(body) = body else {
        return Err(ApiError::bad_request("request body must be an dict"));
    };
    let criteria: Vec<Map<String, Value>> = match body.get("criteria") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(entries)) => entries
            .iter()
            .map(|entry| match entry {
                Value::Object(entry) => Ok(entry.clone()),
                _ => Err(ApiError::bad_request("each criteria entry must be an dict")),
            })
            .collect::<Result<_, _>>()?,
        Some(_) => return Err(ApiError::bad_request("criteria must be a list")),
    };
    if criteria.len() > MAX_CRITERIA {
        return Err(ApiError::bad_request(format!(
            "{} criteria; at most {MAX_CRITERIA}",
            criteria.len()
        )));
    }
    let limit = match body.get("limit") {
        None => DEFAULT_PAGE_SIZE,
        Some(Value::Number(number)) => number
            .as_i64()
            .ok_or_else(|| ApiError::bad_request("limit must be an integer"))?,
        Some(Value::String(text)) => text
            .trim()
            .parse()
            .map_err(|_| ApiError::bad_request("limit must be an integer"))?,
        Some(_) => return Err(ApiError::bad_request("limit must be an integer")),
    };
    let page_size = limit.clamp(1, MAX_PAGE_SIZE);

    let mut sort: Vec<(SortField, bool)> = Vec::new();
    match body.get("sort") {
        None | Some(Value::Null) => {}
        Some(Value::Array(entries)) => {
            for entry in entries {
                let Value::Object(entry) = entry else {
                    return Err(ApiError::bad_request("each sort entry must be an dict"));
                };
                let name = truthy(entry.get("field"))
                    .map(text_of)
                    .ok_or_else(|| ApiError::bad_request("sort entry missing field"))?;
                let descending = match truthy(entry.get("order")).map(text_of) {
                    None => false,
                    Some(order) if order.eq_ignore_ascii_case("asc") => false,
                    Some(order) if order.eq_ignore_ascii_case("desc") => true,
                    Some(order) => {
                        return Err(ApiError::bad_request(format!(
                            "invalid sort order={order:?}"
                        )))
                    }
                };
                let field = SortField::parse(&name)
                    .ok_or_else(|| ApiError::bad_request(format!("invalid sort field: {name}")))?;
                sort.push((field, descending));
            }
        }
        Some(_) => return Err(ApiError::bad_request("sort must be a list")),
    }
    if sort.is_empty() {
        sort.push((SortField::CreationDate, true));
    }
    let descending = sort[0].1;
    if !sort.iter().any(|(field, _)| *field == SortField::Id) {
        sort.push((SortField::Id, descending));
    }
    if sort.iter().any(|(_, order)| *order != descending) {
        return Err(ApiError::bad_request("mixed sort orders are not supported"));
    }
    let sort: Vec<SortField> = sort.into_iter().map(|(field, _)| field).collect();

    let cursor = match body.get("cursor") {
        None | Some(Value::Null) => None,
        Some(Value::Object(cursor)) if cursor.is_empty() => None,
        Some(Value::Object(cursor)) => {
            let mut values = Vec::with_capacity(sort.len());
            for field in &sort {
                let raw = cursor.get(field.name()).ok_or_else(|| {
                    ApiError::bad_request(format!("cursor missing field \"{}\"", field.name()))
                })?;
                values.push(match raw {
                    Value::Null => None,
                    raw if field.is_time() => Some(iso_time(&text_of(raw)).ok_or_else(|| {
                        ApiError::bad_request(format!(
                            "invalid cursor datetime for {}: {}",
                            field.name(),
                            text_of(raw)
                        ))
                    })?),
                    raw => Some(text_of(raw)),
                });
            }
            Some(values)
        }
        Some(_) => return Err(ApiError::bad_request("cursor must be an dict")),
    };

    // every criterion's shape first, as the original parses the whole body before querying
    for entry in &criteria {
        match truthy(entry.get("type")).map(text_of).as_deref() {
            Some("ocm" | "artefact-metadata" | "fulltext") => {}
            Some(other) => {
                return Err(ApiError::bad_request(format!(
                    "unsupported criteria type={other:?}"
                )))
            }
            None => return Err(ApiError::bad_request("criteria entry missing type")),
        }
        excluded(entry)?;
    }

    let mut scopes: HashMap<(String, String, bool), std::sync::Arc<Scope>> = HashMap::new();
    let (mut ocm_includes, mut ocm_excludes) = (Vec::new(), Vec::new());
    let selected_type = single_selected_type(&criteria)?;
    let mut by_attr_include: Vec<(String, Vec<Condition>)> = Vec::new();
    let mut by_attr_exclude: Vec<(String, Vec<Condition>)> = Vec::new();
    let (mut fulltext_include, mut fulltext_exclude) = (Vec::new(), Vec::new());
    for entry in &criteria {
        let exclude = excluded(entry)?;
        match entry.get("type").and_then(Value::as_str) {
            Some("ocm") => {
                let value = truthy(entry.get("value"))
                    .map(text_of)
                    .ok_or_else(|| ApiError::bad_request("ocm entry missing value"))?;
                let recursive = match entry.get("recursive") {
                    None => false,
                    Some(Value::Bool(flag)) => *flag,
                    Some(_) => {
                        return Err(ApiError::bad_request("ocm recursive must be a boolean"))
                    }
                };
                let value = value.trim();
                let (name, version) = match value.split_once(':') {
                    Some((name, version)) => {
                        (name.trim(), Some(version.trim()).filter(|v| !v.is_empty()))
                    }
                    None => (value, None),
                };
                if name.is_empty() {
                    return Err(ApiError::bad_request("invalid ocm value"));
                }
                let matcher = match version {
                    None if recursive => {
                        return Err(ApiError::bad_request(
                            "recursive ocm search requires a versioned component id",
                        ))
                    }
                    None => OcmMatch::Name(name.to_string()),
                    Some(version) => {
                        let key = (name.to_string(), version.to_string(), recursive);
                        let scope = match scopes.get(&key) {
                            Some(scope) => scope.clone(),
                            None => {
                                let scope = std::sync::Arc::new(
                                    resolve_scope(compliance, name, version, recursive).await?,
                                );
                                scopes.insert(key, scope.clone());
                                scope
                            }
                        };
                        OcmMatch::Scope(scope)
                    }
                };
                if exclude {
                    ocm_excludes.push(matcher);
                } else {
                    ocm_includes.push(matcher);
                }
            }
            Some("artefact-metadata") => {
                let attr = truthy(entry.get("attr"))
                    .map(text_of)
                    .ok_or_else(|| ApiError::bad_request("artefact-metadata entry missing attr"))?;
                let condition =
                    metadata_condition(entry, &attr, selected_type.as_deref(), compliance)?;
                let groups = if exclude {
                    &mut by_attr_exclude
                } else {
                    &mut by_attr_include
                };
                match groups.iter_mut().find(|(known, _)| *known == attr) {
                    Some((_, conditions)) => conditions.push(condition),
                    None => groups.push((attr, vec![condition])),
                }
            }
            _ => {
                let token = truthy(entry.get("value"))
                    .map(text_of)
                    .ok_or_else(|| ApiError::bad_request("fulltext entry missing value"))?;
                let fields: Vec<String> = match entry.get("fields") {
                    None | Some(Value::Null) => DEFAULT_SEARCH_FIELDS
                        .iter()
                        .map(|f| f.to_string())
                        .collect(),
                    Some(Value::Array(fields)) if fields.len() <= MAX_VALUES => fields
                        .iter()
                        .map(|field| field.as_str().map(str::to_string))
                        .collect::<Option<_>>()
                        .ok_or_else(|| {
                            ApiError::bad_request("fulltext fields must be a list of strings")
                        })?,
                    Some(_) => {
                        return Err(ApiError::bad_request(
                            "fulltext fields must be a list of strings",
                        ))
                    }
                };
                let token = token.trim();
                let condition = if token.is_empty() {
                    Condition::True
                } else {
                    Condition::Or(
                        fields
                            .iter()
                            .map(|field| Ok(like(attr_of(field)?, token, true)))
                            .collect::<Result<_, ApiError>>()?,
                    )
                };
                if exclude {
                    fulltext_exclude.push(Condition::Not(Box::new(condition)));
                } else {
                    fulltext_include.push(condition);
                }
            }
        }
    }

    let mut conditions = Vec::new();
    if !ocm_includes.is_empty() {
        conditions.push(Condition::Or(
            ocm_includes.iter().map(|m| m.condition(true)).collect(),
        ));
    }
    if !ocm_excludes.is_empty() {
        conditions.push(Condition::Not(Box::new(Condition::Or(
            ocm_excludes.iter().map(|m| m.condition(false)).collect(),
        ))));
    }
    conditions.extend(
        by_attr_include
            .into_iter()
            .map(|(_, alternatives)| Condition::Or(alternatives)),
    );
    conditions.extend(
        by_attr_exclude
            .into_iter()
            .map(|(_, alternatives)| Condition::Not(Box::new(Condition::Or(alternatives)))),
    );
    conditions.extend(fulltext_include);
    conditions.extend(fulltext_exclude);
    Ok(Search {
        condition: Condition::And(conditions),
        ocm_includes,
        ocm_excludes,
        sort,
        descending,
        cursor,
        page_size,
    })
}

fn cursor_of(sort: &[SortField], row: &StoredMetadata) -> Value {
    Value::Object(
        sort.iter()
            .map(|field| (field.name().to_string(), json!(field.value_of(row))))
            .collect(),
    )
}

/// `POST /artefacts/metadata/query/by-search-expression`: `{"items": [ArtefactMetadata...],
/// "nextCursor": {field: value, ...} | null}`.
pub async fn search(State(state): State<AppState>, body: Bytes) -> Result<Json<Value>, ApiError> {
    let compliance = compliance(&state)?;
    let search = parse(&body, compliance).await?;
    let configs = compliance.configs();
    let batch = (search.page_size * 10).min(MAX_BATCH);
    let mut items = Vec::new();
    let mut next_cursor = Value::Null;
    let mut scan_cursor = search.cursor.clone();
    let mut done = false;
    for _ in 0..MAX_ROUNDS {
        let statement = SearchStatement {
            condition: search.condition.clone(),
            sort: search.sort.clone(),
            descending: search.descending,
            cursor: scan_cursor.clone(),
            limit: batch,
        };
        let rows = compliance.db().search(&statement).await?;
        let Some(last) = rows.last() else {
            done = true;
            next_cursor = Value::Null;
            break;
        };
        let last_cursor: Vec<Option<String>> = search
            .sort
            .iter()
            .map(|field| field.value_of(last))
            .collect();
        for row in &rows {
            let in_scope = (search.ocm_includes.is_empty()
                || search.ocm_includes.iter().any(|m| m.matches(row)))
                && !search.ocm_excludes.iter().any(|m| m.matches(row));
            let accepted = configs
                .get(&row.metadata.meta.r#type)
                .is_none_or(|config| config.filter.accepts(&row.metadata.artefact));
            if !(in_scope && accepted) {
                continue;
            }
            items.push(row.metadata.to_json());
            if items.len() as i64 >= search.page_size {
                next_cursor = cursor_of(&search.sort, row);
                done = true;
                break;
            }
        }
        if done {
            break;
        }
        scan_cursor = Some(last_cursor);
    }
    if !done {
        // ten batches without a full page: go on after the last row read (the original's rule)
        next_cursor = match (&scan_cursor, items.is_empty()) {
            (Some(values), false) => Value::Object(
                search
                    .sort
                    .iter()
                    .zip(values)
                    .map(|(field, value)| (field.name().to_string(), json!(value)))
                    .collect(),
            ),
            _ => Value::Null,
        };
    }
    Ok(Json(json!({"items": items, "nextCursor": next_cursor})))
}
