//! SIGKILL crash test (issue 11, item 2): worker OS processes — this test binary re-run in a
//! worker role — fold batches of a `Series` into SQLite and Redis; the parent kills them with
//! SIGKILL (`Child::kill`) at random moments, mostly mid-fold, starts new ones and redelivers
//! every batch no worker acknowledged (and some that were, as a queue would). At the end the
//! answer is exact — per window, byte for byte — the stored tally counts every event once, and
//! every stored value decodes.
#![cfg(any(feature = "sqlite", feature = "redis"))]

use crate::store_common;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::series_common::*;
use shardfold::store::{KvStore, ManualClock, connect, series_wire};
use shardfold::testkit::SplitMix64;

/// Env var telling a re-run of this binary to be a worker: `url \t metric \t batch,batch,…`.
const WORKER_ENV: &str = "SHARDFOLD_CRASH_WORKER";
const EVENTS: usize = 12_000;
const BATCH: usize = 100;
const SEED: u64 = 11;

fn batches() -> Vec<Vec<shardfold::Event<Val>>> {
    events(EVENTS, 60, SEED)
        .chunks(BATCH)
        .map(<[_]>::to_vec)
        .collect()
}

/// The body of a worker process: folds the batches it was given, printing `ACK <i>` after a
/// fold that accepted every event of batch `i`.
#[tokio::test(flavor = "current_thread")]
async fn crash_worker() {
    let Ok(spec) = std::env::var(WORKER_ENV) else {
        return;
    };
    let parts: Vec<&str> = spec.split('\t').collect();
    let [url, metric, list] = parts[..] else {
        panic!("bad {WORKER_ENV}")
    };
    let all = batches();
    let store = connect(url).await.expect("worker connect");
    let clock = ManualClock::new(T0);
    let mut out = std::io::stdout();
    for i in list.split(',').filter_map(|s| s.parse::<usize>().ok()) {
        // a stateless invocation: the series is opened afresh for every batch
        let series = open(&store, &clock, metric, 4).await;
        let report = series.fold(&all[i]).await.expect("fold");
        if report.is_complete() {
            writeln!(out, "ACK {i}").expect("stdout");
            out.flush().expect("flush");
        }
    }
}

/// Starts a worker for `list`; a thread collects its acknowledgements into `acked`.
fn spawn_worker(
    url: &str,
    metric: &str,
    list: &[usize],
    acked: &Arc<Mutex<BTreeSet<usize>>>,
) -> (std::process::Child, std::thread::JoinHandle<Instant>) {
    let exe = std::env::current_exe().expect("current_exe");
    let spec: Vec<String> = list.iter().map(usize::to_string).collect();
    let mut child = Command::new(exe)
        .args([
            &store_common::test_name(module_path!(), "crash_worker"),
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(WORKER_ENV, format!("{url}\t{metric}\t{}", spec.join(",")))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn worker");
    let stdout = child.stdout.take().expect("piped stdout");
    let acked = acked.clone();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(i) = line.strip_prefix("ACK ").and_then(|s| s.parse().ok()) {
                acked.lock().expect("acked").insert(i);
            }
        }
        Instant::now() // stdout closed: the worker exited
    });
    (child, reader)
}

/// Rounds of 4 workers, each given a random slice of the unacknowledged batches (plus a few
/// acknowledged ones: redeliveries; at most 5 per worker); about 6 in 7 are SIGKILLed at a random
/// moment within the time a
/// worker left alone runs (learned as the storm goes). Then the
/// checks.
async fn crash_storm(url: &str, metric: &str) {
    let started = Instant::now();
    let store: Arc<dyn KvStore> = connect(url).await.expect("connect");
    let clock = ManualClock::new(T0);
    let series = open(&store, &clock, metric, 4).await; // created before the storm
    let all = batches();
    let acked: Arc<Mutex<BTreeSet<usize>>> = Arc::default();
    let mut rng = SplitMix64::new(SEED);
    let (mut rounds, mut kills, mut killed_with_work) = (0u32, 0u32, 0u32);
    // how long a worker left alone runs (process start, connect, its folds), learned from the
    // workers not killed: kill times are drawn below it, so kills land mid-run on a fast
    // backend (Redis) as on a slow one
    let mut run_ms = 250.0f64;
    loop {
        let done = acked.lock().expect("acked").clone();
        let mut todo: Vec<usize> = (0..all.len()).filter(|i| !done.contains(i)).collect();
        if todo.is_empty() {
            if killed_with_work >= 10 {
                break;
            }
            // every batch acknowledged before the storm was one (fast workers outrun the
            // kills): redeliver them all, under kills, until it is
            todo = (0..all.len()).collect();
        }
        assert!(rounds < 400, "batches never all acknowledged");
        rounds += 1;
        rng.shuffle(&mut todo);
        let mut workers: Vec<_> = (0..4)
            .map(|_| {
                let mut list: Vec<usize> = todo
                    .iter()
                    .copied()
                    .filter(|_| rng.unit() < 0.5)
                    .take(5)
                    .collect();
                if !done.is_empty() && rng.unit() < 0.5 {
                    let again: Vec<usize> = done.iter().copied().collect();
                    list.push(again[rng.below(again.len())]);
                }
                rng.shuffle(&mut list);
                let kill_after =
                    (rng.unit() < 0.85).then(|| 2 + rng.below(run_ms as usize + 1) as u64);
                (
                    spawn_worker(url, metric, &list, &acked),
                    kill_after,
                    list.len(),
                )
            })
            .collect();
        // kill in time order; the workers left alone are waited for last
        workers.sort_by_key(|w| w.1.unwrap_or(u64::MAX));
        let t0 = Instant::now();
        for ((mut child, reader), kill_after, given) in workers {
            if let Some(ms) = kill_after {
                let left = Duration::from_millis(ms).saturating_sub(t0.elapsed());
                tokio::time::sleep(left).await;
                if child.try_wait().expect("try_wait").is_none() {
                    child.kill().expect("SIGKILL");
                    kills += 1;
                    killed_with_work += u32::from(given > 0);
                }
            }
            let killed = kill_after.is_some();
            tokio::task::spawn_blocking(move || child.wait())
                .await
                .expect("join")
                .expect("wait");
            let exited = reader.join().expect("reader");
            if !killed && given > 0 {
                let ms = exited.duration_since(t0).as_secs_f64() * 1e3;
                run_ms = (0.5 * run_ms + 0.5 * ms).clamp(5.0, 2_000.0);
            }
        }
    }
    // the storm must have been one: workers killed holding batches, many times
    assert!(
        killed_with_work >= 10,
        "only {killed_with_work} workers killed holding batches in {rounds} rounds"
    );
    // the answer: exact per window, every event once, every stored value decodes
    series
        .compact_range(T0 - 2 * HOUR, T0 + HOUR)
        .await
        .expect("compact");
    let view = series.query().await.expect("query");
    let evs: Vec<_> = all.concat();
    assert_exact(&view, &evs);
    assert_eq!(view.pending_records(), 0);
    assert_eq!(
        view.tally().folded,
        EVENTS as u64,
        "every event folded once"
    );
    assert_eq!(view.tally().late, 0);
    let keys = store
        .list(&store.metric_key(metric, ""))
        .await
        .expect("list");
    for key in &keys {
        if let Some((bytes, _)) = store.read(key).await.expect("read") {
            series_wire::reencode(&bytes).unwrap_or_else(|e| {
                panic!(
                    "{}: stored value does not decode: {e}",
                    String::from_utf8_lossy(key)
                )
            });
        }
    }
    println!(
        "crash test [{}]: {rounds} rounds, {kills} workers SIGKILLed ({killed_with_work} holding \
         batches), {} duplicates counted; exact per window, {} stored values decode; {:.1} s",
        store.backend(),
        view.tally().duplicates,
        keys.len(),
        started.elapsed().as_secs_f64()
    );
}

#[cfg(feature = "sqlite")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkilled_workers_sqlite() {
    let file = std::env::temp_dir().join(format!(
        "{}.db",
        shardfold::store::conformance::unique_prefix("crash")
    ));
    crash_storm(&format!("sqlite://{}", file.display()), "crash").await;
}

#[cfg(feature = "redis")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkilled_workers_redis() {
    let url = store_common::url("SHARDFOLD_REDIS_URL", "redis://127.0.0.1:6379");
    if store_common::store_or_skip(&url).await.is_none() {
        return;
    }
    let metric = shardfold::store::conformance::unique_prefix("crash");
    crash_storm(&url, &metric).await;
}
