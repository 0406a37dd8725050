//! Kinesis/Kafka records folded exactly once through `Metric` (issue 9 item 5): 56-digit
//! sequence numbers, three shards, a batch retried whole, a shard split, on the memory store and
//! SQLite; the two traps (parallel batches, producer retries) and out-of-order records.
#![cfg(feature = "store")]

use std::collections::BTreeMap;
use std::sync::Arc;

use num_bigint::BigUint;
use shardfold::store::{EventOutcome, KvStore, MemoryStore, Metric};
use shardfold::testkit::SplitMix64;
use shardfold::{Count, Deduped, Outcome, SeqDedup, SeqNum, StreamRecord, Sum};

type Cs = (Count, Sum);
type Rec = StreamRecord<i64>;

/// A real Kinesis sequence number (56 digits) to count up from.
const KINESIS_SEQ: &str = "49590338271490256608559692538361571095921575989136588898";

fn seq(n: &BigUint) -> SeqNum {
    SeqNum::parse(&n.to_string()).unwrap()
}

/// One shard's records in order: `n` records after `start` (gaps of up to 2⁴⁰, as Kinesis
/// numbers have), event times from `t0`, values from the RNG. Returns the records and the last
/// sequence number.
fn shard_records(
    shard: &str,
    start: &BigUint,
    t0: u64,
    n: usize,
    rng: &mut SplitMix64,
) -> (Vec<Rec>, BigUint) {
    let mut next = start.clone();
    let records = (0..n)
        .map(|i| {
            next += BigUint::from(rng.next_u64() % (1u64 << 40)) + 1u32;
            let value = (rng.next_u64() % 2001) as i64 - 1000;
            StreamRecord::new(shard, seq(&next), t0 + i as u64 * 100, value)
        })
        .collect();
    (records, next)
}

/// The deliveries of a three-shard stream whose shard 2 splits into shards 3 and 4 halfway:
/// batches of one shard each, in each shard's order, the children after their parent's last
/// record; the fourth batch is delivered twice (a retry of the whole batch). Returns the batches
/// and the distinct records.
fn kinesis_stream() -> (Vec<Vec<Rec>>, Vec<Rec>) {
    let mut rng = SplitMix64::new(2026);
    let base: BigUint = KINESIS_SEQ.parse().unwrap();
    let mut per_shard: BTreeMap<&str, Vec<Rec>> = BTreeMap::new();
    let t0 = 1_764_633_600_000; // 2025-12-02T00:00:00Z
    let mut parent_end = BigUint::default();
    for (k, shard) in [
        "shardId-000000000000",
        "shardId-000000000001",
        "shardId-000000000002",
    ]
    .into_iter()
    .enumerate()
    {
        let (records, end) = shard_records(shard, &(&base + k as u32), t0, 60, &mut rng);
        per_shard.insert(shard, records);
        if k == 2 {
            parent_end = end;
        }
    }
    // the split: the children's sequence numbers start after the parent's last one
    for child in ["shardId-000000000003", "shardId-000000000004"] {
        let (records, _) = shard_records(child, &parent_end, t0 + 6_000, 40, &mut rng);
        per_shard.insert(child, records);
    }
    let distinct: Vec<Rec> = per_shard.values().flatten().cloned().collect();
    // batches of 20 records of one shard; parents before children, shards interleaved
    let mut batches: Vec<Vec<Rec>> = Vec::new();
    let chunks: Vec<Vec<Vec<Rec>>> = per_shard
        .values()
        .map(|r| r.chunks(20).map(<[Rec]>::to_vec).collect())
        .collect();
    for round in 0..3 {
        for shard in &chunks[..3] {
            batches.extend(shard.get(round).cloned());
        }
    }
    for round in 0..2 {
        for shard in &chunks[3..] {
            batches.extend(shard.get(round).cloned());
        }
    }
    let retried = batches[3].clone();
    batches.insert(4, retried);
    (batches, distinct)
}

/// Folds every batch through `metric` and checks the exact count, sum and duplicates.
async fn fold_exactly<D>(metric: &Metric<Deduped<Cs, D>>)
where
    Deduped<Cs, D>: shardfold::store::FoldState<Rec>,
{
    let (batches, distinct) = kinesis_stream();
    let mut reported_duplicates = 0;
    for batch in &batches {
        let report = metric.fold(batch).await.unwrap();
        assert!(report.is_complete(), "{:?}", report.failed().next());
        assert_eq!(report.count_outcome(Outcome::Late), 0);
        reported_duplicates += report.count_outcome(Outcome::Duplicate);
    }
    let retried = batches[4].len();
    assert_eq!(reported_duplicates, retried);
    let state = metric.query().await.unwrap();
    let sum: i128 = distinct.iter().map(|r| i128::from(r.value)).sum();
    assert_eq!(state.aggregate().0.get(), distinct.len() as u64);
    assert_eq!(state.aggregate().1.get(), sum);
    assert_eq!(state.duplicates(), retried as u64);
    assert_eq!(state.late(), 0);
}

async fn fold_both_ways(store: Arc<dyn KvStore>) {
    let marks = Metric::builder(Arc::clone(&store), "kinesis-marks")
        .shards(4)
        .template(Deduped::by_sequence(Cs::default()))
        .open()
        .await
        .unwrap();
    fold_exactly::<SeqDedup>(&marks).await;
    // every partition's mark lives in one shard key
    let state = marks.query().await.unwrap();
    assert_eq!(state.seq_dedup().marks().count(), 5);
    let ids = Metric::builder(store, "kinesis-ids")
        .shards(4)
        .template(Deduped::new(3_600_000, 10_000, Cs::default()))
        .open()
        .await
        .unwrap();
    fold_exactly(&ids).await;
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn three_shards_a_retried_batch_and_a_split_fold_exactly_in_memory() {
    runtime().block_on(fold_both_ways(Arc::new(MemoryStore::new())));
}

#[cfg(feature = "sqlite")]
#[test]
fn three_shards_a_retried_batch_and_a_split_fold_exactly_in_sqlite() {
    let file = std::env::temp_dir().join(format!(
        "shardfold-stream-{}-{}.db",
        std::process::id(),
        SplitMix64::new(u64::from(std::process::id())).next_u64()
    ));
    runtime().block_on(async {
        let store = shardfold::store::SqliteStore::open(&file).await.unwrap();
        fold_both_ways(Arc::new(store)).await;
    });
    let _ = std::fs::remove_file(&file);
}

#[test]
fn a_partition_is_one_shard_key() {
    let (_, records) = kinesis_stream();
    use shardfold::store::ShardKey;
    for r in &records {
        let other = StreamRecord::new(r.partition.clone(), SeqNum::from(1), 0, 0i64);
        assert_eq!(r.shard_key(), other.shard_key());
    }
    let keys: std::collections::BTreeSet<u64> = records.iter().map(|r| r.shard_key()).collect();
    assert_eq!(keys.len(), 5);
}

/// Trap 1: two batches of one shard folded at once (ParallelizationFactor 2), interleaved in
/// sequence numbers, the later one written first.
#[test]
fn parallel_batches_need_sequence_ids_not_marks() {
    let mut rng = SplitMix64::new(7);
    let (records, _) = shard_records(
        "shardId-000000000000",
        &KINESIS_SEQ.parse().unwrap(),
        0,
        40,
        &mut rng,
    );
    // the odd-numbered records' batch ends later: it is written first
    let batch =
        |parity: usize| -> Vec<Rec> { records.iter().skip(parity).step_by(2).cloned().collect() };
    let (first, second) = (batch(1), batch(0));
    let sum: i128 = records.iter().map(|r| i128::from(r.value)).sum();
    runtime().block_on(async {
        let store: Arc<dyn KvStore> = Arc::new(MemoryStore::new());
        // by (partition, sequence) IDs: exact whatever the order of the batches
        let ids = Metric::builder(Arc::clone(&store), "ids")
            .template(Deduped::new(3_600_000, 10_000, Cs::default()))
            .open()
            .await
            .unwrap();
        let (a, b) = tokio::join!(ids.fold(&first), ids.fold(&second));
        assert!(a.unwrap().is_complete() && b.unwrap().is_complete());
        let state = ids.query().await.unwrap();
        assert_eq!(
            (state.aggregate().0.get(), state.aggregate().1.get()),
            (40, sum)
        );
        // a high-water mark takes the batch written second for a retried one: the documented
        // reason to choose IDs when batches of one partition can run concurrently
        let marks = Metric::builder(store, "marks")
            .template(Deduped::by_sequence(Cs::default()))
            .open()
            .await
            .unwrap();
        marks.fold(&first).await.unwrap();
        let report = marks.fold(&second).await.unwrap();
        assert!(report.count_outcome(Outcome::Duplicate) >= 19);
        assert!(marks.query().await.unwrap().aggregate().0.get() < 40);
    });
}

/// Trap 2: the producer's retry of one payload got a new sequence number.
#[test]
fn producer_retries_are_duplicates_by_payload_id() {
    let mut rng = SplitMix64::new(9);
    let (mut records, end) = shard_records(
        "shardId-000000000001",
        &KINESIS_SEQ.parse().unwrap(),
        0,
        10,
        &mut rng,
    );
    for (i, r) in records.iter_mut().enumerate() {
        r.payload_id = Some(shardfold::EventId::from(format!("order-{i}").as_str()));
    }
    // the producer put order-3 again: a new, higher sequence number, the same payload
    let mut retry = records[3].clone();
    retry.seq = seq(&(end + 1u32));
    records.push(retry);
    runtime().block_on(async {
        let store: Arc<dyn KvStore> = Arc::new(MemoryStore::new());
        let by_payload = Metric::builder(Arc::clone(&store), "payload")
            .template(Deduped::new(3_600_000, 10_000, Cs::default()))
            .open()
            .await
            .unwrap();
        let report = by_payload.fold(&records).await.unwrap();
        assert_eq!(report.outcomes[10], EventOutcome::Done(Outcome::Duplicate));
        assert_eq!(by_payload.query().await.unwrap().aggregate().0.get(), 10);
        // without the payload ID, (partition, sequence) sees two records
        let by_seq = Metric::builder(store, "seq")
            .template(Deduped::new(3_600_000, 10_000, Cs::default()))
            .open()
            .await
            .unwrap();
        let plain: Vec<Rec> = records
            .iter()
            .cloned()
            .map(|mut r| {
                r.payload_id = None;
                r
            })
            .collect();
        by_seq.fold(&plain).await.unwrap();
        assert_eq!(by_seq.query().await.unwrap().aggregate().0.get(), 11);
    });
}

/// A batch whose records of one partition are out of order: the record that came after a later
/// one is reported late (refused, counted), not folded and not hidden as a duplicate.
#[test]
fn out_of_order_records_in_a_batch_are_reported_late() {
    let mut rng = SplitMix64::new(5);
    let (mut records, _) = shard_records(
        "shardId-000000000002",
        &KINESIS_SEQ.parse().unwrap(),
        0,
        6,
        &mut rng,
    );
    records.swap(2, 4);
    runtime().block_on(async {
        let metric = Metric::builder(Arc::new(MemoryStore::new()), "ooo")
            .template(Deduped::by_sequence(Cs::default()))
            .open()
            .await
            .unwrap();
        let report = metric.fold(&records).await.unwrap();
        let outcomes: Vec<Option<Outcome>> =
            report.outcomes.iter().map(EventOutcome::outcome).collect();
        let late = Some(Outcome::Late);
        let folded = Some(Outcome::Folded);
        assert_eq!(
            outcomes,
            [folded, folded, folded, late, late, folded],
            "records 2 and 3 (now at 3 and 4) came after record 4"
        );
        let state = metric.query().await.unwrap();
        assert_eq!((state.aggregate().0.get(), state.late()), (4, 2));
        // a retry of the same batch is all duplicates below the mark: nothing more is folded
        let again = metric.fold(&records).await.unwrap();
        assert_eq!(again.count_outcome(Outcome::Folded), 0);
    });
}
