//! Shared helpers of the integration tests: one sandbox per test binary, tests serialised (so
//! the "no process left" scans see only their own job), and the stray-process checks.
#![allow(dead_code)]

use capsci_core::Limits;
use capsci_sandbox::{
    Bind, BwrapSandbox, CancelToken, Command, Outcome, Sandbox, SandboxConfig, SandboxPolicy,
    SyscallFilter,
};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

static LOCK: Mutex<()> = Mutex::new(());

/// Serialises the tests of one binary.
pub fn serial() -> MutexGuard<'static, ()> {
    LOCK.lock().unwrap_or_else(|p| p.into_inner())
}

/// The sandbox under test, using the helper cargo built for this crate.
pub fn sandbox() -> Arc<BwrapSandbox> {
    static SB: OnceLock<Arc<BwrapSandbox>> = OnceLock::new();
    SB.get_or_init(|| {
        let config = SandboxConfig {
            jail: Some(PathBuf::from(env!("CARGO_BIN_EXE_capsci-jail"))),
            ..Default::default()
        };
        Arc::new(BwrapSandbox::new(config).expect("bwrap sandbox on this host"))
    })
    .clone()
}

/// A policy binding /usr read-only (sh, coreutils, python3.11, gp, z3 live there).
pub fn policy(limits: Limits) -> SandboxPolicy {
    SandboxPolicy {
        backend: "test".into(),
        ro_binds: vec![Bind::same("/usr")],
        env: Default::default(),
        limits,
        network: false,
        syscall_filter: SyscallFilter::SolverDefault,
    }
}

/// Small limits for attack tests.
pub fn limits() -> Limits {
    Limits {
        wall_s: 20.0,
        cpu_s: 20.0,
        memory_mb: 256,
        pids: 32,
        file_size_mb: 16,
        output_bytes: 1 << 20,
    }
}

pub fn sh(script: &str) -> Command {
    Command {
        program: "/usr/bin/sh".into(),
        args: vec!["-c".into(), script.into()],
        ..Default::default()
    }
}

pub fn python(code: &str) -> Command {
    Command {
        program: "/usr/bin/python3.11".into(),
        args: vec!["-c".into(), code.into()],
        ..Default::default()
    }
}

pub fn run(command: Command, limits: Limits) -> Outcome {
    sandbox()
        .run(&policy(limits), command, &CancelToken::new())
        .expect("an outcome")
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn proc_uid(pid: &str) -> Option<u32> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("Uid:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Pids of live processes whose real uid is one of the sandbox's job uids.
pub fn job_uid_processes() -> Vec<(u32, String)> {
    let range = sandbox().uid_range();
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.chars().all(|c| c.is_ascii_digit()) {
            continue;
        }
        if let Some(uid) = proc_uid(&name) {
            if range.contains(&uid) {
                let cmd = std::fs::read(format!("/proc/{name}/cmdline")).unwrap_or_default();
                found.push((name.parse().unwrap_or(0), text(&cmd).replace('\0', " ")));
            }
        }
    }
    found
}

/// Pids of live processes whose command line starts with `marker`.
pub fn processes_with(marker: &str) -> Vec<u32> {
    let me = std::process::id().to_string();
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.chars().all(|c| c.is_ascii_digit()) || name == me {
            continue;
        }
        let cmd = text(&std::fs::read(format!("/proc/{name}/cmdline")).unwrap_or_default())
            .replace('\0', " ");
        if cmd.starts_with(marker) {
            found.push(name.parse().unwrap_or(0));
        }
    }
    found
}

/// Waits (bounded) until `check` is empty; returns what was left.
pub fn settle<T>(mut check: impl FnMut() -> Vec<T>) -> Vec<T> {
    let until = Instant::now() + Duration::from_secs(5);
    loop {
        let left = check();
        if left.is_empty() || Instant::now() >= until {
            return left;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Job cgroups and work directories of this process still present.
pub fn leftovers() -> Vec<PathBuf> {
    let prefix = format!("{}-", std::process::id());
    let mut dirs = vec![sandbox().runtime_dir().join("jobs")];
    for ctl in ["memory", "pids", "cpuacct"] {
        dirs.push(PathBuf::from("/sys/fs/cgroup").join(ctl).join("capsci"));
    }
    let mut found = Vec::new();
    for dir in dirs {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            if entry.file_name().to_string_lossy().starts_with(&prefix) && entry.path().is_dir() {
                found.push(entry.path());
            }
        }
    }
    found
}

/// Asserts no job process, cgroup or work directory is left, and that the next call works.
pub fn assert_clean_and_healthy() {
    let strays = settle(job_uid_processes);
    assert!(strays.is_empty(), "stray sandbox processes: {strays:?}");
    let left = settle(leftovers);
    assert!(left.is_empty(), "leftover job dirs/cgroups: {left:?}");
    let out = run(sh("echo healthy"), limits());
    assert_eq!(
        out.exit,
        capsci_core::ExitReason::Exited(0),
        "stderr: {}",
        text(&out.stderr)
    );
    assert_eq!(text(&out.stdout), "healthy\n");
}
