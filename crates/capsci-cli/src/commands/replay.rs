//! `capsci replay RECORD`: rerun a recorded call from its provenance record and compare.

use crate::cli::Cli;
use crate::commands::call::{local_session, open_service};
use capsci_service::replay::{replay, ReplayVerdict};
use std::process::ExitCode;

/// Prints the verdict (`identical`, `differs` with a diff, `closure_changed` with the files);
/// exits 0 when identical, 1 otherwise (the record could not be reproduced as it stands).
pub fn run(cli: &Cli, record: &str) -> anyhow::Result<ExitCode> {
    let service = open_service(cli)?;
    let session = local_session(&service);
    let report = replay(&session, record)?;
    if cli.json {
        out!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        match &report.verdict {
            ReplayVerdict::Identical => out!("identical: {record} reproduced"),
            ReplayVerdict::Differs { diff } => {
                out!("differs: {record} gave another result");
                for line in diff {
                    out!("  {line}");
                }
            }
            ReplayVerdict::ClosureChanged {
                recorded,
                current,
                files,
            } => {
                out!("closure_changed: recorded {recorded}, now {current}; nothing rerun");
                for file in files {
                    out!("  changed: {file}");
                }
            }
        }
        if let Some(envelope) = &report.replayed {
            if let Some(p) = &envelope.provenance {
                out!("  the replay is {} ({})", envelope.job, p.record);
            }
        }
    }
    Ok(match report.verdict {
        ReplayVerdict::Identical => ExitCode::SUCCESS,
        _ => ExitCode::from(1),
    })
}
