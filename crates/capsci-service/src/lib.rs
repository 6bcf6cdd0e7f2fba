//! ScientificSession: grants and quotas, and the one core call path every front end uses.
//!
//! Front ends (CLI, MCP, Cap'n Proto) are thin adapters: they turn their wire format into a
//! [`capsci_core::CallRequest`], hand it to a [`Session`] and render the [`capsci_core::Envelope`]
//! they get back. Only this crate decides what a session may call.

pub mod grant;

pub use grant::{Grant, GrantError, GrantedMethod, Quotas};
