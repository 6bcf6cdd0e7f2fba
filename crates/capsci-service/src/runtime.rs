//! What running a backend needs: the sandbox, each backend's package closure (computed once,
//! from the store's hash cache) and the hot-spare pools.

use crate::backend::{self, BackendKind};
use capsci_core::{BackendIdentity, HostFacts, Limits};
use capsci_sandbox::{
    BwrapSandbox, Command, SandboxConfig, SandboxError, SandboxPolicy, SparePool,
};
use capsci_store::{ClosureError, ClosureSpec, PackageClosure, Store};
use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// Why a backend could not be made ready.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RuntimeError {
    /// The sandbox could not be set up.
    #[error("sandbox unavailable: {0}")]
    Sandbox(#[from] SandboxError),
    /// The backend's package closure could not be computed.
    #[error("package closure of {backend}: {source}")]
    Closure {
        /// The backend.
        backend: &'static str,
        /// The cause.
        source: ClosureError,
    },
    /// The backend is not installed here.
    #[error("backend {0} is not installed here ({1})")]
    Missing(&'static str, String),
}

/// A backend made ready: its identity for the envelope and the exact paths the sandbox binds.
#[derive(Debug, Clone)]
pub struct ReadyBackend {
    /// Name, version and closure id.
    pub identity: BackendIdentity,
    /// The closure's bind paths.
    pub binds: Vec<PathBuf>,
}

/// The sandbox, the closures and the spare pools of one service.
#[derive(Debug)]
pub struct Runtime {
    sandbox: Arc<BwrapSandbox>,
    store: Arc<Store>,
    spares: usize,
    default_limits: Limits,
    ready: Mutex<HashMap<BackendKind, Arc<ReadyBackend>>>,
    pools: Mutex<HashMap<(BackendKind, String), Arc<SparePool>>>,
    host: std::sync::OnceLock<HostFacts>,
}

impl Runtime {
    /// Sets up the sandbox; closures are computed on first use of each backend.
    pub fn new(
        store: Arc<Store>,
        spares: usize,
        default_limits: Limits,
    ) -> Result<Self, RuntimeError> {
        let sandbox = Arc::new(BwrapSandbox::new(SandboxConfig::default())?);
        Ok(Runtime {
            sandbox,
            store,
            spares,
            default_limits,
            ready: Mutex::new(HashMap::new()),
            pools: Mutex::new(HashMap::new()),
            host: std::sync::OnceLock::new(),
        })
    }

    /// The sandbox every call runs in.
    pub fn sandbox(&self) -> &Arc<BwrapSandbox> {
        &self.sandbox
    }

    /// The limits calls get when they ask for none (spares are started with these).
    pub fn default_limits(&self) -> &Limits {
        &self.default_limits
    }

    /// Host facts for the envelope, with the memory mechanism this sandbox uses (read once).
    pub fn host_facts(&self) -> HostFacts {
        self.host
            .get_or_init(|| capsci_sandbox::host_facts(self.sandbox.memory_limit_by()))
            .clone()
    }

    /// The roots of a backend's closure: executables, data trees, files.
    fn roots(&self, kind: BackendKind) -> Result<Vec<PathBuf>, RuntimeError> {
        Ok(match kind {
            BackendKind::Gp => {
                let roots = capsci_backends::gp::roots();
                [roots.executables, roots.trees].concat()
            }
            BackendKind::Sympy => {
                let roots = capsci_backends::sympy::roots(&capsci_backends::sympy::python_env());
                [roots.executables, roots.trees].concat()
            }
            BackendKind::Z3 => capsci_backends::smt::SmtBackend::Z3.closure_roots(),
            BackendKind::Cvc5 => capsci_backends::smt::SmtBackend::Cvc5.closure_roots(),
            BackendKind::Highs => vec![highs_worker()?],
            BackendKind::Rocq => capsci_backends::rocq::roots(),
            BackendKind::Lean => {
                let lean = backend::lean_on_path().ok_or(RuntimeError::Missing(
                    "lean",
                    "no Lean toolchain on PATH".into(),
                ))?;
                vec![lean]
            }
        })
    }

    /// The backend's version: the Debian package version its closure recorded for it (the
    /// store read it from dpkg once, with the closure), the installed SymPy, or the worker's.
    fn version(kind: BackendKind, closure: &PackageClosure) -> String {
        match kind {
            BackendKind::Sympy => {
                backend::installed_python_version(&capsci_backends::sympy::python_env(), "sympy")
            }
            BackendKind::Highs => Some(format!(
                "highs-sys (vendored), worker {}",
                env!("CARGO_PKG_VERSION")
            )),
            other => other.debian_package().and_then(|package| {
                closure
                    .entries
                    .iter()
                    .find(|e| e.package.as_deref() == Some(package))
                    .and_then(|e| e.version.clone())
            }),
        }
        .unwrap_or_else(|| "unknown".into())
    }

    /// Makes `kind` ready: computes (or reuses) its package closure.
    pub fn ready(&self, kind: BackendKind) -> Result<Arc<ReadyBackend>, RuntimeError> {
        if let Some(ready) = self.lock_ready().get(&kind) {
            return Ok(ready.clone());
        }
        let roots = self.roots(kind)?;
        if let Some(missing) = roots.iter().find(|p| std::fs::symlink_metadata(p).is_err()) {
            return Err(RuntimeError::Missing(
                kind.name(),
                format!("{} not found", missing.display()),
            ));
        }
        let spec = closure_spec(kind, &roots);
        let (closure, _stats) =
            self.store
                .closures()
                .compute(&spec)
                .map_err(|source| RuntimeError::Closure {
                    backend: kind.name(),
                    source,
                })?;
        let ready = Arc::new(ReadyBackend {
            identity: BackendIdentity {
                name: kind.name().into(),
                version: Self::version(kind, &closure),
                closure: closure.id.clone(),
            },
            binds: closure.bind_paths(),
        });
        self.lock_ready().insert(kind, ready.clone());
        Ok(ready)
    }

    fn lock_ready(&self) -> std::sync::MutexGuard<'_, HashMap<BackendKind, Arc<ReadyBackend>>> {
        self.ready.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The spare pool for `kind` under `policy`, when spares are on and the call runs with the
    /// default options (`default_call`): spares are started ahead, so a pool serves exactly one
    /// policy, and calls with their own limits start cold.
    pub fn pool(
        &self,
        kind: BackendKind,
        policy: &SandboxPolicy,
        default_call: bool,
        template: impl FnOnce() -> Command,
    ) -> Option<Arc<SparePool>> {
        if self.spares == 0 || !default_call {
            return None;
        }
        let key = (kind, policy.hash());
        let mut pools = self.pools.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(pool) = pools.get(&key) {
            return Some(pool.clone());
        }
        let pool = SparePool::new(
            self.sandbox.clone(),
            policy.clone(),
            template(),
            self.spares,
        )
        .ok()?;
        let pool = Arc::new(pool);
        pools.insert(key, pool.clone());
        Some(pool)
    }
}

/// Finds the HiGHS worker binary (`CAPSCI_HIGHS_WORKER`, else beside capsci).
pub fn highs_worker() -> Result<PathBuf, RuntimeError> {
    backend::locate_helper("capsci-highs-worker", "CAPSCI_HIGHS_WORKER").ok_or(RuntimeError::Missing(
        "highs",
        "capsci-highs-worker not found beside capsci (build the workspace, or set CAPSCI_HIGHS_WORKER)".into(),
    ))
}

/// Sorts a backend's roots into the closure spec: directories are trees, ELF files executables
/// (followed to their libraries), anything else a plain file.
fn closure_spec(kind: BackendKind, roots: &[PathBuf]) -> ClosureSpec {
    let mut spec = ClosureSpec {
        name: kind.name().into(),
        ..ClosureSpec::default()
    };
    for root in roots {
        if root.is_dir() {
            spec.trees.push(root.clone());
        } else if is_elf(root) {
            spec.executables.push(root.clone());
        } else {
            spec.files.push(root.clone());
        }
    }
    if kind == BackendKind::Sympy {
        let lock = capsci_backends::sympy::python_env().join("requirements.lock");
        spec.python_lock = lock.is_file().then_some(lock);
    }
    spec
}

fn is_elf(path: &Path) -> bool {
    let mut magic = [0u8; 4];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut magic))
        .is_ok()
        && magic == *b"\x7fELF"
}
