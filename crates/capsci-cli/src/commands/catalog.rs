//! `capsci catalog`: every backend, whether it is available, its version, closure id, licence
//! and reproducibility caveats. Versions come from the package databases, closures from the
//! store's hash cache: nothing here runs a tool.

use crate::cli::Cli;
use crate::commands::call::open_service;
use capsci_service::BackendKind;
use std::process::ExitCode;

/// A backend as the catalog lists it.
#[derive(Debug, serde::Serialize)]
struct Entry {
    name: &'static str,
    interface: &'static str,
    available: bool,
    version: String,
    closure: Option<String>,
    license: &'static str,
    caveats: Vec<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    unavailable_because: Option<String>,
}

/// Prints the catalog as a table, or as JSON with `--json`.
pub fn run(cli: &Cli) -> anyhow::Result<ExitCode> {
    let service = open_service(cli)?;
    let entries: Vec<Entry> = BackendKind::ALL
        .iter()
        .map(|kind| {
            let ready = service.runtime().ready(*kind);
            Entry {
                name: kind.name(),
                interface: kind.interface().as_str(),
                available: ready.is_ok(),
                version: ready
                    .as_ref()
                    .map(|r| r.identity.version.clone())
                    .unwrap_or_default(),
                closure: ready.as_ref().ok().map(|r| r.identity.closure.clone()),
                license: kind.license(),
                caveats: kind.caveats(),
                unavailable_because: ready.err().map(|e| e.to_string()),
            }
        })
        .collect();
    if cli.json {
        out!("{}", serde_json::to_string_pretty(&entries)?);
        return Ok(ExitCode::SUCCESS);
    }
    out!(
        "{:<7} {:<19} {:<10} {:<34} {:<14} LICENSE",
        "BACKEND",
        "INTERFACE",
        "AVAILABLE",
        "VERSION",
        "CLOSURE"
    );
    for e in &entries {
        let closure = e
            .closure
            .as_deref()
            .map(|c| c.chars().take(14).collect::<String>())
            .unwrap_or_else(|| "-".into());
        out!(
            "{:<7} {:<19} {:<10} {:<34} {:<14} {}",
            e.name,
            e.interface,
            if e.available { "yes" } else { "no" },
            e.version,
            closure,
            e.license
        );
        if let Some(why) = &e.unavailable_because {
            out!("        unavailable: {why}");
        }
    }
    Ok(ExitCode::SUCCESS)
}
