//! The Cap'n Proto server: a thin adapter from the generated `Server` traits to
//! [`capsci_service::Session`]. Each capability object holds a [`Core`] (the session, the set of
//! jobs, artifacts and records it made, and the server's shared state); calls run on tokio's
//! blocking pool because the core call path blocks, while capnp-rpc itself stays on a `LocalSet`.

use crate::convert;
use crate::{math_capnp, proof_capnp, session_capnp, solvers_capnp, store_capnp};
use capnp::capability::Rc as CapRc;
use capnp::Error;
use capsci_core::{CallRequest, Envelope, Interface};
use capsci_sandbox::CancelToken;
use capsci_service::tokens::TokenStore;
use capsci_service::{BackendKind, CallError, Principal, Service, Session};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// Largest slice `ArtifactStore.read` returns at once.
const MAX_READ: usize = 8 * 1024 * 1024;
/// Longest a `Job.wait` waits (every job ends well before: its limits end it).
const WAIT_FOR: Duration = Duration::from_secs(7 * 24 * 3600);

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn failed(message: impl std::fmt::Display) -> Error {
    Error::failed(message.to_string())
}

fn call_error(error: CallError) -> Error {
    failed(error)
}

/// State every session of one server shares: the service and the cancel tokens of running jobs.
#[derive(Debug)]
pub struct Shared {
    service: Arc<Service>,
    running: Mutex<HashMap<String, CancelToken>>,
    /// One root session per token, so every connection opened with the same token counts
    /// against the same quotas (a token holder cannot multiply its quota by reconnecting).
    token_roots: Mutex<HashMap<String, Session>>,
}

impl Shared {
    /// Shared state over `service`.
    pub fn new(service: Arc<Service>) -> Arc<Self> {
        Arc::new(Shared {
            service,
            running: Mutex::new(HashMap::new()),
            token_roots: Mutex::new(HashMap::new()),
        })
    }

    /// The service.
    pub fn service(&self) -> &Arc<Service> {
        &self.service
    }

    /// Cancels every running job (their process trees are killed); used at shutdown.
    pub fn cancel_all(&self) {
        for token in lock(&self.running).values() {
            token.cancel();
        }
    }

    /// How many jobs are running now.
    pub fn running_jobs(&self) -> usize {
        lock(&self.running).len()
    }
}

/// What a session made: its jobs, artifacts and provenance records. An attenuated child records
/// into its ancestors too, so a parent can read its sub-agents' results, not the reverse.
#[derive(Debug, Default)]
struct Owned {
    jobs: Mutex<HashSet<String>>,
    artifacts: Mutex<HashSet<String>>,
    records: Mutex<HashSet<String>>,
    parent: Option<Arc<Owned>>,
}

impl Owned {
    fn each(&self, f: &mut dyn FnMut(&Owned)) {
        f(self);
        if let Some(p) = &self.parent {
            p.each(f);
        }
    }

    fn add_job(&self, id: &str) {
        self.each(&mut |o| {
            lock(&o.jobs).insert(id.to_string());
        });
    }

    fn add_envelope(&self, e: &Envelope) {
        let mut ids: Vec<String> = [&e.artifacts.input, &e.artifacts.output, &e.artifacts.log]
            .into_iter()
            .flatten()
            .cloned()
            .collect();
        ids.extend(e.artifacts.extra.values().cloned());
        if let capsci_core::CallOutcome::SmtSolver(o) = &e.call {
            for report in o.result.backends.iter().flatten() {
                let a = &report.artifacts;
                ids.extend([&a.input, &a.output, &a.log].into_iter().flatten().cloned());
                ids.extend(a.extra.values().cloned());
            }
        }
        let record = e.provenance.as_ref().map(|p| p.record.clone());
        self.each(&mut |o| {
            lock(&o.jobs).insert(e.job.clone());
            lock(&o.artifacts).extend(ids.iter().cloned());
            if let Some(r) = &record {
                lock(&o.records).insert(r.clone());
            }
        });
    }
}

/// One session as the RPC objects see it.
#[derive(Debug)]
pub struct Core {
    session: Session,
    owned: Arc<Owned>,
    shared: Arc<Shared>,
}

impl Core {
    fn granted(&self, interface: Interface) -> bool {
        interface
            .methods()
            .iter()
            .any(|m| self.session.grant().allows(interface, *m))
    }

    fn require(&self, interface: Interface) -> Result<(), Error> {
        if self.granted(interface) {
            Ok(())
        } else {
            Err(failed(format!(
                "{interface} is not granted to this session"
            )))
        }
    }

    /// Submits and runs a call to its end (blocking).
    fn run(&self, request: CallRequest, cancel: &CancelToken) -> Result<Envelope, CallError> {
        let id = self.session.submit_job(&request)?;
        self.owned.add_job(&id);
        self.run_submitted(&id, request, cancel)
    }

    fn run_submitted(
        &self,
        id: &str,
        request: CallRequest,
        cancel: &CancelToken,
    ) -> Result<Envelope, CallError> {
        lock(&self.shared.running).insert(id.to_string(), cancel.clone());
        let result = self.session.run_job(id, request, cancel);
        lock(&self.shared.running).remove(id);
        if let Ok(e) = &result {
            self.owned.add_envelope(e);
        }
        result
    }
}

/// A session's capability: the bootstrap object of a unix socket, or what `Gateway.session`
/// and `attenuate` hand out.
pub fn session_client(
    shared: Arc<Shared>,
    session: Session,
) -> session_capnp::scientific_session::Client {
    session_client_with(shared, session, None)
}

fn session_client_with(
    shared: Arc<Shared>,
    session: Session,
    parent: Option<Arc<Owned>>,
) -> session_capnp::scientific_session::Client {
    let core = Arc::new(Core {
        session,
        owned: Arc::new(Owned {
            parent,
            ..Owned::default()
        }),
        shared,
    });
    capnp_rpc::new_client(SessionImpl { core })
}

/// Cancels the job when the RPC call is dropped (the client went away or cancelled the call)
/// before it finished.
struct CancelOnDrop(Option<CancelToken>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        if let Some(token) = self.0.take() {
            token.cancel();
        }
    }
}

/// The outcome of one call: its job id and, unless detached, its envelope and that envelope's
/// JSON.
struct Ran {
    job: String,
    envelope: Option<(Envelope, String)>,
}

async fn execute(core: &Arc<Core>, request: CallRequest, detach: bool) -> Result<Ran, Error> {
    let token = CancelToken::new();
    if detach {
        let c = core.clone();
        let submitted = request.clone();
        let job = tokio::task::spawn_blocking(move || c.session.submit_job(&submitted))
            .await
            .map_err(failed)?
            .map_err(call_error)?;
        core.owned.add_job(&job);
        lock(&core.shared.running).insert(job.clone(), token.clone());
        let (c, id) = (core.clone(), job.clone());
        drop(tokio::task::spawn_blocking(move || {
            let _ = c.run_submitted(&id, request, &token);
        }));
        return Ok(Ran {
            job,
            envelope: None,
        });
    }
    let mut guard = CancelOnDrop(Some(token.clone()));
    let c = core.clone();
    let envelope = tokio::task::spawn_blocking(move || c.run(request, &token))
        .await
        .map_err(failed)?
        .map_err(call_error)?;
    guard.0 = None;
    let json = serde_json::to_string(&envelope).map_err(failed)?;
    Ok(Ran {
        job: envelope.job.clone(),
        envelope: Some((envelope, json)),
    })
}

fn job_client(core: &Arc<Core>, id: String) -> session_capnp::job::Client {
    capnp_rpc::new_client(JobImpl {
        core: core.clone(),
        id,
    })
}

struct SessionImpl {
    core: Arc<Core>,
}

impl session_capnp::scientific_session::Server for SessionImpl {
    async fn catalog(
        self: CapRc<Self>,
        _: session_capnp::scientific_session::CatalogParams,
        mut results: session_capnp::scientific_session::CatalogResults,
    ) -> Result<(), Error> {
        results
            .get()
            .set_catalog(capnp_rpc::new_client(CatalogImpl {
                core: self.core.clone(),
            }));
        Ok(())
    }

    async fn number_theory(
        self: CapRc<Self>,
        _: session_capnp::scientific_session::NumberTheoryParams,
        mut results: session_capnp::scientific_session::NumberTheoryResults,
    ) -> Result<(), Error> {
        self.core.require(Interface::NumberTheory)?;
        results
            .get()
            .set_cap(capnp_rpc::new_client(NumberTheoryImpl {
                core: self.core.clone(),
            }));
        Ok(())
    }

    async fn computer_algebra(
        self: CapRc<Self>,
        _: session_capnp::scientific_session::ComputerAlgebraParams,
        mut results: session_capnp::scientific_session::ComputerAlgebraResults,
    ) -> Result<(), Error> {
        self.core.require(Interface::ComputerAlgebra)?;
        results
            .get()
            .set_cap(capnp_rpc::new_client(ComputerAlgebraImpl {
                core: self.core.clone(),
            }));
        Ok(())
    }

    async fn smt_solver(
        self: CapRc<Self>,
        _: session_capnp::scientific_session::SmtSolverParams,
        mut results: session_capnp::scientific_session::SmtSolverResults,
    ) -> Result<(), Error> {
        self.core.require(Interface::SmtSolver)?;
        results.get().set_cap(capnp_rpc::new_client(SmtSolverImpl {
            core: self.core.clone(),
        }));
        Ok(())
    }

    async fn optimization_solver(
        self: CapRc<Self>,
        _: session_capnp::scientific_session::OptimizationSolverParams,
        mut results: session_capnp::scientific_session::OptimizationSolverResults,
    ) -> Result<(), Error> {
        self.core.require(Interface::OptimizationSolver)?;
        results
            .get()
            .set_cap(capnp_rpc::new_client(OptimizationSolverImpl {
                core: self.core.clone(),
            }));
        Ok(())
    }

    async fn proof_checker(
        self: CapRc<Self>,
        _: session_capnp::scientific_session::ProofCheckerParams,
        mut results: session_capnp::scientific_session::ProofCheckerResults,
    ) -> Result<(), Error> {
        self.core.require(Interface::ProofChecker)?;
        results
            .get()
            .set_cap(capnp_rpc::new_client(ProofCheckerImpl {
                core: self.core.clone(),
            }));
        Ok(())
    }

    async fn notebook_session(
        self: CapRc<Self>,
        _: session_capnp::scientific_session::NotebookSessionParams,
        _: session_capnp::scientific_session::NotebookSessionResults,
    ) -> Result<(), Error> {
        Err(Error::unimplemented(
            "not implemented: NotebookSession is interface only (no backend implements it)".into(),
        ))
    }

    async fn artifacts(
        self: CapRc<Self>,
        _: session_capnp::scientific_session::ArtifactsParams,
        mut results: session_capnp::scientific_session::ArtifactsResults,
    ) -> Result<(), Error> {
        results
            .get()
            .set_store(capnp_rpc::new_client(ArtifactStoreImpl {
                core: self.core.clone(),
            }));
        Ok(())
    }

    async fn provenance(
        self: CapRc<Self>,
        _: session_capnp::scientific_session::ProvenanceParams,
        mut results: session_capnp::scientific_session::ProvenanceResults,
    ) -> Result<(), Error> {
        results
            .get()
            .set_log(capnp_rpc::new_client(ProvenanceLogImpl {
                core: self.core.clone(),
            }));
        Ok(())
    }

    async fn job(
        self: CapRc<Self>,
        params: session_capnp::scientific_session::JobParams,
        mut results: session_capnp::scientific_session::JobResults,
    ) -> Result<(), Error> {
        let id = params.get()?.get_id()?.to_string()?;
        if !lock(&self.core.owned.jobs).contains(&id) {
            return Err(failed(format!("job {id} not found in this session")));
        }
        results.get().set_job(job_client(&self.core, id));
        Ok(())
    }

    async fn grant(
        self: CapRc<Self>,
        _: session_capnp::scientific_session::GrantParams,
        mut results: session_capnp::scientific_session::GrantResults,
    ) -> Result<(), Error> {
        convert::set_grant(results.get().init_grant(), self.core.session.grant());
        Ok(())
    }

    async fn attenuate(
        self: CapRc<Self>,
        params: session_capnp::scientific_session::AttenuateParams,
        mut results: session_capnp::scientific_session::AttenuateResults,
    ) -> Result<(), Error> {
        let requested = convert::grant_from_wire(params.get()?.get_grant()?)?;
        let session = &self.core.session;
        let child = session.attenuate(&requested, session.principal().clone());
        results.get().set_session(session_client_with(
            self.core.shared.clone(),
            child,
            Some(self.core.owned.clone()),
        ));
        Ok(())
    }
}

struct NumberTheoryImpl {
    core: Arc<Core>,
}

impl math_capnp::number_theory::Server for NumberTheoryImpl {
    async fn eval(
        self: CapRc<Self>,
        params: math_capnp::number_theory::EvalParams,
        mut results: math_capnp::number_theory::EvalResults,
    ) -> Result<(), Error> {
        let p = params.get()?;
        let request = convert::gp_request(p)?;
        let ran = execute(&self.core, request, convert::detach(p.get_options()?)).await?;
        let mut r = results.get();
        match &ran.envelope {
            Some((e, json)) => convert::set_eval_result(r.reborrow().init_result(), e, json),
            None => r
                .reborrow()
                .init_result()
                .init_record()
                .set_job(ran.job.as_str()),
        }
        r.set_job(job_client(&self.core, ran.job));
        Ok(())
    }
}

struct ComputerAlgebraImpl {
    core: Arc<Core>,
}

impl math_capnp::computer_algebra::Server for ComputerAlgebraImpl {
    async fn run(
        self: CapRc<Self>,
        params: math_capnp::computer_algebra::RunParams,
        mut results: math_capnp::computer_algebra::RunResults,
    ) -> Result<(), Error> {
        let p = params.get()?;
        let request = convert::cas_request(p)?;
        let ran = execute(&self.core, request, convert::detach(p.get_options()?)).await?;
        let mut r = results.get();
        match &ran.envelope {
            Some((e, json)) => convert::set_eval_result(r.reborrow().init_result(), e, json),
            None => r
                .reborrow()
                .init_result()
                .init_record()
                .set_job(ran.job.as_str()),
        }
        r.set_job(job_client(&self.core, ran.job));
        Ok(())
    }
}

struct SmtSolverImpl {
    core: Arc<Core>,
}

impl solvers_capnp::smt_solver::Server for SmtSolverImpl {
    async fn check(
        self: CapRc<Self>,
        params: solvers_capnp::smt_solver::CheckParams,
        mut results: solvers_capnp::smt_solver::CheckResults,
    ) -> Result<(), Error> {
        let p = params.get()?;
        let request = convert::smt_request(p)?;
        let ran = execute(&self.core, request, convert::detach(p.get_options()?)).await?;
        let mut r = results.get();
        match &ran.envelope {
            Some((e, json)) => convert::set_smt_result(r.reborrow().init_result(), e, json),
            None => r
                .reborrow()
                .init_result()
                .init_record()
                .set_job(ran.job.as_str()),
        }
        r.set_job(job_client(&self.core, ran.job));
        Ok(())
    }
}

struct OptimizationSolverImpl {
    core: Arc<Core>,
}

impl solvers_capnp::optimization_solver::Server for OptimizationSolverImpl {
    async fn solve(
        self: CapRc<Self>,
        params: solvers_capnp::optimization_solver::SolveParams,
        mut results: solvers_capnp::optimization_solver::SolveResults,
    ) -> Result<(), Error> {
        let p = params.get()?;
        let request = convert::opt_request(p)?;
        let ran = execute(&self.core, request, convert::detach(p.get_options()?)).await?;
        let mut r = results.get();
        match &ran.envelope {
            Some((e, json)) => convert::set_opt_result(r.reborrow().init_result(), e, json),
            None => r
                .reborrow()
                .init_result()
                .init_record()
                .set_job(ran.job.as_str()),
        }
        r.set_job(job_client(&self.core, ran.job));
        Ok(())
    }
}

struct ProofCheckerImpl {
    core: Arc<Core>,
}

impl proof_capnp::proof_checker::Server for ProofCheckerImpl {
    async fn check(
        self: CapRc<Self>,
        params: proof_capnp::proof_checker::CheckParams,
        mut results: proof_capnp::proof_checker::CheckResults,
    ) -> Result<(), Error> {
        let p = params.get()?;
        let request = convert::proof_request(p)?;
        let ran = execute(&self.core, request, convert::detach(p.get_options()?)).await?;
        let mut r = results.get();
        match &ran.envelope {
            Some((e, json)) => convert::set_proof_result(r.reborrow().init_result(), e, json),
            None => r
                .reborrow()
                .init_result()
                .init_record()
                .set_job(ran.job.as_str()),
        }
        r.set_job(job_client(&self.core, ran.job));
        Ok(())
    }

    async fn goals(
        self: CapRc<Self>,
        params: proof_capnp::proof_checker::GoalsParams,
        mut results: proof_capnp::proof_checker::GoalsResults,
    ) -> Result<(), Error> {
        let request = convert::goals_request(params.get()?)?;
        let ran = execute(&self.core, request, false).await?;
        if let Some((e, json)) = &ran.envelope {
            convert::set_proof_result(results.get().init_result(), e, json);
        }
        Ok(())
    }
}

struct JobImpl {
    core: Arc<Core>,
    id: String,
}

impl session_capnp::job::Server for JobImpl {
    async fn info(
        self: CapRc<Self>,
        _: session_capnp::job::InfoParams,
        mut results: session_capnp::job::InfoResults,
    ) -> Result<(), Error> {
        let (core, id) = (self.core.clone(), self.id.clone());
        let job = tokio::task::spawn_blocking(move || core.shared.service.store().jobs().get(&id))
            .await
            .map_err(failed)?
            .map_err(failed)?
            .ok_or_else(|| failed(format!("job {} not found", self.id)))?;
        let mut r = results.get();
        r.set_id(job.id.as_str());
        r.set_state(convert::job_state(job.state));
        r.set_interface(job.interface.as_str());
        r.set_method(job.method.as_str());
        Ok(())
    }

    async fn wait(
        self: CapRc<Self>,
        _: session_capnp::job::WaitParams,
        mut results: session_capnp::job::WaitResults,
    ) -> Result<(), Error> {
        let (core, id) = (self.core.clone(), self.id.clone());
        let job = tokio::task::spawn_blocking(move || {
            core.shared.service.store().jobs().wait(&id, WAIT_FOR)
        })
        .await
        .map_err(failed)?
        .map_err(failed)?;
        let Some(value) = job.envelope else {
            return Err(failed(format!(
                "job {} ended {} without an envelope: {}",
                job.id,
                job.state.as_str(),
                job.error.unwrap_or_default()
            )));
        };
        // Re-serialised through the typed envelope, so the JSON is byte for byte what `--json`
        // prints (field order included).
        let envelope: Envelope = serde_json::from_value(value).map_err(failed)?;
        let json = serde_json::to_string(&envelope).map_err(failed)?;
        results.get().set_envelope_json(json.as_str());
        Ok(())
    }

    async fn cancel(
        self: CapRc<Self>,
        _: session_capnp::job::CancelParams,
        _: session_capnp::job::CancelResults,
    ) -> Result<(), Error> {
        let token = lock(&self.core.shared.running).get(&self.id).cloned();
        match token {
            // This server runs it: killing its process tree is immediate.
            Some(token) => token.cancel(),
            // Another process runs it (or it is final): ask through the store.
            None => {
                let (core, id) = (self.core.clone(), self.id.clone());
                tokio::task::spawn_blocking(move || {
                    core.shared.service.store().jobs().request_cancel(&id)
                })
                .await
                .map_err(failed)?
                .map_err(failed)?;
            }
        }
        Ok(())
    }
}

struct CatalogImpl {
    core: Arc<Core>,
}

fn backend_kind(name: &str) -> Option<BackendKind> {
    BackendKind::ALL.iter().copied().find(|k| k.name() == name)
}

impl session_capnp::scientific_catalog::Server for CatalogImpl {
    async fn list(
        self: CapRc<Self>,
        _: session_capnp::scientific_catalog::ListParams,
        mut results: session_capnp::scientific_catalog::ListResults,
    ) -> Result<(), Error> {
        let core = self.core.clone();
        let entries = tokio::task::spawn_blocking(move || {
            BackendKind::ALL
                .iter()
                .filter(|k| core.granted(k.interface()))
                .map(|k| (*k, core.shared.service.runtime().ready(*k)))
                .collect::<Vec<_>>()
        })
        .await
        .map_err(failed)?;
        let mut list = results.get().init_backends(entries.len() as u32);
        for (i, (kind, ready)) in entries.iter().enumerate() {
            let mut b = list.reborrow().get(i as u32);
            b.set_name(kind.name());
            b.set_interface(kind.interface().as_str());
            b.set_license(kind.license());
            b.set_available(ready.is_ok());
            if let Ok(r) = ready {
                b.set_version(r.identity.version.as_str());
                b.set_closure(r.identity.closure.as_str());
            }
            let caveats = kind.caveats();
            let mut c = b.init_caveats(caveats.len() as u32);
            for (j, text) in caveats.iter().enumerate() {
                c.set(j as u32, *text);
            }
        }
        Ok(())
    }

    async fn closure(
        self: CapRc<Self>,
        params: session_capnp::scientific_catalog::ClosureParams,
        mut results: session_capnp::scientific_catalog::ClosureResults,
    ) -> Result<(), Error> {
        let name = params.get()?.get_backend()?.to_string()?;
        let kind = backend_kind(&name)
            .filter(|k| self.core.granted(k.interface()))
            .ok_or_else(|| failed(format!("no backend `{name}` in this session's catalog")))?;
        let core = self.core.clone();
        let closure = tokio::task::spawn_blocking(move || {
            let ready = core.shared.service.runtime().ready(kind).map_err(failed)?;
            core.shared
                .service
                .store()
                .closures()
                .get(&ready.identity.closure)
                .map_err(failed)?
                .ok_or_else(|| failed(format!("closure of {name} not stored")))
        })
        .await
        .map_err(failed)??;
        results
            .get()
            .set_closure(capnp_rpc::new_client(ClosureImpl { closure }));
        Ok(())
    }
}

struct ClosureImpl {
    closure: capsci_store::PackageClosure,
}

impl store_capnp::package_closure::Server for ClosureImpl {
    async fn id(
        self: CapRc<Self>,
        _: store_capnp::package_closure::IdParams,
        mut results: store_capnp::package_closure::IdResults,
    ) -> Result<(), Error> {
        results.get().set_id(self.closure.id.as_str());
        Ok(())
    }

    async fn entries(
        self: CapRc<Self>,
        _: store_capnp::package_closure::EntriesParams,
        mut results: store_capnp::package_closure::EntriesResults,
    ) -> Result<(), Error> {
        let entries = &self.closure.entries;
        let mut list = results.get().init_entries(entries.len() as u32);
        for (i, e) in entries.iter().enumerate() {
            let mut b = list.reborrow().get(i as u32);
            b.set_path(e.path.to_string_lossy().as_ref());
            let kind = serde_json::to_value(e.kind)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default();
            b.set_kind(kind.as_str());
            b.set_hash(e.hash.as_deref().unwrap_or(""));
            b.set_size(e.size);
            b.set_package(e.package.as_deref().unwrap_or(""));
            b.set_version(e.version.as_deref().unwrap_or(""));
            b.set_license(e.license.as_deref().unwrap_or(""));
        }
        Ok(())
    }
}

struct ArtifactStoreImpl {
    core: Arc<Core>,
}

impl ArtifactStoreImpl {
    fn owned_id(&self, id: &str) -> Result<capsci_store::ArtifactId, Error> {
        if !lock(&self.core.owned.artifacts).contains(id) {
            return Err(failed(format!("artifact {id} not found in this session")));
        }
        capsci_store::ArtifactId::parse(id).map_err(failed)
    }
}

impl store_capnp::artifact_store::Server for ArtifactStoreImpl {
    async fn stat(
        self: CapRc<Self>,
        params: store_capnp::artifact_store::StatParams,
        mut results: store_capnp::artifact_store::StatResults,
    ) -> Result<(), Error> {
        let id = self.owned_id(params.get()?.get_id()?.to_str()?)?;
        let core = self.core.clone();
        let meta =
            tokio::task::spawn_blocking(move || core.shared.service.store().artifacts().meta(&id))
                .await
                .map_err(failed)?
                .map_err(failed)?
                .ok_or_else(|| failed("artifact not stored"))?;
        let mut r = results.get();
        r.set_size(meta.size);
        r.set_media_type(meta.media_type.as_str());
        Ok(())
    }

    async fn read(
        self: CapRc<Self>,
        params: store_capnp::artifact_store::ReadParams,
        mut results: store_capnp::artifact_store::ReadResults,
    ) -> Result<(), Error> {
        let p = params.get()?;
        let id = self.owned_id(p.get_id()?.to_str()?)?;
        let offset = usize::try_from(p.get_offset()).unwrap_or(usize::MAX);
        let length = (p.get_length() as usize).min(MAX_READ);
        let core = self.core.clone();
        // The whole artifact is read and verified against its id before any slice is returned.
        let bytes = tokio::task::spawn_blocking(move || {
            core.shared.service.store().artifacts().get_bytes(&id)
        })
        .await
        .map_err(failed)?
        .map_err(failed)?;
        let start = offset.min(bytes.len());
        let end = start.saturating_add(length).min(bytes.len());
        results.get().set_bytes(&bytes[start..end]);
        Ok(())
    }
}

struct ProvenanceLogImpl {
    core: Arc<Core>,
}

impl ProvenanceLogImpl {
    fn require_owned(&self, id: &str) -> Result<(), Error> {
        if lock(&self.core.owned.records).contains(id) {
            Ok(())
        } else {
            Err(failed(format!("record {id} not found in this session")))
        }
    }
}

fn set_record(mut b: store_capnp::provenance_record::Builder<'_>, r: &capsci_store::Record) {
    b.set_id(r.id.as_str());
    b.set_seq(r.seq);
    b.set_hash(r.hash.as_str());
    b.set_prev_hash(r.prev.as_str());
    b.set_json(serde_json::to_string(r).unwrap_or_default().as_str());
}

impl store_capnp::provenance_log::Server for ProvenanceLogImpl {
    async fn get(
        self: CapRc<Self>,
        params: store_capnp::provenance_log::GetParams,
        mut results: store_capnp::provenance_log::GetResults,
    ) -> Result<(), Error> {
        let id = params.get()?.get_id()?.to_string()?;
        self.require_owned(&id)?;
        let core = self.core.clone();
        let record =
            tokio::task::spawn_blocking(move || core.shared.service.store().log().get(&id))
                .await
                .map_err(failed)?
                .map_err(failed)?
                .ok_or_else(|| failed("record not stored"))?;
        set_record(results.get().init_record(), &record);
        Ok(())
    }

    async fn list(
        self: CapRc<Self>,
        params: store_capnp::provenance_log::ListParams,
        mut results: store_capnp::provenance_log::ListResults,
    ) -> Result<(), Error> {
        let p = params.get()?;
        let (mut after, limit) = (p.get_after_seq(), p.get_limit().clamp(1, 1000) as usize);
        let core = self.core.clone();
        let records = tokio::task::spawn_blocking(move || {
            let owned = lock(&core.owned.records).clone();
            let mut out = Vec::new();
            while out.len() < limit {
                let page = core.shared.service.store().log().list(after, 1000)?;
                let Some(last) = page.last() else { break };
                after = last.seq;
                out.extend(page.into_iter().filter(|r| owned.contains(&r.id)));
            }
            out.truncate(limit);
            Ok::<_, capsci_store::LogError>(out)
        })
        .await
        .map_err(failed)?
        .map_err(failed)?;
        let mut list = results.get().init_records(records.len() as u32);
        for (i, r) in records.iter().enumerate() {
            set_record(list.reborrow().get(i as u32), r);
        }
        Ok(())
    }

    async fn verify(
        self: CapRc<Self>,
        _: store_capnp::provenance_log::VerifyParams,
        mut results: store_capnp::provenance_log::VerifyResults,
    ) -> Result<(), Error> {
        let core = self.core.clone();
        let report = tokio::task::spawn_blocking(move || {
            core.shared
                .service
                .store()
                .log()
                .verify(&capsci_store::VerifyOptions::default())
        })
        .await
        .map_err(failed)?
        .map_err(failed)?;
        let mut r = results.get();
        r.set_ok(report.ok());
        if let Some(problem) = report.first_problem() {
            r.set_first_bad(problem.to_string().as_str());
        }
        r.set_detail(
            format!(
                "{} records, {} artifacts re-hashed, {} checkpoints checked, {} problems",
                report.records,
                report.artifacts_checked,
                report.checkpoints_checked,
                report.problems.len()
            )
            .as_str(),
        );
        Ok(())
    }

    async fn export_prov(
        self: CapRc<Self>,
        params: store_capnp::provenance_log::ExportProvParams,
        mut results: store_capnp::provenance_log::ExportProvResults,
    ) -> Result<(), Error> {
        let id = params.get()?.get_id()?.to_string()?;
        self.require_owned(&id)?;
        let core = self.core.clone();
        let prov =
            tokio::task::spawn_blocking(move || core.shared.service.store().log().export_prov(&id))
                .await
                .map_err(failed)?
                .map_err(failed)?;
        results.get().set_prov_json(prov.to_string().as_str());
        Ok(())
    }
}

/// The bootstrap of a TCP listener: a session only for a valid bearer token.
pub struct GatewayImpl {
    shared: Arc<Shared>,
    tokens: TokenStore,
}

impl GatewayImpl {
    /// A gateway resolving tokens from `tokens` into sessions over `shared`'s service.
    pub fn new(shared: Arc<Shared>, tokens: TokenStore) -> Self {
        GatewayImpl { shared, tokens }
    }
}

impl session_capnp::gateway::Server for GatewayImpl {
    async fn session(
        self: CapRc<Self>,
        params: session_capnp::gateway::SessionParams,
        mut results: session_capnp::gateway::SessionResults,
    ) -> Result<(), Error> {
        let token = params.get()?.get_token()?.to_string()?;
        let (tokens, key) = (self.tokens.clone(), token.clone());
        let resolved = tokio::task::spawn_blocking(move || tokens.resolve(&key))
            .await
            .map_err(failed)?
            .map_err(|e| failed(format!("refused: {e}")))?;
        // Resolved again on every connection (a revoked token is refused at once); the quota
        // ledger is the token's, shared by all its connections.
        let principal = Principal {
            id: resolved.principal,
            runner: resolved.runner,
        };
        let root = {
            let mut roots = lock(&self.shared.token_roots);
            let root = roots.entry(token).or_insert_with(|| {
                self.shared
                    .service
                    .session(resolved.grant.clone(), principal.clone())
            });
            if root.grant() != &resolved.grant || root.principal() != &principal {
                *root = self.shared.service.session(resolved.grant, principal);
            }
            root.clone()
        };
        let session = root.attenuate(root.grant(), root.principal().clone());
        results
            .get()
            .set_session(session_client(self.shared.clone(), session));
        Ok(())
    }
}
