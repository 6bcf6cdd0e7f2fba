//! cgroup v1 job groups (memory, pids, cpuacct): limits, accounting and killing a whole tree.
//!
//! On these hosts only the v1 controllers can cap memory and processes, as root. Each job gets
//! `/sys/fs/cgroup/<controller>/capsci/<job>`; the outer helper joins them before it drops
//! privileges, so every process of the tree is accounted and can be found and killed.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The controllers a job uses.
const CONTROLLERS: [&str; 3] = ["memory", "pids", "cpuacct"];

/// Where the per-controller `capsci` parents live, when usable.
#[derive(Debug, Clone)]
pub(crate) struct CgroupRoot {
    root: PathBuf,
}

impl CgroupRoot {
    /// Probes `root` (normally `/sys/fs/cgroup`): usable if every controller's `capsci` parent
    /// exists or can be created and holds the files we need.
    pub(crate) fn probe(root: &Path) -> Option<Self> {
        for ctl in CONTROLLERS {
            let parent = root.join(ctl).join("capsci");
            if !parent.is_dir() && std::fs::create_dir(&parent).is_err() {
                return None;
            }
        }
        let ok = root.join("memory/capsci/memory.limit_in_bytes").exists()
            && root.join("pids/capsci/pids.max").exists()
            && root.join("cpuacct/capsci/cpuacct.usage").exists();
        ok.then(|| CgroupRoot {
            root: root.to_path_buf(),
        })
    }

    /// Creates the job's groups with its limits.
    pub(crate) fn create(
        &self,
        name: &str,
        memory_bytes: u64,
        pids: u32,
    ) -> std::io::Result<JobCgroup> {
        let job = JobCgroup {
            dirs: CONTROLLERS
                .iter()
                .map(|c| self.root.join(c).join("capsci").join(name))
                .collect(),
        };
        for dir in &job.dirs {
            std::fs::create_dir(dir)?;
        }
        let mem = &job.dirs[0];
        std::fs::write(mem.join("memory.limit_in_bytes"), memory_bytes.to_string())?;
        // Without swap accounting this file is absent; with it, cap memory+swap the same.
        let memsw = mem.join("memory.memsw.limit_in_bytes");
        if memsw.exists() {
            std::fs::write(memsw, memory_bytes.to_string())?;
        }
        std::fs::write(job.dirs[1].join("pids.max"), pids.to_string())?;
        Ok(job)
    }

    /// Removes job groups left behind by capsci processes that no longer exist (kill -9).
    pub(crate) fn remove_stale(&self) {
        for ctl in CONTROLLERS {
            let parent = self.root.join(ctl).join("capsci");
            let Ok(entries) = std::fs::read_dir(&parent) else {
                continue;
            };
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                if entry.path().is_dir() && crate::bwrap::owner_is_gone(&name) {
                    let group = JobCgroup {
                        dirs: vec![entry.path()],
                    };
                    group.kill_all(Duration::from_secs(2));
                    let _ = std::fs::remove_dir(entry.path());
                }
            }
        }
    }
}

/// What a job's groups recorded.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct CgroupStats {
    /// `cpuacct.usage`, ns.
    pub cpu_ns: u64,
    /// `memory.max_usage_in_bytes`.
    pub max_memory_bytes: u64,
    /// `oom_kill` count of `memory.oom_control`.
    pub oom_kills: u64,
    /// `memory.failcnt`.
    pub memory_failcnt: u64,
    /// `max` count of `pids.events`: forks refused.
    pub pids_refused: u64,
}

/// One job's groups (memory, pids, cpuacct in that order).
#[derive(Debug)]
pub(crate) struct JobCgroup {
    dirs: Vec<PathBuf>,
}

fn read_u64(path: &Path) -> u64 {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0)
}

fn keyed(path: &Path, key: &str) -> u64 {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_once(' '))
        .find(|(k, _)| *k == key)
        .and_then(|(_, v)| v.trim().parse().ok())
        .unwrap_or(0)
}

impl JobCgroup {
    /// The `cgroup.procs` files the helper writes its pid into.
    pub(crate) fn procs_files(&self) -> Vec<PathBuf> {
        self.dirs.iter().map(|d| d.join("cgroup.procs")).collect()
    }

    /// CPU time of the whole tree so far, ns.
    pub(crate) fn cpu_ns(&self) -> u64 {
        self.dirs
            .get(2)
            .map(|d| read_u64(&d.join("cpuacct.usage")))
            .unwrap_or(0)
    }

    /// Forks refused by `pids.max` so far.
    pub(crate) fn pids_refused(&self) -> u64 {
        self.dirs
            .get(1)
            .map(|d| keyed(&d.join("pids.events"), "max"))
            .unwrap_or(0)
    }

    /// Everything recorded so far.
    pub(crate) fn stats(&self) -> CgroupStats {
        let mem = &self.dirs[0];
        CgroupStats {
            cpu_ns: self.cpu_ns(),
            max_memory_bytes: read_u64(&mem.join("memory.max_usage_in_bytes")),
            oom_kills: keyed(&mem.join("memory.oom_control"), "oom_kill"),
            memory_failcnt: read_u64(&mem.join("memory.failcnt")),
            pids_refused: self.pids_refused(),
        }
    }

    /// Pids still in the job.
    pub(crate) fn pids(&self) -> Vec<i32> {
        let mut all: Vec<i32> = self
            .dirs
            .iter()
            .flat_map(|d| {
                std::fs::read_to_string(d.join("cgroup.procs"))
                    .unwrap_or_default()
                    .lines()
                    .filter_map(|l| l.trim().parse().ok())
                    .collect::<Vec<i32>>()
            })
            .collect();
        all.sort_unstable();
        all.dedup();
        all
    }

    /// SIGKILLs every process in the job until none is left or `patience` runs out.
    pub(crate) fn kill_all(&self, patience: Duration) {
        let until = Instant::now() + patience;
        loop {
            let pids = self.pids();
            if pids.is_empty() || Instant::now() >= until {
                return;
            }
            for pid in pids {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// Kills what is left and removes the groups, waiting (bounded) until they empty.
    pub(crate) fn destroy(self) {
        let until = Instant::now() + Duration::from_secs(10);
        while !self.try_remove() && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// One attempt: SIGKILLs what is left and removes the groups that are empty; true once
    /// every group is gone. A group empties only when its last task is reaped, which for an
    /// orphaned namespace init can take the host's init a while.
    pub(crate) fn try_remove(&self) -> bool {
        for pid in self.pids() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        let mut all_gone = true;
        for dir in &self.dirs {
            if dir.exists() && std::fs::remove_dir(dir).is_err() && dir.exists() {
                all_gone = false;
            }
        }
        all_gone
    }
}
