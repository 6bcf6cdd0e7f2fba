//! Load: 8 concurrent clients — 4 over Cap'n Proto (`capsci --connect` to a running
//! `capsci serve`) and 4 over MCP (`capsci mcp` on stdio) — each making a bounded number of mixed
//! calls, some timing out and some malformed. Afterwards every job has a final status, the log
//! verifies, no sandboxed process is left, and the server's memory is back near its idle level.

use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const CAPSCI: &str = env!("CARGO_BIN_EXE_capsci");
const SAT: &str = "(declare-const x Int)(assert (> x 41))(assert (< x 43))(check-sat)";

/// The mixed workload every client runs: (what, expected status).
fn workload() -> Vec<(&'static str, &'static str)> {
    vec![
        ("gp", "ok"),
        ("smt", "sat"),
        ("cas", "ok"),
        ("timeout", "timeout"),
        ("malformed", "invalid_input"),
    ]
}

fn store(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("capsci-load-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("store dir");
    dir
}

fn rss_kb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// Processes running as a sandbox job uid (capsci's job uids start at 200000).
fn sandboxed_processes() -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let status = std::fs::read_to_string(entry.path().join("status")).unwrap_or_default();
        let uid: u32 = status
            .lines()
            .find(|l| l.starts_with("Uid:"))
            .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
            .unwrap_or(0);
        let zombie = status
            .lines()
            .any(|l| l.starts_with("State:") && l.contains('Z'));
        if uid >= 200_000 && !zombie {
            found.push(format!("{} uid {uid}", entry.file_name().to_string_lossy()));
        }
    }
    found
}

fn cli_call(store: &Path, addr: &str, what: &str) -> Value {
    let mut args: Vec<String> = vec!["--connect".into(), addr.into(), "--json".into()];
    let mut stdin = None;
    match what {
        "gp" => args.extend(["gp".into(), "factor(2^64+1)".into()]),
        "smt" => {
            args.extend(["smt".into(), "check".into(), "-".into()]);
            stdin = Some(SAT);
        }
        "cas" => args.extend([
            "cas".into(),
            "diff".into(),
            "x*sin(x)".into(),
            "--var".into(),
            "x".into(),
        ]),
        "timeout" => args.extend([
            "gp".into(),
            "while(1,)".into(),
            "--timeout".into(),
            "1".into(),
        ]),
        _ => {
            args.extend(["smt".into(), "check".into(), "-".into()]);
            stdin = Some("(assert (> x");
        }
    }
    let mut child = Command::new(CAPSCI)
        .args(&args)
        .env("CAPSCI_STORE", store)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("capsci --connect");
    if let (Some(text), Some(mut input)) = (stdin, child.stdin.take()) {
        input.write_all(text.as_bytes()).expect("stdin");
    }
    drop(child.stdin.take());
    let out = child.wait_with_output().expect("wait");
    assert!(
        out.status.success(),
        "{what}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("envelope JSON")
}

struct McpClient {
    child: Child,
    reader: BufReader<std::process::ChildStdout>,
    next_id: u64,
}

impl McpClient {
    fn start(store: &Path) -> Self {
        let mut child = Command::new(CAPSCI)
            .arg("mcp")
            .env("CAPSCI_STORE", store)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("capsci mcp");
        let reader = BufReader::new(child.stdout.take().expect("stdout"));
        let mut client = McpClient {
            child,
            reader,
            next_id: 1,
        };
        let init = client.request("initialize", json!({
            "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "load-test", "version": "1"}
        }));
        assert!(init["result"]["serverInfo"]["name"].is_string(), "{init}");
        client.send(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}));
        client
    }

    fn send(&mut self, message: &Value) {
        let stdin = self.child.stdin.as_mut().expect("stdin");
        writeln!(stdin, "{message}").expect("write");
        stdin.flush().expect("flush");
    }

    fn request(&mut self, method: &str, params: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        self.send(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}));
        loop {
            let mut line = String::new();
            assert!(
                self.reader.read_line(&mut line).expect("read") > 0,
                "the MCP server closed"
            );
            let message: Value = serde_json::from_str(&line).expect("JSON-RPC line");
            if message["id"] == id {
                return message;
            }
        }
    }

    fn call(&mut self, what: &str) -> Value {
        let (name, arguments) = match what {
            "gp" => ("number_theory_eval", json!({"expr": "factor(2^64+1)"})),
            "smt" => ("smt_solver_check", json!({"smtlib": SAT})),
            "cas" => (
                "computer_algebra",
                json!({"op": "diff", "expr": "x*sin(x)", "var": ["x"]}),
            ),
            "timeout" => (
                "number_theory_eval",
                json!({"expr": "while(1,)", "timeout_s": 1.0}),
            ),
            _ => ("smt_solver_check", json!({"smtlib": "(assert (> x"})),
        };
        let reply = self.request("tools/call", json!({"name": name, "arguments": arguments}));
        reply["result"]["structuredContent"].clone()
    }
}

impl Drop for McpClient {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn eight_concurrent_clients_over_capnp_and_mcp_leave_a_clean_service() {
    let store = store("mixed");
    let socket = store.join("load.sock");
    let addr = format!("unix:{}", socket.display());
    let mut server = Command::new(CAPSCI)
        .args(["serve", "--capnp", &addr])
        .env("CAPSCI_STORE", &store)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("capsci serve");
    let deadline = Instant::now() + Duration::from_secs(20);
    while !socket.exists() {
        assert!(Instant::now() < deadline, "capsci serve did not listen");
        std::thread::sleep(Duration::from_millis(50));
    }
    // Warm the server (closures, spare pools), then take its idle memory.
    let warm = cli_call(&store, &addr, "gp");
    assert_eq!(warm["status"], "ok");
    std::thread::sleep(Duration::from_secs(1));
    let idle_kb = rss_kb(server.id());

    let results: Vec<(String, String, String)> = std::thread::scope(|scope| {
        let mut handles = Vec::new();
        for client in 0..4 {
            let (store, addr) = (&store, &addr);
            handles.push(scope.spawn(move || {
                workload()
                    .into_iter()
                    .map(|(what, want)| {
                        let envelope = cli_call(store, addr, what);
                        (
                            format!("capnp{client} {what}"),
                            want.to_string(),
                            envelope["status"].as_str().unwrap_or("?").to_string(),
                        )
                    })
                    .collect::<Vec<_>>()
            }));
        }
        for client in 0..4 {
            let store = &store;
            handles.push(scope.spawn(move || {
                let mut mcp = McpClient::start(store);
                workload()
                    .into_iter()
                    .map(|(what, want)| {
                        let envelope = mcp.call(what);
                        (
                            format!("mcp{client} {what}"),
                            want.to_string(),
                            envelope["status"].as_str().unwrap_or("?").to_string(),
                        )
                    })
                    .collect::<Vec<_>>()
            }));
        }
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("client thread"))
            .collect()
    });
    assert_eq!(results.len(), 40);
    let wrong: Vec<_> = results
        .iter()
        .filter(|(_, want, got)| want != got)
        .collect();
    assert!(wrong.is_empty(), "calls with the wrong status: {wrong:?}");

    std::thread::sleep(Duration::from_secs(2));
    let loaded_kb = rss_kb(server.id());
    eprintln!("capsci serve RSS: idle {idle_kb} KiB, after 40 mixed calls {loaded_kb} KiB");
    assert!(
        loaded_kb < idle_kb + 100 * 1024,
        "memory kept growing: idle {idle_kb} KiB, after {loaded_kb} KiB"
    );

    // Stop the server as an operator would, then check what it left.
    let _ = Command::new("kill")
        .args(["-INT", &server.id().to_string()])
        .status();
    let deadline = Instant::now() + Duration::from_secs(20);
    while server.try_wait().expect("wait").is_none() {
        assert!(
            Instant::now() < deadline,
            "capsci serve did not stop on SIGINT"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while !sandboxed_processes().is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        sandboxed_processes().is_empty(),
        "left behind: {:?}",
        sandboxed_processes()
    );

    let jobs = Command::new(CAPSCI)
        .args(["--json", "job", "list"])
        .env("CAPSCI_STORE", &store)
        .output()
        .expect("job list");
    let jobs: Value = serde_json::from_slice(&jobs.stdout).expect("jobs JSON");
    let jobs = jobs.as_array().expect("array");
    assert!(
        jobs.len() >= 41,
        "every call made a job ({} jobs)",
        jobs.len()
    );
    let open: Vec<_> = jobs
        .iter()
        .filter(|j| j["state"] == "queued" || j["state"] == "running")
        .collect();
    assert!(open.is_empty(), "jobs without a final status: {open:?}");
    let verify = Command::new(CAPSCI)
        .args(["log", "verify"])
        .env("CAPSCI_STORE", &store)
        .output()
        .expect("verify");
    assert_eq!(
        verify.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&verify.stderr)
    );
}
