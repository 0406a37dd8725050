//! Store clients heal: through a TCP proxy that cuts every connection on demand (mid-use and
//! at idle) or refuses new ones for a while, and after the server itself closes an idle
//! connection, later calls on the same store succeed — a call in flight may fail with a
//! transient `Error::Store`, the next one succeeds — and what is stored is exact: every event
//! folded once, a raw counter within the increments whose outcome was unknown.
//!
//! Runs against the servers `.ci/services.sh` starts (Redis, PostgreSQL, NATS); skipped with a
//! notice when one is absent, unless `SHARDFOLD_REQUIRE_SERVICES=1`.
#![cfg(all(
    feature = "testkit",
    any(feature = "redis", feature = "postgres", feature = "nats")
))]

#[path = "store_common/proxy.rs"]
mod proxy;
use crate::store_common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use proxy::Proxy;
use shardfold::store::conformance::{self as suite, IdSum, TestEvent, race};
use shardfold::store::{KvStore, Metric, WriteOutcome, connect};
use shardfold::{Count, Error, Insert, codec};

/// `url` with its `HOST:PORT` replaced by `addr`, and the `HOST:PORT` it had.
fn via(url: &str, addr: &str) -> (String, String) {
    let (scheme, rest) = url.split_once("://").expect("scheme");
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let (user, host) = match authority.rsplit_once('@') {
        Some((user, host)) => (format!("{user}@"), host),
        None => (String::new(), authority),
    };
    (host.to_owned(), format!("{scheme}://{user}{addr}{tail}"))
}

/// A proxy in front of the server of `url` and a store connected through it; `None` (with a
/// notice) when the server is absent and services are not required.
async fn proxied(url: &str) -> Option<(Proxy, Arc<dyn KvStore>)> {
    store_common::store_or_skip(url).await?;
    let (upstream, _) = via(url, "");
    let proxy = Proxy::start(&upstream).await;
    let (_, through) = via(url, &proxy.addr());
    let store = connect(&through).await.expect("connect through the proxy");
    Some((proxy, store))
}

fn assert_transient(e: &Error) {
    assert!(matches!(e, Error::Store { .. }), "not a store error: {e:?}");
}

/// A read of `key` succeeds, after at most one transient failure (the call that found the
/// connection cut).
async fn read_heals(store: &dyn KvStore, key: &[u8]) {
    if let Err(e) = store.read(key).await {
        assert_transient(&e);
        store
            .read(key)
            .await
            .unwrap_or_else(|e| panic!("{}: second call after a cut: {e}", store.backend()));
    }
}

/// Folds `events` until none fails (failures must be store errors), at most 10 rounds.
async fn fold_all(m: &Metric<IdSum>, events: &[TestEvent]) {
    let mut pending = events.to_vec();
    for _ in 0..10 {
        let report = m.fold(&pending).await.expect("fold");
        let failed: Vec<TestEvent> = report.failed().map(|i| pending[i]).collect();
        for o in &report.outcomes {
            if let shardfold::store::EventOutcome::Failed(e) = o {
                assert_transient(e);
            }
        }
        if failed.is_empty() {
            return;
        }
        pending = failed;
    }
    panic!("{} events still failing after 10 rounds", pending.len());
}

/// One increment of the `Count` at `key`: `Ok(true)` written, `Ok(false)` conflict, `Err`
/// when the write's outcome is unknown (it may have landed).
async fn increment(store: &dyn KvStore, key: &[u8]) -> Result<bool, ()> {
    let Ok(current) = store.read(key).await else {
        return Ok(false); // a failed read writes nothing: just try again
    };
    let mut count = match &current {
        Some((bytes, _)) => codec::decode::<Count>(bytes).expect("decode counter"),
        None => Count::default(),
    };
    count.insert(()).expect("insert");
    let bytes = codec::encode(&count);
    let out = match current {
        Some((_, v)) => store.update(key, &bytes, v).await,
        None => store.create(key, &bytes).await,
    };
    match out {
        Ok(WriteOutcome::Written(_)) => Ok(true),
        Ok(WriteOutcome::Conflict) => Ok(false),
        Err(e) => {
            assert_transient(&e);
            Err(())
        }
    }
}

/// Cuts every connection through `proxy` every `every`, `times` times, then clears `running`.
fn cutter(proxy: &Arc<Proxy>, every: Duration, times: u32, running: &Arc<AtomicBool>) {
    let (proxy, running) = (Arc::clone(proxy), Arc::clone(running));
    tokio::spawn(async move {
        for _ in 0..times {
            tokio::time::sleep(every).await;
            proxy.cut_all();
        }
        running.store(false, Ordering::SeqCst);
    });
}

/// The whole scenario against one backend, under keys starting with `name`.
async fn heals_after_cuts(url: &str, name: &str) {
    let Some((proxy, store)) = proxied(url).await else {
        return;
    };
    let proxy = Arc::new(proxy);
    let b = store.backend();
    let metric_name = suite::unique_prefix(name);
    let m = Arc::new(
        Metric::<IdSum>::open(Arc::clone(&store), &metric_name, 4)
            .await
            .expect("open"),
    );
    let events: Vec<TestEvent> = (0..2400).map(|i| TestEvent::new(i % 2000)).collect();

    // 1. at idle: cut, then a raw call heals within two calls and a fold completes
    fold_all(&m, &events[..100]).await;
    assert!(proxy.cut_all() >= 1, "{b}: no connection open to cut");
    tokio::time::sleep(Duration::from_millis(100)).await;
    read_heals(&*store, &m.shard_store_key(0)).await;
    proxy.cut_all();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let report = m
        .fold(&events[100..200])
        .await
        .expect("fold after an idle cut");
    let failed: Vec<_> = report.failed().map(|i| &report.outcomes[i]).collect();
    assert!(failed.is_empty(), "{b}: fold after an idle cut: {failed:?}");

    // 2. mid-use: 4 tasks fold while every connection is cut every 40 ms, 12 times
    let running = Arc::new(AtomicBool::new(true));
    let cuts_before = proxy.cut();
    cutter(&proxy, Duration::from_millis(40), 12, &running);
    let tasks: Vec<_> = (0..4usize)
        .map(|t| {
            let (m, running) = (Arc::clone(&m), Arc::clone(&running));
            let mine: Vec<TestEvent> = events[200..].iter().skip(t).step_by(4).copied().collect();
            tokio::spawn(async move {
                let mut failed = Vec::new();
                let mut batches = mine.chunks(20).cycle().take(1000);
                while running.load(Ordering::SeqCst) {
                    let Some(batch) = batches.next() else { break };
                    let report = m.fold(batch).await.expect("fold");
                    failed.extend(report.failed().map(|i| batch[i]));
                }
                for batch in mine.chunks(50) {
                    fold_all(&m, batch).await; // the redelivery of every event
                }
                failed.len()
            })
        })
        .collect();
    for t in tasks {
        t.await.expect("fold task");
    }
    assert!(
        proxy.cut() > cuts_before,
        "{b}: no connection was open at a cut"
    );

    // 3. refused for a while: calls fail with store errors, then heal once accepted again
    proxy.refuse(true);
    proxy.cut_all();
    let down = store.read(&m.shard_store_key(1)).await;
    if let Err(e) = &down {
        assert_transient(e);
    }
    proxy.refuse(false);
    let start = Instant::now();
    while let Err(e) = store.read(&m.shard_store_key(1)).await {
        assert_transient(&e);
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "{b}: still failing 30 s after the server is reachable again: {e}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    fold_all(&m, &events[..50]).await;
    assert_eq!(
        m.query().await.expect("query"),
        race::oracle(&events),
        "{b}: every event folded exactly once"
    );

    // 4. a raw counter: 4 tasks increment through cuts; the stored count is at least the
    //    increments known written and at most those plus the unknown outcomes
    let key = format!("{metric_name}/raw-counter").into_bytes();
    let running = Arc::new(AtomicBool::new(true));
    cutter(&proxy, Duration::from_millis(30), 10, &running);
    let tasks: Vec<_> = (0..4)
        .map(|_| {
            let (store, key, running) = (Arc::clone(&store), key.clone(), Arc::clone(&running));
            tokio::spawn(async move {
                let (mut written, mut unknown) = (0u64, 0u64);
                while running.load(Ordering::SeqCst) || written < 20 {
                    match increment(&*store, &key).await {
                        Ok(true) => written += 1,
                        Ok(false) => tokio::time::sleep(Duration::from_millis(1)).await,
                        Err(()) => unknown += 1,
                    }
                }
                (written, unknown)
            })
        })
        .collect();
    let (mut written, mut unknown) = (0, 0);
    for t in tasks {
        let (w, u) = t.await.expect("increment task");
        written += w;
        unknown += u;
    }
    let (bytes, _) = loop {
        match store.read(&key).await {
            Ok(found) => break found.expect("counter stored"),
            Err(e) => assert_transient(&e),
        }
    };
    let total = codec::decode::<Count>(&bytes).expect("counter").get();
    assert!(
        (written..=written + unknown).contains(&total),
        "{b}: counter {total}, {written} written, {unknown} unknown"
    );
    eprintln!(
        "{b}: {} connections accepted, {} cut; counter {total} ({written} written, {unknown} unknown)",
        proxy.accepted(),
        proxy.cut()
    );
}

#[cfg(feature = "redis")]
mod redis {
    use super::*;

    fn url() -> String {
        store_common::url("SHARDFOLD_REDIS_URL", "redis://127.0.0.1:6379")
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn redis_heals_after_cut_connections() {
        heals_after_cuts(&url(), "redis-cut").await;
    }

    /// The server closes the store's connection (`CLIENT KILL ADDR`, as its idle `timeout`
    /// would): the next call heals within two calls, and a fold completes.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn redis_heals_after_the_server_closes_the_connection() {
        let Some((proxy, store)) = proxied(&url()).await else {
            return;
        };
        let m = Metric::<IdSum>::open(Arc::clone(&store), &suite::unique_prefix("redis-kill"), 2)
            .await
            .expect("open");
        let events: Vec<TestEvent> = (0..200).map(TestEvent::new).collect();
        fold_all(&m, &events[..100]).await;
        for addr in proxy.upstream_addrs() {
            let addr = addr.to_string();
            let args = ["-u", &url(), "CLIENT", "KILL", "ADDR", &addr];
            if store_common::run_client("redis-cli", &args).is_none() {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        read_heals(&*store, &m.shard_store_key(0)).await;
        fold_all(&m, &events[100..]).await;
        assert_eq!(m.query().await.expect("query"), race::oracle(&events));
    }
}

#[cfg(feature = "postgres")]
mod postgres {
    use super::*;

    fn url() -> String {
        store_common::url(
            "SHARDFOLD_POSTGRES_URL",
            "postgres://postgres@127.0.0.1:5432/test",
        )
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn postgres_heals_after_cut_connections() {
        heals_after_cuts(&url(), "postgres-cut").await;
    }

    /// The server ends the idle session (`idle_session_timeout` = 1 s, set for this session
    /// only): after 1.5 s idle, the next call succeeds at once, and so does a fold.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres_heals_after_idle_session_timeout() {
        let base = url();
        let sep = if base.contains('?') { '&' } else { '?' };
        let idle = format!("{base}{sep}options=-c%20idle_session_timeout%3D1000");
        let Some(store) = store_common::store_or_skip(&idle).await else {
            return;
        };
        let m = Metric::<IdSum>::open(Arc::clone(&store), &suite::unique_prefix("pg-idle"), 2)
            .await
            .expect("open");
        let events: Vec<TestEvent> = (0..200).map(TestEvent::new).collect();
        fold_all(&m, &events[..100]).await;
        tokio::time::sleep(Duration::from_millis(1500)).await;
        store
            .read(&m.shard_store_key(0))
            .await
            .expect("a call after the server ended the idle session");
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let report = m.fold(&events[100..]).await.expect("fold");
        assert!(report.is_complete(), "{:?}", report.outcomes);
        assert_eq!(m.query().await.expect("query"), race::oracle(&events));
    }
}

#[cfg(feature = "nats")]
mod nats {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn nats_heals_after_cut_connections() {
        let url = store_common::url("SHARDFOLD_NATS_URL", "nats://127.0.0.1:4222/shardfold_test");
        heals_after_cuts(&url, "nats-cut").await;
    }
}
