//! `capsci --connect ADDR <command>`: send the call to a running `capsci serve` over Cap'n Proto
//! and print the envelope it returns exactly as a local call would. Without `--connect`, a call
//! on a store whose `capsci serve` answers on `<store>/capsci.sock` is handed to it too, so
//! command-line users get its hot spares; otherwise the call runs here. Same envelope either way.

use crate::cli::Cli;
use crate::commands::call;
use crate::render;
use anyhow::Context;
use capsci_core::CallRequest;
use capsci_rpc::{Addr, Reply};
use std::path::Path;
use std::process::ExitCode;

/// The environment variable holding the bearer token for a TCP server.
pub const TOKEN_ENV: &str = "CAPSCI_TOKEN";

/// Sends `request` to the service at `addr` (`unix:PATH` or `127.0.0.1:PORT`; TCP takes the
/// token from `CAPSCI_TOKEN`) and prints the envelope (or, with `--detach`, the job id).
pub fn run_connected(cli: &Cli, addr: &str, request: CallRequest) -> anyhow::Result<ExitCode> {
    let addr = Addr::parse(addr)?;
    let token = std::env::var(TOKEN_ENV).ok();
    let reply = capsci_rpc::call_blocking(&addr, token.as_deref(), &request, cli.detach)
        .with_context(|| format!("call to {addr}"))?;
    print(cli, reply)
}

/// The running service on this store, if one answers on `<store>/capsci.sock`.
pub fn try_local_service(store_dir: &Path) -> Option<capsci_rpc::LocalService> {
    capsci_rpc::try_local_service(store_dir)
}

/// Runs a calling verb wherever it should run: at `--connect ADDR`; else at the store's running
/// service; else in this process ([`call::run`]).
pub fn run_call(cli: &Cli, request: CallRequest) -> anyhow::Result<ExitCode> {
    if let Some(addr) = cli.connect.as_deref() {
        return run_connected(cli, addr, request);
    }
    if let Some(service) = call::store_dir(cli)
        .ok()
        .and_then(|d| try_local_service(&d))
    {
        let reply = service
            .call(&request, cli.detach)
            .with_context(|| format!("call to the running service at {}", service.addr()))?;
        return print(cli, reply);
    }
    call::run(cli, request)
}

fn print(cli: &Cli, reply: Reply) -> anyhow::Result<ExitCode> {
    match reply {
        Reply::Envelope(envelope) => render::envelope(cli, &envelope)?,
        Reply::Detached(job) => out!("{job}"),
    }
    Ok(ExitCode::SUCCESS)
}
