//! `capsci bench --conformance DIR`: the public suites in DIR (`smtlib/`, `netlib/`) through
//! capsci, every answer compared with the published one; a table on stdout and the report as
//! markdown and JSON in `bench-results/`, so two runs can be compared.

use crate::cli::Cli;
use crate::commands::call::{local_session, open_service};
use anyhow::{bail, Context};
use capsci_service::conformance::{self, SuiteReport};
use std::fmt::Write as _;
use std::path::Path;
use std::process::ExitCode;

/// Where reports are written.
const RESULTS_DIR: &str = "bench-results";

/// Runs the conformance suites found in `dir`; exits 1 when any answer disagrees.
pub fn conformance(cli: &Cli, dir: &Path) -> anyhow::Result<ExitCode> {
    let service = open_service(cli)?;
    let session = local_session(&service);
    let mut reports = Vec::new();
    if dir.join("smtlib/expected.json").is_file() {
        reports.push(conformance::smtlib(&session, &dir.join("smtlib"), 2)?);
    }
    if dir.join("netlib/expected.json").is_file() {
        reports.push(conformance::netlib(&session, &dir.join("netlib"), 2)?);
    }
    if reports.is_empty() {
        bail!(
            "no conformance suite in {} (expected smtlib/expected.json or netlib/expected.json)",
            dir.display()
        );
    }
    let markdown = render(&reports, dir);
    if cli.json {
        out!("{}", serde_json::to_string_pretty(&reports)?);
    } else {
        out!("{markdown}");
    }
    std::fs::create_dir_all(RESULTS_DIR).with_context(|| format!("cannot create {RESULTS_DIR}"))?;
    std::fs::write(Path::new(RESULTS_DIR).join("conformance.md"), &markdown)?;
    std::fs::write(
        Path::new(RESULTS_DIR).join("conformance.json"),
        serde_json::to_vec_pretty(&reports)?,
    )?;
    let all_agree = reports.iter().all(|r| r.agree == r.total);
    Ok(if all_agree {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn render(reports: &[SuiteReport], dir: &Path) -> String {
    let mut md = String::new();
    let _ = writeln!(
        md,
        "# Conformance: published answers vs capsci\n\nSuites read in place from `{}`.\n",
        dir.display()
    );
    let _ = writeln!(
        md,
        "| suite | instances | agree | re-verified by capsci | disagree |\n|---|---|---|---|---|"
    );
    for r in reports {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} |",
            r.suite,
            r.total,
            r.agree,
            r.checked,
            r.total - r.agree
        );
    }
    for r in reports {
        let bad = r.disagreements();
        if bad.is_empty() {
            continue;
        }
        let _ = writeln!(md, "\n## {} disagreements\n\n| file | published | capsci | detail | record |\n|---|---|---|---|---|", r.suite);
        for c in bad {
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} | {} |",
                c.file,
                c.expected,
                c.got,
                c.detail.as_deref().unwrap_or(""),
                c.record.as_deref().unwrap_or("")
            );
        }
    }
    md
}
