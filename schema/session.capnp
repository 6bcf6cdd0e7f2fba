@0x9261e32d6609c4f4;
# The facade a user, agent runner or batch service receives. Holding a `ScientificSession` grants
# exactly the interfaces its grant names and nothing else: no file system, shell, network, package
# installation or other session's data. A method whose interface was not granted fails with an
# exception; the capability for it is never handed out, so it cannot be named or reached.

using Common = import "common.capnp";
using Math = import "math.capnp";
using Solvers = import "solvers.capnp";
using Proof = import "proof.capnp";
using Store = import "store.capnp";
using Notebook = import "notebook.capnp";

interface ScientificSession {
  catalog @0 () -> (catalog :ScientificCatalog);
  # Read-only description of what this session may use. Carries no authority to run anything.

  numberTheory @1 () -> (cap :Math.NumberTheory);
  computerAlgebra @2 () -> (cap :Math.ComputerAlgebra);
  smtSolver @3 () -> (cap :Solvers.SmtSolver);
  optimizationSolver @4 () -> (cap :Solvers.OptimizationSolver);
  proofChecker @5 () -> (cap :Proof.ProofChecker);
  notebookSession @6 () -> (cap :Notebook.NotebookSession);
  # Each returns the capability only when the grant names that interface; otherwise the call
  # fails and nothing is handed out. Promise pipelining works: `session.smtSolver().check(...)`
  # is one round trip.

  artifacts @7 () -> (store :Store.ArtifactStore);
  # Read access to the artifacts of this session's own calls only.

  provenance @8 () -> (log :Store.ProvenanceLog);
  # Read access to the provenance records of this session's own calls only.

  job @9 (id :Text) -> (job :Job);
  # A job of this session's own; another session's job ids are not found.

  grant @10 () -> (grant :Grant);
  # The grant this session holds.

  attenuate @11 (grant :Grant) -> (session :ScientificSession);
  # A narrower session for a sub-agent. The child's grant is the intersection of the requested
  # grant and this one: interfaces, methods and every quota can only shrink, never widen.
}

struct Grant {
  # Which interfaces and methods a session may use, with its quotas.
  profile @0 :Text;                 # e.g. `scientific-base`
  methods @1 :List(GrantedMethod);
  quotas @2 :Quotas;
}

struct GrantedMethod {
  interface @0 :Text;  # `SmtSolver`
  method @1 :Text;     # `check`, or `*` for every method of the interface
}

struct Quotas {
  cpuSecondsTotal @0 :Float64;   # CPU-seconds across all the session's calls
  concurrentJobs @1 :UInt32;
  maxLimits @2 :Common.Limits;   # the ceiling for any one call's limits
  artifactBytes @3 :UInt64;      # bytes of artifacts the session may create
}

interface ScientificCatalog {
  # Installed backends, their identities, interfaces, licences and closures. Read-only.
  list @0 () -> (backends :List(BackendEntry));
  closure @1 (backend :Text) -> (closure :Store.PackageClosure);
}

struct BackendEntry {
  name @0 :Text;          # `gp`, `sympy`, `z3`, `cvc5`, `highs`, `rocq`, `lean`
  interface @1 :Text;     # the interface it serves
  version @2 :Text;
  closure @3 :Text;       # closure id
  license @4 :Text;
  available @5 :Bool;     # false when the tool is not installed (e.g. Lean without a toolchain)
  caveats @6 :List(Text); # reproducibility caveats, e.g. floating point across CPUs
}

enum JobState {
  queued @0;
  running @1;
  succeeded @2;
  failed @3;
  cancelled @4;
  interrupted @5;
}

interface Job {
  # One call, followed while it runs. Holding it lets the holder observe and cancel this job only.
  info @0 () -> (id :Text, state :JobState, interface :Text, method :Text);
  wait @1 () -> (envelopeJson :Text);
  # Resolves when the job is final, with its envelope.
  cancel @2 () -> ();
  # Kills the job's process tree; the job ends `cancelled`.
}

interface Gateway {
  # How a client authenticates, by transport:
  # - A unix socket (`capsci serve --capnp unix:PATH`, and the store's own `<store>/capsci.sock`)
  #   is made mode 0600: the file system's permissions are the authority, and its bootstrap
  #   capability is directly the restricted `ScientificSession` the server was started with
  #   (`--grant FILE`, default the `scientific-base` profile).
  # - A TCP listener (loopback only) bootstraps this `Gateway` instead, which hands out a
  #   session only for a bearer token issued by the store (`TokenStore`); a forged, mistyped or
  #   revoked token is refused with an exception and nothing is handed out.
  session @0 (token :Text) -> (session :ScientificSession);
}
