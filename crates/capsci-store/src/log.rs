//! The provenance log: append-only, hash-chained records of every call, with signed checkpoints
//! of the chain head and a W3C PROV-JSON export.
//!
//! A record's hash is BLAKE3 over a domain tag, its sequence number, the previous record's hash,
//! its id and its body (the canonical JSON written at append time, stored verbatim). Changing a
//! body changes its hash; deleting, reordering or swapping records breaks the link to the previous
//! hash; truncating the tail or rewriting the whole chain is caught by a signed checkpoint.
//!
//! Records are stored through the [`RecordStore`] trait; the embedded implementation is
//! [`SqliteRecordStore`], which batches concurrent appends into one transaction (group commit) so
//! each append is durable when it returns without paying one fsync per record.

use crate::blob::{ArtifactId, BlobError, BlobStore};
use crate::db;
use crate::util::{hex, now_rfc3339, unhex};
use capsci_core::{
    ArtifactRefs, BackendIdentity, Envelope, ExitReason, HostFacts, Limits, SandboxInfo, Usage,
};
use ed25519_dalek::{Signer, SigningKey, Verifier, VerifyingKey};
use rusqlite::{params, Connection, OptionalExtension};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, Sender, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

/// Errors of the provenance log.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LogError {
    /// The database failed.
    #[error("provenance log database: {0}")]
    Db(#[from] rusqlite::Error),
    /// Opening the database failed.
    #[error(transparent)]
    Open(#[from] db::DbError),
    /// A record could not be serialised or parsed.
    #[error("provenance record {id}: {source}")]
    Json {
        /// The record.
        id: String,
        /// serde_json's error.
        source: serde_json::Error,
    },
    /// The append transaction failed (the batch it was in was rolled back).
    #[error("appending to the provenance log: {0}")]
    Append(String),
    /// The writer thread is gone (the store is shutting down).
    #[error("provenance log writer stopped")]
    WriterGone,
    /// Starting the writer thread failed.
    #[error("cannot start provenance log writer: {0}")]
    Spawn(std::io::Error),
    /// The checkpoint key could not be read or written.
    #[error("checkpoint key {path}: {reason}")]
    Key {
        /// The key file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// A public key given for verification is not 64 hex digits of an ed25519 key.
    #[error("not an ed25519 public key: {0:?}")]
    BadPublicKey(String),
    /// No record with this id.
    #[error("no provenance record {0}")]
    NotFound(String),
    /// The log holds no records to checkpoint.
    #[error("the provenance log is empty: nothing to checkpoint")]
    Empty,
    /// Reading artifact metadata failed.
    #[error(transparent)]
    Blob(#[from] BlobError),
}

/// The previous hash of the first record.
pub const GENESIS: &str = "blake3:0000000000000000000000000000000000000000000000000000000000000000";

/// What the caller supplies for one record: everything about the call but its place in the chain.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordDraft {
    /// Who asked: a user or agent id.
    pub principal: String,
    /// The runner's / model's metadata as the caller supplies it (free JSON, e.g.
    /// `{"runner": "claude-code", "model": "...", "session": "..."}`).
    #[serde(default)]
    pub runner: serde_json::Value,
    /// Interface name (`SmtSolver`).
    pub interface: String,
    /// Method name (`check`).
    pub method: String,
    /// The status word of the result.
    pub status: String,
    /// The job this call ran as (`job_<ulid>`), if any.
    #[serde(default)]
    pub job: Option<String>,
    /// Backend name, version and closure id.
    pub backend: BackendIdentity,
    /// Input, output, log and extra artifact ids.
    pub artifacts: ArtifactRefs,
    /// The limits it ran under.
    pub limits: Limits,
    /// What it used.
    pub usage: Usage,
    /// How its process ended.
    pub exit: ExitReason,
    /// The seed given to the backend.
    #[serde(default)]
    pub seed: Option<u64>,
    /// Sandbox kind, policy hash, boundary and enforcement.
    pub sandbox: SandboxInfo,
    /// Kernel, CPU model, memory mechanism.
    pub host: HostFacts,
    /// Start of the call, RFC 3339 UTC.
    pub started_at: String,
    /// End of the call, RFC 3339 UTC.
    pub finished_at: String,
}

impl RecordDraft {
    /// A draft describing the call an envelope reports, on behalf of `principal`.
    pub fn from_envelope(envelope: &Envelope, principal: &str, runner: serde_json::Value) -> Self {
        RecordDraft {
            principal: principal.to_string(),
            runner,
            interface: envelope.call.interface().as_str().to_string(),
            method: envelope.call.method().as_str().to_string(),
            status: envelope.status_word().to_string(),
            job: Some(envelope.job.clone()),
            backend: envelope.backend.clone(),
            artifacts: envelope.artifacts.clone(),
            limits: envelope.limits.clone(),
            usage: envelope.usage,
            exit: envelope.exit,
            seed: envelope.seed,
            sandbox: envelope.sandbox.clone(),
            host: envelope.host.clone(),
            started_at: envelope.started_at.clone(),
            finished_at: envelope.finished_at.clone(),
        }
    }

    /// Every artifact the draft names, with its role (`input`, `output`, `log`, `extra:<name>`).
    pub fn named_artifacts(&self) -> Vec<(String, String)> {
        named_artifacts(&self.artifacts)
    }
}

fn named_artifacts(a: &ArtifactRefs) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (role, id) in [("input", &a.input), ("output", &a.output), ("log", &a.log)] {
        if let Some(id) = id {
            out.push((role.to_string(), id.clone()));
        }
    }
    for (name, id) in &a.extra {
        out.push((format!("extra:{name}"), id.clone()));
    }
    out
}

/// The hashed body of a record: the draft plus when the log accepted it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordBody {
    /// When the log accepted the record, RFC 3339 UTC.
    pub recorded_at: String,
    /// What the caller supplied.
    #[serde(flatten)]
    pub draft: RecordDraft,
}

/// A stored record with its place in the chain.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// Position in the chain, from 1.
    pub seq: u64,
    /// `rec_<ulid>`.
    pub id: String,
    /// Hash of the previous record ([`GENESIS`] for the first).
    pub prev: String,
    /// This record's hash.
    pub hash: String,
    /// The hashed content.
    #[serde(flatten)]
    pub body: RecordBody,
}

/// What an acknowledged append returns: enough to cite the record (the envelope's `provenance`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RecordRef {
    /// `rec_<ulid>`.
    pub id: String,
    /// Position in the chain.
    pub seq: u64,
    /// The record's hash.
    pub hash: String,
}

/// A record as stored, borrowed during a scan.
#[derive(Debug, Clone, Copy)]
pub struct RawRecord<'a> {
    /// Position in the chain as stored.
    pub seq: i64,
    /// Record id.
    pub id: &'a str,
    /// Previous hash as stored.
    pub prev: &'a str,
    /// Hash as stored.
    pub hash: &'a str,
    /// Body as stored.
    pub body: &'a str,
}

/// A signed statement "the chain's record `seq` has hash `head`".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// The sequence number signed.
    pub seq: u64,
    /// The hash of record `seq`.
    pub head: String,
    /// The signer's ed25519 public key, hex.
    pub public_key: String,
    /// The ed25519 signature over [`Checkpoint::message`], hex.
    pub signature: String,
    /// When it was made.
    pub created_at: String,
}

impl Checkpoint {
    /// The exact bytes signed.
    pub fn message(seq: u64, head: &str) -> Vec<u8> {
        format!("capsci-checkpoint-v1\n{seq}\n{head}\n").into_bytes()
    }
}

/// Storage of records and checkpoints. The embedded default is [`SqliteRecordStore`]; a
/// PostgreSQL implementation can be added behind this trait without callers changing.
pub trait RecordStore: Send + Sync {
    /// Appends the drafts, in order, as consecutive records; returns when they are durable.
    fn append(&self, drafts: Vec<RecordDraft>) -> Result<Vec<RecordRef>, LogError>;
    /// The record with this id.
    fn get(&self, id: &str) -> Result<Option<Record>, LogError>;
    /// Up to `limit` records with `seq > after`, in chain order.
    fn list(&self, after: u64, limit: usize) -> Result<Vec<Record>, LogError>;
    /// Visits every stored record in `seq` order until `visit` returns false.
    fn scan(&self, visit: &mut dyn FnMut(RawRecord<'_>) -> bool) -> Result<(), LogError>;
    /// The last record's `(seq, hash)`.
    fn head(&self) -> Result<Option<(u64, String)>, LogError>;
    /// Stores a checkpoint.
    fn add_checkpoint(&self, checkpoint: &Checkpoint) -> Result<(), LogError>;
    /// All checkpoints, by `seq`.
    fn checkpoints(&self) -> Result<Vec<Checkpoint>, LogError>;
}

/// The hash of a record at `seq` following `prev`.
pub fn record_hash(seq: u64, prev: &str, id: &str, body: &str) -> String {
    let mut h = blake3::Hasher::new();
    h.update(b"capsci-prov-v1\0");
    h.update(&seq.to_be_bytes());
    h.update(prev.as_bytes());
    h.update(b"\0");
    h.update(id.as_bytes());
    h.update(b"\0");
    h.update(body.as_bytes());
    format!("blake3:{}", h.finalize().to_hex())
}

type Reply = SyncSender<Result<Vec<RecordRef>, String>>;

struct AppendRequest {
    drafts: Vec<RecordDraft>,
    reply: Reply,
}

/// SQLite records with a group-commit writer thread.
pub struct SqliteRecordStore {
    reader: Arc<Mutex<Connection>>,
    sender: Mutex<Option<Sender<AppendRequest>>>,
    writer: Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for SqliteRecordStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteRecordStore").finish_non_exhaustive()
    }
}

/// Most records written in one transaction.
const MAX_BATCH: usize = 4096;

impl SqliteRecordStore {
    /// Uses the database at `path` (its schema already made by `db::open`) and the given
    /// shared connection for reads; starts the writer thread with its own connection.
    pub fn open(path: &Path, reader: Arc<Mutex<Connection>>) -> Result<Self, LogError> {
        let conn = db::open(path)?;
        let (sender, receiver) = mpsc::channel::<AppendRequest>();
        let writer = std::thread::Builder::new()
            .name("capsci-log-writer".into())
            .spawn(move || writer_loop(conn, receiver))
            .map_err(LogError::Spawn)?;
        Ok(SqliteRecordStore {
            reader,
            sender: Mutex::new(Some(sender)),
            writer: Mutex::new(Some(writer)),
        })
    }

    fn reader(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.reader.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Drop for SqliteRecordStore {
    fn drop(&mut self) {
        if let Ok(mut s) = self.sender.lock() {
            s.take();
        }
        if let Ok(mut w) = self.writer.lock() {
            if let Some(handle) = w.take() {
                let _ = handle.join();
            }
        }
    }
}

fn writer_loop(mut conn: Connection, receiver: Receiver<AppendRequest>) {
    while let Ok(first) = receiver.recv() {
        let mut batch = vec![first];
        let mut count = batch[0].drafts.len();
        while count < MAX_BATCH {
            match receiver.try_recv() {
                Ok(req) => {
                    count += req.drafts.len();
                    batch.push(req);
                }
                Err(_) => break,
            }
        }
        match write_batch(&mut conn, &batch) {
            Ok(refs) => {
                // Hand each caller its own records, in order.
                let mut rest = refs.into_iter();
                for req in batch {
                    let mine: Vec<RecordRef> = rest.by_ref().take(req.drafts.len()).collect();
                    let _ = req.reply.send(Ok(mine));
                }
            }
            Err(e) => {
                let msg = e.to_string();
                for req in batch {
                    let _ = req.reply.send(Err(msg.clone()));
                }
            }
        }
    }
}

fn write_batch(conn: &mut Connection, batch: &[AppendRequest]) -> Result<Vec<RecordRef>, LogError> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let head: Option<(i64, String)> = tx
        .query_row(
            "SELECT seq, hash FROM records ORDER BY seq DESC LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    let (mut seq, mut prev) = match head {
        Some((s, h)) => (s as u64, h),
        None => (0, GENESIS.to_string()),
    };
    let mut refs = Vec::new();
    {
        let mut insert = tx.prepare_cached(
            "INSERT INTO records (seq, id, prev, hash, body) VALUES (?1, ?2, ?3, ?4, ?5)",
        )?;
        for req in batch {
            for draft in &req.drafts {
                seq += 1;
                let id = format!("rec_{}", ulid::Ulid::generate());
                let body = RecordBody {
                    recorded_at: now_rfc3339(),
                    draft: draft.clone(),
                };
                let text = serde_json::to_string(&body).map_err(|source| LogError::Json {
                    id: id.clone(),
                    source,
                })?;
                let hash = record_hash(seq, &prev, &id, &text);
                insert.execute(params![seq as i64, id, prev, hash, text])?;
                refs.push(RecordRef {
                    id,
                    seq,
                    hash: hash.clone(),
                });
                prev = hash;
            }
        }
    }
    tx.commit()?;
    Ok(refs)
}

fn row_to_record(
    seq: i64,
    id: String,
    prev: String,
    hash: String,
    body: String,
) -> Result<Record, LogError> {
    let body: RecordBody = serde_json::from_str(&body).map_err(|source| LogError::Json {
        id: id.clone(),
        source,
    })?;
    Ok(Record {
        seq: seq as u64,
        id,
        prev,
        hash,
        body,
    })
}

impl RecordStore for SqliteRecordStore {
    fn append(&self, drafts: Vec<RecordDraft>) -> Result<Vec<RecordRef>, LogError> {
        if drafts.is_empty() {
            return Ok(Vec::new());
        }
        let (reply, answer) = mpsc::sync_channel(1);
        {
            let guard = self.sender.lock().map_err(|_| LogError::WriterGone)?;
            let sender = guard.as_ref().ok_or(LogError::WriterGone)?;
            sender
                .send(AppendRequest { drafts, reply })
                .map_err(|_| LogError::WriterGone)?;
        }
        match answer.recv() {
            Ok(Ok(refs)) => Ok(refs),
            Ok(Err(msg)) => Err(LogError::Append(msg)),
            Err(_) => Err(LogError::WriterGone),
        }
    }

    fn get(&self, id: &str) -> Result<Option<Record>, LogError> {
        let conn = self.reader();
        let row = conn
            .query_row(
                "SELECT seq, id, prev, hash, body FROM records WHERE id = ?1",
                [id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
            )
            .optional()?;
        match row {
            Some((seq, id, prev, hash, body)) => {
                Ok(Some(row_to_record(seq, id, prev, hash, body)?))
            }
            None => Ok(None),
        }
    }

    fn list(&self, after: u64, limit: usize) -> Result<Vec<Record>, LogError> {
        let conn = self.reader();
        let mut stmt = conn.prepare_cached(
            "SELECT seq, id, prev, hash, body FROM records WHERE seq > ?1 ORDER BY seq LIMIT ?2",
        )?;
        let rows = stmt.query_map(params![after as i64, limit as i64], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (seq, id, prev, hash, body) = row?;
            out.push(row_to_record(seq, id, prev, hash, body)?);
        }
        Ok(out)
    }

    fn scan(&self, visit: &mut dyn FnMut(RawRecord<'_>) -> bool) -> Result<(), LogError> {
        let conn = self.reader();
        // One read transaction: a consistent snapshot even while other processes append.
        conn.execute_batch("BEGIN")?;
        let result = (|| {
            let mut stmt =
                conn.prepare("SELECT seq, id, prev, hash, body FROM records ORDER BY seq")?;
            let mut rows = stmt.query([])?;
            while let Some(row) = rows.next()? {
                let raw = RawRecord {
                    seq: row.get(0)?,
                    id: row.get_ref(1)?.as_str().unwrap_or(""),
                    prev: row.get_ref(2)?.as_str().unwrap_or(""),
                    hash: row.get_ref(3)?.as_str().unwrap_or(""),
                    body: row.get_ref(4)?.as_str().unwrap_or(""),
                };
                if !visit(raw) {
                    break;
                }
            }
            Ok::<(), LogError>(())
        })();
        let _ = conn.execute_batch("COMMIT");
        result
    }

    fn head(&self) -> Result<Option<(u64, String)>, LogError> {
        let conn = self.reader();
        Ok(conn
            .query_row(
                "SELECT seq, hash FROM records ORDER BY seq DESC LIMIT 1",
                [],
                |r| Ok((r.get::<_, i64>(0)? as u64, r.get(1)?)),
            )
            .optional()?)
    }

    fn add_checkpoint(&self, c: &Checkpoint) -> Result<(), LogError> {
        self.reader().execute(
            "INSERT OR REPLACE INTO checkpoints (seq, head, public_key, signature, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![c.seq as i64, c.head, c.public_key, c.signature, c.created_at],
        )?;
        Ok(())
    }

    fn checkpoints(&self) -> Result<Vec<Checkpoint>, LogError> {
        let conn = self.reader();
        let mut stmt = conn.prepare_cached(
            "SELECT seq, head, public_key, signature, created_at FROM checkpoints ORDER BY seq",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok(Checkpoint {
                seq: r.get::<_, i64>(0)? as u64,
                head: r.get(1)?,
                public_key: r.get(2)?,
                signature: r.get(3)?,
                created_at: r.get(4)?,
            })
        })?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }
}

/// One thing `verify` found wrong. Ordered by the position in the chain where it was found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Problem {
    /// The record's content does not hash to its stored hash: it was edited.
    #[error("record {seq} ({id}) was altered: its content does not match its hash")]
    RecordAltered {
        /// Position.
        seq: u64,
        /// Record id.
        id: String,
    },
    /// The record does not follow the one before it: a record was deleted, reordered or swapped.
    #[error("record {seq} ({id}) does not follow record {}: a record before it was deleted, reordered or swapped", seq.saturating_sub(1))]
    ChainBroken {
        /// Position.
        seq: u64,
        /// Record id.
        id: String,
    },
    /// Sequence numbers jump: records are missing.
    #[error("record {expected} is missing (the next stored record is {found}, {id})")]
    Missing {
        /// The first missing position.
        expected: u64,
        /// The next stored position.
        found: u64,
        /// The id of the next stored record.
        id: String,
    },
    /// The record's body is not a readable record.
    #[error("record {seq} ({id}) is unreadable: {reason}")]
    Unreadable {
        /// Position.
        seq: u64,
        /// Record id.
        id: String,
        /// The parse error.
        reason: String,
    },
    /// An artifact a record names is not in the store.
    #[error("artifact {artifact} ({role} of record {seq}, {record}) is missing")]
    ArtifactMissing {
        /// Position of the first record naming it.
        seq: u64,
        /// That record's id.
        record: String,
        /// Its role there.
        role: String,
        /// The artifact id.
        artifact: String,
    },
    /// An artifact's bytes no longer hash to its id.
    #[error("artifact {artifact} ({role} of record {seq}, {record}) was altered: it now hashes to {actual}")]
    ArtifactAltered {
        /// Position of the first record naming it.
        seq: u64,
        /// That record's id.
        record: String,
        /// Its role there.
        role: String,
        /// The artifact id.
        artifact: String,
        /// What it hashes to now.
        actual: String,
    },
    /// A record names something that is not an artifact id, or the artifact cannot be read.
    #[error("artifact {artifact} ({role} of record {seq}, {record}) cannot be checked: {reason}")]
    ArtifactUnreadable {
        /// Position of the first record naming it.
        seq: u64,
        /// That record's id.
        record: String,
        /// Its role there.
        role: String,
        /// The text found.
        artifact: String,
        /// Why.
        reason: String,
    },
    /// A checkpoint's signature does not verify under the trusted key.
    #[error("checkpoint at record {seq} has a bad signature or an untrusted key")]
    CheckpointSignature {
        /// The checkpointed position.
        seq: u64,
    },
    /// The chain's hash at a checkpointed position is not the signed one: the chain was rewritten.
    #[error("record {seq} ({id}) differs from the signed checkpoint: the chain was rewritten")]
    CheckpointMismatch {
        /// The checkpointed position.
        seq: u64,
        /// The record now at that position.
        id: String,
    },
    /// A checkpoint names a position past the end of the log: records were removed from the end.
    #[error("checkpoint at record {seq} but the log ends at record {head}: records were removed from the end")]
    Truncated {
        /// The checkpointed position.
        seq: u64,
        /// The last stored position.
        head: u64,
    },
}

impl Problem {
    /// The chain position the problem was found at (for ordering).
    pub fn seq(&self) -> u64 {
        match self {
            Problem::RecordAltered { seq, .. }
            | Problem::ChainBroken { seq, .. }
            | Problem::Unreadable { seq, .. }
            | Problem::ArtifactMissing { seq, .. }
            | Problem::ArtifactAltered { seq, .. }
            | Problem::ArtifactUnreadable { seq, .. }
            | Problem::CheckpointSignature { seq }
            | Problem::CheckpointMismatch { seq, .. }
            | Problem::Truncated { seq, .. } => *seq,
            Problem::Missing { expected, .. } => *expected,
        }
    }
}

/// What to check.
#[derive(Debug, Clone, Default)]
pub struct VerifyOptions {
    /// Skip re-hashing artifacts (chain and checkpoints only).
    pub skip_artifacts: bool,
    /// The public key (hex) checkpoints must be signed with; default: the store's own key. Give
    /// the original store's key when verifying a copied log.
    pub trusted_key: Option<String>,
}

/// The outcome of `verify`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct VerifyReport {
    /// Records read.
    pub records: u64,
    /// The last record's position and hash.
    pub head: Option<(u64, String)>,
    /// Distinct artifacts re-hashed.
    pub artifacts_checked: u64,
    /// Bytes re-hashed.
    pub artifact_bytes: u64,
    /// Checkpoints whose signature and head were checked.
    pub checkpoints_checked: u64,
    /// What is wrong, first problem first (at most [`MAX_PROBLEMS`]).
    pub problems: Vec<Problem>,
}

/// Most problems one report lists.
pub const MAX_PROBLEMS: usize = 1000;

impl VerifyReport {
    /// Whether nothing is wrong.
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }

    /// The first bad record or artifact, in chain order.
    pub fn first_problem(&self) -> Option<&Problem> {
        self.problems.first()
    }
}

#[derive(Deserialize)]
struct ArtifactsOnly {
    artifacts: ArtifactRefs,
}

/// The provenance log: records behind a [`RecordStore`], artifacts behind a [`BlobStore`], and
/// the store's checkpoint key.
pub struct ProvenanceLog {
    records: Arc<dyn RecordStore>,
    blobs: Arc<dyn BlobStore>,
    meta: Arc<Mutex<Connection>>,
    key: SigningKey,
}

impl std::fmt::Debug for ProvenanceLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProvenanceLog")
            .field("public_key", &self.public_key())
            .finish_non_exhaustive()
    }
}

impl ProvenanceLog {
    /// Assembles the log from its parts (done by `Store::open`).
    pub fn new(
        records: Arc<dyn RecordStore>,
        blobs: Arc<dyn BlobStore>,
        meta: Arc<Mutex<Connection>>,
        key: SigningKey,
    ) -> Self {
        ProvenanceLog {
            records,
            blobs,
            meta,
            key,
        }
    }

    /// Appends one record; when this returns, the record is durable (acknowledged).
    pub fn append(&self, draft: RecordDraft) -> Result<RecordRef, LogError> {
        self.records
            .append(vec![draft])?
            .pop()
            .ok_or(LogError::WriterGone)
    }

    /// Records the call an envelope reports (on behalf of `principal`, with the runner's
    /// metadata) and fills the envelope's `provenance` with the acknowledged record.
    pub fn append_envelope(
        &self,
        envelope: &mut Envelope,
        principal: &str,
        runner: serde_json::Value,
    ) -> Result<RecordRef, LogError> {
        let r = self.append(RecordDraft::from_envelope(envelope, principal, runner))?;
        envelope.provenance = Some(capsci_core::ProvenanceRef {
            record: r.id.clone(),
            hash: r.hash.clone(),
        });
        Ok(r)
    }

    /// Appends several records as consecutive entries in one durable commit.
    pub fn append_many(&self, drafts: Vec<RecordDraft>) -> Result<Vec<RecordRef>, LogError> {
        self.records.append(drafts)
    }

    /// The record with this id.
    pub fn get(&self, id: &str) -> Result<Option<Record>, LogError> {
        self.records.get(id)
    }

    /// Up to `limit` records after position `after` (0 for the start), in chain order.
    pub fn list(&self, after: u64, limit: usize) -> Result<Vec<Record>, LogError> {
        self.records.list(after, limit)
    }

    /// The last record's position and hash.
    pub fn head(&self) -> Result<Option<(u64, String)>, LogError> {
        self.records.head()
    }

    /// This store's checkpoint public key (hex), to take along with a copied log.
    pub fn public_key(&self) -> String {
        hex(self.key.verifying_key().as_bytes())
    }

    /// Signs the current head and stores the checkpoint.
    pub fn checkpoint(&self) -> Result<Checkpoint, LogError> {
        let (seq, head) = self.records.head()?.ok_or(LogError::Empty)?;
        let signature = self.key.sign(&Checkpoint::message(seq, &head));
        let cp = Checkpoint {
            seq,
            head,
            public_key: self.public_key(),
            signature: hex(&signature.to_bytes()),
            created_at: now_rfc3339(),
        };
        self.records.add_checkpoint(&cp)?;
        Ok(cp)
    }

    /// All checkpoints.
    pub fn checkpoints(&self) -> Result<Vec<Checkpoint>, LogError> {
        self.records.checkpoints()
    }

    /// Checks the whole chain, every checkpoint and (unless skipped) every artifact a record
    /// names; reports the first bad record or artifact precisely.
    pub fn verify(&self, options: &VerifyOptions) -> Result<VerifyReport, LogError> {
        let trusted_hex = options
            .trusted_key
            .clone()
            .unwrap_or_else(|| self.public_key());
        let trusted = unhex::<32>(&trusted_hex)
            .and_then(|b| VerifyingKey::from_bytes(&b).ok())
            .ok_or_else(|| LogError::BadPublicKey(trusted_hex.clone()))?;
        let mut report = VerifyReport::default();
        let mut problems: Vec<Problem> = Vec::new();
        // Checkpoints: signature now, head when the scan reaches its position.
        let mut expected_heads: BTreeMap<u64, String> = BTreeMap::new();
        for cp in self.records.checkpoints()? {
            report.checkpoints_checked += 1;
            let sig_ok = cp.public_key == trusted_hex
                && unhex::<64>(&cp.signature)
                    .map(|s| ed25519_dalek::Signature::from_bytes(&s))
                    .map(|s| {
                        trusted
                            .verify(&Checkpoint::message(cp.seq, &cp.head), &s)
                            .is_ok()
                    })
                    .unwrap_or(false);
            if !sig_ok {
                problems.push(Problem::CheckpointSignature { seq: cp.seq });
            } else {
                expected_heads.insert(cp.seq, cp.head);
            }
        }
        // Artifact id → (first seq, record id, role).
        let mut artifacts: HashMap<String, (u64, String, String)> = HashMap::new();
        let mut expected_seq = 1u64;
        let mut prev = GENESIS.to_string();
        let mut last: Option<(u64, String)> = None;
        let check_artifacts = !options.skip_artifacts;
        self.records.scan(&mut |raw| {
            report.records += 1;
            let seq = raw.seq.max(0) as u64;
            if problems.len() < MAX_PROBLEMS {
                let recomputed = record_hash(seq, raw.prev, raw.id, raw.body);
                if seq != expected_seq {
                    problems.push(Problem::Missing {
                        expected: expected_seq,
                        found: seq,
                        id: raw.id.to_string(),
                    });
                } else if raw.prev != prev {
                    problems.push(Problem::ChainBroken {
                        seq,
                        id: raw.id.to_string(),
                    });
                } else if recomputed != raw.hash {
                    problems.push(Problem::RecordAltered {
                        seq,
                        id: raw.id.to_string(),
                    });
                }
                if let Some(head) = expected_heads.get(&seq) {
                    if head != raw.hash {
                        problems.push(Problem::CheckpointMismatch {
                            seq,
                            id: raw.id.to_string(),
                        });
                    }
                }
            }
            if check_artifacts {
                match serde_json::from_str::<ArtifactsOnly>(raw.body) {
                    Ok(a) => {
                        for (role, id) in named_artifacts(&a.artifacts) {
                            artifacts
                                .entry(id)
                                .or_insert_with(|| (seq, raw.id.to_string(), role));
                        }
                    }
                    Err(e) => {
                        if problems.len() < MAX_PROBLEMS {
                            problems.push(Problem::Unreadable {
                                seq,
                                id: raw.id.to_string(),
                                reason: e.to_string(),
                            })
                        }
                    }
                }
            }
            expected_seq = seq + 1;
            prev = raw.hash.to_string();
            last = Some((seq, raw.hash.to_string()));
            true
        })?;
        let head_seq = last.as_ref().map(|l| l.0).unwrap_or(0);
        for seq in expected_heads.keys() {
            if *seq > head_seq {
                problems.push(Problem::Truncated {
                    seq: *seq,
                    head: head_seq,
                });
            }
        }
        report.head = last;
        if check_artifacts {
            let mut list: Vec<(String, (u64, String, String))> = artifacts.into_iter().collect();
            list.sort_by(|a, b| (a.1 .0, &a.0).cmp(&(b.1 .0, &b.0)));
            for (text, (seq, record, role)) in list {
                let problem = match ArtifactId::parse(&text) {
                    Err(e) => Some(Problem::ArtifactUnreadable {
                        seq,
                        record,
                        role,
                        artifact: text,
                        reason: e.to_string(),
                    }),
                    Ok(id) => match self.blobs.verify(&id) {
                        Ok(bytes) => {
                            report.artifacts_checked += 1;
                            report.artifact_bytes += bytes;
                            None
                        }
                        Err(BlobError::NotFound(_)) => Some(Problem::ArtifactMissing {
                            seq,
                            record,
                            role,
                            artifact: text,
                        }),
                        Err(BlobError::Corrupt { actual, .. }) => {
                            report.artifacts_checked += 1;
                            Some(Problem::ArtifactAltered {
                                seq,
                                record,
                                role,
                                artifact: text,
                                actual,
                            })
                        }
                        Err(e) => Some(Problem::ArtifactUnreadable {
                            seq,
                            record,
                            role,
                            artifact: text,
                            reason: e.to_string(),
                        }),
                    },
                };
                if let Some(p) = problem {
                    if problems.len() < MAX_PROBLEMS {
                        problems.push(p);
                    }
                }
            }
        }
        problems.sort_by_key(|p| p.seq());
        report.problems = problems;
        Ok(report)
    }

    /// One record's provenance as a W3C PROV-JSON document: the call is the activity, its
    /// artifacts and the backend's closure are entities, the principal and the backend agents.
    pub fn export_prov(&self, record_id: &str) -> Result<serde_json::Value, LogError> {
        use serde_json::{json, Map, Value};
        let record = self
            .get(record_id)?
            .ok_or_else(|| LogError::NotFound(record_id.to_string()))?;
        let d = &record.body.draft;
        let act = format!("capsci:{}", record.id);
        let principal = format!("capsci:principal/{}", d.principal);
        let backend = format!("capsci:backend/{}/{}", d.backend.name, d.backend.version);
        let mut entity = Map::new();
        let mut used = Map::new();
        let mut generated = Map::new();
        let conn = self.meta.lock().unwrap_or_else(|p| p.into_inner());
        for (n, (role, id)) in named_artifacts(&d.artifacts).into_iter().enumerate() {
            let key = format!("capsci:artifact/{id}");
            let mut attrs = Map::new();
            attrs.insert("prov:type".into(), json!("capsci:Artifact"));
            attrs.insert("capsci:id".into(), json!(id));
            attrs.insert("capsci:role".into(), json!(role));
            let meta: Option<(i64, String)> = conn
                .query_row(
                    "SELECT size, media_type FROM artifacts WHERE id = ?1",
                    [&id],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?;
            if let Some((size, media)) = meta {
                attrs.insert("capsci:size".into(), json!(size));
                attrs.insert("capsci:media_type".into(), json!(media));
            }
            entity.insert(key.clone(), Value::Object(attrs));
            if role == "input" {
                used.insert(
                    format!("_:u{n}"),
                    json!({"prov:activity": act, "prov:entity": key}),
                );
            } else {
                generated.insert(
                    format!("_:g{n}"),
                    json!({"prov:entity": key, "prov:activity": act, "prov:time": d.finished_at}),
                );
            }
        }
        drop(conn);
        let closure = format!("capsci:closure/{}", d.backend.closure);
        entity.insert(
            closure.clone(),
            json!({"prov:type": "prov:Plan", "capsci:closure": d.backend.closure, "capsci:backend": d.backend.name}),
        );
        Ok(json!({
            "prefix": {
                "capsci": "urn:capsci:",
                "prov": "http://www.w3.org/ns/prov#"
            },
            "entity": entity,
            "activity": {
                act.clone(): {
                    "prov:type": "capsci:Call",
                    "prov:startTime": d.started_at,
                    "prov:endTime": d.finished_at,
                    "capsci:interface": d.interface,
                    "capsci:method": d.method,
                    "capsci:status": d.status,
                    "capsci:job": d.job,
                    "capsci:seq": record.seq,
                    "capsci:record_hash": record.hash,
                    "capsci:exit": d.exit.to_string(),
                    "capsci:seed": d.seed,
                    "capsci:limits": serde_json::to_string(&d.limits).unwrap_or_default(),
                    "capsci:usage": serde_json::to_string(&d.usage).unwrap_or_default(),
                    "capsci:sandbox_policy": d.sandbox.policy,
                    "capsci:host": serde_json::to_string(&d.host).unwrap_or_default(),
                }
            },
            "agent": {
                principal.clone(): {
                    "prov:type": "prov:Person",
                    "capsci:principal": d.principal,
                    "capsci:runner": serde_json::to_string(&d.runner).unwrap_or_default(),
                },
                backend.clone(): {
                    "prov:type": "prov:SoftwareAgent",
                    "capsci:name": d.backend.name,
                    "capsci:version": d.backend.version,
                    "capsci:closure": d.backend.closure,
                }
            },
            "used": used,
            "wasGeneratedBy": generated,
            "wasAssociatedWith": {
                "_:a1": {"prov:activity": act, "prov:agent": principal},
                "_:a2": {"prov:activity": act, "prov:agent": backend, "prov:plan": closure}
            },
            "actedOnBehalfOf": {
                "_:d1": {"prov:delegate": backend, "prov:responsible": principal, "prov:activity": act}
            }
        }))
    }
}

/// Loads the store's checkpoint key from `path`, creating it (mode 0600, never overwriting a key
/// another process made first) if it is missing.
pub fn load_or_create_key(path: &Path) -> Result<SigningKey, LogError> {
    let key_err = |reason: String| LogError::Key {
        path: path.to_path_buf(),
        reason,
    };
    if !path.exists() {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let secret: [u8; 32] = crate::util::random_bytes().map_err(|e| key_err(e.to_string()))?;
        let temp = path.with_extension(format!("tmp{}", std::process::id()));
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&temp)
            .map_err(|e| key_err(format!("create {}: {e}", temp.display())))?;
        file.write_all(hex(&secret).as_bytes())
            .and_then(|_| file.sync_all())
            .map_err(|e| key_err(e.to_string()))?;
        // hard_link fails if another process got there first; then its key is the key.
        let linked = std::fs::hard_link(&temp, path);
        let _ = std::fs::remove_file(&temp);
        if let Err(e) = linked {
            if e.kind() != std::io::ErrorKind::AlreadyExists {
                return Err(key_err(e.to_string()));
            }
        }
        if let Some(dir) = path.parent() {
            let _ = crate::util::fsync_dir(dir);
        }
    }
    let text = std::fs::read_to_string(path).map_err(|e| key_err(e.to_string()))?;
    let secret = unhex::<32>(text.trim()).ok_or_else(|| key_err("not 64 hex digits".into()))?;
    Ok(SigningKey::from_bytes(&secret))
}
