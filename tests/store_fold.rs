//! Snapshots through the law suite (a lattice), metric metadata, the fold loop on the memory store.
#![cfg(feature = "store")]

use std::sync::Arc;

use proptest::prelude::*;
use shardfold::store::conformance::{IdSum, TestEvent, race};
use shardfold::store::{
    EventOutcome, KvStore, MemoryStore, Metric, RetryPolicy, Snapshot, StoreFuture, WriteOutcome,
};
use shardfold::testkit::Laws;
use shardfold::{Count, Error, Merge, Outcome, Sum, codec};
use std::time::Duration;

#[test]
fn snapshot_merge_is_a_lattice() {
    // few shards and versions so that entries collide, including equal versions with
    // different bytes (the tie must resolve the same way in any order)
    let entry = (0u32..4, 0u64..4, prop::collection::vec(any::<u8>(), 0..3));
    Laws::<Snapshot, (u32, u64, Vec<u8>)>::new("Snapshot")
        .lattice()
        .check(entry);
}

#[test]
fn snapshot_keeps_the_higher_version_and_breaks_ties_by_bytes() {
    let mut a = Snapshot::default();
    a.insert_shard(0, 5, b"b".to_vec());
    a.insert_shard(1, 2, b"z".to_vec());
    let mut b = Snapshot::default();
    b.insert_shard(0, 5, b"a".to_vec());
    b.insert_shard(1, 3, b"a".to_vec());
    let (mut ab, mut ba) = (a.clone(), b.clone());
    ab.merge(&b).unwrap();
    ba.merge(&a).unwrap();
    assert_eq!(ab, ba);
    assert_eq!(ab.shard(0).unwrap().state, b"b");
    assert_eq!(ab.shard(1).unwrap().version, 3);
}

#[test]
fn corrupted_snapshot_bytes_are_refused() {
    let mut s = Snapshot::default();
    s.insert_shard(1, 1, vec![1, 2, 3]);
    s.insert_shard(2, 1, vec![4]);
    let bytes = codec::encode(&s);
    for cut in 0..bytes.len() {
        assert!(codec::decode::<Snapshot>(&bytes[..cut]).is_err());
    }
    let mut flipped = bytes.clone();
    flipped[20] ^= 1;
    assert!(codec::decode::<Snapshot>(&flipped).is_err());
}

#[tokio::test]
async fn reopening_with_another_shard_count_or_type_is_a_typed_error() {
    let store: Arc<dyn KvStore> = Arc::new(MemoryStore::new());
    Metric::<Count>::open(store.clone(), "m", 4).await.unwrap();
    Metric::<Count>::open(store.clone(), "m", 4).await.unwrap();
    let err = Metric::<Count>::open(store.clone(), "m", 8)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::IncompatibleParams {
                what: "metric shard count",
                ..
            }
        ),
        "{err}"
    );
    let err = Metric::<Sum>::open(store.clone(), "m", 4)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::WrongType { .. }), "{err}");
    for (name, k) in [("", 1), ("ok", 0), ("ok", 5000), ("a\nb", 1)] {
        let err = Metric::<Count>::open(store.clone(), name, k)
            .await
            .unwrap_err();
        assert!(
            matches!(err, Error::InvalidParameter { .. }),
            "{name:?} {k}: {err}"
        );
    }
}

/// A windowed metric reopened with another window width (or another sketch precision) is
/// refused at open, naming both parameter blocks, and nothing is written; before, every event
/// was reported folded and then every query failed.
#[tokio::test]
async fn reopening_with_other_aggregate_parameters_fails_at_open() {
    use shardfold::{Distinct, Windowed};
    let store = Arc::new(MemoryStore::new());
    let dyn_store: Arc<dyn KvStore> = store.clone();
    let w = |width| Windowed::<Count>::new(width, 300_000, 86_400_000);
    Metric::open_with(dyn_store.clone(), "w", 4, w(60_000))
        .await
        .unwrap();
    Metric::open_with(dyn_store.clone(), "w", 4, w(60_000))
        .await
        .unwrap();
    let keys = store.len();
    match Metric::open_with(dyn_store.clone(), "w", 4, w(120_000)).await {
        Err(Error::IncompatibleParams { what, left, right }) => {
            assert_eq!(what, "metric aggregate parameters");
            assert_ne!(left, right);
            assert!(!left.is_empty() && !right.is_empty());
        }
        other => panic!("expected IncompatibleParams, got {other:?}"),
    }
    Metric::open_with(dyn_store.clone(), "d", 1, Distinct::new(14))
        .await
        .unwrap();
    let err = Metric::open_with(dyn_store.clone(), "d", 1, Distinct::new(12))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::IncompatibleParams { .. }), "{err}");
    assert_eq!(
        store.len(),
        keys + 1,
        "only the metadata of \"d\" was written"
    );
}

#[tokio::test]
async fn a_metric_is_k_keys_and_query_merges_them() {
    let mem = MemoryStore::new();
    let store: Arc<dyn KvStore> = Arc::new(mem.clone());
    let m = Metric::<IdSum>::open(store.clone(), "q", 16).await.unwrap();
    let events: Vec<TestEvent> = (0..500).map(TestEvent::new).collect();
    let report = m.fold(&events).await.unwrap();
    assert!(report.is_complete());
    assert_eq!(
        mem.len(),
        18,
        "16 shards + meta + the record of which shards were written"
    );
    let snap = m.snapshot().await.unwrap();
    assert_eq!(snap.len(), 16);
    assert_eq!(m.query().await.unwrap(), race::oracle(&events));
    // each shard holds exactly the events whose stable hash picks it
    for (k, s) in snap.iter() {
        let state: IdSum = codec::decode(&s.state).unwrap();
        assert!(
            state
                .ids
                .iter()
                .all(|id| shardfold::hash::stable_hash(id) % 16 == u64::from(k))
        );
    }
    // a snapshot round-trips and answers like the store
    let back: Snapshot = codec::decode(&codec::encode(&snap)).unwrap();
    assert_eq!(back.state::<IdSum>().unwrap(), race::oracle(&events));
}

#[tokio::test]
async fn refused_events_fail_alone_and_duplicates_are_reported() {
    let store: Arc<dyn KvStore> = Arc::new(MemoryStore::new());
    let m = Metric::<IdSum>::open(store, "f", 2).await.unwrap();
    let refused = TestEvent {
        id: 7,
        value: i64::MIN,
    };
    let events: Vec<TestEvent> = (0..6)
        .map(TestEvent::new)
        .chain([refused, TestEvent::new(1)])
        .collect();
    let first = m.fold(&events).await.unwrap();
    assert_eq!(first.failed().collect::<Vec<_>>(), vec![6]);
    assert!(matches!(
        first.outcomes[6],
        EventOutcome::Failed(Error::InvalidValue { .. })
    ));
    assert_eq!(first.count(&EventOutcome::Done(Outcome::Folded)), 6);
    assert_eq!(first.outcomes[7], EventOutcome::Done(Outcome::Duplicate));
    assert_eq!(m.query().await.unwrap(), race::oracle(&events[..6]));
    let again = m.fold(&events[..6]).await.unwrap();
    assert_eq!(again.count(&EventOutcome::Done(Outcome::Duplicate)), 6);
}

/// A store whose conditional writes always lose (a permanently hot key).
struct AlwaysConflict(MemoryStore);

impl KvStore for AlwaysConflict {
    fn backend(&self) -> &'static str {
        "always-conflict"
    }
    fn read<'a>(&'a self, key: &'a [u8]) -> StoreFuture<'a, Option<(Vec<u8>, u64)>> {
        self.0.read(key)
    }
    fn create<'a>(&'a self, _: &'a [u8], _: &'a [u8]) -> StoreFuture<'a, WriteOutcome> {
        Box::pin(async { Ok(WriteOutcome::Conflict) })
    }
    fn update<'a>(&'a self, _: &'a [u8], _: &'a [u8], _: u64) -> StoreFuture<'a, WriteOutcome> {
        Box::pin(async { Ok(WriteOutcome::Conflict) })
    }
}

#[tokio::test]
async fn endless_conflicts_end_in_contended_with_nothing_applied() {
    let mem = MemoryStore::new();
    Metric::<IdSum>::open(Arc::new(mem.clone()), "hot", 2)
        .await
        .unwrap();
    let store: Arc<dyn KvStore> = Arc::new(AlwaysConflict(mem.clone()));
    let policy = RetryPolicy {
        max_attempts: 4,
        base_delay: Duration::from_micros(10),
        max_delay: Duration::from_millis(1),
        ..RetryPolicy::default()
    };
    let m = Metric::<IdSum>::open(store, "hot", 2)
        .await
        .unwrap()
        .with_retry(policy)
        .unwrap();
    let events: Vec<TestEvent> = (0..50).map(TestEvent::new).collect();
    let report = m.fold(&events).await.unwrap();
    assert_eq!(report.failed().count(), 50);
    for o in &report.outcomes {
        assert!(
            matches!(
                o,
                EventOutcome::Failed(Error::Contended { attempts: 4, .. })
            ),
            "{o:?}"
        );
    }
    assert_eq!(mem.len(), 1, "only the metadata key: no shard half-applied");
}

#[tokio::test]
async fn the_metric_builder_names_bad_parameters() {
    let mem = MemoryStore::new();
    let store: Arc<dyn KvStore> = Arc::new(mem.clone());
    let named = |r: Result<Metric<IdSum>, Error>| match r {
        Err(Error::InvalidParameter { name, .. }) => name,
        other => panic!("{other:?}"),
    };
    let b = || Metric::<IdSum>::builder(Arc::clone(&store), "m");
    assert_eq!(named(b().shards(0).open().await), "shards");
    assert_eq!(named(b().shards(4097).open().await), "shards");
    let no_attempts = RetryPolicy {
        max_attempts: 0,
        ..RetryPolicy::default()
    };
    assert_eq!(named(b().retry(no_attempts).open().await), "max_attempts");
    let inverted = RetryPolicy {
        base_delay: Duration::from_secs(2),
        max_delay: Duration::from_secs(1),
        ..RetryPolicy::default()
    };
    assert_eq!(named(b().retry(inverted).open().await), "base_delay");
    let empty = Metric::<IdSum>::builder(Arc::clone(&store), "")
        .open()
        .await;
    assert_eq!(named(empty), "metric name");
    assert_eq!(mem.len(), 0, "nothing written for a refused builder");
    let m = b().shards(3).open().await.unwrap();
    assert_eq!((m.name(), m.shards()), ("m", 3));
    // the template's parameters are recorded: another template is refused before any write
    let w = |width| shardfold::Windowed::<Count>::new(width, 0, 0);
    let wb = || Metric::builder(Arc::clone(&store), "w");
    wb().template(w(60_000)).open().await.unwrap();
    assert!(matches!(
        wb().template(w(120_000)).open().await,
        Err(Error::IncompatibleParams { .. })
    ));
}
