//! `capsci artifact show|cat`.

use crate::cli::{ArtifactAction, Cli};
use crate::commands::call::store_dir;
use anyhow::Context;
use capsci_store::ArtifactId;
use std::io::Write;
use std::process::ExitCode;

/// `capsci artifact ...`.
pub fn run(cli: &Cli, action: &ArtifactAction) -> anyhow::Result<ExitCode> {
    let store = capsci_store::Store::open(&store_dir(cli)?)?;
    match action {
        ArtifactAction::Show { id } => {
            let id = ArtifactId::parse(id)?;
            let meta = store
                .artifacts()
                .meta(&id)?
                .with_context(|| format!("no artifact {id}"))?;
            out!(
                "{}",
                serde_json::to_string_pretty(&serde_json::json!({
                    "id": meta.id.as_str(), "size": meta.size, "media_type": meta.media_type, "created_at": meta.created_at,
                }))?
            );
        }
        ArtifactAction::Cat { id } => {
            let id = ArtifactId::parse(id)?;
            let mut reader = store.artifacts().open(&id)?;
            let mut out = std::io::stdout().lock();
            std::io::copy(&mut reader, &mut out).with_context(|| {
                format!("artifact {id} failed verification or could not be read")
            })?;
            out.flush()?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
