//! The smt backend.
