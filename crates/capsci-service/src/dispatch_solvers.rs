//! The solver and proof arms of the dispatch (SMT, optimisation, proof).

use crate::backend::BackendKind;
use crate::dispatch::{backend_error, not_run, ArtifactBytes, BackendRun};
use crate::runtime::{highs_worker, ReadyBackend, Runtime};
use capsci_backends::rocq::project::ProjectInput;
use capsci_backends::{opt, rocq, smt};
use capsci_core::request::{GoalsRequest, OptRequest, ProofRequest, SmtBackendChoice, SmtRequest};
use capsci_core::results::OptResult;
use capsci_core::{
    BackendIdentity, CallOutcome, CallRequest, Evidence, ExitReason, Limits, MemoryLimitBy, Method,
    OptOutcome, OptStatus, ProofOutcome, SandboxInfo, SmtOutcome, Usage,
};
use capsci_sandbox::{Bind, CancelToken, Outcome};
use std::path::PathBuf;

/// Runs a solver or proof request.
pub(crate) fn run(
    runtime: &Runtime,
    ready: &ReadyBackend,
    request: &CallRequest,
    limits: &Limits,
    cancel: &CancelToken,
) -> BackendRun {
    match request {
        CallRequest::SmtCheck(r) => run_smt(runtime, r, limits, cancel),
        CallRequest::OptSolve(r) => run_opt(runtime, ready, r, limits, cancel),
        CallRequest::ProofCheck(r) => run_proof(runtime, ready, r, limits, cancel),
        CallRequest::ProofGoals(r) => run_goals(runtime, ready, r, limits, cancel),
        other => {
            let message = format!("{} is not a solver or proof request", other.interface());
            not_run(
                backend_error(other, Some(message)),
                ready.identity.clone(),
                request,
            )
        }
    }
}

fn binds(ready: &ReadyBackend) -> Vec<Bind> {
    ready.binds.iter().cloned().map(Bind::same).collect()
}

/// A run that produced no sandbox outcome (the policy answered, or the sandbox failed).
fn outcome_or_not_run(
    outcome: Option<&Outcome>,
) -> (ExitReason, Usage, SandboxInfo, MemoryLimitBy) {
    match outcome {
        Some(o) => (o.exit, o.usage, o.sandbox.clone(), o.memory_limit_by),
        None => (
            ExitReason::NotRun,
            Usage::default(),
            SandboxInfo {
                kind: "none".into(),
                ..Default::default()
            },
            MemoryLimitBy::None,
        ),
    }
}

fn run_smt(
    runtime: &Runtime,
    request: &SmtRequest,
    limits: &Limits,
    cancel: &CancelToken,
) -> BackendRun {
    let setup = |kind: BackendKind| -> smt::SolverSetup {
        match runtime.ready(kind) {
            Ok(ready) => smt::SolverSetup {
                identity: ready.identity.clone(),
                binds: binds(&ready),
            },
            Err(_) => smt::SolverSetup {
                identity: BackendIdentity {
                    name: kind.name().into(),
                    ..Default::default()
                },
                binds: Vec::new(),
            },
        }
    };
    let setups = smt::SmtSetups {
        z3: setup(BackendKind::Z3),
        cvc5: setup(BackendKind::Cvc5),
    };
    let options = smt::SmtOptions {
        timeout_ms: (limits.wall_s * 1000.0) as u64,
        memory_mb: limits.memory_mb,
        seed: request.seed.unwrap_or(0),
    };
    let default_call = request.timeout_s.is_none() && request.seed.is_none();
    let pools: Vec<_> = [
        (smt::SmtBackend::Z3, BackendKind::Z3),
        (smt::SmtBackend::Cvc5, BackendKind::Cvc5),
    ]
    .into_iter()
    .filter_map(|(backend, kind)| {
        let policy = smt::solver_policy(backend, &setups.get(backend).binds, &options);
        runtime
            .pool(kind, &policy, default_call, || smt::spare_template(backend))
            .map(|p| (backend, p))
    })
    .collect();
    let runner = smt::SandboxRunner {
        sandbox: runtime.sandbox().as_ref(),
        spares: pools.iter().map(|(b, p)| (*b, p.as_ref())).collect(),
    };
    let choice = match request.backend {
        SmtBackendChoice::Z3 => smt::BackendChoice::One(smt::SmtBackend::Z3),
        SmtBackendChoice::Cvc5 => smt::BackendChoice::One(smt::SmtBackend::Cvc5),
        SmtBackendChoice::All => smt::BackendChoice::All,
        SmtBackendChoice::Portfolio => smt::BackendChoice::Portfolio,
    };
    let answer = smt::check(&runner, &setups, choice, &request.smtlib, &options, cancel);
    let reported = answer.answers.iter().find(|a| a.backend == answer.backend);
    let main = reported.and_then(|a| a.runs.first());
    let (exit, usage, sandbox, memory_limit_by) =
        outcome_or_not_run(main.and_then(|r| r.outcome.as_ref()));
    let mut log = Vec::new();
    let mut extra = Vec::new();
    for a in &answer.answers {
        for run in &a.runs {
            log.extend_from_slice(
                format!("=== {} {} ===\n", a.backend.name(), run.purpose).as_bytes(),
            );
            if let Some(o) = &run.outcome {
                log.extend_from_slice(&o.stderr);
            }
            if let Some(e) = &run.error {
                log.extend_from_slice(e.as_bytes());
            }
            let role = format!(
                "smtlib_export:{}:{}",
                a.backend.name(),
                run.purpose.replace(' ', "_")
            );
            extra.push((
                role,
                ArtifactBytes::new(run.sent.clone(), "application/smt-lib"),
            ));
        }
    }
    BackendRun {
        call: CallOutcome::SmtSolver(SmtOutcome {
            method: Method::Check,
            status: answer.status,
            result: answer.result,
        }),
        evidence: answer.evidence,
        backend: setups.get(answer.backend).identity.clone(),
        exit,
        usage,
        sandbox,
        memory_limit_by,
        input: ArtifactBytes::new(request.smtlib.as_bytes().to_vec(), "application/smt-lib"),
        output: ArtifactBytes::new(
            main.and_then(|r| r.outcome.as_ref())
                .map(|o| o.stdout.clone())
                .unwrap_or_default(),
            "text/plain",
        ),
        log: ArtifactBytes::new(log, "text/plain"),
        extra,
    }
}

fn run_opt(
    runtime: &Runtime,
    ready: &ReadyBackend,
    request: &OptRequest,
    limits: &Limits,
    cancel: &CancelToken,
) -> BackendRun {
    let (model, format) = match (&request.mps, &request.lp) {
        (Some(mps), None) => (mps.as_bytes(), opt::ModelFormat::Mps),
        (None, Some(lp)) => (lp.as_bytes(), opt::ModelFormat::Lp),
        _ => {
            let call = CallOutcome::OptimizationSolver(OptOutcome {
                method: Method::Solve,
                status: OptStatus::InvalidInput,
                result: OptResult {
                    message: Some("give exactly one of `mps` and `lp`".into()),
                    ..Default::default()
                },
            });
            return not_run(
                call,
                ready.identity.clone(),
                &CallRequest::OptSolve(request.clone()),
            );
        }
    };
    let program = match highs_worker() {
        Ok(p) => p,
        Err(e) => {
            let call = backend_error(&CallRequest::OptSolve(request.clone()), Some(e.to_string()));
            return not_run(
                call,
                ready.identity.clone(),
                &CallRequest::OptSolve(request.clone()),
            );
        }
    };
    let setup = opt::WorkerSetup {
        program,
        binds: binds(ready),
    };
    let options = opt::OptOptions {
        time_limit_s: request.time_limit_s.unwrap_or(limits.wall_s),
        mip_rel_gap: request.mip_gap,
        threads: request.threads.unwrap_or(1),
        seed: request.seed.unwrap_or(0) as u32,
        presolve: request.presolve,
        memory_mb: limits.memory_mb,
    };
    let answer = opt::solve(
        &opt::SandboxWorkerRunner(runtime.sandbox().as_ref()),
        &setup,
        model,
        format,
        &options,
        cancel,
    );
    let (exit, usage, sandbox, memory_limit_by) = outcome_or_not_run(answer.outcome.as_ref());
    let mut log = answer
        .outcome
        .as_ref()
        .map(|o| o.stderr.clone())
        .unwrap_or_default();
    log.extend_from_slice(format!("\n=== re-check ===\n{}\n", answer.recheck).as_bytes());
    let media = match format {
        opt::ModelFormat::Mps => "text/x-mps",
        opt::ModelFormat::Lp => "text/x-cplex-lp",
    };
    BackendRun {
        call: CallOutcome::OptimizationSolver(OptOutcome {
            method: Method::Solve,
            status: answer.status,
            result: answer.result,
        }),
        evidence: answer.evidence,
        backend: ready.identity.clone(),
        exit,
        usage,
        sandbox,
        memory_limit_by,
        input: ArtifactBytes::new(model.to_vec(), media),
        output: ArtifactBytes::new(
            answer
                .outcome
                .as_ref()
                .map(|o| o.stdout.clone())
                .unwrap_or_default(),
            "application/json",
        ),
        log: ArtifactBytes::new(log, "text/plain"),
        extra: Vec::new(),
    }
}

fn project_input(files: &[capsci_core::request::ProjectFile]) -> ProjectInput {
    ProjectInput {
        files: files
            .iter()
            .map(|f| (PathBuf::from(&f.path), f.content.as_bytes().to_vec()))
            .collect(),
    }
}

fn run_proof(
    runtime: &Runtime,
    ready: &ReadyBackend,
    request: &ProofRequest,
    limits: &Limits,
    cancel: &CancelToken,
) -> BackendRun {
    let options = rocq::CheckOptions {
        challenge: request
            .challenge
            .first()
            .map(|f| f.content.as_bytes().to_vec()),
        allow_axioms: request.allow_axiom.clone(),
        limits: limits.clone(),
    };
    let input = project_input(&request.files);
    let report = rocq::check(
        &input,
        &options,
        runtime.sandbox().as_ref(),
        &ready.binds,
        cancel,
    );
    let (exit, usage, sandbox, memory_limit_by) = outcome_or_not_run(report.outcome.as_ref());
    let extra = report
        .vo_files
        .iter()
        .map(|(path, bytes)| {
            (
                format!("vo:{}", path.display()),
                ArtifactBytes::new(bytes.clone(), "application/x-coq-vo"),
            )
        })
        .collect();
    BackendRun {
        call: CallOutcome::ProofChecker(ProofOutcome {
            method: Method::Check,
            status: report.status,
            result: report.result,
        }),
        evidence: report.evidence,
        backend: ready.identity.clone(),
        exit,
        usage,
        sandbox,
        memory_limit_by,
        input: ArtifactBytes::new(
            serde_json::to_vec(&request.files).unwrap_or_default(),
            "application/json",
        ),
        output: ArtifactBytes::new(
            report
                .outcome
                .as_ref()
                .map(|o| o.stdout.clone())
                .unwrap_or_default(),
            "text/plain",
        ),
        log: ArtifactBytes::new(report.log, "text/plain"),
        extra,
    }
}

fn run_goals(
    runtime: &Runtime,
    ready: &ReadyBackend,
    request: &GoalsRequest,
    limits: &Limits,
    cancel: &CancelToken,
) -> BackendRun {
    let (status, result, outcome) = rocq::goals(
        request.file.content.as_bytes(),
        request.line,
        limits,
        runtime.sandbox().as_ref(),
        &ready.binds,
        cancel,
    );
    let call = CallOutcome::ProofChecker(ProofOutcome {
        method: Method::Goals,
        status,
        result,
    });
    let input = ArtifactBytes::new(request.file.content.as_bytes().to_vec(), "text/x-coq");
    match &outcome {
        Some(o) => {
            BackendRun::from_outcome(call, Evidence::Advisory, ready.identity.clone(), input, o)
        }
        None => not_run(
            call,
            ready.identity.clone(),
            &CallRequest::ProofGoals(request.clone()),
        ),
    }
}
