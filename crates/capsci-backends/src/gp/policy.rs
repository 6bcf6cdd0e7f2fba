//! The gp input policy: a tokeniser that reads GP the way gp's own input filter does (strings,
//! `\\` and `/* */` comments, trailing-backslash continuations, whitespace removed between the
//! letters of a name, newlines joined inside `{ }` blocks), and the rules that refuse whatever
//! reaches outside the computation.
//!
//! The filter is one of two layers (DESIGN.md invariant 2): it must hold without the sandbox, and
//! the sandbox must hold without it. It is deliberately conservative: a name is refused wherever
//! it appears as a token (call, bare reference, member function), so `f = system; f("ls")` is
//! refused as surely as `system("ls")`.

use capsci_core::Location;

/// Why an input was not run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rejection {
    /// The input policy refused it (status `refused`).
    Refused {
        /// What was refused and why, in words.
        reason: String,
    },
    /// The input does not tokenise as GP (status `invalid_input`).
    InvalidInput {
        /// What is wrong.
        message: String,
        /// Where, when known.
        location: Option<Location>,
    },
}

/// Names refused wherever they appear as a token.
const REFUSED_NAMES: &[&str] = &[
    "system",
    "install",
    "alias",
    "getenv",
    "strexpand",
    "Strexpand",
    "input",
    "quit",
    "exit",
    "kill",
    "eval",
    "evalstr",
    "allocatemem",
    "breakpoint",
    "trap",
    "psdraw",
    "gprc",
];

/// Name prefixes refused wherever they appear as a token (families of functions that touch files,
/// the terminal, plotting devices or the debugger).
const REFUSED_PREFIXES: &[&str] = &[
    "file", "read", "write", "extern", "plot", "psplot", "ploth", "parploth", "dbg_",
];

/// The defaults a user may query or set with `default(NAME, ...)`: precision and output format
/// only. Everything else (`secure`, `logfile`, `psfile`, `histfile`, `datadir`, `path`, `help`,
/// `prettyprinter`, `sopath`, `readline`, `parisize*`, `echo`, ...) is refused.
pub const ALLOWED_DEFAULTS: &[&str] = &[
    "realprecision",
    "realbitprecision",
    "seriesprecision",
    "format",
    "factor_add_primes",
    "factor_proven",
    "primelimit",
    "simplify",
    "strictmatch",
    "strictargs",
    "new_galois_format",
    "output",
    "compatible",
    "debug",
    "debugmem",
    "timer",
];

/// Metacommands allowed (each with at most a decimal argument): precision (`\p`, `\pb`, `\ps`)
/// and read-only displays of the last results, types, stack, user functions and version.
const ALLOWED_META: &[&str] = &[
    "p", "pb", "ps", "a", "b", "m", "x", "y", "s", "u", "v", "t", "h",
];

/// One character of a statement after gp's filtering, with where it came from.
#[derive(Debug, Clone, Copy)]
struct Piece {
    ch: char,
    line: u32,
    column: u32,
    in_string: bool,
}

/// One unit gp reads: a metacommand line, or a statement (a line, or a `{ }` block) with
/// comments, whitespace and continuations removed.
#[derive(Debug, Clone)]
enum Unit {
    Meta { text: String, line: u32 },
    Code(Vec<Piece>),
}

/// A statement as gp sees it after its input filter, with the map back to the source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filtered {
    /// The statement text, whitespace and comments removed (what gp quotes in its messages).
    pub text: String,
    /// The 1-based (line, column) in the original input of each character of `text`.
    pub positions: Vec<(u32, u32)>,
}

fn invalid(message: &str, line: u32, column: u32) -> Rejection {
    Rejection::InvalidInput {
        message: message.to_string(),
        location: Some(Location {
            line,
            column: Some(column),
        }),
    }
}

/// Splits GP input into the units gp reads, emulating its input filter.
fn tokenise(code: &str) -> Result<Vec<Unit>, Rejection> {
    let chars: Vec<char> = code.chars().collect();
    let mut units = Vec::new();
    let mut current: Vec<Piece> = Vec::new();
    let (mut line, mut column) = (1u32, 1u32);
    let mut at_line_start = true;
    let mut in_block: Option<(u32, u32)> = None;
    let mut i = 0;
    // Advances over chars[i], keeping line/column right.
    macro_rules! step {
        () => {{
            if chars[i] == '\n' {
                line += 1;
                column = 1;
            } else {
                column += 1;
            }
            i += 1;
        }};
    }
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if at_line_start && c == '\\' && next != Some('\\') {
            // A metacommand: the rest of the physical line.
            let start_line = line;
            let mut text = String::new();
            while i < chars.len() && chars[i] != '\n' {
                text.push(chars[i]);
                step!();
            }
            units.push(Unit::Meta {
                text,
                line: start_line,
            });
            continue;
        }
        match c {
            '"' => {
                let (sl, sc) = (line, column);
                current.push(Piece {
                    ch: c,
                    line,
                    column,
                    in_string: true,
                });
                step!();
                let mut closed = false;
                while i < chars.len() {
                    let d = chars[i];
                    if d == '\n' {
                        break;
                    }
                    current.push(Piece {
                        ch: d,
                        line,
                        column,
                        in_string: true,
                    });
                    step!();
                    if d == '\\' {
                        if i < chars.len() && chars[i] != '\n' {
                            current.push(Piece {
                                ch: chars[i],
                                line,
                                column,
                                in_string: true,
                            });
                            step!();
                        }
                    } else if d == '"' {
                        closed = true;
                        break;
                    }
                }
                if !closed {
                    return Err(invalid("unterminated string", sl, sc));
                }
                at_line_start = false;
            }
            '\\' if next == Some('\\') => {
                // Comment to the end of the line; the newline itself still ends the statement.
                while i < chars.len() && chars[i] != '\n' {
                    step!();
                }
            }
            '\\' if continuation_follows(&chars, i + 1) => {
                // Line continuation: skip the backslash, blanks and the newline.
                while i < chars.len() && chars[i] != '\n' {
                    step!();
                }
                if i < chars.len() {
                    step!();
                }
            }
            '/' if next == Some('*') => {
                let (sl, sc) = (line, column);
                step!();
                step!();
                let mut closed = false;
                while i < chars.len() {
                    if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
                        step!();
                        step!();
                        closed = true;
                        break;
                    }
                    step!();
                }
                if !closed {
                    return Err(invalid("unterminated comment /*", sl, sc));
                }
            }
            '\n' => {
                step!();
                at_line_start = true;
                if in_block.is_none() && !current.is_empty() {
                    units.push(Unit::Code(std::mem::take(&mut current)));
                }
            }
            ' ' | '\t' | '\r' | '\x0b' | '\x0c' => step!(),
            '{' => {
                if in_block.is_some() {
                    return Err(invalid("nested '{' inside a '{ }' block", line, column));
                }
                in_block = Some((line, column));
                if !current.is_empty() {
                    units.push(Unit::Code(std::mem::take(&mut current)));
                }
                at_line_start = false;
                step!();
            }
            '}' => {
                if in_block.is_none() {
                    return Err(invalid("'}' without a matching '{'", line, column));
                }
                in_block = None;
                if !current.is_empty() {
                    units.push(Unit::Code(std::mem::take(&mut current)));
                }
                at_line_start = false;
                step!();
            }
            _ => {
                current.push(Piece {
                    ch: c,
                    line,
                    column,
                    in_string: false,
                });
                at_line_start = false;
                step!();
            }
        }
    }
    if let Some((l, c)) = in_block {
        return Err(invalid("'{' block not closed by '}'", l, c));
    }
    if !current.is_empty() {
        units.push(Unit::Code(current));
    }
    Ok(units)
}

/// Whether, from `j`, only blanks remain before a newline (a trailing-backslash continuation).
/// A backslash at the very end of the input also counts, so that it cannot join the trailer.
fn continuation_follows(chars: &[char], mut j: usize) -> bool {
    while j < chars.len() {
        match chars[j] {
            ' ' | '\t' | '\r' => j += 1,
            '\n' => return true,
            _ => return false,
        }
    }
    true
}

/// The statements of `code` as gp's filter produces them (metacommand lines left out), each with
/// its map back to the source. Used to place gp's messages, which quote the filtered text.
pub fn filtered_statements(code: &str) -> Vec<Filtered> {
    match tokenise(code) {
        Ok(units) => units
            .into_iter()
            .filter_map(|u| match u {
                Unit::Code(pieces) => Some(Filtered {
                    text: pieces.iter().map(|p| p.ch).collect(),
                    positions: pieces.iter().map(|p| (p.line, p.column)).collect(),
                }),
                Unit::Meta { .. } => None,
            })
            .collect(),
        Err(_) => Vec::new(),
    }
}

fn refused(reason: String) -> Rejection {
    Rejection::Refused { reason }
}

fn check_meta(text: &str, line: u32) -> Result<(), Rejection> {
    let body = text.trim_end().trim_start_matches('\\');
    let name_len = body.chars().take_while(|c| c.is_ascii_alphabetic()).count();
    let (name, rest) = body.split_at(name_len);
    let rest_ok = rest
        .chars()
        .all(|c| c.is_ascii_digit() || c == ' ' || c == '\t');
    if ALLOWED_META.contains(&name) && rest_ok {
        return Ok(());
    }
    Err(refused(format!(
        "line {line}: metacommand `{}` is not allowed (allowed: \\p, \\pb, \\ps with a number, and the displays \\a \\b \\m \\x \\y \\s \\u \\v \\t \\h)",
        text.trim()
    )))
}

fn name_is_refused(name: &str) -> bool {
    REFUSED_NAMES.contains(&name) || REFUSED_PREFIXES.iter().any(|p| name.starts_with(p))
}

/// Every name-like run in a statement: maximal runs of `[A-Za-z0-9_]` outside strings, with each
/// suffix that starts with a letter or `_` after a digit (so `2system` still shows `system`).
fn names(pieces: &[Piece]) -> Vec<(String, usize)> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < pieces.len() {
        let is_word = |p: &Piece| !p.in_string && (p.ch.is_ascii_alphanumeric() || p.ch == '_');
        if !is_word(&pieces[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < pieces.len() && is_word(&pieces[i]) {
            i += 1;
        }
        let run: Vec<char> = pieces[start..i].iter().map(|p| p.ch).collect();
        for k in 0..run.len() {
            let starts_name = (run[k].is_ascii_alphabetic() || run[k] == '_')
                && (k == 0 || run[k - 1].is_ascii_digit());
            if starts_name {
                out.push((run[k..].iter().collect(), start + k));
            }
        }
    }
    out
}

/// Reads a string literal or a name starting at `j`; returns its text and the index after it.
fn key_at(pieces: &[Piece], j: usize) -> Option<(String, usize)> {
    let first = pieces.get(j)?;
    if first.in_string && first.ch == '"' {
        let mut k = j + 1;
        let mut text = String::new();
        while let Some(p) = pieces.get(k) {
            if !p.in_string || p.ch == '"' {
                break;
            }
            text.push(p.ch);
            k += 1;
        }
        return (pieces.get(k)?.ch == '"').then_some((text, k + 1));
    }
    let mut k = j;
    let mut text = String::new();
    while let Some(p) = pieces.get(k) {
        if p.in_string || !(p.ch.is_ascii_alphanumeric() || p.ch == '_') {
            break;
        }
        text.push(p.ch);
        k += 1;
    }
    (!text.is_empty()).then_some((text, k))
}

fn check_default(pieces: &[Piece], at: usize) -> Result<(), Rejection> {
    let Piece { line, column, .. } = pieces[at];
    let after = at + "default".len();
    let open = pieces.get(after).filter(|p| !p.in_string && p.ch == '(');
    let key = open.and_then(|_| key_at(pieces, after + 1));
    match key {
        Some((name, k))
            if ALLOWED_DEFAULTS.contains(&name.as_str())
                && pieces.get(k).is_some_and(|p| !p.in_string && (p.ch == ',' || p.ch == ')')) =>
        {
            Ok(())
        }
        Some((name, _)) if !ALLOWED_DEFAULTS.contains(&name.as_str()) => Err(refused(format!(
            "line {line}, column {column}: default `{name}` may not be read or changed (allowed: {})",
            ALLOWED_DEFAULTS.join(", ")
        ))),
        _ => Err(refused(format!(
            "line {line}, column {column}: `default` is allowed only as default(NAME) or default(NAME, VALUE) with NAME one of: {}",
            ALLOWED_DEFAULTS.join(", ")
        ))),
    }
}

/// The input policy: `Ok(())` when `code` may be sent to gp, otherwise why not.
///
/// Refused: the names in [`REFUSED_NAMES`] and the families in [`REFUSED_PREFIXES`] wherever they
/// appear (including `eval`, so strings built at run time can never become code); `default` of
/// anything outside [`ALLOWED_DEFAULTS`]; metacommands other than the allow-list (`\l`, `\w`, `\r`,
/// `\q`, `\e`, `\g`, `\o`, ...); `?` (help, which runs an external program).
/// Invalid: unterminated strings, comments or `{ }` blocks, and a `}` without `{`, which would
/// otherwise swallow or break the text capsci sends after the input.
pub fn check(code: &str) -> Result<(), Rejection> {
    if code.contains('\0') {
        return Err(Rejection::InvalidInput {
            message: "the input contains a NUL byte".to_string(),
            location: None,
        });
    }
    for unit in tokenise(code)? {
        match unit {
            Unit::Meta { text, line } => check_meta(&text, line)?,
            Unit::Code(pieces) => {
                if let Some(p) = pieces.iter().find(|p| !p.in_string && !p.ch.is_ascii()) {
                    // gp's lexer is ASCII: such a character can only be a syntax error, and
                    // refusing it here keeps look-alikes from ever splitting or forming names.
                    return Err(invalid(
                        &format!("non-ASCII character {:?} outside a string", p.ch),
                        p.line,
                        p.column,
                    ));
                }
                if let Some(p) = pieces.iter().find(|p| !p.in_string && p.ch == '?') {
                    return Err(refused(format!(
                        "line {}, column {}: `?` (online help runs an external program) is not allowed",
                        p.line, p.column
                    )));
                }
                for (name, at) in names(&pieces) {
                    let p = pieces[at];
                    if name_is_refused(&name) {
                        return Err(refused(format!(
                            "line {}, column {}: `{name}` reaches outside the computation (files, processes, environment, plotting, debugger or code from strings) and is not allowed",
                            p.line, p.column
                        )));
                    }
                    if name == "default" {
                        check_default(&pieces, at)?;
                    }
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn is_refused(code: &str) -> bool {
        matches!(check(code), Err(Rejection::Refused { .. }))
    }

    #[test]
    fn ordinary_number_theory_passes() {
        for code in [
            "factor(2^128+1)",
            "isprime(2^127-1)",
            "qfbclassno(-23)",
            "quadclassunit(-4*5).no",
            "E = ellinit([0,-1,1,-10,-20]); ellap(E, 5)",
            "\\p 100\nPi",
            "default(realprecision, 50); Pi",
            "default(\"realprecision\", 50)",
            "default(realprecision)",
            "f(n) = n^2 \\\\ square\nf(12)",
            "{\n  s = 0;\n  for(i = 1, 10, s += i);\n  s\n}",
            "7 \\ 2",
            "print(\"system(1) is only text\")",
            "a = 2; /* comment */ a^10",
            "[1,2;3,4]^-1",
            "x^2 + 1",
            "readme_like_variable_name = 1",
        ] {
            if code == "readme_like_variable_name = 1" {
                // Conservative by design: the `read` family is refused as a prefix.
                assert!(is_refused(code), "{code}");
                continue;
            }
            assert_eq!(check(code), Ok(()), "{code}");
        }
    }

    #[test]
    fn every_outside_reaching_name_is_refused() {
        let attacks = [
            "system(\"touch /tmp/pwned\")",
            "extern(\"echo hi\")",
            "externstr(\"echo hi\")",
            "readstr(\"/etc/passwd\")",
            "read(\"/etc/passwd\")",
            "readvec(\"/etc/passwd\")",
            "install(\"system\", \"vs\")",
            "write(\"/tmp/x\", 1)",
            "write1(\"/tmp/x\", 1)",
            "writebin(\"/tmp/x\", 1)",
            "writetex(\"/tmp/x\", 1)",
            "getenv(\"HOME\")",
            "strexpand(\"$HOME\")",
            "Strexpand(\"~\")",
            "fileopen(\"/etc/passwd\")",
            "fileread(f)",
            "filewrite(f, 1)",
            "filewrite1(f, 1)",
            "fileextern(\"ls\")",
            "fileclose(f)",
            "fileflush(f)",
            "filereadstr(f)",
            "alias(s, system)",
            "eval(\"1+1\")",
            "eval(Str(\"sys\", \"tem(1)\"))",
            "plot(x=0,1,x)",
            "ploth(x=0,1,x)",
            "plotinit(0)",
            "psplot(x=0,1,x)",
            "psploth(x=0,1,x)",
            "parploth(x=0,1,x)",
            "kill(x)",
            "dbg_x(1)",
            "breakpoint()",
            "input()",
            "quit",
            "exit(0)",
            "allocatemem(10^9)",
            "trap(, 1)",
            "default(secure, 0)",
            "default(\"secure\", 0)",
            "default(logfile, \"/tmp/log\")",
            "default(psfile, \"/tmp/x\")",
            "default(histfile, \"/tmp/x\")",
            "default(datadir, \"/\")",
            "default(path, \"/\")",
            "default(help, \"sh\")",
            "default(prettyprinter, \"sh\")",
            "default(sopath, \"/\")",
            "default(readline, 1)",
            "default(parisizemax, 10^12)",
            "default()",
            "default",
            "d = default; d(\"secure\", 0)",
            "default(Str(\"sec\",\"ure\"), 0)",
            "?system",
            "\\l /tmp/log",
            "\\w /tmp/out",
            "\\r /etc/passwd",
            "\\q",
            "\\e",
            "\\o 0",
            "\\p 30; system(\"ls\")",
            "  \\r /etc/passwd",
            "{\n\\r /etc/passwd\n}",
        ];
        for code in attacks {
            assert!(
                is_refused(code),
                "not refused: {code:?} -> {:?}",
                check(code)
            );
        }
    }

    #[test]
    fn names_split_by_comments_spaces_or_continuations_are_still_seen() {
        for code in [
            "sys tem(\"ls\")",
            "sys/* hide */tem(\"ls\")",
            "sys\\\ntem(\"ls\")",
            "sys\\   \ntem(\"ls\")",
            "{ a = sys\ntem(\"ls\") }",
            "{ a = sys \\\\ comment\ntem(\"ls\") }",
            "f = system; f(\"ls\")",
            "2system(\"ls\")",
            "x.system",
            "sys\ttem(\"ls\")",
            "wri/**/te(\"/tmp/x\",1)",
            "de fault(secure, 0)",
            "default (secure, 0)",
            "default(/**/secure, 0)",
            "default(sec\\\nure, 0)",
        ] {
            assert!(
                is_refused(code),
                "not refused: {code:?} -> {:?}",
                check(code)
            );
        }
    }

    #[test]
    fn names_inside_strings_or_comments_are_not_calls() {
        for code in [
            "print(\"system\")",
            "\\\\ system(\"ls\")\n1+1",
            "/* system(\"ls\") */ 1+1",
            "s = \"a\\\"system(1)\"; #s",
        ] {
            assert_eq!(check(code), Ok(()), "{code}");
        }
    }

    #[test]
    fn malformed_structure_is_invalid_input_with_a_location() {
        let cases = [
            ("print(\"abc)", 1, 7),
            ("1+1\n/* open", 2, 1),
            ("{ 1+1", 1, 1),
            ("1 }", 1, 3),
        ];
        for (code, line, column) in cases {
            match check(code) {
                Err(Rejection::InvalidInput {
                    location: Some(loc),
                    ..
                }) => {
                    assert_eq!((loc.line, loc.column), (line, Some(column)), "{code}")
                }
                other => panic!("{code}: {other:?}"),
            }
        }
    }

    #[test]
    fn non_ascii_outside_strings_is_invalid_but_fine_inside() {
        for code in [
            "\u{ff53}\u{ff59}\u{ff53}tem(1)",
            "sys\u{a0}tem(1)",
            "\u{e9} = 1",
        ] {
            assert!(
                matches!(check(code), Err(Rejection::InvalidInput { .. })),
                "{code}: {:?}",
                check(code)
            );
        }
        assert_eq!(check("print(\"caf\u{e9}\")"), Ok(()));
    }

    #[test]
    fn a_trailing_backslash_cannot_join_what_follows() {
        // The continuation is consumed by the filter; the statement ends with the input.
        let statements = filtered_statements("1+\\");
        assert_eq!(statements.len(), 1);
        assert_eq!(statements[0].text, "1+");
    }

    #[test]
    fn filtered_text_matches_what_gp_quotes() {
        let statements = filtered_statements("a = 1\n  f( 1 ,\\\n 2 )  \\\\ c\n");
        let texts: Vec<&str> = statements.iter().map(|s| s.text.as_str()).collect();
        assert_eq!(texts, ["a=1", "f(1,2)"]);
        assert_eq!(statements[1].positions[0], (2, 3));
        assert_eq!(statements[1].positions[4], (3, 2));
    }
}
