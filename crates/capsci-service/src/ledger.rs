//! Quota accounting for a session and its ancestors: an attenuated child's use counts against
//! its parent's quotas too, so a sub-agent cannot spend more than the session that made it.

use crate::grant::Quotas;
use std::sync::{Arc, Mutex};

/// Why a call was not run.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("resource_exceeded: quota {quota} exhausted ({detail})")]
pub struct QuotaExceeded {
    /// Which quota (`concurrent_jobs`, `cpu_seconds_total`, `artifact_bytes`).
    pub quota: &'static str,
    /// Used and allowed, in words.
    pub detail: String,
}

#[derive(Debug, Default)]
struct Used {
    running: u32,
    cpu_ms: u64,
    artifact_bytes: u64,
}

/// The running totals of one session.
#[derive(Debug)]
pub struct Ledger {
    quotas: Quotas,
    used: Mutex<Used>,
    parent: Option<Arc<Ledger>>,
}

/// Holds one concurrent-job place until dropped.
#[derive(Debug)]
pub struct Admission {
    ledgers: Vec<Arc<Ledger>>,
}

impl Drop for Admission {
    fn drop(&mut self) {
        for ledger in &self.ledgers {
            let mut used = ledger.lock();
            used.running = used.running.saturating_sub(1);
        }
    }
}

impl Ledger {
    /// A ledger for a session with `quotas`, counting also against `parent`.
    pub fn new(quotas: Quotas, parent: Option<Arc<Ledger>>) -> Arc<Self> {
        Arc::new(Ledger {
            quotas,
            used: Mutex::new(Used::default()),
            parent,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Used> {
        self.used.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn chain(self: &Arc<Self>) -> Vec<Arc<Ledger>> {
        let mut chain = vec![self.clone()];
        while let Some(parent) = chain.last().and_then(|l| l.parent.clone()) {
            chain.push(parent);
        }
        chain
    }

    /// Admits one call if every quota in the chain has room; the place is held until the
    /// returned [`Admission`] is dropped. Checked and taken atomically per ledger.
    pub fn admit(self: &Arc<Self>) -> Result<Admission, QuotaExceeded> {
        let chain = self.chain();
        let mut taken: Vec<Arc<Ledger>> = Vec::new();
        for ledger in &chain {
            let refused = {
                let mut used = ledger.lock();
                let q = &ledger.quotas;
                if used.running >= q.concurrent_jobs {
                    Some(QuotaExceeded {
                        quota: "concurrent_jobs",
                        detail: format!("{} running, {} allowed", used.running, q.concurrent_jobs),
                    })
                } else if used.cpu_ms as f64 / 1000.0 >= q.cpu_seconds_total {
                    Some(QuotaExceeded {
                        quota: "cpu_seconds_total",
                        detail: format!(
                            "{:.1} s used of {:.1} s",
                            used.cpu_ms as f64 / 1000.0,
                            q.cpu_seconds_total
                        ),
                    })
                } else if used.artifact_bytes >= q.artifact_bytes {
                    Some(QuotaExceeded {
                        quota: "artifact_bytes",
                        detail: format!(
                            "{} bytes used of {}",
                            used.artifact_bytes, q.artifact_bytes
                        ),
                    })
                } else {
                    used.running += 1;
                    None
                }
            };
            match refused {
                Some(error) => {
                    drop(Admission { ledgers: taken });
                    return Err(error);
                }
                None => taken.push(ledger.clone()),
            }
        }
        Ok(Admission { ledgers: taken })
    }

    /// CPU seconds left before the tightest quota in the chain is exhausted.
    pub fn cpu_seconds_left(self: &Arc<Self>) -> f64 {
        self.chain()
            .iter()
            .map(|l| l.quotas.cpu_seconds_total - l.lock().cpu_ms as f64 / 1000.0)
            .fold(f64::INFINITY, f64::min)
            .max(0.0)
    }

    /// Records what a finished call used, in every ledger of the chain.
    pub fn charge(self: &Arc<Self>, cpu_ms: u64, artifact_bytes: u64) {
        for ledger in self.chain() {
            let mut used = ledger.lock();
            used.cpu_ms = used.cpu_ms.saturating_add(cpu_ms);
            used.artifact_bytes = used.artifact_bytes.saturating_add(artifact_bytes);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quotas(jobs: u32, cpu: f64) -> Quotas {
        Quotas {
            concurrent_jobs: jobs,
            cpu_seconds_total: cpu,
            ..Quotas::default()
        }
    }

    #[test]
    fn concurrent_jobs_are_bounded_and_released() {
        let ledger = Ledger::new(quotas(2, 100.0), None);
        let a = ledger.admit().expect("first");
        let _b = ledger.admit().expect("second");
        let refused = ledger.admit().expect_err("third is over quota");
        assert_eq!(refused.quota, "concurrent_jobs");
        drop(a);
        assert!(ledger.admit().is_ok(), "a finished job frees its place");
    }

    #[test]
    fn a_child_spends_its_parents_quota() {
        let parent = Ledger::new(quotas(8, 10.0), None);
        let child = Ledger::new(quotas(8, 100.0), Some(parent.clone()));
        child.charge(10_500, 0);
        let refused = child.admit().expect_err("parent's CPU is spent");
        assert_eq!(refused.quota, "cpu_seconds_total");
        assert!(parent.admit().is_err());
        assert_eq!(child.cpu_seconds_left(), 0.0);
    }

    #[test]
    fn a_refusal_by_the_parent_releases_the_childs_place() {
        let parent = Ledger::new(quotas(1, 100.0), None);
        let child = Ledger::new(quotas(1, 100.0), Some(parent.clone()));
        let held = parent.admit().expect("parent runs one");
        assert!(child.admit().is_err());
        drop(held);
        assert!(
            child.admit().is_ok(),
            "the child's place was not leaked by the refusal"
        );
    }
}
