//! `capsci catalog`: every backend, whether it is installed, its version and licence.
//!
//! Versions come from the package databases (dpkg's status file, the Python lock), not from
//! running the tools: nothing here starts a process.

use crate::cli::Cli;
use std::collections::BTreeMap;
use std::path::Path;
use std::process::ExitCode;

/// A backend as the catalog lists it.
#[derive(Debug, serde::Serialize)]
struct Entry {
    name: &'static str,
    interface: &'static str,
    available: bool,
    version: String,
    source: String,
    license: String,
    caveats: Vec<&'static str>,
}

/// Debian package name → version, from dpkg's status file.
fn installed_packages(status_file: &Path) -> BTreeMap<String, String> {
    let text = std::fs::read_to_string(status_file).unwrap_or_default();
    let mut packages = BTreeMap::new();
    for stanza in text.split("\n\n") {
        let field = |key: &str| {
            stanza
                .lines()
                .find_map(|line| line.strip_prefix(key).map(|v| v.trim().to_string()))
        };
        let installed = field("Status:").is_some_and(|s| {
            s.ends_with("installed") && !s.contains("not-installed") && !s.contains("config-files")
        });
        if let (true, Some(name), Some(version)) = (installed, field("Package:"), field("Version:"))
        {
            packages.insert(name, version);
        }
    }
    packages
}

/// The version of a Python distribution installed in the venv, from its `.dist-info` directory.
fn installed_python_version(venv: &Path, distribution: &str) -> Option<String> {
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

fn debian_entry(
    packages: &BTreeMap<String, String>,
    name: &'static str,
    interface: &'static str,
    package: &str,
    license: &str,
    caveats: Vec<&'static str>,
) -> Entry {
    let version = packages.get(package).cloned();
    Entry {
        name,
        interface,
        available: version.is_some(),
        version: version.unwrap_or_else(|| "not installed".into()),
        source: format!("debian:{package}"),
        license: license.into(),
        caveats,
    }
}

fn entries() -> Vec<Entry> {
    let packages = installed_packages(Path::new("/var/lib/dpkg/status"));
    let venv = std::env::var("CAPSCI_PYTHON_ENV").unwrap_or_else(|_| "/opt/capsci/venv".into());
    let sympy = installed_python_version(Path::new(&venv), "sympy");
    let lean = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|dir| dir.join("lean"))
            .find(|p| p.is_file())
    });
    vec![
        debian_entry(&packages, "gp", "NumberTheory", "pari-gp", "GPL-2+", vec![]),
        Entry {
            name: "sympy",
            interface: "ComputerAlgebra",
            available: sympy.is_some(),
            version: sympy.unwrap_or_else(|| "not installed (run scripts/setup.sh)".into()),
            source: format!("pypi (hash-locked) in {venv}"),
            license: "BSD-3-Clause".into(),
            caveats: vec!["evalf results depend on mpmath's floating point"],
        },
        debian_entry(
            &packages,
            "z3",
            "SmtSolver",
            "z3",
            "MIT",
            vec!["answers within a time limit may vary with the seed"],
        ),
        debian_entry(
            &packages,
            "cvc5",
            "SmtSolver",
            "cvc5",
            "BSD-3-Clause",
            vec!["answers within a time limit may vary with the seed"],
        ),
        Entry {
            name: "highs",
            interface: "OptimizationSolver",
            available: true,
            version: "vendored by the highs-sys crate".into(),
            source: "crates.io:highs-sys (built from source)".into(),
            license: "MIT".into(),
            caveats: vec!["floating-point results may differ across CPUs"],
        },
        debian_entry(&packages, "rocq", "ProofChecker", "coq", "LGPL-2.1", vec![]),
        Entry {
            name: "lean",
            interface: "ProofChecker",
            available: lean.is_some(),
            version: match &lean {
                Some(path) => format!("found at {}", path.display()),
                None => "no Lean toolchain found on PATH: the lean backend is unavailable".into(),
            },
            source: "toolchain on PATH".into(),
            license: "Apache-2.0".into(),
            caveats: vec![],
        },
    ]
}

/// Prints the catalog as a table, or as JSON with `--json`.
pub fn run(cli: &Cli) -> anyhow::Result<ExitCode> {
    let entries = entries();
    if cli.json {
        println!("{}", serde_json::to_string_pretty(&entries)?);
    } else {
        println!(
            "{:<7} {:<19} {:<10} {:<28} {}",
            "BACKEND", "INTERFACE", "AVAILABLE", "VERSION", "LICENSE"
        );
        for e in &entries {
            let available = if e.available { "yes" } else { "no" };
            println!(
                "{:<7} {:<19} {:<10} {:<28} {}",
                e.name, e.interface, available, e.version, e.license
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_installed_packages_and_skips_removed_ones() {
        let dir = std::env::temp_dir().join(format!("capsci-dpkg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let status = dir.join("status");
        std::fs::write(
            &status,
            "Package: z3\nStatus: install ok installed\nVersion: 4.8.12-3.1\n\n\
             Package: cvc5\nStatus: deinstall ok config-files\nVersion: 1.0.3\n",
        )
        .expect("write");
        let packages = installed_packages(&status);
        assert_eq!(packages.get("z3").map(String::as_str), Some("4.8.12-3.1"));
        assert!(!packages.contains_key("cvc5"));
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn finds_the_installed_sympy_version_from_dist_info() {
        let venv = std::env::temp_dir().join(format!("capsci-venv-{}", std::process::id()));
        let site = venv.join("lib/python3.11/site-packages");
        std::fs::create_dir_all(site.join("sympy-1.13.3.dist-info")).expect("dirs");
        std::fs::create_dir_all(site.join("mpmath-1.3.0.dist-info")).expect("dirs");
        assert_eq!(
            installed_python_version(&venv, "sympy").as_deref(),
            Some("1.13.3")
        );
        assert_eq!(installed_python_version(&venv, "numpy"), None);
        std::fs::remove_dir_all(&venv).ok();
    }
}
