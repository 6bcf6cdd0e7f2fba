//! The command line of DESIGN.md, as clap types. Parsing only: `main.rs` dispatches.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

/// capsci: safe, audited, reproducible access to PARI/GP, SymPy, Z3, cvc5, HiGHS and Rocq.
#[derive(Debug, Parser)]
#[command(name = "capsci", version, about, propagate_version = true)]
pub struct Cli {
    /// Print exactly the result envelope (JSON) on stdout.
    #[arg(long, global = true)]
    pub json: bool,
    /// The store to use (default: an embedded store under the user's data directory).
    #[arg(long, global = true, env = "CAPSCI_STORE", value_name = "DIR")]
    pub store: Option<PathBuf>,
    /// Send the call to a running `capsci serve` at ADDR instead of running it here.
    #[arg(long, global = true, value_name = "ADDR")]
    pub connect: Option<String>,
    /// Print the job id and return at once; follow it with `capsci job wait ID`.
    #[arg(long, global = true)]
    pub detach: bool,
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// Every command of DESIGN.md.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// NumberTheory.eval: evaluate a GP expression with PARI/GP.
    Gp {
        /// The GP code (several statements allowed).
        expr: String,
        /// Wall-clock limit in seconds.
        #[arg(long, value_name = "S")]
        timeout: Option<f64>,
    },
    /// ComputerAlgebra: a SymPy operation on an expression.
    Cas(CasArgs),
    /// SmtSolver: check SMT-LIB 2 input with Z3 and/or cvc5.
    Smt {
        /// The SMT action.
        #[command(subcommand)]
        action: SmtAction,
    },
    /// OptimizationSolver: solve an LP/MIP/QP with HiGHS.
    Opt {
        /// The optimisation action.
        #[command(subcommand)]
        action: OptAction,
    },
    /// ProofChecker: check a Rocq (or Lean) proof, or show its goals.
    Proof {
        /// The proof action.
        #[command(subcommand)]
        action: ProofAction,
    },
    /// Jobs: list, show, wait for or cancel a job.
    Job {
        /// The job action.
        #[command(subcommand)]
        action: JobAction,
    },
    /// Artifacts: show an artifact's metadata or print its bytes.
    Artifact {
        /// The artifact action.
        #[command(subcommand)]
        action: ArtifactAction,
    },
    /// The provenance log: list records or verify the whole chain.
    Log {
        /// The log action.
        #[command(subcommand)]
        action: LogAction,
    },
    /// Rerun a recorded call from its provenance record and compare outputs.
    Replay {
        /// The record id.
        record: String,
    },
    /// List every backend with its version, closure, licence and caveats.
    Catalog,
    /// The main job: every backend through the service, then `log verify`.
    Demo,
    /// Benchmarks against calling each tool directly; with --conformance, public suites.
    Bench {
        /// Run the conformance suites found in DIR (SMT-LIB, Netlib).
        #[arg(long, value_name = "DIR")]
        conformance: Option<PathBuf>,
    },
    /// Serve MCP over stdio.
    Mcp {
        /// The grant this server holds (default: the `scientific-base` profile).
        #[arg(long, value_name = "FILE")]
        grant: Option<PathBuf>,
        /// A directory the proof tools may read projects from by `path` (never outside it).
        #[arg(long, value_name = "DIR")]
        workspace: Option<PathBuf>,
    },
    /// Bearer tokens for `serve --http` and Cap'n Proto over TCP: issue or revoke.
    Token {
        /// The token action.
        #[command(subcommand)]
        action: TokenAction,
    },
    /// Runs a queued job in this process (the background half of `--detach`).
    #[command(hide = true)]
    InternalRunJob {
        /// The job id.
        id: String,
    },
    /// Run the service: Cap'n Proto RPC and/or MCP over streamable HTTP.
    Serve {
        /// Cap'n Proto RPC address (unix:PATH or 127.0.0.1:PORT).
        #[arg(long, value_name = "ADDR")]
        capnp: Option<String>,
        /// MCP streamable-HTTP address (127.0.0.1:PORT).
        #[arg(long, value_name = "ADDR")]
        http: Option<String>,
        /// The grant of sessions on unix sockets (default: the `scientific-base` profile).
        #[arg(long, value_name = "FILE")]
        grant: Option<PathBuf>,
    },
}

/// The SymPy operations of DESIGN.md and issue 5.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
#[allow(missing_docs)] // each is the SymPy operation of the same name
pub enum CasOp {
    Simplify,
    Factor,
    Expand,
    Diff,
    Integrate,
    Solve,
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

/// `capsci cas OP EXPR ...`.
#[derive(Debug, Args)]
pub struct CasArgs {
    /// The operation.
    #[arg(value_enum)]
    pub op: CasOp,
    /// The expression; `[e1, e2]` is a system.
    #[arg(allow_hyphen_values = true)]
    pub expr: String,
    /// Variables, comma-separated.
    #[arg(long, value_name = "X[,Y..]", value_delimiter = ',')]
    pub var: Vec<String>,
    /// Point for limit and series.
    #[arg(long, value_name = "P", allow_hyphen_values = true)]
    pub at: Option<String>,
    /// Direction of a one-sided limit.
    #[arg(long, value_name = "+|-", allow_hyphen_values = true)]
    pub dir: Option<String>,
    /// Lower bound of a definite integral.
    #[arg(long, value_name = "A", allow_hyphen_values = true, requires = "to")]
    pub from: Option<String>,
    /// Upper bound of a definite integral.
    #[arg(long, value_name = "B", allow_hyphen_values = true, requires = "from")]
    pub to: Option<String>,
    /// Derivative order for diff; SymPy's n for series (O(x^N)).
    #[arg(long, value_name = "N")]
    pub order: Option<u32>,
    /// Digits for evalf.
    #[arg(long, value_name = "N")]
    pub digits: Option<u32>,
    /// Wall-clock limit in seconds.
    #[arg(long, value_name = "S")]
    pub timeout: Option<f64>,
}

/// SMT backends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SmtBackend {
    /// Z3.
    Z3,
    /// cvc5.
    Cvc5,
    /// Both side by side; a disagreement is `backend_error`.
    All,
    /// Both; the first definitive answer wins and the other is killed.
    Portfolio,
}

/// `capsci smt ...`.
#[derive(Debug, Subcommand)]
pub enum SmtAction {
    /// Check satisfiability of an SMT-LIB 2 file (`-` for stdin).
    Check {
        /// The SMT-LIB file, or `-`.
        file: PathBuf,
        /// Which solver(s).
        #[arg(long, value_enum, default_value = "z3")]
        backend: SmtBackend,
        /// Wall-clock limit in seconds.
        #[arg(long, value_name = "S")]
        timeout: Option<f64>,
        /// Random seed passed to the solver.
        #[arg(long, value_name = "N")]
        seed: Option<u64>,
    },
}

/// `capsci opt ...`.
#[derive(Debug, Subcommand)]
pub enum OptAction {
    /// Solve an MPS or CPLEX LP model.
    Solve {
        /// The model file (`.mps` or `.lp`).
        file: PathBuf,
        /// The solver.
        #[arg(long, default_value = "highs")]
        backend: String,
        /// Solver time limit in seconds.
        #[arg(long, value_name = "S")]
        time_limit: Option<f64>,
        /// Relative MIP gap at which to stop.
        #[arg(long, value_name = "G")]
        mip_gap: Option<f64>,
    },
}

/// Proof backends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ProofBackend {
    /// Rocq (Coq).
    Rocq,
    /// Lean 4, when a toolchain is present.
    Lean,
}

/// `capsci proof ...`.
#[derive(Debug, Subcommand)]
pub enum ProofAction {
    /// Check a `.v` file or a project directory.
    Check {
        /// The file or project directory.
        path: PathBuf,
        /// The proof assistant.
        #[arg(long, value_enum, default_value = "rocq")]
        backend: ProofBackend,
        /// Wall-clock limit in seconds.
        #[arg(long, value_name = "S")]
        timeout: Option<f64>,
        /// Challenge file: the statements the solution must prove exactly.
        #[arg(long, value_name = "FILE")]
        challenge: Option<PathBuf>,
        /// An axiom the proof may use (repeatable).
        #[arg(long, value_name = "NAME")]
        allow_axiom: Vec<String>,
    },
    /// The open goals at a line of a file.
    Goals {
        /// The `.v` file.
        file: PathBuf,
        /// The line, 1-based.
        #[arg(long, value_name = "N")]
        line: u32,
    },
}

/// `capsci job ...`.
#[derive(Debug, Subcommand)]
pub enum JobAction {
    /// List jobs.
    List,
    /// Show one job.
    Show {
        /// The job id.
        id: String,
    },
    /// Wait for a job to finish and print its envelope.
    Wait {
        /// The job id.
        id: String,
    },
    /// Cancel a job (its process tree is killed).
    Cancel {
        /// The job id.
        id: String,
    },
}

/// `capsci artifact ...`.
#[derive(Debug, Subcommand)]
pub enum ArtifactAction {
    /// Show an artifact's id, size and media type.
    Show {
        /// The artifact id (`blake3:<hex>`).
        id: String,
    },
    /// Write an artifact's bytes to stdout (verified against its id).
    Cat {
        /// The artifact id.
        id: String,
    },
}

/// `capsci log ...`.
#[derive(Debug, Subcommand)]
pub enum LogAction {
    /// List provenance records (`--json`: a JSON array of records).
    Show,
    /// Verify the whole hash chain and every artifact it names (exit 1 when damaged).
    Verify,
}

/// `capsci token ...`.
#[derive(Debug, Subcommand)]
pub enum TokenAction {
    /// Issue a token for a grant (printed once; only its hash is stored).
    Issue {
        /// The grant the token opens (default: the `scientific-base` profile).
        #[arg(long, value_name = "FILE")]
        grant: Option<PathBuf>,
        /// Who the token's calls are recorded for (`agent:NAME`, `user:NAME`).
        #[arg(long, value_name = "ID")]
        principal: String,
    },
    /// Revoke a token: no new session opens with it.
    Revoke {
        /// The token.
        token: String,
    },
}
