//! A damaged store is named, not hidden (issue 11, item 4): a value that does not decode fails
//! only its shard's events and its part of a query, with an error naming the metric and the key;
//! the readable queries answer from the rest and list what they left out; the documented repair
//! (delete the key, replay) restores the exact answer.
#![cfg(feature = "store")]

use std::sync::Arc;
use std::time::Duration;

use shardfold::store::{
    EventOutcome, KvStore, ManualClock, MemoryStore, Metric, Series, SeriesConfig,
};
use shardfold::{Deduped, Error, Event, Outcome, Sum};

const T0: u64 = 1_800_000_000_000;

fn events(range: std::ops::Range<u64>) -> Vec<Event<i64>> {
    range.map(|i| Event::new(i, T0 + i, 1)).collect()
}

/// Overwrites the value at `key` with bytes that are not an envelope.
async fn damage(store: &MemoryStore, key: &[u8]) {
    let (_, v) = store.read(key).await.unwrap().expect("key exists");
    store.update(key, b"not an envelope", v).await.unwrap();
}

fn damaged_key(e: &Error) -> Option<&str> {
    match e {
        Error::Damaged { key, .. } => Some(key),
        _ => None,
    }
}

#[tokio::test]
async fn metric_damaged_shard_is_named_and_left_out() {
    let store = Arc::new(MemoryStore::new());
    let metric = Metric::builder(store.clone(), "orders")
        .shards(4)
        .template(Deduped::new(3_600_000, 10_000, Sum::default()))
        .open()
        .await
        .unwrap();
    let batch = events(0..400);
    assert!(metric.fold(&batch).await.unwrap().is_complete());
    let bad_key = metric.shard_store_key(2);
    damage(&store, &bad_key).await;
    let name = String::from_utf8_lossy(&bad_key).into_owned();

    // the damaged shard's events fail naming it; the others fold
    let more = events(400..800);
    let report = metric.fold(&more).await.unwrap();
    let mut failed_on_shard_2 = 0;
    for (e, o) in more.iter().zip(&report.outcomes) {
        let shard = e.id.fingerprint() % 4;
        match o {
            EventOutcome::Failed(err) => {
                assert_eq!(shard, 2);
                assert_eq!(damaged_key(err), Some(name.as_str()), "{err}");
                assert!(err.to_string().contains("orders"), "{err}");
                failed_on_shard_2 += 1;
            }
            EventOutcome::Done(Outcome::Folded) => assert_ne!(shard, 2),
            other => panic!("{other:?}"),
        }
    }
    assert!(failed_on_shard_2 > 0);

    // query fails naming the key; the readable query answers from the other shards
    let err = metric.query().await.unwrap_err();
    assert_eq!(damaged_key(&err), Some(name.as_str()));
    let readable = metric.query_readable().await.unwrap();
    assert_eq!(readable.unreadable.len(), 1);
    let on_other_shards = batch
        .iter()
        .chain(&more)
        .filter(|e| e.id.fingerprint() % 4 != 2)
        .count() as i128;
    assert_eq!(readable.value.aggregate().get(), on_other_shards);

    // repair: delete the key (now reported as vanished, not taken for empty), accept the
    // loss, replay everything: exact again, nothing counted twice
    store.delete(&bad_key).await.unwrap();
    assert!(matches!(metric.query().await, Err(Error::Vanished { .. })));
    metric.accept_vanished(2).await.unwrap();
    metric.fold(&batch).await.unwrap();
    metric.fold(&more).await.unwrap();
    let q = metric.query().await.unwrap();
    assert_eq!(q.aggregate().get(), 800);
}

#[tokio::test]
async fn series_damaged_bucket_is_named_and_left_out() {
    let store = Arc::new(MemoryStore::new());
    let clock = ManualClock::new(T0 + 600_000);
    let config = SeriesConfig::new(Sum::default())
        .window(Duration::from_secs(60))
        .compact_every(0)
        .clock(Arc::new(clock));
    let series: Series<Sum, i64> = Series::open(store.clone(), "m", config).await.unwrap();
    // 10 minutes, 100 events each; compact the first 5, leave records pending in the rest
    let all: Vec<Event<i64>> = (0..1000u64)
        .map(|i| Event::new(i, T0 + i * 600, 1))
        .collect();
    assert!(series.fold(&all).await.unwrap().is_complete());
    series.compact_range(T0, T0 + 300_000).await.unwrap();
    let keys = store.list(b"m/").await.unwrap();
    let key_of = |kind: &str| {
        keys.iter()
            .find(|k| String::from_utf8_lossy(k).contains(kind))
            .cloned()
            .unwrap()
    };
    let (base, record) = (key_of("/b/"), key_of("/r/"));
    damage(&store, &base).await;
    damage(&store, &record).await;

    let err = series.query_range(T0, T0 + 600_000).await.unwrap_err();
    assert!(damaged_key(&err).is_some(), "{err}");
    let readable = series.query_range_readable(T0, T0 + 600_000).await.unwrap();
    let mut named: Vec<String> = readable
        .unreadable
        .iter()
        .map(|e| damaged_key(e).unwrap().to_owned())
        .collect();
    named.sort();
    let mut want = vec![
        String::from_utf8_lossy(&base).into_owned(),
        String::from_utf8_lossy(&record).into_owned(),
    ];
    want.sort();
    assert_eq!(named, want);
    // two buckets of 100 events left out, eight answered exactly
    assert_eq!(readable.value.total().unwrap().get(), 800);

    // folds only append: not affected
    let later = [Event::new(5000u64, T0 + 1, 1)];
    assert_eq!(
        series.fold(&later).await.unwrap().outcomes[0],
        EventOutcome::Accepted
    );

    // repair: delete the damaged keys and replay those buckets' events
    store.delete(&record).await.unwrap();
    store.delete(&base).await.unwrap();
    let ids_of_base = String::from_utf8_lossy(&base)
        .replace("/b/", "/i/")
        .replace("/base", "/");
    for k in store.list(ids_of_base.as_bytes()).await.unwrap() {
        store.delete(&k).await.unwrap();
    }
    assert!(series.fold(&all).await.unwrap().is_complete());
    let view = series.query_range(T0, T0 + 600_000).await.unwrap();
    assert_eq!(view.total().unwrap().get(), 1001);
}

/// A shard key that vanished (flushed, evicted by a memory policy) is reported — by this handle
/// and by a fresh one in another process — never taken for an empty shard.
#[tokio::test]
async fn metric_vanished_shard_is_reported_not_taken_for_empty() {
    let store = Arc::new(MemoryStore::new());
    let open = || {
        Metric::builder(store.clone(), "clicks")
            .shards(4)
            .template(Deduped::new(3_600_000, 10_000, Sum::default()))
            .open()
    };
    let metric = open().await.unwrap();
    let batch = events(0..400);
    assert!(metric.fold(&batch).await.unwrap().is_complete());
    let gone = metric.shard_store_key(1);
    store.delete(&gone).await.unwrap();
    let name = String::from_utf8_lossy(&gone).into_owned();

    for handle in [&metric, &open().await.unwrap()] {
        // a redelivery of the batch: shard 1's events are refused, not folded a second time
        let report = handle.fold(&batch).await.unwrap();
        for (e, o) in batch.iter().zip(&report.outcomes) {
            match o {
                EventOutcome::Failed(Error::Vanished { key, metric }) => {
                    assert_eq!((key.as_str(), metric.as_str()), (name.as_str(), "clicks"));
                    assert_eq!(e.id.fingerprint() % 4, 1);
                }
                EventOutcome::Done(Outcome::Duplicate) => assert_ne!(e.id.fingerprint() % 4, 1),
                other => panic!("{other:?}"),
            }
        }
        assert!(matches!(handle.query().await, Err(Error::Vanished { .. })));
        let readable = handle.query_readable().await.unwrap();
        assert_eq!(readable.unreadable.len(), 1);
    }

    // acknowledged and replayed: exact
    metric.accept_vanished(1).await.unwrap();
    metric.fold(&batch).await.unwrap();
    assert_eq!(metric.query().await.unwrap().aggregate().get(), 400);
}
