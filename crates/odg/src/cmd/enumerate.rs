//! `odg enumerate`: the artefact enumerator's load against a running service (versions, trees,
//! descriptors and, unless `--no-metadata`, the artefact metadata), with a summary; exits
//! non-zero when any request failed.

use anyhow::bail;
use odg_extensions::{ClientOptions, EnumerateOptions, ServiceClient};

use crate::extension_config::{self, EnumerateArgs, SummaryFormat};

pub async fn run(args: EnumerateArgs) -> anyhow::Result<()> {
    let settings = extension_config::resolve(args.targets, 8)?;
    if settings.targets.is_empty() {
        bail!("no components: give --component or a --config file with components");
    }
    let client = ServiceClient::new(
        &settings.url,
        ClientOptions {
            bearer_token: settings.token.clone(),
            ..ClientOptions::default()
        },
    )?;
    let report = odg_extensions::enumerate(
        &client,
        &settings.targets,
        &EnumerateOptions {
            concurrency: settings.concurrency,
            max_start_jitter: settings.max_start_jitter,
            metrics_urls: settings.metrics_urls,
            metadata: !args.no_metadata,
            ..EnumerateOptions::default()
        },
    )
    .await;
    match settings.summary {
        SummaryFormat::Text => print!("{}", report.render_text()),
        SummaryFormat::Json => println!("{}", serde_json::to_string_pretty(&report)?),
    }
    if !report.summary.ok {
        bail!(
            "enumerate failed: {} of {} requests failed",
            report.summary.failures_total,
            report.summary.requests.total
        );
    }
    Ok(())
}
