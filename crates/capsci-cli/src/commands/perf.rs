//! `capsci bench`: in one run on this machine, capsci against calling each tool directly —
//! trivial-call latency per backend (bare / cold sandbox / hot spare), SMT batch throughput
//! against a loop of the bare solver, durable provenance appends, log verification, and the
//! service's resident memory — printed as a table of medians, p99s and ratios, and written to
//! `bench-results/bench.{md,json}` so two runs can be compared.

use crate::cli::Cli;
use anyhow::Context;
use capsci_core::request::{CasRequest, GpRequest, SmtBackendChoice, SmtRequest};
use capsci_core::{CallRequest, Limits, Method};
use capsci_sandbox::CancelToken;
use capsci_service::{Grant, Principal, Service, ServiceConfig, Session};
use serde::Serialize;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Calls per latency measurement.
const SAMPLES: usize = 30;
/// Problems in the SMT throughput batch.
const SMT_BATCH: usize = 200;

/// One latency case: its name, the capsci request, and the same work done by the bare tool.
type BenchCase = (
    &'static str,
    CallRequest,
    Box<dyn Fn() -> anyhow::Result<()>>,
);

#[derive(Debug, Serialize)]
struct LatencyRow {
    case: String,
    bare_p50_ms: f64,
    bare_p99_ms: f64,
    cold_p50_ms: f64,
    cold_p99_ms: f64,
    hot_p50_ms: f64,
    hot_p99_ms: f64,
    hot_over_bare: f64,
    cold_overhead_ms: f64,
}

#[derive(Debug, Serialize)]
struct Report {
    machine: String,
    latency: Vec<LatencyRow>,
    smt_batch: usize,
    smt_bare_loop_per_s: f64,
    smt_capsci_per_s: f64,
    smt_throughput_ratio: f64,
    durable_appends_per_s: f64,
    verify_records: u64,
    verify_ms: f64,
    rss_idle_kb: u64,
    rss_after_load_kb: u64,
    highs: Vec<SolveRow>,
    rocq: Option<SolveRow>,
    chain_records: u64,
    chain_build_s: f64,
    chain_verify_s: f64,
}

/// Builds a chain of `CAPSCI_BENCH_RECORDS` (default 10^6) records like a real call's, in
/// batches, then verifies it (chain and checkpoints; artifacts are re-hashed per record in the
/// small verification above). Returns (records, build seconds, verify seconds).
fn million_chain(
    scratch: &Path,
    draft: &capsci_store::RecordDraft,
) -> anyhow::Result<(u64, f64, f64)> {
    let records: u64 = std::env::var("CAPSCI_BENCH_RECORDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    eprintln!("bench: building and verifying a chain of {records} records");
    let store = capsci_store::Store::open(&scratch.join("chain"))?;
    let t = Instant::now();
    let mut n = 0;
    while n < records {
        let batch = (records - n).min(10_000);
        store
            .log()
            .append_many((0..batch).map(|_| draft.clone()).collect())?;
        n += batch;
    }
    store.log().checkpoint()?;
    let build = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let report = store.log().verify(&capsci_store::VerifyOptions {
        skip_artifacts: true,
        trusted_key: None,
    })?;
    anyhow::ensure!(report.ok(), "the benchmark chain does not verify");
    Ok((report.records, build, t.elapsed().as_secs_f64()))
}

/// One instance solved bare and through capsci (medians of a few runs).
#[derive(Debug, Serialize)]
struct SolveRow {
    case: String,
    bare_ms: f64,
    capsci_ms: f64,
    overhead: f64,
}

/// Netlib instances of growing size, read in place from the public suite when it is found
/// (`CAPSCI_DATA`, else `../shared/data` beside the checkout).
const NETLIB_BY_SIZE: &[&str] = &["afiro", "stocfor1", "bore3d", "bandm", "scrs8"];

fn data_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("CAPSCI_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("../shared/data"));
    dir.join("netlib").is_dir().then_some(dir)
}

fn median_ms(runs: usize, mut f: impl FnMut() -> anyhow::Result<()>) -> anyhow::Result<f64> {
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        let t = Instant::now();
        f()?;
        times.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    Ok(percentile(&mut times, 0.5))
}

/// HiGHS through capsci against the same worker binary run directly (HiGHS in its own process,
/// unsandboxed, unrecorded), on instances of growing size.
fn highs_rows(session: &Session) -> anyhow::Result<Vec<SolveRow>> {
    let Some(data) = data_dir() else {
        eprintln!("bench: no Netlib suite found (set CAPSCI_DATA): HiGHS rows skipped");
        return Ok(Vec::new());
    };
    let worker = capsci_service::runtime::highs_worker()?;
    let mut rows = Vec::new();
    for name in NETLIB_BY_SIZE {
        let path = data.join("netlib").join(format!("{name}.mps"));
        let mps = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        eprintln!("bench: HiGHS {name}");
        let bare_ms = median_ms(5, || {
            let out = Command::new(&worker)
                .arg(&path)
                .current_dir(std::env::temp_dir())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()?;
            anyhow::ensure!(out.success(), "the HiGHS worker failed on {name}");
            Ok(())
        })?;
        let request = CallRequest::OptSolve(capsci_core::request::OptRequest {
            mps: Some(mps),
            lp: None,
            time_limit_s: None,
            mip_gap: None,
            threads: None,
            seed: None,
            presolve: None,
        });
        let capsci_ms = median_ms(5, || call(session, &request))?;
        rows.push(SolveRow {
            case: format!(
                "HiGHS {name} ({} KB)",
                std::fs::metadata(&path)?.len() / 1024
            ),
            bare_ms,
            capsci_ms,
            overhead: capsci_ms / bare_ms - 1.0,
        });
    }
    Ok(rows)
}

/// A three-lemma Rocq file: bare `coqc` against capsci's check (coqc, Print Assumptions, coqchk).
fn rocq_row(session: &Session, scratch: &Path) -> anyhow::Result<SolveRow> {
    eprintln!("bench: Rocq");
    let text = include_str!("../demo/proof.v");
    let dir = scratch.join("rocq");
    std::fs::create_dir_all(&dir)?;
    let file = dir.join("Demo.v");
    std::fs::write(&file, text)?;
    let bare_ms = median_ms(5, || {
        let out = Command::new("/usr/bin/coqc")
            .arg("-q")
            .arg(&file)
            .current_dir(&dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()?;
        anyhow::ensure!(out.success(), "bare coqc failed");
        Ok(())
    })?;
    let request = CallRequest::ProofCheck(capsci_core::request::ProofRequest {
        files: vec![capsci_core::request::ProjectFile {
            path: "Demo.v".into(),
            content: text.into(),
        }],
        backend: Default::default(),
        challenge: vec![],
        allow_axiom: vec![],
        timeout_s: None,
    });
    let capsci_ms = median_ms(5, || call(session, &request))?;
    Ok(SolveRow {
        case: "Rocq 3 lemmas (coqc + assumptions + coqchk)".into(),
        bare_ms,
        capsci_ms,
        overhead: capsci_ms / bare_ms - 1.0,
    })
}

fn percentile(samples: &mut [f64], p: f64) -> f64 {
    samples.sort_by(|a, b| a.total_cmp(b));
    let i = ((samples.len() as f64 - 1.0) * p).round() as usize;
    samples.get(i).copied().unwrap_or(f64::NAN)
}

fn time_ms(f: impl FnMut() -> anyhow::Result<()>) -> anyhow::Result<Vec<f64>> {
    time_ms_paused(Duration::ZERO, f)
}

/// Times `SAMPLES` calls of `f`, sleeping `pause` after each one outside the timing.
fn time_ms_paused(
    pause: Duration,
    mut f: impl FnMut() -> anyhow::Result<()>,
) -> anyhow::Result<Vec<f64>> {
    let mut out = Vec::with_capacity(SAMPLES);
    for _ in 0..SAMPLES {
        let t = Instant::now();
        f()?;
        out.push(t.elapsed().as_secs_f64() * 1000.0);
        std::thread::sleep(pause);
    }
    Ok(out)
}

/// Starts the tool directly, as a user without capsci would, and feeds it `stdin`.
fn bare(program: &str, args: &[&str], stdin: &str) -> anyhow::Result<()> {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("cannot start {program}"))?;
    if let Some(mut input) = child.stdin.take() {
        input.write_all(stdin.as_bytes())?;
    }
    child.wait_with_output()?;
    Ok(())
}

fn rss_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn session(service: &Arc<Service>) -> Session {
    service.session(
        Grant::scientific_base(),
        Principal {
            id: "bench".into(),
            runner: serde_json::json!({"front_end": "bench"}),
        },
    )
}

fn call(session: &Session, request: &CallRequest) -> anyhow::Result<()> {
    let envelope = session.call(request.clone(), &CancelToken::new())?;
    anyhow::ensure!(
        !envelope.status_word().contains("error"),
        "benchmark call failed: {}",
        envelope.status_word()
    );
    Ok(())
}

/// Runs the benchmark on scratch stores under the system's temp dir (the user's store is left
/// alone) and writes the report.
pub fn run(cli: &Cli) -> anyhow::Result<std::process::ExitCode> {
    let scratch = std::env::temp_dir().join(format!("capsci-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&scratch);
    let open = |name: &str, spares: usize| {
        Service::open(ServiceConfig {
            store_dir: scratch.join(name),
            spares_per_backend: spares,
            default_limits: Limits::default(),
        })
    };
    let cold = open("cold", 0)?;
    let rss_idle_kb = rss_kb();
    let hot = open("hot", 2)?;
    let (cold_s, hot_s) = (session(&cold), session(&hot));
    let venv = capsci_backends::sympy::python_env();
    let python = venv.join("bin/python3");
    let cases: Vec<BenchCase> = vec![
        (
            "gp: 1+1",
            CallRequest::NumberTheoryEval(GpRequest {
                expr: "1+1".into(),
                timeout_s: None,
            }),
            Box::new(|| bare("/usr/bin/gp", &["-q", "-f"], "1+1\n")),
        ),
        (
            "z3: (check-sat)",
            CallRequest::SmtCheck(SmtRequest {
                smtlib: "(check-sat)\n".into(),
                backend: SmtBackendChoice::Z3,
                timeout_s: None,
                seed: None,
            }),
            Box::new(|| bare("/usr/bin/z3", &["-in"], "(check-sat)\n")),
        ),
        (
            "sympy: diff(sin(x)*x, x)",
            CallRequest::ComputerAlgebra(CasRequest {
                op: Method::Diff,
                expr: "sin(x)*x".into(),
                var: vec!["x".into()],
                at: None,
                dir: None,
                from: None,
                to: None,
                order: None,
                digits: None,
                timeout_s: None,
            }),
            Box::new(move || {
                bare(
                    &python.to_string_lossy(),
                    &[
                        "-c",
                        "import sympy; x=sympy.Symbol('x'); print(sympy.diff(sympy.sin(x)*x, x))",
                    ],
                    "",
                )
            }),
        ),
    ];
    let mut latency = Vec::new();
    for (name, request, bare_call) in &cases {
        eprintln!("bench: {name}");
        call(&hot_s, request)?; // warm the closure and start the pool
        std::thread::sleep(Duration::from_millis(500));
        let mut b = time_ms(bare_call)?;
        let mut c = time_ms(|| call(&cold_s, request))?;
        // Between hot calls the pool gets a moment to refill, as between an agent's calls; the
        // pause is outside the timed call.
        let mut h = time_ms_paused(Duration::from_millis(60), || call(&hot_s, request))?;
        let (bp50, cp50, hp50) = (
            percentile(&mut b, 0.5),
            percentile(&mut c, 0.5),
            percentile(&mut h, 0.5),
        );
        latency.push(LatencyRow {
            case: (*name).into(),
            bare_p50_ms: bp50,
            bare_p99_ms: percentile(&mut b, 0.99),
            cold_p50_ms: cp50,
            cold_p99_ms: percentile(&mut c, 0.99),
            hot_p50_ms: hp50,
            hot_p99_ms: percentile(&mut h, 0.99),
            hot_over_bare: hp50 / bp50,
            cold_overhead_ms: cp50 - bp50,
        });
    }

    eprintln!("bench: SMT batch of {SMT_BATCH}");
    let problems: Vec<String> = (0..SMT_BATCH)
        .map(|i| format!("(declare-const x Int)(declare-const y Int)(assert (= (+ x y) {i}))(assert (> x (* 2 y)))(check-sat)\n"))
        .collect();
    let dir = scratch.join("smt");
    std::fs::create_dir_all(&dir)?;
    let files: Vec<PathBuf> = problems
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let f = dir.join(format!("p{i}.smt2"));
            std::fs::write(&f, p).map(|()| f)
        })
        .collect::<Result<_, _>>()?;
    let t = Instant::now();
    let status = Command::new("/bin/sh")
        .arg("-c")
        .arg(format!(
            "for f in {}/*.smt2; do z3 \"$f\" > /dev/null; done",
            dir.display()
        ))
        .status()?;
    anyhow::ensure!(status.success(), "the shell loop of z3 failed");
    let smt_bare = SMT_BATCH as f64 / t.elapsed().as_secs_f64();
    let t = Instant::now();
    std::thread::scope(|scope| -> anyhow::Result<()> {
        let handles: Vec<_> = (0..2)
            .map(|w| {
                let hot_s = &hot_s;
                let problems = &problems;
                scope.spawn(move || -> anyhow::Result<()> {
                    for p in problems.iter().skip(w).step_by(2) {
                        let request = CallRequest::SmtCheck(SmtRequest {
                            smtlib: p.clone(),
                            backend: SmtBackendChoice::Z3,
                            timeout_s: None,
                            seed: None,
                        });
                        call(hot_s, &request)?;
                    }
                    Ok(())
                })
            })
            .collect();
        for h in handles {
            h.join().map_err(|_| anyhow::anyhow!("worker panicked"))??;
        }
        Ok(())
    })?;
    let smt_capsci = SMT_BATCH as f64 / t.elapsed().as_secs_f64();
    let _ = files;

    eprintln!("bench: durable appends and log verification");
    let appends_store = capsci_store::Store::open(&scratch.join("appends"))?;
    let template = hot
        .store()
        .log()
        .list(0, 1)?
        .into_iter()
        .next()
        .context("a record to copy")?;
    let draft = template.body.draft.clone();
    let n = 4000usize;
    let t = Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..16 {
            let log = appends_store.log();
            let draft = draft.clone();
            scope.spawn(move || {
                for _ in 0..n / 16 {
                    let _ = log.append(draft.clone());
                }
            });
        }
    });
    let appends = n as f64 / t.elapsed().as_secs_f64();
    let t = Instant::now();
    let report = appends_store.log().verify(&capsci_store::VerifyOptions {
        skip_artifacts: true,
        trusted_key: None,
    })?;
    let verify_ms = t.elapsed().as_secs_f64() * 1000.0;
    let rss_after_load_kb = rss_kb();
    let (chain_records, chain_build_s, chain_verify_s) = million_chain(&scratch, &draft)?;
    let highs = highs_rows(&cold_s)?;
    let rocq = Some(rocq_row(&cold_s, &scratch)?);

    let report = Report {
        machine: format!(
            "{} cores, {}",
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(0),
            capsci_sandbox::cpu_model()
        ),
        latency,
        smt_batch: SMT_BATCH,
        smt_bare_loop_per_s: smt_bare,
        smt_capsci_per_s: smt_capsci,
        smt_throughput_ratio: smt_capsci / smt_bare,
        durable_appends_per_s: appends,
        verify_records: report.records,
        verify_ms,
        rss_idle_kb,
        rss_after_load_kb,
        highs,
        rocq,
        chain_records,
        chain_build_s,
        chain_verify_s,
    };
    drop(hot);
    let _ = std::fs::remove_dir_all(&scratch);
    let markdown = render(&report);
    if cli.json {
        out!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        out!("{markdown}");
    }
    let results = Path::new("bench-results");
    std::fs::create_dir_all(results)?;
    std::fs::write(results.join("bench.md"), &markdown)?;
    std::fs::write(
        results.join("bench.json"),
        serde_json::to_vec_pretty(&report)?,
    )?;
    Ok(std::process::ExitCode::SUCCESS)
}

fn render(r: &Report) -> String {
    let mut md = String::new();
    let _ = writeln!(
        md,
        "# capsci bench\n\nMachine: {}. {SAMPLES} calls per cell; ms.\n",
        r.machine
    );
    let _ = writeln!(md, "| call | bare p50 | bare p99 | cold p50 | cold p99 | hot p50 | hot p99 | hot/bare | cold overhead |");
    let _ = writeln!(md, "|---|---|---|---|---|---|---|---|---|");
    for l in &r.latency {
        let _ = writeln!(
            md,
            "| {} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} | {:.2}x | {:+.1} |",
            l.case,
            l.bare_p50_ms,
            l.bare_p99_ms,
            l.cold_p50_ms,
            l.cold_p99_ms,
            l.hot_p50_ms,
            l.hot_p99_ms,
            l.hot_over_bare,
            l.cold_overhead_ms
        );
    }
    let _ = writeln!(
        md,
        "\nSMT batch of {}: shell loop of bare z3 {:.0}/s, capsci (2 workers, hot spares, sandboxed, recorded) {:.0}/s — {:.2}x.",
        r.smt_batch, r.smt_bare_loop_per_s, r.smt_capsci_per_s, r.smt_throughput_ratio
    );
    let _ = writeln!(
        md,
        "Durable provenance appends (16 writers, group commit): {:.0}/s.",
        r.durable_appends_per_s
    );
    let _ = writeln!(
        md,
        "Log verification: {} records in {:.0} ms.",
        r.verify_records, r.verify_ms
    );
    let _ = writeln!(
        md,
        "Resident memory: {} KiB idle (service open), {} KiB after the load.",
        r.rss_idle_kb, r.rss_after_load_kb
    );
    let _ = writeln!(
        md,
        "Chain of {} records: built in {:.1} s, verified (chain and signed checkpoint) in {:.2} s.",
        r.chain_records, r.chain_build_s, r.chain_verify_s
    );
    let solves: Vec<&SolveRow> = r.highs.iter().chain(r.rocq.iter()).collect();
    if !solves.is_empty() {
        let _ = writeln!(
            md,
            "\n| solve | bare median | capsci median | overhead |\n|---|---|---|---|"
        );
        for row in solves {
            let _ = writeln!(
                md,
                "| {} | {:.1} ms | {:.1} ms | {:+.0}% |",
                row.case,
                row.bare_ms,
                row.capsci_ms,
                row.overhead * 100.0
            );
        }
    }
    md
}
