//! Lean 4 source handling that needs no toolchain: comment/string-aware scanning, the input
//! policy, the theorem scan, and the generated `#print axioms` file.

/// Lean source with comments (`--` to end of line, nested `/- -/`) and string literals blanked
/// to spaces, newlines kept, so that line numbers stay right and words inside comments or strings
/// are never taken for commands.
pub fn strip(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    let blank = |c: char| if c == '\n' { '\n' } else { ' ' };
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c == '-' && next == Some('-') {
            while i < chars.len() && chars[i] != '\n' {
                out.push(' ');
                i += 1;
            }
        } else if c == '/' && next == Some('-') {
            let mut depth = 0;
            while i < chars.len() {
                if chars[i] == '/' && chars.get(i + 1) == Some(&'-') {
                    depth += 1;
                    out.push_str("  ");
                    i += 2;
                } else if chars[i] == '-' && chars.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    out.push_str("  ");
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    out.push(blank(chars[i]));
                    i += 1;
                }
            }
        } else if c == '"' {
            out.push(' ');
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                if chars[i] == '\\' {
                    out.push(' ');
                    i += 1;
                }
                if i < chars.len() {
                    out.push(blank(chars[i]));
                    i += 1;
                }
            }
            out.push(' ');
            i += 1;
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

/// A refused command: line and the word.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeanRefusal {
    /// 1-based line.
    pub line: u32,
    /// The refused word.
    pub word: String,
}

/// Words that run code while the file is elaborated (Lean's metaprograms may do IO) or reach
/// native code; refused before any process starts. The sandbox would contain them too.
const REFUSED: [&str; 14] = [
    "#eval",
    "#exit",
    "run_cmd",
    "run_elab",
    "run_meta",
    "elab",
    "elab_rules",
    "initialize",
    "builtin_initialize",
    "unsafe",
    "implemented_by",
    "extern",
    "IO.Process",
    "IO.FS",
];

/// The first refused word of a file, if any (after comments and strings are blanked).
pub fn refusal(text: &str) -> Option<LeanRefusal> {
    let clean = strip(text);
    for (n, line) in clean.lines().enumerate() {
        for word in line.split(|c: char| c.is_whitespace() || "()[]{},:@".contains(c)) {
            if REFUSED
                .iter()
                .any(|r| word == *r || word.starts_with(&format!("{r}.")))
            {
                return Some(LeanRefusal {
                    line: n as u32 + 1,
                    word: word.to_string(),
                });
            }
        }
    }
    None
}

/// Fully qualified names of the `theorem`/`lemma` declarations (tracking `namespace X` ...
/// `end X`; `private` ones are skipped, they cannot be named from another file).
pub fn theorems(text: &str) -> Vec<String> {
    let clean = strip(text);
    let mut ns: Vec<String> = Vec::new();
    let mut out = Vec::new();
    for line in clean.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["namespace", name, ..] => ns.push((*name).to_string()),
            ["end", name, ..] if ns.last().map(String::as_str) == Some(*name) => {
                ns.pop();
            }
            ["private", ..] => {}
            [kw, name, ..] | ["protected", kw, name, ..] if *kw == "theorem" || *kw == "lemma" => {
                let mut full = ns.join(".");
                if !full.is_empty() {
                    full.push('.');
                }
                full.push_str(name);
                out.push(full);
            }
            _ => {}
        }
    }
    out
}

/// The generated file: imports every module, then `#print axioms` per theorem.
pub fn axioms_file(modules: &[String], theorems: &[String]) -> String {
    let mut s = String::new();
    for m in modules {
        s.push_str(&format!("import {m}\n"));
    }
    for t in theorems {
        s.push_str(&format!("#print axioms {t}\n"));
    }
    s
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn policy_skips_comments_and_strings() {
        assert_eq!(refusal("-- #eval IO.println 1\ndef s := \"#eval\"\n/- run_cmd /- x -/ -/\ntheorem t : True := trivial"), None);
        assert_eq!(
            refusal("theorem t : True := trivial\n#eval (IO.Process.run {cmd := \"sh\"})")
                .unwrap()
                .line,
            2
        );
        assert_eq!(
            refusal("@[implemented_by foo] def f := 1").unwrap().word,
            "implemented_by"
        );
    }

    #[test]
    fn finds_theorems_in_namespaces() {
        let t = theorems("namespace A\ntheorem x : True := trivial\nprivate theorem h : True := trivial\nend A\nlemma y : 1 = 1 := rfl\n-- theorem z\n");
        assert_eq!(t, vec!["A.x", "y"]);
        assert_eq!(
            axioms_file(&["Main".into()], &t),
            "import Main\n#print axioms A.x\n#print axioms y\n"
        );
    }
}
