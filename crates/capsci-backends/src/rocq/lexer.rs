//! A Rocq sentence splitter: skips nested comments `(* *)` and strings, so that the input
//! policy, the dependency scan and the theorem scan see only real commands.
//!
//! It is deliberately small and conservative: it does not parse Gallina, it only finds where
//! sentences end (a `.` followed by white space or the end of the file) and splits each sentence
//! into identifier, string and symbol tokens with their line numbers.

/// One token of a sentence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Token {
    /// An identifier or qualified name (`Coq.Arith.PeanoNat`, `x'`, `_H1`).
    Ident(String),
    /// A string literal, unescaped (`""` inside is a quote).
    Str(String),
    /// Any other character run (punctuation, operators, numbers are idents).
    Sym(String),
}

impl Token {
    /// The identifier text, if this is an identifier.
    pub fn ident(&self) -> Option<&str> {
        match self {
            Token::Ident(s) => Some(s),
            _ => None,
        }
    }

    /// Whether this is the identifier `word`.
    pub fn is(&self, word: &str) -> bool {
        self.ident() == Some(word)
    }

    /// Whether this is the symbol `sym`.
    pub fn is_sym(&self, sym: &str) -> bool {
        matches!(self, Token::Sym(s) if s == sym)
    }
}

/// One sentence: its tokens and where it starts and ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sentence {
    /// The tokens, comments removed.
    pub tokens: Vec<Token>,
    /// 1-based line of the first token.
    pub line: u32,
    /// 1-based column of the first token.
    pub column: u32,
    /// 1-based line of the terminating `.` (or of the end of the file).
    pub end_line: u32,
    /// Byte offset just past the terminating `.`.
    pub end_offset: usize,
}

/// Why the text could not be split into sentences.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LexError {
    /// A comment was opened and never closed.
    #[error("line {line}: comment not terminated")]
    UnterminatedComment {
        /// Where the comment opened.
        line: u32,
    },
    /// A string was opened and never closed.
    #[error("line {line}: string not terminated")]
    UnterminatedString {
        /// Where the string opened.
        line: u32,
    },
}

impl LexError {
    /// The 1-based line the error points at.
    pub fn line(&self) -> u32 {
        match self {
            LexError::UnterminatedComment { line } | LexError::UnterminatedString { line } => *line,
        }
    }
}

fn is_ident_start(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

fn is_ident_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_' || c == '\''
}

/// Splits `text` into sentences. A trailing fragment without a final `.` is returned as a last
/// sentence too (coqc will reject it; the policy still sees it).
pub fn sentences(text: &str) -> Result<Vec<Sentence>, LexError> {
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    let n = chars.len();
    let mut out = Vec::new();
    let mut tokens: Vec<Token> = Vec::new();
    let mut start: Option<(u32, u32)> = None;
    let mut line: u32 = 1;
    let mut col: u32 = 1;
    let mut i = 0;
    let at = |i: usize| chars.get(i).map(|&(_, c)| c);
    // Advances over chars[i], keeping line/col.
    macro_rules! bump {
        () => {{
            if at(i) == Some('\n') {
                line += 1;
                col = 1;
            } else {
                col += 1;
            }
            i += 1;
        }};
    }
    while i < n {
        let c = chars[i].1;
        if c.is_whitespace() {
            bump!();
            continue;
        }
        if c == '(' && at(i + 1) == Some('*') {
            let open_line = line;
            let mut depth = 0u32;
            loop {
                match (at(i), at(i + 1)) {
                    (None, _) => return Err(LexError::UnterminatedComment { line: open_line }),
                    (Some('('), Some('*')) => {
                        depth += 1;
                        bump!();
                        bump!();
                    }
                    (Some('*'), Some(')')) => {
                        depth -= 1;
                        bump!();
                        bump!();
                        if depth == 0 {
                            break;
                        }
                    }
                    (Some('"'), _) => {
                        // Strings inside comments are lexed as strings (a `*)` in one does not
                        // close the comment), as Coq's lexer does.
                        let sline = line;
                        bump!();
                        loop {
                            match (at(i), at(i + 1)) {
                                (None, _) => {
                                    return Err(LexError::UnterminatedString { line: sline })
                                }
                                (Some('"'), Some('"')) => {
                                    bump!();
                                    bump!();
                                }
                                (Some('"'), _) => {
                                    bump!();
                                    break;
                                }
                                _ => bump!(),
                            }
                        }
                    }
                    _ => bump!(),
                }
            }
            continue;
        }
        if start.is_none() {
            start = Some((line, col));
        }
        if c == '"' {
            let sline = line;
            bump!();
            let mut s = String::new();
            loop {
                match (at(i), at(i + 1)) {
                    (None, _) => return Err(LexError::UnterminatedString { line: sline }),
                    (Some('"'), Some('"')) => {
                        s.push('"');
                        bump!();
                        bump!();
                    }
                    (Some('"'), _) => {
                        bump!();
                        break;
                    }
                    (Some(ch), _) => {
                        s.push(ch);
                        bump!();
                    }
                }
            }
            tokens.push(Token::Str(s));
            continue;
        }
        if is_ident_start(c) {
            let mut s = String::new();
            loop {
                match at(i) {
                    Some(ch) if is_ident_char(ch) => {
                        s.push(ch);
                        bump!();
                    }
                    Some('.') if at(i + 1).is_some_and(is_ident_start) => {
                        s.push('.');
                        bump!();
                    }
                    _ => break,
                }
            }
            tokens.push(Token::Ident(s));
            continue;
        }
        if c == '.' {
            let next = at(i + 1);
            let prev_dot = i > 0 && chars[i - 1].1 == '.';
            let ends = (next.is_none() || next.is_some_and(char::is_whitespace)) && !prev_dot;
            if ends {
                let end_line = line;
                bump!();
                let (l, c0) = start.take().unwrap_or((end_line, 1));
                let end_offset = chars.get(i).map_or(text.len(), |&(o, _)| o);
                out.push(Sentence {
                    tokens: std::mem::take(&mut tokens),
                    line: l,
                    column: c0,
                    end_line,
                    end_offset,
                });
                continue;
            }
        }
        // A symbol: one character, except `#[` kept together for attributes.
        let mut s = String::from(c);
        bump!();
        if c == '#' && at(i) == Some('[') {
            s.push('[');
            bump!();
        }
        tokens.push(Token::Sym(s));
    }
    if let Some((l, c0)) = start {
        out.push(Sentence {
            tokens,
            line: l,
            column: c0,
            end_line: line,
            end_offset: text.len(),
        });
    }
    Ok(out)
}

/// The sentence's tokens after the prefixes that do not change which command it is: bullets
/// and braces, goal selectors, attributes `#[...]`, locality (`Local`, `Global`, `Export`
/// as an attribute), `Polymorphic`/`Monomorphic`, `Program`, `Cumulative`, and the control
/// prefixes `Time`, `Fail`, `Succeed`, `Redirect "f"` (kept when asked), `Timeout n`,
/// `Instructions`, `Profile`.
pub fn command_tokens(tokens: &[Token]) -> &[Token] {
    let mut rest = tokens;
    loop {
        match rest {
            [Token::Sym(s), tail @ ..] if matches!(s.as_str(), "-" | "+" | "*" | "{" | "}") => {
                rest = tail
            }
            [Token::Sym(s), tail @ ..] if s == "#[" => {
                let mut depth = 1;
                let mut k = 0;
                while k < tail.len() && depth > 0 {
                    if tail[k].is_sym("[") || tail[k].is_sym("#[") {
                        depth += 1;
                    } else if tail[k].is_sym("]") {
                        depth -= 1;
                    }
                    k += 1;
                }
                rest = &tail[k..];
            }
            [Token::Ident(w), tail @ ..]
                if matches!(
                    w.as_str(),
                    "Local"
                        | "Global"
                        | "Polymorphic"
                        | "Monomorphic"
                        | "Program"
                        | "Cumulative"
                        | "NonCumulative"
                        | "Private"
                        | "Time"
                        | "Fail"
                        | "Succeed"
                        | "Instructions"
                        | "Profile"
                ) =>
            {
                rest = tail
            }
            [Token::Ident(w), Token::Ident(_), tail @ ..] if w == "Timeout" => rest = tail,
            // Goal selectors `2:`, `all:`, `[x]:`.
            [Token::Ident(_), Token::Sym(c), tail @ ..]
                if c == ":" && !tail.is_empty() && starts_lower(rest) =>
            {
                rest = tail
            }
            _ => return rest,
        }
    }
}

fn starts_lower(tokens: &[Token]) -> bool {
    match tokens.first() {
        Some(Token::Ident(w)) => w == "all" || w.chars().all(|c| c.is_ascii_digit()),
        _ => false,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn words(text: &str) -> Vec<Vec<String>> {
        sentences(text)
            .unwrap()
            .into_iter()
            .map(|s| {
                s.tokens
                    .iter()
                    .map(|t| match t {
                        Token::Ident(s) | Token::Sym(s) => s.clone(),
                        Token::Str(s) => format!("{s:?}"),
                    })
                    .collect()
            })
            .collect()
    }

    #[test]
    fn splits_sentences_and_skips_nested_comments_and_strings() {
        let text = "(* Load \"x\". (* nested *) still. *) Require Import Coq.Arith.PeanoNat.\nLemma a : 1 = 1.\nProof. reflexivity. Qed.\nCheck \"a. b\".";
        let w = words(text);
        assert_eq!(w[0], vec!["Require", "Import", "Coq.Arith.PeanoNat"]);
        assert_eq!(w[1], vec!["Lemma", "a", ":", "1", "=", "1"]);
        assert_eq!(w[2], vec!["Proof"]);
        assert_eq!(w[5], vec!["Check", "\"a. b\""]);
        let s = sentences(text).unwrap();
        assert_eq!(s[1].line, 2);
        assert_eq!(s[1].column, 1);
    }

    #[test]
    fn comment_closer_inside_string_in_comment_does_not_close_it() {
        let w = words("(* \"*)\" Load \"/etc/passwd\". *) Check 1.");
        assert_eq!(w, vec![vec!["Check", "1"]]);
    }

    #[test]
    fn doubled_quote_is_an_escaped_quote() {
        let s = sentences("Redirect \"a\"\"b\" Print nat.").unwrap();
        assert_eq!(s[0].tokens[1], Token::Str("a\"b".into()));
    }

    #[test]
    fn unterminated_comment_and_string_are_errors() {
        assert_eq!(
            sentences("Check 1. (* open").unwrap_err(),
            LexError::UnterminatedComment { line: 1 }
        );
        assert_eq!(
            sentences("\nCheck \"x.").unwrap_err(),
            LexError::UnterminatedString { line: 2 }
        );
    }

    #[test]
    fn prefixes_are_stripped() {
        let s = sentences("#[local] Time Fail Timeout 3 Load foo.").unwrap();
        assert!(command_tokens(&s[0].tokens)[0].is("Load"));
        let s = sentences("- all: Cd \"/\".").unwrap();
        assert!(command_tokens(&s[0].tokens)[0].is("Cd"));
    }

    #[test]
    fn ellipsis_does_not_end_a_sentence() {
        let w = words("Notation \"[ x ; .. ; y ]\" := (cons x .. (cons y nil) ..).");
        assert_eq!(w.len(), 1);
    }
}
