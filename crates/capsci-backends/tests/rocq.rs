//! Rocq through the real sandbox: Debian's coqc, coqchk and coqc-for-goals run by capsci's
//! driver inside bwrap. Needs the `capsci-jail` helper built (`cargo build -p capsci-sandbox`).
#![allow(clippy::unwrap_used)]

use capsci_backends::rocq::{self, CheckOptions, CheckReport, ProjectInput};
use capsci_core::{Evidence, Limits, ProofStatus};
use capsci_sandbox::{BwrapSandbox, CancelToken};
use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard, OnceLock};

static LOCK: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    LOCK.lock().unwrap_or_else(|p| p.into_inner())
}

fn sandbox() -> &'static BwrapSandbox {
    static SB: OnceLock<BwrapSandbox> = OnceLock::new();
    SB.get_or_init(|| BwrapSandbox::detect().expect("bwrap sandbox (build capsci-jail first)"))
}

/// The closure's paths: the roots plus the shared libraries coqc/coqchk/dash load.
fn binds() -> Vec<PathBuf> {
    let mut b = rocq::roots();
    for lib in [
        "/usr/lib/x86_64-linux-gnu/libgmp.so.10",
        "/usr/lib/x86_64-linux-gnu/libc.so.6",
        "/usr/lib/x86_64-linux-gnu/libm.so.6",
        "/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2",
        "/usr/lib64/ld-linux-x86-64.so.2",
    ] {
        b.push(PathBuf::from(lib));
    }
    b
}

fn limits() -> Limits {
    Limits {
        wall_s: 60.0,
        cpu_s: 60.0,
        memory_mb: 2048,
        pids: 32,
        file_size_mb: 64,
        output_bytes: 4 << 20,
    }
}

fn files(list: &[(&str, &str)]) -> ProjectInput {
    ProjectInput {
        files: list
            .iter()
            .map(|(p, t)| (PathBuf::from(p), t.as_bytes().to_vec()))
            .collect(),
    }
}

fn check_with(project: ProjectInput, options: CheckOptions) -> CheckReport {
    let _g = serial();
    rocq::check(&project, &options, sandbox(), &binds(), &CancelToken::new())
}

fn check(list: &[(&str, &str)]) -> CheckReport {
    check_with(
        files(list),
        CheckOptions {
            limits: limits(),
            ..CheckOptions::default()
        },
    )
}

fn log(r: &CheckReport) -> String {
    String::from_utf8_lossy(&r.log).into_owned()
}

#[test]
fn valid_proofs_are_accepted_and_rechecked() {
    let r = check(&[(
        "a.v",
        "Require Import Arith Lia List.\nImport ListNotations.\n\
         Theorem add_0_r : forall n, n + 0 = n. Proof. intros; lia. Qed.\n\
         Lemma rev_len : forall l : list nat, length (rev l) = length l. Proof. intros. apply rev_length. Qed.\n\
         Theorem add_comm' : forall n m, n + m = m + n.\nProof. induction n; intros m; simpl.\n - rewrite Nat.add_0_r. reflexivity.\n - rewrite IHn. rewrite Nat.add_succ_r. reflexivity.\nQed.\n\
         Example ex : [1;2] ++ [3] = [1;2;3]. Proof. reflexivity. Qed.\n",
    )]);
    assert_eq!(
        r.status,
        ProofStatus::Accepted,
        "{:?}\n{}",
        r.result,
        log(&r)
    );
    assert_eq!(r.evidence, Evidence::Checked);
    let names: Vec<_> = r.result.theorems.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, vec!["a.add_0_r", "a.rev_len", "a.add_comm'", "a.ex"]);
    assert!(r
        .result
        .theorems
        .iter()
        .all(|t| t.checked && t.axioms.is_empty()));
    assert!(r.result.recheck.as_deref().unwrap_or("").contains("coqchk"));
    assert_eq!(r.vo_files.len(), 1);
    assert!(r.vo_files[0].1.len() > 100);
}

#[test]
fn wrong_tactic_is_rejected_with_location() {
    let r = check(&[("a.v", "Theorem t : 1 = 2.\nProof.\n  reflexivity.\nQed.\n")]);
    assert_eq!(r.status, ProofStatus::Rejected, "{}", log(&r));
    assert_eq!(r.evidence, Evidence::Advisory);
    let e = &r.result.errors[0];
    assert_eq!((e.file.as_str(), e.line, e.column), ("a.v", 3, 3));
    assert!(e.message.contains("Unable to unify"), "{}", e.message);
}

#[test]
fn type_error_is_rejected_with_line_and_column() {
    let r = check(&[(
        "b.v",
        "Definition ok := 1.\nLemma x : nat.\nexact\n    true.\nQed.\n",
    )]);
    assert_eq!(r.status, ProofStatus::Rejected, "{}", log(&r));
    let e = &r.result.errors[0];
    // coqc points at the offending term: line 4, column 5.
    assert_eq!((e.file.as_str(), e.line, e.column), ("b.v", 4, 5));
    assert!(e.message.contains("has type \"bool\""), "{}", e.message);
}

#[test]
fn syntax_error_is_invalid_input_with_location() {
    let r = check(&[("a.v", "Theorem t : True.\nTheorem u : 1 = .\n")]);
    assert_eq!(r.status, ProofStatus::InvalidInput, "{}", log(&r));
    assert_eq!(r.result.errors[0].line, 2);
}

#[test]
fn admitted_is_incomplete() {
    let r = check(&[(
        "a.v",
        "Theorem t : forall n, n * 0 = 0.\nProof. intros. Admitted.\n",
    )]);
    assert_eq!(r.status, ProofStatus::Incomplete, "{}", log(&r));
    assert_eq!(r.evidence, Evidence::Advisory);
    assert!(!r.result.theorems[0].checked);
}

#[test]
fn admit_inside_a_used_lemma_makes_the_user_unchecked() {
    let r = check(&[(
        "a.v",
        "Lemma helper : forall n, n + 0 = n.\nProof. intros. admit. Admitted.\n\
         Theorem main : 3 + 0 = 3.\nProof. apply helper. Qed.\n\
         Theorem other : True.\nProof. exact I. Qed.\n",
    )]);
    assert_eq!(r.status, ProofStatus::Incomplete, "{}", log(&r));
    let by: std::collections::BTreeMap<_, _> = r
        .result
        .theorems
        .iter()
        .map(|t| (t.name.as_str(), t))
        .collect();
    assert!(!by["a.main"].checked, "{:?}", by["a.main"]);
    assert!(by["a.main"].axioms.iter().any(|a| a.ends_with("helper")));
    assert!(by["a.other"].checked);
}

#[test]
fn added_axiom_is_accepted_with_axioms() {
    let r = check(&[(
        "a.v",
        "Axiom magic : forall P : Prop, P.\nTheorem f : False.\nProof. apply magic. Qed.\n",
    )]);
    assert_eq!(r.status, ProofStatus::AcceptedWithAxioms, "{}", log(&r));
    assert_eq!(r.result.theorems[0].axioms, vec!["a.magic".to_string()]);
    assert_eq!(r.result.axioms, vec!["a.magic".to_string()]);
    // An allow-list entry never covers an axiom the project declares itself.
    let r = check_with(
        files(&[(
            "a.v",
            "Axiom classic : False.\nTheorem f : False.\nProof. exact classic. Qed.\n",
        )]),
        CheckOptions {
            allow_axioms: vec!["classic".into()],
            limits: limits(),
            ..CheckOptions::default()
        },
    );
    assert_eq!(r.status, ProofStatus::AcceptedWithAxioms, "{}", log(&r));
}

const CLASSICAL: &str = "Require Import Classical.\nTheorem em : forall P : Prop, P \\/ ~ P.\nProof. intro P. apply classic. Qed.\n";

#[test]
fn classical_logic_reports_classic_and_is_accepted_when_allowed() {
    let r = check(&[("a.v", CLASSICAL)]);
    assert_eq!(r.status, ProofStatus::AcceptedWithAxioms, "{}", log(&r));
    assert_eq!(r.evidence, Evidence::Checked);
    assert_eq!(
        r.result.theorems[0].axioms,
        vec!["Coq.Logic.Classical_Prop.classic".to_string()]
    );
    let r = check_with(
        files(&[("a.v", CLASSICAL)]),
        CheckOptions {
            allow_axioms: vec!["classic".into()],
            limits: limits(),
            ..CheckOptions::default()
        },
    );
    assert_eq!(r.status, ProofStatus::Accepted, "{}", log(&r));
    assert_eq!(
        r.result.axioms,
        vec!["Coq.Logic.Classical_Prop.classic".to_string()]
    );
}

#[test]
fn two_file_project_with_coqproject_compiles_in_dependency_order() {
    let r = check(&[
        ("_CoqProject", "-R theories My\ntheories/B.v\ntheories/A.v\n"),
        ("theories/A.v", "Definition double (n : nat) := n + n.\nLemma double_2 : double 2 = 4. Proof. reflexivity. Qed.\n"),
        (
            "theories/B.v",
            "From My Require Import A.\nTheorem double_3 : double 3 = 6. Proof. reflexivity. Qed.\n\
             Theorem uses : double 2 = 4. Proof. exact double_2. Qed.\n",
        ),
    ]);
    assert_eq!(
        r.status,
        ProofStatus::Accepted,
        "{:?}\n{}",
        r.result,
        log(&r)
    );
    let names: Vec<_> = r.result.theorems.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, vec!["My.B.double_3", "My.B.uses", "My.A.double_2"]);
    let vo: Vec<_> = r
        .vo_files
        .iter()
        .map(|(p, _)| p.to_string_lossy().into_owned())
        .collect();
    assert_eq!(vo, vec!["theories/B.vo", "theories/A.vo"]);
}

#[test]
fn a_looping_tactic_times_out() {
    let r = check_with(
        files(&[(
            "a.v",
            "Theorem t : True.\nProof. repeat (assert True by exact I). exact I. Qed.\n",
        )]),
        CheckOptions {
            limits: Limits {
                wall_s: 3.0,
                cpu_s: 3.0,
                ..limits()
            },
            ..CheckOptions::default()
        },
    );
    assert_eq!(
        r.status,
        ProofStatus::Timeout,
        "{:?}\n{}",
        r.result,
        log(&r)
    );
    assert_eq!(r.evidence, Evidence::Advisory);
}

#[test]
fn reaching_outside_is_refused_by_policy() {
    for (text, word) in [
        ("Load \"/etc/passwd\".\n", "Load"),
        ("Redirect \"/tmp/capsci_rocq_x\" Print nat.\n", "Redirect"),
        ("Cd \"/tmp\".\n", "Cd"),
        ("Add LoadPath \"/etc\" as Etc.\n", "Add LoadPath"),
    ] {
        let r = check(&[("a.v", text)]);
        assert_eq!(r.status, ProofStatus::Refused, "{text}");
        assert!(r.outcome.is_none(), "nothing runs for a refused input");
        assert!(r.result.message.as_deref().unwrap_or("").contains(word));
        assert_eq!(r.result.errors[0].line, 1);
    }
    // Mentions in comments and strings are not commands.
    let r = check(&[(
        "a.v",
        "(* Load \"/etc/passwd\". *)\nRequire Import String.\nOpen Scope string_scope.\nDefinition s := \"Cd /tmp.\".\n",
    )]);
    assert_eq!(r.status, ProofStatus::Accepted, "{}", log(&r));
}

#[test]
fn invalid_projects_get_invalid_input() {
    let r = check(&[("README.md", "no proofs here")]);
    assert_eq!(r.status, ProofStatus::InvalidInput);
    let r = check(&[("_CoqProject", "theories/A.v\n"), ("theories/A.v", "")]);
    assert_eq!(r.status, ProofStatus::InvalidInput);
    let r = check(&[("a.v", "(* never closed\n")]);
    assert_eq!(r.status, ProofStatus::InvalidInput);
}

#[test]
fn goals_at_a_line() {
    let _g = serial();
    let file = b"Theorem t : forall n, n + 0 = n.\nProof.\n  intros n.\n  induction n.\n  - reflexivity.\n  - simpl. rewrite IHn. reflexivity.\nQed.\n";
    let (status, result, _) =
        rocq::goals(file, 4, &limits(), sandbox(), &binds(), &CancelToken::new());
    assert_eq!(status, ProofStatus::Accepted, "{result:?}");
    let goals = result.goals.unwrap();
    assert_eq!(goals.len(), 2, "{goals:?}");
    assert!(goals[0].contains("0 + 0 = 0"), "{goals:?}");
    assert!(goals[1].contains("S n + 0 = S n"), "{goals:?}");
    let (_, result, _) = rocq::goals(file, 3, &limits(), sandbox(), &binds(), &CancelToken::new());
    let goals = result.goals.unwrap();
    assert_eq!(goals.len(), 1);
    assert!(goals[0].contains("n : nat"), "{goals:?}");
    let (status, _, _) = rocq::goals(
        b"Load \"/etc/passwd\".\n",
        1,
        &limits(),
        sandbox(),
        &binds(),
        &CancelToken::new(),
    );
    assert_eq!(status, ProofStatus::Refused);
}

const CHALLENGE: &str = "Definition double (n : nat) := n + n.\n\
Theorem double_spec : forall n, double n = 2 * n.\nAdmitted.\n\
Theorem add_0 : forall n : nat, n + 0 = n.\nAdmitted.\n\
Theorem pred_lt : forall n, n > 0 -> n - 1 < n.\nAdmitted.\n";

const HONEST: &str = "Require Import Lia.\nDefinition double (n : nat) := n + n.\n\
Theorem double_spec : forall n, double n = 2 * n.\nProof. intros; unfold double; lia. Qed.\n\
Theorem add_0 : forall n : nat, n + 0 = n.\nProof. intros; lia. Qed.\n\
Theorem pred_lt : forall n, n > 0 -> n - 1 < n.\nProof. intros; lia. Qed.\n";

fn challenge(solution: &str) -> CheckReport {
    check_with(
        files(&[("Solution.v", solution)]),
        CheckOptions {
            challenge: Some(CHALLENGE.as_bytes().to_vec()),
            limits: limits(),
            ..CheckOptions::default()
        },
    )
}

#[test]
fn challenge_honest_solution_is_accepted() {
    let r = challenge(HONEST);
    assert_eq!(
        r.status,
        ProofStatus::Accepted,
        "{:?}\n{}",
        r.result,
        log(&r)
    );
    assert_eq!(r.evidence, Evidence::Checked);
    assert!(r
        .result
        .recheck
        .as_deref()
        .unwrap_or("")
        .contains("challenge"));
}

#[test]
fn challenge_shadowed_nat_is_rejected() {
    let sol = HONEST.replace(
        "Theorem add_0 : forall n : nat, n + 0 = n.\nProof. intros; lia. Qed.\n",
        "Inductive nat := O | S (n : nat).\nDefinition plus (a b : nat) := a.\nNotation \"x + y\" := (plus x y).\n\
         Theorem add_0 : forall n : nat, n + O = n.\nProof. reflexivity. Qed.\n",
    );
    let r = challenge(&sol);
    assert_eq!(
        r.status,
        ProofStatus::Rejected,
        "{:?}\n{}",
        r.result,
        log(&r)
    );
    assert!(
        r.result.errors[0].message.contains("add_0"),
        "{:?}",
        r.result.errors
    );
}

#[test]
fn challenge_redefined_notation_is_rejected() {
    let sol = HONEST.replace(
        "Theorem add_0 : forall n : nat, n + 0 = n.\nProof. intros; lia. Qed.\n",
        "Local Notation \"x + y\" := (Nat.max x y).\nTheorem add_0 : forall n : nat, n + 0 = n.\nProof. intros; apply Nat.max_0_r. Qed.\n",
    );
    let r = challenge(&sol);
    assert_eq!(
        r.status,
        ProofStatus::Rejected,
        "{:?}\n{}",
        r.result,
        log(&r)
    );
}

#[test]
fn challenge_weakened_hypothesis_is_rejected() {
    let sol = HONEST.replace(
        "Theorem pred_lt : forall n, n > 0 -> n - 1 < n.",
        "Theorem pred_lt : forall n, n > 1 -> n - 1 < n.",
    );
    let r = challenge(&sol);
    assert_eq!(
        r.status,
        ProofStatus::Rejected,
        "{:?}\n{}",
        r.result,
        log(&r)
    );
    assert!(
        r.result.errors[0].message.contains("pred_lt"),
        "{:?}",
        r.result.errors
    );
}

#[test]
fn challenge_redefined_definition_is_rejected() {
    let sol = HONEST
        .replace(
            "Definition double (n : nat) := n + n.",
            "Definition double (n : nat) := 2 * n.",
        )
        .replace(
            "Proof. intros; unfold double; lia. Qed.",
            "Proof. reflexivity. Qed.",
        );
    let r = challenge(&sol);
    assert_eq!(
        r.status,
        ProofStatus::Rejected,
        "{:?}\n{}",
        r.result,
        log(&r)
    );
}

#[test]
fn challenge_missing_admitted_or_axiom_backed_solutions_are_not_accepted() {
    let r = challenge(&HONEST.replace("Theorem pred_lt", "Theorem pred_lt'"));
    assert_eq!(r.status, ProofStatus::Rejected);
    assert!(r.result.errors[0].message.contains("pred_lt"));
    let r = challenge(&HONEST.replace(
        "Proof. intros; lia. Qed.\nTheorem pred_lt",
        "Admitted.\nTheorem pred_lt",
    ));
    assert_eq!(r.status, ProofStatus::Incomplete, "{}", log(&r));
    let sol = HONEST.replace(
        "Theorem pred_lt : forall n, n > 0 -> n - 1 < n.\nProof. intros; lia. Qed.",
        "Axiom cheat : forall P : Prop, P.\nTheorem pred_lt : forall n, n > 0 -> n - 1 < n.\nProof. intros; apply cheat. Qed.",
    );
    let r = challenge(&sol);
    assert_eq!(r.status, ProofStatus::AcceptedWithAxioms, "{}", log(&r));
    assert!(
        r.result.axioms.contains(&"Solution.cheat".to_string()),
        "{:?}",
        r.result.axioms
    );
}

#[test]
fn with_the_policy_bypassed_the_sandbox_contains_file_access() {
    // The commands the policy refuses, each run by coqc in the sandbox directly (no policy).
    let _g = serial();
    let marker = format!("capsci_rocq_escape_{}", std::process::id());
    let attempts = [
        format!("Redirect \"/tmp/{marker}_a\" Print nat.\n"),
        format!("Cd \"/tmp\".\nRedirect \"{marker}_b\" Print nat.\n"),
        format!("Redirect \"/work/../../tmp/{marker}_c\" Print nat.\n"),
        "Load \"/etc/passwd\".\n".to_string(),
    ];
    for text in attempts {
        let command = capsci_sandbox::Command {
            program: PathBuf::from(rocq::script::COQC),
            args: vec!["-q".into(), "a.v".into()],
            files: vec![(PathBuf::from("a.v"), text.clone().into_bytes())],
            ..Default::default()
        };
        let policy = rocq::sandbox_policy(&binds(), &limits());
        let out = capsci_sandbox::Sandbox::run(sandbox(), &policy, command, &CancelToken::new())
            .expect("outcome");
        let output = String::from_utf8_lossy(&out.stderr).into_owned()
            + &String::from_utf8_lossy(&out.stdout);
        eprintln!("{text}=> {} {output}", out.exit);
        assert!(!output.contains("root:x:0:0"), "{output}");
    }
    for suffix in ["a", "b", "c"] {
        assert!(
            !std::path::Path::new(&format!("/tmp/{marker}_{suffix}.out")).exists(),
            "{suffix} escaped"
        );
    }
}

fn fixture(name: &str) -> ProjectInput {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/rocq")
        .join(name);
    rocq::read_project(&dir, rocq::ReadLimits::default()).unwrap()
}

#[test]
fn coqproject_fixture_read_from_disk_is_accepted() {
    let r = check_with(
        fixture("coqproject"),
        CheckOptions {
            limits: limits(),
            ..CheckOptions::default()
        },
    );
    assert_eq!(
        r.status,
        ProofStatus::Accepted,
        "{:?}\n{}",
        r.result,
        log(&r)
    );
    let names: Vec<_> = r.result.theorems.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, vec!["Fix.Base.sum_S", "Fix.sub.Use.gauss"]);
    assert_eq!(r.vo_files.len(), 2);
}

#[test]
fn dune_fixture_is_accepted() {
    let r = check_with(
        fixture("dune"),
        CheckOptions {
            limits: limits(),
            ..CheckOptions::default()
        },
    );
    assert_eq!(
        r.status,
        ProofStatus::Accepted,
        "{:?}\n{}",
        r.result,
        log(&r)
    );
    assert_eq!(r.result.theorems[0].name, "DuneFix.Ids.id_nat_id");
}

#[test]
fn runaway_memory_is_resource_exceeded() {
    let r = check_with(
        files(&[(
            "a.v",
            "Ltac loop := idtac; loop.\nTheorem t : True.\nProof. loop. Qed.\n",
        )]),
        CheckOptions {
            limits: Limits {
                wall_s: 30.0,
                cpu_s: 30.0,
                memory_mb: 300,
                ..limits()
            },
            ..CheckOptions::default()
        },
    );
    assert_eq!(
        r.status,
        ProofStatus::ResourceExceeded,
        "{:?}\n{}",
        r.result,
        log(&r)
    );
}

#[test]
fn cancelling_a_check_stops_it() {
    let _g = serial();
    let cancel = CancelToken::new();
    let c2 = cancel.clone();
    let t = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(1500));
        c2.cancel();
    });
    let input = files(&[(
        "a.v",
        "Theorem t : True.\nProof. repeat (assert True by exact I). exact I. Qed.\n",
    )]);
    let options = CheckOptions {
        limits: limits(),
        ..CheckOptions::default()
    };
    let r = rocq::check(&input, &options, sandbox(), &binds(), &cancel);
    t.join().unwrap();
    assert_eq!(r.status, ProofStatus::Cancelled, "{:?}", r.result);
}
