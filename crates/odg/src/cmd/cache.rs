//! `odg cache invalidate`: asks a running service to invalidate entries in every tier of every pod.

use anyhow::{bail, Context};

use crate::cli::InvalidateArgs;

pub async fn invalidate(args: InvalidateArgs) -> anyhow::Result<()> {
    let mut query: Vec<(&str, String)> = Vec::new();
    if let Some(id) = &args.id {
        query.push(("id", id.clone()));
    }
    if let Some(name) = &args.component_name {
        query.push(("component_name", name.clone()));
    }
    if let Some(version) = &args.version {
        query.push(("version", version.clone()));
    }
    if let Some(kind) = &args.kind {
        query.push(("kind", kind.clone()));
    }
    if args.all {
        query.push(("all", "true".into()));
    }
    let url = format!("{}/cache", args.url.trim_end_matches('/'));
    let response = reqwest::Client::new()
        .delete(&url)
        .bearer_auth(&args.token)
        .query(&query)
        .send()
        .await
        .with_context(|| format!("DELETE {url}"))?;
    let status = response.status();
    let body = response.text().await.unwrap_or_default();
    if !status.is_success() {
        bail!("{url} answered {status}: {body}");
    }
    println!("{body}");
    Ok(())
}
