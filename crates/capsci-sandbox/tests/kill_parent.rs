//! `kill -9` of the capsci process mid-job leaves no stray process, and the next capsci start
//! removes the job's cgroups and work directory.

mod common;

use capsci_core::Limits;
use capsci_sandbox::{BwrapSandbox, CancelToken, Sandbox, SandboxConfig};
use common::*;
use std::path::PathBuf;
use std::time::{Duration, Instant};

const MARKER: &str = "sleep 6543.5";

/// Not a test of its own: when re-executed with `CAPSCI_TEST_VICTIM=1`, this is the capsci
/// process that gets killed mid-job.
#[test]
fn victim_process() {
    if std::env::var_os("CAPSCI_TEST_VICTIM").is_none() {
        return;
    }
    let lim = Limits {
        wall_s: 600.0,
        ..limits()
    };
    let _ = sandbox().run(&policy(lim), sh(MARKER), &CancelToken::new());
}

fn uids_of_range(range: std::ops::Range<u32>) -> Vec<u32> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Ok(status) = std::fs::read_to_string(format!("/proc/{name}/status")) else {
            continue;
        };
        let uid = status
            .lines()
            .find(|l| l.starts_with("Uid:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|u| u.parse::<u32>().ok());
        if uid.is_some_and(|u| range.contains(&u)) {
            found.push(name.parse().unwrap_or(0));
        }
    }
    found
}

#[test]
fn kill_minus_nine_of_capsci_mid_job_leaves_no_stray_process() {
    let _g = serial();
    let exe = std::env::current_exe().expect("test binary");
    let mut victim = std::process::Command::new(exe)
        .args([
            "--exact",
            "victim_process",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("CAPSCI_TEST_VICTIM", "1")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start victim");
    let victim_pid = victim.id();
    let until = Instant::now() + Duration::from_secs(60);
    while processes_with(MARKER).is_empty() && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        processes_with(MARKER).len(),
        1,
        "the victim's job never started"
    );
    let defaults = SandboxConfig::default();
    let first = defaults.uid_base + (victim_pid % 64) * defaults.slots;
    let victim_uids = first..first + defaults.slots;
    assert!(!uids_of_range(victim_uids.clone()).is_empty());

    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(victim_pid as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .expect("kill -9");
    victim.wait().expect("reap victim");

    assert!(
        settle(|| processes_with(MARKER)).is_empty(),
        "the sandboxed sleep outlived capsci"
    );
    assert!(
        settle(|| uids_of_range(victim_uids.clone())).is_empty(),
        "a job-uid process outlived capsci"
    );

    // The next capsci start sweeps what the dead one left (cgroups, work directory).
    let config = SandboxConfig {
        jail: Some(PathBuf::from(env!("CARGO_BIN_EXE_capsci-jail"))),
        ..Default::default()
    };
    let fresh = BwrapSandbox::new(config).expect("sandbox");
    let prefix = format!("{victim_pid}-");
    let mut dirs = vec![fresh.runtime_dir().join("jobs")];
    for ctl in ["memory", "pids", "cpuacct"] {
        dirs.push(PathBuf::from("/sys/fs/cgroup").join(ctl).join("capsci"));
    }
    for dir in dirs {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            assert!(
                !entry.file_name().to_string_lossy().starts_with(&prefix),
                "left behind: {}",
                entry.path().display()
            );
        }
    }
    let out = fresh
        .run(&policy(limits()), sh("echo alive"), &CancelToken::new())
        .expect("outcome");
    assert_eq!(out.exit, capsci_core::ExitReason::Exited(0));
    assert_clean_and_healthy();
}
