//! SMT and HiGHS through capsci versus the bare tools.
//!
//! `cargo bench -p capsci-backends --bench smt_opt` (needs `capsci-jail` and
//! `capsci-highs-worker` built: `cargo build --release --workspace`, or the debug builds).
//!
//! - SMT: `CAPSCI_BENCH_SMT_N` (default 1000) small QF_LIA problems through `smt::check` with
//!   Z3 hot spares (two pools of 3) and 2 client threads (each sat answer includes capsci's model re-check run),
//!   versus a shell loop of `z3 FILE` over the same files. Reports median latency and throughput.
//! - HiGHS: two market-split MIPs (about 1 s and 5 s) through `opt::solve` (worker in the
//!   sandbox, re-check included) versus the same instance solved natively by the worker binary
//!   (the `highs` crate in its own process, no sandbox, no capsci): its process wall time and the
//!   in-process HiGHS solve time it reports. 5 runs each, alternating; wall and CPU overheads.
//!   (capsci-backends does not link HiGHS, so the baseline runs the worker binary.)

#![allow(clippy::unwrap_used, missing_docs)]

use capsci_backends::opt::{self, ModelFormat, OptOptions, SandboxWorkerRunner, WorkerSetup};
use capsci_backends::smt::{
    self, BackendChoice, SandboxRunner, SmtBackend, SmtOptions, SmtSetups, SolverSetup,
};
use capsci_sandbox::{Bind, BwrapSandbox, CancelToken, SparePool};
use capsci_store::{ClosureSpec, Closures};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn binds(closures: &Closures, name: &str, program: &Path) -> (Vec<Bind>, String) {
    let spec = ClosureSpec {
        name: name.into(),
        executables: vec![program.to_path_buf()],
        ..ClosureSpec::default()
    };
    let (closure, _) = closures.compute(&spec).unwrap();
    (
        closure.bind_paths().into_iter().map(Bind::same).collect(),
        closure.id,
    )
}

/// A small QF_LIA problem: `a x + b y = c` with box bounds; about half are unsat.
fn problem(i: usize) -> String {
    let a = 3 + (i % 7) as i64;
    let b = 5 + (i % 11) as i64;
    let c = 17 + (i * 13 % 97) as i64;
    let k = 2 + (i % 9) as i64;
    format!(
        "(set-logic QF_LIA)\n(declare-const x Int)\n(declare-const y Int)\n(assert (= (+ (* {a} x) (* {b} y)) {c}))\n(assert (and (>= x 0) (<= x {k}) (>= y 0) (<= y {k})))\n(check-sat)\n"
    )
}

fn smt_bench(sandbox: Arc<BwrapSandbox>, closures: &Closures, dir: &Path) {
    let n: usize = std::env::var("CAPSCI_BENCH_SMT_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let problems: Vec<String> = (0..n).map(problem).collect();
    let files = dir.join("smt");
    std::fs::create_dir_all(&files).unwrap();
    for (i, p) in problems.iter().enumerate() {
        std::fs::write(files.join(format!("p{i:05}.smt2")), p).unwrap();
    }

    // Baseline 1: the shell loop, one z3 process per file, sequential.
    let start = Instant::now();
    let status = std::process::Command::new("/bin/sh")
        .arg("-c")
        .arg(format!(
            "for f in {}/*.smt2; do /usr/bin/z3 \"$f\"; done > /dev/null",
            files.display()
        ))
        .status()
        .unwrap();
    assert!(status.success());
    let shell_s = start.elapsed().as_secs_f64();
    // Baseline 2: per-file latency of `z3 FILE` (sample of 200).
    let mut shell_lat = Vec::new();
    for i in 0..n.min(200) {
        let t = Instant::now();
        std::process::Command::new("/usr/bin/z3")
            .arg(files.join(format!("p{i:05}.smt2")))
            .output()
            .unwrap();
        shell_lat.push(t.elapsed().as_secs_f64() * 1000.0);
    }

    // capsci: hot spares and 2 client threads.
    let options = SmtOptions {
        timeout_ms: 10_000,
        memory_mb: 1024,
        seed: 0,
    };
    let (z3_binds, z3_id) = binds(closures, "z3", &SmtBackend::Z3.program());
    let (cvc5_binds, cvc5_id) = binds(closures, "cvc5", &SmtBackend::Cvc5.program());
    let setups = SmtSetups {
        z3: SolverSetup {
            identity: capsci_core::BackendIdentity {
                name: "z3".into(),
                version: String::new(),
                closure: z3_id,
            },
            binds: z3_binds.clone(),
        },
        cvc5: SolverSetup {
            identity: capsci_core::BackendIdentity {
                name: "cvc5".into(),
                version: String::new(),
                closure: cvc5_id,
            },
            binds: cvc5_binds,
        },
    };
    let policy = smt::solver_policy(SmtBackend::Z3, &z3_binds, &options);
    // Two pools of 3: each pool refills from its own thread.
    let pools: Vec<SparePool> = (0..2)
        .map(|_| {
            SparePool::new(
                sandbox.clone(),
                policy.clone(),
                smt::spare_template(SmtBackend::Z3),
                3,
            )
            .unwrap()
        })
        .collect();
    for pool in &pools {
        pool.wait_ready(3, Duration::from_secs(30));
    }
    let runner = SandboxRunner {
        sandbox: sandbox.as_ref(),
        spares: pools.iter().map(|p| (SmtBackend::Z3, p)).collect(),
    };
    let next = AtomicUsize::new(0);
    let latencies = Mutex::new(Vec::new());
    let statuses = Mutex::new(std::collections::BTreeMap::<String, usize>::new());
    let start = Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..2 {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                if i >= n {
                    break;
                }
                let t = Instant::now();
                let answer = smt::check(
                    &runner,
                    &setups,
                    BackendChoice::One(SmtBackend::Z3),
                    &problems[i],
                    &options,
                    &CancelToken::new(),
                );
                let ms = t.elapsed().as_secs_f64() * 1000.0;
                latencies.lock().unwrap().push(ms);
                let key = format!("{}/{:?}", answer.status, answer.evidence);
                *statuses.lock().unwrap().entry(key).or_default() += 1;
            });
        }
    });
    let capsci_s = start.elapsed().as_secs_f64();
    let stats = pools
        .iter()
        .map(SparePool::stats)
        .fold((0, 0, 0), |acc, s| {
            (acc.0 + s.hot, acc.1 + s.cold, acc.2 + s.started)
        });
    // The floor: the same pool serving an empty script (z3 exits at once), 2 clients.
    let floor_n = n.min(300);
    let next = AtomicUsize::new(0);
    let start = Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..2 {
            scope.spawn(|| {
                while next.fetch_add(1, Ordering::SeqCst) < floor_n {
                    let pool = pools.iter().max_by_key(|p| p.ready()).unwrap();
                    pool.run(b"(exit)\n".to_vec(), &CancelToken::new()).unwrap();
                }
            });
        }
    });
    let floor_s = start.elapsed().as_secs_f64();
    let lat = latencies.into_inner().unwrap();
    println!("SMT: {n} small QF_LIA problems");
    println!("  answers: {:?}", statuses.into_inner().unwrap());
    println!(
        "  shell loop `z3 FILE`: {:.2} s total, {:.1} problems/s, median latency {:.1} ms",
        shell_s,
        n as f64 / shell_s,
        median(shell_lat)
    );
    println!(
        "  capsci (bwrap, hot spares 2 pools x3, 2 clients, re-check included): {:.2} s total, {:.1} problems/s, median latency {:.1} ms",
        capsci_s,
        n as f64 / capsci_s,
        median(lat)
    );
    println!(
        "  throughput ratio capsci / shell loop: {:.2}x (target >= 1.5x)",
        shell_s / capsci_s
    );
    println!(
        "  spare pool: {} hot, {} cold, {} started",
        stats.0, stats.1, stats.2
    );
    println!(
        "  floor: the same pool running an empty script, 2 clients: {:.1} runs/s",
        floor_n as f64 / floor_s
    );
}

fn worker_binary() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let target = exe
        .parent()
        .and_then(|d| d.parent())
        .and_then(|d| d.parent())
        .unwrap();
    for profile in ["release", "debug"] {
        let p = target.join(profile).join("capsci-highs-worker");
        if p.is_file() {
            return p;
        }
    }
    panic!("build capsci-highs-worker first (cargo build --release -p capsci-highs-worker)");
}

/// The market-split MIP of the opt tests, `m` rows and `n` binaries.
fn market_split(m: usize, n: usize) -> String {
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

fn opt_bench(sandbox: Arc<BwrapSandbox>, closures: &Closures, dir: &Path) {
    let program = worker_binary();
    let (worker_binds, _) = binds(closures, "highs", &program);
    let setup = WorkerSetup {
        program: program.clone(),
        binds: worker_binds,
    };
    let runner = SandboxWorkerRunner(sandbox.as_ref());
    println!("HiGHS (worker {}):", program.display());
    for (m, n) in [(3, 24), (4, 24)] {
        let text = market_split(m, n);
        let path = dir.join(format!("ms_{m}_{n}.lp"));
        std::fs::write(&path, &text).unwrap();
        let options = OptOptions {
            time_limit_s: 120.0,
            ..OptOptions::default()
        };
        let mut inproc = Vec::new();
        let mut capsci = Vec::new();
        let mut solve_only = Vec::new();
        let mut capsci_solve = Vec::new();
        let mut capsci_cpu = Vec::new();
        let mut objective = (0.0, 0.0);
        for _ in 0..5 {
            let t = Instant::now();
            let native = std::process::Command::new(&program)
                .arg(&path)
                .args([
                    "--time-limit",
                    "120",
                    "--threads",
                    "1",
                    "--seed",
                    "0",
                    "--log",
                ])
                .arg(dir.join("highs.log"))
                .output()
                .unwrap();
            inproc.push(t.elapsed().as_secs_f64());
            let report: serde_json::Value = serde_json::from_slice(&native.stdout).unwrap();
            solve_only.push(report["solve_seconds"].as_f64().unwrap());
            objective.0 = report["objective"].as_f64().unwrap_or(f64::NAN);
            let t = Instant::now();
            let answer = opt::solve(
                &runner,
                &setup,
                text.as_bytes(),
                ModelFormat::Lp,
                &options,
                &CancelToken::new(),
            );
            capsci.push(t.elapsed().as_secs_f64());
            capsci_solve.push(
                answer
                    .report
                    .as_ref()
                    .map(|r| r.solve_seconds)
                    .unwrap_or(f64::NAN),
            );
            capsci_cpu.push(
                answer
                    .outcome
                    .as_ref()
                    .map(|o| o.usage.cpu_ms as f64 / 1000.0)
                    .unwrap_or(f64::NAN),
            );
            objective.1 = answer.result.objective.unwrap_or(f64::NAN);
            assert_eq!(
                answer.status,
                capsci_core::OptStatus::Optimal,
                "{:?}",
                answer.result
            );
        }
        let (sc, ss, bc) = (median(solve_only), median(capsci_solve), median(capsci_cpu));
        println!(
            "  market split {m}x{n}: HiGHS in-process solve time (worker's own timer) median {sc:.3} s natively, {ss:.3} s in the sandbox; sandboxed worker tree CPU median {bc:.3} s"
        );
        let min = |v: &[f64]| v.iter().copied().fold(f64::INFINITY, f64::min);
        let (a, b) = (median(inproc.clone()), median(capsci.clone()));
        let (amin, bmin) = (min(&inproc), min(&capsci));
        println!(
            "  market split {m}x{n} (5 runs each, alternating): native worker median {a:.3} s / min {amin:.3} s; through capsci median {b:.3} s / min {bmin:.3} s; overhead {:+.1}% (median), {:+.1}% (min); objective {} / {}",
            (b - a) / a * 100.0,
            (bmin - amin) / amin * 100.0,
            objective.0,
            objective.1
        );
    }
}

fn main() {
    let sandbox = Arc::new(BwrapSandbox::detect().expect("bwrap sandbox (capsci-jail built?)"));
    let dir = std::env::temp_dir().join(format!("capsci-bench-smt-opt-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let closures = Closures::open(&dir.join("store.db")).unwrap();
    let which = std::env::args().skip(1).find(|a| a == "smt" || a == "opt");
    if which.as_deref() != Some("opt") {
        smt_bench(sandbox.clone(), &closures, &dir);
    }
    if which.as_deref() != Some("smt") {
        opt_bench(sandbox, &closures, &dir);
    }
    let _ = std::fs::remove_dir_all(&dir);
}
