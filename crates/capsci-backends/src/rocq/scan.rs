//! What capsci reads from the sources before compiling: each file's `Require`s (for the
//! compilation order) and its named theorems (for the per-theorem `Print Assumptions`), with
//! whether each ended in `Admitted`.

use super::lexer::{command_tokens, Sentence, Token};
use super::project::SourceFile;
use std::collections::{BTreeMap, BTreeSet};

/// A theorem found in a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TheoremDecl {
    /// Name relative to the file's module (`M.thm` inside `Module M`).
    pub name: String,
    /// Whether its proof ended in `Admitted`.
    pub admitted: bool,
    /// Whether the name is reachable from outside the file (not inside a module type, a functor
    /// or a module sealed by `:`).
    pub visible: bool,
    /// 1-based line of the statement.
    pub line: u32,
}

/// What a file declares.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FileScan {
    /// Theorems, in order.
    pub theorems: Vec<TheoremDecl>,
    /// Whether any `Admitted` or `Admit Obligations` occurs.
    pub admits: bool,
    /// Logical names the file `Require`s (`From P Require A` gives `P` and `A`).
    pub requires: Vec<(Option<String>, String)>,
}

const THEOREM_WORDS: [&str; 8] = [
    "Theorem",
    "Lemma",
    "Fact",
    "Remark",
    "Corollary",
    "Proposition",
    "Property",
    "Example",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scope {
    Module,
    Hidden,
    Section,
}

/// Scans a file's sentences.
pub fn scan(sentences: &[Sentence]) -> FileScan {
    let mut out = FileScan::default();
    let mut scopes: Vec<(Scope, String)> = Vec::new();
    let mut open: Option<usize> = None;
    for s in sentences {
        let cmd = command_tokens(&s.tokens);
        let word = |k: usize| cmd.get(k).and_then(Token::ident).unwrap_or("");
        let has_assign = cmd.iter().any(|t| t.is_sym(":"))
            && cmd.windows(2).any(|w| w[0].is_sym(":") && w[1].is_sym("="));
        match word(0) {
            "Module" | "Section" => {
                let is_type = word(1) == "Type";
                let mut k = 1;
                while matches!(word(k), "Type" | "Import" | "Export") {
                    k += 1;
                }
                let name = word(k).to_string();
                if word(0) == "Section" {
                    scopes.push((Scope::Section, name));
                } else if !has_assign {
                    let functor = cmd.get(k + 1).is_some_and(|t| t.is_sym("("));
                    let sealed = cmd.get(k + 1).is_some_and(|t| t.is_sym(":"));
                    let scope = if is_type || functor || sealed {
                        Scope::Hidden
                    } else {
                        Scope::Module
                    };
                    scopes.push((scope, name));
                }
            }
            "End" => {
                scopes.pop();
            }
            "Admitted" => {
                out.admits = true;
                if let Some(i) = open.take() {
                    out.theorems[i].admitted = true;
                }
            }
            "Qed" | "Defined" | "Save" => {
                open = None;
            }
            "Abort" => {
                if let Some(i) = open.take() {
                    out.theorems.remove(i);
                }
            }
            "Admit" if word(1) == "Obligations" => out.admits = true,
            "Require" | "From" => {
                let (from, rest) = if word(0) == "From" {
                    (Some(word(1).to_string()), cmd.get(2..).unwrap_or(&[]))
                } else {
                    (None, cmd)
                };
                let mut names = rest.iter().skip_while(|t| !t.is("Require")).skip(1);
                let mut first = true;
                for t in names.by_ref() {
                    match t {
                        Token::Ident(w) if first && (w == "Import" || w == "Export") => {}
                        Token::Ident(w) => out.requires.push((from.clone(), w.clone())),
                        _ => {}
                    }
                    first = false;
                }
            }
            w if THEOREM_WORDS.contains(&w) => {
                let name = word(1);
                if name.is_empty() {
                    continue;
                }
                let hidden = scopes.iter().any(|(k, _)| *k == Scope::Hidden);
                let path: Vec<&str> = scopes
                    .iter()
                    .filter(|(k, _)| *k != Scope::Section)
                    .map(|(_, n)| n.as_str())
                    .chain(std::iter::once(name))
                    .collect();
                out.theorems.push(TheoremDecl {
                    name: path.join("."),
                    admitted: false,
                    visible: !hidden,
                    line: s.line,
                });
                // `Lemma x : T := term.` has no proof block.
                open = if has_assign {
                    None
                } else {
                    Some(out.theorems.len() - 1)
                };
            }
            _ => {}
        }
    }
    out
}

/// Why the files cannot be put in order.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OrderError {
    /// The `Require`s form a cycle.
    #[error("the files require each other in a cycle: {0}")]
    Cycle(String),
}

/// Which project module a `Require` names, if any (standard-library names match nothing).
fn resolve(from: &Option<String>, name: &str, modules: &[&str]) -> Vec<usize> {
    let full = match from {
        Some(f) => format!("{f}.{name}"),
        None => name.to_string(),
    };
    modules
        .iter()
        .enumerate()
        .filter(|(_, m)| {
            **m == full
                || m.ends_with(&format!(".{full}"))
                || from.as_ref().is_some_and(|f| {
                    m.starts_with(&format!("{f}.")) && m.ends_with(&format!(".{name}"))
                })
        })
        .map(|(i, _)| i)
        .collect()
}

/// Orders the files so that each comes after the project files it `Require`s (stable: files
/// keep the project's order where the dependencies allow).
pub fn order(files: &[SourceFile], scans: &[FileScan]) -> Result<Vec<usize>, OrderError> {
    let modules: Vec<&str> = files.iter().map(|f| f.module.as_str()).collect();
    let mut deps: Vec<BTreeSet<usize>> = vec![BTreeSet::new(); files.len()];
    for (i, scan) in scans.iter().enumerate() {
        for (from, name) in &scan.requires {
            for j in resolve(from, name, &modules) {
                if j != i {
                    deps[i].insert(j);
                }
            }
        }
    }
    let mut done = vec![false; files.len()];
    let mut out = Vec::new();
    while out.len() < files.len() {
        let next = (0..files.len()).find(|&i| !done[i] && deps[i].iter().all(|&d| done[d]));
        match next {
            Some(i) => {
                done[i] = true;
                out.push(i);
            }
            None => {
                let stuck: Vec<&str> = (0..files.len())
                    .filter(|&i| !done[i])
                    .map(|i| files[i].path.as_str())
                    .collect();
                return Err(OrderError::Cycle(stuck.join(", ")));
            }
        }
    }
    Ok(out)
}

/// Fully qualified names of every admitted theorem, for telling admitted lemmas from axioms in
/// `Print Assumptions` output.
pub fn admitted_names(files: &[SourceFile], scans: &[FileScan]) -> BTreeMap<String, ()> {
    let mut out = BTreeMap::new();
    for (f, s) in files.iter().zip(scans) {
        for t in s.theorems.iter().filter(|t| t.admitted) {
            out.insert(qualify(&f.module, &t.name), ());
        }
    }
    out
}

/// `module.name`, or `name` for the empty module prefix.
pub fn qualify(module: &str, name: &str) -> String {
    if module.is_empty() {
        name.to_string()
    } else {
        format!("{module}.{name}")
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::rocq::lexer::sentences;

    fn scan_text(t: &str) -> FileScan {
        scan(&sentences(t).unwrap())
    }

    #[test]
    fn finds_theorems_modules_and_admitted() {
        let s = scan_text(
            "Require Import Arith.\nFrom Coq Require Import Lia.\nModule M.\nLemma a : True. Proof. exact I. Qed.\nEnd M.\n\
             Section S. Variable n : nat. Theorem b : n = n. Proof. reflexivity. Qed. End S.\n\
             Lemma c : 1 = 2. Proof. admit. Admitted.\nModule Type T. Parameter x : nat. Lemma d : x = x. Admitted. End T.\n\
             Module F (X : T). Lemma e : X.x = X.x. Proof. reflexivity. Qed. End F.\nLemma g : True := I.\n\
             Lemma h : False. Abort.\nModule N := M.\n#[local] Lemma i : True. Proof. exact I. Defined.",
        );
        let names: Vec<_> = s
            .theorems
            .iter()
            .map(|t| (t.name.as_str(), t.admitted, t.visible))
            .collect();
        assert_eq!(
            names,
            vec![
                ("M.a", false, true),
                ("b", false, true),
                ("c", true, true),
                ("T.d", true, false),
                ("F.e", false, false),
                ("g", false, true),
                ("i", false, true)
            ]
        );
        assert!(s.admits);
        assert_eq!(
            s.requires,
            vec![
                (None, "Arith".to_string()),
                (Some("Coq".to_string()), "Lia".to_string())
            ]
        );
    }

    #[test]
    fn orders_by_requires_and_finds_cycles() {
        let f = |p: &str, m: &str, t: &str| SourceFile {
            path: p.into(),
            module: m.into(),
            text: t.into(),
        };
        let files = vec![
            f("B.v", "P.B", "Require Import P.A."),
            f("A.v", "P.A", "Require Import Arith."),
            f("C.v", "P.C", "From P Require Import B A."),
        ];
        let scans: Vec<_> = files.iter().map(|x| scan_text(&x.text)).collect();
        assert_eq!(order(&files, &scans).unwrap(), vec![1, 0, 2]);
        let cyc = vec![f("A.v", "A", "Require B."), f("B.v", "B", "Require A.")];
        let scans: Vec<_> = cyc.iter().map(|x| scan_text(&x.text)).collect();
        assert!(order(&cyc, &scans).is_err());
    }
}
