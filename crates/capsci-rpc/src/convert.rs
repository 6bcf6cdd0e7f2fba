//! Conversions between the wire (generated capnp types) and capsci's core types: RPC parameters
//! to a [`CallRequest`] (server side) and back (client side), an [`Envelope`] to the typed
//! result structs, and grants both ways. The JSON envelope stays canonical: every typed result is
//! filled from it and carries it verbatim in `record.envelopeJson`.

use crate::{common_capnp, math_capnp, proof_capnp, session_capnp, solvers_capnp};
use capsci_core::request::{
    CasRequest, GoalsRequest, GpRequest, OptRequest, ProjectFile, ProofBackendChoice, ProofRequest,
    SmtBackendChoice, SmtRequest,
};
use capsci_core::{
    CallOutcome, CallRequest, Envelope, EvalStatus, Evidence, Interface, Limits, Location, Method,
    OptStatus, ProofStatus, SmtStatus,
};
use capsci_service::{Grant, GrantedMethod, Quotas};

/// Why wire data could not be turned into a request or a grant.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConvertError {
    /// The message could not be read (malformed or truncated).
    #[error("malformed message: {0}")]
    Capnp(#[from] capnp::Error),
    /// A text field is not valid UTF-8.
    #[error("field {0} is not valid UTF-8")]
    Utf8(&'static str),
    /// A backend, operation, interface or format name is unknown.
    #[error("unknown {what} `{word}`")]
    Unknown {
        /// What was named.
        what: &'static str,
        /// The word given.
        word: String,
    },
    /// The granted method does not exist or a quota is invalid.
    #[error("invalid grant: {0}")]
    Grant(String),
}

impl From<ConvertError> for capnp::Error {
    fn from(error: ConvertError) -> Self {
        capnp::Error::failed(format!("invalid_input: {error}"))
    }
}

fn text(
    reader: capnp::Result<capnp::text::Reader<'_>>,
    field: &'static str,
) -> Result<String, ConvertError> {
    Ok(reader?
        .to_str()
        .map_err(|_| ConvertError::Utf8(field))?
        .to_string())
}

fn opt_text(
    reader: capnp::Result<capnp::text::Reader<'_>>,
    field: &'static str,
) -> Result<Option<String>, ConvertError> {
    let value = text(reader, field)?;
    Ok((!value.is_empty()).then_some(value))
}

fn positive(x: f64) -> Option<f64> {
    (x.is_finite() && x > 0.0).then_some(x)
}

fn nonzero(n: u32) -> Option<u32> {
    (n != 0).then_some(n)
}

/// The timeout and seed the common `CallOptions` carry (`limits.wallS`; zero is the default).
struct Options {
    timeout_s: Option<f64>,
    seed: Option<u64>,
}

fn options(reader: common_capnp::call_options::Reader<'_>) -> Result<Options, ConvertError> {
    let timeout_s = if reader.has_limits() {
        positive(reader.get_limits()?.get_wall_s())
    } else {
        None
    };
    Ok(Options {
        timeout_s,
        seed: reader.get_has_seed().then_some(reader.get_seed()),
    })
}

/// Whether the call asked to return as soon as the job is queued.
pub fn detach(reader: common_capnp::call_options::Reader<'_>) -> bool {
    reader.get_detach()
}

/// `NumberTheory.eval` parameters as a request.
pub fn gp_request(
    params: math_capnp::number_theory::eval_params::Reader<'_>,
) -> Result<CallRequest, ConvertError> {
    let options = options(params.get_options()?)?;
    Ok(CallRequest::NumberTheoryEval(GpRequest {
        expr: text(params.get_expr(), "expr")?,
        timeout_s: options.timeout_s,
    }))
}

/// `ComputerAlgebra.run` parameters as a request.
pub fn cas_request(
    params: math_capnp::computer_algebra::run_params::Reader<'_>,
) -> Result<CallRequest, ConvertError> {
    let options = options(params.get_options()?)?;
    let request = params.get_request()?;
    let op_word = text(request.get_op(), "op")?;
    let op = Method::parse(&op_word)
        .filter(|m| Interface::ComputerAlgebra.methods().contains(m))
        .ok_or(ConvertError::Unknown {
            what: "ComputerAlgebra operation",
            word: op_word,
        })?;
    let mut var = Vec::new();
    for v in request.get_vars()? {
        var.push(text(v, "vars")?);
    }
    Ok(CallRequest::ComputerAlgebra(CasRequest {
        op,
        expr: text(request.get_expr(), "expr")?,
        var,
        at: opt_text(request.get_at(), "at")?,
        dir: opt_text(request.get_dir(), "dir")?,
        from: opt_text(request.get_from(), "from")?,
        to: opt_text(request.get_to(), "to")?,
        order: nonzero(request.get_order()),
        digits: nonzero(request.get_digits()),
        timeout_s: options.timeout_s,
    }))
}

/// An SMT backend word (`z3`, `cvc5`, `all`, `portfolio`; empty is `z3`).
pub fn smt_backend(word: &str) -> Result<SmtBackendChoice, ConvertError> {
    match word {
        "" | "z3" => Ok(SmtBackendChoice::Z3),
        "cvc5" => Ok(SmtBackendChoice::Cvc5),
        "all" => Ok(SmtBackendChoice::All),
        "portfolio" => Ok(SmtBackendChoice::Portfolio),
        other => Err(ConvertError::Unknown {
            what: "SMT backend",
            word: other.into(),
        }),
    }
}

fn smt_backend_word(choice: SmtBackendChoice) -> &'static str {
    match choice {
        SmtBackendChoice::Z3 => "z3",
        SmtBackendChoice::Cvc5 => "cvc5",
        SmtBackendChoice::All => "all",
        SmtBackendChoice::Portfolio => "portfolio",
    }
}

/// `SmtSolver.check` parameters as a request.
pub fn smt_request(
    params: solvers_capnp::smt_solver::check_params::Reader<'_>,
) -> Result<CallRequest, ConvertError> {
    let options = options(params.get_options()?)?;
    Ok(CallRequest::SmtCheck(SmtRequest {
        smtlib: text(params.get_smtlib(), "smtlib")?,
        backend: smt_backend(&text(params.get_backend(), "backend")?)?,
        timeout_s: options.timeout_s,
        seed: options.seed,
    }))
}

/// `OptimizationSolver.solve` parameters as a request.
pub fn opt_request(
    params: solvers_capnp::optimization_solver::solve_params::Reader<'_>,
) -> Result<CallRequest, ConvertError> {
    let options = options(params.get_options()?)?;
    let model = text(params.get_model(), "model")?;
    let is_lp = match params.get_format() {
        Ok(solvers_capnp::ModelFormat::Mps) => false,
        Ok(solvers_capnp::ModelFormat::Lp) => true,
        Err(capnp::NotInSchema(n)) => {
            return Err(ConvertError::Unknown {
                what: "model format",
                word: n.to_string(),
            })
        }
    };
    let opt = params.get_opt()?;
    Ok(CallRequest::OptSolve(OptRequest {
        mps: (!is_lp).then(|| model.clone()),
        lp: is_lp.then_some(model),
        time_limit_s: positive(opt.get_time_limit_s()),
        mip_gap: positive(opt.get_mip_rel_gap()),
        threads: nonzero(opt.get_threads()),
        seed: options.seed,
        presolve: (!opt.get_presolve()).then_some(false),
    }))
}

fn proof_backend(word: &str) -> Result<ProofBackendChoice, ConvertError> {
    match word {
        "" | "rocq" => Ok(ProofBackendChoice::Rocq),
        "lean" => Ok(ProofBackendChoice::Lean),
        other => Err(ConvertError::Unknown {
            what: "proof backend",
            word: other.into(),
        }),
    }
}

fn project_file(
    reader: proof_capnp::project_file::Reader<'_>,
) -> Result<ProjectFile, ConvertError> {
    let content = String::from_utf8(reader.get_content()?.to_vec())
        .map_err(|_| ConvertError::Utf8("content"))?;
    Ok(ProjectFile {
        path: text(reader.get_path(), "path")?,
        content,
    })
}

fn project_files(
    list: capnp::struct_list::Reader<'_, proof_capnp::project_file::Owned>,
) -> Result<Vec<ProjectFile>, ConvertError> {
    list.iter().map(project_file).collect()
}

/// `ProofChecker.check` parameters as a request.
pub fn proof_request(
    params: proof_capnp::proof_checker::check_params::Reader<'_>,
) -> Result<CallRequest, ConvertError> {
    let options = options(params.get_options()?)?;
    let mut allow_axiom = Vec::new();
    for a in params.get_allow_axioms()? {
        allow_axiom.push(text(a, "allowAxioms")?);
    }
    Ok(CallRequest::ProofCheck(ProofRequest {
        files: project_files(params.get_files()?)?,
        backend: proof_backend(&text(params.get_backend(), "backend")?)?,
        challenge: project_files(params.get_challenge()?)?,
        allow_axiom,
        timeout_s: options.timeout_s,
    }))
}

/// `ProofChecker.goals` parameters as a request.
pub fn goals_request(
    params: proof_capnp::proof_checker::goals_params::Reader<'_>,
) -> Result<CallRequest, ConvertError> {
    let options = options(params.get_options()?)?;
    Ok(CallRequest::ProofGoals(GoalsRequest {
        file: project_file(params.get_file()?)?,
        line: params.get_line(),
        timeout_s: options.timeout_s,
    }))
}

// ---- client side: a request as parameters ----

fn set_options(
    mut builder: common_capnp::call_options::Builder<'_>,
    timeout_s: Option<f64>,
    seed: Option<u64>,
    detach: bool,
) {
    if let Some(t) = timeout_s {
        builder.reborrow().init_limits().set_wall_s(t);
    }
    if let Some(seed) = seed {
        builder.set_seed(seed);
        builder.set_has_seed(true);
    }
    builder.set_detach(detach);
}

/// Fills `NumberTheory.eval` parameters.
pub fn set_gp(
    mut p: math_capnp::number_theory::eval_params::Builder<'_>,
    r: &GpRequest,
    detach: bool,
) {
    p.set_expr(r.expr.as_str());
    set_options(p.init_options(), r.timeout_s, None, detach);
}

/// Fills `ComputerAlgebra.run` parameters.
pub fn set_cas(
    mut p: math_capnp::computer_algebra::run_params::Builder<'_>,
    r: &CasRequest,
    detach: bool,
) {
    {
        let mut q = p.reborrow().init_request();
        q.set_op(r.op.as_str());
        q.set_expr(r.expr.as_str());
        let mut vars = q.reborrow().init_vars(r.var.len() as u32);
        for (i, v) in r.var.iter().enumerate() {
            vars.set(i as u32, v.as_str());
        }
        q.set_at(r.at.as_deref().unwrap_or(""));
        q.set_dir(r.dir.as_deref().unwrap_or(""));
        q.set_from(r.from.as_deref().unwrap_or(""));
        q.set_to(r.to.as_deref().unwrap_or(""));
        q.set_order(r.order.unwrap_or(0));
        q.set_digits(r.digits.unwrap_or(0));
    }
    set_options(p.init_options(), r.timeout_s, None, detach);
}

/// Fills `SmtSolver.check` parameters.
pub fn set_smt(
    mut p: solvers_capnp::smt_solver::check_params::Builder<'_>,
    r: &SmtRequest,
    detach: bool,
) {
    p.set_smtlib(r.smtlib.as_str());
    p.set_backend(smt_backend_word(r.backend));
    set_options(p.init_options(), r.timeout_s, r.seed, detach);
}

/// Fills `OptimizationSolver.solve` parameters.
pub fn set_opt(
    mut p: solvers_capnp::optimization_solver::solve_params::Builder<'_>,
    r: &OptRequest,
    detach: bool,
) {
    match (&r.mps, &r.lp) {
        (_, Some(lp)) => {
            p.set_model(lp.as_str());
            p.set_format(solvers_capnp::ModelFormat::Lp);
        }
        (mps, None) => {
            p.set_model(mps.as_deref().unwrap_or(""));
            p.set_format(solvers_capnp::ModelFormat::Mps);
        }
    }
    {
        let mut o = p.reborrow().init_opt();
        o.set_time_limit_s(r.time_limit_s.unwrap_or(0.0));
        o.set_mip_rel_gap(r.mip_gap.unwrap_or(0.0));
        o.set_threads(r.threads.unwrap_or(0));
        o.set_presolve(r.presolve.unwrap_or(true));
    }
    set_options(p.init_options(), None, r.seed, detach);
}

fn set_files(
    mut list: capnp::struct_list::Builder<'_, proof_capnp::project_file::Owned>,
    files: &[ProjectFile],
) {
    for (i, f) in files.iter().enumerate() {
        let mut b = list.reborrow().get(i as u32);
        b.set_path(f.path.as_str());
        b.set_content(f.content.as_bytes());
    }
}

/// Fills `ProofChecker.check` parameters.
pub fn set_proof(
    mut p: proof_capnp::proof_checker::check_params::Builder<'_>,
    r: &ProofRequest,
    detach: bool,
) {
    set_files(p.reborrow().init_files(r.files.len() as u32), &r.files);
    set_files(
        p.reborrow().init_challenge(r.challenge.len() as u32),
        &r.challenge,
    );
    p.set_backend(match r.backend {
        ProofBackendChoice::Rocq => "rocq",
        ProofBackendChoice::Lean => "lean",
    });
    {
        let mut axioms = p.reborrow().init_allow_axioms(r.allow_axiom.len() as u32);
        for (i, a) in r.allow_axiom.iter().enumerate() {
            axioms.set(i as u32, a.as_str());
        }
    }
    set_options(p.init_options(), r.timeout_s, None, detach);
}

/// Fills `ProofChecker.goals` parameters.
pub fn set_goals(mut p: proof_capnp::proof_checker::goals_params::Builder<'_>, r: &GoalsRequest) {
    {
        let mut f = p.reborrow().init_file();
        f.set_path(r.file.path.as_str());
        f.set_content(r.file.content.as_bytes());
    }
    p.set_line(r.line);
    set_options(p.init_options(), r.timeout_s, None, false);
}

// ---- an envelope as the typed results ----

/// The position of `value` in `all`, which is the capnp enum's ordinal (the unit test in
/// `lib.rs` checks that the vocabularies match in order).
fn ordinal<T: PartialEq>(all: &[T], value: &T) -> u16 {
    all.iter().position(|x| x == value).unwrap_or(0) as u16
}

fn wire_enum<E: TryFrom<u16>>(n: u16) -> Option<E> {
    E::try_from(n).ok()
}

fn eval_status(s: EvalStatus) -> math_capnp::EvalStatus {
    wire_enum(ordinal(EvalStatus::ALL, &s)).unwrap_or(math_capnp::EvalStatus::BackendError)
}

fn smt_status(s: SmtStatus) -> solvers_capnp::SmtStatus {
    wire_enum(ordinal(SmtStatus::ALL, &s)).unwrap_or(solvers_capnp::SmtStatus::BackendError)
}

fn opt_status(s: OptStatus) -> solvers_capnp::OptStatus {
    wire_enum(ordinal(OptStatus::ALL, &s)).unwrap_or(solvers_capnp::OptStatus::BackendError)
}

fn proof_status(s: ProofStatus) -> proof_capnp::ProofStatus {
    wire_enum(ordinal(ProofStatus::ALL, &s)).unwrap_or(proof_capnp::ProofStatus::BackendError)
}

/// The capnp job state of a core job state.
pub fn job_state(s: capsci_core::JobState) -> session_capnp::JobState {
    wire_enum(ordinal(capsci_core::JobState::ALL, &s)).unwrap_or(session_capnp::JobState::Failed)
}

fn set_limits(mut b: common_capnp::limits::Builder<'_>, l: &Limits) {
    b.set_wall_s(l.wall_s);
    b.set_cpu_s(l.cpu_s);
    b.set_memory_mb(l.memory_mb);
    b.set_pids(l.pids);
    b.set_file_size_mb(l.file_size_mb);
    b.set_output_bytes(l.output_bytes);
}

fn set_usage(mut b: common_capnp::usage::Builder<'_>, u: &capsci_core::Usage) {
    b.set_wall_ms(u.wall_ms);
    b.set_cpu_ms(u.cpu_ms);
    b.set_max_rss_kb(u.max_rss_kb);
}

fn set_identity(
    mut b: common_capnp::backend_identity::Builder<'_>,
    id: &capsci_core::BackendIdentity,
) {
    b.set_name(id.name.as_str());
    b.set_version(id.version.as_str());
    b.set_closure(id.closure.as_str());
}

fn set_location(mut b: common_capnp::location::Builder<'_>, l: &Location) {
    b.set_line(l.line);
    b.set_column(l.column.unwrap_or(0));
}

/// Fills a `CallRecord` from the envelope, with the envelope's JSON verbatim.
pub fn set_record(mut b: common_capnp::call_record::Builder<'_>, e: &Envelope, json: &str) {
    b.set_job(e.job.as_str());
    b.set_evidence(match e.evidence {
        Evidence::Checked => common_capnp::Evidence::Checked,
        Evidence::Advisory => common_capnp::Evidence::Advisory,
    });
    {
        let mut a = b.reborrow().init_artifacts();
        a.set_input(e.artifacts.input.as_deref().unwrap_or(""));
        a.set_output(e.artifacts.output.as_deref().unwrap_or(""));
        a.set_log(e.artifacts.log.as_deref().unwrap_or(""));
        let mut extra = a.init_extra(e.artifacts.extra.len() as u32);
        for (i, (role, id)) in e.artifacts.extra.iter().enumerate() {
            let mut n = extra.reborrow().get(i as u32);
            n.set_role(role.as_str());
            n.set_id(id.as_str());
        }
    }
    if let Some(p) = &e.provenance {
        let mut pb = b.reborrow().init_provenance();
        pb.set_record(p.record.as_str());
        pb.set_hash(p.hash.as_str());
    }
    set_identity(b.reborrow().init_backend(), &e.backend);
    {
        let mut s = b.reborrow().init_sandbox();
        s.set_kind(e.sandbox.kind.as_str());
        s.set_policy(e.sandbox.policy.as_str());
        s.set_boundary(e.sandbox.boundary.as_str());
    }
    set_limits(b.reborrow().init_limits(), &e.limits);
    set_usage(b.reborrow().init_usage(), &e.usage);
    b.set_exit(e.exit.to_string().as_str());
    b.set_seed(e.seed.unwrap_or(0));
    {
        let mut h = b.reborrow().init_host();
        h.set_kernel(e.host.kernel.as_str());
        h.set_cpu_model(e.host.cpu_model.as_str());
        let by = serde_json::to_value(e.host.memory_limit_by)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        h.set_memory_limit_by(by.as_str());
    }
    b.set_envelope_json(json);
}

/// Fills an `EvalResult` (NumberTheory or ComputerAlgebra) from the envelope.
pub fn set_eval_result(mut b: math_capnp::eval_result::Builder<'_>, e: &Envelope, json: &str) {
    match &e.call {
        CallOutcome::NumberTheory(o) => {
            b.set_status(eval_status(o.status));
            let r = &o.result;
            b.set_value(r.value.as_deref().unwrap_or(""));
            b.set_type(r.value_type.as_deref().unwrap_or(""));
            if let Some(s) = &r.structured {
                b.set_structured_json(s.to_string().as_str());
            }
            b.set_message(r.message.as_deref().unwrap_or(""));
            if let Some(l) = &r.location {
                set_location(b.reborrow().init_location(), l);
            }
        }
        CallOutcome::ComputerAlgebra(o) => {
            b.set_status(eval_status(o.status));
            let r = &o.result;
            b.set_text(r.text.as_deref().unwrap_or(""));
            b.set_latex(r.latex.as_deref().unwrap_or(""));
            b.set_srepr(r.srepr.as_deref().unwrap_or(""));
            if let Some(s) = &r.solutions {
                b.set_solutions_json(serde_json::to_string(s).unwrap_or_default().as_str());
            }
            b.set_message(r.message.as_deref().unwrap_or(""));
            if let Some(l) = &r.location {
                set_location(b.reborrow().init_location(), l);
            }
        }
        _ => {}
    }
    set_record(b.init_record(), e, json);
}

/// Fills an `SmtResult` from the envelope.
pub fn set_smt_result(mut b: solvers_capnp::smt_result::Builder<'_>, e: &Envelope, json: &str) {
    if let CallOutcome::SmtSolver(o) = &e.call {
        b.set_status(smt_status(o.status));
        let r = &o.result;
        if let Some(model) = &r.model {
            let mut list = b.reborrow().init_model(model.len() as u32);
            for (i, m) in model.iter().enumerate() {
                let mut entry = list.reborrow().get(i as u32);
                entry.set_name(m.name.as_str());
                entry.set_sort(m.sort.as_str());
                entry.set_value(m.value.as_str());
            }
        }
        if let Some(core) = &r.core {
            let mut list = b.reborrow().init_core(core.len() as u32);
            for (i, name) in core.iter().enumerate() {
                list.set(i as u32, name.as_str());
            }
        }
        b.set_reason_unknown(r.reason_unknown.as_deref().unwrap_or(""));
        b.set_message(r.message.as_deref().unwrap_or(""));
        if let Some(l) = &r.location {
            set_location(b.reborrow().init_location(), l);
        }
        if let Some(reports) = &r.backends {
            let mut list = b.reborrow().init_backends(reports.len() as u32);
            for (i, rep) in reports.iter().enumerate() {
                let mut rb = list.reborrow().get(i as u32);
                set_identity(rb.reborrow().init_backend(), &rep.backend);
                rb.set_status(smt_status(rep.status));
                rb.set_exit(rep.exit.to_string().as_str());
                set_usage(rb.init_usage(), &rep.usage);
            }
        }
    }
    set_record(b.init_record(), e, json);
}

/// Fills an `OptResult` from the envelope.
pub fn set_opt_result(mut b: solvers_capnp::opt_result::Builder<'_>, e: &Envelope, json: &str) {
    if let CallOutcome::OptimizationSolver(o) = &e.call {
        b.set_status(opt_status(o.status));
        let r = &o.result;
        if let Some(obj) = r.objective {
            b.set_objective(obj);
            b.set_has_objective(true);
        }
        for (which, map) in [(0, &r.columns), (1, &r.duals)] {
            if let Some(map) = map {
                let mut list = if which == 0 {
                    b.reborrow().init_columns(map.len() as u32)
                } else {
                    b.reborrow().init_duals(map.len() as u32)
                };
                for (i, (name, value)) in map.iter().enumerate() {
                    let mut nv = list.reborrow().get(i as u32);
                    nv.set_name(name.as_str());
                    nv.set_value(*value);
                }
            }
        }
        b.set_bound(r.bound.unwrap_or(f64::NAN));
        b.set_gap(r.gap.unwrap_or(f64::NAN));
        b.set_max_violation(r.max_violation.unwrap_or(f64::NAN));
        b.set_optimality(r.optimality.as_deref().unwrap_or(""));
        b.set_message(r.message.as_deref().unwrap_or(""));
    }
    set_record(b.init_record(), e, json);
}

/// Fills a `ProofResult` from the envelope.
pub fn set_proof_result(mut b: proof_capnp::proof_result::Builder<'_>, e: &Envelope, json: &str) {
    if let CallOutcome::ProofChecker(o) = &e.call {
        b.set_status(proof_status(o.status));
        let r = &o.result;
        {
            let mut list = b.reborrow().init_theorems(r.theorems.len() as u32);
            for (i, t) in r.theorems.iter().enumerate() {
                let mut tb = list.reborrow().get(i as u32);
                tb.set_name(t.name.as_str());
                tb.set_checked(t.checked);
                let mut ax = tb.init_axioms(t.axioms.len() as u32);
                for (j, a) in t.axioms.iter().enumerate() {
                    ax.set(j as u32, a.as_str());
                }
            }
        }
        {
            let mut ax = b.reborrow().init_axioms(r.axioms.len() as u32);
            for (i, a) in r.axioms.iter().enumerate() {
                ax.set(i as u32, a.as_str());
            }
        }
        {
            let mut list = b.reborrow().init_errors(r.errors.len() as u32);
            for (i, err) in r.errors.iter().enumerate() {
                let mut eb = list.reborrow().get(i as u32);
                eb.set_file(err.file.as_str());
                eb.set_line(err.line);
                eb.set_column(err.column);
                eb.set_message(err.message.as_str());
            }
        }
        if let Some(goals) = &r.goals {
            let mut list = b.reborrow().init_goals(goals.len() as u32);
            for (i, g) in goals.iter().enumerate() {
                list.set(i as u32, g.as_str());
            }
        }
        b.set_message(r.message.as_deref().unwrap_or(""));
    }
    set_record(b.init_record(), e, json);
}

// ---- grants ----

fn interface(word: &str) -> Result<Interface, ConvertError> {
    Interface::ALL
        .iter()
        .copied()
        .find(|i| i.as_str() == word)
        .ok_or(ConvertError::Unknown {
            what: "interface",
            word: word.into(),
        })
}

/// A wire grant as a requested grant. Zero quotas mean "no narrower than the parent", so a
/// requested grant that names only methods keeps the parent's quotas.
pub fn grant_from_wire(reader: session_capnp::grant::Reader<'_>) -> Result<Grant, ConvertError> {
    let mut methods = Vec::new();
    for m in reader.get_methods()? {
        methods.push(GrantedMethod {
            interface: interface(&text(m.get_interface(), "interface")?)?,
            method: text(m.get_method(), "method")?,
        });
    }
    let unlimited_f = |x: f64| {
        if x > 0.0 && x.is_finite() {
            x
        } else {
            f64::INFINITY
        }
    };
    let unlimited_u64 = |x: u64| if x == 0 { u64::MAX } else { x };
    let mut quotas = Quotas {
        cpu_seconds_total: f64::INFINITY,
        concurrent_jobs: u32::MAX,
        max_limits: Limits {
            wall_s: f64::INFINITY,
            cpu_s: f64::INFINITY,
            memory_mb: u64::MAX,
            pids: u32::MAX,
            file_size_mb: u64::MAX,
            output_bytes: u64::MAX,
        },
        artifact_bytes: u64::MAX,
    };
    if reader.has_quotas() {
        let q = reader.get_quotas()?;
        quotas.cpu_seconds_total = unlimited_f(q.get_cpu_seconds_total());
        quotas.concurrent_jobs = match q.get_concurrent_jobs() {
            0 => u32::MAX,
            n => n,
        };
        quotas.artifact_bytes = unlimited_u64(q.get_artifact_bytes());
        if q.has_max_limits() {
            let l = q.get_max_limits()?;
            quotas.max_limits = Limits {
                wall_s: unlimited_f(l.get_wall_s()),
                cpu_s: unlimited_f(l.get_cpu_s()),
                memory_mb: unlimited_u64(l.get_memory_mb()),
                pids: match l.get_pids() {
                    0 => u32::MAX,
                    n => n,
                },
                file_size_mb: unlimited_u64(l.get_file_size_mb()),
                output_bytes: unlimited_u64(l.get_output_bytes()),
            };
        }
    }
    let grant = Grant {
        profile: text(reader.get_profile(), "profile")?,
        methods,
        quotas,
    };
    for m in &grant.methods {
        if m.method != "*"
            && Method::parse(&m.method).is_none_or(|x| !m.interface.methods().contains(&x))
        {
            return Err(ConvertError::Grant(format!(
                "{}.{} does not exist",
                m.interface, m.method
            )));
        }
    }
    Ok(grant)
}

/// Writes a grant on the wire.
pub fn set_grant(mut b: session_capnp::grant::Builder<'_>, grant: &Grant) {
    b.set_profile(grant.profile.as_str());
    {
        let mut list = b.reborrow().init_methods(grant.methods.len() as u32);
        for (i, m) in grant.methods.iter().enumerate() {
            let mut mb = list.reborrow().get(i as u32);
            mb.set_interface(m.interface.as_str());
            mb.set_method(m.method.as_str());
        }
    }
    let mut q = b.init_quotas();
    q.set_cpu_seconds_total(grant.quotas.cpu_seconds_total);
    q.set_concurrent_jobs(grant.quotas.concurrent_jobs);
    q.set_artifact_bytes(grant.quotas.artifact_bytes);
    set_limits(q.init_max_limits(), &grant.quotas.max_limits);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_survives_the_wire_both_ways() -> Result<(), ConvertError> {
        let request = SmtRequest {
            smtlib: "(check-sat)".into(),
            backend: SmtBackendChoice::Cvc5,
            timeout_s: Some(3.0),
            seed: Some(7),
        };
        let mut message = capnp::message::Builder::new_default();
        set_smt(
            message.init_root::<solvers_capnp::smt_solver::check_params::Builder>(),
            &request,
            false,
        );
        let reader =
            message.get_root_as_reader::<solvers_capnp::smt_solver::check_params::Reader>()?;
        assert_eq!(smt_request(reader)?, CallRequest::SmtCheck(request));
        Ok(())
    }

    #[test]
    fn an_unknown_backend_or_operation_is_refused_by_name() {
        assert!(matches!(
            smt_backend("yices"),
            Err(ConvertError::Unknown { word, .. }) if word == "yices"
        ));
    }

    #[test]
    fn a_wire_grant_with_only_methods_keeps_the_parents_quotas() -> Result<(), ConvertError> {
        let mut message = capnp::message::Builder::new_default();
        {
            let mut g = message.init_root::<session_capnp::grant::Builder>();
            g.set_profile("child");
            let mut m = g.init_methods(1);
            m.reborrow().get(0).set_interface("SmtSolver");
            m.reborrow().get(0).set_method("check");
        }
        let requested = grant_from_wire(message.get_root_as_reader()?)?;
        let parent = Grant::scientific_base();
        let child = parent.attenuate(&requested);
        assert_eq!(child.quotas, parent.quotas);
        assert!(child.allows(Interface::SmtSolver, Method::Check));
        assert!(!child.allows(Interface::NumberTheory, Method::Eval));
        Ok(())
    }
}
