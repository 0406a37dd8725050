//! Shared helpers of the `Series` tests: a metric of Stats + distinct users per minute,
//! events, at-least-once delivery plans, many stateless writers, an exact reference.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use shardfold::store::{
    EventOutcome, KvStore, Maintenance, ManualClock, Series, SeriesConfig, SeriesView, StoreFuture,
    Version, WriteOutcome,
};
use shardfold::testkit::SplitMix64;
use shardfold::{Distinct, Event, Insert, Outcome, Stats, Zip, codec};
use tokio::sync::Notify;

pub type Agg = Zip<(Stats, Distinct)>;
pub type Val = (f64, u64);

pub const MINUTE: u64 = 60_000;
pub const HOUR: u64 = 60 * MINUTE;
/// 2027-01-15T08:00:00Z
pub const T0: u64 = 1_800_000_000_000 - 1_800_000_000_000 % HOUR;

/// One-minute windows, a six-hour horizon, two days of retention, a compaction every ~4 folds.
pub fn config(clock: &ManualClock, shards: u32) -> SeriesConfig<Agg> {
    SeriesConfig::new(Agg::default())
        .window(Duration::from_secs(60))
        .horizon(Duration::from_secs(6 * 3600))
        .retention(Duration::from_secs(2 * 86_400))
        .shards(shards)
        .compact_every(4)
        .clock(Arc::new(clock.clone()))
}

pub async fn open(
    store: &Arc<dyn KvStore>,
    clock: &ManualClock,
    name: &str,
    shards: u32,
) -> Series<Agg, Val> {
    Series::open(store.clone(), name, config(clock, shards))
        .await
        .unwrap()
}

/// `n` distinct events spread over the `minutes` minutes before `T0`: amounts in cents, users.
pub fn events(n: usize, minutes: u64, seed: u64) -> Vec<Event<Val>> {
    let mut rng = SplitMix64::new(seed);
    let start = T0 - minutes * MINUTE;
    let mut out: Vec<Event<Val>> = (0..n)
        .map(|i| {
            let t = start + rng.below((minutes * MINUTE) as usize) as u64;
            let amount = (rng.unit() * 10_000.0).round() / 100.0;
            let id = format!("s{seed}-e{i}");
            Event::new(id.as_str(), t, (amount, rng.next_u64() % 5_000))
        })
        .collect();
    out.sort_by_key(|e| e.time_ms);
    out
}

/// One delivery of a batch, at a time on the writers' clock.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub at: u64,
    pub events: Vec<Event<Val>>,
}

/// At-least-once delivery: batches of `batch` in event-time order, each delivered a few
/// seconds after its last event; a fraction `again` delivered a second time up to `max_delay`
/// later; one event in 20 also slipped into the next batch.
pub fn deliveries(
    events: &[Event<Val>],
    batch: usize,
    again: f64,
    max_delay: u64,
    seed: u64,
) -> Vec<Delivery> {
    let mut rng = SplitMix64::new(seed);
    let mut out = Vec::new();
    let chunks: Vec<&[Event<Val>]> = events.chunks(batch).collect();
    for (i, chunk) in chunks.iter().enumerate() {
        let mut evs = chunk.to_vec();
        if i > 0 && rng.unit() < 0.05 * batch as f64 {
            let prev = chunks[i - 1];
            evs.push(prev[rng.below(prev.len())].clone());
        }
        let last = evs.iter().map(|e| e.time_ms).max().unwrap_or(T0);
        let at = last + rng.below(5_000) as u64;
        if rng.unit() < again {
            let later = at + rng.below(max_delay as usize) as u64;
            let mut shuffled = evs.clone();
            rng.shuffle(&mut shuffled);
            out.push(Delivery {
                at: later,
                events: shuffled,
            });
        }
        out.push(Delivery { at, events: evs });
    }
    out
}

/// What many writers saw.
#[derive(Debug, Default)]
pub struct WriterReport {
    pub deliveries: usize,
    pub late: u64,
    pub failed: u64,
    pub in_batch_duplicates: u64,
}

/// Runs the plan with `writers` concurrent stateless writers: deliveries in time order, in
/// rounds of `writers` at once in random order, each opening the series afresh.
pub async fn run_writers(
    store: &Arc<dyn KvStore>,
    clock: &ManualClock,
    name: &str,
    plan: &[Delivery],
    writers: usize,
    shards: u32,
) -> WriterReport {
    let mut ordered = plan.to_vec();
    ordered.sort_by_key(|d| d.at);
    let mut rng = SplitMix64::new(77);
    let mut report = WriterReport::default();
    for round in ordered.chunks(writers) {
        clock.set(round.iter().map(|d| d.at).max().unwrap_or(T0));
        let mut round = round.to_vec();
        rng.shuffle(&mut round);
        let tasks: Vec<_> = round
            .into_iter()
            .map(|d| {
                let (store, clock, name) = (store.clone(), clock.clone(), name.to_owned());
                tokio::spawn(async move {
                    let series = open(&store, &clock, &name, shards).await;
                    (d.events.len(), series.fold(&d.events).await.unwrap())
                })
            })
            .collect();
        for t in tasks {
            let (n, r) = t.await.unwrap();
            report.deliveries += n;
            report.late += r.count(&EventOutcome::Done(Outcome::Late)) as u64;
            report.failed += r.failed().count() as u64;
            report.in_batch_duplicates += r.count(&EventOutcome::Done(Outcome::Duplicate)) as u64;
        }
    }
    report
}

/// The view equals one stream of the events, window by window, byte for byte.
pub fn assert_exact(view: &SeriesView<Agg>, events: &[Event<Val>]) {
    let mut truth: BTreeMap<u64, Agg> = BTreeMap::new();
    for e in events {
        let w = truth.entry(e.time_ms - e.time_ms % MINUTE).or_default();
        w.insert(e.value).unwrap();
    }
    let got: Vec<u64> = view.windows().map(|(s, _)| s).collect();
    let want: Vec<u64> = truth.keys().copied().collect();
    assert_eq!(got, want, "windows");
    for (start, agg) in view.windows() {
        assert_eq!(
            codec::encode(agg),
            codec::encode(&truth[&start]),
            "window {start}: {:?} vs {:?}",
            agg.0.0,
            truth[&start].0.0
        );
    }
}

/// Every key and value of the store (keys as text).
pub async fn dump(store: &Arc<dyn KvStore>) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    for k in store.list(b"").await.unwrap() {
        if let Some((v, _)) = store.read(&k).await.unwrap() {
            out.insert(String::from_utf8_lossy(&k).into_owned(), v);
        }
    }
    out
}

/// Sweeps until a sweep does nothing; the total.
pub async fn maintain_all(series: &Series<Agg, Val>) -> Maintenance {
    let mut total = Maintenance::default();
    loop {
        let m = series.maintain().await.unwrap();
        if m == Maintenance::default() {
            return total;
        }
        total.settled += m.settled;
        total.sealed += m.sealed;
        total.evicted += m.evicted;
        total.keys_deleted += m.keys_deleted;
    }
}

/// A store that can hold the next write of a bucket base until told to go on: a compactor
/// stalled between its read and its conditional write.
pub struct GateStore {
    inner: Arc<dyn KvStore>,
    armed: AtomicBool,
    held: Notify,
    release: Notify,
}

impl GateStore {
    pub fn new(inner: Arc<dyn KvStore>) -> Self {
        GateStore {
            inner,
            armed: AtomicBool::new(false),
            held: Notify::new(),
            release: Notify::new(),
        }
    }

    pub fn close_next_base_write(&self) {
        self.armed.store(true, Ordering::SeqCst);
    }

    pub async fn wait_until_held(&self) {
        self.held.notified().await;
    }

    pub fn open(&self) {
        self.release.notify_one();
    }

    async fn gate(&self, key: &[u8]) {
        let is_base = key.windows(3).any(|w| w == b"/b/");
        if is_base && self.armed.swap(false, Ordering::SeqCst) {
            self.held.notify_one();
            self.release.notified().await;
        }
    }
}

impl KvStore for GateStore {
    fn backend(&self) -> &'static str {
        self.inner.backend()
    }
    fn read<'a>(&'a self, key: &'a [u8]) -> StoreFuture<'a, Option<(Vec<u8>, Version)>> {
        self.inner.read(key)
    }
    fn create<'a>(&'a self, key: &'a [u8], value: &'a [u8]) -> StoreFuture<'a, WriteOutcome> {
        Box::pin(async move {
            self.gate(key).await;
            self.inner.create(key, value).await
        })
    }
    fn update<'a>(
        &'a self,
        key: &'a [u8],
        value: &'a [u8],
        v: Version,
    ) -> StoreFuture<'a, WriteOutcome> {
        Box::pin(async move {
            self.gate(key).await;
            self.inner.update(key, value, v).await
        })
    }
    fn list<'a>(&'a self, prefix: &'a [u8]) -> StoreFuture<'a, Vec<Vec<u8>>> {
        self.inner.list(prefix)
    }
    fn delete<'a>(&'a self, key: &'a [u8]) -> StoreFuture<'a, bool> {
        self.inner.delete(key)
    }
}

/// Fingerprints per stored set that compactions write (FORMAT.md, `SERIES_IDS`).
pub const IDS_PER_SET: usize = 16_384;

/// How many fingerprint sets `n` new IDs per compaction in batches of `batch` leave in one
/// bucket shard: a compaction adds to the last set while it holds at most [`IDS_PER_SET`],
/// else starts sets of its own.
pub fn sets_after(n: usize, batch: usize) -> usize {
    let (mut sets, mut last) = (0, 0);
    let mut left = n;
    while left > 0 {
        let b = batch.min(left);
        left -= b;
        if sets > 0 && last + b <= IDS_PER_SET {
            last += b;
        } else {
            let more = b.div_ceil(IDS_PER_SET);
            sets += more;
            last = b - (more - 1) * IDS_PER_SET;
        }
    }
    sets
}

/// One bucket shard remembering more fingerprints than one set holds: `n` events in one
/// minute (one bucket, K = 1) folded in batches of `batch`, compacted after each, then all
/// delivered and compacted again. The fingerprints are stored as [`sets_after`] sets (the sets
/// replaced were deleted), none larger than about 7 bytes per ID; every redelivery is
/// refused as a duplicate across all the sets; the answer is exact. Returns the sets' sizes in
/// bytes.
pub async fn fingerprints_beyond_one_set(
    store: &Arc<dyn KvStore>,
    metric: &str,
    n: usize,
    batch: usize,
) -> Vec<usize> {
    let clock = ManualClock::new(T0);
    let cfg = config(&clock, 1).compact_every(0);
    let series = Series::<Agg, Val>::open(store.clone(), metric, cfg)
        .await
        .unwrap();
    let evs = events(n, 1, 77);
    let bucket = evs[0].time_ms - evs[0].time_ms % MINUTE;
    for _delivery in 0..2 {
        for b in evs.chunks(batch) {
            assert!(series.fold(b).await.unwrap().is_complete());
            series.compact_range(bucket, bucket + 1).await.unwrap();
        }
    }
    let view = series.query_range(bucket, bucket + MINUTE).await.unwrap();
    assert_eq!(view.pending_records(), 0);
    assert_exact(&view, &evs);
    assert_eq!(
        (view.tally().folded, view.tally().duplicates),
        (n as u64, n as u64),
        "every redelivery refused as a duplicate"
    );
    let mut dir = store.metric_key(metric, "");
    if dir.last() != Some(&b'/') {
        dir.push(b'/');
    }
    dir.extend_from_slice(b"i/");
    let mut sizes = Vec::new();
    for key in store.list(&dir).await.unwrap() {
        let (bytes, _) = store.read(&key).await.unwrap().expect("listed set");
        sizes.push(bytes.len());
    }
    assert_eq!(sizes.len(), sets_after(n, batch), "sets stored: {sizes:?}");
    assert!(
        sizes.iter().all(|&s| s <= 7 * IDS_PER_SET + 64),
        "a set over 7 bytes per ID: {sizes:?}"
    );
    sizes
}
