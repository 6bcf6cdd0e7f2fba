//! `SmtSolver.check`: SMT-LIB 2 scripts to Z3 and cvc5 in the sandbox, with the answer re-checked
//! by capsci.
//!
//! The pieces, each pure and tested on its own:
//! - [`script::Script`] reads the user's script and builds the exact bytes sent to the solver
//!   ([`request_command`]) and the re-check scripts;
//! - [`solver_policy`] builds the [`SandboxPolicy`] from the backend's package-closure binds;
//! - [`interpret`] turns the sandbox's [`Outcome`] into the typed status and `result`;
//! - [`check`] is the entry the service calls: it runs the solver(s) through a [`SolverRunner`]
//!   (the real sandbox, or its hot spares), re-checks the answer and combines `--backend all`
//!   and portfolio runs.
//!
//! Re-checks (DESIGN.md "evidence"):
//! - `sat`: a fresh run of the same solver gets the active declarations with every declared
//!   symbol the model defines replaced by the model's `define-fun`, and every active assertion.
//!   With all symbols defined the assertions are closed formulas, so `sat` means every one of them
//!   holds under the model (`evidence: checked`). If the solver then says `unsat`, the model is
//!   wrong and the call is `backend_error`, loudly.
//! - `unsat` with named assertions: the core alone (declarations plus only the core's named
//!   assertions) goes to the *other* solver; `unsat` there makes the core `checked`; `sat` there is
//!   a disagreement, reported as `backend_error`.

pub mod eval;
pub mod output;
pub mod script;
pub mod sexp;

use capsci_core::{BackendIdentity, ModelEntry, Usage};
use capsci_core::{Evidence, ExitReason, Limits, SmtBackendReport, SmtResult, SmtStatus};
use capsci_sandbox::{
    Bind, CancelToken, Command, Outcome, Sandbox, SandboxPolicy, SparePool, SyscallFilter,
};
use output::{means_resource, means_timeout, read_reply, Reply};
use script::{read_model, Script};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;
use thiserror::Error;

/// Extra wall-clock seconds the sandbox allows beyond the solver's own time limit, so that the
/// solver's own `timeout` answer normally arrives first and the sandbox's kill is the backstop.
pub const SANDBOX_GRACE_S: f64 = 2.0;

/// Why a solver run could not happen at all (the sandbox failed; the tool never answered).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum SmtError {
    /// The sandbox could not run the solver.
    #[error("sandbox could not run {backend}: {message}")]
    Sandbox {
        /// `z3` or `cvc5`.
        backend: &'static str,
        /// The sandbox's error.
        message: String,
    },
}

/// One SMT solver capsci can run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SmtBackend {
    /// Z3 (Debian's `z3`).
    Z3,
    /// cvc5 (Debian's `cvc5`).
    Cvc5,
}

impl SmtBackend {
    /// Both backends, in a fixed order.
    pub const ALL: [SmtBackend; 2] = [SmtBackend::Z3, SmtBackend::Cvc5];

    /// The backend's name on the wire (`z3`, `cvc5`).
    pub fn name(self) -> &'static str {
        match self {
            SmtBackend::Z3 => "z3",
            SmtBackend::Cvc5 => "cvc5",
        }
    }

    /// Parses `z3` or `cvc5`.
    pub fn parse(word: &str) -> Option<SmtBackend> {
        match word {
            "z3" => Some(SmtBackend::Z3),
            "cvc5" => Some(SmtBackend::Cvc5),
            _ => None,
        }
    }

    /// The other solver, which re-checks this one's unsat cores.
    pub fn other(self) -> SmtBackend {
        match self {
            SmtBackend::Z3 => SmtBackend::Cvc5,
            SmtBackend::Cvc5 => SmtBackend::Z3,
        }
    }

    /// The executable, as a path inside the sandbox (the same as on the host).
    pub fn program(self) -> PathBuf {
        PathBuf::from(match self {
            SmtBackend::Z3 => "/usr/bin/z3",
            SmtBackend::Cvc5 => "/usr/bin/cvc5",
        })
    }

    /// Its fixed arguments: read SMT-LIB 2 from stdin. Everything per call (time limit, seed)
    /// goes in the script's first line, so one pre-started process (a hot spare) serves any call.
    pub fn args(self) -> Vec<String> {
        match self {
            SmtBackend::Z3 => vec!["-in".into(), "-smt2".into()],
            SmtBackend::Cvc5 => vec!["--lang=smt2".into(), "--incremental".into()],
        }
    }

    /// The roots of its package closure, which `PackageClosure` resolves (ELF dependencies) into
    /// the binds the sandbox needs.
    pub fn closure_roots(self) -> Vec<PathBuf> {
        vec![self.program()]
    }

    /// The per-call options line: the solver's own time limit per check and the random seed.
    pub fn option_line(self, options: &SmtOptions) -> String {
        match self {
            SmtBackend::Z3 => format!(
                "(set-option :random-seed {}) (set-option :timeout {})",
                options.seed, options.timeout_ms
            ),
            SmtBackend::Cvc5 => format!(
                "(set-option :seed {}) (set-option :tlimit-per {})",
                options.seed, options.timeout_ms
            ),
        }
    }

    /// How far the solver's line numbers run ahead of the user's (see [`output::input_error`]).
    pub fn line_shift(self) -> u32 {
        match self {
            SmtBackend::Z3 => 1,
            SmtBackend::Cvc5 => 0,
        }
    }
}

/// Which backends a call uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendChoice {
    /// One solver.
    One(SmtBackend),
    /// Both side by side; a `sat`/`unsat` disagreement is `backend_error`.
    All,
    /// Both at once; the first definitive answer wins and the other is cancelled.
    Portfolio,
}

/// Per-call limits and seed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SmtOptions {
    /// The solver's time limit per check, milliseconds (the sandbox allows [`SANDBOX_GRACE_S`]
    /// more).
    pub timeout_ms: u64,
    /// Memory limit, MiB (enforced by the sandbox).
    pub memory_mb: u64,
    /// Random seed given to the solver.
    pub seed: u64,
}

impl Default for SmtOptions {
    fn default() -> Self {
        SmtOptions {
            timeout_ms: 30_000,
            memory_mb: 2048,
            seed: 0,
        }
    }
}

/// What the service knows about one installed solver: who it is and what the sandbox must bind.
#[derive(Debug, Clone, Default)]
pub struct SolverSetup {
    /// Name, version and closure hash for the envelope.
    pub identity: BackendIdentity,
    /// Read-only binds of its package closure (from capsci-store's `PackageClosure`).
    pub binds: Vec<Bind>,
}

/// Both solvers' setups.
#[derive(Debug, Clone, Default)]
pub struct SmtSetups {
    /// Z3.
    pub z3: SolverSetup,
    /// cvc5.
    pub cvc5: SolverSetup,
}

impl SmtSetups {
    /// The setup of one backend.
    pub fn get(&self, backend: SmtBackend) -> &SolverSetup {
        match backend {
            SmtBackend::Z3 => &self.z3,
            SmtBackend::Cvc5 => &self.cvc5,
        }
    }
}

/// Runs one solver process in the sandbox. The service implements it with the real sandbox or its
/// hot spares; nothing else may start a solver.
pub trait SolverRunner: Sync {
    /// Runs `command` under `policy`; `Err` when the sandbox itself failed.
    fn run(
        &self,
        backend: SmtBackend,
        policy: &SandboxPolicy,
        command: Command,
        cancel: &CancelToken,
    ) -> Result<Outcome, String>;
}

/// The real runner: every call on a fresh sandbox, or on a hot spare when a pool for that backend
/// runs under exactly the call's policy (with several such pools, the one with most spares ready) (pools are made with [`spare_template`] and
/// [`solver_policy`] for the service's default options).
pub struct SandboxRunner<'a> {
    /// The sandbox for cold runs.
    pub sandbox: &'a dyn Sandbox,
    /// Hot-spare pools by backend.
    pub spares: Vec<(SmtBackend, &'a SparePool)>,
}

impl SolverRunner for SandboxRunner<'_> {
    fn run(
        &self,
        backend: SmtBackend,
        policy: &SandboxPolicy,
        command: Command,
        cancel: &CancelToken,
    ) -> Result<Outcome, String> {
        let template = spare_template(backend);
        // Among the pools for this backend and policy, the one with the most spares waiting
        // (several pools refill in parallel).
        let pool = self
            .spares
            .iter()
            .filter(|(b, pool)| {
                *b == backend
                    && pool.policy() == policy
                    && command.program == template.program
                    && command.args == template.args
                    && command.files.is_empty()
            })
            .max_by_key(|(_, pool)| pool.ready());
        match pool {
            Some((_, pool)) => pool.run(command.stdin, cancel),
            None => self.sandbox.run(policy, command, cancel),
        }
        .map_err(|e| e.to_string())
    }
}

/// The command a hot-spare pool for `backend` pre-starts (it then waits for its stdin).
pub fn spare_template(backend: SmtBackend) -> Command {
    request_command(backend, "")
}

/// The sandbox policy for one solver run: its closure's binds read-only, an empty environment
/// but `PATH`, no network, the solver-default syscall filter, and limits backing the solver's own
/// (wall and CPU = solver limit + [`SANDBOX_GRACE_S`]).
pub fn solver_policy(backend: SmtBackend, binds: &[Bind], options: &SmtOptions) -> SandboxPolicy {
    let seconds = options.timeout_ms as f64 / 1000.0 + SANDBOX_GRACE_S;
    let mut env = BTreeMap::new();
    env.insert("PATH".to_string(), "/usr/bin:/bin".to_string());
    SandboxPolicy {
        backend: backend.name().to_string(),
        ro_binds: binds.to_vec(),
        env,
        limits: Limits {
            wall_s: seconds,
            cpu_s: seconds,
            memory_mb: options.memory_mb,
            ..Limits::default()
        },
        network: false,
        syscall_filter: SyscallFilter::SolverDefault,
    }
}

/// The command for one solver run: the fixed arguments, `text` on stdin.
pub fn request_command(backend: SmtBackend, text: &str) -> Command {
    Command {
        program: backend.program(),
        args: backend.args(),
        stdin: text.as_bytes().to_vec(),
        ..Command::default()
    }
}

/// One solver's answer before re-checking.
#[derive(Debug, Clone)]
pub struct Interpreted {
    /// The typed status.
    pub status: SmtStatus,
    /// The structured payload.
    pub result: SmtResult,
    /// The model as replayable definitions (for the re-check).
    pub model: Vec<script::ModelDef>,
    /// The uninterpreted-sort universe of the model (for the re-check).
    pub universe: script::ModelUniverse,
}

/// Turns a solver's [`Outcome`] into its status and result (no re-check).
///
/// Order of precedence: an `(error ...)` on the input (`invalid_input`, unless it words a timeout
/// or memory limit) — then a limit the sandbox enforced (`timeout`, `resource_exceeded`) or a
/// cancellation — then the answer to the last `check-sat` — else `backend_error` with stderr.
pub fn interpret(backend: SmtBackend, script: &Script, outcome: &Outcome) -> Interpreted {
    let stdout = String::from_utf8_lossy(&outcome.stdout);
    let reply = read_reply(&stdout, backend.line_shift());
    interpret_reply(
        backend,
        script,
        &reply,
        outcome.exit,
        &String::from_utf8_lossy(&outcome.stderr),
    )
}

fn interpret_reply(
    backend: SmtBackend,
    script: &Script,
    reply: &Reply,
    exit: ExitReason,
    stderr: &str,
) -> Interpreted {
    let plain = |status: SmtStatus, result: SmtResult| Interpreted {
        status,
        result,
        model: Vec::new(),
        universe: script::ModelUniverse::default(),
    };
    if let Some(error) = reply.errors.first() {
        if means_timeout(&error.message) {
            return plain(
                SmtStatus::Timeout,
                SmtResult {
                    reason_unknown: Some(error.message.clone()),
                    ..SmtResult::default()
                },
            );
        }
        if means_resource(&error.message) {
            return plain(
                SmtStatus::ResourceExceeded,
                SmtResult {
                    message: Some(error.message.clone()),
                    ..SmtResult::default()
                },
            );
        }
        return plain(
            SmtStatus::InvalidInput,
            SmtResult {
                message: Some(error.message.clone()),
                location: error.location.clone(),
                ..SmtResult::default()
            },
        );
    }
    match exit {
        ExitReason::Timeout | ExitReason::CpuLimit => {
            return plain(
                SmtStatus::Timeout,
                SmtResult {
                    reason_unknown: Some(format!("sandbox {exit}")),
                    ..SmtResult::default()
                },
            )
        }
        ExitReason::MemoryLimit
        | ExitReason::OutputLimit
        | ExitReason::PidsLimit
        | ExitReason::FileSizeLimit => {
            return plain(
                SmtStatus::ResourceExceeded,
                SmtResult {
                    message: Some(format!("sandbox {exit}")),
                    ..SmtResult::default()
                },
            )
        }
        ExitReason::Cancelled => return plain(SmtStatus::Cancelled, SmtResult::default()),
        _ => {}
    }
    match reply.last_answer() {
        Some("sat") => {
            // Named-assertion labels and the script's own definitions are not model values
            // (Z3 4.8 lists both).
            let mut labels = script.named_assertions();
            labels.extend(script.defined_names());
            let (model, universe) = match &reply.model {
                Some(m) => read_model(m, &reply.text, &labels),
                None => (Vec::new(), script::ModelUniverse::default()),
            };
            let entries = model
                .iter()
                .map(|d| ModelEntry {
                    name: d.name.clone(),
                    sort: d.entry_sort(),
                    value: d.entry_value(),
                })
                .collect();
            Interpreted {
                status: SmtStatus::Sat,
                result: SmtResult {
                    model: Some(entries),
                    ..SmtResult::default()
                },
                model,
                universe,
            }
        }
        Some("unsat") => {
            let core = if script.named_assertions().is_empty() {
                None
            } else {
                reply.core.clone()
            };
            plain(
                SmtStatus::Unsat,
                SmtResult {
                    core,
                    ..SmtResult::default()
                },
            )
        }
        Some("unknown") => {
            let reason = reply.reason_unknown.clone();
            let status = match reason.as_deref() {
                Some(r) if means_timeout(r) => SmtStatus::Timeout,
                Some(r) if means_resource(r) => SmtStatus::ResourceExceeded,
                _ => SmtStatus::Unknown,
            };
            plain(
                status,
                SmtResult {
                    reason_unknown: reason,
                    ..SmtResult::default()
                },
            )
        }
        Some("timeout") => plain(
            SmtStatus::Timeout,
            SmtResult {
                reason_unknown: Some("timeout".into()),
                ..SmtResult::default()
            },
        ),
        _ => {
            let tail: String = stderr
                .trim()
                .chars()
                .rev()
                .take(2000)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect();
            if stderr.contains("interrupted by timeout")
                || stderr.contains("interrupted by SIGTERM")
            {
                return plain(
                    SmtStatus::Timeout,
                    SmtResult {
                        reason_unknown: Some(tail),
                        ..SmtResult::default()
                    },
                );
            }
            plain(
                SmtStatus::BackendError,
                SmtResult {
                    message: Some(format!(
                        "{} gave no answer ({exit}): {tail}",
                        backend.name()
                    )),
                    ..SmtResult::default()
                },
            )
        }
    }
}

/// One solver run (the main run or a re-check): what was sent and what came back.
#[derive(Debug, Clone)]
pub struct SolverRun {
    /// Which solver.
    pub backend: SmtBackend,
    /// What this run was for (`check`, `model re-check`, `core re-check`).
    pub purpose: &'static str,
    /// The exact bytes sent on stdin (the SMT-LIB export artifact).
    pub sent: Vec<u8>,
    /// The sandbox's outcome; `None` when the sandbox failed.
    pub outcome: Option<Outcome>,
    /// The sandbox's error, when it failed.
    pub error: Option<String>,
}

/// One backend's full answer: status, result, evidence and its runs.
#[derive(Debug, Clone)]
pub struct BackendAnswer {
    /// Which solver.
    pub backend: SmtBackend,
    /// Its status after re-checking.
    pub status: SmtStatus,
    /// Its result.
    pub result: SmtResult,
    /// `checked` when capsci re-verified the answer.
    pub evidence: Evidence,
    /// The main run and its re-check runs, in order.
    pub runs: Vec<SolverRun>,
}

impl BackendAnswer {
    /// The main run's usage (zero when the sandbox failed).
    pub fn usage(&self) -> Usage {
        self.runs
            .first()
            .and_then(|r| r.outcome.as_ref())
            .map(|o| o.usage)
            .unwrap_or_default()
    }

    /// How the main run ended.
    pub fn exit(&self) -> ExitReason {
        self.runs
            .first()
            .and_then(|r| r.outcome.as_ref())
            .map(|o| o.exit)
            .unwrap_or(ExitReason::SandboxError)
    }
}

/// The answer of `SmtSolver.check`.
#[derive(Debug, Clone)]
pub struct SmtAnswer {
    /// The status (the agreed one with several backends).
    pub status: SmtStatus,
    /// The result; with several backends `result.backends` holds each one's answer.
    pub result: SmtResult,
    /// `checked` only when the reported answer was re-verified.
    pub evidence: Evidence,
    /// The backend whose answer is reported (the winner in portfolio mode).
    pub backend: SmtBackend,
    /// Every backend's answer, with its runs.
    pub answers: Vec<BackendAnswer>,
}

/// `SmtSolver.check`: runs the script on the chosen backend(s) in the sandbox via `runner`, and
/// re-checks the answer. Never fails: sandbox failures are `backend_error` answers.
pub fn check(
    runner: &dyn SolverRunner,
    setups: &SmtSetups,
    choice: BackendChoice,
    text: &str,
    options: &SmtOptions,
    cancel: &CancelToken,
) -> SmtAnswer {
    match choice {
        BackendChoice::One(backend) => {
            let answer = check_one(runner, setups, backend, text, options, cancel, None);
            SmtAnswer {
                status: answer.status,
                result: answer.result.clone(),
                evidence: answer.evidence,
                backend,
                answers: vec![answer],
            }
        }
        BackendChoice::All => check_both(runner, setups, text, options, cancel, false),
        BackendChoice::Portfolio => check_both(runner, setups, text, options, cancel, true),
    }
}

fn is_definitive(status: SmtStatus) -> bool {
    matches!(status, SmtStatus::Sat | SmtStatus::Unsat)
}

fn check_both(
    runner: &dyn SolverRunner,
    setups: &SmtSetups,
    text: &str,
    options: &SmtOptions,
    cancel: &CancelToken,
    portfolio: bool,
) -> SmtAnswer {
    let tokens = [CancelToken::new(), CancelToken::new()];
    let winner: Mutex<Option<SmtBackend>> = Mutex::new(None);
    let done = CancelToken::new();
    let answers: Vec<BackendAnswer> = std::thread::scope(|scope| {
        // Forward the caller's cancellation to both runs.
        scope.spawn(|| {
            while !done.is_cancelled() {
                if cancel.is_cancelled() {
                    tokens.iter().for_each(CancelToken::cancel);
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        });
        let handles: Vec<_> = SmtBackend::ALL
            .iter()
            .enumerate()
            .map(|(i, &backend)| {
                let tokens = &tokens;
                let winner = &winner;
                scope.spawn(move || {
                    let on_answer = |status: SmtStatus| {
                        if portfolio && is_definitive(status) {
                            let mut w = winner.lock().unwrap_or_else(|e| e.into_inner());
                            if w.is_none() {
                                *w = Some(backend);
                                tokens[1 - i].cancel();
                            }
                        }
                    };
                    check_one(
                        runner,
                        setups,
                        backend,
                        text,
                        options,
                        &tokens[i],
                        Some(&on_answer),
                    )
                })
            })
            .collect();
        let answers = handles
            .into_iter()
            .zip(SmtBackend::ALL)
            .map(|(h, backend)| {
                h.join().unwrap_or_else(|_| BackendAnswer {
                    backend,
                    status: SmtStatus::BackendError,
                    result: SmtResult {
                        message: Some("solver thread panicked".into()),
                        ..SmtResult::default()
                    },
                    evidence: Evidence::Advisory,
                    runs: Vec::new(),
                })
            })
            .collect();
        done.cancel();
        answers
    });
    let reports: Vec<SmtBackendReport> = answers
        .iter()
        .map(|a| SmtBackendReport {
            backend: setups.get(a.backend).identity.clone(),
            status: a.status,
            result: a.result.clone(),
            usage: a.usage(),
            exit: a.exit(),
            artifacts: Default::default(),
        })
        .collect();
    let winner = *winner.lock().unwrap_or_else(|e| e.into_inner());
    combine(answers, reports, portfolio, winner)
}

/// Combines both backends' answers: in portfolio mode the winner's; otherwise the agreed
/// definitive status (a re-checked one preferred), `backend_error` with both answers named on a
/// `sat`/`unsat` disagreement, or the first backend's answer when neither is definitive.
fn combine(
    answers: Vec<BackendAnswer>,
    reports: Vec<SmtBackendReport>,
    portfolio: bool,
    winner: Option<SmtBackend>,
) -> SmtAnswer {
    let Some(first) = answers.first() else {
        return SmtAnswer {
            status: SmtStatus::BackendError,
            result: SmtResult {
                message: Some("no backend answered".into()),
                ..SmtResult::default()
            },
            evidence: Evidence::Advisory,
            backend: SmtBackend::Z3,
            answers,
        };
    };
    let first = first.clone();
    let definitive: Vec<&BackendAnswer> =
        answers.iter().filter(|a| is_definitive(a.status)).collect();
    let (status, mut result, evidence, backend) = match (portfolio, winner, definitive.as_slice()) {
        (true, Some(w), _) => {
            let a = answers.iter().find(|a| a.backend == w).unwrap_or(&first);
            (a.status, a.result.clone(), a.evidence, w)
        }
        (false, _, [a, b]) if a.status != b.status => (
            SmtStatus::BackendError,
            SmtResult {
                message: Some(format!(
                    "DISAGREEMENT: {} says {}, {} says {}",
                    a.backend.name(),
                    a.status,
                    b.backend.name(),
                    b.status
                )),
                ..SmtResult::default()
            },
            Evidence::Advisory,
            a.backend,
        ),
        (_, _, [a, ..]) => {
            // Prefer a re-checked answer among the agreeing ones.
            let best = definitive
                .iter()
                .find(|d| d.evidence == Evidence::Checked)
                .copied()
                .unwrap_or(a);
            (
                best.status,
                best.result.clone(),
                best.evidence,
                best.backend,
            )
        }
        (_, _, []) => {
            let a = &first;
            (a.status, a.result.clone(), a.evidence, a.backend)
        }
    };
    result.backends = Some(reports);
    SmtAnswer {
        status,
        result,
        evidence,
        backend,
        answers,
    }
}

fn run_solver(
    runner: &dyn SolverRunner,
    setups: &SmtSetups,
    backend: SmtBackend,
    purpose: &'static str,
    text: String,
    options: &SmtOptions,
    cancel: &CancelToken,
) -> SolverRun {
    let policy = solver_policy(backend, &setups.get(backend).binds, options);
    let command = request_command(backend, &text);
    match runner.run(backend, &policy, command, cancel) {
        Ok(outcome) => SolverRun {
            backend,
            purpose,
            sent: text.into_bytes(),
            outcome: Some(outcome),
            error: None,
        },
        Err(e) => SolverRun {
            backend,
            purpose,
            sent: text.into_bytes(),
            outcome: None,
            error: Some(e),
        },
    }
}

fn check_one(
    runner: &dyn SolverRunner,
    setups: &SmtSetups,
    backend: SmtBackend,
    text: &str,
    options: &SmtOptions,
    cancel: &CancelToken,
    on_answer: Option<&dyn Fn(SmtStatus)>,
) -> BackendAnswer {
    let script = match Script::parse(text) {
        Ok(s) => s,
        Err(reader_error) => {
            // Not even S-expressions: let the solver word the error, fall back to capsci's.
            let sent = format!("{}\n{text}", backend.option_line(options));
            let run = run_solver(runner, setups, backend, "check", sent, options, cancel);
            let stdout = run
                .outcome
                .as_ref()
                .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
                .unwrap_or_default();
            let reply = read_reply(&stdout, backend.line_shift());
            let (message, location) = match reply.errors.first() {
                Some(e) => (e.message.clone(), e.location.clone()),
                None => (
                    reader_error.to_string(),
                    Some(capsci_core::Location {
                        line: reader_error.line(),
                        column: None,
                    }),
                ),
            };
            let answer = BackendAnswer {
                backend,
                status: SmtStatus::InvalidInput,
                result: SmtResult {
                    message: Some(message),
                    location,
                    ..SmtResult::default()
                },
                evidence: Evidence::Advisory,
                runs: vec![run],
            };
            if let Some(f) = on_answer {
                f(answer.status);
            }
            return answer;
        }
    };
    let sent = script.request_text(&backend.option_line(options));
    let run = run_solver(runner, setups, backend, "check", sent, options, cancel);
    let Some(outcome) = run.outcome.clone() else {
        let message = SmtError::Sandbox {
            backend: backend.name(),
            message: run.error.clone().unwrap_or_default(),
        };
        return BackendAnswer {
            backend,
            status: SmtStatus::BackendError,
            result: SmtResult {
                message: Some(message.to_string()),
                ..SmtResult::default()
            },
            evidence: Evidence::Advisory,
            runs: vec![run],
        };
    };
    let interpreted = interpret(backend, &script, &outcome);
    if let Some(f) = on_answer {
        f(interpreted.status);
    }
    let mut answer = BackendAnswer {
        backend,
        status: interpreted.status,
        result: interpreted.result.clone(),
        evidence: Evidence::Advisory,
        runs: vec![run],
    };
    match interpreted.status {
        SmtStatus::Sat => {
            recheck_model(runner, setups, &script, &interpreted, options, &mut answer)
        }
        SmtStatus::Unsat if answer.result.core.is_some() => {
            recheck_core(runner, setups, &script, options, &mut answer)
        }
        _ => {}
    }
    answer
}

/// Options for re-check runs: the same limits; the seed is irrelevant to a closed check.
fn recheck_options(options: &SmtOptions) -> SmtOptions {
    *options
}

fn recheck_model(
    runner: &dyn SolverRunner,
    setups: &SmtSetups,
    script: &Script,
    interpreted: &Interpreted,
    options: &SmtOptions,
    answer: &mut BackendAnswer,
) {
    let backend = answer.backend;
    if let Some(count) = evaluate_model(script, &interpreted.model) {
        answer.evidence = Evidence::Checked;
        answer.result.recheck = Some(format!(
            "model re-checked by capsci's own evaluator: all {count} active assertion(s) evaluate to true under the model's values (exact rational arithmetic)"
        ));
        return;
    }
    let options = recheck_options(options);
    let text = format!(
        "{}\n{}",
        backend.option_line(&options),
        script.model_check_text(&interpreted.model, &interpreted.universe)
    );
    // A re-check is a capsci step: it runs to completion unless the whole call is cancelled.
    let run = run_solver(
        runner,
        setups,
        backend,
        "model re-check",
        text,
        &options,
        &CancelToken::new(),
    );
    let verdict = closed_verdict(&run, backend);
    answer.runs.push(run);
    let declared = script.declared_names().len();
    match verdict.as_deref() {
        Ok("sat") => {
            answer.evidence = Evidence::Checked;
            answer.result.recheck = Some(format!(
                "model re-checked: {} of {declared} declared symbols defined by the model's values, every active assertion holds ({} said sat in a fresh run)",
                interpreted.model.iter().filter(|d| script.declared_names().contains(&d.name)).count(),
                backend.name()
            ));
        }
        Ok("unsat") => {
            answer.status = SmtStatus::BackendError;
            answer.result.message = Some(format!(
                "MODEL REJECTED: under the model {} returned, the assertions are false (fresh {} run said unsat)",
                backend.name(),
                backend.name()
            ));
            answer.result.recheck =
                Some("model re-check failed: the assertions do not hold under the model".into());
        }
        Ok(other) => {
            answer.result.recheck = Some(format!(
                "model not re-checked: the fresh run answered {other}"
            ));
        }
        Err(why) => answer.result.recheck = Some(format!("model not re-checked: {why}")),
    }
}

/// Evaluates every active assertion (and final assumption) under the model with capsci's own
/// evaluator. `Some(n)` when all `n` are true; `None` when anything is not evaluable or false (a
/// fresh solver run then decides).
fn evaluate_model(script: &Script, model: &[script::ModelDef]) -> Option<usize> {
    let bodies: Vec<(String, Vec<sexp::Sexp>, &str)> = model
        .iter()
        .filter(|d| d.arg_sorts.is_empty())
        .map(|d| {
            (
                d.name.clone(),
                sexp::parse_all(&d.body).unwrap_or_default(),
                d.body.as_str(),
            )
        })
        .collect();
    let mut bindings = eval::Bindings::new();
    for (name, term) in script.constant_definitions() {
        bindings.insert(name, (term, script.source()));
    }
    for (name, terms, text) in &bodies {
        if let [term] = terms.as_slice() {
            bindings.insert(name.clone(), (term, text));
        }
    }
    let assumptions: Vec<(Vec<sexp::Sexp>, &str)> = script
        .assumptions()
        .iter()
        .map(|a| (sexp::parse_all(a).unwrap_or_default(), a.as_str()))
        .collect();
    let mut evaluator = eval::Evaluator::new(&bindings);
    let mut count = 0;
    for term in script.assertion_terms() {
        if evaluator.eval(term, script.source()) != Ok(eval::Value::Bool(true)) {
            return None;
        }
        count += 1;
    }
    for (terms, text) in &assumptions {
        let [term] = terms.as_slice() else {
            return None;
        };
        if evaluator.eval(term, text) != Ok(eval::Value::Bool(true)) {
            return None;
        }
        count += 1;
    }
    Some(count)
}

fn recheck_core(
    runner: &dyn SolverRunner,
    setups: &SmtSetups,
    script: &Script,
    options: &SmtOptions,
    answer: &mut BackendAnswer,
) {
    let core = answer.result.core.clone().unwrap_or_default();
    let other = answer.backend.other();
    let Some(core_text) = script.core_check_text(&core) else {
        answer.result.recheck =
            Some("core not re-checked: it names an assertion the script does not name".into());
        return;
    };
    let options = recheck_options(options);
    let text = format!("{}\n{core_text}", other.option_line(&options));
    let run = run_solver(
        runner,
        setups,
        other,
        "core re-check",
        text,
        &options,
        &CancelToken::new(),
    );
    let verdict = closed_verdict(&run, other);
    answer.runs.push(run);
    match verdict.as_deref() {
        Ok("unsat") => {
            answer.evidence = Evidence::Checked;
            answer.result.recheck = Some(format!(
                "unsat core re-checked: the {} named assertion(s) of the core alone are unsat according to {}",
                core.len(),
                other.name()
            ));
        }
        Ok("sat") => {
            answer.status = SmtStatus::BackendError;
            answer.result.message = Some(format!(
                "CORE REJECTED: {} says the unsat core from {} is satisfiable on its own",
                other.name(),
                answer.backend.name()
            ));
            answer.result.recheck =
                Some("core re-check failed: the other solver found the core sat".into());
        }
        Ok(word) => {
            answer.result.recheck = Some(format!(
                "core not re-checked: {} answered {word}",
                other.name()
            ))
        }
        Err(why) => answer.result.recheck = Some(format!("core not re-checked: {why}")),
    }
}

/// The answer of a re-check run: its last `check-sat` answer, or why there is none.
fn closed_verdict(run: &SolverRun, backend: SmtBackend) -> Result<String, String> {
    let Some(outcome) = &run.outcome else {
        return Err(format!(
            "sandbox failed: {}",
            run.error.clone().unwrap_or_default()
        ));
    };
    let stdout = String::from_utf8_lossy(&outcome.stdout);
    let reply = read_reply(&stdout, 0);
    if let Some(e) = reply.errors.first() {
        return Err(format!(
            "{} rejected the re-check script: {}",
            backend.name(),
            e.message
        ));
    }
    match reply.last_answer() {
        Some(word) => Ok(word.to_string()),
        None => Err(format!(
            "{} gave no answer ({})",
            backend.name(),
            outcome.exit
        )),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn outcome(stdout: &str, exit: ExitReason) -> Outcome {
        Outcome {
            exit,
            stdout: stdout.as_bytes().to_vec(),
            stderr: Vec::new(),
            usage: Usage::default(),
            collected: Vec::new(),
            sandbox: Default::default(),
            memory_limit_by: capsci_core::MemoryLimitBy::None,
        }
    }

    #[test]
    fn an_error_line_makes_invalid_input_even_when_sat_follows() {
        let script = Script::parse("(declare-const x Int)\n(assert (> y 1))\n(check-sat)").unwrap();
        let out = outcome(
            "(error \"line 3 column 11: unknown constant y\")\nsat\ncapsci-section:reason\ncapsci-section:model\n()\ncapsci-section:end\n",
            ExitReason::Exited(1),
        );
        let i = interpret(SmtBackend::Z3, &script, &out);
        assert_eq!(i.status, SmtStatus::InvalidInput);
        assert_eq!(i.result.location.as_ref().map(|l| l.line), Some(2));
        assert!(i.result.message.unwrap().contains("unknown constant y"));
    }

    #[test]
    fn timeouts_are_timeout_however_worded() {
        let script = Script::parse("(check-sat)").unwrap();
        for (stdout, exit) in [
            (
                "unknown\ncapsci-section:reason\n(:reason-unknown \"canceled\")\n",
                ExitReason::Exited(0),
            ),
            ("(error \"canceled\")\n", ExitReason::Exited(0)),
            (
                "unknown\n\"capsci-section:reason\"\n(:reason-unknown timeout)\n",
                ExitReason::Exited(0),
            ),
            ("", ExitReason::Timeout),
            ("timeout\n", ExitReason::Exited(0)),
        ] {
            let i = interpret(SmtBackend::Z3, &script, &outcome(stdout, exit));
            assert_eq!(i.status, SmtStatus::Timeout, "{stdout:?} {exit}");
        }
        let i = interpret(
            SmtBackend::Z3,
            &script,
            &outcome("", ExitReason::MemoryLimit),
        );
        assert_eq!(i.status, SmtStatus::ResourceExceeded);
        let i = interpret(
            SmtBackend::Z3,
            &script,
            &outcome(
                "unknown\ncapsci-section:reason\n(:reason-unknown \"(incomplete quantifiers)\")\n",
                ExitReason::Exited(0),
            ),
        );
        assert_eq!(i.status, SmtStatus::Unknown);
        assert_eq!(
            i.result.reason_unknown.as_deref(),
            Some("(incomplete quantifiers)")
        );
    }

    #[test]
    fn no_answer_is_a_backend_error_with_stderr() {
        let script = Script::parse("(check-sat)").unwrap();
        let mut out = outcome("", ExitReason::Signal(11));
        out.stderr = b"segfault".to_vec();
        let i = interpret(SmtBackend::Cvc5, &script, &out);
        assert_eq!(i.status, SmtStatus::BackendError);
        assert!(i.result.message.unwrap().contains("segfault"));
    }

    fn answer_of(backend: SmtBackend, status: SmtStatus, evidence: Evidence) -> BackendAnswer {
        BackendAnswer {
            backend,
            status,
            result: SmtResult {
                recheck: Some(backend.name().to_string()),
                ..SmtResult::default()
            },
            evidence,
            runs: Vec::new(),
        }
    }

    fn both(
        z3: SmtStatus,
        cvc5: SmtStatus,
        portfolio: bool,
        winner: Option<SmtBackend>,
    ) -> SmtAnswer {
        let answers = vec![
            answer_of(SmtBackend::Z3, z3, Evidence::Advisory),
            answer_of(SmtBackend::Cvc5, cvc5, Evidence::Checked),
        ];
        combine(answers, Vec::new(), portfolio, winner)
    }

    #[test]
    fn a_sat_unsat_disagreement_is_a_loud_backend_error() {
        let a = both(SmtStatus::Sat, SmtStatus::Unsat, false, None);
        assert_eq!(a.status, SmtStatus::BackendError);
        assert_eq!(a.evidence, Evidence::Advisory);
        let message = a.result.message.unwrap();
        assert!(
            message.contains("DISAGREEMENT")
                && message.contains("z3 says sat")
                && message.contains("cvc5 says unsat")
        );
        assert_eq!(
            a.result.backends,
            Some(Vec::new()),
            "per-backend answers are attached"
        );
    }

    #[test]
    fn agreement_prefers_the_rechecked_answer_and_unknown_does_not_veto() {
        let a = both(SmtStatus::Unsat, SmtStatus::Unsat, false, None);
        assert_eq!(
            (a.status, a.evidence, a.backend),
            (SmtStatus::Unsat, Evidence::Checked, SmtBackend::Cvc5)
        );
        let a = both(SmtStatus::Timeout, SmtStatus::Sat, false, None);
        assert_eq!((a.status, a.backend), (SmtStatus::Sat, SmtBackend::Cvc5));
        let a = both(SmtStatus::Timeout, SmtStatus::Unknown, false, None);
        assert_eq!(a.status, SmtStatus::Timeout);
    }

    #[test]
    fn portfolio_reports_the_winner_even_if_the_loser_was_cancelled() {
        let a = both(
            SmtStatus::Sat,
            SmtStatus::Cancelled,
            true,
            Some(SmtBackend::Z3),
        );
        assert_eq!((a.status, a.backend), (SmtStatus::Sat, SmtBackend::Z3));
        assert_eq!(a.result.recheck.as_deref(), Some("z3"));
    }

    #[test]
    fn policy_backs_the_solver_limit_with_a_grace() {
        let options = SmtOptions {
            timeout_ms: 1000,
            memory_mb: 512,
            seed: 4,
        };
        let p = solver_policy(SmtBackend::Z3, &[Bind::same("/usr/bin/z3")], &options);
        assert_eq!(p.limits.wall_s, 1.0 + SANDBOX_GRACE_S);
        assert_eq!(p.limits.memory_mb, 512);
        assert!(!p.network);
        assert_eq!(p.ro_binds, vec![Bind::same("/usr/bin/z3")]);
        assert!(SmtBackend::Cvc5.option_line(&options).contains(":seed 4"));
        assert!(SmtBackend::Z3
            .option_line(&options)
            .contains(":timeout 1000"));
        let c = request_command(SmtBackend::Cvc5, "(check-sat)");
        assert_eq!(c.program, PathBuf::from("/usr/bin/cvc5"));
        assert_eq!(c.stdin, b"(check-sat)");
    }
}
