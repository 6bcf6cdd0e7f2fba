//! `capsci-jail`: the sandbox set-up helper (see `capsci_sandbox::jail`). Never run by hand.

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let err = capsci_sandbox::jail::main_with_args(&args);
    eprintln!("capsci-jail: {err}");
    std::process::exit(capsci_sandbox::jail::JAIL_FAILURE_CODE);
}
