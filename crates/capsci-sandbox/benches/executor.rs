//! Trivial calls (gp `print(1)`, z3 `(check-sat)`) bare vs cold sandbox vs hot spare.
//!
//! Run: `cargo bench -p capsci-sandbox` (`CAPSCI_BENCH_N` sets the calls per row, default 100).

use capsci_core::{ExitReason, Limits};
use capsci_sandbox::{
    Bind, BwrapSandbox, CancelToken, Command, Sandbox, SandboxConfig, SandboxPolicy, SparePool,
    SyscallFilter,
};
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Name, program, arguments, stdin, expected stdout.
type Case = (
    &'static str,
    &'static str,
    Vec<String>,
    &'static [u8],
    &'static str,
);

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

fn summary(mut samples: Vec<f64>) -> (f64, f64) {
    samples.sort_by(|a, b| a.total_cmp(b));
    (percentile(&samples, 0.5), percentile(&samples, 0.99))
}

fn bare(program: &str, args: &[String], stdin: &[u8], expect: &str) -> f64 {
    let begin = Instant::now();
    let mut child = std::process::Command::new(program)
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn bare");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin)
        .expect("write stdin");
    let out = child.wait_with_output().expect("bare output");
    let ms = begin.elapsed().as_secs_f64() * 1e3;
    assert_eq!(String::from_utf8_lossy(&out.stdout), expect);
    ms
}

fn main() {
    let n: usize = std::env::var("CAPSCI_BENCH_N")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(100);
    let config = SandboxConfig {
        jail: Some(PathBuf::from(env!("CARGO_BIN_EXE_capsci-jail"))),
        ..Default::default()
    };
    let sandbox = Arc::new(BwrapSandbox::new(config.clone()).expect("sandbox"));
    // The same sandbox without cgroups (RLIMIT_AS caps memory), to show what joining the
    // cgroup v1 hierarchies costs per cold start.
    let no_cgroup = BwrapSandbox::new(SandboxConfig {
        cgroup_root: None,
        ..config
    })
    .expect("sandbox");
    let policy = SandboxPolicy {
        backend: "bench".into(),
        ro_binds: vec![Bind::same("/usr")],
        env: Default::default(),
        limits: Limits {
            memory_mb: 1024,
            ..Limits::default()
        },
        network: false,
        syscall_filter: SyscallFilter::SolverDefault,
    };
    let cases: [Case; 2] = [
        (
            "gp print(1)",
            "/usr/bin/gp",
            vec!["-q".into(), "-f".into()],
            b"print(1)\n",
            "1\n",
        ),
        (
            "z3 (check-sat)",
            "/usr/bin/z3",
            vec!["-in".into()],
            b"(check-sat)\n",
            "sat\n",
        ),
    ];
    println!("{n} calls per row; times in ms (wall, from the call to the outcome)");
    println!(
        "{:<16} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8}",
        "call", "bare p50", "p99", "cold p50", "p99", "hot p50", "p99"
    );
    for (name, program, args, stdin, expect) in cases {
        let command = Command {
            program: program.into(),
            args: args.clone(),
            ..Default::default()
        };
        // Warm the page cache and the helper copy.
        for _ in 0..3 {
            bare(program, &args, stdin, expect);
        }
        let bare_ms: Vec<f64> = (0..n)
            .map(|_| bare(program, &args, stdin, expect))
            .collect();
        let mut cold_ms = Vec::with_capacity(n);
        for _ in 0..n {
            let mut c = command.clone();
            c.stdin = stdin.to_vec();
            let begin = Instant::now();
            let out = sandbox
                .run(&policy, c, &CancelToken::new())
                .expect("cold outcome");
            cold_ms.push(begin.elapsed().as_secs_f64() * 1e3);
            assert_eq!(out.exit, ExitReason::Exited(0));
            assert_eq!(String::from_utf8_lossy(&out.stdout), expect);
        }
        let mut nocg_ms = Vec::with_capacity(n);
        for _ in 0..n {
            let mut c = command.clone();
            c.stdin = stdin.to_vec();
            let begin = Instant::now();
            let out = no_cgroup
                .run(&policy, c, &CancelToken::new())
                .expect("cold outcome");
            nocg_ms.push(begin.elapsed().as_secs_f64() * 1e3);
            assert_eq!(out.exit, ExitReason::Exited(0));
            assert_eq!(String::from_utf8_lossy(&out.stdout), expect);
        }
        let pool =
            SparePool::new(sandbox.clone(), policy.clone(), command.clone(), 2).expect("pool");
        let mut hot_ms = Vec::with_capacity(n);
        for _ in 0..n {
            // Measure a call that finds a spare ready (the pool's steady state under load
            // below its refill rate); the refill itself is not timed.
            assert!(pool.wait_ready(2, Duration::from_secs(60)));
            let begin = Instant::now();
            let out = pool
                .run(stdin.to_vec(), &CancelToken::new())
                .expect("hot outcome");
            hot_ms.push(begin.elapsed().as_secs_f64() * 1e3);
            assert_eq!(out.exit, ExitReason::Exited(0));
            assert_eq!(String::from_utf8_lossy(&out.stdout), expect);
        }
        assert_eq!(pool.stats().cold, 0);
        let (b50, b99) = summary(bare_ms);
        let (c50, c99) = summary(cold_ms);
        let (h50, h99) = summary(hot_ms);
        let (n50, n99) = summary(nocg_ms);
        println!("{name:<16} {b50:>8.2} {b99:>8.2} {c50:>8.2} {c99:>8.2} {h50:>8.2} {h99:>8.2} {n50:>9.2} {n99:>8.2}");
        println!(
            "{:<16} cold/bare p50 {:.2}x (overhead {:+.2} ms; without cgroups {:+.2} ms), hot/bare p50 {:.2}x, hot/cold p50 {:.2}x",
            "",
            c50 / b50,
            c50 - b50,
            n50 - b50,
            h50 / b50,
            h50 / c50
        );
    }
}
