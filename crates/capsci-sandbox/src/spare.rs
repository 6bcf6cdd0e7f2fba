//! Hot spares: sandboxed backend processes started ahead of time, blocked reading stdin.
//!
//! Each call takes one spare (a fresh process, never reused: DESIGN.md invariant 7), writes its
//! stdin, closes it and collects the outcome. A dedicated long-lived thread refills the pool;
//! the spares are started from that thread, so their parent-death signal fires only when the
//! pool (or capsci) is gone. Dropping the pool kills every waiting spare.

use crate::bwrap::BwrapSandbox;
use crate::error::SandboxError;
use crate::run::Started;
use crate::{CancelToken, Command, Outcome, Sandbox, SandboxPolicy};
use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Instant;

/// Extra CPU seconds the `RLIMIT_CPU` backstop of a spare allows for its start-up (loading
/// SymPy); the cgroup CPU limit, when present, counts from the call only.
const SPARE_STARTUP_CPU_S: u64 = 30;

/// How long the refill thread waits for a new spare's tool to block on stdin.
const SPARE_READY_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

/// Counters of a pool, for tests and the benchmark.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SpareStats {
    /// Calls served by a waiting spare.
    pub hot: u64,
    /// Calls that found no spare ready and started cold.
    pub cold: u64,
    /// Spares started so far.
    pub started: u64,
    /// Spares that failed to start (the pool keeps trying).
    pub start_failures: u64,
}

#[derive(Debug, Default)]
struct State {
    ready: VecDeque<Started>,
    stop: bool,
    stats: SpareStats,
}

#[derive(Debug)]
struct Shared {
    sandbox: Arc<BwrapSandbox>,
    policy: SandboxPolicy,
    template: Command,
    size: usize,
    state: Mutex<State>,
    changed: Condvar,
}

/// A pool of `size` single-use sandboxed workers for one backend command.
#[derive(Debug)]
pub struct SparePool {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl SparePool {
    /// Starts the pool's refill thread, which keeps `size` spares of `template` (its `stdin`
    /// is ignored; `files` are written into every spare's work directory) started under `policy`.
    pub fn new(
        sandbox: Arc<BwrapSandbox>,
        policy: SandboxPolicy,
        template: Command,
        size: usize,
    ) -> Result<Self, SandboxError> {
        let shared = Arc::new(Shared {
            sandbox,
            policy,
            template,
            size,
            state: Mutex::new(State::default()),
            changed: Condvar::new(),
        });
        let worker = shared.clone();
        let thread = std::thread::Builder::new()
            .name("capsci-spare-pool".into())
            .spawn(move || refill_loop(&worker))
            .map_err(SandboxError::Thread)?;
        Ok(SparePool {
            shared,
            thread: Some(thread),
        })
    }

    /// Runs one call: on a waiting spare when one is ready, else on a cold sandbox. The wall
    /// limit counts from now.
    pub fn run(&self, stdin: Vec<u8>, cancel: &CancelToken) -> Result<Outcome, SandboxError> {
        let begin = Instant::now();
        let spare = {
            let mut state = self.lock();
            let mut found = None;
            while let Some(mut s) = state.ready.pop_front() {
                if s.is_alive() {
                    found = Some(s);
                    break;
                }
            }
            if found.is_some() {
                state.stats.hot += 1;
            } else {
                state.stats.cold += 1;
            }
            found
        };
        // The refill is signalled after the call, so starting the next spare does not compete
        // for the CPU with the call being served.
        let outcome = match spare {
            Some(spare) => spare.finish(stdin, cancel, begin),
            None => {
                let mut command = self.shared.template.clone();
                command.stdin = stdin;
                self.shared
                    .sandbox
                    .run(&self.shared.policy, command, cancel)
            }
        };
        self.shared.changed.notify_all();
        outcome
    }

    /// Spares waiting now.
    pub fn ready(&self) -> usize {
        self.lock().ready.len()
    }

    /// Blocks until `n` spares are waiting (at most `size`) or `timeout` passes; true if reached.
    pub fn wait_ready(&self, n: usize, timeout: std::time::Duration) -> bool {
        let until = Instant::now() + timeout;
        let mut state = self.lock();
        loop {
            if state.ready.len() >= n.min(self.shared.size) {
                return true;
            }
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            state = match self.shared.changed.wait_timeout(state, left) {
                Ok((s, _)) => s,
                Err(p) => p.into_inner().0,
            };
        }
    }

    /// Counters so far.
    pub fn stats(&self) -> SpareStats {
        self.lock().stats
    }

    /// The policy every spare runs under.
    pub fn policy(&self) -> &SandboxPolicy {
        &self.shared.policy
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.shared.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn refill_loop(shared: &Shared) {
    let mut failures_in_a_row = 0u32;
    loop {
        {
            let mut state = shared.state.lock().unwrap_or_else(|p| p.into_inner());
            while !state.stop && state.ready.len() >= shared.size {
                state = shared
                    .changed
                    .wait(state)
                    .unwrap_or_else(|p| p.into_inner());
            }
            if state.stop {
                // Kill the waiting spares here, on the thread that spawned them.
                let spares: Vec<Started> = state.ready.drain(..).collect();
                drop(state);
                drop(spares);
                return;
            }
        }
        let started = shared
            .sandbox
            .start(&shared.policy, &shared.template, SPARE_STARTUP_CPU_S)
            .map(|mut spare| {
                // Offer the spare only once its tool waits on stdin (start-up done), so a call
                // never pays for the rest of a start-up; give up waiting after a bound.
                let until = Instant::now() + SPARE_READY_WAIT;
                while spare.is_alive() && !spare.blocked_on_stdin() && Instant::now() < until {
                    std::thread::sleep(std::time::Duration::from_millis(1));
                }
                spare
            });
        let mut state = shared.state.lock().unwrap_or_else(|p| p.into_inner());
        // A spare that died while starting (missing program, bad policy) is a failure: it is
        // dropped (killed, cleaned up) and the pool backs off instead of spinning.
        let started = started
            .ok()
            .and_then(|mut spare| spare.is_alive().then_some(spare));
        match started {
            Some(spare) => {
                failures_in_a_row = 0;
                state.stats.started += 1;
                state.ready.push_back(spare);
                shared.changed.notify_all();
            }
            None => {
                state.stats.start_failures += 1;
                failures_in_a_row = failures_in_a_row.saturating_add(1);
                // Back off so a broken policy does not spin; calls fall back to cold starts.
                let pause = std::time::Duration::from_millis(10u64 << failures_in_a_row.min(8));
                let _ = shared.changed.wait_timeout(state, pause);
            }
        }
    }
}

impl Drop for SparePool {
    fn drop(&mut self) {
        {
            let mut state = self.lock();
            state.stop = true;
            self.shared.changed.notify_all();
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
