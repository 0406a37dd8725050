//! [`IdDedup`]: event-ID fingerprints remembered for a time horizon, by event-time slot.

use std::collections::BTreeMap;

use super::{EventId, FpSet, Outcome, read_latest, read_sorted, write_latest, write_sorted};
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
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdDedup {
    horizon_ms: u64,
    slot_ms: u64,
    latest: Option<u64>,
    slots: BTreeMap<u64, FpSet>,
}

/// One hour of horizon, one-minute slots.
impl Default for IdDedup {
    fn default() -> Self {
        IdDedup {
            horizon_ms: 3_600_000,
            slot_ms: 60_000,
            latest: None,
            slots: BTreeMap::new(),
        }
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
    /// [`Error::InvalidParameter`] when `slot_ms` or `horizon_ms` is 0.
    pub fn try_new(horizon_ms: u64, slot_ms: u64) -> Result<Self> {
        check_params(horizon_ms, slot_ms).map_err(|(name, reason)| Error::InvalidParameter {
            name,
            reason: reason.into(),
        })?;
        Ok(IdDedup {
            horizon_ms,
            slot_ms,
            ..IdDedup::default()
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
        self.slots.values().map(FpSet::len).sum()
    }

    /// How many event-time slots are held.
    pub fn slots_held(&self) -> usize {
        self.slots.len()
    }

    /// Heap bytes held by the fingerprint tables (their allocated capacity).
    pub fn resident_bytes(&self) -> usize {
        self.slots.values().map(FpSet::resident_bytes).sum()
    }

    /// Events with a time below this are late (0 when nothing is).
    fn cutoff(&self) -> u64 {
        self.latest.map_or(0, |t| t.saturating_sub(self.horizon_ms))
    }

    /// What [`insert`](IdDedup::insert) would return, without changing anything.
    pub fn check(&self, id: EventId, time_ms: u64) -> Outcome {
        if time_ms < self.cutoff() {
            Outcome::Late
        } else if self
            .slots
            .get(&(time_ms / self.slot_ms))
            .is_some_and(|s| s.contains(id.fingerprint()))
        {
            Outcome::Duplicate
        } else {
            Outcome::Folded
        }
    }

    /// Remembers `id` at `time_ms` unless it is late or already remembered, and says which.
    pub fn insert(&mut self, id: EventId, time_ms: u64) -> Outcome {
        if time_ms < self.cutoff() {
            return Outcome::Late;
        }
        let slot = self.slots.entry(time_ms / self.slot_ms).or_default();
        if !slot.insert(id.fingerprint()) {
            return Outcome::Duplicate;
        }
        if self.latest.is_none_or(|t| time_ms > t) {
            self.latest = Some(time_ms);
            self.expire();
        }
        Outcome::Folded
    }

    /// Drops the slots that end at or before the cutoff.
    fn expire(&mut self) {
        let first_kept = self.cutoff() / self.slot_ms;
        if self
            .slots
            .first_key_value()
            .is_some_and(|(&k, _)| k < first_kept)
        {
            self.slots = self.slots.split_off(&first_kept);
        }
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
            .slots
            .iter()
            .filter_map(|(k, b)| self.slots.get(k).map(|a| (a, b)));
        check_disjoint(common, "dedup states")
    }

    fn merge(&mut self, other: &Self) -> Result<()> {
        self.check_merge(other)?;
        for (&k, set) in &other.slots {
            self.slots.entry(k).or_default().union_with(set);
        }
        self.latest = self.latest.max(other.latest);
        self.expire();
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
        let n = u32::try_from(self.slots.len()).unwrap_or(u32::MAX);
        out.extend_from_slice(&n.to_le_bytes());
        for (k, set) in &self.slots {
            out.extend_from_slice(&k.to_le_bytes());
            write_section_with(out, |o| write_sorted(&set.sorted(), o));
        }
    }

    fn read_parts(params: &[u8], payload: &[u8], _: &Limits) -> Result<Self> {
        let mut p = Reader::new(params);
        let (horizon_ms, slot_ms) = (p.u64("dedup horizon")?, p.u64("dedup slot")?);
        p.finish("IdDedup params")?;
        check_params(horizon_ms, slot_ms).map_err(|(_, why)| Error::invalid_state(why))?;
        let mut d = IdDedup {
            horizon_ms,
            slot_ms,
            ..IdDedup::default()
        };
        let mut r = Reader::new(payload);
        d.latest = read_latest(&mut r)?;
        let n = r.u32("dedup slot count")?;
        for _ in 0..n {
            let k = r.u64("dedup slot index")?;
            let fps = read_sorted(r.section("dedup slot")?)?;
            if fps.is_empty() || d.slots.last_key_value().is_some_and(|(&last, _)| last >= k) {
                return Err(Error::invalid_state("dedup slots empty or not ascending"));
            }
            d.slots.insert(k, FpSet::from_fingerprints(&fps));
        }
        r.finish("IdDedup payload")?;
        d.validate()?;
        Ok(d)
    }
}

impl IdDedup {
    /// Checks that every slot lies within `[cutoff, latest]` (none when nothing was folded).
    fn validate(&self) -> Result<()> {
        let first = self.slots.first_key_value().map(|(&k, _)| k);
        let last = self.slots.last_key_value().map(|(&k, _)| k);
        let ok = match (self.latest, first, last) {
            (None, None, _) => true,
            // the event at `latest` is held, in the last slot
            (Some(t), Some(lo), Some(hi)) => {
                lo >= self.cutoff() / self.slot_ms && hi == t / self.slot_ms
            }
            _ => false,
        };
        if ok {
            Ok(())
        } else {
            Err(Error::invalid_state("dedup slots outside the horizon"))
        }
    }
}
