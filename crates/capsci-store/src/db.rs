//! The store's SQLite database: connection set-up, durability settings and the schema.
//!
//! Durability: the database runs in WAL mode with `synchronous=FULL`, so every commit fsyncs the
//! write-ahead log before it returns; a committed transaction survives kill -9 and a power cut.
//! `NORMAL` would survive kill -9 but could lose the last commits on power loss, which would break
//! invariant 4 ("nothing committed is lost"). Group commit in the provenance log pays one fsync per
//! batch instead of one per record.

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

/// Opens a connection with the store's settings and makes sure the schema exists.
pub fn open(path: &Path) -> Result<Connection, DbError> {
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
    conn.execute_batch("PRAGMA synchronous=FULL; PRAGMA foreign_keys=OFF;")
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
