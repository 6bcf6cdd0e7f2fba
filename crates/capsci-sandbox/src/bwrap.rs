//! The `bwrap` sandbox kind: Debian's bubblewrap for the namespaces and mounts, with the
//! `capsci-jail` helper outside (cgroups, rlimits, uid, parent-death signal) and inside
//! (no_new_privs, Landlock, seccomp).

use crate::cgroup::CgroupRoot;
use crate::error::SandboxError;
use crate::jail::{OuterSpec, Rlimits};
use crate::run::{OutputBuf, Started};
use crate::{CancelToken, Command, Outcome, Sandbox, SandboxPolicy};
use capsci_core::MemoryLimitBy;
use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// The private writable work directory inside the sandbox (also the cwd and `HOME`).
pub const WORK_DIR: &str = "/work";
/// Where the helper binary appears inside the sandbox.
const JAIL_IN_SANDBOX: &str = "/.capsci/jail";
/// Where the job's status file appears inside the sandbox.
const STATUS_IN_SANDBOX: &str = "/.capsci/status";
/// Top-level directories that merged-/usr hosts make symlinks (mirrored inside).
const TOP_LINKS: [&str; 6] = ["/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"];

/// How to set up the `bwrap` sandbox kind.
#[derive(Debug, Clone)]
pub struct SandboxConfig {
    /// Where the helper copy and the per-job work directories live (must be traversable by
    /// the unprivileged job uids; created 0711).
    pub runtime_dir: PathBuf,
    /// The bubblewrap executable.
    pub bwrap: PathBuf,
    /// The `capsci-jail` helper; `None` finds it (`CAPSCI_JAIL`, then next to the executable).
    pub jail: Option<PathBuf>,
    /// First unprivileged uid of this process's slots (each concurrent job gets its own uid,
    /// because `RLIMIT_NPROC` is counted per uid).
    pub uid_base: u32,
    /// Number of concurrent job slots (uids `uid_base + (pid % 64) * slots ..`).
    pub slots: u32,
    /// The cgroup v1 mount root; `None` disables cgroups (RLIMIT_AS then caps memory).
    pub cgroup_root: Option<PathBuf>,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        SandboxConfig {
            runtime_dir: std::env::temp_dir().join("capsci-run"),
            bwrap: PathBuf::from("/usr/bin/bwrap"),
            jail: None,
            uid_base: 200_000,
            slots: 1000,
            cgroup_root: Some(PathBuf::from("/sys/fs/cgroup")),
        }
    }
}

/// The `bwrap` sandbox: new user, pid, net, ipc, uts, cgroup and mount namespaces; only the
/// policy's binds, read-only; a private `/work`; an unprivileged uid per job; no_new_privs,
/// Landlock and a seccomp deny-list inside; cgroup v1 (or rlimit) limits outside.
#[derive(Debug)]
pub struct BwrapSandbox {
    config: SandboxConfig,
    jail: PathBuf,
    jail_libs: Vec<(PathBuf, PathBuf)>,
    top_links: Vec<(String, String)>,
    cgroups: Option<CgroupRoot>,
    root: bool,
    uid_first: u32,
    slots: Arc<Mutex<Vec<bool>>>,
}

static JOB_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Whether the capsci process that named a job (`<pid>-<n>`) is gone.
pub(crate) fn owner_is_gone(job: &str) -> bool {
    match job.split('-').next().and_then(|p| p.parse::<u32>().ok()) {
        Some(pid) => pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists(),
        None => false,
    }
}

fn runtime_err(path: &Path) -> impl FnOnce(std::io::Error) -> SandboxError + '_ {
    move |source| SandboxError::Runtime {
        path: path.to_path_buf(),
        source,
    }
}

/// Finds the helper: `CAPSCI_JAIL`, else next to the executable or in its parent directory
/// (test binaries live in `target/*/deps`, the helper in `target/*`).
fn locate_jail() -> Result<PathBuf, SandboxError> {
    let mut tried = Vec::new();
    if let Some(p) = std::env::var_os("CAPSCI_JAIL") {
        let p = PathBuf::from(p);
        if p.is_file() {
            return Ok(p);
        }
        tried.push(p);
    }
    if let Ok(exe) = std::env::current_exe() {
        let mut dir = exe.parent().map(Path::to_path_buf);
        for _ in 0..2 {
            let Some(d) = dir else { break };
            let candidate = d.join("capsci-jail");
            if candidate.is_file() {
                return Ok(candidate);
            }
            tried.push(candidate);
            dir = d.parent().map(Path::to_path_buf);
        }
    }
    Err(SandboxError::JailNotFound(tried))
}

/// Host paths of the helper's shared libraries and loader, from `ldd`.
fn ldd(binary: &Path) -> Result<Vec<PathBuf>, SandboxError> {
    let out = std::process::Command::new("ldd")
        .arg(binary)
        .env_clear()
        .output()
        .map_err(|e| SandboxError::Ldd {
            path: binary.to_path_buf(),
            message: e.to_string(),
        })?;
    let text = String::from_utf8_lossy(&out.stdout);
    if text.contains("not a dynamic executable") || text.contains("statically linked") {
        return Ok(Vec::new());
    }
    if !out.status.success() {
        return Err(SandboxError::Ldd {
            path: binary.to_path_buf(),
            message: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    let mut libs = Vec::new();
    for line in text.lines() {
        let field = match line.split_once("=>") {
            Some((_, rhs)) => rhs.trim(),
            None => line.trim(),
        };
        if let Some(path) = field.split_whitespace().next() {
            if path.starts_with('/') {
                libs.push(PathBuf::from(path));
            }
        }
    }
    Ok(libs)
}

impl BwrapSandbox {
    /// The sandbox with default settings for this host (`/tmp/capsci-run`, `/usr/bin/bwrap`,
    /// cgroups when root).
    pub fn detect() -> Result<Self, SandboxError> {
        Self::new(SandboxConfig::default())
    }

    /// Sets up the runtime directory, copies the helper into it (keyed by its hash, 0755, so
    /// the job uids can run it), and probes cgroups. Removes what crashed capsci processes left.
    pub fn new(config: SandboxConfig) -> Result<Self, SandboxError> {
        if !config.bwrap.is_file() {
            return Err(SandboxError::BwrapNotFound(config.bwrap.clone()));
        }
        let source = match &config.jail {
            Some(p) => p.clone(),
            None => locate_jail()?,
        };
        let root = nix::unistd::geteuid().is_root();
        let rt = &config.runtime_dir;
        for dir in [rt.clone(), rt.join("bin"), rt.join("jobs")] {
            std::fs::create_dir_all(&dir).map_err(runtime_err(&dir))?;
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o711))
                .map_err(runtime_err(&dir))?;
        }
        let bytes = std::fs::read(&source).map_err(runtime_err(&source))?;
        let hash = blake3::hash(&bytes).to_hex();
        let jail = rt
            .join("bin")
            .join(format!("capsci-jail-{}", &hash.as_str()[..16]));
        if !jail.is_file() {
            let tmp = rt.join("bin").join(format!(
                ".capsci-jail-{}-{}",
                std::process::id(),
                &hash.as_str()[..16]
            ));
            std::fs::write(&tmp, &bytes).map_err(runtime_err(&tmp))?;
            std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o755))
                .map_err(runtime_err(&tmp))?;
            std::fs::rename(&tmp, &jail).map_err(runtime_err(&jail))?;
        }
        let top_links: Vec<(String, String)> = TOP_LINKS
            .iter()
            .filter_map(|top| {
                let target = std::fs::read_link(top).ok()?;
                Some((top.to_string(), target.to_string_lossy().into_owned()))
            })
            .collect();
        let mut jail_libs = Vec::new();
        for lib in ldd(&jail)? {
            let inside = rewrite_top(&top_links, &lib);
            jail_libs.push((lib.clone(), inside));
            if let Ok(canon) = std::fs::canonicalize(&lib) {
                jail_libs.push((canon.clone(), canon));
            }
        }
        jail_libs.sort();
        jail_libs.dedup();
        let cgroups = if root {
            config.cgroup_root.as_deref().and_then(CgroupRoot::probe)
        } else {
            None
        };
        if let Some(cg) = &cgroups {
            cg.remove_stale();
        }
        if let Ok(entries) = std::fs::read_dir(rt.join("jobs")) {
            for entry in entries.flatten() {
                if owner_is_gone(&entry.file_name().to_string_lossy()) {
                    let _ = std::fs::remove_dir_all(entry.path());
                }
            }
        }
        let uid_first = config.uid_base + (std::process::id() % 64) * config.slots;
        let slots = Arc::new(Mutex::new(vec![false; config.slots as usize]));
        Ok(BwrapSandbox {
            config,
            jail,
            jail_libs,
            top_links,
            cgroups,
            root,
            uid_first,
            slots,
        })
    }

    /// Which mechanism caps memory for this sandbox's jobs.
    pub fn memory_limit_by(&self) -> MemoryLimitBy {
        if self.cgroups.is_some() {
            MemoryLimitBy::CgroupV1
        } else {
            MemoryLimitBy::RlimitAs
        }
    }

    /// The runtime directory (helper copy and work directories).
    pub fn runtime_dir(&self) -> &Path {
        &self.config.runtime_dir
    }

    /// The job uids this sandbox may use, as a range (for tests and audits scanning `/proc`).
    pub fn uid_range(&self) -> std::ops::Range<u32> {
        self.uid_first..self.uid_first + self.config.slots
    }

    fn take_slot(&self) -> Result<SlotGuard, SandboxError> {
        let mut used = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        let free = used
            .iter()
            .position(|u| !*u)
            .ok_or(SandboxError::NoSlot(self.config.slots))?;
        used[free] = true;
        Ok(SlotGuard {
            slots: self.slots.clone(),
            index: free,
        })
    }

    /// Starts `command` in a fresh sandbox without feeding stdin yet (the hot-spare path).
    /// `cpu_allowance_s` is extra CPU the `RLIMIT_CPU` backstop allows for start-up work done
    /// before the call (the cgroup accounting, when present, starts counting at the call).
    pub(crate) fn start(
        &self,
        policy: &SandboxPolicy,
        command: &Command,
        cpu_allowance_s: u64,
    ) -> Result<Started, SandboxError> {
        let slot = self.take_slot()?;
        let uid = self.root.then(|| self.uid_first + slot.index as u32);
        let name = format!(
            "{}-{}",
            std::process::id(),
            JOB_COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let dir = self.config.runtime_dir.join("jobs").join(&name);
        let job = JobDir::create(&dir, uid, &command.files)?;
        let limits = &policy.limits;
        let memory_bytes = limits.memory_mb.saturating_mul(1024 * 1024);
        let cgroup = match &self.cgroups {
            Some(cg) => Some(
                cg.create(&name, memory_bytes, limits.pids)
                    .map_err(runtime_err(&dir))?,
            ),
            None => None,
        };
        let cpu_rlimit = (limits.cpu_s.max(0.0).ceil() as u64)
            .saturating_add(cpu_allowance_s)
            .saturating_add(u64::from(cgroup.is_some()));
        let rlimits = Rlimits {
            nproc: uid.map(|_| u64::from(limits.pids) + 8),
            fsize: Some(limits.file_size_mb.saturating_mul(1024 * 1024)),
            cpu_s: Some(cpu_rlimit.max(1)),
            address_space: cgroup.is_none().then_some(memory_bytes),
        };
        let spec = OuterSpec {
            parent_pid: std::process::id() as i32,
            uid,
            cgroup_procs: cgroup.as_ref().map(|c| c.procs_files()).unwrap_or_default(),
            rlimits,
            bwrap: self.config.bwrap.clone(),
            bwrap_args: self.bwrap_args(policy, command, &job),
        };
        let spec_json = serde_json::to_string(&spec).unwrap_or_default();
        let mut env: BTreeMap<String, String> = policy.env.clone();
        env.entry("PATH".into())
            .or_insert_with(|| "/usr/local/bin:/usr/bin:/bin".into());
        env.insert("HOME".into(), WORK_DIR.into());
        let mut enforcement = BTreeMap::new();
        enforcement.insert(
            "namespaces".to_string(),
            "user,pid,net,ipc,uts,cgroup,mount".to_string(),
        );
        enforcement.insert(
            "uid".to_string(),
            uid.map(|u| u.to_string())
                .unwrap_or_else(|| "unchanged (not root)".to_string()),
        );
        let by = if cgroup.is_some() {
            "cgroup_v1"
        } else {
            "rlimit_as"
        };
        enforcement.insert("memory".to_string(), by.to_string());
        let pids_by = match (cgroup.is_some(), uid.is_some()) {
            (true, _) => "cgroup_v1",
            (false, true) => "rlimit_nproc",
            (false, false) => "none (not root)",
        };
        enforcement.insert("pids".to_string(), pids_by.to_string());
        let output = Arc::new(OutputBuf::new(limits.output_bytes));
        let child = std::process::Command::new(&self.jail)
            .arg("outer")
            .arg(spec_json)
            .env_clear()
            .envs(&env)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn();
        let child = match child {
            Ok(c) => c,
            Err(source) => {
                if let Some(cg) = cgroup {
                    cg.destroy();
                }
                job.remove();
                return Err(SandboxError::Spawn {
                    path: self.jail.clone(),
                    source,
                });
            }
        };
        Started::new(
            child,
            job,
            cgroup,
            slot,
            output,
            policy.limits.clone(),
            policy.hash(),
            self.memory_limit_by(),
            enforcement,
            command.collect.clone(),
        )
    }

    fn bwrap_args(&self, policy: &SandboxPolicy, command: &Command, job: &JobDir) -> Vec<String> {
        let mut a: Vec<String> = Vec::new();
        let mut push = |xs: &[&str]| a.extend(xs.iter().map(|s| s.to_string()));
        push(&[
            "--unshare-all",
            "--die-with-parent",
            "--new-session",
            "--hostname",
            "capsci",
        ]);
        if policy.network {
            push(&["--share-net"]);
        }
        push(&["--proc", "/proc", "--dev", "/dev"]);
        let tmp_size = policy
            .limits
            .file_size_mb
            .saturating_mul(1024 * 1024)
            .to_string();
        push(&["--size", &tmp_size, "--tmpfs", "/tmp"]);
        for (top, target) in &self.top_links {
            push(&["--symlink", target, top]);
        }
        let work = job.work.to_string_lossy().into_owned();
        let status = job.status.to_string_lossy().into_owned();
        let jail = self.jail.to_string_lossy().into_owned();
        push(&["--bind", &work, WORK_DIR, "--chdir", WORK_DIR]);
        push(&[
            "--ro-bind",
            &jail,
            JAIL_IN_SANDBOX,
            "--bind",
            &status,
            STATUS_IN_SANDBOX,
        ]);
        for (host, inside) in &self.jail_libs {
            push(&[
                "--ro-bind",
                &host.to_string_lossy(),
                &inside.to_string_lossy(),
            ]);
        }
        for bind in &policy.ro_binds {
            let inside = rewrite_top(&self.top_links, &bind.sandbox);
            push(&[
                "--ro-bind",
                &bind.host.to_string_lossy(),
                &inside.to_string_lossy(),
            ]);
        }
        push(&[
            "--remount-ro",
            "/",
            "--",
            JAIL_IN_SANDBOX,
            if policy.network { "inner-net" } else { "inner" },
            STATUS_IN_SANDBOX,
        ]);
        a.push(command.program.to_string_lossy().into_owned());
        a.extend(command.args.iter().cloned());
        a
    }
}

/// Rewrites a sandbox path whose first component is a top-level symlink we create (`/lib64/x`
/// → `/usr/lib64/x`), since bwrap cannot mount through a symlink it made.
fn rewrite_top(top_links: &[(String, String)], path: &Path) -> PathBuf {
    for (top, target) in top_links {
        if let Ok(rest) = path.strip_prefix(top) {
            let base = if target.starts_with('/') {
                PathBuf::from(target)
            } else {
                Path::new("/").join(target)
            };
            return base.join(rest);
        }
    }
    path.to_path_buf()
}

/// One unprivileged uid slot, released on drop.
#[derive(Debug)]
pub(crate) struct SlotGuard {
    slots: Arc<Mutex<Vec<bool>>>,
    index: usize,
}

impl Drop for SlotGuard {
    fn drop(&mut self) {
        let mut used = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(u) = used.get_mut(self.index) {
            *u = false;
        }
    }
}

/// A job's directory on the host: `work/` (bound at `/work`) and the helper's `status` file.
#[derive(Debug)]
pub(crate) struct JobDir {
    pub dir: PathBuf,
    pub work: PathBuf,
    pub status: PathBuf,
}

fn safe_relative(path: &Path) -> bool {
    path.components().all(|c| matches!(c, Component::Normal(_)))
        && path.components().next().is_some()
}

impl JobDir {
    fn create(
        dir: &Path,
        uid: Option<u32>,
        files: &[(PathBuf, Vec<u8>)],
    ) -> Result<Self, SandboxError> {
        for (rel, _) in files {
            if !safe_relative(rel) {
                return Err(SandboxError::BadWorkPath(rel.clone()));
            }
        }
        let job = JobDir {
            dir: dir.to_path_buf(),
            work: dir.join("work"),
            status: dir.join("status"),
        };
        let result = (|| {
            std::fs::create_dir(&job.dir).map_err(runtime_err(&job.dir))?;
            std::fs::set_permissions(&job.dir, std::fs::Permissions::from_mode(0o711))
                .map_err(runtime_err(&job.dir))?;
            std::fs::create_dir(&job.work).map_err(runtime_err(&job.work))?;
            std::fs::set_permissions(&job.work, std::fs::Permissions::from_mode(0o700))
                .map_err(runtime_err(&job.work))?;
            std::fs::write(&job.status, b"").map_err(runtime_err(&job.status))?;
            std::fs::set_permissions(&job.status, std::fs::Permissions::from_mode(0o600))
                .map_err(runtime_err(&job.status))?;
            let chown = |p: &Path| -> Result<(), SandboxError> {
                if let Some(uid) = uid {
                    nix::unistd::chown(
                        p,
                        Some(nix::unistd::Uid::from_raw(uid)),
                        Some(nix::unistd::Gid::from_raw(uid)),
                    )
                    .map_err(|e| SandboxError::Runtime {
                        path: p.to_path_buf(),
                        source: e.into(),
                    })?;
                }
                Ok(())
            };
            chown(&job.work)?;
            chown(&job.status)?;
            for (rel, bytes) in files {
                let path = job.work.join(rel);
                let mut parent = path.parent();
                let mut to_create = Vec::new();
                while let Some(p) = parent {
                    if p == job.work || p.exists() {
                        break;
                    }
                    to_create.push(p.to_path_buf());
                    parent = p.parent();
                }
                for p in to_create.iter().rev() {
                    std::fs::create_dir(p).map_err(runtime_err(p))?;
                    chown(p)?;
                }
                std::fs::write(&path, bytes).map_err(runtime_err(&path))?;
                chown(&path)?;
            }
            Ok(())
        })();
        match result {
            Ok(()) => Ok(job),
            Err(e) => {
                job.remove();
                Err(e)
            }
        }
    }

    /// Reads back a collected file: never through a symlink the tool planted (the tree is dead
    /// by then, so nothing can swap a component after the check).
    pub(crate) fn collect(&self, rel: &Path, max: u64) -> Option<Vec<u8>> {
        if !safe_relative(rel) {
            return None;
        }
        let mut cur = self.work.clone();
        for c in rel.components() {
            cur.push(c);
            let meta = std::fs::symlink_metadata(&cur).ok()?;
            if meta.file_type().is_symlink() {
                return None;
            }
        }
        let meta = std::fs::symlink_metadata(&cur).ok()?;
        if !meta.is_file() || meta.len() > max {
            return None;
        }
        std::fs::read(&cur).ok()
    }

    pub(crate) fn remove(&self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Sandbox for BwrapSandbox {
    fn kind(&self) -> &'static str {
        "bwrap"
    }

    fn run(
        &self,
        policy: &SandboxPolicy,
        command: Command,
        cancel: &CancelToken,
    ) -> Result<Outcome, SandboxError> {
        let begin = std::time::Instant::now();
        let started = self.start(policy, &command, 0)?;
        started.finish(command.stdin, cancel, begin)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_level_symlinks_are_rewritten_to_their_targets() {
        let links = vec![("/lib64".to_string(), "usr/lib64".to_string())];
        assert_eq!(
            rewrite_top(&links, Path::new("/lib64/ld.so")),
            PathBuf::from("/usr/lib64/ld.so")
        );
        assert_eq!(
            rewrite_top(&links, Path::new("/usr/bin/gp")),
            PathBuf::from("/usr/bin/gp")
        );
        assert_eq!(
            rewrite_top(&links, Path::new("/lib64x/a")),
            PathBuf::from("/lib64x/a")
        );
    }

    #[test]
    fn work_paths_must_stay_inside() {
        assert!(safe_relative(Path::new("a/b.smt2")));
        assert!(!safe_relative(Path::new("/etc/passwd")));
        assert!(!safe_relative(Path::new("../x")));
        assert!(!safe_relative(Path::new("a/../../x")));
        assert!(!safe_relative(Path::new("")));
    }

    #[test]
    fn job_names_of_dead_owners_are_stale() {
        assert!(!owner_is_gone(&format!("{}-3", std::process::id())));
        assert!(!owner_is_gone("1-3"));
        assert!(!owner_is_gone("garbage"));
        assert!(owner_is_gone("4000000-1"));
    }
}
