//! Content-addressed artifacts: the [`BlobStore`] trait and its embedded implementation, a
//! directory with fan-out (`objects/ab/cdef…`).
//!
//! Writes stream through a temporary file in the same file system, are fsynced, renamed into
//! place and the directory fsynced, so a crash leaves either the whole object or nothing. Reads
//! re-hash what they return and fail at end of file if the bytes are not the ones named.

use crate::util::fsync_dir;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeSet, HashSet};
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Errors of the artifact store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BlobError {
    /// A text that is not `blake3:<64 hex digits>`.
    #[error("not an artifact id: {0:?}")]
    BadId(String),
    /// No object with this id.
    #[error("artifact {0} not found")]
    NotFound(ArtifactId),
    /// The object's bytes do not hash to its id.
    #[error("artifact {id} is corrupt: its content hashes to {actual}")]
    Corrupt {
        /// The id it is stored under.
        id: ArtifactId,
        /// What the bytes hash to now.
        actual: String,
    },
    /// Reading the caller's stream failed.
    #[error("reading artifact content: {0}")]
    Source(io::Error),
    /// A file system step failed.
    #[error("{step} {path}: {source}")]
    Io {
        /// What was being done (`create temp file`, `rename`, ...).
        step: &'static str,
        /// The path involved.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// The metadata database failed.
    #[error("artifact metadata: {0}")]
    Db(#[from] rusqlite::Error),
}

/// A content address: `blake3:<64 lower-case hex digits>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ArtifactId(String);

impl ArtifactId {
    /// The id of a BLAKE3 hash.
    pub fn from_hash(hash: &blake3::Hash) -> Self {
        ArtifactId(format!("blake3:{}", hash.to_hex()))
    }

    /// The id of these bytes.
    pub fn of_bytes(bytes: &[u8]) -> Self {
        Self::from_hash(&blake3::hash(bytes))
    }

    /// Parses and validates an id.
    pub fn parse(text: &str) -> Result<Self, BlobError> {
        let hex = text
            .strip_prefix("blake3:")
            .ok_or_else(|| BlobError::BadId(text.to_string()))?;
        if hex.len() != 64
            || !hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return Err(BlobError::BadId(text.to_string()));
        }
        Ok(ArtifactId(text.to_string()))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The hex digest (after `blake3:`).
    pub fn hex(&self) -> &str {
        &self.0["blake3:".len()..]
    }

    fn hash(&self) -> Option<blake3::Hash> {
        blake3::Hash::from_hex(self.hex()).ok()
    }
}

impl fmt::Display for ArtifactId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for ArtifactId {
    type Error = BlobError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        ArtifactId::parse(&value)
    }
}

impl From<ArtifactId> for String {
    fn from(id: ArtifactId) -> String {
        id.0
    }
}

/// Where artifact bytes live. The embedded default is [`DirBlobStore`]; an S3-compatible store
/// can implement this trait without any caller changing.
pub trait BlobStore: Send + Sync {
    /// Stores the stream's bytes; returns their id and length. Storing bytes already present
    /// stores nothing new.
    fn put_reader(&self, reader: &mut dyn Read) -> Result<(ArtifactId, u64), BlobError>;
    /// Opens an object for reading; the reader fails at end of stream if the bytes do not hash
    /// to `id`.
    fn open(&self, id: &ArtifactId) -> Result<Box<dyn Read + Send>, BlobError>;
    /// Whether an object with this id is present (without re-hashing it).
    fn contains(&self, id: &ArtifactId) -> Result<bool, BlobError>;
    /// Stores several byte strings at once; returns each one's id and length, in order. Every
    /// object is durable when this returns, exactly as after [`BlobStore::put_reader`]; an
    /// implementation may share its sync points across the batch (the default simply stores the
    /// items one by one).
    fn put_batch(&self, items: &[&[u8]]) -> Result<Vec<(ArtifactId, u64)>, BlobError> {
        items
            .iter()
            .map(|bytes| self.put_reader(&mut &bytes[..]))
            .collect()
    }
    /// Re-hashes the object; returns its length, or `Corrupt`/`NotFound`.
    fn verify(&self, id: &ArtifactId) -> Result<u64, BlobError> {
        let mut reader = self.open(id)?;
        let mut buf = vec![0u8; 1 << 20];
        let mut total = 0u64;
        loop {
            match reader.read(&mut buf) {
                Ok(0) => return Ok(total),
                Ok(n) => total += n as u64,
                Err(e) if e.kind() == io::ErrorKind::InvalidData => {
                    let actual = e.to_string();
                    return Err(BlobError::Corrupt {
                        id: id.clone(),
                        actual,
                    });
                }
                Err(source) => {
                    return Err(BlobError::Io {
                        step: "read artifact",
                        path: PathBuf::from(id.as_str()),
                        source,
                    })
                }
            }
        }
    }
}

/// The embedded blob store: `<root>/objects/<2 hex>/<62 hex>`, temp files in `<root>/tmp`.
#[derive(Debug)]
pub struct DirBlobStore {
    objects: PathBuf,
    tmp: PathBuf,
    counter: AtomicU64,
}

impl DirBlobStore {
    /// Uses (and creates if missing) `objects/` and `tmp/` under `root`.
    pub fn open(root: &Path) -> Result<Self, BlobError> {
        let objects = root.join("objects");
        let tmp = root.join("tmp");
        for dir in [&objects, &tmp] {
            fs::create_dir_all(dir).map_err(|source| BlobError::Io {
                step: "create directory",
                path: dir.clone(),
                source,
            })?;
        }
        remove_stale_temp_files(&tmp);
        Ok(DirBlobStore {
            objects,
            tmp,
            counter: AtomicU64::new(0),
        })
    }

    /// The file an object lives in.
    pub fn object_path(&self, id: &ArtifactId) -> PathBuf {
        let hex = id.hex();
        self.objects.join(&hex[..2]).join(&hex[2..])
    }

    fn temp_path(&self) -> PathBuf {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        self.tmp
            .join(format!("put-{}-{n}-{nanos}", std::process::id()))
    }
}

impl BlobStore for DirBlobStore {
    fn put_reader(&self, reader: &mut dyn Read) -> Result<(ArtifactId, u64), BlobError> {
        let temp = self.temp_path();
        let io_err = |step: &'static str, path: &Path| {
            let path = path.to_path_buf();
            move |source| BlobError::Io { step, path, source }
        };
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&temp)
            .map_err(io_err("create temp file", &temp))?;
        let mut hasher = blake3::Hasher::new();
        let mut buf = vec![0u8; 1 << 20];
        let mut total = 0u64;
        let result = (|| {
            loop {
                let n = match reader.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(BlobError::Source(e)),
                };
                hasher.update(&buf[..n]);
                file.write_all(&buf[..n])
                    .map_err(io_err("write temp file", &temp))?;
                total += n as u64;
            }
            let id = ArtifactId::from_hash(&hasher.finalize());
            let dest = self.object_path(&id);
            if dest.exists() {
                // Present already; its writer fsynced it before renaming. Fsync the directory
                // too, in case that writer died between its rename and its directory fsync.
                if let Some(dir) = dest.parent() {
                    fsync_dir(dir).map_err(io_err("fsync directory", dir))?;
                }
                return Ok((id, false));
            }
            file.sync_all().map_err(io_err("fsync temp file", &temp))?;
            let dir = dest.parent().unwrap_or(&self.objects).to_path_buf();
            if !dir.exists() {
                fs::create_dir_all(&dir).map_err(io_err("create directory", &dir))?;
                fsync_dir(&self.objects).map_err(io_err("fsync directory", &self.objects))?;
            }
            let mut perms = file
                .metadata()
                .map_err(io_err("stat temp file", &temp))?
                .permissions();
            perms.set_readonly(true);
            fs::set_permissions(&temp, perms).map_err(io_err("chmod temp file", &temp))?;
            fs::rename(&temp, &dest).map_err(io_err("rename into place", &dest))?;
            fsync_dir(&dir).map_err(io_err("fsync directory", &dir))?;
            Ok((id, true))
        })();
        match result {
            Ok((id, moved)) => {
                if !moved {
                    let _ = fs::remove_file(&temp);
                }
                Ok((id, total))
            }
            Err(e) => {
                let _ = fs::remove_file(&temp);
                Err(e)
            }
        }
    }

    /// Stores the batch with two rounds of concurrent fsyncs instead of two fsyncs per object:
    /// every new object's temp file is written, then all are fsynced at once (on ext4,
    /// concurrent fsyncs share one journal commit), renamed into place, and each touched fan-out
    /// directory is fsynced once, again concurrently. Ids already present (in the store or
    /// earlier in the batch) are not written again, unless the stored bytes differ from the item
    /// (a damaged object), which is then replaced. Each object is still renamed into place only
    /// after its bytes are on disk, so a reader never sees a partial object.
    fn put_batch(&self, items: &[&[u8]]) -> Result<Vec<(ArtifactId, u64)>, BlobError> {
        let ids: Vec<ArtifactId> = items.iter().map(|b| ArtifactId::of_bytes(b)).collect();
        let mut seen = HashSet::new();
        let mut fresh: Vec<(usize, PathBuf)> = Vec::new();
        let mut dirs = BTreeSet::new();
        for (i, id) in ids.iter().enumerate() {
            if !seen.insert(id) {
                continue;
            }
            let dest = self.object_path(id);
            let dir = dest.parent().unwrap_or(&self.objects).to_path_buf();
            // A present object is compared with the item (cheap next to a write and fsync): one
            // whose bytes were damaged is written again and renamed over, so the batch heals it.
            // A present object's directory is fsynced too, in case its writer died between its
            // rename and its directory fsync (as `put_reader` does).
            if !same_content(&dest, items[i]) {
                fresh.push((i, dest));
            }
            dirs.insert(dir);
        }
        let mut temps = TempFiles(Vec::new(), Vec::new());
        for (i, dest) in &fresh {
            let temp = self.temp_path();
            let mut file = OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&temp)
                .map_err(io_error("create temp file", &temp))?;
            temps.0.push(temp.clone());
            file.write_all(items[*i])
                .map_err(io_error("write temp file", &temp))?;
            let mut perms = file
                .metadata()
                .map_err(io_error("stat temp file", &temp))?
                .permissions();
            perms.set_readonly(true);
            file.set_permissions(perms)
                .map_err(io_error("chmod temp file", &temp))?;
            temps.1.push((file, temp, dest.clone()));
        }
        fsync_concurrently(
            temps.1.iter().map(|(f, p, _)| (f, p.as_path())),
            "fsync temp file",
        )?;
        let mut created = false;
        for dir in &dirs {
            if !dir.exists() {
                fs::create_dir_all(dir).map_err(io_error("create directory", dir))?;
                created = true;
            }
        }
        if created {
            fsync_dir(&self.objects).map_err(io_error("fsync directory", &self.objects))?;
        }
        for (_, temp, dest) in &temps.1 {
            fs::rename(temp, dest).map_err(io_error("rename into place", dest))?;
        }
        temps.0.clear();
        let opened: Vec<(File, &Path)> = dirs
            .iter()
            .map(|d| {
                File::open(d)
                    .map(|f| (f, d.as_path()))
                    .map_err(io_error("fsync directory", d))
            })
            .collect::<Result<_, _>>()?;
        fsync_concurrently(opened.iter().map(|(f, p)| (f, *p)), "fsync directory")?;
        Ok(ids
            .into_iter()
            .zip(items)
            .map(|(id, bytes)| (id, bytes.len() as u64))
            .collect())
    }

    fn open(&self, id: &ArtifactId) -> Result<Box<dyn Read + Send>, BlobError> {
        let path = self.object_path(id);
        let file = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(BlobError::NotFound(id.clone()))
            }
            Err(source) => {
                return Err(BlobError::Io {
                    step: "open artifact",
                    path,
                    source,
                })
            }
        };
        let expected = id.hash().ok_or_else(|| BlobError::BadId(id.to_string()))?;
        Ok(Box::new(VerifyingReader {
            inner: file,
            hasher: blake3::Hasher::new(),
            expected,
            checked: false,
        }))
    }

    fn contains(&self, id: &ArtifactId) -> Result<bool, BlobError> {
        Ok(self.object_path(id).is_file())
    }
}

/// A closure turning an OS error at `step` on `path` into a [`BlobError::Io`].
fn io_error(step: &'static str, path: &Path) -> impl FnOnce(io::Error) -> BlobError {
    let path = path.to_path_buf();
    move |source| BlobError::Io { step, path, source }
}

/// Whether the file at `path` holds exactly `bytes` (false if it is missing or unreadable).
fn same_content(path: &Path, bytes: &[u8]) -> bool {
    let Ok(mut file) = File::open(path) else {
        return false;
    };
    match file.metadata() {
        Ok(m) if m.len() == bytes.len() as u64 => {}
        _ => return false,
    }
    let mut buf = vec![0u8; bytes.len().clamp(1, 1 << 20)];
    let mut offset = 0;
    loop {
        match file.read(&mut buf) {
            Ok(0) => return offset == bytes.len(),
            Ok(n) => {
                if bytes.get(offset..offset + n) != Some(&buf[..n]) {
                    return false;
                }
                offset += n;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return false,
        }
    }
}

/// A batch's temp files: paths still to remove if the batch fails before renaming them, and the
/// open files with their destinations.
struct TempFiles(Vec<PathBuf>, Vec<(File, PathBuf, PathBuf)>);

impl Drop for TempFiles {
    fn drop(&mut self) {
        for temp in &self.0 {
            let _ = fs::remove_file(temp);
        }
    }
}

/// Most threads one concurrent fsync round uses.
const MAX_FSYNC_THREADS: usize = 16;

/// fsyncs every file at once, on up to [`MAX_FSYNC_THREADS`] threads (one of them the calling
/// thread), so the file system can serve them with one journal commit instead of one each.
/// Fails with the first error, after every fsync has finished.
fn fsync_concurrently<'a>(
    files: impl Iterator<Item = (&'a File, &'a Path)>,
    step: &'static str,
) -> Result<(), BlobError> {
    let files: Vec<(&File, &Path)> = files.collect();
    let threads = files.len().min(MAX_FSYNC_THREADS);
    if threads == 0 {
        return Ok(());
    }
    // Thread `t` syncs files t, t + threads, t + 2 * threads, ...
    let stride = |t: usize| -> Result<(), BlobError> {
        for (file, path) in files.iter().skip(t).step_by(threads) {
            file.sync_all().map_err(io_error(step, path))?;
        }
        Ok(())
    };
    let results: Vec<Result<(), BlobError>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (1..threads)
            .map(|t| scope.spawn(move || stride(t)))
            .collect();
        let mut results = vec![stride(0)];
        for handle in handles {
            results.push(handle.join().unwrap_or_else(|_| {
                Err(io_error(step, Path::new("(fsync thread)"))(
                    io::Error::other("fsync thread panicked"),
                ))
            }));
        }
        results
    });
    results.into_iter().collect()
}

/// Removes temporary files (`put-<pid>-...`) left by writers that died mid-write; files of
/// live processes are left alone. Best effort: a failure here only leaves garbage behind.
fn remove_stale_temp_files(tmp: &Path) {
    let Ok(entries) = fs::read_dir(tmp) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let pid = name
            .strip_prefix("put-")
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<u32>().ok());
        if let Some(pid) = pid {
            if !Path::new(&format!("/proc/{pid}")).exists() {
                let _ = fs::remove_file(entry.path());
            }
        }
    }
}

/// A reader that hashes what passes through it and fails at end of stream on a mismatch.
pub struct VerifyingReader<R> {
    inner: R,
    hasher: blake3::Hasher,
    expected: blake3::Hash,
    checked: bool,
}

impl<R: Read> Read for VerifyingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let n = self.inner.read(buf)?;
        if n > 0 {
            self.hasher.update(&buf[..n]);
            return Ok(n);
        }
        if !self.checked {
            let actual = self.hasher.finalize();
            if actual != self.expected {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("blake3:{}", actual.to_hex()),
                ));
            }
            self.checked = true;
        }
        Ok(0)
    }
}

/// Metadata kept for every artifact.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArtifactMeta {
    /// Its content address.
    pub id: ArtifactId,
    /// Length in bytes.
    pub size: u64,
    /// Media type given when it was stored (`text/plain`, `application/json`, ...).
    pub media_type: String,
    /// When it was first stored (RFC 3339 UTC).
    pub created_at: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_root(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("capsci-blob-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn same_bytes_stored_once_and_read_back_verified() {
        let root = temp_root("once");
        let store = DirBlobStore::open(&root).expect("open");
        let (a, n) = store.put_reader(&mut &b"hello"[..]).expect("put");
        let (b, _) = store.put_reader(&mut &b"hello"[..]).expect("put again");
        assert_eq!(a, b);
        assert_eq!(n, 5);
        assert_eq!(a, ArtifactId::of_bytes(b"hello"));
        let mut out = String::new();
        store
            .open(&a)
            .expect("open")
            .read_to_string(&mut out)
            .expect("read");
        assert_eq!(out, "hello");
        assert_eq!(fs::read_dir(root.join("tmp")).expect("tmp").count(), 0);
        let _ = fs::remove_dir_all(&root);
    }

    #[test]
    fn a_changed_byte_fails_the_read_at_eof() {
        let root = temp_root("flip");
        let store = DirBlobStore::open(&root).expect("open");
        let (id, _) = store.put_reader(&mut &b"0123456789"[..]).expect("put");
        let path = store.object_path(&id);
        let mut perms = fs::metadata(&path).expect("stat").permissions();
        #[allow(clippy::permissions_set_readonly_false)]
        perms.set_readonly(false);
        fs::set_permissions(&path, perms).expect("chmod");
        fs::write(&path, b"0123456780").expect("tamper");
        let mut out = Vec::new();
        let err = store
            .open(&id)
            .expect("open")
            .read_to_end(&mut out)
            .expect_err("must fail");
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        assert!(matches!(store.verify(&id), Err(BlobError::Corrupt { .. })));
        let _ = fs::remove_dir_all(&root);
    }

    /// A blob store that keeps the trait's default `put_batch` (one put per item).
    struct OneByOne(DirBlobStore);

    impl BlobStore for OneByOne {
        fn put_reader(&self, reader: &mut dyn Read) -> Result<(ArtifactId, u64), BlobError> {
            self.0.put_reader(reader)
        }
        fn open(&self, id: &ArtifactId) -> Result<Box<dyn Read + Send>, BlobError> {
            self.0.open(id)
        }
        fn contains(&self, id: &ArtifactId) -> Result<bool, BlobError> {
            self.0.contains(id)
        }
    }

    #[test]
    fn the_default_and_the_directory_batch_store_the_same_objects() {
        let items: Vec<Vec<u8>> = (0..40u32)
            .map(|i| {
                format!("item {}", i % 25)
                    .repeat(i as usize + 1)
                    .into_bytes()
            })
            .collect();
        let refs: Vec<&[u8]> = items.iter().map(|v| v.as_slice()).collect();
        let root_a = temp_root("batch-default");
        let root_b = temp_root("batch-dir");
        let default = OneByOne(DirBlobStore::open(&root_a).expect("open"));
        let dir = DirBlobStore::open(&root_b).expect("open");
        let a = default.put_batch(&refs).expect("default batch");
        let b = dir.put_batch(&refs).expect("directory batch");
        assert_eq!(a, b);
        for ((id, len), bytes) in b.iter().zip(&items) {
            assert_eq!(*id, ArtifactId::of_bytes(bytes));
            assert_eq!(*len, bytes.len() as u64);
            assert_eq!(dir.verify(id).expect("verify"), *len);
            assert!(default.contains(id).expect("contains"));
        }
        assert_eq!(fs::read_dir(root_b.join("tmp")).expect("tmp").count(), 0);
        let _ = fs::remove_dir_all(&root_a);
        let _ = fs::remove_dir_all(&root_b);
    }

    #[test]
    fn ids_are_validated() {
        assert!(ArtifactId::parse("blake3:xyz").is_err());
        assert!(ArtifactId::parse("sha256:00").is_err());
        let good = format!("blake3:{}", "a".repeat(64));
        assert_eq!(ArtifactId::parse(&good).expect("good").as_str(), good);
        assert!(ArtifactId::parse(&good.to_uppercase()).is_err());
    }
}
