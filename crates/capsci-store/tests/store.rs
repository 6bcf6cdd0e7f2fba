//! The store as a whole: bad input (corrupt or unusable stores), streaming artifacts, jobs
//! (including recovery of jobs whose process died) and the experiment registry.

mod common;

use capsci_core::JobState;
use capsci_store::{
    ArtifactId, BlobError, ClosureSpec, DbError, JobError, RegistryError, ReviewStatus, Store,
    StoreError,
};
use common::{bare_draft, child, child_mode, draft, TempDir};
use std::io::{BufRead, BufReader, Read};

/// Entry point of the child processes the tests below start; a no-op in a normal test run.
#[test]
fn zz_child_entry() {
    let Some((mode, dir)) = child_mode() else {
        return;
    };
    let store = Store::open(&dir).expect("child opens store");
    match mode.as_str() {
        "job-running" => {
            let id = store
                .jobs()
                .create("SmtSolver", "check", &serde_json::json!({"file": "x.smt2"}))
                .expect("create");
            store.jobs().mark_running(&id).expect("running");
            let queued = store
                .jobs()
                .create("NumberTheory", "eval", &serde_json::json!({"expr": "1+1"}))
                .expect("create queued");
            let sync = store
                .jobs()
                .create_running("NumberTheory", "eval", &serde_json::json!({"expr": "2+2"}))
                .expect("create running");
            println!("JOBS {id} {queued} {sync}");
            // Hold the jobs until killed (or until the parent closes stdin).
            let mut buf = String::new();
            let _ = std::io::stdin().read_line(&mut buf);
            std::process::exit(0);
        }
        other => panic!("unknown child mode {other}"),
    }
}

#[test]
fn a_garbage_database_is_a_clear_error() {
    let dir = TempDir::new("garbage");
    std::fs::write(dir.path().join("capsci.db"), vec![0x5a; 8192]).expect("write garbage");
    match Store::open(dir.path()) {
        Err(StoreError::Db(DbError::Corrupt { path, reason })) => {
            assert!(path.ends_with("capsci.db"));
            assert!(reason.contains("not a database"), "{reason}");
        }
        other => panic!("expected a corrupt-store error, got {other:?}"),
    }
}

#[test]
fn a_truncated_database_is_a_clear_error() {
    let dir = TempDir::new("truncated");
    {
        let store = Store::open(dir.path()).expect("open");
        for n in 0..50 {
            store.log().append(draft(&store, n)).expect("append");
        }
    }
    // Checkpointed into the main file on close; cut it in the middle of its pages.
    let db = dir.path().join("capsci.db");
    let len = std::fs::metadata(&db).expect("stat").len();
    let bytes = std::fs::read(&db).expect("read");
    let mut damaged = bytes[..(len as usize / 2)].to_vec();
    damaged[100..4096].fill(0xff);
    std::fs::write(&db, damaged).expect("damage");
    let _ = std::fs::remove_file(dir.path().join("capsci.db-wal"));
    let result = Store::open(dir.path()).and_then(|s| {
        s.log()
            .verify(&Default::default())
            .map(|r| r.ok())
            .map_err(StoreError::from)
    });
    assert!(
        matches!(result, Err(_) | Ok(false)),
        "a damaged database must not pass: {result:?}"
    );
}

#[test]
fn a_store_path_that_is_a_file_or_under_a_file_is_a_clear_error() {
    let dir = TempDir::new("file");
    let file = dir.path().join("plain");
    std::fs::write(&file, b"x").expect("write");
    assert!(matches!(
        Store::open(&file),
        Err(StoreError::NotADirectory(_))
    ));
    assert!(matches!(
        Store::open(&file.join("store")),
        Err(StoreError::Unavailable { .. })
    ));
    // A database path that is a directory.
    let odd = dir.path().join("odd");
    std::fs::create_dir_all(odd.join("capsci.db")).expect("mkdir");
    let err = Store::open(&odd).expect_err("must fail");
    assert!(matches!(err, StoreError::Db(_)), "{err}");
}

#[test]
fn missing_store_directories_are_created_and_a_missing_objects_dir_is_recreated() {
    let dir = TempDir::new("missing");
    let nested = dir.path().join("a/b/c");
    let store = Store::open(&nested).expect("create nested");
    let id = store
        .artifacts()
        .put_bytes(b"x", "text/plain")
        .expect("put");
    drop(store);
    std::fs::remove_dir_all(nested.join("objects")).expect("rm objects");
    let store = Store::open(&nested).expect("reopen");
    assert!(!store.artifacts().contains(&id).expect("contains"));
    assert!(matches!(
        store.artifacts().get_bytes(&id),
        Err(BlobError::NotFound(_))
    ));
}

#[test]
fn default_dir_honours_capsci_store() {
    // Only this test touches the variable in this binary.
    std::env::set_var("CAPSCI_STORE", "/tmp/somewhere/capsci-x");
    assert_eq!(
        Store::default_dir().expect("dir"),
        std::path::PathBuf::from("/tmp/somewhere/capsci-x")
    );
    std::env::remove_var("CAPSCI_STORE");
    let d = Store::default_dir().expect("dir");
    assert!(d.ends_with("capsci"), "{}", d.display());
}

/// A reader producing `len` pseudo-random bytes without holding them.
struct Generated {
    left: u64,
    state: u64,
}

impl Read for Generated {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = buf.len().min(self.left as usize);
        for b in &mut buf[..n] {
            self.state = self
                .state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            *b = (self.state >> 56) as u8;
        }
        self.left -= n as u64;
        Ok(n)
    }
}

#[test]
fn large_artifacts_stream_in_and_out_and_are_stored_once() {
    let dir = TempDir::new("stream");
    let store = Store::open(dir.path()).expect("open");
    let len = 64 << 20;
    let id = store
        .artifacts()
        .put_reader(
            Generated {
                left: len,
                state: 7,
            },
            "application/octet-stream",
        )
        .expect("put");
    let mut expected = blake3::Hasher::new();
    std::io::copy(
        &mut Generated {
            left: len,
            state: 7,
        },
        &mut expected,
    )
    .expect("hash");
    assert_eq!(id, ArtifactId::from_hash(&expected.finalize()));
    let again = store
        .artifacts()
        .put_reader(
            Generated {
                left: len,
                state: 7,
            },
            "application/octet-stream",
        )
        .expect("put again");
    assert_eq!(id, again);
    let files = walk_count(&dir.path().join("objects"));
    assert_eq!(files, 1, "the same bytes are stored once");
    let meta = store.artifacts().meta(&id).expect("meta").expect("present");
    assert_eq!(meta.size, len);
    assert_eq!(meta.media_type, "application/octet-stream");
    let copied = std::io::copy(
        &mut store.artifacts().open(&id).expect("open"),
        &mut std::io::sink(),
    )
    .expect("read back verified");
    assert_eq!(copied, len);
    assert_eq!(store.artifacts().verify(&id).expect("verify"), len);
    assert!(matches!(
        ArtifactId::parse("blake3:short"),
        Err(BlobError::BadId(_))
    ));
}

fn walk_count(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir)
        .expect("read dir")
        .flatten()
        .map(|e| {
            if e.path().is_dir() {
                walk_count(&e.path())
            } else {
                1
            }
        })
        .sum()
}

#[test]
fn job_lifecycle_and_cancellation() {
    let dir = TempDir::new("jobs");
    let store = Store::open(dir.path()).expect("open");
    let jobs = store.jobs();
    let id = jobs
        .create("SmtSolver", "check", &serde_json::json!({"seed": 1}))
        .expect("create");
    assert!(id.starts_with("job_") && id.len() == 30, "{id}");
    assert_eq!(
        jobs.get(&id).expect("get").expect("job").state,
        JobState::Queued
    );
    jobs.mark_running(&id).expect("running");
    assert!(matches!(
        jobs.mark_running(&id),
        Err(JobError::Transition {
            from: JobState::Running,
            ..
        })
    ));
    assert!(!jobs.cancel_requested(&id).expect("flag"));
    assert_eq!(jobs.request_cancel(&id).expect("cancel"), JobState::Running);
    assert!(jobs.cancel_requested(&id).expect("flag"));
    jobs.finish(&id, JobState::Cancelled, None, Some("cancelled by caller"))
        .expect("finish");
    let job = jobs
        .wait(&id, std::time::Duration::from_secs(1))
        .expect("wait");
    assert_eq!(job.state, JobState::Cancelled);
    assert!(job.finished_at.is_some());
    assert!(matches!(
        jobs.finish(&id, JobState::Succeeded, None, None),
        Err(JobError::Transition { .. })
    ));

    let done = jobs
        .create("NumberTheory", "eval", &serde_json::json!({}))
        .expect("create");
    jobs.mark_running(&done).expect("running");
    let envelope = serde_json::json!({"job": done, "status": "ok"});
    jobs.finish(&done, JobState::Succeeded, Some(&envelope), None)
        .expect("finish");
    let job = jobs.get(&done).expect("get").expect("job");
    assert_eq!(job.envelope, Some(envelope));
    // A queued job is cancelled at once.
    let queued = jobs
        .create("NumberTheory", "eval", &serde_json::json!({}))
        .expect("create");
    assert_eq!(
        jobs.request_cancel(&queued).expect("cancel"),
        JobState::Cancelled
    );
    let listed: Vec<String> = jobs
        .list(10)
        .expect("list")
        .into_iter()
        .map(|j| j.id)
        .collect();
    assert_eq!(listed.len(), 3);
    assert!(matches!(jobs.get("job_nope"), Ok(None)));
    assert!(matches!(
        jobs.request_cancel("job_nope"),
        Err(JobError::NotFound(_))
    ));
    assert!(matches!(
        jobs.wait(
            &store
                .jobs()
                .create("a", "b", &serde_json::json!({}))
                .expect("c"),
            std::time::Duration::from_millis(10)
        ),
        Err(JobError::WaitTimeout(_))
    ));
}

#[test]
fn jobs_of_a_killed_process_come_back_interrupted_and_a_live_owner_keeps_its_jobs() {
    let dir = TempDir::new("interrupted");
    Store::open(dir.path()).expect("create store");
    let mut proc = child("zz_child_entry", "job-running", dir.path())
        .stdin(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut reader = BufReader::new(proc.stdout.take().expect("stdout"));
    let mut ids = None;
    let mut line = String::new();
    while reader.read_line(&mut line).expect("read") > 0 {
        if let Some(pos) = line.find("JOBS ") {
            let parts: Vec<String> = line[pos + 5..]
                .split_whitespace()
                .map(String::from)
                .collect();
            ids = Some((parts[0].clone(), parts[1].clone(), parts[2].clone()));
            break;
        }
        line.clear();
    }
    let (running, queued, sync) = ids.expect("child reported its jobs");
    // The owner is alive: opening the store elsewhere leaves its jobs alone.
    let other = Store::open(dir.path()).expect("open while child lives");
    assert!(other.recovered_jobs().is_empty());
    assert_eq!(
        other.jobs().get(&running).expect("get").expect("job").state,
        JobState::Running
    );
    drop(other);
    proc.kill().expect("kill -9");
    proc.wait().expect("reap");
    let store = Store::open(dir.path()).expect("reopen");
    let mut recovered = store.recovered_jobs().to_vec();
    recovered.sort();
    let mut expected = vec![running.clone(), queued.clone(), sync.clone()];
    expected.sort();
    assert_eq!(recovered, expected);
    let job = store.jobs().get(&running).expect("get").expect("job");
    assert_eq!(job.state, JobState::Interrupted);
    assert!(job.error.expect("reason").contains("stopped"));
    assert_eq!(
        store.jobs().get(&queued).expect("get").expect("job").state,
        JobState::Interrupted
    );
    // A job created directly as running (one commit, no fsync of its own) survived the kill and
    // was recovered like the others.
    let job = store.jobs().get(&sync).expect("get").expect("job");
    assert_eq!(job.state, JobState::Interrupted);
    assert!(job.started_at.is_some());
    assert!(job.error.expect("reason").contains("stopped"));
}

#[test]
fn create_running_makes_a_running_job_owned_by_this_process_that_can_finish() {
    let dir = TempDir::new("create-running");
    let store = Store::open(dir.path()).expect("open");
    let params = serde_json::json!({"expr": "factor(2^64+1)"});
    let id = store
        .jobs()
        .create_running("NumberTheory", "eval", &params)
        .expect("create running");
    assert!(id.starts_with("job_"));
    let job = store.jobs().get(&id).expect("get").expect("job");
    assert_eq!(job.state, JobState::Running);
    assert_eq!(job.owner, store.jobs().owner());
    assert_eq!(job.params, params);
    assert_eq!(job.started_at.as_deref(), Some(job.created_at.as_str()));
    // Already running: it cannot be started again.
    assert!(matches!(
        store.jobs().mark_running(&id),
        Err(JobError::Transition { .. })
    ));
    let envelope = serde_json::json!({"status": "ok"});
    store
        .jobs()
        .finish(&id, JobState::Succeeded, Some(&envelope), None)
        .expect("finish");
    drop(store);
    // The finish survives closing and reopening, and this dead store's job is not "recovered".
    let store = Store::open(dir.path()).expect("reopen");
    assert!(store.recovered_jobs().is_empty());
    let job = store.jobs().get(&id).expect("get").expect("job");
    assert_eq!(job.state, JobState::Succeeded);
    assert_eq!(job.envelope, Some(envelope));
}

fn tmp_is_empty(store_dir: &std::path::Path) -> bool {
    std::fs::read_dir(store_dir.join("tmp"))
        .expect("tmp dir")
        .next()
        .is_none()
}

#[test]
fn put_batch_stores_each_distinct_item_once_across_and_within_batches() {
    let dir = TempDir::new("batch");
    let store = Store::open(dir.path()).expect("open");
    let a = store.artifacts();
    let first: Vec<(&[u8], &str)> = vec![
        (b"(check-sat)\n", "application/smt2"),
        (b"sat\n", "text/plain"),
        (b"(check-sat)\n", "application/smt2"),
        (b"log line\n", "text/plain"),
        (b"", "application/octet-stream"),
    ];
    let ids = a.put_batch(&first).expect("first batch");
    assert_eq!(ids.len(), first.len());
    for (id, (bytes, _)) in ids.iter().zip(&first) {
        assert_eq!(*id, ArtifactId::of_bytes(bytes));
    }
    assert_eq!(ids[0], ids[2]);
    assert_eq!(walk_count(&dir.path().join("objects")), 4);
    // Across batches (and against a single put): present bytes are not stored again.
    let single = a.put_bytes(b"sat\n", "text/plain").expect("single put");
    assert_eq!(single, ids[1]);
    let second: Vec<(&[u8], &str)> = vec![
        (b"sat\n", "text/plain"),
        (br#"{"status":"sat"}"#, "application/json"),
    ];
    let more = a.put_batch(&second).expect("second batch");
    assert_eq!(more[0], ids[1]);
    assert_eq!(walk_count(&dir.path().join("objects")), 5);
    for (id, (bytes, media)) in ids.iter().zip(&first).chain(more.iter().zip(&second)) {
        assert_eq!(a.get_bytes(id).expect("read back verified"), *bytes);
        let meta = a.meta(id).expect("meta").expect("metadata row");
        assert_eq!(meta.size, bytes.len() as u64);
        assert_eq!(meta.media_type, *media);
    }
    assert!(tmp_is_empty(dir.path()), "no temp files are left behind");
    drop(store);
    // Everything is there after reopening.
    let store = Store::open(dir.path()).expect("reopen");
    for id in ids.iter().chain(&more) {
        store.artifacts().verify(id).expect("verified after reopen");
        assert!(store.artifacts().meta(id).expect("meta").is_some());
    }
}

#[test]
fn an_empty_batch_stores_nothing() {
    let dir = TempDir::new("batch-empty");
    let store = Store::open(dir.path()).expect("open");
    assert!(store.artifacts().put_batch(&[]).expect("empty").is_empty());
    assert_eq!(walk_count(&dir.path().join("objects")), 0);
    assert!(tmp_is_empty(dir.path()));
}

#[test]
fn a_ten_mib_item_goes_through_a_batch_with_small_ones() {
    let dir = TempDir::new("batch-big");
    let store = Store::open(dir.path()).expect("open");
    let mut big = vec![0u8; 10 << 20];
    std::io::copy(
        &mut Generated {
            left: big.len() as u64,
            state: 11,
        },
        &mut &mut big[..],
    )
    .expect("generate");
    let items: Vec<(&[u8], &str)> = vec![
        (b"small input", "text/plain"),
        (&big, "application/octet-stream"),
        (b"small output", "text/plain"),
    ];
    let ids = store.artifacts().put_batch(&items).expect("batch");
    assert_eq!(ids[1], ArtifactId::of_bytes(&big));
    assert_eq!(store.artifacts().verify(&ids[1]).expect("verify"), 10 << 20);
    assert_eq!(store.artifacts().get_bytes(&ids[1]).expect("read"), big);
    assert_eq!(
        store.artifacts().get_bytes(&ids[0]).expect("read"),
        b"small input"
    );
    assert_eq!(
        store
            .artifacts()
            .meta(&ids[1])
            .expect("meta")
            .expect("row")
            .size,
        10 << 20
    );
    assert!(tmp_is_empty(dir.path()));
}

#[test]
fn a_batch_replaces_a_damaged_stored_object_with_the_right_bytes() {
    let dir = TempDir::new("batch-heal");
    let store = Store::open(dir.path()).expect("open");
    let id = store
        .artifacts()
        .put_bytes(b"the right bytes", "text/plain")
        .expect("put");
    let hex = id.hex();
    let path = dir.path().join("objects").join(&hex[..2]).join(&hex[2..]);
    let mut perms = std::fs::metadata(&path).expect("stat").permissions();
    #[allow(clippy::permissions_set_readonly_false)]
    perms.set_readonly(false);
    std::fs::set_permissions(&path, perms).expect("chmod");
    std::fs::write(&path, b"the wrong bytes").expect("damage");
    assert!(matches!(
        store.artifacts().get_bytes(&id),
        Err(BlobError::Corrupt { .. })
    ));
    let ids = store
        .artifacts()
        .put_batch(&[(b"the right bytes", "text/plain"), (b"other", "text/plain")])
        .expect("batch");
    assert_eq!(ids[0], id);
    assert_eq!(
        store.artifacts().get_bytes(&id).expect("healed"),
        b"the right bytes"
    );
    assert!(std::fs::metadata(&path)
        .expect("stat")
        .permissions()
        .readonly());
    assert!(tmp_is_empty(dir.path()));
}

#[test]
fn experiments_publish_only_with_every_cited_artifact_and_closure_present() {
    let dir = TempDir::new("registry");
    let store = Store::open(dir.path()).expect("open");
    let spec = serde_json::json!([{"interface": "NumberTheory", "method": "eval", "expr": "factor(2^64+1)"}]);
    let id = store
        .experiments()
        .create(&spec, &["factoring".into()])
        .expect("create");
    let reordered: serde_json::Value = serde_json::from_str(
        r#"[{"method":"eval","expr":"factor(2^64+1)","interface":"NumberTheory"}]"#,
    )
    .expect("json");
    assert_eq!(
        store.experiments().create(&reordered, &[]).expect("same"),
        id
    );
    assert!(matches!(
        store.experiments().create(&serde_json::json!({}), &[]),
        Err(RegistryError::BadSpec)
    ));
    // A record whose backend closure is real (computed and stored).
    let (closure, _) = store
        .closures()
        .compute(&ClosureSpec {
            name: "z3".into(),
            executables: vec!["/usr/bin/z3".into()],
            ..Default::default()
        })
        .expect("closure");
    let mut d = draft(&store, 1);
    d.backend.closure = closure.id.clone();
    let good = store.log().append(d).expect("append");
    // One naming an artifact that was never stored.
    let missing = format!("blake3:{}", "0".repeat(64));
    let mut bad = bare_draft(2, Some(missing.clone()), None, None);
    bad.backend.closure = closure.id.clone();
    let bad = store.log().append(bad).expect("append");

    store.experiments().add_result(&id, &good.id).expect("cite");
    assert!(matches!(
        store.publish_experiment(&id),
        Err(RegistryError::Transition {
            from: ReviewStatus::Draft,
            ..
        })
    ));
    store.experiments().mark_reviewed(&id).expect("review");
    store
        .experiments()
        .add_result(&id, &bad.id)
        .expect("cite bad");
    match store.publish_experiment(&id) {
        Err(RegistryError::Unpublishable { reason, .. }) => {
            assert!(reason.contains(&missing), "{reason}")
        }
        other => panic!("expected unpublishable, got {other:?}"),
    }
    // Cite only the good result: a fresh experiment with it publishes.
    let spec2 = serde_json::json!([{"interface": "SmtSolver", "method": "check"}]);
    let id2 = store.experiments().create(&spec2, &[]).expect("create");
    store
        .experiments()
        .add_result(&id2, &good.id)
        .expect("cite");
    store.experiments().mark_reviewed(&id2).expect("review");
    store.publish_experiment(&id2).expect("publish");
    let e = store.experiments().get(&id2).expect("get").expect("exp");
    assert_eq!(e.status, ReviewStatus::Published);
    assert!(matches!(
        store.experiments().add_result(&id2, &bad.id),
        Err(RegistryError::Published(_))
    ));
    // A result whose closure id is unknown cannot be published.
    let mut unknown = draft(&store, 3);
    unknown.backend.closure = "blake3:unknown".into();
    let unknown = store.log().append(unknown).expect("append");
    let spec3 = serde_json::json!([{"n": 3}]);
    let id3 = store.experiments().create(&spec3, &[]).expect("create");
    store
        .experiments()
        .add_result(&id3, &unknown.id)
        .expect("cite");
    store.experiments().mark_reviewed(&id3).expect("review");
    assert!(matches!(
        store.publish_experiment(&id3),
        Err(RegistryError::Unpublishable { .. })
    ));
}
