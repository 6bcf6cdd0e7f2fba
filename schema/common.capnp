@0x9dda852053b31507;
# Types every capsci interface shares: the parts of the result envelope (DESIGN.md) that are the
# same for every method. The canonical form of a result is the JSON envelope, whose schema is
# `envelope.schema.json`; every RPC result carries it verbatim in `envelopeJson` beside the typed
# fields, so an RPC client and a JSON client can never see two different answers.

enum Evidence {
  # `checked` only where a proof kernel accepted an artifact or capsci re-verified the answer.
  advisory @0;
  checked @1;
}

struct ArtifactRefs {
  # Content addresses (`blake3:<hex>`) of the call's artifacts.
  input @0 :Text;
  output @1 :Text;
  log @2 :Text;
  extra @3 :List(NamedArtifact);
}

struct NamedArtifact {
  role @0 :Text;   # e.g. `smtlib_export`, `vo:Foo.vo`
  id @1 :Text;
}

struct ProvenanceRef {
  record @0 :Text;
  hash @1 :Text;   # hash of the log entry, chained to the previous one
}

struct BackendIdentity {
  name @0 :Text;
  version @1 :Text;
  closure @2 :Text;  # hash of its PackageClosure
}

struct SandboxInfo {
  kind @0 :Text;      # `bwrap`, ...
  policy @1 :Text;    # hash of the sandbox policy value
  boundary @2 :Text;  # `shared host kernel`, ...
}

struct Limits {
  # Per-call limits. Zero means "the session's default"; a value above the grant's ceiling is
  # clamped to it, never widened.
  wallS @0 :Float64;
  cpuS @1 :Float64;
  memoryMb @2 :UInt64;
  pids @3 :UInt32;
  fileSizeMb @4 :UInt64;
  outputBytes @5 :UInt64;
}

struct Usage {
  wallMs @0 :UInt64;
  cpuMs @1 :UInt64;
  maxRssKb @2 :UInt64;
}

struct HostFacts {
  kernel @0 :Text;
  cpuModel @1 :Text;
  memoryLimitBy @2 :Text;  # `cgroup_v2` | `cgroup_v1` | `rlimit_as`
}

struct CallRecord {
  # What every call returns besides its method-specific result.
  job @0 :Text;            # `job_<ulid>`
  evidence @1 :Evidence;
  artifacts @2 :ArtifactRefs;
  provenance @3 :ProvenanceRef;
  backend @4 :BackendIdentity;
  sandbox @5 :SandboxInfo;
  limits @6 :Limits;
  usage @7 :Usage;
  exit @8 :Text;           # `exited(0)`, `timeout`, `memory_limit`, `signal(9)`, ...
  seed @9 :UInt64;
  host @10 :HostFacts;
  envelopeJson @11 :Text;  # the whole envelope, exactly as `--json` prints it
}

struct Location {
  line @0 :UInt32;
  column @1 :UInt32;  # 0 when the backend gives none
}

struct CallOptions {
  # Options every method accepts.
  limits @0 :Limits;
  # Of these, `wallS` is the call's timeout (for `OptimizationSolver.solve`, `opt.timeLimitS` is);
  # the other limits are the service's defaults clamped to the grant's `maxLimits`.
  seed @1 :UInt64;
  hasSeed @2 :Bool;
  detach @3 :Bool;  # return as soon as the job is queued; use the Job capability to follow it
}
