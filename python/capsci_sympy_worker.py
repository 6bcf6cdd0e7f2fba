"""capsci's SymPy worker: one call over one JSON line, then exit.

Started ahead as a hot spare (SymPy is imported before any input arrives), run inside capsci's
sandbox with `python3 -I -B`. It reads ONE JSON line from stdin:

    {"op": "...", "expr": "...", "var": ["x", ...], "at": "...", "dir": "+", "from": "...",
     "to": "...", "order": N, "digits": N}

and writes ONE JSON line to stdout:

    {"status": "ok" | "error" | "refused" | "invalid_input" | "resource_exceeded",
     "text": ..., "latex": ..., "srepr": ..., "solutions": [...], "message": ...,
     "location": {"line": L, "column": C}, "sympy_version": "..."}

Input is never given to `eval`, `exec`, `sympify` or `parse_expr`. It is parsed with
`ast.parse(mode="eval")` and the tree is walked here, building SymPy objects from an allow-list:
numbers, names (allow-listed constants and functions; any other ASCII name is a Symbol, or an
undefined function when called), + - * / ** % //, `^` as power (rewritten to `**` before parsing,
so it has the precedence of a power), unary minus, comparisons, calls with positional arguments,
lists and tuples. Everything else is refused before SymPy sees it. Any non-ASCII character is
refused (Python's parser folds identifiers by NFKC, so look-alikes would otherwise become other
names). Decimal literals become SymPy Floats carrying the digits written.

Division by zero: a result containing `zoo` or `nan` that the input did not contain is status
`error` (except for `limit`, where infinities are answers). Mathematical failures (SymPy raising
NotImplementedError, NonInvertibleMatrixError, PolynomialError, ...) are `error` with the
exception's name and message.

Equations: `a = b`, `a == b` and `Eq(a, b)` all mean the equation a = b. An expression given to
`solve` without one means `expr = 0`.
"""

import ast
import json
import os
import sys
import unicodedata

import sympy
from sympy import (
    Catalan, E, Eq, EulerGamma, Float, Function, GoldenRatio, I, Integer, Matrix,
    Symbol, Tuple, latex, nan, oo, pi, srepr, zoo,
)

sys.set_int_max_str_digits(0)
sys.setrecursionlimit(20000)

# Largest exact integer power or factorial-like argument computed eagerly (bits of the result,
# and the argument): beyond these the call is resource_exceeded before SymPy starts.
MAX_RESULT_BITS = 1 << 25
MAX_FACTORIAL_ARG = 200_000
MAX_DIGITS = 100_000
MAX_ORDER = 10_000


class Refused(Exception):
    """The input policy refused the input."""


class InvalidInput(Exception):
    """The input does not parse, or the call is malformed."""

    def __init__(self, message, line=None, column=None):
        super().__init__(message)
        self.line = line
        self.column = column


class TooBig(Exception):
    """The work is obviously beyond the limits."""


CONSTANTS = {
    "pi": pi, "E": E, "I": I, "oo": oo, "zoo": zoo, "nan": nan,
    "EulerGamma": EulerGamma, "GoldenRatio": GoldenRatio, "Catalan": Catalan,
}

FUNCTIONS = {
    name: getattr(sympy, name)
    for name in [
        "sin", "cos", "tan", "cot", "sec", "csc", "asin", "acos", "atan", "acot", "atan2",
        "sinh", "cosh", "tanh", "coth", "asinh", "acosh", "atanh",
        "exp", "log", "sqrt", "cbrt", "root", "factorial", "factorial2", "binomial", "gamma",
        "loggamma", "beta", "erf", "erfc", "zeta", "Abs", "sign", "floor", "ceiling", "re", "im",
        "arg", "conjugate", "Min", "Max", "Eq", "Ne", "Lt", "Le", "Gt", "Ge", "Rational",
        "Integer", "Matrix", "Piecewise", "Heaviside", "DiracDelta", "besselj", "bessely",
        "LambertW", "polylog", "Derivative", "Integral", "Sum", "Product", "Mod", "fibonacci",
        "lucas", "catalan", "harmonic", "prime", "isprime", "gcd", "lcm", "Poly", "Symbol",
        "Function", "diff", "integrate", "limit", "series", "summation", "expand", "factor",
        "simplify", "together", "apart", "cancel", "trigsimp", "nsimplify", "N",
    ]
}
FUNCTIONS["ln"] = sympy.log

# Functions whose integer argument is computed eagerly and can be huge.
FACTORIAL_LIKE = {"factorial", "factorial2", "binomial", "fibonacci", "lucas", "catalan",
                  "harmonic", "prime", "gamma"}

# Python names never accepted, even as symbols: they only ever appear in injection attempts.
DENIED_NAMES = {
    "eval", "exec", "compile", "open", "input", "getattr", "setattr", "delattr", "globals",
    "locals", "vars", "breakpoint", "help", "exit", "quit", "os", "sys", "subprocess",
    "builtins", "importlib", "memoryview", "sympify", "parse_expr",
}


def _loc(node):
    return getattr(node, "lineno", None), (getattr(node, "col_offset", -1) + 1) or None


def _refuse(node, what):
    line, col = _loc(node)
    where = f" at line {line}, column {col}" if line else ""
    raise Refused(f"{what}{where} is not allowed")


def _check_name(name, node):
    if not name.isascii():
        _refuse(node, f"non-ASCII name {name!r}")
    if name.startswith("_"):
        _refuse(node, f"name {name!r} (leading underscore)")
    if name in DENIED_NAMES:
        _refuse(node, f"name {name!r}")


def _bits(value):
    """An estimate of the size in bits of |value| for an exact number, else None."""
    if isinstance(value, sympy.Integer):
        return int(abs(value)).bit_length()
    if isinstance(value, sympy.Rational):
        return max(int(abs(value.p)).bit_length(), int(value.q).bit_length())
    return None


def _guard_pow(base, exp, node):
    if isinstance(exp, sympy.Integer) and abs(exp) > 1:
        bits = _bits(base)
        if bits is not None and bits > 1 and (bits - 1) * abs(int(exp)) > MAX_RESULT_BITS:
            line, col = _loc(node)
            raise TooBig(f"power at line {line}, column {col} would have more than "
                         f"{MAX_RESULT_BITS} bits")
    if isinstance(exp, sympy.Rational) and not isinstance(exp, sympy.Integer):
        if isinstance(base, sympy.Integer) and abs(exp.p) > 1:
            if int(abs(base)).bit_length() * abs(int(exp.p)) > MAX_RESULT_BITS:
                raise TooBig("rational power too large")


class Builder:
    """Builds SymPy objects from a Python AST, allow-list only."""

    def __init__(self, source):
        self.source = source

    def build(self, node):
        method = getattr(self, "visit_" + type(node).__name__, None)
        if method is None:
            _refuse(node, f"Python syntax {type(node).__name__}")
        return method(node)

    def visit_Expression(self, node):
        return self.build(node.body)

    def visit_Constant(self, node):
        value = node.value
        if isinstance(value, bool) or value is None or value is Ellipsis:
            _refuse(node, f"constant {value!r}")
        if isinstance(value, (str, bytes)):
            _refuse(node, "a string")
        if isinstance(value, int):
            return Integer(value)
        text = ast.get_source_segment(self.source, node) or repr(value)
        if isinstance(value, float):
            digits = sum(ch.isdigit() for ch in text.split("e")[0].split("E")[0])
            return Float(text.replace("_", ""), max(15, digits))
        if isinstance(value, complex):
            inner = text.rstrip("jJ").replace("_", "")
            num = Integer(int(inner)) if inner.isdigit() else Float(inner, 15)
            return num * I
        _refuse(node, f"constant of type {type(value).__name__}")

    def visit_Name(self, node):
        _check_name(node.id, node)
        if node.id in CONSTANTS:
            return CONSTANTS[node.id]
        if node.id in FUNCTIONS:
            line, col = _loc(node)
            raise InvalidInput(f"function {node.id!r} used without arguments", line, col)
        return Symbol(node.id)

    def visit_UnaryOp(self, node):
        operand = self.build(node.operand)
        if isinstance(node.op, ast.USub):
            return -operand
        if isinstance(node.op, ast.UAdd):
            return operand
        _refuse(node, f"operator {type(node.op).__name__}")

    def visit_BinOp(self, node):
        left = self.build(node.left)
        right = self.build(node.right)
        op = node.op
        if isinstance(op, ast.Add):
            return left + right
        if isinstance(op, ast.Sub):
            return left - right
        if isinstance(op, ast.Mult):
            return left * right
        if isinstance(op, ast.Div):
            return left / right
        if isinstance(op, ast.Pow):
            _guard_pow(left, right, node)
            return left ** right
        if isinstance(op, ast.Mod):
            return sympy.Mod(left, right)
        if isinstance(op, ast.FloorDiv):
            return sympy.floor(left / right)
        _refuse(node, f"operator {type(op).__name__}")

    def visit_Compare(self, node):
        if len(node.ops) != 1:
            _refuse(node, "a chained comparison")
        left = self.build(node.left)
        right = self.build(node.comparators[0])
        ops = {ast.Eq: sympy.Eq, ast.NotEq: sympy.Ne, ast.Lt: sympy.Lt, ast.LtE: sympy.Le,
               ast.Gt: sympy.Gt, ast.GtE: sympy.Ge}
        kind = ops.get(type(node.ops[0]))
        if kind is None:
            _refuse(node, f"comparison {type(node.ops[0]).__name__}")
        return kind(left, right)

    def visit_Call(self, node):
        if not isinstance(node.func, ast.Name):
            _refuse(node, "calling anything but a plain function name")
        name = node.func.id
        _check_name(name, node.func)
        if node.keywords:
            _refuse(node, "keyword arguments")
        for arg in node.args:
            if isinstance(arg, ast.Starred):
                _refuse(arg, "starred arguments")
        args = [self.build(arg) for arg in node.args]
        if name in FACTORIAL_LIKE:
            for a in args:
                if isinstance(a, sympy.Integer) and abs(a) > MAX_FACTORIAL_ARG:
                    raise TooBig(f"{name} of an integer above {MAX_FACTORIAL_ARG}")
        if name == "Matrix":
            return Matrix(*[_as_rows(a) for a in args])
        if name in FUNCTIONS:
            try:
                return FUNCTIONS[name](*args)
            except TypeError as exc:
                line, col = _loc(node)
                raise InvalidInput(f"{name}: {exc}", line, col) from exc
        if name in CONSTANTS:
            _refuse(node, f"calling the constant {name!r}")
        return Function(name)(*args)

    def visit_List(self, node):
        return [self.build(e) for e in node.elts]

    def visit_Tuple(self, node):
        return [self.build(e) for e in node.elts]


def _as_rows(value):
    if isinstance(value, list):
        return [_as_rows(v) if isinstance(v, list) else v for v in value]
    return value


def _fold_check(source):
    """Refuses characters that Python's parser would fold (NFKC) into other names, and any
    non-ASCII character: look-alikes such as fullwidth letters are a known filter bypass."""
    for index, ch in enumerate(source):
        if not ch.isascii():
            folded = unicodedata.normalize("NFKC", ch)
            line = source.count("\n", 0, index) + 1
            col = index - (source.rfind("\n", 0, index) + 1) + 1
            detail = f" (folds to {folded!r})" if folded != ch else ""
            raise Refused(f"non-ASCII character {ch!r}{detail} at line {line}, column {col} "
                          "is not allowed")


def _rewrite(source):
    """Rewrites `^` into `**` (power, as in mathematics) and a lone `=` (not part of ==, <=, >=,
    !=) into `==` (an equation). Returns the new text and, for each of its characters, the index
    of the source character it came from, so that parser locations point into the source."""
    out, origin = [], []
    n = len(source)
    for i, ch in enumerate(source):
        if ch == "^":
            out.append("**")
            origin += [i, i]
            continue
        if ch == "=":
            prev = source[i - 1] if i > 0 else ""
            nxt = source[i + 1] if i + 1 < n else ""
            if prev not in "=<>!" and nxt != "=":
                out.append("==")
                origin += [i, i]
                continue
        out.append(ch)
        origin.append(i)
    return "".join(out), origin


def _source_location(source, rewritten, origin, line, column):
    """Maps a 1-based (line, column) in the rewritten text back to the source."""
    if not line:
        return None, None
    lines = rewritten.split("\n")
    if not column:
        # Python reports offset 0 for an error at the end of the input.
        column = len(lines[min(line, len(lines)) - 1]) + 1
    index = sum(len(l) + 1 for l in lines[: line - 1]) + column - 1
    index = origin[index] if index < len(origin) else len(source)
    src_line = source.count("\n", 0, index) + 1
    src_col = index - (source.rfind("\n", 0, index) + 1) + 1
    return src_line, src_col


def parse(source, what="expr"):
    """Parses one input string to a SymPy object without eval."""
    if not isinstance(source, str):
        raise InvalidInput(f"{what} must be a string")
    if "\x00" in source:
        raise InvalidInput(f"{what} contains a NUL character")
    _fold_check(source)
    rewritten, origin = _rewrite(source)
    try:
        tree = ast.parse(rewritten, mode="eval")
    except SyntaxError as exc:
        line, col = _source_location(source, rewritten, origin, exc.lineno, exc.offset)
        raise InvalidInput(f"{what}: {exc.msg}", line, col) from None
    except (ValueError, MemoryError, RecursionError) as exc:
        detail = str(exc) or "too deeply nested for the parser"
        raise InvalidInput(f"{what}: {detail} ({type(exc).__name__})") from None
    return Builder(rewritten).build(tree)


def _value(obj):
    if isinstance(obj, list):
        obj = Tuple(*[_sympify_result(o) for o in obj])
    elif isinstance(obj, tuple):
        obj = Tuple(*[_sympify_result(o) for o in obj])
    elif isinstance(obj, dict):
        obj = sympy.Dict({_sympify_result(k): _sympify_result(v) for k, v in obj.items()})
    return {"text": str(obj), "latex": latex(obj), "srepr": srepr(obj)}


def _sympify_result(o):
    if isinstance(o, list) or isinstance(o, tuple):
        return Tuple(*[_sympify_result(x) for x in o])
    if isinstance(o, dict):
        return sympy.Dict({_sympify_result(k): _sympify_result(v) for k, v in o.items()})
    if isinstance(o, bool):
        return sympy.true if o else sympy.false
    if isinstance(o, int):
        return Integer(o)
    return o


def _variables(request, expr, need=None):
    names = request.get("var") or []
    if isinstance(names, str):
        names = [n for n in names.split(",") if n.strip()]
    symbols = []
    for name in names:
        sym = parse(name.strip(), "var")
        if not isinstance(sym, Symbol):
            raise InvalidInput(f"var {name!r} is not a symbol name")
        symbols.append(sym)
    if not symbols:
        free = set()
        for item in (expr if isinstance(expr, list) else [expr]):
            free |= getattr(item, "free_symbols", set())
        symbols = sorted(free, key=lambda s: s.name)
        if need == 1 and len(symbols) != 1:
            raise InvalidInput(
                "give --var: the expression has "
                + (f"the free symbols {', '.join(s.name for s in symbols)}" if symbols
                   else "no free symbol"))
    return symbols


def _int_option(request, key, default, low, high):
    value = request.get(key)
    if value is None:
        return default
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool):
        raise InvalidInput(f"{key} must be an integer")
    if value < low:
        raise InvalidInput(f"{key} must be at least {low}")
    if value > high:
        raise TooBig(f"{key} above {high}")
    return value


def _option_expr(request, key, default=None):
    value = request.get(key)
    if value is None or value == "":
        if default is None:
            raise InvalidInput(f"{key} is required for this operation")
        return default
    return parse(str(value), key)


def _matrix(expr):
    if isinstance(expr, sympy.MatrixBase):
        return expr
    if isinstance(expr, list) and expr and all(isinstance(r, list) for r in expr):
        return Matrix(expr)
    raise InvalidInput("expected a matrix: [[a, b], [c, d]] or Matrix([[a, b], [c, d]])")


def _pair(expr, op):
    if not (isinstance(expr, list) and len(expr) == 2):
        raise InvalidInput(f"{op} expects two polynomials: [p, q]")
    return expr


def _equation(e):
    if isinstance(e, sympy.Equality):
        return e
    if isinstance(e, sympy.Expr):
        return Eq(e, 0)
    return e


def run(request):
    op = request.get("op")
    if not isinstance(op, str):
        raise InvalidInput("op is required")
    expr = parse(request.get("expr"), "expr")

    if op in ("simplify", "factor", "expand"):
        return {"value": getattr(sympy, op)(expr)}
    if op == "diff":
        order = _int_option(request, "order", 1, 1, MAX_ORDER)
        symbols = _variables(request, expr, need=1 if not request.get("var") else None)
        args = []
        for s in symbols:
            args += [s, order]
        return {"value": sympy.diff(expr, *args)}
    if op == "integrate":
        (x,) = _variables(request, expr, need=1)[:1]
        if request.get("from") is not None or request.get("to") is not None:
            a = _option_expr(request, "from")
            b = _option_expr(request, "to")
            return {"value": sympy.integrate(expr, (x, a, b))}
        return {"value": sympy.integrate(expr, x)}
    if op == "solve":
        equations = [_equation(e) for e in (expr if isinstance(expr, list) else [expr])]
        symbols = _variables(request, equations)
        solutions = sympy.solve(equations, symbols, dict=True)
        return {"value": solutions,
                "solutions": [{str(k): _value(v) for k, v in s.items()} for s in solutions]}
    if op == "limit":
        (x,) = _variables(request, expr, need=1)[:1]
        at = _option_expr(request, "at")
        direction = request.get("dir") or "+"
        if direction not in ("+", "-", "+-"):
            raise InvalidInput("dir must be +, - or +-")
        return {"value": sympy.limit(expr, x, at, direction)}
    if op == "series":
        (x,) = _variables(request, expr, need=1)[:1]
        at = _option_expr(request, "at", Integer(0))
        n = _int_option(request, "order", 6, 1, MAX_ORDER)
        return {"value": sympy.series(expr, x, at, n)}
    if op == "evalf":
        digits = _int_option(request, "digits", 15, 1, MAX_DIGITS)
        return {"value": sympy.N(expr, digits)}
    if op in ("det", "inverse", "rank", "nullspace", "rref", "eigenvals"):
        m = _matrix(expr)
        if op == "det":
            return {"value": m.det()}
        if op == "inverse":
            return {"value": m.inv()}
        if op == "rank":
            return {"value": Integer(m.rank())}
        if op == "nullspace":
            return {"value": m.nullspace()}
        if op == "rref":
            reduced, pivots = m.rref()
            return {"value": (reduced, Tuple(*pivots))}
        return {"value": m.eigenvals()}
    if op in ("gcd", "div", "resultant"):
        p, q = _pair(expr, op)
        symbols = _variables(request, [p, q])
        if op == "gcd":
            return {"value": sympy.gcd(p, q, *symbols)}
        if op == "div":
            quotient, remainder = sympy.div(p, q, *symbols)
            return {"value": (quotient, remainder)}
        if not symbols:
            raise InvalidInput("resultant needs a variable")
        return {"value": sympy.resultant(p, q, symbols[0])}
    if op == "groebner":
        polys = expr if isinstance(expr, list) else [expr]
        symbols = _variables(request, polys)
        return {"value": list(sympy.groebner(polys, *symbols, order="lex").exprs)}
    raise InvalidInput(f"unknown operation {op!r}")


def _contains(value, atom):
    if isinstance(value, (list, tuple)):
        return any(_contains(v, atom) for v in value)
    if isinstance(value, dict):
        return any(_contains(k, atom) or _contains(v, atom) for k, v in value.items())
    has = getattr(value, "has", None)
    return bool(has and has(atom))


def answer(request):
    """Runs one request and returns the response object (never raises)."""
    base = {"sympy_version": sympy.__version__}
    try:
        if not isinstance(request, dict):
            raise InvalidInput("the request must be a JSON object")
        out = run(request)
        value = out["value"]
        source = str(request.get("expr", ""))
        if request.get("op") != "limit":
            if _contains(value, nan) and "nan" not in source:
                return {**base, "status": "error",
                        "message": "the result is undefined (nan)"}
            if _contains(value, zoo) and "zoo" not in source:
                return {**base, "status": "error",
                        "message": "division by zero (the result is complex infinity, zoo)"}
        response = {**base, "status": "ok", **_value(value)}
        if "solutions" in out:
            response["solutions"] = out["solutions"]
        return response
    except Refused as exc:
        return {**base, "status": "refused", "message": str(exc)}
    except InvalidInput as exc:
        response = {**base, "status": "invalid_input", "message": str(exc)}
        if exc.line:
            response["location"] = {"line": exc.line, "column": exc.column}
        return response
    except (TooBig, MemoryError, RecursionError) as exc:
        return {**base, "status": "resource_exceeded",
                "message": f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__}
    except Exception as exc:  # the mathematics failed: SymPy's own message
        return {**base, "status": "error", "message": f"{type(exc).__name__}: {exc}"}


def warm_up():
    """Runs small calls through the common paths (parser, diff, simplify, printers) while the
    spare waits for its call, so their lazy imports are not paid by the call."""
    for request in ({"op": "diff", "expr": "sin(x)*x^2"},
                    {"op": "simplify", "expr": "(x^2 - 1)/(x - 1)"},
                    {"op": "solve", "expr": "x^2 = 4"}):
        answer(request)


def main():
    warm_up()
    line = sys.stdin.readline()
    try:
        request = json.loads(line)
    except ValueError as exc:
        response = {"status": "invalid_input", "message": f"request is not JSON: {exc}",
                    "sympy_version": sympy.__version__}
    else:
        response = answer(request)
    sys.stdout.write(json.dumps(response) + "\n")
    sys.stdout.flush()
    # One call per process: skip the interpreter's teardown of SymPy's objects (tens of ms).
    os._exit(0)


if __name__ == "__main__":
    main()
