//! `capsci job list|show|wait|cancel`, and the background runner behind `--detach`.

use crate::cli::{Cli, JobAction};
use crate::commands::call::{local_session, open_service, store_dir};
use anyhow::{bail, Context};
use capsci_core::CallRequest;
use capsci_sandbox::CancelToken;
use std::process::ExitCode;
use std::time::Duration;

/// Starts `capsci internal-run-job ID` in its own process group, detached from this terminal.
pub fn spawn_detached(cli: &Cli, job: &str) -> anyhow::Result<()> {
    use std::os::unix::process::CommandExt;
    let exe = std::env::current_exe().context("cannot find the capsci executable")?;
    std::process::Command::new(exe)
        .arg("--store")
        .arg(store_dir(cli)?)
        .arg("internal-run-job")
        .arg(job)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .process_group(0)
        .spawn()
        .context("cannot start the background job runner")?;
    Ok(())
}

/// Runs a queued job in this process (the detached runner).
pub fn run_queued(cli: &Cli, id: &str) -> anyhow::Result<ExitCode> {
    let service = open_service(cli)?;
    let job = service
        .store()
        .jobs()
        .get(id)?
        .with_context(|| format!("no job {id}"))?;
    let request: CallRequest =
        serde_json::from_value(job.params).context("the job's parameters are not a request")?;
    local_session(&service).run_job(id, request, &CancelToken::new())?;
    Ok(ExitCode::SUCCESS)
}

/// `capsci job ...`.
pub fn run(cli: &Cli, action: &JobAction) -> anyhow::Result<ExitCode> {
    let store = capsci_store::Store::open(&store_dir(cli)?)?;
    let jobs = store.jobs();
    match action {
        JobAction::List => {
            let list = jobs.list(1000)?;
            if cli.json {
                out!("{}", serde_json::to_string_pretty(&list)?);
            } else {
                for j in list {
                    let status = j
                        .envelope
                        .as_ref()
                        .and_then(|e| e["status"].as_str().map(str::to_string))
                        .unwrap_or_default();
                    out!(
                        "{}  {:<11} {}.{} {}  {}",
                        j.id,
                        j.state,
                        j.interface,
                        j.method,
                        status,
                        j.created_at
                    );
                }
            }
        }
        JobAction::Show { id } => {
            let job = jobs.get(id)?.with_context(|| format!("no job {id}"))?;
            out!("{}", serde_json::to_string_pretty(&job)?);
        }
        JobAction::Wait { id } => {
            let job = jobs.wait(id, Duration::from_secs(24 * 3600))?;
            match job.envelope {
                Some(envelope) => out!("{}", serde_json::to_string_pretty(&envelope)?),
                None => bail!(
                    "job {id} ended {} without an envelope: {}",
                    job.state,
                    job.error.unwrap_or_default()
                ),
            }
        }
        JobAction::Cancel { id } => {
            let state = jobs.request_cancel(id)?;
            out!("{id} {state}");
        }
    }
    Ok(ExitCode::SUCCESS)
}
