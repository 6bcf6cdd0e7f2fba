@0xae4f29feabf43461;
# Exact computation. Holding `NumberTheory` lets the holder evaluate GP expressions in a sandboxed
# gp with limits; it does not imply file, shell, network or package authority: gp's `system`,
# `read`, `write`, `install`, `\l` and the like are refused by input policy and contained by the
# sandbox. `ComputerAlgebra` likewise parses input without `eval`.

using Common = import "common.capnp";
using Session = import "session.capnp";

enum EvalStatus {
  ok @0;
  error @1;              # the mathematics failed on well-formed input (1/0)
  refused @2;            # input policy refused it; nothing ran
  timeout @3;
  resourceExceeded @4;
  invalidInput @5;
  backendError @6;
  cancelled @7;
  interrupted @8;
}

struct EvalResult {
  status @0 :EvalStatus;
  value @1 :Text;           # NumberTheory: the value as gp printed it
  type @2 :Text;            # NumberTheory: PARI's type name (t_INT, t_VEC, ...)
  structuredJson @3 :Text;  # NumberTheory: the structured value as JSON
  text @4 :Text;            # ComputerAlgebra: str()
  latex @5 :Text;           # ComputerAlgebra: latex()
  srepr @6 :Text;           # ComputerAlgebra: srepr()
  solutionsJson @7 :Text;   # ComputerAlgebra.solve: list of {variable: {text, latex, srepr}}
  message @8 :Text;         # for every status but ok
  location @9 :Common.Location;
  record @10 :Common.CallRecord;
}

interface NumberTheory {
  eval @0 (expr :Text, options :Common.CallOptions) -> (result :EvalResult, job :Session.Job);
}

struct CasRequest {
  op @0 :Text;           # simplify factor expand diff integrate solve limit series evalf det
                         # inverse rank nullspace rref eigenvals gcd div resultant groebner
  expr @1 :Text;         # `[e1, e2]` is a system
  vars @2 :List(Text);
  at @3 :Text;           # limit / series point
  dir @4 :Text;          # `+` or `-`
  from @5 :Text;         # definite integral bounds
  to @6 :Text;
  order @7 :UInt32;      # derivative order for diff, SymPy's n for series
  digits @8 :UInt32;     # evalf
}

interface ComputerAlgebra {
  run @0 (request :CasRequest, options :Common.CallOptions) -> (result :EvalResult, job :Session.Job);
}
