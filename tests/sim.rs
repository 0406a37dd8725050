//! Deterministic simulation of the `Series` layout (issue 11, item 1).
//!
//! Per seed: 2–5 stateless workers — every invocation opens its own `Series` handle — take
//! batches from an at-least-once queue (copies, reordering, redelivery after a visibility
//! timeout, delays within the dedup horizon and past it) and fold them through a
//! [`FaultStore`](shardfold::store::conformance::FaultStore): errors before a write, lost
//! replies after one, latency, bounded stalls, forced conflicts, dropped connections. A
//! maintainer sweeps and compacts beside them; invocations are killed mid-fold at random await
//! points (`select!` against a timer) and their batches come back after the visibility
//! timeout. The writers' `ManualClock` follows tokio's clock. After the queue drains and a
//! final compaction, every invariant of `check::INVARIANTS` is checked against the exact
//! truth.
//!
//! Against memory the runtime's clock is paused: a seed is one deterministic schedule of
//! simulated time (the library's own random record ids and backoff jitter still vary from
//! run to run, so a replay repeats the scenario and the faults' draws, not every
//! interleaving). Against a server the clock is real and runs 50× faster for the writers.
//!
//! `SHARDFOLD_SIM_SEEDS=N` sets the number of seeds; `SHARDFOLD_SIM_SEED=S` replays one.
#![cfg(feature = "store")]

#[path = "sim/check.rs"]
mod check;
#[path = "sim/plan.rs"]
mod plan;
#[cfg(any(
    feature = "sqlite",
    feature = "redis",
    feature = "postgres",
    feature = "nats"
))]
use crate::store_common;
#[path = "sim/world.rs"]
mod world;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::time::Instant;

use check::{INVARIANTS, Totals};
use shardfold::store::{KvStore, MemoryStore};
use world::World;

/// Where a run's store comes from.
#[derive(Clone)]
#[cfg_attr(
    not(any(
        feature = "sqlite",
        feature = "redis",
        feature = "postgres",
        feature = "nats"
    )),
    allow(dead_code)
)]
enum Backend {
    /// A fresh in-memory store per seed, on a paused clock.
    Memory,
    /// A server (or SQLite file) by URL, on the real clock.
    Url(String),
}

/// The seeds to run: `SHARDFOLD_SIM_SEED` alone, or `0..SHARDFOLD_SIM_SEEDS` (default `n`).
fn seeds(n: u64) -> Vec<u64> {
    if let Ok(s) = std::env::var("SHARDFOLD_SIM_SEED") {
        return vec![s.parse().expect("SHARDFOLD_SIM_SEED must be a number")];
    }
    let n = std::env::var("SHARDFOLD_SIM_SEEDS").ok().map_or(n, |v| {
        v.parse().expect("SHARDFOLD_SIM_SEEDS must be a number")
    });
    (0..n).collect()
}

/// One seed, start to finish: its plan, the run, the final compaction, the checks.
fn run_seed(seed: u64, backend: &Backend) -> Totals {
    let mut builder = tokio::runtime::Builder::new_current_thread();
    builder.enable_all();
    let speed = match backend {
        Backend::Memory => {
            builder.start_paused(true);
            1
        }
        Backend::Url(_) => 50,
    };
    let rt = builder.build().expect("runtime");
    let local = tokio::task::LocalSet::new();
    local.block_on(&rt, async {
        let (store, name): (Arc<dyn KvStore>, String) = match backend {
            Backend::Memory => (Arc::new(MemoryStore::new()), "sim".into()),
            Backend::Url(url) => (
                shardfold::store::connect(url).await.expect("connect"),
                shardfold::store::conformance::unique_prefix(&format!("sim{seed}")),
            ),
        };
        let world = World::new(plan::plan(seed, None), store, name, speed);
        world.run().await;
        let view = world.settle_and_query().await;
        let mut totals = check::check(&world, &view);
        totals.seeds = 1;
        totals
    })
}

/// Runs `seeds` (`threads` at a time), prints the totals and the invariants checked, and
/// fails naming every failing seed and how to replay it.
fn run_seeds(label: &str, test: &str, features: &str, backend: &Backend, n: u64, threads: usize) {
    let seeds = seeds(n);
    let started = Instant::now();
    let lanes: Vec<Vec<u64>> = (0..threads)
        .map(|j| seeds.iter().copied().skip(j).step_by(threads).collect())
        .collect();
    let results: Vec<(Totals, Vec<u64>)> = std::thread::scope(|s| {
        let handles: Vec<_> = lanes
            .iter()
            .map(|lane| {
                s.spawn(move || {
                    let mut totals = Totals::default();
                    let mut failed = Vec::new();
                    for &seed in lane {
                        match catch_unwind(AssertUnwindSafe(|| run_seed(seed, backend))) {
                            Ok(t) => totals.add(&t),
                            Err(_) => {
                                eprintln!(
                                    "SIMULATION FAILED: {label} seed {seed}; replay with\n  \
                                     SHARDFOLD_SIM_SEED={seed} cargo test --profile test \
                                     --features {features} --test stores sim::{test} -- --nocapture"
                                );
                                failed.push(seed);
                            }
                        }
                    }
                    (totals, failed)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("lane"))
            .collect()
    });
    let mut totals = Totals::default();
    let mut failed: Vec<u64> = Vec::new();
    for (t, f) in &results {
        totals.add(t);
        failed.extend(f);
    }
    failed.sort_unstable();
    report(label, &totals, seeds.len(), started.elapsed().as_secs_f64());
    assert!(
        failed.is_empty(),
        "{label}: {} seed(s) failed: {failed:?}",
        failed.len()
    );
}

fn report(label: &str, t: &Totals, seeds: usize, secs: f64) {
    println!(
        "simulation [{label}]: {} of {seeds} seeds passed in {secs:.1} s\n  \
         {} events, {} folded exactly once, {} deliveries: {} accepted, {} late, {} failed \
         (redelivered), {} killed mid-fold; {} duplicates counted; {} folded events whose only \
         report was Late/Failed/killed (landed before); {} windows checked\n  \
         faults injected: {} (lost replies {}, forced conflicts {}, stalls {}, connection drops \
         {}); {} racing sweeps/compactions; {} records landed a second time by a retried create\n  invariants checked for every seed:",
        t.seeds,
        t.events,
        t.folded,
        t.deliveries,
        t.accepted,
        t.late_reports,
        t.failed_reports,
        t.crashed,
        t.duplicates,
        t.late_after_landing,
        t.windows,
        t.faults,
        t.lost_replies,
        t.conflicts,
        t.stalls,
        t.drops,
        t.sweeps,
        t.relanded,
    );
    for inv in INVARIANTS {
        println!("   - {inv}");
    }
}

/// 1 000 seeds against the in-memory store (paused clock).
#[test]
fn simulation_memory() {
    run_seeds(
        "memory",
        "simulation_memory",
        "testkit,store",
        &Backend::Memory,
        1_000,
        2,
    );
}

/// Whether the server at `url` answers (else a notice; a panic when servers are required).
#[cfg(any(
    feature = "sqlite",
    feature = "redis",
    feature = "postgres",
    feature = "nats"
))]
fn available(url: &str) -> bool {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(store_common::store_or_skip(url)).is_some()
}

#[cfg(any(
    feature = "sqlite",
    feature = "redis",
    feature = "postgres",
    feature = "nats"
))]
fn server_sim(label: &str, test: &str, feature: &str, url: String) {
    if available(&url) {
        let features = format!("testkit,{feature}");
        run_seeds(label, test, &features, &Backend::Url(url), 50, 4);
    }
}

/// 50 seeds against SQLite (one file).
#[cfg(feature = "sqlite")]
#[test]
fn simulation_sqlite() {
    let file = std::env::temp_dir().join(format!(
        "{}.db",
        shardfold::store::conformance::unique_prefix("sim")
    ));
    server_sim(
        "sqlite",
        "simulation_sqlite",
        "sqlite",
        format!("sqlite://{}", file.display()),
    );
}

/// 50 seeds against Redis.
#[cfg(feature = "redis")]
#[test]
fn simulation_redis() {
    let url = store_common::url("SHARDFOLD_REDIS_URL", "redis://127.0.0.1:6379");
    server_sim("redis", "simulation_redis", "redis", url);
}

/// 50 seeds against PostgreSQL.
#[cfg(feature = "postgres")]
#[test]
fn simulation_postgres() {
    let url = store_common::url(
        "SHARDFOLD_POSTGRES_URL",
        "postgres://postgres@127.0.0.1:5432/test",
    );
    server_sim("postgres", "simulation_postgres", "postgres", url);
}

/// 50 seeds against NATS JetStream KV, when `SHARDFOLD_SIM_NATS=1`: 3–7 s per seed (a
/// JetStream write and key listing are slow next to the other servers), so `.ci/run` runs 12
/// seeds (`SHARDFOLD_SIM_SEEDS=12`); 50 of 50 passed by hand (issue 11 report). (An earlier run
/// failed about one seed in five: the checker missed writes still in flight when a fold was
/// dropped — killed invocations, fold deadlines — which landed after the oracle looked;
/// `FaultStore` now runs a sent write to its end and the simulation waits for them.)
#[cfg(feature = "nats")]
#[test]
fn simulation_nats() {
    if !std::env::var("SHARDFOLD_SIM_NATS").is_ok_and(|v| v == "1") {
        eprintln!(
            "NOT RUN: simulation_nats is slow (3-7 s per seed); SHARDFOLD_SIM_NATS=1 runs it"
        );
        return;
    }
    // a bucket of its own, deleted afterwards: JetStream lists a bucket's keys by scanning all
    // of them, so a bucket that kept every earlier run's keys made each seed slower
    let url = store_common::url("SHARDFOLD_NATS_URL", "nats://127.0.0.1:4222/shardfold_test");
    let server = url
        .rsplit_once('/')
        .map_or(url.as_str(), |(s, _)| s)
        .to_owned();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let bucket = format!("sfsim_{}_{nanos}", std::process::id());
    server_sim(
        "nats",
        "simulation_nats",
        "nats",
        format!("{server}/{bucket}"),
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let host = server.trim_start_matches("nats://");
        if let Ok(client) = async_nats::connect(host).await {
            let _ = async_nats::jetstream::new(client)
                .delete_key_value(&bucket)
                .await;
        }
    });
}
