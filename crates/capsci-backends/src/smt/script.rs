//! What capsci does to an SMT-LIB script: finds its commands, simulates the assertion stack up to
//! the last `check-sat`, builds the exact bytes sent to the solver, and builds the re-check
//! scripts (model substituted into the assertions; unsat core on its own).
//!
//! Decisions, documented for users:
//! - The answer capsci reports is the one to the **last** `check-sat` (or `check-sat-assuming`);
//!   earlier answers stay visible in the solver's output artifact. A script without any
//!   `check-sat` gets one appended at the end.
//! - The user's own output commands (`get-model`, `get-value`, `get-unsat-core`, `get-info`,
//!   `echo`, ...), `(exit)` and every command after the last `check-sat` are blanked out (replaced
//!   by spaces, newlines kept), so the solver's line and column numbers still point into the
//!   user's text. capsci's own requests go after the last `check-sat`, each behind an `echo`
//!   marker so that their errors are never mistaken for errors in the input.
//! - One line of options goes before the user's text (`:produce-models`, and
//!   `:produce-unsat-cores` when the script names assertions); reported lines are shifted back.

use super::sexp::{parse_all, quote_symbol, Sexp, SexpError};
use std::collections::BTreeSet;

/// Marker echoed before each of capsci's own requests.
pub const SECTION_MARKER: &str = "capsci-section:";

/// Commands whose only effect is output; capsci removes them and asks for what it needs itself.
const OUTPUT_COMMANDS: &[&str] = &[
    "get-model",
    "get-value",
    "get-unsat-core",
    "get-unsat-assumptions",
    "get-info",
    "get-option",
    "get-assignment",
    "get-assertions",
    "get-proof",
    "get-objectives",
    "echo",
    "eval",
    "simplify",
    "display",
];

/// Commands that declare or define something the assertions rely on.
const DECLARATIONS: &[&str] = &[
    "declare-sort",
    "define-sort",
    "declare-datatype",
    "declare-datatypes",
    "declare-fun",
    "declare-const",
    "define-fun",
    "define-fun-rec",
    "define-funs-rec",
    "define-const",
];

/// An SMT-LIB script read into commands, with the assertion stack at its last `check-sat`.
#[derive(Debug, Clone)]
pub struct Script {
    source: String,
    commands: Vec<Sexp>,
    /// Indices of commands to blank out in the sent script.
    blanked: Vec<usize>,
    /// Whether the script had a `check-sat` (otherwise one is appended).
    has_check: bool,
    /// `set-logic` symbol in force at the last check, if any.
    logic: Option<String>,
    /// Declarations and assertions active at the last check, in order (command indices).
    active: Vec<usize>,
    /// Assumptions of a final `check-sat-assuming` (as source text).
    assumptions: Vec<String>,
    /// Names given with `(! e :named n)` to active top-level assertions, in order.
    named: Vec<(String, usize)>,
}

/// One `define-fun` of a solver's model, kept as text so a re-check can replay it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelDef {
    /// The defined name (unquoted).
    pub name: String,
    /// Argument list as text (`()` for constants).
    pub args: String,
    /// Argument sorts as text, for the `(-> ...)` sort of functions.
    pub arg_sorts: Vec<String>,
    /// Result sort as text.
    pub sort: String,
    /// The value (body) as text, as the solver printed it.
    pub body: String,
    /// The body as replayed in a re-check: cvc5's abstract values `(as @U_0 U)` renamed to
    /// declared constants (`capsci!U_0`).
    pub replay_body: String,
}

/// The universe part of a Z3 model over uninterpreted sorts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ModelUniverse {
    /// `(declare-fun U!val!0 () U)` lines: element name and its sort.
    pub elements: Vec<(String, String)>,
    /// The cardinality constraints (`forall` text), asserted in the re-check.
    pub constraints: Vec<String>,
}

impl Script {
    /// Reads a script. Fails only when the text is not a sequence of S-expressions.
    pub fn parse(source: &str) -> Result<Script, SexpError> {
        let commands = parse_all(source)?;
        let mut script = Script {
            source: source.to_string(),
            commands,
            blanked: Vec::new(),
            has_check: false,
            logic: None,
            active: Vec::new(),
            assumptions: Vec::new(),
            named: Vec::new(),
        };
        script.analyse();
        Ok(script)
    }

    fn analyse(&mut self) {
        let mut frames: Vec<Vec<usize>> = vec![Vec::new()];
        let mut logic: Option<String> = None;
        let mut last_check: Option<(usize, Vec<usize>, Option<String>)> = None;
        let mut exit_at: Option<usize> = None;
        for (index, command) in self.commands.iter().enumerate() {
            let head = command.head().unwrap_or("");
            match head {
                "exit" => {
                    exit_at = Some(index);
                    break;
                }
                "set-logic" => {
                    logic = command
                        .list()
                        .and_then(|items| items.get(1))
                        .and_then(Sexp::symbol)
                        .map(str::to_string);
                }
                "push" => {
                    for _ in 0..count_arg(command) {
                        frames.push(Vec::new());
                    }
                }
                "pop" => {
                    for _ in 0..count_arg(command) {
                        if frames.len() > 1 {
                            frames.pop();
                        }
                    }
                }
                "reset-assertions" => frames = vec![Vec::new()],
                "reset" => {
                    frames = vec![Vec::new()];
                    logic = None;
                }
                "assert" => push_active(&mut frames, index),
                "check-sat" | "check-sat-assuming" => {
                    let active: Vec<usize> = frames.iter().flatten().copied().collect();
                    last_check = Some((index, active, logic.clone()));
                }
                h if DECLARATIONS.contains(&h) => push_active(&mut frames, index),
                _ => {}
            }
        }
        let end = exit_at.unwrap_or(self.commands.len());
        let last_index = last_check.as_ref().map(|(i, _, _)| *i);
        for (index, command) in self.commands.iter().enumerate() {
            let head = command.head().unwrap_or("");
            let after_last = match last_index {
                Some(last) => index > last,
                None => index >= end,
            };
            if after_last || index >= end || OUTPUT_COMMANDS.contains(&head) {
                self.blanked.push(index);
            }
        }
        match last_check {
            Some((index, active, at_logic)) => {
                self.has_check = true;
                self.active = active;
                self.logic = at_logic;
                if self.commands[index].head() == Some("check-sat-assuming") {
                    if let Some(list) = self.commands[index]
                        .list()
                        .and_then(|i| i.get(1))
                        .and_then(Sexp::list)
                    {
                        self.assumptions = list
                            .iter()
                            .map(|a| a.text(&self.source).to_string())
                            .collect();
                    }
                }
            }
            None => {
                self.active = frames.iter().flatten().copied().collect();
                self.logic = logic;
            }
        }
        self.named = self
            .active
            .iter()
            .filter_map(|&i| named_assertion(&self.commands[i]).map(|n| (n, i)))
            .collect();
    }

    /// Names of the active assertions given with `(! e :named n)`, in order.
    pub fn named_assertions(&self) -> Vec<String> {
        self.named.iter().map(|(n, _)| n.clone()).collect()
    }

    /// Whether the user's script had its own `check-sat`.
    pub fn has_check_sat(&self) -> bool {
        self.has_check
    }

    /// The `set-logic` in force at the last check.
    pub fn logic(&self) -> Option<&str> {
        self.logic.as_deref()
    }

    /// The script's text.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The terms of the active assertions at the last check, in order.
    pub fn assertion_terms(&self) -> Vec<&Sexp> {
        self.active
            .iter()
            .filter(|&&i| self.commands[i].head() == Some("assert"))
            .filter_map(|&i| self.commands[i].list().and_then(|l| l.get(1)))
            .collect()
    }

    /// The assumptions of a final `check-sat-assuming`, as text.
    pub fn assumptions(&self) -> &[String] {
        &self.assumptions
    }

    /// Active zero-argument definitions (`define-fun n () S t`, `define-const n S t`): name and
    /// term.
    pub fn constant_definitions(&self) -> Vec<(String, &Sexp)> {
        self.active
            .iter()
            .filter_map(|&i| {
                let items = self.commands[i].list()?;
                let name = items.get(1)?.symbol()?.to_string();
                match self.commands[i].head()? {
                    "define-fun"
                        if items.len() == 5 && items[2].list().is_some_and(<[Sexp]>::is_empty) =>
                    {
                        Some((name, &items[4]))
                    }
                    "define-const" if items.len() == 4 => Some((name, &items[3])),
                    _ => None,
                }
            })
            .collect()
    }

    /// The names the script itself defines (`define-fun`, `define-fun-rec`, `define-const`),
    /// active at the last check.
    pub fn defined_names(&self) -> Vec<String> {
        self.active
            .iter()
            .filter_map(|&i| {
                let c = &self.commands[i];
                match c.head() {
                    Some("define-fun" | "define-fun-rec" | "define-const") => c
                        .list()
                        .and_then(|l| l.get(1))
                        .and_then(Sexp::symbol)
                        .map(str::to_string),
                    _ => None,
                }
            })
            .collect()
    }

    /// The declared names (functions and constants) active at the last check, in order.
    pub fn declared_names(&self) -> Vec<String> {
        self.active
            .iter()
            .filter_map(|&i| {
                let c = &self.commands[i];
                match c.head() {
                    Some("declare-fun" | "declare-const") => c
                        .list()
                        .and_then(|l| l.get(1))
                        .and_then(Sexp::symbol)
                        .map(str::to_string),
                    _ => None,
                }
            })
            .collect()
    }

    /// The exact bytes to send to the solver: one line of options (`backend_options`, which must
    /// not contain a newline, then `:produce-models` and, when assertions are named,
    /// `:produce-unsat-cores`), the user's text with output commands blanked, then capsci's marked
    /// requests.
    pub fn request_text(&self, backend_options: &str) -> String {
        let want_core = !self.named.is_empty();
        let mut out = backend_options.replace('\n', " ");
        out.push_str(" (set-option :produce-models true)");
        if want_core {
            out.push_str(" (set-option :produce-unsat-cores true)");
        }
        out.push('\n');
        let mut body = self.source.clone().into_bytes();
        for &i in &self.blanked {
            let (start, end) = self.commands[i].span();
            for b in body.iter_mut().take(end).skip(start) {
                if *b != b'\n' {
                    *b = b' ';
                }
            }
        }
        out.push_str(&String::from_utf8_lossy(&body));
        if !out.ends_with('\n') {
            out.push('\n');
        }
        if !self.has_check {
            out.push_str("(check-sat)\n");
        }
        let section = |name: &str| format!("(echo \"{SECTION_MARKER}{name}\")\n");
        out.push_str(&section("reason"));
        out.push_str("(get-info :reason-unknown)\n");
        out.push_str(&section("model"));
        out.push_str("(get-model)\n");
        if want_core {
            out.push_str(&section("core"));
            out.push_str("(get-unsat-core)\n");
        }
        out.push_str(&section("end"));
        out
    }

    /// The script that checks a model: the active declarations and definitions, each declared
    /// symbol the model gives a value replaced by that value's `define-fun`, every active assertion
    /// (and final assumption), then `check-sat`. With every symbol defined the assertions are
    /// closed formulas, so `sat` means every one of them holds under the model.
    pub fn model_check_text(&self, model: &[ModelDef], universe: &ModelUniverse) -> String {
        let mut out = String::new();
        // Function definitions are not expressible in every logic; ALL always is.
        out.push_str("(set-logic ALL)\n");
        let defined: BTreeSet<&str> = model.iter().map(|d| d.name.as_str()).collect();
        let declared: BTreeSet<String> = self.declared_names().into_iter().collect();
        // Universe elements need their sorts, which are declared by the user: emit them right
        // after the last declare-sort. Simplest correct order: user sorts/datatypes first.
        let mut emitted_universe = universe.elements.is_empty();
        let mut emitted_aux = false;
        let emit_universe = |out: &mut String| {
            for (name, sort) in &universe.elements {
                out.push_str(&format!("(declare-fun {} () {sort})\n", quote_symbol(name)));
            }
            let mut sorts: Vec<&str> = universe.elements.iter().map(|(_, s)| s.as_str()).collect();
            sorts.sort_unstable();
            sorts.dedup();
            for sort in sorts {
                let names: Vec<String> = universe
                    .elements
                    .iter()
                    .filter(|(_, s)| s == sort)
                    .map(|(n, _)| quote_symbol(n))
                    .collect();
                if names.len() > 1 {
                    out.push_str(&format!("(assert (distinct {}))\n", names.join(" ")));
                }
            }
            for c in &universe.constraints {
                out.push_str(&format!("(assert {c})\n"));
            }
        };
        // Sorts first (in their order), so that the universe elements can be declared before any
        // symbol or value uses them.
        let is_sort = |i: &usize| {
            matches!(
                self.commands[*i].head(),
                Some("declare-sort" | "define-sort" | "declare-datatype" | "declare-datatypes")
            )
        };
        let ordered: Vec<usize> = self
            .active
            .iter()
            .filter(|i| is_sort(i))
            .chain(self.active.iter().filter(|i| !is_sort(i)))
            .copied()
            .collect();
        for &i in &ordered {
            let command = &self.commands[i];
            let head = command.head().unwrap_or("");
            let is_sort_decl = matches!(
                head,
                "declare-sort" | "define-sort" | "declare-datatype" | "declare-datatypes"
            );
            if !is_sort_decl && !emitted_universe {
                emit_universe(&mut out);
                emitted_universe = true;
            }
            if !is_sort_decl && !emitted_aux {
                // Auxiliary definitions of the model (Z3's `k!0` for arrays, ...) that are not
                // user symbols; they may be referenced by the user symbols' values.
                for def in model.iter().filter(|d| !declared.contains(&d.name)) {
                    out.push_str(&def.define_fun());
                    out.push('\n');
                }
                emitted_aux = true;
            }
            let name = command.list().and_then(|l| l.get(1)).and_then(Sexp::symbol);
            match (head, name) {
                ("declare-fun" | "declare-const", Some(name)) if defined.contains(name) => {
                    if let Some(def) = model.iter().find(|d| d.name == name) {
                        out.push_str(&def.define_fun());
                        out.push('\n');
                    }
                }
                _ => {
                    out.push_str(command.text(&self.source));
                    out.push('\n');
                }
            }
        }
        if !emitted_universe {
            emit_universe(&mut out);
        }
        for a in &self.assumptions {
            out.push_str(&format!("(assert {a})\n"));
        }
        out.push_str("(check-sat)\n");
        out
    }

    /// The script that checks an unsat core on its own: the active declarations and definitions,
    /// only the named assertions in `core`, then `check-sat`. `None` if a name in the core is not
    /// a named assertion of the script.
    pub fn core_check_text(&self, core: &[String]) -> Option<String> {
        let wanted: BTreeSet<&str> = core.iter().map(String::as_str).collect();
        let known: BTreeSet<&str> = self.named.iter().map(|(n, _)| n.as_str()).collect();
        if !wanted.is_subset(&known) {
            return None;
        }
        let mut out = String::new();
        if let Some(logic) = &self.logic {
            out.push_str(&format!("(set-logic {})\n", quote_symbol(logic)));
        }
        for &i in &self.active {
            let command = &self.commands[i];
            let keep = match command.head() {
                Some("assert") => {
                    named_assertion(command).is_some_and(|n| wanted.contains(n.as_str()))
                }
                _ => true,
            };
            if keep {
                out.push_str(command.text(&self.source));
                out.push('\n');
            }
        }
        out.push_str("(check-sat)\n");
        Some(out)
    }
}

impl ModelDef {
    /// The `define-fun` command that gives this value.
    pub fn define_fun(&self) -> String {
        format!(
            "(define-fun {} {} {} {})",
            quote_symbol(&self.name),
            self.args,
            self.sort,
            self.replay_body
        )
    }

    /// Its sort for [`capsci_core::ModelEntry`]: the result sort for constants, `(-> A B R)` for
    /// functions.
    pub fn entry_sort(&self) -> String {
        if self.arg_sorts.is_empty() {
            self.sort.clone()
        } else {
            format!("(-> {} {})", self.arg_sorts.join(" "), self.sort)
        }
    }

    /// Its value for [`capsci_core::ModelEntry`]: the body for constants, `(lambda (args) body)`
    /// for functions.
    pub fn entry_value(&self) -> String {
        if self.arg_sorts.is_empty() {
            self.body.clone()
        } else {
            format!("(lambda {} {})", self.args, self.body)
        }
    }
}

/// Reads a `get-model` answer (Z3's or cvc5's) into definitions and the uninterpreted-sort
/// universe. Labels of named assertions (Z3 4.8 lists them as Boolean constants) are dropped.
pub fn read_model(model: &Sexp, source: &str, labels: &[String]) -> (Vec<ModelDef>, ModelUniverse) {
    let mut defs = Vec::new();
    let mut universe = ModelUniverse::default();
    let Some(items) = model.list() else {
        return (defs, universe);
    };
    for item in items {
        let Some(parts) = item.list() else { continue };
        match item.head() {
            Some("define-fun") if parts.len() == 5 => {
                let Some(name) = parts[1].symbol() else {
                    continue;
                };
                if labels.iter().any(|l| l == name) {
                    continue;
                }
                let arg_sorts = parts[2]
                    .list()
                    .map(|args| {
                        args.iter()
                            .filter_map(|a| {
                                a.list()
                                    .and_then(|p| p.get(1))
                                    .map(|s| s.text(source).to_string())
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                let body = parts[4].text(source).to_string();
                let mut replay_body = body.clone();
                collect_universe(&parts[4], source, &mut replay_body, &mut universe);
                defs.push(ModelDef {
                    name: name.to_string(),
                    args: parts[2].text(source).to_string(),
                    arg_sorts,
                    sort: parts[3].text(source).to_string(),
                    body,
                    replay_body,
                });
            }
            Some("declare-fun") if parts.len() == 4 => {
                if let Some(name) = parts[1].symbol() {
                    let element = (name.to_string(), parts[3].text(source).to_string());
                    if !universe.elements.contains(&element) {
                        universe.elements.push(element);
                    }
                }
            }
            Some("forall") => universe.constraints.push(item.text(source).to_string()),
            _ => {}
        }
    }
    (defs, universe)
}

/// Finds the uninterpreted-sort elements a model value uses: Z3's `U!val!0` (declared by Z3 only
/// when it prints a universe block) and cvc5's `(as @U_0 U)` (renamed to `capsci!U_0` in
/// `replay`). Each becomes a declared, pairwise distinct constant in the re-check.
fn collect_universe(term: &Sexp, source: &str, replay: &mut String, universe: &mut ModelUniverse) {
    match term {
        Sexp::Atom { .. } => {
            if let Some(name) = term.symbol() {
                if let Some((sort, _)) = name.split_once("!val!") {
                    let element = (name.to_string(), sort.to_string());
                    if !universe.elements.contains(&element) {
                        universe.elements.push(element);
                    }
                }
            }
        }
        Sexp::List { items, .. } => {
            if let [head, value, sort] = items.as_slice() {
                let abstract_name = value.symbol().and_then(|v| v.strip_prefix('@'));
                if let (Some("as"), Some(stripped)) = (head.symbol(), abstract_name) {
                    let name = format!("capsci!{stripped}");
                    *replay = replay.replace(term.text(source), &name);
                    let element = (name, sort.text(source).to_string());
                    if !universe.elements.contains(&element) {
                        universe.elements.push(element);
                    }
                    return;
                }
            }
            for item in items {
                collect_universe(item, source, replay, universe);
            }
        }
    }
}

fn push_active(frames: &mut [Vec<usize>], index: usize) {
    if let Some(top) = frames.last_mut() {
        top.push(index);
    }
}

fn count_arg(command: &Sexp) -> usize {
    command
        .list()
        .and_then(|l| l.get(1))
        .and_then(Sexp::atom)
        .and_then(|n| n.parse().ok())
        .unwrap_or(1)
}

/// The name of `(assert (! e ... :named n ...))`, if the assertion is named at its top.
fn named_assertion(command: &Sexp) -> Option<String> {
    if command.head() != Some("assert") {
        return None;
    }
    let term = command.list()?.get(1)?;
    if term.head() != Some("!") {
        return None;
    }
    let items = term.list()?;
    items
        .windows(2)
        .find(|w| w[0].atom() == Some(":named"))
        .and_then(|w| w[1].symbol())
        .map(str::to_string)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const SCRIPT: &str = "(set-logic QF_LIA)\n(declare-const x Int)\n(push 1)\n(assert (! (> x 5) :named big))\n(check-sat)\n(pop 1)\n(assert (! (< x 3) :named small))\n(assert (> x 0))\n(check-sat)\n(get-model)\n(exit)\n(assert false)\n";

    #[test]
    fn the_last_check_sat_sees_only_the_live_assertion_stack() {
        let s = Script::parse(SCRIPT).unwrap();
        assert!(s.has_check_sat());
        assert_eq!(s.named_assertions(), vec!["small".to_string()]);
        assert_eq!(s.declared_names(), vec!["x".to_string()]);
        assert_eq!(s.logic(), Some("QF_LIA"));
    }

    #[test]
    fn request_keeps_line_positions_and_appends_marked_requests() {
        let s = Script::parse(SCRIPT).unwrap();
        let text = s.request_text("(set-option :timeout 5)");
        let lines: Vec<&str> = text.lines().collect();
        // Options line, then user line n at index n.
        assert!(lines[0].contains(":produce-unsat-cores true"));
        assert_eq!(lines[2], "(declare-const x Int)");
        assert_eq!(lines[9], "(check-sat)");
        assert_eq!(lines[10].trim(), "", "get-model blanked");
        assert_eq!(lines[11].trim(), "", "exit blanked");
        assert_eq!(lines[12].trim(), "", "after exit blanked");
        assert!(text.contains("(echo \"capsci-section:core\")\n(get-unsat-core)"));
        assert!(text.ends_with("(echo \"capsci-section:end\")\n"));
    }

    #[test]
    fn a_script_without_check_sat_gets_one() {
        let s = Script::parse("(declare-const b Bool)(assert b)").unwrap();
        assert!(!s.has_check_sat());
        let text = s.request_text("(set-option :timeout 5)");
        assert!(text.contains("(assert b)\n(check-sat)\n"));
        assert!(!text.contains("get-unsat-core"));
    }

    #[test]
    fn model_check_replaces_declarations_by_the_model_values() {
        let s = Script::parse(SCRIPT).unwrap();
        let model_text = "((define-fun small () Bool (< x 3)) (define-fun x () Int 2))";
        let model = &parse_all(model_text).unwrap()[0];
        let (defs, universe) = read_model(model, model_text, &s.named_assertions());
        assert_eq!(defs.len(), 1, "the label `small` is not a model value");
        let text = s.model_check_text(&defs, &universe);
        assert!(text.contains("(define-fun x () Int 2)"));
        assert!(!text.contains("declare-const"));
        assert!(text.contains("(assert (! (< x 3) :named small))"));
        assert!(
            !text.contains(":named big"),
            "popped assertion is not re-checked"
        );
        assert!(text.ends_with("(check-sat)\n"));
    }

    #[test]
    fn core_check_keeps_only_the_core() {
        let src = "(declare-const x Int)(assert (! (> x 5) :named a)) (assert (! (< x 3) :named b)) (assert (! (= x 4) :named c))(check-sat)";
        let s = Script::parse(src).unwrap();
        let text = s.core_check_text(&["a".into(), "b".into()]).unwrap();
        assert!(
            text.contains(":named a") && text.contains(":named b") && !text.contains(":named c")
        );
        assert!(s.core_check_text(&["zz".into()]).is_none());
    }

    #[test]
    fn universe_elements_of_both_solvers_are_declared_for_the_recheck() {
        let z3 = "((define-fun u () T T!val!0))";
        let (defs, universe) = read_model(&parse_all(z3).unwrap()[0], z3, &[]);
        assert_eq!(
            universe.elements,
            vec![("T!val!0".to_string(), "T".to_string())]
        );
        assert_eq!(defs[0].define_fun(), "(define-fun u () T T!val!0)");
        let cvc5 = "((define-fun u () T (as @T_0 T)) (define-fun v () T (as @T_1 T)))";
        let (defs, universe) = read_model(&parse_all(cvc5).unwrap()[0], cvc5, &[]);
        assert_eq!(defs[0].define_fun(), "(define-fun u () T capsci!T_0)");
        assert_eq!(
            defs[0].entry_value(),
            "(as @T_0 T)",
            "the user sees the solver's value"
        );
        assert_eq!(universe.elements.len(), 2);
        let s = Script::parse(
            "(declare-sort T 0)(declare-const u T)(declare-const v T)(assert (not (= u v)))",
        )
        .unwrap();
        let text = s.model_check_text(&defs, &universe);
        assert!(text.contains("(declare-fun capsci!T_0 () T)"));
        assert!(text.contains("(assert (distinct capsci!T_0 capsci!T_1))"));
        assert!(text.find("declare-sort").unwrap() < text.find("capsci!T_0").unwrap());
    }

    #[test]
    fn function_values_read_as_lambda_with_arrow_sort() {
        let src = "((define-fun f ((x!0 Int) (x!1 Int)) Int 5) (declare-fun U!val!0 () U) (forall ((x U)) (= x U!val!0)))";
        let model = &parse_all(src).unwrap()[0];
        let (defs, universe) = read_model(model, src, &[]);
        assert_eq!(defs[0].entry_sort(), "(-> Int Int Int)");
        assert_eq!(defs[0].entry_value(), "(lambda ((x!0 Int) (x!1 Int)) 5)");
        assert_eq!(
            universe.elements,
            vec![("U!val!0".to_string(), "U".to_string())]
        );
        assert_eq!(universe.constraints.len(), 1);
    }
}
