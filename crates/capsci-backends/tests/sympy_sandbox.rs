//! ComputerAlgebra through the real sandbox with the real SymPy worker (SymPy 1.13.3 from the
//! hash-locked venv): every operation on real inputs, integrals checked by differentiating back
//! and solutions checked by substitution (both through capsci), refusals before SymPy, Unicode
//! look-alikes, malformed input, huge work, and hot spares.

use capsci_backends::sympy::{self, CasEval, WorkerConfig, WorkerRequest};
use capsci_core::{EvalStatus, ExitReason, Limits};
use capsci_sandbox::{BwrapSandbox, CancelToken, SandboxPolicy, SparePool};
use capsci_store::{ClosureSpec, Closures};
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

struct Env {
    sandbox: Arc<BwrapSandbox>,
    binds: Vec<PathBuf>,
    config: WorkerConfig,
}

/// The bwrap sandbox and the SymPy closure (computed by capsci-store from the worker's roots).
fn env() -> &'static Env {
    static ENV: OnceLock<Env> = OnceLock::new();
    ENV.get_or_init(|| {
        let sandbox = Arc::new(BwrapSandbox::detect().expect(
            "bwrap sandbox (build the helper first: cargo build -p capsci-sandbox --bin capsci-jail)",
        ));
        let venv = sympy::python_env();
        let dir = std::env::temp_dir().join(format!("capsci-sympy-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let closures = Closures::open(&dir.join("closures.db")).expect("closure db");
        let roots = sympy::roots(&venv);
        let spec = ClosureSpec {
            name: "sympy".into(),
            executables: roots.executables,
            trees: roots.trees,
            ..Default::default()
        };
        let (closure, _) = closures.compute(&spec).expect("sympy closure");
        let _ = std::fs::remove_dir_all(&dir);
        Env { sandbox, binds: closure.bind_paths(), config: WorkerConfig::new(&venv) }
    })
}

fn limits() -> Limits {
    Limits {
        wall_s: 60.0,
        cpu_s: 60.0,
        memory_mb: 1024,
        ..Limits::default()
    }
}

fn policy(limits: &Limits) -> SandboxPolicy {
    sympy::sandbox_policy(&env().binds, limits)
}

fn call_with(request: &WorkerRequest, limits: &Limits) -> CasEval {
    sympy::eval(
        &*env().sandbox,
        &policy(limits),
        &env().config,
        request,
        &CancelToken::new(),
    )
}

fn call(request: &WorkerRequest) -> CasEval {
    call_with(request, &limits())
}

fn req(op: &str, expr: &str) -> WorkerRequest {
    WorkerRequest::new(op, expr)
}

fn ok(request: &WorkerRequest) -> CasEval {
    let r = call(request);
    assert_eq!(
        r.status,
        EvalStatus::Ok,
        "{request:?}: {:?} / {}",
        r.result,
        String::from_utf8_lossy(&r.outcome.stderr)
    );
    r
}

fn text(request: &WorkerRequest) -> String {
    ok(request).result.text.expect("text")
}

#[test]
fn differentiates_with_text_latex_srepr_and_version() {
    let mut r = req("diff", "sin(x)*x");
    r.var = vec!["x".into()];
    let answer = ok(&r);
    assert_eq!(answer.result.text.as_deref(), Some("x*cos(x) + sin(x)"));
    assert_eq!(
        answer.result.latex.as_deref(),
        Some("x \\cos{\\left(x \\right)} + \\sin{\\left(x \\right)}")
    );
    assert_eq!(
        answer.result.srepr.as_deref(),
        Some("Add(Mul(Symbol('x'), cos(Symbol('x'))), sin(Symbol('x')))")
    );
    assert_eq!(answer.sympy_version.as_deref(), Some("1.13.3"));
    let mut second = req("diff", "x^5");
    second.order = Some(3);
    assert_eq!(text(&second), "60*x**2");
}

#[test]
fn integrals_differentiate_back_to_the_integrand() {
    for integrand in [
        "x*exp(x)",
        "1/(x^2 + 1)",
        "sin(x)^2",
        "log(x)",
        "x^3 - 2*x + 7",
    ] {
        let antiderivative = text(&req("integrate", integrand));
        let mut back = req("diff", &antiderivative);
        back.var = vec!["x".into()];
        let derivative = text(&back);
        // derivative - integrand simplifies to 0, computed by capsci too.
        let difference = text(&req("simplify", &format!("({derivative}) - ({integrand})")));
        assert_eq!(
            difference, "0",
            "{integrand}: F = {antiderivative}, F' = {derivative}"
        );
    }
}

#[test]
fn definite_integrals() {
    let mut r = req("integrate", "exp(-x^2)");
    r.from = Some("-oo".into());
    r.to = Some("oo".into());
    assert_eq!(text(&r), "sqrt(pi)");
    let mut r = req("integrate", "x^2");
    r.from = Some("0".into());
    r.to = Some("3".into());
    assert_eq!(text(&r), "9");
}

#[test]
fn solutions_satisfy_their_equations() {
    let mut quadratic = req("solve", "x^2 - 5*x + 6 = 0");
    quadratic.var = vec!["x".into()];
    let answer = ok(&quadratic);
    let solutions = answer.result.solutions.expect("solutions");
    let mut values: Vec<String> = solutions.iter().map(|s| s["x"].text.clone()).collect();
    values.sort();
    assert_eq!(values, ["2", "3"]);
    for s in &solutions {
        let check = text(&req(
            "simplify",
            &format!("({v})^2 - 5*({v}) + 6", v = s["x"].text),
        ));
        assert_eq!(check, "0");
        assert!(s["x"].srepr.starts_with("Integer("));
    }
    // A system, written with Eq and ==.
    let system = req("solve", "[Eq(x + y, 10), x - y == 4]");
    let solutions = ok(&system).result.solutions.expect("solutions");
    assert_eq!(solutions.len(), 1);
    let (x, y) = (&solutions[0]["x"].text, &solutions[0]["y"].text);
    assert_eq!((x.as_str(), y.as_str()), ("7", "3"));
    assert_eq!(text(&req("simplify", &format!("({x}) + ({y}) - 10"))), "0");
    // Irrational roots, substituted back exactly.
    let solutions = ok(&req("solve", "x^2 - 2"))
        .result
        .solutions
        .expect("solutions");
    assert_eq!(solutions.len(), 2);
    for s in solutions {
        assert_eq!(
            text(&req("expand", &format!("({})^2 - 2", s["x"].text))),
            "0"
        );
    }
}

#[test]
fn limits_series_and_evalf() {
    let mut r = req("limit", "sin(x)/x");
    r.at = Some("0".into());
    assert_eq!(text(&r), "1");
    let mut r = req("limit", "1/x");
    r.at = Some("0".into());
    r.dir = Some("-".into());
    assert_eq!(text(&r), "-oo");
    let mut r = req("series", "exp(x)");
    r.order = Some(4);
    assert_eq!(text(&r), "1 + x + x**2/2 + x**3/6 + O(x**4)");
    let mut r = req("evalf", "pi");
    r.digits = Some(30);
    assert_eq!(text(&r), "3.14159265358979323846264338328");
}

#[test]
fn simplify_factor_expand() {
    assert_eq!(text(&req("simplify", "sin(x)^2 + cos(x)^2")), "1");
    assert_eq!(
        text(&req("factor", "x^4 - 1")),
        "(x - 1)*(x + 1)*(x**2 + 1)"
    );
    assert_eq!(text(&req("expand", "(x + 1)^3")), "x**3 + 3*x**2 + 3*x + 1");
}

#[test]
fn exact_linear_algebra_on_rational_matrices() {
    assert_eq!(text(&req("det", "[[1, 2], [3, 4]]")), "-2");
    assert_eq!(
        text(&req("inverse", "Matrix([[2, 1], [1, 1]])")),
        "Matrix([[1, -1], [-1, 2]])"
    );
    assert_eq!(text(&req("rank", "[[1, 2], [2, 4]]")), "1");
    assert_eq!(
        text(&req("nullspace", "[[1, 2], [2, 4]]")),
        "(Matrix([\n[-2],\n[ 1]]),)"
    );
    assert_eq!(
        text(&req("rref", "[[1, 2], [3, 4]]")),
        "(Matrix([\n[1, 0],\n[0, 1]]), (0, 1))"
    );
    assert_eq!(text(&req("eigenvals", "[[2, 1], [1, 2]]")), "{1: 1, 3: 1}");
    assert_eq!(text(&req("det", "[[1/2, 1/3], [1/4, 1/5]]")), "1/60");
    let singular = call(&req("inverse", "[[1, 2], [2, 4]]"));
    assert_eq!(singular.status, EvalStatus::Error);
    assert!(singular
        .result
        .message
        .expect("message")
        .contains("NonInvertibleMatrixError"));
}

#[test]
fn polynomial_operations() {
    assert_eq!(text(&req("gcd", "[x^2 - 1, x^2 - 2*x + 1]")), "x - 1");
    assert_eq!(
        text(&req("div", "[x^3 + 1, x + 2]")),
        "(x**2 - 2*x + 4, -7)"
    );
    let mut r = req("resultant", "[x^2 + y, x - y]");
    r.var = vec!["x".into()];
    assert_eq!(text(&r), "y**2 + y");
    let mut r = req("groebner", "[x*y - 1, x^2 + y^2 - 4]");
    r.var = vec!["x".into(), "y".into()];
    assert_eq!(text(&r), "(x + y**3 - 4*y, y**4 - 4*y**2 + 1)");
}

#[test]
fn division_by_zero_and_unsupported_mathematics_are_error() {
    let r = call(&req("simplify", "1/0"));
    assert_eq!(r.status, EvalStatus::Error);
    assert!(r
        .result
        .message
        .expect("message")
        .contains("division by zero"));
    let r = call(&req("solve", "sin(x) + x^5 = exp(x)*cosh(x)^x"));
    assert_eq!(r.status, EvalStatus::Error, "{:?}", r.result);
    assert!(r
        .result
        .message
        .expect("message")
        .contains("NotImplementedError"));
}

#[test]
fn malformed_input_is_invalid_input_with_the_parsers_message() {
    let r = call(&req("simplify", "(x + 1"));
    assert_eq!(r.status, EvalStatus::InvalidInput, "{:?}", r.result);
    assert!(r.result.message.expect("message").contains("never closed"));
    assert_eq!(r.result.location.map(|l| l.line), Some(1));
    let r = call(&req("simplify", "x + * 2"));
    assert_eq!(r.status, EvalStatus::InvalidInput);
    assert!(r
        .result
        .message
        .expect("message")
        .contains("invalid syntax"));
    let location = r.result.location.expect("location");
    assert_eq!((location.line, location.column), (1, Some(5)));
    // `^` and `=` are rewritten before parsing; locations still point into the input.
    let r = call(&req("solve", "x^ = 2"));
    assert_eq!(r.status, EvalStatus::InvalidInput);
    assert_eq!(r.result.location.and_then(|l| l.column), Some(4));
    let r = call(&req("diff", "x*y"));
    assert_eq!(
        r.status,
        EvalStatus::InvalidInput,
        "ambiguous variable: {:?}",
        r.result
    );
}

/// Inputs refused before SymPy sees them, each with a host path its side effect would create.
fn attacks() -> Vec<(String, PathBuf)> {
    let p = |name: &str| PathBuf::from(format!("/tmp/capsci-sympy-{name}-{}", std::process::id()));
    let mut out = Vec::new();
    let f = p("import");
    out.push((
        format!("__import__('os').system('touch {}')", f.display()),
        f,
    ));
    let f = p("class");
    out.push((
        format!(
            "x.__class__.__mro__[1].__subclasses__()[0]('touch {}')",
            f.display()
        ),
        f,
    ));
    let f = p("lambda");
    out.push((
        format!(
            "(lambda: __import__('os').system('touch {}'))()",
            f.display()
        ),
        f,
    ));
    let f = p("comprehension");
    out.push((
        format!(
            "[__import__('os').system('touch {}') for i in [1]]",
            f.display()
        ),
        f,
    ));
    let f = p("fullwidth");
    // Fullwidth letters fold (NFKC) into `__import__` in Python's parser.
    out.push((
        format!(
            "\u{ff3f}\u{ff3f}\u{ff49}\u{ff4d}\u{ff50}\u{ff4f}\u{ff52}\u{ff54}\u{ff3f}\u{ff3f}('os').system('touch {}')",
            f.display()
        ),
        f,
    ));
    let f = p("mathbold");
    // Mathematical bold letters fold into `eval`.
    out.push((
        format!(
            "\u{1d41e}\u{1d42f}\u{1d41a}\u{1d425}('open(\"{}\", \"w\")')",
            f.display()
        ),
        f,
    ));
    let f = p("fstring");
    out.push((
        format!(
            "f'{{__import__(\"os\").system(\"touch {}\")}}'",
            f.display()
        ),
        f,
    ));
    let f = p("walrus");
    out.push((format!("(y := open('{}', 'w'))", f.display()), f));
    out
}

#[test]
fn refused_inputs_never_reach_sympy_and_leave_no_side_effect() {
    for (expr, path) in attacks() {
        let r = call(&req("simplify", &expr));
        assert_eq!(r.status, EvalStatus::Refused, "{expr}: {:?}", r.result);
        assert_eq!(r.outcome.exit, ExitReason::NotRun, "{expr}");
        assert!(!path.exists(), "{expr} created {}", path.display());
    }
    for expr in [
        "x[0]",
        "getattr(x, y)",
        "eval(x)",
        "exec(x)",
        "_x",
        "x.func",
    ] {
        let r = call(&req("simplify", expr));
        assert_eq!(r.status, EvalStatus::Refused, "{expr}: {:?}", r.result);
    }
}

#[test]
fn the_worker_refuses_on_its_own_when_the_rust_filter_is_bypassed() {
    let limits = limits();
    let policy = policy(&limits);
    for (expr, path) in attacks() {
        let r = sympy::eval_unfiltered(
            &*env().sandbox,
            &policy,
            &env().config,
            &req("simplify", &expr),
            &CancelToken::new(),
        );
        assert_ne!(
            r.outcome.exit,
            ExitReason::NotRun,
            "{expr}: the worker must have run"
        );
        assert!(
            matches!(r.status, EvalStatus::Refused | EvalStatus::InvalidInput),
            "{expr}: {:?} {:?}",
            r.status,
            r.result
        );
        assert!(!path.exists(), "{expr} created {}", path.display());
    }
    // Names the parser folds from look-alikes are refused by the worker too.
    let r = sympy::eval_unfiltered(
        &*env().sandbox,
        &policy,
        &env().config,
        &req("simplify", "\u{ff45}\u{ff56}\u{ff41}\u{ff4c}(x)"),
        &CancelToken::new(),
    );
    assert_eq!(r.status, EvalStatus::Refused, "{:?}", r.result);
    assert!(r.result.message.expect("message").contains("folds to"));
}

#[test]
fn huge_work_ends_as_resource_exceeded_or_timeout() {
    let r = call(&req("simplify", "2**2**2**30"));
    assert_eq!(r.status, EvalStatus::ResourceExceeded, "{:?}", r.result);
    let r = call(&req("simplify", "factorial(10**9)"));
    assert_eq!(r.status, EvalStatus::ResourceExceeded, "{:?}", r.result);
    // Input too deep to walk or to parse: a typed answer, not a crash.
    let long_sum = vec!["x"; 15_000].join("+");
    let r = call(&req("simplify", &long_sum));
    assert_eq!(r.status, EvalStatus::ResourceExceeded, "{:?}", r.result);
    let r = call(&req("simplify", &format!("{}x", "-".repeat(100_000))));
    assert_eq!(r.status, EvalStatus::InvalidInput, "{:?}", r.result);
    // Work below the pre-checks but beyond the limits: the sandbox ends it.
    let limits = Limits {
        wall_s: 3.0,
        cpu_s: 3.0,
        ..limits()
    };
    let r = call_with(&req("factor", "x^2000 - y^2000 + x*y^1999 - 7"), &limits);
    assert!(
        matches!(r.status, EvalStatus::Timeout | EvalStatus::ResourceExceeded),
        "{:?} {:?}",
        r.status,
        r.outcome.exit
    );
}

#[test]
fn hot_spares_have_sympy_loaded_and_serve_one_call_each() {
    let limits = limits();
    let pool = SparePool::new(
        env().sandbox.clone(),
        policy(&limits),
        sympy::spare_template(&env().config),
        1,
    )
    .expect("spare pool");
    assert!(
        pool.wait_ready(1, Duration::from_secs(60)),
        "a spare started"
    );
    for _ in 0..2 {
        // Let the spare finish importing SymPy, then call it.
        assert!(pool.wait_ready(1, Duration::from_secs(60)));
        let r = sympy::eval_with_spare(&pool, &req("diff", "sin(x)*x"), &CancelToken::new());
        assert_eq!(r.status, EvalStatus::Ok, "{:?}", r.result);
        assert_eq!(r.result.text.as_deref(), Some("x*cos(x) + sin(x)"));
    }
    assert!(pool.stats().hot >= 2, "{:?}", pool.stats());
}
