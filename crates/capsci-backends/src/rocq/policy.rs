//! The Rocq input policy: commands that reach the file system, load code or leave the
//! project are refused before any process starts.
//!
//! The sandbox holds on its own (a private work directory, read-only closure, no network); this
//! layer makes the answer a clear `refused` naming the command, instead of whatever the tool
//! would do inside the sandbox.

use super::lexer::{command_tokens, Sentence, Token};

/// One refused command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// File, relative to the project.
    pub file: String,
    /// 1-based line.
    pub line: u32,
    /// 1-based column.
    pub column: u32,
    /// The command refused (`Load`, `Redirect`, ...).
    pub command: String,
    /// Why.
    pub reason: String,
}

/// Plugins shipped in Debian's Coq closure that a project may declare explicitly.
const CLOSURE_PLUGIN_PREFIX: &str = "coq-core.plugins.";

fn refuse(file: &str, s: &Sentence, command: &str, reason: &str) -> Refusal {
    Refusal {
        file: file.to_string(),
        line: s.line,
        column: s.column,
        command: command.to_string(),
        reason: reason.to_string(),
    }
}

/// Checks one file's sentences; returns the first refusal, if any.
///
/// Refused: `Load` (reads another file as source, by path), `Cd`, `Redirect` (writes a file),
/// `Add LoadPath`/`Add Rec LoadPath`/`Add ML Path`/`Remove LoadPath` (change where libraries
/// are found), `Declare ML Module` of anything but a plugin from the closure (native code),
/// extraction to a named file, `Set Extraction Output Directory`, `Drop`, `Back`/`BackTo`,
/// `Reset Initial`, `Set`/`Unset` of the kernel's safety flags (`Guard Checking`,
/// `Positivity Checking`, `Universe Checking`) and `Set Type In Type`, and the control prefix
/// `Redirect` (also behind `Time`, `Fail` and other control prefixes).
pub fn check_sentences(file: &str, sentences: &[Sentence]) -> Option<Refusal> {
    for s in sentences {
        let cmd = command_tokens(&s.tokens);
        let word = |k: usize| cmd.get(k).and_then(Token::ident).unwrap_or("");
        let first = word(0);
        match first {
            "Redirect" => {
                return Some(refuse(
                    file,
                    s,
                    "Redirect",
                    "Redirect writes command output to a file",
                ))
            }
            "Load" => {
                return Some(refuse(
                    file,
                    s,
                    "Load",
                    "Load reads a file by path; use Require",
                ))
            }
            "Cd" => return Some(refuse(file, s, "Cd", "Cd changes the working directory")),
            "Drop" => {
                return Some(refuse(
                    file,
                    s,
                    "Drop",
                    "Drop leaves the checker for the OCaml toplevel",
                ))
            }
            "Back" | "BackTo" => {
                return Some(refuse(
                    file,
                    s,
                    first,
                    "interactive backtracking is not allowed in a checked file",
                ))
            }
            "Reset" if word(1) == "Initial" => {
                return Some(refuse(
                    file,
                    s,
                    "Reset Initial",
                    "Reset Initial discards the checked state",
                ))
            }
            "Add"
                if matches!(word(1), "LoadPath" | "ML")
                    || (word(1) == "Rec" && matches!(word(2), "LoadPath" | "ML")) =>
            {
                return Some(refuse(
                    file,
                    s,
                    "Add LoadPath",
                    "the load path is fixed by the project (_CoqProject -R/-Q)",
                ))
            }
            "Remove" if word(1) == "LoadPath" => {
                return Some(refuse(
                    file,
                    s,
                    "Remove LoadPath",
                    "the load path is fixed by the project",
                ))
            }
            "Declare" if word(1) == "ML" && word(2) == "Module" => {
                let outside = cmd[3..]
                    .iter()
                    .filter_map(|t| match t {
                        Token::Str(name) => Some(name.as_str()),
                        _ => None,
                    })
                    .any(|name| !name.starts_with(CLOSURE_PLUGIN_PREFIX) || name.contains('/'));
                if outside || !cmd[3..].iter().any(|t| matches!(t, Token::Str(_))) {
                    return Some(refuse(
                        file,
                        s,
                        "Declare ML Module",
                        "only the closure's own plugins (coq-core.plugins.*) may be loaded",
                    ));
                }
            }
            "Extraction" | "Recursive" | "Separate"
                if cmd.iter().any(|t| matches!(t, Token::Str(_))) =>
            {
                return Some(refuse(
                    file,
                    s,
                    "Extraction",
                    "extraction to a named file writes outside the check",
                ))
            }
            "Extraction" if matches!(word(1), "Library" | "TestCompile") => {
                return Some(refuse(
                    file,
                    s,
                    "Extraction Library",
                    "extraction writes files",
                ))
            }
            "Recursive" if word(1) == "Extraction" && word(2) == "Library" => {
                return Some(refuse(
                    file,
                    s,
                    "Recursive Extraction Library",
                    "extraction writes files",
                ))
            }
            "Set" | "Unset" => {
                let rest: Vec<&str> = cmd[1..].iter().filter_map(Token::ident).take(3).collect();
                let flag = rest.join(" ");
                if flag.starts_with("Extraction Output Directory") {
                    return Some(refuse(
                        file,
                        s,
                        "Set Extraction Output Directory",
                        "extraction writes files",
                    ));
                }
                let unsafe_flag = flag.starts_with("Guard Checking")
                    || flag.starts_with("Positivity Checking")
                    || flag.starts_with("Universe Checking");
                if (first == "Unset" && unsafe_flag)
                    || (first == "Set" && flag.starts_with("Type In Type"))
                {
                    return Some(refuse(
                        file,
                        s,
                        &format!("{first} {flag}"),
                        "turning off a kernel check makes the proof unsound",
                    ));
                }
            }
            _ => {}
        }
        // `#[bypass_check(...)]` attributes turn the same checks off for one declaration.
        if s.tokens.iter().any(|t| t.is("bypass_check")) {
            return Some(refuse(
                file,
                s,
                "bypass_check",
                "turning off a kernel check makes the proof unsound",
            ));
        }
    }
    None
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::rocq::lexer::sentences;

    fn refused(text: &str) -> Option<String> {
        check_sentences("a.v", &sentences(text).unwrap()).map(|r| r.command)
    }

    #[test]
    fn refuses_file_system_commands() {
        assert_eq!(refused("Load \"/etc/passwd\".").as_deref(), Some("Load"));
        assert_eq!(refused("Cd \"/tmp\".").as_deref(), Some("Cd"));
        assert_eq!(
            refused("Redirect \"/tmp/x\" Print nat.").as_deref(),
            Some("Redirect")
        );
        assert_eq!(
            refused("Time Redirect \"x\" Check 1.").as_deref(),
            Some("Redirect")
        );
        assert_eq!(
            refused("Add LoadPath \"/\" as X.").as_deref(),
            Some("Add LoadPath")
        );
        assert_eq!(
            refused("Add Rec LoadPath \"/\" as X.").as_deref(),
            Some("Add LoadPath")
        );
        assert_eq!(
            refused("Declare ML Module \"/tmp/evil.cmxs\".").as_deref(),
            Some("Declare ML Module")
        );
        assert_eq!(
            refused("Extraction \"/tmp/x.ml\" nat.").as_deref(),
            Some("Extraction")
        );
        assert_eq!(refused("Drop.").as_deref(), Some("Drop"));
        assert_eq!(refused("#[local] Fail Load x.").as_deref(), Some("Load"));
        assert_eq!(
            refused("Unset Guard Checking.").as_deref(),
            Some("Unset Guard Checking")
        );
        assert_eq!(
            refused("Set Type In Type.").as_deref(),
            Some("Set Type In Type")
        );
        assert_eq!(
            refused("#[bypass_check(guard)] Fixpoint f (n:nat) : nat := f n.").as_deref(),
            Some("bypass_check")
        );
    }

    #[test]
    fn allows_ordinary_proofs_and_mentions_in_comments_or_strings() {
        assert_eq!(
            refused("(* Load \"/etc/passwd\". *) Lemma a : True. Proof. exact I. Qed."),
            None
        );
        assert_eq!(refused("Definition s := \"Cd /tmp. Load x.\"."), None);
        assert_eq!(
            refused("Declare ML Module \"coq-core.plugins.ltac\"."),
            None
        );
        assert_eq!(
            refused("Require Import Coq.Lists.List. Set Implicit Arguments."),
            None
        );
        assert_eq!(refused("Extraction nat."), None);
        // A hypothesis named `Load` is not the command.
        assert_eq!(
            refused("Lemma l (Load : nat) : Load = Load. Proof. reflexivity. Qed."),
            None
        );
    }
}
