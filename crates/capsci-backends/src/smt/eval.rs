//! capsci's own evaluator for ground Boolean / integer / real SMT-LIB terms, used to re-check a
//! model without any solver: every assertion is evaluated under the model's values and must be
//! `true`.
//!
//! It covers the core of QF_LIA / QF_LRA / QF_NIA / QF_NRA (Booleans, `ite`, `=`, `distinct`,
//! `+ - * / div mod abs`, comparisons, `to_real`, `to_int`, `is_int`, `let`, `!` annotations)
//! with exact rationals over `i128`. Anything else (quantifiers, arrays, bit-vectors, functions,
//! overflow, a symbol the model leaves out) is [`EvalError::Unsupported`], and capsci then falls
//! back to a fresh solver run. Integer `div`/`mod` follow SMT-LIB (Euclidean: `0 <= mod < |d|`).

use super::sexp::Sexp;
use std::collections::BTreeMap;
use thiserror::Error;

/// Why a term could not be evaluated.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum EvalError {
    /// The term uses something the evaluator does not cover; a solver must check it.
    #[error("not evaluable by capsci: {0}")]
    Unsupported(String),
}

fn unsupported<T>(what: impl Into<String>) -> Result<T, EvalError> {
    Err(EvalError::Unsupported(what.into()))
}

/// An exact rational `num/den` with `den > 0` and `gcd(num, den) = 1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rat {
    num: i128,
    den: i128,
}

fn gcd(mut a: i128, mut b: i128) -> i128 {
    a = a.abs();
    b = b.abs();
    while b != 0 {
        let t = a % b;
        a = b;
        b = t;
    }
    a
}

impl Rat {
    fn new(num: i128, den: i128) -> Result<Rat, EvalError> {
        if den == 0 {
            return unsupported("division by zero");
        }
        let g = gcd(num, den).max(1);
        let (mut n, mut d) = (num / g, den / g);
        if d < 0 {
            n = n.checked_neg().ok_or_else(overflow)?;
            d = d.checked_neg().ok_or_else(overflow)?;
        }
        Ok(Rat { num: n, den: d })
    }

    fn int(n: i128) -> Rat {
        Rat { num: n, den: 1 }
    }

    fn is_int(self) -> bool {
        self.den == 1
    }

    fn add(self, o: Rat) -> Result<Rat, EvalError> {
        let a = self.num.checked_mul(o.den).ok_or_else(overflow)?;
        let b = o.num.checked_mul(self.den).ok_or_else(overflow)?;
        Rat::new(
            a.checked_add(b).ok_or_else(overflow)?,
            self.den.checked_mul(o.den).ok_or_else(overflow)?,
        )
    }

    fn neg(self) -> Result<Rat, EvalError> {
        Ok(Rat {
            num: self.num.checked_neg().ok_or_else(overflow)?,
            den: self.den,
        })
    }

    fn mul(self, o: Rat) -> Result<Rat, EvalError> {
        Rat::new(
            self.num.checked_mul(o.num).ok_or_else(overflow)?,
            self.den.checked_mul(o.den).ok_or_else(overflow)?,
        )
    }

    fn div(self, o: Rat) -> Result<Rat, EvalError> {
        if o.num == 0 {
            // SMT-LIB leaves x/0 unspecified (an uninterpreted value): not evaluable here.
            return unsupported("division by zero");
        }
        Rat::new(
            self.num.checked_mul(o.den).ok_or_else(overflow)?,
            self.den.checked_mul(o.num).ok_or_else(overflow)?,
        )
    }

    fn floor(self) -> i128 {
        self.num.div_euclid(self.den)
    }

    fn cmp(self, o: Rat) -> Result<std::cmp::Ordering, EvalError> {
        let a = self.num.checked_mul(o.den).ok_or_else(overflow)?;
        let b = o.num.checked_mul(self.den).ok_or_else(overflow)?;
        Ok(a.cmp(&b))
    }
}

fn overflow() -> EvalError {
    EvalError::Unsupported("arithmetic beyond 128 bits".into())
}

/// Symbol → (its defining term, the text that term's spans point into).
pub type Bindings<'a> = BTreeMap<String, (&'a Sexp, &'a str)>;

/// A value of a ground term.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Value {
    /// A Boolean.
    Bool(bool),
    /// An integer or real number.
    Num(Rat),
}

/// Evaluates ground terms; symbols are looked up in the bindings (model values and
/// zero-argument definitions, themselves terms evaluated on demand).
pub struct Evaluator<'a> {
    source: &'a Bindings<'a>,
    cache: BTreeMap<String, Value>,
    depth: usize,
}

impl<'a> Evaluator<'a> {
    /// `bindings`: symbol → (its defining term, the text the term's spans point into).
    pub fn new(bindings: &'a Bindings<'a>) -> Self {
        Evaluator {
            source: bindings,
            cache: BTreeMap::new(),
            depth: 0,
        }
    }

    /// Evaluates `term` (whose spans point into `text`).
    pub fn eval(&mut self, term: &Sexp, text: &str) -> Result<Value, EvalError> {
        let mut scopes = Vec::new();
        self.eval_in(term, text, &mut scopes)
    }

    fn symbol(
        &mut self,
        name: &str,
        scopes: &[BTreeMap<String, Value>],
    ) -> Result<Value, EvalError> {
        for scope in scopes.iter().rev() {
            if let Some(v) = scope.get(name) {
                return Ok(*v);
            }
        }
        match name {
            "true" => return Ok(Value::Bool(true)),
            "false" => return Ok(Value::Bool(false)),
            _ => {}
        }
        if let Some(v) = self.cache.get(name) {
            return Ok(*v);
        }
        let Some(&(term, text)) = self.source.get(name) else {
            return unsupported(format!("symbol {name} has no value"));
        };
        if self.depth > 64 {
            return unsupported("definitions nest too deep");
        }
        self.depth += 1;
        let mut fresh = Vec::new();
        let value = self.eval_in(term, text, &mut fresh);
        self.depth -= 1;
        let value = value?;
        self.cache.insert(name.to_string(), value);
        Ok(value)
    }

    fn eval_in(
        &mut self,
        term: &Sexp,
        text: &str,
        scopes: &mut Vec<BTreeMap<String, Value>>,
    ) -> Result<Value, EvalError> {
        if let Some(atom) = term.atom() {
            if let Some(n) = number(atom) {
                return Ok(Value::Num(n?));
            }
            let Some(name) = term.symbol() else {
                return unsupported("string literal");
            };
            return self.symbol(name, scopes);
        }
        let Some(items) = term.list() else {
            return unsupported("empty term");
        };
        let Some(head) = items.first().and_then(Sexp::symbol) else {
            return unsupported("indexed or qualified operator");
        };
        let args = &items[1..];
        match head {
            "!" => {
                let Some(first) = args.first() else {
                    return unsupported("empty annotation");
                };
                self.eval_in(first, text, scopes)
            }
            "let" => {
                let Some(bindings) = args.first().and_then(Sexp::list) else {
                    return unsupported("malformed let");
                };
                let Some(body) = args.get(1) else {
                    return unsupported("malformed let");
                };
                let mut scope = BTreeMap::new();
                for b in bindings {
                    let pair = b.list().unwrap_or(&[]);
                    let (Some(name), Some(value)) =
                        (pair.first().and_then(Sexp::symbol), pair.get(1))
                    else {
                        return unsupported("malformed let binding");
                    };
                    let v = self.eval_in(value, text, scopes)?;
                    scope.insert(name.to_string(), v);
                }
                scopes.push(scope);
                let result = self.eval_in(body, text, scopes);
                scopes.pop();
                result
            }
            "ite" => {
                let [c, t, e] = args else {
                    return unsupported("ite arity");
                };
                if self.bool(c, text, scopes)? {
                    self.eval_in(t, text, scopes)
                } else {
                    self.eval_in(e, text, scopes)
                }
            }
            "not" => {
                let [a] = args else {
                    return unsupported("not arity");
                };
                Ok(Value::Bool(!self.bool(a, text, scopes)?))
            }
            "and" | "or" | "xor" | "=>" => {
                let mut values = Vec::with_capacity(args.len());
                for a in args {
                    values.push(self.bool(a, text, scopes)?);
                }
                Ok(Value::Bool(match head {
                    "and" => values.iter().all(|&v| v),
                    "or" => values.iter().any(|&v| v),
                    "xor" => values.iter().fold(false, |acc, &v| acc ^ v),
                    _ => match values.split_last() {
                        // Right-associative: a => b => c is a => (b => c).
                        Some((last, init)) => init.iter().rev().fold(*last, |acc, &v| !v || acc),
                        None => return unsupported("=> arity"),
                    },
                }))
            }
            "=" | "distinct" => {
                let mut values = Vec::with_capacity(args.len());
                for a in args {
                    values.push(self.eval_in(a, text, scopes)?);
                }
                if values.len() < 2 {
                    return unsupported("comparison arity");
                }
                let mut equal_all = true;
                let mut distinct_all = true;
                for i in 0..values.len() {
                    for j in i + 1..values.len() {
                        let eq = same(values[i], values[j])?;
                        if j == i + 1 && !eq {
                            equal_all = false;
                        }
                        if eq {
                            distinct_all = false;
                        }
                    }
                }
                Ok(Value::Bool(if head == "=" {
                    equal_all
                } else {
                    distinct_all
                }))
            }
            "<" | "<=" | ">" | ">=" => {
                let mut values = Vec::with_capacity(args.len());
                for a in args {
                    values.push(self.num(a, text, scopes)?);
                }
                if values.len() < 2 {
                    return unsupported("comparison arity");
                }
                let mut holds = true;
                for w in values.windows(2) {
                    let o = w[0].cmp(w[1])?;
                    holds &= match head {
                        "<" => o.is_lt(),
                        "<=" => o.is_le(),
                        ">" => o.is_gt(),
                        _ => o.is_ge(),
                    };
                }
                Ok(Value::Bool(holds))
            }
            "+" | "*" | "-" | "/" => {
                let mut values = Vec::with_capacity(args.len());
                for a in args {
                    values.push(self.num(a, text, scopes)?);
                }
                let Some((&first, rest)) = values.split_first() else {
                    return unsupported("arithmetic arity");
                };
                let v = match head {
                    "+" => rest.iter().try_fold(first, |acc, &v| acc.add(v))?,
                    "*" => rest.iter().try_fold(first, |acc, &v| acc.mul(v))?,
                    "-" if rest.is_empty() => first.neg()?,
                    "-" => rest.iter().try_fold(first, |acc, &v| acc.add(v.neg()?))?,
                    _ => rest.iter().try_fold(first, |acc, &v| acc.div(v))?,
                };
                Ok(Value::Num(v))
            }
            "div" | "mod" => {
                let [a, b] = args else {
                    return unsupported("div/mod arity");
                };
                let (a, b) = (self.num(a, text, scopes)?, self.num(b, text, scopes)?);
                if !a.is_int() || !b.is_int() {
                    return unsupported("div/mod of non-integers");
                }
                if b.num == 0 {
                    return unsupported("div/mod by zero");
                }
                let q = a.num.checked_div_euclid(b.num).ok_or_else(overflow)?;
                let r = a.num.checked_rem_euclid(b.num).ok_or_else(overflow)?;
                Ok(Value::Num(Rat::int(if head == "div" { q } else { r })))
            }
            "abs" => {
                let [a] = args else {
                    return unsupported("abs arity");
                };
                let a = self.num(a, text, scopes)?;
                Ok(Value::Num(if a.num < 0 { a.neg()? } else { a }))
            }
            "to_real" => {
                let [a] = args else {
                    return unsupported("to_real arity");
                };
                Ok(Value::Num(self.num(a, text, scopes)?))
            }
            "to_int" => {
                let [a] = args else {
                    return unsupported("to_int arity");
                };
                Ok(Value::Num(Rat::int(self.num(a, text, scopes)?.floor())))
            }
            "is_int" => {
                let [a] = args else {
                    return unsupported("is_int arity");
                };
                Ok(Value::Bool(self.num(a, text, scopes)?.is_int()))
            }
            other => unsupported(format!("operator {other}")),
        }
    }

    fn bool(
        &mut self,
        t: &Sexp,
        text: &str,
        scopes: &mut Vec<BTreeMap<String, Value>>,
    ) -> Result<bool, EvalError> {
        match self.eval_in(t, text, scopes)? {
            Value::Bool(b) => Ok(b),
            Value::Num(_) => unsupported("number where a Boolean is expected"),
        }
    }

    fn num(
        &mut self,
        t: &Sexp,
        text: &str,
        scopes: &mut Vec<BTreeMap<String, Value>>,
    ) -> Result<Rat, EvalError> {
        match self.eval_in(t, text, scopes)? {
            Value::Num(n) => Ok(n),
            Value::Bool(_) => unsupported("Boolean where a number is expected"),
        }
    }
}

fn same(a: Value, b: Value) -> Result<bool, EvalError> {
    match (a, b) {
        (Value::Bool(x), Value::Bool(y)) => Ok(x == y),
        (Value::Num(x), Value::Num(y)) => Ok(x.cmp(y)?.is_eq()),
        _ => unsupported("= between a Boolean and a number"),
    }
}

/// A numeral (`42`) or decimal (`1.25`) literal; `None` if the atom is not one.
fn number(atom: &str) -> Option<Result<Rat, EvalError>> {
    let first = atom.chars().next()?;
    if !first.is_ascii_digit() {
        return None;
    }
    let (int, frac) = match atom.split_once('.') {
        Some((i, f)) => (i, f),
        None => (atom, ""),
    };
    if !int.chars().all(|c| c.is_ascii_digit()) || !frac.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let digits = format!("{int}{frac}");
    let Ok(num) = digits.parse::<i128>() else {
        return Some(Err(overflow()));
    };
    let Some(den) = u32::try_from(frac.len())
        .ok()
        .and_then(|e| 10i128.checked_pow(e))
    else {
        return Some(Err(overflow()));
    };
    Some(Rat::new(num, den))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::super::sexp::parse_all;
    use super::*;

    fn eval_with(term: &str, defs: &[(&str, &str)]) -> Result<Value, EvalError> {
        let parsed: Vec<Sexp> = defs
            .iter()
            .map(|(_, body)| parse_all(body).unwrap().remove(0))
            .collect();
        let mut bindings = Bindings::new();
        for ((name, body), term) in defs.iter().zip(&parsed) {
            bindings.insert(name.to_string(), (term, *body));
        }
        let t = parse_all(term).unwrap().remove(0);
        Evaluator::new(&bindings).eval(&t, term)
    }

    #[test]
    fn linear_and_nonlinear_arithmetic_evaluates_exactly() {
        let defs = [("x", "7"), ("y", "13"), ("a", "(/ 1 3)"), ("n", "(- 5)")];
        assert_eq!(eval_with("(= (* x y) 91)", &defs), Ok(Value::Bool(true)));
        assert_eq!(eval_with("(= (* 3 a) 1)", &defs), Ok(Value::Bool(true)));
        assert_eq!(eval_with("(< 0.3 a 0.34)", &defs), Ok(Value::Bool(true)));
        assert_eq!(
            eval_with("(and (= (div n 3) (- 2)) (= (mod n 3) 1))", &defs),
            Ok(Value::Bool(true))
        );
        assert_eq!(
            eval_with("(= (div 7 (- 2)) (- 3))", &defs),
            Ok(Value::Bool(true))
        );
        assert_eq!(eval_with("(> (- x y) 0)", &defs), Ok(Value::Bool(false)));
        assert_eq!(
            eval_with("(= (to_int (- 1.5)) (- 2))", &defs),
            Ok(Value::Bool(true))
        );
    }

    #[test]
    fn booleans_let_ite_and_annotations() {
        let defs = [("p", "true"), ("q", "false"), ("x", "2")];
        assert_eq!(
            eval_with("(! (=> p q p) :named a)", &defs),
            Ok(Value::Bool(true))
        );
        assert_eq!(eval_with("(=> p q)", &defs), Ok(Value::Bool(false)));
        assert_eq!(
            eval_with("(let ((z (+ x 1))) (ite (= z 3) (xor p q) q))", &defs),
            Ok(Value::Bool(true))
        );
        assert_eq!(eval_with("(distinct 1 2 1)", &defs), Ok(Value::Bool(false)));
        assert_eq!(eval_with("(distinct 1 2 3)", &defs), Ok(Value::Bool(true)));
    }

    #[test]
    fn anything_else_is_unsupported_never_true() {
        assert!(eval_with("(forall ((z Int)) (> z 0))", &[]).is_err());
        assert!(eval_with("(= (select a 1) 2)", &[]).is_err());
        assert!(eval_with("(> x 0)", &[]).is_err(), "no value for x");
        assert!(eval_with("(= (/ 1 0) 2)", &[]).is_err());
        assert!(eval_with("(> (* 100000000000000000000 100000000000000000000) 0)", &[]).is_err());
        assert!(eval_with("(bvult #x01 #x02)", &[]).is_err());
    }
}
