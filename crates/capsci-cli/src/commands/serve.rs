//! `capsci serve [--capnp ADDR] [--http ADDR]`: the long-running service. It opens the store
//! with hot spares (one per backend), serves Cap'n Proto RPC on ADDR (`unix:PATH`, or loopback
//! TCP with bearer tokens) and always on the store's own socket `<store>/capsci.sock` (mode
//! 0600), so command-line calls on the same store are handed to it; `--http` serves MCP over
//! streamable HTTP. SIGINT/SIGTERM shut it down cleanly: running jobs are cancelled, sockets
//! removed and the spare pools dropped (no sandboxed process is left behind).

use crate::cli::Cli;
use crate::commands::call::store_dir;
use anyhow::{bail, Context};
use capsci_rpc::net::{Addr, ServeConfig};
use capsci_service::{Grant, Principal, Service, ServiceConfig};
use std::path::Path;
use std::process::ExitCode;

/// What `capsci serve` was asked for.
#[derive(Debug, Clone, Default)]
pub struct ServeOptions<'a> {
    /// `--capnp ADDR`.
    pub capnp: Option<&'a str>,
    /// `--http ADDR`.
    pub http: Option<&'a str>,
    /// `--grant FILE`: the grant of the unix sockets' session (default `scientific-base`).
    pub grant: Option<&'a Path>,
    /// Do not listen on `<store>/capsci.sock`.
    pub no_local_socket: bool,
}

/// `capsci serve` with every option.
pub fn run_with(cli: &Cli, options: &ServeOptions<'_>) -> anyhow::Result<ExitCode> {
    let listen = match options.capnp {
        Some(text) => vec![Addr::parse(text)?],
        None => Vec::new(),
    };
    let http = match options.http {
        Some(text) => {
            let addr: std::net::SocketAddr = text
                .parse()
                .with_context(|| format!("--http {text}: expected 127.0.0.1:PORT"))?;
            if !addr.ip().is_loopback() {
                bail!(
                    "--http {text} is not on loopback: capsci serves HTTP on 127.0.0.1 / ::1 only"
                );
            }
            Some(addr)
        }
        None => None,
    };
    if listen.is_empty() && http.is_none() && options.no_local_socket {
        bail!("nothing to serve: give --capnp ADDR or --http ADDR, or keep the store socket");
    }
    let grant = match options.grant {
        Some(path) => Grant::load(path)?,
        None => Grant::scientific_base(),
    };
    let dir = store_dir(cli)?;
    let service = Service::open(ServiceConfig {
        store_dir: dir.clone(),
        spares_per_backend: 1,
        default_limits: capsci_core::Limits::default(),
    })
    .with_context(|| format!("store {} unavailable", dir.display()))?;
    let mut principal = Principal::local_user();
    principal.runner = serde_json::json!({"front_end": "capnp"});
    let config = ServeConfig {
        service: service.clone(),
        grant,
        principal,
        listen,
        local_socket: !options.no_local_socket,
    };
    let announce = |addrs: Vec<Addr>| {
        for addr in addrs {
            let how = match addr {
                Addr::Unix(_) => "session by socket permissions",
                Addr::Tcp(_) => "session by bearer token",
            };
            eprintln!("capsci: serving Cap'n Proto on {addr} ({how})");
        }
    };
    match http {
        None => capsci_rpc::serve_until_signal(config, announce)?,
        Some(addr) => serve_http_too(config, service, addr, announce)?,
    }
    eprintln!("capsci: stopped");
    Ok(ExitCode::SUCCESS)
}

/// Cap'n Proto (and the store socket) on their own thread, MCP over HTTP on this one.
fn serve_http_too(
    config: ServeConfig,
    service: std::sync::Arc<Service>,
    addr: std::net::SocketAddr,
    announce: impl FnOnce(Vec<Addr>),
) -> anyhow::Result<()> {
    let server = capsci_rpc::spawn(config)?;
    announce(server.addrs.clone());
    eprintln!("capsci: serving MCP over streamable HTTP on http://{addr}/ (bearer tokens)");
    let outcome = capsci_rpc::run_until_signal(capsci_mcp::serve_http(service, addr));
    server.stop()?;
    match outcome? {
        Some(Err(error)) => Err(error).context("MCP over HTTP"),
        _ => Ok(()),
    }
}
