//! Replay: rerun a recorded call from its provenance record alone (the request and result
//! artifacts, the backend and its closure, the limits and seed) and compare. This is what makes
//! a published result re-checkable by a reviewer.

use crate::dispatch;
use crate::session::{Session, REQUEST_ROLE, RESULT_ROLE};
use capsci_core::{CallOutcome, CallRequest, Envelope};
use capsci_sandbox::CancelToken;
use capsci_store::ArtifactId;
use serde::Serialize;
use std::collections::BTreeMap;

/// What a replay found.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "verdict", rename_all = "snake_case")]
pub enum ReplayVerdict {
    /// Same status and the same result.
    Identical,
    /// The result differs; `diff` lists the differing lines of the two results' JSON.
    Differs {
        /// `- recorded` / `+ replayed` lines.
        diff: Vec<String>,
    },
    /// The backend's package closure is not the one recorded: the rerun would not run the same
    /// files. Nothing was rerun.
    ClosureChanged {
        /// The recorded closure id.
        recorded: String,
        /// The closure id now.
        current: String,
        /// Paths whose hash changed, appeared or disappeared.
        files: Vec<String>,
    },
}

/// The outcome of a replay.
#[derive(Debug, Clone, Serialize)]
pub struct ReplayReport {
    /// The record replayed.
    pub record: String,
    /// The verdict (`verdict` plus its details, flattened into the report).
    #[serde(flatten)]
    pub verdict: ReplayVerdict,
    /// The new call's envelope (absent when nothing was rerun).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replayed: Option<Box<Envelope>>,
}

/// Why a replay could not be made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReplayError {
    /// No such record.
    #[error("no provenance record {0}")]
    NoRecord(String),
    /// The record predates request/result artifacts or names none.
    #[error("record {0} carries no `{1}` artifact: it cannot be replayed")]
    NotReplayable(String, &'static str),
    /// The store failed, or an artifact is damaged.
    #[error("store: {0}")]
    Store(String),
    /// The rerun itself could not be made.
    #[error(transparent)]
    Call(#[from] crate::CallError),
}

fn store_err(e: impl std::fmt::Display) -> ReplayError {
    ReplayError::Store(e.to_string())
}

/// Reruns the call of `record_id` in `session` (a new job with its own record) and compares.
pub fn replay(session: &Session, record_id: &str) -> Result<ReplayReport, ReplayError> {
    let store = session.service().store();
    let record = store
        .log()
        .get(record_id)
        .map_err(store_err)?
        .ok_or_else(|| ReplayError::NoRecord(record_id.into()))?;
    let draft = &record.body.draft;
    let artifact = |role: &'static str| -> Result<Vec<u8>, ReplayError> {
        let id = draft
            .artifacts
            .extra
            .get(role)
            .ok_or_else(|| ReplayError::NotReplayable(record_id.into(), role))?;
        let id = ArtifactId::parse(id).map_err(store_err)?;
        store.artifacts().get_bytes(&id).map_err(store_err)
    };
    let request: CallRequest =
        serde_json::from_slice(&artifact(REQUEST_ROLE)?).map_err(store_err)?;
    let recorded: CallOutcome =
        serde_json::from_slice(&artifact(RESULT_ROLE)?).map_err(store_err)?;

    let kind = dispatch::backend_for(&request);
    if let Ok(ready) = session.service().runtime().ready(kind) {
        if !draft.backend.closure.is_empty() && ready.identity.closure != draft.backend.closure {
            let files = changed_files(session, &draft.backend.closure, &ready.identity.closure);
            return Ok(ReplayReport {
                record: record_id.into(),
                verdict: ReplayVerdict::ClosureChanged {
                    recorded: draft.backend.closure.clone(),
                    current: ready.identity.closure.clone(),
                    files,
                },
                replayed: None,
            });
        }
    }
    let envelope = session.call_with_limits(request, draft.limits.clone(), &CancelToken::new())?;
    let verdict = compare(&recorded, &envelope.call);
    Ok(ReplayReport {
        record: record_id.into(),
        verdict,
        replayed: Some(Box::new(envelope)),
    })
}

/// Identical when status and result agree, measurements (`usage`: time, CPU, memory) aside;
/// otherwise the differing lines of their JSON.
fn compare(recorded: &CallOutcome, replayed: &CallOutcome) -> ReplayVerdict {
    let normalised = |c: &CallOutcome| {
        let mut value = serde_json::to_value(c).unwrap_or_default();
        strip_measurements(&mut value);
        value
    };
    let (old, new) = (normalised(recorded), normalised(replayed));
    if old == new {
        return ReplayVerdict::Identical;
    }
    let lines = |v: &serde_json::Value| -> Vec<String> {
        serde_json::to_string_pretty(v)
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    };
    let (old, new) = (lines(&old), lines(&new));
    let mut diff: Vec<String> = old
        .iter()
        .filter(|l| !new.contains(l))
        .map(|l| format!("- {l}"))
        .collect();
    diff.extend(
        new.iter()
            .filter(|l| !old.contains(l))
            .map(|l| format!("+ {l}")),
    );
    ReplayVerdict::Differs { diff }
}

/// Removes every `usage` object: how long a run took is a measurement, not its result.
fn strip_measurements(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Object(map) => {
            map.remove("usage");
            map.values_mut().for_each(strip_measurements);
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(strip_measurements),
        _ => {}
    }
}

/// The paths whose entry differs between two stored closures.
fn changed_files(session: &Session, recorded: &str, current: &str) -> Vec<String> {
    let closures = session.service().store().closures();
    let entries = |id: &str| -> BTreeMap<String, Option<String>> {
        closures
            .get(id)
            .ok()
            .flatten()
            .map(|c| {
                c.entries
                    .into_iter()
                    .map(|e| (e.path.display().to_string(), e.hash))
                    .collect()
            })
            .unwrap_or_default()
    };
    let (old, new) = (entries(recorded), entries(current));
    if old.is_empty() {
        return vec![format!(
            "the recorded closure {recorded} is not in this store"
        )];
    }
    let mut files: Vec<String> = old
        .iter()
        .filter(|(path, hash)| new.get(*path) != Some(hash))
        .map(|(path, _)| path.clone())
        .collect();
    files.extend(new.keys().filter(|p| !old.contains_key(*p)).cloned());
    files
}
