//! The gp backend: `NumberTheory.eval` on Debian's PARI/GP, run in the sandbox.
//!
//! The tool-specific logic is pure and tested without any process:
//! 1. [`check`] — the input policy ([`policy`]): `Ok`, or a [`Rejection`] (`refused` /
//!    `invalid_input`) before anything runs;
//! 2. [`GpInput::new`] + [`command`] — the command line (`gp -q -f -D breakloop=0 -D
//!    parisize=... -D parisizemax=...`, fixed per limits, so a hot spare can be started ahead) and
//!    the stdin: the user's code followed by a trailer that prints a per-call marker and a JSON
//!    serialisation of `%` computed by GP code (recursive over PARI's types);
//! 3. [`roots`] + [`sandbox_policy`] — the paths the package closure starts from, and the
//!    `SandboxPolicy` over the closure's paths;
//! 4. [`parse_outcome`] — `Outcome` → (`EvalStatus`, `NumberTheoryResult`).
//!
//! The entry points the service calls are [`eval`] (any [`Sandbox`]) and [`eval_with_spare`]
//! (a hot spare, when the executor's pool is used).

pub mod policy;

use capsci_core::{EvalStatus, ExitReason, Limits, Location, NumberTheoryResult};
use capsci_sandbox::{
    Bind, CancelToken, Command, Outcome, Sandbox, SandboxError, SandboxPolicy, SparePool,
    SyscallFilter,
};
use std::collections::hash_map::RandomState;
use std::collections::BTreeMap;
use std::hash::{BuildHasher, Hasher};
use std::path::PathBuf;

pub use policy::{check, Rejection};

/// The gp executable (Debian's pari-gp).
pub const GP_PROGRAM: &str = "/usr/bin/gp";
/// PARI's data directory (elldata, galdata, seadata), read by `ellidentify`, `ellap`, `polgalois`.
pub const GP_DATA_DIR: &str = "/usr/share/pari";

/// The paths the gp package closure starts from (for capsci-store's `ClosureSpec`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClosureRoots {
    /// ELF executables whose shared libraries the closure must resolve: `/usr/bin/gp`.
    pub executables: Vec<PathBuf>,
    /// Trees bound whole: PARI's data directory.
    pub trees: Vec<PathBuf>,
}

/// The gp closure's roots: the executable and PARI's data. The closure builder adds the shared
/// libraries and the loader.
pub fn roots() -> ClosureRoots {
    ClosureRoots {
        executables: vec![PathBuf::from(GP_PROGRAM)],
        trees: vec![PathBuf::from(GP_DATA_DIR)],
    }
}

/// How gp is started: fixed per limits, so that a hot spare started ahead serves any input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GpConfig {
    /// The gp executable inside the sandbox.
    pub program: PathBuf,
    /// Initial PARI stack, bytes.
    pub parisize: u64,
    /// Largest PARI stack, bytes: past it PARI stops with "the PARI stack overflows"
    /// (`resource_exceeded`) before the memory limit kills the process.
    pub parisizemax: u64,
}

impl GpConfig {
    /// The configuration for `limits`: the stack may grow to half the memory limit.
    pub fn for_limits(limits: &Limits) -> Self {
        let max = (limits.memory_mb.max(32) / 2) * 1024 * 1024;
        GpConfig {
            program: PathBuf::from(GP_PROGRAM),
            parisize: (8 << 20).min(max),
            parisizemax: max,
        }
    }

    /// The command-line arguments: quiet, no gprc, no break loop, bounded stack.
    pub fn args(&self) -> Vec<String> {
        vec![
            "-q".into(),
            "-f".into(),
            "-D".into(),
            "breakloop=0".into(),
            "-D".into(),
            format!("parisize={}", self.parisize),
            "-D".into(),
            format!("parisizemax={}", self.parisizemax),
        ]
    }
}

/// The sandbox policy for gp: read-only binds of exactly `binds` (the closure's paths), an
/// environment of `LC_ALL=C` only, no network, the default syscall filter.
pub fn sandbox_policy(binds: &[PathBuf], limits: &Limits) -> SandboxPolicy {
    let mut env = BTreeMap::new();
    env.insert("LC_ALL".to_string(), "C".to_string());
    SandboxPolicy {
        backend: "gp".to_string(),
        ro_binds: binds.iter().cloned().map(Bind::same).collect(),
        env,
        limits: limits.clone(),
        network: false,
        syscall_filter: SyscallFilter::SolverDefault,
    }
}

/// The GP code run after the user's input: it serialises `%` (the last result) to JSON, by
/// type, and prints it between markers that carry the call's nonce. Every helper is local to it
/// (`capsci_*` names, defined after the user's code, so the input cannot pre-define them).
const TRAILER: &str = r##"capsci_h=1;capsci_v=iferr(%,capsci_err,capsci_h=0;0);
capsci_e(s)=my(v=Vecsmall(s),h=Vecsmall("0123456789abcdef"),o=List());for(i=1,#v,my(c=v[i]);if(c==34||c==92,listput(o,92);listput(o,c),if(c<32,listput(o,92);listput(o,117);listput(o,48);listput(o,48);listput(o,h[c\16+1]);listput(o,h[c%16+1]),listput(o,c))));if(#o,Strchr(Vec(o)),"");
capsci_q(s)=Str("\"",capsci_e(Str(s)),"\"");
capsci_l(w)=my(o=List());for(i=1,#w,listput(o,capsci_j(w[i])));Str("[",strjoin(Vec(o),","),"]");
capsci_j(v)=my(t=type(v));if(t=="t_INT",capsci_q(v),t=="t_FRAC"||t=="t_RFRAC",Str("{\"num\":",capsci_j(numerator(v)),",\"den\":",capsci_j(denominator(v)),"}"),t=="t_REAL",Str("{\"real\":",capsci_q(v),",\"digits\":",precision(v),",\"bits\":",bitprecision(v),"}"),t=="t_COMPLEX",Str("{\"re\":",capsci_j(real(v)),",\"im\":",capsci_j(imag(v)),"}"),t=="t_INTMOD",Str("{\"intmod\":",capsci_j(lift(v)),",\"modulus\":",capsci_j(v.mod),"}"),t=="t_POLMOD",Str("{\"polmod\":",capsci_j(lift(v)),",\"modulus\":",capsci_j(v.mod),"}"),t=="t_POL",Str("{\"variable\":",capsci_q(variable(v)),",\"coefficients\":",capsci_l(Vecrev(v)),"}"),t=="t_SER",Str("{\"variable\":",capsci_q(variable(v)),",\"valuation\":",valuation(v,variable(v)),",\"coefficients\":",capsci_l(Vec(v)),"}"),t=="t_VEC"||t=="t_COL"||t=="t_VECSMALL"||t=="t_LIST",capsci_l(Vec(v)),t=="t_MAT",capsci_l(vector(matsize(v)[1],i,v[i,])),t=="t_STR",Str("{\"string\":",capsci_q(v),"}"),Str("{\"unsupported\":",capsci_q(t),",\"text\":",capsci_q(v),"}"));
print1("\n");print("@@capsci-","#NONCE#","@@",if(capsci_h,type(capsci_v),"none"),"@@",if(capsci_h,capsci_j(capsci_v),"null"),"@@end-","#NONCE#");
"##;

/// A fresh random nonce (128 bits, hex): the marker the trailer prints carries it, so output
/// the user's code prints cannot pass for the result.
fn nonce() -> String {
    let mut out = String::new();
    for salt in 0..2u64 {
        let mut h = RandomState::new().build_hasher();
        h.write_u64(salt);
        if let Ok(t) = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
            h.write_u128(t.as_nanos());
        }
        out.push_str(&format!("{:016x}", h.finish()));
    }
    out
}

/// One gp call: the user's code, the stdin sent to gp, and the nonce of its result marker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GpInput {
    /// The user's code, as given.
    pub code: String,
    /// The call's nonce.
    pub nonce: String,
    /// What gp reads: the code, two newlines, the trailer.
    pub stdin: Vec<u8>,
}

impl GpInput {
    /// Builds the stdin for `code` with a fresh nonce. Does not apply the input policy: call
    /// [`check`] first (the sandbox tests call this directly to test the sandbox alone).
    pub fn new(code: &str) -> Self {
        Self::with_nonce(code, &nonce())
    }

    /// Builds the stdin for `code` with the given nonce (hex digits).
    pub fn with_nonce(code: &str, nonce: &str) -> Self {
        let mut stdin = String::with_capacity(code.len() + TRAILER.len() + 8);
        stdin.push_str(code);
        // Two newlines: a trailing continuation backslash joins an empty line, never the trailer.
        stdin.push_str("\n\n");
        stdin.push_str(&TRAILER.replace("#NONCE#", nonce));
        GpInput {
            code: code.to_string(),
            nonce: nonce.to_string(),
            stdin: stdin.into_bytes(),
        }
    }
}

/// The sandbox command for `request` under `config`.
pub fn command(config: &GpConfig, request: &GpInput) -> Command {
    Command {
        program: config.program.clone(),
        args: config.args(),
        stdin: request.stdin.clone(),
        files: Vec::new(),
        collect: Vec::new(),
    }
}

/// The status and result for an input the policy rejected (nothing ran).
pub fn rejection_result(rejection: Rejection) -> (EvalStatus, NumberTheoryResult) {
    match rejection {
        Rejection::Refused { reason } => (
            EvalStatus::Refused,
            NumberTheoryResult {
                message: Some(reason),
                ..Default::default()
            },
        ),
        Rejection::InvalidInput { message, location } => (
            EvalStatus::InvalidInput,
            NumberTheoryResult {
                message: Some(message),
                location,
                ..Default::default()
            },
        ),
    }
}

/// The first error gp printed on stderr, as gp printed it (without its two-space indent).
fn first_error_block(stderr: &str) -> Vec<String> {
    let mut block: Vec<String> = Vec::new();
    for line in stderr.lines() {
        let t = line.trim_start();
        if !t.starts_with("***") {
            if block.is_empty() {
                continue;
            }
            break;
        }
        let body = &t[3..];
        if block.is_empty() && body.trim_start().starts_with("Warning") {
            continue;
        }
        let terminal = body.starts_with(' ') && !body.starts_with("  ");
        if let Some(prev) = block.last() {
            let prev_is_caret = prev
                .trim_start()
                .trim_start_matches("***")
                .trim()
                .chars()
                .all(|c| c == '^' || c == '-');
            if !terminal && prev_is_caret && !body.trim_start().starts_with("in function") {
                break;
            }
        }
        block.push(line.strip_prefix("  ").unwrap_or(line).to_string());
        if terminal {
            break;
        }
    }
    block
}

/// Places gp's quoted context in the source. gp prints `<message>: <context>` with a caret
/// line below, or, when the message is long, the context alone on the next line.
fn locate(code: &str, block: &[String]) -> Option<Location> {
    let is_caret = |l: &String| {
        let body = l.trim_start().trim_start_matches("***").trim();
        !body.is_empty() && body.chars().all(|c| c == '^' || c == '-')
    };
    let caret_at = block.iter().position(is_caret)?;
    let context_line = block.get(caret_at.checked_sub(1)?)?;
    let caret = block[caret_at].find('^')?;
    let start = if caret_at == 1 {
        // The context starts after the last ": " that lies before the caret.
        context_line
            .match_indices(": ")
            .map(|(i, _)| i + 2)
            .filter(|&i| i <= caret)
            .last()?
    } else {
        context_line.find("***")? + 6
    };
    let first = context_line;
    let mut context = first.get(start..)?.to_string();
    let mut offset = caret.saturating_sub(start);
    if let Some(rest) = context.strip_prefix("...") {
        context = rest.to_string();
        offset = offset.saturating_sub(3);
    }
    if context.is_empty() {
        return None;
    }
    for statement in policy::filtered_statements(code) {
        let found = statement.text.find(&context).or_else(|| {
            let head: String = context.chars().take(16).collect();
            statement.text.find(&head)
        });
        if let Some(at) = found {
            let chars_before = statement.text[..at].chars().count();
            let index = (chars_before + offset).min(statement.positions.len().saturating_sub(1));
            let (line, column) = *statement.positions.get(index)?;
            return Some(Location {
                line,
                column: Some(column),
            });
        }
    }
    None
}

/// What gp's result marker line carries.
fn parse_marker(stdout: &str, nonce: &str) -> Option<(usize, String, Option<serde_json::Value>)> {
    let marker = format!("@@capsci-{nonce}@@");
    let at = stdout.find(&marker)?;
    let rest = &stdout[at + marker.len()..];
    let end = rest.rfind(&format!("@@end-{nonce}"))?;
    let (value_type, json) = rest[..end].split_once("@@")?;
    let structured = serde_json::from_str::<serde_json::Value>(json)
        .ok()
        .filter(|v| !v.is_null());
    Some((at, value_type.to_string(), structured))
}

/// Maps how the process ended to a status, for the ends that a limit or the sandbox caused.
pub(crate) fn limit_status(exit: ExitReason) -> Option<(EvalStatus, String)> {
    let word = exit.to_string();
    match exit {
        ExitReason::Timeout | ExitReason::CpuLimit => Some((
            EvalStatus::Timeout,
            format!("stopped by the time limit ({word})"),
        )),
        ExitReason::MemoryLimit
        | ExitReason::PidsLimit
        | ExitReason::OutputLimit
        | ExitReason::FileSizeLimit => Some((
            EvalStatus::ResourceExceeded,
            format!("stopped by a resource limit ({word})"),
        )),
        ExitReason::Cancelled => Some((EvalStatus::Cancelled, "cancelled".to_string())),
        ExitReason::SandboxError | ExitReason::NotRun => Some((
            EvalStatus::BackendError,
            "the sandbox could not run the backend".to_string(),
        )),
        ExitReason::Exited(_) | ExitReason::Signal(_) => None,
    }
}

/// Turns gp's outcome into the status and result of `NumberTheory.eval`.
///
/// Limits first (wall/CPU → `timeout`; memory, processes, output, file size → `resource_exceeded`;
/// a sandbox failure → `backend_error`), then gp's first error on stderr (`the PARI stack
/// overflows` → `resource_exceeded`; an error with `at top-level:` context → `error`; a
/// compile-time error such as `syntax error` → `invalid_input`, located in the source), then the
/// result marker (`ok` with `value`, `type`, `structured`; absent → `backend_error`).
pub fn parse_outcome(request: &GpInput, outcome: &Outcome) -> (EvalStatus, NumberTheoryResult) {
    let stdout = String::from_utf8_lossy(&outcome.stdout);
    let stderr = String::from_utf8_lossy(&outcome.stderr);
    let block = first_error_block(&stderr);
    let gp_message = (!block.is_empty()).then(|| block.join("\n"));
    if let Some((status, message)) = limit_status(outcome.exit) {
        let message = match &gp_message {
            Some(m) => format!("{message}\n{m}"),
            None => message,
        };
        return (
            status,
            NumberTheoryResult {
                message: Some(message),
                ..Default::default()
            },
        );
    }
    if let Some(message) = gp_message {
        let all = block.join(" ");
        let runtime = block.first().is_some_and(|l| l.contains("at top-level:"));
        let status =
            if all.contains("the PARI stack overflows") || all.contains("not enough memory") {
                EvalStatus::ResourceExceeded
            } else if runtime {
                EvalStatus::Error
            } else {
                EvalStatus::InvalidInput
            };
        let location = locate(&request.code, &block);
        return (
            status,
            NumberTheoryResult {
                message: Some(message),
                location,
                ..Default::default()
            },
        );
    }
    match parse_marker(&stdout, &request.nonce) {
        Some((at, value_type, structured)) => {
            let printed = stdout[..at].trim_end().trim_start_matches(['\n', '\r']);
            let has_value = value_type != "none";
            (
                EvalStatus::Ok,
                NumberTheoryResult {
                    value: (!printed.is_empty()).then(|| printed.to_string()),
                    value_type: has_value.then_some(value_type),
                    structured: if has_value { structured } else { None },
                    message: None,
                    location: None,
                },
            )
        }
        None => (
            EvalStatus::BackendError,
            NumberTheoryResult {
                message: Some(format!(
                    "gp ended ({}) without printing its result",
                    outcome.exit
                )),
                ..Default::default()
            },
        ),
    }
}

/// Stands in for a call that never ran (`exit` = `reason`: `not_run` when the input policy
/// answered, `sandbox_error` when the sandbox failed before the tool started).
pub fn not_run_outcome(reason: ExitReason, message: &str) -> Outcome {
    Outcome {
        exit: reason,
        stdout: Vec::new(),
        stderr: message.as_bytes().to_vec(),
        usage: capsci_core::Usage::default(),
        collected: Vec::new(),
        sandbox: capsci_core::SandboxInfo {
            kind: "none".to_string(),
            policy: String::new(),
            boundary: String::new(),
            enforcement: BTreeMap::new(),
        },
        memory_limit_by: capsci_core::MemoryLimitBy::None,
    }
}

/// Everything one `NumberTheory.eval` call produced, for the envelope and the record.
#[derive(Debug, Clone)]
pub struct GpEval {
    /// The typed status.
    pub status: EvalStatus,
    /// The `result` payload.
    pub result: NumberTheoryResult,
    /// The exact bytes gp read (the `input` artifact); empty when nothing ran.
    pub stdin: Vec<u8>,
    /// How the process ended, its output and usage (`not_run` when the policy answered).
    pub outcome: Outcome,
}

fn finish(input: &GpInput, run: Result<Outcome, SandboxError>) -> GpEval {
    match run {
        Ok(outcome) => {
            let (status, result) = parse_outcome(input, &outcome);
            GpEval {
                status,
                result,
                stdin: input.stdin.clone(),
                outcome,
            }
        }
        Err(e) => GpEval {
            status: EvalStatus::BackendError,
            result: NumberTheoryResult {
                message: Some(format!("the sandbox could not run gp: {e}")),
                ..Default::default()
            },
            stdin: input.stdin.clone(),
            outcome: not_run_outcome(ExitReason::SandboxError, &e.to_string()),
        },
    }
}

fn refuse_early(code: &str) -> Option<GpEval> {
    check(code).err().map(|rejection| {
        let (status, result) = rejection_result(rejection);
        GpEval {
            status,
            result,
            stdin: Vec::new(),
            outcome: not_run_outcome(ExitReason::NotRun, ""),
        }
    })
}

/// `NumberTheory.eval` on a fresh sandboxed gp: the input policy, then the run, then the parse.
/// `policy` comes from [`sandbox_policy`] and `config` from [`GpConfig::for_limits`] with the
/// same limits.
pub fn eval(
    sandbox: &dyn Sandbox,
    policy: &SandboxPolicy,
    config: &GpConfig,
    code: &str,
    cancel: &CancelToken,
) -> GpEval {
    if let Some(answer) = refuse_early(code) {
        return answer;
    }
    eval_unfiltered(sandbox, policy, config, code, cancel)
}

/// `NumberTheory.eval` on a hot spare of `pool` (started from [`spare_template`] under
/// [`sandbox_policy`]): the input policy, then the run, then the parse.
pub fn eval_with_spare(pool: &SparePool, code: &str, cancel: &CancelToken) -> GpEval {
    if let Some(answer) = refuse_early(code) {
        return answer;
    }
    let input = GpInput::new(code);
    let run = pool.run(input.stdin.clone(), cancel);
    finish(&input, run)
}

/// Runs `code` in the sandbox WITHOUT the input policy. Only for testing that the sandbox holds
/// on its own (DESIGN.md invariant 2); the service never calls it.
pub fn eval_unfiltered(
    sandbox: &dyn Sandbox,
    policy: &SandboxPolicy,
    config: &GpConfig,
    code: &str,
    cancel: &CancelToken,
) -> GpEval {
    let input = GpInput::new(code);
    let run = sandbox.run(policy, command(config, &input), cancel);
    finish(&input, run)
}

/// The command a hot spare of gp is started with (its stdin comes with the call).
pub fn spare_template(config: &GpConfig) -> Command {
    Command {
        program: config.program.clone(),
        args: config.args(),
        ..Command::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use capsci_core::{MemoryLimitBy, SandboxInfo, Usage};

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

    fn marker(nonce: &str, t: &str, json: &str) -> String {
        format!("\n@@capsci-{nonce}@@{t}@@{json}@@end-{nonce}\n")
    }

    #[test]
    fn stdin_is_code_then_trailer_with_the_nonce() {
        let r = GpInput::with_nonce("1+1", "abc123");
        let s = String::from_utf8(r.stdin).expect("test value");
        assert!(s.starts_with("1+1\n\ncapsci_h=1;"));
        assert!(s.contains("\"abc123\""));
        assert!(!s.contains("#NONCE#"));
        // The marker is assembled at run time: its literal text is not in the source.
        assert!(!s.contains("@@capsci-abc123@@"));
    }

    #[test]
    fn nonces_differ() {
        assert_ne!(GpInput::new("1").nonce, GpInput::new("1").nonce);
    }

    #[test]
    fn config_bounds_the_stack_by_the_memory_limit() {
        let limits = Limits {
            memory_mb: 1024,
            ..Limits::default()
        };
        let c = GpConfig::for_limits(&limits);
        assert_eq!(c.parisizemax, 512 << 20);
        assert!(c.args().contains(&format!("parisizemax={}", 512u64 << 20)));
        assert!(c.args().contains(&"breakloop=0".to_string()));
    }

    #[test]
    fn ok_result_carries_value_type_and_structure() {
        let r = GpInput::with_nonce("factor(6)", "n1");
        let out = format!(
            "\n[2 1]\n\n[3 1]\n{}",
            marker("n1", "t_MAT", r#"[["2","1"],["3","1"]]"#)
        );
        let (status, result) = parse_outcome(&r, &outcome(ExitReason::Exited(0), &out, ""));
        assert_eq!(status, EvalStatus::Ok);
        assert_eq!(result.value.as_deref(), Some("[2 1]\n\n[3 1]"));
        assert_eq!(result.value_type.as_deref(), Some("t_MAT"));
        assert_eq!(
            result.structured,
            Some(serde_json::json!([["2", "1"], ["3", "1"]]))
        );
    }

    #[test]
    fn a_forged_marker_without_the_nonce_is_not_the_result() {
        let r = GpInput::with_nonce("print(...)", "real");
        let out = format!(
            "{}{}",
            marker("fake", "t_INT", "\"1\""),
            marker("real", "t_INT", "\"2\"")
        );
        let (_, result) = parse_outcome(&r, &outcome(ExitReason::Exited(0), &out, ""));
        assert_eq!(result.structured, Some(serde_json::json!("2")));
    }

    #[test]
    fn math_errors_are_error_with_pari_message_and_location() {
        let r = GpInput::with_nonce("a = 1\n1/0", "n");
        let err = "  ***   at top-level: 1/0\n  ***                  ^--\n  *** _/_: impossible inverse in gdiv: 0.\n";
        let (status, result) = parse_outcome(
            &r,
            &outcome(ExitReason::Exited(0), &marker("n", "none", "null"), err),
        );
        assert_eq!(status, EvalStatus::Error);
        let message = result.message.expect("test value");
        assert!(
            message.contains("*** _/_: impossible inverse in gdiv: 0."),
            "{message}"
        );
        assert_eq!(
            result.location,
            Some(Location {
                line: 2,
                column: Some(2)
            })
        );
        assert_eq!(result.structured, None);
    }

    #[test]
    fn syntax_errors_are_invalid_input_located_in_the_source() {
        let r = GpInput::with_nonce("x = 2\ny = 1 + )", "n");
        let err = "  ***   syntax error, unexpected ')': y=1+)\n  ***                                       ^-\n";
        let (status, result) = parse_outcome(
            &r,
            &outcome(ExitReason::Exited(0), &marker("n", "t_INT", "\"2\""), err),
        );
        assert_eq!(status, EvalStatus::InvalidInput);
        assert!(result
            .message
            .expect("test value")
            .contains("syntax error, unexpected ')'"));
        assert_eq!(
            result.location,
            Some(Location {
                line: 2,
                column: Some(9)
            })
        );
    }

    #[test]
    fn long_messages_put_the_context_on_its_own_line() {
        let r = GpInput::with_nonce("a = 1\nb = (a + 2", "n");
        let err = "  ***   syntax error, unexpected end of file, expecting )-> or ',' or ')': \n  ***   b=(a+2\n  ***        ^-\n";
        let (status, result) = parse_outcome(&r, &outcome(ExitReason::Exited(0), "", err));
        assert_eq!(status, EvalStatus::InvalidInput);
        // The caret is past the end of the statement: the last character is named.
        assert_eq!(
            result.location,
            Some(Location {
                line: 2,
                column: Some(10)
            })
        );
    }

    #[test]
    fn only_the_first_error_is_reported() {
        let r = GpInput::with_nonce("1/0\nfoo(", "n");
        let err = "  ***   at top-level: 1/0\n  ***                  ^--\n  *** _/_: impossible inverse in gdiv: 0.\n  ***   syntax error, unexpected end of file: foo(\n  ***     ^-\n";
        let (status, result) = parse_outcome(&r, &outcome(ExitReason::Exited(0), "", err));
        assert_eq!(status, EvalStatus::Error);
        assert!(!result.message.expect("test value").contains("syntax"));
    }

    #[test]
    fn stack_overflow_is_resource_exceeded() {
        let r = GpInput::with_nonce("vector(10^9,i,i)", "n");
        let err = "  ***   at top-level: vector(10^9,i,i)\n  ***                 ^----------------\n  *** vector: the PARI stack overflows !\n  current stack size: 1 (1 Mbytes)\n";
        let (status, _) = parse_outcome(&r, &outcome(ExitReason::Exited(0), "", err));
        assert_eq!(status, EvalStatus::ResourceExceeded);
    }

    #[test]
    fn limits_map_to_their_statuses() {
        let r = GpInput::with_nonce("1", "n");
        let cases = [
            (ExitReason::Timeout, EvalStatus::Timeout),
            (ExitReason::CpuLimit, EvalStatus::Timeout),
            (ExitReason::MemoryLimit, EvalStatus::ResourceExceeded),
            (ExitReason::PidsLimit, EvalStatus::ResourceExceeded),
            (ExitReason::OutputLimit, EvalStatus::ResourceExceeded),
            (ExitReason::FileSizeLimit, EvalStatus::ResourceExceeded),
            (ExitReason::SandboxError, EvalStatus::BackendError),
            (ExitReason::Cancelled, EvalStatus::Cancelled),
            (ExitReason::Signal(11), EvalStatus::BackendError),
        ];
        for (exit, expected) in cases {
            assert_eq!(
                parse_outcome(&r, &outcome(exit, "", "")).0,
                expected,
                "{exit}"
            );
        }
    }

    #[test]
    fn warnings_are_not_errors() {
        let r = GpInput::with_nonce("1", "n");
        let err = "  *** Warning: increasing stack size to 16000000.\n";
        let (status, _) = parse_outcome(
            &r,
            &outcome(ExitReason::Exited(0), &marker("n", "t_INT", "\"1\""), err),
        );
        assert_eq!(status, EvalStatus::Ok);
    }
}
