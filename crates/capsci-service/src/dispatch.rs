//! From a typed request to a backend run: the adaptor between the service's call path and each
//! backend module of `capsci-backends`. Every arm returns a [`BackendRun`]; nothing here stores
//! or records — the session does that, the same way for every backend.

use crate::backend::BackendKind;
use crate::runtime::{ReadyBackend, Runtime, RuntimeError};
use capsci_backends::{gp, sympy};
use capsci_core::request::{CasRequest, GpRequest};
use capsci_core::results::{
    CasResult, EvalOutcome, NumberTheoryResult, OptResult, ProofResult, SmtResult,
};
use capsci_core::{
    BackendIdentity, CallOutcome, CallRequest, EvalStatus, Evidence, ExitReason, Limits,
    MemoryLimitBy, Method, OptOutcome, OptStatus, ProofOutcome, ProofStatus, SandboxInfo,
    SmtOutcome, SmtStatus, Usage,
};
use capsci_sandbox::{CancelToken, Outcome};

/// One artifact's bytes before it is stored.
#[derive(Debug, Clone, Default)]
pub struct ArtifactBytes {
    /// The bytes.
    pub bytes: Vec<u8>,
    /// Their media type.
    pub media_type: &'static str,
}

impl ArtifactBytes {
    /// Bytes of `media_type`.
    pub fn new(bytes: Vec<u8>, media_type: &'static str) -> Self {
        ArtifactBytes { bytes, media_type }
    }
}

/// What a backend run produced, before it is stored and recorded.
#[derive(Debug, Clone)]
pub struct BackendRun {
    /// Interface, method, typed status and result.
    pub call: CallOutcome,
    /// Whether capsci or a kernel verified the answer.
    pub evidence: Evidence,
    /// The backend that ran.
    pub backend: BackendIdentity,
    /// How its process ended.
    pub exit: ExitReason,
    /// What it used.
    pub usage: Usage,
    /// The sandbox it ran in.
    pub sandbox: SandboxInfo,
    /// Which mechanism capped memory.
    pub memory_limit_by: MemoryLimitBy,
    /// The exact input the backend received.
    pub input: ArtifactBytes,
    /// The backend's output.
    pub output: ArtifactBytes,
    /// Its log (stderr and diagnostics).
    pub log: ArtifactBytes,
    /// Further artifacts by role.
    pub extra: Vec<(String, ArtifactBytes)>,
}

impl BackendRun {
    pub(crate) fn from_outcome(
        call: CallOutcome,
        evidence: Evidence,
        backend: BackendIdentity,
        input: ArtifactBytes,
        outcome: &Outcome,
    ) -> Self {
        BackendRun {
            call,
            evidence,
            backend,
            exit: outcome.exit,
            usage: outcome.usage,
            sandbox: outcome.sandbox.clone(),
            memory_limit_by: outcome.memory_limit_by,
            input,
            output: ArtifactBytes::new(outcome.stdout.clone(), "text/plain"),
            log: ArtifactBytes::new(outcome.stderr.clone(), "text/plain"),
            extra: Vec::new(),
        }
    }
}

/// `backend_error` for `request`, with `message`: the outcome of a call whose backend could not
/// run at all (not installed, closure unreadable, worker missing).
pub(crate) fn backend_error(request: &CallRequest, message: Option<String>) -> CallOutcome {
    let method = request.method();
    match request {
        CallRequest::NumberTheoryEval(_) => CallOutcome::NumberTheory(EvalOutcome {
            method,
            status: EvalStatus::BackendError,
            result: NumberTheoryResult {
                message,
                ..Default::default()
            },
        }),
        CallRequest::ComputerAlgebra(_) => CallOutcome::ComputerAlgebra(EvalOutcome {
            method,
            status: EvalStatus::BackendError,
            result: CasResult {
                message,
                ..Default::default()
            },
        }),
        CallRequest::SmtCheck(_) => CallOutcome::SmtSolver(SmtOutcome {
            method,
            status: SmtStatus::BackendError,
            result: SmtResult {
                message,
                ..Default::default()
            },
        }),
        CallRequest::OptSolve(_) => CallOutcome::OptimizationSolver(OptOutcome {
            method,
            status: OptStatus::BackendError,
            result: OptResult {
                message,
                ..Default::default()
            },
        }),
        CallRequest::ProofCheck(_) | CallRequest::ProofGoals(_) => {
            CallOutcome::ProofChecker(ProofOutcome {
                method,
                status: ProofStatus::BackendError,
                result: ProofResult {
                    message,
                    ..Default::default()
                },
            })
        }
    }
}

/// A run that could not start because the backend is not ready: `backend_error` with the
/// reason, and nothing ran.
fn unavailable(request: &CallRequest, kind: BackendKind, error: &RuntimeError) -> BackendRun {
    let backend = BackendIdentity {
        name: kind.name().into(),
        ..Default::default()
    };
    not_run(
        backend_error(request, Some(error.to_string())),
        backend,
        request,
    )
}

/// A run where nothing started (policy answered, or the backend was unavailable).
pub(crate) fn not_run(
    call: CallOutcome,
    backend: BackendIdentity,
    request: &CallRequest,
) -> BackendRun {
    BackendRun {
        call,
        evidence: Evidence::Advisory,
        backend,
        exit: ExitReason::NotRun,
        usage: Usage::default(),
        sandbox: SandboxInfo {
            kind: "none".into(),
            ..Default::default()
        },
        memory_limit_by: MemoryLimitBy::None,
        input: ArtifactBytes::new(
            serde_json::to_vec(request).unwrap_or_default(),
            "application/json",
        ),
        output: ArtifactBytes::default(),
        log: ArtifactBytes::default(),
        extra: Vec::new(),
    }
}

/// Runs `request` on its backend under `limits`.
pub fn run(
    runtime: &Runtime,
    request: &CallRequest,
    limits: &Limits,
    cancel: &CancelToken,
) -> BackendRun {
    let kind = backend_for(request);
    let ready = match runtime.ready(kind) {
        Ok(ready) => ready,
        Err(error) => return unavailable(request, kind, &error),
    };
    match request {
        CallRequest::NumberTheoryEval(r) => run_gp(runtime, &ready, r, limits, cancel),
        CallRequest::ComputerAlgebra(r) => run_sympy(runtime, &ready, r, limits, cancel),
        other => crate::dispatch_solvers::run(runtime, &ready, other, limits, cancel),
    }
}

/// The backend a request goes to.
pub fn backend_for(request: &CallRequest) -> BackendKind {
    use capsci_core::request::{ProofBackendChoice, SmtBackendChoice};
    match request {
        CallRequest::NumberTheoryEval(_) => BackendKind::Gp,
        CallRequest::ComputerAlgebra(_) => BackendKind::Sympy,
        CallRequest::SmtCheck(r) => match r.backend {
            SmtBackendChoice::Cvc5 => BackendKind::Cvc5,
            _ => BackendKind::Z3,
        },
        CallRequest::OptSolve(_) => BackendKind::Highs,
        CallRequest::ProofCheck(r) => match r.backend {
            ProofBackendChoice::Rocq => BackendKind::Rocq,
            ProofBackendChoice::Lean => BackendKind::Lean,
        },
        CallRequest::ProofGoals(_) => BackendKind::Rocq,
    }
}

fn run_gp(
    runtime: &Runtime,
    ready: &ReadyBackend,
    request: &GpRequest,
    limits: &Limits,
    cancel: &CancelToken,
) -> BackendRun {
    let policy = gp::sandbox_policy(&ready.binds, limits);
    let config = gp::GpConfig::for_limits(limits);
    let eval = match runtime.pool(
        BackendKind::Gp,
        &policy,
        request.timeout_s.is_none(),
        || gp::spare_template(&config),
    ) {
        Some(pool) => gp::eval_with_spare(&pool, &request.expr, cancel),
        None => gp::eval(
            runtime.sandbox().as_ref(),
            &policy,
            &config,
            &request.expr,
            cancel,
        ),
    };
    let call = CallOutcome::NumberTheory(EvalOutcome {
        method: Method::Eval,
        status: eval.status,
        result: eval.result,
    });
    let input = if eval.stdin.is_empty() {
        request.expr.as_bytes().to_vec()
    } else {
        eval.stdin
    };
    BackendRun::from_outcome(
        call,
        Evidence::Advisory,
        ready.identity.clone(),
        ArtifactBytes::new(input, "text/x-gp"),
        &eval.outcome,
    )
}

fn run_sympy(
    runtime: &Runtime,
    ready: &ReadyBackend,
    request: &CasRequest,
    limits: &Limits,
    cancel: &CancelToken,
) -> BackendRun {
    let policy = sympy::sandbox_policy(&ready.binds, limits);
    let config = sympy::WorkerConfig::new(&sympy::python_env());
    let worker_request = sympy::WorkerRequest::from_call(request);
    let eval = match runtime.pool(
        BackendKind::Sympy,
        &policy,
        request.timeout_s.is_none(),
        || sympy::spare_template(&config),
    ) {
        Some(pool) => sympy::eval_with_spare(&pool, &worker_request, cancel),
        None => sympy::eval(
            runtime.sandbox().as_ref(),
            &policy,
            &config,
            &worker_request,
            cancel,
        ),
    };
    let call = CallOutcome::ComputerAlgebra(EvalOutcome {
        method: request.op,
        status: eval.status,
        result: eval.result,
    });
    let input = if eval.stdin.is_empty() {
        worker_request.json_line()
    } else {
        eval.stdin
    };
    BackendRun::from_outcome(
        call,
        Evidence::Advisory,
        ready.identity.clone(),
        ArtifactBytes::new(input, "application/json"),
        &eval.outcome,
    )
}
