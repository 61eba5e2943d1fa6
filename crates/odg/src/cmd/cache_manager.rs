//! `odg cache-manager`: prefills configured components through the service, then prunes the
//! shared tier (Redis) to a byte budget by the score `odg_cache::prune` documents. Exits
//! non-zero when a prefill request or the pruning failed.

use anyhow::{bail, Context};
use odg_cache::prune::{PruneConfig, PruneReport};
use odg_extensions::{ClientOptions, PrefillOptions, PrefillReport, ServiceClient};
use serde::Serialize;

use crate::extension_config::{self, CacheManagerArgs, SummaryFormat};

#[derive(Serialize)]
struct CacheManagerReport {
    command: &'static str,
    prefill: Option<PrefillReport>,
    prune: Option<PruneReport>,
}

pub async fn run(args: CacheManagerArgs) -> anyhow::Result<()> {
    let settings = extension_config::resolve(args.targets, 4)?;
    let budget = args
        .prune_budget
        .or(settings.prune.budget)
        .map(|size| size.0);
    let redis_url = args.redis_url.filter(|url| !url.trim().is_empty());
    if budget.is_some() && redis_url.is_none() {
        bail!("pruning needs the shared tier's URL: --redis-url or ODG_REDIS_URL");
    }
    let prefill_wanted = !args.no_prefill && !settings.targets.is_empty();
    if !prefill_wanted && budget.is_none() {
        bail!("nothing to do: configure components to prefill or a prune budget");
    }

    let prefill = if prefill_wanted {
        let client = ServiceClient::new(
            &settings.url,
            ClientOptions {
                bearer_token: settings.token.clone(),
                ..ClientOptions::default()
            },
        )?;
        Some(
            odg_extensions::prefill(
                &client,
                &settings.targets,
                &PrefillOptions {
                    concurrency: settings.concurrency,
                    max_start_jitter: settings.max_start_jitter,
                    metrics_urls: settings.metrics_urls.clone(),
                },
            )
            .await,
        )
    } else {
        None
    };

    let prune = match (budget, redis_url) {
        (Some(budget), Some(url)) => {
            let mut config = PruneConfig::new(url, args.redis_key_prefix.clone(), budget);
            config.weights = extension_config::score_weights(&settings.prune);
            config.dry_run = args.dry_run;
            Some(
                odg_cache::prune::prune(&config)
                    .await
                    .context("pruning the shared cache tier")?,
            )
        }
        _ => None,
    };

    let report = CacheManagerReport {
        command: "cache-manager",
        prefill,
        prune,
    };
    match settings.summary {
        SummaryFormat::Text => {
            if let Some(prefill) = &report.prefill {
                print!("{}", prefill.render_text());
            }
            if let Some(prune) = &report.prune {
                print!("{}", render_prune(prune));
            }
        }
        SummaryFormat::Json => println!("{}", serde_json::to_string_pretty(&report)?),
    }
    if let Some(prefill) = &report.prefill {
        if !prefill.summary.ok {
            bail!(
                "prefill failed: {} of {} requests failed",
                prefill.summary.failures_total,
                prefill.summary.requests.total
            );
        }
    }
    Ok(())
}

fn render_prune(report: &PruneReport) -> String {
    let yes_no = |flag: bool| if flag { "yes" } else { "no" };
    let mut text = format!(
        "prune{}: {} entries, {} bytes scanned; {} deleted ({} invalidated, {} expired, {} unreadable, {} for the budget), {} bytes freed; {} entries, {} bytes left of a {} byte budget\n",
        if report.dry_run { " (dry run)" } else { "" },
        report.entries_scanned,
        report.bytes_scanned,
        report.deleted(),
        report.deleted_invalidated,
        report.deleted_expired,
        report.deleted_unreadable,
        report.deleted_for_budget,
        report.bytes_deleted,
        report.entries_after,
        report.bytes_after,
        report.budget_bytes,
    );
    text.push_str(&format!(
        "prune signals: idle time {}, hit counter {}, touch-free reads {}, generations {}\n",
        yes_no(report.signals.idle_time),
        yes_no(report.signals.hit_counter),
        yes_no(report.signals.touch_free),
        yes_no(report.signals.generations),
    ));
    for (kind, totals) in &report.by_kind {
        text.push_str(&format!(
            "prune {kind}: {} entries, {} bytes; {} deleted, {} bytes\n",
            totals.entries, totals.bytes, totals.deleted, totals.bytes_deleted
        ));
    }
    text
}
