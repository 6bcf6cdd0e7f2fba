//! The client: connects to a `capsci serve`, obtains the session (directly over a unix socket,
//! through `Gateway.session(token)` over TCP) and sends one call, pipelined: the capability for
//! the interface and the call on it go out together, one round trip.

use crate::convert;
use crate::net::{Addr, NetError, LOCAL_SOCKET};
use crate::{common_capnp, session_capnp};
use capnp_rpc::{rpc_twoparty_capnp, twoparty, RpcSystem};
use capsci_core::{CallRequest, Envelope};
use std::path::Path;
use tokio_util::compat::{TokioAsyncReadCompatExt, TokioAsyncWriteCompatExt};

/// Why a remote call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// Connecting failed.
    #[error(transparent)]
    Net(#[from] NetError),
    /// The server refused or failed the call (not granted, quota, bad token, invalid input).
    #[error("{0}")]
    Rpc(String),
    /// The server's envelope JSON could not be read.
    #[error("the server's envelope is not valid: {0}")]
    Envelope(#[from] serde_json::Error),
    /// TCP needs a bearer token.
    #[error("{0} is a TCP server: it needs a bearer token (set CAPSCI_TOKEN)")]
    NoToken(String),
}

impl From<capnp::Error> for ClientError {
    fn from(e: capnp::Error) -> Self {
        // Strip capnp's "remote exception: Failed: " decoration: the server's words are enough.
        let text = e.extra.trim().to_string();
        ClientError::Rpc(if text.is_empty() { e.to_string() } else { text })
    }
}

impl From<std::str::Utf8Error> for ClientError {
    fn from(_: std::str::Utf8Error) -> Self {
        ClientError::Rpc("the server sent text that is not UTF-8".into())
    }
}

/// What a call returned: its envelope, or (detached) the id of its queued job.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// The call ran to its end.
    Envelope(Box<Envelope>),
    /// The call was detached; follow the job.
    Detached(String),
}

fn start_rpc<R, W>(reader: R, writer: W) -> RpcSystem<rpc_twoparty_capnp::Side>
where
    R: tokio::io::AsyncRead + Unpin + 'static,
    W: tokio::io::AsyncWrite + Unpin + 'static,
{
    let network = twoparty::VatNetwork::new(
        futures::io::BufReader::new(reader.compat()),
        futures::io::BufWriter::new(writer.compat_write()),
        rpc_twoparty_capnp::Side::Client,
        capnp::message::ReaderOptions::new(),
    );
    RpcSystem::new(Box::new(network), None)
}

/// Connects and returns the session capability. Must run inside a tokio `LocalSet` (the
/// connection's RPC system is spawned on it). Over TCP the session is requested with `token` and
/// pipelined: a refused token shows up as the error of the first call made on it.
pub async fn connect(
    addr: &Addr,
    token: Option<&str>,
) -> Result<session_capnp::scientific_session::Client, ClientError> {
    let connect_err = |error| NetError::Connect {
        addr: addr.to_string(),
        error,
    };
    let mut rpc = match addr {
        Addr::Unix(path) => {
            let stream = tokio::net::UnixStream::connect(path)
                .await
                .map_err(connect_err)?;
            let (r, w) = stream.into_split();
            start_rpc(r, w)
        }
        Addr::Tcp(a) => {
            let stream = tokio::net::TcpStream::connect(a)
                .await
                .map_err(connect_err)?;
            let _ = stream.set_nodelay(true);
            let (r, w) = stream.into_split();
            start_rpc(r, w)
        }
    };
    let session = match addr {
        Addr::Unix(_) => rpc.bootstrap(rpc_twoparty_capnp::Side::Server),
        Addr::Tcp(_) => {
            let token = token.ok_or_else(|| ClientError::NoToken(addr.to_string()))?;
            let gateway: session_capnp::gateway::Client =
                rpc.bootstrap(rpc_twoparty_capnp::Side::Server);
            let mut request = gateway.session_request();
            request.get().set_token(token);
            request.send().pipeline.get_session()
        }
    };
    tokio::task::spawn_local(async move {
        let _ = rpc.await;
    });
    Ok(session)
}

fn reply(record: common_capnp::call_record::Reader<'_>) -> Result<Reply, ClientError> {
    let json = record.get_envelope_json()?.to_str()?;
    if json.is_empty() {
        return Ok(Reply::Detached(record.get_job()?.to_string()?));
    }
    Ok(Reply::Envelope(Box::new(serde_json::from_str(json)?)))
}

/// Sends one call on `session`: the interface's capability is requested and the method called
/// on the promise, without waiting in between (promise pipelining).
pub async fn call(
    session: &session_capnp::scientific_session::Client,
    request: &CallRequest,
    detach: bool,
) -> Result<Reply, ClientError> {
    match request {
        CallRequest::NumberTheoryEval(r) => {
            let cap = session.number_theory_request().send().pipeline.get_cap();
            let mut req = cap.eval_request();
            convert::set_gp(req.get(), r, detach);
            let response = req.send().promise.await?;
            reply(response.get()?.get_result()?.get_record()?)
        }
        CallRequest::ComputerAlgebra(r) => {
            let cap = session.computer_algebra_request().send().pipeline.get_cap();
            let mut req = cap.run_request();
            convert::set_cas(req.get(), r, detach);
            let response = req.send().promise.await?;
            reply(response.get()?.get_result()?.get_record()?)
        }
        CallRequest::SmtCheck(r) => {
            let cap = session.smt_solver_request().send().pipeline.get_cap();
            let mut req = cap.check_request();
            convert::set_smt(req.get(), r, detach);
            let response = req.send().promise.await?;
            reply(response.get()?.get_result()?.get_record()?)
        }
        CallRequest::OptSolve(r) => {
            let cap = session
                .optimization_solver_request()
                .send()
                .pipeline
                .get_cap();
            let mut req = cap.solve_request();
            convert::set_opt(req.get(), r, detach);
            let response = req.send().promise.await?;
            reply(response.get()?.get_result()?.get_record()?)
        }
        CallRequest::ProofCheck(r) => {
            let cap = session.proof_checker_request().send().pipeline.get_cap();
            let mut req = cap.check_request();
            convert::set_proof(req.get(), r, detach);
            let response = req.send().promise.await?;
            reply(response.get()?.get_result()?.get_record()?)
        }
        CallRequest::ProofGoals(r) => {
            let cap = session.proof_checker_request().send().pipeline.get_cap();
            let mut req = cap.goals_request();
            convert::set_goals(req.get(), r);
            let response = req.send().promise.await?;
            reply(response.get()?.get_result()?.get_record()?)
        }
    }
}

/// Connects to `addr`, sends `request` and returns its reply, blocking the calling thread.
pub fn call_blocking(
    addr: &Addr,
    token: Option<&str>,
    request: &CallRequest,
    detach: bool,
) -> Result<Reply, ClientError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()
        .map_err(NetError::Runtime)?;
    let local = tokio::task::LocalSet::new();
    local.block_on(&runtime, async {
        let session = connect(addr, token).await?;
        call(&session, request, detach).await
    })
}

/// A `capsci serve` answering on the store's own socket.
#[derive(Debug, Clone)]
pub struct LocalService {
    addr: Addr,
}

impl LocalService {
    /// The socket's address.
    pub fn addr(&self) -> &Addr {
        &self.addr
    }

    /// Sends `request` to the running service (its hot spares serve it).
    pub fn call(&self, request: &CallRequest, detach: bool) -> Result<Reply, ClientError> {
        call_blocking(&self.addr, None, request, detach)
    }
}

/// The running service on `store_dir`, when `<store>/capsci.sock` exists and accepts a
/// connection; `None` otherwise (the caller then runs the call itself).
pub fn try_local_service(store_dir: &Path) -> Option<LocalService> {
    let path = store_dir.join(LOCAL_SOCKET);
    std::os::unix::net::UnixStream::connect(&path).ok()?;
    Some(LocalService {
        addr: Addr::Unix(path),
    })
}
