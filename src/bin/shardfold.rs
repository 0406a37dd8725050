//! `shardfold`: ingest NDJSON events into a stored metric, query it, inspect stored values,
//! and simulate many crashing workers against a store. See `shardfold --help`.
//!
//! A thin dispatcher: every subcommand lives in `shardfold::cli`.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Mergeable, exactly-once aggregates in any key-value store.
#[derive(Debug, Parser)]
#[command(name = "shardfold", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Fold NDJSON events into a metric (created on first use with the parameters given).
    Ingest(shardfold::cli::ingest::IngestArgs),
    /// Print a metric over a time range: JSON, a table, or OpenMetrics text.
    Query(shardfold::cli::query::QueryArgs),
    /// Decode one stored value (a file, or a key of a store) and describe it.
    Inspect(shardfold::cli::inspect::InspectArgs),
    /// Simulate many crashing workers against a store.
    Simulate(shardfold::cli::simulate::SimulateArgs),
    /// One simulated worker (started by `simulate`).
    #[command(hide = true)]
    SimulateWorker(shardfold::cli::simulate::WorkerArgs),
    /// Print the version.
    Version,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result: shardfold::cli::CliResult = runtime.block_on(async {
        match cli.command {
            Command::Ingest(args) => shardfold::cli::ingest::run(args).await,
            Command::Query(args) => shardfold::cli::query::run(args).await,
            Command::Inspect(args) => shardfold::cli::inspect::run(args).await,
            Command::Simulate(args) => shardfold::cli::simulate::run(args).await,
            Command::SimulateWorker(args) => shardfold::cli::simulate::run_worker(args).await,
            Command::Version => {
                println!("shardfold {}", env!("CARGO_PKG_VERSION"));
                Ok(ExitCode::SUCCESS)
            }
        }
    });
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
