//! Fixtures shared by the integration tests: temporary stores, sample records, and re-running
//! the test binary itself as a child process.
#![allow(dead_code)]

use capsci_core::{
    ArtifactRefs, BackendIdentity, ExitReason, HostFacts, Limits, MemoryLimitBy, SandboxInfo, Usage,
};
use capsci_store::{RecordDraft, Store};
use std::path::PathBuf;
use std::process::{Command, Stdio};

/// A fresh, empty directory under the system temp dir, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(name: &str) -> Self {
        let n = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let dir = std::env::temp_dir().join(format!(
            "capsci-store-test-{name}-{}-{n}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create temp dir");
        TempDir(dir)
    }

    pub fn path(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A draft naming real artifacts stored in `store` (input, output, log unique to `n`).
pub fn draft(store: &Store, n: u64) -> RecordDraft {
    let a = store.artifacts();
    let input = a
        .put_bytes(
            format!("(assert (> x {n}))\n(check-sat)\n").as_bytes(),
            "application/smt2",
        )
        .expect("put input");
    let output = a.put_bytes(b"sat\n", "text/plain").expect("put output");
    let log = a
        .put_bytes(format!("log of call {n}\n").as_bytes(), "text/plain")
        .expect("put log");
    bare_draft(
        n,
        Some(input.to_string()),
        Some(output.to_string()),
        Some(log.to_string()),
    )
}

/// A draft whose artifact ids are given (or absent).
pub fn bare_draft(
    n: u64,
    input: Option<String>,
    output: Option<String>,
    log: Option<String>,
) -> RecordDraft {
    RecordDraft {
        principal: "agent:test".into(),
        runner: serde_json::json!({"runner": "cargo-test", "n": n}),
        interface: "SmtSolver".into(),
        method: "check".into(),
        status: "sat".into(),
        job: Some(format!("job_test_{n}")),
        backend: BackendIdentity {
            name: "z3".into(),
            version: "4.8.12".into(),
            closure: "blake3:closure-under-test".into(),
        },
        artifacts: ArtifactRefs {
            input,
            output,
            log,
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
            policy: "blake3:policy".into(),
            boundary: "shared host kernel".into(),
            ..Default::default()
        },
        host: HostFacts {
            kernel: "6.18".into(),
            cpu_model: "test cpu".into(),
            memory_limit_by: MemoryLimitBy::CgroupV1,
        },
        started_at: "2026-11-27T12:00:00.000000Z".into(),
        finished_at: "2026-11-27T12:00:00.012000Z".into(),
    }
}

/// The environment variable that turns a run of this test binary into a child process.
pub const CHILD_MODE: &str = "CAPSCI_STORE_TEST_CHILD";
/// The store directory the child uses.
pub const CHILD_DIR: &str = "CAPSCI_STORE_TEST_DIR";

/// Runs this test binary again with only `test_name`, as a child in `mode` on `dir`.
pub fn child(test_name: &str, mode: &str, dir: &std::path::Path) -> Command {
    let exe = std::env::current_exe().expect("current exe");
    let mut cmd = Command::new(exe);
    cmd.args([test_name, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_MODE, mode)
        .env(CHILD_DIR, dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    cmd
}

/// The child's mode and store directory, when this process is a child.
pub fn child_mode() -> Option<(String, PathBuf)> {
    let mode = std::env::var(CHILD_MODE).ok()?;
    let dir = std::env::var_os(CHILD_DIR)?;
    Some((mode, PathBuf::from(dir)))
}
