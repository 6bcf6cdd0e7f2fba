//! Supervising one sandboxed process tree: stdin, bounded output, limits, kill, accounting.

use crate::bwrap::{JobDir, SlotGuard};
use crate::cgroup::JobCgroup;
use crate::error::SandboxError;
use crate::jail::STATUS_EXEC_LINE;
use crate::{CancelToken, Outcome, BOUNDARY_SHARED_KERNEL};
use capsci_core::{ExitReason, Limits, MemoryLimitBy, SandboxInfo, Usage};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::{Child, ChildStdin, ExitStatus};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How often limits other than wall time and exit are checked.
const POLL: Duration = Duration::from_millis(10);
/// Stdin up to this size is written by the calling thread (a pipe buffers 64 KiB).
const INLINE_STDIN: usize = 16 * 1024;

/// Stdout and stderr of one job, bounded together by the output limit.
#[derive(Debug)]
pub(crate) struct OutputBuf {
    stdout: Mutex<Vec<u8>>,
    stderr: Mutex<Vec<u8>>,
    total: AtomicU64,
    limit: u64,
    overflow: AtomicBool,
}

impl OutputBuf {
    pub(crate) fn new(limit: u64) -> Self {
        OutputBuf {
            stdout: Mutex::new(Vec::new()),
            stderr: Mutex::new(Vec::new()),
            total: AtomicU64::new(0),
            limit,
            overflow: AtomicBool::new(false),
        }
    }

    /// Keeps what fits; returns false once the limit is passed.
    fn push(&self, to_stderr: bool, bytes: &[u8]) -> bool {
        let before = self.total.fetch_add(bytes.len() as u64, Ordering::SeqCst);
        let room = self.limit.saturating_sub(before) as usize;
        let keep = &bytes[..bytes.len().min(room)];
        let buf = if to_stderr {
            &self.stderr
        } else {
            &self.stdout
        };
        buf.lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend_from_slice(keep);
        if before + bytes.len() as u64 > self.limit {
            self.overflow.store(true, Ordering::SeqCst);
            return false;
        }
        true
    }

    fn take(&self) -> (Vec<u8>, Vec<u8>) {
        let out = std::mem::take(&mut *self.stdout.lock().unwrap_or_else(|p| p.into_inner()));
        let err = std::mem::take(&mut *self.stderr.lock().unwrap_or_else(|p| p.into_inner()));
        (out, err)
    }
}

enum Event {
    Exited(std::io::Result<ExitStatus>),
    Overflow,
    ReaderDone,
}

fn spawn_reader<R: Read + Send + 'static>(
    mut pipe: R,
    to_stderr: bool,
    output: Arc<OutputBuf>,
    events: Sender<Event>,
) -> Result<(), SandboxError> {
    std::thread::Builder::new()
        .name("capsci-sandbox-reader".into())
        .spawn(move || {
            let mut chunk = vec![0u8; 64 * 1024];
            loop {
                match pipe.read(&mut chunk) {
                    Ok(0) => break,
                    Ok(n) => {
                        if !output.push(to_stderr, &chunk[..n]) {
                            let _ = events.send(Event::Overflow);
                            break;
                        }
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(_) => break,
                }
            }
            let _ = events.send(Event::ReaderDone);
        })
        .map(|_| ())
        .map_err(SandboxError::Thread)
}

/// Why the supervisor killed the tree, if it did.
#[derive(Debug, Clone, Copy)]
enum Killed {
    Timeout,
    Cancelled,
    Output,
    Cpu,
    Pids,
}

/// A started sandbox process tree, waiting for its stdin (a hot spare, or a cold call about to
/// be fed). Dropping it kills the tree and removes its work directory and cgroups.
#[derive(Debug)]
pub(crate) struct Started {
    child: Option<Child>,
    pid: i32,
    stdin: Option<ChildStdin>,
    job: JobDir,
    cgroup: Option<JobCgroup>,
    slot: Option<SlotGuard>,
    output: Arc<OutputBuf>,
    events_tx: Sender<Event>,
    events: Receiver<Event>,
    limits: Limits,
    policy_hash: String,
    memory_by: MemoryLimitBy,
    enforcement: BTreeMap<String, String>,
    collect: Vec<PathBuf>,
}

impl std::fmt::Debug for Event {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Event::Exited(_) => "exited",
            Event::Overflow => "overflow",
            Event::ReaderDone => "reader_done",
        })
    }
}

fn children_rusage() -> (u64, u64) {
    use nix::sys::resource::{getrusage, UsageWho};
    match getrusage(UsageWho::RUSAGE_CHILDREN) {
        Ok(u) => {
            let ms = |t: nix::sys::time::TimeVal| {
                (t.tv_sec() as u64) * 1000 + (t.tv_usec() as u64) / 1000
            };
            (ms(u.user_time()) + ms(u.system_time()), u.max_rss() as u64)
        }
        Err(_) => (0, 0),
    }
}

impl Started {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        mut child: Child,
        job: JobDir,
        cgroup: Option<JobCgroup>,
        slot: SlotGuard,
        output: Arc<OutputBuf>,
        limits: Limits,
        policy_hash: String,
        memory_by: MemoryLimitBy,
        enforcement: BTreeMap<String, String>,
        collect: Vec<PathBuf>,
    ) -> Result<Self, SandboxError> {
        let (events_tx, events) = channel();
        let pid = child.id() as i32;
        let stdin = child.stdin.take();
        let stdout = child.stdout.take();
        let stderr = child.stderr.take();
        let mut started = Started {
            child: Some(child),
            pid,
            stdin,
            job,
            cgroup,
            slot: Some(slot),
            output,
            events_tx,
            events,
            limits,
            policy_hash,
            memory_by,
            enforcement,
            collect,
        };
        // On failure here, dropping `started` kills and cleans up.
        if let Some(out) = stdout {
            spawn_reader(
                out,
                false,
                started.output.clone(),
                started.events_tx.clone(),
            )?;
        } else {
            let _ = started.events_tx.send(Event::ReaderDone);
        }
        if let Some(err) = stderr {
            spawn_reader(err, true, started.output.clone(), started.events_tx.clone())?;
        } else {
            let _ = started.events_tx.send(Event::ReaderDone);
        }
        started
            .enforcement
            .insert("policy".into(), started.policy_hash.clone());
        Ok(started)
    }

    /// Whether the process already ended (a spare that died while waiting is not served).
    pub(crate) fn is_alive(&mut self) -> bool {
        matches!(self.child.as_mut().map(|c| c.try_wait()), Some(Ok(None)))
    }

    /// Descendants of the helper (bwrap, its init, the tool and anything it started).
    fn descendants(&self) -> Vec<i32> {
        let mut found = Vec::new();
        let mut frontier = vec![self.pid];
        while let Some(pid) = frontier.pop() {
            let children = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
                .unwrap_or_default();
            for child in children
                .split_whitespace()
                .filter_map(|c| c.parse::<i32>().ok())
            {
                found.push(child);
                frontier.push(child);
            }
        }
        found
    }

    /// Whether the tool is blocked reading its stdin (`read(0, ..)` in some thread of a
    /// descendant): the spare has finished starting and is ready to serve.
    pub(crate) fn blocked_on_stdin(&self) -> bool {
        self.descendants().into_iter().any(|pid| {
            std::fs::read_dir(format!("/proc/{pid}/task"))
                .into_iter()
                .flatten()
                .flatten()
                .any(|task| {
                    let syscall =
                        std::fs::read_to_string(task.path().join("syscall")).unwrap_or_default();
                    let mut fields = syscall.split_whitespace();
                    fields.next() == Some("0") && fields.next() == Some("0x0")
                })
        })
    }

    /// Kills the tree from the inside: SIGKILL to the namespace's init (bwrap's child) takes
    /// every process of the pid namespace with it, and bwrap (our child) then exits and reaps
    /// it, so nothing is orphaned to the host's init. With `escalate`, bwrap itself is killed
    /// too (its child then dies by `--die-with-parent`).
    fn kill_tree(&self, escalate: bool) {
        use nix::sys::signal::{kill, Signal};
        use nix::unistd::Pid;
        let children = std::fs::read_to_string(format!("/proc/{0}/task/{0}/children", self.pid))
            .unwrap_or_default();
        for child in children
            .split_whitespace()
            .filter_map(|c| c.parse::<i32>().ok())
        {
            let _ = kill(Pid::from_raw(child), Signal::SIGKILL);
        }
        if let Some(cg) = &self.cgroup {
            for pid in cg.pids().into_iter().filter(|p| *p != self.pid) {
                let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            }
        }
        if escalate {
            let _ = kill(Pid::from_raw(self.pid), Signal::SIGKILL);
        }
    }

    /// Feeds stdin, supervises until the tree is gone, and reports. `begin` is when the call
    /// started: the wall limit counts from there, not from when a spare was started.
    pub(crate) fn finish(
        mut self,
        stdin: Vec<u8>,
        cancel: &CancelToken,
        begin: Instant,
    ) -> Result<Outcome, SandboxError> {
        let cpu_base_ns = self.cgroup.as_ref().map(|c| c.cpu_ns()).unwrap_or(0);
        let rusage_base = children_rusage();
        if let Some(mut pipe) = self.stdin.take() {
            if stdin.len() <= INLINE_STDIN {
                // Fits in the empty pipe's buffer: the write cannot block.
                let _ = pipe.write_all(&stdin);
                drop(pipe);
            } else {
                std::thread::Builder::new()
                    .name("capsci-sandbox-stdin".into())
                    .spawn(move || {
                        let _ = pipe.write_all(&stdin);
                    })
                    .map_err(SandboxError::Thread)?;
            }
        }
        let Some(mut child) = self.child.take() else {
            return Err(SandboxError::Wait(std::io::Error::other(
                "process already taken",
            )));
        };
        let tx = self.events_tx.clone();
        let waiter = std::thread::Builder::new()
            .name("capsci-sandbox-wait".into())
            .spawn(move || {
                let status = child.wait();
                let _ = tx.send(Event::Exited(status));
            });
        if let Err(e) = waiter {
            // The child moved into the failed closure and was dropped unreaped; kill it.
            self.kill_tree(false);
            return Err(SandboxError::Thread(e));
        }
        let wall = Duration::from_secs_f64(self.limits.wall_s.max(0.0));
        let deadline = begin + wall;
        let cpu_limit_ns = (self.limits.cpu_s.max(0.0) * 1e9) as u64;
        let mut killed: Option<Killed> = None;
        let mut readers_done = 0;
        let status: std::io::Result<ExitStatus> = loop {
            let now = Instant::now();
            let wait = if killed.is_some() {
                Duration::from_millis(200)
            } else if now >= deadline {
                killed = Some(Killed::Timeout);
                self.kill_tree(false);
                continue;
            } else {
                POLL.min(deadline - now)
            };
            match self.events.recv_timeout(wait) {
                Ok(Event::Exited(status)) => break status,
                Ok(Event::Overflow) => {
                    if killed.is_none() {
                        killed = Some(Killed::Output);
                    }
                    self.kill_tree(false);
                }
                Ok(Event::ReaderDone) => readers_done += 1,
                Err(RecvTimeoutError::Timeout) => {
                    if killed.is_some() {
                        self.kill_tree(true);
                        continue;
                    }
                    if cancel.is_cancelled() {
                        killed = Some(Killed::Cancelled);
                    } else if let Some(cg) = &self.cgroup {
                        if cg.cpu_ns().saturating_sub(cpu_base_ns) >= cpu_limit_ns {
                            killed = Some(Killed::Cpu);
                        } else if cg.pids_refused() > 0 {
                            killed = Some(Killed::Pids);
                        }
                    }
                    if killed.is_some() {
                        self.kill_tree(false);
                    }
                }
                Err(RecvTimeoutError::Disconnected) => {
                    break Err(std::io::Error::other("supervisor channel closed"));
                }
            }
        };
        let wall_ms = begin.elapsed().as_millis() as u64;
        // bwrap reaped the namespace's init before it exited, so every process of the pid
        // namespace is gone and the pipes close; if a reader still waits after a grace period,
        // sweep the cgroup (the janitor sweeps it again before removing it).
        let until = Instant::now() + Duration::from_secs(2);
        let mut swept = false;
        while readers_done < 2 {
            let left = until.saturating_duration_since(Instant::now());
            match self
                .events
                .recv_timeout(left.min(Duration::from_millis(50)))
            {
                Ok(Event::ReaderDone) => readers_done += 1,
                Ok(_) => {}
                Err(RecvTimeoutError::Timeout) if !left.is_zero() => {
                    if !swept {
                        if let Some(cg) = &self.cgroup {
                            cg.kill_all(Duration::from_millis(500));
                        }
                        swept = true;
                    }
                }
                Err(_) => break,
            }
        }
        let status = status.map_err(SandboxError::Wait)?;
        let stats = self.cgroup.as_ref().map(|c| c.stats());
        let (cpu_ms, max_rss_kb) = match &stats {
            Some(s) => (
                s.cpu_ns.saturating_sub(cpu_base_ns) / 1_000_000,
                s.max_memory_bytes / 1024,
            ),
            None => {
                let after = children_rusage();
                (after.0.saturating_sub(rusage_base.0), after.1)
            }
        };
        let status_text = std::fs::read_to_string(&self.job.status).unwrap_or_default();
        let mut reached_exec = false;
        for line in status_text.lines() {
            if line == STATUS_EXEC_LINE {
                reached_exec = true;
            } else if line.starts_with("exec_error=") {
                reached_exec = false;
            } else if let Some((k, v)) = line.split_once('=') {
                self.enforcement.insert(k.to_string(), v.to_string());
            }
        }
        let code = status.code();
        let exit = match killed {
            Some(Killed::Timeout) => ExitReason::Timeout,
            Some(Killed::Cancelled) => ExitReason::Cancelled,
            Some(Killed::Output) => ExitReason::OutputLimit,
            Some(Killed::Cpu) => ExitReason::CpuLimit,
            Some(Killed::Pids) => ExitReason::PidsLimit,
            None if !reached_exec => ExitReason::SandboxError,
            None if stats.is_some_and(|s| s.oom_kills > 0) => ExitReason::MemoryLimit,
            None => match (code, status.signal()) {
                (Some(0), _) => ExitReason::Exited(0),
                (Some(c), _) if stats.is_some_and(|s| s.pids_refused > 0) => {
                    let _ = c;
                    ExitReason::PidsLimit
                }
                // bwrap reports a child killed by signal N as exit code 128 + N.
                (Some(c), _) if c > 128 && c < 128 + 65 => match c - 128 {
                    24 => ExitReason::CpuLimit,
                    25 => ExitReason::FileSizeLimit,
                    9 if stats.is_some_and(|s| s.memory_failcnt > 0) => ExitReason::MemoryLimit,
                    n => ExitReason::Signal(n),
                },
                (Some(c), _) => ExitReason::Exited(c),
                (None, Some(sig)) => ExitReason::Signal(sig),
                (None, None) => ExitReason::SandboxError,
            },
        };
        let collect_max = self.limits.file_size_mb.saturating_mul(1024 * 1024);
        let collected = self
            .collect
            .iter()
            .filter_map(|rel| {
                self.job
                    .collect(rel, collect_max)
                    .map(|bytes| (rel.clone(), bytes))
            })
            .collect();
        let (stdout, stderr) = self.output.take();
        let enforcement = std::mem::take(&mut self.enforcement);
        let outcome = Outcome {
            exit,
            stdout,
            stderr,
            usage: Usage {
                wall_ms,
                cpu_ms,
                max_rss_kb,
            },
            collected,
            sandbox: SandboxInfo {
                kind: "bwrap".into(),
                policy: self.policy_hash.clone(),
                boundary: BOUNDARY_SHARED_KERNEL.into(),
                enforcement,
            },
            memory_limit_by: self.memory_by,
        };
        self.cleanup();
        Ok(outcome)
    }

    /// Hands the cgroups, work directory and uid slot to the janitor thread, so removing them
    /// is off the caller's path; the slot is released only once they are gone.
    fn cleanup(&mut self) {
        let job = Cleanup {
            cgroup: self.cgroup.take(),
            dir: std::mem::take(&mut self.job.dir),
            slot: self.slot.take(),
        };
        if job.slot.is_none() && job.cgroup.is_none() && job.dir.as_os_str().is_empty() {
            return;
        }
        janitor(job);
    }
}

/// What is left of a finished job.
struct Cleanup {
    cgroup: Option<JobCgroup>,
    dir: PathBuf,
    slot: Option<SlotGuard>,
}

/// How long the janitor keeps retrying a job's cgroups before it gives them up (the next
/// capsci start sweeps them).
const CLEANUP_PATIENCE: Duration = Duration::from_secs(60);

impl Cleanup {
    /// One attempt; true when done. The work directory goes at once; the uid slot is released
    /// only when the cgroups are gone (no process of the uid is left, not even a zombie).
    fn attempt(&mut self, since: Instant) -> bool {
        if !self.dir.as_os_str().is_empty() {
            let _ = std::fs::remove_dir_all(&self.dir);
            self.dir = PathBuf::new();
        }
        let gone = self.cgroup.as_ref().is_none_or(|cg| cg.try_remove());
        if gone || since.elapsed() > CLEANUP_PATIENCE {
            self.cgroup = None;
            self.slot = None;
            return true;
        }
        false
    }

    fn run_blocking(mut self) {
        let since = Instant::now();
        while !self.attempt(since) {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

/// Cleans up on a process-wide background thread that retries pending jobs without blocking
/// on any one of them (inline if the thread cannot be started).
fn janitor(job: Cleanup) {
    static QUEUE: std::sync::OnceLock<Option<Mutex<Sender<Cleanup>>>> = std::sync::OnceLock::new();
    let queue = QUEUE.get_or_init(|| {
        let (tx, rx) = channel::<Cleanup>();
        std::thread::Builder::new()
            .name("capsci-sandbox-janitor".into())
            .spawn(move || {
                let mut pending: Vec<(Cleanup, Instant)> = Vec::new();
                loop {
                    let next = if pending.is_empty() {
                        rx.recv().map_err(|_| RecvTimeoutError::Disconnected)
                    } else {
                        rx.recv_timeout(Duration::from_millis(20))
                    };
                    match next {
                        Ok(job) => pending.push((job, Instant::now())),
                        Err(RecvTimeoutError::Timeout) => {}
                        Err(RecvTimeoutError::Disconnected) => return,
                    }
                    pending.retain_mut(|(job, since)| !job.attempt(*since));
                }
            })
            .ok()
            .map(|_| Mutex::new(tx))
    });
    match queue {
        Some(tx) => {
            let sent = tx.lock().unwrap_or_else(|p| p.into_inner()).send(job);
            if let Err(std::sync::mpsc::SendError(job)) = sent {
                job.run_blocking();
            }
        }
        None => job.run_blocking(),
    }
}

impl Drop for Started {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            self.kill_tree(false);
            let until = Instant::now() + Duration::from_millis(500);
            while matches!(child.try_wait(), Ok(None)) && Instant::now() < until {
                std::thread::sleep(Duration::from_millis(2));
            }
            self.kill_tree(true);
            let _ = child.wait();
        }
        self.cleanup();
    }
}
