//! `capsci log show|verify`.

use crate::cli::{Cli, LogAction};
use crate::commands::call::store_dir;
use capsci_store::VerifyOptions;
use std::process::ExitCode;

/// `capsci log ...`: `verify` exits 0 on an intact log, 1 on a damaged one naming the first
/// bad record or artifact.
pub fn run(cli: &Cli, action: &LogAction) -> anyhow::Result<ExitCode> {
    let store = capsci_store::Store::open(&store_dir(cli)?)?;
    match action {
        LogAction::Show => {
            let records = store.log().list(0, usize::MAX)?;
            if cli.json {
                out!("{}", serde_json::to_string_pretty(&records)?);
            } else {
                for r in records {
                    let d = &r.body.draft;
                    out!(
                        "{:>5} {} {}.{} {} {} {}",
                        r.seq,
                        r.id,
                        d.interface,
                        d.method,
                        d.status,
                        d.principal,
                        d.finished_at
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        LogAction::Verify => {
            let report = store.log().verify(&VerifyOptions::default())?;
            if cli.json {
                out!("{}", serde_json::to_string_pretty(&report)?);
            }
            match report.first_problem() {
                None => {
                    if !cli.json {
                        out!(
                            "log intact: {} records, {} artifacts ({} bytes) re-hashed, {} checkpoints",
                            report.records, report.artifacts_checked, report.artifact_bytes, report.checkpoints_checked
                        );
                    }
                    Ok(ExitCode::SUCCESS)
                }
                Some(problem) => {
                    eprintln!("capsci: log damaged: {problem}");
                    Ok(ExitCode::from(1))
                }
            }
        }
    }
}
