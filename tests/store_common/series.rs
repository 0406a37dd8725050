//! The bucketed layout (`store::Series`) on a real backend: 32 stateless writers — tasks here
//! and in 4 OS processes — with redeliveries up to an hour later fold an exact answer with no
//! late event; expired keys are gone from the store.

use std::sync::Arc;

use shardfold::Outcome;
use shardfold::store::{EventOutcome, KvStore, ManualClock, Series, connect};

use crate::series_common::*;

/// Env var telling a re-invoked test binary which series writers to be.
pub const SERIES_CHILD_ENV: &str = "SHARDFOLD_SERIES_CHILD";

const WRITERS: usize = 32;
const SEED: u64 = 4242;

fn plan() -> (Vec<shardfold::Event<Val>>, Vec<Delivery>) {
    let evs = events(6_000, 60, SEED);
    let plan = deliveries(&evs, 100, 0.3, HOUR, SEED + 1);
    (evs, plan)
}

/// Writer `w` folds every 32nd delivery, in time order, each with its clock at the delivery
/// time, opening the series afresh each time (a stateless function instance).
pub async fn series_writer(store: Arc<dyn KvStore>, metric: &str, w: usize) {
    let (_, plan) = plan();
    let mut mine: Vec<&Delivery> = plan.iter().skip(w).step_by(WRITERS).collect();
    mine.sort_by_key(|d| d.at);
    for d in mine {
        let clock = ManualClock::new(d.at);
        let series: Series<Agg, Val> = Series::open(store.clone(), metric, config(&clock, 4))
            .await
            .expect("open");
        let report = series.fold(&d.events).await.expect("fold");
        assert!(report.is_complete(), "{:?}", report.outcomes);
        assert_eq!(
            report.count(&EventOutcome::Done(Outcome::Late)),
            0,
            "late within the horizon"
        );
    }
}

/// Writers 16..32 in 4 child processes, 0..16 as tasks here; then the answer is exact.
pub async fn series_race(url: &str, metric: &str, child_test: &str) {
    let Some(store) = super::store_or_skip(url).await else {
        return;
    };
    let exe = std::env::current_exe().expect("current_exe");
    let children: Vec<_> = (0..4)
        .map(|c| {
            std::process::Command::new(&exe)
                .args([child_test, "--exact", "--nocapture", "--test-threads=1"])
                .env(SERIES_CHILD_ENV, format!("{url}\t{metric}\t{}", 16 + 4 * c))
                .spawn()
                .expect("spawn child")
        })
        .collect();
    let tasks: Vec<_> = (0..16)
        .map(|w| {
            let (store, metric) = (store.clone(), metric.to_owned());
            tokio::spawn(async move { series_writer(store, &metric, w).await })
        })
        .collect();
    for t in tasks {
        t.await.expect("writer task");
    }
    for mut c in children {
        let status = tokio::task::spawn_blocking(move || c.wait())
            .await
            .expect("join")
            .expect("wait");
        assert!(status.success(), "series child failed: {status}");
    }
    let (evs, plan) = plan();
    let last = plan.iter().map(|d| d.at).max().unwrap_or(T0);
    let clock = ManualClock::new(last + MINUTE);
    let series = open(&store, &clock, metric, 4).await;
    let view = series.query().await.expect("query");
    assert_exact(&view, &evs);
    assert_eq!(view.tally().late, 0);
    assert_eq!(view.tally().folded, evs.len() as u64);
    // every extra delivery is counted once as a duplicate: by a compaction, or by the writer
    // when the same ID came twice in one batch
    let deliveries: usize = plan.iter().map(|d| d.events.len()).sum();
    let in_batch: usize = plan
        .iter()
        .map(|d| {
            let ids: std::collections::BTreeSet<_> = d.events.iter().map(|e| e.id).collect();
            d.events.len() - ids.len()
        })
        .sum();
    assert_eq!(
        view.tally().duplicates as usize,
        deliveries - evs.len() - in_batch,
        "duplicates counted once each"
    );
    series
        .compact_range(T0 - 2 * HOUR, last + HOUR)
        .await
        .expect("compact");
    let view = series.query().await.expect("query");
    assert_eq!(view.pending_records(), 0);
    assert_exact(&view, &evs);
}

/// The body of a child process of [`series_race`]: writers `first..first + 4`.
pub async fn series_child() {
    let Ok(v) = std::env::var(SERIES_CHILD_ENV) else {
        return;
    };
    let parts: Vec<&str> = v.split('\t').collect();
    let [url, metric, first] = parts[..] else {
        panic!("bad {SERIES_CHILD_ENV}")
    };
    let first: usize = first.parse().expect("writer number");
    let store = connect(url).await.expect("child connect");
    let tasks: Vec<_> = (first..first + 4)
        .map(|w| {
            let (store, metric) = (store.clone(), metric.to_owned());
            tokio::spawn(async move { series_writer(store, &metric, w).await })
        })
        .collect();
    for t in tasks {
        t.await.expect("child writer");
    }
}

/// After retention, every key of the series but its metadata and cursor is gone.
pub async fn series_expiry(url: &str, metric: &str) {
    let Some(store) = super::store_or_skip(url).await else {
        return;
    };
    let clock = ManualClock::new(T0);
    let series = open(&store, &clock, metric, 4).await;
    // four one-window buckets (small: on the HTTP emulators each bucket costs seconds)
    for batch in events(400, 4, 7).chunks(100) {
        assert!(series.fold(batch).await.expect("fold").is_complete());
    }
    let prefix = store.metric_key(metric, "");
    // the metadata and at least a key (a record or a base) per bucket
    let before = store.list(&prefix).await.expect("list").len();
    assert!(before > 4, "{before} keys");
    clock.advance(7 * HOUR);
    let sealed = maintain_all(&series).await;
    assert!(sealed.sealed >= 4, "{sealed:?}");
    assert_eq!(series.query().await.expect("query").tally().folded, 400);
    clock.advance(3 * 24 * HOUR);
    maintain_all(&series).await;
    let left: Vec<Vec<u8>> = store.list(&prefix).await.expect("list");
    let want: Vec<Vec<u8>> = ["cursor", "meta"]
        .iter()
        .map(|p| store.metric_key(metric, p))
        .collect();
    assert_eq!(left, want, "only the metadata and cursor remain");
}
