//! The command line's contract (DESIGN.md): `--json` prints exactly the envelope; exit 0 whenever
//! an envelope was produced, whatever its status; exit 2 with a one-line reason when no job
//! could be made; `log verify` exits 0 intact, 1 damaged (naming the first bad record).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn store(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("capsci-cli-e2e-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn capsci(store: &Path, args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_capsci"))
        .args(args)
        .env("CAPSCI_STORE", store)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run capsci");
    if let Some(text) = stdin {
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(text.as_bytes())
            .expect("write stdin");
    }
    drop(child.stdin.take());
    child.wait_with_output().expect("wait")
}

fn envelope(out: &Output) -> serde_json::Value {
    assert!(
        out.status.success(),
        "exit {:?}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("stdout is exactly one JSON envelope")
}

#[test]
fn json_prints_exactly_the_envelope_and_it_parses_as_the_typed_envelope() {
    let dir = store("json");
    let out = capsci(&dir, &["--json", "gp", "2+2"], None);
    let json = envelope(&out);
    assert_eq!(json["status"], "ok");
    assert_eq!(json["result"]["value"], "4");
    let typed: capsci_core::Envelope =
        serde_json::from_value(json).expect("matches the published types");
    assert!(typed.job.starts_with("job_"));
    assert!(typed.provenance.is_some());
}

#[test]
fn a_failed_status_still_exits_zero_with_its_envelope() {
    let dir = store("status");
    let json = envelope(&capsci(&dir, &["--json", "gp", "1/0"], None));
    assert_eq!(json["status"], "error");
    let json = envelope(&capsci(
        &dir,
        &["--json", "smt", "check", "-"],
        Some("(assert (> x"),
    ));
    assert_eq!(json["status"], "invalid_input");
}

#[test]
fn smt_reads_stdin_and_reports_the_model_re_checked() {
    let dir = store("smt");
    let json = envelope(&capsci(
        &dir,
        &["--json", "smt", "check", "-", "--backend", "all"],
        Some("(declare-const x Int)(assert (> x 41))(assert (< x 43))(check-sat)"),
    ));
    assert_eq!(json["status"], "sat");
    assert_eq!(json["evidence"], "checked");
    assert_eq!(json["result"]["model"][0]["value"], "42");
    assert_eq!(json["result"]["backends"].as_array().map(Vec::len), Some(2));
}

#[test]
fn no_job_means_exit_two_with_one_line() {
    let dir = store("nojob");
    let out = capsci(&dir, &["smt", "check", "/nonexistent/file.smt2"], None);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        stderr.trim().lines().count(),
        1,
        "one-line reason: {stderr}"
    );
    assert!(stderr.contains("/nonexistent/file.smt2"));
    let not_a_dir =
        std::env::temp_dir().join(format!("capsci-cli-e2e-file-{}", std::process::id()));
    std::fs::write(&not_a_dir, b"x").expect("write");
    let out = capsci(&not_a_dir, &["gp", "1"], None);
    assert_eq!(
        out.status.code(),
        Some(2),
        "an unusable store is a clear error"
    );
    std::fs::remove_file(not_a_dir).ok();
}

#[test]
fn log_verify_finds_a_changed_artifact_and_names_it() {
    let dir = store("verify");
    let json = envelope(&capsci(&dir, &["--json", "gp", "factor(1001)"], None));
    let ok = capsci(&dir, &["log", "verify"], None);
    assert_eq!(
        ok.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let output_id = json["artifacts"]["input"]
        .as_str()
        .expect("input id")
        .to_string();
    let hex = output_id.trim_start_matches("blake3:");
    let object = walk(&dir)
        .into_iter()
        .find(|p| p.to_string_lossy().contains(&hex[2..]))
        .expect("artifact file");
    let mut perms = std::fs::metadata(&object).expect("meta").permissions();
    #[allow(clippy::permissions_set_readonly_false)]
    perms.set_readonly(false);
    std::fs::set_permissions(&object, perms).expect("chmod");
    let mut bytes = std::fs::read(&object).expect("read");
    bytes[0] ^= 1;
    std::fs::write(&object, bytes).expect("tamper");
    let bad = capsci(&dir, &["log", "verify"], None);
    assert_eq!(bad.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(
        stderr.contains(hex) || stderr.contains("record 1"),
        "names the bad artifact or record: {stderr}"
    );
}

#[test]
fn a_detached_job_can_be_waited_for() {
    let dir = store("detach");
    let out = capsci(&dir, &["--detach", "gp", "2^100"], None);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let job = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(job.starts_with("job_"));
    let waited = envelope(&capsci(&dir, &["job", "wait", &job], None));
    assert_eq!(waited["status"], "ok");
    assert_eq!(waited["result"]["value"], "1267650600228229401496703205376");
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

#[test]
fn the_demo_runs_and_every_record_of_it_replays_identically() {
    let dir = store("demo");
    let out = capsci(&dir, &["demo"], None);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "demo failed:\n{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("log verify: intact"), "{text}");
    let records: serde_json::Value =
        serde_json::from_slice(&capsci(&dir, &["--json", "log", "show"], None).stdout)
            .expect("records");
    let ids: Vec<String> = records
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|r| r["id"].as_str().map(str::to_string))
        .collect();
    assert_eq!(ids.len(), 6, "one record per demo step");
    for id in ids {
        let replay = capsci(&dir, &["--json", "replay", &id], None);
        let report: serde_json::Value =
            serde_json::from_slice(&replay.stdout).expect("replay report");
        assert_eq!(report["verdict"], "identical", "{id}: {report}");
        assert_eq!(replay.status.code(), Some(0));
    }
    let verify = capsci(&dir, &["log", "verify"], None);
    assert_eq!(
        verify.status.code(),
        Some(0),
        "the replays were recorded and the chain still verifies"
    );
}

#[test]
fn replay_of_an_unknown_record_is_a_clear_error() {
    let dir = store("replay-unknown");
    let out = capsci(&dir, &["replay", "rec_does_not_exist"], None);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("rec_does_not_exist"));
}

#[test]
fn a_token_is_issued_once_and_stops_working_when_revoked() {
    let dir = store("token");
    let grant = dir.join("grant.json");
    std::fs::create_dir_all(&dir).expect("dir");
    std::fs::write(
        &grant,
        r#"{"profile":"smt-only","methods":[{"interface":"SmtSolver","method":"check"}]}"#,
    )
    .expect("grant file");
    let out = capsci(
        &dir,
        &[
            "token",
            "issue",
            "--grant",
            grant.to_str().expect("path"),
            "--principal",
            "agent:t",
        ],
        None,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(token.starts_with("capsci_") && token.len() > 60, "{token}");
    let resolved = capsci_service::tokens::TokenStore::open(&dir)
        .expect("tokens")
        .resolve(&token)
        .expect("known token");
    assert_eq!(resolved.principal, "agent:t");
    assert!(resolved.grant.allows(
        capsci_core::Interface::SmtSolver,
        capsci_core::Method::Check
    ));
    assert!(!resolved.grant.allows(
        capsci_core::Interface::NumberTheory,
        capsci_core::Method::Eval
    ));
    assert!(capsci(&dir, &["token", "revoke", &token], None)
        .status
        .success());
    let again = capsci(&dir, &["token", "revoke", &token], None);
    assert_eq!(again.status.code(), Some(2), "a revoked token is unknown");
    let bad = capsci(
        &dir,
        &[
            "token",
            "issue",
            "--grant",
            "/nonexistent.json",
            "--principal",
            "x",
        ],
        None,
    );
    assert_eq!(bad.status.code(), Some(2));
}
