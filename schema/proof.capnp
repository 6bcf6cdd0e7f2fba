@0x8cb271bac64e1164;
# Proof checking. Holding `ProofChecker` lets the holder have a project checked by a proof kernel
# in a sandbox. It does not let the project read or write outside itself (`Load`, `Cd`, `Redirect`
# reaching out are refused) and it grants no publication authority. `accepted` means the kernel
# checked every theorem; only that, re-checked by an independent checker, is `checked` evidence.

using Common = import "common.capnp";
using Session = import "session.capnp";

enum ProofStatus {
  accepted @0;
  acceptedWithAxioms @1;
  incomplete @2;          # Admitted / admit / sorry, directly or through a used lemma
  rejected @3;
  refused @4;
  timeout @5;
  resourceExceeded @6;
  invalidInput @7;
  backendError @8;        # includes the independent re-check disagreeing
  cancelled @9;
  interrupted @10;
}

struct ProjectFile {
  path @0 :Text;   # relative to the project root
  content @1 :Data;
}

struct TheoremReport {
  name @0 :Text;
  checked @1 :Bool;
  axioms @2 :List(Text);
}

struct ProofError {
  file @0 :Text;
  line @1 :UInt32;
  column @2 :UInt32;
  message @3 :Text;
}

struct ProofResult {
  status @0 :ProofStatus;
  theorems @1 :List(TheoremReport);
  axioms @2 :List(Text);
  errors @3 :List(ProofError);
  goals @4 :List(Text);
  message @5 :Text;
  record @6 :Common.CallRecord;
}

interface ProofChecker {
  check @0 (files :List(ProjectFile), backend :Text, challenge :List(ProjectFile),
            allowAxioms :List(Text), options :Common.CallOptions)
        -> (result :ProofResult, job :Session.Job);
  # backend: `rocq` now; `lean` when a toolchain is present.
  goals @1 (file :ProjectFile, line :UInt32, options :Common.CallOptions)
        -> (result :ProofResult);
}
