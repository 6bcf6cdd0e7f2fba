//! `capsci mcp [--grant FILE]`: MCP over stdio. Thin: the server lives in `capsci-mcp`
//! (`capsci serve --http ADDR` calls `capsci_mcp::serve_http` from `serve.rs`).

use crate::cli::Cli;
use crate::commands::call::store_dir;
use capsci_mcp::StdioConfig;
use capsci_service::Grant;
use std::path::Path;
use std::process::ExitCode;

/// Serves MCP over stdin/stdout until stdin closes, holding the grant in `grant` (default: the
/// `scientific-base` profile). The store opens in the background, so `initialize` is answered
/// at once.
pub fn run_stdio(cli: &Cli, grant: Option<&Path>) -> anyhow::Result<ExitCode> {
    let grant = match grant {
        Some(path) => Grant::load(path)?,
        None => Grant::scientific_base(),
    };
    let config = StdioConfig::new(store_dir(cli)?, grant);
    capsci_mcp::run_stdio(config)?;
    Ok(ExitCode::SUCCESS)
}
