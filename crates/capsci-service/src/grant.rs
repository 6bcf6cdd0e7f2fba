//! Grants: which interfaces and methods a session may use, and its quotas.
//!
//! A grant can only be attenuated (intersected with a narrower request), never widened: the
//! result of [`Grant::attenuate`] allows nothing its parent does not and every quota is the
//! smaller of the two.

use capsci_core::{Interface, Limits, Method};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// The name of the default full grant.
pub const SCIENTIFIC_BASE: &str = "scientific-base";

/// One granted method, or every method of an interface with `method: "*"`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GrantedMethod {
    /// The interface.
    pub interface: Interface,
    /// A method word, or `*` for all of the interface's methods.
    pub method: String,
}

/// The quotas of a session.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Quotas {
    /// CPU-seconds the session's calls may use in total.
    pub cpu_seconds_total: f64,
    /// Jobs that may run at once.
    pub concurrent_jobs: u32,
    /// The ceiling for any one call's limits.
    pub max_limits: Limits,
    /// Bytes of artifacts the session's calls may create in total.
    pub artifact_bytes: u64,
}

impl Default for Quotas {
    fn default() -> Self {
        Quotas {
            cpu_seconds_total: 24.0 * 3600.0,
            concurrent_jobs: 8,
            max_limits: Limits {
                wall_s: 3600.0,
                cpu_s: 3600.0,
                memory_mb: 8192,
                pids: 256,
                file_size_mb: 1024,
                output_bytes: 256 * 1024 * 1024,
            },
            artifact_bytes: 64 * 1024 * 1024 * 1024,
        }
    }
}

/// Which interfaces and methods a session may use, with its quotas.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Grant {
    /// A name for the grant (`scientific-base`, or the caller's label).
    pub profile: String,
    /// What may be called.
    pub methods: Vec<GrantedMethod>,
    /// The session's quotas.
    #[serde(default)]
    pub quotas: Quotas,
}

/// Why a grant file could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GrantError {
    /// The file could not be read.
    #[error("cannot read grant file {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is not a valid grant.
    #[error("grant file {path} is not a valid grant: {source}")]
    Parse {
        /// The file.
        path: String,
        /// The cause.
        source: serde_json::Error,
    },
    /// A granted method does not exist on its interface.
    #[error("grant names {interface}.{method}, which does not exist")]
    NoSuchMethod {
        /// The interface.
        interface: Interface,
        /// The method word.
        method: String,
    },
    /// A quota is negative, zero where it must not be, or not a number.
    #[error("grant quota {0} is not a positive number")]
    BadQuota(&'static str),
}

impl Grant {
    /// The default full grant: every method of every interface of the profile.
    pub fn scientific_base() -> Self {
        Grant {
            profile: SCIENTIFIC_BASE.into(),
            methods: Interface::ALL
                .iter()
                .map(|interface| GrantedMethod {
                    interface: *interface,
                    method: "*".into(),
                })
                .collect(),
            quotas: Quotas::default(),
        }
    }

    /// Reads and validates a grant from a JSON file.
    pub fn load(path: &Path) -> Result<Self, GrantError> {
        let display = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| GrantError::Read {
            path: display.clone(),
            source,
        })?;
        let grant: Grant = serde_json::from_str(&text).map_err(|source| GrantError::Parse {
            path: display,
            source,
        })?;
        grant.validate()?;
        Ok(grant)
    }

    /// Checks that every named method exists and every quota is sane.
    pub fn validate(&self) -> Result<(), GrantError> {
        for granted in &self.methods {
            if granted.method != "*"
                && Method::parse(&granted.method)
                    .is_none_or(|m| !granted.interface.methods().contains(&m))
            {
                return Err(GrantError::NoSuchMethod {
                    interface: granted.interface,
                    method: granted.method.clone(),
                });
            }
        }
        let q = &self.quotas;
        let positive = |x: f64| x.is_finite() && x > 0.0;
        if !positive(q.cpu_seconds_total) {
            return Err(GrantError::BadQuota("cpu_seconds_total"));
        }
        if q.concurrent_jobs == 0 {
            return Err(GrantError::BadQuota("concurrent_jobs"));
        }
        if !positive(q.max_limits.wall_s) || !positive(q.max_limits.cpu_s) {
            return Err(GrantError::BadQuota("max_limits"));
        }
        Ok(())
    }

    /// Whether the grant allows `interface.method`.
    pub fn allows(&self, interface: Interface, method: Method) -> bool {
        self.methods
            .iter()
            .any(|g| g.interface == interface && (g.method == "*" || g.method == method.as_str()))
    }

    /// Every method the grant allows, expanded, in catalog order.
    pub fn allowed_methods(&self) -> Vec<(Interface, Method)> {
        Interface::ALL
            .iter()
            .flat_map(|i| i.methods().iter().map(move |m| (*i, *m)))
            .filter(|(i, m)| self.allows(*i, *m))
            .collect()
    }

    /// The narrower grant for a sub-agent: what both this grant and `requested` allow, with the
    /// smaller of each quota. Never wider than `self`, whatever `requested` says.
    pub fn attenuate(&self, requested: &Grant) -> Grant {
        let methods = self
            .allowed_methods()
            .into_iter()
            .filter(|(i, m)| requested.allows(*i, *m))
            .map(|(interface, method)| GrantedMethod {
                interface,
                method: method.as_str().into(),
            })
            .collect();
        let (a, b) = (&self.quotas, &requested.quotas);
        let min_f = |x: f64, y: f64| {
            if y.is_finite() && y >= 0.0 {
                x.min(y)
            } else {
                x
            }
        };
        Grant {
            profile: requested.profile.clone(),
            methods,
            quotas: Quotas {
                cpu_seconds_total: min_f(a.cpu_seconds_total, b.cpu_seconds_total),
                concurrent_jobs: a.concurrent_jobs.min(b.concurrent_jobs),
                max_limits: clamp_limits(&b.max_limits, &a.max_limits),
                artifact_bytes: a.artifact_bytes.min(b.artifact_bytes),
            },
        }
    }
}

/// `wanted`, with every limit lowered to `ceiling` where it is above it.
pub fn clamp_limits(wanted: &Limits, ceiling: &Limits) -> Limits {
    let min_f = |x: f64, y: f64| {
        if x.is_finite() && x > 0.0 {
            x.min(y)
        } else {
            y
        }
    };
    Limits {
        wall_s: min_f(wanted.wall_s, ceiling.wall_s),
        cpu_s: min_f(wanted.cpu_s, ceiling.cpu_s),
        memory_mb: wanted.memory_mb.min(ceiling.memory_mb),
        pids: wanted.pids.min(ceiling.pids),
        file_size_mb: wanted.file_size_mb.min(ceiling.file_size_mb),
        output_bytes: wanted.output_bytes.min(ceiling.output_bytes),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn only(interface: Interface, method: &str) -> Grant {
        Grant {
            profile: "child".into(),
            methods: vec![GrantedMethod {
                interface,
                method: method.into(),
            }],
            quotas: Quotas::default(),
        }
    }

    #[test]
    fn the_base_profile_allows_every_method() {
        let base = Grant::scientific_base();
        for interface in Interface::ALL {
            for method in interface.methods() {
                assert!(base.allows(*interface, *method));
            }
        }
    }

    #[test]
    fn attenuation_never_widens() {
        let parent = only(Interface::SmtSolver, "check");
        let greedy = Grant::scientific_base();
        let child = parent.attenuate(&greedy);
        assert!(child.allows(Interface::SmtSolver, Method::Check));
        assert!(!child.allows(Interface::NumberTheory, Method::Eval));
        assert_eq!(child.allowed_methods().len(), 1);
    }

    #[test]
    fn attenuation_takes_the_smaller_quota() {
        let mut parent = Grant::scientific_base();
        parent.quotas.concurrent_jobs = 2;
        parent.quotas.max_limits.wall_s = 10.0;
        let mut requested = Grant::scientific_base();
        requested.quotas.concurrent_jobs = 50;
        requested.quotas.max_limits.wall_s = 5.0;
        requested.quotas.cpu_seconds_total = f64::NAN;
        let child = parent.attenuate(&requested);
        assert_eq!(child.quotas.concurrent_jobs, 2);
        assert_eq!(child.quotas.max_limits.wall_s, 5.0);
        assert_eq!(
            child.quotas.cpu_seconds_total,
            parent.quotas.cpu_seconds_total
        );
    }

    #[test]
    fn a_grant_naming_a_method_that_does_not_exist_is_invalid() {
        let grant = only(Interface::NumberTheory, "system");
        assert!(matches!(
            grant.validate(),
            Err(GrantError::NoSuchMethod { .. })
        ));
        let grant = only(Interface::NumberTheory, "check");
        assert!(
            grant.validate().is_err(),
            "check is not a NumberTheory method"
        );
    }

    #[test]
    fn limits_are_clamped_to_the_ceiling() {
        let ceiling = Limits {
            wall_s: 5.0,
            ..Limits::default()
        };
        let wanted = Limits {
            wall_s: 1e9,
            ..Limits::default()
        };
        assert_eq!(clamp_limits(&wanted, &ceiling).wall_s, 5.0);
        let wanted = Limits {
            wall_s: f64::INFINITY,
            ..Limits::default()
        };
        assert_eq!(clamp_limits(&wanted, &ceiling).wall_s, 5.0);
    }
}
