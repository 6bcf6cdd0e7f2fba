//! The SymPy backend: `ComputerAlgebra.*` in a sandboxed Python worker with SymPy imported ahead.
//!
//! The tool-specific logic is pure and tested without any process:
//! 1. [`check`] — the first layer of input policy, in Rust: no non-ASCII character (Python folds
//!    identifiers by NFKC, so look-alikes would become other names), no quotes (strings), no
//!    leading underscore (dunders), no attribute access, no keyword that builds code (`lambda`,
//!    `import`, comprehensions' `for`, ...), no braces; option values checked the same way. The
//!    worker's AST walk (`python/capsci_sympy_worker.py`) is the second, authoritative layer: it
//!    builds SymPy objects from an allow-list and never calls `eval`;
//! 2. [`WorkerRequest::json_line`] + [`command`] — one JSON line to the worker, whose command line
//!    is fixed (`python3 -I -B -c <worker source>`), so a hot spare can be started ahead;
//! 3. [`roots`] + [`sandbox_policy`] — the paths the package closure starts from and the policy;
//! 4. [`parse_outcome`] — `Outcome` → (`EvalStatus`, `CasResult`).

use crate::gp::{limit_status, not_run_outcome};
use capsci_core::{CasResult, CasValue, EvalStatus, ExitReason, Limits, Location};
use capsci_sandbox::{
    Bind, CancelToken, Command, Outcome, Sandbox, SandboxError, SandboxPolicy, SparePool,
    SyscallFilter,
};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The worker's source, compiled into capsci: the command line carries it (`-c`), so the policy
/// hash and the record name exactly the code that ran.
pub const WORKER_SOURCE: &str = include_str!("../../../../python/capsci_sympy_worker.py");

/// The hash-locked requirements the venv is built from (`scripts/setup.sh`).
const REQUIREMENTS_LOCK: &str = include_str!("../../../../python/requirements.lock");

/// The SymPy version pinned in `python/requirements.lock`, for the backend identity (also when
/// no worker ran, e.g. a refused input).
pub fn locked_sympy_version() -> Option<&'static str> {
    REQUIREMENTS_LOCK.lines().find_map(|line| {
        line.trim().strip_prefix("sympy==").map(|rest| {
            rest.split_whitespace()
                .next()
                .unwrap_or(rest)
                .trim_end_matches('\\')
        })
    })
}

/// Debian's interpreter underneath the venv.
pub const PYTHON_EXECUTABLE: &str = "/usr/bin/python3.11";
/// Its standard library.
pub const PYTHON_STDLIB: &str = "/usr/lib/python3.11";
/// The default SymPy environment (`scripts/setup.sh`); `CAPSCI_PYTHON_ENV` overrides it.
pub const DEFAULT_PYTHON_ENV: &str = "/opt/capsci/venv";

/// Why an input was not run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rejection {
    /// The input policy refused it (status `refused`).
    Refused {
        /// What was refused and why.
        reason: String,
    },
    /// The call is malformed (status `invalid_input`).
    InvalidInput {
        /// What is wrong.
        message: String,
        /// Where, when known.
        location: Option<Location>,
    },
}

/// The operations of `ComputerAlgebra`.
pub const OPERATIONS: &[&str] = &[
    "simplify",
    "factor",
    "expand",
    "diff",
    "integrate",
    "solve",
    "limit",
    "series",
    "evalf",
    "det",
    "inverse",
    "rank",
    "nullspace",
    "rref",
    "eigenvals",
    "gcd",
    "div",
    "resultant",
    "groebner",
];

/// One `ComputerAlgebra` call, as the worker reads it (one JSON line).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkerRequest {
    /// The operation, one of [`OPERATIONS`].
    pub op: String,
    /// The expression; `[e1, e2]` is a system or a list (matrix rows, polynomial pairs).
    pub expr: String,
    /// The variables (`--var x,y`); empty means the expression's free symbols.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub var: Vec<String>,
    /// The point of `limit` and `series` (`--at`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<String>,
    /// The side of `limit`: `+`, `-` or `+-` (`--dir`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dir: Option<String>,
    /// Lower bound of a definite integral (`--from`).
    #[serde(default, rename = "from", skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// Upper bound of a definite integral (`--to`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    /// Derivative order for `diff`, SymPy's `n` for `series` (`--order`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order: Option<u32>,
    /// Significant digits for `evalf` (`--digits`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digits: Option<u32>,
}

impl WorkerRequest {
    /// A request for `op` on `expr` with no options.
    pub fn new(op: &str, expr: &str) -> Self {
        WorkerRequest {
            op: op.to_string(),
            expr: expr.to_string(),
            ..Default::default()
        }
    }

    /// The worker's request for a call as the front ends give it (core's `CasRequest`).
    pub fn from_call(call: &capsci_core::request::CasRequest) -> Self {
        WorkerRequest {
            op: call.op.as_str().to_string(),
            expr: call.expr.clone(),
            var: call.var.clone(),
            at: call.at.clone(),
            dir: call.dir.clone(),
            from: call.from.clone(),
            to: call.to.clone(),
            order: call.order,
            digits: call.digits,
        }
    }

    /// The JSON line the worker reads (with its newline).
    pub fn json_line(&self) -> Vec<u8> {
        let mut line = serde_json::to_vec(self).unwrap_or_default();
        line.push(b'\n');
        line
    }
}

/// Words that only appear in attempts to build or run code; refused as whole words.
const REFUSED_WORDS: &[&str] = &[
    "lambda",
    "import",
    "from",
    "for",
    "in",
    "if",
    "else",
    "async",
    "await",
    "yield",
    "def",
    "class",
    "with",
    "global",
    "nonlocal",
    "del",
    "exec",
    "eval",
    "compile",
    "open",
    "getattr",
    "setattr",
    "delattr",
    "globals",
    "locals",
    "vars",
    "breakpoint",
    "input",
    "help",
    "exit",
    "quit",
    "os",
    "sys",
    "subprocess",
    "builtins",
    "importlib",
    "memoryview",
    "sympify",
    "parse_expr",
    "not",
    "and",
    "or",
    "is",
    "None",
    "True",
    "False",
];

fn refused(reason: String) -> Rejection {
    Rejection::Refused { reason }
}

/// Checks one expression text (the expression or an option value).
fn check_text(what: &str, text: &str) -> Result<(), Rejection> {
    let (mut line, mut column) = (1u32, 1u32);
    let chars: Vec<char> = text.chars().collect();
    let at = |l: u32, c: u32| format!("{what}, line {l}, column {c}");
    for (i, &c) in chars.iter().enumerate() {
        if !c.is_ascii() {
            return Err(refused(format!(
                "{}: non-ASCII character {c:?} is not allowed (Python folds look-alike letters into other names)",
                at(line, column)
            )));
        }
        match c {
            '\'' | '"' => {
                return Err(refused(format!(
                    "{}: strings are not allowed",
                    at(line, column)
                )))
            }
            '{' | '}' => {
                return Err(refused(format!(
                    "{}: braces (dicts, sets) are not allowed",
                    at(line, column)
                )))
            }
            '\\' => {
                return Err(refused(format!(
                    "{}: backslashes are not allowed",
                    at(line, column)
                )))
            }
            ';' | '@' | '`' | '$' | '?' | '#' => {
                return Err(refused(format!(
                    "{}: {c:?} is not allowed",
                    at(line, column)
                )))
            }
            ':' => {
                return Err(refused(format!(
                    "{}: ':' (slices, walrus, lambdas) is not allowed",
                    at(line, column)
                )))
            }
            '.' => {
                let prev_digit = i > 0 && chars[i - 1].is_ascii_digit();
                let next_word = chars
                    .get(i + 1)
                    .is_some_and(|n| n.is_ascii_alphabetic() || *n == '_');
                let exponent = chars.get(i + 1).is_some_and(|n| *n == 'e' || *n == 'E');
                if next_word && !(prev_digit && exponent) {
                    return Err(refused(format!(
                        "{}: attribute access is not allowed",
                        at(line, column)
                    )));
                }
            }
            '[' => {
                let prev = chars[..i].iter().rev().find(|c| !c.is_ascii_whitespace());
                if prev.is_some_and(|p| p.is_ascii_alphanumeric() || matches!(p, '_' | ')' | ']')) {
                    return Err(refused(format!(
                        "{}: subscripts are not allowed",
                        at(line, column)
                    )));
                }
            }
            '_' if i == 0 || !(chars[i - 1].is_ascii_alphanumeric() || chars[i - 1] == '_') => {
                return Err(refused(format!(
                    "{}: names starting with '_' (dunders, private names) are not allowed",
                    at(line, column)
                )))
            }
            _ => {}
        }
        if c == '\n' {
            line += 1;
            column = 1;
        } else {
            column += 1;
        }
    }
    // Whole words.
    let mut word = String::new();
    for c in text.chars().chain(std::iter::once(' ')) {
        if c.is_ascii_alphanumeric() || c == '_' {
            word.push(c);
            continue;
        }
        if REFUSED_WORDS.contains(&word.as_str()) {
            return Err(refused(format!("{what}: `{word}` is not allowed")));
        }
        word.clear();
    }
    Ok(())
}

/// The first layer of the input policy: `Ok(())` when `request` may go to the worker.
pub fn check(request: &WorkerRequest) -> Result<(), Rejection> {
    if !OPERATIONS.contains(&request.op.as_str()) {
        return Err(Rejection::InvalidInput {
            message: format!(
                "unknown operation `{}` (one of: {})",
                request.op,
                OPERATIONS.join(", ")
            ),
            location: None,
        });
    }
    if request.expr.trim().is_empty() {
        return Err(Rejection::InvalidInput {
            message: "the expression is empty".into(),
            location: None,
        });
    }
    check_text("expr", &request.expr)?;
    for v in &request.var {
        let ok = v.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
            && v.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !ok {
            check_text("var", v)?;
            return Err(Rejection::InvalidInput {
                message: format!("var `{v}` is not a symbol name"),
                location: None,
            });
        }
        check_text("var", v)?;
    }
    for (what, value) in [
        ("at", &request.at),
        ("from", &request.from),
        ("to", &request.to),
    ] {
        if let Some(v) = value {
            check_text(what, v)?;
        }
    }
    if let Some(d) = &request.dir {
        if !matches!(d.as_str(), "+" | "-" | "+-") {
            return Err(Rejection::InvalidInput {
                message: format!("dir must be +, - or +- (got `{d}`)"),
                location: None,
            });
        }
    }
    if request.from.is_some() != request.to.is_some() {
        return Err(Rejection::InvalidInput {
            message: "a definite integral needs both --from and --to".into(),
            location: None,
        });
    }
    Ok(())
}

/// The SymPy environment in use: `CAPSCI_PYTHON_ENV`, else [`DEFAULT_PYTHON_ENV`].
pub fn python_env() -> PathBuf {
    std::env::var_os("CAPSCI_PYTHON_ENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_PYTHON_ENV))
}

/// The paths the SymPy package closure starts from (for capsci-store's `ClosureSpec`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClosureRoots {
    /// ELF files whose shared libraries the closure must resolve: the interpreter (through the
    /// `python3` link the venv points at) and the standard library's extension modules.
    pub executables: Vec<PathBuf>,
    /// Trees bound whole: the standard library and the venv (SymPy, mpmath).
    pub trees: Vec<PathBuf>,
}

/// The SymPy closure's roots for the environment at `env`. The extension modules of
/// `lib-dynload` are listed so that their libraries (libmpdec for `decimal`, libz, ...) are
/// resolved too; a missing directory just lists fewer.
pub fn roots(env: &Path) -> ClosureRoots {
    let mut executables = vec![
        PathBuf::from("/usr/bin/python3"),
        PathBuf::from(PYTHON_EXECUTABLE),
    ];
    let dynload = Path::new(PYTHON_STDLIB).join("lib-dynload");
    if let Ok(dir) = std::fs::read_dir(&dynload) {
        let mut modules: Vec<PathBuf> = dir
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "so"))
            .collect();
        modules.sort();
        executables.extend(modules);
    }
    ClosureRoots {
        executables,
        trees: vec![PathBuf::from(PYTHON_STDLIB), env.to_path_buf()],
    }
}

/// How the worker is started: fixed, so a hot spare started ahead serves any call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerConfig {
    /// The venv's interpreter (through which Python finds the venv's `site-packages`).
    pub python: PathBuf,
}

impl WorkerConfig {
    /// The worker of the environment at `env`.
    pub fn new(env: &Path) -> Self {
        WorkerConfig {
            python: env.join("bin/python3"),
        }
    }

    /// `-I` (isolated: no environment variables, no user site, no script directory on the
    /// path), `-B` (writes no bytecode), `-c` with the worker's source.
    pub fn args(&self) -> Vec<String> {
        vec![
            "-I".into(),
            "-B".into(),
            "-c".into(),
            WORKER_SOURCE.to_string(),
        ]
    }
}

/// The sandbox policy for the worker: read-only binds of exactly `binds`, a UTF-8 C locale, no
/// network, the default syscall filter.
pub fn sandbox_policy(binds: &[PathBuf], limits: &Limits) -> SandboxPolicy {
    let mut env = BTreeMap::new();
    env.insert("LC_ALL".to_string(), "C.UTF-8".to_string());
    SandboxPolicy {
        backend: "sympy".to_string(),
        ro_binds: binds.iter().cloned().map(Bind::same).collect(),
        env,
        limits: limits.clone(),
        network: false,
        syscall_filter: SyscallFilter::SolverDefault,
    }
}

/// The sandbox command for `request`.
pub fn command(config: &WorkerConfig, request: &WorkerRequest) -> Command {
    Command {
        program: config.python.clone(),
        args: config.args(),
        stdin: request.json_line(),
        files: Vec::new(),
        collect: Vec::new(),
    }
}

/// The status and result for a request the policy rejected (nothing ran).
pub fn rejection_result(rejection: Rejection) -> (EvalStatus, CasResult) {
    match rejection {
        Rejection::Refused { reason } => (
            EvalStatus::Refused,
            CasResult {
                message: Some(reason),
                ..Default::default()
            },
        ),
        Rejection::InvalidInput { message, location } => (
            EvalStatus::InvalidInput,
            CasResult {
                message: Some(message),
                location,
                ..Default::default()
            },
        ),
    }
}

/// The worker's answer line.
#[derive(Debug, Deserialize)]
struct WorkerAnswer {
    status: String,
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    latex: Option<String>,
    #[serde(default)]
    srepr: Option<String>,
    #[serde(default)]
    solutions: Option<Vec<BTreeMap<String, CasValue>>>,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    location: Option<WorkerLocation>,
    #[serde(default)]
    sympy_version: Option<String>,
}

#[derive(Debug, Deserialize)]
struct WorkerLocation {
    line: Option<u32>,
    column: Option<u32>,
}

/// What a worker call produced: the status, the result, and the SymPy version the worker
/// reported (for the backend identity).
#[derive(Debug, Clone, PartialEq)]
pub struct CasAnswer {
    /// The typed status.
    pub status: EvalStatus,
    /// The `result` payload.
    pub result: CasResult,
    /// `sympy.__version__` as the worker reported it.
    pub sympy_version: Option<String>,
}

/// Turns the worker's outcome into a status and result. Limits first (wall/CPU → `timeout`;
/// memory, processes, output, file size → `resource_exceeded`; the sandbox failing →
/// `backend_error`), then the worker's one JSON line (its `status` word), and `backend_error`
/// when there is no such line (the worker crashed: its stderr tail is the message).
pub fn parse_outcome(outcome: &Outcome) -> CasAnswer {
    let stdout = String::from_utf8_lossy(&outcome.stdout);
    let stderr = String::from_utf8_lossy(&outcome.stderr);
    if let Some((status, message)) = limit_status(outcome.exit) {
        // A MemoryError the worker caught and reported is still the same limit.
        return CasAnswer {
            status,
            result: CasResult {
                message: Some(message),
                ..Default::default()
            },
            sympy_version: None,
        };
    }
    let line = stdout
        .lines()
        .rev()
        .find(|l| l.trim_start().starts_with('{'));
    let parsed = line.and_then(|l| serde_json::from_str::<WorkerAnswer>(l).ok());
    let Some(answer) = parsed else {
        let tail: String = stderr
            .lines()
            .rev()
            .take(5)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect::<Vec<_>>()
            .join("\n");
        let memory = stderr.contains("MemoryError");
        return CasAnswer {
            status: if memory {
                EvalStatus::ResourceExceeded
            } else {
                EvalStatus::BackendError
            },
            result: CasResult {
                message: Some(format!(
                    "the SymPy worker ended ({}) without an answer: {tail}",
                    outcome.exit
                )),
                ..Default::default()
            },
            sympy_version: None,
        };
    };
    let status = match answer.status.as_str() {
        "ok" => EvalStatus::Ok,
        "error" => EvalStatus::Error,
        "refused" => EvalStatus::Refused,
        "invalid_input" => EvalStatus::InvalidInput,
        "resource_exceeded" => EvalStatus::ResourceExceeded,
        "timeout" => EvalStatus::Timeout,
        _ => EvalStatus::BackendError,
    };
    let location = answer.location.and_then(|l| {
        l.line.map(|line| Location {
            line,
            column: l.column.filter(|c| *c > 0),
        })
    });
    CasAnswer {
        status,
        result: CasResult {
            text: answer.text,
            latex: answer.latex,
            srepr: answer.srepr,
            solutions: answer.solutions,
            message: answer.message,
            location,
        },
        sympy_version: answer.sympy_version,
    }
}

/// Everything one `ComputerAlgebra` call produced, for the envelope and the record.
#[derive(Debug, Clone)]
pub struct CasEval {
    /// The typed status.
    pub status: EvalStatus,
    /// The `result` payload.
    pub result: CasResult,
    /// `sympy.__version__` as the worker reported it (for the backend identity).
    pub sympy_version: Option<String>,
    /// The exact bytes the worker read (the `input` artifact); empty when nothing ran.
    pub stdin: Vec<u8>,
    /// How the process ended, its output and usage (`not_run` when the policy answered).
    pub outcome: Outcome,
}

fn finish(stdin: Vec<u8>, run: Result<Outcome, SandboxError>) -> CasEval {
    match run {
        Ok(outcome) => {
            let answer = parse_outcome(&outcome);
            CasEval {
                status: answer.status,
                result: answer.result,
                sympy_version: answer.sympy_version,
                stdin,
                outcome,
            }
        }
        Err(e) => CasEval {
            status: EvalStatus::BackendError,
            result: CasResult {
                message: Some(format!("the sandbox could not run the SymPy worker: {e}")),
                ..Default::default()
            },
            sympy_version: None,
            stdin,
            outcome: not_run_outcome(ExitReason::SandboxError, &e.to_string()),
        },
    }
}

fn refuse_early(request: &WorkerRequest) -> Option<CasEval> {
    check(request).err().map(|rejection| {
        let (status, result) = rejection_result(rejection);
        CasEval {
            status,
            result,
            sympy_version: None,
            stdin: Vec::new(),
            outcome: not_run_outcome(ExitReason::NotRun, ""),
        }
    })
}

/// A `ComputerAlgebra` call on a fresh sandboxed worker: the input policy, the run, the parse.
/// `policy` comes from [`sandbox_policy`], `config` from [`WorkerConfig::new`].
pub fn eval(
    sandbox: &dyn Sandbox,
    policy: &SandboxPolicy,
    config: &WorkerConfig,
    request: &WorkerRequest,
    cancel: &CancelToken,
) -> CasEval {
    if let Some(answer) = refuse_early(request) {
        return answer;
    }
    eval_unfiltered(sandbox, policy, config, request, cancel)
}

/// A `ComputerAlgebra` call on a hot spare of `pool` (started from [`spare_template`] under
/// [`sandbox_policy`]), SymPy already imported.
pub fn eval_with_spare(pool: &SparePool, request: &WorkerRequest, cancel: &CancelToken) -> CasEval {
    if let Some(answer) = refuse_early(request) {
        return answer;
    }
    let stdin = request.json_line();
    let run = pool.run(stdin.clone(), cancel);
    finish(stdin, run)
}

/// Sends `request` to the worker WITHOUT the Rust-side policy (the worker's own AST policy
/// still applies). Only for testing each layer alone; the service never calls it.
pub fn eval_unfiltered(
    sandbox: &dyn Sandbox,
    policy: &SandboxPolicy,
    config: &WorkerConfig,
    request: &WorkerRequest,
    cancel: &CancelToken,
) -> CasEval {
    let command = command(config, request);
    let stdin = command.stdin.clone();
    finish(stdin, sandbox.run(policy, command, cancel))
}

/// The command a hot spare of the worker is started with (its stdin comes with the call).
pub fn spare_template(config: &WorkerConfig) -> Command {
    Command {
        program: config.python.clone(),
        args: config.args(),
        ..Command::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use capsci_core::{ExitReason, MemoryLimitBy, SandboxInfo, Usage};

    fn outcome(exit: ExitReason, stdout: &str, stderr: &str) -> Outcome {
        Outcome {
            exit,
            stdout: stdout.as_bytes().to_vec(),
            stderr: stderr.as_bytes().to_vec(),
            usage: Usage::default(),
            collected: Vec::new(),
            sandbox: SandboxInfo::default(),
            memory_limit_by: MemoryLimitBy::CgroupV1,
        }
    }

    fn is_refused(expr: &str) -> bool {
        matches!(
            check(&WorkerRequest::new("simplify", expr)),
            Err(Rejection::Refused { .. })
        )
    }

    #[test]
    fn ordinary_mathematics_passes() {
        for expr in [
            "sin(x)*x",
            "x^2 - 2 = 0",
            "[x + y = 2, x - y == 0]",
            "Matrix([[1, 2], [3, 4]])",
            "1.5e-3*x + 2.5",
            "Eq(f(x), x**2)",
            "integrate_me + x_1",
            "3 // 2 + 7 % 3",
        ] {
            assert_eq!(
                check(&WorkerRequest::new("simplify", expr)),
                Ok(()),
                "{expr}"
            );
        }
    }

    #[test]
    fn code_building_input_is_refused() {
        for expr in [
            "__import__('os').system('id')",
            "x.__class__",
            "x.func",
            "(lambda: 1)()",
            "[i for i in x]",
            "(y := 2)",
            "f'{x}'",
            "b'abc'",
            "\"abc\"",
            "{1: 2}",
            "x[0]",
            "_x + 1",
            "exec(x)",
            "eval(x)",
            "open(x)",
            "getattr(x, y)",
            // Unicode look-alikes that NFKC folds into ASCII names.
            "\u{ff45}\u{ff56}\u{ff41}\u{ff4c}(x)",
            "\u{1d41e}\u{1d42f}\u{1d41a}\u{1d425}(x)",
            "_\u{ff3f}import\u{ff3f}_(x)",
            "x\u{2024}y",
            "\u{3c0}",
            "x \\\n + 1",
        ] {
            assert!(
                is_refused(expr),
                "not refused: {expr:?} -> {:?}",
                check(&WorkerRequest::new("simplify", expr))
            );
        }
    }

    #[test]
    fn options_are_checked_like_the_expression() {
        let mut r = WorkerRequest::new("limit", "sin(x)/x");
        r.at = Some("__import__".into());
        assert!(matches!(check(&r), Err(Rejection::Refused { .. })));
        let mut r = WorkerRequest::new("diff", "x");
        r.var = vec!["x.y".into()];
        assert!(matches!(check(&r), Err(Rejection::Refused { .. })));
        let mut r = WorkerRequest::new("diff", "x");
        r.var = vec!["2x".into()];
        assert!(matches!(check(&r), Err(Rejection::InvalidInput { .. })));
        let mut r = WorkerRequest::new("limit", "x");
        r.dir = Some("up".into());
        assert!(matches!(check(&r), Err(Rejection::InvalidInput { .. })));
        let mut r = WorkerRequest::new("integrate", "x");
        r.from = Some("0".into());
        assert!(matches!(check(&r), Err(Rejection::InvalidInput { .. })));
        assert!(matches!(
            check(&WorkerRequest::new("shell", "x")),
            Err(Rejection::InvalidInput { .. })
        ));
    }

    #[test]
    fn request_is_one_json_line_with_the_cli_words() {
        let mut r = WorkerRequest::new("integrate", "x");
        r.from = Some("-oo".into());
        r.to = Some("0".into());
        let line = String::from_utf8(r.json_line()).expect("test value");
        assert!(line.ends_with('\n') && line.matches('\n').count() == 1);
        let v: serde_json::Value = serde_json::from_str(&line).expect("test value");
        assert_eq!(v["from"], "-oo");
        assert_eq!(v["op"], "integrate");
        assert!(v.get("var").is_none());
    }

    #[test]
    fn the_locked_version_is_read_from_the_lock() {
        assert_eq!(locked_sympy_version(), Some("1.13.3"));
    }

    #[test]
    fn requests_from_the_front_ends_keep_every_option() {
        let call: capsci_core::request::CasRequest = serde_json::from_value(serde_json::json!({
            "op": "series", "expr": "exp(x)", "var": ["x"], "at": "1", "order": 3
        }))
        .expect("core request");
        let r = WorkerRequest::from_call(&call);
        assert_eq!(r.op, "series");
        assert_eq!(r.at.as_deref(), Some("1"));
        assert_eq!(r.order, Some(3));
        assert_eq!(r.var, ["x"]);
    }

    #[test]
    fn worker_command_is_isolated_and_fixed() {
        let c = WorkerConfig::new(Path::new("/opt/capsci/venv"));
        assert_eq!(c.python, PathBuf::from("/opt/capsci/venv/bin/python3"));
        let args = c.args();
        assert_eq!(&args[..3], ["-I", "-B", "-c"]);
        assert!(args[3].contains("def main()"));
    }

    #[test]
    fn worker_answers_become_results() {
        let line = r#"{"sympy_version": "1.13.3", "status": "ok", "text": "x", "latex": "x", "srepr": "Symbol('x')", "solutions": [{"x": {"text": "1", "latex": "1", "srepr": "Integer(1)"}}]}"#;
        let a = parse_outcome(&outcome(ExitReason::Exited(0), line, ""));
        assert_eq!(a.status, EvalStatus::Ok);
        assert_eq!(a.result.srepr.as_deref(), Some("Symbol('x')"));
        assert_eq!(
            a.result.solutions.expect("test value")[0]["x"].srepr,
            "Integer(1)"
        );
        assert_eq!(a.sympy_version.as_deref(), Some("1.13.3"));
        let line = r#"{"status": "invalid_input", "message": "expr: invalid syntax", "location": {"line": 1, "column": 3}}"#;
        let a = parse_outcome(&outcome(ExitReason::Exited(0), line, ""));
        assert_eq!(a.status, EvalStatus::InvalidInput);
        assert_eq!(
            a.result.location,
            Some(Location {
                line: 1,
                column: Some(3)
            })
        );
    }

    #[test]
    fn crashes_and_limits_are_typed() {
        let a = parse_outcome(&outcome(
            ExitReason::Exited(1),
            "",
            "Traceback\nImportError: x",
        ));
        assert_eq!(a.status, EvalStatus::BackendError);
        assert!(a
            .result
            .message
            .expect("test value")
            .contains("ImportError"));
        assert_eq!(
            parse_outcome(&outcome(ExitReason::Timeout, "", "")).status,
            EvalStatus::Timeout
        );
        assert_eq!(
            parse_outcome(&outcome(ExitReason::CpuLimit, "", "")).status,
            EvalStatus::Timeout
        );
        assert_eq!(
            parse_outcome(&outcome(ExitReason::MemoryLimit, "", "")).status,
            EvalStatus::ResourceExceeded
        );
        assert_eq!(
            parse_outcome(&outcome(ExitReason::SandboxError, "", "")).status,
            EvalStatus::BackendError
        );
    }
}
