//! `capsci`: the command line. This file only parses and dispatches; each verb lives in
//! `commands/`.

#[macro_use]
mod output;
mod cli;
mod commands;
mod progress;
mod project;
mod render;

use clap::Parser;
use cli::{Cli, Command};
use commands::{call, connect};
use std::process::ExitCode;

fn dispatch(cli: &Cli) -> anyhow::Result<ExitCode> {
    match &cli.command {
        Command::Gp { expr, timeout } => connect::run_call(cli, call::gp_request(expr, *timeout)),
        Command::Cas(args) => connect::run_call(cli, call::cas_request(args)),
        Command::Smt { action } => connect::run_call(cli, call::smt_request(action)?),
        Command::Opt { action } => connect::run_call(cli, call::opt_request(action)?),
        Command::Proof { action } => connect::run_call(cli, call::proof_request(action)?),
        Command::Job { action } => commands::job::run(cli, action),
        Command::InternalRunJob { id } => commands::job::run_queued(cli, id),
        Command::Token { action } => commands::token::run(cli, action),
        Command::Artifact { action } => commands::artifact::run(cli, action),
        Command::Log { action } => commands::log::run(cli, action),
        Command::Catalog => commands::catalog::run(cli),
        Command::Demo => commands::demo::run(cli),
        Command::Replay { record } => commands::replay::run(cli, record),
        Command::Bench {
            conformance: Some(dir),
        } => commands::bench::conformance(cli, dir),
        Command::Bench { conformance: None } => commands::perf::run(cli),
        Command::Mcp { grant, workspace } => {
            commands::mcp::run_stdio_with(cli, grant.as_deref(), workspace.as_deref())
        }
        Command::Serve { capnp, http, grant } => commands::serve::run_with(
            cli,
            &commands::serve::ServeOptions {
                capnp: capnp.as_deref(),
                http: http.as_deref(),
                grant: grant.as_deref(),
                no_local_socket: false,
            },
        ),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match dispatch(&cli) {
        Ok(code) => code,
        Err(error) => {
            // One line on stderr, exit 2: no job could be made (DESIGN.md, "Command line").
            eprintln!("capsci: {}", format!("{error:#}").replace('\n', " "));
            ExitCode::from(2)
        }
    }
}
