//! The sparse representation: the set of occupied slots at the finer precision `p' = 20`.
//!
//! As in HLL++ (Heule et al. 2013), each hash is kept by its top `p'` bits (its *slot*) rather
//! than folded into a register at once, so while few values are present the sketch is exact up
//! to collisions among `2^20` slots and is estimated by linear counting at `p'`. An entry is a
//! `u32`: `slot << 6 | ρ'`, where `ρ'` (the rank of the bits after the slot) is kept only when
//! the dense rank cannot be read from the slot itself, that is when the `p' − p` slot bits
//! below the register index are all zero; otherwise `ρ' = 0`. There is one entry per slot (the
//! larger `ρ'` wins a merge), kept in a small open-addressing table so that an insert costs a
//! probe or two; the canonical order (for encoding and equality) is by slot.
//!
//! On the wire the sorted slots are gap-coded with a Rice code (about 12 bits per entry at
//! 1 000 distinct), followed by the kept `ρ'` values, 6 bits each.

use super::bits::{self, BitReader, BitWriter};
use super::dense::{Dense, fold_rank};
use super::estimate;
use crate::error::{Error, Result};

/// The sparse precision `p'`: slots are the top 20 bits of the hash.
pub(super) const SPARSE_P: u8 = 20;

/// The largest `ρ'` at `p'`: `64 − p' + 1`.
const MAX_RHO: u32 = 65 - SPARSE_P as u32;

/// The set of entries, one per slot, in an open-addressing table; see the
/// [module docs](self).
#[derive(Debug, Clone, Default)]
pub(super) struct Sparse {
    /// Linear probing, power-of-two capacity (or empty), `0` = free (no entry is 0: slot 0
    /// always keeps its `ρ' ≥ 1`). The home of a slot is its top bits, so the table is
    /// nearly sorted.
    table: Vec<u32>,
    len: usize,
}

/// Equal sets of entries, whatever the table layout.
impl PartialEq for Sparse {
    fn eq(&self, other: &Self) -> bool {
        self.len == other.len && self.sorted() == other.sorted()
    }
}

impl Eq for Sparse {}

/// The most entries a sparse sketch at precision `p` holds: beyond `2^p / 4` entries of 4 bytes
/// its entry list would be larger than the dense registers, and it converts.
pub(super) fn max_entries(p: u8) -> usize {
    1 << (p - 2)
}

/// Mask of the `p' − p` slot bits below the register index.
fn low_mask(p: u8) -> u32 {
    (1 << (SPARSE_P - p)) - 1
}

/// The sparse entry of a hash at precision `p`.
#[inline]
fn entry(p: u8, hash: u64) -> u32 {
    let slot = (hash >> (64 - SPARSE_P)) as u32;
    if slot & low_mask(p) != 0 {
        slot << 6
    } else {
        let rho = ((hash << SPARSE_P) | (1 << (SPARSE_P - 1))).leading_zeros() + 1;
        slot << 6 | rho
    }
}

impl Sparse {
    /// Number of occupied slots.
    pub(super) fn len(&self) -> usize {
        self.len
    }

    /// The entries, in any order.
    fn iter(&self) -> impl Iterator<Item = u32> + '_ {
        self.table.iter().copied().filter(|&e| e != 0)
    }

    /// The entries sorted by slot: the canonical order.
    pub(super) fn sorted(&self) -> Vec<u32> {
        let mut v: Vec<u32> = self.iter().collect();
        v.sort_unstable();
        v
    }

    /// Folds a hash in; returns the number of entries afterwards.
    #[inline]
    pub(super) fn insert_hash(&mut self, p: u8, hash: u64) -> usize {
        self.add(entry(p, hash));
        self.len
    }

    /// Adds an entry: a new slot, or the larger `ρ'` for a known one.
    fn add(&mut self, e: u32) {
        if (self.len + 1) * 4 > self.table.len() * 3 {
            self.grow();
        }
        let mask = self.table.len() - 1;
        let bits = self.table.len().trailing_zeros(); // ≤ 18: at most 2^16 + 1 entries
        let mut i = ((e >> 6) >> u32::from(SPARSE_P).saturating_sub(bits)) as usize & mask;
        while let Some(x) = self.table.get_mut(i) {
            if *x == 0 {
                *x = e;
                self.len += 1;
                return;
            }
            if *x >> 6 == e >> 6 {
                *x = (*x).max(e);
                return;
            }
            i = (i + 1) & mask;
        }
    }

    /// Grows the table (64 places, then ×4 up to 1 024, then ×2, so at most 2^(p+1) bytes
    /// before the conversion to dense) and re-inserts every entry.
    #[cold]
    fn grow(&mut self) {
        let cap = match self.table.len() {
            0 => 64,
            n if n < 1024 => n * 4,
            n => n * 2,
        };
        let old = core::mem::replace(&mut self.table, vec![0; cap]);
        self.len = 0;
        for e in old.into_iter().filter(|&e| e != 0) {
            self.add(e);
        }
    }

    /// Union with `other`, one entry per slot, the larger `ρ'` kept.
    pub(super) fn union(&mut self, other: &Sparse) {
        other.iter().for_each(|e| self.add(e));
    }

    /// Raises `dense`'s registers (precision `p`) by every entry.
    pub(super) fn fold_into(&self, p: u8, dense: &mut Dense) {
        let bits = SPARSE_P - p;
        dense.raise_all(self.iter().map(|e| {
            let slot = e >> 6;
            let rank = fold_rank(slot & low_mask(p), bits, (e & 63) as u8);
            ((slot >> bits) as usize, rank)
        }));
    }

    /// The dense registers at precision `p` holding the same hashes.
    pub(super) fn to_dense(&self, p: u8) -> Dense {
        let mut d = Dense::empty(p);
        self.fold_into(p, &mut d);
        d
    }

    /// The same slots as a sparse sketch built at the coarser precision `to` would keep them:
    /// `ρ'` dropped wherever the slot now determines the rank.
    pub(super) fn downgrade(&self, to: u8) -> Sparse {
        let mut out = Sparse::default();
        for e in self.iter() {
            out.add(if (e >> 6) & low_mask(to) != 0 {
                e & !63
            } else {
                e
            });
        }
        out
    }

    /// Linear counting over the `2^20` slots.
    pub(super) fn estimate(&self) -> f64 {
        estimate::linear_counting(self.len, SPARSE_P)
    }

    /// The Rice parameter for `n` entries: about log2 of the mean gap between slots.
    fn rice_k(n: usize) -> u32 {
        ((1u32 << SPARSE_P) / (n as u32 + 1)).ilog2()
    }

    /// Appends the wire form: entry count, Rice parameter, Rice-coded slot gaps, kept `ρ'`.
    pub(super) fn write(&self, out: &mut Vec<u8>) {
        let entries = self.sorted();
        let n = entries.len();
        bits::put_varint(n as u32, out);
        let k = Self::rice_k(n);
        out.push(k as u8);
        let mut w = BitWriter::new(out);
        let mut next = 0u32;
        for &e in &entries {
            let gap = (e >> 6) - next;
            w.unary(gap >> k);
            w.put(gap, k);
            next = (e >> 6) + 1;
        }
        for &e in &entries {
            if e & 63 != 0 {
                w.put(e & 63, 6);
            }
        }
        w.finish();
    }

    /// Reads and validates the wire form at precision `p`.
    ///
    /// # Errors
    ///
    /// [`Error::Truncated`], or [`Error::InvalidState`] when the count exceeds
    /// [`max_entries`], the Rice parameter is not the canonical one, a slot is out of range, a
    /// `ρ'` is out of `1..=45`, or bytes are left over.
    pub(super) fn read(p: u8, bytes: &[u8]) -> Result<Sparse> {
        const CTX: &str = "Distinct sparse entries";
        let (n, rest) = bits::take_varint(bytes, CTX)?;
        let n = n as usize;
        if n > max_entries(p) {
            return Err(Error::invalid_state("Distinct sparse: too many entries"));
        }
        let [k, packed @ ..] = rest else {
            return Err(Error::Truncated { context: CTX });
        };
        let k = u32::from(*k);
        if k != Self::rice_k(n) {
            return Err(Error::invalid_state(
                "Distinct sparse: non-canonical Rice parameter",
            ));
        }
        let mut r = BitReader::new(packed);
        if n > r.remaining() {
            return Err(Error::Truncated { context: CTX });
        }
        let mut entries = Vec::with_capacity(n);
        let mut next = 0u32;
        for _ in 0..n {
            let high = r.unary((1 << SPARSE_P) >> k, CTX)?;
            let slot = next + (high << k | r.get(k, CTX)?);
            if slot >= 1 << SPARSE_P {
                return Err(Error::invalid_state("Distinct sparse: slot out of range"));
            }
            entries.push(slot << 6);
            next = slot + 1;
        }
        for e in &mut entries {
            if (*e >> 6) & low_mask(p) == 0 {
                match r.get(6, CTX)? {
                    rho @ 1..=MAX_RHO => *e |= rho,
                    _ => return Err(Error::invalid_state("Distinct sparse: rank out of range")),
                }
            }
        }
        r.finish(CTX)?;
        let mut sparse = Sparse::default();
        entries.into_iter().for_each(|e| sparse.add(e));
        Ok(sparse)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agg::hll::dense::slot;

    #[test]
    fn entries_fold_to_the_same_registers_as_direct_dense_inserts() {
        let mut x = 7u64;
        for p in [4u8, 9, 14, 18] {
            let mut s = Sparse::default();
            let mut d = Dense::empty(p);
            for i in 0..2000u64 {
                x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(i);
                let h = x & !(u64::MAX >> (i % 48)); // long zero runs after the index too
                s.insert_hash(p, h);
                d.insert_hash(p, h);
            }
            assert_eq!(s.to_dense(p).registers(), d.registers(), "p={p}");
            assert!(s.sorted().windows(2).all(|w| w[0] >> 6 < w[1] >> 6));
            let (i, r) = slot(p, 0);
            assert_eq!((i, r), (0, 65 - p));
        }
    }

    #[test]
    fn rice_parameter_is_about_log2_of_the_mean_gap() {
        assert_eq!(Sparse::rice_k(0), 20);
        assert_eq!(Sparse::rice_k(1000), 10);
        assert_eq!(Sparse::rice_k(1 << 16), 3);
    }
}
