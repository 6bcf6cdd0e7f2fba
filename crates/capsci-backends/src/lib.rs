//! The backends: how each tool is called, what its input policy refuses, and how its output
//! becomes a typed result.
//!
//! Each backend module owns three things: the input policy (what is refused before any process
//! starts), the command it runs through `capsci-sandbox`, and the parser that turns the tool's
//! output into the typed status and `result` of `capsci-core`.

pub mod gp;
pub mod lean;
pub mod opt;
pub mod rocq;
pub mod smt;
pub mod sympy;
