//! Public suites nobody here wrote, through the whole service: every SMT-LIB file's published
//! status (Z3 and cvc5 both, side by side) and every Netlib LP's published optimum. Read in
//! place from `../shared/data` beside the checkout (CI lays it there); never copied.

use capsci_service::{conformance, Grant, Principal, Service, ServiceConfig};
use std::path::PathBuf;

fn data_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data");
    assert!(
        dir.join("smtlib/expected.json").is_file(),
        "the public suites must be at {} (shared/data beside the checkout)",
        dir.display()
    );
    dir
}

fn session(name: &str) -> capsci_service::Session {
    let store =
        std::env::temp_dir().join(format!("capsci-conformance-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&store);
    let service = Service::open(ServiceConfig::one_shot(store)).expect("service");
    service.session(
        Grant::scientific_base(),
        Principal {
            id: "test:conformance".into(),
            runner: serde_json::Value::Null,
        },
    )
}

#[test]
fn every_smtlib_answer_agrees_with_its_published_status() {
    let report =
        conformance::smtlib(&session("smt"), &data_dir().join("smtlib"), 2).expect("suite runs");
    assert_eq!(report.total, 190);
    let bad: Vec<String> = report
        .disagreements()
        .iter()
        .map(|c| {
            format!(
                "{}: published {}, capsci {} ({:?})",
                c.file, c.expected, c.got, c.detail
            )
        })
        .collect();
    assert!(bad.is_empty(), "disagreements:\n{}", bad.join("\n"));
    assert!(
        report.checked >= 80,
        "every sat answer's model is re-checked ({} checked)",
        report.checked
    );
}

#[test]
fn every_netlib_objective_agrees_with_the_published_optimum() {
    let report =
        conformance::netlib(&session("lp"), &data_dir().join("netlib"), 2).expect("suite runs");
    assert_eq!(report.total, 30);
    let bad: Vec<String> = report
        .disagreements()
        .iter()
        .map(|c| {
            format!(
                "{}: published {}, capsci {} ({:?})",
                c.file, c.expected, c.got, c.detail
            )
        })
        .collect();
    assert!(bad.is_empty(), "disagreements:\n{}", bad.join("\n"));
    assert_eq!(
        report.checked, 30,
        "every LP optimum is re-verified (primal, dual, gap)"
    );
}
