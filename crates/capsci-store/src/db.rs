//! The store's SQLite database: connection set-up, durability settings and the schema.
//!
//! # Durability
//!
//! The database runs in WAL mode. Connections are opened with one of two settings ([`Sync`]):
//!
//! - `synchronous=FULL` (provenance records and checkpoints, experiments, closures): every commit
//!   fsyncs the write-ahead log before it returns, so an acknowledged record survives kill -9 and
//!   a power cut (invariant 4, "nothing committed is lost"). Group commit in the provenance log
//!   pays one fsync per batch instead of one per record.
//! - `synchronous=NORMAL` (artifact metadata, job transitions): a commit is written to the WAL
//!   but not fsynced. It survives kill -9 at once (the pages are in the OS page cache; SQLite's
//!   docs: "transactions are durable across application crashes regardless of the synchronous
//!   setting"), and "might roll back following a power loss or system crash" until the WAL is
//!   next synced.
//!
//! Why mixing the two keeps the guarantee that matters — artifact metadata (and a synchronous
//! call's job) is durable before the record naming it is acknowledged:
//!
//! 1. Commits to one WAL are serialised by the WAL write lock and appended to the one WAL file
//!    in commit order, whichever connection makes them.
//! 2. A FULL commit fsyncs the WAL *file*, which flushes every frame written before it,
//!    including the frames of earlier NORMAL commits by any connection.
//! 3. Recovery replays the WAL from its start and stops at the first frame whose (cumulative)
//!    checksum fails, keeping everything up to the last valid commit frame (SQLite's WAL format
//!    docs). So the durable state after a power cut is always a *prefix* of the commit order: if
//!    a later FULL commit survived, every earlier NORMAL commit survived too.
//! 4. When the WAL is restarted after a checkpoint, NORMAL still syncs the WAL before the
//!    checkpoint and the database file after it (SQLite's `PRAGMA synchronous` docs), so frames
//!    of earlier commits are in the database file before the WAL is reused.
//!
//! Sources: <https://sqlite.org/pragma.html#pragma_synchronous> (point 4 and the NORMAL/FULL
//! behaviour), <https://sqlite.org/wal.html> ("writers sync the WAL on every transaction commit if
//! PRAGMA synchronous is set to FULL but omit this sync if ... NORMAL"),
//! <https://sqlite.org/walformat.html> (recovery stops at the first invalid checksum; frame
//! checksums chain over the previous frame), and the SQLite forum thread "Switching pragma
//! synchronous to upgrade durability" (flushing the WAL file makes previously committed NORMAL
//! transactions durable).
//!
//! Hence: store the artifacts (NORMAL), then append the record (FULL); when the append returns,
//! the artifacts' metadata is as durable as the record. The artifact *bytes* never depend on
//! this: each object file and its directory are fsynced before `put_batch`/`put_reader` return.

use rusqlite::Connection;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Errors opening or preparing the database.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DbError {
    /// SQLite could not open the file.
    #[error("cannot open store database {path}: {source}")]
    Open {
        /// The database file.
        path: PathBuf,
        /// SQLite's error.
        source: rusqlite::Error,
    },
    /// The file exists but is not a usable capsci database (not SQLite, damaged, or from an
    /// unknown schema version).
    #[error("store database {path} is corrupt or not a capsci store: {reason}")]
    Corrupt {
        /// The database file.
        path: PathBuf,
        /// What SQLite or the schema check said.
        reason: String,
    },
}

/// The schema version this code writes (`PRAGMA user_version`).
pub const SCHEMA_VERSION: i64 = 1;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS artifacts (
    id TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    media_type TEXT NOT NULL,
    created_at TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS records (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    prev TEXT NOT NULL,
    hash TEXT NOT NULL,
    body TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS checkpoints (
    seq INTEGER PRIMARY KEY,
    head TEXT NOT NULL,
    public_key TEXT NOT NULL,
    signature TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    state TEXT NOT NULL,
    interface TEXT NOT NULL,
    method TEXT NOT NULL,
    params TEXT NOT NULL,
    owner TEXT NOT NULL,
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL,
    started_at TEXT,
    finished_at TEXT,
    envelope TEXT,
    error TEXT
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS jobs_state ON jobs(state);
CREATE TABLE IF NOT EXISTS hash_cache (
    path TEXT PRIMARY KEY,
    dev INTEGER NOT NULL,
    ino INTEGER NOT NULL,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    hash TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS elf_cache (
    path TEXT PRIMARY KEY,
    dev INTEGER NOT NULL,
    ino INTEGER NOT NULL,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    info TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS tree_cache (
    path TEXT PRIMARY KEY,
    fingerprint TEXT NOT NULL,
    hash TEXT NOT NULL,
    files INTEGER NOT NULL,
    size INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS pkg_cache (
    path TEXT PRIMARY KEY,
    generation TEXT NOT NULL,
    package TEXT,
    version TEXT,
    license TEXT
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS closures (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    body TEXT NOT NULL,
    created_at TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS experiments (
    id TEXT PRIMARY KEY,
    spec TEXT NOT NULL,
    status TEXT NOT NULL,
    labels TEXT NOT NULL,
    results TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
) WITHOUT ROWID;
";

/// How a connection's commits reach the disk (`PRAGMA synchronous`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sync {
    /// Every commit fsyncs the WAL before it returns: durable across power loss.
    Full,
    /// Commits are written to the WAL without an fsync: durable across kill -9 at once, and
    /// across power loss once a later `Full` commit (or a checkpoint) has synced the WAL.
    Normal,
}

/// Opens a connection with the store's settings (`synchronous=FULL`) and makes sure the schema
/// exists.
pub fn open(path: &Path) -> Result<Connection, DbError> {
    open_with(path, Sync::Full)
}

/// Opens a connection with the store's settings and the given commit durability.
pub fn open_with(path: &Path, sync: Sync) -> Result<Connection, DbError> {
    let conn = Connection::open(path).map_err(|source| DbError::Open {
        path: path.to_path_buf(),
        source,
    })?;
    let corrupt = |e: rusqlite::Error| DbError::Corrupt {
        path: path.to_path_buf(),
        reason: e.to_string(),
    };
    conn.busy_timeout(Duration::from_secs(60))
        .map_err(corrupt)?;
    // The first real read: fails with "file is not a database" for garbage.
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(corrupt)?;
    if version > SCHEMA_VERSION {
        return Err(DbError::Corrupt {
            path: path.to_path_buf(),
            reason: format!(
                "schema version {version} is newer than this capsci ({SCHEMA_VERSION})"
            ),
        });
    }
    let mode: String = conn
        .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
        .map_err(corrupt)?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(DbError::Corrupt {
            path: path.to_path_buf(),
            reason: format!("cannot switch to WAL mode (got {mode})"),
        });
    }
    let sync = match sync {
        Sync::Full => "FULL",
        Sync::Normal => "NORMAL",
    };
    conn.execute_batch(&format!(
        "PRAGMA synchronous={sync}; PRAGMA foreign_keys=OFF;"
    ))
    .map_err(corrupt)?;
    if version < SCHEMA_VERSION {
        conn.execute_batch(&format!(
            "BEGIN IMMEDIATE; {SCHEMA} PRAGMA user_version={SCHEMA_VERSION}; COMMIT;"
        ))
        .map_err(corrupt)?;
    }
    // Every table must be there (catches a foreign SQLite file that happens to carry our version).
    let tables: i64 = conn
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE type='table' AND name IN \
             ('artifacts','records','checkpoints','jobs','hash_cache','elf_cache','tree_cache','pkg_cache','closures','experiments')",
            [],
            |r| r.get(0),
        )
        .map_err(corrupt)?;
    if tables != 10 {
        return Err(DbError::Corrupt {
            path: path.to_path_buf(),
            reason: format!("expected 10 capsci tables, found {tables}"),
        });
    }
    Ok(conn)
}
