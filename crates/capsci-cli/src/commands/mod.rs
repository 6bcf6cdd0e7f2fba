//! One module per verb of the command line.

pub mod artifact;
pub mod bench;
pub mod call;
pub mod catalog;
pub mod connect;
pub mod demo;
pub mod job;
pub mod log;
pub mod mcp;
pub mod perf;
pub mod replay;
pub mod serve;

use crate::cli::Command;
use std::process::ExitCode;

/// The issue that builds each command not built yet, so the refusal says where it stands.
fn building_issue(command: &Command) -> (&'static str, u32) {
    match command {
        Command::Gp { .. } => ("gp", 5),
        Command::Cas(_) => ("cas", 5),
        Command::Smt { .. } => ("smt", 6),
        Command::Opt { .. } => ("opt", 6),
        Command::Proof { .. } => ("proof", 7),
        Command::Job { .. } => ("job", 4),
        Command::Artifact { .. } => ("artifact", 4),
        Command::Log { .. } => ("log", 4),
        Command::Replay { .. } => ("replay", 9),
        Command::Catalog => ("catalog", 2),
        Command::InternalRunJob { .. } => ("internal-run-job", 4),
        Command::Demo => ("demo", 8),
        Command::Bench { .. } => ("bench", 9),
        Command::Mcp { .. } => ("mcp", 8),
        Command::Serve { .. } => ("serve", 8),
    }
}

/// Says plainly that a command is not built yet and exits non-zero: no fake output.
pub fn not_built(command: &Command) -> anyhow::Result<ExitCode> {
    let (name, issue) = building_issue(command);
    anyhow::bail!("`capsci {name}` is not built yet (issue {issue})")
}
