//! The fold loop, written once above [`KvStore`]: read, decode, dedup and fold, conditional
//! write, retry.
//!
//! [`Metric::fold`] splits a batch by shard (`event.shard_key() % K`) and, for every shard
//! concurrently, runs attempts of:
//!
//! 1. read `<metric>/<k>` → absent, or (bytes, version);
//! 2. decode the state (or start from the metric's template — `A::default()` unless opened with
//!    [`Metric::open_with`]), then fold **this batch's** events of the shard into it with
//!    [`FoldState::fold_event`], which dedups (an event already in the state is a duplicate, one
//!    beyond the state's horizon or in a closed window is late; [`Deduped`] and [`Windowed`]
//!    count both in the state);
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
//! [`EventOutcome::Duplicate`], so nothing is lost and nothing is counted twice.

use std::sync::Arc;

use futures_util::future::join_all;
use tracing::Instrument;

use super::{KvStore, RetryPolicy, Snapshot, Version, WriteOutcome, meta};
use crate::Aggregate;
use crate::codec;
use crate::dedup::{Deduped, Event, Outcome};
use crate::error::{Error, Result};
use crate::merge::Insert;
use crate::window::Windowed;

/// An event that knows its shard: the stable hash of its ID (see [`crate::hash`]), so every
/// delivery of one event lands in the same shard, whatever process folds it.
pub trait ShardKey {
    /// The stable 64-bit hash of the event's identity; the shard is this value mod K.
    fn shard_key(&self) -> u64;
}

/// A stored state that folds events of type `E` exactly once (a dedup wrapper or a window).
pub trait FoldState<E: ?Sized>: Aggregate {
    /// Folds `event` into `self` unless it is a duplicate or late.
    ///
    /// # Errors
    ///
    /// When the event's value is refused (NaN, overflow, …); `self` must then be unchanged.
    fn fold_event(&mut self, event: &E) -> Result<Outcome>;
}

/// What happened to one event of a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventOutcome {
    /// Folded and durably written.
    Folded,
    /// Durably appended to its bucket's records ([`Series`](super::Series)); a compaction
    /// folds it exactly once, or counts it as a duplicate if an earlier delivery was folded.
    Accepted,
    /// Already in the stored state (including a lost-reply write of this very call).
    Duplicate,
    /// Refused as late by the state.
    Late,
    /// Not applied: the event itself was refused, or its shard could not be written
    /// ([`Error::Contended`], [`Error::Store`], a stored state that fails to decode).
    /// Redeliver it later.
    Failed(Error),
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
        let d = std::mem::discriminant(outcome);
        self.indexes(|o| std::mem::discriminant(o) == d).count()
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

/// A metric: an aggregate of type `A` stored in K shards of a [`KvStore`].
///
/// ```
/// # #[cfg(feature = "testkit")] {
/// use std::sync::Arc;
/// use shardfold::store::{EventOutcome, MemoryStore, Metric};
/// // the conformance suite's dedup-by-ID sum stands in for a real deduped aggregate
/// use shardfold::store::conformance::{IdSum, TestEvent};
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let store = Arc::new(MemoryStore::new());
/// let metric = Metric::<IdSum>::open(store, "orders", 4).await?;
/// let batch = [TestEvent::new(1), TestEvent::new(2), TestEvent::new(1)];
/// let report = metric.fold(&batch).await?;
/// assert_eq!(report.outcomes[2], EventOutcome::Duplicate);
/// let again = metric.fold(&batch[..1]).await?; // a redelivery
/// assert_eq!(again.outcomes[0], EventOutcome::Duplicate);
/// assert_eq!(metric.query().await?.ids.len(), 2);
/// # Ok::<(), shardfold::Error>(()) }).unwrap();
/// # }
/// ```
pub struct Metric<A> {
    store: Arc<dyn KvStore>,
    name: String,
    shards: u32,
    policy: RetryPolicy,
    /// The state a shard starts from before its first write (carries the parameters: window
    /// width, dedup horizon, sketch precision, …).
    template: A,
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
        })
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

    /// Folds a batch; see the [module docs](self). Never half-applies a shard.
    ///
    /// # Errors
    ///
    /// None at batch level today; per-event failures are in the report.
    pub async fn fold<E: ShardKey>(&self, events: &[E]) -> Result<FoldReport>
    where
        A: FoldState<E>,
    {
        let mut by_shard: Vec<Indexed<'_, E>> = vec![Vec::new(); self.shards as usize];
        for (i, e) in events.iter().enumerate() {
            let k = (e.shard_key() % u64::from(self.shards)) as usize;
            if let Some(part) = by_shard.get_mut(k) {
                part.push((i, e));
            }
        }
        let work = by_shard
            .iter()
            .enumerate()
            .filter(|(_, part)| !part.is_empty())
            .map(|(k, part)| self.fold_shard(k as u32, part));
        let mut outcomes = vec![EventOutcome::Duplicate; events.len()];
        for (i, outcome) in join_all(work).await.into_iter().flatten() {
            if let Some(slot) = outcomes.get_mut(i) {
                *slot = outcome;
            }
        }
        Ok(FoldReport { outcomes })
    }

    async fn fold_shard<E>(&self, shard: u32, events: &[(usize, &E)]) -> Vec<(usize, EventOutcome)>
    where
        A: FoldState<E>,
    {
        match self.retry_shard(shard, events).await {
            Ok(outcomes) => outcomes,
            Err(e) => events
                .iter()
                .map(|(i, _)| (*i, EventOutcome::Failed(e.clone())))
                .collect(),
        }
    }

    async fn retry_shard<E>(&self, shard: u32, events: &[(usize, &E)]) -> Result<Outcomes>
    where
        A: FoldState<E>,
    {
        let key = self.shard_store_key(shard);
        let mut last_store_error = None;
        for attempt in 1..=self.policy.max_attempts {
            let span = tracing::debug_span!("fold", metric = %self.name, shard, attempt);
            match self.attempt(&key, events).instrument(span).await {
                Ok(Some(outcomes)) => {
                    trace_done(&self.name, shard, attempt, &outcomes);
                    return Ok(outcomes);
                }
                Ok(None) => {
                    tracing::debug!(metric = %self.name, shard, attempt, "write conflict, retrying");
                    last_store_error = None;
                }
                Err(e @ Error::Store { .. }) => {
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
    async fn attempt<E>(&self, key: &[u8], events: &[(usize, &E)]) -> Result<Option<Outcomes>>
    where
        A: FoldState<E>,
    {
        let (mut state, stored) = self.read_state(key).await?;
        let outcomes: Outcomes = events
            .iter()
            .map(|(i, e)| {
                let outcome = match state.fold_event(e) {
                    Ok(Outcome::Folded) => EventOutcome::Folded,
                    Ok(Outcome::Duplicate) => EventOutcome::Duplicate,
                    Ok(Outcome::Late) => EventOutcome::Late,
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

    /// The shard's state, and its stored bytes and version if it exists.
    async fn read_state(&self, key: &[u8]) -> Result<(A, Option<(Vec<u8>, Version)>)> {
        Ok(match self.store.read(key).await? {
            None => (self.template.clone(), None),
            Some((bytes, v)) => (codec::decode::<A>(&bytes)?, Some((bytes, v))),
        })
    }

    /// Reads the K shards concurrently and merges them (in any order: merges are commutative
    /// and associative).
    ///
    /// # Errors
    ///
    /// [`Error::Store`]; decode errors of a stored shard; merge errors.
    pub async fn query(&self) -> Result<A> {
        let snapshot = self.snapshot().await?;
        if snapshot.is_empty() {
            return Ok(self.template.clone());
        }
        snapshot.state::<A>()
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

type Outcomes = Vec<(usize, EventOutcome)>;

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
        folded = count(|o| *o == EventOutcome::Folded),
        duplicate = count(|o| *o == EventOutcome::Duplicate),
        late = count(|o| *o == EventOutcome::Late),
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

/// A [`Deduped`] aggregate folds each event once per ID within its horizon.
impl<A, V> FoldState<Event<V>> for Deduped<A>
where
    Deduped<A>: Aggregate,
    A: Insert<V>,
    V: Clone,
{
    fn fold_event(&mut self, e: &Event<V>) -> Result<Outcome> {
        self.insert(e.id, e.time_ms, e.value.clone())
    }
}

/// A [`Windowed`] aggregate folds each event once into the window of its event time.
impl<A, V> FoldState<Event<V>> for Windowed<A>
where
    Windowed<A>: Aggregate,
    A: Insert<V> + Clone,
    V: Clone,
{
    fn fold_event(&mut self, e: &Event<V>) -> Result<Outcome> {
        self.insert(e.id, e.time_ms, e.value.clone())
    }
}
