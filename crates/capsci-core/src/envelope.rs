//! The result envelope: one JSON object per call, from every front end (DESIGN.md).

use crate::exit::ExitReason;
use crate::results::CallOutcome;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Whether capsci itself (or a proof kernel) verified the answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Evidence {
    /// A proof kernel accepted the artifact, or capsci re-verified the answer.
    Checked,
    /// The backend's word only.
    Advisory,
}

/// Content addresses of the call's artifacts (`blake3:<hex>`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ArtifactRefs {
    /// The exact input the backend received.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<String>,
    /// The backend's output.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<String>,
    /// The full log (stderr, diagnostics, re-check transcript).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log: Option<String>,
    /// Further artifacts by role (e.g. `smtlib_export`, `vo:Foo.vo`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub extra: BTreeMap<String, String>,
}

/// Where the call's provenance record sits in the hash chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ProvenanceRef {
    /// The record's id.
    pub record: String,
    /// The hash of the log entry, which chains to the previous one.
    pub hash: String,
}

/// Which backend ran, at which version, from which package closure.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct BackendIdentity {
    /// Backend name (`gp`, `sympy`, `z3`, `cvc5`, `highs`, `rocq`).
    pub name: String,
    /// The backend's own version string.
    pub version: String,
    /// Hash of its `PackageClosure`.
    pub closure: String,
}

/// The sandbox a call ran in, and what actually held.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SandboxInfo {
    /// The sandbox kind (`bwrap`, `none` when no process ran).
    pub kind: String,
    /// Hash of the sandbox policy value.
    pub policy: String,
    /// The isolation claim (`shared host kernel`).
    pub boundary: String,
    /// What each layer reported at run time (`landlock: fully_enforced`, ...).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub enforcement: BTreeMap<String, String>,
}

/// The limits a call ran under.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Limits {
    /// Wall-clock seconds.
    pub wall_s: f64,
    /// CPU seconds (user + system).
    pub cpu_s: f64,
    /// Memory, MiB.
    pub memory_mb: u64,
    /// Processes and threads.
    pub pids: u32,
    /// Largest file the backend may write, MiB.
    pub file_size_mb: u64,
    /// Bytes of stdout plus stderr kept before the call is ended.
    pub output_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            wall_s: 30.0,
            cpu_s: 30.0,
            memory_mb: 2048,
            pids: 64,
            file_size_mb: 256,
            output_bytes: 16 * 1024 * 1024,
        }
    }
}

/// Resources the call used.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Usage {
    /// Wall-clock milliseconds.
    pub wall_ms: u64,
    /// User + system CPU milliseconds of the whole process tree.
    pub cpu_ms: u64,
    /// Peak resident set, KiB.
    pub max_rss_kb: u64,
}

/// Which mechanism capped memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum MemoryLimitBy {
    /// cgroup v2 `memory.max`.
    CgroupV2,
    /// cgroup v1 `memory.limit_in_bytes`.
    CgroupV1,
    /// `RLIMIT_AS` (address space, coarser).
    RlimitAs,
    /// Nothing capped memory (no process ran).
    None,
}

/// Facts of the host that a rerun would need to match.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct HostFacts {
    /// Kernel release (`uname -r`).
    pub kernel: String,
    /// CPU model name.
    pub cpu_model: String,
    /// Which mechanism capped memory for this call.
    pub memory_limit_by: MemoryLimitBy,
}

/// The result envelope: everything a caller, a reviewer or a replay needs about one call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Envelope {
    /// `job_<ulid>`.
    pub job: String,
    /// Interface, method, status and result.
    #[serde(flatten)]
    pub call: CallOutcome,
    /// `checked` only where a kernel or capsci itself verified the answer.
    pub evidence: Evidence,
    /// Content addresses of input, output and log.
    pub artifacts: ArtifactRefs,
    /// The provenance record of this call; absent only before the record is written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provenance: Option<ProvenanceRef>,
    /// Which backend ran.
    pub backend: BackendIdentity,
    /// The sandbox it ran in.
    pub sandbox: SandboxInfo,
    /// The limits it ran under.
    pub limits: Limits,
    /// What it used.
    pub usage: Usage,
    /// How its process ended.
    pub exit: ExitReason,
    /// The random seed given to the backend.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    /// Host facts.
    pub host: HostFacts,
    /// Start time, RFC 3339 UTC.
    pub started_at: String,
    /// End time, RFC 3339 UTC.
    pub finished_at: String,
}

impl Envelope {
    /// The status as its wire word.
    pub fn status_word(&self) -> &'static str {
        self.call.status_word()
    }
}
