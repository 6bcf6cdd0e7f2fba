//! `OptimizationSolver.solve`: MPS / CPLEX LP models to HiGHS, run as the `capsci-highs-worker`
//! binary inside the sandbox, with every primal solution re-checked by capsci (see [`check`]).
//!
//! The pieces, each pure and tested on its own:
//! - [`worker_command`] writes the model into the work dir as `model.mps` / `model.lp` (HiGHS
//!   reads by extension) and passes the options on the command line;
//! - [`worker_policy`] builds the [`SandboxPolicy`] from the worker's package-closure binds;
//! - [`interpret`] turns the sandbox's [`Outcome`] (the worker's one JSON document) into the typed
//!   status, `result` and evidence, re-checking the solution;
//! - [`solve`] is the entry the service calls.
//!
//! Status mapping (HiGHS model status → DESIGN.md): `Optimal` → `optimal`; `Infeasible` →
//! `infeasible`; `Unbounded` → `unbounded`; `Primal infeasible or unbounded` →
//! `infeasible_or_unbounded`; time limit → `feasible` when a MIP has an incumbent (objective,
//! bound and gap reported), else `timeout`; iteration/solution/objective limits → `feasible` with an
//! incumbent, else `unknown`; memory limit → `resource_exceeded`; an unreadable model or a model
//! error → `invalid_input` with HiGHS's message; HiGHS internal errors → `backend_error`.
//!
//! Evidence: `checked` when capsci's re-check passes — for an LP/QP `optimal`: primal feasibility,
//! dual feasibility and the duality gap (`optimality: "verified"`); for a MIP (`optimal` or
//! `feasible`): feasibility and the objective value (`optimality: "solver_claim"`). Infeasible and
//! unbounded claims are `advisory`.

pub mod check;

use capsci_core::{Evidence, ExitReason, Limits, Location, OptResult, OptStatus};
use capsci_sandbox::{Bind, CancelToken, Command, Outcome, Sandbox, SandboxPolicy, SyscallFilter};
use check::{check_dual, check_primal, ModelData, GAP_TOL};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::PathBuf;
use thiserror::Error;

/// Extra wall-clock seconds the sandbox allows beyond HiGHS's own time limit (reading the model,
/// writing the report).
pub const SANDBOX_GRACE_S: f64 = 5.0;

/// Why an optimisation request could not be built.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum OptError {
    /// An option out of range.
    #[error("invalid option {name}: {reason}")]
    Option {
        /// The option.
        name: &'static str,
        /// Why.
        reason: String,
    },
}

/// The model's file format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModelFormat {
    /// MPS, free or fixed (HiGHS tries free, then fixed).
    Mps,
    /// CPLEX LP.
    Lp,
}

impl ModelFormat {
    /// The file name the model is written as in the work dir.
    pub fn file_name(self) -> &'static str {
        match self {
            ModelFormat::Mps => "model.mps",
            ModelFormat::Lp => "model.lp",
        }
    }
}

/// Options of one solve.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OptOptions {
    /// HiGHS time limit, seconds (the sandbox allows [`SANDBOX_GRACE_S`] more).
    pub time_limit_s: f64,
    /// MIP relative gap at which HiGHS stops.
    pub mip_rel_gap: Option<f64>,
    /// Threads for HiGHS.
    pub threads: u32,
    /// Random seed.
    pub seed: u32,
    /// Presolve on or off (`None`: HiGHS's choice).
    pub presolve: Option<bool>,
    /// Memory limit, MiB (sandbox).
    pub memory_mb: u64,
}

impl Default for OptOptions {
    fn default() -> Self {
        OptOptions {
            time_limit_s: 60.0,
            mip_rel_gap: None,
            threads: 1,
            seed: 0,
            presolve: None,
            memory_mb: 2048,
        }
    }
}

/// The worker's report (mirror of `capsci_highs_worker::Report`; only what capsci reads).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct WorkerReport {
    /// `ok`, `read_error`, `option_error`, `solve_error`.
    pub outcome: String,
    /// HiGHS model status text.
    #[serde(default)]
    pub model_status: String,
    /// HiGHS model status code.
    #[serde(default)]
    pub model_status_code: i64,
    /// Primal solution status (2 = feasible point).
    #[serde(default)]
    pub primal_solution_status: i64,
    /// Dual solution status (2 = feasible point).
    #[serde(default)]
    pub dual_solution_status: i64,
    /// Reported objective.
    pub objective: Option<f64>,
    /// MIP dual bound.
    pub mip_dual_bound: Option<f64>,
    /// MIP gap.
    pub mip_gap: Option<f64>,
    /// Nodes.
    pub mip_node_count: Option<i64>,
    /// Simplex iterations.
    pub simplex_iterations: Option<i64>,
    /// IPM iterations.
    pub ipm_iterations: Option<i64>,
    /// QP iterations.
    pub qp_iterations: Option<i64>,
    /// Primal values.
    #[serde(default)]
    pub col_value: Vec<f64>,
    /// Reduced costs.
    #[serde(default)]
    pub col_dual: Vec<f64>,
    /// Row activities.
    #[serde(default)]
    pub row_value: Vec<f64>,
    /// Row duals.
    #[serde(default)]
    pub row_dual: Vec<f64>,
    /// The model as read.
    pub model: Option<ModelData>,
    /// HiGHS's solve time, seconds.
    #[serde(default)]
    pub solve_seconds: f64,
    /// HiGHS's log.
    #[serde(default)]
    pub log: Vec<String>,
    /// Failure message.
    pub message: Option<String>,
}

/// Where the worker executable appears inside the sandbox, whatever its host path (the host path
/// may sit under a directory the sandbox hides, such as its private `/work`).
pub const WORKER_IN_SANDBOX: &str = "/usr/libexec/capsci/capsci-highs-worker";

/// What the service knows about the worker: where it is and what the sandbox must bind.
#[derive(Debug, Clone)]
pub struct WorkerSetup {
    /// The worker executable (`capsci-highs-worker`) on the host.
    pub program: PathBuf,
    /// Read-only binds of its package closure (from capsci-store's `PackageClosure`); the bind of
    /// `program` itself is moved to [`WORKER_IN_SANDBOX`].
    pub binds: Vec<Bind>,
}

impl WorkerSetup {
    /// The roots of the worker's package closure (the executable; ELF resolution adds its libs).
    pub fn closure_roots(&self) -> Vec<PathBuf> {
        vec![self.program.clone()]
    }

    /// The binds with the executable placed at [`WORKER_IN_SANDBOX`] (added if missing).
    pub fn sandbox_binds(&self) -> Vec<Bind> {
        let mut binds: Vec<Bind> = self
            .binds
            .iter()
            .filter(|b| b.host != self.program)
            .cloned()
            .collect();
        binds.push(Bind {
            host: self.program.clone(),
            sandbox: PathBuf::from(WORKER_IN_SANDBOX),
        });
        binds
    }
}

/// The real runner: every solve on a fresh sandbox.
pub struct SandboxWorkerRunner<'a>(pub &'a dyn Sandbox);

impl WorkerRunner for SandboxWorkerRunner<'_> {
    fn run(
        &self,
        policy: &SandboxPolicy,
        command: Command,
        cancel: &CancelToken,
    ) -> Result<Outcome, String> {
        self.0
            .run(policy, command, cancel)
            .map_err(|e| e.to_string())
    }
}

/// Runs the worker in the sandbox. The service implements it with the real sandbox; nothing else
/// may start the worker.
pub trait WorkerRunner: Sync {
    /// Runs `command` under `policy`; `Err` when the sandbox itself failed.
    fn run(
        &self,
        policy: &SandboxPolicy,
        command: Command,
        cancel: &CancelToken,
    ) -> Result<Outcome, String>;
}

/// Checks the options (finite, non-negative time limit; gap in `[0, 1]`; 1..=64 threads).
pub fn validate(options: &OptOptions) -> Result<(), OptError> {
    if !(options.time_limit_s.is_finite() && options.time_limit_s > 0.0) {
        return Err(OptError::Option {
            name: "time_limit",
            reason: "must be a positive number of seconds".into(),
        });
    }
    if let Some(g) = options.mip_rel_gap {
        if !(0.0..=1.0).contains(&g) {
            return Err(OptError::Option {
                name: "mip_gap",
                reason: "must be between 0 and 1".into(),
            });
        }
    }
    if options.threads == 0 || options.threads > 64 {
        return Err(OptError::Option {
            name: "threads",
            reason: "must be 1 to 64".into(),
        });
    }
    Ok(())
}

/// The sandbox policy for one solve: the worker's closure read-only, `PATH` only, no network, the
/// solver-default syscall filter, wall/CPU limits = time limit + [`SANDBOX_GRACE_S`] (CPU scaled by
/// the thread count), pids enough for HiGHS's threads.
pub fn worker_policy(binds: &[Bind], options: &OptOptions) -> SandboxPolicy {
    let wall = options.time_limit_s + SANDBOX_GRACE_S;
    let mut env = BTreeMap::new();
    env.insert("PATH".to_string(), "/usr/bin:/bin".to_string());
    SandboxPolicy {
        backend: "highs".into(),
        ro_binds: binds.to_vec(),
        env,
        limits: Limits {
            wall_s: wall,
            cpu_s: wall * f64::from(options.threads.max(1)),
            memory_mb: options.memory_mb,
            ..Limits::default()
        },
        network: false,
        syscall_filter: SyscallFilter::SolverDefault,
    }
}

/// The worker command: the model written as `model.mps`/`model.lp` in the work dir, the options as
/// arguments, HiGHS's log in `highs.log` (read back into the report).
pub fn worker_command(model: &[u8], format: ModelFormat, options: &OptOptions) -> Command {
    let mut args = vec![
        format.file_name().to_string(),
        "--time-limit".into(),
        options.time_limit_s.to_string(),
        "--threads".into(),
        options.threads.to_string(),
        "--seed".into(),
        options.seed.to_string(),
        "--log".into(),
        "highs.log".into(),
    ];
    if let Some(g) = options.mip_rel_gap {
        args.extend(["--mip-rel-gap".into(), g.to_string()]);
    }
    if let Some(p) = options.presolve {
        args.extend(["--presolve".into(), if p { "on" } else { "off" }.into()]);
    }
    Command {
        program: PathBuf::from(WORKER_IN_SANDBOX),
        args,
        stdin: Vec::new(),
        files: vec![(PathBuf::from(format.file_name()), model.to_vec())],
        collect: Vec::new(),
    }
}

/// The typed answer of one solve, with capsci's re-check.
#[derive(Debug, Clone)]
pub struct OptAnswer {
    /// The status.
    pub status: OptStatus,
    /// The result.
    pub result: OptResult,
    /// `checked` when capsci's re-check passed.
    pub evidence: Evidence,
    /// What capsci re-checked, in words.
    pub recheck: String,
    /// The worker's parsed report, when it produced one.
    pub report: Option<WorkerReport>,
    /// The sandbox's outcome (`None` when the sandbox failed).
    pub outcome: Option<Outcome>,
}

/// `OptimizationSolver.solve`: runs the worker in the sandbox via `runner` and interprets and
/// re-checks its answer. Bad options are `invalid_input` without running anything.
pub fn solve(
    runner: &dyn WorkerRunner,
    setup: &WorkerSetup,
    model: &[u8],
    format: ModelFormat,
    options: &OptOptions,
    cancel: &CancelToken,
) -> OptAnswer {
    if let Err(e) = validate(options) {
        return answer(
            OptStatus::InvalidInput,
            message_result(e.to_string(), None),
            "not run".into(),
            None,
            None,
        );
    }
    let policy = worker_policy(&setup.sandbox_binds(), options);
    let command = worker_command(model, format, options);
    match runner.run(&policy, command, cancel) {
        Ok(outcome) => {
            let mut a = interpret(&outcome, model);
            a.outcome = Some(outcome);
            a
        }
        Err(e) => answer(
            OptStatus::BackendError,
            message_result(format!("sandbox could not run the HiGHS worker: {e}"), None),
            "not run".into(),
            None,
            None,
        ),
    }
}

fn answer(
    status: OptStatus,
    result: OptResult,
    recheck: String,
    report: Option<WorkerReport>,
    outcome: Option<Outcome>,
) -> OptAnswer {
    OptAnswer {
        status,
        result,
        evidence: Evidence::Advisory,
        recheck,
        report,
        outcome,
    }
}

fn message_result(message: String, location: Option<Location>) -> OptResult {
    OptResult {
        message: Some(message),
        location,
        ..OptResult::default()
    }
}

/// HiGHS's error lines (`ERROR: ...`) from its log, joined.
fn log_errors(report: &WorkerReport) -> String {
    let errors: Vec<&str> = report
        .log
        .iter()
        .filter(|l| l.starts_with("ERROR") || l.starts_with("WARNING"))
        .map(|l| l.trim())
        .collect();
    if errors.is_empty() {
        report
            .message
            .clone()
            .unwrap_or_else(|| "HiGHS could not read the model".into())
    } else {
        errors.join("; ")
    }
}

/// Where HiGHS's LP reader points (` --> model.lp:3:1`), from its log.
fn log_location(report: &WorkerReport) -> Option<Location> {
    report.log.iter().find_map(|line| {
        let rest = line.trim().strip_prefix("--> ")?;
        let mut parts = rest.rsplitn(3, ':');
        let column = parts.next()?.parse::<u32>().ok();
        let line = parts.next()?.parse::<u32>().ok()?;
        Some(Location { line, column })
    })
}

/// Finds the line of the input a HiGHS message quotes (`Entry "foo bar" in ROWS section`).
fn locate(message: &str, model: &[u8]) -> Option<Location> {
    let text = String::from_utf8_lossy(model);
    let quoted: Vec<&str> = message
        .split('"')
        .skip(1)
        .step_by(2)
        .filter(|q| !q.trim().is_empty())
        .collect();
    for q in quoted {
        if let Some(index) = text.lines().position(|l| l.contains(q)) {
            return Some(Location {
                line: u32::try_from(index + 1).unwrap_or(u32::MAX),
                column: None,
            });
        }
    }
    None
}

/// Turns the worker's outcome into status, result and evidence, re-checking any solution.
/// `model_text` is the input, used to point `invalid_input` at a line.
pub fn interpret(outcome: &Outcome, model_text: &[u8]) -> OptAnswer {
    let stdout = String::from_utf8_lossy(&outcome.stdout);
    let report: Option<WorkerReport> = stdout
        .lines()
        .rev()
        .find_map(|l| serde_json::from_str(l).ok());
    let Some(report) = report else {
        let status = match outcome.exit {
            ExitReason::Timeout | ExitReason::CpuLimit => OptStatus::Timeout,
            ExitReason::MemoryLimit
            | ExitReason::OutputLimit
            | ExitReason::PidsLimit
            | ExitReason::FileSizeLimit => OptStatus::ResourceExceeded,
            ExitReason::Cancelled => OptStatus::Cancelled,
            _ => OptStatus::BackendError,
        };
        let stderr = String::from_utf8_lossy(&outcome.stderr);
        let message = format!(
            "the HiGHS worker gave no report ({}): {}",
            outcome.exit,
            stderr.trim()
        );
        return answer(
            status,
            message_result(message, None),
            "no solution to re-check".into(),
            None,
            None,
        );
    };
    match report.outcome.as_str() {
        "ok" => {}
        "read_error" => {
            let message = log_errors(&report);
            let location = log_location(&report).or_else(|| locate(&message, model_text));
            return answer(
                OptStatus::InvalidInput,
                message_result(message, location),
                "no solution to re-check".into(),
                Some(report),
                None,
            );
        }
        _ => {
            let message = format!("{}: {}", report.outcome, log_errors(&report));
            return answer(
                OptStatus::BackendError,
                message_result(message, None),
                "no solution to re-check".into(),
                Some(report),
                None,
            );
        }
    }
    let model = report.model.clone().unwrap_or_default();
    let is_mip = model.is_mip();
    let has_point =
        report.primal_solution_status == 2 && report.col_value.len() == model.col_cost.len();
    let status = match report.model_status_code {
        7 => OptStatus::Optimal,
        6 => OptStatus::Optimal,
        8 => OptStatus::Infeasible,
        9 => OptStatus::InfeasibleOrUnbounded,
        10 => OptStatus::Unbounded,
        13 if is_mip && has_point => OptStatus::Feasible,
        13 => OptStatus::Timeout,
        11 | 12 | 14 | 16 if has_point => OptStatus::Feasible,
        11 | 12 | 14 | 16 | 15 => OptStatus::Unknown,
        18 => OptStatus::ResourceExceeded,
        17 | 19 => OptStatus::Cancelled,
        1 | 2 => OptStatus::InvalidInput,
        _ => OptStatus::BackendError,
    };
    let mut result = OptResult {
        iterations: [
            report.simplex_iterations,
            report.ipm_iterations,
            report.qp_iterations,
        ]
        .iter()
        .flatten()
        .filter(|&&v| v > 0)
        .map(|&v| u64::try_from(v).unwrap_or(0))
        .max()
        .or(Some(0)),
        nodes: if is_mip {
            report.mip_node_count.and_then(|n| u64::try_from(n).ok())
        } else {
            None
        },
        ..OptResult::default()
    };
    if matches!(status, OptStatus::InvalidInput | OptStatus::BackendError) {
        result.message = Some(format!(
            "HiGHS: {}: {}",
            report.model_status,
            log_errors(&report)
        ));
        return answer(
            status,
            result,
            "no solution to re-check".into(),
            Some(report),
            None,
        );
    }
    if !matches!(status, OptStatus::Optimal | OptStatus::Feasible) {
        let recheck = format!("{} is HiGHS's claim; capsci does not re-check it", status);
        return answer(status, result, recheck, Some(report), None);
    }
    if !model.consistent() {
        result.message = Some("the worker's model data is inconsistent; nothing re-checked".into());
        return answer(
            status,
            result,
            "not re-checked: inconsistent model data".into(),
            Some(report),
            None,
        );
    }
    let x = &report.col_value;
    let names = &model.col_names;
    result.columns = Some(names.iter().cloned().zip(x.iter().copied()).collect());
    result.objective = report.objective;
    if is_mip {
        result.bound = report.mip_dual_bound;
        result.gap = report.mip_gap;
    }
    let primal = check_primal(&model, x);
    result.max_violation = Some(primal.max_violation);
    let reported = report.objective.unwrap_or(f64::NAN);
    let objective_agrees = (primal.objective - reported).abs() <= GAP_TOL * (1.0 + reported.abs());
    let mut evidence = Evidence::Advisory;
    let mut recheck;
    if !primal.feasible() {
        recheck = format!(
            "SOLUTION VIOLATES THE MODEL: max scaled violation {:.3e} at {}",
            primal.max_violation,
            primal.worst.clone().unwrap_or_default()
        );
        result.message = Some(recheck.clone());
    } else if !objective_agrees {
        recheck = format!(
            "objective mismatch: HiGHS reported {reported}, capsci recomputed {}",
            primal.objective
        );
        result.message = Some(recheck.clone());
    } else {
        recheck = format!(
            "primal solution re-checked: {} column bounds{}, {} rows recomputed from the matrix, max scaled violation {:.1e}; objective recomputed",
            model.col_cost.len(),
            if is_mip { " and integrality" } else { "" },
            model.row_lower.len(),
            primal.max_violation
        );
        evidence = Evidence::Checked;
    }
    if is_mip {
        result.optimality = Some("solver_claim".into());
    } else {
        let row_names = &model.row_names;
        result.duals = Some(
            row_names
                .iter()
                .cloned()
                .zip(report.row_dual.iter().copied())
                .collect(),
        );
        result.reduced_costs = Some(
            names
                .iter()
                .cloned()
                .zip(report.col_dual.iter().copied())
                .collect(),
        );
        let dual = check_dual(&model, x, &report.row_dual);
        if status == OptStatus::Optimal && evidence == Evidence::Checked && dual.verified() {
            result.optimality = Some("verified".into());
            recheck.push_str(&format!(
                "; optimality verified: dual feasibility (max scaled violation {:.1e}) and duality gap {:.1e} recomputed from the row duals{}",
                dual.max_dual_violation,
                dual.relative_gap,
                if model.is_qp() { " (QP: Wolfe dual, Hessian taken as convex as HiGHS requires)" } else { "" }
            ));
        } else {
            result.optimality = Some("solver_claim".into());
            if status == OptStatus::Optimal {
                recheck.push_str(&format!(
                    "; optimality NOT verified: dual violation {:.1e}{}, duality gap {:.1e}",
                    dual.max_dual_violation,
                    dual.worst.map(|w| format!(" at {w}")).unwrap_or_default(),
                    dual.relative_gap
                ));
                evidence = Evidence::Advisory;
            }
        }
    }
    OptAnswer {
        status,
        result,
        evidence,
        recheck,
        report: Some(report),
        outcome: None,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use capsci_core::{MemoryLimitBy, Usage};

    fn outcome(stdout: String, exit: ExitReason) -> Outcome {
        Outcome {
            exit,
            stdout: stdout.into_bytes(),
            stderr: Vec::new(),
            usage: Usage::default(),
            collected: Vec::new(),
            sandbox: Default::default(),
            memory_limit_by: MemoryLimitBy::None,
        }
    }

    fn lp_report(status: i64, x: &[f64], y: &[f64]) -> String {
        serde_json::json!({
            "outcome": "ok", "model_status": "Optimal", "model_status_code": status,
            "primal_solution_status": 2, "dual_solution_status": 2, "objective": -8.0,
            "col_value": x, "col_dual": [1.0, 0.0], "row_value": [4.0], "row_dual": y,
            "model": {
                "sense": "minimize", "offset": 0.0, "col_names": ["x", "y"], "row_names": ["c1"],
                "col_cost": [-1.0, -2.0], "col_lower": [0.0, 0.0], "col_upper": [3.0, null],
                "row_lower": [null], "row_upper": [4.0], "a_start": [0, 1, 2], "a_index": [0, 0],
                "a_value": [1.0, 1.0], "integrality": [], "q_start": [], "q_index": [], "q_value": []
            },
            "log": []
        })
        .to_string()
    }

    #[test]
    fn verified_lp_optimum_is_checked() {
        let a = interpret(
            &outcome(lp_report(7, &[0.0, 4.0], &[-2.0]), ExitReason::Exited(0)),
            b"",
        );
        assert_eq!(a.status, OptStatus::Optimal);
        assert_eq!(a.evidence, Evidence::Checked);
        assert_eq!(a.result.optimality.as_deref(), Some("verified"));
        assert_eq!(a.result.columns.unwrap()["y"], 4.0);
        assert_eq!(a.result.duals.unwrap()["c1"], -2.0);
    }

    #[test]
    fn a_wrong_dual_leaves_optimality_unverified_and_infeasible_point_is_flagged() {
        let a = interpret(
            &outcome(lp_report(7, &[0.0, 4.0], &[0.0]), ExitReason::Exited(0)),
            b"",
        );
        assert_eq!(a.evidence, Evidence::Advisory);
        assert_eq!(a.result.optimality.as_deref(), Some("solver_claim"));
        let a = interpret(
            &outcome(lp_report(7, &[3.0, 4.0], &[-2.0]), ExitReason::Exited(0)),
            b"",
        );
        assert_eq!(a.evidence, Evidence::Advisory);
        assert!(a.result.max_violation.unwrap() > 0.1);
        assert!(a.result.message.unwrap().contains("row c1"));
    }

    #[test]
    fn read_errors_are_invalid_input_pointing_at_the_line() {
        let report = serde_json::json!({"outcome": "read_error", "log": [
            "Running HiGHS", "ERROR:   Entry \"foo bar\" in ROWS section of MPS file is unidentified"
        ], "message": "HiGHS could not read model.mps"});
        let a = interpret(
            &outcome(report.to_string(), ExitReason::Exited(0)),
            b"NAME x\nROWS\n N obj\nfoo bar\n",
        );
        assert_eq!(a.status, OptStatus::InvalidInput);
        assert_eq!(
            a.result.location,
            Some(Location {
                line: 4,
                column: None
            })
        );
        assert!(a.result.message.unwrap().contains("unidentified"));
    }

    #[test]
    fn no_report_maps_the_sandbox_exit() {
        assert_eq!(
            interpret(&outcome(String::new(), ExitReason::Timeout), b"").status,
            OptStatus::Timeout
        );
        assert_eq!(
            interpret(&outcome(String::new(), ExitReason::MemoryLimit), b"").status,
            OptStatus::ResourceExceeded
        );
        assert_eq!(
            interpret(&outcome(String::new(), ExitReason::Signal(11)), b"").status,
            OptStatus::BackendError
        );
    }

    #[test]
    fn options_are_validated_and_passed() {
        assert!(validate(&OptOptions {
            time_limit_s: 0.0,
            ..OptOptions::default()
        })
        .is_err());
        assert!(validate(&OptOptions {
            mip_rel_gap: Some(2.0),
            ..OptOptions::default()
        })
        .is_err());
        let setup = WorkerSetup {
            program: "/opt/w".into(),
            binds: vec![],
        };
        let o = OptOptions {
            mip_rel_gap: Some(0.01),
            presolve: Some(false),
            ..OptOptions::default()
        };
        let c = worker_command(b"x", ModelFormat::Lp, &o);
        assert_eq!(c.program, PathBuf::from(WORKER_IN_SANDBOX));
        let binds = setup.sandbox_binds();
        assert_eq!(
            binds,
            vec![Bind {
                host: "/opt/w".into(),
                sandbox: WORKER_IN_SANDBOX.into()
            }]
        );
        assert_eq!(c.args[0], "model.lp");
        assert!(c
            .args
            .windows(2)
            .any(|w| w[0] == "--mip-rel-gap" && w[1] == "0.01"));
        assert!(c
            .args
            .windows(2)
            .any(|w| w[0] == "--presolve" && w[1] == "off"));
        assert_eq!(c.files[0].0, PathBuf::from("model.lp"));
        let p = worker_policy(&[], &o);
        assert_eq!(p.limits.wall_s, 60.0 + SANDBOX_GRACE_S);
    }
}
