//! The result model every capsci crate shares.
//!
//! One call of one method, from any front end, yields one [`Envelope`]: a stable, snake_case JSON
//! object whose JSON Schema is published in `schema/envelope.schema.json`. The statuses are enums
//! per method family so that a status can be neither misspelt nor collapsed into another
//! (`unknown` is never `unsat`, `timeout` is never `infeasible`).

pub mod envelope;
pub mod exit;
pub mod interface;
pub mod request;
pub mod results;
pub mod status;

pub use envelope::{
    ArtifactRefs, BackendIdentity, Envelope, Evidence, HostFacts, Limits, MemoryLimitBy,
    ProvenanceRef, SandboxInfo, Usage,
};
pub use exit::ExitReason;
pub use interface::{Interface, Method};
pub use request::CallRequest;
pub use results::{
    CallOutcome, CasResult, CasValue, EvalOutcome, Location, ModelEntry, NumberTheoryResult,
    OptOutcome, OptResult, ProofError, ProofOutcome, ProofResult, SmtBackendReport, SmtOutcome,
    SmtResult, TheoremReport,
};
pub use status::{EvalStatus, JobState, OptStatus, ProofStatus, SmtStatus};

/// The JSON Schema of [`Envelope`], as published in `schema/envelope.schema.json`.
pub fn envelope_json_schema() -> serde_json::Value {
    let schema = schemars::schema_for!(Envelope);
    serde_json::to_value(schema).unwrap_or(serde_json::Value::Null)
}
