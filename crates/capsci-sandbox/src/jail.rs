//! The `capsci-jail` helper: the set-up that must not run inside the multi-threaded service.
//!
//! Two modes, both single-threaded processes that end in `exec`:
//! - **outer** (started by the service, as root when available): joins the job's cgroups, sets
//!   rlimits, drops to the job's unprivileged uid, arms `PR_SET_PDEATHSIG` (after the uid change,
//!   which clears it) and execs bubblewrap;
//! - **inner** (started by bubblewrap inside the namespaces): sets no_new_privs, applies Landlock
//!   (a landlocked process cannot change mounts, so this must come after bwrap) and a seccomp
//!   deny-list, writes what held to the job's status file, then execs the tool.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};

/// Exit code of the helper when it fails before the tool ran (its message goes to stderr,
/// prefixed `capsci-jail:`).
pub const JAIL_FAILURE_CODE: i32 = 121;

/// Line the inner helper writes to the status file just before `exec` of the tool.
pub const STATUS_EXEC_LINE: &str = "exec";

/// What the outer helper does before it execs bubblewrap.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OuterSpec {
    /// The service's pid: if the helper's parent is no longer it, the service died; give up.
    pub parent_pid: i32,
    /// Unprivileged uid (and gid) to become; `None` when the service is not root.
    pub uid: Option<u32>,
    /// `cgroup.procs` files to write the helper's pid into (before dropping privileges).
    pub cgroup_procs: Vec<PathBuf>,
    /// Resource limits, applied before dropping privileges.
    pub rlimits: Rlimits,
    /// The bubblewrap executable.
    pub bwrap: PathBuf,
    /// Its arguments.
    pub bwrap_args: Vec<String>,
}

/// Resource limits the outer helper applies (soft = hard unless stated).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Rlimits {
    /// `RLIMIT_NPROC` (counted per uid; binds only non-root).
    pub nproc: Option<u64>,
    /// `RLIMIT_FSIZE`, bytes.
    pub fsize: Option<u64>,
    /// `RLIMIT_CPU`, seconds (soft; hard is one more, so SIGXCPU comes first).
    pub cpu_s: Option<u64>,
    /// `RLIMIT_AS`, bytes (only when no cgroup caps memory).
    pub address_space: Option<u64>,
}

/// A failure of the helper; it prints it and exits with [`JAIL_FAILURE_CODE`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JailError {
    /// The command line was not understood.
    #[error(
        "usage: capsci-jail outer SPEC_JSON | capsci-jail inner|inner-net STATUS_FILE PROGRAM [ARGS...]: {0}"
    )]
    Usage(String),
    /// The outer spec was not valid JSON.
    #[error("bad outer spec: {0}")]
    Spec(serde_json::Error),
    /// Joining a cgroup failed.
    #[error("cannot join cgroup {path}: {source}")]
    Cgroup {
        /// The `cgroup.procs` file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A system call of the set-up failed.
    #[error("{step} failed: {source}")]
    Sys {
        /// Which step.
        step: &'static str,
        /// The errno.
        source: nix::Error,
    },
    /// The service died while the helper started.
    #[error("parent {0} is gone")]
    ParentGone(i32),
    /// The status file could not be opened or written.
    #[error("status file {path}: {source}")]
    Status {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// Landlock could not be applied.
    #[error("landlock: {0}")]
    Landlock(#[from] landlock::RulesetError),
    /// The seccomp filter could not be built or applied.
    #[error("seccomp: {0}")]
    Seccomp(String),
    /// `exec` failed.
    #[error("cannot exec {path}: {source}")]
    Exec {
        /// The program.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
}

fn sys<T>(step: &'static str, r: nix::Result<T>) -> Result<T, JailError> {
    r.map_err(|source| JailError::Sys { step, source })
}

/// Entry point of the binary: dispatches on the mode; returns only on failure.
pub fn main_with_args(args: &[String]) -> JailError {
    let result = match args.get(1).map(String::as_str) {
        Some("outer") => match args.get(2) {
            Some(spec) => serde_json::from_str::<OuterSpec>(spec)
                .map_err(JailError::Spec)
                .and_then(|spec| outer(&spec)),
            None => Err(JailError::Usage("missing spec".into())),
        },
        Some(mode @ ("inner" | "inner-net")) => match (args.get(2), args.get(3)) {
            (Some(status), Some(program)) => inner(
                Path::new(status),
                Path::new(program),
                &args[4..],
                mode == "inner-net",
            ),
            _ => Err(JailError::Usage("missing status file or program".into())),
        },
        _ => Err(JailError::Usage("unknown mode".into())),
    };
    match result {
        Ok(never) => match never {},
        Err(e) => e,
    }
}

/// The outer mode: cgroups, rlimits, uid drop, parent-death signal, then exec bwrap.
pub fn outer(spec: &OuterSpec) -> Result<std::convert::Infallible, JailError> {
    use nix::sys::resource::{setrlimit, Resource};
    let me = std::process::id().to_string();
    for procs in &spec.cgroup_procs {
        std::fs::write(procs, &me).map_err(|source| JailError::Cgroup {
            path: procs.clone(),
            source,
        })?;
    }
    let r = &spec.rlimits;
    sys(
        "setrlimit(RLIMIT_CORE)",
        setrlimit(Resource::RLIMIT_CORE, 0, 0),
    )?;
    if let Some(n) = r.nproc {
        sys(
            "setrlimit(RLIMIT_NPROC)",
            setrlimit(Resource::RLIMIT_NPROC, n, n),
        )?;
    }
    if let Some(n) = r.fsize {
        sys(
            "setrlimit(RLIMIT_FSIZE)",
            setrlimit(Resource::RLIMIT_FSIZE, n, n),
        )?;
    }
    if let Some(n) = r.cpu_s {
        sys(
            "setrlimit(RLIMIT_CPU)",
            setrlimit(Resource::RLIMIT_CPU, n, n.saturating_add(1)),
        )?;
    }
    if let Some(n) = r.address_space {
        sys("setrlimit(RLIMIT_AS)", setrlimit(Resource::RLIMIT_AS, n, n))?;
    }
    if let Some(uid) = spec.uid {
        use nix::unistd::{setgroups, setresgid, setresuid, Gid, Uid};
        sys("setgroups", setgroups(&[]))?;
        let gid = Gid::from_raw(uid);
        sys("setresgid", setresgid(gid, gid, gid))?;
        let uid = Uid::from_raw(uid);
        sys("setresuid", setresuid(uid, uid, uid))?;
    }
    // Set after the uid change (which clears it); it survives the exec of bwrap.
    sys(
        "prctl(PR_SET_PDEATHSIG)",
        nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL),
    )?;
    if nix::unistd::getppid().as_raw() != spec.parent_pid {
        return Err(JailError::ParentGone(spec.parent_pid));
    }
    let err = std::process::Command::new(&spec.bwrap)
        .args(&spec.bwrap_args)
        .exec();
    Err(JailError::Exec {
        path: spec.bwrap.clone(),
        source: err,
    })
}

/// The inner mode: no_new_privs, Landlock, seccomp, status line, exec the tool. With
/// `network`, Landlock leaves TCP alone (the policy shares the host network).
pub fn inner(
    status: &Path,
    program: &Path,
    args: &[String],
    network: bool,
) -> Result<std::convert::Infallible, JailError> {
    let status_err = |source| JailError::Status {
        path: status.to_path_buf(),
        source,
    };
    let mut status_file = std::fs::OpenOptions::new()
        .append(true)
        .open(status)
        .map_err(status_err)?;
    sys(
        "prctl(PR_SET_NO_NEW_PRIVS)",
        nix::sys::prctl::set_no_new_privs(),
    )?;
    let landlock = apply_landlock(network)?;
    let denied = apply_seccomp()?;
    let mut report = String::new();
    for (k, v) in &landlock {
        report.push_str(&format!("{k}={v}\n"));
    }
    report.push_str(&format!(
        "seccomp=deny_list({denied} syscalls, clone namespace flags, clone3 enosys)\n"
    ));
    report.push_str("no_new_privs=true\n");
    report.push_str(STATUS_EXEC_LINE);
    report.push('\n');
    status_file
        .write_all(report.as_bytes())
        .map_err(status_err)?;
    status_file.flush().map_err(status_err)?;
    // The status file is opened close-on-exec; after a successful exec the tool cannot reopen
    // it (Landlock grants no write outside /work and /tmp).
    let err = std::process::Command::new(program).args(args).exec();
    let _ = writeln!(status_file, "exec_error={err}");
    Err(JailError::Exec {
        path: program.to_path_buf(),
        source: err,
    })
}

/// Applies Landlock: read and execute anywhere in the (already minimal) mount tree, write only
/// under `/work` and `/tmp` and to the harmless devices, no TCP at all, no signals or abstract
/// sockets outside the sandbox. Returns what held, for the record.
fn apply_landlock(network: bool) -> Result<BTreeMap<String, String>, JailError> {
    use landlock::{
        path_beneath_rules, Access, AccessFs, AccessNet, Ruleset, RulesetAttr, RulesetCreatedAttr,
        RulesetStatus, Scope, ABI,
    };
    let abi = ABI::V7;
    let writable: Vec<&str> = [crate::bwrap::WORK_DIR, "/tmp"]
        .into_iter()
        .filter(|p| Path::new(p).exists())
        .collect();
    let devices: Vec<&str> = ["/dev/null", "/dev/zero", "/dev/full", "/dev/tty"]
        .into_iter()
        .filter(|p| Path::new(p).exists())
        .collect();
    let mut ruleset = Ruleset::default().handle_access(AccessFs::from_all(abi))?;
    if !network {
        ruleset = ruleset.handle_access(AccessNet::from_all(abi))?;
    }
    let status = ruleset
        .scope(Scope::from_all(abi))?
        .create()?
        .add_rules(path_beneath_rules(["/"], AccessFs::from_read(abi)))?
        .add_rules(path_beneath_rules(writable, AccessFs::from_all(abi)))?
        .add_rules(path_beneath_rules(
            devices,
            AccessFs::from_read(abi) | AccessFs::WriteFile,
        ))?
        .restrict_self()?;
    let word = match status.ruleset {
        RulesetStatus::FullyEnforced => "fully_enforced",
        RulesetStatus::PartiallyEnforced => "partially_enforced",
        RulesetStatus::NotEnforced => "not_enforced",
    };
    let mut out = BTreeMap::new();
    out.insert("landlock".to_string(), word.to_string());
    out.insert("landlock_abi_requested".to_string(), "7".to_string());
    Ok(out)
}

/// Syscalls no solver needs, denied with `EPERM`.
const DENIED_SYSCALLS: &[i64] = &[
    libc::SYS_ptrace,
    libc::SYS_process_vm_readv,
    libc::SYS_process_vm_writev,
    libc::SYS_mount,
    libc::SYS_umount2,
    libc::SYS_pivot_root,
    libc::SYS_chroot,
    libc::SYS_move_mount,
    libc::SYS_open_tree,
    libc::SYS_fsopen,
    libc::SYS_fsmount,
    libc::SYS_fsconfig,
    libc::SYS_fspick,
    libc::SYS_mount_setattr,
    libc::SYS_bpf,
    libc::SYS_keyctl,
    libc::SYS_add_key,
    libc::SYS_request_key,
    libc::SYS_perf_event_open,
    libc::SYS_kexec_load,
    libc::SYS_kexec_file_load,
    libc::SYS_unshare,
    libc::SYS_setns,
    libc::SYS_init_module,
    libc::SYS_finit_module,
    libc::SYS_delete_module,
    libc::SYS_swapon,
    libc::SYS_swapoff,
    libc::SYS_reboot,
    libc::SYS_acct,
    libc::SYS_settimeofday,
    libc::SYS_clock_settime,
    libc::SYS_clock_adjtime,
    libc::SYS_adjtimex,
    libc::SYS_quotactl,
    libc::SYS_userfaultfd,
    libc::SYS_iopl,
    libc::SYS_ioperm,
    libc::SYS_syslog,
    libc::SYS_open_by_handle_at,
    libc::SYS_name_to_handle_at,
    libc::SYS_io_uring_setup,
    libc::SYS_io_uring_enter,
    libc::SYS_io_uring_register,
    libc::SYS_fanotify_init,
    libc::SYS_vhangup,
];

/// `clone` flags that create namespaces.
const NAMESPACE_FLAGS: &[u64] = &[
    libc::CLONE_NEWNS as u64,
    libc::CLONE_NEWCGROUP as u64,
    libc::CLONE_NEWUTS as u64,
    libc::CLONE_NEWIPC as u64,
    libc::CLONE_NEWUSER as u64,
    libc::CLONE_NEWPID as u64,
    libc::CLONE_NEWNET as u64,
    0x80, // CLONE_NEWTIME
];

/// Builds the two seccomp programs: the deny-list (EPERM) and clone3 (ENOSYS, so libc falls
/// back to `clone`, whose flags a filter can inspect).
pub fn seccomp_programs() -> Result<Vec<seccompiler::BpfProgram>, JailError> {
    use seccompiler::{
        SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
        SeccompRule, TargetArch,
    };
    let err = |e: seccompiler::BackendError| JailError::Seccomp(e.to_string());
    let arch = TargetArch::x86_64;
    let mut deny: BTreeMap<i64, Vec<SeccompRule>> =
        DENIED_SYSCALLS.iter().map(|&nr| (nr, Vec::new())).collect();
    let mut clone_rules = Vec::new();
    for &flag in NAMESPACE_FLAGS {
        let cond = SeccompCondition::new(
            0,
            SeccompCmpArgLen::Qword,
            SeccompCmpOp::MaskedEq(flag),
            flag,
        )
        .map_err(err)?;
        clone_rules.push(SeccompRule::new(vec![cond]).map_err(err)?);
    }
    deny.insert(libc::SYS_clone, clone_rules);
    let deny = SeccompFilter::new(
        deny,
        SeccompAction::Allow,
        SeccompAction::Errno(libc::EPERM as u32),
        arch,
    )
    .map_err(err)?;
    let clone3: BTreeMap<i64, Vec<SeccompRule>> =
        [(libc::SYS_clone3, Vec::new())].into_iter().collect();
    let clone3 = SeccompFilter::new(
        clone3,
        SeccompAction::Allow,
        SeccompAction::Errno(libc::ENOSYS as u32),
        arch,
    )
    .map_err(err)?;
    let mut out = Vec::new();
    for filter in [deny, clone3] {
        out.push(filter.try_into().map_err(err)?);
    }
    Ok(out)
}

fn apply_seccomp() -> Result<usize, JailError> {
    for program in seccomp_programs()? {
        seccompiler::apply_filter(&program).map_err(|e| JailError::Seccomp(e.to_string()))?;
    }
    Ok(DENIED_SYSCALLS.len() + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seccomp_programs_compile_for_x86_64() {
        let programs = seccomp_programs().expect("compiles");
        assert_eq!(programs.len(), 2);
        assert!(programs.iter().all(|p| !p.is_empty()));
    }

    #[test]
    fn outer_spec_round_trips_as_json() {
        let spec = OuterSpec {
            parent_pid: 1,
            uid: Some(200_000),
            cgroup_procs: vec![PathBuf::from("/sys/fs/cgroup/pids/capsci/x/cgroup.procs")],
            rlimits: Rlimits {
                nproc: Some(64),
                fsize: None,
                cpu_s: Some(2),
                address_space: None,
            },
            bwrap: PathBuf::from("/usr/bin/bwrap"),
            bwrap_args: vec!["--".into()],
        };
        let text = serde_json::to_string(&spec).expect("json");
        let back: OuterSpec = serde_json::from_str(&text).expect("parse");
        assert_eq!(back.uid, Some(200_000));
        assert_eq!(back.rlimits.nproc, Some(64));
    }

    #[test]
    fn bad_mode_is_a_usage_error() {
        let e = main_with_args(&["capsci-jail".into(), "sideways".into()]);
        assert!(matches!(e, JailError::Usage(_)));
    }
}
