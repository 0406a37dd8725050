//! The bucketed layout: [`Series`] (its docs describe the layout, keys and rules).

mod base;
mod clock;
mod compact;
mod config;
mod keys;
mod query;
mod record;
mod vanish;
#[doc(hidden)]
pub mod wire;

use std::collections::BTreeMap;
use std::hash::{BuildHasher, RandomState};
use std::marker::PhantomData;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use futures_util::future::join_all;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::fold::{EventOutcome, FoldReport};
use super::{KvStore, WriteOutcome};
use crate::Aggregate;
use crate::codec;
use crate::dedup::{Event, Outcome};
use crate::error::{Error, Result, StoreErrorKind};
use crate::merge::Insert;

pub use base::Tally;
pub use clock::{Clock, ManualClock, SystemClock};
pub use compact::Maintenance;
pub use config::{MAX_WINDOWS_PER_BUCKET, SeriesConfig};
pub use query::SeriesView;

use config::SeriesMeta;
use keys::Keys;
use record::RecordWriter;

/// A record is closed once it reaches this many bytes (one more event may follow; values are
/// small), keeping records well under DynamoDB's 400 KB item limit.
const MAX_RECORD_BYTES: usize = 256 << 10;

/// A fold compacts a bucket it appended `n` events to with probability at least
/// `n / COMPACT_EVENTS`.
const COMPACT_EVENTS: u64 = 16_384;

/// A fold sweeps (settle, seal, evict) with probability `1 / MAINTAIN_EVERY`.
const MAINTAIN_EVERY: u64 = 32;

/// What a series' event values must be: stored in records, folded into `A` by compactions.
pub trait SeriesValue: Serialize + DeserializeOwned + Clone + Send + Sync + 'static {}
impl<T: Serialize + DeserializeOwned + Clone + Send + Sync + 'static> SeriesValue for T {}

/// A windowed metric of aggregate `A` fed with events of value `V`, stored so that a fold
/// touches only what its batch touches.
///
/// [`Series`]: event-time windows stored so that a fold touches only what its batch touches.
///
/// A [`Metric`](super::Metric) keeps each shard's whole state — every window, every remembered
/// ID — in one value, so every fold rewrites all of it and its cost grows with the metric's
/// age. A `Series` partitions state by **event-time bucket** (a group of windows), splits
/// each bucket's remembered IDs by **shard**, and lets a fold **append** instead of rewrite:
///
/// ```text
///  fold(batch) ─► refuse: time > now + skew (FutureEvent), time < now − H (Late)
///              ─► group by bucket = time / B ─► create <m>/r/<bucket>/<record id>   (no read)
///              ─► now and then (about once per 16 384 events or 256 appends) compact
///                 the buckets it appended to
///  compact(bucket) ─► list <m>/r/<bucket>/, read the records, the bucket's base and its K
///                     fingerprint sets; fold every record's events (dedup by ID); write
///                     the sets that grew under new keys, compare-and-set the base; then
///                     delete the records (a crash before is harmless: the base lists
///                     the records it absorbed)
///  sweep        ─► compact buckets a grace after they end (settle); at end + H + G fold
///                     what is pending, mark them sealed in the cursor, delete their sets;
///                     at end + R + G delete every key of the bucket (evict)
///  query [from, to) ─► for the buckets in range only: base + pending records, merged
/// ```
///
/// This is the shape of an LSM tree or ClickHouse's MergeTree (immutable parts appended,
/// merged in the background, reads merge parts on the fly), kept to single-key conditional
/// writes so S3 (`If-None-Match`/`If-Match`) and DynamoDB (`ConditionExpression`) can hold it
/// too, as Delta Lake and Iceberg commit on object stores. FORMAT.md specifies every key and
/// value byte by byte.
///
/// # Keys
///
/// | key | value | written by |
/// |---|---|---|
/// | `<m>/meta` | parameters: window W, bucket B, horizon H, retention R, grace G, shards K, aggregate type and parameters | the first open (create-if-absent) |
/// | `<m>/cursor` | next bucket to settle, to seal, to evict | [`maintain`](Series::maintain) (compare-and-set) |
/// | `<m>/r/<bucket>/<record id>` | a batch's events of one bucket: fingerprint, time, value | [`Series::fold`] (create, unique key) |
/// | `<m>/b/<bucket>/base` | per window of the bucket its aggregate; absorbed records; counters; the K set keys | compaction (compare-and-set) |
/// | `<m>/i/<bucket>/<shard>/<set id>` | the fingerprints of one shard's folded events | compaction (create; never rewritten) |
/// | `<m>/p/<group>` | which bases of 256 consecutive buckets were written (see [`accept_vanished`](Series::accept_vanished)) | compaction, eviction (compare-and-set) |
///
/// `<bucket>` is `time / B` spelt as a group of 256 buckets and the bucket within it (hex),
/// so byte order is time order and a sweep lists one directory per 256 buckets. An event's
/// shard is its ID's fingerprint mod K.
///
/// # Exactly once, and what is late
///
/// The writer's clock ([`Clock`], the wall clock by default) decides, never an event time:
///
/// * an event more than `max_skew` ahead of the clock is refused with
///   [`Error::FutureEvent`] — nothing is written for it, so one event stamped in
///   microseconds or days ahead cannot move any decision;
/// * an event older than `now − H` is `EventOutcome::Done(Outcome::Late)`: refused and counted;
/// * every other event is appended ([`EventOutcome::Accepted`]) and folded by a compaction
///   exactly once: a later delivery of it, within the horizon, is a duplicate whatever the
///   number of writers, the order of their batches, or the time between deliveries.
///
/// A bucket keeps its events' IDs until `end + H + G` (G, the *grace*, bounds how long a fold
/// may take from reading its clock to its last append); then a compaction **seals** it: the
/// IDs are dropped, and an event of it arriving later (only possible from a writer slower than
/// G) is counted late. A bucket is deleted from the store `R + G` after it ends.
///
/// Sealing and eviction are compare-and-set writes of the base: a compactor that read the
/// base before it was sealed or deleted fails its write, re-reads, and sees the seal.
///
/// # Cost
///
/// A fold is one create per bucket its batch touches (no read). A compaction reads and writes
/// one bucket. Neither depends on the metric's age, retention or horizon; a query reads only
/// the buckets in its range.
///
/// # Example
///
/// ```
/// # #[cfg(feature = "store")] {
/// use std::sync::Arc;
/// use std::time::Duration;
/// use shardfold::store::{EventOutcome, ManualClock, MemoryStore, Series, SeriesConfig};
/// use shardfold::{Event, Stats};
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let clock = ManualClock::new(3_600_000);
/// let config = SeriesConfig::new(Stats::default())
///     .window(Duration::from_secs(60))
///     .clock(Arc::new(clock.clone()));
/// let series = Series::<Stats, f64>::open(Arc::new(MemoryStore::new()), "latency", config).await?;
/// let batch = [Event::new("a", 3_590_000, 2.0), Event::new("b", 3_595_000, 4.0)];
/// let report = series.fold(&batch).await?;
/// assert_eq!(report.outcomes[0], EventOutcome::Accepted);
/// series.fold(&batch[..1]).await?; // a redelivery: counted as a duplicate, not folded
/// let view = series.query_range(3_540_000, 3_600_000).await?;
/// assert_eq!(view.window(3_540_000).map(|s| s.sum()), Some(6.0));
/// assert_eq!(view.tally().duplicates, 1);
/// # Ok::<(), shardfold::Error>(()) }).unwrap();
/// # }
/// ```
pub struct Series<A, V> {
    store: Arc<dyn KvStore>,
    name: String,
    keys: Keys,
    cfg: SeriesConfig<A>,
    meta: SeriesMeta,
    ids: RecordIds,
    /// Buckets whose base this handle knows is marked present (see `vanish`).
    marked: std::sync::Mutex<std::collections::HashSet<u64>>,
    _value: PhantomData<fn(V)>,
}

impl<A, V> std::fmt::Debug for Series<A, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Series")
            .field("backend", &self.store.backend())
            .field("name", &self.name)
            .field("meta", &self.meta)
            .finish_non_exhaustive()
    }
}

/// Unique record ids: a random 64-bit writer id and a counter.
#[derive(Debug)]
struct RecordIds {
    writer: u64,
    next: AtomicU64,
}

impl RecordIds {
    fn new() -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let writer = RandomState::new().hash_one((nanos, std::process::id()));
        RecordIds {
            writer,
            next: AtomicU64::new(0),
        }
    }

    fn next(&self) -> u128 {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        (u128::from(self.writer) << 64) | u128::from(n)
    }

    /// A cheap pseudo-random draw (SplitMix64 of the counter): true with probability
    /// `num / den` (never when `den` is 0).
    fn chance(&self, num: u64, den: u64) -> bool {
        if den == 0 {
            return false;
        }
        let mut z = self
            .next
            .fetch_add(1, Ordering::Relaxed)
            .wrapping_add(self.writer)
            .wrapping_mul(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        (z ^ (z >> 31)) % den < num
    }
}

/// One record to append: its bucket, key, bytes and the batch indexes it carries.
struct Pending {
    bucket: u64,
    key: Vec<u8>,
    bytes: Vec<u8>,
    indexes: Vec<usize>,
}

impl<A, V> Series<A, V>
where
    A: Aggregate + Insert<V>,
    V: SeriesValue,
{
    /// Opens series `name`: records its parameters on first use, else checks them.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidParameter`] for a bad name or configuration;
    /// [`Error::IncompatibleParams`] naming the parameter and both values when the series
    /// exists with other parameters, and [`Error::WrongType`] when it holds another
    /// aggregate (or is a [`Metric`](super::Metric)) — before anything is written;
    /// [`Error::Store`].
    pub async fn open(
        store: Arc<dyn KvStore>,
        name: &str,
        config: SeriesConfig<A>,
    ) -> Result<Self> {
        super::meta::validate(name, 1)?;
        config.validate()?;
        let keys = Keys::new(&*store, name);
        let meta = config.meta();
        let series = Series {
            store,
            name: name.to_owned(),
            keys,
            cfg: config,
            meta,
            ids: RecordIds::new(),
            marked: std::sync::Mutex::default(),
            _value: PhantomData,
        };
        series.ensure_meta().await?;
        Ok(series)
    }

    async fn ensure_meta(&self) -> Result<()> {
        let key = self.keys.meta();
        let stored = match self.store.read(&key).await? {
            Some((bytes, _)) => codec::decode::<SeriesMeta>(&bytes)?,
            None => match self.store.create(&key, &codec::encode(&self.meta)).await? {
                WriteOutcome::Written(_) => {
                    self.create_cursor().await?;
                    return Ok(());
                }
                WriteOutcome::Conflict => match self.store.read(&key).await? {
                    Some((bytes, _)) => codec::decode::<SeriesMeta>(&bytes)?,
                    None => {
                        return Err(Error::store(
                            self.store.backend(),
                            StoreErrorKind::Other,
                            "metadata key vanished",
                        ));
                    }
                },
            },
        };
        self.meta.check_against(&stored)
    }

    /// The series' name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The configuration it was opened with.
    pub fn config(&self) -> &SeriesConfig<A> {
        &self.cfg
    }

    fn bucket_of(&self, time_ms: u64) -> u64 {
        time_ms / self.meta.bucket_ms
    }

    fn bucket_end(&self, bucket: u64) -> u64 {
        bucket.saturating_add(1).saturating_mul(self.meta.bucket_ms)
    }

    /// Folds a batch: appends its events to their buckets; see the [type docs](Series).
    ///
    /// Per event, in batch order: [`EventOutcome::Accepted`] (appended; a compaction folds it,
    /// or counts it as a duplicate — also of an earlier event of the same batch), `Late` (older
    /// than `now − horizon`), or
    /// `Failed` — [`Error::FutureEvent`], a value the aggregate refuses (NaN, …), or a store
    /// error after the retries, or [`Error::DeadlineExceeded`] when the retry policy's
    /// [`deadline`](crate::store::RetryPolicy::deadline) passed first (redeliver those).
    /// Compactions this fold runs afterwards never change the report: their failures are
    /// logged and left to the next compaction, and they stop at the deadline.
    ///
    /// # Errors
    ///
    /// None at batch level today; per-event failures are in the report.
    pub async fn fold(&self, events: &[Event<V>]) -> Result<FoldReport> {
        let deadline = std::time::Instant::now() + self.cfg.policy.deadline;
        self.fold_by(events, deadline).await
    }

    /// As [`fold`](Self::fold), giving up at `deadline` — for example the Lambda context's
    /// deadline less the time the handler needs to answer. Events whose records were not
    /// written by then come back `Failed` with [`Error::DeadlineExceeded`]: redeliver them (a
    /// record that landed just before the deadline makes the redelivery a duplicate, never a
    /// double count).
    ///
    /// # Errors
    ///
    /// None at batch level today; per-event failures are in the report.
    pub async fn fold_by(
        &self,
        events: &[Event<V>],
        deadline: std::time::Instant,
    ) -> Result<FoldReport> {
        let given = deadline.saturating_duration_since(std::time::Instant::now());
        let now = self.cfg.clock.now_ms();
        let mut outcomes = vec![EventOutcome::Accepted; events.len()];
        let (groups, late) = self.screen(events, now, &mut outcomes);
        let pending = self.build_records(events, &groups, late, now, &mut outcomes);
        let appends = join_all(pending.iter().map(|p| self.append(&p.key, &p.bytes)));
        let results = match tokio::time::timeout(given, appends).await {
            Ok(results) => results,
            Err(_) => {
                tracing::warn!(series = %self.name, "fold deadline passed");
                let e = super::fold::deadline_exceeded(&self.name, given);
                pending.iter().map(|_| Err(e.clone())).collect()
            }
        };
        let mut touched = Vec::new();
        for (p, result) in pending.iter().zip(results) {
            match result {
                Ok(()) => touched.push((p.bucket, p.indexes.len() as u64)),
                Err(e) => {
                    for &i in &p.indexes {
                        if let Some(o) = outcomes.get_mut(i) {
                            *o = EventOutcome::Failed(e.clone());
                        }
                    }
                }
            }
        }
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if tokio::time::timeout(left, self.after_fold(&touched))
            .await
            .is_err()
        {
            tracing::debug!(series = %self.name, "compaction after fold stopped at the deadline");
        }
        Ok(FoldReport { outcomes })
    }

    /// Refuses future, late and invalid events; groups the rest by bucket. A second delivery of
    /// an event within the batch is appended like the first: the compaction counts it as a
    /// duplicate, so the stored tally accounts for every delivery.
    fn screen(
        &self,
        events: &[Event<V>],
        now: u64,
        outcomes: &mut [EventOutcome],
    ) -> (BTreeMap<u64, Vec<usize>>, u64) {
        let (skew, horizon) = (self.cfg.skew_ms, self.meta.horizon_ms);
        let mut groups: BTreeMap<u64, Vec<usize>> = BTreeMap::new();
        let mut late = 0u64;
        for ((i, e), out) in events.iter().enumerate().zip(outcomes.iter_mut()) {
            let t = e.time_ms;
            if t > now.saturating_add(skew) {
                *out = EventOutcome::Failed(Error::FutureEvent {
                    time_ms: t,
                    now_ms: now,
                    skew_ms: skew,
                });
            } else if t.saturating_add(horizon) < now {
                *out = EventOutcome::Done(Outcome::Late);
                late += 1;
            } else if let Err(err) = self.cfg.template.check_insert(&e.value) {
                // values the aggregate refuses on their own (NaN, …); what only a sum of
                // several values could refuse (an exact sum's overflow) is counted at compaction
                *out = EventOutcome::Failed(err);
            } else {
                groups.entry(self.bucket_of(t)).or_default().push(i);
            }
        }
        (groups, late)
    }

    /// Encodes the records of a batch, splitting a bucket's events at [`MAX_RECORD_BYTES`].
    /// The batch's late count rides on its first record (or on a record of its own).
    fn build_records(
        &self,
        events: &[Event<V>],
        groups: &BTreeMap<u64, Vec<usize>>,
        late: u64,
        now: u64,
        outcomes: &mut [EventOutcome],
    ) -> Vec<Pending> {
        let mut out = Vec::new();
        let mut late_left = late;
        for (&bucket, indexes) in groups {
            let mut rec = RecordWriter::new();
            let mut idx = Vec::with_capacity(indexes.len());
            for &i in indexes {
                let Some(e) = events.get(i) else { continue };
                if rec.len() >= MAX_RECORD_BYTES && rec.count() > 0 {
                    let full = std::mem::replace(&mut rec, RecordWriter::new());
                    out.push(self.pending(bucket, full, std::mem::take(&mut idx), &mut late_left));
                }
                match rec.push(e.id.fingerprint(), e.time_ms, &e.value) {
                    Ok(()) => idx.push(i),
                    Err(err) => {
                        if let Some(o) = outcomes.get_mut(i) {
                            *o = EventOutcome::Failed(err);
                        }
                    }
                }
            }
            if rec.count() > 0 {
                out.push(self.pending(bucket, rec, idx, &mut late_left));
            }
        }
        if late_left > 0 {
            let bucket = self.bucket_of(now);
            out.push(self.pending(bucket, RecordWriter::new(), Vec::new(), &mut late_left));
        }
        out
    }

    fn pending(
        &self,
        bucket: u64,
        rec: RecordWriter,
        indexes: Vec<usize>,
        late: &mut u64,
    ) -> Pending {
        Pending {
            bucket,
            key: self.keys.record(bucket, self.ids.next()),
            bytes: rec.finish(std::mem::take(late)),
            indexes,
        }
    }

    /// Creates one record, retrying store errors with the same key: a retry of a create that
    /// had landed finds the key taken, which means written.
    async fn append(&self, key: &[u8], bytes: &[u8]) -> Result<()> {
        let policy = &self.cfg.policy;
        let mut last = None;
        for attempt in 1..=policy.max_attempts {
            match self.store.create(key, bytes).await {
                Ok(_) => return Ok(()),
                Err(e @ Error::Store { .. }) if e.is_transient() => {
                    tracing::warn!(series = %self.name, attempt, error = %e, "append failed, retrying");
                    last = Some(e);
                }
                Err(e) => return Err(e),
            }
            if attempt < policy.max_attempts {
                policy.sleep(attempt).await;
            }
        }
        Err(last.unwrap_or_else(|| {
            Error::store(
                self.store.backend(),
                StoreErrorKind::Other,
                "append gave up",
            )
        }))
    }

    /// Compacts some of the buckets just appended to — each with probability
    /// `max(1 / compact_every, events appended / COMPACT_EVENTS)`, so that a compaction
    /// (which rewrites the bucket's remembered IDs) comes about once per `COMPACT_EVENTS`
    /// events or `compact_every` appends — and sometimes sweeps settling, sealing and
    /// eviction; failures are logged only (the records are durable).
    ///
    /// A fold that appended nothing does nothing more (a batch refused whole changes no
    /// stored byte), nor does one with `compact_every = 0`.
    async fn after_fold(&self, touched: &[(u64, u64)]) {
        let every = u64::from(self.cfg.compact_every);
        if touched.is_empty() || every == 0 {
            return;
        }
        let mut chosen: Vec<u64> = touched
            .iter()
            .filter(|&&(_, n)| {
                self.ids
                    .chance(n.max(COMPACT_EVENTS / every), COMPACT_EVENTS)
            })
            .map(|&(b, _)| b)
            .collect();
        chosen.dedup();
        for r in join_all(chosen.iter().map(|&b| self.compact_bucket(b))).await {
            if let Err(e) = r {
                tracing::warn!(series = %self.name, error = %e, "compaction failed");
            }
        }
        if self.ids.chance(1, MAINTAIN_EVERY)
            && let Err(e) = self.maintain().await
        {
            tracing::warn!(series = %self.name, error = %e, "maintenance failed");
        }
    }
}
