//! Status vocabularies, one enum per method family (DESIGN.md, "Status vocabularies").
//!
//! Every enum carries `cancelled` and `interrupted`, which any method can end in as a job.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Declares a status enum with its snake_case wire words, the list of all variants, and a
/// `Display` that prints the wire word.
macro_rules! status_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident => $word:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
        #[serde(rename_all = "snake_case")]
        pub enum $name {
            $($(#[$vmeta])* $variant),+
        }

        impl $name {
            /// Every status of this vocabulary, in the order DESIGN.md lists them.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The status as the one word that goes on the wire.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $word),+
                }
            }

            /// Parses the wire word; `None` for any other text.
            pub fn parse(word: &str) -> Option<Self> {
                match word {
                    $($word => Some($name::$variant),)+
                    _ => None,
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

status_enum! {
    /// Outcome of `SmtSolver.check`.
    SmtStatus {
        /// The assertions are satisfiable; a model is in the result.
        Sat => "sat",
        /// The assertions are unsatisfiable; a core is in the result when names were given.
        Unsat => "unsat",
        /// The solver gave up without a verdict; `reason_unknown` says why.
        Unknown => "unknown",
        /// The wall or CPU limit ended the call, however the solver phrased it.
        Timeout => "timeout",
        /// A memory, process or output limit ended the call.
        ResourceExceeded => "resource_exceeded",
        /// The SMT-LIB input is malformed; the solver's message and line are in the result.
        InvalidInput => "invalid_input",
        /// The backend failed or disagreed with another backend.
        BackendError => "backend_error",
        /// A caller cancelled the job.
        Cancelled => "cancelled",
        /// capsci stopped while the job ran.
        Interrupted => "interrupted",
    }
}

status_enum! {
    /// Outcome of `OptimizationSolver.solve`.
    OptStatus {
        /// A proven optimum.
        Optimal => "optimal",
        /// A feasible incumbent, not proven optimal (e.g. a MIP stopped by its time limit).
        Feasible => "feasible",
        /// The model has no feasible point.
        Infeasible => "infeasible",
        /// The objective is unbounded.
        Unbounded => "unbounded",
        /// The solver proved one of the two but cannot tell which.
        InfeasibleOrUnbounded => "infeasible_or_unbounded",
        /// The solver stopped without a verdict.
        Unknown => "unknown",
        /// The time limit ended the call without an incumbent.
        Timeout => "timeout",
        /// A memory, process or output limit ended the call.
        ResourceExceeded => "resource_exceeded",
        /// The MPS or LP input is malformed.
        InvalidInput => "invalid_input",
        /// The backend failed.
        BackendError => "backend_error",
        /// A caller cancelled the job.
        Cancelled => "cancelled",
        /// capsci stopped while the job ran.
        Interrupted => "interrupted",
    }
}

status_enum! {
    /// Outcome of `NumberTheory.eval` and every `ComputerAlgebra` method.
    EvalStatus {
        /// The expression was evaluated.
        Ok => "ok",
        /// The mathematics failed on well-formed input (e.g. `1/0`).
        Error => "error",
        /// Input policy refused the input (e.g. `system()`); nothing ran.
        Refused => "refused",
        /// The wall or CPU limit ended the call.
        Timeout => "timeout",
        /// A memory, process, stack or output limit ended the call.
        ResourceExceeded => "resource_exceeded",
        /// The input does not parse.
        InvalidInput => "invalid_input",
        /// The backend failed.
        BackendError => "backend_error",
        /// A caller cancelled the job.
        Cancelled => "cancelled",
        /// capsci stopped while the job ran.
        Interrupted => "interrupted",
    }
}

status_enum! {
    /// Outcome of `ProofChecker.check`.
    ProofStatus {
        /// Every theorem was checked by the kernel, with no axioms beyond the allow-list.
        Accepted => "accepted",
        /// Every theorem was checked, but some depend on axioms outside the allow-list.
        AcceptedWithAxioms => "accepted_with_axioms",
        /// Some proof is `Admitted`/`sorry`, directly or through a lemma it uses.
        Incomplete => "incomplete",
        /// The checker found errors; each is in `errors` with file, line and column.
        Rejected => "rejected",
        /// Input policy refused the project (e.g. `Load` outside it); nothing ran.
        Refused => "refused",
        /// The wall or CPU limit ended the check.
        Timeout => "timeout",
        /// A memory, process or output limit ended the check.
        ResourceExceeded => "resource_exceeded",
        /// The input is not a proof project capsci can check.
        InvalidInput => "invalid_input",
        /// The backend failed, or the independent re-check disagreed with the first.
        BackendError => "backend_error",
        /// A caller cancelled the job.
        Cancelled => "cancelled",
        /// capsci stopped while the job ran.
        Interrupted => "interrupted",
    }
}

status_enum! {
    /// The life cycle of a job, independent of the method's own status.
    JobState {
        /// Accepted, waiting for a worker.
        Queued => "queued",
        /// Running in a sandbox.
        Running => "running",
        /// Finished with an envelope (whatever the method's status).
        Succeeded => "succeeded",
        /// Finished without an envelope (capsci itself failed).
        Failed => "failed",
        /// A caller cancelled it.
        Cancelled => "cancelled",
        /// capsci stopped while it ran; found so on restart.
        Interrupted => "interrupted",
    }
}

impl JobState {
    /// Whether the job can still change state.
    pub fn is_final(self) -> bool {
        !matches!(self, JobState::Queued | JobState::Running)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_words_parse_back() {
        for s in SmtStatus::ALL {
            assert_eq!(SmtStatus::parse(s.as_str()), Some(*s));
            let json = serde_json::to_string(s).expect("serialise");
            assert_eq!(json, format!("\"{}\"", s.as_str()));
        }
        for s in OptStatus::ALL {
            assert_eq!(OptStatus::parse(s.as_str()), Some(*s));
        }
        assert_eq!(SmtStatus::parse("UNSAT"), None);
    }

    #[test]
    fn unknown_is_not_unsat_and_timeout_is_not_infeasible() {
        assert_ne!(SmtStatus::Unknown.as_str(), SmtStatus::Unsat.as_str());
        assert_ne!(OptStatus::Timeout.as_str(), OptStatus::Infeasible.as_str());
    }
}
