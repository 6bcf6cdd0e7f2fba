//! The MCP front end of capsci: a thin adapter over [`capsci_service::Session`].
//!
//! - one tool per granted method (`number_theory_eval`, `computer_algebra` with an `op`
//!   argument, `smt_solver_check`, `optimization_solver_solve`, `proof_checker_check`,
//!   `proof_checker_goals`); a method not granted has no tool and calling it is an error;
//! - `structuredContent` is the result envelope, the text content a one-line summary;
//! - artifacts of the session's calls are resources `capsci://artifact/<id>`, the envelope's
//!   JSON Schema is `capsci://schema/envelope`;
//! - long calls report progress every second when the client sent a progress token, and
//!   `notifications/cancelled` kills the job's sandboxed process tree;
//! - transports: stdio ([`run_stdio`], `capsci mcp`) behind a framing guard that answers
//!   malformed and oversized messages, and streamable HTTP ([`serve_http`], `capsci serve
//!   --http`) where every request presents a bearer token.

pub mod handler;
pub mod http;
pub mod stdio;
pub mod tools;
pub mod workspace;

pub use handler::{McpServer, ServiceSlot};
pub use http::{serve_http, serve_http_on};
pub use stdio::{run_stdio, serve_guarded, StdioConfig, MAX_REQUEST_BYTES};
pub use workspace::{Workspace, WorkspaceError};

use std::net::SocketAddr;

/// Why an MCP server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum McpError {
    /// The async runtime could not be built.
    #[error("mcp: cannot start the async runtime: {source}")]
    Runtime {
        /// The cause.
        source: std::io::Error,
    },
    /// The MCP session failed (handshake or transport).
    #[error("mcp session: {0}")]
    Session(String),
    /// The HTTP address could not be bound.
    #[error("mcp http: cannot bind {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The cause.
        source: std::io::Error,
    },
    /// Accepting a connection failed.
    #[error("mcp http: accept failed: {source}")]
    Accept {
        /// The cause.
        source: std::io::Error,
    },
    /// The workspace directory is unusable.
    #[error(transparent)]
    Workspace(#[from] workspace::WorkspaceError),
    /// The token store could not be opened.
    #[error("mcp http: token store: {source}")]
    Tokens {
        /// The cause.
        source: Box<capsci_service::tokens::TokenError>,
    },
}
