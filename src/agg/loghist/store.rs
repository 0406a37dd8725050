//! Bucket counts: a dense window for the bulk of the data, a sorted map for outliers.
//!
//! Most data sits within a few thousand buckets, so counts live in a `Vec` indexed from an
//! offset (an insert is one bounds check and one add). An index that would stretch the window
//! beyond [`MAX_DENSE`] buckets — a 1e30 outlier among values near 1 — goes to a `BTreeMap`
//! instead, so memory stays proportional to the buckets in use and nothing is ever collapsed.
//! The logical content (the non-zero `(index, count)` pairs in index order) does not depend on
//! the layout, and it is all that equality and the encoding look at.

use std::collections::BTreeMap;

/// The widest dense window, in buckets (32 KiB of counts).
pub(crate) const MAX_DENSE: usize = 4096;
/// Extra buckets added on the growing side when the window grows, to amortise growth.
const SLACK: i64 = 64;

/// Counts per bucket index.
#[derive(Debug, Clone, Default)]
pub(crate) struct Store {
    /// Index of `dense[0]`.
    offset: i32,
    dense: Vec<u64>,
    /// Non-zero counts at indexes outside the dense window.
    sparse: BTreeMap<i32, u64>,
}

impl Store {
    /// Adds `n` to bucket `i`. The caller guarantees the total count cannot overflow.
    #[inline]
    pub(crate) fn add(&mut self, i: i32, n: u64) {
        let rel = i64::from(i) - i64::from(self.offset);
        if let Some(c) = usize::try_from(rel)
            .ok()
            .and_then(|r| self.dense.get_mut(r))
        {
            *c += n;
        } else {
            self.add_outside(i, n);
        }
    }

    #[cold]
    fn add_outside(&mut self, i: i32, n: u64) {
        if self.dense.is_empty() {
            self.offset = i;
            self.dense.push(n);
            return;
        }
        let (lo, hi) = self.window();
        let (i64_i, lo, hi) = (i64::from(i), i64::from(lo), i64::from(hi));
        let (new_lo, new_hi) = if i64_i < lo {
            (i64_i - SLACK, hi)
        } else {
            (lo, i64_i + SLACK)
        };
        if new_hi - new_lo >= MAX_DENSE as i64 {
            *self.sparse.entry(i).or_insert(0) += n;
        } else {
            self.regrow(new_lo, new_hi);
            self.add(i, n);
        }
    }

    /// The dense window as an inclusive index range (`dense` must be non-empty).
    fn window(&self) -> (i32, i32) {
        let len = i32::try_from(self.dense.len()).unwrap_or(i32::MAX);
        (self.offset, self.offset.saturating_add(len - 1))
    }

    /// Re-lays the dense window over `[lo, hi]` and pulls in sparse entries that now fit.
    fn regrow(&mut self, lo: i64, hi: i64) {
        let lo = i32::try_from(lo).unwrap_or(i32::MIN);
        let hi = i32::try_from(hi).unwrap_or(i32::MAX);
        let entries = self.entries();
        self.offset = lo;
        self.dense = vec![0; (i64::from(hi) - i64::from(lo) + 1) as usize];
        self.sparse.clear();
        for (i, n) in entries {
            self.add(i, n);
        }
    }

    /// Adds every count of `other`: dense windows add slice to slice when `self`'s window can
    /// cover `other`'s, everything else bucket by bucket. The caller guarantees the totals cannot
    /// overflow.
    pub(crate) fn merge(&mut self, other: &Store) {
        if !other.dense.is_empty() {
            let (lo, hi) = other.window();
            self.cover(lo, hi);
            let start = usize::try_from(i64::from(lo) - i64::from(self.offset)).ok();
            let target = start.and_then(|s| self.dense.get_mut(s..s + other.dense.len()));
            match target {
                Some(t) => t.iter_mut().zip(&other.dense).for_each(|(a, b)| *a += b),
                None => (i64::from(lo)..)
                    .zip(&other.dense)
                    .filter(|&(_, &n)| n > 0)
                    .filter_map(|(i, &n)| Some((i32::try_from(i).ok()?, n)))
                    .for_each(|(i, n)| self.add(i, n)),
            }
        }
        for (&i, &n) in &other.sparse {
            self.add(i, n);
        }
    }

    /// Grows the dense window to cover `[lo, hi]` if the result stays within [`MAX_DENSE`].
    fn cover(&mut self, lo: i32, hi: i32) {
        let (new_lo, new_hi) = if self.dense.is_empty() {
            (lo, hi)
        } else {
            let (s_lo, s_hi) = self.window();
            if s_lo <= lo && hi <= s_hi {
                return;
            }
            (s_lo.min(lo), s_hi.max(hi))
        };
        if i64::from(new_hi) - i64::from(new_lo) < MAX_DENSE as i64 {
            self.regrow(i64::from(new_lo), i64::from(new_hi));
        }
    }

    /// The non-zero buckets in increasing index order.
    pub(crate) fn entries(&self) -> Vec<(i32, u64)> {
        let mut out = Vec::new();
        out.extend(self.sparse.range(..self.offset).map(|(&i, &n)| (i, n)));
        let base = i64::from(self.offset);
        out.extend(
            (base..)
                .zip(&self.dense)
                .filter(|&(_, &n)| n > 0)
                // the window lies within i32 (see `regrow`)
                .filter_map(|(i, &n)| Some((i32::try_from(i).ok()?, n))),
        );
        let end = i64::from(self.offset) + self.dense.len() as i64;
        if let Ok(end) = i32::try_from(end) {
            out.extend(self.sparse.range(end..).map(|(&i, &n)| (i, n)));
        }
        out
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn layout_does_not_change_entries() {
        let adds = [
            (5, 1),
            (-3, 2),
            (100_000, 1),
            (6, 4),
            (-50_000, 1),
            (5000, 3),
            (5, 1),
        ];
        let mut a = Store::default();
        adds.iter().for_each(|&(i, n)| a.add(i, n));
        let mut b = Store::default();
        adds.iter().rev().for_each(|&(i, n)| b.add(i, n));
        let mut c = Store::default();
        for chunk in adds.chunks(2) {
            let mut part = Store::default();
            chunk.iter().for_each(|&(i, n)| part.add(i, n));
            c.merge(&part);
        }
        let mut want: BTreeMap<i32, u64> = BTreeMap::new();
        adds.iter()
            .for_each(|&(i, n)| *want.entry(i).or_insert(0) += n);
        let want: Vec<(i32, u64)> = want.into_iter().collect();
        assert_eq!(a.entries(), want);
        assert_eq!(b.entries(), want);
        assert_eq!(c.entries(), want);
        assert!(a.dense.len() <= MAX_DENSE && b.dense.len() <= MAX_DENSE);
    }

    #[test]
    fn extreme_indexes_do_not_overflow() {
        let mut s = Store::default();
        for i in [i32::MAX, i32::MIN, 0, i32::MAX - 1, i32::MIN + 1] {
            s.add(i, 1);
        }
        assert_eq!(s.entries().len(), 5);
    }
}
