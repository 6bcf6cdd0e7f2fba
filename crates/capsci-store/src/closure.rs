//! Package closures: exactly the files a backend runs from, each with its hash, and where it came
//! from (Debian package, version, license; or the Python lock).
//!
//! A closure is computed from a [`ClosureSpec`]: executables (followed through symlinks, their ELF
//! `DT_NEEDED` libraries resolved as the dynamic loader does — `DT_RPATH`, `DT_RUNPATH`,
//! `/etc/ld.so.cache`, default directories — recursively, plus the `PT_INTERP` loader), extra
//! files, and whole directory trees (PARI's data, Rocq's standard library, the SymPy venv). A tree
//! is one entry whose hash covers every file under it, so the sandbox can bind the directory and
//! still bind exactly what the closure names.
//!
//! Hashing is cached by `(device, inode, size, mtime_ns)` in the store's database: a warm
//! computation only stats files. Trees carry a fingerprint over their files' stat data, so an
//! unchanged tree costs one walk and one lookup.

use crate::db;
use crate::util::{canonical_json, now_rfc3339};
use rusqlite::{params, Connection, OptionalExtension};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs;
use std::io::{self, Read};
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};
use std::sync::Mutex;

/// Errors computing a closure.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClosureError {
    /// A file or directory the spec names (or a library it needs) could not be read.
    #[error("{step} {path}: {source}")]
    Io {
        /// What was being done.
        step: &'static str,
        /// The path.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// A library an executable needs is nowhere the loader would look.
    #[error("{needed}, needed by {by}, not found on the loader's search path")]
    LibraryNotFound {
        /// The `DT_NEEDED` name.
        needed: String,
        /// The object that needs it.
        by: PathBuf,
    },
    /// An executable or library is not a readable 64-bit ELF file.
    #[error("{path} is not a readable ELF file: {reason}")]
    Elf {
        /// The file.
        path: PathBuf,
        /// The parser's message.
        reason: String,
    },
    /// The Python lock file could not be parsed.
    #[error("python lock {path}: {reason}")]
    Lock {
        /// The lock file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// Symlinks loop or nest too deep.
    #[error("too many levels of symbolic links at {0}")]
    SymlinkLoop(PathBuf),
    /// The cache database failed.
    #[error("closure cache database: {0}")]
    Db(#[from] rusqlite::Error),
    /// Opening the cache database failed.
    #[error(transparent)]
    Open(#[from] db::DbError),
    /// Serialising the closure failed.
    #[error("serialising closure: {0}")]
    Json(#[from] serde_json::Error),
}

/// What a backend's closure consists of.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClosureSpec {
    /// Backend name (`gp`, `z3`, `sympy`, ...).
    pub name: String,
    /// Executables, followed with their shared libraries and loader.
    pub executables: Vec<PathBuf>,
    /// Further single files (configuration, data).
    pub files: Vec<PathBuf>,
    /// Directory trees bound whole (`/usr/share/pari`, `coqc -where`, a venv's site-packages).
    pub trees: Vec<PathBuf>,
    /// A pip lock (`name==version --hash=...` lines) whose packages the closure lists.
    pub python_lock: Option<PathBuf>,
}

/// What an entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntryKind {
    /// A regular file.
    File,
    /// A symbolic link (its target is an entry too).
    Symlink,
    /// A directory tree bound whole.
    Tree,
}

/// Why an entry is in the closure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntryRole {
    /// An executable named by the spec.
    Executable,
    /// The ELF program interpreter (`ld-linux`).
    Interpreter,
    /// A shared library the loader resolves.
    Library,
    /// A data file or tree.
    Data,
}

/// One file, symlink or tree of a closure.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClosureEntry {
    /// Absolute path as the program finds it.
    pub path: PathBuf,
    /// File, symlink or tree.
    pub kind: EntryKind,
    /// Why it is here.
    pub role: EntryRole,
    /// `blake3:<hex>` of the file, or of the tree's sorted (path, hash, mode) list; none for a
    /// symlink.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hash: Option<String>,
    /// The symlink's target as stored in the link.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// Bytes (a tree: sum over its files).
    pub size: u64,
    /// Permission bits.
    pub mode: u32,
    /// Files under a tree.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub files: Option<u64>,
    /// The Debian package(s) owning the path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub package: Option<String>,
    /// The package's version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// The package's license (from its `copyright` file).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub license: Option<String>,
}

/// A Python package pinned by the lock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PythonPackage {
    /// Distribution name.
    pub name: String,
    /// Pinned version.
    pub version: String,
    /// The hashes the lock requires.
    pub hashes: Vec<String>,
}

/// A backend's package closure. Its id is the BLAKE3 hash of its canonical JSON (without `id`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PackageClosure {
    /// `blake3:<hex>` of the canonical form.
    #[serde(default)]
    pub id: String,
    /// Backend name.
    pub name: String,
    /// Entries, sorted by path.
    pub entries: Vec<ClosureEntry>,
    /// Python packages from the lock, sorted by name.
    #[serde(default)]
    pub python_packages: Vec<PythonPackage>,
}

#[derive(Serialize)]
struct CanonicalClosure<'a> {
    name: &'a str,
    entries: &'a [ClosureEntry],
    python_packages: &'a [PythonPackage],
}

impl PackageClosure {
    /// The canonical JSON the id is the hash of.
    pub fn canonical_form(&self) -> Result<String, ClosureError> {
        let value = serde_json::to_value(CanonicalClosure {
            name: &self.name,
            entries: &self.entries,
            python_packages: &self.python_packages,
        })?;
        Ok(canonical_json(&value))
    }

    /// The minimal set of files and directories to bind read-only so the backend runs from
    /// exactly this closure: every file, every symlink (and its target, also an entry) and every
    /// tree. Paths inside a bound tree are left out.
    pub fn bind_paths(&self) -> Vec<PathBuf> {
        let trees: Vec<&Path> = self
            .entries
            .iter()
            .filter(|e| e.kind == EntryKind::Tree)
            .map(|e| e.path.as_path())
            .collect();
        let mut out: Vec<PathBuf> = self
            .entries
            .iter()
            .filter(|e| {
                e.kind == EntryKind::Tree
                    || !trees.iter().any(|t| e.path != *t && e.path.starts_with(t))
            })
            .map(|e| e.path.clone())
            .collect();
        out.sort();
        out.dedup();
        out
    }

    /// The entry at this path.
    pub fn entry(&self, path: &Path) -> Option<&ClosureEntry> {
        self.entries.iter().find(|e| e.path == path)
    }

    /// Distinct licenses of the closure's packages.
    pub fn licenses(&self) -> Vec<String> {
        let set: BTreeSet<String> = self
            .entries
            .iter()
            .filter_map(|e| e.license.clone())
            .collect();
        set.into_iter().collect()
    }
}

/// Counters of one computation: how much work the cache saved.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ClosureStats {
    /// Files whose content was hashed (cache misses).
    pub files_hashed: u64,
    /// Bytes hashed.
    pub bytes_hashed: u64,
    /// Files whose hash came from the cache.
    pub cache_hits: u64,
    /// Trees whose hash came from the cache by fingerprint.
    pub trees_from_cache: u64,
    /// ELF files parsed (cache misses).
    pub elf_parsed: u64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct ElfInfo {
    needed: Vec<String>,
    rpath: Vec<String>,
    runpath: Vec<String>,
    interp: Option<String>,
}

/// Fingerprint of a file's stat data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    dev: u64,
    ino: u64,
    size: u64,
    mtime_ns: i64,
}

impl Stamp {
    fn of(meta: &fs::Metadata) -> Self {
        Stamp {
            dev: meta.dev(),
            ino: meta.ino(),
            size: meta.size(),
            mtime_ns: meta.mtime() * 1_000_000_000 + meta.mtime_nsec(),
        }
    }
}

/// Computes closures, with the hash, ELF and package caches in the store's database.
pub struct Closures {
    conn: Mutex<Connection>,
    ld_cache: Mutex<Option<HashMap<String, PathBuf>>>,
    dpkg: Mutex<Option<DpkgIndex>>,
}

impl std::fmt::Debug for Closures {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Closures").finish_non_exhaustive()
    }
}

const DEFAULT_LIB_DIRS: &[&str] = &[
    "/lib/x86_64-linux-gnu",
    "/usr/lib/x86_64-linux-gnu",
    "/lib64",
    "/usr/lib64",
    "/lib",
    "/usr/lib",
];

struct Work<'a> {
    tx: &'a rusqlite::Transaction<'a>,
    stats: ClosureStats,
    entries: BTreeMap<PathBuf, ClosureEntry>,
}

impl Closures {
    /// Opens its own connection to the store database at `db_path`.
    pub fn open(db_path: &Path) -> Result<Self, ClosureError> {
        Ok(Closures {
            conn: Mutex::new(db::open(db_path)?),
            ld_cache: Mutex::new(None),
            dpkg: Mutex::new(None),
        })
    }

    /// Computes the closure of `spec` and stores it (so records can cite it by id).
    pub fn compute(
        &self,
        spec: &ClosureSpec,
    ) -> Result<(PackageClosure, ClosureStats), ClosureError> {
        let mut conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        // Immediate: take the write lock up front (waiting for other writers), so a concurrent
        // append in another connection cannot make the later cache writes fail with BUSY.
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let mut work = Work {
            tx: &tx,
            stats: ClosureStats::default(),
            entries: BTreeMap::new(),
        };
        for exe in &spec.executables {
            self.add_elf_object(&mut work, exe, EntryRole::Executable, &[])?;
        }
        for file in &spec.files {
            self.add_path(&mut work, file, EntryRole::Data)?;
        }
        for tree in &spec.trees {
            self.add_tree(&mut work, tree)?;
        }
        let python_packages = match &spec.python_lock {
            Some(lock) => parse_lock(lock)?,
            None => Vec::new(),
        };
        let mut entries: Vec<ClosureEntry> = work.entries.into_values().collect();
        let generation = dpkg_generation();
        for entry in &mut entries {
            if let Some(info) = self.package_of(&tx, &entry.path, &generation)? {
                entry.package = Some(info.0);
                entry.version = info.1;
                entry.license = info.2;
            }
        }
        let stats = work.stats;
        let mut closure = PackageClosure {
            id: String::new(),
            name: spec.name.clone(),
            entries,
            python_packages,
        };
        let canonical = closure.canonical_form()?;
        closure.id = format!("blake3:{}", blake3::hash(canonical.as_bytes()).to_hex());
        tx.execute(
            "INSERT OR IGNORE INTO closures (id, name, body, created_at) VALUES (?1, ?2, ?3, ?4)",
            params![closure.id, closure.name, canonical, now_rfc3339()],
        )?;
        tx.commit()?;
        Ok((closure, stats))
    }

    /// A stored closure by id.
    pub fn get(&self, id: &str) -> Result<Option<PackageClosure>, ClosureError> {
        let conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        let body: Option<String> = conn
            .query_row("SELECT body FROM closures WHERE id = ?1", [id], |r| {
                r.get(0)
            })
            .optional()?;
        match body {
            None => Ok(None),
            Some(text) => {
                let mut closure: PackageClosure = serde_json::from_str(&text)?;
                closure.id = id.to_string();
                Ok(Some(closure))
            }
        }
    }

    /// Adds a path, following a symlink chain to its final file; returns the final path.
    fn add_path(
        &self,
        work: &mut Work<'_>,
        path: &Path,
        role: EntryRole,
    ) -> Result<PathBuf, ClosureError> {
        let mut current = absolute(path);
        for _ in 0..40 {
            let meta = fs::symlink_metadata(&current).map_err(|source| ClosureError::Io {
                step: "stat",
                path: current.clone(),
                source,
            })?;
            if meta.file_type().is_symlink() {
                let target = fs::read_link(&current).map_err(|source| ClosureError::Io {
                    step: "read symlink",
                    path: current.clone(),
                    source,
                })?;
                work.entries
                    .entry(current.clone())
                    .or_insert_with(|| ClosureEntry {
                        path: current.clone(),
                        kind: EntryKind::Symlink,
                        role,
                        hash: None,
                        target: Some(target.to_string_lossy().into_owned()),
                        size: 0,
                        mode: meta.mode() & 0o7777,
                        files: None,
                        package: None,
                        version: None,
                        license: None,
                    });
                let parent = current.parent().unwrap_or(Path::new("/")).to_path_buf();
                current = normalize(&parent.join(target));
                continue;
            }
            if meta.is_dir() {
                self.add_tree(work, &current)?;
                return Ok(current);
            }
            if !work.entries.contains_key(&current) {
                let hash = self.file_hash(work, &current, &meta)?;
                work.entries.insert(
                    current.clone(),
                    ClosureEntry {
                        path: current.clone(),
                        kind: EntryKind::File,
                        role,
                        hash: Some(hash),
                        target: None,
                        size: meta.size(),
                        mode: meta.mode() & 0o7777,
                        files: None,
                        package: None,
                        version: None,
                        license: None,
                    },
                );
            }
            return Ok(current);
        }
        Err(ClosureError::SymlinkLoop(path.to_path_buf()))
    }

    /// Adds an ELF object and, recursively, its interpreter and needed libraries.
    fn add_elf_object(
        &self,
        work: &mut Work<'_>,
        path: &Path,
        role: EntryRole,
        parent_rpath: &[String],
    ) -> Result<(), ClosureError> {
        let seen_before = work.entries.contains_key(&absolute(path));
        let real = self.add_path(work, path, role)?;
        if seen_before && role != EntryRole::Executable {
            return Ok(());
        }
        let info = self.elf_info(work, &real)?;
        let origin = real
            .parent()
            .unwrap_or(Path::new("/"))
            .to_string_lossy()
            .into_owned();
        let expand = |list: &[String]| -> Vec<String> {
            list.iter()
                .map(|p| p.replace("${ORIGIN}", &origin).replace("$ORIGIN", &origin))
                .collect()
        };
        if let Some(interp) = &info.interp {
            let interp = PathBuf::from(interp);
            if !work.entries.contains_key(&interp) {
                self.add_path(work, &interp, EntryRole::Interpreter)?;
            }
        }
        // The loader's order: DT_RPATH (own, then the loading object's) unless DT_RUNPATH is set,
        // then DT_RUNPATH, then ld.so.cache, then the default directories.
        let mut rpath: Vec<String> = Vec::new();
        if info.runpath.is_empty() {
            rpath.extend(expand(&info.rpath));
            rpath.extend(parent_rpath.iter().cloned());
        }
        let runpath = expand(&info.runpath);
        for needed in &info.needed {
            let found = if needed.contains('/') {
                Some(PathBuf::from(needed))
            } else {
                self.resolve_library(needed, &rpath, &runpath)
            };
            let lib = found.ok_or_else(|| ClosureError::LibraryNotFound {
                needed: needed.clone(),
                by: real.clone(),
            })?;
            if !work.entries.contains_key(&lib) {
                self.add_elf_object(work, &lib, EntryRole::Library, &rpath)?;
            }
        }
        Ok(())
    }

    fn resolve_library(&self, name: &str, rpath: &[String], runpath: &[String]) -> Option<PathBuf> {
        for dir in rpath.iter().chain(runpath.iter()) {
            let candidate = Path::new(dir).join(name);
            if is_elf64_x86(&candidate) {
                return Some(candidate);
            }
        }
        {
            let mut cache = self.ld_cache.lock().unwrap_or_else(|p| p.into_inner());
            let map = cache.get_or_insert_with(read_ld_so_cache);
            if let Some(path) = map.get(name) {
                if is_elf64_x86(path) {
                    return Some(path.clone());
                }
            }
        }
        DEFAULT_LIB_DIRS
            .iter()
            .map(|d| Path::new(d).join(name))
            .find(|p| is_elf64_x86(p))
    }

    fn elf_info(&self, work: &mut Work<'_>, path: &Path) -> Result<ElfInfo, ClosureError> {
        let meta = fs::metadata(path).map_err(|source| ClosureError::Io {
            step: "stat",
            path: path.to_path_buf(),
            source,
        })?;
        let stamp = Stamp::of(&meta);
        let key = path.to_string_lossy();
        let cached: Option<(i64, i64, i64, i64, String)> = work
            .tx
            .prepare_cached("SELECT dev, ino, size, mtime_ns, info FROM elf_cache WHERE path = ?1")?
            .query_row([key.as_ref()], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
            })
            .optional()?;
        if let Some((dev, ino, size, mtime, info)) = cached {
            if stamp_matches(stamp, dev, ino, size, mtime) {
                if let Ok(info) = serde_json::from_str(&info) {
                    return Ok(info);
                }
            }
        }
        work.stats.elf_parsed += 1;
        let data = fs::read(path).map_err(|source| ClosureError::Io {
            step: "read",
            path: path.to_path_buf(),
            source,
        })?;
        let info = parse_elf(&data).map_err(|reason| ClosureError::Elf {
            path: path.to_path_buf(),
            reason,
        })?;
        work.tx
            .prepare_cached(
                "INSERT OR REPLACE INTO elf_cache (path, dev, ino, size, mtime_ns, info) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?
            .execute(params![
                key.as_ref(),
                stamp.dev as i64,
                stamp.ino as i64,
                stamp.size as i64,
                stamp.mtime_ns,
                serde_json::to_string(&info)?
            ])?;
        Ok(info)
    }

    /// The file's hash, from the cache when its stat data is unchanged.
    fn file_hash(
        &self,
        work: &mut Work<'_>,
        path: &Path,
        meta: &fs::Metadata,
    ) -> Result<String, ClosureError> {
        let stamp = Stamp::of(meta);
        let key = path.to_string_lossy();
        let cached: Option<(i64, i64, i64, i64, String)> = work
            .tx
            .prepare_cached(
                "SELECT dev, ino, size, mtime_ns, hash FROM hash_cache WHERE path = ?1",
            )?
            .query_row([key.as_ref()], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
            })
            .optional()?;
        if let Some((dev, ino, size, mtime, hash)) = cached {
            if stamp_matches(stamp, dev, ino, size, mtime) {
                work.stats.cache_hits += 1;
                return Ok(hash);
            }
        }
        let hash = hash_file(path)?;
        work.stats.files_hashed += 1;
        work.stats.bytes_hashed += stamp.size;
        work.tx
            .prepare_cached(
                "INSERT OR REPLACE INTO hash_cache (path, dev, ino, size, mtime_ns, hash) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?
            .execute(params![
                key.as_ref(),
                stamp.dev as i64,
                stamp.ino as i64,
                stamp.size as i64,
                stamp.mtime_ns,
                hash
            ])?;
        Ok(hash)
    }

    /// Adds a directory tree as one entry.
    fn add_tree(&self, work: &mut Work<'_>, root: &Path) -> Result<(), ClosureError> {
        let root = absolute(root);
        if work.entries.contains_key(&root) {
            return Ok(());
        }
        let root_meta = fs::metadata(&root).map_err(|source| ClosureError::Io {
            step: "stat",
            path: root.clone(),
            source,
        })?;
        // Walk once, collecting stat data; the fingerprint decides whether any hashing is needed.
        let mut items: Vec<(String, fs::Metadata, Option<String>)> = Vec::new();
        walk(&root, &root, &mut items)?;
        items.sort_by(|a, b| a.0.cmp(&b.0));
        let mut fp = blake3::Hasher::new();
        for (rel, meta, target) in &items {
            let s = Stamp::of(meta);
            fp.update(rel.as_bytes());
            fp.update(&[0]);
            fp.update(&s.dev.to_le_bytes());
            fp.update(&s.ino.to_le_bytes());
            fp.update(&s.size.to_le_bytes());
            fp.update(&s.mtime_ns.to_le_bytes());
            fp.update(&meta.mode().to_le_bytes());
            fp.update(target.as_deref().unwrap_or("").as_bytes());
            fp.update(&[0]);
        }
        let fingerprint = fp.finalize().to_hex().to_string();
        let key = root.to_string_lossy().into_owned();
        let cached: Option<(String, String, i64, i64)> = work
            .tx
            .prepare_cached(
                "SELECT fingerprint, hash, files, size FROM tree_cache WHERE path = ?1",
            )?
            .query_row([&key], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .optional()?;
        let (hash, files, size) = match cached {
            Some((f, hash, files, size)) if f == fingerprint => {
                work.stats.trees_from_cache += 1;
                (hash, files as u64, size as u64)
            }
            _ => {
                let mut h = blake3::Hasher::new();
                h.update(b"capsci-tree-v1\0");
                let (mut files, mut size) = (0u64, 0u64);
                for (rel, meta, target) in &items {
                    let mode = meta.mode() & 0o7777;
                    let content = if let Some(t) = target {
                        format!("symlink:{t}")
                    } else if meta.is_dir() {
                        "dir".to_string()
                    } else {
                        files += 1;
                        size += meta.size();
                        self.file_hash(work, &root.join(rel), meta)?
                    };
                    h.update(format!("{rel}\0{content}\0{mode:o}\n").as_bytes());
                }
                let hash = format!("blake3:{}", h.finalize().to_hex());
                work.tx
                    .prepare_cached(
                        "INSERT OR REPLACE INTO tree_cache (path, fingerprint, hash, files, size) VALUES (?1, ?2, ?3, ?4, ?5)",
                    )?
                    .execute(params![key, fingerprint, hash, files as i64, size as i64])?;
                (hash, files, size)
            }
        };
        work.entries.insert(
            root.clone(),
            ClosureEntry {
                path: root,
                kind: EntryKind::Tree,
                role: EntryRole::Data,
                hash: Some(hash),
                target: None,
                size,
                mode: root_meta.mode() & 0o7777,
                files: Some(files),
                package: None,
                version: None,
                license: None,
            },
        );
        Ok(())
    }

    /// `(package, version, license)` of the path, cached per dpkg database generation.
    fn package_of(
        &self,
        tx: &rusqlite::Transaction<'_>,
        path: &Path,
        generation: &str,
    ) -> Result<Option<PackageInfo>, ClosureError> {
        let key = path.to_string_lossy().into_owned();
        type Row = (String, Option<String>, Option<String>, Option<String>);
        let cached: Option<Row> = tx
            .prepare_cached(
                "SELECT generation, package, version, license FROM pkg_cache WHERE path = ?1",
            )?
            .query_row([&key], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .optional()?;
        if let Some((g, package, version, license)) = cached {
            if g == generation {
                return Ok(package.map(|p| (p, version, license)));
            }
        }
        let found = {
            let mut dpkg = self.dpkg.lock().unwrap_or_else(|p| p.into_inner());
            let index = dpkg.get_or_insert_with(DpkgIndex::load);
            index.lookup(path)
        };
        let (package, version, license) = match &found {
            Some((p, v, l)) => (Some(p.clone()), v.clone(), l.clone()),
            None => (None, None, None),
        };
        tx.prepare_cached(
            "INSERT OR REPLACE INTO pkg_cache (path, generation, package, version, license) VALUES (?1, ?2, ?3, ?4, ?5)",
        )?
        .execute(params![key, generation, package, version, license])?;
        Ok(found)
    }
}

fn stamp_matches(s: Stamp, dev: i64, ino: i64, size: i64, mtime: i64) -> bool {
    s.dev as i64 == dev && s.ino as i64 == ino && s.size as i64 == size && s.mtime_ns == mtime
}

fn absolute(path: &Path) -> PathBuf {
    if path.is_absolute() {
        normalize(path)
    } else {
        normalize(
            &std::env::current_dir()
                .unwrap_or_else(|_| PathBuf::from("/"))
                .join(path),
        )
    }
}

/// Removes `.` and resolves `..` lexically (as the kernel does for a symlink target joined to
/// its directory, provided the directory itself has no symlinked parent, which callers accept).
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other.as_os_str()),
        }
    }
    out
}

fn walk(
    root: &Path,
    dir: &Path,
    items: &mut Vec<(String, fs::Metadata, Option<String>)>,
) -> Result<(), ClosureError> {
    let read = fs::read_dir(dir).map_err(|source| ClosureError::Io {
        step: "read directory",
        path: dir.to_path_buf(),
        source,
    })?;
    for entry in read {
        let entry = entry.map_err(|source| ClosureError::Io {
            step: "read directory",
            path: dir.to_path_buf(),
            source,
        })?;
        let path = entry.path();
        // DirEntry::metadata does not follow symlinks and stats relative to the open directory.
        let meta = entry.metadata().map_err(|source| ClosureError::Io {
            step: "stat",
            path: path.clone(),
            source,
        })?;
        let rel = path
            .strip_prefix(root)
            .unwrap_or(&path)
            .to_string_lossy()
            .into_owned();
        if meta.file_type().is_symlink() {
            let target = fs::read_link(&path)
                .map(|t| t.to_string_lossy().into_owned())
                .unwrap_or_default();
            items.push((rel, meta, Some(target)));
        } else if meta.is_dir() {
            items.push((rel, meta, None));
            walk(root, &path, items)?;
        } else {
            items.push((rel, meta, None));
        }
    }
    Ok(())
}

/// BLAKE3 of a file's content, streamed.
pub fn hash_file(path: &Path) -> Result<String, ClosureError> {
    let mut file = fs::File::open(path).map_err(|source| ClosureError::Io {
        step: "open",
        path: path.to_path_buf(),
        source,
    })?;
    let mut hasher = blake3::Hasher::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf).map_err(|source| ClosureError::Io {
            step: "read",
            path: path.to_path_buf(),
            source,
        })?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(format!("blake3:{}", hasher.finalize().to_hex()))
}

fn is_elf64_x86(path: &Path) -> bool {
    let mut head = [0u8; 20];
    match fs::File::open(path).and_then(|mut f| f.read_exact(&mut head)) {
        // ELF magic, 64-bit class, little-endian, e_machine = EM_X86_64 (62).
        Ok(()) => {
            &head[..4] == b"\x7fELF"
                && head[4] == 2
                && head[5] == 1
                && head[18] == 62
                && head[19] == 0
        }
        Err(_) => false,
    }
}

fn parse_elf(data: &[u8]) -> Result<ElfInfo, String> {
    use object::read::elf::{ElfFile64, ProgramHeader};
    let file = ElfFile64::<object::Endianness>::parse(data).map_err(|e| e.to_string())?;
    let endian = file.endian();
    let mut info = ElfInfo::default();
    for ph in file.elf_program_headers() {
        if let Ok(Some(interp)) = ph.interpreter(endian, data) {
            info.interp = Some(String::from_utf8_lossy(interp).into_owned());
        }
    }
    let table = file
        .elf_section_table()
        .dynamic_table(endian, data)
        .map_err(|e| e.to_string())?;
    for d in table.iter() {
        let text = |d| {
            table
                .string(d)
                .map(|s| String::from_utf8_lossy(s).into_owned())
                .map_err(|e| e.to_string())
        };
        match d.tag {
            object::elf::DT_NEEDED => info.needed.push(text(d)?),
            object::elf::DT_RPATH => info.rpath.extend(text(d)?.split(':').map(String::from)),
            object::elf::DT_RUNPATH => info.runpath.extend(text(d)?.split(':').map(String::from)),
            _ => {}
        }
    }
    Ok(info)
}

/// Reads `/etc/ld.so.cache` (glibc's `glibc-ld.so.cache1.1` format): library name → path, for
/// x86-64 libc6 entries, first entry winning as in the loader. Empty if unreadable.
fn read_ld_so_cache() -> HashMap<String, PathBuf> {
    let mut map = HashMap::new();
    let Ok(data) = fs::read("/etc/ld.so.cache") else {
        return map;
    };
    const MAGIC: &[u8] = b"glibc-ld.so.cache1.1";
    let Some(start) = data.windows(MAGIC.len()).position(|w| w == MAGIC) else {
        return map;
    };
    let u32_at = |off: usize| -> Option<u32> {
        data.get(off..off + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    };
    let cstr_at = |off: usize| -> Option<String> {
        let rest = data.get(off..)?;
        let end = rest.iter().position(|&b| b == 0)?;
        Some(String::from_utf8_lossy(&rest[..end]).into_owned())
    };
    let Some(nlibs) = u32_at(start + 20) else {
        return map;
    };
    let entries = start + 48;
    for i in 0..nlibs as usize {
        let e = entries + i * 24;
        let (Some(flags), Some(key), Some(value)) = (u32_at(e), u32_at(e + 4), u32_at(e + 8))
        else {
            break;
        };
        // FLAG_ELF_LIBC6 | FLAG_X8664_LIB64.
        if flags != 0x0303 {
            continue;
        }
        if let (Some(name), Some(path)) = (
            cstr_at(start + key as usize),
            cstr_at(start + value as usize),
        ) {
            map.entry(name).or_insert_with(|| PathBuf::from(path));
        }
    }
    map
}

/// `(package, version, license)` of a path.
type PackageInfo = (String, Option<String>, Option<String>);

/// Changes whenever a package is installed or removed.
fn dpkg_generation() -> String {
    fs::metadata("/var/lib/dpkg/status")
        .map(|m| format!("{}.{}", m.mtime(), m.mtime_nsec()))
        .unwrap_or_else(|_| "none".into())
}

/// Which Debian package installed which path, with versions and licenses.
#[derive(Debug, Default)]
struct DpkgIndex {
    owners: HashMap<String, Vec<String>>,
    versions: HashMap<String, String>,
    licenses: HashMap<String, Option<String>>,
}

impl DpkgIndex {
    fn load() -> Self {
        let mut index = DpkgIndex::default();
        if let Ok(dir) = fs::read_dir("/var/lib/dpkg/info") {
            for entry in dir.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                let Some(pkg) = name.strip_suffix(".list") else {
                    continue;
                };
                let pkg = pkg.split(':').next().unwrap_or(pkg).to_string();
                if let Ok(text) = fs::read_to_string(entry.path()) {
                    for line in text.lines() {
                        index
                            .owners
                            .entry(line.to_string())
                            .or_default()
                            .push(pkg.clone());
                    }
                }
            }
        }
        if let Ok(status) = fs::read_to_string("/var/lib/dpkg/status") {
            for para in status.split("\n\n") {
                let field = |name: &str| {
                    para.lines()
                        .find_map(|l| l.strip_prefix(name).map(|v| v.trim().to_string()))
                };
                if let (Some(p), Some(v)) = (field("Package:"), field("Version:")) {
                    index.versions.insert(p, v);
                }
            }
        }
        index
    }

    fn lookup(&mut self, path: &Path) -> Option<PackageInfo> {
        let text = path.to_string_lossy().into_owned();
        let mut candidates = vec![text.clone()];
        if let Ok(real) = fs::canonicalize(path) {
            candidates.push(real.to_string_lossy().into_owned());
        }
        // Merged /usr: dpkg may list either spelling.
        for c in candidates.clone() {
            if let Some(rest) = c.strip_prefix("/usr") {
                candidates.push(rest.to_string());
            } else {
                candidates.push(format!("/usr{c}"));
            }
        }
        let owners = candidates.iter().find_map(|c| self.owners.get(c))?.clone();
        let mut owners = owners;
        owners.sort();
        owners.dedup();
        let package = owners.join(", ");
        let first = owners.first()?.clone();
        let version = self.versions.get(&first).cloned();
        let license = self
            .licenses
            .entry(first.clone())
            .or_insert_with(|| license_of(&first))
            .clone();
        Some((package, version, license))
    }
}

/// The license of a Debian package, from `/usr/share/doc/<pkg>/copyright`: the DEP-5 `License:`
/// names, or a recognised GPL phrase, or a pointer to the file.
fn license_of(package: &str) -> Option<String> {
    let path = format!("/usr/share/doc/{package}/copyright");
    let text = fs::read_to_string(&path).ok()?;
    let mut names: Vec<String> = Vec::new();
    for line in text.lines() {
        if let Some(v) = line.strip_prefix("License:") {
            let v = v.trim();
            if !v.is_empty() && !names.iter().any(|n| n == v) {
                names.push(v.to_string());
            }
        }
    }
    if !names.is_empty() {
        return Some(names.join(" and "));
    }
    let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
    for (phrase, name) in [
        ("GNU General Public License as published by the Free Software Foundation; either version 2", "GPL-2+"),
        ("GNU General Public License as published by the Free Software Foundation; either version 3", "GPL-3+"),
        ("GNU Lesser General Public License", "LGPL"),
        ("GNU General Public License", "GPL"),
    ] {
        if flat.contains(phrase) {
            return Some(name.to_string());
        }
    }
    Some(format!("see {path}"))
}

/// Parses a pip lock: `name==version` requirements with `--hash=` options, `\` continuations
/// and `#` comments.
pub fn parse_lock(path: &Path) -> Result<Vec<PythonPackage>, ClosureError> {
    let text = fs::read_to_string(path).map_err(|source| ClosureError::Io {
        step: "read",
        path: path.to_path_buf(),
        source,
    })?;
    let joined = text
        .lines()
        .map(|l| l.split('#').next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n")
        .replace("\\\n", " ");
    let mut out = Vec::new();
    for line in joined.lines() {
        let mut words = line.split_whitespace();
        let Some(req) = words.next() else { continue };
        let (name, version) = req.split_once("==").ok_or_else(|| ClosureError::Lock {
            path: path.to_path_buf(),
            reason: format!("requirement {req:?} is not pinned with =="),
        })?;
        let hashes = words
            .filter_map(|w| w.strip_prefix("--hash=").map(String::from))
            .collect();
        out.push(PythonPackage {
            name: name.to_lowercase(),
            version: version.to_string(),
            hashes,
        });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_resolves_dot_dot() {
        assert_eq!(
            normalize(Path::new("/usr/bin/../lib/./x")),
            PathBuf::from("/usr/lib/x")
        );
    }

    #[test]
    fn ld_so_cache_knows_libc() {
        let map = read_ld_so_cache();
        let libc = map.get("libc.so.6").expect("libc in ld.so.cache");
        assert!(is_elf64_x86(libc), "{}", libc.display());
    }

    #[test]
    fn lock_lines_parse_with_continuations() {
        let dir = std::env::temp_dir().join(format!("capsci-lock-{}", std::process::id()));
        fs::create_dir_all(&dir).expect("dir");
        let lock = dir.join("req.lock");
        fs::write(
            &lock,
            "# c\nSymPy==1.13.3 \\\n    --hash=sha256:aa\nmpmath==1.3.0 --hash=sha256:bb\n",
        )
        .expect("write");
        let pkgs = parse_lock(&lock).expect("parse");
        assert_eq!(pkgs.len(), 2);
        assert_eq!(pkgs[1].name, "sympy");
        assert_eq!(pkgs[1].hashes, vec!["sha256:aa".to_string()]);
        fs::write(&lock, "numpy>=1\n").expect("write");
        assert!(matches!(parse_lock(&lock), Err(ClosureError::Lock { .. })));
        let _ = fs::remove_dir_all(&dir);
    }
}
