//! `ProofChecker` with Lean 4 — selected only when a `lean` toolchain is found on `PATH`.
//!
//! No Lean toolchain can be installed from this machine's registries, so this backend has never
//! run against a real `lean`. Unit-tested here: the toolchain search, the input policy (commands
//! that run code at elaboration time), the theorem scan, the generated `#print axioms` file and
//! driver script, the parsing of `lean --json` messages and the status decision (`sorry` →
//! `incomplete`). **Unverified**: the sandboxed run itself (`lake build`, `lean --json`), the
//! exact message formats of a real toolchain, and the closure roots. Without a toolchain its
//! check answers `backend_error` naming the missing toolchain.

pub mod source;

use crate::rocq::{CheckOptions, CheckReport, ProjectInput, ProofBackend};
use capsci_core::{Evidence, Limits, ProofError, ProofResult, ProofStatus};
use capsci_sandbox::{CancelToken, Outcome, Sandbox};
use std::path::{Path, PathBuf};

/// Finds a `lean` executable on `PATH` (the toolchain root is its `bin/`'s parent).
pub fn find_toolchain() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join("lean"))
        .find(|p| p.is_file())
}

/// One message of `lean --json` (one JSON object per line).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeanMessage {
    /// `error`, `warning` or `information`.
    pub severity: String,
    /// File name as Lean printed it.
    pub file: String,
    /// 1-based line.
    pub line: u32,
    /// 1-based column (Lean's are 0-based).
    pub column: u32,
    /// The text.
    pub data: String,
}

/// Parses `lean --json` output lines; lines that are not message objects are skipped.
pub fn parse_json_messages(output: &str) -> Vec<LeanMessage> {
    output
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| {
            Some(LeanMessage {
                severity: v.get("severity")?.as_str()?.to_string(),
                file: v
                    .get("fileName")
                    .and_then(|f| f.as_str())
                    .unwrap_or("")
                    .to_string(),
                line: v.get("pos")?.get("line")?.as_u64()? as u32,
                column: v.get("pos")?.get("column")?.as_u64()? as u32 + 1,
                data: v.get("data")?.as_str()?.to_string(),
            })
        })
        .collect()
}

/// The axioms listed by `#print axioms thm`: `'thm' depends on axioms: [propext, sorryAx]`, or
/// `'thm' does not depend on any axioms`.
pub fn parse_print_axioms(data: &str) -> Option<Vec<String>> {
    if data.contains("does not depend on any axioms") {
        return Some(Vec::new());
    }
    let inner = data.split("depends on axioms:").nth(1)?.trim();
    let inner = inner.strip_prefix('[')?.split(']').next()?;
    Some(
        inner
            .split(',')
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect(),
    )
}

/// Status from the messages and the axioms of every theorem: an error is `rejected`, `sorryAx`
/// (from `sorry`) is `incomplete`, axioms beyond Lean's three standard ones and the allow-list
/// are `accepted_with_axioms`.
pub fn status_of(
    messages: &[LeanMessage],
    axioms: &[String],
    allow: &[String],
) -> (ProofStatus, ProofResult) {
    let errors = messages
        .iter()
        .filter(|m| m.severity == "error")
        .map(|m| ProofError {
            file: m.file.clone(),
            line: m.line,
            column: m.column,
            message: m.data.clone(),
        })
        .collect();
    let result = ProofResult {
        errors,
        axioms: axioms.to_vec(),
        ..ProofResult::default()
    };
    if !result.errors.is_empty() {
        return (ProofStatus::Rejected, result);
    }
    if axioms.iter().any(|a| a == "sorryAx") {
        return (ProofStatus::Incomplete, result);
    }
    let standard = ["propext", "Classical.choice", "Quot.sound"];
    let extra = axioms
        .iter()
        .any(|a| !standard.contains(&a.as_str()) && !allow.contains(a));
    (
        if extra {
            ProofStatus::AcceptedWithAxioms
        } else {
            ProofStatus::Accepted
        },
        result,
    )
}

/// The Lean 4 backend.
#[derive(Debug, Clone, Default)]
pub struct Lean {
    /// The `lean` executable, when found.
    pub lean: Option<PathBuf>,
}

impl Lean {
    /// The backend with the toolchain found on `PATH`, if any.
    pub fn detect() -> Self {
        Lean {
            lean: find_toolchain(),
        }
    }

    fn missing() -> ProofResult {
        ProofResult {
            message: Some(
                "no Lean 4 toolchain (lean on PATH) on this host; the lean backend is unavailable"
                    .into(),
            ),
            ..ProofResult::default()
        }
    }
}

impl ProofBackend for Lean {
    fn name(&self) -> &'static str {
        "lean"
    }
    fn available(&self) -> bool {
        self.lean.is_some()
    }
    fn roots(&self) -> Vec<PathBuf> {
        // The toolchain directory (bin/, lib/, include/) holds lean, lake and the core library.
        self.lean
            .as_deref()
            .and_then(Path::parent)
            .and_then(Path::parent)
            .map(|root| vec![root.to_path_buf()])
            .unwrap_or_default()
    }
    fn check(
        &self,
        project: &ProjectInput,
        options: &CheckOptions,
        sandbox: &dyn Sandbox,
        binds: &[PathBuf],
        cancel: &CancelToken,
    ) -> CheckReport {
        let Some(lean) = &self.lean else {
            return report(ProofStatus::BackendError, Self::missing(), None);
        };
        run_check(lean, project, options, sandbox, binds, cancel)
    }
    fn goals(
        &self,
        _file: &[u8],
        _line: u32,
        _limits: &Limits,
        _sandbox: &dyn Sandbox,
        _binds: &[PathBuf],
        _cancel: &CancelToken,
    ) -> (ProofStatus, ProofResult, Option<Outcome>) {
        (ProofStatus::BackendError, Self::missing(), None)
    }
}

fn report(status: ProofStatus, result: ProofResult, outcome: Option<Outcome>) -> CheckReport {
    CheckReport {
        status,
        result,
        evidence: Evidence::Advisory,
        outcome,
        vo_files: Vec::new(),
        log: Vec::new(),
    }
}

fn message(status: ProofStatus, text: String) -> CheckReport {
    report(
        status,
        ProofResult {
            message: Some(text),
            ..ProofResult::default()
        },
        None,
    )
}

/// The sandboxed run (UNVERIFIED: no Lean toolchain on this host). A lake project (`lakefile.lean`
/// or `lakefile.toml`) is built with `lake build`, a single `.lean` file with `lean -o`; then a
/// generated file with one `#print axioms` per theorem runs under `lean --json`.
fn run_check(
    lean: &Path,
    project: &ProjectInput,
    options: &CheckOptions,
    sandbox: &dyn Sandbox,
    binds: &[PathBuf],
    cancel: &CancelToken,
) -> CheckReport {
    let mut files = Vec::new();
    let mut modules = Vec::new();
    let mut theorems = Vec::new();
    let mut lake = false;
    for (path, bytes) in &project.files {
        let Some(p) = path.to_str().filter(|p| {
            !p.starts_with('/')
                && !p.split('/').any(|c| c == ".." || c.starts_with('.'))
                && p.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_./-".contains(c))
        }) else {
            return message(
                ProofStatus::InvalidInput,
                format!("file name {path:?} is not allowed"),
            );
        };
        if p == "lakefile.lean" || p == "lakefile.toml" {
            lake = true;
        }
        if let Some(stem) = p.strip_suffix(".lean") {
            let Ok(text) = std::str::from_utf8(bytes) else {
                return message(ProofStatus::InvalidInput, format!("{p} is not UTF-8 text"));
            };
            if let Some(r) = source::refusal(text) {
                return report(
                    ProofStatus::Refused,
                    ProofResult {
                        message: Some(format!(
                            "{p}: {} refused by policy (runs code while elaborating)",
                            r.word
                        )),
                        errors: vec![ProofError {
                            file: p.into(),
                            line: r.line,
                            column: 1,
                            message: format!("{} refused", r.word),
                        }],
                        ..ProofResult::default()
                    },
                    None,
                );
            }
            if p != "lakefile.lean" {
                let module = stem.replace('/', ".");
                theorems.extend(source::theorems(text).into_iter().map(|t| t.to_string()));
                modules.push(module);
            }
        }
        files.push((PathBuf::from(format!("p/{p}")), bytes.clone()));
    }
    if modules.is_empty() {
        return message(
            ProofStatus::InvalidInput,
            "no .lean file in the project".into(),
        );
    }
    if !lake && modules.len() > 1 {
        return message(
            ProofStatus::InvalidInput,
            "a multi-file Lean project needs a lakefile".into(),
        );
    }
    let bin = lean.parent().map(Path::to_path_buf).unwrap_or_default();
    let lean_s = lean.to_string_lossy().into_owned();
    let lake_s = bin.join("lake").to_string_lossy().into_owned();
    let q = crate::rocq::script::quote;
    let mut script = String::from("cd /work/p || exit 90\n");
    if lake {
        script.push_str(&format!(
            "{} build >/work/o/build.out 2>&1; echo \"build $?\" >>/work/o/status\n",
            q(&lake_s)
        ));
        script.push_str(&format!(
            "{} env {} --json ../g/Axioms.lean >/work/o/axioms.out 2>&1; echo \"axioms $?\" >>/work/o/status\n",
            q(&lake_s),
            q(&lean_s)
        ));
    } else {
        let m = &modules[0];
        script.push_str(&format!(
            "{} --json -o {}.olean {}.lean >/work/o/build.out 2>&1; echo \"build $?\" >>/work/o/status\n",
            q(&lean_s), q(m), q(m)
        ));
        script.push_str(&format!(
            "LEAN_PATH=/work/p {} --json ../g/Axioms.lean >/work/o/axioms.out 2>&1; echo \"axioms $?\" >>/work/o/status\n",
            q(&lean_s)
        ));
    }
    files.push((
        PathBuf::from("g/Axioms.lean"),
        source::axioms_file(&modules, &theorems).into_bytes(),
    ));
    files.push((PathBuf::from("g/run.sh"), script.into_bytes()));
    files.push((PathBuf::from("o/status"), Vec::new()));
    let command = capsci_sandbox::Command {
        program: PathBuf::from(crate::rocq::script::SH),
        args: vec!["g/run.sh".into()],
        stdin: Vec::new(),
        files,
        collect: ["o/status", "o/build.out", "o/axioms.out"]
            .iter()
            .map(PathBuf::from)
            .collect(),
    };
    let mut policy = crate::rocq::sandbox_policy(binds, &options.limits);
    policy.backend = "lean".into();
    let outcome = match sandbox.run(&policy, command, cancel) {
        Ok(o) => o,
        Err(e) => return message(ProofStatus::BackendError, format!("sandbox: {e}")),
    };
    if outcome.exit.is_time_limit() {
        return report(ProofStatus::Timeout, ProofResult::default(), Some(outcome));
    }
    if outcome.exit.is_limit() {
        return report(
            ProofStatus::ResourceExceeded,
            ProofResult::default(),
            Some(outcome),
        );
    }
    let get = |name: &str| {
        outcome
            .collected
            .iter()
            .find(|(p, _)| p == Path::new(name))
            .map(|(_, b)| String::from_utf8_lossy(b).into_owned())
            .unwrap_or_default()
    };
    let build = parse_json_messages(&get("o/build.out"));
    let printed = parse_json_messages(&get("o/axioms.out"));
    let mut axioms: Vec<String> = printed
        .iter()
        .filter_map(|m| parse_print_axioms(&m.data))
        .flatten()
        .collect();
    axioms.sort();
    axioms.dedup();
    let (status, result) = status_of(&build, &axioms, &options.allow_axioms);
    let log = format!("{}\n{}", get("o/build.out"), get("o/axioms.out")).into_bytes();
    CheckReport {
        status,
        result,
        // No independent re-check (lean4checker) is wired: never `checked` from this backend yet.
        evidence: Evidence::Advisory,
        outcome: Some(outcome),
        vo_files: Vec::new(),
        log,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn parses_lean_json_messages_and_axioms() {
        let out = r#"{"severity":"error","pos":{"line":3,"column":2},"endPos":null,"fileName":"A.lean","data":"unknown identifier 'x'"}
not json
{"severity":"information","pos":{"line":5,"column":0},"fileName":"A.lean","data":"'t' depends on axioms: [propext, sorryAx]"}"#;
        let m = parse_json_messages(out);
        assert_eq!(m.len(), 2);
        assert_eq!((m[0].line, m[0].column), (3, 3));
        assert_eq!(
            parse_print_axioms(&m[1].data),
            Some(vec!["propext".to_string(), "sorryAx".to_string()])
        );
        assert_eq!(
            parse_print_axioms("'t' does not depend on any axioms"),
            Some(vec![])
        );
        let (s, _) = status_of(&m, &[], &[]);
        assert_eq!(s, ProofStatus::Rejected);
        let (s, _) = status_of(&[], &["sorryAx".into()], &[]);
        assert_eq!(s, ProofStatus::Incomplete);
        let (s, _) = status_of(&[], &["propext".into(), "myAx".into()], &[]);
        assert_eq!(s, ProofStatus::AcceptedWithAxioms);
        let (s, _) = status_of(&[], &["propext".into()], &[]);
        assert_eq!(s, ProofStatus::Accepted);
    }
}
