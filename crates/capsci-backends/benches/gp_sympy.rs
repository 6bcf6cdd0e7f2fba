//! Latency of NumberTheory.eval and ComputerAlgebra through capsci (sandboxed hot spares) versus
//! the bare commands: `gp -q` fed the expression on stdin (as `echo EXPR | gp -q`), and the venv's
//! `python3 -c` importing SymPy and differentiating. Prints medians and the ratio capsci / bare.
//!
//! Run: `cargo bench -p capsci-backends --bench gp_sympy` (needs the capsci-jail helper built:
//! `cargo build -p capsci-sandbox --bin capsci-jail`). `CAPSCI_BENCH_ITERS` sets the sample
//! count (default 21 for gp, a third of that for the python baseline).

use capsci_backends::{gp, sympy};
use capsci_core::{EvalStatus, Limits};
use capsci_sandbox::{BwrapSandbox, CancelToken, SparePool};
use capsci_store::{ClosureSpec, Closures};
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn closure(name: &str, executables: Vec<PathBuf>, trees: Vec<PathBuf>) -> Vec<PathBuf> {
    let dir = std::env::temp_dir().join(format!("capsci-bench-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let closures = Closures::open(&dir.join("closures.db")).expect("closure db");
    let spec = ClosureSpec {
        name: name.into(),
        executables,
        trees,
        ..Default::default()
    };
    let (closure, _) = closures.compute(&spec).expect("closure");
    let _ = std::fs::remove_dir_all(&dir);
    closure.bind_paths()
}

/// `echo EXPR | gp -q`, without a shell in between (which would only slow the baseline).
fn bare_gp(expr: &str) -> Duration {
    let begin = Instant::now();
    let mut child = Command::new("/usr/bin/gp")
        .arg("-q")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("gp");
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(format!("{expr}\n").as_bytes())
            .expect("write");
    }
    let out = child.wait_with_output().expect("gp output");
    let elapsed = begin.elapsed();
    assert!(out.status.success() && !out.stdout.is_empty());
    elapsed
}

fn bare_python(python: &PathBuf) -> Duration {
    let begin = Instant::now();
    let out = Command::new(python)
        .args([
            "-c",
            "import sympy; x = sympy.Symbol('x'); print(sympy.diff(sympy.sin(x)*x, x))",
        ])
        .stderr(Stdio::null())
        .output()
        .expect("python");
    let elapsed = begin.elapsed();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "x*cos(x) + sin(x)"
    );
    elapsed
}

fn report(what: &str, capsci: Duration, bare: Duration, bare_name: &str) {
    println!(
        "{what:<28} capsci (hot spare) median {:>8.2} ms | {bare_name} median {:>8.2} ms | ratio capsci/bare {:.2}",
        ms(capsci),
        ms(bare),
        capsci.as_secs_f64() / bare.as_secs_f64()
    );
}

fn main() {
    let iters: usize = std::env::var("CAPSCI_BENCH_ITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(21)
        .max(3);
    let sandbox =
        Arc::new(BwrapSandbox::detect().expect("bwrap sandbox (build capsci-jail first)"));
    let limits = Limits {
        wall_s: 60.0,
        cpu_s: 60.0,
        memory_mb: 1024,
        ..Limits::default()
    };

    // gp.
    let roots = gp::roots();
    let gp_binds = closure("gp", roots.executables, roots.trees);
    let config = gp::GpConfig::for_limits(&limits);
    let pool = SparePool::new(
        sandbox.clone(),
        gp::sandbox_policy(&gp_binds, &limits),
        gp::spare_template(&config),
        2,
    )
    .expect("gp pool");
    for expr in ["1+1", "factor(2^128+1)"] {
        let mut capsci = Vec::new();
        let mut bare = Vec::new();
        for _ in 0..iters {
            // The refill happens off the request path: wait for a spare, then time the call.
            pool.wait_ready(1, Duration::from_secs(30));
            let begin = Instant::now();
            let r = gp::eval_with_spare(&pool, expr, &CancelToken::new());
            capsci.push(begin.elapsed());
            assert_eq!(r.status, EvalStatus::Ok, "{expr}: {:?}", r.result);
            bare.push(bare_gp(expr));
        }
        report(
            &format!("gp {expr}"),
            median(capsci),
            median(bare),
            "echo EXPR | gp -q",
        );
    }
    println!("gp pool: {:?}", pool.stats());
    drop(pool);

    // SymPy.
    let venv = sympy::python_env();
    let roots = sympy::roots(&venv);
    let py_binds = closure("sympy", roots.executables, roots.trees);
    let worker = sympy::WorkerConfig::new(&venv);
    let pool = SparePool::new(
        sandbox.clone(),
        sympy::sandbox_policy(&py_binds, &limits),
        sympy::spare_template(&worker),
        2,
    )
    .expect("sympy pool");
    let request = sympy::WorkerRequest::new("diff", "sin(x)*x");
    let py_iters = (iters / 3).max(3);
    let mut capsci = Vec::new();
    let mut bare = Vec::new();
    for _ in 0..py_iters {
        pool.wait_ready(1, Duration::from_secs(60));
        // A spare counts as ready once started; give it time to finish importing SymPy.
        std::thread::sleep(Duration::from_millis(1500));
        let begin = Instant::now();
        let r = sympy::eval_with_spare(&pool, &request, &CancelToken::new());
        capsci.push(begin.elapsed());
        assert_eq!(
            r.result.text.as_deref(),
            Some("x*cos(x) + sin(x)"),
            "{:?}",
            r.result
        );
        bare.push(bare_python(&worker.python));
    }
    report(
        "sympy diff(sin(x)*x, x)",
        median(capsci),
        median(bare),
        "python3 -c (SymPy)",
    );
    println!("sympy pool: {:?}", pool.stats());
}
