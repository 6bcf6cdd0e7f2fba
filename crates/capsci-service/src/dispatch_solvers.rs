//! The solver and proof arms of the dispatch (SMT, optimisation, proof).

use crate::dispatch::{not_run, BackendRun};
use crate::runtime::{ReadyBackend, Runtime};
use capsci_core::results::{OptResult, ProofResult, SmtResult};
use capsci_core::{
    CallOutcome, CallRequest, Limits, OptOutcome, OptStatus, ProofOutcome, ProofStatus, SmtOutcome,
    SmtStatus,
};
use capsci_sandbox::CancelToken;

/// `backend_error` for a solver or proof request that could not run, with `message`.
pub(crate) fn unavailable_call(request: &CallRequest, message: Option<String>) -> CallOutcome {
    match request {
        CallRequest::OptSolve(_) => CallOutcome::OptimizationSolver(OptOutcome {
            method: request.method(),
            status: OptStatus::BackendError,
            result: OptResult {
                message,
                ..Default::default()
            },
        }),
        CallRequest::ProofCheck(_) | CallRequest::ProofGoals(_) => {
            CallOutcome::ProofChecker(ProofOutcome {
                method: request.method(),
                status: ProofStatus::BackendError,
                result: ProofResult {
                    message,
                    ..Default::default()
                },
            })
        }
        _ => CallOutcome::SmtSolver(SmtOutcome {
            method: request.method(),
            status: SmtStatus::BackendError,
            result: SmtResult {
                message,
                ..Default::default()
            },
        }),
    }
}

/// Runs a solver or proof request.
pub(crate) fn run(
    _runtime: &Runtime,
    ready: &ReadyBackend,
    request: &CallRequest,
    _limits: &Limits,
    _cancel: &CancelToken,
) -> BackendRun {
    let message = format!("{} is not wired into the service yet", request.interface());
    not_run(
        unavailable_call(request, Some(message)),
        ready.identity.clone(),
        request,
    )
}
