//! A Rocq project as capsci receives it: its files (read by capsci, before any sandbox), its load
//! path (`_CoqProject` `-R`/`-Q`, a dune `coq.theory`, or the directory itself) and the logical
//! module name of every `.v` file.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

/// The project's files, as relative paths and bytes; what the sandbox receives.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProjectInput {
    /// `(relative path, contents)`; `.v` files and the project files (`_CoqProject`, `dune`,
    /// `dune-project`).
    pub files: Vec<(PathBuf, Vec<u8>)>,
}

/// Limits on what [`read_project`] accepts from the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadLimits {
    /// Largest single file, bytes.
    pub max_file_bytes: u64,
    /// Largest total, bytes.
    pub max_total_bytes: u64,
    /// Most files.
    pub max_files: usize,
}

impl Default for ReadLimits {
    fn default() -> Self {
        ReadLimits {
            max_file_bytes: 4 << 20,
            max_total_bytes: 64 << 20,
            max_files: 5000,
        }
    }
}

/// Why a host path could not be read as a project.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReadError {
    /// The path could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A symbolic link points outside the project directory.
    #[error("symbolic link {0} leaves the project directory")]
    SymlinkOutside(PathBuf),
    /// A file is larger than [`ReadLimits::max_file_bytes`].
    #[error("file {path} is {size} bytes, more than the {limit}-byte limit")]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// Its size.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// The project exceeds the total size or file count limit.
    #[error("project at {0} is larger than the limits (files or total bytes)")]
    ProjectTooLarge(PathBuf),
    /// A file name is not UTF-8.
    #[error("file name {0:?} is not UTF-8")]
    NonUtf8Name(PathBuf),
    /// The path is neither a `.v` file nor a directory.
    #[error("{0} is neither a .v file nor a directory")]
    NotAProject(PathBuf),
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> ReadError + '_ {
    move |source| ReadError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Whether capsci sends this file into the sandbox: `.v` sources and project descriptions.
/// Compiled files (`.vo`, `.vos`, `.glob`) are never taken from the caller: capsci compiles.
fn wanted(name: &str) -> bool {
    name.ends_with(".v") || name == "_CoqProject" || name == "dune" || name == "dune-project"
}

/// Reads a host path (a `.v` file or a project directory) into a [`ProjectInput`]. This runs in
/// capsci, before any sandbox: symbolic links that leave the directory, files over the limits
/// and non-UTF-8 names are refused; hidden entries (`.git`) and `_build` are skipped; symbolic
/// links to directories are not followed.
pub fn read_project(path: &Path, limits: ReadLimits) -> Result<ProjectInput, ReadError> {
    let meta = std::fs::metadata(path).map_err(io_err(path))?;
    if meta.is_file() {
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(|| ReadError::NonUtf8Name(path.into()))?;
        if !name.ends_with(".v") {
            return Err(ReadError::NotAProject(path.into()));
        }
        if meta.len() > limits.max_file_bytes {
            return Err(ReadError::TooLarge {
                path: path.into(),
                size: meta.len(),
                limit: limits.max_file_bytes,
            });
        }
        let bytes = std::fs::read(path).map_err(io_err(path))?;
        return Ok(ProjectInput {
            files: vec![(PathBuf::from(name), bytes)],
        });
    }
    if !meta.is_dir() {
        return Err(ReadError::NotAProject(path.into()));
    }
    let root = std::fs::canonicalize(path).map_err(io_err(path))?;
    let mut files = Vec::new();
    let mut total = 0u64;
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let dir = root.join(&rel);
        let mut entries: Vec<_> = std::fs::read_dir(&dir)
            .map_err(io_err(&dir))?
            .collect::<Result<_, _>>()
            .map_err(io_err(&dir))?;
        entries.sort_by_key(|e| e.file_name());
        for entry in entries {
            let os_name = entry.file_name();
            let name = os_name
                .to_str()
                .ok_or_else(|| ReadError::NonUtf8Name(dir.join(&os_name)))?
                .to_string();
            if name.starts_with('.') || name == "_build" {
                continue;
            }
            let full = dir.join(&name);
            let file_type = entry.file_type().map_err(io_err(&full))?;
            let rel_path = rel.join(&name);
            if file_type.is_symlink() {
                let target = std::fs::canonicalize(&full).map_err(io_err(&full))?;
                if !target.starts_with(&root) {
                    return Err(ReadError::SymlinkOutside(full));
                }
                if target.is_dir() || !wanted(&name) {
                    continue;
                }
            } else if file_type.is_dir() {
                stack.push(rel_path);
                continue;
            } else if !file_type.is_file() || !wanted(&name) {
                continue;
            }
            let size = std::fs::metadata(&full).map_err(io_err(&full))?.len();
            if size > limits.max_file_bytes {
                return Err(ReadError::TooLarge {
                    path: full,
                    size,
                    limit: limits.max_file_bytes,
                });
            }
            total += size;
            if total > limits.max_total_bytes || files.len() >= limits.max_files {
                return Err(ReadError::ProjectTooLarge(root));
            }
            let bytes = std::fs::read(&full).map_err(io_err(&full))?;
            files.push((rel_path, bytes));
        }
    }
    files.sort();
    Ok(ProjectInput { files })
}

/// One load-path mapping: a project directory bound to a logical prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadPathEntry {
    /// Directory relative to the project root, `/`-separated; `""` is the root.
    pub dir: String,
    /// Logical prefix (`""` for none).
    pub logical: String,
    /// `-R` (subdirectories' modules may be named by a suffix) rather than `-Q`.
    pub recursive: bool,
}

impl LoadPathEntry {
    /// The coqc/coqchk arguments for this mapping.
    pub fn args(&self) -> Vec<String> {
        let dir = if self.dir.is_empty() {
            ".".to_string()
        } else {
            self.dir.clone()
        };
        vec![
            if self.recursive { "-R" } else { "-Q" }.to_string(),
            dir,
            self.logical.clone(),
        ]
    }
}

/// A `.v` file of the project with its logical module name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceFile {
    /// Path relative to the project root, `/`-separated.
    pub path: String,
    /// Fully qualified logical module name (`MyLib.Sub.File`).
    pub module: String,
    /// The text.
    pub text: String,
}

/// A validated project: its `.v` files (in the project's order), load path and extra coqc
/// arguments allowed by the policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Project {
    /// The `.v` files to compile.
    pub files: Vec<SourceFile>,
    /// The load path.
    pub loadpath: Vec<LoadPathEntry>,
    /// Extra coqc arguments (`-w ...` only).
    pub coqc_args: Vec<String>,
    /// How the project was described: `file`, `directory`, `_CoqProject` or `dune`.
    pub kind: &'static str,
}

impl Project {
    /// The load-path arguments for coqc and coqchk.
    pub fn loadpath_args(&self) -> Vec<String> {
        self.loadpath.iter().flat_map(LoadPathEntry::args).collect()
    }
}

/// Why a [`ProjectInput`] is not a checkable project.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProjectError {
    /// Not a Rocq project (no `.v` file, a bad `_CoqProject`, a bad file name, ...):
    /// `invalid_input`.
    #[error("{0}")]
    Invalid(String),
    /// The project description reaches outside the project or loads code: `refused`.
    #[error("{0}")]
    Refused(String),
}

/// Logical prefixes a project may not claim: the standard library's and capsci's own.
pub const RESERVED_PREFIXES: [&str; 6] = [
    "Coq",
    "Corelib",
    "Stdlib",
    "Ltac2",
    "CapsciChallenge",
    "CapsciGen",
];
/// The directory of the work tree where capsci writes its generated files; projects may not use it.
pub const GENERATED_DIR: &str = "_capsci";

fn valid_ident(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '\'')
        && s != "_"
}

/// Normalises a relative path from the caller: `/`-separated, no `.`/`..`, no absolute paths,
/// only `[A-Za-z0-9_.'-]` in names (so that generated scripts quote them trivially).
fn normalise(path: &Path) -> Result<String, ProjectError> {
    let mut parts = Vec::new();
    for c in path.components() {
        match c {
            Component::Normal(p) => {
                let p = p.to_str().ok_or_else(|| {
                    ProjectError::Invalid(format!("file name {path:?} is not UTF-8"))
                })?;
                if p.starts_with('.')
                    || !p
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-' | '\''))
                {
                    return Err(ProjectError::Invalid(format!(
                        "file name {p:?} in {} is not allowed (letters, digits, _ . - ' only; no leading dot)",
                        path.display()
                    )));
                }
                parts.push(p.to_string());
            }
            Component::CurDir => {}
            _ => {
                return Err(ProjectError::Refused(format!(
                    "path {} leaves the project",
                    path.display()
                )))
            }
        }
    }
    if parts.is_empty() {
        return Err(ProjectError::Invalid("empty file name".into()));
    }
    if parts[0] == GENERATED_DIR {
        return Err(ProjectError::Invalid(format!(
            "the directory {GENERATED_DIR}/ is reserved for capsci"
        )));
    }
    Ok(parts.join("/"))
}

/// Normalises a directory named in `_CoqProject` or found for dune; `""` is the root.
fn normalise_dir(dir: &str) -> Result<String, ProjectError> {
    if dir == "." || dir == "./" || dir.is_empty() {
        return Ok(String::new());
    }
    if dir.starts_with('/') {
        return Err(ProjectError::Refused(format!(
            "load path directory {dir} is outside the project"
        )));
    }
    normalise(Path::new(dir.trim_end_matches('/')))
}

/// Words of a `_CoqProject`: white-space separated, `#` comments to the end of the line,
/// double-quoted words may hold spaces.
fn coqproject_words(text: &str) -> Result<Vec<String>, ProjectError> {
    let mut words = Vec::new();
    for line in text.lines() {
        let mut chars = line.chars().peekable();
        let mut cur = String::new();
        let mut in_word = false;
        while let Some(c) = chars.next() {
            match c {
                '#' => break,
                '"' => {
                    in_word = true;
                    let mut closed = false;
                    for d in chars.by_ref() {
                        if d == '"' {
                            closed = true;
                            break;
                        }
                        cur.push(d);
                    }
                    if !closed {
                        return Err(ProjectError::Invalid(format!(
                            "_CoqProject: unterminated quote in line {line:?}"
                        )));
                    }
                }
                c if c.is_whitespace() => {
                    if in_word {
                        words.push(std::mem::take(&mut cur));
                        in_word = false;
                    }
                }
                c => {
                    in_word = true;
                    cur.push(c);
                }
            }
        }
        if in_word {
            words.push(cur);
        }
    }
    Ok(words)
}

/// A parsed `_CoqProject`: load path, extra coqc arguments, listed files.
type CoqProjectParts = (Vec<LoadPathEntry>, Vec<String>, Vec<String>);

/// Parses a `_CoqProject`: `-R dir name`, `-Q dir name`, `-arg` (only `-w` warnings options),
/// `.v` files; `-I` (OCaml include), OCaml sources and `.mllib`/`.mlpack` files are refused
/// (plugins are native code).
fn parse_coqproject(text: &str) -> Result<CoqProjectParts, ProjectError> {
    let words = coqproject_words(text)?;
    let mut loadpath = Vec::new();
    let mut args = Vec::new();
    let mut files = Vec::new();
    let mut i = 0;
    let need = |i: usize, n: usize, what: &str| -> Result<(), ProjectError> {
        if i + n > words.len() {
            Err(ProjectError::Invalid(format!(
                "_CoqProject: {what} needs {} argument(s)",
                n - 1
            )))
        } else {
            Ok(())
        }
    };
    let mut pending_w = false;
    while i < words.len() {
        let w = words[i].as_str();
        match w {
            "-R" | "-Q" => {
                need(i, 3, w)?;
                let logical = words[i + 2].clone();
                if !logical.is_empty() && !logical.split('.').all(valid_ident) {
                    return Err(ProjectError::Invalid(format!(
                        "_CoqProject: {logical:?} is not a logical name"
                    )));
                }
                loadpath.push(LoadPathEntry {
                    dir: normalise_dir(&words[i + 1])?,
                    logical,
                    recursive: w == "-R",
                });
                i += 3;
            }
            "-arg" => {
                need(i, 2, w)?;
                for a in words[i + 1].split_whitespace() {
                    if pending_w {
                        args.push(a.to_string());
                        pending_w = false;
                    } else if a == "-w" {
                        args.push(a.to_string());
                        pending_w = true;
                    } else {
                        return Err(ProjectError::Refused(format!(
                            "_CoqProject: coqc argument {a:?} is not allowed (only -w)"
                        )));
                    }
                }
                i += 2;
            }
            "-I" => {
                return Err(ProjectError::Refused(
                    "_CoqProject: -I (OCaml plugin path) is not allowed".into(),
                ));
            }
            "-docroot" | "-install" => {
                need(i, 2, w)?;
                i += 2;
            }
            "-byte" | "-opt" | "-no-install" | "-local" => i += 1,
            w if w.starts_with('-') => {
                return Err(ProjectError::Invalid(format!(
                    "_CoqProject: unknown option {w}"
                )));
            }
            w if w.ends_with(".v") => {
                files.push(normalise(Path::new(w))?);
                i += 1;
            }
            w if [".ml", ".mli", ".mlg", ".mllib", ".mlpack", ".ml4"]
                .iter()
                .any(|e| w.ends_with(e)) =>
            {
                return Err(ProjectError::Refused(format!(
                    "_CoqProject: OCaml plugin source {w} is not allowed"
                )));
            }
            w => {
                return Err(ProjectError::Invalid(format!(
                    "_CoqProject: unexpected entry {w}"
                )))
            }
        }
    }
    if pending_w {
        return Err(ProjectError::Invalid(
            "_CoqProject: -arg -w needs a value".into(),
        ));
    }
    Ok((loadpath, args, files))
}

/// The `(name X)` of every `(coq.theory ...)` stanza in a dune file (a small s-expression scan).
fn dune_theory_name(text: &str) -> Option<String> {
    let at = text.find("(coq.theory")?;
    let rest = &text[at..];
    let name_at = rest.find("(name")?;
    let after = rest[name_at + 5..].trim_start();
    let end = after.find(|c: char| c == ')' || c.is_whitespace())?;
    Some(after[..end].to_string())
}

fn module_name(path: &str, loadpath: &[LoadPathEntry]) -> Result<String, ProjectError> {
    let best = loadpath
        .iter()
        .filter(|e| e.dir.is_empty() || path.starts_with(&format!("{}/", e.dir)))
        .max_by_key(|e| e.dir.len())
        .ok_or_else(|| {
            ProjectError::Invalid(format!(
                "{path} is not under any -R/-Q directory of the project"
            ))
        })?;
    let rel = if best.dir.is_empty() {
        path
    } else {
        &path[best.dir.len() + 1..]
    };
    let stem = rel.strip_suffix(".v").unwrap_or(rel);
    let mut parts: Vec<&str> = Vec::new();
    if !best.logical.is_empty() {
        parts.extend(best.logical.split('.'));
    }
    parts.extend(stem.split('/'));
    if let Some(bad) = parts.iter().find(|p| !valid_ident(p)) {
        return Err(ProjectError::Invalid(format!(
            "{path}: {bad:?} is not a valid Rocq module name"
        )));
    }
    if RESERVED_PREFIXES.contains(&parts[0]) {
        return Err(ProjectError::Refused(format!(
            "{path}: the logical name {} is reserved (standard library or capsci)",
            parts.join(".")
        )));
    }
    Ok(parts.join("."))
}

/// Validates a [`ProjectInput`] and works out its load path and module names.
///
/// Descriptions, in order of precedence: a `_CoqProject` at the root (its `-R`/`-Q` and its
/// listed files, or every `.v` file under the mapped directories when none is listed); dune
/// `coq.theory` stanzas (each `dune` file's directory mapped with `-R` to the theory name); else
/// the directory itself, mapped with `-R . ""` (what `coqc` alone does).
pub fn prepare(input: &ProjectInput) -> Result<Project, ProjectError> {
    let mut texts: BTreeMap<String, String> = BTreeMap::new();
    for (path, bytes) in &input.files {
        let p = normalise(path)?;
        let text = String::from_utf8(bytes.clone())
            .map_err(|_| ProjectError::Invalid(format!("{p} is not UTF-8 text")))?;
        if texts.insert(p.clone(), text).is_some() {
            return Err(ProjectError::Invalid(format!("{p} is given twice")));
        }
    }
    let all_v: Vec<String> = texts
        .keys()
        .filter(|p| p.ends_with(".v"))
        .cloned()
        .collect();
    let (loadpath, coqc_args, listed, kind) = if let Some(cp) = texts.get("_CoqProject") {
        let (lp, args, files) = parse_coqproject(cp)?;
        if lp.is_empty() {
            return Err(ProjectError::Invalid(
                "_CoqProject has no -R or -Q mapping".into(),
            ));
        }
        (lp, args, files, "_CoqProject")
    } else {
        let mut lp = Vec::new();
        for (p, text) in &texts {
            if p == "dune" || p.ends_with("/dune") {
                if let Some(name) = dune_theory_name(text) {
                    if !name.split('.').all(valid_ident) {
                        return Err(ProjectError::Invalid(format!(
                            "{p}: {name:?} is not a theory name"
                        )));
                    }
                    let dir = p
                        .strip_suffix("dune")
                        .unwrap_or("")
                        .trim_end_matches('/')
                        .to_string();
                    lp.push(LoadPathEntry {
                        dir,
                        logical: name,
                        recursive: true,
                    });
                }
            }
        }
        if lp.is_empty() {
            let kind = if input.files.len() == 1 {
                "file"
            } else {
                "directory"
            };
            (
                vec![LoadPathEntry {
                    dir: String::new(),
                    logical: String::new(),
                    recursive: true,
                }],
                Vec::new(),
                Vec::new(),
                kind,
            )
        } else {
            (lp, Vec::new(), Vec::new(), "dune")
        }
    };
    let selected: Vec<String> = if listed.is_empty() {
        all_v
            .iter()
            .filter(|p| {
                loadpath
                    .iter()
                    .any(|e| e.dir.is_empty() || p.starts_with(&format!("{}/", e.dir)))
            })
            .cloned()
            .collect()
    } else {
        for f in &listed {
            if !texts.contains_key(f) {
                return Err(ProjectError::Invalid(format!(
                    "_CoqProject lists {f}, which is not in the project"
                )));
            }
        }
        listed
    };
    if selected.is_empty() {
        return Err(ProjectError::Invalid("no .v file in the project".into()));
    }
    let mut files = Vec::new();
    let mut modules = BTreeMap::new();
    for path in selected {
        let module = module_name(&path, &loadpath)?;
        if let Some(other) = modules.insert(module.clone(), path.clone()) {
            return Err(ProjectError::Invalid(format!(
                "{path} and {other} are both module {module}"
            )));
        }
        let text = texts.get(&path).cloned().unwrap_or_default();
        files.push(SourceFile { path, module, text });
    }
    Ok(Project {
        files,
        loadpath,
        coqc_args,
        kind,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn input(files: &[(&str, &str)]) -> ProjectInput {
        ProjectInput {
            files: files
                .iter()
                .map(|(p, t)| (PathBuf::from(p), t.as_bytes().to_vec()))
                .collect(),
        }
    }

    #[test]
    fn single_file_is_mapped_at_the_root() {
        let p = prepare(&input(&[("a.v", "Check 1.")])).unwrap();
        assert_eq!(p.files[0].module, "a");
        assert_eq!(p.loadpath_args(), vec!["-R", ".", ""]);
        assert_eq!(p.kind, "file");
    }

    #[test]
    fn coqproject_mappings_and_listed_files() {
        let p = prepare(&input(&[
            ("_CoqProject", "# comment\n-R theories MyLib\n-Q extra Ext\n-arg -w -arg -notation-overridden\ntheories/A.v theories/sub/B.v extra/C.v\n"),
            ("theories/A.v", ""),
            ("theories/sub/B.v", ""),
            ("extra/C.v", ""),
            ("unused.v", ""),
        ]))
        .unwrap();
        let mods: Vec<_> = p.files.iter().map(|f| f.module.as_str()).collect();
        assert_eq!(mods, vec!["MyLib.A", "MyLib.sub.B", "Ext.C"]);
        assert_eq!(p.coqc_args, vec!["-w", "-notation-overridden"]);
        assert_eq!(
            p.loadpath_args(),
            vec!["-R", "theories", "MyLib", "-Q", "extra", "Ext"]
        );
    }

    #[test]
    fn coqproject_escaping_or_loading_code_is_refused() {
        let r = prepare(&input(&[("_CoqProject", "-R ../outside X\n"), ("a.v", "")]));
        assert!(matches!(r, Err(ProjectError::Refused(_))), "{r:?}");
        let r = prepare(&input(&[("_CoqProject", "-R /etc X\n"), ("a.v", "")]));
        assert!(matches!(r, Err(ProjectError::Refused(_))), "{r:?}");
        let r = prepare(&input(&[("_CoqProject", "-R . X\n-I src\n"), ("a.v", "")]));
        assert!(matches!(r, Err(ProjectError::Refused(_))), "{r:?}");
        let r = prepare(&input(&[
            (
                "_CoqProject",
                "-R . X\n-arg -load-vernac-source\n-arg /etc/x\n",
            ),
            ("a.v", ""),
        ]));
        assert!(matches!(r, Err(ProjectError::Refused(_))), "{r:?}");
        let r = prepare(&input(&[("_CoqProject", "-R . Coq\n"), ("a.v", "")]));
        assert!(matches!(r, Err(ProjectError::Refused(_))), "{r:?}");
        let r = prepare(&input(&[("Coq/Logic/Classical_Prop.v", "")]));
        assert!(matches!(r, Err(ProjectError::Refused(_))), "{r:?}");
    }

    #[test]
    fn bad_projects_are_invalid() {
        assert!(matches!(
            prepare(&input(&[("README", "x")])),
            Err(ProjectError::Invalid(_))
        ));
        assert!(matches!(
            prepare(&input(&[("_CoqProject", "a.v\n"), ("a.v", "")])),
            Err(ProjectError::Invalid(_))
        ));
        assert!(matches!(
            prepare(&input(&[
                ("_CoqProject", "-R . X\nmissing.v\n"),
                ("a.v", "")
            ])),
            Err(ProjectError::Invalid(_))
        ));
        assert!(matches!(
            prepare(&input(&[("_CoqProject", "-R . X\n-bogus\n"), ("a.v", "")])),
            Err(ProjectError::Invalid(_))
        ));
        assert!(matches!(
            prepare(&input(&[("1bad.v", "")])),
            Err(ProjectError::Invalid(_))
        ));
        assert!(matches!(
            prepare(&input(&[("_capsci/x.v", "")])),
            Err(ProjectError::Invalid(_))
        ));
        let bad = ProjectInput {
            files: vec![(PathBuf::from("a.v"), vec![0xff, 0xfe])],
        };
        assert!(matches!(prepare(&bad), Err(ProjectError::Invalid(_))));
        assert!(matches!(
            prepare(&input(&[("a b.v", "")])),
            Err(ProjectError::Invalid(_))
        ));
    }

    #[test]
    fn dune_theory_maps_its_directory() {
        let p = prepare(&input(&[
            ("dune-project", "(lang dune 3.8)\n(using coq 0.8)\n"),
            (
                "theories/dune",
                "(coq.theory\n (name Foo)\n (theories Stdlib))\n",
            ),
            ("theories/A.v", ""),
        ]))
        .unwrap();
        assert_eq!(p.files[0].module, "Foo.A");
        assert_eq!(p.kind, "dune");
    }

    #[test]
    fn read_project_rejects_symlinks_leaving_the_directory() {
        let dir = std::env::temp_dir().join(format!("capsci-rocq-read-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("sub")).unwrap();
        std::fs::write(dir.join("a.v"), "Check 1.").unwrap();
        std::fs::write(dir.join("sub/b.v"), "Check 2.").unwrap();
        std::fs::write(dir.join("a.vo"), "binary").unwrap();
        std::os::unix::fs::symlink(dir.join("a.v"), dir.join("inside.v")).unwrap();
        let p = read_project(&dir, ReadLimits::default()).unwrap();
        let names: Vec<_> = p
            .files
            .iter()
            .map(|(p, _)| p.to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, vec!["a.v", "inside.v", "sub/b.v"]);
        std::os::unix::fs::symlink("/etc/passwd", dir.join("evil.v")).unwrap();
        assert!(matches!(
            read_project(&dir, ReadLimits::default()),
            Err(ReadError::SymlinkOutside(_))
        ));
        std::fs::remove_file(dir.join("evil.v")).unwrap();
        let tiny = ReadLimits {
            max_file_bytes: 4,
            ..ReadLimits::default()
        };
        assert!(matches!(
            read_project(&dir, tiny),
            Err(ReadError::TooLarge { .. })
        ));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
