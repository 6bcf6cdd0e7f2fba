@0x975112a055d67aeb;
# Solvers. Holding `SmtSolver` or `OptimizationSolver` lets the holder submit models to sandboxed
# solvers with limits. It does not imply file, shell or network authority, nor that an answer is a
# proof: `evidence` says whether capsci re-verified it.

using Common = import "common.capnp";
using Session = import "session.capnp";

enum SmtStatus {
  sat @0;
  unsat @1;
  unknown @2;            # never shown as unsat
  timeout @3;            # however the solver phrased it
  resourceExceeded @4;
  invalidInput @5;
  backendError @6;       # includes a disagreement between backends
  cancelled @7;
  interrupted @8;
}

struct ModelEntry {
  name @0 :Text;
  sort @1 :Text;
  value @2 :Text;
}

struct SmtBackendReport {
  backend @0 :Common.BackendIdentity;
  status @1 :SmtStatus;
  exit @2 :Text;
  usage @3 :Common.Usage;
}

struct SmtResult {
  status @0 :SmtStatus;
  model @1 :List(ModelEntry);
  core @2 :List(Text);
  reasonUnknown @3 :Text;
  message @4 :Text;
  location @5 :Common.Location;
  backends @6 :List(SmtBackendReport);  # with backend `all`
  record @7 :Common.CallRecord;
}

interface SmtSolver {
  check @0 (smtlib :Text, backend :Text, options :Common.CallOptions)
        -> (result :SmtResult, job :Session.Job);
  # backend: `z3`, `cvc5`, `all` (both, disagreement is backend_error) or `portfolio`.
}

enum OptStatus {
  optimal @0;
  feasible @1;              # incumbent without proof of optimality (e.g. MIP at its time limit)
  infeasible @2;
  unbounded @3;
  infeasibleOrUnbounded @4;
  unknown @5;
  timeout @6;
  resourceExceeded @7;
  invalidInput @8;
  backendError @9;
  cancelled @10;
  interrupted @11;
}

struct NamedValue {
  name @0 :Text;
  value @1 :Float64;
}

struct OptResult {
  status @0 :OptStatus;
  objective @1 :Float64;
  hasObjective @2 :Bool;
  columns @3 :List(NamedValue);
  duals @4 :List(NamedValue);
  bound @5 :Float64;
  gap @6 :Float64;
  maxViolation @7 :Float64;   # recomputed by capsci
  optimality @8 :Text;        # `verified` (LP) or `solver_claim` (MIP)
  message @9 :Text;
  record @10 :Common.CallRecord;
}

enum ModelFormat {
  mps @0;
  lp @1;   # CPLEX LP
}

struct OptOptions {
  timeLimitS @0 :Float64;
  mipRelGap @1 :Float64;
  threads @2 :UInt32;
  presolve @3 :Bool = true;   # false turns HiGHS presolve off
}

interface OptimizationSolver {
  solve @0 (model :Text, format :ModelFormat, opt :OptOptions, options :Common.CallOptions)
        -> (result :OptResult, job :Session.Job);
}
