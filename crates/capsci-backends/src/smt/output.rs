//! Reads a solver's stdout (for a script built by [`super::script::Script::request_text`]) into
//! its answers, its errors on the input, and the answers to capsci's marked requests.

use super::script::SECTION_MARKER;
use super::sexp::{parse_all, Sexp};
use capsci_core::Location;

/// One `(error ...)` the solver printed about the user's input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputError {
    /// The message, with its location rewritten to the user's line numbers.
    pub message: String,
    /// Where it points in the user's text, when the solver said.
    pub location: Option<Location>,
}

/// What a solver printed, split at capsci's markers.
#[derive(Debug, Clone, Default)]
pub struct Reply {
    /// The text the items below were read from (spans point into it).
    pub text: String,
    /// Answers to the user's `check-sat`s (`sat`, `unsat`, `unknown`, `timeout`), in order.
    pub answers: Vec<String>,
    /// Errors printed before capsci's markers: they are about the user's input.
    pub errors: Vec<InputError>,
    /// The `:reason-unknown` text, if the solver gave one.
    pub reason_unknown: Option<String>,
    /// The `get-model` answer, if it was a list.
    pub model: Option<Sexp>,
    /// The unsat core names, if the solver gave them.
    pub core: Option<Vec<String>>,
    /// Whether the final marker was reached (the solver answered everything).
    pub complete: bool,
}

impl Reply {
    /// The answer to the last `check-sat`.
    pub fn last_answer(&self) -> Option<&str> {
        self.answers.last().map(String::as_str)
    }
}

/// Splits a solver's stdout. Tolerates truncated output (a killed solver): it then reads what it
/// can line by line.
pub fn read_reply(stdout: &str, line_shift: u32) -> Reply {
    let items = match parse_all(stdout) {
        Ok(items) => items,
        Err(_) => {
            // Re-read line by line and keep what parses, with spans rebased to the whole text.
            let mut items = Vec::new();
            let mut offset = 0;
            for line in stdout.split_inclusive('\n') {
                if let Ok(parsed) = parse_all(line) {
                    items.extend(parsed.into_iter().map(|s| rebase(s, offset)));
                }
                offset += line.len();
            }
            items
        }
    };
    let mut reply = Reply {
        text: stdout.to_string(),
        ..Reply::default()
    };
    let mut section: Option<String> = None;
    for item in items {
        if let Some(name) = marker(&item) {
            if name == "end" {
                reply.complete = true;
            }
            section = Some(name);
            continue;
        }
        match section.as_deref() {
            None => match item.atom() {
                Some(word @ ("sat" | "unsat" | "unknown" | "timeout")) => {
                    reply.answers.push(word.to_string())
                }
                Some(_) => {}
                None => {
                    if item.head() == Some("error") {
                        let text = item
                            .list()
                            .and_then(|l| l.get(1))
                            .and_then(Sexp::string_value)
                            .unwrap_or_default();
                        reply.errors.push(input_error(&text, line_shift));
                    }
                }
            },
            Some("reason") => {
                if let Some(list) = item.list() {
                    if list.first().and_then(Sexp::atom) == Some(":reason-unknown") {
                        reply.reason_unknown = list.get(1).map(|v| {
                            v.string_value()
                                .unwrap_or_else(|| v.text(stdout).to_string())
                        });
                    }
                }
            }
            Some("model") if item.list().is_some() && item.head() != Some("error") => {
                reply.model = Some(item);
            }
            Some("core") => {
                if let Some(list) = item.list() {
                    if item.head() != Some("error") {
                        reply.core = Some(
                            list.iter()
                                .filter_map(Sexp::symbol)
                                .map(str::to_string)
                                .collect(),
                        );
                    }
                }
            }
            _ => {}
        }
    }
    if let Some(model) = reply.model.take() {
        // Older Z3 prints `(model (define-fun ...) ...)`.
        reply.model = Some(match model.list() {
            Some(items) if items.first().and_then(Sexp::atom) == Some("model") => {
                let (start, end) = model.span();
                Sexp::List {
                    items: items[1..].to_vec(),
                    span: (start, end),
                    line: model.line(),
                }
            }
            _ => model,
        });
    }
    reply
}

fn rebase(sexp: Sexp, offset: usize) -> Sexp {
    match sexp {
        Sexp::Atom { text, span, line } => Sexp::Atom {
            text,
            span: (span.0 + offset, span.1 + offset),
            line,
        },
        Sexp::List { items, span, line } => Sexp::List {
            items: items.into_iter().map(|i| rebase(i, offset)).collect(),
            span: (span.0 + offset, span.1 + offset),
            line,
        },
    }
}

/// The section name of an echoed marker (Z3 echoes bare text, cvc5 a quoted string).
fn marker(item: &Sexp) -> Option<String> {
    let text = item.atom()?;
    let text = text.trim_matches('"');
    text.strip_prefix(SECTION_MARKER).map(str::to_string)
}

/// Turns a solver's error text into the user's numbering. `line_shift` is how many lines the
/// solver's numbering runs ahead of the user's: one options line precedes the user's text, so Z3
/// (1-based) runs 1 ahead; cvc5 1.0 numbers stdin lines from 0, so it runs 0 ahead.
///
/// Z3 writes `line L column C: msg`; cvc5 writes `Parse Error: <stdin>:L.C: msg` or
/// `<stdin>:L.C: msg`.
pub fn input_error(text: &str, line_shift: u32) -> InputError {
    if let Some(rest) = text.strip_prefix("line ") {
        let mut parts = rest.splitn(2, ": ");
        let position = parts.next().unwrap_or("");
        let message = parts.next().unwrap_or("").to_string();
        let mut words = position.split_whitespace();
        let line = words.next().and_then(|l| l.parse::<u32>().ok());
        let column = match (words.next(), words.next()) {
            (Some("column"), Some(c)) => c.parse::<u32>().ok(),
            _ => None,
        };
        if let Some(line) = line {
            return located(line, line_shift, column, &message);
        }
    }
    if let Some(at) = text.find("<stdin>:") {
        let rest = &text[at + "<stdin>:".len()..];
        let mut parts = rest.splitn(2, ": ");
        let position = parts.next().unwrap_or("");
        let message = parts.next().unwrap_or("").trim().to_string();
        let mut nums = position.split('.');
        let line = nums.next().and_then(|l| l.parse::<u32>().ok());
        let column = nums.next().and_then(|c| c.parse::<u32>().ok());
        if let Some(line) = line {
            let prefix = text[..at].trim().trim_end_matches(':');
            let message = if prefix.is_empty() {
                message
            } else {
                format!("{prefix}: {message}")
            };
            return located(line, line_shift, column, &message);
        }
    }
    InputError {
        message: text.to_string(),
        location: None,
    }
}

fn located(solver_line: u32, line_shift: u32, column: Option<u32>, message: &str) -> InputError {
    let line = solver_line.saturating_sub(line_shift).max(1);
    let position = match column {
        Some(c) => format!("line {line} column {c}"),
        None => format!("line {line}"),
    };
    InputError {
        message: format!("{position}: {message}"),
        location: Some(Location { line, column }),
    }
}

/// Whether an error or `:reason-unknown` text means a time limit ended the check.
pub fn means_timeout(text: &str) -> bool {
    let t = text.to_ascii_lowercase();
    t.contains("timeout")
        || t.contains("canceled")
        || t.contains("cancelled")
        || t.contains("interrupted")
}

/// Whether an error or `:reason-unknown` text means a memory or resource limit ended the check.
pub fn means_resource(text: &str) -> bool {
    let t = text.to_ascii_lowercase();
    t.contains("memory")
        || t.contains("memout")
        || t.contains("resourceout")
        || t.contains("resource limit")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn z3_reply_with_model_and_failed_core_request() {
        let out = "(error \"line 4 column 24: logic does not support uninterpreted functions\")\nsat\ncapsci-section:reason\n(:reason-unknown \"unknown\")\ncapsci-section:model\n(\n  (define-fun x () Int\n    3)\n)\ncapsci-section:core\n(error \"line 11 column 15: unsat core is not available\")\ncapsci-section:end\n";
        let r = read_reply(out, 1);
        assert_eq!(r.answers, vec!["sat"]);
        assert_eq!(r.errors.len(), 1, "errors after markers are capsci's own");
        assert_eq!(
            r.errors[0].location,
            Some(Location {
                line: 3,
                column: Some(24)
            })
        );
        assert_eq!(
            r.errors[0].message,
            "line 3 column 24: logic does not support uninterpreted functions"
        );
        assert!(r.model.is_some());
        assert_eq!(r.core, None);
        assert!(r.complete);
    }

    #[test]
    fn cvc5_reply_with_quoted_markers_core_and_symbol_reason() {
        let out = "unsat\n\"capsci-section:reason\"\n(error \"Can't get-info\")\n\"capsci-section:model\"\n(error \"Cannot get model\")\n\"capsci-section:core\"\n(\na2\n|a 1|\n)\n\"capsci-section:end\"\n";
        let r = read_reply(out, 0);
        assert_eq!(r.last_answer(), Some("unsat"));
        assert!(r.errors.is_empty());
        assert_eq!(r.model, None);
        assert_eq!(r.core, Some(vec!["a2".to_string(), "a 1".to_string()]));
        let r = read_reply(
            "unknown\n\"capsci-section:reason\"\n(:reason-unknown timeout)\n",
            0,
        );
        assert_eq!(r.reason_unknown.as_deref(), Some("timeout"));
        assert!(!r.complete);
    }

    #[test]
    fn cvc5_parse_error_location_is_read() {
        let e = input_error("Parse Error: <stdin>:3.24: Functions cannot be declared", 0);
        assert_eq!(
            e.location,
            Some(Location {
                line: 3,
                column: Some(24)
            })
        );
        assert_eq!(
            e.message,
            "line 3 column 24: Parse Error: Functions cannot be declared"
        );
    }

    #[test]
    fn truncated_output_is_read_as_far_as_possible() {
        let r = read_reply("sat\ncapsci-section:model\n(\n (define-fun x () Int", 1);
        assert_eq!(r.answers, vec!["sat"]);
        assert!(r.model.is_none());
    }

    #[test]
    fn timeouts_however_worded() {
        assert!(means_timeout("canceled"));
        assert!(means_timeout("timeout"));
        assert!(!means_timeout("(incomplete quantifiers)"));
        assert!(means_resource("max. memory exceeded"));
    }
}
