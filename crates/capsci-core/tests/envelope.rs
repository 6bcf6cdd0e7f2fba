//! The envelope round-trips for every status of every method, and the published JSON Schema
//! matches the types (rewrite it with `UPDATE_SCHEMA=1 cargo test -p capsci-core`).

use capsci_core::results::{CasValue, SmtBackendReport};
use capsci_core::*;
use std::collections::BTreeMap;
use std::path::PathBuf;

fn envelope(call: CallOutcome) -> Envelope {
    Envelope {
        job: "job_01JDZ6X8Q3R5Y9M2N4P7T1V0WB".into(),
        call,
        evidence: Evidence::Advisory,
        artifacts: ArtifactRefs {
            input: Some("blake3:aa".into()),
            output: Some("blake3:bb".into()),
            log: None,
            extra: BTreeMap::from([("smtlib_export".to_string(), "blake3:cc".to_string())]),
        },
        provenance: Some(ProvenanceRef {
            record: "rec_1".into(),
            hash: "blake3:dd".into(),
        }),
        backend: BackendIdentity {
            name: "z3".into(),
            version: "4.8.12".into(),
            closure: "blake3:ee".into(),
        },
        sandbox: SandboxInfo {
            kind: "bwrap".into(),
            policy: "blake3:ff".into(),
            boundary: "shared host kernel".into(),
            enforcement: BTreeMap::from([("landlock".to_string(), "fully_enforced".to_string())]),
        },
        limits: Limits::default(),
        usage: Usage {
            wall_ms: 12,
            cpu_ms: 7,
            max_rss_kb: 12_345,
        },
        exit: ExitReason::Exited(0),
        seed: Some(42),
        host: HostFacts {
            kernel: "6.18.44".into(),
            cpu_model: "test cpu".into(),
            memory_limit_by: MemoryLimitBy::CgroupV1,
        },
        started_at: "2026-11-27T12:00:00Z".into(),
        finished_at: "2026-11-27T12:00:01Z".into(),
    }
}

fn every_outcome() -> Vec<CallOutcome> {
    let mut all = Vec::new();
    for status in EvalStatus::ALL {
        all.push(CallOutcome::NumberTheory(EvalOutcome {
            method: Method::Eval,
            status: *status,
            result: NumberTheoryResult {
                value: Some("[2, 3]".into()),
                value_type: Some("t_VEC".into()),
                structured: Some(serde_json::json!(["2", "3"])),
                message: None,
                location: Some(Location {
                    line: 1,
                    column: Some(4),
                }),
            },
        }));
        for method in Interface::ComputerAlgebra.methods() {
            let value = CasValue {
                text: "x".into(),
                latex: "x".into(),
                srepr: "Symbol('x')".into(),
            };
            all.push(CallOutcome::ComputerAlgebra(EvalOutcome {
                method: *method,
                status: *status,
                result: CasResult {
                    text: Some("x".into()),
                    solutions: Some(vec![BTreeMap::from([("x".to_string(), value)])]),
                    ..CasResult::default()
                },
            }));
        }
    }
    for status in SmtStatus::ALL {
        let inner = SmtResult {
            model: Some(vec![ModelEntry {
                name: "x".into(),
                sort: "Int".into(),
                value: "1".into(),
            }]),
            reason_unknown: Some("incomplete".into()),
            ..SmtResult::default()
        };
        all.push(CallOutcome::SmtSolver(SmtOutcome {
            method: Method::Check,
            status: *status,
            result: SmtResult {
                core: Some(vec!["a1".into()]),
                backends: Some(vec![SmtBackendReport {
                    backend: BackendIdentity::default(),
                    status: *status,
                    result: inner.clone(),
                    usage: Usage::default(),
                    exit: ExitReason::Timeout,
                    artifacts: ArtifactRefs::default(),
                }]),
                ..inner
            },
        }));
    }
    for status in OptStatus::ALL {
        all.push(CallOutcome::OptimizationSolver(OptOutcome {
            method: Method::Solve,
            status: *status,
            result: OptResult {
                objective: Some(-464.753_142_857_142_9),
                columns: Some(BTreeMap::from([("X01".to_string(), 0.1_f64 + 0.2_f64)])),
                gap: Some(1e-9),
                ..OptResult::default()
            },
        }));
    }
    for status in ProofStatus::ALL {
        for method in Interface::ProofChecker.methods() {
            all.push(CallOutcome::ProofChecker(ProofOutcome {
                method: *method,
                status: *status,
                result: ProofResult {
                    theorems: vec![TheoremReport {
                        name: "Top.plus_comm".into(),
                        checked: true,
                        axioms: vec!["classic".into()],
                    }],
                    axioms: vec!["classic".into()],
                    errors: vec![ProofError {
                        file: "a.v".into(),
                        line: 3,
                        column: 7,
                        message: "The term has type".into(),
                    }],
                    goals: Some(vec!["n + 0 = n".into()]),
                    ..ProofResult::default()
                },
            }));
        }
    }
    all
}

#[test]
fn every_status_of_every_method_round_trips() {
    let outcomes = every_outcome();
    assert!(
        outcomes.len() > 100,
        "the fixture covers every status of every method"
    );
    for call in outcomes {
        let original = envelope(call);
        let json = serde_json::to_value(&original).expect("serialise");
        assert_eq!(
            json["status"],
            original.status_word(),
            "status is a top-level word"
        );
        assert_eq!(json["interface"], original.call.interface().as_str());
        assert_eq!(json["method"], original.call.method().as_str());
        let back: Envelope = serde_json::from_value(json.clone()).expect("deserialise");
        assert_eq!(back, original, "round trip of {json}");
    }
}

#[test]
fn a_status_of_another_interface_is_rejected() {
    let mut json = serde_json::to_value(envelope(CallOutcome::SmtSolver(SmtOutcome {
        method: Method::Check,
        status: SmtStatus::Sat,
        result: SmtResult::default(),
    })))
    .expect("serialise");
    json["status"] = "optimal".into();
    assert!(serde_json::from_value::<Envelope>(json.clone()).is_err());
    json["status"] = "UNSAT".into();
    assert!(serde_json::from_value::<Envelope>(json).is_err());
}

#[test]
fn published_schema_matches_the_types() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../schema/envelope.schema.json");
    let mut generated =
        serde_json::to_string_pretty(&envelope_json_schema()).expect("schema serialises");
    generated.push('\n');
    if std::env::var_os("UPDATE_SCHEMA").is_some() {
        std::fs::write(&path, &generated).expect("write schema");
    }
    let published = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        published == generated,
        "schema/envelope.schema.json is stale: rerun with UPDATE_SCHEMA=1 and review the diff"
    );
}

#[test]
fn every_envelope_validates_against_the_published_schema_shape() {
    // The schema names every required top-level field of DESIGN.md's envelope.
    let schema = envelope_json_schema();
    let text = schema.to_string();
    for field in [
        "job",
        "interface",
        "method",
        "status",
        "result",
        "evidence",
        "artifacts",
        "provenance",
        "backend",
        "sandbox",
        "limits",
        "usage",
        "exit",
        "seed",
        "host",
    ] {
        assert!(
            text.contains(&format!("\"{field}\"")),
            "schema names {field}"
        );
    }
}
