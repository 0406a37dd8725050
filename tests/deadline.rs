//! A fold gives up in time (issue 11, item 3): against a store that stalls, the events not
//! applied by the deadline come back `Failed` with `Error::DeadlineExceeded` — within the
//! deadline, not after the retries — and a redelivery once the store recovers folds them once.
#![cfg(all(feature = "store", feature = "testkit"))]

use std::sync::Arc;
use std::time::{Duration, Instant};

use shardfold::store::conformance::{FaultPlan, FaultStore};
use shardfold::store::{
    EventOutcome, ManualClock, MemoryStore, Metric, RetryPolicy, Series, SeriesConfig,
};
use shardfold::{Deduped, Error, Event, Outcome, Sum};

/// A frozen server: once enabled, every call stalls (for up to ~4 months, drawn per call; the
/// odds of one under a second are ~1e-7) before reaching the store. Built disabled.
fn stalling() -> Arc<FaultStore> {
    let plan = FaultPlan {
        stall: 1.0,
        stall_max: Duration::from_secs(10_000_000),
        ..FaultPlan::default()
    };
    let store = FaultStore::new(Arc::new(MemoryStore::new()), plan, 7);
    store.set_enabled(false);
    Arc::new(store)
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
    store.set_enabled(true);
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
    store.set_enabled(false);
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
    store.set_enabled(true);
    let t = Instant::now();
    let report = series.fold(&batch()).await.unwrap();
    let took = t.elapsed();
    assert!(all_deadline_exceeded(&report.outcomes), "{report:?}");
    assert!(took < Duration::from_secs(2), "{took:?}");

    store.set_enabled(false);
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
