//! Warm tiny calls over Cap'n Proto (unix socket, hot spares) against the same call made on the
//! session in-process: what the RPC layer adds. `cargo bench -p capsci-rpc --bench rpc`.

use capsci_core::request::{GpRequest, SmtBackendChoice, SmtRequest};
use capsci_core::CallRequest;
use capsci_rpc::net::{Addr, ServeConfig};
use capsci_service::{Grant, Principal, Service, ServiceConfig};
use std::time::{Duration, Instant};

const N: usize = 30;
const SETTLE: Duration = Duration::from_millis(400);

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let store = std::env::temp_dir().join(format!("capsci-rpc-bench-{}", std::process::id()));
    std::fs::create_dir_all(&store).expect("store");
    let service = Service::open(ServiceConfig {
        store_dir: store.clone(),
        spares_per_backend: 1,
        default_limits: capsci_core::Limits::default(),
    })
    .expect("service (is target/debug/capsci-jail built?)");
    let sock = store.join("bench.sock");
    let server = capsci_rpc::spawn(ServeConfig {
        service: service.clone(),
        grant: Grant::scientific_base(),
        principal: Principal::local_user(),
        listen: vec![Addr::Unix(sock.clone())],
        local_socket: false,
    })
    .expect("server");
    let requests = [
        (
            "smt z3 tiny",
            CallRequest::SmtCheck(SmtRequest {
                smtlib: "(declare-const x Int)(assert (> x 5))(check-sat)".into(),
                backend: SmtBackendChoice::Z3,
                timeout_s: None,
                seed: None,
            }),
        ),
        (
            "gp 2+2",
            CallRequest::NumberTheoryEval(GpRequest {
                expr: "2+2".into(),
                timeout_s: None,
            }),
        ),
    ];
    let session = service.session(Grant::scientific_base(), Principal::local_user());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let local = tokio::task::LocalSet::new();
    for (name, request) in &requests {
        let mut direct = Vec::new();
        let mut rpc = Vec::new();
        let mut fresh = Vec::new();
        let mut backend_ms = Vec::new();
        local.block_on(&rt, async {
            let client = capsci_rpc::client::connect(&Addr::Unix(sock.clone()), None)
                .await
                .expect("connect");
            for i in 0..N + 3 {
                // Let the single hot spare be replaced before each call: warm calls only.
                tokio::time::sleep(SETTLE).await;
                let t = Instant::now();
                session
                    .call(request.clone(), &capsci_sandbox::CancelToken::new())
                    .expect("direct");
                let d = t.elapsed();
                tokio::time::sleep(SETTLE).await;
                let t = Instant::now();
                let reply = capsci_rpc::client::call(&client, request, false)
                    .await
                    .expect("rpc");
                let r = t.elapsed();
                if let capsci_rpc::Reply::Envelope(e) = reply {
                    backend_ms.push(Duration::from_millis(e.usage.wall_ms));
                }
                if i >= 3 {
                    direct.push(d);
                    rpc.push(r);
                }
            }
        });
        for _ in 0..10 {
            std::thread::sleep(SETTLE);
            let t = Instant::now();
            capsci_rpc::call_blocking(&Addr::Unix(sock.clone()), None, request, false)
                .expect("connect+call");
            fresh.push(t.elapsed());
        }
        println!(
            "{name:<12} median of {N}: in-process session {:>6.1} ms | capnp, open connection {:>6.1} ms | capnp, new connection per call {:>6.1} ms | backend wall (envelope) {:>6.1} ms",
            median(direct).as_secs_f64() * 1e3,
            median(rpc).as_secs_f64() * 1e3,
            median(fresh).as_secs_f64() * 1e3,
            median(backend_ms).as_secs_f64() * 1e3,
        );
    }
    server.stop().expect("stop");
    let _ = std::fs::remove_dir_all(store);
}
