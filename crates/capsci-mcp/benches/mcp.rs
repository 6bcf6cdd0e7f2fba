//! MCP benchmark: `capsci mcp` spawn → `initialize` answered (median of 20 spawns), and the
//! latency of a warm tiny SMT call over MCP (sandboxed in bwrap, recorded in the store), next to
//! the same call through `Session::call` in-process (no MCP) to show what the adapter costs.
//!
//! Server command: `$CAPSCI_MCP_CMD` (split on spaces), else `<target>/<profile>/capsci mcp`,
//! else `<target>/<profile>/examples/stdio_server`. Build first:
//! `cargo build --release -p capsci-cli -p capsci-sandbox --bins` (or
//! `cargo build --release -p capsci-mcp --examples`), then `cargo bench -p capsci-mcp`.

use capsci_core::request::{SmtBackendChoice, SmtRequest};
use capsci_core::CallRequest;
use capsci_sandbox::CancelToken;
use capsci_service::{Grant, Principal, Service, ServiceConfig};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

const TINY: &str = "(declare-const x Int)(assert (> x 0))(check-sat)";
const SPAWNS: usize = 20;
const CALLS: usize = 40;

fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("bench exe");
    // target/<profile>/deps/mcp-<hash>
    exe.parent()
        .and_then(|deps| deps.parent())
        .map(PathBuf::from)
        .expect("target dir")
}

fn server_command() -> Vec<String> {
    if let Ok(cmd) = std::env::var("CAPSCI_MCP_CMD") {
        return cmd.split_whitespace().map(str::to_string).collect();
    }
    let dir = target_dir();
    let capsci = dir.join("capsci");
    if capsci.is_file() && capsci_mcp_works(&capsci) {
        return vec![capsci.display().to_string(), "mcp".into()];
    }
    let example = dir.join("examples").join("stdio_server");
    if example.is_file() {
        return vec![example.display().to_string()];
    }
    panic!(
        "no MCP server to spawn: build `capsci` (cargo build --release -p capsci-cli) or the \
         example (cargo build --release -p capsci-mcp --examples), or set CAPSCI_MCP_CMD"
    );
}

/// Whether this `capsci` has the `mcp` command wired (older builds refuse it).
fn capsci_mcp_works(capsci: &Path) -> bool {
    let store = temp_store("probe");
    let mut server = match Server::spawn(&[capsci.display().to_string(), "mcp".into()], &store) {
        Some(s) => s,
        None => return false,
    };
    let ok = server.initialize().is_some();
    drop(server);
    let _ = std::fs::remove_dir_all(&store);
    ok
}

fn temp_store(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("capsci-mcp-bench-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("store dir");
    dir
}

struct Server {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    next_id: u64,
}

impl Server {
    fn spawn(cmd: &[String], store: &Path) -> Option<Server> {
        let mut child = Command::new(&cmd[0])
            .args(&cmd[1..])
            .env("CAPSCI_STORE", store)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        let stdin = child.stdin.take()?;
        let stdout = BufReader::new(child.stdout.take()?);
        Some(Server {
            child,
            stdin,
            stdout,
            next_id: 1,
        })
    }

    fn send(&mut self, message: &Value) -> Option<()> {
        let mut line = serde_json::to_vec(message).ok()?;
        line.push(b'\n');
        self.stdin.write_all(&line).ok()?;
        self.stdin.flush().ok()
    }

    fn request(&mut self, method: &str, params: Value) -> Option<Value> {
        let id = self.next_id;
        self.next_id += 1;
        self.send(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}))?;
        loop {
            let mut line = String::new();
            if self.stdout.read_line(&mut line).ok()? == 0 {
                return None;
            }
            let value: Value = serde_json::from_str(&line).ok()?;
            if value["id"] == id {
                return Some(value);
            }
        }
    }

    fn initialize(&mut self) -> Option<Value> {
        let reply = self.request(
            "initialize",
            json!({"protocolVersion": "2025-06-18", "capabilities": {},
                   "clientInfo": {"name": "capsci-bench", "version": "1"}}),
        )?;
        reply.get("result")?;
        self.send(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))?;
        Some(reply)
    }

    fn smt(&mut self) -> Value {
        let reply = self
            .request(
                "tools/call",
                json!({"name": "smt_solver_check", "arguments": {"smtlib": TINY}}),
            )
            .expect("tools/call answered");
        reply["result"]["structuredContent"].clone()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn stats(name: &str, mut ms: Vec<f64>) -> f64 {
    ms.sort_by(f64::total_cmp);
    let median = ms[ms.len() / 2];
    let p90 = ms[(ms.len() * 9 / 10).min(ms.len() - 1)];
    println!(
        "{name:<58} median {median:>7.2} ms   p90 {p90:>7.2} ms   min {:>7.2} ms   (n={})",
        ms[0],
        ms.len()
    );
    median
}

fn main() {
    let cmd = server_command();
    println!("server: {}", cmd.join(" "));
    let store = temp_store("main");

    // 1. spawn -> initialize answered.
    let mut init = Vec::new();
    for _ in 0..SPAWNS {
        let start = Instant::now();
        let mut server = Server::spawn(&cmd, &store).expect("spawn");
        server.initialize().expect("initialize answered");
        init.push(start.elapsed().as_secs_f64() * 1e3);
    }
    stats("spawn -> initialize answered", init);

    // 2. warm tiny SMT calls over MCP (one server; the first call computes the closure and
    //    starts the spare pool).
    let mut server = Server::spawn(&cmd, &store).expect("spawn");
    server.initialize().expect("initialize");
    let listed = server.request("tools/list", json!({})).expect("tools/list");
    println!(
        "tools/list (full grant): {} bytes",
        serde_json::to_vec(&listed["result"])
            .map(|v| v.len())
            .unwrap_or(0)
    );
    let start = Instant::now();
    let first = server.smt();
    println!(
        "first SMT call (closure + spare pool start): {:.1} ms, status {}",
        start.elapsed().as_secs_f64() * 1e3,
        first["status"]
    );
    let mut paced = Vec::new();
    let mut usage_wall = Vec::new();
    for _ in 0..CALLS {
        // Let the single-use spare be replaced, as between an agent's calls.
        std::thread::sleep(Duration::from_millis(300));
        let start = Instant::now();
        let envelope = server.smt();
        paced.push(start.elapsed().as_secs_f64() * 1e3);
        assert_eq!(envelope["status"], "sat", "{envelope}");
        usage_wall.push(envelope["usage"]["wall_ms"].as_f64().unwrap_or(0.0));
    }
    stats("warm tiny SMT over MCP (spare ready, paced 300 ms)", paced);
    stats(
        "  of which sandboxed solver wall (envelope usage.wall_ms)",
        usage_wall,
    );
    let mut back_to_back = Vec::new();
    for _ in 0..CALLS {
        let start = Instant::now();
        server.smt();
        back_to_back.push(start.elapsed().as_secs_f64() * 1e3);
    }
    stats(
        "tiny SMT over MCP, back to back (spare may be cold)",
        back_to_back,
    );
    drop(server);

    // 3. the same call in-process through Session::call (no MCP, no JSON-RPC).
    let service = Service::open(ServiceConfig {
        store_dir: store.clone(),
        spares_per_backend: 1,
        default_limits: capsci_core::Limits::default(),
    })
    .expect("service (build capsci-jail: cargo build --release -p capsci-sandbox --bins)");
    let session = service.session(Grant::scientific_base(), Principal::local_user());
    let request = || {
        CallRequest::SmtCheck(SmtRequest {
            smtlib: TINY.into(),
            backend: SmtBackendChoice::Z3,
            timeout_s: None,
            seed: None,
        })
    };
    session
        .call(request(), &CancelToken::new())
        .expect("first call");
    let mut direct = Vec::new();
    for _ in 0..CALLS {
        std::thread::sleep(Duration::from_millis(300));
        let start = Instant::now();
        let envelope = session.call(request(), &CancelToken::new()).expect("call");
        direct.push(start.elapsed().as_secs_f64() * 1e3);
        assert_eq!(envelope.status_word(), "sat");
    }
    stats("same call in-process, Session::call (paced 300 ms)", direct);
    drop(session);
    drop(service);
    let _ = std::fs::remove_dir_all(&store);
}
