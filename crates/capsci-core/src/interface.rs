//! The interfaces of the `scientific-base` profile and their methods.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::fmt;

/// A capability interface of the proposal. A grant names interfaces and methods from here.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
pub enum Interface {
    /// PARI/GP evaluation.
    NumberTheory,
    /// SymPy symbolic manipulation.
    ComputerAlgebra,
    /// SMT-LIB solving with Z3 and cvc5.
    SmtSolver,
    /// LP/MIP/QP solving with HiGHS.
    OptimizationSolver,
    /// Kernel-checked proofs (Rocq; Lean 4 when present).
    ProofChecker,
}

impl Interface {
    /// Every interface, in catalog order.
    pub const ALL: &'static [Interface] = &[
        Interface::NumberTheory,
        Interface::ComputerAlgebra,
        Interface::SmtSolver,
        Interface::OptimizationSolver,
        Interface::ProofChecker,
    ];

    /// The interface's name as the proposal spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Interface::NumberTheory => "NumberTheory",
            Interface::ComputerAlgebra => "ComputerAlgebra",
            Interface::SmtSolver => "SmtSolver",
            Interface::OptimizationSolver => "OptimizationSolver",
            Interface::ProofChecker => "ProofChecker",
        }
    }

    /// The interface's name in snake case, as MCP tool names use it (`smt_solver`).
    pub fn snake_name(self) -> &'static str {
        match self {
            Interface::NumberTheory => "number_theory",
            Interface::ComputerAlgebra => "computer_algebra",
            Interface::SmtSolver => "smt_solver",
            Interface::OptimizationSolver => "optimization_solver",
            Interface::ProofChecker => "proof_checker",
        }
    }

    /// The methods this interface offers.
    pub fn methods(self) -> &'static [Method] {
        match self {
            Interface::NumberTheory => &[Method::Eval],
            Interface::ComputerAlgebra => CAS_METHODS,
            Interface::SmtSolver => &[Method::Check],
            Interface::OptimizationSolver => &[Method::Solve],
            Interface::ProofChecker => &[Method::Check, Method::Goals],
        }
    }
}

impl fmt::Display for Interface {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

const CAS_METHODS: &[Method] = &[
    Method::Simplify,
    Method::Factor,
    Method::Expand,
    Method::Diff,
    Method::Integrate,
    Method::Solve,
    Method::Limit,
    Method::Series,
    Method::Evalf,
    Method::Det,
    Method::Inverse,
    Method::Rank,
    Method::Nullspace,
    Method::Rref,
    Method::Eigenvals,
    Method::Gcd,
    Method::Div,
    Method::Resultant,
    Method::Groebner,
];

/// A method of an interface. The wire word is snake case (`check`, `eigenvals`).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
#[allow(missing_docs)] // each variant is the method of the same name
pub enum Method {
    Eval,
    Check,
    Goals,
    Solve,
    Simplify,
    Factor,
    Expand,
    Diff,
    Integrate,
    Limit,
    Series,
    Evalf,
    Det,
    Inverse,
    Rank,
    Nullspace,
    Rref,
    Eigenvals,
    Gcd,
    Div,
    Resultant,
    Groebner,
}

impl Method {
    /// The method's wire word.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Eval => "eval",
            Method::Check => "check",
            Method::Goals => "goals",
            Method::Solve => "solve",
            Method::Simplify => "simplify",
            Method::Factor => "factor",
            Method::Expand => "expand",
            Method::Diff => "diff",
            Method::Integrate => "integrate",
            Method::Limit => "limit",
            Method::Series => "series",
            Method::Evalf => "evalf",
            Method::Det => "det",
            Method::Inverse => "inverse",
            Method::Rank => "rank",
            Method::Nullspace => "nullspace",
            Method::Rref => "rref",
            Method::Eigenvals => "eigenvals",
            Method::Gcd => "gcd",
            Method::Div => "div",
            Method::Resultant => "resultant",
            Method::Groebner => "groebner",
        }
    }

    /// Parses a wire word.
    pub fn parse(word: &str) -> Option<Self> {
        ALL_METHODS.iter().copied().find(|m| m.as_str() == word)
    }
}

const ALL_METHODS: &[Method] = &[
    Method::Eval,
    Method::Check,
    Method::Goals,
    Method::Solve,
    Method::Simplify,
    Method::Factor,
    Method::Expand,
    Method::Diff,
    Method::Integrate,
    Method::Limit,
    Method::Series,
    Method::Evalf,
    Method::Det,
    Method::Inverse,
    Method::Rank,
    Method::Nullspace,
    Method::Rref,
    Method::Eigenvals,
    Method::Gcd,
    Method::Div,
    Method::Resultant,
    Method::Groebner,
];

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_method_word_parses_back() {
        for interface in Interface::ALL {
            for method in interface.methods() {
                assert_eq!(Method::parse(method.as_str()), Some(*method));
            }
        }
    }
}
