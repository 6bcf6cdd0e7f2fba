//! `ProofChecker` with Lean 4 — selected only when a `lean` toolchain is found on `PATH`.
//!
//! No Lean toolchain can be installed from this machine's registries, so this backend has never
//! run against a real `lean`: what is here is the part that does not need one (finding the
//! toolchain, the command, the parsing of `lean --json` messages, `sorry` as incomplete and
//! `#print axioms` output). Its check returns `backend_error` naming the missing toolchain when
//! none is found.

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
        _project: &ProjectInput,
        _options: &CheckOptions,
        _sandbox: &dyn Sandbox,
        _binds: &[PathBuf],
        _cancel: &CancelToken,
    ) -> CheckReport {
        // Unverified without a toolchain: the run itself (`lake build`, then `lean --json` on a
        // generated file with one `#print axioms` per theorem) is not implemented here, so the
        // answer is an honest backend_error rather than an untested pipeline.
        let mut result = Self::missing();
        if self.lean.is_some() {
            result.message = Some("the lean backend's sandboxed run is not implemented yet".into());
        }
        CheckReport {
            status: ProofStatus::BackendError,
            result,
            evidence: Evidence::Advisory,
            outcome: None,
            vo_files: Vec::new(),
            log: Vec::new(),
        }
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
