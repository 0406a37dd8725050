//! `shardfold simulate` (a stub: the real module comes from another branch).

use clap::Args;

use super::{CliError, CliResult};

/// Arguments of `shardfold simulate` (not built yet).
#[derive(Debug, Clone, Args)]
pub struct SimulateArgs {}

/// Arguments of the hidden `shardfold simulate-worker` (not built yet).
#[derive(Debug, Clone, Args)]
pub struct WorkerArgs {}

/// Runs `shardfold simulate` (not built yet).
///
/// # Errors
///
/// Always [`CliError::Usage`].
pub async fn run(_args: SimulateArgs) -> CliResult {
    Err(CliError::Usage("not built yet".into()))
}

/// Runs one simulated worker (not built yet).
///
/// # Errors
///
/// Always [`CliError::Usage`].
pub async fn run_worker(_args: WorkerArgs) -> CliResult {
    Err(CliError::Usage("not built yet".into()))
}
