//! Rocq benchmark: 100 small theorem files through capsci (coqc, per-theorem `Print
//! Assumptions`, coqchk, all in the bwrap sandbox) versus bare `coqc` in a shell loop.
//!
//! Run: `cargo build -p capsci-sandbox && cargo bench -p capsci-backends --bench rocq`.
//! The baseline (bare coqc, coqchk variants) runs on the host with `std::process::Command`: it
//! is the measurement's reference, not a capsci code path.
#![allow(clippy::unwrap_used, missing_docs)]

use capsci_backends::rocq::{self, CheckOptions, ProjectInput};
use capsci_core::{Limits, ProofStatus};
use capsci_sandbox::{BwrapSandbox, CancelToken, Command, Sandbox};
use std::path::PathBuf;
use std::time::Instant;

const N: usize = 100;

fn file(k: usize) -> String {
    format!(
        "Theorem add_0_r_{k} : forall n, n + 0 = n.\nProof. induction n; simpl; [reflexivity | rewrite IHn; reflexivity]. Qed.\n\
         Lemma len_app_{k} : forall (A : Type) (l1 l2 : list A), length (l1 ++ l2) = length l1 + length l2.\n\
         Proof. induction l1; simpl; intros; [reflexivity | rewrite IHl1; reflexivity]. Qed.\n\
         Theorem arith_{k} : {k} * 2 = {k} + {k}.\nProof. reflexivity. Qed.\n"
    )
}

fn binds() -> Vec<PathBuf> {
    let mut b = rocq::roots();
    for lib in [
        "/usr/lib/x86_64-linux-gnu/libgmp.so.10",
        "/usr/lib/x86_64-linux-gnu/libc.so.6",
        "/usr/lib/x86_64-linux-gnu/libm.so.6",
        "/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2",
        "/usr/lib64/ld-linux-x86-64.so.2",
    ] {
        b.push(PathBuf::from(lib));
    }
    b
}

fn host_sh(dir: &std::path::Path, script: &str) -> f64 {
    let t = Instant::now();
    let st = std::process::Command::new("/bin/sh")
        .arg("-c")
        .arg(script)
        .current_dir(dir)
        .status()
        .unwrap();
    assert!(st.success(), "{script}");
    t.elapsed().as_secs_f64()
}

fn host(dir: &std::path::Path, program: &str, args: &[&str]) -> f64 {
    let t = Instant::now();
    let st = std::process::Command::new(program)
        .args(args)
        .current_dir(dir)
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(st.success(), "{program} {args:?}");
    t.elapsed().as_secs_f64()
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2] * 1000.0
}

/// Interleaved: for each file, every variant runs back to back, so the (shared, noisy) machine
/// load hits all of them alike; medians and totals are reported.
fn main() {
    let dir = std::env::temp_dir().join(format!("capsci-rocq-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    for k in 0..N {
        std::fs::write(dir.join(format!("f{k}.v")), file(k)).unwrap();
        std::fs::write(
            dir.join(format!("p{k}.v")),
            format!("Require f{k}.\nPrint Assumptions f{k}.add_0_r_{k}.\nPrint Assumptions f{k}.len_app_{k}.\nPrint Assumptions f{k}.arith_{k}.\n"),
        )
        .unwrap();
    }
    let sandbox =
        BwrapSandbox::detect().expect("bwrap sandbox (cargo build -p capsci-sandbox first)");
    let binds = binds();
    let limits = Limits {
        wall_s: 60.0,
        cpu_s: 60.0,
        memory_mb: 2048,
        pids: 32,
        file_size_mb: 64,
        output_bytes: 4 << 20,
    };
    let policy = rocq::sandbox_policy(&binds, &limits);
    let options = CheckOptions {
        limits: limits.clone(),
        ..CheckOptions::default()
    };
    // Warm-up: page cache for the standard library, the sandbox's helper.
    host_sh(&dir, "coqc -q f0.v");
    let names = [
        "bare coqc (host)",
        "coqc in sandbox",
        "Print Assumptions (host)",
        "coqchk -norec (host)",
        "coqchk full (host)",
        "capsci check",
    ];
    let mut t: Vec<Vec<f64>> = vec![Vec::new(); names.len()];
    for k in 0..N {
        let f = format!("f{k}.v");
        t[0].push(host(&dir, "/usr/bin/coqc", &["-q", &f]));
        let command = Command {
            program: PathBuf::from(rocq::script::COQC),
            args: vec!["-q".into(), f.clone()],
            files: vec![(PathBuf::from(&f), file(k).into_bytes())],
            ..Default::default()
        };
        let s = Instant::now();
        let o = sandbox.run(&policy, command, &CancelToken::new()).unwrap();
        t[1].push(s.elapsed().as_secs_f64());
        assert_eq!(o.exit, capsci_core::ExitReason::Exited(0));
        t[2].push(host(&dir, "/usr/bin/coqc", &["-q", &format!("p{k}.v")]));
        t[3].push(host(
            &dir,
            "/usr/bin/coqchk",
            &["-silent", "-R", ".", "", "-norec", &format!("f{k}")],
        ));
        if k % 10 == 0 {
            t[4].push(host(
                &dir,
                "/usr/bin/coqchk",
                &["-silent", "-R", ".", "", &format!("f{k}")],
            ));
        }
        let input = ProjectInput {
            files: vec![(PathBuf::from(&f), file(k).into_bytes())],
        };
        let s = Instant::now();
        let r = rocq::check(&input, &options, &sandbox, &binds, &CancelToken::new());
        t[5].push(s.elapsed().as_secs_f64());
        assert_eq!(r.status, ProofStatus::Accepted, "{:?}", r.result);
    }
    let totals: Vec<f64> = t.iter().map(|v| v.iter().sum::<f64>()).collect();
    println!("rocq bench: {N} small theorem files (3 theorems each), interleaved, per file");
    println!("  {:<28} {:>10} {:>12}", "variant", "median ms", "total s");
    for (i, name) in names.iter().enumerate() {
        let total = if i == 4 { totals[i] * 10.0 } else { totals[i] };
        println!(
            "  {:<28} {:>10.1} {:>12.2}{}",
            name,
            median(&mut t[i].clone()),
            total,
            if i == 4 { " (10 samples, x10)" } else { "" }
        );
    }
    println!(
        "  ratio capsci / bare coqc: {:.2}x (medians), {:.2}x (totals)",
        median(&mut t[5].clone()) / median(&mut t[0].clone()),
        totals[5] / totals[0]
    );
    // The 100 files as one project: one sandbox start, one assumptions file, one coqchk.
    let input = ProjectInput {
        files: (0..N)
            .map(|k| (PathBuf::from(format!("f{k}.v")), file(k).into_bytes()))
            .collect(),
    };
    let bare = host_sh(&dir, "for f in f*.v; do coqc -q \"$f\"; done");
    let s = Instant::now();
    let r = rocq::check(&input, &options, &sandbox, &binds, &CancelToken::new());
    let project = s.elapsed().as_secs_f64();
    assert_eq!(r.status, ProofStatus::Accepted, "{:?}", r.result);
    assert_eq!(r.result.theorems.len(), 3 * N);
    println!(
        "  100 files as one project: capsci {:.2} s vs bare coqc shell loop {:.2} s: {:.2}x",
        project,
        bare,
        project / bare
    );
    let _ = std::fs::remove_dir_all(&dir);
}
