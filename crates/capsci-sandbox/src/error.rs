//! Errors of the sandbox: only failures where no [`crate::Outcome`] can be produced.

use std::path::PathBuf;

/// Why a sandbox could not be created or a call could not even be attempted.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SandboxError {
    /// The `capsci-jail` helper binary was not found.
    #[error("capsci-jail helper not found (set CAPSCI_JAIL or install it next to the executable); looked at {0:?}")]
    JailNotFound(Vec<PathBuf>),
    /// The bubblewrap executable was not found.
    #[error("bwrap not found at {0}")]
    BwrapNotFound(PathBuf),
    /// A file or directory of the runtime directory could not be prepared.
    #[error("cannot prepare {path}: {source}")]
    Runtime {
        /// The path that failed.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The dynamic libraries of the helper could not be listed with `ldd`.
    #[error("cannot list the libraries of {path} with ldd: {message}")]
    Ldd {
        /// The helper binary.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// A file of the command had an absolute path or `..` in it.
    #[error("work-directory path {0} must be relative without `..`")]
    BadWorkPath(PathBuf),
    /// Every unprivileged uid slot is busy.
    #[error("all {0} sandbox uid slots are busy")]
    NoSlot(u32),
    /// The helper process could not be started.
    #[error("cannot start the sandbox helper {path}: {source}")]
    Spawn {
        /// The helper binary.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A thread of the supervisor could not be started.
    #[error("cannot start a supervisor thread: {0}")]
    Thread(std::io::Error),
    /// Waiting for the sandboxed process failed.
    #[error("cannot wait for the sandboxed process: {0}")]
    Wait(std::io::Error),
}
