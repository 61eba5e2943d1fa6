//! The `odg` binary: parses the command line, sets up logging, dispatches to a subcommand.

// Production code neither unwraps nor expects: failures become errors, and the few invariants
// that cannot fail are marked where they are, each with its reason (checked by the tidy test).
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

mod allocator;
mod byte_size;
mod cli;
mod cmd;
mod config;
mod demo_repository;
mod extension_config;

use clap::Parser;

use crate::cli::{CacheCommand, Cli, Command, DbCommand, LogFormat};

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    init_tracing(cli.log_format);
    allocator::configure(cli.allocator_mode);
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    runtime.enable_all();
    if let Some(keep_alive) = allocator::blocking_thread_keep_alive(cli.allocator_mode) {
        runtime.thread_keep_alive(keep_alive);
    }
    let runtime = runtime.build()?;
    runtime.block_on(async move {
        match cli.command {
            Command::Serve(args) => cmd::serve::run(*args).await,
            Command::Push(args) => cmd::push::run(args).await,
            Command::Cache(CacheCommand::Invalidate(args)) => cmd::cache::invalidate(args).await,
            Command::Cache(CacheCommand::Advise(args)) => {
                cmd::cache_advise::advise_command(args).await
            }
            Command::Enumerate(args) => cmd::enumerate::run(args).await,
            Command::CacheManager(args) => cmd::cache_manager::run(args).await,
            Command::Db(DbCommand::Check(args)) => cmd::db::check(args).await,
            Command::Db(DbCommand::Migrate(args)) => cmd::db::migrate(args).await,
        }
    })
}

fn init_tracing(format: LogFormat) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("ODG_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    // Colour only on a terminal, and not there either with `NO_COLOR` set (no-color.org): a
    // pod's stderr goes to a log collector, where escape codes are noise, and painting every
    // span field costs thousands of instructions per request.
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|value| !value.is_empty());
    let colour = std::io::IsTerminal::is_terminal(&std::io::stderr()) && !no_color;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(colour)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}
