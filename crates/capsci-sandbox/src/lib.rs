//! Runs a backend's command in a sandbox with limits and reports how it ended and what it used
