//! The attacks of issue 3, each against the real sandbox: the exact exit reason, nothing
//! outside touched, no process left, and the next call still works.

mod common;

use capsci_core::{ExitReason, Limits, MemoryLimitBy};
use capsci_sandbox::{CancelToken, Command, Sandbox};
use common::*;
use std::path::PathBuf;
use std::time::Duration;

#[test]
fn a_trivial_call_reports_its_sandbox_and_usage() {
    let _g = serial();
    let mut cmd = sh("cat; echo err >&2; pwd; echo $HOME; id -u; echo out > result.txt");
    cmd.stdin = b"from stdin\n".to_vec();
    cmd.files = vec![(PathBuf::from("in/data.txt"), b"data".to_vec())];
    cmd.collect = vec![PathBuf::from("result.txt"), PathBuf::from("missing.txt")];
    let pol = policy(limits());
    let out = sandbox()
        .run(&pol, cmd, &CancelToken::new())
        .expect("outcome");
    assert_eq!(
        out.exit,
        ExitReason::Exited(0),
        "stderr: {}",
        text(&out.stderr)
    );
    let stdout = text(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines[0], "from stdin");
    assert_eq!(lines[1], "/work");
    assert_eq!(lines[2], "/work");
    let uid: u32 = lines[3].parse().expect("uid");
    assert!(sandbox().uid_range().contains(&uid), "ran as uid {uid}");
    assert_eq!(text(&out.stderr), "err\n");
    assert_eq!(
        out.collected,
        vec![(PathBuf::from("result.txt"), b"out\n".to_vec())]
    );
    assert_eq!(out.sandbox.kind, "bwrap");
    assert_eq!(out.sandbox.policy, pol.hash());
    assert_eq!(out.sandbox.boundary, "shared host kernel");
    assert_eq!(
        out.sandbox.enforcement.get("landlock").map(String::as_str),
        Some("fully_enforced")
    );
    assert!(out.sandbox.enforcement.contains_key("seccomp"));
    assert_eq!(out.memory_limit_by, MemoryLimitBy::CgroupV1);
    assert!(out.usage.max_rss_kb > 0);
    assert_clean_and_healthy();
}

#[test]
fn reading_shadow_or_root_home_is_denied() {
    let _g = serial();
    let secret = format!("/root/capsci-secret-{}", std::process::id());
    std::fs::write(&secret, "TOPSECRET").expect("write secret");
    let mut pol = policy(limits());
    pol.ro_binds.push(capsci_sandbox::Bind::same("/etc"));
    let script = format!("cat /etc/shadow; cat {secret}; ls /root; echo end");
    let out = sandbox()
        .run(&pol, sh(&script), &CancelToken::new())
        .expect("outcome");
    std::fs::remove_file(&secret).expect("remove secret");
    assert_eq!(out.exit, ExitReason::Exited(0));
    let stdout = text(&out.stdout);
    assert_eq!(stdout, "end\n", "leaked: {stdout}");
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("/etc/shadow: Permission denied"),
        "{stderr}"
    );
    assert!(stderr.contains("No such file or directory"), "{stderr}");
    assert!(!stdout.contains("TOPSECRET") && !stdout.contains("root:"));
    assert_clean_and_healthy();
}

#[test]
fn writing_outside_the_work_dir_is_denied() {
    let _g = serial();
    let mut cmd = sh(
        "for p in /usr/capsci-evil /evil /proc/evil /.capsci/jail /dev/evil /dev/shm/evil; do \
           (echo x > $p) 2>/dev/null && echo \"wrote $p\" || echo \"denied $p\"; done; \
         mkdir -p /work/sub && echo ok > /work/sub/ok; echo tmp > /tmp/t && echo tmp-ok",
    );
    cmd.collect = vec![PathBuf::from("sub/ok")];
    let out = run(cmd, limits());
    assert_eq!(
        out.exit,
        ExitReason::Exited(0),
        "stderr: {}",
        text(&out.stderr)
    );
    let stdout = text(&out.stdout);
    assert!(!stdout.contains("wrote"), "{stdout}");
    assert_eq!(stdout.matches("denied").count(), 6, "{stdout}");
    assert!(stdout.contains("tmp-ok"));
    assert_eq!(
        out.collected,
        vec![(PathBuf::from("sub/ok"), b"ok\n".to_vec())]
    );
    assert!(!std::path::Path::new("/usr/capsci-evil").exists());
    assert!(!std::path::Path::new("/evil").exists());
    assert_clean_and_healthy();
}

#[test]
fn a_planted_symlink_is_not_collected() {
    let _g = serial();
    let mut cmd = sh("ln -s /etc/hostname leak; ln -s /work/.. up");
    cmd.collect = vec![PathBuf::from("leak"), PathBuf::from("up/status")];
    let out = run(cmd, limits());
    assert_eq!(out.exit, ExitReason::Exited(0));
    assert!(
        out.collected.is_empty(),
        "collected through a symlink: {:?}",
        out.collected
    );
    assert_clean_and_healthy();
}

#[test]
fn a_local_tcp_port_outside_is_unreachable() {
    let _g = serial();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("listen");
    listener.set_nonblocking(true).expect("nonblocking");
    let port = listener.local_addr().expect("addr").port();
    let code = format!(
        "import socket\ns = socket.socket()\ns.settimeout(3)\ntry:\n    s.connect(('127.0.0.1', {port}))\n    print('connected')\nexcept OSError as e:\n    print('refused', type(e).__name__)\n"
    );
    let out = run(python(&code), limits());
    assert_eq!(
        out.exit,
        ExitReason::Exited(0),
        "stderr: {}",
        text(&out.stderr)
    );
    let stdout = text(&out.stdout);
    assert!(stdout.starts_with("refused"), "{stdout}");
    match listener.accept() {
        Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::WouldBlock),
        Ok((_, peer)) => panic!("the sandbox reached the host listener from {peer}"),
    }
    assert_clean_and_healthy();
}

#[test]
fn a_policy_with_network_on_reaches_the_host_port() {
    let _g = serial();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("listen");
    let port = listener.local_addr().expect("addr").port();
    let code = format!(
        "import socket\nsocket.create_connection(('127.0.0.1', {port}), 3)\nprint('connected')\n"
    );
    let mut pol = policy(limits());
    pol.network = true;
    let out = sandbox()
        .run(&pol, python(&code), &CancelToken::new())
        .expect("outcome");
    assert_eq!(
        out.exit,
        ExitReason::Exited(0),
        "stderr: {}",
        text(&out.stderr)
    );
    assert_eq!(text(&out.stdout), "connected\n");
    assert_clean_and_healthy();
}

#[test]
fn a_fork_bomb_hits_the_pids_limit() {
    let _g = serial();
    let out = run(sh("bomb() { bomb | bomb & }; bomb; sleep 30"), limits());
    assert_eq!(
        out.exit,
        ExitReason::PidsLimit,
        "stderr: {}",
        text(&out.stderr)
    );
    assert_clean_and_healthy();
}

#[test]
fn allocating_ten_gib_hits_the_memory_limit() {
    let _g = serial();
    let code = "chunks = []\nfor _ in range(160):\n    chunks.append(bytearray(64 << 20))\nprint('allocated 10 GiB')\n";
    let out = run(python(code), limits());
    assert_eq!(
        out.exit,
        ExitReason::MemoryLimit,
        "stderr: {}",
        text(&out.stderr)
    );
    assert!(!text(&out.stdout).contains("allocated"));
    assert!(
        out.usage.max_rss_kb <= 256 * 1024 + 1024,
        "rss {}",
        out.usage.max_rss_kb
    );
    assert_clean_and_healthy();
}

#[test]
fn an_infinite_loop_times_out() {
    let _g = serial();
    let lim = Limits {
        wall_s: 1.0,
        cpu_s: 10.0,
        ..limits()
    };
    let out = run(sh("while :; do :; done"), lim);
    assert_eq!(out.exit, ExitReason::Timeout);
    assert!(out.usage.wall_ms >= 1000);
    assert_clean_and_healthy();
}

#[test]
fn an_infinite_loop_hits_the_cpu_limit_first_when_it_is_lower() {
    let _g = serial();
    let lim = Limits {
        wall_s: 20.0,
        cpu_s: 0.5,
        ..limits()
    };
    let out = run(sh("while :; do :; done"), lim);
    assert_eq!(out.exit, ExitReason::CpuLimit);
    assert!(out.usage.cpu_ms >= 500, "cpu {}", out.usage.cpu_ms);
    assert_clean_and_healthy();
}

#[test]
fn printing_a_gibibyte_hits_the_output_limit() {
    let _g = serial();
    let out = run(sh("head -c 1073741824 /dev/zero"), limits());
    assert_eq!(out.exit, ExitReason::OutputLimit);
    assert_eq!(out.stdout.len(), 1 << 20);
    assert_clean_and_healthy();
}

#[test]
fn a_big_file_hits_the_file_size_limit() {
    let _g = serial();
    let out = run(sh("head -c 33554432 /dev/zero > big"), limits());
    assert_eq!(
        out.exit,
        ExitReason::FileSizeLimit,
        "stderr: {}",
        text(&out.stderr)
    );
    assert_clean_and_healthy();
}

#[test]
fn a_double_forked_child_does_not_outlive_the_call() {
    let _g = serial();
    let out = run(sh("(sh -c 'sleep 4321.5' &) ; echo parent done"), limits());
    assert_eq!(out.exit, ExitReason::Exited(0));
    assert_eq!(text(&out.stdout), "parent done\n");
    assert!(settle(|| processes_with("sleep 4321.5")).is_empty());
    assert_clean_and_healthy();
}

#[test]
fn cancelling_mid_run_kills_the_tree() {
    let _g = serial();
    let cancel = CancelToken::new();
    let token = cancel.clone();
    let call = std::thread::spawn(move || {
        sandbox()
            .run(
                &policy(limits()),
                sh("sleep 5432.5 & sleep 5432.5; wait"),
                &token,
            )
            .expect("outcome")
    });
    let until = std::time::Instant::now() + Duration::from_secs(10);
    while processes_with("sleep 5432.5").len() < 2 && std::time::Instant::now() < until {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(
        processes_with("sleep 5432.5").len(),
        2,
        "the job never started"
    );
    cancel.cancel();
    let out = call.join().expect("call thread");
    assert_eq!(out.exit, ExitReason::Cancelled);
    assert!(settle(|| processes_with("sleep 5432.5")).is_empty());
    assert_clean_and_healthy();
}

#[test]
fn a_missing_program_is_a_sandbox_error_not_a_panic() {
    let _g = serial();
    let cmd = Command {
        program: "/usr/bin/no-such-tool".into(),
        ..Default::default()
    };
    let out = run(cmd, limits());
    assert_eq!(out.exit, ExitReason::SandboxError);
    assert!(
        text(&out.stderr).contains("no-such-tool"),
        "{}",
        text(&out.stderr)
    );
    let mut pol = policy(limits());
    pol.ro_binds
        .push(capsci_sandbox::Bind::same("/no/such/path"));
    let out = sandbox()
        .run(&pol, sh("true"), &CancelToken::new())
        .expect("outcome");
    assert_eq!(out.exit, ExitReason::SandboxError);
    assert_clean_and_healthy();
}

#[test]
fn work_paths_that_escape_are_refused() {
    let _g = serial();
    let mut cmd = sh("true");
    cmd.files = vec![(PathBuf::from("../escape"), b"x".to_vec())];
    let err = sandbox()
        .run(&policy(limits()), cmd, &CancelToken::new())
        .expect_err("refused");
    assert!(
        matches!(err, capsci_sandbox::SandboxError::BadWorkPath(_)),
        "{err}"
    );
    assert_clean_and_healthy();
}

#[test]
fn seccomp_denies_namespaces_and_ptrace_inside() {
    let _g = serial();
    let code = "import ctypes, os\nlibc = ctypes.CDLL(None, use_errno=True)\n\
print('unshare', libc.unshare(0x10000000), ctypes.get_errno())\n\
print('ptrace', libc.ptrace(16, 1, 0, 0), ctypes.get_errno())\n\
print('keyctl', libc.syscall(250, 0, 0, 0, 0, 0), ctypes.get_errno())\n";
    let out = run(python(code), limits());
    assert_eq!(
        out.exit,
        ExitReason::Exited(0),
        "stderr: {}",
        text(&out.stderr)
    );
    assert_eq!(
        text(&out.stdout),
        "unshare -1 1\nptrace -1 1\nkeyctl -1 1\n"
    );
    assert_clean_and_healthy();
}

#[test]
fn concurrent_calls_run_under_distinct_uids() {
    let _g = serial();
    let calls: Vec<_> = (0..4)
        .map(|i| {
            std::thread::spawn(move || run(sh(&format!("sleep 0.3; echo {i}; id -u")), limits()))
        })
        .collect();
    let mut uids = Vec::new();
    for (i, call) in calls.into_iter().enumerate() {
        let out = call.join().expect("call thread");
        assert_eq!(
            out.exit,
            ExitReason::Exited(0),
            "stderr: {}",
            text(&out.stderr)
        );
        let stdout = text(&out.stdout);
        let mut lines = stdout.lines();
        assert_eq!(lines.next(), Some(i.to_string().as_str()));
        uids.push(lines.next().expect("uid line").to_string());
    }
    uids.sort();
    uids.dedup();
    assert_eq!(uids.len(), 4, "uids were shared: {uids:?}");
    assert_clean_and_healthy();
}

#[test]
fn a_large_stdin_is_fed_while_output_is_drained() {
    let _g = serial();
    let input: Vec<u8> = (0..(1 << 20)).map(|i| (i % 251) as u8).collect();
    let mut cmd = sh("cat; cat /dev/null >&2");
    cmd.stdin = input.clone();
    let lim = Limits {
        output_bytes: 2 << 20,
        ..limits()
    };
    let out = run(cmd, lim);
    assert_eq!(out.exit, ExitReason::Exited(0));
    assert_eq!(out.stdout, input);
    assert_clean_and_healthy();
}
