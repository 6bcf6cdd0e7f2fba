//! The core call path with real backends through the real sandbox: one record per call, grants
//! and quotas enforced before anything runs, cancellation that kills the work, crash recovery.
//! Needs the sandbox helper and HiGHS worker built (`cargo test --workspace` builds them).

use capsci_core::request::{GpRequest, OptRequest, SmtBackendChoice, SmtRequest};
use capsci_core::{CallOutcome, CallRequest, Envelope, Interface, JobState, Method};
use capsci_sandbox::CancelToken;
use capsci_service::{
    CallError, Grant, GrantedMethod, Principal, Quotas, Service, ServiceConfig, Session,
};
use capsci_store::{ArtifactId, VerifyOptions};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn temp_store(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("capsci-service-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn service(name: &str) -> Arc<Service> {
    Service::open(ServiceConfig::one_shot(temp_store(name))).expect("service opens")
}

fn agent(id: &str) -> Principal {
    Principal {
        id: id.into(),
        runner: serde_json::json!({"runner": "test", "model": "none"}),
    }
}

fn gp(expr: &str, timeout: Option<f64>) -> CallRequest {
    CallRequest::NumberTheoryEval(GpRequest {
        expr: expr.into(),
        timeout_s: timeout,
    })
}

fn smt(text: &str) -> CallRequest {
    CallRequest::SmtCheck(SmtRequest {
        smtlib: text.into(),
        backend: SmtBackendChoice::Z3,
        timeout_s: None,
        seed: None,
    })
}

fn only(interface: Interface, method: &str, quotas: Quotas) -> Grant {
    Grant {
        profile: "test".into(),
        methods: vec![GrantedMethod {
            interface,
            method: method.into(),
        }],
        quotas,
    }
}

#[test]
fn every_call_leaves_one_record_that_names_its_artifacts() {
    let service = service("records");
    let session = service.session(Grant::scientific_base(), agent("agent:records"));
    let before = service
        .store()
        .log()
        .list(0, usize::MAX)
        .expect("list")
        .len();
    let envelope = session
        .call(gp("factor(2^64+1)", None), &CancelToken::new())
        .expect("call");
    assert_eq!(envelope.status_word(), "ok");
    let records = service.store().log().list(0, usize::MAX).expect("list");
    assert_eq!(records.len(), before + 1, "exactly one record per call");
    let record = records.last().expect("record");
    let provenance = envelope.provenance.as_ref().expect("provenance");
    assert_eq!(record.id, provenance.record);
    assert_eq!(record.hash, provenance.hash);
    assert_eq!(record.body.draft.principal, "agent:records");
    assert_eq!(
        record.body.draft.runner["runner"], "test",
        "runner metadata recorded as given"
    );
    assert_eq!(record.body.draft.backend.closure, envelope.backend.closure);
    let input = ArtifactId::parse(envelope.artifacts.input.as_deref().expect("input")).expect("id");
    let bytes = service
        .store()
        .artifacts()
        .get_bytes(&input)
        .expect("input artifact");
    assert!(String::from_utf8_lossy(&bytes).contains("factor(2^64+1)"));
    let job = service
        .store()
        .jobs()
        .get(&envelope.job)
        .expect("get")
        .expect("job");
    assert_eq!(job.state, JobState::Succeeded);
    assert!(service
        .store()
        .log()
        .verify(&VerifyOptions::default())
        .expect("verify")
        .ok());
}

#[test]
fn a_refused_input_is_recorded_and_nothing_runs() {
    let service = service("refused");
    let session = service.session(Grant::scientific_base(), agent("agent:refused"));
    let envelope = session
        .call(
            gp(r#"system("touch /tmp/capsci-pwned-service")"#, None),
            &CancelToken::new(),
        )
        .expect("call");
    assert_eq!(envelope.status_word(), "refused");
    assert_eq!(envelope.exit.to_string(), "not_run");
    assert!(envelope.provenance.is_some(), "refusals are recorded too");
    assert!(!std::path::Path::new("/tmp/capsci-pwned-service").exists());
}

#[test]
fn an_ungranted_method_makes_no_job_and_no_record() {
    let service = service("ungranted");
    let session = service.session(
        only(Interface::SmtSolver, "check", Quotas::default()),
        agent("agent:narrow"),
    );
    let jobs_before = service.store().jobs().list(1000).expect("jobs").len();
    let err = session
        .call(gp("1+1", None), &CancelToken::new())
        .expect_err("not granted");
    assert!(matches!(
        err,
        CallError::NotGranted {
            interface: Interface::NumberTheory,
            method: Method::Eval
        }
    ));
    assert_eq!(
        service.store().jobs().list(1000).expect("jobs").len(),
        jobs_before
    );
    assert!(service
        .store()
        .log()
        .list(0, usize::MAX)
        .expect("list")
        .is_empty());
    let ok = session
        .call(
            smt("(declare-const x Int)(assert (> x 1))(check-sat)"),
            &CancelToken::new(),
        )
        .expect("granted");
    assert_eq!(ok.status_word(), "sat");
}

#[test]
fn an_attenuated_session_cannot_widen_and_spends_its_parents_quota() {
    let service = service("attenuate");
    let quotas = Quotas {
        cpu_seconds_total: 0.001,
        ..Quotas::default()
    };
    let parent = service.session(
        only(Interface::NumberTheory, "*", quotas),
        agent("agent:parent"),
    );
    let child = parent.attenuate(&Grant::scientific_base(), agent("agent:child"));
    assert!(
        !child.grant().allows(Interface::SmtSolver, Method::Check),
        "asking for everything gets nothing more"
    );
    let first = child.call(gp("2^10", None), &CancelToken::new());
    assert!(first.is_ok(), "the first call is admitted");
    // gp used some CPU time: the parent's tiny budget is now spent, for both.
    let spent = |s: &Session| matches!(s.call(gp("1", None), &CancelToken::new()), Err(CallError::Quota(q)) if q.quota == "cpu_seconds_total");
    assert!(spent(&child) && spent(&parent));
}

#[test]
fn concurrent_jobs_quota_refuses_the_extra_call_and_runs_nothing() {
    let service = service("concurrent");
    let quotas = Quotas {
        concurrent_jobs: 1,
        ..Quotas::default()
    };
    let session = service.session(
        only(Interface::NumberTheory, "eval", quotas),
        agent("agent:busy"),
    );
    let busy = session.clone();
    let cancel = CancelToken::new();
    let long_cancel = cancel.clone();
    let long = std::thread::spawn(move || busy.call(gp("while(1,)", Some(20.0)), &long_cancel));
    let deadline = Instant::now() + Duration::from_secs(10);
    while !service
        .store()
        .jobs()
        .list(10)
        .expect("jobs")
        .iter()
        .any(|j| j.state == JobState::Running)
    {
        assert!(Instant::now() < deadline, "the long call never started");
        std::thread::sleep(Duration::from_millis(20));
    }
    let refused = match session.call(gp("1+1", None), &CancelToken::new()) {
        Err(CallError::Quota(q)) => q,
        other => panic!("expected the quota to refuse while the long call runs: {other:?}"),
    };
    assert_eq!(refused.quota, "concurrent_jobs");
    cancel.cancel();
    let envelope = long.join().expect("thread").expect("long call");
    assert_eq!(envelope.status_word(), "cancelled");
    assert!(
        session.call(gp("1+1", None), &CancelToken::new()).is_ok(),
        "the place is free again"
    );
}

#[test]
fn cancelling_from_another_process_kills_the_work() {
    let service = service("cancel");
    let session = service.session(Grant::scientific_base(), agent("agent:cancel"));
    let request = gp("while(1,)", Some(30.0));
    let job = session.submit_job(&request).expect("job");
    let runner = session.clone();
    let id = job.clone();
    let started = Instant::now();
    let handle = std::thread::spawn(move || runner.run_job(&id, request, &CancelToken::new()));
    std::thread::sleep(Duration::from_millis(700));
    // `capsci job cancel` only sets the flag in the store; the running owner must notice.
    service
        .store()
        .jobs()
        .request_cancel(&job)
        .expect("request cancel");
    let envelope: Envelope = handle.join().expect("thread").expect("envelope");
    assert_eq!(envelope.status_word(), "cancelled");
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "the loop did not run to its 30 s limit"
    );
    let stored = service.store().jobs().get(&job).expect("get").expect("job");
    assert_eq!(stored.state, JobState::Cancelled);
}

#[test]
fn malformed_inputs_get_typed_answers() {
    let service = service("malformed");
    let session = service.session(Grant::scientific_base(), agent("agent:malformed"));
    let garbage = session
        .call(smt("(assert (> x"), &CancelToken::new())
        .expect("envelope");
    assert_eq!(garbage.status_word(), "invalid_input");
    let both = CallRequest::OptSolve(OptRequest {
        mps: Some("NAME x\nENDATA\n".into()),
        lp: Some("Minimize\n obj: x\nEnd\n".into()),
        time_limit_s: None,
        mip_gap: None,
        threads: None,
        seed: None,
        presolve: None,
    });
    let envelope = session.call(both, &CancelToken::new()).expect("envelope");
    assert_eq!(envelope.status_word(), "invalid_input");
    let syntax = session
        .call(gp("1+*2", None), &CancelToken::new())
        .expect("envelope");
    assert_eq!(syntax.status_word(), "invalid_input");
    match &syntax.call {
        CallOutcome::NumberTheory(o) => assert!(o
            .result
            .message
            .as_deref()
            .unwrap_or("")
            .contains("syntax error")),
        other => panic!("wrong interface {other:?}"),
    }
}

/// Runs in a child process (the test binary re-executed) that starts a long call and is then
/// killed with SIGKILL by the parent test.
#[test]
fn child_process_running_a_long_job() {
    let Some(store) = std::env::var_os("CAPSCI_TEST_CHILD_STORE") else {
        return;
    };
    let service = Service::open(ServiceConfig::one_shot(PathBuf::from(store))).expect("open");
    let session = service.session(Grant::scientific_base(), agent("agent:doomed"));
    let _ = session.call(gp("while(1,)", Some(60.0)), &CancelToken::new());
}

#[test]
fn a_job_running_when_capsci_is_killed_comes_back_interrupted() {
    let store = temp_store("crash");
    std::fs::create_dir_all(&store).expect("dir");
    let mut child = std::process::Command::new(std::env::current_exe().expect("exe"))
        .args(["--exact", "child_process_running_a_long_job", "--nocapture"])
        .env("CAPSCI_TEST_CHILD_STORE", &store)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn child");
    let deadline = Instant::now() + Duration::from_secs(30);
    let running = loop {
        if let Ok(s) = capsci_store::Store::open(&store) {
            if let Some(job) = s
                .jobs()
                .list(10)
                .expect("jobs")
                .into_iter()
                .find(|j| j.state == JobState::Running)
            {
                break job.id;
            }
        }
        assert!(Instant::now() < deadline, "the child never started its job");
        std::thread::sleep(Duration::from_millis(50));
    };
    child.kill().expect("kill -9");
    child.wait().expect("reap");
    let reopened = capsci_store::Store::open(&store).expect("reopen");
    assert!(
        reopened.recovered_jobs().contains(&running),
        "recovered on open"
    );
    let job = reopened.jobs().get(&running).expect("get").expect("job");
    assert_eq!(job.state, JobState::Interrupted, "never silently gone");
}

#[test]
fn a_backend_that_is_not_installed_answers_backend_error_with_the_reason() {
    if capsci_backends::lean::find_toolchain().is_some() {
        return; // a Lean toolchain is present: this host cannot show the missing-backend answer
    }
    let service = service("lean-missing");
    let session = service.session(Grant::scientific_base(), agent("agent:lean"));
    let request = CallRequest::ProofCheck(capsci_core::request::ProofRequest {
        files: vec![capsci_core::request::ProjectFile {
            path: "A.lean".into(),
            content: "theorem t : True := trivial".into(),
        }],
        backend: capsci_core::request::ProofBackendChoice::Lean,
        challenge: vec![],
        allow_axiom: vec![],
        timeout_s: None,
    });
    let envelope = session
        .call(request, &CancelToken::new())
        .expect("an envelope, not an error");
    assert_eq!(envelope.status_word(), "backend_error");
    assert_eq!(envelope.exit.to_string(), "not_run");
    match &envelope.call {
        CallOutcome::ProofChecker(o) => {
            assert!(
                o.result.message.as_deref().unwrap_or("").contains("Lean"),
                "{:?}",
                o.result.message
            )
        }
        other => panic!("wrong interface {other:?}"),
    }
    assert!(envelope.provenance.is_some(), "the attempt is recorded");
}
