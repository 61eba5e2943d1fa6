//! `odg-bench`: benchmark scenarios against a real registry (Debian's docker-registry) behind a
//! latency-injecting proxy, each measured beside its baseline in the same run.

mod answer_scenarios;
mod ceiling;
mod ceiling_scenarios;
mod compliance;
mod harness;
mod load;
mod memory;
mod mrc_scenarios;
mod profiles;
mod report;
mod resolve;
mod scenarios;
mod tiers;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "odg-bench",
    about = "Benchmarks for odg against a real registry"
)]
struct Cli {
    #[command(subcommand)]
    scenario: Scenario,
}

#[derive(Debug, Subcommand)]
enum Scenario {
    /// Dependency resolution of a wide, deep tree: parallel walk vs. sequential baseline.
    Resolve(resolve::ResolveArgs),
    /// Compliance summary of a 300-component tree over 50,000 metadata rows: cold vs. cached.
    Compliance(compliance::ComplianceArgs),
    /// HTTP scenarios against real `odg serve` pods: warm and cold lookups, scan bursts, overload.
    Http(scenarios::HttpArgs),
    /// Cache hit latency per tier (memory, disk, Redis) beside the loader.
    Tiers(tiers::TiersArgs),
    /// Resident memory against the memory bound with large descriptors, loaded and idle.
    Memory(memory::MemoryArgs),
    /// Internal to the `ceiling` scenario: a bare axum server answering every request with
    /// one fixed answer.
    #[command(hide = true)]
    CeilingServer(ceiling::CeilingServerArgs),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        match cli.scenario {
            Scenario::Resolve(args) => resolve::run(args).await,
            Scenario::Compliance(args) => compliance::run(args).await,
            Scenario::Http(args) => scenarios::run(args).await,
            Scenario::Tiers(args) => tiers::run(args).await,
            Scenario::Memory(args) => memory::run(args).await,
            Scenario::CeilingServer(args) => ceiling::serve(args).await,
        }
    })
}
