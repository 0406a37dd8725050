//! Store errors keep their kind: transient ones (connection, timeout, busy) are retried by the
//! fold loops, permanent ones (a key of another type, a value the server refuses, auth) fail
//! the shard's events at once — on the in-memory store through a wrapper that injects either,
//! and on the real servers (Redis `WRONGTYPE`, a PostgreSQL check constraint).
#![cfg(all(feature = "testkit", feature = "store"))]

#[cfg(any(feature = "redis", feature = "postgres"))]
use crate::store_common;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::series_common;
use shardfold::store::conformance::{IdSum, TestEvent, race};
use shardfold::store::{
    EventOutcome, KvStore, ManualClock, MemoryStore, Metric, StoreFuture, Version, WriteOutcome,
};
use shardfold::{Error, StoreErrorKind};

/// Fails the first `failures` calls (reads, creates, updates) on keys `fails` selects with an
/// `Error::Store` of `kind`; everything else goes to an in-memory store.
struct FlakyStore {
    inner: MemoryStore,
    kind: StoreErrorKind,
    fails: fn(&[u8]) -> bool,
    failures: u32,
    failed: AtomicU32,
    /// The distinct keys an error was injected for.
    keys: Mutex<BTreeSet<Vec<u8>>>,
}

impl FlakyStore {
    fn new(kind: StoreErrorKind, failures: u32, fails: fn(&[u8]) -> bool) -> Arc<Self> {
        Arc::new(FlakyStore {
            inner: MemoryStore::new(),
            kind,
            fails,
            failures,
            failed: AtomicU32::new(0),
            keys: Mutex::default(),
        })
    }

    fn inject(&self, key: &[u8]) -> Result<(), Error> {
        if !(self.fails)(key) {
            return Ok(());
        }
        let n = self.failed.fetch_add(1, Ordering::SeqCst);
        if n >= self.failures {
            self.failed.fetch_sub(1, Ordering::SeqCst);
            return Ok(());
        }
        self.keys.lock().unwrap().insert(key.to_vec());
        Err(Error::Store {
            backend: "flaky",
            kind: self.kind,
            message: format!("injected {}", self.kind),
            source: None,
        })
    }

    fn failed(&self) -> u32 {
        self.failed.load(Ordering::SeqCst)
    }
}

impl KvStore for FlakyStore {
    fn backend(&self) -> &'static str {
        "flaky"
    }

    fn read<'a>(&'a self, key: &'a [u8]) -> StoreFuture<'a, Option<(Vec<u8>, Version)>> {
        match self.inject(key) {
            Ok(()) => self.inner.read(key),
            Err(e) => Box::pin(async move { Err(e) }),
        }
    }

    fn create<'a>(&'a self, key: &'a [u8], value: &'a [u8]) -> StoreFuture<'a, WriteOutcome> {
        match self.inject(key) {
            Ok(()) => self.inner.create(key, value),
            Err(e) => Box::pin(async move { Err(e) }),
        }
    }

    fn update<'a>(
        &'a self,
        key: &'a [u8],
        value: &'a [u8],
        expected: Version,
    ) -> StoreFuture<'a, WriteOutcome> {
        match self.inject(key) {
            Ok(()) => self.inner.update(key, value, expected),
            Err(e) => Box::pin(async move { Err(e) }),
        }
    }

    fn list<'a>(&'a self, prefix: &'a [u8]) -> StoreFuture<'a, Vec<Vec<u8>>> {
        self.inner.list(prefix)
    }

    fn delete<'a>(&'a self, key: &'a [u8]) -> StoreFuture<'a, bool> {
        self.inner.delete(key)
    }
}

fn shard_key(key: &[u8]) -> bool {
    key.ends_with(b"/0")
}

fn record_key(key: &[u8]) -> bool {
    key.windows(3).any(|w| w == b"/r/")
}

/// Every outcome failed with a store error of `kind`.
fn all_failed_with(outcomes: &[EventOutcome], kind: StoreErrorKind) {
    assert!(!outcomes.is_empty());
    for o in outcomes {
        match o {
            EventOutcome::Failed(Error::Store { kind: k, .. }) if *k == kind => {}
            other => panic!("expected a {kind} store error, got {other:?}"),
        }
    }
}

#[test]
fn kinds_tell_transient_from_permanent() {
    use StoreErrorKind::*;
    for kind in [Connection, Timeout, Busy, Other] {
        assert!(kind.is_transient(), "{kind}");
    }
    for kind in [Auth, Rejected, Config] {
        assert!(!kind.is_transient(), "{kind}");
    }
    let e = Error::Store {
        backend: "redis",
        kind: Rejected,
        message: "WRONGTYPE".into(),
        source: None,
    };
    assert!(!e.is_transient());
    assert_eq!(e.to_string(), "redis store error (rejected): WRONGTYPE");
    assert!(
        Error::Contended {
            metric: "m".into(),
            shard: 0,
            attempts: 3
        }
        .is_transient()
    );
    assert!(!Error::BadMagic.is_transient());
}

/// Three connection errors on the shard's key: the fold retries them and completes.
#[tokio::test]
async fn metric_fold_retries_transient_errors() {
    let store = FlakyStore::new(StoreErrorKind::Connection, 3, shard_key);
    let m = Metric::<IdSum>::open(store.clone(), "m", 1).await.unwrap();
    let events: Vec<TestEvent> = (0..20).map(TestEvent::new).collect();
    let report = m.fold(&events).await.unwrap();
    assert!(report.is_complete(), "{:?}", report.outcomes);
    assert_eq!(store.failed(), 3);
    assert_eq!(m.query().await.unwrap(), race::oracle(&events));
}

/// A permanent error on the shard's key: one attempt, the events fail at once with its kind.
#[tokio::test]
async fn metric_fold_fails_fast_on_a_permanent_error() {
    for kind in [StoreErrorKind::Rejected, StoreErrorKind::Auth] {
        let store = FlakyStore::new(kind, u32::MAX, shard_key);
        let m = Metric::<IdSum>::open(store.clone(), "m", 1).await.unwrap();
        let events: Vec<TestEvent> = (0..20).map(TestEvent::new).collect();
        let start = Instant::now();
        let report = m.fold(&events).await.unwrap();
        assert!(start.elapsed() < Duration::from_millis(200));
        all_failed_with(&report.outcomes, kind);
        assert_eq!(store.failed(), 1, "{kind}: retried");
    }
}

/// Series appends: transient errors are retried, a permanent one fails the events at once.
#[tokio::test]
async fn series_append_retries_only_transient_errors() {
    let clock = ManualClock::new(series_common::T0);
    let events = series_common::events(40, 10, 7);

    let store = FlakyStore::new(StoreErrorKind::Timeout, 2, record_key);
    let dyn_store: Arc<dyn KvStore> = store.clone();
    let series = series_common::open(&dyn_store, &clock, "s", 2).await;
    let report = series.fold(&events).await.unwrap();
    assert!(report.is_complete(), "{:?}", report.outcomes);
    assert_eq!(store.failed(), 2);

    let store = FlakyStore::new(StoreErrorKind::Rejected, u32::MAX, record_key);
    let dyn_store: Arc<dyn KvStore> = store.clone();
    let series = series_common::open(&dyn_store, &clock, "s", 2).await;
    let start = Instant::now();
    let report = series.fold(&events).await.unwrap();
    assert!(start.elapsed() < Duration::from_millis(200));
    all_failed_with(&report.outcomes, StoreErrorKind::Rejected);
    let keys = store.keys.lock().unwrap().len() as u32;
    assert_eq!(store.failed(), keys, "each failed append tried once");
}

/// Redis: a string where a shard's hash belongs is `WRONGTYPE`, a permanent error: the fold
/// fails in well under a second (it took all 16 attempts with backoff before), and the error
/// keeps the client's `RedisError` as its source.
#[cfg(feature = "redis")]
#[tokio::test]
async fn redis_wrong_type_fails_the_fold_fast() {
    let url = store_common::url("SHARDFOLD_REDIS_URL", "redis://127.0.0.1:6379");
    let Some(store) = store_common::store_or_skip(&url).await else {
        return;
    };
    let name = shardfold::store::conformance::unique_prefix("redis-wrongtype");
    let m = Metric::<IdSum>::open(store, &name, 1).await.unwrap();
    let key = String::from_utf8(m.shard_store_key(0)).unwrap();
    if store_common::run_client("redis-cli", &["-u", &url, "SET", &key, "not a hash"]).is_none() {
        return;
    }
    let events: Vec<TestEvent> = (0..20).map(TestEvent::new).collect();
    let start = Instant::now();
    let report = m.fold(&events).await.unwrap();
    let took = start.elapsed();
    all_failed_with(&report.outcomes, StoreErrorKind::Rejected);
    assert!(took < Duration::from_millis(500), "took {took:?}");
    let EventOutcome::Failed(Error::Store { source, .. }) = &report.outcomes[0] else {
        unreachable!()
    };
    let source = source.as_ref().expect("the client's error is kept");
    let redis_error = source
        .downcast_ref::<redis::RedisError>()
        .expect("a RedisError");
    assert_eq!(redis_error.code(), Some("WRONGTYPE"));
}

/// PostgreSQL: a table whose check constraint refuses the shard's key (SQLSTATE 23514, class
/// 23): the fold fails fast with a permanent `Rejected` error.
#[cfg(feature = "postgres")]
#[tokio::test]
async fn postgres_refused_value_fails_the_fold_fast() {
    let url = store_common::url(
        "SHARDFOLD_POSTGRES_URL",
        "postgres://postgres@127.0.0.1:5432/test",
    );
    if store_common::store_or_skip(&url).await.is_none() {
        return;
    }
    let schema = shardfold::store::conformance::unique_prefix("sf_check").replace('-', "_");
    let sql = format!(
        "CREATE SCHEMA {schema}; CREATE TABLE {schema}.shardfold_kv (key BYTEA PRIMARY KEY, \
         version BIGINT NOT NULL, value BYTEA NOT NULL, \
         CHECK (substring(key from length(key) - 1) <> '\\x2f30'::bytea))"
    );
    if store_common::run_client("psql", &[&url, "-q", "-c", &sql]).is_none() {
        return;
    }
    let sep = if url.contains('?') { '&' } else { '?' };
    let scoped = format!("{url}{sep}options=-c%20search_path%3D{schema}");
    let store = shardfold::store::connect(&scoped).await.unwrap();
    let m = Metric::<IdSum>::open(store, "m", 1).await.unwrap();
    let events: Vec<TestEvent> = (0..20).map(TestEvent::new).collect();
    let start = Instant::now();
    let report = m.fold(&events).await.unwrap();
    let took = start.elapsed();
    let drop = format!("DROP SCHEMA {schema} CASCADE");
    store_common::run_client("psql", &[&url, "-q", "-c", &drop]);
    all_failed_with(&report.outcomes, StoreErrorKind::Rejected);
    assert!(took < Duration::from_millis(500), "took {took:?}");
    let EventOutcome::Failed(e) = &report.outcomes[0] else {
        unreachable!()
    };
    assert!(e.to_string().contains("23514"), "{e}");
}
