//! [`Refused`]: the counters of refused events every dedup state keeps ([`Deduped`](super::Deduped),
//! [`Windowed`](crate::Windowed)), written once.

use super::Outcome;
use crate::codec::Reader;
use crate::error::{Error, Result};

/// How many events a state refused, by reason. Counters never wrap: a count that would
/// overflow is [`Error::Overflow`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Refused {
    /// Events refused as [`Outcome::Duplicate`].
    pub(crate) duplicates: u64,
    /// Events refused as [`Outcome::Late`].
    pub(crate) late: u64,
}

fn add(a: u64, b: u64, what: &'static str) -> Result<u64> {
    a.checked_add(b).ok_or(Error::Overflow { what })
}

impl Refused {
    /// The counter of `outcome` (`None` for a folded event) and its name.
    fn counter(&self, outcome: Outcome) -> Option<(u64, &'static str)> {
        match outcome {
            Outcome::Folded => None,
            Outcome::Duplicate => Some((self.duplicates, "duplicate count")),
            Outcome::Late => Some((self.late, "late count")),
        }
    }

    /// Checks that counting `outcome` would not overflow; changes nothing.
    pub(crate) fn check_count(&self, outcome: Outcome) -> Result<()> {
        match self.counter(outcome) {
            Some((n, what)) => add(n, 1, what).map(drop),
            None => Ok(()),
        }
    }

    /// Counts a refused event (nothing for a folded one) and hands `outcome` back.
    pub(crate) fn count(&mut self, outcome: Outcome) -> Result<Outcome> {
        self.check_count(outcome)?;
        match outcome {
            Outcome::Folded => {}
            Outcome::Duplicate => self.duplicates += 1,
            Outcome::Late => self.late += 1,
        }
        Ok(outcome)
    }

    /// Whether nothing was refused.
    pub(crate) fn is_zero(&self) -> bool {
        *self == Refused::default()
    }

    /// The sum of both states' counters.
    pub(crate) fn plus(&self, other: &Self) -> Result<Self> {
        Ok(Refused {
            duplicates: add(self.duplicates, other.duplicates, "duplicate count")?,
            late: add(self.late, other.late, "late count")?,
        })
    }

    /// Appends duplicates then late, u64 LE each.
    pub(crate) fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.duplicates.to_le_bytes());
        out.extend_from_slice(&self.late.to_le_bytes());
    }

    /// Reads what [`write`](Refused::write) wrote.
    pub(crate) fn read(r: &mut Reader<'_>) -> Result<Self> {
        Ok(Refused {
            duplicates: r.u64("duplicate count")?,
            late: r.u64("late count")?,
        })
    }
}
