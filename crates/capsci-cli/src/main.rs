//! `capsci`: the command line. This file only parses and dispatches; each verb lives in
//! `commands/`.

mod cli;
mod commands;

use clap::Parser;
use cli::{Cli, Command};
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome = match &cli.command {
        Command::Catalog => commands::catalog::run(&cli),
        other => commands::not_built(other),
    };
    match outcome {
        Ok(code) => code,
        Err(error) => {
            // One line on stderr, exit 2: no job could be made (DESIGN.md, "Command line").
            eprintln!("capsci: {error:#}");
            ExitCode::from(2)
        }
    }
}
