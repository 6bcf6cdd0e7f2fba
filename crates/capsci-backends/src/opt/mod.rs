//! The opt backend.
