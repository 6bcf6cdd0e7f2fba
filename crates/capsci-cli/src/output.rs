//! Standard output for the CLI: a reader that closes the pipe early (`capsci log show | head`)
//! ends capsci quietly instead of making it panic.

use std::io::Write;

/// Writes one line to stdout; on a closed pipe exits 0 (the reader has what it wanted).
pub fn line(args: std::fmt::Arguments<'_>) {
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_fmt(args).and_then(|()| out.write_all(b"\n")) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("capsci: cannot write to stdout: {e}");
        std::process::exit(2);
    }
}

/// `println!` that survives a closed pipe.
#[macro_export]
macro_rules! out {
    () => { $crate::output::line(format_args!("")) };
    ($($arg:tt)*) => { $crate::output::line(format_args!($($arg)*)) };
}
