//! Fold-level checks: a lost reply is neither lost nor doubled; many writers (tasks and OS
//! processes) folding overlapping batches with duplicates end at the exact count and sum.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::LostReplyStore;
use crate::codec::{self, Codec, Limits, tags};
use crate::dedup::{Offer, Outcome};
use crate::error::{Error, Result};
use crate::hash::stable_hash;
use crate::merge::Insert;
use crate::store::{KvStore, Metric, RetryPolicy, ShardKey};
use crate::{Merge, agg};

/// An event of the suite: an ID and a value that is a function of the ID (so duplicates carry
/// the same value, as redeliveries do).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TestEvent {
    /// The event ID.
    pub id: u64,
    /// The event's value.
    pub value: i64,
}

impl TestEvent {
    /// The event with ID `id`.
    pub fn new(id: u64) -> Self {
        TestEvent {
            id,
            value: (stable_hash(&id) % 2001) as i64 - 1000,
        }
    }
}

impl ShardKey for TestEvent {
    fn shard_key(&self) -> u64 {
        stable_hash(&self.id)
    }
}

/// A sum that dedups by event ID (the reference [`FoldState`](crate::store::FoldState) of the suite): the set of IDs
/// folded and their values' sum. Merging states that share an ID is refused; an event with
/// value `i64::MIN` is refused (to test per-event failures).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdSum {
    /// IDs folded so far.
    pub ids: BTreeSet<u64>,
    /// Sum of their values.
    pub sum: i128,
}

impl Merge for IdSum {
    fn check_merge(&self, other: &Self) -> Result<()> {
        if let Some(id) = self.ids.intersection(&other.ids).next() {
            return Err(Error::OverlappingState {
                reason: format!("event {id} in both"),
            });
        }
        self.sum
            .checked_add(other.sum)
            .map(|_| ())
            .ok_or(Error::Overflow { what: "IdSum" })
    }

    fn merge_unchecked(&mut self, other: &Self) -> Result<()> {
        self.ids.extend(other.ids.iter().copied());
        self.sum = self.sum.saturating_add(other.sum); // checked by check_merge
        Ok(())
    }
}

impl Codec for IdSum {
    const TYPE_TAG: u16 = tags::CONFORMANCE_ID_SUM;

    fn write_payload(&self, out: &mut Vec<u8>) {
        codec::write_postcard(self, out);
    }

    fn read_parts(params: &[u8], payload: &[u8], _: &Limits) -> Result<Self> {
        agg::no_params(params)?;
        codec::read_postcard(payload, "IdSum payload")
    }
}

impl Insert<TestEvent> for IdSum {
    fn check_insert(&self, e: &TestEvent) -> Result<()> {
        if self.ids.contains(&e.id) {
            return Ok(());
        }
        if e.value == i64::MIN {
            return Err(Error::InvalidValue {
                reason: "i64::MIN is the suite's refused value",
            });
        }
        self.sum
            .checked_add(i128::from(e.value))
            .map(drop)
            .ok_or(Error::Overflow { what: "IdSum" })
    }

    fn insert_unchecked(&mut self, e: TestEvent) -> Result<()> {
        self.offer(e).map(drop)
    }
}

impl Offer<TestEvent> for IdSum {
    fn offer(&mut self, e: TestEvent) -> Result<Outcome> {
        if self.ids.contains(&e.id) {
            return Ok(Outcome::Duplicate);
        }
        self.check_insert(&e)?;
        self.sum += i128::from(e.value);
        self.ids.insert(e.id);
        Ok(Outcome::Folded)
    }
}

/// The exact answer for `events`: distinct IDs and the sum of their values.
pub fn oracle<'a>(events: impl IntoIterator<Item = &'a TestEvent>) -> IdSum {
    let distinct: BTreeMap<u64, i64> = events.into_iter().map(|e| (e.id, e.value)).collect();
    IdSum {
        sum: distinct.values().map(|v| i128::from(*v)).sum(),
        ids: distinct.into_keys().collect(),
    }
}

/// Folds `events` (with internal duplicates) through a store that loses the reply of every
/// other write, then folds them again: the stored state must equal the oracle exactly.
pub async fn lost_reply(store: Arc<dyn KvStore>, metric: &str) {
    Metric::<IdSum>::open(Arc::clone(&store), metric, 3)
        .await
        .unwrap_or_else(|e| panic!("open: {e}"));
    let lossy = Arc::new(LostReplyStore::new(store, true));
    let m = Metric::<IdSum>::open(lossy.clone(), metric, 3)
        .await
        .unwrap_or_else(|e| panic!("open: {e}"));
    let m = m
        .with_retry(fast_policy(16))
        .unwrap_or_else(|e| panic!("{e}"));
    let events: Vec<TestEvent> = (0..300u64).map(|i| TestEvent::new(i % 240)).collect();
    for round in 0..2 {
        let report = m
            .fold(&events)
            .await
            .unwrap_or_else(|e| panic!("fold: {e}"));
        assert!(
            report.is_complete(),
            "round {round}: {:?}",
            report.failed().collect::<Vec<_>>()
        );
        let got = m.query().await.unwrap_or_else(|e| panic!("query: {e}"));
        assert_eq!(
            got,
            oracle(&events),
            "round {round}: lost or doubled events"
        );
    }
    assert!(lossy.lost_replies() >= 3, "the injection never fired");
}

fn fast_policy(max_attempts: u32) -> RetryPolicy {
    RetryPolicy {
        max_attempts,
        base_delay: Duration::from_micros(500),
        max_delay: Duration::from_millis(50),
        ..RetryPolicy::default()
    }
}

/// The batches worker `w` folds: 8 batches of 120 events over overlapping ID ranges (workers
/// overlap each other), each with 12 IDs repeated inside the batch.
pub fn batches(worker: u32) -> Vec<Vec<TestEvent>> {
    (0..8u64)
        .map(|b| {
            let start = (u64::from(worker) * 173 + b * 61) % 1500;
            let mut batch: Vec<TestEvent> = (start..start + 120).map(TestEvent::new).collect();
            batch.extend((start..start + 12).map(|id| TestEvent::new(id * 7 % 120 + start)));
            batch
        })
        .collect()
}

/// Worker `w` of a race: folds its batches into `metric` (K shards), redelivering failed
/// events until each batch is complete, as an event source would.
pub async fn race_worker(store: Arc<dyn KvStore>, metric: &str, shards: u32, worker: u32) {
    let m = Metric::<IdSum>::open(store, metric, shards)
        .await
        .unwrap_or_else(|e| panic!("open: {e}"));
    let m = m
        .with_retry(fast_policy(40))
        .unwrap_or_else(|e| panic!("{e}"));
    for batch in batches(worker) {
        let mut pending = batch;
        for delivery in 0.. {
            assert!(delivery < 50, "worker {worker}: batch never completed");
            let report = m
                .fold(&pending)
                .await
                .unwrap_or_else(|e| panic!("fold: {e}"));
            let failed: Vec<usize> = report.failed().collect();
            if failed.is_empty() {
                break;
            }
            pending = failed
                .iter()
                .filter_map(|&i| pending.get(i).copied())
                .collect();
        }
    }
}

/// Checks the result of a race of `workers`: exactly the distinct IDs of all their batches,
/// and the exact sum.
pub async fn check_race(store: Arc<dyn KvStore>, metric: &str, shards: u32, workers: u32) {
    let m = Metric::<IdSum>::open(store, metric, shards)
        .await
        .unwrap_or_else(|e| panic!("open: {e}"));
    let got = m.query().await.unwrap_or_else(|e| panic!("query: {e}"));
    let all: Vec<TestEvent> = (0..workers).flat_map(batches).flatten().collect();
    let want = oracle(&all);
    assert_eq!(
        got.ids.len(),
        want.ids.len(),
        "count: lost or doubled events"
    );
    assert_eq!(got.sum, want.sum, "sum");
    assert_eq!(got, want);
}

/// Runs `tasks` race workers as tokio tasks (worker numbers `first..first + tasks`).
pub async fn race_tasks(
    store: &Arc<dyn KvStore>,
    metric: &str,
    shards: u32,
    first: u32,
    tasks: u32,
) {
    let handles: Vec<_> = (first..first + tasks)
        .map(|w| {
            let (store, metric) = (Arc::clone(store), metric.to_owned());
            tokio::spawn(async move { race_worker(store, &metric, shards, w).await })
        })
        .collect();
    for h in handles {
        h.await.unwrap_or_else(|e| panic!("race task: {e}"));
    }
}
