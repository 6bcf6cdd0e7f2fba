//! What a caller asks for: one typed request per method, in the command line's words
//! (`expr`, `var`, `smtlib`, `mps`, `lp`, `backend`, `timeout_s`, `seed`). The CLI, MCP and
//! Cap'n Proto front ends all build these; MCP's tool input schemas are generated from them.

use crate::interface::{Interface, Method};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Arguments of `NumberTheory.eval`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GpRequest {
    /// GP code; several statements allowed, the last value is the result.
    pub expr: String,
    /// Wall-clock limit, seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_s: Option<f64>,
}

/// Arguments of a `ComputerAlgebra` method.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CasRequest {
    /// The SymPy operation (`simplify`, `diff`, `solve`, `det`, ...).
    pub op: Method,
    /// The expression; `[e1, e2]` is a system or a list, `[[1,2],[3,4]]` a matrix.
    pub expr: String,
    /// Variables.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub var: Vec<String>,
    /// Point for `limit` and `series`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<String>,
    /// `+` or `-` for a one-sided limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dir: Option<String>,
    /// Lower bound of a definite integral.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// Upper bound of a definite integral.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    /// Derivative order for `diff`; SymPy's n for `series`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order: Option<u32>,
    /// Digits for `evalf`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digits: Option<u32>,
    /// Wall-clock limit, seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_s: Option<f64>,
}

/// Which SMT solver(s) answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SmtBackendChoice {
    /// Z3.
    #[default]
    Z3,
    /// cvc5.
    Cvc5,
    /// Both; a sat/unsat disagreement is `backend_error`.
    All,
    /// Both; the first definitive answer wins, the other is killed.
    Portfolio,
}

/// Arguments of `SmtSolver.check`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SmtRequest {
    /// SMT-LIB 2 text.
    pub smtlib: String,
    /// Which solver(s).
    #[serde(default)]
    pub backend: SmtBackendChoice,
    /// Wall-clock limit, seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_s: Option<f64>,
    /// Random seed given to the solver.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
}

/// Arguments of `OptimizationSolver.solve`. Exactly one of `mps` and `lp` is given.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OptRequest {
    /// The model as MPS text (free or fixed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mps: Option<String>,
    /// The model as CPLEX LP text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lp: Option<String>,
    /// Solver time limit, seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_limit_s: Option<f64>,
    /// Relative MIP gap at which to stop.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mip_gap: Option<f64>,
    /// Solver threads.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threads: Option<u32>,
    /// Random seed given to the solver.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    /// Presolve on (default) or off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub presolve: Option<bool>,
}

/// One file of a proof project, by its path relative to the project root.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProjectFile {
    /// Relative path (`theories/A.v`).
    pub path: String,
    /// UTF-8 content.
    pub content: String,
}

/// Which proof assistant checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ProofBackendChoice {
    /// Rocq (Coq).
    #[default]
    Rocq,
    /// Lean 4, when a toolchain is present.
    Lean,
}

/// Arguments of `ProofChecker.check`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProofRequest {
    /// The project's files (a single `.v` file is a project of one).
    pub files: Vec<ProjectFile>,
    /// Which proof assistant.
    #[serde(default)]
    pub backend: ProofBackendChoice,
    /// Challenge files: statements the solution must prove exactly.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub challenge: Vec<ProjectFile>,
    /// Axioms the proof may use.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allow_axiom: Vec<String>,
    /// Wall-clock limit, seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_s: Option<f64>,
}

/// Arguments of `ProofChecker.goals`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GoalsRequest {
    /// The file.
    pub file: ProjectFile,
    /// The line (1-based) after which to show the goals.
    pub line: u32,
    /// Wall-clock limit, seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_s: Option<f64>,
}

/// One call of one method.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "call", rename_all = "snake_case")]
pub enum CallRequest {
    /// `NumberTheory.eval`.
    NumberTheoryEval(GpRequest),
    /// `ComputerAlgebra.<op>`.
    ComputerAlgebra(CasRequest),
    /// `SmtSolver.check`.
    SmtCheck(SmtRequest),
    /// `OptimizationSolver.solve`.
    OptSolve(OptRequest),
    /// `ProofChecker.check`.
    ProofCheck(ProofRequest),
    /// `ProofChecker.goals`.
    ProofGoals(GoalsRequest),
}

impl CallRequest {
    /// The interface this request goes to.
    pub fn interface(&self) -> Interface {
        match self {
            CallRequest::NumberTheoryEval(_) => Interface::NumberTheory,
            CallRequest::ComputerAlgebra(_) => Interface::ComputerAlgebra,
            CallRequest::SmtCheck(_) => Interface::SmtSolver,
            CallRequest::OptSolve(_) => Interface::OptimizationSolver,
            CallRequest::ProofCheck(_) | CallRequest::ProofGoals(_) => Interface::ProofChecker,
        }
    }

    /// The method this request calls.
    pub fn method(&self) -> Method {
        match self {
            CallRequest::NumberTheoryEval(_) => Method::Eval,
            CallRequest::ComputerAlgebra(r) => r.op,
            CallRequest::SmtCheck(_) => Method::Check,
            CallRequest::OptSolve(_) => Method::Solve,
            CallRequest::ProofCheck(_) => Method::Check,
            CallRequest::ProofGoals(_) => Method::Goals,
        }
    }

    /// The wall-clock limit the caller asked for, if any.
    pub fn timeout_s(&self) -> Option<f64> {
        match self {
            CallRequest::NumberTheoryEval(r) => r.timeout_s,
            CallRequest::ComputerAlgebra(r) => r.timeout_s,
            CallRequest::SmtCheck(r) => r.timeout_s,
            CallRequest::OptSolve(r) => r.time_limit_s,
            CallRequest::ProofCheck(r) => r.timeout_s,
            CallRequest::ProofGoals(r) => r.timeout_s,
        }
    }

    /// The seed the caller gave, if any.
    pub fn seed(&self) -> Option<u64> {
        match self {
            CallRequest::SmtCheck(r) => r.seed,
            CallRequest::OptSolve(r) => r.seed,
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_names_its_interface_and_method() {
        let request: CallRequest = serde_json::from_str(
            r#"{"call":"computer_algebra","op":"diff","expr":"sin(x)*x","var":["x"]}"#,
        )
        .expect("parse");
        assert_eq!(request.interface(), Interface::ComputerAlgebra);
        assert_eq!(request.method(), Method::Diff);
    }

    #[test]
    fn unknown_arguments_are_refused_not_ignored() {
        let parsed = serde_json::from_str::<CallRequest>(
            r#"{"call":"smt_check","smtlib":"(check-sat)","tiemout_s":3}"#,
        );
        assert!(
            parsed.is_err(),
            "a misspelt limit must not be silently dropped"
        );
    }
}
