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
    let st = std::process::Command::new("/bin/sh").arg("-c").arg(script).current_dir(dir).status().unwrap();
    assert!(st.success(), "{script}");
    t.elapsed().as_secs_f64()
}

fn main() {
    let dir = std::env::temp_dir().join(format!("capsci-rocq-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    for k in 0..N {
        std::fs::write(dir.join(format!("f{k}.v")), file(k)).unwrap();
    }
    // Warm the page cache.
    host_sh(&dir, "for f in f*.v; do coqc -q \"$f\"; done");
    let bare = host_sh(&dir, "for f in f*.v; do coqc -q \"$f\"; done");
    let mut pa = String::new();
    for k in 0..N {
        pa.push_str(&format!("Require f{k}.\nPrint Assumptions f{k}.add_0_r_{k}.\n"));
    }
    std::fs::write(dir.join("pa.v"), pa).unwrap();
    let pa_one = host_sh(&dir, "for k in $(seq 0 99); do printf 'Require f%s.\\nPrint Assumptions f%s.add_0_r_%s.\\nPrint Assumptions f%s.len_app_%s.\\nPrint Assumptions f%s.arith_%s.\\n' $k $k $k $k $k $k $k > p$k.v; done; for k in $(seq 0 99); do coqc -q p$k.v >/dev/null; done");
    let chk_norec = host_sh(&dir, "for k in $(seq 0 99); do coqchk -silent -R . '' -norec f$k >/dev/null; done");
    let chk_full = host_sh(&dir, "for k in $(seq 0 99); do coqchk -silent -R . '' f$k >/dev/null; done");

    let sandbox = BwrapSandbox::detect().expect("bwrap sandbox (cargo build -p capsci-sandbox first)");
    let binds = binds();
    let limits = Limits { wall_s: 60.0, cpu_s: 60.0, memory_mb: 2048, pids: 32, file_size_mb: 64, output_bytes: 4 << 20 };
    let policy = rocq::sandbox_policy(&binds, &limits);
    // Sandbox cost alone: coqc per file through the sandbox (no assumptions, no coqchk).
    let t = Instant::now();
    for k in 0..N {
        let command = Command {
            program: PathBuf::from(rocq::script::COQC),
            args: vec!["-q".into(), format!("f{k}.v")],
            files: vec![(PathBuf::from(format!("f{k}.v")), file(k).into_bytes())],
            ..Default::default()
        };
        let o = sandbox.run(&policy, command, &CancelToken::new()).unwrap();
        assert_eq!(o.exit, capsci_core::ExitReason::Exited(0));
    }
    let sandboxed_coqc = t.elapsed().as_secs_f64();
    // capsci, one check per file (100 calls).
    let options = CheckOptions { limits: limits.clone(), ..CheckOptions::default() };
    let t = Instant::now();
    for k in 0..N {
        let input = ProjectInput { files: vec![(PathBuf::from(format!("f{k}.v")), file(k).into_bytes())] };
        let r = rocq::check(&input, &options, &sandbox, &binds, &CancelToken::new());
        assert_eq!(r.status, ProofStatus::Accepted, "{:?}", r.result);
    }
    let capsci_per_file = t.elapsed().as_secs_f64();
    // capsci, the 100 files as one project (1 call).
    let input = ProjectInput { files: (0..N).map(|k| (PathBuf::from(format!("f{k}.v")), file(k).into_bytes())).collect() };
    let t = Instant::now();
    let r = rocq::check(&input, &options, &sandbox, &binds, &CancelToken::new());
    let capsci_project = t.elapsed().as_secs_f64();
    assert_eq!(r.status, ProofStatus::Accepted, "{:?}", r.result);
    assert_eq!(r.result.theorems.len(), 3 * N);

    let ms = |s: f64| s * 1000.0 / N as f64;
    println!("rocq bench: {N} small theorem files (3 theorems each), times per file");
    println!("  bare coqc, host shell loop            {:8.1} ms", ms(bare));
    println!("  coqc through the sandbox, per file    {:8.1} ms  (sandbox start ~{:.1} ms)", ms(sandboxed_coqc), ms(sandboxed_coqc - bare));
    println!("  Print Assumptions file, host          {:8.1} ms", ms(pa_one));
    println!("  coqchk -norec, host                   {:8.1} ms", ms(chk_norec));
    println!("  coqchk full (re-checks stdlib), host  {:8.1} ms", ms(chk_full));
    println!("  capsci check, one call per file       {:8.1} ms  ratio {:.2}x bare coqc", ms(capsci_per_file), capsci_per_file / bare);
    println!("  capsci check, 100 files as 1 project  {:8.1} ms  ratio {:.2}x bare coqc", ms(capsci_project), capsci_project / bare);
    let _ = std::fs::remove_dir_all(&dir);
}
