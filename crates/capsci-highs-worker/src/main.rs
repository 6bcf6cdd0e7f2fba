//! The HiGHS solve worker (issue 6 builds it out).

fn main() {
    eprintln!("capsci-highs-worker: not built yet");
    std::process::exit(2);
}
