//! The sympy backend.
