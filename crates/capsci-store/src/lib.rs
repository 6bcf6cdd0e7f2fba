//! The embedded store: content-addressed artifacts, the hash-chained provenance log, jobs,
//! package closures and the experiment registry, in one directory.
//!
//! ```text
//! <store>/capsci.db            SQLite (WAL; see Durability below): records, checkpoints, jobs,
//!                              artifact metadata, closures, hash caches, experiments
//! <store>/objects/ab/cdef...   artifact bytes, named by their BLAKE3 hash
//! <store>/tmp/                 temporary files of artifact writes (same file system)
//! <store>/keys/checkpoint.key  the ed25519 key that signs checkpoints of the chain head
//! ```
//!
//! # Durability
//!
//! Artifact bytes are fsynced (file and directory) before a put returns. Provenance records,
//! checkpoints and experiments commit with `synchronous=FULL`. Artifact metadata and job
//! transitions commit with `synchronous=NORMAL`: durable across kill -9 at once, and across power
//! loss as soon as a later FULL commit returns, because WAL commits become durable in commit
//! order. Store a call's artifacts before appending the record that names them, and the record's
//! acknowledgement covers them. The reasoning is written out in `db.rs`; the jobs' exact
//! guarantee in [`jobs`].
//!
//! [`Store::open`] gives access to everything; artifacts and records sit behind the narrow
//! [`BlobStore`] and [`RecordStore`] traits so that S3-compatible storage and PostgreSQL can be
//! added without callers changing.

pub mod blob;
pub mod closure;
mod db;
pub mod jobs;
pub mod log;
pub mod registry;
pub mod util;

pub use blob::{ArtifactId, ArtifactMeta, BlobError, BlobStore, DirBlobStore};
pub use closure::{
    ClosureEntry, ClosureError, ClosureSpec, ClosureStats, Closures, EntryKind, EntryRole,
    PackageClosure, PythonPackage,
};
pub use db::DbError;
pub use jobs::{Job, JobError, Jobs};
pub use log::{
    Checkpoint, LogError, Problem, ProvenanceLog, Record, RecordBody, RecordDraft, RecordRef,
    RecordStore, SqliteRecordStore, VerifyOptions, VerifyReport,
};
pub use registry::{Experiment, Experiments, RegistryError, ReviewStatus};

use rusqlite::{Connection, OptionalExtension};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// Errors opening or using the store as a whole.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The store path exists but is not a directory.
    #[error("store {0} is not a directory")]
    NotADirectory(PathBuf),
    /// The store directory could not be created or read.
    #[error("store {path} is unavailable: {source}")]
    Unavailable {
        /// The store directory.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// No store directory was given and none can be derived (no `CAPSCI_STORE`,
    /// `XDG_DATA_HOME` or `HOME`).
    #[error("no store directory: set CAPSCI_STORE, XDG_DATA_HOME or HOME")]
    NoDefaultDir,
    /// The database is unusable.
    #[error(transparent)]
    Db(#[from] DbError),
    /// The artifact directory failed.
    #[error(transparent)]
    Blob(#[from] BlobError),
    /// The provenance log failed.
    #[error(transparent)]
    Log(#[from] LogError),
    /// The job table failed.
    #[error(transparent)]
    Job(#[from] JobError),
    /// The closure cache failed.
    #[error(transparent)]
    Closure(#[from] ClosureError),
    /// The experiment registry failed.
    #[error(transparent)]
    Registry(#[from] RegistryError),
}

/// Artifacts: bytes in a [`BlobStore`], media type and size in the database.
pub struct ArtifactStore {
    blobs: Arc<dyn BlobStore>,
    meta: Arc<Mutex<Connection>>,
}

impl std::fmt::Debug for ArtifactStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ArtifactStore").finish_non_exhaustive()
    }
}

impl ArtifactStore {
    /// Stores a stream (never held in memory whole); returns its content address.
    pub fn put_reader(
        &self,
        mut reader: impl Read,
        media_type: &str,
    ) -> Result<ArtifactId, BlobError> {
        let (id, size) = self.blobs.put_reader(&mut reader)?;
        self.meta.lock().unwrap_or_else(|p| p.into_inner()).execute(
            "INSERT OR IGNORE INTO artifacts (id, size, media_type, created_at) VALUES (?1, ?2, ?3, ?4)",
            rusqlite::params![id.as_str(), size as i64, media_type, util::now_rfc3339()],
        )?;
        Ok(id)
    }

    /// Stores bytes; returns their content address.
    pub fn put_bytes(&self, bytes: &[u8], media_type: &str) -> Result<ArtifactId, BlobError> {
        self.put_reader(bytes, media_type)
    }

    /// Stores several artifacts (bytes and media type each) as one batch; returns their ids in
    /// order. Items already stored, or repeated within the batch, are not written again. Every
    /// object is fsynced and renamed into place, and its directory fsynced, before the metadata
    /// of the whole batch is inserted in one transaction.
    ///
    /// The metadata commit does not fsync on its own (see "Durability" in the crate docs): it is
    /// durable against kill -9 at once and against power loss as soon as any
    /// later `synchronous=FULL` commit on this database returns, such as the provenance record
    /// that names these artifacts. Callers must therefore store artifacts *before* appending the
    /// record that cites them, which is the natural order anyway.
    pub fn put_batch(&self, items: &[(&[u8], &str)]) -> Result<Vec<ArtifactId>, BlobError> {
        if items.is_empty() {
            return Ok(Vec::new());
        }
        let bytes: Vec<&[u8]> = items.iter().map(|(b, _)| *b).collect();
        let stored = self.blobs.put_batch(&bytes)?;
        let now = util::now_rfc3339();
        let mut conn = self.meta.lock().unwrap_or_else(|p| p.into_inner());
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        {
            let mut insert = tx.prepare_cached(
                "INSERT OR IGNORE INTO artifacts (id, size, media_type, created_at) VALUES (?1, ?2, ?3, ?4)",
            )?;
            for ((id, size), (_, media_type)) in stored.iter().zip(items) {
                insert.execute(rusqlite::params![
                    id.as_str(),
                    *size as i64,
                    media_type,
                    now
                ])?;
            }
        }
        tx.commit()?;
        Ok(stored.into_iter().map(|(id, _)| id).collect())
    }

    /// Opens an artifact; the reader fails (`InvalidData`) at end of stream if the bytes are not
    /// the ones the id names.
    pub fn open(&self, id: &ArtifactId) -> Result<Box<dyn Read + Send>, BlobError> {
        self.blobs.open(id)
    }

    /// Reads a whole artifact, verified.
    pub fn get_bytes(&self, id: &ArtifactId) -> Result<Vec<u8>, BlobError> {
        let mut out = Vec::new();
        self.open(id)?.read_to_end(&mut out).map_err(|e| {
            if e.kind() == std::io::ErrorKind::InvalidData {
                BlobError::Corrupt {
                    id: id.clone(),
                    actual: e.to_string(),
                }
            } else {
                BlobError::Io {
                    step: "read artifact",
                    path: PathBuf::from(id.as_str()),
                    source: e,
                }
            }
        })?;
        Ok(out)
    }

    /// Media type, size and creation time of an artifact.
    pub fn meta(&self, id: &ArtifactId) -> Result<Option<ArtifactMeta>, BlobError> {
        let conn = self.meta.lock().unwrap_or_else(|p| p.into_inner());
        let row: Option<(i64, String, String)> = conn
            .query_row(
                "SELECT size, media_type, created_at FROM artifacts WHERE id = ?1",
                [id.as_str()],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()?;
        Ok(row.map(|(size, media_type, created_at)| ArtifactMeta {
            id: id.clone(),
            size: size as u64,
            media_type,
            created_at,
        }))
    }

    /// Whether the artifact's bytes are present.
    pub fn contains(&self, id: &ArtifactId) -> Result<bool, BlobError> {
        self.blobs.contains(id)
    }

    /// Re-hashes an artifact; returns its size.
    pub fn verify(&self, id: &ArtifactId) -> Result<u64, BlobError> {
        self.blobs.verify(id)
    }

    /// The underlying blob store.
    pub fn blobs(&self) -> &Arc<dyn BlobStore> {
        &self.blobs
    }
}

/// The store: one directory holding artifacts, the provenance log, jobs, closures and
/// experiments. `Send + Sync`; share it behind an `Arc`. Several processes may open the same
/// directory at once.
#[derive(Debug)]
pub struct Store {
    dir: PathBuf,
    artifacts: ArtifactStore,
    log: ProvenanceLog,
    jobs: Jobs,
    closures: Closures,
    experiments: Experiments,
    recovered: Vec<String>,
}

impl Store {
    /// The default store directory: `$CAPSCI_STORE`, else `$XDG_DATA_HOME/capsci`, else
    /// `~/.local/share/capsci`.
    pub fn default_dir() -> Result<PathBuf, StoreError> {
        let non_empty = |k: &str| {
            std::env::var_os(k)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        if let Some(dir) = non_empty("CAPSCI_STORE") {
            return Ok(dir);
        }
        if let Some(data) = non_empty("XDG_DATA_HOME") {
            return Ok(data.join("capsci"));
        }
        non_empty("HOME")
            .map(|h| h.join(".local/share/capsci"))
            .ok_or(StoreError::NoDefaultDir)
    }

    /// Opens the store in `dir`, creating it if missing; marks jobs of dead processes
    /// `interrupted`. A corrupt database or an unusable directory is a typed error.
    pub fn open(dir: &Path) -> Result<Store, StoreError> {
        if dir.exists() && !dir.is_dir() {
            return Err(StoreError::NotADirectory(dir.to_path_buf()));
        }
        let unavailable = |source| StoreError::Unavailable {
            path: dir.to_path_buf(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(unavailable)?;
        std::fs::read_dir(dir).map_err(unavailable)?;
        let keys = dir.join("keys");
        std::fs::create_dir_all(&keys).map_err(unavailable)?;
        let db_path = dir.join("capsci.db");
        let shared = Arc::new(Mutex::new(db::open(&db_path)?));
        // Artifact metadata and job transitions commit without their own fsync (see the crate
        // docs, "Durability"); records, checkpoints and experiments keep synchronous=FULL.
        let relaxed = Arc::new(Mutex::new(db::open_with(&db_path, db::Sync::Normal)?));
        let blobs: Arc<dyn BlobStore> = Arc::new(DirBlobStore::open(dir)?);
        let key = log::load_or_create_key(&keys.join("checkpoint.key"))?;
        // The log reads on its own connection, so a long verify does not hold up jobs.
        let log_reader = Arc::new(Mutex::new(db::open(&db_path)?));
        let records: Arc<dyn RecordStore> =
            Arc::new(SqliteRecordStore::open(&db_path, log_reader)?);
        let log = ProvenanceLog::new(records, blobs.clone(), shared.clone(), key);
        let jobs = Jobs::new(relaxed.clone());
        let recovered = jobs.recover_interrupted()?;
        Ok(Store {
            dir: dir.to_path_buf(),
            artifacts: ArtifactStore {
                blobs,
                meta: relaxed,
            },
            log,
            jobs,
            closures: Closures::open(&db_path)?,
            experiments: Experiments::new(shared),
            recovered,
        })
    }

    /// Opens [`Store::default_dir`].
    pub fn open_default() -> Result<Store, StoreError> {
        Store::open(&Self::default_dir()?)
    }

    /// The store directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Artifacts.
    pub fn artifacts(&self) -> &ArtifactStore {
        &self.artifacts
    }

    /// The provenance log.
    pub fn log(&self) -> &ProvenanceLog {
        &self.log
    }

    /// Jobs.
    pub fn jobs(&self) -> &Jobs {
        &self.jobs
    }

    /// Package closures.
    pub fn closures(&self) -> &Closures {
        &self.closures
    }

    /// The experiment registry.
    pub fn experiments(&self) -> &Experiments {
        &self.experiments
    }

    /// Jobs this open found queued or running under a dead process and marked `interrupted`.
    pub fn recovered_jobs(&self) -> &[String] {
        &self.recovered
    }

    /// Publishes a reviewed experiment after checking that each cited record, and every artifact
    /// and closure it names, is in this store.
    pub fn publish_experiment(&self, id: &str) -> Result<(), RegistryError> {
        let closures = &self.closures;
        self.experiments
            .publish(id, &self.log, self.artifacts.blobs.as_ref(), &|closure| {
                Ok(closures.get(closure)?.is_some())
            })
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_store_can_be_shared_across_threads() {
        fn send_sync<T: Send + Sync>() {}
        send_sync::<super::Store>();
    }
}
