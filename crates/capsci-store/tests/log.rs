//! The provenance log: appends, durability under kill -9, concurrent appenders (threads and
//! processes), tamper detection, signed checkpoints and the PROV-JSON export.

mod common;

use capsci_store::log::record_hash;
use capsci_store::{ArtifactId, Problem, Store, VerifyOptions};
use common::{bare_draft, child, child_mode, draft, TempDir};
use rusqlite::Connection;
use std::collections::HashSet;
use std::io::{BufRead, BufReader, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Entry point of the child processes the tests below start (this binary re-run with
/// `CAPSCI_STORE_TEST_CHILD` set); a no-op in a normal test run.
#[test]
fn zz_child_entry() {
    let Some((mode, dir)) = child_mode() else {
        return;
    };
    let store = Arc::new(Store::open(&dir).expect("child opens store"));
    let (threads, count) = match mode.as_str() {
        "append-loop" => (4, 50_000u64),
        other => {
            let n = other
                .strip_prefix("append-")
                .and_then(|n| n.parse().ok())
                .expect("mode");
            (2, n)
        }
    };
    let deadline = Instant::now() + Duration::from_secs(120);
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let store = store.clone();
            std::thread::spawn(move || {
                for i in 0..count / threads {
                    if Instant::now() > deadline {
                        break;
                    }
                    let n = (std::process::id() as u64) << 32 | (t << 24) | i;
                    let r = store.log().append(draft(&store, n)).expect("append");
                    let mut out = std::io::stdout().lock();
                    writeln!(out, "ACK {} {}", r.id, r.seq).expect("stdout");
                    out.flush().expect("flush");
                }
            })
        })
        .collect();
    for h in handles {
        h.join().expect("thread");
    }
    std::process::exit(0);
}

/// The record id of an `ACK <id> <seq>` line (libtest may print its own text before it).
fn ack_id(line: &str) -> Option<String> {
    let rest = &line[line.find("ACK ")? + 4..];
    rest.split_whitespace().next().map(String::from)
}

fn acks(reader: impl BufRead) -> Vec<String> {
    reader
        .lines()
        .map_while(Result::ok)
        .filter_map(|l| ack_id(&l))
        .collect()
}

fn all_ids(store: &Store) -> HashSet<String> {
    store
        .log()
        .list(0, usize::MAX)
        .expect("list")
        .into_iter()
        .map(|r| r.id)
        .collect()
}

#[test]
fn appended_records_read_back_in_chain_order_and_verify() {
    let dir = TempDir::new("basic");
    let store = Store::open(dir.path()).expect("open");
    let mut refs = Vec::new();
    for n in 0..5 {
        refs.push(store.log().append(draft(&store, n)).expect("append"));
    }
    let records = store.log().list(0, 100).expect("list");
    assert_eq!(records.len(), 5);
    for (i, (rec, r)) in records.iter().zip(&refs).enumerate() {
        assert_eq!(rec.seq, i as u64 + 1);
        assert_eq!(&rec.id, &r.id);
        assert_eq!(&rec.hash, &r.hash);
        assert_eq!(rec.body.draft.seed, Some(i as u64));
        assert!(rec.id.starts_with("rec_"));
    }
    assert_eq!(records[1].prev, records[0].hash);
    assert_eq!(records[0].prev, capsci_store::log::GENESIS);
    let one = store.log().get(&refs[2].id).expect("get").expect("present");
    assert_eq!(one, records[2]);
    assert!(store.log().get("rec_nope").expect("get").is_none());
    let report = store
        .log()
        .verify(&VerifyOptions::default())
        .expect("verify");
    assert!(report.ok(), "{:?}", report.problems);
    assert_eq!(report.records, 5);
    // 5 inputs, 5 logs, one shared output.
    assert_eq!(report.artifacts_checked, 11);
    assert_eq!(report.head, Some((5, refs[4].hash.clone())));
}

#[test]
fn kill_9_during_appends_loses_no_acknowledged_record() {
    let dir = TempDir::new("crash");
    let mut acknowledged: HashSet<String> = HashSet::new();
    for round in 0..20u64 {
        let mut proc = child("zz_child_entry", "append-loop", dir.path())
            .spawn()
            .expect("spawn child");
        let stdout = proc.stdout.take().expect("stdout");
        let mut reader = BufReader::new(stdout);
        let wanted = 2 + (round * 7) % 23;
        let mut seen = 0;
        let mut line = String::new();
        while seen < wanted {
            line.clear();
            if reader.read_line(&mut line).expect("read child") == 0 {
                break;
            }
            if let Some(id) = ack_id(&line) {
                acknowledged.insert(id);
                seen += 1;
            }
        }
        proc.kill().expect("kill -9");
        // Acks printed before the kill are still in the pipe.
        acknowledged.extend(acks(reader));
        proc.wait().expect("reap");
        assert!(seen > 0, "round {round}: the child acknowledged nothing");
        let store = Store::open(dir.path()).expect("reopen after kill");
        // Half-written artifacts of the dead child are cleaned up on open.
        let leftovers = std::fs::read_dir(dir.path().join("tmp"))
            .expect("tmp")
            .count();
        assert_eq!(leftovers, 0, "round {round}: temp files left behind");
        let report = store
            .log()
            .verify(&VerifyOptions::default())
            .expect("verify");
        assert!(report.ok(), "round {round}: {:?}", report.first_problem());
        let present = all_ids(&store);
        let lost: Vec<_> = acknowledged.difference(&present).collect();
        assert!(
            lost.is_empty(),
            "round {round}: acknowledged records lost: {lost:?}"
        );
    }
    assert!(acknowledged.len() >= 20);
}

#[test]
fn concurrent_threads_and_processes_append_to_one_chain() {
    let dir = TempDir::new("concurrent");
    let store = Arc::new(Store::open(dir.path()).expect("open"));
    let children: Vec<_> = (0..3)
        .map(|_| {
            child("zz_child_entry", "append-60", dir.path())
                .spawn()
                .expect("spawn")
        })
        .collect();
    let threads: Vec<_> = (0..4u64)
        .map(|t| {
            let store = store.clone();
            std::thread::spawn(move || {
                (0..50u64)
                    .map(|i| {
                        store
                            .log()
                            .append(draft(&store, t * 1000 + i))
                            .expect("append")
                            .id
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let mut expected: HashSet<String> = HashSet::new();
    for t in threads {
        expected.extend(t.join().expect("thread"));
    }
    for mut c in children {
        let out = c.stdout.take().expect("stdout");
        let ids = acks(BufReader::new(out));
        assert!(c.wait().expect("wait").success());
        assert_eq!(ids.len(), 60);
        expected.extend(ids);
    }
    assert_eq!(expected.len(), 200 + 180);
    let report = store
        .log()
        .verify(&VerifyOptions::default())
        .expect("verify");
    assert!(report.ok(), "{:?}", report.first_problem());
    assert_eq!(report.records, 380);
    assert_eq!(all_ids(&store), expected);
}

/// A store with 10 records, and a raw connection to tamper with its database.
fn tamper_fixture(name: &str) -> (TempDir, Store, Connection) {
    let dir = TempDir::new(name);
    let store = Store::open(dir.path()).expect("open");
    for n in 0..10 {
        store.log().append(draft(&store, n)).expect("append");
    }
    assert!(store
        .log()
        .verify(&VerifyOptions::default())
        .expect("verify")
        .ok());
    let conn = Connection::open(dir.path().join("capsci.db")).expect("raw db");
    (dir, store, conn)
}

fn record_id(conn: &Connection, seq: i64) -> String {
    conn.query_row("SELECT id FROM records WHERE seq = ?1", [seq], |r| r.get(0))
        .expect("id")
}

#[test]
fn an_edited_record_is_named() {
    let (_dir, store, conn) = tamper_fixture("edit");
    let id = record_id(&conn, 7);
    let changed = conn
        .execute(
            "UPDATE records SET body = replace(body, '\"status\":\"sat\"', '\"status\":\"unsat\"') WHERE seq = 7",
            [],
        )
        .expect("edit");
    assert_eq!(changed, 1);
    let report = store
        .log()
        .verify(&VerifyOptions::default())
        .expect("verify");
    assert_eq!(
        report.first_problem(),
        Some(&Problem::RecordAltered { seq: 7, id })
    );
    assert_eq!(report.problems.len(), 1);
}

#[test]
fn a_deleted_record_is_named() {
    let (_dir, store, conn) = tamper_fixture("delete");
    let next = record_id(&conn, 5);
    conn.execute("DELETE FROM records WHERE seq = 4", [])
        .expect("delete");
    let report = store
        .log()
        .verify(&VerifyOptions::default())
        .expect("verify");
    assert_eq!(
        report.first_problem(),
        Some(&Problem::Missing {
            expected: 4,
            found: 5,
            id: next
        })
    );
    let text = report.first_problem().expect("problem").to_string();
    assert!(text.contains("record 4 is missing"), "{text}");
}

#[test]
fn two_swapped_records_are_named() {
    let (_dir, store, conn) = tamper_fixture("swap");
    let moved = record_id(&conn, 5);
    conn.execute_batch(
        "UPDATE records SET seq = -3 WHERE seq = 3;
         UPDATE records SET seq = 3 WHERE seq = 5;
         UPDATE records SET seq = 5 WHERE seq = -3;",
    )
    .expect("swap");
    let report = store
        .log()
        .verify(&VerifyOptions::default())
        .expect("verify");
    assert_eq!(
        report.first_problem(),
        Some(&Problem::ChainBroken { seq: 3, id: moved })
    );
}

#[test]
fn a_changed_artifact_byte_is_named_with_its_record() {
    let (dir, store, conn) = tamper_fixture("artifact");
    let body: String = conn
        .query_row("SELECT body FROM records WHERE seq = 6", [], |r| r.get(0))
        .expect("body");
    let rec: serde_json::Value = serde_json::from_str(&body).expect("json");
    let input = ArtifactId::parse(rec["artifacts"]["input"].as_str().expect("input")).expect("id");
    let hex = input.hex();
    let path = dir.path().join("objects").join(&hex[..2]).join(&hex[2..]);
    let mut bytes = std::fs::read(&path).expect("read object");
    bytes[3] ^= 0x01;
    let mut perms = std::fs::metadata(&path).expect("stat").permissions();
    #[allow(clippy::permissions_set_readonly_false)]
    perms.set_readonly(false);
    std::fs::set_permissions(&path, perms).expect("chmod");
    std::fs::write(&path, &bytes).expect("tamper");
    let report = store
        .log()
        .verify(&VerifyOptions::default())
        .expect("verify");
    match report.first_problem() {
        Some(Problem::ArtifactAltered {
            seq,
            role,
            artifact,
            record,
            ..
        }) => {
            assert_eq!(*seq, 6);
            assert_eq!(role, "input");
            assert_eq!(artifact, input.as_str());
            assert_eq!(record, &record_id(&conn, 6));
        }
        other => panic!("expected an altered artifact, got {other:?}"),
    }
    // Reading it through the store fails too.
    assert!(store.artifacts().get_bytes(&input).is_err());
    // A missing artifact is named as missing.
    std::fs::remove_file(&path).expect("remove");
    let report = store
        .log()
        .verify(&VerifyOptions::default())
        .expect("verify");
    assert!(
        matches!(
            report.first_problem(),
            Some(Problem::ArtifactMissing { seq: 6, .. })
        ),
        "{:?}",
        report.first_problem()
    );
}

#[test]
fn checkpoints_catch_truncation_and_a_rewritten_chain() {
    let (_dir, store, conn) = tamper_fixture("checkpoint");
    let cp = store.log().checkpoint().expect("checkpoint");
    assert_eq!(cp.seq, 10);
    assert!(store
        .log()
        .verify(&VerifyOptions::default())
        .expect("verify")
        .ok());
    // Rewrite record 9 and re-hash it and its successor consistently: only the signed head
    // can tell.
    let rows: Vec<(i64, String, String, String)> = {
        let mut st = conn
            .prepare("SELECT seq, id, prev, body FROM records WHERE seq >= 9 ORDER BY seq")
            .expect("prepare");
        st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .expect("query")
            .map(|r| r.expect("row"))
            .collect()
    };
    let mut prev = rows[0].2.clone();
    for (seq, id, _, body) in &rows {
        let body = body.replace("\"status\":\"sat\"", "\"status\":\"unsat\"");
        let hash = record_hash(*seq as u64, &prev, id, &body);
        conn.execute(
            "UPDATE records SET prev = ?2, hash = ?3, body = ?4 WHERE seq = ?1",
            rusqlite::params![seq, prev, hash, body],
        )
        .expect("rewrite");
        prev = hash;
    }
    let report = store
        .log()
        .verify(&VerifyOptions::default())
        .expect("verify");
    assert!(
        matches!(
            report.first_problem(),
            Some(Problem::CheckpointMismatch { seq: 10, .. })
        ),
        "{:?}",
        report.problems
    );
    // Removing the tail is caught the same way.
    conn.execute("DELETE FROM records WHERE seq >= 9", [])
        .expect("truncate");
    let report = store
        .log()
        .verify(&VerifyOptions::default())
        .expect("verify");
    assert_eq!(
        report.first_problem(),
        Some(&Problem::Truncated { seq: 10, head: 8 })
    );
}

#[test]
fn a_copied_log_verifies_elsewhere_with_the_exported_key_only() {
    let (dir, store, _conn) = tamper_fixture("copy");
    store.log().checkpoint().expect("checkpoint");
    let key = store.log().public_key();
    drop(store);
    // Copy the database and the objects, but not the signing key.
    let copy = TempDir::new("copy-dest");
    std::fs::copy(dir.path().join("capsci.db"), copy.path().join("capsci.db")).expect("copy db");
    for name in ["capsci.db-wal", "capsci.db-shm"] {
        if dir.path().join(name).exists() {
            std::fs::copy(dir.path().join(name), copy.path().join(name)).expect("copy wal");
        }
    }
    let status = std::process::Command::new("cp")
        .arg("-a")
        .arg(dir.path().join("objects"))
        .arg(copy.path())
        .status()
        .expect("cp");
    assert!(status.success());
    let elsewhere = Store::open(copy.path()).expect("open copy");
    assert_ne!(elsewhere.log().public_key(), key);
    let trusted = VerifyOptions {
        trusted_key: Some(key),
        ..Default::default()
    };
    let report = elsewhere.log().verify(&trusted).expect("verify copy");
    assert!(report.ok(), "{:?}", report.problems);
    assert_eq!(report.checkpoints_checked, 1);
    // Under the copy's own (different) key, the checkpoint is not trusted.
    let report = elsewhere
        .log()
        .verify(&VerifyOptions::default())
        .expect("verify");
    assert_eq!(
        report.first_problem(),
        Some(&Problem::CheckpointSignature { seq: 10 })
    );
    let bad = VerifyOptions {
        trusted_key: Some("zz".into()),
        ..Default::default()
    };
    assert!(elsewhere.log().verify(&bad).is_err());
}

#[test]
fn a_record_exports_as_prov_json() {
    let dir = TempDir::new("prov");
    let store = Store::open(dir.path()).expect("open");
    let d = draft(&store, 42);
    let input = d.artifacts.input.clone().expect("input");
    let output = d.artifacts.output.clone().expect("output");
    let r = store.log().append(d).expect("append");
    let prov = store.log().export_prov(&r.id).expect("export");
    let act = format!("capsci:{}", r.id);
    assert_eq!(prov["activity"][&act]["capsci:method"], "check");
    assert_eq!(
        prov["activity"][&act]["capsci:record_hash"],
        r.hash.as_str()
    );
    let input_key = format!("capsci:artifact/{input}");
    assert_eq!(
        prov["entity"][&input_key]["capsci:media_type"],
        "application/smt2"
    );
    let used: Vec<_> = prov["used"].as_object().expect("used").values().collect();
    assert_eq!(used.len(), 1);
    assert_eq!(used[0]["prov:entity"], input_key.as_str());
    let generated: Vec<String> = prov["wasGeneratedBy"]
        .as_object()
        .expect("generated")
        .values()
        .map(|g| g["prov:entity"].as_str().expect("entity").to_string())
        .collect();
    assert!(generated.contains(&format!("capsci:artifact/{output}")));
    assert_eq!(
        prov["agent"]["capsci:principal/agent:test"]["prov:type"],
        "prov:Person"
    );
    assert_eq!(
        prov["agent"]["capsci:backend/z3/4.8.12"]["capsci:closure"],
        "blake3:closure-under-test"
    );
    assert!(matches!(
        store.log().export_prov("rec_missing"),
        Err(capsci_store::LogError::NotFound(_))
    ));
}

#[test]
fn a_record_naming_a_non_id_is_reported_not_panicked() {
    let dir = TempDir::new("nonid");
    let store = Store::open(dir.path()).expect("open");
    store
        .log()
        .append(bare_draft(1, Some("not-a-hash".into()), None, None))
        .expect("append");
    let report = store
        .log()
        .verify(&VerifyOptions::default())
        .expect("verify");
    assert!(matches!(
        report.first_problem(),
        Some(Problem::ArtifactUnreadable { seq: 1, .. })
    ));
    let skip = VerifyOptions {
        skip_artifacts: true,
        ..Default::default()
    };
    assert!(store.log().verify(&skip).expect("verify").ok());
}

#[test]
fn every_edit_deletion_and_swap_anywhere_in_the_chain_is_found_at_its_position() {
    let (_dir, store, conn) = tamper_fixture("everywhere");
    store.log().checkpoint().expect("checkpoint");
    let verify = || {
        store
            .log()
            .verify(&VerifyOptions {
                skip_artifacts: true,
                ..Default::default()
            })
            .expect("verify")
    };
    type Row = (i64, String, String, String, String);
    let row = |seq: i64| -> Row {
        conn.query_row(
            "SELECT seq, id, prev, hash, body FROM records WHERE seq = ?1",
            [seq],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
        )
        .expect("row")
    };
    let put = |r: &Row| {
        conn.execute(
            "INSERT OR REPLACE INTO records (seq, id, prev, hash, body) VALUES (?1, ?2, ?3, ?4, ?5)",
            rusqlite::params![r.0, r.1, r.2, r.3, r.4],
        )
        .expect("restore");
    };
    for seq in 1..=10i64 {
        let original = row(seq);
        // One changed character of the body.
        let mut edited = original.clone();
        edited.4 = edited.4.replacen("agent:test", "agent:tesT", 1);
        put(&edited);
        let report = verify();
        assert_eq!(
            report.first_problem().map(|p| p.seq()),
            Some(seq as u64),
            "edit at {seq}"
        );
        assert!(matches!(
            report.first_problem(),
            Some(Problem::RecordAltered { .. })
        ));
        put(&original);
        // Deletion: a gap, or (at the end) a truncation the checkpoint reveals.
        conn.execute("DELETE FROM records WHERE seq = ?1", [seq])
            .expect("delete");
        let report = verify();
        assert_eq!(
            report.first_problem().map(|p| p.seq()),
            Some(seq as u64),
            "delete at {seq}"
        );
        put(&original);
        assert!(verify().ok(), "restored at {seq}");
    }
    for seq in 1..10i64 {
        let (a, b) = (row(seq), row(seq + 1));
        // INSERT OR REPLACE drops the row holding the other id (UNIQUE), so two puts swap.
        put(&(a.0, b.1.clone(), b.2.clone(), b.3.clone(), b.4.clone()));
        put(&(b.0, a.1.clone(), a.2.clone(), a.3.clone(), a.4.clone()));
        let report = verify();
        assert_eq!(
            report.first_problem().map(|p| p.seq()),
            Some(seq as u64),
            "swap at {seq}"
        );
        put(&a);
        put(&b);
        assert!(verify().ok(), "restored swap at {seq}");
    }
}

#[test]
fn an_envelope_is_recorded_and_gets_its_provenance_reference() {
    let dir = TempDir::new("envelope");
    let store = Store::open(dir.path()).expect("open");
    let input = store
        .artifacts()
        .put_bytes(b"2+2", "text/x-gp")
        .expect("put");
    let mut envelope: capsci_core::Envelope = serde_json::from_value(serde_json::json!({
        "job": "job_01JDXYZ",
        "interface": "NumberTheory",
        "method": "eval",
        "status": "ok",
        "result": {"value": "4", "type": "t_INT"},
        "evidence": "advisory",
        "artifacts": {"input": input.as_str()},
        "backend": {"name": "gp", "version": "2.15.2", "closure": "blake3:c"},
        "sandbox": {"kind": "bwrap", "policy": "blake3:p", "boundary": "shared host kernel"},
        "limits": {"wall_s": 30.0, "cpu_s": 30.0, "memory_mb": 2048, "pids": 64, "file_size_mb": 256, "output_bytes": 1024},
        "usage": {"wall_ms": 5, "cpu_ms": 4, "max_rss_kb": 1000},
        "exit": "exited(0)",
        "seed": 7,
        "host": {"kernel": "6.18", "cpu_model": "x", "memory_limit_by": "cgroup_v1"},
        "started_at": "2026-11-27T12:00:00Z",
        "finished_at": "2026-11-27T12:00:01Z"
    }))
    .expect("envelope");
    let r = store
        .log()
        .append_envelope(
            &mut envelope,
            "user:alice",
            serde_json::json!({"cli": "capsci"}),
        )
        .expect("append");
    let p = envelope.provenance.clone().expect("provenance filled");
    assert_eq!(
        (p.record.as_str(), p.hash.as_str()),
        (r.id.as_str(), r.hash.as_str())
    );
    let rec = store.log().get(&r.id).expect("get").expect("record");
    let d = &rec.body.draft;
    assert_eq!(
        (d.interface.as_str(), d.method.as_str(), d.status.as_str()),
        ("NumberTheory", "eval", "ok")
    );
    assert_eq!(d.job.as_deref(), Some("job_01JDXYZ"));
    assert_eq!(d.seed, Some(7));
    assert_eq!(d.artifacts.input.as_deref(), Some(input.as_str()));
    assert_eq!(d.principal, "user:alice");
    // `log show --json` material: a record serialises flat, with its chain fields.
    let shown = serde_json::to_value(&rec).expect("json");
    assert_eq!(shown["seq"], 1);
    assert_eq!(shown["backend"]["name"], "gp");
    assert_eq!(shown["exit"], "exited(0)");
}
