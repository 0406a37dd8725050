//! The bucketed layout (`store::Series`) on the in-memory store: exactly once across many
//! writers and late redeliveries, clock safety, parameters fixed at creation, sealing and
//! eviction races, expiry, and the cost of a fold as a metric ages.
#![cfg(feature = "store")]

use crate::series_common;

use std::sync::Arc;
use std::time::Duration;

use series_common::*;
use shardfold::store::conformance::CountingStore;
use shardfold::store::{
    EventOutcome, KvStore, ManualClock, MemoryStore, Metric, Series, SeriesConfig,
};
use shardfold::testkit::SplitMix64;
use shardfold::{Distinct, Error, Event, Outcome, Stats, Zip};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thirty_two_writers_with_redeliveries_up_to_an_hour_later_fold_exactly_once() {
    let store: Arc<dyn KvStore> = Arc::new(MemoryStore::new());
    let clock = ManualClock::new(T0);
    let events = events(30_000, 60, 1);
    let plan = deliveries(&events, 100, 0.3, HOUR, 2);
    let report = run_writers(&store, &clock, "m", &plan, 32, 4).await;
    assert_eq!(
        report.late, 0,
        "no event may be late: every delivery is within the horizon"
    );
    assert_eq!(report.failed, 0);
    let series = open(&store, &clock, "m", 4).await;
    let view = series.query().await.unwrap();
    assert_exact(&view, &events);
    assert_eq!(view.tally().late, 0);
    assert_eq!(view.tally().folded, events.len() as u64);
    assert_eq!(
        view.tally().duplicates + report.in_batch_duplicates,
        (report.deliveries - events.len()) as u64,
        "every extra delivery is counted once as a duplicate"
    );
    // compacting everything changes no answer
    series
        .compact_range(T0 - 2 * HOUR, T0 + 2 * HOUR)
        .await
        .unwrap();
    let compacted = series.query().await.unwrap();
    assert_eq!(compacted.pending_records(), 0);
    assert_exact(&compacted, &events);
}

#[tokio::test]
async fn redelivery_within_the_horizon_is_a_duplicate_after_it_is_late() {
    let store: Arc<dyn KvStore> = Arc::new(MemoryStore::new());
    let clock = ManualClock::new(T0);
    let series = open(&store, &clock, "m", 4).await;
    let e = [Event::new("order-1", T0 - 1_000, (5.0, 7u64))];
    assert_eq!(
        series.fold(&e).await.unwrap().outcomes,
        [EventOutcome::Accepted]
    );
    series.compact_range(T0 - MINUTE, T0).await.unwrap();
    clock.advance(5 * HOUR); // an SQS redelivery hours later
    assert_eq!(
        series.fold(&e).await.unwrap().outcomes,
        [EventOutcome::Accepted]
    );
    let view = series.query_range(T0 - MINUTE, T0).await.unwrap();
    assert_eq!((view.tally().folded, view.tally().duplicates), (1, 1));
    assert_eq!(view.total().unwrap().0.0.count(), 1);
    clock.advance(2 * HOUR); // beyond the six-hour horizon: refused and counted
    assert_eq!(
        series.fold(&e).await.unwrap().outcomes,
        [EventOutcome::Done(Outcome::Late)]
    );
    let view = series
        .query_range(T0 - MINUTE, T0 + 8 * HOUR)
        .await
        .unwrap();
    assert_eq!(view.tally().late, 1);
    assert_eq!(view.total().unwrap().0.0.count(), 1);
}

#[tokio::test]
async fn an_event_a_year_ahead_or_in_microseconds_is_refused_and_changes_no_stored_byte() {
    let store = Arc::new(MemoryStore::new());
    let dyn_store: Arc<dyn KvStore> = store.clone();
    let clock = ManualClock::new(T0);
    let series = open(&dyn_store, &clock, "m", 4).await;
    let evs = events(2_000, 30, 3);
    for batch in evs.chunks(100) {
        assert!(series.fold(batch).await.unwrap().is_complete());
    }
    let before = dump(&dyn_store).await;
    let year_ahead = Event::new("clock-wrong", T0 + 365 * 24 * HOUR, (1.0, 1u64));
    let micros = Event::new("micros", (T0 - 5_000) * 1_000, (1.0, 1u64));
    for bad in [year_ahead, micros] {
        let report = series.fold(std::slice::from_ref(&bad)).await.unwrap();
        assert!(
            matches!(
                report.outcomes[0],
                EventOutcome::Failed(Error::FutureEvent { .. })
            ),
            "{:?}",
            report.outcomes
        );
        assert_eq!(dump(&dyn_store).await, before, "no stored byte changed");
    }
    // and the answer is whole: every window of the real events is still there
    assert_exact(&series.query().await.unwrap(), &evs);
}

#[tokio::test]
async fn opening_with_other_parameters_fails_at_open_naming_both_values() {
    let store: Arc<dyn KvStore> = Arc::new(MemoryStore::new());
    let clock = ManualClock::new(T0);
    let _created = open(&store, &clock, "m", 4).await;
    let keys_before = dump(&store).await;
    let base = || config(&clock, 4);
    let cases: Vec<(SeriesConfig<Agg>, &str, &str, &str)> = vec![
        (
            base().window(Duration::from_secs(120)),
            "series window width (ms)",
            "120000",
            "60000",
        ),
        (
            base().horizon(Duration::from_secs(3600)),
            "series dedup horizon (ms)",
            "3600000",
            "21600000",
        ),
        (
            base().retention(Duration::from_secs(86_400)),
            "series retention (ms)",
            "86400000",
            "172800000",
        ),
        (base().shards(8), "series shard count", "8", "4"),
    ];
    for (cfg, what_want, asked, stored) in cases {
        match Series::<Agg, Val>::open(store.clone(), "m", cfg).await {
            Err(Error::IncompatibleParams { what, left, right }) => {
                assert_eq!(
                    (what, left.as_str(), right.as_str()),
                    (what_want, asked, stored)
                );
            }
            other => panic!("{what_want}: expected IncompatibleParams, got {other:?}"),
        }
    }
    // a sketch parameter: Distinct at another precision
    let p12 = SeriesConfig::new(Zip((Stats::default(), Distinct::new(12))))
        .window(Duration::from_secs(60))
        .horizon(Duration::from_secs(6 * 3600))
        .retention(Duration::from_secs(2 * 86_400))
        .shards(4)
        .clock(Arc::new(clock.clone()));
    let err = Series::<Agg, Val>::open(store.clone(), "m", p12)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::IncompatibleParams {
                what: "series aggregate parameters",
                ..
            }
        ),
        "{err}"
    );
    // another aggregate type, and the old whole-state layout, under the same name
    let other = SeriesConfig::new(Stats::default()).clock(Arc::new(clock.clone()));
    let err = Series::<Stats, f64>::open(store.clone(), "m", other)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::WrongType { .. }), "{err}");
    let err = Metric::<Stats>::open(store.clone(), "m", 4)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::WrongType { .. }), "{err}");
    assert_eq!(
        dump(&store).await,
        keys_before,
        "nothing written by a refused open"
    );
}

#[tokio::test]
async fn expired_buckets_are_deleted_from_the_store() {
    let store: Arc<dyn KvStore> = Arc::new(MemoryStore::new());
    let clock = ManualClock::new(T0);
    let series = open(&store, &clock, "m", 4).await;
    for batch in events(3_000, 30, 5).chunks(100) {
        series.fold(batch).await.unwrap();
    }
    assert!(dump(&store).await.len() > 10);
    // past the horizon: sealed (IDs dropped) but kept
    clock.advance(7 * HOUR);
    let m = maintain_all(&series).await;
    assert!(m.sealed >= 30, "{m:?}");
    let sealed = series.query().await.unwrap();
    assert_eq!(sealed.tally().folded, 3_000);
    // past retention + grace: gone from the store, only the metadata and cursor remain
    clock.advance(2 * 24 * HOUR);
    let m = maintain_all(&series).await;
    assert!(m.evicted >= 30 && m.keys_deleted > 0, "{m:?}");
    let left: Vec<String> = dump(&store).await.into_keys().collect();
    assert_eq!(left, ["m/cursor", "m/meta"]);
    assert_eq!(series.query().await.unwrap().window_count(), 0);
}

#[tokio::test]
async fn a_straggler_compactor_cannot_resurrect_or_double_count_a_sealed_or_evicted_bucket() {
    for evict in [false, true] {
        let gate = Arc::new(GateStore::new(Arc::new(MemoryStore::new())));
        let store: Arc<dyn KvStore> = gate.clone();
        let clock = ManualClock::new(T0);
        let evs = events(500, 1, 9); // one bucket
        let bucket_start = evs[0].time_ms - evs[0].time_ms % MINUTE;
        // no compaction but the ones asked for: the redeliveries stay pending
        let quiet = || config(&clock, 1).compact_every(0);
        let writer = Series::<Agg, Val>::open(store.clone(), "m", quiet())
            .await
            .unwrap();
        for batch in evs.chunks(50) {
            writer.fold(batch).await.unwrap();
        }
        writer
            .compact_range(bucket_start, bucket_start + 1)
            .await
            .unwrap();
        for batch in evs.chunks(50) {
            writer.fold(batch).await.unwrap(); // redelivered, pending
        }
        // the straggler reads the bucket, then stalls before its conditional write ...
        gate.close_next_base_write();
        let straggler = Series::<Agg, Val>::open(store.clone(), "m", quiet())
            .await
            .unwrap();
        let stalled = tokio::spawn(async move {
            straggler
                .compact_range(bucket_start, bucket_start + 1)
                .await
        });
        gate.wait_until_held().await;
        // ... while time passes and another writer seals (or evicts) the bucket
        clock.advance(if evict { 3 * 24 * HOUR } else { 7 * HOUR });
        let sweeper = open(&store, &clock, "m", 1).await;
        maintain_all(&sweeper).await;
        gate.open();
        stalled.await.unwrap().unwrap();
        let view = sweeper
            .query_range(bucket_start, bucket_start + MINUTE)
            .await
            .unwrap();
        if evict {
            let left: Vec<String> = dump(&store).await.into_keys().collect();
            assert_eq!(left, ["m/cursor", "m/meta"], "nothing resurrected");
            assert_eq!(view.window_count(), 0);
        } else {
            assert_eq!(view.tally().folded, 500, "not counted twice");
            assert_eq!(view.total().unwrap().0.0.count(), 500);
            assert_eq!(view.tally().duplicates, 500);
        }
    }
}

/// A bucket shard's fingerprints are kept in sets of at most 16 384 (each ≈ 105 KB, inside
/// DynamoDB's 400 KB item): appended batch by batch, and one batch larger than a set.
#[tokio::test]
async fn fingerprints_of_a_bucket_shard_span_several_sets() {
    assert_eq!(
        (sets_after(40_000, 2_000), sets_after(20_000, 20_000)),
        (3, 2)
    );
    for (n, batch) in [(40_000, 2_000), (20_000, 20_000)] {
        let store: Arc<dyn KvStore> = Arc::new(MemoryStore::new());
        let sizes = fingerprints_beyond_one_set(&store, "m", n, batch).await;
        println!("{n} IDs in batches of {batch}: sets of {sizes:?} bytes");
    }
}

/// The bytes a fold reads and writes do not grow with the metric's age: one-minute windows,
/// 7 days of retention, K = 8, the default compaction rate, 200 events a minute in batches of
/// 50. Compactions are drawn at random (1 in 16 appends), so a single hour's figure varies by
/// ±40 %; the test compares the first six hours (which include no seal) with hours 43–48
/// (sealing every bucket 6 h after it ends), each within 1.2× of the other.
#[tokio::test]
async fn bytes_moved_per_fold_do_not_grow_with_the_metric_age() {
    let counting = Arc::new(CountingStore::new(Arc::new(MemoryStore::new())));
    let store: Arc<dyn KvStore> = counting.clone();
    let clock = ManualClock::new(T0);
    let cfg = config(&clock, 8)
        .retention(Duration::from_secs(7 * 86_400))
        .compact_every(16);
    let series = Series::<Agg, Val>::open(store, "aging", cfg).await.unwrap();
    let mut rng = SplitMix64::new(21);
    let mut per_hour = Vec::new();
    let mut n = 0u64;
    for hour in 0..48u64 {
        counting.reset();
        let mut folds = 0u64;
        for minute in 0..60u64 {
            let now = T0 + hour * HOUR + minute * MINUTE;
            clock.set(now + MINUTE);
            let batch: Vec<Event<Val>> = (0..200)
                .map(|_| {
                    n += 1;
                    let t = now + rng.below(60_000) as u64;
                    Event::new(
                        format!("e{n}").as_str(),
                        t,
                        (rng.unit(), rng.next_u64() % 10_000),
                    )
                })
                .collect();
            for chunk in batch.chunks(50) {
                series.fold(chunk).await.unwrap();
                folds += 1;
            }
        }
        let c = counting.counts();
        per_hour.push((c.bytes_read + c.bytes_written) as f64 / folds as f64);
    }
    let mean = |h: &[f64]| h.iter().sum::<f64>() / h.len() as f64;
    let (early, late) = (mean(&per_hour[..6]), mean(&per_hour[42..]));
    println!(
        "bytes per fold, hours 1–6: {early:.0}, hours 43–48: {late:.0} ({:.2}×); hour 1 {:.0}, hour 48 {:.0}",
        late / early,
        per_hour[0],
        per_hour[47]
    );
    assert!(
        late <= 1.2 * early && early <= 1.2 * late,
        "hours 43–48 {late:.0} B/fold vs hours 1–6 {early:.0}: {per_hour:?}"
    );
    assert_eq!(series.query().await.unwrap().tally().folded, n);
}

#[tokio::test]
async fn a_batch_with_bad_values_refuses_only_them() {
    let store: Arc<dyn KvStore> = Arc::new(MemoryStore::new());
    let clock = ManualClock::new(T0);
    let series = open(&store, &clock, "m", 2).await;
    let batch = [
        Event::new("a", T0 - 10, (1.0, 1u64)),
        Event::new("b", T0 - 10, (f64::NAN, 2u64)),
        Event::new("a", T0 - 10, (1.0, 1u64)),
    ];
    let out = series.fold(&batch).await.unwrap().outcomes;
    assert_eq!(out[0], EventOutcome::Accepted);
    assert!(
        matches!(out[1], EventOutcome::Failed(Error::InvalidValue { .. })),
        "{out:?}"
    );
    // the second delivery of "a" is appended too: the stored tally counts it as a duplicate
    assert_eq!(out[2], EventOutcome::Accepted);
    let tally = series.query().await.unwrap().tally();
    assert_eq!((tally.folded, tally.duplicates), (1, 1));
}

/// Windows of one series, merged in query order, equal one stream of the deduplicated events
/// for any split into batches, any redelivery and any compaction schedule (bit for bit:
/// exact sums and HLL registers).
#[test]
fn any_batching_redelivery_and_compaction_schedule_gives_the_same_bytes() {
    use proptest::prelude::*;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    proptest!(ProptestConfig::with_cases(24), |(seed in any::<u64>(), batch in 1usize..80, every in 0u32..4)| {
        rt.block_on(async {
            let store: Arc<dyn KvStore> = Arc::new(MemoryStore::new());
            let clock = ManualClock::new(T0);
            let evs = events(400, 5, seed);
            let plan = deliveries(&evs, batch, 0.4, HOUR, seed ^ 1);
            let cfg = config(&clock, 3).compact_every(every);
            let series = Series::<Agg, Val>::open(store, "p", cfg).await.unwrap();
            let mut ordered = plan.clone();
            ordered.sort_by_key(|d| d.at);
            for d in &ordered {
                clock.set(d.at);
                series.fold(&d.events).await.unwrap();
            }
            assert_exact(&series.query().await.unwrap(), &evs);
        });
    });
}

/// 100 000 events in one minute with the default configuration: no stored value reaches
/// DynamoDB's 400 KB item limit, and the remembered IDs cost at most 8 bytes each.
#[tokio::test]
async fn a_busy_minute_keeps_values_under_400_kb_and_ids_under_8_bytes_each() {
    let store: Arc<dyn KvStore> = Arc::new(MemoryStore::new());
    let clock = ManualClock::new(T0);
    let cfg = SeriesConfig::new(Agg::default()).clock(Arc::new(clock.clone()));
    let series = Series::<Agg, Val>::open(store.clone(), "busy", cfg)
        .await
        .unwrap();
    let evs = events(100_000, 1, 31);
    for batch in evs.chunks(1_000) {
        assert!(series.fold(batch).await.unwrap().is_complete());
    }
    series.compact_range(T0 - MINUTE, T0).await.unwrap();
    let stored = dump(&store).await;
    let largest = stored.values().map(Vec::len).max().unwrap();
    let id_bytes: usize = stored
        .iter()
        .filter(|(k, _)| k.contains("/i/"))
        .map(|(_, v)| v.len())
        .sum();
    let per_id = id_bytes as f64 / evs.len() as f64;
    println!("largest value {largest} B; {per_id:.2} B per remembered ID");
    assert!(largest < 400_000, "largest value {largest} B");
    assert!(per_id <= 8.0, "{per_id:.2} B per ID");
    assert_exact(&series.query().await.unwrap(), &evs);
}

/// Durations are taken in whole milliseconds or refused naming the parameter (not rounded or
/// saturated), before anything is written.
#[tokio::test]
async fn invalid_durations_are_refused_naming_the_parameter() {
    let cases: [(&str, SeriesConfig<Stats>); 4] = [
        (
            "window",
            SeriesConfig::new(Stats::default()).window(Duration::from_micros(1500)),
        ),
        (
            "window",
            SeriesConfig::new(Stats::default()).window(Duration::ZERO),
        ),
        (
            "horizon",
            SeriesConfig::new(Stats::default()).horizon(Duration::MAX),
        ),
        (
            "max_skew",
            SeriesConfig::new(Stats::default()).max_skew(Duration::from_nanos(1)),
        ),
    ];
    for (want, config) in cases {
        let store = Arc::new(MemoryStore::new());
        let err = Series::<Stats, f64>::open(store.clone(), "m", config)
            .await
            .unwrap_err();
        assert!(
            matches!(err, Error::InvalidParameter { name, .. } if name == want),
            "{want}: {err:?}"
        );
        assert!(store.is_empty(), "{want}: something was written");
    }
}
