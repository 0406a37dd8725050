//! [`IdDedup`]: event-ID fingerprints remembered for a time horizon, by event-time slot.

use std::time::Duration;

use super::{EventId, FpSet, Outcome, read_latest, read_sorted, write_latest, write_sorted};
use crate::codec::{Codec, Limits, Reader, tags, write_section_with};
use crate::error::{Error, Result};
use crate::merge::Merge;
use crate::time::{TimeRing, millis};

/// Remembers the [`EventId`]s of the last `horizon` milliseconds of event time, grouped by
/// event-time slots of `slot` milliseconds. See the [module docs](crate::dedup) for the
/// algorithm, the false-duplicate odds and the memory bound.
///
/// ```
/// use std::time::Duration;
/// use shardfold::{EventId, IdDedup, Outcome};
/// // one minute horizon, one-second slots (or `IdDedup::new(60_000, 1_000)`)
/// let mut d = IdDedup::builder()
///     .horizon(Duration::from_secs(60))
///     .slot(Duration::from_secs(1))
///     .build()?;
/// assert_eq!(d.insert(EventId::from("a"), 100_000)?, Outcome::Folded);
/// assert_eq!(d.insert(EventId::from("a"), 100_000)?, Outcome::Duplicate);
/// assert_eq!(d.insert(EventId::from("b"), 30_000)?, Outcome::Late); // before 100 s − 60 s
/// assert_eq!(d.ids_held(), 1);
/// # Ok::<(), shardfold::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct IdDedup {
    horizon_ms: u64,
    slot_ms: u64,
    latest: Option<u64>,
    /// Events with a time below this are late: `latest − horizon` (0 before any event).
    cutoff: u64,
    /// The slots by `time / slot`; the base is the first slot not expired; an empty set is a
    /// gap.
    slots: TimeRing<FpSet>,
}

/// The most slots a horizon may span (`horizon / slot`): bounds the slot ring's length.
pub const MAX_SLOTS: u64 = 4096;

/// One hour of horizon, ten-second slots.
impl Default for IdDedup {
    fn default() -> Self {
        IdDedup::blank(3_600_000, 10_000)
    }
}

/// Equal when the parameters, the latest event time and the remembered fingerprints (by
/// slot) are equal, whatever the in-memory layout.
impl PartialEq for IdDedup {
    fn eq(&self, other: &Self) -> bool {
        (self.horizon_ms, self.slot_ms, self.latest)
            == (other.horizon_ms, other.slot_ms, other.latest)
            && self.held().eq(other.held())
    }
}

impl Eq for IdDedup {}

/// Builds an [`IdDedup`] (or, with [`build_deduped`](IdDedupBuilder::build_deduped), a
/// [`Deduped`](super::Deduped)) from [`Duration`]s. Defaults: a one-hour horizon in 10 s slots.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdDedupBuilder {
    horizon: Duration,
    slot: Duration,
}

impl Default for IdDedupBuilder {
    fn default() -> Self {
        IdDedupBuilder {
            horizon: Duration::from_secs(3600),
            slot: Duration::from_secs(10),
        }
    }
}

impl IdDedupBuilder {
    /// How long (in event time) an event ID is remembered; older events are late.
    pub fn horizon(mut self, horizon: Duration) -> Self {
        self.horizon = horizon;
        self
    }

    /// The width of the event-time slots IDs are grouped (and expired) by.
    pub fn slot(mut self, slot: Duration) -> Self {
        self.slot = slot;
        self
    }

    /// The empty dedup state.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidParameter`] naming `horizon` or `slot`: zero, not a whole number of
    /// milliseconds, beyond `u64` milliseconds, or `horizon / slot` above [`MAX_SLOTS`].
    pub fn build(self) -> Result<IdDedup> {
        let horizon_ms = millis("horizon", self.horizon)?;
        let slot_ms = millis("slot", self.slot)?;
        check_params(horizon_ms, slot_ms).map_err(|(name, reason)| Error::InvalidParameter {
            name: name.strip_suffix("_ms").unwrap_or(name),
            reason: reason.into(),
        })?;
        Ok(IdDedup::blank(horizon_ms, slot_ms))
    }

    /// `aggregate` (normally empty) guarded by the dedup state [`build`](Self::build) makes.
    ///
    /// # Errors
    ///
    /// As [`build`](Self::build).
    pub fn build_deduped<A>(self, aggregate: A) -> Result<super::Deduped<A>> {
        Ok(super::Deduped::with_dedup(self.build()?, aggregate))
    }
}

impl IdDedup {
    /// An empty state remembering IDs for `horizon_ms` of event time in slots of `slot_ms`.
    ///
    /// # Panics
    ///
    /// When `slot_ms` or `horizon_ms` is 0 (see [`IdDedup::try_new`]).
    pub fn new(horizon_ms: u64, slot_ms: u64) -> Self {
        match Self::try_new(horizon_ms, slot_ms) {
            Ok(d) => d,
            Err(e) => panic!("{e}"),
        }
    }

    /// As [`IdDedup::new`].
    ///
    /// # Errors
    ///
    /// [`Error::InvalidParameter`] when `slot_ms` or `horizon_ms` is 0, or `horizon_ms /
    /// slot_ms` is above [`MAX_SLOTS`].
    pub fn try_new(horizon_ms: u64, slot_ms: u64) -> Result<Self> {
        check_params(horizon_ms, slot_ms).map_err(|(name, reason)| Error::InvalidParameter {
            name,
            reason: reason.into(),
        })?;
        Ok(IdDedup::blank(horizon_ms, slot_ms))
    }

    /// A builder taking [`Duration`]s.
    pub fn builder() -> IdDedupBuilder {
        IdDedupBuilder::default()
    }

    fn blank(horizon_ms: u64, slot_ms: u64) -> Self {
        IdDedup {
            horizon_ms,
            slot_ms,
            latest: None,
            cutoff: 0,
            slots: TimeRing::new(slot_ms),
        }
    }

    /// The non-empty slots, ascending: `(slot index, fingerprints)`.
    fn held(&self) -> impl Iterator<Item = (u64, &FpSet)> {
        self.slots.iter().filter(|(_, s)| !s.is_empty())
    }

    /// The slot for slot index `k ≥ base`, created (sized like its predecessors) if needed.
    #[inline]
    fn slot_mut(&mut self, k: u64) -> Option<&mut FpSet> {
        self.slots.entry(k, |ring| {
            // a new slot is sized like the fullest of the last eight: little growth in steady
            // streams, even when events straddle several slots
            let hint = ring.items().rev().take(8).map(FpSet::len).max();
            let mut set = FpSet::default();
            set.reserve(hint.unwrap_or(0));
            set
        })
    }

    /// The horizon in milliseconds.
    pub fn horizon_ms(&self) -> u64 {
        self.horizon_ms
    }

    /// The slot width in milliseconds.
    pub fn slot_ms(&self) -> u64 {
        self.slot_ms
    }

    /// The largest event time folded, if any.
    pub fn latest_event_time(&self) -> Option<u64> {
        self.latest
    }

    /// How many fingerprints are held.
    pub fn ids_held(&self) -> usize {
        self.slots.items().map(FpSet::len).sum()
    }

    /// How many event-time slots hold fingerprints.
    pub fn slots_held(&self) -> usize {
        self.held().count()
    }

    /// Heap bytes held: the fingerprint tables' allocated capacity and the slot ring.
    pub fn resident_bytes(&self) -> usize {
        let tables = self.slots.items().map(FpSet::resident_bytes).sum::<usize>();
        self.slots.ring_bytes() + tables
    }

    /// What [`insert`](IdDedup::insert) would return, without changing anything.
    pub fn check(&self, id: EventId, time_ms: u64) -> Outcome {
        if time_ms < self.cutoff {
            Outcome::Late
        } else if self
            .slots
            .get(self.slots.index(time_ms))
            .is_some_and(|s| s.contains(id.fingerprint()))
        {
            Outcome::Duplicate
        } else {
            Outcome::Folded
        }
    }

    /// Remembers `id` at `time_ms` unless it is late or already remembered, and says which.
    ///
    /// # Errors
    ///
    /// [`Error::Internal`] only if the state's own invariant broke (a bug); nothing changed.
    #[inline]
    pub fn insert(&mut self, id: EventId, time_ms: u64) -> Result<Outcome> {
        if time_ms < self.cutoff {
            return Ok(Outcome::Late);
        }
        // a time above `latest` cannot be a duplicate: its first delivery would have raised it
        if self.latest.is_none_or(|t| time_ms > t) {
            self.advance(time_ms);
        }
        let k = self.slots.index(time_ms);
        match self.slot_mut(k).map(|slot| slot.insert(id.fingerprint())) {
            Some(true) => Ok(Outcome::Folded),
            Some(false) => Ok(Outcome::Duplicate),
            // a time at or above the cutoff has its slot at or above the base
            None => Err(Error::internal(
                "IdDedup: an event's slot is below the base",
            )),
        }
    }

    /// Raises the latest event time to `time_ms` and drops the slots that end at or before
    /// the new cutoff.
    #[inline]
    fn advance(&mut self, time_ms: u64) {
        self.latest = Some(time_ms);
        self.cutoff = time_ms.saturating_sub(self.horizon_ms);
        // fast path: the cutoff is still within the base slot, nothing expires
        let base_end = self.slots.start(self.slots.base().saturating_add(1));
        if !self.slots.is_empty() && self.cutoff < base_end {
            return;
        }
        self.slots
            .advance_to(self.slots.index(self.cutoff), |_, _| {});
    }

    fn check_params_match(&self, other: &Self) -> Result<()> {
        if self.horizon_ms != other.horizon_ms {
            return Err(Error::incompatible(
                "dedup horizon (ms)",
                self.horizon_ms,
                other.horizon_ms,
            ));
        }
        if self.slot_ms != other.slot_ms {
            return Err(Error::incompatible(
                "dedup slot (ms)",
                self.slot_ms,
                other.slot_ms,
            ));
        }
        Ok(())
    }
}

fn check_params(
    horizon_ms: u64,
    slot_ms: u64,
) -> core::result::Result<(), (&'static str, &'static str)> {
    if horizon_ms == 0 {
        Err(("horizon_ms", "must be at least 1"))
    } else if slot_ms == 0 {
        Err(("slot_ms", "must be at least 1"))
    } else if horizon_ms / slot_ms > MAX_SLOTS {
        Err(("slot_ms", "horizon / slot must be at most 4096"))
    } else {
        Ok(())
    }
}

/// Refuses two fingerprint maps that share a fingerprint in the same key.
pub(crate) fn check_disjoint<'a>(
    pairs: impl Iterator<Item = (&'a FpSet, &'a FpSet)>,
    what: &str,
) -> Result<()> {
    for (a, b) in pairs {
        if let Some(fp) = a.common(b) {
            return Err(Error::OverlappingState {
                reason: format!("both {what} remember event fingerprint {fp:#018x}"),
            });
        }
    }
    Ok(())
}

impl Merge for IdDedup {
    fn check_merge(&self, other: &Self) -> Result<()> {
        self.check_params_match(other)?;
        let common = other
            .held()
            .filter_map(|(k, b)| self.slots.get(k).map(|a| (a, b)));
        check_disjoint(common, "dedup states")
    }

    fn merge_unchecked(&mut self, other: &Self) -> Result<()> {
        if let Some(t) = other.latest.filter(|&t| self.latest.is_none_or(|l| t > l)) {
            self.advance(t);
        }
        for (k, set) in other.held() {
            // slots below `base` are expired for the merged latest time
            if let Some(mine) = self.slot_mut(k) {
                mine.union_with(set);
            }
        }
        Ok(())
    }
}

/// Parameter block: horizon u64 LE, slot u64 LE. Payload: latest (flag u8, u64 LE if 1), slot
/// count u32 LE, then per slot ascending: slot index u64 LE and a section holding the slot's
/// Rice-coded sorted fingerprints.
impl Codec for IdDedup {
    const TYPE_TAG: u16 = tags::DEDUP_ID;

    fn write_params(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.horizon_ms.to_le_bytes());
        out.extend_from_slice(&self.slot_ms.to_le_bytes());
    }

    fn write_payload(&self, out: &mut Vec<u8>) {
        write_latest(self.latest, out);
        let n = u32::try_from(self.slots_held()).unwrap_or(u32::MAX);
        out.extend_from_slice(&n.to_le_bytes());
        for (k, set) in self.held() {
            out.extend_from_slice(&k.to_le_bytes());
            write_section_with(out, |o| write_sorted(&set.sorted(), o));
        }
    }

    fn read_parts(params: &[u8], payload: &[u8], _: &Limits) -> Result<Self> {
        let mut p = Reader::new(params);
        let (horizon_ms, slot_ms) = (p.u64("dedup horizon")?, p.u64("dedup slot")?);
        p.finish("IdDedup params")?;
        check_params(horizon_ms, slot_ms).map_err(|(_, why)| Error::invalid_state(why))?;
        let mut d = IdDedup::blank(horizon_ms, slot_ms);
        let mut r = Reader::new(payload);
        let latest = read_latest(&mut r)?;
        if let Some(t) = latest {
            d.advance(t);
        }
        let n = r.u32("dedup slot count")?;
        let mut last = None;
        for _ in 0..n {
            let k = r.u64("dedup slot index")?;
            let fps = read_sorted(r.section("dedup slot")?)?;
            let in_range = latest.is_some_and(|t| k >= d.slots.base() && k <= t / slot_ms);
            if fps.is_empty() || last.is_some_and(|l| l >= k) || !in_range {
                return Err(Error::invalid_state(
                    "dedup slots empty, unordered or outside the horizon",
                ));
            }
            last = Some(k);
            d.slot_mut(k)
                .ok_or_else(|| Error::invalid_state("dedup slot outside the horizon"))?
                .union_with(&FpSet::from_fingerprints(&fps));
        }
        r.finish("IdDedup payload")?;
        // the event at `latest` is held, in the last slot
        if latest.is_some_and(|t| last != Some(t / slot_ms)) {
            return Err(Error::invalid_state("no dedup slot holds the latest event"));
        }
        Ok(d)
    }
}
