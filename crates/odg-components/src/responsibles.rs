//! `/ocm/component/responsibles`: the people responsible for a component (or one of its
//! artefacts), read from the descriptor's responsibles label, in the original's shape:
//! `{"responsibles": [[identifier, ...], ...], "statuses": [{"type", "msg"}, ...]}`, each
//! responsible a list of identifiers (`githubUser`, `emailAddress`, `personalName`, and the
//! `metaOrigin` saying where the assignment came from).
//!
//! The original falls back to GitHub (codeowners files, contributor statistics, team members)
//! where the label has no entries it can use. odg has no GitHub access, so it answers what the
//! original answers when no GitHub is configured: entries that need GitHub (`githubTeam`,
//! `codeowners`) are skipped, and without a usable label the list is empty (200, never the
//! original's 202 "statistics pending", which only a GitHub lookup can cause).

use std::sync::Arc;

use odg_cache::{CacheKey, Scope};
use odg_ocm::{Artefact, Component, Label, RepositoryChoice};
use serde_json::{json, Map, Value};

use crate::answer::RenderedAnswer;
use crate::cache::{current_cache_mode, kind, KIND_RESPONSIBLES};
use crate::{
    ComponentError, ComponentId, ComponentService, FetchedDescriptor,
    IGNORE_LOOKUP_NEEDS_REPOSITORY,
};

/// The label naming a component's or an artefact's responsibles.
pub const RESPONSIBLES_LABEL: &str = "cloud.gardener.cnudie/responsibles";

/// Marks the main source among a component's sources (else the first source is the main one).
const SOURCE_CLASSIFICATION_LABEL: &str = "cloud.gardener/cicd/source";

/// The status the original reports for a label it cannot read (then it tries GitHub, which
/// odg does not have, so the list is empty).
const MALFORMED_LABEL_STATUS: &str =
    "responsibles-label malformed, falling back to responsibles-heuristic";

/// One entry of the label's value, as the original's strict reading accepts it.
#[derive(Debug, Clone, PartialEq)]
enum Responsible {
    /// Needs GitHub (the repository's CODEOWNERS file).
    Codeowners,
    Email(String),
    /// Needs GitHub (the team's members).
    GithubTeam,
    GithubUser {
        username: String,
        hostname: Option<String>,
    },
    PersonalName {
        first_name: String,
        last_name: String,
    },
}

const RESPONSIBLE_TYPES: [&str; 5] = [
    "githubUser",
    "githubTeam",
    "codeowners",
    "emailAddress",
    "personalName",
];

/// Reads one entry: an object with exactly the keys of one entry kind (tried in the original's
/// order), strings where strings belong, and `type`, when given, one of the known types. Like
/// the original, the kind follows from the keys; `type` is only checked to be a known one.
fn parse_responsible(entry: &Value) -> Option<Responsible> {
    let object = entry.as_object()?;
    if let Some(kind) = object.get("type") {
        if !kind
            .as_str()
            .is_some_and(|kind| RESPONSIBLE_TYPES.contains(&kind))
        {
            return None;
        }
    }
    let keys: Vec<&str> = object
        .keys()
        .map(String::as_str)
        .filter(|key| *key != "type")
        .collect();
    let text = |key: &str| object.get(key).and_then(Value::as_str).map(str::to_string);
    let only = |required: &[&str], optional: &[&str]| {
        required.iter().all(|key| keys.contains(key))
            && keys
                .iter()
                .all(|key| required.contains(key) || optional.contains(key))
            && keys.iter().all(|key| object[*key].is_string())
    };
    if only(&[], &[]) {
        Some(Responsible::Codeowners)
    } else if only(&["email"], &[]) {
        text("email").map(Responsible::Email)
    } else if only(&["teamname"], &["github_hostname"]) {
        Some(Responsible::GithubTeam)
    } else if only(&["username"], &["github_hostname"]) {
        Some(Responsible::GithubUser {
            username: text("username")?,
            hostname: text("github_hostname"),
        })
    } else if only(&["firstName", "lastName"], &[]) {
        Some(Responsible::PersonalName {
            first_name: text("firstName")?,
            last_name: text("lastName")?,
        })
    } else {
        None
    }
}

/// The label's entries, or `None` when any of them (or the value itself) is malformed.
fn parse_label(label: &Label) -> Option<Vec<Responsible>> {
    label
        .value
        .as_array()?
        .iter()
        .map(parse_responsible)
        .collect()
}

fn responsibles_label(labels: &[Label]) -> Option<&Label> {
    labels.iter().find(|label| label.name == RESPONSIBLES_LABEL)
}

/// The main source: the one classified `main`, else the first.
fn main_source(component: &Component) -> Option<&Artefact> {
    component
        .sources
        .iter()
        .find(|source| {
            source.labels.iter().any(|label| {
                label.name == SOURCE_CLASSIFICATION_LABEL
                    && label.value.get("repository-classification") == Some(&json!("main"))
            })
        })
        .or_else(|| component.sources.first())
}

/// The main source's repository URL (`github.com/org/repo`, maybe with a scheme), as written.
pub fn main_source_repo_url(component: &Component) -> Option<&str> {
    main_source(component)?.access.get("repoUrl")?.as_str()
}

/// The host of the main source's repository URL (`github.com/org/repo` or with a scheme): the
/// GitHub of a `githubUser` entry that names none.
fn source_hostname(component: &Component) -> Option<String> {
    let repo_url = main_source_repo_url(component)?;
    let without_scheme = repo_url
        .split_once("://")
        .map_or(repo_url, |(_, rest)| rest);
    let host = without_scheme.split('/').next()?.trim();
    (!host.is_empty()).then(|| host.to_ascii_lowercase())
}

/// The answer's JSON for a component version and, optionally, one of its artefacts (a
/// resource or source by name, whose label takes precedence over the component's).
pub fn responsibles_json(
    fetched: &FetchedDescriptor,
    artefact_name: Option<&str>,
) -> Result<Vec<u8>, ComponentError> {
    let component = &fetched.descriptor.component;
    let mut label = None;
    if let Some(artefact_name) = artefact_name {
        let mut matching = component
            .resources
            .iter()
            .chain(component.sources.iter())
            .filter(|artefact| artefact.name == artefact_name)
            .peekable();
        if matching.peek().is_none() {
            return Err(ComponentError::ArtefactNotFound {
                name: component.name.clone(),
                version: component.version.clone(),
                artefact: artefact_name.to_string(),
            });
        }
        label = matching.find_map(|artefact| responsibles_label(&artefact.labels));
    }
    let label = label.or_else(|| responsibles_label(&component.labels));

    let mut statuses: Vec<Value> = Vec::new();
    let entries = match label.map(parse_label) {
        None => Vec::new(),
        Some(Some(entries)) => entries,
        Some(None) => {
            statuses.push(json!({"type": "error", "msg": MALFORMED_LABEL_STATUS}));
            Vec::new()
        }
    };
    let origin = json!({
        "source": format!("{}:{}", component.name, component.version),
        "type": "metaOrigin",
        "origin_type": "component_descriptor",
    });
    let identifier = |fields: Value| -> Value {
        let mut object = Map::new();
        object.insert("source".into(), json!("ComponentDescriptor"));
        if let Value::Object(fields) = fields {
            object.extend(fields);
        }
        json!([Value::Object(object), origin.clone()])
    };
    let responsibles: Vec<Value> = entries
        .into_iter()
        .filter_map(|entry| match entry {
            // Both need GitHub; the original skips them when it has none.
            Responsible::Codeowners | Responsible::GithubTeam => None,
            Responsible::Email(email) => Some(identifier(json!({
                "type": "emailAddress",
                "email": email,
            }))),
            Responsible::GithubUser { username, hostname } => Some(identifier(json!({
                "type": "githubUser",
                "username": username,
                "github_hostname": hostname.or_else(|| source_hostname(component)),
            }))),
            Responsible::PersonalName {
                first_name,
                last_name,
            } => Some(identifier(json!({
                "type": "personalName",
                "first_name": first_name,
                "last_name": last_name,
            }))),
        })
        .collect();
    serde_json::to_vec(&json!({"responsibles": responsibles, "statuses": statuses}))
        .map_err(|error| ComponentError::Task(format!("serialising the answer failed: {error}")))
}

impl ComponentService {
    /// `/ocm/component/responsibles` of a pinned version, cached per (repository, component
    /// version, artefact) and scoped to the component version.
    pub async fn responsibles_answer(
        &self,
        component: &ComponentId,
        preferred: Option<&RepositoryChoice>,
        artefact_name: Option<&str>,
        ignore_lookup: bool,
    ) -> Result<Arc<RenderedAnswer>, ComponentError> {
        if ignore_lookup && preferred.and_then(RepositoryChoice::repository).is_none() {
            return Err(ComponentError::InvalidInput(
                IGNORE_LOOKUP_NEEDS_REPOSITORY.into(),
            ));
        }
        let render = {
            let service = self.clone();
            let (component, preferred) = (component.clone(), preferred.cloned());
            let artefact_name = artefact_name.map(str::to_string);
            move || async move {
                service
                    .render_responsibles(
                        &component,
                        preferred.as_ref(),
                        artefact_name.as_deref(),
                        ignore_lookup,
                    )
                    .await
            }
        };
        let Some(cache) = self.cache() else {
            return render().await.map(Arc::new);
        };
        let preferred_text = preferred.map(ToString::to_string).unwrap_or_default();
        let key = CacheKey::new(
            kind(KIND_RESPONSIBLES),
            &[
                &preferred_text,
                &component.name.to_lowercase(),
                &component.version,
                // A leading marker keeps "no artefact" apart from an artefact named "".
                &artefact_name.map_or_else(String::new, |name| format!("={name}")),
                if ignore_lookup { "only" } else { "lookup" },
            ],
            Scope::component_version(&component.name, &component.version),
        );
        cache.get_or_load(&key, current_cache_mode(), render).await
    }

    #[tracing::instrument(level = "info", skip_all, fields(component = %component, artefact = artefact_name.unwrap_or("")))]
    async fn render_responsibles(
        &self,
        component: &ComponentId,
        preferred: Option<&RepositoryChoice>,
        artefact_name: Option<&str>,
        ignore_lookup: bool,
    ) -> Result<RenderedAnswer, ComponentError> {
        let fetched = self
            .descriptor_looked_up(component, preferred, ignore_lookup)
            .await?;
        // A label is a few entries: rendering takes microseconds, inline.
        responsibles_json(&fetched, artefact_name).map(RenderedAnswer::new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fetched(component_labels: Value, resource_labels: Value) -> FetchedDescriptor {
        let descriptor = serde_json::from_value(json!({
            "meta": {"schemaVersion": "v2"},
            "component": {
                "name": "acme.org/a", "version": "1.0.0", "provider": "p", "repositoryContexts": [],
                "labels": component_labels,
                "sources": [{"name": "a", "type": "git", "labels": [],
                             "access": {"type": "github", "repoUrl": "github.example.com/acme/a"}}],
                "resources": [{"name": "image", "type": "ociImage", "labels": resource_labels, "access": {}}],
                "componentReferences": [],
            },
        }))
        .unwrap();
        FetchedDescriptor {
            descriptor,
            document: String::new(),
            repository: "registry.example.com/ocm".parse().unwrap(),
        }
    }

    fn answer(fetched: &FetchedDescriptor, artefact: Option<&str>) -> Value {
        serde_json::from_slice(&responsibles_json(fetched, artefact).unwrap()).unwrap()
    }

    #[test]
    fn label_entries_become_identities_with_their_origin() {
        let label = json!([{
            "name": RESPONSIBLES_LABEL,
            "value": [
                {"type": "githubUser", "username": "alice"},
                {"type": "githubUser", "username": "bob", "github_hostname": "github.com"},
                {"type": "emailAddress", "email": "carol@acme.org"},
                {"type": "personalName", "firstName": "Dan", "lastName": "Doe"},
                {"type": "githubTeam", "teamname": "acme/owners"},
                {"type": "codeowners"},
            ],
        }]);
        let body = answer(&fetched(label, json!([])), None);
        let origin = json!({"source": "acme.org/a:1.0.0", "type": "metaOrigin", "origin_type": "component_descriptor"});
        assert_eq!(
            body,
            json!({
                "responsibles": [
                    [{"source": "ComponentDescriptor", "type": "githubUser", "username": "alice", "github_hostname": "github.example.com"}, origin],
                    [{"source": "ComponentDescriptor", "type": "githubUser", "username": "bob", "github_hostname": "github.com"}, origin],
                    [{"source": "ComponentDescriptor", "type": "emailAddress", "email": "carol@acme.org"}, origin],
                    [{"source": "ComponentDescriptor", "type": "personalName", "first_name": "Dan", "last_name": "Doe"}, origin],
                ],
                "statuses": [],
            })
        );
    }

    #[test]
    fn an_artefact_label_wins_and_an_unknown_artefact_is_not_found() {
        let component_label =
            json!([{"name": RESPONSIBLES_LABEL, "value": [{"email": "team@acme.org"}]}]);
        let resource_label =
            json!([{"name": RESPONSIBLES_LABEL, "value": [{"email": "image@acme.org"}]}]);
        let with_both = fetched(component_label.clone(), resource_label);
        assert_eq!(
            answer(&with_both, Some("image"))["responsibles"][0][0]["email"],
            "image@acme.org"
        );
        assert_eq!(
            answer(&with_both, None)["responsibles"][0][0]["email"],
            "team@acme.org"
        );
        // An artefact without a label falls back to the component's.
        let component_only = fetched(component_label, json!([]));
        assert_eq!(
            answer(&component_only, Some("a"))["responsibles"][0][0]["email"],
            "team@acme.org"
        );
        assert!(matches!(
            responsibles_json(&component_only, Some("nope")),
            Err(ComponentError::ArtefactNotFound { .. })
        ));
    }

    #[test]
    fn no_label_is_an_empty_list_and_a_malformed_one_a_status() {
        assert_eq!(
            answer(&fetched(json!([]), json!([])), None),
            json!({"responsibles": [], "statuses": []})
        );
        for value in [
            json!("alice"),
            json!([{"username": 7}]),
            json!([{"type": "robot", "username": "r2"}]),
            json!([{"username": "alice", "unexpected": "x"}]),
            json!([{"email": "ok@acme.org"}, {"firstName": "only"}]),
        ] {
            let labels = json!([{"name": RESPONSIBLES_LABEL, "value": value}]);
            assert_eq!(
                answer(&fetched(labels, json!([])), None),
                json!({"responsibles": [], "statuses": [{"type": "error", "msg": MALFORMED_LABEL_STATUS}]}),
                "{value}"
            );
        }
    }
}
