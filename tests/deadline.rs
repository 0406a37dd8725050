//! A fold gives up in time (issue 11, item 3): against a store that stalls, the events not
//! applied by the deadline come back `Failed` with `Error::DeadlineExceeded` — within the
//! deadline, not after the retries — and a redelivery once the store recovers folds them once.
#![cfg(feature = "store")]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use shardfold::store::{
    EventOutcome, KvStore, ManualClock, MemoryStore, Metric, RetryPolicy, Series, SeriesConfig,
    StoreFuture, Version, WriteOutcome,
};
use shardfold::{Deduped, Error, Event, Outcome, Sum};

/// A store whose writes hang (for an hour) while `stalled` is set: a frozen server.
struct Stalling {
    inner: MemoryStore,
    stalled: AtomicBool,
}

impl Stalling {
    fn stall<'a, T: Send + 'a>(&'a self, f: StoreFuture<'a, T>) -> StoreFuture<'a, T> {
        Box::pin(async move {
            if self.stalled.load(Ordering::SeqCst) {
                tokio::time::sleep(Duration::from_secs(3600)).await;
            }
            f.await
        })
    }
}

impl KvStore for Stalling {
    fn backend(&self) -> &'static str {
        "stalling"
    }
    fn read<'a>(&'a self, key: &'a [u8]) -> StoreFuture<'a, Option<(Vec<u8>, Version)>> {
        self.inner.read(key)
    }
    fn create<'a>(&'a self, key: &'a [u8], value: &'a [u8]) -> StoreFuture<'a, WriteOutcome> {
        self.stall(self.inner.create(key, value))
    }
    fn update<'a>(
        &'a self,
        key: &'a [u8],
        value: &'a [u8],
        expected: Version,
    ) -> StoreFuture<'a, WriteOutcome> {
        self.stall(self.inner.update(key, value, expected))
    }
    fn list<'a>(&'a self, prefix: &'a [u8]) -> StoreFuture<'a, Vec<Vec<u8>>> {
        self.inner.list(prefix)
    }
    fn delete<'a>(&'a self, key: &'a [u8]) -> StoreFuture<'a, bool> {
        self.stall(self.inner.delete(key))
    }
}

fn stalling() -> Arc<Stalling> {
    Arc::new(Stalling {
        inner: MemoryStore::new(),
        stalled: AtomicBool::new(false),
    })
}

fn policy(deadline: Duration) -> RetryPolicy {
    RetryPolicy {
        deadline,
        ..RetryPolicy::default()
    }
}

const T0: u64 = 1_800_000_000_000;

fn batch() -> Vec<Event<i64>> {
    (0..50u64).map(|i| Event::new(i, T0 + i, 2)).collect()
}

fn all_deadline_exceeded(outcomes: &[EventOutcome]) -> bool {
    outcomes
        .iter()
        .all(|o| matches!(o, EventOutcome::Failed(Error::DeadlineExceeded { .. })))
}

#[tokio::test]
async fn metric_fold_against_a_stalled_store_fails_within_its_deadline() {
    let store = stalling();
    let metric = Metric::builder(store.clone(), "m")
        .shards(4)
        .retry(policy(Duration::from_millis(300)))
        .template(Deduped::new(3_600_000, 10_000, Sum::default()))
        .open()
        .await
        .unwrap();
    store.stalled.store(true, Ordering::SeqCst);
    let t = Instant::now();
    let report = metric.fold(&batch()).await.unwrap();
    let took = t.elapsed();
    assert!(all_deadline_exceeded(&report.outcomes), "{report:?}");
    assert!(
        took >= Duration::from_millis(300) && took < Duration::from_secs(2),
        "{took:?}"
    );
    assert!(
        report.outcomes[0]
            .to_string_lossy()
            .contains("fold deadline of")
    );

    // the handler's own (shorter) deadline wins
    let t = Instant::now();
    let report = metric
        .fold_by(&batch(), Instant::now() + Duration::from_millis(50))
        .await
        .unwrap();
    assert!(all_deadline_exceeded(&report.outcomes));
    assert!(
        t.elapsed() < Duration::from_millis(250),
        "{:?}",
        t.elapsed()
    );

    // the server comes back: the redelivery folds every event once
    store.stalled.store(false, Ordering::SeqCst);
    let report = metric.fold(&batch()).await.unwrap();
    assert_eq!(report.count_outcome(Outcome::Folded), 50);
    assert_eq!(metric.query().await.unwrap().aggregate().get(), 100);
}

#[tokio::test]
async fn series_fold_against_a_stalled_store_fails_within_its_deadline() {
    let store = stalling();
    let config = SeriesConfig::new(Sum::default())
        .retry(policy(Duration::from_millis(300)))
        .clock(Arc::new(ManualClock::new(T0 + 60_000)));
    let series: Series<Sum, i64> = Series::open(store.clone(), "s", config).await.unwrap();
    store.stalled.store(true, Ordering::SeqCst);
    let t = Instant::now();
    let report = series.fold(&batch()).await.unwrap();
    let took = t.elapsed();
    assert!(all_deadline_exceeded(&report.outcomes), "{report:?}");
    assert!(took < Duration::from_secs(2), "{took:?}");

    store.stalled.store(false, Ordering::SeqCst);
    assert!(series.fold(&batch()).await.unwrap().is_complete());
    let view = series.query_range(T0, T0 + 60_000).await.unwrap();
    assert_eq!(view.total().unwrap().get(), 100);
}

trait Lossy {
    fn to_string_lossy(&self) -> String;
}

impl Lossy for EventOutcome {
    fn to_string_lossy(&self) -> String {
        match self {
            EventOutcome::Failed(e) => e.to_string(),
            other => format!("{other:?}"),
        }
    }
}
