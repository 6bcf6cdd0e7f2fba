//! `ProofChecker` with Rocq (Debian's Coq 8.16): check a `.v` file or project, per-theorem
//! axioms, challenge mode, an independent `coqchk` re-check, and goals at a line.
//!
//! The flow of [`check`]: validate the project ([`project::prepare`]), refuse commands that reach
//! outside ([`policy`]), order the files by their `Require`s ([`scan::order`]), generate the
//! assumptions file (and the challenge comparison), then one sandbox start runs the driver
//! ([`script`]): coqc per file, coqc on the generated file (one `Print Assumptions` per
//! theorem), and `coqchk -norec` on every module capsci compiled. Only when coqchk agrees is the
//! evidence `checked`.

pub mod lexer;
pub mod parse;
pub mod policy;
pub mod project;
pub mod scan;
pub mod script;

use capsci_core::{
    Evidence, ExitReason, Limits, ProofError, ProofResult, ProofStatus, TheoremReport,
};
use capsci_sandbox::{Bind, CancelToken, Command, Outcome, Sandbox, SandboxPolicy, SyscallFilter};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

pub use project::{read_project, ProjectInput, ReadError, ReadLimits};

/// Coq's library directory in Debian's `coq` package (`coqc -where`): the standard library's
/// `.vo` files, read by coqc and coqchk.
pub const STDLIB_DIR: &str = "/usr/lib/ocaml/coq";
/// Coq's OCaml plugins (`coq-core`), loaded by the standard library through findlib.
pub const CORE_DIR: &str = "/usr/lib/ocaml/coq-core";
/// findlib's configuration, which tells coqc where `coq-core` lives.
pub const FINDLIB_CONF: &str = "/etc/ocamlfind.conf";
/// The interactive toplevel (for goals).
pub const COQTOP: &str = "/usr/bin/coqtop";

/// The paths the Rocq closure starts from: coqc, coqchk, coqtop, the standard library, the
/// plugins, findlib's configuration and the shell that runs capsci's driver script. The
/// closure builder adds the shared libraries (libgmp, libc, libm, the loader).
pub fn roots() -> Vec<PathBuf> {
    [
        script::COQC,
        script::COQCHK,
        COQTOP,
        STDLIB_DIR,
        CORE_DIR,
        FINDLIB_CONF,
        script::SH,
        "/usr/bin/dash",
    ]
    .iter()
    .map(PathBuf::from)
    .collect()
}

/// Whether Debian's Coq is installed where [`roots`] says (checked without running it).
pub fn available() -> bool {
    [script::COQC, script::COQCHK, STDLIB_DIR]
        .iter()
        .all(|p| Path::new(p).exists())
}

/// Why a proof backend could not be selected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SelectError {
    /// The name is neither `rocq` nor `lean`.
    #[error("unknown proof backend {0:?} (rocq or lean)")]
    Unknown(String),
    /// The backend's toolchain is not installed on this host.
    #[error("the {0} toolchain is not installed on this host")]
    Unavailable(&'static str),
}

/// The backend for `--backend NAME` (`rocq` when `None`): Lean only when a `lean` toolchain is
/// found on `PATH`, Rocq only when Debian's Coq is installed.
pub fn select_backend(name: Option<&str>) -> Result<Box<dyn ProofBackend>, SelectError> {
    let backend: Box<dyn ProofBackend> = match name.unwrap_or("rocq") {
        "rocq" | "coq" => Box::new(Rocq),
        "lean" => Box::new(crate::lean::Lean::detect()),
        other => return Err(SelectError::Unknown(other.to_string())),
    };
    if !backend.available() {
        return Err(SelectError::Unavailable(backend.name()));
    }
    Ok(backend)
}

/// The sandbox policy for Rocq: read-only binds of exactly `binds`, `LC_ALL=C`, no network.
pub fn sandbox_policy(binds: &[PathBuf], limits: &Limits) -> SandboxPolicy {
    let mut env = BTreeMap::new();
    env.insert("LC_ALL".to_string(), "C".to_string());
    env.insert("PATH".to_string(), "/usr/bin:/bin".to_string());
    SandboxPolicy {
        backend: "rocq".to_string(),
        ro_binds: binds.iter().cloned().map(Bind::same).collect(),
        env,
        limits: limits.clone(),
        network: false,
        syscall_filter: SyscallFilter::SolverDefault,
    }
}

/// What the caller asks of a check besides the project.
#[derive(Debug, Clone, Default)]
pub struct CheckOptions {
    /// Challenge mode: the statements to prove (a `.v` file whose theorems end in `Admitted`).
    pub challenge: Option<Vec<u8>>,
    /// Axioms allowed without turning `accepted` into `accepted_with_axioms` (a standard-library
    /// axiom's short name `classic`, or a qualified one `Coq.Logic.Classical_Prop.classic`).
    /// Never matches an axiom the project or the challenge declares.
    pub allow_axioms: Vec<String>,
    /// Limits of the one sandbox run.
    pub limits: Limits,
}

/// Everything a check produced: status, result, evidence, the sandbox outcome, and the
/// artifacts the caller stores (compiled `.vo` files and the full log).
#[derive(Debug, Clone)]
pub struct CheckReport {
    /// The typed status.
    pub status: ProofStatus,
    /// `result` of the envelope.
    pub result: ProofResult,
    /// `checked` only when the kernel accepted and coqchk agreed.
    pub evidence: Evidence,
    /// The sandbox outcome (`None` when nothing ran: refused or invalid input).
    pub outcome: Option<Outcome>,
    /// Compiled `.vo` files of the project, by relative path.
    pub vo_files: Vec<(PathBuf, Vec<u8>)>,
    /// The full log: the driver script and every step's output, in order.
    pub log: Vec<u8>,
}

impl CheckReport {
    fn early(status: ProofStatus, message: String, errors: Vec<ProofError>) -> Self {
        CheckReport {
            status,
            result: ProofResult {
                message: Some(message),
                errors,
                ..ProofResult::default()
            },
            evidence: Evidence::Advisory,
            outcome: None,
            vo_files: Vec::new(),
            log: Vec::new(),
        }
    }
}

/// A proof checker backend: Rocq now, Lean 4 when a toolchain is present.
pub trait ProofBackend: Send + Sync {
    /// The backend's name (`rocq`, `lean`).
    fn name(&self) -> &'static str;
    /// Whether its toolchain is installed on this host.
    fn available(&self) -> bool;
    /// The closure roots of its toolchain.
    fn roots(&self) -> Vec<PathBuf>;
    /// Checks a project in `sandbox`, binding `binds`.
    fn check(
        &self,
        project: &ProjectInput,
        options: &CheckOptions,
        sandbox: &dyn Sandbox,
        binds: &[PathBuf],
        cancel: &CancelToken,
    ) -> CheckReport;
    /// The open goals after the sentences that end on or before `line`.
    fn goals(
        &self,
        file: &[u8],
        line: u32,
        limits: &Limits,
        sandbox: &dyn Sandbox,
        binds: &[PathBuf],
        cancel: &CancelToken,
    ) -> (ProofStatus, ProofResult, Option<Outcome>);
}

/// The Rocq backend (Debian's Coq).
#[derive(Debug, Clone, Copy, Default)]
pub struct Rocq;

impl ProofBackend for Rocq {
    fn name(&self) -> &'static str {
        "rocq"
    }
    fn available(&self) -> bool {
        available()
    }
    fn roots(&self) -> Vec<PathBuf> {
        roots()
    }
    fn check(
        &self,
        project: &ProjectInput,
        options: &CheckOptions,
        sandbox: &dyn Sandbox,
        binds: &[PathBuf],
        cancel: &CancelToken,
    ) -> CheckReport {
        check(project, options, sandbox, binds, cancel)
    }
    fn goals(
        &self,
        file: &[u8],
        line: u32,
        limits: &Limits,
        sandbox: &dyn Sandbox,
        binds: &[PathBuf],
        cancel: &CancelToken,
    ) -> (ProofStatus, ProofResult, Option<Outcome>) {
        goals(file, line, limits, sandbox, binds, cancel)
    }
}

/// A challenge theorem matched to the solution's theorem.
#[derive(Debug, Clone)]
struct ChallengeItem {
    name: String,
    solution: String,
}

/// capsci's generated files and what each of their parts means.
struct Generated {
    /// `CapsciGen.Check` (challenge mode only): one kernel-checked definition per challenge
    /// theorem, typed by the challenge's statement and defined as the solution's theorem.
    check_text: Option<String>,
    /// `CapsciGen.Assumptions`: one `Print Assumptions` per theorem, after a marker.
    text: String,
    /// Fully qualified constant per marker index.
    targets: Vec<String>,
    /// Lines of the challenge comparisons in the check file, with the challenge theorem's name.
    check_lines: BTreeMap<u32, String>,
}

fn generate(
    project: &project::Project,
    scans: &[scan::FileScan],
    challenge: &[ChallengeItem],
) -> Generated {
    let requires: Vec<String> = project
        .files
        .iter()
        .map(|f| format!("Require {}.", f.module))
        .collect();
    let mut check_lines = BTreeMap::new();
    let mut check_text = None;
    let mut targets = Vec::new();
    for (f, s) in project.files.iter().zip(scans) {
        for t in s.theorems.iter().filter(|t| t.visible) {
            targets.push(scan::qualify(&f.module, &t.name));
        }
    }
    let mut lines = requires.clone();
    if !challenge.is_empty() {
        let mut check = requires;
        check.push("Require CapsciChallenge.Challenge.".into());
        for (i, c) in challenge.iter().enumerate() {
            // The type is the challenge's statement as elaborated in the challenge's context
            // (read off the compiled constant, not re-parsed); the body is the solution's
            // theorem, so the kernel accepts it only if the two statements are convertible.
            check.push(format!(
                "Definition capsci_check_{i} : ltac:(let T := type of @CapsciChallenge.Challenge.{} in exact T) := @{}.",
                c.name, c.solution
            ));
            check_lines.insert(check.len() as u32, c.name.clone());
            targets.push(format!("CapsciGen.Check.capsci_check_{i}"));
        }
        check_text = Some(check.join("\n") + "\n");
        lines.push("Require CapsciGen.Check.".into());
    }
    for (k, t) in targets.iter().enumerate() {
        lines.push(format!(
            "Check (fun capsci_mark_{k} : Prop => capsci_mark_{k})."
        ));
        lines.push(format!("Print Assumptions {t}."));
    }
    let mut text = lines.join("\n");
    text.push('\n');
    Generated {
        check_text,
        text,
        targets,
        check_lines,
    }
}

fn status_for_limit(exit: ExitReason) -> Option<ProofStatus> {
    match exit {
        ExitReason::Timeout | ExitReason::CpuLimit => Some(ProofStatus::Timeout),
        ExitReason::MemoryLimit
        | ExitReason::OutputLimit
        | ExitReason::PidsLimit
        | ExitReason::FileSizeLimit => Some(ProofStatus::ResourceExceeded),
        ExitReason::Cancelled => Some(ProofStatus::Cancelled),
        ExitReason::Signal(_) | ExitReason::SandboxError | ExitReason::NotRun => {
            Some(ProofStatus::BackendError)
        }
        ExitReason::Exited(_) => None,
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Lexes and applies the policy to one file; `Err` is the early report.
fn lex_file(file: &str, text: &str) -> Result<Vec<lexer::Sentence>, Box<CheckReport>> {
    let sentences = lexer::sentences(text).map_err(|e| {
        Box::new(CheckReport::early(
            ProofStatus::InvalidInput,
            format!("{file}: {e}"),
            vec![ProofError {
                file: file.into(),
                line: e.line(),
                column: 1,
                message: e.to_string(),
            }],
        ))
    })?;
    if let Some(r) = policy::check_sentences(file, &sentences) {
        let message = format!("{}: {} refused by policy: {}", r.file, r.command, r.reason);
        return Err(Box::new(CheckReport::early(
            ProofStatus::Refused,
            message.clone(),
            vec![ProofError {
                file: r.file,
                line: r.line,
                column: r.column,
                message,
            }],
        )));
    }
    Ok(sentences)
}

/// Checks a project: see the module documentation. Never panics; every failure is a status.
pub fn check(
    input: &ProjectInput,
    options: &CheckOptions,
    sandbox: &dyn Sandbox,
    binds: &[PathBuf],
    cancel: &CancelToken,
) -> CheckReport {
    let project = match project::prepare(input) {
        Ok(p) => p,
        Err(project::ProjectError::Invalid(m)) => {
            return CheckReport::early(ProofStatus::InvalidInput, m, Vec::new())
        }
        Err(project::ProjectError::Refused(m)) => {
            return CheckReport::early(ProofStatus::Refused, m, Vec::new())
        }
    };
    let mut scans = Vec::new();
    for f in &project.files {
        match lex_file(&f.path, &f.text) {
            Ok(s) => scans.push(scan::scan(&s)),
            Err(r) => return *r,
        }
    }
    // Challenge: its theorems, each matched to exactly one visible solution theorem.
    let mut challenge_items = Vec::new();
    let mut challenge_text = None;
    if let Some(bytes) = &options.challenge {
        let Ok(ctext) = String::from_utf8(bytes.clone()) else {
            return CheckReport::early(
                ProofStatus::InvalidInput,
                "the challenge is not UTF-8 text".into(),
                Vec::new(),
            );
        };
        let csent = match lex_file("challenge.v", &ctext) {
            Ok(s) => s,
            Err(r) => return *r,
        };
        let cscan = scan::scan(&csent);
        let theorems: Vec<_> = cscan.theorems.iter().filter(|t| t.visible).collect();
        if theorems.is_empty() {
            return CheckReport::early(
                ProofStatus::InvalidInput,
                "the challenge states no theorem".into(),
                Vec::new(),
            );
        }
        let mut errors = Vec::new();
        for t in theorems {
            let found: Vec<String> = project
                .files
                .iter()
                .zip(&scans)
                .filter(|(_, s)| s.theorems.iter().any(|x| x.visible && x.name == t.name))
                .map(|(f, _)| scan::qualify(&f.module, &t.name))
                .collect();
            match found.as_slice() {
                [one] => challenge_items.push(ChallengeItem {
                    name: t.name.clone(),
                    solution: one.clone(),
                }),
                [] => errors.push(ProofError {
                    file: "challenge.v".into(),
                    line: t.line,
                    column: 1,
                    message: format!("challenge theorem {} is not proved in the solution", t.name),
                }),
                many => errors.push(ProofError {
                    file: "challenge.v".into(),
                    line: t.line,
                    column: 1,
                    message: format!(
                        "challenge theorem {} is declared more than once: {}",
                        t.name,
                        many.join(", ")
                    ),
                }),
            }
        }
        if !errors.is_empty() {
            return CheckReport::early(
                ProofStatus::Rejected,
                "the solution does not answer the challenge".into(),
                errors,
            );
        }
        challenge_text = Some(ctext);
    }
    let order = match scan::order(&project.files, &scans) {
        Ok(o) => o,
        Err(e) => return CheckReport::early(ProofStatus::InvalidInput, e.to_string(), Vec::new()),
    };
    let generated = generate(&project, &scans, &challenge_items);

    // The driver's steps.
    let lp = project.loadpath_args();
    let coqc = |extra: Vec<String>| -> Vec<String> {
        let mut v = vec![script::COQC.to_string(), "-q".to_string()];
        v.extend(project.coqc_args.iter().cloned());
        v.extend(extra);
        v
    };
    let mut steps = Vec::new();
    let mut files: Vec<(PathBuf, Vec<u8>)> = Vec::new();
    let mut collect: Vec<PathBuf> = Vec::new();
    let challenge_args = vec![
        "-Q".to_string(),
        "../c".to_string(),
        "CapsciChallenge".to_string(),
    ];
    if let Some(ct) = &challenge_text {
        files.push((PathBuf::from("c/Challenge.v"), ct.as_bytes().to_vec()));
        let mut a = challenge_args.clone();
        a.push("../c/Challenge.v".into());
        steps.push(script::Step {
            name: "ch".into(),
            argv: coqc(a),
        });
        collect.push(PathBuf::from("o/ch.out"));
    }
    for (k, &i) in order.iter().enumerate() {
        let f = &project.files[i];
        let mut a = lp.clone();
        a.push(f.path.clone());
        steps.push(script::Step {
            name: format!("c{k}"),
            argv: coqc(a),
        });
        collect.push(PathBuf::from(format!("o/c{k}.out")));
        collect.push(PathBuf::from(format!("p/{}o", f.path)));
    }
    let gen_args = {
        let mut a = lp.clone();
        if challenge_text.is_some() {
            a.extend(challenge_args.clone());
        }
        a.extend([
            "-Q".to_string(),
            "../g".to_string(),
            "CapsciGen".to_string(),
        ]);
        a
    };
    if generated.check_text.is_some() {
        let mut ck = gen_args.clone();
        ck.push("../g/Check.v".into());
        steps.push(script::Step {
            name: "ck".into(),
            argv: coqc(ck),
        });
        collect.push(PathBuf::from("o/ck.out"));
    }
    // The assumptions file is fed to a coqtop started at once, so that its start-up (loading
    // the prelude) overlaps the compilation; coqchk runs beside it once the .vo files exist.
    let mut pa = vec![COQTOP.to_string(), "-q".to_string()];
    pa.extend(gen_args.clone());
    collect.push(PathBuf::from("o/pa.out"));
    let mut chk = vec![script::COQCHK.to_string(), "-o".to_string()];
    chk.extend(gen_args.clone());
    for &i in &order {
        chk.push("-norec".into());
        chk.push(project.files[i].module.clone());
    }
    if challenge_text.is_some() {
        chk.extend([
            "-norec".to_string(),
            "CapsciChallenge.Challenge".to_string(),
        ]);
    }
    if generated.check_text.is_some() {
        chk.extend(["-norec".to_string(), "CapsciGen.Check".to_string()]);
    }
    let chk = script::Step {
        name: "chk".into(),
        argv: chk,
    };
    collect.push(PathBuf::from("o/chk.out"));
    collect.push(PathBuf::from("o/status"));

    let script_text = script::render_pipeline(&steps, &chk, &pa, "../g/Assumptions.v");
    for f in &project.files {
        files.push((
            PathBuf::from(format!("p/{}", f.path)),
            f.text.as_bytes().to_vec(),
        ));
    }
    if let Some(ck) = &generated.check_text {
        files.push((PathBuf::from("g/Check.v"), ck.as_bytes().to_vec()));
    }
    files.push((
        PathBuf::from("g/Assumptions.v"),
        generated.text.as_bytes().to_vec(),
    ));
    files.push((
        PathBuf::from(script::SCRIPT),
        script_text.as_bytes().to_vec(),
    ));
    files.push((PathBuf::from("o/status"), Vec::new()));
    let command = Command {
        program: PathBuf::from(script::SH),
        args: vec![script::SCRIPT.to_string()],
        stdin: Vec::new(),
        files,
        collect,
    };
    let policy = sandbox_policy(binds, &options.limits);
    let outcome = match sandbox.run(&policy, command, cancel) {
        Ok(o) => o,
        Err(e) => {
            return CheckReport::early(
                ProofStatus::BackendError,
                format!("sandbox: {e}"),
                Vec::new(),
            )
        }
    };
    interpret(
        &project,
        &scans,
        &order,
        &generated,
        &challenge_items,
        options,
        &script_text,
        outcome,
    )
}

/// Turns the driver's outcome into the report.
#[allow(clippy::too_many_arguments)]
fn interpret(
    project: &project::Project,
    scans: &[scan::FileScan],
    order: &[usize],
    generated: &Generated,
    challenge: &[ChallengeItem],
    options: &CheckOptions,
    script_text: &str,
    outcome: Outcome,
) -> CheckReport {
    let collected: BTreeMap<String, &Vec<u8>> = outcome
        .collected
        .iter()
        .map(|(p, b)| (p.to_string_lossy().into_owned(), b))
        .collect();
    let out_of = |step: &str| {
        collected
            .get(&format!("o/{step}.out"))
            .map(|b| text(b))
            .unwrap_or_default()
    };
    let statuses = script::parse_status(
        &collected
            .get("o/status")
            .map(|b| text(b))
            .unwrap_or_default(),
    );
    let rc = |step: &str| statuses.iter().find(|(s, _)| s == step).map(|(_, c)| *c);
    // The log: script, then each step's output, in order.
    let mut log = format!("== driver script\n{script_text}\n");
    let mut step_names: Vec<String> = Vec::new();
    if !challenge.is_empty() {
        step_names.push("ch".into());
    }
    step_names.extend((0..order.len()).map(|k| format!("c{k}")));
    if !challenge.is_empty() {
        step_names.push("ck".into());
    }
    step_names.extend(["pa".to_string(), "chk".to_string()]);
    for s in &step_names {
        if collected.contains_key(&format!("o/{s}.out")) {
            log.push_str(&format!("== step {s} (exit {:?})\n{}\n", rc(s), out_of(s)));
        }
    }
    log.push_str(&format!(
        "== sandbox exit {}\n{}{}",
        outcome.exit,
        text(&outcome.stdout),
        text(&outcome.stderr)
    ));
    let vo_files: Vec<(PathBuf, Vec<u8>)> = project
        .files
        .iter()
        .filter_map(|f| {
            collected
                .get(&format!("p/{}o", f.path))
                .map(|b| (PathBuf::from(format!("{}o", f.path)), (*b).clone()))
        })
        .collect();
    let mut report = CheckReport {
        status: ProofStatus::BackendError,
        result: ProofResult::default(),
        evidence: Evidence::Advisory,
        outcome: None,
        vo_files,
        log: log.into_bytes(),
    };
    let running = step_names
        .iter()
        .find(|s| rc(s).is_none())
        .cloned()
        .unwrap_or_default();
    let step_file = |s: &str| -> String {
        if s == "ch" {
            return "challenge.v".into();
        }
        if s == "ck" {
            return "challenge comparison".into();
        }
        s.strip_prefix('c')
            .and_then(|k| k.parse::<usize>().ok())
            .and_then(|k| order.get(k))
            .map(|&i| project.files[i].path.clone())
            .unwrap_or_else(|| s.to_string())
    };
    if let Some(status) = status_for_limit(outcome.exit) {
        report.status = status;
        report.result.message = Some(format!(
            "{} during step {} ({})",
            outcome.exit,
            running,
            step_file(&running)
        ));
        report.outcome = Some(outcome);
        return report;
    }
    let finish = |mut r: CheckReport, status: ProofStatus, message: String| {
        r.status = status;
        r.result.message = Some(message);
        r
    };
    // Compilation steps.
    for s in step_names.iter().filter(|s| {
        *s == "ch"
            || s.strip_prefix('c')
                .is_some_and(|k| k.parse::<usize>().is_ok())
    }) {
        match rc(s) {
            Some(0) => continue,
            None => {
                report.outcome = Some(outcome);
                return finish(
                    report,
                    ProofStatus::BackendError,
                    format!("step {s} did not run (driver stopped)"),
                );
            }
            Some(_) => {
                let out = out_of(s);
                let file = step_file(s);
                report.outcome = Some(outcome);
                if out.contains("Out of memory") || out.contains("Stack overflow") {
                    return finish(
                        report,
                        ProofStatus::ResourceExceeded,
                        format!("{file}: {}", out.trim()),
                    );
                }
                let diags = parse::coqc_errors(&out, &file);
                let syntax = diags.iter().any(|d| d.syntax);
                report.result.errors = diags.into_iter().map(|d| d.error).collect();
                if report.result.errors.is_empty() {
                    report.result.errors.push(ProofError {
                        file: file.clone(),
                        line: 0,
                        column: 0,
                        message: out.trim().to_string(),
                    });
                }
                if s == "ch" {
                    return finish(
                        report,
                        ProofStatus::InvalidInput,
                        "the challenge does not compile".into(),
                    );
                }
                let status = if syntax {
                    ProofStatus::InvalidInput
                } else {
                    ProofStatus::Rejected
                };
                return finish(report, status, format!("coqc rejected {file}"));
            }
        }
    }
    // The challenge comparison.
    if !challenge.is_empty() && rc("ck") != Some(0) {
        let ck_out = out_of("ck");
        let diags = parse::coqc_errors(&ck_out, "Check.v");
        report.outcome = Some(outcome);
        if let Some(d) = diags.first() {
            if let Some(name) = generated.check_lines.get(&d.error.line) {
                report.result.errors.push(ProofError {
                    file: "challenge.v".into(),
                    line: 0,
                    column: 0,
                    message: format!(
                        "the solution's {name} does not have the challenge's statement: {}",
                        d.error.message
                    ),
                });
                return finish(
                    report,
                    ProofStatus::Rejected,
                    format!("challenge theorem {name}: statement differs"),
                );
            }
        }
        return finish(
            report,
            ProofStatus::BackendError,
            format!("the challenge comparison step failed: {}", ck_out.trim()),
        );
    }
    // The assumptions file.
    let pa_out = out_of("pa");
    if rc("pa") != Some(0) || parse::toplevel_error(&pa_out) {
        report.outcome = Some(outcome);
        return finish(
            report,
            ProofStatus::BackendError,
            format!("the assumptions step failed: {}", pa_out.trim()),
        );
    }
    let blocks = parse::assumption_blocks(&pa_out, generated.targets.len());
    let chk_out = out_of("chk");
    let summary = parse::coqchk_summary(&chk_out);
    let admitted = scan::admitted_names(&project.files, scans);
    let own_prefixes: Vec<String> = project
        .files
        .iter()
        .map(|f| format!("{}.", f.module))
        .chain(["CapsciChallenge.".to_string(), "CapsciGen.".to_string()])
        .collect();
    let is_own = |full: &str| own_prefixes.iter().any(|p| full.starts_with(p.as_str()));
    let allowed = |full: &str| {
        full.starts_with("Coq.")
            && options
                .allow_axioms
                .iter()
                .any(|a| full == a || full.ends_with(&format!(".{a}")))
    };
    let mut all_axioms: BTreeSet<String> = BTreeSet::new();
    let mut disallowed: BTreeSet<String> = BTreeSet::new();
    let mut any_unchecked = false;
    let mut missing = Vec::new();
    for (k, target) in generated.targets.iter().enumerate() {
        let Some(block) = blocks.get(k).and_then(Option::as_ref) else {
            missing.push(target.clone());
            continue;
        };
        let self_admitted = admitted.contains_key(target);
        let mut checked = !self_admitted;
        let mut axioms = Vec::new();
        for (printed, section) in &block.entries {
            let candidates = parse::resolve_full(printed, &summary.axioms);
            let full = match candidates.as_slice() {
                [one] => one.to_string(),
                _ => printed.clone(),
            };
            if section != "Axioms" {
                let name = format!("{section}: {full}");
                disallowed.insert(name.clone());
                axioms.push(name);
                continue;
            }
            let is_admitted = admitted.contains_key(&full)
                || admitted
                    .keys()
                    .any(|a| a.ends_with(&format!(".{printed}")) || a == printed);
            if is_admitted {
                checked = false;
            } else if !allowed(&full) && !full.starts_with("CapsciChallenge.") {
                disallowed.insert(full.clone());
            }
            axioms.push(full);
        }
        any_unchecked |= !checked;
        all_axioms.extend(axioms.iter().cloned());
        report.result.theorems.push(TheoremReport {
            name: target.clone(),
            checked,
            axioms,
        });
    }
    // Axioms the project itself declares count even when no theorem uses them.
    for a in summary.axioms.iter().filter(|a| is_own(a)) {
        if !admitted.contains_key(a.as_str()) && !a.starts_with("CapsciChallenge.") {
            all_axioms.insert(a.clone());
            disallowed.insert(a.clone());
        }
    }
    for u in &summary.unsafe_entries {
        disallowed.insert(format!("unsafe: {u}"));
        all_axioms.insert(format!("unsafe: {u}"));
    }
    report.result.axioms = all_axioms.into_iter().collect();
    if !missing.is_empty() {
        report.outcome = Some(outcome);
        return finish(
            report,
            ProofStatus::BackendError,
            format!("no Print Assumptions output for {}", missing.join(", ")),
        );
    }
    // The independent re-check.
    if rc("chk") != Some(0) || !summary.ok {
        report.outcome = Some(outcome);
        return finish(
            report,
            ProofStatus::BackendError,
            format!(
                "coqchk disagreed with coqc.\n-- coqc (assumptions):\n{}\n-- coqchk:\n{}",
                pa_out.trim(),
                chk_out.trim()
            ),
        );
    }
    let admits = scans.iter().any(|s| s.admits);
    let modules = order.len() + 2 * usize::from(!challenge.is_empty());
    report.result.recheck = Some(format!(
        "coqchk -norec re-checked all {modules} modules capsci compiled (the project's{}); \
         the standard library's .vo files are trusted as part of the pinned closure",
        if challenge.is_empty() {
            ""
        } else {
            ", the challenge and the challenge comparison"
        }
    ));
    report.outcome = Some(outcome);
    if any_unchecked || admits {
        report.status = ProofStatus::Incomplete;
        report.result.message =
            Some("some proof is Admitted (directly or through a lemma it uses)".into());
    } else if !disallowed.is_empty() {
        report.status = ProofStatus::AcceptedWithAxioms;
        report.evidence = Evidence::Checked;
        report.result.message = Some(format!(
            "checked, assuming {}",
            disallowed.into_iter().collect::<Vec<_>>().join(", ")
        ));
    } else {
        report.status = ProofStatus::Accepted;
        report.evidence = Evidence::Checked;
    }
    report
}

/// The marker printed just before `Show.` in a goals request.
const GOALS_MARK: &str = "fun capsci_goals_mark : Prop => capsci_goals_mark";

/// The open goals after every sentence that ends on or before `line` (1-based): the file is cut
/// there, `Show.` appended, and the whole run through coqc in the sandbox (coqc prints `Show`
/// output like coqtop does, without an interactive session). Status `accepted` with
/// `result.goals` (possibly empty: no proof open, or no more goals), `refused`/`invalid_input`
/// for input the policy or the lexer rejects, and the limit statuses.
pub fn goals(
    file: &[u8],
    line: u32,
    limits: &Limits,
    sandbox: &dyn Sandbox,
    binds: &[PathBuf],
    cancel: &CancelToken,
) -> (ProofStatus, ProofResult, Option<Outcome>) {
    let early = |status, message: String| {
        (
            status,
            ProofResult {
                message: Some(message),
                ..ProofResult::default()
            },
            None,
        )
    };
    let Ok(text_in) = std::str::from_utf8(file) else {
        return early(
            ProofStatus::InvalidInput,
            "the file is not UTF-8 text".into(),
        );
    };
    let sentences = match lex_file("goals.v", text_in) {
        Ok(s) => s,
        Err(r) => return (r.status, r.result, None),
    };
    let cut = sentences
        .iter()
        .filter(|s| s.end_line <= line)
        .map(|s| s.end_offset)
        .max()
        .unwrap_or(0);
    let mut src = text_in[..cut].to_string();
    src.push_str(&format!("\nCheck ({GOALS_MARK}).\nShow.\n"));
    let command = Command {
        program: PathBuf::from(script::COQC),
        args: ["-q", "-R", ".", "", "Goals.v"]
            .iter()
            .map(|s| s.to_string())
            .collect(),
        stdin: Vec::new(),
        files: vec![(PathBuf::from("Goals.v"), src.into_bytes())],
        collect: Vec::new(),
    };
    let outcome = match sandbox.run(&sandbox_policy(binds, limits), command, cancel) {
        Ok(o) => o,
        Err(e) => return early(ProofStatus::BackendError, format!("sandbox: {e}")),
    };
    if let Some(status) = status_for_limit(outcome.exit) {
        return (
            status,
            ProofResult {
                message: Some(outcome.exit.to_string()),
                ..ProofResult::default()
            },
            Some(outcome),
        );
    }
    let stdout = text(&outcome.stdout);
    let stderr = text(&outcome.stderr);
    let Some(at) = stdout.find(GOALS_MARK) else {
        let errors = parse::coqc_errors(&format!("{stdout}\n{stderr}"), "goals.v")
            .into_iter()
            .map(|mut d| {
                d.error.file = "goals.v".into();
                d.error
            })
            .collect();
        let result = ProofResult {
            errors,
            message: Some("the file does not compile up to that line".into()),
            ..ProofResult::default()
        };
        return (ProofStatus::Rejected, result, Some(outcome));
    };
    let after = &stdout[at..];
    let body: String = after.lines().skip(2).collect::<Vec<_>>().join("\n");
    let goals = split_goals(&body);
    let result = ProofResult {
        goals: Some(goals),
        ..ProofResult::default()
    };
    (ProofStatus::Accepted, result, Some(outcome))
}

/// Splits `Show.` output into goals: the first with its hypotheses, then each `goal k is:`.
fn split_goals(body: &str) -> Vec<String> {
    let body = body.trim();
    if body.is_empty() || body.starts_with("No more goals") || body.contains("No focused proof") {
        return Vec::new();
    }
    let mut goals = Vec::new();
    let mut cur = String::new();
    for l in body.lines() {
        let t = l.trim();
        if (t.ends_with(" goal") || t.ends_with(" goals"))
            && t.split_whitespace().count() == 2
            && goals.is_empty()
            && cur.is_empty()
        {
            continue;
        }
        if t.starts_with("goal ") && t.ends_with(" is:") {
            if !cur.trim().is_empty() {
                goals.push(cur.trim().to_string());
            }
            cur.clear();
            continue;
        }
        cur.push_str(l);
        cur.push('\n');
    }
    if !cur.trim().is_empty() {
        goals.push(cur.trim().to_string());
    }
    goals
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn splits_show_output() {
        let out = "2 goals\n  \n  n : nat\n  ============================\n  n + 0 = n\n\ngoal 2 is:\n S n + 0 = S n\n";
        let g = split_goals(out);
        assert_eq!(g.len(), 2);
        assert!(g[0].contains("n : nat") && g[0].contains("n + 0 = n"));
        assert_eq!(g[1], "S n + 0 = S n");
        assert!(split_goals("No more goals.").is_empty());
    }

    fn outcome(collected: &[(&str, &str)]) -> Outcome {
        Outcome {
            exit: ExitReason::Exited(0),
            stdout: Vec::new(),
            stderr: Vec::new(),
            usage: capsci_core::Usage::default(),
            collected: collected
                .iter()
                .map(|(p, t)| (PathBuf::from(p), t.as_bytes().to_vec()))
                .collect(),
            sandbox: capsci_core::SandboxInfo::default(),
            memory_limit_by: capsci_core::MemoryLimitBy::None,
        }
    }

    fn decide(collected: &[(&str, &str)]) -> CheckReport {
        let input = ProjectInput {
            files: vec![(
                PathBuf::from("a.v"),
                b"Theorem t : True. Proof. exact I. Qed.".to_vec(),
            )],
        };
        let project = project::prepare(&input).unwrap();
        let scans: Vec<_> = project
            .files
            .iter()
            .map(|f| scan::scan(&lexer::sentences(&f.text).unwrap()))
            .collect();
        let generated = generate(&project, &scans, &[]);
        interpret(
            &project,
            &scans,
            &[0],
            &generated,
            &[],
            &CheckOptions::default(),
            "",
            outcome(collected),
        )
    }

    const PA: &str = "fun capsci_mark_0 : Prop => capsci_mark_0\n     : Prop -> Prop\nClosed under the global context\n";
    const CHK_OK: &str = "Modules were successfully checked\n\nCONTEXT SUMMARY\n===============\n\n* Axioms: <none>\n";

    #[test]
    fn accepted_only_when_coqchk_agrees() {
        let ok = decide(&[
            ("o/status", "c0 0\npa 0\nchk 0\n"),
            ("o/pa.out", PA),
            ("o/chk.out", CHK_OK),
        ]);
        assert_eq!(ok.status, ProofStatus::Accepted);
        assert_eq!(ok.evidence, Evidence::Checked);
        let bad = decide(&[
            ("o/status", "c0 0\npa 0\nchk 1\n"),
            ("o/pa.out", PA),
            ("o/chk.out", "Error: Anomaly: bad constant a.t"),
        ]);
        assert_eq!(bad.status, ProofStatus::BackendError);
        assert_eq!(bad.evidence, Evidence::Advisory);
        let msg = bad.result.message.unwrap();
        assert!(
            msg.contains("capsci_mark_0") && msg.contains("bad constant a.t"),
            "{msg}"
        );
        // coqchk never ran (driver killed between steps): not checked either.
        let none = decide(&[("o/status", "c0 0\npa 0\n"), ("o/pa.out", PA)]);
        assert_eq!(none.status, ProofStatus::BackendError);
    }

    #[test]
    fn selection_and_version() {
        assert_eq!(select_backend(None).unwrap().name(), "rocq");
        assert!(matches!(
            select_backend(Some("isabelle")),
            Err(SelectError::Unknown(_))
        ));
        // No Lean toolchain on this host: selecting it says so.
        if crate::lean::find_toolchain().is_none() {
            assert!(matches!(
                select_backend(Some("lean")),
                Err(SelectError::Unavailable("lean"))
            ));
        }
    }

    #[test]
    fn roots_name_the_debian_paths() {
        let r = roots();
        assert!(r.contains(&PathBuf::from("/usr/bin/coqc")));
        assert!(r.contains(&PathBuf::from(STDLIB_DIR)));
    }
}
