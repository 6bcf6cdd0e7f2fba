//! The `capsci mcp` server without the command line around it: MCP over stdio on the store in
//! `CAPSCI_STORE` with the `scientific-base` grant. Used by the benchmark when the `capsci`
//! binary is not built; behaves exactly as `capsci mcp`.

use capsci_mcp::StdioConfig;
use capsci_service::Grant;
use std::process::ExitCode;

fn main() -> ExitCode {
    let Some(store) = std::env::var_os("CAPSCI_STORE") else {
        eprintln!("stdio_server: set CAPSCI_STORE to a store directory");
        return ExitCode::from(2);
    };
    match capsci_mcp::run_stdio(StdioConfig::new(store.into(), Grant::scientific_base())) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("stdio_server: {e}");
            ExitCode::from(2)
        }
    }
}
