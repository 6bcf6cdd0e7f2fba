//! The command line as a user meets it: help lists DESIGN.md's whole command line, commands not
//! built yet say so and exit non-zero, the catalog lists every backend.

use std::process::Command;

fn capsci(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_capsci"))
        .args(args)
        .env(
            "CAPSCI_STORE",
            std::env::temp_dir().join("capsci-cli-test-store"),
        )
        .output()
        .expect("run capsci")
}

#[test]
fn help_lists_the_whole_command_line() {
    let out = capsci(&["--help"]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for command in [
        "gp", "cas", "smt", "opt", "proof", "job", "artifact", "log", "replay", "catalog", "demo",
        "bench", "mcp", "serve",
    ] {
        assert!(
            text.contains(&format!("  {command} ")),
            "help lists `{command}`:\n{text}"
        );
    }
    for flag in ["--json", "--store", "--connect", "--detach"] {
        assert!(text.contains(flag), "help lists {flag}");
    }
}

#[test]
fn subcommand_help_lists_its_options() {
    let cas = String::from_utf8_lossy(&capsci(&["cas", "--help"]).stdout).into_owned();
    for option in [
        "--var", "--at", "--dir", "--from", "--to", "--order", "--digits",
    ] {
        assert!(cas.contains(option), "cas --help lists {option}");
    }
    let smt = String::from_utf8_lossy(&capsci(&["smt", "check", "--help"]).stdout).into_owned();
    for option in ["--backend", "--timeout", "--seed"] {
        assert!(smt.contains(option), "smt check --help lists {option}");
    }
    let proof = String::from_utf8_lossy(&capsci(&["proof", "check", "--help"]).stdout).into_owned();
    for option in ["--challenge", "--allow-axiom", "--backend"] {
        assert!(proof.contains(option), "proof check --help lists {option}");
    }
}

#[test]
fn cas_values_may_start_with_a_minus() {
    // `--from -oo` must parse as a value, not as an unknown flag.
    let out = capsci(&[
        "cas",
        "integrate",
        "exp(x)",
        "--var",
        "x",
        "--from",
        "-oo",
        "--to",
        "0",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("unexpected argument"), "{stderr}");
}

#[test]
fn a_usage_error_exits_non_zero_with_a_reason() {
    let out = capsci(&["smt", "check"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(!out.stderr.is_empty());
}

#[test]
fn catalog_lists_every_backend_and_says_when_lean_is_missing() {
    let out = capsci(&["catalog", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let entries: serde_json::Value = serde_json::from_slice(&out.stdout).expect("catalog JSON");
    let names: Vec<&str> = entries
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|e| e["name"].as_str())
        .collect();
    assert_eq!(
        names,
        ["gp", "sympy", "z3", "cvc5", "highs", "rocq", "lean"]
    );
    for entry in entries.as_array().expect("array") {
        if entry["name"] != "lean" {
            assert_eq!(
                entry["available"], true,
                "set-up installs {}",
                entry["name"]
            );
            let version = entry["version"].as_str().unwrap_or("");
            assert!(
                !version.is_empty() && version != "unknown",
                "{} has a version: {entry}",
                entry["name"]
            );
        }
    }
}
