//! Event-time primitives shared by the dedup slots ([`IdDedup`](crate::IdDedup)) and the
//! windows ([`Windowed`](crate::Windowed)): exact division by a fixed width, a ring of items
//! indexed by `⌊time / width⌋`, and the conversion of a [`Duration`] parameter to milliseconds.

use std::collections::VecDeque;
use std::time::Duration;

use crate::error::{Error, Result};

/// A [`Duration`] parameter in whole milliseconds.
///
/// # Errors
///
/// [`Error::InvalidParameter`] naming `name` when `d` is not a whole number of milliseconds (a
/// parameter is stored in milliseconds: rounding would silently change it) or does not fit in a
/// `u64` of milliseconds (about 584 million years).
pub(crate) fn millis(name: &'static str, d: Duration) -> Result<u64> {
    let bad = |reason: &str| Error::InvalidParameter {
        name,
        reason: reason.into(),
    };
    if !d.subsec_nanos().is_multiple_of(1_000_000) {
        return Err(bad("must be a whole number of milliseconds"));
    }
    u64::try_from(d.as_millis()).map_err(|_| bad("must fit in a u64 of milliseconds"))
}

/// Division by a fixed divisor through a precomputed reciprocal: a multiply and one
/// correction instead of a hardware divide (20–90 cycles) on every event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FastDiv {
    d: u64,
    /// `⌊(2⁶⁴ − 1) / d⌋ ≥ 2⁶⁴/d − 1`, so `mulhi(n, m)` is `⌊n/d⌋` or one less.
    m: u64,
}

impl FastDiv {
    /// A divider by `d` (`d ≥ 1`; 0 is treated as 1).
    pub(crate) fn new(d: u64) -> Self {
        let d = d.max(1);
        FastDiv { d, m: u64::MAX / d }
    }

    /// `⌊n / d⌋`, exact for every `n`.
    #[inline]
    pub(crate) fn div(self, n: u64) -> u64 {
        let q = ((u128::from(n) * u128::from(self.m)) >> 64) as u64;
        if n - q * self.d >= self.d { q + 1 } else { q }
    }
}

/// Items indexed by `k = ⌊time / width⌋`, kept from a base index up: `items[i]` is index
/// `base + i`. Indexes below `base` are expired; the base only moves up. A gap is
/// `T::default()` (an empty set, no window).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct TimeRing<T> {
    width: u64,
    div: FastDiv,
    base: u64,
    items: VecDeque<T>,
}

impl<T> TimeRing<T> {
    /// An empty ring of `width`-millisecond items (`width ≥ 1`; 0 is treated as 1).
    pub(crate) fn new(width: u64) -> Self {
        TimeRing {
            width: width.max(1),
            div: FastDiv::new(width),
            base: 0,
            items: VecDeque::new(),
        }
    }

    /// The index of the item holding `time_ms`.
    #[inline]
    pub(crate) fn index(&self, time_ms: u64) -> u64 {
        self.div.div(time_ms)
    }

    /// The first time of item `k` (saturating at `u64::MAX`).
    pub(crate) fn start(&self, k: u64) -> u64 {
        k.saturating_mul(self.width)
    }

    /// The first index not expired.
    pub(crate) fn base(&self) -> u64 {
        self.base
    }

    /// Whether no item is held.
    pub(crate) fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Heap bytes of the ring itself (not of what the items own).
    pub(crate) fn ring_bytes(&self) -> usize {
        self.items.capacity() * core::mem::size_of::<T>()
    }

    /// The items in index order, gaps included.
    pub(crate) fn items(&self) -> impl DoubleEndedIterator<Item = &T> {
        self.items.iter()
    }

    /// `(index, item)` in index order, gaps included. Never overflows: the last index a ring
    /// can hold is `u64::MAX`.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (u64, &T)> {
        (self.base..=u64::MAX).zip(&self.items)
    }

    fn offset(&self, k: u64) -> Option<usize> {
        usize::try_from(k.checked_sub(self.base)?).ok()
    }

    /// Item `k`, if held.
    #[inline]
    pub(crate) fn get(&self, k: u64) -> Option<&T> {
        self.items.get(self.offset(k)?)
    }

    /// Item `k`, if held, mutably.
    #[inline]
    pub(crate) fn get_mut(&mut self, k: u64) -> Option<&mut T> {
        let i = self.offset(k)?;
        self.items.get_mut(i)
    }

    /// Moves the base up to `first_kept`, handing each expired item to `expired` with its
    /// index. A base already at or above `first_kept` stays.
    pub(crate) fn advance_to(&mut self, first_kept: u64, mut expired: impl FnMut(u64, T)) {
        while self.base < first_kept {
            match self.items.pop_front() {
                Some(item) => {
                    expired(self.base, item);
                    self.base += 1;
                }
                None => self.base = first_kept,
            }
        }
    }
}

impl<T: Default> TimeRing<T> {
    /// Item `k ≥ base`, created if needed: `fresh` builds it (seeing the ring as it was), the
    /// indexes between the last held and `k` become gaps. `None` when `k < base`. Callers keep
    /// `k − base` small (a horizon or a lateness over the width, at most a few thousand).
    #[inline]
    pub(crate) fn entry(&mut self, k: u64, fresh: impl FnOnce(&Self) -> T) -> Option<&mut T> {
        let i = self.offset(k)?;
        if self.items.len() <= i {
            let item = fresh(self);
            self.items.resize_with(i, T::default);
            self.items.push_back(item);
        }
        self.items.get_mut(i)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::{FastDiv, TimeRing, millis};
    use crate::testkit::SplitMix64;
    use std::time::Duration;

    #[test]
    fn fast_division_is_exact() {
        let mut rng = SplitMix64::new(8);
        let edges = [0, 1, 2, 3, 59_999, 60_000, u64::MAX - 1, u64::MAX];
        let divisors: Vec<u64> = (0..2000)
            .map(|i| (rng.next_u64() >> (i % 64)).max(1))
            .collect();
        for d in edges.into_iter().skip(1).chain(divisors) {
            let f = FastDiv::new(d);
            let numerators: Vec<u64> = (0..200).map(|i| rng.next_u64() >> (i % 64)).collect();
            for n in edges.into_iter().chain(numerators) {
                assert_eq!(f.div(n), n / d, "{n} / {d}");
            }
        }
    }

    #[test]
    fn a_ring_at_the_last_index_iterates_without_overflow() {
        let mut ring: TimeRing<u8> = TimeRing::new(1);
        ring.advance_to(u64::MAX - 1, |_, _| {});
        *ring.entry(u64::MAX, |_| 0).unwrap() = 7;
        let held: Vec<(u64, u8)> = ring.iter().map(|(k, x)| (k, *x)).collect();
        assert_eq!(held, [(u64::MAX - 1, 0), (u64::MAX, 7)]);
        ring.advance_to(u64::MAX, |k, _| assert_eq!(k, u64::MAX - 1));
        assert_eq!(ring.iter().count(), 1);
    }

    #[test]
    fn durations_must_be_whole_milliseconds_that_fit() {
        assert_eq!(millis("w", Duration::from_secs(60)), Ok(60_000));
        assert!(millis("w", Duration::from_micros(1_500)).is_err());
        assert!(millis("w", Duration::MAX).is_err());
        assert_eq!(millis("w", Duration::from_millis(u64::MAX)), Ok(u64::MAX));
    }
}
