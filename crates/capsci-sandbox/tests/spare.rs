//! The hot-spare pool: fresh single-use processes, refilled in the background, killed with
//! the pool.

mod common;

use capsci_core::{ExitReason, Limits};
use capsci_sandbox::{CancelToken, Command, SparePool};
use common::*;
use std::time::Duration;

fn gp() -> Command {
    Command {
        program: "/usr/bin/gp".into(),
        args: vec!["-q".into(), "-f".into()],
        ..Default::default()
    }
}

fn gp_limits() -> Limits {
    Limits {
        memory_mb: 512,
        ..limits()
    }
}

fn pool(command: Command, limits: Limits, size: usize) -> SparePool {
    let pool = SparePool::new(sandbox(), policy(limits), command, size).expect("pool");
    assert!(
        pool.wait_ready(size, Duration::from_secs(60)),
        "spares never became ready"
    );
    pool
}

#[test]
fn gp_spares_are_fresh_and_the_pool_refills() {
    let _g = serial();
    let pool = pool(gp(), gp_limits(), 2);
    let first = pool
        .run(b"x=5;\nprint(x)\n".to_vec(), &CancelToken::new())
        .expect("outcome");
    assert_eq!(
        first.exit,
        ExitReason::Exited(0),
        "stderr: {}",
        text(&first.stderr)
    );
    assert_eq!(text(&first.stdout), "5\n");
    let second = pool
        .run(b"print(x)\n".to_vec(), &CancelToken::new())
        .expect("outcome");
    assert_eq!(second.exit, ExitReason::Exited(0));
    assert_eq!(text(&second.stdout), "x\n", "state leaked between calls");
    let stats = pool.stats();
    assert_eq!((stats.hot, stats.cold), (2, 0));
    assert!(
        pool.wait_ready(2, Duration::from_secs(60)),
        "the pool did not refill"
    );
    assert!(pool.stats().started >= 4);
    drop(pool);
    assert_clean_and_healthy();
}

#[test]
fn the_wall_limit_counts_from_the_call_not_the_spare_start() {
    let _g = serial();
    let pool = pool(
        gp(),
        Limits {
            wall_s: 1.0,
            ..gp_limits()
        },
        1,
    );
    std::thread::sleep(Duration::from_millis(1500));
    let out = pool
        .run(b"print(1)\n".to_vec(), &CancelToken::new())
        .expect("outcome");
    assert_eq!(out.exit, ExitReason::Exited(0));
    assert!(out.usage.wall_ms < 1000);
    let out = pool
        .run(b"while(1,)\n".to_vec(), &CancelToken::new())
        .expect("outcome");
    assert_eq!(out.exit, ExitReason::Timeout);
    let out = pool
        .run(b"print(2)\n".to_vec(), &CancelToken::new())
        .expect("outcome");
    assert_eq!(text(&out.stdout), "2\n");
    drop(pool);
    assert_clean_and_healthy();
}

#[test]
fn z3_spares_answer_and_an_empty_pool_falls_back_to_cold() {
    let _g = serial();
    let z3 = Command {
        program: "/usr/bin/z3".into(),
        args: vec!["-in".into()],
        ..Default::default()
    };
    let hot = pool(z3.clone(), limits(), 1);
    let out = hot
        .run(b"(check-sat)\n".to_vec(), &CancelToken::new())
        .expect("outcome");
    assert_eq!(text(&out.stdout), "sat\n", "stderr: {}", text(&out.stderr));
    assert_eq!(hot.stats().hot, 1);
    drop(hot);
    let cold = SparePool::new(sandbox(), policy(limits()), z3, 0).expect("pool");
    let out = cold
        .run(
            b"(declare-const x Int)(assert (< x x))(check-sat)\n".to_vec(),
            &CancelToken::new(),
        )
        .expect("o");
    assert_eq!(text(&out.stdout), "unsat\n");
    assert_eq!(cold.stats().cold, 1);
    drop(cold);
    assert_clean_and_healthy();
}

#[test]
fn dropping_the_pool_kills_its_waiting_spares() {
    let _g = serial();
    let pool = pool(gp(), gp_limits(), 3);
    assert!(!job_uid_processes().is_empty(), "spares should be running");
    drop(pool);
    let left = settle(job_uid_processes);
    assert!(left.is_empty(), "spares outlived the pool: {left:?}");
    assert_clean_and_healthy();
}

#[test]
fn cancelling_a_spare_call_kills_it() {
    let _g = serial();
    let pool = pool(gp(), gp_limits(), 1);
    let cancel = CancelToken::new();
    let token = cancel.clone();
    let worker = std::thread::spawn(move || {
        let out = pool.run(b"while(1,)\n".to_vec(), &token).expect("outcome");
        drop(pool);
        out
    });
    std::thread::sleep(Duration::from_millis(300));
    cancel.cancel();
    let out = worker.join().expect("worker");
    assert_eq!(out.exit, ExitReason::Cancelled);
    assert_clean_and_healthy();
}

#[test]
fn a_pool_whose_tool_cannot_start_backs_off_and_calls_still_get_an_outcome() {
    let _g = serial();
    let missing = Command {
        program: "/usr/bin/no-such-solver".into(),
        ..Default::default()
    };
    let pool = SparePool::new(sandbox(), policy(limits()), missing, 2).expect("pool");
    let until = std::time::Instant::now() + Duration::from_secs(30);
    while pool.stats().start_failures < 2 && std::time::Instant::now() < until {
        std::thread::sleep(Duration::from_millis(20));
    }
    let stats = pool.stats();
    assert!(stats.start_failures >= 2, "{stats:?}");
    assert_eq!(stats.started, 0);
    assert_eq!(pool.ready(), 0);
    let out = pool
        .run(b"x".to_vec(), &CancelToken::new())
        .expect("outcome");
    assert_eq!(out.exit, ExitReason::SandboxError);
    assert_eq!(pool.stats().cold, 1);
    drop(pool);
    assert_clean_and_healthy();
}
