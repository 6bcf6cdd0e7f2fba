//! Addresses, listeners and the serving loop: `unix:PATH` sockets (mode 0600; the bootstrap is
//! the server's session) and loopback TCP (the bootstrap is a `Gateway` that wants a token).

use crate::server::{session_client, GatewayImpl, Shared};
use crate::session_capnp;
use capnp_rpc::{rpc_twoparty_capnp, twoparty, RpcSystem};
use capsci_service::tokens::TokenStore;
use capsci_service::{Grant, Principal, Service, Session};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::compat::{TokioAsyncReadCompatExt, TokioAsyncWriteCompatExt};

/// The socket a `capsci serve` keeps inside its store, for command-line calls on the same store.
pub const LOCAL_SOCKET: &str = "capsci.sock";

/// Why serving or connecting failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NetError {
    /// The address is neither `unix:PATH` nor `HOST:PORT`.
    #[error("address `{0}` is neither unix:PATH nor 127.0.0.1:PORT")]
    BadAddress(String),
    /// A TCP address that is not loopback.
    #[error("address `{0}` is not on loopback: capsci serves TCP on 127.0.0.1 / ::1 only")]
    NotLoopback(String),
    /// Binding a listener failed.
    #[error("cannot listen on {addr}: {error}")]
    Bind {
        /// The address.
        addr: String,
        /// The cause.
        error: std::io::Error,
    },
    /// Another server already answers on this socket.
    #[error("{0} is in use by a running capsci serve")]
    InUse(String),
    /// The async runtime could not start.
    #[error("tokio runtime: {0}")]
    Runtime(std::io::Error),
    /// The token store could not be opened.
    #[error(transparent)]
    Tokens(#[from] capsci_service::tokens::TokenError),
    /// Connecting to a server failed.
    #[error("cannot connect to {addr}: {error}")]
    Connect {
        /// The address.
        addr: String,
        /// The cause.
        error: std::io::Error,
    },
    /// The server thread panicked or vanished.
    #[error("server thread ended abnormally")]
    Thread,
}

/// Where to listen or connect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Addr {
    /// A unix socket path.
    Unix(PathBuf),
    /// A loopback TCP address.
    Tcp(SocketAddr),
}

impl std::fmt::Display for Addr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Addr::Unix(p) => write!(f, "unix:{}", p.display()),
            Addr::Tcp(a) => write!(f, "{a}"),
        }
    }
}

impl Addr {
    /// Parses `unix:PATH` or `HOST:PORT` (`localhost` is 127.0.0.1); TCP must be loopback.
    pub fn parse(text: &str) -> Result<Addr, NetError> {
        if let Some(path) = text.strip_prefix("unix:") {
            if path.is_empty() {
                return Err(NetError::BadAddress(text.into()));
            }
            return Ok(Addr::Unix(PathBuf::from(path)));
        }
        let normalised = match text.strip_prefix("localhost:") {
            Some(port) => format!("127.0.0.1:{port}"),
            None => text.to_string(),
        };
        let addr: SocketAddr = normalised
            .parse()
            .map_err(|_| NetError::BadAddress(text.into()))?;
        if !addr.ip().is_loopback() {
            return Err(NetError::NotLoopback(text.into()));
        }
        Ok(Addr::Tcp(addr))
    }
}

/// What a server holds: the service, the session its unix sockets hand out, and the tokens its
/// TCP gateway accepts.
#[derive(Debug)]
pub struct ServeConfig {
    /// The service (open it with `spares_per_backend: 1` for hot spares).
    pub service: Arc<Service>,
    /// The grant of the unix sockets' session (`--grant FILE`, default `scientific-base`).
    pub grant: Grant,
    /// Who unix-socket calls are recorded for.
    pub principal: Principal,
    /// The addresses to listen on.
    pub listen: Vec<Addr>,
    /// Also listen on `<store>/capsci.sock`, so command-line calls on this store come here.
    pub local_socket: bool,
}

enum Listener {
    Unix(tokio::net::UnixListener),
    Tcp(tokio::net::TcpListener),
}

/// Binds a unix socket with mode 0600 before it is visible at `path` (bound under a temporary
/// name, chmod-ed, then renamed), replacing a stale socket no server answers on.
fn bind_unix(path: &Path) -> Result<tokio::net::UnixListener, NetError> {
    use std::os::unix::fs::PermissionsExt;
    let shown = format!("unix:{}", path.display());
    let bind_err = |error| NetError::Bind {
        addr: shown.clone(),
        error,
    };
    if path.exists() {
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(NetError::InUse(shown));
        }
        std::fs::remove_file(path).map_err(bind_err)?;
    }
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "capsci.sock".into());
    let temp = path.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
    let _ = std::fs::remove_file(&temp);
    let listener = tokio::net::UnixListener::bind(&temp).map_err(bind_err)?;
    std::fs::set_permissions(&temp, std::fs::Permissions::from_mode(0o600)).map_err(bind_err)?;
    std::fs::rename(&temp, path).map_err(bind_err)?;
    Ok(listener)
}

/// Serves one connection until it closes. A malformed message ends this connection only.
fn spawn_connection<R, W>(reader: R, writer: W, bootstrap: capnp::capability::Client)
where
    R: tokio::io::AsyncRead + Unpin + 'static,
    W: tokio::io::AsyncWrite + Unpin + 'static,
{
    let network = twoparty::VatNetwork::new(
        futures::io::BufReader::new(reader.compat()),
        futures::io::BufWriter::new(writer.compat_write()),
        rpc_twoparty_capnp::Side::Server,
        capnp::message::ReaderOptions::new(),
    );
    let rpc = RpcSystem::new(Box::new(network), Some(bootstrap));
    tokio::task::spawn_local(async move {
        let _ = rpc.await;
    });
}

/// The server's principal, with the connecting process's uid and pid (from the socket's peer
/// credentials) added to the runner metadata recorded with every call.
fn peer_principal(principal: &Principal, stream: &tokio::net::UnixStream) -> Principal {
    let mut principal = principal.clone();
    if let Ok(cred) = stream.peer_cred() {
        let peer = serde_json::json!({"uid": cred.uid(), "pid": cred.pid()});
        match &mut principal.runner {
            serde_json::Value::Object(map) => {
                map.insert("peer".into(), peer);
            }
            other => {
                *other = serde_json::json!({"runner": other.clone(), "peer": peer});
            }
        }
    }
    principal
}

async fn accept_loop(listener: Listener, shared: Arc<Shared>, root: Session, tokens: TokenStore) {
    loop {
        match &listener {
            Listener::Unix(l) => {
                let Ok((stream, _)) = l.accept().await else {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                };
                // Each connection gets its own session (its own jobs and records), counting
                // against the root session's quotas.
                let session =
                    root.attenuate(root.grant(), peer_principal(root.principal(), &stream));
                let client = session_client(shared.clone(), session);
                let (r, w) = stream.into_split();
                spawn_connection(r, w, client.client);
            }
            Listener::Tcp(l) => {
                let Ok((stream, _)) = l.accept().await else {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                };
                let _ = stream.set_nodelay(true);
                let gateway: session_capnp::gateway::Client =
                    capnp_rpc::new_client(GatewayImpl::new(shared.clone(), tokens.clone()));
                let (r, w) = stream.into_split();
                spawn_connection(r, w, gateway.client);
            }
        }
    }
}

/// A server running on its own thread (tests, embedding); [`RunningServer::stop`] ends it.
#[derive(Debug)]
pub struct RunningServer {
    /// The addresses it listens on, with TCP ports resolved (port 0 binds a free one).
    pub addrs: Vec<Addr>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
    shared: Arc<Shared>,
}

impl RunningServer {
    /// Jobs running now.
    pub fn running_jobs(&self) -> usize {
        self.shared.running_jobs()
    }

    /// Stops accepting, cancels running jobs (killing their process trees), waits for the server
    /// thread and removes its sockets.
    pub fn stop(mut self) -> Result<(), NetError> {
        self.stop_inner()
    }

    fn stop_inner(&mut self) -> Result<(), NetError> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match self.thread.take() {
            Some(t) => t.join().map_err(|_| NetError::Thread),
            None => Ok(()),
        }
    }
}

impl Drop for RunningServer {
    fn drop(&mut self) {
        let _ = self.stop_inner();
    }
}

/// Binds every address of `config` and serves on a new thread until stopped.
pub fn spawn(config: ServeConfig) -> Result<RunningServer, NetError> {
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let shared = Shared::new(config.service.clone());
    let thread_shared = shared.clone();
    let thread = std::thread::Builder::new()
        .name("capsci-rpc".into())
        .spawn(move || {
            let result = serve_on_this_thread(
                config,
                thread_shared,
                async {
                    let _ = stop_rx.await;
                },
                |addrs| {
                    let _ = ready_tx.send(Ok(addrs));
                },
            );
            if let Err(e) = result {
                let _ = ready_tx.send(Err(e));
            }
        })
        .map_err(NetError::Runtime)?;
    match ready_rx.recv() {
        Ok(Ok(addrs)) => Ok(RunningServer {
            addrs,
            stop: Some(stop_tx),
            thread: Some(thread),
            shared,
        }),
        Ok(Err(e)) => {
            let _ = thread.join();
            Err(e)
        }
        Err(_) => {
            let _ = thread.join();
            Err(NetError::Thread)
        }
    }
}

/// Serves `config` on this thread until SIGINT or SIGTERM, then shuts down cleanly: running jobs
/// are cancelled, sockets removed, and the service (with its spare pools) dropped.
pub fn serve_until_signal(
    config: ServeConfig,
    on_ready: impl FnOnce(Vec<Addr>),
) -> Result<(), NetError> {
    let shared = Shared::new(config.service.clone());
    serve_on_this_thread(
        config,
        shared,
        async {
            use tokio::signal::unix::{signal, SignalKind};
            match (
                signal(SignalKind::interrupt()),
                signal(SignalKind::terminate()),
            ) {
                (Ok(mut int), Ok(mut term)) => {
                    tokio::select! {
                        _ = int.recv() => {},
                        _ = term.recv() => {},
                    }
                }
                _ => std::future::pending::<()>().await,
            }
        },
        on_ready,
    )
}

fn serve_on_this_thread(
    config: ServeConfig,
    shared: Arc<Shared>,
    shutdown: impl std::future::Future<Output = ()>,
    on_ready: impl FnOnce(Vec<Addr>),
) -> Result<(), NetError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()
        .map_err(NetError::Runtime)?;
    let local = tokio::task::LocalSet::new();
    let store_dir = config.service.store().dir().to_path_buf();
    let tokens = TokenStore::open(&store_dir)?;
    let root = config
        .service
        .session(config.grant.clone(), config.principal.clone());
    let mut addrs = config.listen.clone();
    if config.local_socket {
        addrs.push(Addr::Unix(store_dir.join(LOCAL_SOCKET)));
    }
    let mut sockets = Vec::new();
    let result = local.block_on(&runtime, async {
        let mut bound = Vec::new();
        let mut listeners = Vec::new();
        for addr in &addrs {
            match addr {
                Addr::Unix(path) => {
                    let l = bind_unix(path)?;
                    sockets.push(path.clone());
                    bound.push(addr.clone());
                    listeners.push(Listener::Unix(l));
                }
                Addr::Tcp(a) => {
                    let l =
                        tokio::net::TcpListener::bind(a)
                            .await
                            .map_err(|error| NetError::Bind {
                                addr: a.to_string(),
                                error,
                            })?;
                    let actual = l.local_addr().map_err(|error| NetError::Bind {
                        addr: a.to_string(),
                        error,
                    })?;
                    bound.push(Addr::Tcp(actual));
                    listeners.push(Listener::Tcp(l));
                }
            }
        }
        let mut loops = Vec::new();
        for l in listeners {
            loops.push(tokio::task::spawn_local(accept_loop(
                l,
                shared.clone(),
                root.clone(),
                tokens.clone(),
            )));
        }
        on_ready(bound);
        shutdown.await;
        for l in loops {
            l.abort();
        }
        Ok::<(), NetError>(())
    });
    for path in &sockets {
        let _ = std::fs::remove_file(path);
    }
    shared.cancel_all();
    drop(local);
    // Cancelled jobs end in well under a second (their process trees are killed); the runtime
    // waits for them so that their records are written before the service is dropped.
    runtime.shutdown_timeout(Duration::from_secs(30));
    result
}

/// Runs `future` on a current-thread tokio runtime until it ends or SIGINT/SIGTERM arrives
/// (`None`); then waits up to 30 s for blocking work to finish. For front ends that serve
/// alongside the Cap'n Proto server (`capsci serve --http`) without a runtime of their own.
pub fn run_until_signal<F: std::future::Future>(future: F) -> Result<Option<F::Output>, NetError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()
        .map_err(NetError::Runtime)?;
    let result = runtime.block_on(async {
        use tokio::signal::unix::{signal, SignalKind};
        let (Ok(mut int), Ok(mut term)) = (
            signal(SignalKind::interrupt()),
            signal(SignalKind::terminate()),
        ) else {
            return Some(future.await);
        };
        tokio::select! {
            out = future => Some(out),
            _ = int.recv() => None,
            _ = term.recv() => None,
        }
    });
    runtime.shutdown_timeout(Duration::from_secs(30));
    Ok(result)
}
