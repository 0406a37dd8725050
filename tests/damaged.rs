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

    // repair: delete the damaged keys (the base is then reported as vanished, not taken for
    // empty), acknowledge the loss, and replay those buckets' events
    store.delete(&record).await.unwrap();
    store.delete(&base).await.unwrap();
    let ids_of_base = String::from_utf8_lossy(&base)
        .replace("/b/", "/i/")
        .replace("/base", "/");
    for k in store.list(ids_of_base.as_bytes()).await.unwrap() {
        store.delete(&k).await.unwrap();
    }
    assert!(matches!(
        series.query_range(T0, T0 + 600_000).await,
        Err(Error::Vanished { .. })
    ));
    assert_eq!(series.accept_vanished(T0, T0 + 600_000).await.unwrap(), 1);
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

/// A bucket base that vanished (flushed, evicted by a memory policy) is reported by queries
/// and compactions — by this handle and by a fresh one — never taken for an empty bucket (a
/// compaction that did would write a fresh base and forget the bucket's compacted events);
/// eviction is not mistaken for a loss; the loss is acknowledged, the bucket replayed, exact.
#[tokio::test]
async fn series_vanished_bucket_is_reported_not_taken_for_empty() {
    let store = Arc::new(MemoryStore::new());
    let clock = Arc::new(ManualClock::new(T0 + 600_000));
    let open = || {
        let config = SeriesConfig::new(Sum::default())
            .window(Duration::from_secs(60))
            .retention(Duration::from_secs(3_600))
            .compact_every(0)
            .clock(clock.clone());
        Series::<Sum, i64>::open(store.clone(), "m", config)
    };
    let series = open().await.unwrap();
    // ten one-minute buckets of 100 events each, all compacted
    let all: Vec<Event<i64>> = (0..1000u64)
        .map(|i| Event::new(i, T0 + i * 600, 1))
        .collect();
    assert!(series.fold(&all).await.unwrap().is_complete());
    series.compact_range(T0, T0 + 600_000).await.unwrap();
    let bases: Vec<Vec<u8>> = store
        .list(b"m/b/")
        .await
        .unwrap()
        .into_iter()
        .filter(|k| k.ends_with(b"/base"))
        .collect();
    assert_eq!(bases.len(), 10);
    let gone = bases[3].clone();
    let name = String::from_utf8_lossy(&gone).into_owned();
    store.delete(&gone).await.unwrap();
    let third: Vec<Event<i64>> = all[300..400].to_vec();

    for handle in [&series, &open().await.unwrap()] {
        match handle.query_range(T0, T0 + 600_000).await {
            Err(Error::Vanished { metric, key }) => {
                assert_eq!((metric.as_str(), key), ("m", name.clone()))
            }
            other => panic!("{other:?}"),
        }
        let readable = handle.query_range_readable(T0, T0 + 600_000).await.unwrap();
        assert_eq!(readable.unreadable.len(), 1);
        assert_eq!(readable.value.total().unwrap().get(), 900);
        // a redelivery of the lost bucket's events is appended, but no compaction folds it
        // into a fresh base: the bucket stays reported, nothing is silently re-counted
        assert!(handle.fold(&third).await.unwrap().is_complete());
        assert!(matches!(
            handle.compact_range(T0 + 180_000, T0 + 240_000).await,
            Err(Error::Vanished { .. })
        ));
        assert!(store.read(&gone).await.unwrap().is_none());
    }

    // acknowledged: the bucket is empty again, and the replay (already appended) is folded once
    assert_eq!(series.accept_vanished(T0, T0 + 600_000).await.unwrap(), 1);
    assert_eq!(series.accept_vanished(T0, T0 + 600_000).await.unwrap(), 0);
    series.compact_range(T0, T0 + 600_000).await.unwrap();
    let view = series.query_range(T0, T0 + 600_000).await.unwrap();
    assert_eq!(view.total().unwrap().get(), 1000);
    assert_eq!(view.tally().folded, 1000);

    // eviction deletes bases: not a loss, and the marks go with them
    clock.set(T0 + 600_000 + 4 * 3_600_000);
    let swept = series.maintain().await.unwrap();
    assert!(swept.evicted >= 10, "{swept:?}");
    let readable = series.query_range_readable(T0, T0 + 600_000).await.unwrap();
    assert!(readable.unreadable.is_empty(), "{:?}", readable.unreadable);
    assert_eq!(readable.value.window_count(), 0);
    assert!(store.list(b"m/b/").await.unwrap().is_empty());
    assert!(store.list(b"m/p/").await.unwrap().is_empty());
}
