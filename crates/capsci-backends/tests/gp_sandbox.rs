//! NumberTheory.eval through the real sandbox with the real gp (Debian's pari-gp 2.15): number
//! theory answers, structured values, errors, limits, every refused input with its side effect
//! checked, the sandbox alone with the filter bypassed, and hot spares.

use capsci_backends::gp::{self, GpConfig, GpEval};
use capsci_core::{EvalStatus, ExitReason, Limits};
use capsci_sandbox::{BwrapSandbox, CancelToken, SandboxPolicy, SparePool};
use capsci_store::{ClosureSpec, Closures};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

struct Env {
    sandbox: Arc<BwrapSandbox>,
    binds: Vec<PathBuf>,
}

/// The bwrap sandbox and gp's package closure (computed by capsci-store from gp's roots).
fn env() -> &'static Env {
    static ENV: OnceLock<Env> = OnceLock::new();
    ENV.get_or_init(|| {
        let sandbox = Arc::new(BwrapSandbox::detect().expect(
            "bwrap sandbox (build the helper first: cargo build -p capsci-sandbox --bin capsci-jail)",
        ));
        let dir = std::env::temp_dir().join(format!("capsci-gp-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let closures = Closures::open(&dir.join("closures.db")).expect("closure db");
        let roots = gp::roots();
        let spec = ClosureSpec {
            name: "gp".into(),
            executables: roots.executables,
            trees: roots.trees,
            ..Default::default()
        };
        let (closure, _) = closures.compute(&spec).expect("gp closure");
        let _ = std::fs::remove_dir_all(&dir);
        Env { sandbox, binds: closure.bind_paths() }
    })
}

fn limits() -> Limits {
    Limits {
        wall_s: 30.0,
        cpu_s: 30.0,
        memory_mb: 1024,
        ..Limits::default()
    }
}

fn policy(limits: &Limits) -> SandboxPolicy {
    gp::sandbox_policy(&env().binds, limits)
}

fn run_with(code: &str, limits: &Limits) -> GpEval {
    let config = GpConfig::for_limits(limits);
    gp::eval(
        &*env().sandbox,
        &policy(limits),
        &config,
        code,
        &CancelToken::new(),
    )
}

fn run(code: &str) -> GpEval {
    run_with(code, &limits())
}

fn ok(code: &str) -> GpEval {
    let r = run(code);
    assert_eq!(
        r.status,
        EvalStatus::Ok,
        "{code}: {:?} / {:?}",
        r.result,
        r.outcome.stderr
    );
    r
}

#[test]
fn factors_two_to_the_128_plus_one() {
    let r = ok("factor(2^128+1)");
    assert_eq!(r.result.value_type.as_deref(), Some("t_MAT"));
    assert_eq!(
        r.result.structured,
        Some(json!([
            ["59649589127497217", "1"],
            ["5704689200685129054721", "1"]
        ]))
    );
    let value = r.result.value.expect("printed value");
    assert!(value.contains("5704689200685129054721"), "{value}");
    assert_eq!(r.outcome.exit, ExitReason::Exited(0));
}

#[test]
fn proves_a_mersenne_prime() {
    let r = ok("isprime(2^127-1)");
    assert_eq!(r.result.structured, Some(json!("1")));
    assert_eq!(r.result.value_type.as_deref(), Some("t_INT"));
    assert_eq!(ok("isprime(2^128+1)").result.structured, Some(json!("0")));
}

#[test]
fn class_numbers_of_quadratic_fields() {
    assert_eq!(ok("qfbclassno(-23)").result.structured, Some(json!("3")));
    assert_eq!(
        ok("quadclassunit(-4*5).no").result.structured,
        Some(json!("2"))
    );
}

#[test]
fn elliptic_curve_11a1_point_counts() {
    let r = ok("E = ellinit([0,-1,1,-10,-20]);\n[ellap(E, 5), ellcard(E, 5), ellap(E, 7)]");
    // a_5 = 1 so #E(F_5) = 5 + 1 - 1 = 5; a_7 = -2.
    assert_eq!(r.result.structured, Some(json!(["1", "5", "-2"])));
}

#[test]
fn high_precision_pi_with_backslash_p_and_with_default() {
    // 99 digits after the point: the 100th is rounded in the display.
    let pi100 = "3.14159265358979323846264338327950288419716939937510582097494459230781640628620899862803482534211706";
    for code in ["\\p 100\nPi", "default(realprecision, 100); Pi"] {
        let r = ok(code);
        assert_eq!(r.result.value_type.as_deref(), Some("t_REAL"), "{code}");
        let s = r.result.structured.expect("structured real");
        let digits = s["real"].as_str().expect("real text");
        assert!(digits.starts_with(pi100), "{code}: {digits}");
        assert!(s["digits"].as_u64().expect("digits") >= 100, "{s}");
        assert!(r.result.value.expect("value").contains(pi100));
    }
}

#[test]
fn structured_values_of_each_kind() {
    let cases = [
        ("1/3", "t_FRAC", json!({"num": "1", "den": "3"})),
        ("-2^70", "t_INT", json!("-1180591620717411303424")),
        (
            "[1, 2; 3, 4/5]",
            "t_MAT",
            json!([["1", "2"], ["3", {"num": "4", "den": "5"}]]),
        ),
        ("[1, 2]~", "t_COL", json!(["1", "2"])),
        ("[1, [2, 3]]", "t_VEC", json!(["1", ["2", "3"]])),
        (
            "x^3 - 2*x + 1/2",
            "t_POL",
            json!({"variable": "x", "coefficients": [{"num": "1", "den": "2"}, "-2", "0", "1"]}),
        ),
        (
            "Mod(3, 7)",
            "t_INTMOD",
            json!({"intmod": "3", "modulus": "7"}),
        ),
        ("1 + 2*I", "t_COMPLEX", json!({"re": "1", "im": "2"})),
        ("\"a\\\"b\"", "t_STR", json!({"string": "a\"b"})),
        ("Vecsmall([1, -2])", "t_VECSMALL", json!(["1", "-2"])),
    ];
    for (code, t, expected) in cases {
        let r = ok(code);
        assert_eq!(r.result.value_type.as_deref(), Some(t), "{code}");
        assert_eq!(r.result.structured, Some(expected), "{code}");
    }
    let r = ok("O(2^5) + 3");
    assert_eq!(r.result.value_type.as_deref(), Some("t_PADIC"));
    assert_eq!(
        r.result.structured.expect("structured")["unsupported"],
        "t_PADIC"
    );
}

#[test]
fn multi_statement_input_keeps_state_and_returns_the_last_value() {
    let r = ok("a = 2^10\nf(n) = n + 1;\n{\n  b = f(a);\n}\nb^2");
    assert_eq!(r.result.structured, Some(json!("1050625")));
    assert_eq!(r.result.value.as_deref(), Some("1024\n1050625"));
    // A last statement ending in `;` prints nothing but is still the result.
    let r = ok("y = 7^3;");
    assert_eq!(r.result.structured, Some(json!("343")));
    // Only settings: no result at all.
    let r = ok("\\p 20");
    assert_eq!(r.result.value_type, None);
}

#[test]
fn mathematical_errors_are_error_with_paris_message() {
    let r = run("1/0");
    assert_eq!(r.status, EvalStatus::Error);
    let message = r.result.message.expect("message");
    assert!(
        message.contains("*** _/_: impossible inverse in gdiv: 0."),
        "{message}"
    );
    let r = run("x = 1\nlog(0)");
    assert_eq!(r.status, EvalStatus::Error);
    assert!(r.result.message.expect("message").contains("domain error"));
    assert_eq!(r.result.location.map(|l| l.line), Some(2));
}

#[test]
fn syntax_errors_are_invalid_input_with_location() {
    let r = run("a = 1\nb = (a + 2");
    assert_eq!(r.status, EvalStatus::InvalidInput, "{:?}", r.result);
    let message = r.result.message.expect("message");
    assert!(message.contains("syntax error"), "{message}");
    assert_eq!(r.result.location.map(|l| l.line), Some(2));
    let r = run("1 + )");
    assert_eq!(r.status, EvalStatus::InvalidInput);
    let location = r.result.location.expect("location");
    assert_eq!((location.line, location.column), (1, Some(5)));
}

#[test]
fn stack_overflow_is_resource_exceeded() {
    let limits = Limits {
        memory_mb: 256,
        ..limits()
    };
    let r = run_with("vector(10^8, i, i);", &limits);
    assert_eq!(r.status, EvalStatus::ResourceExceeded, "{:?}", r.result);
    assert!(r
        .result
        .message
        .expect("message")
        .contains("the PARI stack overflows"));
}

#[test]
fn a_runaway_loop_ends_as_timeout() {
    let limits = Limits {
        wall_s: 2.0,
        cpu_s: 2.0,
        ..limits()
    };
    let r = run_with("while(1, )", &limits);
    assert_eq!(
        r.status,
        EvalStatus::Timeout,
        "{:?} {:?}",
        r.result,
        r.outcome.exit
    );
}

/// Inputs that must be refused, each with a host path its side effect would create.
fn attacks(tag: &str) -> Vec<(String, PathBuf)> {
    let p = |name: &str| PathBuf::from(format!("/tmp/capsci-{tag}-{name}-{}", std::process::id()));
    let mut out = Vec::new();
    let mut add = |code: String, path: PathBuf| out.push((code, path));
    let f = p("system");
    add(format!("system(\"touch {}\")", f.display()), f);
    let f = p("extern");
    add(format!("extern(\"touch {}\")", f.display()), f);
    let f = p("externstr");
    add(format!("externstr(\"touch {}\")", f.display()), f);
    let f = p("write");
    add(format!("write(\"{}\", 1)", f.display()), f);
    let f = p("write1");
    add(format!("write1(\"{}\", 1)", f.display()), f);
    let f = p("writebin");
    add(format!("writebin(\"{}\", 1)", f.display()), f);
    let f = p("writetex");
    add(format!("writetex(\"{}\", 1)", f.display()), f);
    let f = p("fileopen");
    add(
        format!("fileclose(fileopen(\"{}\", \"w\"))", f.display()),
        f,
    );
    let f = p("logfile");
    add(
        format!(
            "default(logfile, \"{}\"); default(log, 1); 1+1",
            f.display()
        ),
        f,
    );
    let f = p("backslash-l");
    add(format!("\\l {}\n1+1", f.display()), f);
    let f = p("backslash-w");
    add(format!("1+1\n\\w {}", f.display()), f);
    let f = p("split-name");
    add(format!("sys/* x */tem(\"touch {}\")", f.display()), f);
    let f = p("continued");
    add(format!("sy\\\nstem(\"touch {}\")", f.display()), f);
    let f = p("alias");
    add(format!("alias(s, system); s(\"touch {}\")", f.display()), f);
    let f = p("eval");
    add(
        format!("eval(Str(\"sys\", \"tem(\\\"touch {}\\\")\"))", f.display()),
        f,
    );
    let f = p("install");
    add(
        format!(
            "install(\"system\", \"vs\", \"sh\"); sh(\"touch {}\")",
            f.display()
        ),
        f,
    );
    let f = p("secure");
    add(
        format!("default(secure, 0); system(\"touch {}\")", f.display()),
        f,
    );
    let f = p("psplot");
    add(
        format!("default(psfile, \"{}\"); psploth(x = 0, 1, x)", f.display()),
        f,
    );
    out
}

#[test]
fn refused_inputs_run_nothing_and_leave_no_side_effect() {
    for (code, path) in attacks("refused") {
        let r = run(&code);
        assert_eq!(r.status, EvalStatus::Refused, "{code}: {:?}", r.result);
        assert!(r.result.message.is_some());
        assert_eq!(r.outcome.exit, ExitReason::NotRun, "{code}");
        assert!(r.stdin.is_empty(), "{code}");
        assert!(!path.exists(), "{code} created {}", path.display());
    }
    for code in [
        "readstr(\"/etc/passwd\")",
        "read(\"/etc/passwd\")",
        "readvec(\"/etc/passwd\")",
        "\\r /etc/passwd",
        "getenv(\"HOME\")",
        "input()",
        "quit",
        "?system",
        "default(datadir, \"/\")",
        "dbg_x(1)",
        "plot(x = 0, 1, x)",
        "kill(x)",
    ] {
        let r = run(code);
        assert_eq!(r.status, EvalStatus::Refused, "{code}: {:?}", r.result);
        assert_eq!(r.outcome.exit, ExitReason::NotRun, "{code}");
    }
}

#[test]
fn the_sandbox_holds_with_the_filter_bypassed() {
    let limits = limits();
    let config = GpConfig::for_limits(&limits);
    let policy = policy(&limits);
    for (code, path) in attacks("bypass") {
        let r = gp::eval_unfiltered(
            &*env().sandbox,
            &policy,
            &config,
            &code,
            &CancelToken::new(),
        );
        assert_ne!(
            r.outcome.exit,
            ExitReason::NotRun,
            "{code}: the process must have run"
        );
        assert!(
            !path.exists(),
            "{code} escaped the sandbox: {} exists",
            path.display()
        );
    }
    // Reading host files: /etc/passwd is not in gp's closure, so it is not there to read.
    for code in [
        "readstr(\"/etc/passwd\")",
        "read(\"/etc/passwd\")",
        "externstr(\"cat /etc/passwd\")",
    ] {
        let r = gp::eval_unfiltered(&*env().sandbox, &policy, &config, code, &CancelToken::new());
        let stdout = String::from_utf8_lossy(&r.outcome.stdout);
        assert!(
            !stdout.contains("root:"),
            "{code} read /etc/passwd: {stdout}"
        );
        assert_ne!(r.status, EvalStatus::Ok, "{code}: {:?}", r.result);
    }
    // The sandbox's environment is only what the policy gives.
    let r = gp::eval_unfiltered(
        &*env().sandbox,
        &policy,
        &config,
        "getenv(\"LC_ALL\")",
        &CancelToken::new(),
    );
    assert_eq!(r.result.structured, Some(json!({"string": "C"})));
}

#[test]
fn hot_spares_serve_calls_and_are_single_use() {
    let limits = limits();
    let config = GpConfig::for_limits(&limits);
    let pool = SparePool::new(
        env().sandbox.clone(),
        policy(&limits),
        gp::spare_template(&config),
        1,
    )
    .expect("spare pool");
    assert!(
        pool.wait_ready(1, Duration::from_secs(30)),
        "a spare started"
    );
    let first = gp::eval_with_spare(&pool, "secret = 42; factor(2^128+1)", &CancelToken::new());
    assert_eq!(first.status, EvalStatus::Ok, "{:?}", first.result);
    assert_eq!(first.result.value_type.as_deref(), Some("t_MAT"));
    assert!(
        pool.wait_ready(1, Duration::from_secs(30)),
        "the pool refilled"
    );
    // A new process: `secret` is an unknown name again (a polynomial variable), not 42.
    let second = gp::eval_with_spare(&pool, "secret", &CancelToken::new());
    assert_eq!(
        second.result.value_type.as_deref(),
        Some("t_POL"),
        "{:?}",
        second.result
    );
    assert!(pool.stats().hot >= 2, "{:?}", pool.stats());
    // The policy still answers first on the spare path.
    let refused = gp::eval_with_spare(&pool, "system(\"id\")", &CancelToken::new());
    assert_eq!(refused.status, EvalStatus::Refused);
}

#[test]
fn cancelling_stops_a_running_call() {
    let limits = limits();
    let config = GpConfig::for_limits(&limits);
    let cancel = CancelToken::new();
    let canceller = {
        let cancel = cancel.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(500));
            cancel.cancel();
        })
    };
    let r = gp::eval(
        &*env().sandbox,
        &policy(&limits),
        &config,
        "while(1, )",
        &cancel,
    );
    canceller.join().expect("canceller");
    assert_eq!(r.status, EvalStatus::Cancelled, "{:?}", r.outcome.exit);
}

#[test]
fn closure_binds_gp_and_its_data() {
    let binds = &env().binds;
    assert!(binds.iter().any(|b| b == Path::new("/usr/bin/gp")));
    assert!(binds.iter().any(|b| b == Path::new("/usr/share/pari")));
    assert!(binds.iter().any(|b| b.to_string_lossy().contains("libgmp")));
    assert!(!binds
        .iter()
        .any(|b| b == Path::new("/etc") || b == Path::new("/")));
}
