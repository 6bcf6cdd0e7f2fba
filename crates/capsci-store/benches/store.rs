//! Store benchmarks (`cargo bench -p capsci-store`): durable appends per second with concurrent
//! appenders, one call's recording (artifacts + job transitions + record), verify time of a 1,000,000-record chain, artifact re-hash speed, artifact writes
//! against `cp` + `sync`, and warm closure computations.
//!
//! `CAPSCI_BENCH_RECORDS` overrides the chain length (default 1,000,000).
#![allow(clippy::unwrap_used, missing_docs)]

use capsci_core::{
    ArtifactRefs, BackendIdentity, ExitReason, HostFacts, Limits, MemoryLimitBy, SandboxInfo, Usage,
};
use capsci_store::{ClosureSpec, RecordDraft, Store, VerifyOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn temp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("capsci-bench-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn draft(n: u64, input: &str, output: &str) -> RecordDraft {
    RecordDraft {
        principal: "agent:bench".into(),
        runner: serde_json::json!({"runner": "bench", "model": "none"}),
        interface: "SmtSolver".into(),
        method: "check".into(),
        status: "sat".into(),
        job: Some(format!("job_bench_{n}")),
        backend: BackendIdentity {
            name: "z3".into(),
            version: "4.8.12".into(),
            closure: format!("blake3:{}", "c".repeat(64)),
        },
        artifacts: ArtifactRefs {
            input: Some(input.into()),
            output: Some(output.into()),
            ..Default::default()
        },
        limits: Limits::default(),
        usage: Usage {
            wall_ms: 12,
            cpu_ms: 10,
            max_rss_kb: 2048,
        },
        exit: ExitReason::Exited(0),
        seed: Some(n),
        sandbox: SandboxInfo {
            kind: "bwrap".into(),
            policy: format!("blake3:{}", "p".repeat(64)),
            boundary: "shared host kernel".into(),
            ..Default::default()
        },
        host: HostFacts {
            kernel: "6.18".into(),
            cpu_model: "bench".into(),
            memory_limit_by: MemoryLimitBy::CgroupV1,
        },
        started_at: "2026-11-27T12:00:00.000000Z".into(),
        finished_at: "2026-11-27T12:00:00.012000Z".into(),
    }
}

fn appends(threads: u64, per_thread: u64) {
    let dir = temp("append");
    let store = Arc::new(Store::open(&dir).unwrap());
    let input = store
        .artifacts()
        .put_bytes(b"(check-sat)", "application/smt2")
        .unwrap()
        .to_string();
    let output = store
        .artifacts()
        .put_bytes(b"sat", "text/plain")
        .unwrap()
        .to_string();
    let start = Instant::now();
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let (store, input, output) = (store.clone(), input.clone(), output.clone());
            std::thread::spawn(move || {
                for i in 0..per_thread {
                    store
                        .log()
                        .append(draft(t * 1_000_000 + i, &input, &output))
                        .unwrap();
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let secs = start.elapsed().as_secs_f64();
    let total = threads * per_thread;
    println!(
        "durable appends, {threads:>3} threads: {total} records in {secs:.2} s = {:.0} appends/s (each acknowledged after its group's fsync)",
        total as f64 / secs
    );
    drop(store);
    let _ = std::fs::remove_dir_all(&dir);
}

fn verify_chain(records: u64) {
    let dir = temp("verify");
    let store = Store::open(&dir).unwrap();
    let input = store
        .artifacts()
        .put_bytes(b"(check-sat)", "application/smt2")
        .unwrap()
        .to_string();
    let output = store
        .artifacts()
        .put_bytes(b"sat", "text/plain")
        .unwrap()
        .to_string();
    let start = Instant::now();
    let mut n = 0;
    while n < records {
        let batch = (records - n).min(10_000);
        let drafts = (n..n + batch).map(|i| draft(i, &input, &output)).collect();
        store.log().append_many(drafts).unwrap();
        n += batch;
    }
    println!(
        "built a chain of {records} records in {:.1} s (batches of 10,000)",
        start.elapsed().as_secs_f64()
    );
    store.log().checkpoint().unwrap();
    let chain_only = VerifyOptions {
        skip_artifacts: true,
        ..Default::default()
    };
    let start = Instant::now();
    let report = store.log().verify(&chain_only).unwrap();
    assert!(report.ok() && report.records == records);
    println!(
        "verify chain of {records} records (hashes, links, checkpoint): {:.2} s",
        start.elapsed().as_secs_f64()
    );
    let start = Instant::now();
    let report = store.log().verify(&VerifyOptions::default()).unwrap();
    assert!(report.ok());
    println!(
        "verify chain of {records} records + parse every record's artifact ids + re-hash {} distinct artifacts: {:.2} s",
        report.artifacts_checked,
        start.elapsed().as_secs_f64()
    );
    drop(store);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Writes `len` bytes of varied content (seeded) to `path`.
fn make_file(path: &Path, len: usize, seed: u64) {
    let mut f = std::fs::File::create(path).unwrap();
    let mut state = seed;
    let mut buf = vec![0u8; 1 << 20];
    let mut left = len;
    while left > 0 {
        for chunk in buf.chunks_mut(8) {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let bytes = state.to_le_bytes();
            chunk.copy_from_slice(&bytes[..chunk.len()]);
        }
        let n = left.min(buf.len());
        f.write_all(&buf[..n]).unwrap();
        left -= n;
    }
    f.sync_all().unwrap();
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn artifact_writes(len: usize, rounds: u64) {
    let dir = temp("artifacts");
    let store = Store::open(&dir.join("store")).unwrap();
    let mut ours = Vec::new();
    let mut cp = Vec::new();
    let mut last = None;
    for round in 0..rounds {
        let src = dir.join(format!("src-{round}"));
        make_file(&src, len, round + 1);
        // Ours: stream from the file into the store (hash, write, fsync, rename, fsync dir).
        let start = Instant::now();
        let id = store
            .artifacts()
            .put_reader(
                std::fs::File::open(&src).unwrap(),
                "application/octet-stream",
            )
            .unwrap();
        ours.push(start.elapsed());
        last = Some(id);
        // cp followed by sync of the same bytes.
        let dest = dir.join(format!("cp-{round}"));
        let start = Instant::now();
        let ok = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("cp {} {} && sync", src.display(), dest.display()))
            .status()
            .unwrap()
            .success();
        assert!(ok);
        cp.push(start.elapsed());
        let _ = std::fs::remove_file(&src);
        let _ = std::fs::remove_file(&dest);
    }
    let (o, c) = (median(ours), median(cp));
    let mb = len as f64 / (1 << 20) as f64;
    println!(
        "artifact write {mb:.0} MiB: store {:.3} s ({:.0} MiB/s) vs cp && sync {:.3} s ({:.0} MiB/s): ratio {:.2}x (median of {rounds})",
        o.as_secs_f64(),
        mb / o.as_secs_f64(),
        c.as_secs_f64(),
        mb / c.as_secs_f64(),
        o.as_secs_f64() / c.as_secs_f64()
    );
    let id = last.unwrap();
    let start = Instant::now();
    let bytes = store.artifacts().verify(&id).unwrap();
    let secs = start.elapsed().as_secs_f64();
    println!(
        "artifact re-hash (verify) {mb:.0} MiB: {secs:.3} s = {:.0} MiB/s",
        bytes as f64 / (1 << 20) as f64 / secs
    );
    drop(store);
    let _ = std::fs::remove_dir_all(&dir);
}

fn closures() {
    let dir = temp("closures");
    let store = Store::open(&dir).unwrap();
    let coq = std::process::Command::new("coqc")
        .arg("-where")
        .output()
        .unwrap();
    let coq = PathBuf::from(String::from_utf8_lossy(&coq.stdout).trim());
    let specs = [
        ClosureSpec {
            name: "gp".into(),
            executables: vec!["/usr/bin/gp".into()],
            trees: vec!["/usr/share/pari".into()],
            ..Default::default()
        },
        ClosureSpec {
            name: "z3".into(),
            executables: vec!["/usr/bin/z3".into()],
            ..Default::default()
        },
        ClosureSpec {
            name: "sympy".into(),
            executables: vec!["/opt/capsci/venv/bin/python3".into()],
            trees: vec![
                "/opt/capsci/venv/lib/python3.11/site-packages".into(),
                "/usr/lib/python3.11".into(),
            ],
            ..Default::default()
        },
        ClosureSpec {
            name: "rocq".into(),
            executables: vec!["/usr/bin/coqc".into()],
            trees: vec![coq],
            ..Default::default()
        },
    ];
    for spec in &specs {
        let start = Instant::now();
        let (_, cold) = store.closures().compute(spec).unwrap();
        let cold_t = start.elapsed();
        let mut warm_times = Vec::new();
        let mut warm = None;
        for _ in 0..5 {
            let start = Instant::now();
            warm = Some(store.closures().compute(spec).unwrap());
            warm_times.push(start.elapsed());
        }
        let (closure, stats) = warm.unwrap();
        let files: u64 = closure.entries.iter().map(|e| e.files.unwrap_or(1)).sum();
        println!(
            "closure {:<6} {files:>5} files: cold {:.0} ms ({} files, {:.0} MiB hashed), warm {:.1} ms ({} files hashed)",
            spec.name,
            cold_t.as_secs_f64() * 1e3,
            cold.files_hashed,
            cold.bytes_hashed as f64 / (1 << 20) as f64,
            median(warm_times).as_secs_f64() * 1e3,
            stats.files_hashed
        );
    }
    drop(store);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Five small distinct artifacts of call `n` (input, output, log, request, result), each under
/// 4 KiB, as the service stores them for one call.
fn call_artifacts(n: u64) -> Vec<(Vec<u8>, &'static str)> {
    vec![
        (
            format!("(declare-const x Int)\n(assert (> x {n}))\n(check-sat)\n").into_bytes(),
            "application/smt2",
        ),
        (format!("sat\n; call {n}\n").into_bytes(), "text/plain"),
        (
            format!("z3 log of call {n}\n").repeat(40).into_bytes(),
            "text/plain",
        ),
        (
            format!(r#"{{"interface":"SmtSolver","method":"check","n":{n}}}"#).into_bytes(),
            "application/json",
        ),
        (
            format!(r#"{{"status":"sat","n":{n},"wall_ms":3}}"#).into_bytes(),
            "application/json",
        ),
    ]
}

/// One call's recording, per artifact and per transition (the old path): 5 `put_bytes`,
/// `create` + `mark_running` + `finish`, one append.
fn record_call_one_by_one(store: &Store, n: u64) {
    let items = call_artifacts(n);
    let ids: Vec<String> = items
        .iter()
        .map(|(bytes, media)| {
            store
                .artifacts()
                .put_bytes(bytes, media)
                .unwrap()
                .to_string()
        })
        .collect();
    let params = serde_json::json!({"n": n});
    let job = store.jobs().create("SmtSolver", "check", &params).unwrap();
    store.jobs().mark_running(&job).unwrap();
    store
        .jobs()
        .finish(&job, capsci_core::JobState::Succeeded, None, None)
        .unwrap();
    store.log().append(draft(n, &ids[0], &ids[1])).unwrap();
}

/// One call's recording the batched way: one `put_batch` of the 5 artifacts,
/// `create_running` + `finish`, one append.
fn record_call_batched(store: &Store, n: u64) {
    let items = call_artifacts(n);
    let batch: Vec<(&[u8], &str)> = items.iter().map(|(b, m)| (b.as_slice(), *m)).collect();
    let ids = store.artifacts().put_batch(&batch).unwrap();
    let params = serde_json::json!({"n": n});
    let job = store
        .jobs()
        .create_running("SmtSolver", "check", &params)
        .unwrap();
    store
        .jobs()
        .finish(&job, capsci_core::JobState::Succeeded, None, None)
        .unwrap();
    store
        .log()
        .append(draft(n, ids[0].as_str(), ids[1].as_str()))
        .unwrap();
}

/// A way of recording one call, named.
type RecordCase = (&'static str, fn(&Store, u64));

fn one_call_recording(rounds: u64) {
    let cases: [RecordCase; 2] = [
        (
            "one by one (5 put_bytes + create + mark_running + finish + append)",
            record_call_one_by_one,
        ),
        (
            "batched (put_batch of 5 + create_running + finish + append)",
            record_call_batched,
        ),
    ];
    for (name, record) in cases {
        let dir = temp("call");
        let store = Store::open(&dir).unwrap();
        // Warm up: schema, directories, prepared statements.
        record(&store, 1_000_000);
        let mut times = Vec::new();
        for n in 0..rounds {
            let start = Instant::now();
            record(&store, n);
            times.push(start.elapsed());
        }
        times.sort();
        println!(
            "one call's recording, {name}: median {:.1} ms, min {:.1} ms, max {:.1} ms (of {rounds})",
            times[times.len() / 2].as_secs_f64() * 1e3,
            times[0].as_secs_f64() * 1e3,
            times[times.len() - 1].as_secs_f64() * 1e3,
        );
        drop(store);
        let _ = std::fs::remove_dir_all(&dir);
    }
    // Where the batched path's time goes.
    let dir = temp("call-steps");
    let store = Store::open(&dir).unwrap();
    record_call_batched(&store, 1_000_000);
    let (mut put, mut create, mut finish, mut append) = (vec![], vec![], vec![], vec![]);
    for n in 0..rounds {
        let items = call_artifacts(n);
        let batch: Vec<(&[u8], &str)> = items.iter().map(|(b, m)| (b.as_slice(), *m)).collect();
        let t = Instant::now();
        let ids = store.artifacts().put_batch(&batch).unwrap();
        put.push(t.elapsed());
        let t = Instant::now();
        let job = store
            .jobs()
            .create_running("SmtSolver", "check", &serde_json::json!({"n": n}))
            .unwrap();
        create.push(t.elapsed());
        let t = Instant::now();
        store
            .log()
            .append(draft(n, ids[0].as_str(), ids[1].as_str()))
            .unwrap();
        append.push(t.elapsed());
        let t = Instant::now();
        store
            .jobs()
            .finish(&job, capsci_core::JobState::Succeeded, None, None)
            .unwrap();
        finish.push(t.elapsed());
    }
    let ms = |v: Vec<Duration>| median(v).as_secs_f64() * 1e3;
    println!(
        "  batched steps (medians): put_batch of 5 {:.2} ms, create_running {:.2} ms, append {:.2} ms, finish {:.2} ms",
        ms(put),
        ms(create),
        ms(append),
        ms(finish)
    );
    drop(store);
    let _ = std::fs::remove_dir_all(&dir);
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    // `cargo bench -p capsci-store --bench store -- call` runs only the per-call case.
    if std::env::args().skip(1).any(|a| a == "call") {
        one_call_recording(50);
        return;
    }
    one_call_recording(50);
    let records: u64 = std::env::var("CAPSCI_BENCH_RECORDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    appends(1, 500);
    appends(8, 1_000);
    appends(32, 500);
    appends(128, 200);
    artifact_writes(256 << 20, 3);
    closures();
    verify_chain(records);
}
