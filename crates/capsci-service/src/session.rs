//! The one core call path: grant check, quota admission, job, backend run, artifacts,
//! provenance record, envelope. Every front end goes through [`Session::call`].

use crate::dispatch::{self, ArtifactBytes, BackendRun};
use crate::grant::{clamp_limits, Grant};
use crate::ledger::{Ledger, QuotaExceeded};
use crate::Service;
use capsci_core::{
    ArtifactRefs, CallOutcome, CallRequest, Envelope, EvalStatus, Interface, JobState, Limits,
    Method, OptStatus, ProofStatus, ProvenanceRef, SmtStatus,
};
use capsci_sandbox::CancelToken;
use capsci_store::{util::now_rfc3339, RecordDraft};
use std::sync::Arc;
use std::time::Duration;

/// A signed checkpoint of the chain head is written after every this many records.
const CHECKPOINT_EVERY: u64 = 64;

/// The extra artifact holding the call's typed request (JSON).
pub const REQUEST_ROLE: &str = "request";
/// The extra artifact holding the call's interface, method, status and result (JSON).
pub const RESULT_ROLE: &str = "result";

/// Who is calling: a user or agent id, and the runner/model metadata the caller supplies.
#[derive(Debug, Clone, PartialEq)]
pub struct Principal {
    /// User or agent id.
    pub id: String,
    /// Free metadata (`{"runner": ..., "model": ..., "session": ...}`), recorded as given.
    pub runner: serde_json::Value,
}

impl Principal {
    /// The local user running the command line.
    pub fn local_user() -> Self {
        let user = std::env::var("USER")
            .or_else(|_| std::env::var("LOGNAME"))
            .unwrap_or_else(|_| "local".into());
        Principal {
            id: format!("user:{user}"),
            runner: serde_json::json!({"front_end": "cli"}),
        }
    }
}

/// Why no job could be made for a call.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CallError {
    /// The session's grant does not include this method.
    #[error("{interface}.{method} is not granted to this session")]
    NotGranted {
        /// The interface.
        interface: Interface,
        /// The method.
        method: Method,
    },
    /// A quota is exhausted; the job was not run.
    #[error(transparent)]
    Quota(#[from] QuotaExceeded),
    /// The store failed (jobs, artifacts or log).
    #[error("store: {0}")]
    Store(String),
}

/// A session: a grant, a principal and the quota ledger, over the shared service.
#[derive(Debug, Clone)]
pub struct Session {
    service: Arc<Service>,
    grant: Grant,
    principal: Principal,
    ledger: Arc<Ledger>,
}

impl Session {
    pub(crate) fn new(
        service: Arc<Service>,
        grant: Grant,
        principal: Principal,
        parent: Option<Arc<Ledger>>,
    ) -> Self {
        let ledger = Ledger::new(grant.quotas.clone(), parent);
        Session {
            service,
            grant,
            principal,
            ledger,
        }
    }

    /// The grant this session holds.
    pub fn grant(&self) -> &Grant {
        &self.grant
    }

    /// The principal calls are recorded for.
    pub fn principal(&self) -> &Principal {
        &self.principal
    }

    /// The service behind the session.
    pub fn service(&self) -> &Arc<Service> {
        &self.service
    }

    /// A narrower session for a sub-agent: the intersection of `requested` and this grant, whose
    /// use also counts against this session's quotas.
    pub fn attenuate(&self, requested: &Grant, principal: Principal) -> Session {
        let grant = self.grant.attenuate(requested);
        Session::new(
            self.service.clone(),
            grant,
            principal,
            Some(self.ledger.clone()),
        )
    }

    /// The limits a request runs under: the service defaults, the caller's timeout, clamped to
    /// the grant's ceiling and the CPU seconds left.
    pub fn limits_for(&self, request: &CallRequest) -> Limits {
        let mut limits = self.service.runtime().default_limits().clone();
        if let Some(t) = request.timeout_s().filter(|t| t.is_finite() && *t > 0.0) {
            match request {
                // The solver's own time limit must win over the sandbox's: leave it room to
                // report its incumbent (`feasible`) before the sandbox kills it.
                CallRequest::OptSolve(_) => {
                    limits.wall_s = t * 1.5 + 5.0;
                    limits.cpu_s = limits.wall_s;
                }
                _ => {
                    limits.wall_s = t;
                    limits.cpu_s = t;
                }
            }
        }
        let mut limits = clamp_limits(&limits, &self.grant.quotas.max_limits);
        limits.cpu_s = limits.cpu_s.min(self.ledger.cpu_seconds_left().max(0.001));
        limits
    }

    /// Runs one call to its end and returns its envelope. Errors only where no job could be
    /// made (not granted, quota, store failure); every other outcome is an envelope.
    pub fn call(&self, request: CallRequest, cancel: &CancelToken) -> Result<Envelope, CallError> {
        self.call_now(request, None, cancel)
    }

    /// Runs one call under exactly `limits` (clamped to the grant), as a replay must.
    pub fn call_with_limits(
        &self,
        request: CallRequest,
        limits: Limits,
        cancel: &CancelToken,
    ) -> Result<Envelope, CallError> {
        self.call_now(request, Some(limits), cancel)
    }

    /// A synchronous call: grant, then admission (a refused call makes no job), then one job
    /// created already `running`.
    fn call_now(
        &self,
        request: CallRequest,
        limits: Option<Limits>,
        cancel: &CancelToken,
    ) -> Result<Envelope, CallError> {
        self.check_grant(&request)?;
        let admission = self.ledger.admit()?;
        let params = serde_json::to_value(&request).unwrap_or_default();
        let job = self
            .service
            .store()
            .jobs()
            .create_running(
                request.interface().as_str(),
                request.method().as_str(),
                &params,
            )
            .map_err(|e| CallError::Store(e.to_string()))?;
        self.execute(&job, request, limits, admission, cancel)
    }

    fn check_grant(&self, request: &CallRequest) -> Result<(), CallError> {
        let (interface, method) = (request.interface(), request.method());
        if self.grant.allows(interface, method) {
            Ok(())
        } else {
            Err(CallError::NotGranted { interface, method })
        }
    }

    /// Checks the grant and creates a `queued` job (durable at once: its id goes to a client);
    /// returns its id. [`Session::run_job`] runs it.
    pub fn submit_job(&self, request: &CallRequest) -> Result<String, CallError> {
        self.check_grant(request)?;
        let params = serde_json::to_value(request).unwrap_or_default();
        self.service
            .store()
            .jobs()
            .create(
                request.interface().as_str(),
                request.method().as_str(),
                &params,
            )
            .map_err(|e| CallError::Store(e.to_string()))
    }

    /// Runs a job created by [`Session::submit_job`] to its end.
    pub fn run_job(
        &self,
        job: &str,
        request: CallRequest,
        cancel: &CancelToken,
    ) -> Result<Envelope, CallError> {
        let store = self.service.store();
        let admission = match self.ledger.admit() {
            Ok(a) => a,
            Err(quota) => {
                let _ = store
                    .jobs()
                    .finish(job, JobState::Failed, None, Some(&quota.to_string()));
                return Err(quota.into());
            }
        };
        store
            .jobs()
            .mark_running(job)
            .map_err(|e| CallError::Store(e.to_string()))?;
        self.execute(job, request, None, admission, cancel)
    }

    /// Runs a `running` job: backend, artifacts, record, final state.
    fn execute(
        &self,
        job: &str,
        request: CallRequest,
        limits: Option<Limits>,
        admission: crate::ledger::Admission,
        cancel: &CancelToken,
    ) -> Result<Envelope, CallError> {
        let store = self.service.store();
        let limits = match limits {
            Some(wanted) => clamp_limits(&wanted, &self.grant.quotas.max_limits),
            None => self.limits_for(&request),
        };
        let watcher = CancelWatcher::start(self.service.clone(), job.to_string(), cancel.clone());
        let started_at = now_rfc3339();
        let mut run = dispatch::run(self.service.runtime(), &request, &limits, cancel);
        let finished_at = now_rfc3339();
        watcher.stop();
        let cancelled = cancel.is_cancelled() || run.exit == capsci_core::ExitReason::Cancelled;
        if cancelled {
            mark_cancelled(&mut run.call);
        }
        let outcome = self.record(job, &request, run, limits, started_at, finished_at);
        drop(admission);
        match outcome {
            Ok(envelope) => {
                let state = if cancelled {
                    JobState::Cancelled
                } else {
                    JobState::Succeeded
                };
                let json = serde_json::to_value(&envelope).unwrap_or_default();
                store
                    .jobs()
                    .finish(job, state, Some(&json), None)
                    .map_err(|e| CallError::Store(e.to_string()))?;
                Ok(envelope)
            }
            Err(error) => {
                let _ = store
                    .jobs()
                    .finish(job, JobState::Failed, None, Some(&error.to_string()));
                Err(error)
            }
        }
    }

    /// Stores the artifacts, builds the envelope and appends its provenance record.
    fn record(
        &self,
        job: &str,
        request: &CallRequest,
        run: BackendRun,
        limits: Limits,
        started_at: String,
        finished_at: String,
    ) -> Result<Envelope, CallError> {
        // Every artifact of the call in one batch (one round of syncs), in a fixed order: input,
        // output, log, the extras, then the typed request and result, so `capsci replay` can
        // rerun the call from its record alone and compare what it gets.
        let request_json = ArtifactBytes::new(
            serde_json::to_vec(request).unwrap_or_default(),
            "application/json",
        );
        let result_json = ArtifactBytes::new(
            serde_json::to_vec(&run.call).unwrap_or_default(),
            "application/json",
        );
        let mut roles: Vec<(Option<&str>, &ArtifactBytes)> =
            vec![(None, &run.input), (None, &run.output), (None, &run.log)];
        roles.extend(
            run.extra
                .iter()
                .map(|(role, bytes)| (Some(role.as_str()), bytes)),
        );
        roles.push((Some(REQUEST_ROLE), &request_json));
        roles.push((Some(RESULT_ROLE), &result_json));
        let items: Vec<(&[u8], &str)> = roles
            .iter()
            .map(|(_, a)| (a.bytes.as_slice(), a.media_type))
            .collect();
        let stored_bytes: u64 = items.iter().map(|(b, _)| b.len() as u64).sum();
        let ids = self
            .service
            .store()
            .artifacts()
            .put_batch(&items)
            .map_err(|e| CallError::Store(e.to_string()))?;
        let mut refs = ArtifactRefs::default();
        for (index, ((role, _), id)) in roles.iter().zip(ids).enumerate() {
            let id = id.to_string();
            match (index, role) {
                (0, _) => refs.input = Some(id),
                (1, _) => refs.output = Some(id),
                (2, _) => refs.log = Some(id),
                (_, Some(role)) => {
                    refs.extra.insert((*role).to_string(), id);
                }
                (_, None) => {}
            }
        }
        self.ledger.charge(run.usage.cpu_ms, stored_bytes);
        let mut host = self.service.runtime().host_facts();
        host.memory_limit_by = run.memory_limit_by;
        let mut envelope = Envelope {
            job: job.to_string(),
            call: run.call,
            evidence: run.evidence,
            artifacts: refs,
            provenance: None,
            backend: run.backend,
            sandbox: run.sandbox,
            limits,
            usage: run.usage,
            exit: run.exit,
            seed: request.seed(),
            host,
            started_at,
            finished_at,
        };
        let draft = RecordDraft::from_envelope(
            &envelope,
            &self.principal.id,
            self.principal.runner.clone(),
        );
        let record = self
            .service
            .store()
            .log()
            .append(draft)
            .map_err(|e| CallError::Store(e.to_string()))?;
        // A signed checkpoint of the chain head now and then, so truncating the log's tail is
        // detected too (verify checks every checkpoint against the chain).
        if record.seq % CHECKPOINT_EVERY == 0 {
            let _ = self.service.store().log().checkpoint();
        }
        envelope.provenance = Some(ProvenanceRef {
            record: record.id,
            hash: record.hash,
        });
        Ok(envelope)
    }
}

/// Sets the call's status to `cancelled`, whatever the backend said when it was killed.
fn mark_cancelled(call: &mut CallOutcome) {
    match call {
        CallOutcome::NumberTheory(o) => o.status = EvalStatus::Cancelled,
        CallOutcome::ComputerAlgebra(o) => o.status = EvalStatus::Cancelled,
        CallOutcome::SmtSolver(o) => o.status = SmtStatus::Cancelled,
        CallOutcome::OptimizationSolver(o) => o.status = OptStatus::Cancelled,
        CallOutcome::ProofChecker(o) => o.status = ProofStatus::Cancelled,
    }
}

/// Polls the store for a cancellation request from another process (`capsci job cancel`) and
/// turns it into the call's cancel token. Stopping it wakes it at once: it never delays a call.
struct CancelWatcher {
    stop: Option<std::sync::mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl CancelWatcher {
    fn start(service: Arc<Service>, job: String, cancel: CancelToken) -> Self {
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("capsci-cancel-watch".into())
            .spawn(move || {
                while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
                    stopped.recv_timeout(Duration::from_millis(100))
                {
                    if cancel.is_cancelled() {
                        break;
                    }
                    if service
                        .store()
                        .jobs()
                        .cancel_requested(&job)
                        .unwrap_or(false)
                    {
                        cancel.cancel();
                        break;
                    }
                }
            })
            .ok();
        CancelWatcher {
            stop: Some(stop),
            thread,
        }
    }

    fn stop(mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
