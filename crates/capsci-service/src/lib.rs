//! ScientificSession: grants and quotas, and the one core call path every front end uses.
//!
//! Front ends (CLI, MCP, Cap'n Proto) are thin adapters: they turn their wire format into a
//! [`capsci_core::CallRequest`], hand it to a [`Session`] and render the [`capsci_core::Envelope`]
//! they get back. Only this crate decides what a session may call.

pub mod backend;
pub mod conformance;
pub mod dispatch;
mod dispatch_solvers;
pub mod grant;
pub mod ledger;
pub mod replay;
pub mod runtime;
pub mod session;
pub mod tokens;

pub use backend::BackendKind;
pub use grant::{Grant, GrantError, GrantedMethod, Quotas};
pub use ledger::QuotaExceeded;
pub use runtime::{Runtime, RuntimeError};
pub use session::{CallError, Principal, Session};

use capsci_core::Limits;
use capsci_store::{Store, StoreError};
use std::path::PathBuf;
use std::sync::Arc;

/// How to open the service.
#[derive(Debug, Clone)]
pub struct ServiceConfig {
    /// The store directory.
    pub store_dir: PathBuf,
    /// Hot spares kept per backend (0: every call starts cold, as a one-shot CLI does).
    pub spares_per_backend: usize,
    /// Limits of a call that asks for none.
    pub default_limits: Limits,
}

impl ServiceConfig {
    /// The default store with no spares (a one-shot command line call).
    pub fn one_shot(store_dir: PathBuf) -> Self {
        ServiceConfig {
            store_dir,
            spares_per_backend: 0,
            default_limits: Limits::default(),
        }
    }
}

/// Why the service could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServiceError {
    /// The store could not be opened.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The sandbox could not be set up.
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
}

/// The service: one store, one sandbox, the backends' closures and spare pools.
#[derive(Debug)]
pub struct Service {
    store: Arc<Store>,
    runtime: Runtime,
}

impl Service {
    /// Opens the store (marking jobs of dead processes `interrupted`) and sets up the sandbox.
    pub fn open(config: ServiceConfig) -> Result<Arc<Service>, ServiceError> {
        let store = Arc::new(Store::open(&config.store_dir)?);
        let runtime = Runtime::new(
            store.clone(),
            config.spares_per_backend,
            config.default_limits,
        )?;
        Ok(Arc::new(Service { store, runtime }))
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The runtime (sandbox, closures, spares).
    pub fn runtime(&self) -> &Runtime {
        &self.runtime
    }

    /// A session holding `grant` on behalf of `principal`.
    pub fn session(self: &Arc<Self>, grant: Grant, principal: Principal) -> Session {
        Session::new(self.clone(), grant, principal, None)
    }
}
