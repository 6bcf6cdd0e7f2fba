//! OptimizationSolver.solve through the real bwrap sandbox with the real HiGHS worker (no mocks).
//!
//! The worker binary must be built first (`cargo build --workspace`, or
//! `cargo build -p capsci-highs-worker`); it is found next to the test binary's directory.

#![allow(clippy::unwrap_used)]

use capsci_backends::opt::{
    solve, ModelFormat, OptAnswer, OptOptions, SandboxWorkerRunner, WorkerSetup,
};
use capsci_core::{Evidence, OptStatus};
use capsci_sandbox::{Bind, BwrapSandbox, CancelToken};
use capsci_store::{ClosureSpec, Closures};
use std::path::PathBuf;
use std::sync::OnceLock;

struct Env {
    sandbox: BwrapSandbox,
    setup: WorkerSetup,
}

fn worker_path() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().and_then(|d| d.parent()).unwrap();
    let path = dir.join("capsci-highs-worker");
    assert!(
        path.is_file(),
        "{} is missing: build it first with `cargo build -p capsci-highs-worker`",
        path.display()
    );
    path
}

fn env() -> &'static Env {
    static ENV: OnceLock<Env> = OnceLock::new();
    ENV.get_or_init(|| {
        let sandbox = BwrapSandbox::detect().expect("bwrap sandbox");
        let dir = std::env::temp_dir().join(format!("capsci-opt-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let closures = Closures::open(&dir.join("store.db")).expect("closure db");
        let program = worker_path();
        let spec = ClosureSpec {
            name: "highs".into(),
            executables: vec![program.clone()],
            ..ClosureSpec::default()
        };
        let (closure, _) = closures.compute(&spec).expect("closure");
        let binds = closure.bind_paths().into_iter().map(Bind::same).collect();
        Env {
            sandbox,
            setup: WorkerSetup { program, binds },
        }
    })
}

fn run(model: &str, format: ModelFormat, options: OptOptions) -> OptAnswer {
    let env = env();
    solve(
        &SandboxWorkerRunner(&env.sandbox),
        &env.setup,
        model.as_bytes(),
        format,
        &options,
        &CancelToken::new(),
    )
}

fn lp(model: &str) -> OptAnswer {
    run(
        model,
        ModelFormat::Lp,
        OptOptions {
            time_limit_s: 30.0,
            ..OptOptions::default()
        },
    )
}

fn close(a: f64, b: f64, rel: f64) -> bool {
    (a - b).abs() <= rel * (1.0 + b.abs())
}

#[test]
fn netlib_lps_reach_their_published_optimum_with_verified_optimality() {
    let dir = PathBuf::from("/work/shared/data/netlib");
    let expected: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("expected.json")).unwrap()).unwrap();
    let mut failures = Vec::new();
    let mut verified = 0;
    let entries = expected.as_array().unwrap();
    for entry in entries {
        let file = entry["file"].as_str().unwrap();
        let want = entry["objective"].as_f64().unwrap();
        let text = std::fs::read_to_string(dir.join(file)).unwrap();
        let answer = run(
            &text,
            ModelFormat::Mps,
            OptOptions {
                time_limit_s: 60.0,
                ..OptOptions::default()
            },
        );
        let got = answer.result.objective.unwrap_or(f64::NAN);
        if answer.status != OptStatus::Optimal || !close(got, want, 1e-6) {
            failures.push(format!(
                "{file}: {} objective {got} (published {want})",
                answer.status
            ));
        }
        if answer.evidence == Evidence::Checked
            && answer.result.optimality.as_deref() == Some("verified")
        {
            verified += 1;
        } else {
            eprintln!("{file}: not verified: {}", answer.recheck);
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    eprintln!(
        "netlib: {verified} of {} optimal solutions verified by capsci",
        entries.len()
    );
    assert!(
        verified * 10 >= entries.len() * 8,
        "only {verified} verified"
    );
}

#[test]
fn afiro_reports_columns_duals_and_iterations() {
    let text = std::fs::read_to_string("/work/shared/data/netlib/afiro.mps").unwrap();
    let answer = run(&text, ModelFormat::Mps, OptOptions::default());
    assert_eq!(answer.status, OptStatus::Optimal);
    assert_eq!(answer.evidence, Evidence::Checked, "{}", answer.recheck);
    assert_eq!(answer.result.optimality.as_deref(), Some("verified"));
    assert!(close(answer.result.objective.unwrap(), -464.75314286, 1e-8));
    let columns = answer.result.columns.as_ref().unwrap();
    assert_eq!(columns.len(), 32);
    assert!(close(columns["X01"], 80.0, 1e-9));
    assert_eq!(answer.result.duals.as_ref().unwrap().len(), 27);
    assert!(answer
        .result
        .reduced_costs
        .as_ref()
        .unwrap()
        .contains_key("X39"));
    assert!(answer.result.iterations.unwrap() > 0);
    assert!(answer.result.max_violation.unwrap() <= 1e-6);
    let outcome = answer.outcome.as_ref().expect("the worker ran");
    assert_eq!(
        outcome.sandbox.kind, "bwrap",
        "HiGHS ran inside the sandbox"
    );
}

const KNAPSACK: &str = "Maximize\n obj: 10 x1 + 13 x2 + 7 x3 + 8 x4 + 4 x5\nSubject To\n cap: 3 x1 + 4 x2 + 2 x3 + 3 x4 + 1 x5 <= 7\nBinary\n x1 x2 x3 x4 x5\nEnd\n";

#[test]
fn knapsack_mip_is_optimal_with_feasibility_checked_and_optimality_claimed() {
    let answer = lp(KNAPSACK);
    assert_eq!(answer.status, OptStatus::Optimal, "{:?}", answer.result);
    assert_eq!(answer.result.objective, Some(24.0));
    let x = answer.result.columns.as_ref().unwrap();
    assert_eq!((x["x2"], x["x3"], x["x5"]), (1.0, 1.0, 1.0));
    assert_eq!(answer.evidence, Evidence::Checked, "{}", answer.recheck);
    assert_eq!(answer.result.optimality.as_deref(), Some("solver_claim"));
    assert!(answer.recheck.contains("integrality"));
    assert!(answer.result.duals.is_none());
}

#[test]
fn assignment_mip_finds_the_cheapest_matching() {
    // Costs: w1: 9 2 7, w2: 6 4 3, w3: 5 8 1 -> best 2 + 6 + 1 = 9 (w1-j2, w2-j1, w3-j3).
    let mut text = String::from("Minimize\n obj: ");
    let cost = [[9, 2, 7], [6, 4, 3], [5, 8, 1]];
    let terms: Vec<String> = (0..3)
        .flat_map(|i| (0..3).map(move |j| (i, j)))
        .map(|(i, j)| format!("{} a{i}{j}", cost[i][j]))
        .collect();
    text.push_str(&terms.join(" + "));
    text.push_str("\nSubject To\n");
    for i in 0..3 {
        text.push_str(&format!(" w{i}: a{i}0 + a{i}1 + a{i}2 = 1\n"));
        text.push_str(&format!(" j{i}: a0{i} + a1{i} + a2{i} = 1\n"));
    }
    text.push_str("Binary\n");
    for i in 0..3 {
        for j in 0..3 {
            text.push_str(&format!(" a{i}{j}"));
        }
    }
    text.push_str("\nEnd\n");
    let answer = lp(&text);
    assert_eq!(answer.status, OptStatus::Optimal);
    assert_eq!(answer.result.objective, Some(9.0));
    let x = answer.result.columns.as_ref().unwrap();
    assert_eq!((x["a01"], x["a10"], x["a22"]), (1.0, 1.0, 1.0));
    assert_eq!(answer.evidence, Evidence::Checked);
}

#[test]
fn infeasible_and_unbounded_models_are_told_apart() {
    let infeasible = "Minimize\n obj: x + y\nSubject To\n lo: x + y >= 5\n hi: x + y <= 3\nEnd\n";
    let answer = lp(infeasible);
    assert_eq!(answer.status, OptStatus::Infeasible);
    assert_eq!(answer.evidence, Evidence::Advisory);
    assert!(answer.result.columns.is_none());
    let unbounded = "Maximize\n obj: x\nSubject To\n c: x - y <= 1\nEnd\n";
    let answer = run(
        unbounded,
        ModelFormat::Lp,
        OptOptions {
            presolve: Some(false),
            ..OptOptions::default()
        },
    );
    assert!(
        matches!(
            answer.status,
            OptStatus::Unbounded | OptStatus::InfeasibleOrUnbounded
        ),
        "{:?}",
        answer.status
    );
    assert_eq!(answer.evidence, Evidence::Advisory);
}

/// A market-split style MIP (hard for branch and bound) stopped by a 1 s time limit.
fn market_split() -> String {
    let (m, n) = (4, 36);
    let mut seed: u64 = 12345;
    let mut next = || {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (seed >> 33) % 100
    };
    let a: Vec<Vec<u64>> = (0..m).map(|_| (0..n).map(|_| next()).collect()).collect();
    let mut text = String::from("Minimize\n obj: ");
    let slacks: Vec<String> = (0..m).map(|i| format!("sp{i} + sm{i}")).collect();
    text.push_str(&slacks.join(" + "));
    text.push_str("\nSubject To\n");
    for (i, row) in a.iter().enumerate() {
        let rhs: u64 = row.iter().sum::<u64>() / 2;
        let terms: Vec<String> = row
            .iter()
            .enumerate()
            .map(|(j, v)| format!("{v} x{j}"))
            .collect();
        text.push_str(&format!(
            " r{i}: {} + sp{i} - sm{i} = {rhs}\n",
            terms.join(" + ")
        ));
    }
    text.push_str("Binary\n");
    for j in 0..n {
        text.push_str(&format!(" x{j}"));
    }
    text.push_str("\nEnd\n");
    text
}

#[test]
fn mip_stopped_by_its_time_limit_is_feasible_with_bound_and_gap() {
    let answer = run(
        &market_split(),
        ModelFormat::Lp,
        OptOptions {
            time_limit_s: 1.0,
            ..OptOptions::default()
        },
    );
    assert_eq!(
        answer.status,
        OptStatus::Feasible,
        "{:?} {}",
        answer.result,
        answer.recheck
    );
    let objective = answer.result.objective.unwrap();
    let bound = answer.result.bound.unwrap();
    assert!(bound < objective, "bound {bound} objective {objective}");
    assert!(answer.result.gap.unwrap() > 0.0);
    assert_eq!(answer.evidence, Evidence::Checked, "{}", answer.recheck);
    assert_eq!(answer.result.optimality.as_deref(), Some("solver_claim"));
    assert!(answer.result.nodes.is_some());
}

#[test]
fn convex_qp_is_solved_and_verified() {
    // min x^2 + y^2 - x - y  s.t.  x + y >= 2  ->  x = y = 1, objective 0.
    let text =
        "Minimize\n obj: - x - y + [ 2 x ^ 2 + 2 y ^ 2 ] / 2\nSubject To\n c: x + y >= 2\nEnd\n";
    let answer = lp(text);
    assert_eq!(answer.status, OptStatus::Optimal, "{:?}", answer.result);
    let x = answer.result.columns.as_ref().unwrap();
    assert!(
        close(x["x"], 1.0, 1e-6) && close(x["y"], 1.0, 1e-6),
        "{x:?}"
    );
    assert!(answer.result.objective.unwrap().abs() < 1e-6);
    assert_eq!(answer.evidence, Evidence::Checked, "{}", answer.recheck);
    assert_eq!(answer.result.optimality.as_deref(), Some("verified"));
}

#[test]
fn maximisation_lp_duals_verify_with_flipped_signs() {
    let text = "Maximize\n obj: 3 x + 2 y\nSubject To\n a: x + y <= 4\n b: x + 3 y <= 6\nBounds\n x <= 3\nEnd\n";
    let answer = lp(text);
    assert_eq!(answer.status, OptStatus::Optimal);
    assert_eq!(answer.result.objective, Some(11.0));
    assert_eq!(answer.evidence, Evidence::Checked, "{}", answer.recheck);
    assert_eq!(answer.result.optimality.as_deref(), Some("verified"));
}

#[test]
fn malformed_mps_is_invalid_input_with_highs_message_and_line() {
    let text = "NAME bad\nROWS\n N obj\nfoo bar baz\nCOLUMNS\nENDATA\n";
    let answer = run(text, ModelFormat::Mps, OptOptions::default());
    assert_eq!(
        answer.status,
        OptStatus::InvalidInput,
        "{:?}",
        answer.result
    );
    let message = answer.result.message.unwrap();
    assert!(message.contains("ERROR"), "{message}");
    assert_eq!(answer.result.location.map(|l| l.line), Some(4));
}

#[test]
fn malformed_lp_is_invalid_input_with_line_and_column() {
    let text = "Minimize\n obj: x +\nSubject To\n c: x >= 1\nEnd\n";
    let answer = lp(text);
    assert_eq!(
        answer.status,
        OptStatus::InvalidInput,
        "{:?}",
        answer.result
    );
    assert!(answer.result.message.unwrap().contains("expected a term"));
    assert_eq!(
        answer.result.location.map(|l| (l.line, l.column)),
        Some((3, Some(1)))
    );
}

#[test]
fn free_mps_with_long_names_is_read() {
    let text = "NAME long_names_model\nROWS\n N  total_cost\n L  capacity_limit_row\nCOLUMNS\n production_of_widgets  total_cost  -3  capacity_limit_row  1\n production_of_gadgets  total_cost  -2  capacity_limit_row  1\nRHS\n rhs  capacity_limit_row  4\nBOUNDS\n UP bnd  production_of_widgets  3\nENDATA\n";
    let answer = run(text, ModelFormat::Mps, OptOptions::default());
    assert_eq!(answer.status, OptStatus::Optimal);
    assert_eq!(answer.result.objective, Some(-11.0));
    let x = answer.result.columns.as_ref().unwrap();
    assert_eq!(
        (x["production_of_widgets"], x["production_of_gadgets"]),
        (3.0, 1.0)
    );
    assert_eq!(answer.result.optimality.as_deref(), Some("verified"));
}

#[test]
fn bad_options_are_refused_before_running() {
    let answer = run(
        KNAPSACK,
        ModelFormat::Lp,
        OptOptions {
            threads: 0,
            ..OptOptions::default()
        },
    );
    assert_eq!(answer.status, OptStatus::InvalidInput);
    assert!(answer.outcome.is_none());
}
