//! [`IdDedup`]: event-ID fingerprints remembered for a time horizon, by event-time slot.

use std::collections::VecDeque;

use super::{
    EventId, FastDiv, FpSet, Outcome, read_latest, read_sorted, write_latest, write_sorted,
};
use crate::codec::{Codec, Limits, Reader, tags, write_section_with};
use crate::error::{Error, Result};
use crate::merge::Merge;

/// Remembers the [`EventId`]s of the last `horizon` milliseconds of event time, grouped by
/// event-time slots of `slot` milliseconds. See the [module docs](crate::dedup) for the
/// algorithm, the false-duplicate odds and the memory bound.
///
/// ```
/// use shardfold::{EventId, IdDedup, Outcome};
/// let mut d = IdDedup::new(60_000, 1_000); // one minute horizon, one-second slots
/// assert_eq!(d.insert(EventId::from("a"), 100_000), Outcome::Folded);
/// assert_eq!(d.insert(EventId::from("a"), 100_000), Outcome::Duplicate);
/// assert_eq!(d.insert(EventId::from("b"), 30_000), Outcome::Late); // before 100 s − 60 s
/// assert_eq!(d.ids_held(), 1);
/// ```
#[derive(Debug, Clone)]
pub struct IdDedup {
    horizon_ms: u64,
    slot_ms: u64,
    slot_div: FastDiv,
    latest: Option<u64>,
    /// Events with a time below this are late: `latest − horizon` (0 before any event).
    cutoff: u64,
    /// `slots[i]` holds slot `base + i`; `base` is the first slot not expired.
    base: u64,
    slots: VecDeque<FpSet>,
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
    /// [`Error::InvalidParameter`] when `slot_ms` or `horizon_ms` is 0.
    pub fn try_new(horizon_ms: u64, slot_ms: u64) -> Result<Self> {
        check_params(horizon_ms, slot_ms).map_err(|(name, reason)| Error::InvalidParameter {
            name,
            reason: reason.into(),
        })?;
        Ok(IdDedup::blank(horizon_ms, slot_ms))
    }

    fn blank(horizon_ms: u64, slot_ms: u64) -> Self {
        IdDedup {
            horizon_ms,
            slot_ms,
            slot_div: FastDiv::new(slot_ms),
            latest: None,
            cutoff: 0,
            base: 0,
            slots: VecDeque::new(),
        }
    }

    /// The non-empty slots, ascending: `(slot index, fingerprints)`.
    fn held(&self) -> impl Iterator<Item = (u64, &FpSet)> {
        (self.base..)
            .zip(&self.slots)
            .filter(|(_, s)| !s.is_empty())
    }

    /// The slot holding `time_ms`, if any.
    #[inline]
    fn slot(&self, time_ms: u64) -> Option<&FpSet> {
        let i = self.slot_div.div(time_ms).checked_sub(self.base)?;
        self.slots.get(usize::try_from(i).ok()?)
    }

    /// The slot for slot index `k ≥ base`, created (sized like its predecessors) if needed.
    #[inline]
    fn slot_mut(&mut self, k: u64) -> Option<&mut FpSet> {
        let i = usize::try_from(k.checked_sub(self.base)?).ok()?;
        if self.slots.len() <= i {
            // a new slot is sized like the fullest of the last eight: little growth in steady
            // streams, even when events straddle several slots
            let hint = self.slots.iter().rev().take(8).map(FpSet::len).max();
            self.slots.resize_with(i, FpSet::default);
            let mut set = FpSet::default();
            set.reserve(hint.unwrap_or(0));
            self.slots.push_back(set);
        }
        self.slots.get_mut(i)
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
        self.slots.iter().map(FpSet::len).sum()
    }

    /// How many event-time slots hold fingerprints.
    pub fn slots_held(&self) -> usize {
        self.held().count()
    }

    /// Heap bytes held: the fingerprint tables' allocated capacity and the slot ring.
    pub fn resident_bytes(&self) -> usize {
        let ring = self.slots.capacity() * core::mem::size_of::<FpSet>();
        ring + self.slots.iter().map(FpSet::resident_bytes).sum::<usize>()
    }

    /// What [`insert`](IdDedup::insert) would return, without changing anything.
    pub fn check(&self, id: EventId, time_ms: u64) -> Outcome {
        if time_ms < self.cutoff {
            Outcome::Late
        } else if self
            .slot(time_ms)
            .is_some_and(|s| s.contains(id.fingerprint()))
        {
            Outcome::Duplicate
        } else {
            Outcome::Folded
        }
    }

    /// Remembers `id` at `time_ms` unless it is late or already remembered, and says which.
    #[inline]
    pub fn insert(&mut self, id: EventId, time_ms: u64) -> Outcome {
        if time_ms < self.cutoff {
            return Outcome::Late;
        }
        // a time above `latest` cannot be a duplicate: its first delivery would have raised it
        if self.latest.is_none_or(|t| time_ms > t) {
            self.advance(time_ms);
        }
        match self.slot_mut(self.slot_div.div(time_ms)) {
            Some(slot) => {
                if slot.insert(id.fingerprint()) {
                    Outcome::Folded
                } else {
                    Outcome::Duplicate
                }
            }
            // unreachable: a time at or above the cutoff has its slot at or above `base`
            None => Outcome::Late,
        }
    }

    /// Raises the latest event time to `time_ms` and drops the slots that end at or before
    /// the new cutoff.
    #[inline]
    fn advance(&mut self, time_ms: u64) {
        self.latest = Some(time_ms);
        self.cutoff = time_ms.saturating_sub(self.horizon_ms);
        // fast path: the cutoff is still within slot `base`, nothing expires
        let base_end = self.base.saturating_add(1).saturating_mul(self.slot_ms);
        if !self.slots.is_empty() && self.cutoff < base_end {
            return;
        }
        let first_kept = self.slot_div.div(self.cutoff);
        if self.slots.is_empty() {
            self.base = first_kept;
        }
        while self.base < first_kept && self.slots.pop_front().is_some() {
            self.base += 1;
        }
        self.base = self.base.max(first_kept);
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
        let common = other.held().filter_map(|(k, b)| {
            let i = usize::try_from(k.checked_sub(self.base)?).ok()?;
            self.slots.get(i).map(|a| (a, b))
        });
        check_disjoint(common, "dedup states")
    }

    fn merge(&mut self, other: &Self) -> Result<()> {
        self.check_merge(other)?;
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
            let in_range = latest.is_some_and(|t| k >= d.base && k <= t / slot_ms);
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
