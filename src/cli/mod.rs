//! The library side of the `shardfold` command-line tool: the default metric it keeps, and
//! one module per subcommand (each with its clap arguments and a `run` function), so the
//! binary (`src/bin/shardfold.rs`) stays a thin dispatcher and every part is testable.
//!
//! * [`metric`]: the default metric (count; exact sum, min, max, mean; distinct items;
//!   t-digest and log-histogram quantiles; per window and in total, optionally grouped) and
//!   its stored description;
//! * [`parse`]: NDJSON event lines, RFC 3339 times, duration flags;
//! * [`ingest`], [`query`] (with [`render`]: JSON, table, OpenMetrics), [`inspect`],
//!   [`simulate`]: the subcommands.
//!
//! Errors are one line on stderr and exit status 1.

pub mod duration;
pub mod ingest;
pub mod inspect;
pub mod metric;
pub mod parse;
pub mod query;
pub mod render;
pub mod simulate;

use std::process::ExitCode;

/// What a subcommand can fail with (printed as one line by the binary, exit status 1).
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// An error of the library (store, codec, parameters).
    #[error(transparent)]
    Shardfold(#[from] crate::Error),
    /// Reading input or writing output failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The arguments or the input cannot be used.
    #[error("{0}")]
    Usage(String),
}

/// What a subcommand returns: the process's exit code, or an error to print.
pub type CliResult = std::result::Result<ExitCode, CliError>;
