//! Upgrade pull requests (`GET /components/upgrade-prs`, the dashboard's Component Diff tab):
//! the pull requests of a component's source repository whose titles name a component upgrade
//! (`[ci:component:<name>:<from>-><to>]`, the title OCM's upgrade automation gives them), read
//! from the GitHub the repository's host is configured for.
//!
//! As in the original, the feature is switched on by configuration (`upgrade_prs:`), and a
//! repository whose host has no GitHub configured has no upgrade pull requests (`[]`): the
//! dashboard then still offers its diff of any two versions (`POST /components/diff`).

use std::time::Duration;

use serde::Deserialize;
use serde_json::{json, Value};

/// The newest pull requests read per request (one page of GitHub's list).
pub const MAX_PULL_REQUESTS: usize = 100;

/// One GitHub that serves repositories of `host`, with a token that may read their pull requests.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GithubRepositoryAccess {
    /// The repository URLs' host (`github.com`, `github.corp.example`).
    pub host: String,
    /// `https://api.github.com`, or a GitHub Enterprise's `https://<host>/api/v3`.
    pub api_url: String,
    /// Read from the configuration's `token` or `token_file`; never logged.
    #[serde(skip)]
    pub token: String,
}

impl std::fmt::Debug for GithubRepositoryAccess {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("GithubRepositoryAccess")
            .field("host", &self.host)
            .field("api_url", &self.api_url)
            .finish_non_exhaustive()
    }
}

/// The configured GitHubs and an HTTP client for them.
#[derive(Debug, Clone)]
pub struct UpgradePullRequests {
    githubs: Vec<GithubRepositoryAccess>,
    http: reqwest::Client,
}

/// `(host, owner, repository)` of a repository URL (`github.com/org/repo`, with or without a
/// scheme, maybe ending in `.git`).
pub fn repository_of(repo_url: &str) -> Option<(String, String, String)> {
    let without_scheme = repo_url
        .split_once("://")
        .map_or(repo_url, |(_, rest)| rest);
    let mut parts = without_scheme.trim_end_matches('/').split('/');
    let host = parts.next()?.trim().to_ascii_lowercase();
    let owner = parts.next()?.to_string();
    let repository = parts.next()?.trim_end_matches(".git").to_string();
    (!host.is_empty() && !owner.is_empty() && !repository.is_empty() && parts.next().is_none())
        .then_some((host, owner, repository))
}

/// `[ci:component:<name>:<from>-><to>]` at the start of a title: `(name, from, to)`.
pub fn upgrade_vector(title: &str) -> Option<(String, String, String)> {
    let inner = title.trim_start().strip_prefix("[ci:component:")?;
    let (inner, _) = inner.split_once(']')?;
    let (name, versions) = inner.split_once(':')?;
    let (from, to) = versions.split_once("->")?;
    (!name.is_empty() && !from.is_empty() && !to.is_empty())
        .then(|| (name.to_string(), from.to_string(), to.to_string()))
}

impl UpgradePullRequests {
    pub fn new(githubs: Vec<GithubRepositoryAccess>) -> UpgradePullRequests {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(20))
            .user_agent("odg")
            .build()
            .unwrap_or_default();
        UpgradePullRequests { githubs, http }
    }

    /// The upgrade pull requests of the repository in the original's shape (`from`, `to`, `pr`),
    /// `state` `open`, `closed` or `all`; an error names what failed (without the token). `[]`
    /// for a repository whose host has no GitHub here
    /// or that is no `host/owner/repo` URL (the original's answer without a GitHub config).
    pub async fn of_repository(&self, repo_url: &str, state: &str) -> Result<Vec<Value>, String> {
        let Some((host, owner, repository)) = repository_of(repo_url) else {
            return Ok(Vec::new());
        };
        let Some(github) = self
            .githubs
            .iter()
            .find(|github| github.host.eq_ignore_ascii_case(&host))
        else {
            tracing::debug!(host, "no GitHub configured for the repository's host");
            return Ok(Vec::new());
        };
        let url = format!(
            "{}/repos/{owner}/{repository}/pulls?state={state}&per_page={MAX_PULL_REQUESTS}",
            github.api_url.trim_end_matches('/')
        );
        let response = self
            .http
            .get(&url)
            .header(
                reqwest::header::AUTHORIZATION,
                format!("token {}", github.token),
            )
            .header(reqwest::header::ACCEPT, "application/vnd.github+json")
            .send()
            .await
            .map_err(|error| format!("GitHub at {} is unreachable: {error}", github.host))?;
        let status = response.status();
        if status == reqwest::StatusCode::NOT_FOUND {
            // an unknown repository (or one the token may not see): none
            return Ok(Vec::new());
        }
        if !status.is_success() {
            return Err(format!(
                "GitHub at {} answered {status} to the pull request list",
                github.host
            ));
        }
        let pulls: Vec<Value> = response.json().await.map_err(|_| {
            format!(
                "GitHub at {} answered no JSON list of pull requests",
                github.host
            )
        })?;
        Ok(pulls
            .iter()
            .filter_map(|pull| {
                let title = pull.get("title")?.as_str()?;
                let (name, from, to) = upgrade_vector(title)?;
                Some(json!({
                    "from": {"name": name, "version": from},
                    "to": {"name": name, "version": to},
                    "pr": {
                        "title": title,
                        "url": pull.get("url"),
                        "html_url": pull.get("html_url"),
                        "number": pull.get("number"),
                    },
                }))
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn titles_and_repository_urls_are_read_as_the_upgrade_automation_writes_them() {
        assert_eq!(
            upgrade_vector("[ci:component:acme.org/lib/grpc:1.1.0->1.2.0] bump"),
            Some(("acme.org/lib/grpc".into(), "1.1.0".into(), "1.2.0".into()))
        );
        assert_eq!(upgrade_vector("bump grpc to 1.2.0"), None);
        assert_eq!(upgrade_vector("[ci:resource:x:1->2]"), None);
        assert_eq!(
            repository_of("https://github.com/acme/shop.git"),
            Some(("github.com".into(), "acme".into(), "shop".into()))
        );
        assert_eq!(
            repository_of("GitHub.com/acme/shop"),
            Some(("github.com".into(), "acme".into(), "shop".into()))
        );
        assert_eq!(repository_of("acme.org/shop/checkout/extra"), None);
        assert_eq!(repository_of("acme.org"), None);
    }
}
