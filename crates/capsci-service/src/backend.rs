//! The backends capsci knows: their names, versions (from the package databases, without
//! running them), the roots their package closures start from, and where each is found.

use capsci_core::Interface;
use serde::Serialize;
use std::path::{Path, PathBuf};

/// A backend capsci can run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BackendKind {
    /// PARI/GP.
    Gp,
    /// SymPy in the hash-locked Python environment.
    Sympy,
    /// Z3.
    Z3,
    /// cvc5.
    Cvc5,
    /// HiGHS, through capsci's worker.
    Highs,
    /// Rocq (Coq).
    Rocq,
    /// Lean 4 (only when a toolchain is on PATH).
    Lean,
}

impl BackendKind {
    /// Every backend, in catalog order.
    pub const ALL: &'static [BackendKind] = &[
        BackendKind::Gp,
        BackendKind::Sympy,
        BackendKind::Z3,
        BackendKind::Cvc5,
        BackendKind::Highs,
        BackendKind::Rocq,
        BackendKind::Lean,
    ];

    /// The backend's name in envelopes and records.
    pub fn name(self) -> &'static str {
        match self {
            BackendKind::Gp => "gp",
            BackendKind::Sympy => "sympy",
            BackendKind::Z3 => "z3",
            BackendKind::Cvc5 => "cvc5",
            BackendKind::Highs => "highs",
            BackendKind::Rocq => "rocq",
            BackendKind::Lean => "lean",
        }
    }

    /// The interface it serves.
    pub fn interface(self) -> Interface {
        match self {
            BackendKind::Gp => Interface::NumberTheory,
            BackendKind::Sympy => Interface::ComputerAlgebra,
            BackendKind::Z3 | BackendKind::Cvc5 => Interface::SmtSolver,
            BackendKind::Highs => Interface::OptimizationSolver,
            BackendKind::Rocq | BackendKind::Lean => Interface::ProofChecker,
        }
    }

    /// The Debian package it comes from, when it comes from one.
    pub fn debian_package(self) -> Option<&'static str> {
        match self {
            BackendKind::Gp => Some("pari-gp"),
            BackendKind::Z3 => Some("z3"),
            BackendKind::Cvc5 => Some("cvc5"),
            BackendKind::Rocq => Some("coq"),
            _ => None,
        }
    }

    /// The backend's licence.
    pub fn license(self) -> &'static str {
        match self {
            BackendKind::Gp => "GPL-2+",
            BackendKind::Sympy => "BSD-3-Clause",
            BackendKind::Z3 => "MIT",
            BackendKind::Cvc5 => "BSD-3-Clause",
            BackendKind::Highs => "MIT",
            BackendKind::Rocq => "LGPL-2.1",
            BackendKind::Lean => "Apache-2.0",
        }
    }

    /// Reproducibility caveats a reader of its results should know.
    pub fn caveats(self) -> Vec<&'static str> {
        match self {
            BackendKind::Gp => vec!["real results depend on realprecision, which the input sets"],
            BackendKind::Sympy => vec!["evalf results depend on mpmath's floating point"],
            BackendKind::Z3 | BackendKind::Cvc5 => {
                vec!["answers near a time limit may vary with the seed and the machine's speed"]
            }
            BackendKind::Highs => vec![
                "floating-point results may differ across CPUs",
                "a MIP stopped by its time limit depends on the machine's speed",
            ],
            BackendKind::Rocq => vec![],
            BackendKind::Lean => vec!["unverified here: no Lean toolchain could be installed"],
        }
    }
}

/// Finds a capsci helper binary (`capsci-highs-worker`): `$env_var`, else next to the running
/// executable or in its parent directory (test binaries live in `target/*/deps`).
pub fn locate_helper(name: &str, env_var: &str) -> Option<PathBuf> {
    if let Some(path) = std::env::var_os(env_var).map(PathBuf::from) {
        return path.is_file().then_some(path);
    }
    let exe = std::env::current_exe().ok()?;
    let dir = exe.parent()?;
    [dir.join(name), dir.parent()?.join(name)]
        .into_iter()
        .find(|p| p.is_file())
}

/// The version of a Python distribution installed in a venv, from its `.dist-info` directory.
pub fn installed_python_version(venv: &Path, distribution: &str) -> Option<String> {
    let lib = std::fs::read_dir(venv.join("lib")).ok()?;
    let prefix = format!("{distribution}-");
    lib.flatten()
        .filter_map(|python| std::fs::read_dir(python.path().join("site-packages")).ok())
        .flat_map(|entries| entries.flatten())
        .find_map(|entry| {
            let name = entry.file_name().to_string_lossy().into_owned();
            name.strip_prefix(&prefix)?
                .strip_suffix(".dist-info")
                .map(str::to_string)
        })
}

/// Whether and where a Lean toolchain is on PATH.
pub fn lean_on_path() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join("lean"))
        .find(|p| p.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_installed_sympy_version_from_dist_info() {
        let venv = std::env::temp_dir().join(format!("capsci-venv-{}", std::process::id()));
        let site = venv.join("lib/python3.11/site-packages");
        std::fs::create_dir_all(site.join("sympy-1.13.3.dist-info")).expect("dirs");
        assert_eq!(
            installed_python_version(&venv, "sympy").as_deref(),
            Some("1.13.3")
        );
        assert_eq!(installed_python_version(&venv, "numpy"), None);
        std::fs::remove_dir_all(&venv).ok();
    }
}
