//! Runs a backend's command in a sandbox with limits and reports how it ended and what it used.
//!
//! Nothing in capsci starts a tool any other way. The public surface is:
//! - [`SandboxPolicy`]: data (binds, environment, limits, syscall filter, network off), hashed into
//!   every result ([`SandboxPolicy::hash`]), so a record says exactly what confined the call;
//! - [`Sandbox`]: the trait a sandbox kind implements ([`BwrapSandbox`] now; a microVM kind later);
//! - [`Command`] in, [`Outcome`] out: exit reason, bounded stdout/stderr, usage, collected files;
//! - [`CancelToken`]: cancels a running call, killing its whole process tree;
//! - [`SparePool`]: single-use pre-started workers (DESIGN.md invariant 7);
//! - [`host_facts`]: kernel and CPU model for the envelope.
//!
//! How a `bwrap` call runs: the calling thread starts the `capsci-jail` helper (`outer` mode; no
//! `pre_exec` in the multi-threaded service), which joins the job's cgroup v1 groups (memory,
//! pids, cpuacct), sets rlimits, drops to the job's own unprivileged uid, arms the parent-death
//! signal and execs bubblewrap (new user, pid, net, ipc, uts, cgroup and mount namespaces; only
//! the policy's binds, read-only; `/work` private and writable; tmpfs `/tmp`; minimal `/dev`,
//! `/proc`). Inside, the helper (`inner` mode) sets no_new_privs, Landlock and a seccomp
//! deny-list, records what held, and execs the tool. The supervisor enforces wall time, CPU
//! (cgroup accounting, `RLIMIT_CPU` as backstop), pids, memory and output, and on any limit or
//! cancel kills the namespace's init, which takes the whole tree with it.
//!
//! The helper binary must be built (`cargo build -p capsci-sandbox --bin capsci-jail`); it is
//! found through `CAPSCI_JAIL`, next to the executable, or in the executable's parent directory.

use capsci_core::{ExitReason, Limits, MemoryLimitBy, SandboxInfo, Usage};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

mod bwrap;
mod cgroup;
mod error;
mod host;
pub mod jail;
mod run;
mod spare;

pub use bwrap::{BwrapSandbox, SandboxConfig, WORK_DIR};
pub use error::SandboxError;
pub use host::{cpu_model, host_facts, kernel_release};
pub use spare::{SparePool, SpareStats};

/// The isolation claim of every namespace sandbox kind: it shares the host's kernel.
pub const BOUNDARY_SHARED_KERNEL: &str = "shared host kernel";

/// A kind of sandbox: runs one [`Command`] under a [`SandboxPolicy`] and reports how it ended.
///
/// `run` blocks until the whole process tree is gone; async callers use a blocking thread. A
/// tool that times out, dies or overflows its output is an [`Outcome`] with the matching
/// [`ExitReason`]; `Err` is only for failures where no outcome can be produced at all.
pub trait Sandbox: Send + Sync {
    /// The kind recorded in [`SandboxInfo::kind`] (`bwrap`).
    fn kind(&self) -> &'static str;

    /// Runs `command` under `policy`, killing the whole tree when `cancel` fires or a limit is
    /// reached.
    fn run(
        &self,
        policy: &SandboxPolicy,
        command: Command,
        cancel: &CancelToken,
    ) -> Result<Outcome, SandboxError>;
}

/// A read-only bind of a host path (file or directory) into the sandbox.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Bind {
    /// Path on the host.
    pub host: PathBuf,
    /// Path inside the sandbox (usually the same, so closures' paths are what ran).
    pub sandbox: PathBuf,
}

impl Bind {
    /// Binds a host path at the same path inside the sandbox.
    pub fn same(path: impl Into<PathBuf>) -> Self {
        let path = path.into();
        Bind {
            host: path.clone(),
            sandbox: path,
        }
    }
}

/// Which syscall filter applies inside the sandbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SyscallFilter {
    /// Deny what no solver needs: ptrace, mount, bpf, keyctl, perf_event_open, kexec, new user
    /// namespaces, and the like.
    SolverDefault,
}

/// Everything that confines one call, as data. Its hash goes into every result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SandboxPolicy {
    /// Backend the policy is for (informational).
    pub backend: String,
    /// Exactly the paths the backend may read (its package closure), read-only.
    pub ro_binds: Vec<Bind>,
    /// The environment, in full: nothing is inherited from capsci's own.
    pub env: BTreeMap<String, String>,
    /// Wall, CPU, memory, processes, file size and output limits.
    pub limits: Limits,
    /// Network access; always `false` for the `scientific-base` profile.
    pub network: bool,
    /// The seccomp filter applied inside.
    pub syscall_filter: SyscallFilter,
}

impl SandboxPolicy {
    /// `blake3:<hex>` of the policy's canonical JSON (field order is the struct's; maps are
    /// sorted), so equal policies hash equal and any change to binds, env or limits shows.
    pub fn hash(&self) -> String {
        let bytes = serde_json::to_vec(self).unwrap_or_default();
        format!("blake3:{}", blake3::hash(&bytes).to_hex())
    }
}

/// One command to run in the sandbox.
#[derive(Debug, Clone, Default)]
pub struct Command {
    /// The program, as a path inside the sandbox.
    pub program: PathBuf,
    /// Its arguments.
    pub args: Vec<String>,
    /// Bytes written to its stdin (then closed).
    pub stdin: Vec<u8>,
    /// Files written into the private work directory before it starts (relative paths).
    pub files: Vec<(PathBuf, Vec<u8>)>,
    /// Files (relative paths in the work directory) read back after it ends, if present.
    pub collect: Vec<PathBuf>,
}

/// How a call ended and what it used.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// How the process tree ended.
    pub exit: ExitReason,
    /// Stdout, bounded by the output limit.
    pub stdout: Vec<u8>,
    /// Stderr, bounded by the output limit.
    pub stderr: Vec<u8>,
    /// Wall, CPU and peak RSS of the whole tree.
    pub usage: Usage,
    /// The files named in [`Command::collect`] that existed at the end.
    pub collected: Vec<(PathBuf, Vec<u8>)>,
    /// The sandbox description for the envelope (kind, policy hash, boundary, enforcement).
    pub sandbox: SandboxInfo,
    /// Which mechanism capped memory.
    pub memory_limit_by: MemoryLimitBy,
}

/// Cancels a running call; every clone sees the same flag.
#[derive(Debug, Clone, Default)]
pub struct CancelToken(Arc<AtomicBool>);

impl CancelToken {
    /// A token that is not cancelled.
    pub fn new() -> Self {
        Self::default()
    }

    /// Asks the call to stop; the sandbox kills the whole process tree.
    pub fn cancel(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    /// Whether cancellation was asked for.
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> SandboxPolicy {
        SandboxPolicy {
            backend: "gp".into(),
            ro_binds: vec![Bind::same("/usr/bin/gp")],
            env: BTreeMap::from([("LANG".to_string(), "C".to_string())]),
            limits: Limits::default(),
            network: false,
            syscall_filter: SyscallFilter::SolverDefault,
        }
    }

    #[test]
    fn equal_policies_hash_equal_and_any_change_shows() {
        let a = policy();
        assert_eq!(a.hash(), policy().hash());
        assert!(a.hash().starts_with("blake3:"));
        assert_eq!(a.hash().len(), "blake3:".len() + 64);
        let mut b = policy();
        b.limits.wall_s = 31.0;
        assert_ne!(a.hash(), b.hash());
        let mut c = policy();
        c.ro_binds.push(Bind::same("/etc"));
        assert_ne!(a.hash(), c.hash());
        let mut d = policy();
        d.env.insert("X".into(), "1".into());
        assert_ne!(a.hash(), d.hash());
    }

    #[test]
    fn a_policy_round_trips_through_json_with_the_same_hash() {
        let a = policy();
        let text = serde_json::to_string(&a).expect("json");
        let back: SandboxPolicy = serde_json::from_str(&text).expect("parse");
        assert_eq!(back, a);
        assert_eq!(back.hash(), a.hash());
    }

    #[test]
    fn a_cancel_token_is_shared_by_its_clones() {
        let token = CancelToken::new();
        let clone = token.clone();
        assert!(!clone.is_cancelled());
        token.cancel();
        assert!(clone.is_cancelled());
    }
}
