//! Human output of an envelope (a short readable summary), or exactly the envelope with `--json`.

use crate::cli::Cli;
use capsci_core::{CallOutcome, Envelope};

/// Prints `envelope` for a person, or as JSON with `--json`.
pub fn envelope(cli: &Cli, envelope: &Envelope) -> anyhow::Result<()> {
    if cli.json {
        out!("{}", serde_json::to_string_pretty(envelope)?);
        return Ok(());
    }
    out!(
        "{}.{}  {}  ({}, evidence: {})",
        envelope.call.interface(),
        envelope.call.method(),
        envelope.status_word(),
        envelope.backend.name,
        match envelope.evidence {
            capsci_core::Evidence::Checked => "checked",
            capsci_core::Evidence::Advisory => "advisory",
        }
    );
    for line in summary(&envelope.call) {
        out!("  {line}");
    }
    out!(
        "  job {}  exit {}  wall {} ms  cpu {} ms  rss {} KiB",
        envelope.job,
        envelope.exit,
        envelope.usage.wall_ms,
        envelope.usage.cpu_ms,
        envelope.usage.max_rss_kb
    );
    if let Some(p) = &envelope.provenance {
        out!("  record {}  {}", p.record, p.hash);
    }
    Ok(())
}

fn push_opt(lines: &mut Vec<String>, label: &str, value: &Option<String>) {
    if let Some(v) = value {
        lines.push(format!("{label}: {v}"));
    }
}

/// The lines of a call's result worth showing a person.
fn summary(call: &CallOutcome) -> Vec<String> {
    let mut lines = Vec::new();
    match call {
        CallOutcome::NumberTheory(o) => {
            push_opt(&mut lines, "value", &o.result.value);
            push_opt(&mut lines, "type", &o.result.value_type);
            push_opt(&mut lines, "message", &o.result.message);
        }
        CallOutcome::ComputerAlgebra(o) => {
            push_opt(&mut lines, "value", &o.result.text);
            if let Some(solutions) = &o.result.solutions {
                for s in solutions {
                    let parts: Vec<String> =
                        s.iter().map(|(k, v)| format!("{k} = {}", v.text)).collect();
                    lines.push(format!("solution: {}", parts.join(", ")));
                }
            }
            push_opt(&mut lines, "message", &o.result.message);
        }
        CallOutcome::SmtSolver(o) => {
            for m in o.result.model.iter().flatten() {
                lines.push(format!("{} : {} = {}", m.name, m.sort, m.value));
            }
            if let Some(core) = &o.result.core {
                lines.push(format!("core: {}", core.join(" ")));
            }
            push_opt(&mut lines, "reason", &o.result.reason_unknown);
            push_opt(&mut lines, "re-check", &o.result.recheck);
            push_opt(&mut lines, "message", &o.result.message);
            for b in o.result.backends.iter().flatten() {
                lines.push(format!(
                    "{}: {} ({} ms)",
                    b.backend.name, b.status, b.usage.wall_ms
                ));
            }
        }
        CallOutcome::OptimizationSolver(o) => {
            if let Some(obj) = o.result.objective {
                lines.push(format!("objective: {obj}"));
            }
            if let Some(v) = o.result.max_violation {
                lines.push(format!("max violation (re-checked): {v:e}"));
            }
            push_opt(&mut lines, "optimality", &o.result.optimality);
            if let Some(gap) = o.result.gap {
                lines.push(format!("gap: {gap}"));
            }
            push_opt(&mut lines, "message", &o.result.message);
        }
        CallOutcome::ProofChecker(o) => {
            for t in &o.result.theorems {
                let axioms = if t.axioms.is_empty() {
                    String::new()
                } else {
                    format!(" (axioms: {})", t.axioms.join(", "))
                };
                lines.push(format!(
                    "{} {}{axioms}",
                    if t.checked { "checked" } else { "NOT checked" },
                    t.name
                ));
            }
            for e in &o.result.errors {
                lines.push(format!("{}:{}:{}: {}", e.file, e.line, e.column, e.message));
            }
            for g in o.result.goals.iter().flatten() {
                lines.push(format!("goal: {g}"));
            }
            push_opt(&mut lines, "re-check", &o.result.recheck);
            push_opt(&mut lines, "message", &o.result.message);
        }
    }
    lines
}
