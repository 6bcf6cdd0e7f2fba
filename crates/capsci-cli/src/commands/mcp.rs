//! `capsci mcp [--grant FILE]`: MCP over stdio. Thin: the server lives in `capsci-mcp`
//! (`capsci serve --http ADDR` calls `capsci_mcp::serve_http` from `serve.rs`).

use crate::cli::Cli;
use crate::commands::call::store_dir;
use capsci_mcp::StdioConfig;
use capsci_service::Grant;
use std::path::Path;
use std::process::ExitCode;

/// Serves MCP over stdin/stdout until stdin closes, holding the grant in `grant` (default: the
/// `scientific-base` profile); the store opens in the background, so `initialize` is answered at
/// once. With `workspace` the proof tools may also name a `.v` file or project
/// directory inside it by `path` (never outside it: no `..`, no symbolic link out).
pub fn run_stdio_with(
    cli: &Cli,
    grant: Option<&Path>,
    workspace: Option<&Path>,
) -> anyhow::Result<ExitCode> {
    let grant = match grant {
        Some(path) => Grant::load(path)?,
        None => Grant::scientific_base(),
    };
    let mut config = StdioConfig::new(store_dir(cli)?, grant);
    config.workspace = workspace.map(Path::to_path_buf);
    capsci_mcp::run_stdio(config)?;
    Ok(ExitCode::SUCCESS)
}
