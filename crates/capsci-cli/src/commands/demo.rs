//! `capsci demo`, the main job: a scripted session through the real service that runs every
//! backend once — PARI factors a number, SymPy simplifies, Z3 and cvc5 check an SMT problem side
//! by side, HiGHS solves an LP and a MIP, Rocq checks a proof — prints the results table, then
//! verifies the provenance log. Nothing is faked: each row is a real sandboxed call with its record.

use crate::cli::Cli;
use crate::commands::call::{local_session, open_service};
use capsci_core::request::{
    CasRequest, GpRequest, OptRequest, ProjectFile, ProofRequest, SmtBackendChoice, SmtRequest,
};
use capsci_core::{CallOutcome, CallRequest, Envelope, Evidence, Method};
use capsci_sandbox::CancelToken;
use capsci_store::VerifyOptions;
use std::process::ExitCode;

/// One step of the demo: what it shows, and the call.
fn steps() -> Vec<(&'static str, CallRequest)> {
    vec![
        (
            "factor 2^128+1 (PARI/GP)",
            CallRequest::NumberTheoryEval(GpRequest {
                expr: "factor(2^128+1)".into(),
                timeout_s: None,
            }),
        ),
        (
            "simplify sin²+cos²+x/(x²-x) (SymPy)",
            CallRequest::ComputerAlgebra(CasRequest {
                op: Method::Simplify,
                expr: "sin(x)**2 + cos(x)**2 + x/(x**2 - x)".into(),
                var: vec![],
                at: None,
                dir: None,
                from: None,
                to: None,
                order: None,
                digits: None,
                timeout_s: None,
            }),
        ),
        (
            "SMT, Z3 and cvc5 side by side",
            CallRequest::SmtCheck(SmtRequest {
                smtlib: include_str!("../demo/problem.smt2").into(),
                backend: SmtBackendChoice::All,
                timeout_s: None,
                seed: Some(1),
            }),
        ),
        (
            "LP (HiGHS)",
            CallRequest::OptSolve(OptRequest {
                mps: Some(include_str!("../demo/lp.mps").into()),
                lp: None,
                time_limit_s: None,
                mip_gap: None,
                threads: None,
                seed: None,
                presolve: None,
            }),
        ),
        (
            "MIP knapsack (HiGHS)",
            CallRequest::OptSolve(OptRequest {
                mps: None,
                lp: Some(include_str!("../demo/mip.lp").into()),
                time_limit_s: None,
                mip_gap: None,
                threads: None,
                seed: None,
                presolve: None,
            }),
        ),
        (
            "proof: n + m = m + n (Rocq)",
            CallRequest::ProofCheck(ProofRequest {
                files: vec![ProjectFile {
                    path: "Demo.v".into(),
                    content: include_str!("../demo/proof.v").into(),
                }],
                backend: Default::default(),
                challenge: vec![],
                allow_axiom: vec![],
                timeout_s: None,
            }),
        ),
    ]
}

/// The short answer a row shows.
fn answer(envelope: &Envelope) -> String {
    let clip = |s: &str| {
        let one_line = s.split_whitespace().collect::<Vec<_>>().join(" ");
        if one_line.chars().count() > 44 {
            format!("{}…", one_line.chars().take(43).collect::<String>())
        } else {
            one_line
        }
    };
    match &envelope.call {
        CallOutcome::NumberTheory(o) => clip(
            o.result
                .value
                .as_deref()
                .or(o.result.message.as_deref())
                .unwrap_or(""),
        ),
        CallOutcome::ComputerAlgebra(o) => clip(
            o.result
                .text
                .as_deref()
                .or(o.result.message.as_deref())
                .unwrap_or(""),
        ),
        CallOutcome::SmtSolver(o) => {
            let model: Vec<String> = o
                .result
                .model
                .iter()
                .flatten()
                .map(|m| format!("{}={}", m.name, m.value))
                .collect();
            let agree: Vec<String> = o
                .result
                .backends
                .iter()
                .flatten()
                .map(|b| format!("{} {}", b.backend.name, b.status))
                .collect();
            clip(&format!("{} [{}]", model.join(" "), agree.join(", ")))
        }
        CallOutcome::OptimizationSolver(o) => match o.result.objective {
            Some(obj) => format!("objective {obj}"),
            None => clip(o.result.message.as_deref().unwrap_or("")),
        },
        CallOutcome::ProofChecker(o) => {
            let checked = o.result.theorems.iter().filter(|t| t.checked).count();
            format!("{checked}/{} theorems checked", o.result.theorems.len())
        }
    }
}

/// Runs the demo; exits 1 if any step failed to give its expected status or the log is damaged.
pub fn run(cli: &Cli) -> anyhow::Result<ExitCode> {
    let service = open_service(cli)?;
    let session = local_session(&service);
    let expected = ["ok", "ok", "sat", "optimal", "optimal", "accepted"];
    let mut envelopes = Vec::new();
    let mut failures = 0;
    out!(
        "capsci demo — every backend through the service (store: {})\n",
        service.store().dir().display()
    );
    out!(
        "{:<36} {:<7} {:<9} {:<9} {:>7}  ANSWER",
        "STEP",
        "BACKEND",
        "STATUS",
        "EVIDENCE",
        "WALL"
    );
    for ((title, request), want) in steps().into_iter().zip(expected) {
        let envelope = session.call(request, &CancelToken::new())?;
        if envelope.status_word() != want {
            failures += 1;
        }
        out!(
            "{:<36} {:<7} {:<9} {:<9} {:>5}ms  {}",
            title,
            envelope.backend.name,
            envelope.status_word(),
            if envelope.evidence == Evidence::Checked {
                "checked"
            } else {
                "advisory"
            },
            envelope.usage.wall_ms,
            answer(&envelope)
        );
        envelopes.push(envelope);
    }
    let report = service.store().log().verify(&VerifyOptions::default())?;
    out!();
    match report.first_problem() {
        None => out!(
            "log verify: intact — {} records chained, {} artifacts ({} bytes) re-hashed",
            report.records,
            report.artifacts_checked,
            report.artifact_bytes
        ),
        Some(problem) => {
            failures += 1;
            out!("log verify: DAMAGED — {problem}");
        }
    }
    out!("each row is a job with a provenance record: `capsci log show`, `capsci job show ID`.");
    if cli.json {
        out!("{}", serde_json::to_string_pretty(&envelopes)?);
    }
    Ok(if failures == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
