//! Per-interface outcomes: the method, its typed status and its structured `result`.
//!
//! Field names inside `result` are fixed by DESIGN.md ("Field names inside `result`"); fields
//! may be added, never renamed.

use crate::envelope::{ArtifactRefs, BackendIdentity, Usage};
use crate::exit::ExitReason;
use crate::interface::{Interface, Method};
use crate::status::{EvalStatus, OptStatus, ProofStatus, SmtStatus};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Where in the input a diagnostic points (1-based).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Location {
    /// Line, 1-based.
    pub line: u32,
    /// Column, 1-based, when the backend gives one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub column: Option<u32>,
}

/// The interface, method, status and result of one call, tagged by `interface`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "interface")]
pub enum CallOutcome {
    /// `NumberTheory.eval` (PARI/GP).
    NumberTheory(EvalOutcome<NumberTheoryResult>),
    /// `ComputerAlgebra.*` (SymPy).
    ComputerAlgebra(EvalOutcome<CasResult>),
    /// `SmtSolver.check` (Z3, cvc5).
    SmtSolver(SmtOutcome),
    /// `OptimizationSolver.solve` (HiGHS).
    OptimizationSolver(OptOutcome),
    /// `ProofChecker.check` / `goals` (Rocq).
    ProofChecker(ProofOutcome),
}

impl CallOutcome {
    /// The interface this call went to.
    pub fn interface(&self) -> Interface {
        match self {
            CallOutcome::NumberTheory(_) => Interface::NumberTheory,
            CallOutcome::ComputerAlgebra(_) => Interface::ComputerAlgebra,
            CallOutcome::SmtSolver(_) => Interface::SmtSolver,
            CallOutcome::OptimizationSolver(_) => Interface::OptimizationSolver,
            CallOutcome::ProofChecker(_) => Interface::ProofChecker,
        }
    }

    /// The method called.
    pub fn method(&self) -> Method {
        match self {
            CallOutcome::NumberTheory(o) => o.method,
            CallOutcome::ComputerAlgebra(o) => o.method,
            CallOutcome::SmtSolver(o) => o.method,
            CallOutcome::OptimizationSolver(o) => o.method,
            CallOutcome::ProofChecker(o) => o.method,
        }
    }

    /// The status as its wire word.
    pub fn status_word(&self) -> &'static str {
        match self {
            CallOutcome::NumberTheory(o) => o.status.as_str(),
            CallOutcome::ComputerAlgebra(o) => o.status.as_str(),
            CallOutcome::SmtSolver(o) => o.status.as_str(),
            CallOutcome::OptimizationSolver(o) => o.status.as_str(),
            CallOutcome::ProofChecker(o) => o.status.as_str(),
        }
    }
}

/// Outcome of an evaluating method (`NumberTheory`, `ComputerAlgebra`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct EvalOutcome<R> {
    /// The method called.
    pub method: Method,
    /// The typed status.
    pub status: EvalStatus,
    /// The structured payload.
    pub result: R,
}

/// `result` of `NumberTheory.eval`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct NumberTheoryResult {
    /// The value as gp printed it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// PARI's type name (`t_INT`, `t_VEC`, ...).
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub value_type: Option<String>,
    /// The value as structured JSON where PARI's type allows it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub structured: Option<serde_json::Value>,
    /// The backend's or the policy's message, for any status but `ok`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Where the message points, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<Location>,
}

/// One SymPy value in three forms.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct CasValue {
    /// `str()` of the value.
    pub text: String,
    /// `latex()` of the value.
    pub latex: String,
    /// `srepr()` of the value: a structured form that SymPy can rebuild exactly.
    pub srepr: String,
}

/// `result` of a `ComputerAlgebra` method.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct CasResult {
    /// `str()` of the value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// `latex()` of the value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latex: Option<String>,
    /// `srepr()` of the value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub srepr: Option<String>,
    /// For `solve`: each solution maps a variable to its value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub solutions: Option<Vec<BTreeMap<String, CasValue>>>,
    /// The backend's or the policy's message, for any status but `ok`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Where the message points, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<Location>,
}

/// Outcome of `SmtSolver.check`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SmtOutcome {
    /// The method called (`check`).
    pub method: Method,
    /// The typed status.
    pub status: SmtStatus,
    /// The structured payload.
    pub result: SmtResult,
}

/// One value of a model.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ModelEntry {
    /// The declared name.
    pub name: String,
    /// Its sort as SMT-LIB text (`Int`, `(_ BitVec 8)`, `(-> Int Bool)` for functions).
    pub sort: String,
    /// The value as SMT-LIB text.
    pub value: String,
}

/// `result` of `SmtSolver.check`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SmtResult {
    /// For `sat`: the model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<Vec<ModelEntry>>,
    /// For `unsat` with named assertions: the names in the unsat core.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub core: Option<Vec<String>>,
    /// For `unknown`: the solver's `:reason-unknown`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason_unknown: Option<String>,
    /// What capsci re-verified, in words, when `evidence` is `checked`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recheck: Option<String>,
    /// The backend's message, for `invalid_input` and `backend_error`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Where the message points, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<Location>,
    /// With `--backend all`: each backend's own answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backends: Option<Vec<SmtBackendReport>>,
}

/// One backend's answer within a multi-backend `SmtSolver.check`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SmtBackendReport {
    /// Which backend.
    pub backend: BackendIdentity,
    /// Its own status.
    pub status: SmtStatus,
    /// Its own result.
    pub result: SmtResult,
    /// Its resource usage.
    pub usage: Usage,
    /// How its process ended.
    pub exit: ExitReason,
    /// Its own artifacts.
    pub artifacts: ArtifactRefs,
}

/// Outcome of `OptimizationSolver.solve`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct OptOutcome {
    /// The method called (`solve`).
    pub method: Method,
    /// The typed status.
    pub status: OptStatus,
    /// The structured payload.
    pub result: OptResult,
}

/// `result` of `OptimizationSolver.solve`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct OptResult {
    /// Objective value of the returned solution.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub objective: Option<f64>,
    /// Primal value of each column, by name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub columns: Option<BTreeMap<String, f64>>,
    /// Dual value of each row, by name (LPs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duals: Option<BTreeMap<String, f64>>,
    /// Reduced cost of each column, by name (LPs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reduced_costs: Option<BTreeMap<String, f64>>,
    /// Best bound on the objective (MIPs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bound: Option<f64>,
    /// Relative gap between objective and bound (MIPs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gap: Option<f64>,
    /// Largest violation of a bound, row or integrality that capsci recomputed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_violation: Option<f64>,
    /// `verified` when capsci recomputed optimality (LP), `solver_claim` otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub optimality: Option<String>,
    /// Simplex/IPM iterations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iterations: Option<u64>,
    /// Branch-and-bound nodes (MIPs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nodes: Option<u64>,
    /// The backend's message, for `invalid_input` and `backend_error`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Where the message points, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<Location>,
}

/// Outcome of `ProofChecker.check` or `ProofChecker.goals`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ProofOutcome {
    /// The method called.
    pub method: Method,
    /// The typed status.
    pub status: ProofStatus,
    /// The structured payload.
    pub result: ProofResult,
}

/// One theorem's report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct TheoremReport {
    /// Fully qualified name.
    pub name: String,
    /// Whether the kernel checked it completely (no admitted part).
    pub checked: bool,
    /// The axioms it depends on.
    pub axioms: Vec<String>,
}

/// One checker error.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ProofError {
    /// File, relative to the project.
    pub file: String,
    /// Line, 1-based.
    pub line: u32,
    /// Column, 1-based.
    pub column: u32,
    /// The checker's message.
    pub message: String,
}

/// `result` of `ProofChecker.check` / `goals`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ProofResult {
    /// Per-theorem reports.
    #[serde(default)]
    pub theorems: Vec<TheoremReport>,
    /// Every axiom any theorem depends on.
    #[serde(default)]
    pub axioms: Vec<String>,
    /// Checker errors.
    #[serde(default)]
    pub errors: Vec<ProofError>,
    /// For `goals`: the open goals at the requested line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub goals: Option<Vec<String>>,
    /// What the independent re-check did, when `evidence` is `checked`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recheck: Option<String>,
    /// The policy's or backend's message, for `refused`, `invalid_input`, `backend_error`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}
