//! Conformance: public benchmark inputs nobody here wrote (SMT-LIB with published statuses,
//! Netlib LPs with published optimal objectives), run through capsci and compared with the
//! published answers. Read in place; never copied.

use crate::session::Session;
use capsci_core::request::{OptRequest, SmtBackendChoice, SmtRequest};
use capsci_core::{CallOutcome, CallRequest, Envelope, Evidence};
use capsci_sandbox::CancelToken;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Relative tolerance for a Netlib objective: |obj − published| / max(1, |published|).
pub const OBJECTIVE_TOLERANCE: f64 = 1e-6;

/// One instance's outcome.
#[derive(Debug, Clone, Serialize)]
pub struct CaseResult {
    /// The file, relative to the suite.
    pub file: String,
    /// The published answer.
    pub expected: String,
    /// What capsci answered.
    pub got: String,
    /// Whether they agree.
    pub agrees: bool,
    /// Whether capsci re-verified its answer (`evidence: checked`).
    pub checked: bool,
    /// Wall time of the call, ms.
    pub wall_ms: u64,
    /// The call's provenance record.
    pub record: Option<String>,
    /// Why it disagrees, when it does.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// One suite's outcome.
#[derive(Debug, Clone, Serialize)]
pub struct SuiteReport {
    /// `smtlib` or `netlib`.
    pub suite: String,
    /// Instances run.
    pub total: usize,
    /// Instances whose answer agrees with the published one.
    pub agree: usize,
    /// Instances whose answer capsci also re-verified.
    pub checked: usize,
    /// Every instance.
    pub cases: Vec<CaseResult>,
}

impl SuiteReport {
    /// The instances that disagree.
    pub fn disagreements(&self) -> Vec<&CaseResult> {
        self.cases.iter().filter(|c| !c.agrees).collect()
    }
}

/// Why a suite could not be run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConformanceError {
    /// The suite's `expected.json` could not be read.
    #[error("cannot read {path}: {message}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        message: String,
    },
    /// A call could not be made.
    #[error(transparent)]
    Call(#[from] crate::CallError),
}

#[derive(Deserialize)]
struct SmtExpected {
    file: String,
    status: String,
}

#[derive(Deserialize)]
struct NetlibExpected {
    file: String,
    objective: f64,
}

fn read_expected<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<Vec<T>, ConformanceError> {
    let err = |message: String| ConformanceError::Read {
        path: path.to_path_buf(),
        message,
    };
    let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
    serde_json::from_str(&text).map_err(|e| err(e.to_string()))
}

/// Runs `work` over `items` on `threads` threads, keeping the input order.
fn parallel<T: Sync, R: Send>(
    items: &[T],
    threads: usize,
    work: impl Fn(&T) -> R + Sync,
) -> Vec<R> {
    let next = Mutex::new(0usize);
    let results: Mutex<Vec<(usize, R)>> = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..threads.max(1) {
            scope.spawn(|| loop {
                let i = {
                    let mut n = next.lock().unwrap_or_else(|p| p.into_inner());
                    let i = *n;
                    *n += 1;
                    i
                };
                let Some(item) = items.get(i) else { break };
                let r = work(item);
                results
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push((i, r));
            });
        }
    });
    let mut results = results.into_inner().unwrap_or_else(|p| p.into_inner());
    results.sort_by_key(|(i, _)| *i);
    results.into_iter().map(|(_, r)| r).collect()
}

fn case(
    file: &str,
    expected: String,
    envelope: &Envelope,
    got: String,
    agrees: bool,
    detail: Option<String>,
) -> CaseResult {
    CaseResult {
        file: file.into(),
        expected,
        got,
        agrees,
        checked: envelope.evidence == Evidence::Checked,
        wall_ms: envelope.usage.wall_ms,
        record: envelope.provenance.as_ref().map(|p| p.record.clone()),
        detail,
    }
}

/// The SMT-LIB suite in `dir` (`expected.json` + `<logic>/<file>.smt2`), each file checked by
/// both Z3 and cvc5 (`--backend all`: a disagreement between them is `backend_error`).
pub fn smtlib(
    session: &Session,
    dir: &Path,
    threads: usize,
) -> Result<SuiteReport, ConformanceError> {
    let expected: Vec<SmtExpected> = read_expected(&dir.join("expected.json"))?;
    let results = parallel(
        &expected,
        threads,
        |e| -> Result<CaseResult, ConformanceError> {
            let path = dir.join(&e.file);
            let smtlib = std::fs::read_to_string(&path).map_err(|err| ConformanceError::Read {
                path: path.clone(),
                message: err.to_string(),
            })?;
            let request = CallRequest::SmtCheck(SmtRequest {
                smtlib,
                backend: SmtBackendChoice::All,
                timeout_s: Some(20.0),
                seed: Some(0),
            });
            let envelope = session.call(request, &CancelToken::new())?;
            let (got, detail) = match &envelope.call {
                CallOutcome::SmtSolver(o) => {
                    let each: Vec<String> = o
                        .result
                        .backends
                        .iter()
                        .flatten()
                        .map(|b| format!("{} {}", b.backend.name, b.status))
                        .collect();
                    (
                        o.status.to_string(),
                        o.result
                            .message
                            .clone()
                            .or_else(|| (!each.is_empty()).then(|| each.join(", "))),
                    )
                }
                other => (other.status_word().to_string(), None),
            };
            let agrees = got == e.status;
            Ok(case(
                &e.file,
                e.status.clone(),
                &envelope,
                got,
                agrees,
                (!agrees).then_some(detail).flatten(),
            ))
        },
    );
    let cases = results.into_iter().collect::<Result<Vec<_>, _>>()?;
    Ok(summarise("smtlib", cases))
}

/// The Netlib suite in `dir` (`expected.json` + `<name>.mps`): each LP solved by HiGHS through
/// capsci, its objective compared with the published optimum within [`OBJECTIVE_TOLERANCE`].
pub fn netlib(
    session: &Session,
    dir: &Path,
    threads: usize,
) -> Result<SuiteReport, ConformanceError> {
    let expected: Vec<NetlibExpected> = read_expected(&dir.join("expected.json"))?;
    let results = parallel(
        &expected,
        threads,
        |e| -> Result<CaseResult, ConformanceError> {
            let path = dir.join(&e.file);
            let mps = std::fs::read_to_string(&path).map_err(|err| ConformanceError::Read {
                path: path.clone(),
                message: err.to_string(),
            })?;
            let request = CallRequest::OptSolve(OptRequest {
                mps: Some(mps),
                lp: None,
                time_limit_s: Some(60.0),
                mip_gap: None,
                threads: None,
                seed: None,
                presolve: None,
            });
            let envelope = session.call(request, &CancelToken::new())?;
            let (got, agrees, detail) = match &envelope.call {
                CallOutcome::OptimizationSolver(o) => match o.result.objective {
                    Some(obj) => {
                        let rel = (obj - e.objective).abs() / e.objective.abs().max(1.0);
                        let ok = o.status == capsci_core::OptStatus::Optimal
                            && rel <= OBJECTIVE_TOLERANCE;
                        (
                            format!("{} {obj}", o.status),
                            ok,
                            (!ok).then(|| format!("relative difference {rel:e}")),
                        )
                    }
                    None => (o.status.to_string(), false, o.result.message.clone()),
                },
                other => (other.status_word().to_string(), false, None),
            };
            Ok(case(
                &e.file,
                format!("optimal {}", e.objective),
                &envelope,
                got,
                agrees,
                detail,
            ))
        },
    );
    let cases = results.into_iter().collect::<Result<Vec<_>, _>>()?;
    Ok(summarise("netlib", cases))
}

fn summarise(suite: &str, cases: Vec<CaseResult>) -> SuiteReport {
    SuiteReport {
        suite: suite.into(),
        total: cases.len(),
        agree: cases.iter().filter(|c| c.agrees).count(),
        checked: cases.iter().filter(|c| c.checked).count(),
        cases,
    }
}
