//! The calling verbs (`gp`, `cas`, `smt check`, `opt solve`, `proof check|goals`): build the
//! typed request, run it through a session of the local user, print the envelope.

use crate::cli::{CasArgs, Cli, OptAction, ProofAction, ProofBackend, SmtAction, SmtBackend};
use crate::render;
use anyhow::{bail, Context};
use capsci_core::request::{
    CasRequest, GoalsRequest, GpRequest, OptRequest, ProjectFile, ProofBackendChoice, ProofRequest,
    SmtBackendChoice, SmtRequest,
};
use capsci_core::{CallRequest, Method};
use capsci_sandbox::CancelToken;
use capsci_service::{Grant, Principal, Service, ServiceConfig, Session};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

/// Largest input file the command line reads (the store streams larger artifacts, but a call's
/// input is held in memory).
const MAX_INPUT_BYTES: u64 = 256 * 1024 * 1024;

/// Opens the service on the chosen store for a one-shot call.
pub fn open_service(cli: &Cli) -> anyhow::Result<Arc<Service>> {
    let dir = store_dir(cli)?;
    Service::open(ServiceConfig::one_shot(dir.clone()))
        .with_context(|| format!("store {} unavailable", dir.display()))
}

/// The store directory: `--store`, `CAPSCI_STORE`, else the embedded default.
pub fn store_dir(cli: &Cli) -> anyhow::Result<PathBuf> {
    match &cli.store {
        Some(dir) => Ok(dir.clone()),
        None => capsci_store::Store::default_dir()
            .context("no store directory (set --store or CAPSCI_STORE)"),
    }
}

/// The local user's session: the full `scientific-base` grant.
pub fn local_session(service: &Arc<Service>) -> Session {
    service.session(Grant::scientific_base(), Principal::local_user())
}

fn read_input(path: &Path) -> anyhow::Result<String> {
    let mut text = String::new();
    if path == Path::new("-") {
        std::io::stdin()
            .take(MAX_INPUT_BYTES)
            .read_to_string(&mut text)
            .context("reading stdin")?;
    } else {
        let size = std::fs::metadata(path)
            .with_context(|| format!("cannot read {}", path.display()))?
            .len();
        if size > MAX_INPUT_BYTES {
            bail!(
                "{} is {size} bytes, over the {MAX_INPUT_BYTES}-byte input limit",
                path.display()
            );
        }
        text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {} as UTF-8 text", path.display()))?;
    }
    Ok(text)
}

fn cas_method(op: crate::cli::CasOp) -> Method {
    use crate::cli::CasOp::*;
    match op {
        Simplify => Method::Simplify,
        Factor => Method::Factor,
        Expand => Method::Expand,
        Diff => Method::Diff,
        Integrate => Method::Integrate,
        Solve => Method::Solve,
        Limit => Method::Limit,
        Series => Method::Series,
        Evalf => Method::Evalf,
        Det => Method::Det,
        Inverse => Method::Inverse,
        Rank => Method::Rank,
        Nullspace => Method::Nullspace,
        Rref => Method::Rref,
        Eigenvals => Method::Eigenvals,
        Gcd => Method::Gcd,
        Div => Method::Div,
        Resultant => Method::Resultant,
        Groebner => Method::Groebner,
    }
}

/// The request for `gp`.
pub fn gp_request(expr: &str, timeout: Option<f64>) -> CallRequest {
    CallRequest::NumberTheoryEval(GpRequest {
        expr: expr.to_string(),
        timeout_s: timeout,
    })
}

/// The request for `cas`.
pub fn cas_request(args: &CasArgs) -> CallRequest {
    CallRequest::ComputerAlgebra(CasRequest {
        op: cas_method(args.op),
        expr: args.expr.clone(),
        var: args.var.clone(),
        at: args.at.clone(),
        dir: args.dir.clone(),
        from: args.from.clone(),
        to: args.to.clone(),
        order: args.order,
        digits: args.digits,
        timeout_s: args.timeout,
    })
}

/// The request for `smt check`.
pub fn smt_request(action: &SmtAction) -> anyhow::Result<CallRequest> {
    let SmtAction::Check {
        file,
        backend,
        timeout,
        seed,
    } = action;
    Ok(CallRequest::SmtCheck(SmtRequest {
        smtlib: read_input(file)?,
        backend: match backend {
            SmtBackend::Z3 => SmtBackendChoice::Z3,
            SmtBackend::Cvc5 => SmtBackendChoice::Cvc5,
            SmtBackend::All => SmtBackendChoice::All,
            SmtBackend::Portfolio => SmtBackendChoice::Portfolio,
        },
        timeout_s: *timeout,
        seed: *seed,
    }))
}

/// The request for `opt solve`: the format follows the file's extension (`.lp` is CPLEX LP,
/// anything else MPS).
pub fn opt_request(action: &OptAction) -> anyhow::Result<CallRequest> {
    let OptAction::Solve {
        file,
        backend,
        time_limit,
        mip_gap,
    } = action;
    if backend != "highs" {
        bail!("unknown optimisation backend `{backend}` (available: highs)");
    }
    let text = read_input(file)?;
    let is_lp = file
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("lp"));
    Ok(CallRequest::OptSolve(OptRequest {
        mps: (!is_lp).then(|| text.clone()),
        lp: is_lp.then_some(text),
        time_limit_s: *time_limit,
        mip_gap: *mip_gap,
        threads: None,
        seed: None,
        presolve: None,
    }))
}

/// The request for `proof check` / `proof goals`.
pub fn proof_request(action: &ProofAction) -> anyhow::Result<CallRequest> {
    match action {
        ProofAction::Check {
            path,
            backend,
            timeout,
            challenge,
            allow_axiom,
        } => {
            let files = crate::project::read_project(path)?;
            let challenge = match challenge {
                Some(file) => crate::project::read_project(file)?,
                None => Vec::new(),
            };
            Ok(CallRequest::ProofCheck(ProofRequest {
                files,
                backend: match backend {
                    ProofBackend::Rocq => ProofBackendChoice::Rocq,
                    ProofBackend::Lean => ProofBackendChoice::Lean,
                },
                challenge,
                allow_axiom: allow_axiom.clone(),
                timeout_s: *timeout,
            }))
        }
        ProofAction::Goals { file, line } => {
            let content = read_input(file)?;
            let name = file
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "input.v".into());
            Ok(CallRequest::ProofGoals(GoalsRequest {
                file: ProjectFile {
                    path: name,
                    content,
                },
                line: *line,
                timeout_s: None,
            }))
        }
    }
}

/// Runs `request` as the local user and prints the outcome; `--detach` prints the job id and
/// leaves the job to a background process.
pub fn run(cli: &Cli, request: CallRequest) -> anyhow::Result<ExitCode> {
    let service = open_service(cli)?;
    let session = local_session(&service);
    if cli.detach {
        let job = session.submit_job(&request)?;
        crate::commands::job::spawn_detached(cli, &job)?;
        // The job belongs to this process until the runner claims it; leaving earlier would let
        // the runner's own start-up recovery find it orphaned and mark it `interrupted`.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while service
            .store()
            .jobs()
            .get(&job)?
            .is_some_and(|j| j.state == capsci_core::JobState::Queued)
        {
            if std::time::Instant::now() > deadline {
                bail!("the background runner did not start job {job}");
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        out!("{job}");
        return Ok(ExitCode::SUCCESS);
    }
    let cancel = CancelToken::new();
    let label = format!("{}.{} running", request.interface(), request.method());
    let envelope = crate::progress::with_progress(&label, || session.call(request, &cancel))?;
    render::envelope(cli, &envelope)?;
    Ok(ExitCode::SUCCESS)
}
