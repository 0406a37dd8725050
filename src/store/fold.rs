//! The fold loop, written once above [`KvStore`]: read, decode, dedup and fold, conditional
//! write, retry.
//!
//! [`Metric::fold`] splits a batch by shard (`event.shard_key() % K`) and, for every shard
//! concurrently, runs attempts of:
//!
//! 1. read `<metric>/<k>` → absent, or (bytes, version);
//! 2. decode the state (or start from the metric's template — `A::default()` unless opened with
//!    [`Metric::open_with`] or a [`MetricBuilder::template`]), then fold **this batch's** events
//!    of the shard into it with [`Offer::offer`], which dedups (an event already in the state is
//!    a duplicate, one beyond the state's horizon or in a closed window is late; [`Deduped`] and
//!    [`Windowed`] count both in the state);
//! 3. if the state changed (also when only those counters moved), encode and write
//!    conditionally (create if it was absent, else update if the version is still the one
//!    read);
//! 4. on a conflict or a store error, sleep (exponential backoff, full jitter — see
//!    [`RetryPolicy`]) and start again at 1 from the raw batch.
//!
//! A shard's events are applied in one write or not at all. After `max_attempts` the shard's
//! events fail with [`Error::Contended`] (or the last store error); other shards are not
//! affected, and [`FoldReport`] tells the caller which events to redeliver. Because step 1
//! re-reads, a write whose reply was lost is harmless: if it landed, its events come back as
//! `EventOutcome::Done(Outcome::Duplicate)`, so nothing is lost and nothing is counted twice.
//!
//! # Stream records (Kinesis, Kafka)
//!
//! A [`StreamRecord`] goes to the shard of its partition's stable hash, so one partition's
//! dedup memory lives in one key. Fold them into a `Deduped<A, SeqDedup>` (a high-water mark
//! per partition) or a `Deduped<A>` (IDs); the [`dedup`](crate::dedup#by-sequence-number)
//! module docs say which to choose.

use std::sync::Arc;

use futures_util::future::join_all;
use tracing::Instrument;

use super::{KvStore, RetryPolicy, Snapshot, Version, WriteOutcome, meta};
use crate::Aggregate;
use crate::codec;
#[cfg(doc)]
use crate::dedup::Deduped;
use crate::dedup::{Event, Offer, Outcome, StreamRecord};
use crate::error::{Error, Result};
use crate::hash::StableHash;
#[cfg(doc)]
use crate::window::Windowed;

/// An event that knows its shard: the stable hash of its ID (see [`crate::hash`]), so every
/// delivery of one event lands in the same shard, whatever process folds it.
pub trait ShardKey {
    /// The stable 64-bit hash of the event's identity; the shard is this value mod K.
    fn shard_key(&self) -> u64;
}

/// A stored state that folds events of type `E` exactly once: an [`Aggregate`] that
/// [`Offer`]s events ([`Deduped`], [`Windowed`], your own). Implemented for every such type.
pub trait FoldState<E>: Aggregate + Offer<E> {}

impl<A: Aggregate + Offer<E>, E> FoldState<E> for A {}

/// What happened to one event of a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventOutcome {
    /// The state's verdict, durably written: [`Outcome::Folded`], [`Outcome::Duplicate`]
    /// (already in the stored state, including a lost-reply write of this very call) or
    /// [`Outcome::Late`] (refused as late, or out of order, by the state).
    Done(Outcome),
    /// Durably appended to its bucket's records ([`Series`](super::Series)); a compaction
    /// folds it exactly once, or counts it as a duplicate if an earlier delivery was folded.
    Accepted,
    /// Not applied: the event itself was refused, or its shard could not be written
    /// ([`Error::Contended`], [`Error::Store`], a stored state that fails to decode).
    /// Redeliver it later.
    Failed(Error),
}

impl From<Outcome> for EventOutcome {
    fn from(outcome: Outcome) -> Self {
        EventOutcome::Done(outcome)
    }
}

impl EventOutcome {
    /// The state's verdict, if the event was decided ([`EventOutcome::Done`]).
    pub fn outcome(&self) -> Option<Outcome> {
        match self {
            EventOutcome::Done(o) => Some(*o),
            _ => None,
        }
    }

    /// Equal, ignoring a failure's error.
    fn same_kind(&self, other: &Self) -> bool {
        match (self, other) {
            (EventOutcome::Failed(_), EventOutcome::Failed(_)) => true,
            (a, b) => a == b,
        }
    }
}

/// The outcome of every event of a batch, in batch order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoldReport {
    /// `outcomes[i]` is what happened to `events[i]`.
    pub outcomes: Vec<EventOutcome>,
}

impl FoldReport {
    /// Indexes of the events that failed (to report as a partial batch failure).
    pub fn failed(&self) -> impl Iterator<Item = usize> + '_ {
        self.indexes(|o| matches!(o, EventOutcome::Failed(_)))
    }

    /// How many events had `outcome` (compared ignoring a failure's error).
    pub fn count(&self, outcome: &EventOutcome) -> usize {
        self.indexes(|o| o.same_kind(outcome)).count()
    }

    /// How many events the states decided `outcome` for.
    pub fn count_outcome(&self, outcome: Outcome) -> usize {
        self.count(&EventOutcome::Done(outcome))
    }

    /// Whether no event failed.
    pub fn is_complete(&self) -> bool {
        self.failed().next().is_none()
    }

    fn indexes<'s>(
        &'s self,
        f: impl Fn(&EventOutcome) -> bool + 's,
    ) -> impl Iterator<Item = usize> + 's {
        (0..self.outcomes.len()).filter(move |&i| self.outcomes.get(i).is_some_and(&f))
    }
}

/// Opens a [`Metric`] from named parameters ([`Metric::builder`]).
pub struct MetricBuilder<A> {
    store: Arc<dyn KvStore>,
    name: String,
    shards: u32,
    policy: RetryPolicy,
    template: A,
}

impl<A> std::fmt::Debug for MetricBuilder<A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetricBuilder")
            .field("backend", &self.store.backend())
            .field("name", &self.name)
            .field("shards", &self.shards)
            .finish_non_exhaustive()
    }
}

impl<A: Aggregate> MetricBuilder<A> {
    /// K, the number of write shards (1..=4096; default 4). Fixed when the metric is created.
    pub fn shards(mut self, shards: u32) -> Self {
        self.shards = shards;
        self
    }

    /// The retry policy of folds (default [`RetryPolicy::default`]).
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// The state a new shard starts from: it carries the parameters (window width, dedup
    /// horizon, sketch precision), recorded when the metric is created.
    pub fn template(mut self, template: A) -> Self {
        self.template = template;
        self
    }

    /// Opens (creating if needed) the metric, as [`Metric::open_with`].
    ///
    /// # Errors
    ///
    /// [`Error::InvalidParameter`] naming `metric name`, `shards`, `max_attempts` or
    /// `base_delay`; otherwise as [`Metric::open_with`].
    pub async fn open(self) -> Result<Metric<A>> {
        self.policy.validate()?;
        let metric = Metric::open_with(self.store, &self.name, self.shards, self.template).await?;
        Ok(Metric {
            policy: self.policy,
            ..metric
        })
    }
}

/// A metric: an aggregate of type `A` stored in K shards of a [`KvStore`].
///
/// ```
/// use std::sync::Arc;
/// use std::time::Duration;
/// use shardfold::store::{EventOutcome, MemoryStore, Metric};
/// use shardfold::{Deduped, Event, IdDedup, Outcome, Sum};
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// // order amounts, each order folded once: IDs remembered for 6 hours
/// let dedup = IdDedup::builder().horizon(Duration::from_secs(6 * 3600));
/// let metric = Metric::builder(Arc::new(MemoryStore::new()), "orders")
///     .shards(4)
///     .template(dedup.build_deduped(Sum::default())?)
///     .open()
///     .await?;
/// let t = 1_764_633_600_000; // event time, ms
/// let batch = [Event::new("o-1", t, 250i64), Event::new("o-2", t, 100), Event::new("o-1", t, 250)];
/// let report = metric.fold(&batch).await?;
/// assert_eq!(report.outcomes[2], EventOutcome::Done(Outcome::Duplicate));
/// let again = metric.fold(&batch[..1]).await?; // a redelivery
/// assert_eq!(again.outcomes[0], EventOutcome::Done(Outcome::Duplicate));
/// let total: Deduped<Sum, IdDedup> = metric.query().await?;
/// assert_eq!(total.aggregate().get(), 350);
/// # Ok::<(), shardfold::Error>(()) }).unwrap();
/// ```
pub struct Metric<A> {
    store: Arc<dyn KvStore>,
    name: String,
    shards: u32,
    policy: RetryPolicy,
    /// The state a shard starts from before its first write (carries the parameters: window
    /// width, dedup horizon, sketch precision, …).
    template: A,
    /// Shards this handle knows were written (marked in `<metric>/present`): an absent one of
    /// them has vanished.
    known: std::sync::Mutex<Vec<bool>>,
}

impl<A> std::fmt::Debug for Metric<A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metric")
            .field("backend", &self.store.backend())
            .field("name", &self.name)
            .field("shards", &self.shards)
            .finish_non_exhaustive()
    }
}

type Indexed<'e, E> = Vec<(usize, &'e E)>;

impl<A: Aggregate> Metric<A> {
    /// Opens metric `name` with `shards` shards, recording K and `A`'s type tag in its
    /// metadata key on first use (create-if-absent, so concurrent first opens agree).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidParameter`] for an empty or over-long name or K outside 1..=4096;
    /// [`Error::IncompatibleParams`] when the metric exists with another K;
    /// [`Error::WrongType`] when it holds another aggregate type; [`Error::Store`].
    pub async fn open(store: Arc<dyn KvStore>, name: &str, shards: u32) -> Result<Self> {
        Self::open_with(store, name, shards, A::default()).await
    }

    /// As [`open`](Metric::open), with the state a new shard starts from: use it for
    /// aggregates with parameters (`Windowed::new(width, lateness, retention)`,
    /// `Deduped::new(horizon, slot, …)`, `Distinct::new(p)`, …). The parameters are recorded
    /// in the metadata key when the metric is created; opening it with others fails here with
    /// [`Error::IncompatibleParams`] (`"metric aggregate parameters"`, both parameter blocks in
    /// hex) before anything is written.
    ///
    /// # Errors
    ///
    /// As [`open`](Metric::open).
    pub async fn open_with(
        store: Arc<dyn KvStore>,
        name: &str,
        shards: u32,
        template: A,
    ) -> Result<Self> {
        meta::validate(name, shards)?;
        let key = store.metric_key(name, "meta");
        let mut params = Vec::new();
        template.write_params(&mut params);
        meta::ensure(&*store, &key, shards, A::TYPE_TAG, params).await?;
        Ok(Metric {
            store,
            name: name.to_owned(),
            shards,
            policy: RetryPolicy::default(),
            template,
            known: std::sync::Mutex::new(vec![false; shards as usize]),
        })
    }

    /// A builder for metric `name` in `store`: 4 shards, the default [`RetryPolicy`] and
    /// `A::default()` as the template unless set.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// use std::sync::Arc;
    /// use std::time::Duration;
    /// use shardfold::store::{MemoryStore, Metric, RetryPolicy};
    /// use shardfold::{IdDedup, Sum};
    /// let dedup = IdDedup::builder().horizon(Duration::from_secs(6 * 3600));
    /// let metric = Metric::builder(Arc::new(MemoryStore::new()), "checkout")
    ///     .shards(8)
    ///     .retry(RetryPolicy::default())
    ///     .template(dedup.build_deduped(Sum::default())?)
    ///     .open()
    ///     .await?;
    /// assert_eq!(metric.shards(), 8);
    /// # Ok::<(), shardfold::Error>(()) }).unwrap();
    /// ```
    pub fn builder(store: Arc<dyn KvStore>, name: impl Into<String>) -> MetricBuilder<A> {
        MetricBuilder {
            store,
            name: name.into(),
            shards: 4,
            policy: RetryPolicy::default(),
            template: A::default(),
        }
    }

    /// Replaces the retry policy.
    ///
    /// # Errors
    ///
    /// As [`RetryPolicy::validate`].
    pub fn with_retry(mut self, policy: RetryPolicy) -> Result<Self> {
        policy.validate()?;
        self.policy = policy;
        Ok(self)
    }

    /// The metric's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// K, the number of shards.
    pub fn shards(&self) -> u32 {
        self.shards
    }

    /// The store key of shard `k`.
    pub fn shard_store_key(&self, k: u32) -> Vec<u8> {
        self.store.metric_key(&self.name, &k.to_string())
    }

    /// Folds a batch; see the [module docs](self). Never half-applies a shard. Gives up on a
    /// shard at the retry policy's [`deadline`](RetryPolicy::deadline): its events come back
    /// `Failed` with [`Error::DeadlineExceeded`].
    ///
    /// # Errors
    ///
    /// None at batch level today; per-event failures are in the report.
    pub async fn fold<E: ShardKey + Clone>(&self, events: &[E]) -> Result<FoldReport>
    where
        A: FoldState<E>,
    {
        let deadline = std::time::Instant::now() + self.policy.deadline;
        self.fold_by(events, deadline).await
    }

    /// As [`fold`](Self::fold), giving up at `deadline` — for example the Lambda context's
    /// deadline less the time the handler needs to answer. Events of shards not written by
    /// then come back `Failed` with [`Error::DeadlineExceeded`]: redeliver them (a write that
    /// landed just before the deadline makes the redelivery a duplicate, never a double
    /// count).
    ///
    /// # Errors
    ///
    /// None at batch level today; per-event failures are in the report.
    pub async fn fold_by<E: ShardKey + Clone>(
        &self,
        events: &[E],
        deadline: std::time::Instant,
    ) -> Result<FoldReport>
    where
        A: FoldState<E>,
    {
        let given = deadline.saturating_duration_since(std::time::Instant::now());
        let mut by_shard: Vec<Indexed<'_, E>> = vec![Vec::new(); self.shards as usize];
        for (i, e) in events.iter().enumerate() {
            let k = (e.shard_key() % u64::from(self.shards)) as usize;
            if let Some(part) = by_shard.get_mut(k) {
                part.push((i, e));
            }
        }
        let touched: Vec<u32> = (0..self.shards)
            .filter(|&k| by_shard.get(k as usize).is_some_and(|p| !p.is_empty()))
            .collect();
        let learned = match tokio::time::timeout(given, self.learn_presence(&touched)).await {
            Ok(learned) => learned,
            Err(_) => Err(deadline_exceeded(&self.name, given)),
        };
        if let Err(e) = learned {
            let outcomes = events.iter().map(|_| EventOutcome::Failed(e.clone()));
            return Ok(FoldReport {
                outcomes: outcomes.collect(),
            });
        }
        let work = by_shard
            .iter()
            .enumerate()
            .filter(|(_, part)| !part.is_empty())
            .map(|(k, part)| self.fold_shard(k as u32, part, given));
        let mut outcomes = vec![None; events.len()];
        for (i, outcome) in join_all(work).await.into_iter().flatten() {
            if let Some(slot) = outcomes.get_mut(i) {
                *slot = Some(outcome);
            }
        }
        // every event went to exactly one shard, which reported it
        let outcomes = outcomes
            .into_iter()
            .map(|o| {
                o.unwrap_or_else(|| {
                    EventOutcome::Failed(Error::internal("Metric::fold: an event got no outcome"))
                })
            })
            .collect();
        Ok(FoldReport { outcomes })
    }

    async fn fold_shard<E: Clone>(
        &self,
        shard: u32,
        events: &[(usize, &E)],
        given: std::time::Duration,
    ) -> Vec<(usize, EventOutcome)>
    where
        A: FoldState<E>,
    {
        let start = tokio::time::Instant::now();
        let e = match tokio::time::timeout(given, self.retry_shard(shard, events)).await {
            Ok(Ok(outcomes)) => {
                // the events are written: past the deadline only the mark is given up (it is
                // set by the shard's next fold)
                let left = given.saturating_sub(start.elapsed());
                if tokio::time::timeout(left, self.mark_written(shard))
                    .await
                    .is_err()
                {
                    tracing::warn!(metric = %self.name, shard, "fold deadline passed before the shard was marked written");
                }
                return outcomes;
            }
            Ok(Err(e)) => e,
            Err(_) => {
                tracing::warn!(metric = %self.name, shard, "fold deadline passed");
                deadline_exceeded(&self.name, given)
            }
        };
        events
            .iter()
            .map(|(i, _)| (*i, EventOutcome::Failed(e.clone())))
            .collect()
    }

    async fn retry_shard<E: Clone>(&self, shard: u32, events: &[(usize, &E)]) -> Result<Outcomes>
    where
        A: FoldState<E>,
    {
        let key = self.shard_store_key(shard);
        let mut last_store_error = None;
        for attempt in 1..=self.policy.max_attempts {
            let span = tracing::debug_span!("fold", metric = %self.name, shard, attempt);
            match self.attempt(shard, &key, events).instrument(span).await {
                Ok(Some(outcomes)) => {
                    trace_done(&self.name, shard, attempt, &outcomes);
                    return Ok(outcomes);
                }
                Ok(None) => {
                    tracing::debug!(metric = %self.name, shard, attempt, "write conflict, retrying");
                    last_store_error = None;
                }
                Err(e @ Error::Store { .. }) if e.is_transient() => {
                    tracing::warn!(metric = %self.name, shard, attempt, error = %e, "store error, retrying");
                    last_store_error = Some(e);
                }
                Err(e) => return Err(e),
            }
            if attempt < self.policy.max_attempts {
                self.policy.sleep(attempt).await;
            }
        }
        tracing::warn!(metric = %self.name, shard, "giving up on shard");
        Err(last_store_error.unwrap_or_else(|| Error::Contended {
            metric: self.name.clone(),
            shard,
            attempts: self.policy.max_attempts,
        }))
    }

    /// One read-fold-write attempt: `Ok(None)` on a conflict.
    async fn attempt<E: Clone>(
        &self,
        shard: u32,
        key: &[u8],
        events: &[(usize, &E)],
    ) -> Result<Option<Outcomes>>
    where
        A: FoldState<E>,
    {
        // known before the read began: the shard was written before it, so absent means gone
        // (a mark set by a concurrent task after this read says nothing about it)
        let known = self.is_known(shard);
        let (mut state, stored) = self.read_state(key).await?;
        if stored.is_none() && known {
            return Err(Error::Vanished {
                metric: self.name.clone(),
                key: String::from_utf8_lossy(key).into_owned(),
            });
        }
        let outcomes: Outcomes = events
            .iter()
            .map(|(i, e)| {
                let outcome = match state.offer((*e).clone()) {
                    Ok(o) => EventOutcome::Done(o),
                    Err(err) => EventOutcome::Failed(err),
                };
                (*i, outcome)
            })
            .collect();
        // Written whenever the state changed — also when only its duplicate and late counters
        // moved, so those counts persist; a batch that changed nothing costs no write.
        let bytes = codec::encode(&state);
        let written = match stored {
            None if outcomes
                .iter()
                .all(|(_, o)| matches!(o, EventOutcome::Failed(_))) =>
            {
                return Ok(Some(outcomes));
            }
            None => self.store.create(key, &bytes).await?,
            Some((old, _)) if old == bytes => return Ok(Some(outcomes)),
            Some((_, v)) => self.store.update(key, &bytes, v).await?,
        };
        Ok(match written {
            WriteOutcome::Written(_) => Some(outcomes),
            WriteOutcome::Conflict => None,
        })
    }

    fn presence_key(&self) -> Vec<u8> {
        self.store.metric_key(&self.name, "present")
    }

    fn is_known(&self, shard: u32) -> bool {
        self.known
            .lock()
            .map(|k| k.get(shard as usize).copied().unwrap_or(false))
            .unwrap_or(false)
    }

    fn set_known(&self, shard: u32, on: bool) {
        if let Ok(mut k) = self.known.lock()
            && let Some(slot) = k.get_mut(shard as usize)
        {
            *slot = on;
        }
    }

    /// Reads `<metric>/present` once when a shard of `shards` is not yet known to this handle.
    async fn learn_presence(&self, shards: &[u32]) -> Result<()> {
        if shards.iter().all(|&k| self.is_known(k)) {
            return Ok(());
        }
        let (p, _) = super::presence::read(&*self.store, &self.presence_key(), self.shards).await?;
        for &k in shards {
            if p.has(k) {
                self.set_known(k, true);
            }
        }
        Ok(())
    }

    /// After a successful write of `shard`: marks it written in `<metric>/present` unless this
    /// handle knows it is. A failure is logged — the next fold of the shard marks it.
    async fn mark_written(&self, shard: u32) {
        if self.is_known(shard) {
            return;
        }
        let key = self.presence_key();
        match super::presence::mark(&*self.store, &self.name, &key, self.shards, shard, true).await
        {
            Ok(()) => self.set_known(shard, true),
            Err(e) => {
                tracing::warn!(metric = %self.name, shard, error = %e, "could not mark shard written");
            }
        }
    }

    /// Acknowledges that shard `shard` vanished ([`Error::Vanished`]): clears its mark, so
    /// the next fold starts it empty. Replay the shard's events from the source afterwards
    /// (they fold once: the fresh shard remembers none of them).
    ///
    /// # Errors
    ///
    /// [`Error::Store`]; [`Error::Contended`] if the presence record stays contended.
    pub async fn accept_vanished(&self, shard: u32) -> Result<()> {
        let key = self.presence_key();
        super::presence::mark(&*self.store, &self.name, &key, self.shards, shard, false).await?;
        self.set_known(shard, false);
        Ok(())
    }

    /// The shard's state, and its stored bytes and version if it exists.
    async fn read_state(&self, key: &[u8]) -> Result<(A, Option<(Vec<u8>, Version)>)> {
        Ok(match self.store.read(key).await? {
            None => (self.template.clone(), None),
            Some((bytes, v)) => {
                let state =
                    codec::decode::<A>(&bytes).map_err(|e| Error::damaged(&self.name, key, e))?;
                (state, Some((bytes, v)))
            }
        })
    }

    /// Reads the K shards concurrently and merges them (in any order: merges are commutative
    /// and associative).
    ///
    /// # Errors
    ///
    /// [`Error::Store`]; [`Error::Damaged`] naming the first shard key whose value does not
    /// decode, or [`Error::Vanished`] for a written shard now absent (see
    /// [`query_readable`](Self::query_readable) for an answer from the other shards); merge
    /// errors.
    pub async fn query(&self) -> Result<A> {
        let readable = self.query_readable().await?;
        match readable.unreadable.into_iter().next() {
            Some(damaged) => Err(damaged),
            None => Ok(readable.value),
        }
    }

    /// As [`query`](Self::query), but a shard whose value does not decode is left out and
    /// listed ([`Error::Damaged`], naming its key) instead of failing the whole query, and so
    /// is a shard that was written but is now absent ([`Error::Vanished`], see
    /// [`accept_vanished`](Self::accept_vanished)): the answer then covers the other shards'
    /// events only.
    ///
    /// **Repair.** A damaged shard also fails the folds of its events (they come back
    /// `Failed` with [`Error::Damaged`], nothing is lost). To repair: keep its bytes for
    /// inspection, delete the key (`KvStore::delete`), acknowledge the loss with
    /// [`accept_vanished`](Self::accept_vanished) — the shard restarts empty — and replay the
    /// source for that shard: the fresh shard remembers none of its events, so each folds once
    /// and the answer is exact again.
    ///
    /// # Errors
    ///
    /// [`Error::Store`]; merge errors.
    pub async fn query_readable(&self) -> Result<Readable<A>> {
        let mut snapshot = self.snapshot().await?;
        let mut value: Option<A> = None;
        let mut unreadable = Vec::new();
        if (snapshot.len() as u32) < self.shards {
            let (p, _) =
                super::presence::read(&*self.store, &self.presence_key(), self.shards).await?;
            let missing: Vec<u32> = (0..self.shards)
                .filter(|&k| p.has(k) && snapshot.shard(k).is_none())
                .collect();
            for k in missing {
                // marked after the snapshot read it? then it exists now: read it again
                let key = self.shard_store_key(k);
                match self.store.read(&key).await? {
                    Some((bytes, v)) => snapshot.insert_shard(k, v, bytes),
                    None => unreadable.push(Error::Vanished {
                        metric: self.name.clone(),
                        key: String::from_utf8_lossy(&key).into_owned(),
                    }),
                }
            }
        }
        for (k, shard) in snapshot.iter() {
            match codec::decode::<A>(&shard.state) {
                Ok(state) => match &mut value {
                    Some(acc) => acc.merge(&state)?,
                    None => value = Some(state),
                },
                Err(e) => unreadable.push(Error::damaged(&self.name, &self.shard_store_key(k), e)),
            }
        }
        Ok(Readable {
            value: value.unwrap_or_else(|| self.template.clone()),
            unreadable,
        })
    }

    /// Reads the K shards concurrently into a [`Snapshot`] (shard → version, state bytes).
    ///
    /// # Errors
    ///
    /// [`Error::Store`].
    pub async fn snapshot(&self) -> Result<Snapshot> {
        let keys: Vec<Vec<u8>> = (0..self.shards).map(|k| self.shard_store_key(k)).collect();
        let reads = join_all(keys.iter().map(|key| self.store.read(key))).await;
        let mut snap = Snapshot::default();
        for (k, read) in (0..self.shards).zip(reads) {
            if let Some((bytes, version)) = read? {
                snap.insert_shard(k, version, bytes);
            }
        }
        Ok(snap)
    }
}

/// A query's answer from the readable part of a metric, and what could not be read.
#[derive(Debug, Clone)]
pub struct Readable<T> {
    /// The answer from every readable shard or bucket.
    pub value: T,
    /// One [`Error::Damaged`] per value left out (empty: the answer is complete).
    pub unreadable: Vec<Error>,
}

impl<T> Readable<T> {
    /// Whether nothing was left out.
    pub fn is_complete(&self) -> bool {
        self.unreadable.is_empty()
    }
}

type Outcomes = Vec<(usize, EventOutcome)>;

/// [`Error::DeadlineExceeded`] for a fold of `metric` given `given`.
pub(crate) fn deadline_exceeded(metric: &str, given: std::time::Duration) -> Error {
    Error::DeadlineExceeded {
        metric: metric.to_owned(),
        deadline_ms: u64::try_from(given.as_millis()).unwrap_or(u64::MAX),
    }
}

/// One event per shard written: how many events were folded, duplicate, late or refused.
fn trace_done(metric: &str, shard: u32, attempt: u32, outcomes: &Outcomes) {
    if !tracing::enabled!(tracing::Level::DEBUG) {
        return;
    }
    let count = |f: fn(&EventOutcome) -> bool| outcomes.iter().filter(|(_, o)| f(o)).count();
    tracing::debug!(
        metric,
        shard,
        attempt,
        folded = count(|o| o.outcome() == Some(Outcome::Folded)),
        duplicate = count(|o| o.outcome() == Some(Outcome::Duplicate)),
        late = count(|o| o.outcome() == Some(Outcome::Late)),
        refused = count(|o| matches!(o, EventOutcome::Failed(_))),
        "shard folded"
    );
}

/// Merges decoded states of any number of shards.
/// Merges states, starting from the first (not from `A::default()`, whose parameters may differ
/// from the stored ones); no states give `A::default()`.
pub(crate) fn merge_all<A: Aggregate>(states: impl IntoIterator<Item = Result<A>>) -> Result<A> {
    let mut states = states.into_iter();
    let mut acc = match states.next() {
        None => return Ok(A::default()),
        Some(first) => first?,
    };
    for s in states {
        acc.merge(&s?)?;
    }
    Ok(acc)
}

/// Events of the dedup layer go to the shard of their ID's fingerprint, so every delivery of
/// one event meets the same dedup state.
impl<V> ShardKey for Event<V> {
    fn shard_key(&self) -> u64 {
        self.id.fingerprint()
    }
}

/// Stream records go to the shard of their partition's stable hash (see [`crate::hash`]), so a
/// partition's high-water mark (or its records' IDs) live in one key, whatever process folds
/// them.
impl<V> ShardKey for StreamRecord<V> {
    fn shard_key(&self) -> u64 {
        self.partition.stable_hash()
    }
}
