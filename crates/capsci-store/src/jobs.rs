//! Jobs with durable status: `queued → running → succeeded | failed | cancelled | interrupted`.
//!
//! Every job records its owner process as `<boot id>:<pid>:<start ticks>`. Several processes may
//! share one store; on open, only jobs whose owner is dead (or from a previous boot) are marked
//! `interrupted`, so a restart never leaves a job silently `running` forever, and one process never
//! interrupts another live process's jobs.
//!
//! # Durability
//!
//! The store gives the job table a connection with `synchronous=NORMAL` (see `db.rs`): a
//! transition is written to SQLite's write-ahead log before it returns, but not fsynced. The
//! exact guarantee:
//!
//! - **kill -9 / any crash of the process:** no committed transition is lost (the WAL pages are
//!   in the OS page cache). A job left `queued` or `running` by the dead owner is marked
//!   `interrupted` by the next open.
//! - **power loss / kernel crash:** the job table comes back as of some earlier commit, never
//!   torn. The transitions that can be lost are only those committed after the last fsync of the
//!   WAL, i.e. after the last `synchronous=FULL` commit of this database (every provenance
//!   append is one) or checkpoint. A job whose last transitions were lost is back in `queued` or
//!   `running`, owned by a process of the previous boot, so the next open marks it
//!   `interrupted`: a job is never silently left running. A synchronous call's job
//!   ([`Jobs::create_running`]) is durable once its provenance record is acknowledged, since that
//!   append's fsync covers the earlier job commit; its final `finish` may roll back to
//!   `running` → `interrupted`, and the acknowledged provenance record stays the durable account
//!   of the call.
//! - **[`Jobs::create`]** (a detached job whose id is handed to a client before anything else is
//!   committed) commits with `synchronous=FULL`, so an id a client has seen is never lost.

use crate::util::{identity_alive, now_rfc3339, process_identity};
use capsci_core::JobState;
use rusqlite::{params, Connection, OptionalExtension};
use serde::{Deserialize, Serialize};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Errors of the job table.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JobError {
    /// The database failed.
    #[error("job database: {0}")]
    Db(#[from] rusqlite::Error),
    /// No job with this id.
    #[error("no job {0}")]
    NotFound(String),
    /// The state change is not allowed from the job's current state.
    #[error("job {id} is {from}; it cannot become {to}")]
    Transition {
        /// The job.
        id: String,
        /// Its current state.
        from: JobState,
        /// The state asked for.
        to: JobState,
    },
    /// A stored job carries an unknown state word.
    #[error("job {id} has an unknown state {state:?}")]
    BadState {
        /// The job.
        id: String,
        /// The stored word.
        state: String,
    },
    /// `wait` ran out of time before the job finished.
    #[error("job {0} did not finish in time")]
    WaitTimeout(String),
}

/// A job as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Job {
    /// `job_<ulid>`.
    pub id: String,
    /// Current state.
    pub state: JobState,
    /// Interface called.
    pub interface: String,
    /// Method called.
    pub method: String,
    /// The call's parameters as the front end gave them (JSON).
    pub params: serde_json::Value,
    /// The owning process, `<boot id>:<pid>:<start ticks>`.
    pub owner: String,
    /// Whether a caller asked for cancellation.
    pub cancel_requested: bool,
    /// When it was created.
    pub created_at: String,
    /// When it started running.
    pub started_at: Option<String>,
    /// When it reached a final state.
    pub finished_at: Option<String>,
    /// The result envelope (JSON), for jobs that produced one.
    pub envelope: Option<serde_json::Value>,
    /// Why it failed or was interrupted.
    pub error: Option<String>,
}

/// The job table.
#[derive(Debug, Clone)]
pub struct Jobs {
    conn: Arc<Mutex<Connection>>,
    owner: String,
}

const COLUMNS: &str = "id, state, interface, method, params, owner, cancel_requested, created_at, started_at, finished_at, envelope, error";

fn row_to_job(r: &rusqlite::Row<'_>) -> rusqlite::Result<(Job, String)> {
    let state: String = r.get(1)?;
    let params: String = r.get(4)?;
    let envelope: Option<String> = r.get(10)?;
    Ok((
        Job {
            id: r.get(0)?,
            state: JobState::Queued,
            interface: r.get(2)?,
            method: r.get(3)?,
            params: serde_json::from_str(&params).unwrap_or(serde_json::Value::Null),
            owner: r.get(5)?,
            cancel_requested: r.get::<_, i64>(6)? != 0,
            created_at: r.get(7)?,
            started_at: r.get(8)?,
            finished_at: r.get(9)?,
            envelope: envelope.and_then(|e| serde_json::from_str(&e).ok()),
            error: r.get(11)?,
        },
        state,
    ))
}

fn fix_state((mut job, state): (Job, String)) -> Result<Job, JobError> {
    job.state = JobState::parse(&state).ok_or_else(|| JobError::BadState {
        id: job.id.clone(),
        state,
    })?;
    Ok(job)
}

impl Jobs {
    /// The job table on a shared connection, owned by this process.
    pub fn new(conn: Arc<Mutex<Connection>>) -> Self {
        let owner = process_identity(std::process::id())
            .unwrap_or_else(|| format!("unknown:{}:0", std::process::id()));
        Jobs { conn, owner }
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// This process's owner identity, as stored on the jobs it creates.
    pub fn owner(&self) -> &str {
        &self.owner
    }

    /// Creates a `queued` job owned by this process; returns its id (`job_<ulid>`).
    pub fn create(
        &self,
        interface: &str,
        method: &str,
        params: &serde_json::Value,
    ) -> Result<String, JobError> {
        let id = format!("job_{}", ulid::Ulid::generate());
        let conn = self.conn();
        // The id goes to a client at once: this commit is fsynced whatever the connection's
        // default (see the module docs); the previous setting is restored afterwards.
        let before: i64 = conn.query_row("PRAGMA synchronous", [], |r| r.get(0))?;
        conn.execute_batch("PRAGMA synchronous=FULL")?;
        let inserted = conn.execute(
            "INSERT INTO jobs (id, state, interface, method, params, owner, created_at) VALUES (?1, 'queued', ?2, ?3, ?4, ?5, ?6)",
            params![id, interface, method, params.to_string(), self.owner, now_rfc3339()],
        );
        conn.execute_batch(&format!("PRAGMA synchronous={before}"))?;
        inserted?;
        Ok(id)
    }

    /// Creates a job directly in `running` state owned by this process, in one commit; returns
    /// its id. For synchronous calls, which start at once: it replaces `create` + `mark_running`
    /// (two commits). If this process dies, the next open marks the job `interrupted`.
    pub fn create_running(
        &self,
        interface: &str,
        method: &str,
        params: &serde_json::Value,
    ) -> Result<String, JobError> {
        let id = format!("job_{}", ulid::Ulid::generate());
        let now = now_rfc3339();
        self.conn().execute(
            "INSERT INTO jobs (id, state, interface, method, params, owner, created_at, started_at) VALUES (?1, 'running', ?2, ?3, ?4, ?5, ?6, ?6)",
            params![id, interface, method, params.to_string(), self.owner, now],
        )?;
        Ok(id)
    }

    /// The job with this id.
    pub fn get(&self, id: &str) -> Result<Option<Job>, JobError> {
        let row = self
            .conn()
            .query_row(
                &format!("SELECT {COLUMNS} FROM jobs WHERE id = ?1"),
                [id],
                row_to_job,
            )
            .optional()?;
        row.map(fix_state).transpose()
    }

    /// The most recent `limit` jobs, newest first (ids are time-ordered ULIDs).
    pub fn list(&self, limit: usize) -> Result<Vec<Job>, JobError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {COLUMNS} FROM jobs ORDER BY id DESC LIMIT ?1"
        ))?;
        let rows = stmt.query_map([limit as i64], row_to_job)?;
        let mut out = Vec::new();
        for row in rows {
            out.push(fix_state(row?)?);
        }
        Ok(out)
    }

    fn transition(
        &self,
        id: &str,
        allowed_from: &[JobState],
        to: JobState,
        sql: &str,
        extra: &[&dyn rusqlite::ToSql],
    ) -> Result<(), JobError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let state: Option<String> = tx
            .query_row("SELECT state FROM jobs WHERE id = ?1", [id], |r| r.get(0))
            .optional()?;
        let state = state.ok_or_else(|| JobError::NotFound(id.to_string()))?;
        let from = JobState::parse(&state).ok_or_else(|| JobError::BadState {
            id: id.to_string(),
            state: state.clone(),
        })?;
        if !allowed_from.contains(&from) {
            return Err(JobError::Transition {
                id: id.to_string(),
                from,
                to,
            });
        }
        let mut args: Vec<&dyn rusqlite::ToSql> = vec![&id];
        args.extend_from_slice(extra);
        tx.execute(sql, args.as_slice())?;
        tx.commit()?;
        Ok(())
    }

    /// `queued → running`, taking ownership for this process.
    pub fn mark_running(&self, id: &str) -> Result<(), JobError> {
        let now = now_rfc3339();
        self.transition(
            id,
            &[JobState::Queued],
            JobState::Running,
            "UPDATE jobs SET state = 'running', started_at = ?2, owner = ?3 WHERE id = ?1",
            &[&now, &self.owner],
        )
    }

    /// Ends a queued or running job in a final state, with its envelope (JSON) if it has one.
    pub fn finish(
        &self,
        id: &str,
        state: JobState,
        envelope: Option<&serde_json::Value>,
        error: Option<&str>,
    ) -> Result<(), JobError> {
        if !state.is_final() {
            return Err(JobError::Transition {
                id: id.to_string(),
                from: JobState::Running,
                to: state,
            });
        }
        let now = now_rfc3339();
        let envelope = envelope.map(|e| e.to_string());
        self.transition(
            id,
            &[JobState::Queued, JobState::Running],
            state,
            "UPDATE jobs SET state = ?2, finished_at = ?3, envelope = ?4, error = ?5 WHERE id = ?1",
            &[&state.as_str(), &now, &envelope, &error],
        )
    }

    /// Asks for cancellation. A queued job becomes `cancelled` at once; a running job gets the
    /// flag its owner polls with [`Jobs::cancel_requested`]. Returns the state after the request.
    pub fn request_cancel(&self, id: &str) -> Result<JobState, JobError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let state: Option<String> = tx
            .query_row("SELECT state FROM jobs WHERE id = ?1", [id], |r| r.get(0))
            .optional()?;
        let state = state.ok_or_else(|| JobError::NotFound(id.to_string()))?;
        let from = JobState::parse(&state).ok_or_else(|| JobError::BadState {
            id: id.to_string(),
            state: state.clone(),
        })?;
        let after = match from {
            JobState::Queued => {
                tx.execute(
                    "UPDATE jobs SET state = 'cancelled', cancel_requested = 1, finished_at = ?2 WHERE id = ?1",
                    params![id, now_rfc3339()],
                )?;
                JobState::Cancelled
            }
            JobState::Running => {
                tx.execute("UPDATE jobs SET cancel_requested = 1 WHERE id = ?1", [id])?;
                JobState::Running
            }
            other => other,
        };
        tx.commit()?;
        Ok(after)
    }

    /// Whether a caller asked to cancel this job (polled by the job's owner).
    pub fn cancel_requested(&self, id: &str) -> Result<bool, JobError> {
        let flag: Option<i64> = self
            .conn()
            .query_row(
                "SELECT cancel_requested FROM jobs WHERE id = ?1",
                [id],
                |r| r.get(0),
            )
            .optional()?;
        flag.map(|f| f != 0)
            .ok_or_else(|| JobError::NotFound(id.to_string()))
    }

    /// Waits (polling) until the job is final, at most `timeout`.
    pub fn wait(&self, id: &str, timeout: Duration) -> Result<Job, JobError> {
        let deadline = Instant::now() + timeout;
        loop {
            let job = self
                .get(id)?
                .ok_or_else(|| JobError::NotFound(id.to_string()))?;
            if job.state.is_final() {
                return Ok(job);
            }
            if Instant::now() >= deadline {
                return Err(JobError::WaitTimeout(id.to_string()));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Marks `interrupted` every queued or running job whose owner process is dead. Called on
    /// open; returns the ids changed.
    pub fn recover_interrupted(&self) -> Result<Vec<String>, JobError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let candidates: Vec<(String, String)> = {
            let mut stmt =
                tx.prepare("SELECT id, owner FROM jobs WHERE state IN ('queued', 'running')")?;
            let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
            rows.collect::<Result<_, _>>()?
        };
        let now = now_rfc3339();
        let mut changed = Vec::new();
        for (id, owner) in candidates {
            if owner == self.owner || identity_alive(&owner) {
                continue;
            }
            tx.execute(
                "UPDATE jobs SET state = 'interrupted', finished_at = ?2, error = ?3 WHERE id = ?1",
                params![
                    id,
                    now,
                    format!("capsci stopped while the job ran (owner {owner} is gone)")
                ],
            )?;
            changed.push(id);
        }
        tx.commit()?;
        Ok(changed)
    }
}
