//! `odg cache advise`: reads the miss-ratio curves of one or more pods
//! (`GET /cache/miss-ratio-curves`), merges them per tier and kind, and prints each curve as a
//! terminal chart with a recommendation: the smallest bound reaching the target hit ratio, or
//! the curve's knee; the origin requests per second it would save against the bound configured
//! now; and the chart values to set. `--json` prints the same as JSON, `--svg` draws the curves.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use anyhow::{bail, Context};
use odg_mrc::{advise, Curve};
use serde_json::{json, Value};

use crate::cli::AdviseArgs;

const MIB: f64 = (1u64 << 20) as f64;

/// One tier's curve over all pods.
struct TierCurves {
    bound_bytes: Option<u64>,
    /// By kind; `all` first in the output.
    kinds: BTreeMap<String, Curve>,
}

struct Fleet {
    tiers: BTreeMap<String, TierCurves>,
    /// Each pod's uptime in seconds (from its process start time), for rates.
    seconds_up: Vec<f64>,
}

async fn fetch(client: &reqwest::Client, base: &str) -> anyhow::Result<(Value, f64)> {
    let base = base.trim_end_matches('/');
    let url = format!("{base}/cache/miss-ratio-curves");
    let response = client
        .get(&url)
        .send()
        .await
        .with_context(|| format!("GET {url}"))?;
    let status = response.status();
    if !status.is_success() {
        bail!(
            "{url} answered {status}: {}",
            response.text().await.unwrap_or_default()
        );
    }
    let curves: Value = response
        .json()
        .await
        .with_context(|| format!("{url}: JSON"))?;
    // uptime from the process collector's start time, for rates
    let metrics = client
        .get(format!("{base}/metrics"))
        .send()
        .await
        .with_context(|| format!("GET {base}/metrics"))?
        .text()
        .await?;
    let started = metrics
        .lines()
        .find(|line| line.starts_with("process_start_time_seconds "))
        .and_then(|line| line.split_whitespace().nth(1))
        .and_then(|value| value.parse::<f64>().ok());
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_secs_f64())
        .unwrap_or(0.0);
    let up = started.map_or(0.0, |started| (now - started).max(1.0));
    Ok((curves, up))
}

fn merge(fleet: &mut Fleet, pod: &Value) -> anyhow::Result<()> {
    let tiers = pod["tiers"].as_array().context("no tiers in the answer")?;
    for tier in tiers {
        let name = tier["tier"].as_str().context("a tier without a name")?;
        let entry = fleet
            .tiers
            .entry(name.to_string())
            .or_insert_with(|| TierCurves {
                bound_bytes: None,
                kinds: BTreeMap::new(),
            });
        if let Some(bound) = tier["bound_bytes"].as_u64() {
            entry.bound_bytes = Some(entry.bound_bytes.map_or(bound, |seen| seen.max(bound)));
        }
        for kind in tier["kinds"].as_array().into_iter().flatten() {
            let kind_name = kind["kind"].as_str().context("a curve without a kind")?;
            let curve: Curve = serde_json::from_value(kind["curve"].clone())
                .with_context(|| format!("the {name}/{kind_name} curve"))?;
            entry
                .kinds
                .entry(kind_name.to_string())
                .and_modify(|merged| merged.merge(&curve))
                .or_insert(curve);
        }
    }
    Ok(())
}

/// A terminal chart of the hit ratio over the size (log scale), `width` x `height` characters.
fn terminal_chart(curve: &Curve, bound: Option<u64>) -> String {
    let (width, height) = (60usize, 10usize);
    let points = curve.points();
    let (Some(first), Some(last)) = (points.first(), points.last()) else {
        return "  (no lookups yet)\n".into();
    };
    let low = first.0.max(1024.0).log2();
    let high = last
        .0
        .max(bound.unwrap_or(0) as f64 * 2.0)
        .log2()
        .max(low + 1.0);
    let mut rows = vec![vec![' '; width]; height];
    let curve_rows: Vec<usize> = (0..width)
        .map(|column| {
            let bytes = (low + (high - low) * column as f64 / (width - 1) as f64).exp2();
            let miss = curve.miss_ratio_at(bytes).unwrap_or(1.0);
            ((miss * (height - 1) as f64).round() as usize).min(height - 1)
        })
        .collect();
    for (column, row) in curve_rows.into_iter().enumerate() {
        rows[row][column] = '*';
    }
    if let Some(bound) = bound {
        let column = (((bound as f64).log2() - low) / (high - low) * (width - 1) as f64).round();
        if (0.0..width as f64).contains(&column) {
            for row in rows.iter_mut() {
                if row[column as usize] == ' ' {
                    row[column as usize] = '|';
                }
            }
        }
    }
    let mut out = String::new();
    for (index, row) in rows.iter().enumerate() {
        let label = 100 - index * 100 / (height - 1);
        let _ = writeln!(out, "  {label:>3} % |{}", row.iter().collect::<String>());
    }
    let _ = writeln!(
        out,
        "        +{}\n         {:<30}{:>30}  (hit ratio over size; | = bound now)",
        "-".repeat(width),
        human(low.exp2()),
        human(high.exp2())
    );
    out
}

fn human(bytes: f64) -> String {
    if bytes >= 1024.0 * MIB {
        format!("{:.1} GiB", bytes / (1024.0 * MIB))
    } else if bytes >= MIB {
        format!("{:.1} MiB", bytes / MIB)
    } else {
        format!("{:.0} KiB", bytes / 1024.0)
    }
}

fn values_line(tier: &str, mib: u64) -> String {
    match tier {
        "memory" => format!("cache:\n  memoryMiB: {mib}"),
        "disk" => format!("cache:\n  diskMiB: {mib}"),
        // the chart does not size Redis; the cache manager can prune it to a budget
        _ => format!("# Redis maxmemory >= {mib}mb, and\nextensions:\n  cacheManager:\n    pruneBudgetMiB: {mib}"),
    }
}

fn svg(fleet: &Fleet) -> String {
    let (width, height, left, bottom, top, right) = (760.0, 360.0, 60.0, 310.0, 40.0, 740.0);
    let curves: Vec<(String, &Curve)> = fleet
        .tiers
        .iter()
        .filter_map(|(tier, curves)| Some((tier.clone(), curves.kinds.get("all")?)))
        .collect();
    let high = curves
        .iter()
        .filter_map(|(_, curve)| curve.points().last().map(|point| point.0))
        .fold(2.0 * MIB, f64::max)
        .log2();
    let low = 10.0f64;
    let x = |bytes: f64| left + (bytes.log2() - low) / (high - low) * (right - left);
    let y = |hit: f64| bottom - hit * (bottom - top);
    let mut out = String::new();
    let _ = write!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="11"><text x="{left}" y="20" font-size="14">predicted hit ratio over cache size (all kinds)</text><line x1="{left}" y1="{bottom}" x2="{right}" y2="{bottom}" stroke="black"/><line x1="{left}" y1="{top}" x2="{left}" y2="{bottom}" stroke="black"/><text x="5" y="{top}">100 %</text><text x="5" y="{bottom}">0 %</text><text x="{left}" y="{}">1 KiB</text><text x="{}" y="{}">{}</text>"#,
        bottom + 15.0,
        right - 60.0,
        bottom + 15.0,
        human(high.exp2())
    );
    let colors = ["#4c78a8", "#f58518", "#e45756"];
    for (index, (tier, curve)) in curves.iter().enumerate() {
        let color = colors[index % colors.len()];
        let points: Vec<String> = (0..=200)
            .filter_map(|step| {
                let bytes = (low + (high - low) * step as f64 / 200.0).exp2();
                let hit = 1.0 - curve.miss_ratio_at(bytes)?;
                Some(format!("{:.1},{:.1}", x(bytes), y(hit)))
            })
            .collect();
        let _ = write!(
            out,
            r#"<polyline fill="none" stroke="{color}" stroke-width="1.5" points="{}"/><text x="{}" y="{}" fill="{color}">{tier}</text>"#,
            points.join(" "),
            right - 80.0,
            top + 14.0 * (index as f64 + 1.0)
        );
    }
    out.push_str("</svg>");
    out
}

pub async fn advise_command(args: AdviseArgs) -> anyhow::Result<()> {
    if !(0.0..=1.0).contains(&args.target) {
        bail!(
            "--target is a hit ratio between 0 and 1, got {}",
            args.target
        );
    }
    let client = reqwest::Client::new();
    let mut fleet = Fleet {
        tiers: BTreeMap::new(),
        seconds_up: Vec::new(),
    };
    for url in &args.url {
        let (pod, up) = fetch(&client, url).await?;
        merge(&mut fleet, &pod)?;
        fleet.seconds_up.push(up);
    }
    // lookups per second of the fleet: each pod's references over its uptime, summed; the
    // merged reference count over the mean uptime is the same figure
    let mean_up = fleet.seconds_up.iter().sum::<f64>() / fleet.seconds_up.len().max(1) as f64;
    let mut report = Vec::new();
    let mut text = String::new();
    for (tier, curves) in &fleet.tiers {
        let mut kinds: Vec<(&String, &Curve)> = curves.kinds.iter().collect();
        kinds.sort_by_key(|(kind, _)| *kind != "all");
        for (kind, curve) in kinds {
            let Some(advice) = advise(curve, args.target) else {
                if curve.references > 0.0 {
                    let _ = writeln!(
                        text,
                        "== {tier} tier, {kind}: {:.0} lookups, none of a key seen before: no advice yet\n",
                        curve.references
                    );
                }
                continue;
            };
            let rate = if mean_up > 0.0 {
                curve.references / mean_up
            } else {
                0.0
            };
            let now_miss = curves
                .bound_bytes
                .and_then(|bound| curve.miss_ratio_at(bound as f64));
            let then_miss = 1.0 - advice.predicted_hit_ratio;
            // requests that reach the next tier (or the origin) less per second
            let saved = now_miss.map(|now| (now - then_miss) * rate);
            report.push(json!({
                "tier": tier,
                "kind": kind,
                "bound_bytes": curves.bound_bytes,
                "lookups": curve.references,
                "lookups_per_second": rate,
                "predicted_hit_ratio_now": now_miss.map(|miss| 1.0 - miss),
                "recommended_mib": advice.recommended_mib,
                "reaches_target": advice.reaches_target,
                "predicted_hit_ratio": advice.predicted_hit_ratio,
                "best_hit_ratio": advice.best_hit_ratio,
                "misses_saved_per_second": saved,
                "working_set_bytes": curve.working_set_bytes,
                "sampled_lookups": curve.sampled_references,
                "model": curve.model(),
            }));
            let _ = writeln!(
                text,
                "== {tier} tier, {kind}: {:.0} lookups over {} pod(s), {} sampled, working set {}, {}",
                curve.references,
                args.url.len(),
                curve.sampled_references,
                human(curve.working_set_bytes),
                match curve.model() {
                    "simulated" => "simulated (quick_cache at 0.25x..8x of the bound)",
                    _ => "LRU model",
                }
            );
            text.push_str(&terminal_chart(curve, curves.bound_bytes));
            let reason = if advice.reaches_target {
                format!(
                    "the smallest bound with a hit ratio of {:.0} %",
                    args.target * 100.0
                )
            } else {
                format!(
                    "the knee of the curve ({:.0} % is not reachable: at most {:.1} %)",
                    args.target * 100.0,
                    advice.best_hit_ratio * 100.0
                )
            };
            let _ = writeln!(
                text,
                "  recommended: {} MiB, {reason}; predicted hit ratio {:.1} %{}",
                advice.recommended_mib,
                advice.predicted_hit_ratio * 100.0,
                match (now_miss, saved) {
                    (Some(now), Some(saved)) => format!(
                        " (predicted now: {:.1} % at {}; {saved:+.2} misses per second fewer to the tier below)",
                        (1.0 - now) * 100.0,
                        human(curves.bound_bytes.unwrap_or(0) as f64)
                    ),
                    _ => String::new(),
                }
            );
            if kind == "all" {
                let _ = writeln!(
                    text,
                    "  values:\n    {}\n",
                    values_line(tier, advice.recommended_mib).replace('\n', "\n    ")
                );
            } else {
                text.push('\n');
            }
        }
    }
    if let Some(path) = &args.svg {
        std::fs::write(path, svg(&fleet)).with_context(|| format!("writing {}", path.display()))?;
    }
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({"advice": report}))?
        );
    } else {
        print!("{text}");
    }
    Ok(())
}
