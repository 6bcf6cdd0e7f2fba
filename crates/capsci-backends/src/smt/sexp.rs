//! A small SMT-LIB 2 S-expression reader.
//!
//! It knows exactly what capsci needs to find commands in a script and read a solver's answers:
//! parentheses, `"strings"` with `""` escapes, `|quoted symbols|`, `;` comments, and atoms. Every
//! expression keeps its byte span and 1-based line so commands can be blanked out or quoted back
//! exactly as the user wrote them.

use thiserror::Error;

/// One S-expression with where it sits in the source text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sexp {
    /// A symbol, keyword, numeral, decimal, `#x`/`#b` literal or string, as written.
    Atom {
        /// The atom's text exactly as in the source (strings keep their quotes).
        text: String,
        /// Byte offsets `[start, end)` in the source.
        span: (usize, usize),
        /// 1-based line of its first byte.
        line: u32,
    },
    /// A parenthesised list.
    List {
        /// The elements.
        items: Vec<Sexp>,
        /// Byte offsets `[start, end)` in the source, parentheses included.
        span: (usize, usize),
        /// 1-based line of the opening parenthesis.
        line: u32,
    },
}

/// Why a text is not a sequence of S-expressions.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum SexpError {
    /// A `)` with no matching `(`.
    #[error("line {line}: unexpected ')'")]
    UnexpectedClose {
        /// 1-based line.
        line: u32,
    },
    /// A `(` never closed.
    #[error("line {line}: '(' is never closed")]
    Unclosed {
        /// 1-based line of the `(`.
        line: u32,
    },
    /// A string literal that never ends.
    #[error("line {line}: unterminated string literal")]
    UnterminatedString {
        /// 1-based line where it starts.
        line: u32,
    },
    /// A `|quoted symbol|` that never ends.
    #[error("line {line}: unterminated quoted symbol")]
    UnterminatedSymbol {
        /// 1-based line where it starts.
        line: u32,
    },
}

impl SexpError {
    /// The 1-based line the error points at.
    pub fn line(&self) -> u32 {
        match self {
            SexpError::UnexpectedClose { line }
            | SexpError::Unclosed { line }
            | SexpError::UnterminatedString { line }
            | SexpError::UnterminatedSymbol { line } => *line,
        }
    }
}

impl Sexp {
    /// The byte span `[start, end)` in the source.
    pub fn span(&self) -> (usize, usize) {
        match self {
            Sexp::Atom { span, .. } | Sexp::List { span, .. } => *span,
        }
    }

    /// The 1-based line where the expression starts.
    pub fn line(&self) -> u32 {
        match self {
            Sexp::Atom { line, .. } | Sexp::List { line, .. } => *line,
        }
    }

    /// The atom's text, or `None` for a list.
    pub fn atom(&self) -> Option<&str> {
        match self {
            Sexp::Atom { text, .. } => Some(text),
            Sexp::List { .. } => None,
        }
    }

    /// The list's items, or `None` for an atom.
    pub fn list(&self) -> Option<&[Sexp]> {
        match self {
            Sexp::List { items, .. } => Some(items),
            Sexp::Atom { .. } => None,
        }
    }

    /// The symbol's name with `|...|` quoting removed (`|a b|` and `a b` name the same symbol).
    pub fn symbol(&self) -> Option<&str> {
        let text = self.atom()?;
        if text.starts_with('"') {
            return None;
        }
        Some(unquote_symbol(text))
    }

    /// The first item's symbol when this is a list headed by a symbol (`assert`, `check-sat`, ...).
    pub fn head(&self) -> Option<&str> {
        self.list()?.first()?.symbol()
    }

    /// The source text of this expression.
    pub fn text<'a>(&self, source: &'a str) -> &'a str {
        let (start, end) = self.span();
        source.get(start..end).unwrap_or("")
    }

    /// The decoded contents of a string literal (`"a""b"` is `a"b`), or `None` for anything else.
    pub fn string_value(&self) -> Option<String> {
        let text = self.atom()?;
        let inner = text.strip_prefix('"')?.strip_suffix('"')?;
        Some(inner.replace("\"\"", "\""))
    }
}

/// Removes `|...|` quoting from a symbol, if present.
pub fn unquote_symbol(text: &str) -> &str {
    text.strip_prefix('|')
        .and_then(|t| t.strip_suffix('|'))
        .unwrap_or(text)
}

/// Quotes a symbol with `|...|` when it is not a simple symbol.
pub fn quote_symbol(name: &str) -> String {
    let simple = !name.is_empty()
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "~!@$%^&*_-+=<>.?/".contains(c));
    if simple {
        name.to_string()
    } else {
        format!("|{name}|")
    }
}

/// Reads every top-level S-expression of `source`.
pub fn parse_all(source: &str) -> Result<Vec<Sexp>, SexpError> {
    let mut reader = Reader {
        bytes: source.as_bytes(),
        source,
        pos: 0,
        line: 1,
    };
    let mut out = Vec::new();
    // Open lists: (items, start offset, start line).
    let mut stack: Vec<(Vec<Sexp>, usize, u32)> = Vec::new();
    loop {
        reader.skip_blank();
        let Some(&byte) = reader.bytes.get(reader.pos) else {
            break;
        };
        let item = match byte {
            b'(' => {
                stack.push((Vec::new(), reader.pos, reader.line));
                reader.pos += 1;
                continue;
            }
            b')' => {
                let Some((items, start, line)) = stack.pop() else {
                    return Err(SexpError::UnexpectedClose { line: reader.line });
                };
                reader.pos += 1;
                Sexp::List {
                    items,
                    span: (start, reader.pos),
                    line,
                }
            }
            _ => reader.atom()?,
        };
        match stack.last_mut() {
            Some((items, _, _)) => items.push(item),
            None => out.push(item),
        }
    }
    if let Some((_, _, line)) = stack.first() {
        return Err(SexpError::Unclosed { line: *line });
    }
    Ok(out)
}

struct Reader<'a> {
    bytes: &'a [u8],
    source: &'a str,
    pos: usize,
    line: u32,
}

impl Reader<'_> {
    fn skip_blank(&mut self) {
        while let Some(&b) = self.bytes.get(self.pos) {
            match b {
                b'\n' => {
                    self.line += 1;
                    self.pos += 1;
                }
                b';' => {
                    while let Some(&c) = self.bytes.get(self.pos) {
                        if c == b'\n' {
                            break;
                        }
                        self.pos += 1;
                    }
                }
                b if b.is_ascii_whitespace() => self.pos += 1,
                _ => break,
            }
        }
    }

    fn atom(&mut self) -> Result<Sexp, SexpError> {
        let start = self.pos;
        let line = self.line;
        match self.bytes.get(self.pos) {
            Some(b'"') => {
                self.pos += 1;
                loop {
                    match self.bytes.get(self.pos) {
                        None => return Err(SexpError::UnterminatedString { line }),
                        Some(b'"') if self.bytes.get(self.pos + 1) == Some(&b'"') => self.pos += 2,
                        Some(b'"') => {
                            self.pos += 1;
                            break;
                        }
                        Some(b'\n') => {
                            self.line += 1;
                            self.pos += 1;
                        }
                        Some(_) => self.pos += 1,
                    }
                }
            }
            Some(b'|') => {
                self.pos += 1;
                loop {
                    match self.bytes.get(self.pos) {
                        None => return Err(SexpError::UnterminatedSymbol { line }),
                        Some(b'|') => {
                            self.pos += 1;
                            break;
                        }
                        Some(b'\n') => {
                            self.line += 1;
                            self.pos += 1;
                        }
                        Some(_) => self.pos += 1,
                    }
                }
            }
            _ => {
                while let Some(&b) = self.bytes.get(self.pos) {
                    if b.is_ascii_whitespace() || matches!(b, b'(' | b')' | b';' | b'"' | b'|') {
                        break;
                    }
                    self.pos += 1;
                }
            }
        }
        let text = self.source.get(start..self.pos).unwrap_or("").to_string();
        Ok(Sexp::Atom {
            text,
            span: (start, self.pos),
            line,
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn reads_commands_with_spans_and_lines() {
        let src = "(set-logic QF_LIA) ; a comment (with parens\n(declare-const |x y| Int)\n(assert (> |x y| 2))";
        let all = parse_all(src).unwrap();
        assert_eq!(all.len(), 3);
        assert_eq!(all[0].head(), Some("set-logic"));
        assert_eq!(all[1].line(), 2);
        assert_eq!(all[1].list().unwrap()[1].symbol(), Some("x y"));
        assert_eq!(all[2].text(src), "(assert (> |x y| 2))");
        assert_eq!(all[2].line(), 3);
    }

    #[test]
    fn strings_keep_doubled_quotes_and_parens() {
        let src = "(echo \"a \"\"(b\"\" ;c\")";
        let all = parse_all(src).unwrap();
        let s = &all[0].list().unwrap()[1];
        assert_eq!(s.string_value().as_deref(), Some("a \"(b\" ;c"));
        assert_eq!(s.symbol(), None);
    }

    #[test]
    fn unbalanced_input_is_an_error_with_its_line() {
        assert_eq!(
            parse_all("(assert\n(> x 1)").unwrap_err(),
            SexpError::Unclosed { line: 1 }
        );
        assert_eq!(
            parse_all("\n\n)").unwrap_err(),
            SexpError::UnexpectedClose { line: 3 }
        );
        assert_eq!(parse_all("(echo \"x)").unwrap_err().line(), 1);
        assert_eq!(
            parse_all("\n(|x)").unwrap_err(),
            SexpError::UnterminatedSymbol { line: 2 }
        );
    }

    #[test]
    fn symbols_are_quoted_only_when_needed() {
        assert_eq!(quote_symbol("x!1"), "x!1");
        assert_eq!(quote_symbol("a b"), "|a b|");
        assert_eq!(quote_symbol("1x"), "|1x|");
        assert_eq!(unquote_symbol("|a b|"), "a b");
    }
}
