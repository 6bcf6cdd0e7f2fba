//! Progress and cancellation over MCP: a never-ending gp loop reports progress every second;
//! `notifications/cancelled` ends the job as `cancelled` and its gp process is gone (CPU stops,
//! not just the reply). Its own test binary, so the only gp processes below this process are
//! this test's.

mod common;

use capsci_core::JobState;
use capsci_service::Grant;
use common::*;
use rmcp::model::{CallToolRequest, CallToolRequestParams, ClientRequest};
use rmcp::service::PeerRequestOptions;
use serde_json::json;
use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

/// Pids of gp processes descending from this process.
fn gp_descendants() -> Vec<u32> {
    let mut parent: HashMap<u32, u32> = HashMap::new();
    let mut comm: HashMap<u32, String> = HashMap::new();
    for entry in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // pid (comm) state ppid ...; comm may contain spaces, so split at the last ')'.
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        let name = stat[open + 1..close].to_string();
        let rest: Vec<&str> = stat[close + 1..].split_whitespace().collect();
        if let Some(ppid) = rest.get(1).and_then(|p| p.parse::<u32>().ok()) {
            parent.insert(pid, ppid);
            comm.insert(pid, name);
        }
    }
    let me = std::process::id();
    let mut out = Vec::new();
    for (pid, name) in &comm {
        if !name.starts_with("gp") {
            continue;
        }
        let mut seen = HashSet::new();
        let mut cur = *pid;
        while let Some(p) = parent.get(&cur) {
            if *p == me {
                out.push(*pid);
                break;
            }
            if *p <= 1 || !seen.insert(*p) {
                break;
            }
            cur = *p;
        }
    }
    out
}

async fn wait_for<T>(what: &str, limit: Duration, mut probe: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = probe() {
            return v;
        }
        assert!(start.elapsed() < limit, "gave up waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_a_call_kills_the_job_and_reports_progress_meanwhile() {
    let store = TempStore::new("cancel");
    // No spares: every gp below this process is the call's own.
    let service = service(&store, 0);
    let (client, recorder) = connect(service.clone(), Grant::scientific_base()).await;

    let params = CallToolRequestParams::new("number_theory_eval")
        .with_arguments(args(json!({"expr": "while(1,)", "timeout_s": 60})));
    let handle = client
        .peer()
        .send_cancellable_request(
            ClientRequest::CallToolRequest(CallToolRequest::new(params)),
            PeerRequestOptions::no_options(),
        )
        .await
        .expect("send");

    // Progress ticks name the job and its elapsed time.
    let message = wait_for("a progress notification", Duration::from_secs(30), || {
        recorder
            .progress
            .lock()
            .expect("lock")
            .first()
            .and_then(|p| p.message.clone())
    })
    .await;
    let job = message
        .split_whitespace()
        .next()
        .filter(|w| w.starts_with("job_"))
        .unwrap_or_else(|| panic!("progress message names the job: {message}"))
        .to_string();
    wait_for("the looping gp process", Duration::from_secs(30), || {
        (!gp_descendants().is_empty()).then_some(())
    })
    .await;
    let running = service
        .store()
        .jobs()
        .get(&job)
        .expect("job")
        .expect("exists");
    assert_eq!(running.state, JobState::Running);

    handle
        .cancel(Some("test cancels".into()))
        .await
        .expect("cancel");

    let done = wait_for("the job to end", Duration::from_secs(30), || {
        service
            .store()
            .jobs()
            .get(&job)
            .ok()
            .flatten()
            .filter(|j| j.state.is_final())
    })
    .await;
    assert_eq!(done.state, JobState::Cancelled, "{done:?}");
    let recorded = done.envelope.expect("a cancelled job keeps its envelope");
    assert_eq!(recorded["status"], "cancelled", "{recorded}");
    wait_for("the gp process to be gone", Duration::from_secs(10), || {
        gp_descendants().is_empty().then_some(())
    })
    .await;

    // The ticks arrived while it ran, each no earlier than the one before.
    let ticks = recorder.progress.lock().expect("lock").clone();
    assert!(!ticks.is_empty());
    assert!(ticks.windows(2).all(|w| w[1].progress >= w[0].progress));

    // The session is healthy after the cancellation.
    let result = call(&client, "number_theory_eval", json!({"expr": "2+2"})).await;
    assert_eq!(envelope(&result)["status"], "ok");
    client.cancel().await.expect("close");
}
