//! A granted workspace: the one host directory whose proof projects `proof_checker_*` may name
//! by `path` instead of sending `files`. A path must be relative, may not contain `..`, and
//! must still be inside the workspace once symbolic links are resolved; the project is then read
//! by the Rocq backend's reader (which refuses symlinks leaving the project, huge files and
//! non-UTF-8 names), by capsci, before anything runs.

use capsci_backends::rocq::project::{read_project, ReadError, ReadLimits};
use capsci_core::request::ProjectFile;
use std::path::{Component, Path, PathBuf};

/// Why a workspace path could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WorkspaceError {
    /// The workspace directory itself is unusable.
    #[error("workspace {path}: {source}")]
    Root {
        /// The directory.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The path is absolute, empty or climbs out with `..`.
    #[error("path {0:?} must be relative to the workspace, without '..'")]
    NotRelative(String),
    /// The path does not exist in the workspace.
    #[error("path {path:?} is not in the workspace: {source}")]
    Missing {
        /// The path as given.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The path resolves (through a symbolic link) to somewhere outside the workspace.
    #[error("path {0:?} leaves the workspace")]
    Escapes(String),
    /// The project could not be read.
    #[error("path {path:?}: {source}")]
    Read {
        /// The path as given.
        path: String,
        /// The cause.
        source: ReadError,
    },
    /// A file is not UTF-8 text.
    #[error("{0} is not UTF-8 text")]
    NotText(String),
}

/// The workspace directory, canonical.
#[derive(Debug, Clone)]
pub struct Workspace {
    root: PathBuf,
}

impl Workspace {
    /// The workspace at `dir` (resolved once, at server start).
    pub fn open(dir: &Path) -> Result<Self, WorkspaceError> {
        let root = std::fs::canonicalize(dir).map_err(|source| WorkspaceError::Root {
            path: dir.to_path_buf(),
            source,
        })?;
        if !root.is_dir() {
            return Err(WorkspaceError::Root {
                path: dir.to_path_buf(),
                source: std::io::Error::new(std::io::ErrorKind::NotADirectory, "not a directory"),
            });
        }
        Ok(Workspace { root })
    }

    /// The workspace's canonical directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The host path of `relative`, checked to stay inside the workspace.
    fn resolve(&self, relative: &str) -> Result<PathBuf, WorkspaceError> {
        let path = Path::new(relative);
        let plain = !relative.is_empty()
            && path
                .components()
                .all(|c| matches!(c, Component::Normal(_) | Component::CurDir));
        if !plain {
            return Err(WorkspaceError::NotRelative(relative.into()));
        }
        let resolved = std::fs::canonicalize(self.root.join(path)).map_err(|source| {
            WorkspaceError::Missing {
                path: relative.into(),
                source,
            }
        })?;
        if !resolved.starts_with(&self.root) {
            return Err(WorkspaceError::Escapes(relative.into()));
        }
        Ok(resolved)
    }

    /// The files of the `.v` file or project directory at `relative`.
    pub fn project(&self, relative: &str) -> Result<Vec<ProjectFile>, WorkspaceError> {
        let resolved = self.resolve(relative)?;
        let project = read_project(&resolved, ReadLimits::default()).map_err(|source| {
            WorkspaceError::Read {
                path: relative.into(),
                source,
            }
        })?;
        project
            .files
            .into_iter()
            .map(|(path, bytes)| {
                let path = path.to_string_lossy().into_owned();
                String::from_utf8(bytes)
                    .map(|content| ProjectFile {
                        path: path.clone(),
                        content,
                    })
                    .map_err(|_| WorkspaceError::NotText(path))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("capsci-ws-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("dir");
        dir
    }

    #[test]
    fn paths_stay_inside_the_workspace() {
        let base = temp("inside");
        let ws_dir = base.join("ws");
        std::fs::create_dir_all(ws_dir.join("proj")).expect("dir");
        std::fs::write(
            ws_dir.join("A.v"),
            "Theorem t : True. Proof. exact I. Qed.\n",
        )
        .expect("A");
        std::fs::write(ws_dir.join("proj/B.v"), "Definition b := 1.\n").expect("B");
        std::fs::write(base.join("secret.v"), "(* outside *)\n").expect("secret");
        std::os::unix::fs::symlink(base.join("secret.v"), ws_dir.join("link.v")).expect("link");
        let ws = Workspace::open(&ws_dir).expect("workspace");

        let files = ws.project("A.v").expect("file");
        assert_eq!(files.len(), 1);
        assert_eq!(files[0].path, "A.v");
        let files = ws.project("proj").expect("dir");
        assert_eq!(files[0].path, "B.v");

        assert!(matches!(
            ws.project("../secret.v"),
            Err(WorkspaceError::NotRelative(_))
        ));
        assert!(matches!(
            ws.project("proj/../../secret.v"),
            Err(WorkspaceError::NotRelative(_))
        ));
        assert!(matches!(
            ws.project(&base.join("secret.v").display().to_string()),
            Err(WorkspaceError::NotRelative(_))
        ));
        assert!(matches!(
            ws.project("link.v"),
            Err(WorkspaceError::Escapes(_))
        ));
        assert!(matches!(
            ws.project("nope.v"),
            Err(WorkspaceError::Missing { .. })
        ));
        assert!(matches!(
            ws.project(""),
            Err(WorkspaceError::NotRelative(_))
        ));
        let _ = std::fs::remove_dir_all(&base);
    }
}
