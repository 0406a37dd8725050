//! Shared plumbing of the per-backend store tests: server discovery, skipping, and the
//! fold race across OS processes (the test binary re-invokes itself).
#![allow(dead_code)]

use std::process::{Child, Command};
use std::sync::Arc;

use shardfold::store::{KvStore, connect};

pub mod series;

/// Env var telling a re-invoked test binary which race worker to be.
pub const CHILD_ENV: &str = "SHARDFOLD_RACE_CHILD";

/// Whether a missing server must fail the tests (`SHARDFOLD_REQUIRE_SERVICES=1`).
pub fn require_services() -> bool {
    std::env::var("SHARDFOLD_REQUIRE_SERVICES").is_ok_and(|v| v == "1")
}

/// The URL for a backend: `$var` if set, else `default`.
pub fn url(var: &str, default: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| default.to_owned())
}

/// Connects, or prints a notice and returns `None` when the server is absent (panics instead
/// under `SHARDFOLD_REQUIRE_SERVICES=1`).
pub async fn store_or_skip(url: &str) -> Option<Arc<dyn KvStore>> {
    match connect(url).await {
        Ok(s) => Some(s),
        Err(e) if require_services() => panic!("server required but unavailable: {e}"),
        Err(e) => {
            eprintln!(
                "SKIPPED: store server unavailable ({e}); set SHARDFOLD_REQUIRE_SERVICES=1 to fail instead"
            );
            None
        }
    }
}

/// Connecting to an unreachable server with each of `urls` (whose password is `hunter2`) fails
/// with `Error::Store` for `backend`, and neither the message nor `Debug` shows the password.
pub async fn connect_errors_hide_password(backend: &str, urls: &[&str]) {
    for url in urls {
        let err = connect(url)
            .await
            .expect_err("connecting to port 1 must fail");
        assert!(
            matches!(&err, shardfold::Error::Store { backend: b, .. } if *b == backend),
            "{err}"
        );
        assert!(!format!("{err} {err:?}").contains("hunter2"), "{err:?}");
    }
}

/// The full libtest name of test `f` declared in module `module_path` (as `module_path!()`
/// gives it, the crate's name first): what `--exact` needs to re-run that one test in a child
/// process of this binary.
pub fn test_name(module_path: &str, f: &str) -> String {
    match module_path.split_once("::") {
        Some((_crate, module)) => format!("{module}::{f}"),
        None => f.to_owned(),
    }
}

/// Starts race worker `worker` in a child process running test `child_test` (its full name,
/// see [`test_name`]) of this binary.
pub fn spawn_child(child_test: &str, url: &str, metric: &str, shards: u32, worker: u32) -> Child {
    let exe = std::env::current_exe().expect("current_exe");
    Command::new(exe)
        .args([child_test, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, format!("{url}\t{metric}\t{shards}\t{worker}"))
        .spawn()
        .expect("spawn child test process")
}

/// In a child: (url, metric, shards, worker) from [`CHILD_ENV`], or `None` in a normal run.
pub fn child_args() -> Option<(String, String, u32, u32)> {
    let v = std::env::var(CHILD_ENV).ok()?;
    let parts: Vec<&str> = v.split('\t').collect();
    let [url, metric, shards, worker] = parts[..] else {
        panic!("bad {CHILD_ENV}")
    };
    Some((
        url.into(),
        metric.into(),
        shards.parse().ok()?,
        worker.parse().ok()?,
    ))
}

/// The tests every server backend runs. `$name` tags keys; `$var`/`$default` give the URL.
#[macro_export]
macro_rules! backend_tests {
    ($name:literal, $var:literal, $default:expr) => {
        backend_tests!($name, $var, $default, increments = (16, 1000));
    };
    // `increments`: the conformance suite's many-writers race, (writers, increments each):
    // lighter for HTTP emulators serving about a hundred requests a second
    ($name:literal, $var:literal, $default:expr, increments = ($writers:expr, $each:expr)) => {
        backend_tests!(
            $name,
            $var,
            $default,
            increments = ($writers, $each),
            series_race = false
        );

        /// The bucketed layout: 16 tasks here and 16 in 4 OS processes, redeliveries up to an
        /// hour later: exact per window, nothing late.
        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn series_writers_tasks_and_processes_fold_exactly_once() {
            let metric = suite::unique_prefix(concat!($name, "-series"));
            store_common::series::series_race(
                &backend_url(),
                &metric,
                &store_common::test_name(module_path!(), "series_child"),
            )
            .await;
        }

        /// Not a test of its own: the body of a child process of the series race.
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn series_child() {
            store_common::series::series_child().await;
        }
    };
    // without the 32-writer series race (moto: about 2 000 requests of the layout take it
    // over five minutes; the series layout's other checks still run)
    (
        $name:literal,
        $var:literal,
        $default:expr,
        increments = ($writers:expr, $each:expr),
        series_race = false
    ) => {
        use shardfold::store::conformance::{self as suite, race};

        fn backend_url() -> String {
            store_common::url($var, &$default)
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn conformance_suite() {
            let Some(store) = store_common::store_or_skip(&backend_url()).await else {
                return;
            };
            suite::check_store_with(store, &suite::unique_prefix($name), $writers, $each).await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn write_applied_reply_lost_neither_loses_nor_doubles() {
            let Some(store) = store_common::store_or_skip(&backend_url()).await else {
                return;
            };
            race::lost_reply(store, &suite::unique_prefix($name)).await;
        }

        /// 8 tasks here plus 4 OS processes fold overlapping batches with duplicates into one
        /// metric (K = 4): exact count and sum.
        /// The real dedup layer through the fold loop: a windowed metric with non-default
        /// parameters, four concurrent writers, redeliveries — exact per-window results.
        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn windowed_metric_end_to_end() {
            let Some(store) = store_common::store_or_skip(&backend_url()).await else {
                return;
            };
            store_common::windowed_end_to_end(store, &suite::unique_prefix($name)).await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn fold_race_tasks_and_processes() {
            let url = backend_url();
            let Some(store) = store_common::store_or_skip(&url).await else {
                return;
            };
            let metric = suite::unique_prefix($name);
            let child = store_common::test_name(module_path!(), "race_child");
            let children: Vec<_> = (8..12)
                .map(|w| store_common::spawn_child(&child, &url, &metric, 4, w))
                .collect();
            race::race_tasks(&store, &metric, 4, 0, 8).await;
            for mut c in children {
                let status = tokio::task::spawn_blocking(move || c.wait())
                    .await
                    .unwrap()
                    .unwrap();
                assert!(status.success(), "race child failed: {status}");
            }
            race::check_race(store, &metric, 4, 12).await;
        }

        /// Sealed and expired buckets are deleted from the store itself.
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn series_expired_keys_are_gone() {
            let metric = suite::unique_prefix(concat!($name, "-expiry"));
            store_common::series::series_expiry(&backend_url(), &metric).await;
        }

        /// Not a test of its own: the body of a child process of the race above.
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn race_child() {
            let Some((url, metric, shards, worker)) = store_common::child_args() else {
                return;
            };
            let store = shardfold::store::connect(&url)
                .await
                .expect("child connect");
            race::race_worker(store, &metric, shards, worker).await;
        }
    };
}

/// Runs a server's own command-line client; `None` (with a notice) when it is not installed
/// and services are not required.
pub fn run_client(program: &str, args: &[&str]) -> Option<Vec<u8>> {
    match Command::new(program).args(args).output() {
        Ok(out) => {
            assert!(
                out.status.success(),
                "{program} failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            Some(out.stdout)
        }
        Err(e) if require_services() => panic!("{program} required but not runnable: {e}"),
        Err(e) => {
            eprintln!("SKIPPED: {program} not runnable ({e})");
            None
        }
    }
}

/// Folds 500 events into a fresh metric (K = 4) and returns it with the expected state.
pub async fn folded_metric(
    store: Arc<dyn KvStore>,
    name: &str,
) -> (
    shardfold::store::Metric<shardfold::store::conformance::IdSum>,
    shardfold::store::conformance::IdSum,
) {
    use shardfold::store::conformance::{TestEvent, race};
    let m = shardfold::store::Metric::open(store, name, 4)
        .await
        .expect("open");
    let events: Vec<TestEvent> = (0..500).map(|i| TestEvent::new(i % 450)).collect();
    assert!(m.fold(&events).await.expect("fold").is_complete());
    (m, race::oracle(&events))
}

/// Four tasks fold overlapping batches (every event delivered twice, once by two different
/// tasks) of a `Windowed<(Count, Sum)>` metric (W = 1 s, K = 4) through the fold loop; the
/// stored result equals an exact per-window model of the distinct events, and the duplicate
/// counter equals the redeliveries.
pub async fn windowed_end_to_end(store: Arc<dyn KvStore>, prefix: &str) {
    use std::collections::BTreeMap;

    use shardfold::store::Metric;
    use shardfold::{Count, Event, Sum, Windowed};

    type W = Windowed<(Count, Sum)>;
    let template = W::new(1_000, 3_600_000, 86_400_000);
    let metric = Arc::new(
        Metric::open_with(store, &format!("{prefix}-win"), 4, template)
            .await
            .expect("open"),
    );
    // 1200 distinct events over 12 s of event time; value is a function of the ID
    let events: Vec<Event<i64>> = (0..1200u64)
        .map(|i| Event::new(i, 1_700_000_000_000 + i * 10, (i as i64 * 37) % 1001 - 500))
        .collect();
    let mut model: BTreeMap<u64, (u64, i128)> = BTreeMap::new();
    for e in &events {
        let w = model.entry(e.time_ms - e.time_ms % 1_000).or_default();
        w.0 += 1;
        w.1 += i128::from(e.value);
    }
    // task t folds batches of 50 from two overlapping slices: every event goes through two tasks
    let redelivered = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let tasks: Vec<_> = (0..4usize)
        .map(|t| {
            let m = Arc::clone(&metric);
            let redelivered = Arc::clone(&redelivered);
            let mut mine: Vec<Event<i64>> = events[t * 300..(t + 1) * 300].to_vec();
            mine.extend_from_slice(&events[((t + 1) % 4) * 300..((t + 1) % 4 + 1) * 300]);
            tokio::spawn(async move {
                for batch in mine.chunks(50) {
                    // events that come back Failed (an HTTP emulator on a loaded machine can
                    // pass the fold's deadline) were not applied: redelivered, as a queue would
                    let mut pending: Vec<Event<i64>> = batch.to_vec();
                    for attempt in 0.. {
                        let report = m.fold(&pending).await.expect("fold");
                        let failed: Vec<usize> = report.failed().collect();
                        if failed.is_empty() {
                            break;
                        }
                        assert!(attempt < 10, "{:?}", report.outcomes);
                        redelivered
                            .fetch_add(failed.len() as u64, std::sync::atomic::Ordering::Relaxed);
                        pending = failed.into_iter().map(|i| pending[i].clone()).collect();
                    }
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.expect("task");
    }
    let state = metric.query().await.expect("query");
    let got: BTreeMap<u64, (u64, i128)> = state
        .windows()
        .map(|(start, (count, sum))| (start, (count.get(), sum.get())))
        .collect();
    assert_eq!(got, model, "per-window count and sum");
    // every event was delivered twice; a Failed write may still have landed (its reply was
    // past the deadline), and then its redelivery is a duplicate too: at most one per redelivery
    let redelivered = redelivered.load(std::sync::atomic::Ordering::Relaxed);
    let dups = state.duplicates();
    assert!(
        (1200..=1200 + redelivered).contains(&dups),
        "{dups} duplicates: 2 400 deliveries and {redelivered} redeliveries of 1 200 events"
    );
    assert_eq!(state.late(), 0);
}
