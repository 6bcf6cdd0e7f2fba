//! The experiment registry (minimal): an immutable run specification (a list of calls) whose id
//! is its hash, a mutable review status (`draft → reviewed → published`), labels, and the results
//! (provenance records) it cites. Publishing checks that every cited record exists and that every
//! artifact and closure it names is in the store, so a published experiment can be re-checked.

use crate::blob::{ArtifactId, BlobStore};
use crate::log::{ProvenanceLog, RecordDraft};
use crate::util::{canonical_json, now_rfc3339};
use rusqlite::{params, Connection, OptionalExtension};
use serde::{Deserialize, Serialize};
use std::sync::{Arc, Mutex};

/// Errors of the experiment registry.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RegistryError {
    /// The database failed.
    #[error("experiment registry database: {0}")]
    Db(#[from] rusqlite::Error),
    /// The run spec is not a JSON array of calls.
    #[error("a run specification must be a non-empty JSON array of calls")]
    BadSpec,
    /// No experiment with this id.
    #[error("no experiment {0}")]
    NotFound(String),
    /// A published experiment cannot change.
    #[error("experiment {0} is published and can no longer change")]
    Published(String),
    /// The status change is not allowed.
    #[error("experiment {id} is {from}; it cannot become {to}")]
    Transition {
        /// The experiment.
        id: String,
        /// Its status.
        from: ReviewStatus,
        /// The status asked for.
        to: ReviewStatus,
    },
    /// Publishing found a cited result that is not fully in the store.
    #[error("experiment {id} cannot be published: {reason}")]
    Unpublishable {
        /// The experiment.
        id: String,
        /// The first missing thing.
        reason: String,
    },
    /// Reading a cited record failed.
    #[error(transparent)]
    Log(#[from] crate::log::LogError),
    /// Checking a closure failed.
    #[error(transparent)]
    Closure(#[from] crate::closure::ClosureError),
}

/// Review status of an experiment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReviewStatus {
    /// Being written; results may be added.
    Draft,
    /// Someone reviewed it; results may still be added.
    Reviewed,
    /// Frozen: every cited result is checked to be in the store.
    Published,
}

impl ReviewStatus {
    /// The wire word.
    pub fn as_str(self) -> &'static str {
        match self {
            ReviewStatus::Draft => "draft",
            ReviewStatus::Reviewed => "reviewed",
            ReviewStatus::Published => "published",
        }
    }

    fn parse(word: &str) -> Option<Self> {
        match word {
            "draft" => Some(ReviewStatus::Draft),
            "reviewed" => Some(ReviewStatus::Reviewed),
            "published" => Some(ReviewStatus::Published),
            _ => None,
        }
    }
}

impl std::fmt::Display for ReviewStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An experiment as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Experiment {
    /// `blake3:<hex>` of the canonical JSON of `spec`.
    pub id: String,
    /// The run specification: a list of calls.
    pub spec: serde_json::Value,
    /// Review status.
    pub status: ReviewStatus,
    /// Free labels.
    pub labels: Vec<String>,
    /// Provenance record ids of the results it cites.
    pub results: Vec<String>,
    /// Created.
    pub created_at: String,
    /// Last changed.
    pub updated_at: String,
}

/// The registry, on the store's shared connection.
pub struct Experiments {
    conn: Arc<Mutex<Connection>>,
}

impl std::fmt::Debug for Experiments {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Experiments").finish_non_exhaustive()
    }
}

impl Experiments {
    /// The registry on a shared connection.
    pub fn new(conn: Arc<Mutex<Connection>>) -> Self {
        Experiments { conn }
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Registers a run specification (a non-empty JSON array of calls) as a draft; the same
    /// spec always gets the same id, and registering it again changes nothing.
    pub fn create(
        &self,
        spec: &serde_json::Value,
        labels: &[String],
    ) -> Result<String, RegistryError> {
        if spec.as_array().is_none_or(|a| a.is_empty()) {
            return Err(RegistryError::BadSpec);
        }
        let canonical = canonical_json(spec);
        let id = format!("blake3:{}", blake3::hash(canonical.as_bytes()).to_hex());
        let now = now_rfc3339();
        self.conn().execute(
            "INSERT OR IGNORE INTO experiments (id, spec, status, labels, results, created_at, updated_at) VALUES (?1, ?2, 'draft', ?3, '[]', ?4, ?4)",
            params![id, canonical, serde_json::Value::from(labels.to_vec()).to_string(), now],
        )?;
        Ok(id)
    }

    /// The experiment with this id.
    pub fn get(&self, id: &str) -> Result<Option<Experiment>, RegistryError> {
        let row: Option<(String, String, String, String, String, String)> = self
            .conn()
            .query_row(
                "SELECT spec, status, labels, results, created_at, updated_at FROM experiments WHERE id = ?1",
                [id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?)),
            )
            .optional()?;
        Ok(row.map(
            |(spec, status, labels, results, created_at, updated_at)| Experiment {
                id: id.to_string(),
                spec: serde_json::from_str(&spec).unwrap_or(serde_json::Value::Null),
                status: ReviewStatus::parse(&status).unwrap_or(ReviewStatus::Draft),
                labels: serde_json::from_str(&labels).unwrap_or_default(),
                results: serde_json::from_str(&results).unwrap_or_default(),
                created_at,
                updated_at,
            },
        ))
    }

    fn must_get(&self, id: &str) -> Result<Experiment, RegistryError> {
        self.get(id)?
            .ok_or_else(|| RegistryError::NotFound(id.to_string()))
    }

    fn save(&self, e: &Experiment) -> Result<(), RegistryError> {
        self.conn().execute(
            "UPDATE experiments SET status = ?2, labels = ?3, results = ?4, updated_at = ?5 WHERE id = ?1",
            params![
                e.id,
                e.status.as_str(),
                serde_json::Value::from(e.labels.clone()).to_string(),
                serde_json::Value::from(e.results.clone()).to_string(),
                now_rfc3339()
            ],
        )?;
        Ok(())
    }

    /// Replaces the labels (not allowed once published).
    pub fn set_labels(&self, id: &str, labels: &[String]) -> Result<(), RegistryError> {
        let mut e = self.must_get(id)?;
        if e.status == ReviewStatus::Published {
            return Err(RegistryError::Published(id.to_string()));
        }
        e.labels = labels.to_vec();
        self.save(&e)
    }

    /// Cites a result (a provenance record id).
    pub fn add_result(&self, id: &str, record_id: &str) -> Result<(), RegistryError> {
        let mut e = self.must_get(id)?;
        if e.status == ReviewStatus::Published {
            return Err(RegistryError::Published(id.to_string()));
        }
        if !e.results.iter().any(|r| r == record_id) {
            e.results.push(record_id.to_string());
        }
        self.save(&e)
    }

    /// `draft → reviewed`.
    pub fn mark_reviewed(&self, id: &str) -> Result<(), RegistryError> {
        let mut e = self.must_get(id)?;
        if e.status != ReviewStatus::Draft {
            return Err(RegistryError::Transition {
                id: id.to_string(),
                from: e.status,
                to: ReviewStatus::Reviewed,
            });
        }
        e.status = ReviewStatus::Reviewed;
        self.save(&e)
    }

    /// `reviewed → published`, after checking every cited record exists and every artifact and
    /// closure it names is in the store.
    pub fn publish(
        &self,
        id: &str,
        log: &ProvenanceLog,
        blobs: &dyn BlobStore,
        closure_exists: &dyn Fn(&str) -> Result<bool, RegistryError>,
    ) -> Result<(), RegistryError> {
        let mut e = self.must_get(id)?;
        if e.status != ReviewStatus::Reviewed {
            return Err(RegistryError::Transition {
                id: id.to_string(),
                from: e.status,
                to: ReviewStatus::Published,
            });
        }
        let fail = |reason: String| RegistryError::Unpublishable {
            id: id.to_string(),
            reason,
        };
        if e.results.is_empty() {
            return Err(fail("it cites no results".into()));
        }
        for record_id in &e.results {
            let record = log
                .get(record_id)?
                .ok_or_else(|| fail(format!("cited record {record_id} is not in the log")))?;
            let draft: &RecordDraft = &record.body.draft;
            for (role, artifact) in draft.named_artifacts() {
                let present = ArtifactId::parse(&artifact)
                    .ok()
                    .map(|a| blobs.contains(&a).unwrap_or(false))
                    .unwrap_or(false);
                if !present {
                    return Err(fail(format!(
                        "artifact {artifact} ({role} of {record_id}) is not in the store"
                    )));
                }
            }
            if draft.backend.closure.is_empty() || !closure_exists(&draft.backend.closure)? {
                return Err(fail(format!(
                    "closure {:?} of {record_id} is not in the store",
                    draft.backend.closure
                )));
            }
        }
        e.status = ReviewStatus::Published;
        self.save(&e)
    }
}
