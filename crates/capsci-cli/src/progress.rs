//! A spinner with the elapsed time on stderr, for calls that take over a second, when stderr is
//! a terminal. Scripts and pipes see nothing of it.

use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;
use std::sync::mpsc;
use std::time::Duration;

/// Runs `work`, showing `label` and the elapsed time once it has run for a second.
pub fn with_progress<T: Send>(label: &str, work: impl FnOnce() -> T + Send) -> T {
    if !std::io::stderr().is_terminal() {
        return work();
    }
    std::thread::scope(|scope| {
        let (done_tx, done_rx) = mpsc::channel::<()>();
        let handle = scope.spawn(move || {
            let value = work();
            let _ = done_tx.send(());
            value
        });
        if done_rx.recv_timeout(Duration::from_secs(1)).is_err() {
            let bar = ProgressBar::new_spinner();
            if let Ok(style) = ProgressStyle::with_template("{spinner} {msg} {elapsed}") {
                bar.set_style(style);
            }
            bar.set_message(label.to_string());
            bar.enable_steady_tick(Duration::from_millis(100));
            let _ = done_rx.recv();
            bar.finish_and_clear();
        }
        match handle.join() {
            Ok(value) => value,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    })
}
