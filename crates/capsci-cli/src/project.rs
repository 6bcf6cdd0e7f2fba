//! Reading a proof project from the host into the request's files (capsci reads, trusted,
//! before anything runs; the backend's reader refuses symlinks out of the project, huge files and
//! non-UTF-8 names).

use anyhow::Context;
use capsci_backends::rocq::project::{read_project as read_rocq_project, ReadLimits};
use capsci_core::request::ProjectFile;
use std::path::Path;

/// The files of the `.v` file or project directory at `path`.
pub fn read_project(path: &Path) -> anyhow::Result<Vec<ProjectFile>> {
    let project = read_rocq_project(path, ReadLimits::default())
        .with_context(|| format!("cannot read proof project {}", path.display()))?;
    project
        .files
        .into_iter()
        .map(|(relative, bytes)| {
            let content = String::from_utf8(bytes)
                .with_context(|| format!("{} is not UTF-8 text", relative.display()))?;
            Ok(ProjectFile {
                path: relative.to_string_lossy().into_owned(),
                content,
            })
        })
        .collect()
}
