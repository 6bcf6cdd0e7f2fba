//! Parsers for what the Rocq tools print: coqc's located errors, `Print Assumptions` blocks
//! (between capsci's markers) and coqchk's context summary.

use capsci_core::ProofError;

/// The marker capsci's generated files print before each `Print Assumptions`: the output of
/// `Check (fun capsci_mark_<k> : Prop => capsci_mark_<k>)` starts with this.
pub const MARK_PREFIX: &str = "fun capsci_mark_";

/// One error or warning coqc printed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// The error, located.
    pub error: ProofError,
    /// Whether it is a syntax error (the file does not parse).
    pub syntax: bool,
}

fn clean_file(f: &str) -> String {
    let f = f.strip_prefix("/work/").unwrap_or(f);
    f.strip_prefix("./").unwrap_or(f).to_string()
}

/// Parses coqc's `File "./a.v", line 3, characters 2-9:` headers followed by `Error:` messages.
/// Warnings are skipped. An `Error:` with no location header is reported against
/// `default_file` at line 0, column 0 (unknown).
pub fn coqc_errors(output: &str, default_file: &str) -> Vec<Diagnostic> {
    let lines: Vec<&str> = output.lines().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        let (file, lno, col, body_start) = if let Some(rest) = line.strip_prefix("File \"") {
            let Some((file, rest)) = rest.split_once('"') else {
                i += 1;
                continue;
            };
            let lno = rest
                .split("line ")
                .nth(1)
                .and_then(|r| r.split(|c: char| !c.is_ascii_digit()).next())
                .and_then(|d| d.parse::<u32>().ok())
                .unwrap_or(0);
            let col = rest
                .split("characters ")
                .nth(1)
                .and_then(|r| r.split(|c: char| !c.is_ascii_digit()).next())
                .and_then(|d| d.parse::<u32>().ok())
                .map_or(0, |c| c + 1);
            (clean_file(file), lno, col, i + 1)
        } else if line.starts_with("Error:") {
            (default_file.to_string(), 0, 0, i)
        } else {
            i += 1;
            continue;
        };
        let Some(first) = lines.get(body_start) else {
            break;
        };
        if !first.starts_with("Error:") {
            i = body_start;
            continue;
        }
        let mut msg = vec![first.trim_start_matches("Error:").trim()];
        let mut j = body_start + 1;
        while j < lines.len() && !lines[j].starts_with("File \"") && !lines[j].starts_with("Error:")
        {
            msg.push(lines[j]);
            j += 1;
        }
        let message = msg.join("\n").trim().to_string();
        let syntax = message.starts_with("Syntax error")
            || message.starts_with("Syntax Error")
            || message.contains("Lexer:");
        out.push(Diagnostic {
            error: ProofError {
                file,
                line: lno,
                column: col,
                message,
            },
            syntax,
        });
        i = j;
    }
    out
}

/// Whether the toplevel reported an error (it does not stop at one, so an error means a block
/// may be missing or wrong).
pub fn toplevel_error(output: &str) -> bool {
    output.lines().any(|l| {
        let mut line = l;
        while let Some(rest) = line.strip_prefix("Coq < ") {
            line = rest;
        }
        line.starts_with("Error:") || line.starts_with("Toplevel input")
    })
}

/// One `Print Assumptions` block: the assumptions a constant depends on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Assumptions {
    /// Names as printed (shortest unambiguous), with the section they were listed under
    /// (`Axioms`, or e.g. `Constants relying on type-in-type`).
    pub entries: Vec<(String, String)>,
}

/// Splits the output of capsci's assumptions file into blocks, by marker index.
pub fn assumption_blocks(output: &str, count: usize) -> Vec<Option<Assumptions>> {
    let mut blocks: Vec<Option<Assumptions>> = vec![None; count];
    let mut current: Option<usize> = None;
    let mut section = String::new();
    for raw in output.lines() {
        // coqtop's prompts prefix the first line of each answer.
        let mut line = raw;
        while let Some(rest) = line.strip_prefix("Coq < ") {
            line = rest;
        }
        if line.starts_with("Fetching opaque proofs") {
            continue;
        }
        if let Some(rest) = line.strip_prefix(MARK_PREFIX) {
            let k = rest
                .split(|c: char| !c.is_ascii_digit())
                .next()
                .and_then(|d| d.parse::<usize>().ok());
            current = k.filter(|&k| k < count);
            if let Some(k) = current {
                blocks[k] = Some(Assumptions::default());
            }
            section.clear();
            continue;
        }
        let Some(k) = current else { continue };
        if line.starts_with(' ')
            || line.trim().is_empty()
            || line.starts_with("Closed under the global context")
        {
            continue;
        }
        if line.ends_with(':') && !line.contains(" : ") {
            section = line.trim_end_matches(':').to_string();
            continue;
        }
        if section.is_empty() {
            continue;
        }
        let name = line.split(" : ").next().unwrap_or(line).trim().to_string();
        if let Some(b) = blocks[k].as_mut() {
            b.entries.push((name, section.clone()));
        }
    }
    blocks
}

/// coqchk's context summary: the fully qualified axioms and the unsafe-flag sections.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChkSummary {
    /// Whether coqchk said "Modules were successfully checked".
    pub ok: bool,
    /// Fully qualified axioms of every library loaded.
    pub axioms: Vec<String>,
    /// Entries of the other sections (type-in-type, unsafe fixpoints, assumed positivity).
    pub unsafe_entries: Vec<String>,
}

/// Parses `coqchk -o` output.
pub fn coqchk_summary(output: &str) -> ChkSummary {
    let mut s = ChkSummary {
        ok: output.contains("Modules were successfully checked"),
        ..ChkSummary::default()
    };
    let mut section = "";
    for line in output.lines() {
        let t = line.trim();
        if let Some(head) = t.strip_prefix("* ") {
            section = if head.starts_with("Axioms") {
                "axioms"
            } else if head.contains("relying on") || head.contains("assumed") {
                if head.ends_with("<none>") {
                    ""
                } else {
                    "unsafe"
                }
            } else {
                ""
            };
            continue;
        }
        if t.is_empty() || t.starts_with("==") || t == "CONTEXT SUMMARY" {
            continue;
        }
        match section {
            "axioms" if !t.contains(' ') => s.axioms.push(t.to_string()),
            "unsafe" if !t.contains(' ') => s.unsafe_entries.push(t.to_string()),
            _ => {}
        }
    }
    s
}

/// The fully qualified names whose trailing components are `printed` (how `Print Assumptions`
/// shows a name: its shortest unambiguous suffix).
pub fn resolve_full<'a>(printed: &str, full: &'a [String]) -> Vec<&'a str> {
    full.iter()
        .filter(|f| f.as_str() == printed || f.ends_with(&format!(".{printed}")))
        .map(String::as_str)
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn parses_located_errors() {
        let out = "File \"./a.v\", line 3, characters 2-13:\nError: Unable to unify \"2\" with \"1\".\n\n";
        let d = coqc_errors(out, "a.v");
        assert_eq!(d.len(), 1);
        assert_eq!(
            d[0].error,
            ProofError {
                file: "a.v".into(),
                line: 3,
                column: 3,
                message: "Unable to unify \"2\" with \"1\".".into()
            }
        );
        assert!(!d[0].syntax);
        let out = "File \"./sub/e.v\", line 3, characters 2-6:\nError:\nThe term \"true\" has type \"bool\" while it is expected to have type \"nat\".\n";
        let d = coqc_errors(out, "x.v");
        assert_eq!(d[0].error.file, "sub/e.v");
        assert!(d[0].error.message.starts_with("The term \"true\""));
        let out = "File \"./a.v\", line 1, characters 0-5:\nWarning: foo [bar]\nFile \"./a.v\", line 2, characters 4-5:\nError: Syntax error: '.' expected after [vernac:command] (in [vernac_aux]).\n";
        let d = coqc_errors(out, "a.v");
        assert_eq!(d.len(), 1);
        assert!(d[0].syntax);
        assert_eq!((d[0].error.line, d[0].error.column), (2, 5));
    }

    #[test]
    fn parses_assumption_blocks() {
        let out = "fun capsci_mark_0 : Prop => capsci_mark_0\n     : Prop -> Prop\nClosed under the global context\n\
                   fun capsci_mark_1 : Prop => capsci_mark_1\n     : Prop -> Prop\nAxioms:\nClassical_Prop.classic : forall P : Prop, P \\/ ~ P\na.adm\n  : 1 = 1\n";
        let b = assumption_blocks(out, 3);
        let top = "Welcome to Coq 8.16.1\nSkipping rcfile loading.\n\nCoq < \nCoq < fun capsci_mark_0 : Prop => capsci_mark_0\n     : Prop -> Prop\n\nCoq < Fetching opaque proofs from disk for f1\nAxioms:\nx.ax : False\n\nCoq < \n";
        let t = assumption_blocks(top, 1);
        assert_eq!(
            t[0].as_ref().unwrap().entries,
            vec![("x.ax".to_string(), "Axioms".to_string())]
        );
        assert!(!toplevel_error(top));
        assert!(toplevel_error("Coq < Toplevel input, characters 0-5:\n> Print Assumptions x.\nError: The reference x was not found"));
        assert_eq!(b[0], Some(Assumptions::default()));
        assert_eq!(
            b[1].as_ref().unwrap().entries,
            vec![
                ("Classical_Prop.classic".to_string(), "Axioms".to_string()),
                ("a.adm".to_string(), "Axioms".to_string())
            ]
        );
        assert_eq!(b[2], None);
    }

    #[test]
    fn parses_coqchk_summary() {
        let out = "Modules were successfully checked\n\nCONTEXT SUMMARY\n===============\n\n* Theory: Set is predicative\n  \n* Axioms:\n    Coq.ssr.ssrunder.Under_rel.Over_rel\n    P.a.adm\n  \n* Constants/Inductives relying on type-in-type: <none>\n  \n* Constants/Inductives relying on unsafe (co)fixpoints: <none>\n  \n* Inductives whose positivity is assumed: <none>\n";
        let s = coqchk_summary(out);
        assert!(s.ok);
        assert_eq!(
            s.axioms,
            vec!["Coq.ssr.ssrunder.Under_rel.Over_rel", "P.a.adm"]
        );
        assert!(s.unsafe_entries.is_empty());
        assert_eq!(resolve_full("a.adm", &s.axioms), vec!["P.a.adm"]);
        assert!(resolve_full("dm", &s.axioms).is_empty());
    }
}
