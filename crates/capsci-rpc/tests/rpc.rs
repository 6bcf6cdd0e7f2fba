//! The Cap'n Proto front end against the real service: a temporary store, the real bwrap sandbox
//! (with the `capsci-jail` helper from `target/debug`) and the real gp and z3.

use capsci_core::request::{GpRequest, SmtBackendChoice, SmtRequest};
use capsci_core::{CallRequest, Envelope, Interface};
use capsci_rpc::net::{Addr, ServeConfig};
use capsci_rpc::{client, session_capnp, solvers_capnp, Reply};
use capsci_service::tokens::{TokenGrant, TokenStore};
use capsci_service::{Grant, GrantedMethod, Principal, Quotas, Service, ServiceConfig};
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

const SAT: &str = "(set-logic QF_LIA)\n(declare-const x Int)\n(declare-const y Int)\n(assert (= (+ x y) 10))\n(assert (> x 7))\n(assert (> y 0))\n(check-sat)\n";

/// The sandbox helper must sit next to the test binary's directory (`target/debug`).
fn require_jail() {
    let exe = std::env::current_exe().expect("test exe");
    let debug = exe.parent().and_then(|d| d.parent()).expect("target dir");
    assert!(
        std::env::var_os("CAPSCI_JAIL").is_some() || debug.join("capsci-jail").is_file(),
        "the sandbox helper is not built: run `cargo build -p capsci-sandbox --bin capsci-jail`"
    );
}

fn temp_store(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "capsci-rpc-{name}-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
    ));
    std::fs::create_dir_all(&dir).expect("temp store");
    dir
}

fn open(store: &std::path::Path, spares: usize) -> Arc<Service> {
    require_jail();
    Service::open(ServiceConfig {
        store_dir: store.to_path_buf(),
        spares_per_backend: spares,
        default_limits: capsci_core::Limits::default(),
    })
    .expect("service")
}

fn only(interface: Interface, method: &str, concurrent_jobs: u32) -> Grant {
    Grant {
        profile: "test-child".into(),
        methods: vec![GrantedMethod {
            interface,
            method: method.into(),
        }],
        quotas: Quotas {
            concurrent_jobs,
            ..Quotas::default()
        },
    }
}

fn serve(
    service: &Arc<Service>,
    listen: Vec<Addr>,
    local_socket: bool,
) -> capsci_rpc::RunningServer {
    capsci_rpc::spawn(ServeConfig {
        service: service.clone(),
        grant: Grant::scientific_base(),
        principal: Principal {
            id: "user:test".into(),
            runner: serde_json::json!({"front_end": "capnp-test"}),
        },
        listen,
        local_socket,
    })
    .expect("server")
}

fn local<F: std::future::Future>(f: F) -> F::Output {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    tokio::task::LocalSet::new().block_on(&rt, f)
}

fn smt(text: &str) -> CallRequest {
    CallRequest::SmtCheck(SmtRequest {
        smtlib: text.into(),
        backend: SmtBackendChoice::Z3,
        timeout_s: None,
        seed: None,
    })
}

fn gp(expr: &str, timeout_s: Option<f64>) -> CallRequest {
    CallRequest::NumberTheoryEval(GpRequest {
        expr: expr.into(),
        timeout_s,
    })
}

fn envelope(reply: Reply) -> Envelope {
    match reply {
        Reply::Envelope(e) => *e,
        Reply::Detached(id) => panic!("expected an envelope, got detached job {id}"),
    }
}

fn error_text<T>(result: Result<T, impl std::fmt::Display>) -> String {
    match result {
        Ok(_) => panic!("expected an error, got a result"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn an_attenuated_token_session_gets_only_its_granted_capability() {
    let store = temp_store("grant");
    let service = open(&store, 0);
    let server = serve(
        &service,
        vec![Addr::parse("127.0.0.1:0").expect("addr")],
        false,
    );
    let addr = server.addrs[0].clone();
    let tokens = TokenStore::open(&store).expect("tokens");
    let token = tokens
        .issue(&TokenGrant {
            grant: only(Interface::SmtSolver, "check", 2),
            principal: "agent:sub".into(),
            runner: serde_json::json!({"model": "test"}),
        })
        .expect("issue");
    local(async {
        let session = client::connect(&addr, Some(&token)).await.expect("connect");

        // The granted call works: sat, with a model, the typed fields and the envelope agree.
        let cap = session.smt_solver_request().send().pipeline.get_cap();
        let mut req = cap.check_request();
        req.get().set_smtlib(SAT);
        req.get().set_backend("z3");
        let response = req.send().promise.await.expect("check");
        let result = response
            .get()
            .expect("results")
            .get_result()
            .expect("result");
        assert_eq!(
            result.get_status().expect("status"),
            solvers_capnp::SmtStatus::Sat
        );
        assert!(
            result.get_model().expect("model").len() >= 2,
            "x and y in the model"
        );
        let record = result.get_record().expect("record");
        let json = record
            .get_envelope_json()
            .expect("json")
            .to_str()
            .expect("utf8");
        let env: Envelope = serde_json::from_str(json).expect("the envelope JSON is an Envelope");
        assert_eq!(env.status_word(), "sat");
        assert_eq!(
            record.get_job().expect("job").to_str().expect("utf8"),
            env.job
        );
        assert_eq!(
            record.get_exit().expect("exit").to_str().expect("utf8"),
            env.exit.to_string()
        );
        let record_id = env.provenance.as_ref().expect("provenance").record.clone();

        // Its own records and artifacts are readable; the job can be followed.
        let log = session.provenance_request().send().pipeline.get_log();
        let mut get = log.get_request();
        get.get().set_id(&record_id);
        let got = get.send().promise.await.expect("own record");
        let rec = got.get().expect("get").get_record().expect("record");
        assert!(
            rec.get_json()
                .expect("json")
                .to_str()
                .expect("utf8")
                .contains("agent:sub"),
            "the token's principal is in the provenance record"
        );
        let artifacts = session.artifacts_request().send().pipeline.get_store();
        let mut read = artifacts.read_request();
        read.get()
            .set_id(env.artifacts.input.as_deref().expect("input artifact"));
        read.get().set_length(1 << 20);
        let bytes = read.send().promise.await.expect("own artifact");
        assert!(
            String::from_utf8_lossy(bytes.get().expect("read").get_bytes().expect("bytes"))
                .contains("declare-const x")
        );

        // Ungranted capabilities are never handed out, directly or pipelined.
        let err = error_text(session.number_theory_request().send().promise.await);
        assert!(err.contains("NumberTheory is not granted"), "{err}");
        let nt = session.number_theory_request().send().pipeline.get_cap();
        let mut eval = nt.eval_request();
        eval.get().set_expr("2+2");
        let err = error_text(eval.send().promise.await);
        assert!(err.contains("not granted"), "{err}");
        let err = error_text(session.optimization_solver_request().send().promise.await);
        assert!(err.contains("not granted"), "{err}");

        // Attenuating cannot widen: asking for everything gives back only SmtSolver.check.
        let mut att = session.attenuate_request();
        capsci_rpc::convert::set_grant(att.get().init_grant(), &Grant::scientific_base());
        let child = att.send().pipeline.get_session();
        let err = error_text(child.number_theory_request().send().promise.await);
        assert!(err.contains("not granted"), "{err}");
        let g = child.grant_request().send().promise.await.expect("grant");
        let methods = g
            .get()
            .expect("g")
            .get_grant()
            .expect("grant")
            .get_methods()
            .expect("m");
        assert_eq!(methods.len(), 1);
        assert_eq!(
            methods
                .get(0)
                .get_interface()
                .expect("i")
                .to_str()
                .expect("u"),
            "SmtSolver"
        );

        // The catalog lists only what the session may use.
        let catalog = session.catalog_request().send().pipeline.get_catalog();
        let list = catalog
            .list_request()
            .send()
            .promise
            .await
            .expect("catalog");
        let names: Vec<String> = list
            .get()
            .expect("l")
            .get_backends()
            .expect("b")
            .iter()
            .map(|b| b.get_name().expect("n").to_string().expect("u"))
            .collect();
        assert_eq!(names, ["z3", "cvc5"]);

        // Notebooks are interface only.
        let err = error_text(session.notebook_session_request().send().promise.await);
        assert!(err.contains("not implemented"), "{err}");

        // Another session's job id is not found.
        let mut job = session.job_request();
        job.get().set_id("job_01HZZZZZZZZZZZZZZZZZZZZZZZ");
        let err = error_text(job.send().promise.await);
        assert!(err.contains("not found"), "{err}");
    });

    // A forged token and a revoked token open nothing.
    let forged = format!("capsci_{}", "0".repeat(64));
    let err = error_text(capsci_rpc::call_blocking(
        &addr,
        Some(&forged),
        &smt(SAT),
        false,
    ));
    assert!(err.contains("refused"), "{err}");
    tokens.revoke(&token).expect("revoke");
    let err = error_text(capsci_rpc::call_blocking(
        &addr,
        Some(&token),
        &smt(SAT),
        false,
    ));
    assert!(err.contains("refused"), "{err}");
    let err = error_text(capsci_rpc::call_blocking(&addr, None, &smt(SAT), false));
    assert!(err.contains("token"), "{err}");

    server.stop().expect("stop");
    let _ = std::fs::remove_dir_all(store);
}

/// A proxy that forwards client to server at once but holds every server-to-client byte until
/// `release` fires: a call reaching the server while the client has received nothing proves it
/// was sent on a promise (pipelined), in the first round trip.
fn gated_proxy(server: PathBuf, front: PathBuf) -> tokio::sync::oneshot::Sender<()> {
    let (release_tx, release_rx) = tokio::sync::oneshot::channel::<()>();
    let listener = tokio::net::UnixListener::bind(&front).expect("proxy bind");
    tokio::task::spawn_local(async move {
        let (inbound, _) = listener.accept().await.expect("accept");
        let outbound = tokio::net::UnixStream::connect(&server)
            .await
            .expect("connect server");
        let (mut ci, mut co) = inbound.into_split();
        let (mut si, mut so) = outbound.into_split();
        tokio::task::spawn_local(async move {
            let _ = tokio::io::copy(&mut ci, &mut so).await;
        });
        let _ = release_rx.await;
        let _ = tokio::io::copy(&mut si, &mut co).await;
    });
    release_tx
}

#[test]
fn smt_solver_then_check_is_pipelined_in_one_round_trip() {
    let store = temp_store("pipeline");
    let service = open(&store, 0);
    let sock = store.join("server.sock");
    let server = serve(&service, vec![Addr::Unix(sock.clone())], false);
    let front = store.join("proxy.sock");
    local(async {
        let release = gated_proxy(sock.clone(), front.clone());
        let session = client::connect(&Addr::Unix(front.clone()), None)
            .await
            .expect("connect");
        let call =
            tokio::task::spawn_local(async move { client::call(&session, &smt(SAT), false).await });
        // Nothing has come back to the client; the check must still reach the server and run.
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut reached = false;
        while Instant::now() < deadline {
            if !service.store().jobs().list(10).expect("jobs").is_empty() {
                reached = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let _ = release.send(());
        assert!(
            reached,
            "SmtSolver.check reached the server before any reply reached the client"
        );
        let env = envelope(call.await.expect("task").expect("call"));
        assert_eq!(env.status_word(), "sat");
    });
    server.stop().expect("stop");
    let _ = std::fs::remove_dir_all(store);
}

#[test]
fn concurrent_calls_beyond_the_quota_are_refused_with_the_quota_named() {
    let store = temp_store("quota");
    let service = open(&store, 0);
    let sock = store.join("s.sock");
    let server = serve(&service, vec![Addr::Unix(sock.clone())], false);
    local(async {
        let root = client::connect(&Addr::Unix(sock.clone()), None)
            .await
            .expect("connect");
        let mut att = root.attenuate_request();
        capsci_rpc::convert::set_grant(
            att.get().init_grant(),
            &only(Interface::NumberTheory, "eval", 1),
        );
        let session = att.send().pipeline.get_session();
        let long = gp("while(1, )", Some(3.0));
        let (a, b) = tokio::join!(
            client::call(&session, &long, false),
            client::call(&session, &long, false)
        );
        let (ok, refused) = match (a, b) {
            (Ok(r), Err(e)) | (Err(e), Ok(r)) => (r, e.to_string()),
            (a, b) => panic!("exactly one of two concurrent calls must run: {a:?} / {b:?}"),
        };
        assert!(
            refused.contains("resource_exceeded") && refused.contains("concurrent_jobs"),
            "{refused}"
        );
        assert_eq!(envelope(ok).status_word(), "timeout");
    });
    server.stop().expect("stop");
    let _ = std::fs::remove_dir_all(store);
}

#[test]
fn a_token_quota_holds_across_connections() {
    let store = temp_store("token-quota");
    let service = open(&store, 0);
    let server = serve(
        &service,
        vec![Addr::parse("127.0.0.1:0").expect("addr")],
        false,
    );
    let addr = server.addrs[0].clone();
    let token = TokenStore::open(&store)
        .expect("tokens")
        .issue(&TokenGrant {
            grant: only(Interface::NumberTheory, "eval", 1),
            principal: "agent:one-at-a-time".into(),
            runner: serde_json::Value::Null,
        })
        .expect("issue");
    local(async {
        // Two connections with the same token: one concurrent job between them.
        let first = client::connect(&addr, Some(&token)).await.expect("connect");
        let second = client::connect(&addr, Some(&token)).await.expect("connect");
        let long = gp("while(1, )", Some(3.0));
        let (a, b) = tokio::join!(
            client::call(&first, &long, false),
            client::call(&second, &long, false)
        );
        let refused = match (a, b) {
            (Ok(_), Err(e)) | (Err(e), Ok(_)) => e.to_string(),
            (a, b) => panic!("exactly one of the two must run: {a:?} / {b:?}"),
        };
        assert!(refused.contains("concurrent_jobs"), "{refused}");
    });
    server.stop().expect("stop");
    let _ = std::fs::remove_dir_all(store);
}

#[test]
fn a_detached_job_cancelled_ends_cancelled_and_shutdown_removes_the_socket() {
    let store = temp_store("detach");
    let service = open(&store, 0);
    let sock = store.join("s.sock");
    let server = serve(&service, vec![Addr::Unix(sock.clone())], false);
    local(async {
        let session = client::connect(&Addr::Unix(sock.clone()), None)
            .await
            .expect("connect");
        let nt = session.number_theory_request().send().pipeline.get_cap();
        let mut eval = nt.eval_request();
        eval.get().set_expr("while(1, )");
        {
            let mut options = eval.get().init_options();
            options.reborrow().init_limits().set_wall_s(120.0);
            options.set_detach(true);
        }
        let response = eval.send().promise.await.expect("detached eval");
        let results = response.get().expect("results");
        let record = results
            .get_result()
            .expect("r")
            .get_record()
            .expect("record");
        assert!(
            record.get_envelope_json().expect("j").is_empty(),
            "detached: no envelope yet"
        );
        let id = record.get_job().expect("job").to_string().expect("utf8");
        let job = results.get_job().expect("job cap");
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let info = job.info_request().send().promise.await.expect("info");
            let state = info.get().expect("i").get_state().expect("state");
            assert_eq!(
                info.get()
                    .expect("i")
                    .get_id()
                    .expect("id")
                    .to_str()
                    .expect("u"),
                id
            );
            if state == session_capnp::JobState::Running {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the job never started: {state:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        job.cancel_request().send().promise.await.expect("cancel");
        let waited = job.wait_request().send().promise.await.expect("wait");
        let json = waited
            .get()
            .expect("w")
            .get_envelope_json()
            .expect("j")
            .to_str()
            .expect("u")
            .to_string();
        let env: Envelope = serde_json::from_str(&json).expect("envelope");
        assert_eq!(env.status_word(), "cancelled");
        assert_eq!(env.exit.to_string(), "cancelled");
        // The same job, found again by id through the session.
        let mut again = session.job_request();
        again.get().set_id(&id);
        let found = again.send().pipeline.get_job();
        let info = found
            .info_request()
            .send()
            .promise
            .await
            .expect("info by id");
        assert_eq!(
            info.get().expect("i").get_state().expect("s"),
            session_capnp::JobState::Cancelled
        );
    });
    assert_eq!(server.running_jobs(), 0);
    server.stop().expect("stop");
    assert!(!sock.exists(), "the socket is removed at shutdown");
    let _ = std::fs::remove_dir_all(store);
}

#[test]
fn garbage_on_the_socket_leaves_the_server_healthy_for_the_next_client() {
    let store = temp_store("garbage");
    let service = open(&store, 0);
    let sock = store.join("s.sock");
    let server = serve(&service, vec![Addr::Unix(sock.clone())], false);
    // Random bytes; a header announcing 2^32 segments; a header announcing a huge segment.
    let payloads: [&[u8]; 3] = [
        &[
            0xde, 0xad, 0xbe, 0xef, 0x13, 0x37, 0x00, 0xff, 0x42, 0x42, 0x42, 0x42,
        ],
        &[0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0],
        &[0, 0, 0, 0, 0xff, 0xff, 0xff, 0x7f, 1, 2, 3],
    ];
    for bytes in payloads {
        let mut raw = std::os::unix::net::UnixStream::connect(&sock).expect("raw connect");
        raw.write_all(bytes).expect("write garbage");
        drop(raw);
    }
    let env = envelope(
        capsci_rpc::call_blocking(
            &Addr::Unix(sock.clone()),
            None,
            &gp("factor(2^64+1)", None),
            false,
        )
        .expect("a good client after the garbage"),
    );
    assert_eq!(env.status_word(), "ok");
    server.stop().expect("stop");
    let _ = std::fs::remove_dir_all(store);
}

#[test]
fn the_store_socket_forwards_command_line_calls_with_the_same_envelope() {
    let store = temp_store("local");
    assert!(
        capsci_rpc::try_local_service(&store).is_none(),
        "no server yet"
    );
    let service = open(&store, 1);
    let server = serve(&service, vec![], true);
    let sock = store.join(capsci_rpc::LOCAL_SOCKET);
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&sock)
        .expect("socket")
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600, "only the store's owner may connect");
    let found = capsci_rpc::try_local_service(&store).expect("the running service answers");
    let env = envelope(
        found
            .call(&gp("factor(2^64+1)", None), false)
            .expect("forwarded call"),
    );
    assert_eq!(env.status_word(), "ok");
    let capsci_core::CallOutcome::NumberTheory(outcome) = &env.call else {
        panic!("a NumberTheory outcome: {env:?}")
    };
    assert!(outcome
        .result
        .value
        .as_deref()
        .unwrap_or_default()
        .contains("274177"));
    // The envelope is the one the store recorded for that job, field for field.
    let stored = service
        .store()
        .jobs()
        .get(&env.job)
        .expect("job")
        .expect("stored");
    let stored: Envelope =
        serde_json::from_value(stored.envelope.expect("envelope")).expect("envelope");
    assert_eq!(stored, env);
    // The record names the calling process (the socket's peer credentials).
    let record_id = &env.provenance.as_ref().expect("provenance").record;
    let record = service
        .store()
        .log()
        .get(record_id)
        .expect("log")
        .expect("record");
    let text = serde_json::to_string(&record).expect("json");
    assert!(
        text.contains(&format!("\"pid\":{}", std::process::id())),
        "{text}"
    );
    // Detached through the socket: the job id comes back and the service runs it.
    let Reply::Detached(id) = found.call(&gp("2+2", None), true).expect("detach") else {
        panic!("expected a job id")
    };
    let job = service
        .store()
        .jobs()
        .wait(&id, Duration::from_secs(60))
        .expect("wait");
    assert_eq!(job.state, capsci_core::JobState::Succeeded);
    server.stop().expect("stop");
    assert!(
        capsci_rpc::try_local_service(&store).is_none(),
        "gone after shutdown"
    );
    let _ = std::fs::remove_dir_all(store);
}
