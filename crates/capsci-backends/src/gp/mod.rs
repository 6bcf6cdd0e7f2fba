//! The gp backend.
