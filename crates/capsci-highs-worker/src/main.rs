//! `capsci-highs-worker MODEL [--time-limit S] [--mip-rel-gap G] [--threads N] [--seed N]
//! [--presolve on|off] [--log FILE]`: solves one model file with HiGHS and prints one JSON
//! document ([`capsci_highs_worker::Report`]) on stdout. Runs inside capsci's sandbox.
//!
//! Exit status 0 whenever a report was printed (whatever HiGHS concluded), 2 on a usage error.

use capsci_highs_worker::{solve_file, SolveOptions};
use std::io::Write;
use std::path::PathBuf;

fn usage(message: &str) -> ! {
    eprintln!("capsci-highs-worker: {message}");
    eprintln!("usage: capsci-highs-worker MODEL [--time-limit S] [--mip-rel-gap G] [--threads N] [--seed N] [--presolve on|off] [--log FILE]");
    std::process::exit(2);
}

fn value<T: std::str::FromStr>(flag: &str, text: Option<String>) -> T {
    let Some(text) = text else {
        usage(&format!("{flag} needs a value"))
    };
    text.parse()
        .unwrap_or_else(|_| usage(&format!("{flag}: not a valid value: {text}")))
}

fn main() {
    let mut args = std::env::args().skip(1);
    let mut model: Option<PathBuf> = None;
    let mut options = SolveOptions::default();
    let mut log = PathBuf::from("highs.log");
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--time-limit" => options.time_limit = Some(value(&arg, args.next())),
            "--mip-rel-gap" => options.mip_rel_gap = Some(value(&arg, args.next())),
            "--threads" => options.threads = Some(value(&arg, args.next())),
            "--seed" => options.random_seed = Some(value(&arg, args.next())),
            "--presolve" => {
                options.presolve = match args.next().as_deref() {
                    Some("on") => Some(true),
                    Some("off") => Some(false),
                    _ => usage("--presolve takes on or off"),
                }
            }
            "--log" => log = value(&arg, args.next()),
            flag if flag.starts_with("--") => usage(&format!("unknown option {flag}")),
            path => {
                if model.replace(PathBuf::from(path)).is_some() {
                    usage("only one model file");
                }
            }
        }
    }
    let Some(model) = model else {
        usage("no model file given")
    };
    let report = solve_file(&model, &options, &log);
    let json = match serde_json::to_string(&report) {
        Ok(json) => json,
        Err(e) => {
            eprintln!("capsci-highs-worker: cannot encode the report: {e}");
            std::process::exit(1);
        }
    };
    let mut out = std::io::stdout().lock();
    if let Err(e) = writeln!(out, "{json}").and_then(|()| out.flush()) {
        eprintln!("capsci-highs-worker: cannot write the report: {e}");
        std::process::exit(1);
    }
}
