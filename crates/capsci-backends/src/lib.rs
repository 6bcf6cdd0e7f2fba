//! The backends: how each tool is called, what its input policy refuses, and how its output becomes a typed result
