//! `odg db check` and `odg db migrate`: whether odg can run on a delivery DB (the original's or
//! its own), and applying odg's migrations to it.

use anyhow::{bail, Context};
use odg_delivery_db::{DatabaseConfig, DeliveryDb, SchemaReport};

use crate::cli::DbArgs;

pub async fn check(args: DbArgs) -> anyhow::Result<()> {
    let report = DeliveryDb::inspect(&DatabaseConfig::new(&args.database_url))
        .await
        .context("checking the delivery DB")?;
    print_report(&report, args.json)?;
    if !report.usable() {
        bail!("odg cannot run on this database (see above)");
    }
    Ok(())
}

pub async fn migrate(args: DbArgs) -> anyhow::Result<()> {
    let config = DatabaseConfig::new(&args.database_url);
    DeliveryDb::migrate(&config)
        .await
        .context("migrating the delivery DB")?;
    let report = DeliveryDb::inspect(&config)
        .await
        .context("checking the delivery DB after migrating")?;
    print_report(&report, args.json)?;
    if !report.usable() {
        bail!("odg cannot run on this database (see above)");
    }
    Ok(())
}

fn print_report(report: &SchemaReport, json: bool) -> anyhow::Result<()> {
    if json {
        let mut value = serde_json::to_value(report)?;
        if let Some(object) = value.as_object_mut() {
            object.insert("usable".into(), report.usable().into());
        }
        println!("{}", serde_json::to_string_pretty(&value)?);
    } else {
        print!("{}", human(report));
    }
    Ok(())
}

fn list(values: &[i64]) -> String {
    if values.is_empty() {
        "none".into()
    } else {
        values
            .iter()
            .map(i64::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// The report for a person.
fn human(report: &SchemaReport) -> String {
    let mut out = String::new();
    out.push_str(&format!(
        "database: {} ({})\n",
        report.database, report.backend
    ));
    out.push_str(&format!(
        "odg migrations applied: {}\n",
        list(&report.applied_migrations)
    ));
    out.push_str(&format!(
        "odg migrations pending: {}{}\n",
        list(&report.pending_migrations),
        if report.pending_migrations.is_empty() {
            ""
        } else {
            " (odg db migrate, or odg serve, applies them)"
        }
    ));
    out.push_str("tables of the original:\n");
    for table in &report.tables {
        match table.rows {
            Some(rows) if table.present => {
                out.push_str(&format!("  {:<18} present, {rows} rows\n", table.name))
            }
            _ => out.push_str(&format!(
                "  {:<18} absent (a migration creates it)\n",
                table.name
            )),
        }
        if !table.missing_columns.is_empty() {
            out.push_str(&format!(
                "    missing columns: {}\n",
                table.missing_columns.join(", ")
            ));
        }
        for difference in &table.different_types {
            out.push_str(&format!("    other type: {difference}\n"));
        }
    }
    out.push_str(&format!(
        "missing odg indexes: {}\n",
        if report.missing_indexes.is_empty() {
            "none".to_string()
        } else {
            report.missing_indexes.join(", ")
        }
    ));
    if report.usable() {
        out.push_str("usable: yes\n");
    } else {
        out.push_str("usable: no\n");
        for problem in &report.problems {
            out.push_str(&format!("  - {problem}\n"));
        }
    }
    out
}
