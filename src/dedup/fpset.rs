//! The in-memory fingerprint set: open addressing with linear probing over a flat `Vec<u64>`.
//!
//! * 0 marks an empty slot; the fingerprint 0 itself is kept in a separate flag.
//! * The home slot is `fastrange(mix(fp ^ seed), capacity)` with a per-process random `seed`, so
//!   an event source cannot craft IDs that pile onto one probe run. The seed is in memory only:
//!   persisted forms are the sorted fingerprints, never this layout.
//! * Maximum load 0.8, growth ×1.5: after the first growths the load stays in `[0.53, 0.8]`,
//!   i.e. 10–15 resident bytes per fingerprint.

use std::hash::BuildHasher;
use std::sync::OnceLock;

/// Largest load factor, as a fraction `NUM / DEN`.
const LOAD_NUM: usize = 4;
const LOAD_DEN: usize = 5;
const MIN_CAPACITY: usize = 16;

fn process_seed() -> u64 {
    static SEED: OnceLock<u64> = OnceLock::new();
    *SEED.get_or_init(|| std::collections::hash_map::RandomState::new().hash_one(0x5eed_u64) | 1)
}

/// A set of 64-bit fingerprints. Equality is set equality (layout is ignored).
#[derive(Clone)]
pub(crate) struct FpSet {
    slots: Vec<u64>,
    nonzero: usize,
    has_zero: bool,
    seed: u64,
}

impl Default for FpSet {
    fn default() -> Self {
        FpSet {
            slots: Vec::new(),
            nonzero: 0,
            has_zero: false,
            seed: process_seed(),
        }
    }
}

impl core::fmt::Debug for FpSet {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_set().entries(self.sorted()).finish()
    }
}

impl PartialEq for FpSet {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().all(|fp| other.contains(fp))
    }
}

impl Eq for FpSet {}

impl FpSet {
    /// A set built from fingerprints (any order, duplicates ignored).
    pub(crate) fn from_fingerprints(fps: &[u64]) -> Self {
        let mut set = FpSet::default();
        set.reserve(fps.len());
        for &fp in fps {
            set.insert(fp);
        }
        set
    }

    /// Number of fingerprints held.
    pub(crate) fn len(&self) -> usize {
        self.nonzero + usize::from(self.has_zero)
    }

    /// Whether the set is empty.
    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes of heap memory held (allocated capacity).
    pub(crate) fn resident_bytes(&self) -> usize {
        self.slots.capacity() * core::mem::size_of::<u64>()
    }

    #[inline]
    fn home(&self, fp: u64) -> usize {
        let h = (fp ^ self.seed).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        ((u128::from(h) * self.slots.len() as u128) >> 64) as usize
    }

    /// Whether `fp` is in the set.
    #[inline]
    pub(crate) fn contains(&self, fp: u64) -> bool {
        if fp == 0 {
            return self.has_zero;
        }
        if self.slots.is_empty() {
            return false;
        }
        let mut i = self.home(fp);
        loop {
            match self.slots.get(i) {
                Some(0) => return false,
                Some(&x) if x == fp => return true,
                Some(_) => i += 1,
                None => i = 0,
            }
        }
    }

    /// Adds `fp`; returns whether it was new.
    #[inline]
    pub(crate) fn insert(&mut self, fp: u64) -> bool {
        if fp == 0 {
            let new = !self.has_zero;
            self.has_zero = true;
            return new;
        }
        if (self.nonzero + 1) * LOAD_DEN > self.slots.len() * LOAD_NUM {
            self.grow_to(self.nonzero + 1);
        }
        let new = self.place(fp);
        self.nonzero += usize::from(new);
        new
    }

    /// Puts `fp` (non-zero) in its slot; the table has a free slot.
    #[inline]
    fn place(&mut self, fp: u64) -> bool {
        let mut i = self.home(fp);
        loop {
            match self.slots.get_mut(i) {
                Some(slot) if *slot == 0 => {
                    *slot = fp;
                    return true;
                }
                Some(slot) if *slot == fp => return false,
                Some(_) => i += 1,
                None => i = 0,
            }
        }
    }

    /// Makes room for `additional` more fingerprints without growing.
    pub(crate) fn reserve(&mut self, additional: usize) {
        self.grow_to(self.nonzero.saturating_add(additional));
    }

    fn grow_to(&mut self, needed: usize) {
        let mut cap = self.slots.len().max(MIN_CAPACITY);
        while needed.saturating_mul(LOAD_DEN) > cap.saturating_mul(LOAD_NUM) {
            cap = cap.saturating_add(cap / 2);
        }
        if cap == self.slots.len() {
            return;
        }
        let old = core::mem::replace(&mut self.slots, vec![0; cap]);
        for fp in old.into_iter().filter(|&x| x != 0) {
            self.place(fp);
        }
    }

    /// The fingerprints in no particular order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = u64> + '_ {
        let zero = self.has_zero.then_some(0);
        zero.into_iter()
            .chain(self.slots.iter().copied().filter(|&x| x != 0))
    }

    /// The fingerprints, ascending: the canonical (persisted) order.
    pub(crate) fn sorted(&self) -> Vec<u64> {
        let mut v: Vec<u64> = self.iter().collect();
        v.sort_unstable();
        v
    }

    /// Whether the two sets share a fingerprint; returns one if so.
    pub(crate) fn common(&self, other: &Self) -> Option<u64> {
        let (small, large) = if self.len() <= other.len() {
            (self, other)
        } else {
            (other, self)
        };
        small.iter().find(|&fp| large.contains(fp))
    }

    /// Adds every fingerprint of `other`.
    pub(crate) fn union_with(&mut self, other: &Self) {
        self.reserve(other.len());
        for fp in other.iter() {
            self.insert(fp);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::SplitMix64;
    use std::collections::BTreeSet;

    #[test]
    fn agrees_with_btreeset_including_zero() {
        let mut rng = SplitMix64::new(7);
        let mut set = FpSet::default();
        let mut model = BTreeSet::new();
        for i in 0..20_000u64 {
            let fp = if i % 1000 == 0 {
                0
            } else {
                rng.next_u64() % 30_000
            };
            assert_eq!(set.insert(fp), model.insert(fp));
            assert_eq!(set.len(), model.len());
        }
        for fp in 0..31_000 {
            assert_eq!(set.contains(fp), model.contains(&fp));
        }
        assert_eq!(set.sorted(), model.iter().copied().collect::<Vec<_>>());
        let rebuilt = FpSet::from_fingerprints(&set.sorted());
        assert_eq!(rebuilt, set);
    }

    #[test]
    fn resident_bytes_stay_within_15_per_id_once_grown() {
        let mut rng = SplitMix64::new(1);
        let mut set = FpSet::default();
        for n in 1..=200_000usize {
            set.insert(rng.next_u64() | 1);
            if n >= 1000 {
                assert!(
                    set.resident_bytes() <= 15 * n + 8,
                    "{n}: {}",
                    set.resident_bytes()
                );
            }
        }
    }
}
