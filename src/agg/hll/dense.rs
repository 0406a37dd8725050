//! The dense representation: `m = 2^p` one-byte registers.
//!
//! In memory each register is a `u8`, so merging is a byte-wise maximum that the compiler
//! turns into SIMD `max` instructions. The register histogram needed by the estimator is kept
//! up to date by inserts and rebuilt lazily (once) after a merge: a query that merges `K` shards
//! pays `K` cheap merges and one histogram scan, instead of `K` scans.
//!
//! On the wire the registers are bit-packed relative to their minimum (see `FORMAT.md`): at
//! most 6 bits each, and fewer when the registers span a narrower range (5 bits at 1e5 and
//! 1e7 distinct for `p = 14`).

use std::sync::OnceLock;

use super::bits::{BitReader, BitWriter};
use super::estimate::{self, HIST_LEN, Histogram};
use crate::error::{Error, Result};

/// `2^p` registers, a lazily computed histogram of their values and the cached estimate.
#[derive(Clone)]
pub(super) struct Dense {
    regs: Vec<u8>,
    hist: OnceLock<Box<Histogram>>,
    cached: OnceLock<f64>,
}

impl PartialEq for Dense {
    fn eq(&self, other: &Self) -> bool {
        self.regs == other.regs
    }
}

impl Eq for Dense {}

/// The largest register value at precision `p`: a rank of the `64 − p` hash bits after the
/// index, plus one for "all zero".
pub(super) fn max_rank(p: u8) -> u8 {
    65 - p
}

/// The register index (top `p` bits) and rank (position of the first one bit after them,
/// capped at `65 − p`) of a 64-bit hash.
#[inline]
pub(super) fn slot(p: u8, hash: u64) -> (usize, u8) {
    let idx = (hash >> (64 - p)) as usize;
    let rank = ((hash << p) | (1 << (p - 1))).leading_zeros() as u8 + 1;
    (idx, rank)
}

/// The rank at a coarser precision of a hash known only by the `bits` index bits dropped
/// (`low`) and its rank after them (`tail_rank`): the first one bit is in `low` if it is
/// non-zero, else `tail_rank` positions after it.
#[inline]
pub(super) fn fold_rank(low: u32, bits: u8, tail_rank: u8) -> u8 {
    if low != 0 {
        (low << (32 - u32::from(bits))).leading_zeros() as u8 + 1
    } else {
        bits + tail_rank
    }
}

/// The register histogram, counted in four interleaved tables so that consecutive equal
/// registers do not serialise on one counter.
fn histogram(regs: &[u8]) -> Box<Histogram> {
    let mut parts = [[0u32; HIST_LEN]; 4];
    let mut chunks = regs.chunks_exact(4);
    for c in &mut chunks {
        for (part, &r) in parts.iter_mut().zip(c) {
            part[usize::from(r) % HIST_LEN] += 1;
        }
    }
    for &r in chunks.remainder() {
        parts[0][usize::from(r) % HIST_LEN] += 1;
    }
    let mut hist = Box::new([0u32; HIST_LEN]);
    for (k, h) in hist.iter_mut().enumerate() {
        *h = parts.iter().map(|part| part[k]).sum();
    }
    hist
}

impl Dense {
    /// All registers zero.
    pub(super) fn empty(p: u8) -> Self {
        let m = 1usize << p;
        let mut hist = Box::new([0u32; HIST_LEN]);
        hist[0] = 1 << p;
        Dense {
            regs: vec![0; m],
            hist: OnceLock::from(hist),
            cached: OnceLock::new(),
        }
    }

    /// Dense registers holding `regs` (`2^p` values, each at most `65 − p`: the caller
    /// checks).
    pub(super) fn from_registers(regs: Vec<u8>) -> Self {
        Dense {
            regs,
            hist: OnceLock::new(),
            cached: OnceLock::new(),
        }
    }

    /// The registers.
    pub(super) fn registers(&self) -> &[u8] {
        &self.regs
    }

    /// Folds a hash in.
    #[inline]
    pub(super) fn insert_hash(&mut self, p: u8, hash: u64) {
        let (idx, rank) = slot(p, hash);
        self.set_max(idx, rank);
    }

    /// Raises register `idx` to `rank` if it is lower, keeping the histogram current.
    #[inline]
    pub(super) fn set_max(&mut self, idx: usize, rank: u8) {
        if let Some(&r) = self.regs.get(idx)
            && rank > r
        {
            self.raise(idx, r, rank);
        }
    }

    /// Raises register `idx` from `from` to `to`: rare once the sketch holds many values, so
    /// kept out of the hot path.
    #[cold]
    #[inline(never)]
    fn raise(&mut self, idx: usize, from: u8, to: u8) {
        if let Some(r) = self.regs.get_mut(idx) {
            *r = to;
        }
        if let Some(hist) = self.hist.get_mut() {
            hist[usize::from(from) % HIST_LEN] -= 1;
            hist[usize::from(to) % HIST_LEN] += 1;
        }
        self.cached = OnceLock::new();
    }

    /// Raises registers in bulk (a merge with sparse entries): the histogram is invalidated
    /// and rebuilt at the next query, as after any merge.
    pub(super) fn raise_all(&mut self, slots: impl Iterator<Item = (usize, u8)>) {
        for (idx, rank) in slots {
            if let Some(r) = self.regs.get_mut(idx) {
                *r = (*r).max(rank);
            }
        }
        self.hist = OnceLock::new();
        self.cached = OnceLock::new();
    }

    /// Register-wise maximum with `other` (same precision).
    pub(super) fn max_with(&mut self, other: &Dense) {
        for (a, &b) in self.regs.iter_mut().zip(&other.regs) {
            *a = (*a).max(b);
        }
        self.hist = OnceLock::new();
        self.cached = OnceLock::new();
    }

    /// The estimate (Ertl's improved raw estimator), cached until a register changes; scans
    /// the registers only if a merge invalidated the histogram since the last call.
    pub(super) fn estimate(&self, p: u8) -> f64 {
        *self
            .cached
            .get_or_init(|| estimate::ertl(self.hist.get_or_init(|| histogram(&self.regs)), p))
    }

    /// The same registers folded down to precision `to ≤ from`: exactly the registers a sketch
    /// built at `to` from the same hashes would hold.
    pub(super) fn downgrade(&self, from: u8, to: u8) -> Dense {
        let bits = from - to;
        let mut out = Dense::empty(to);
        let low_mask = (1usize << bits) - 1;
        for (i, &r) in self.regs.iter().enumerate() {
            if r > 0 {
                out.set_max(i >> bits, fold_rank((i & low_mask) as u32, bits, r));
            }
        }
        out
    }

    /// Appends the wire form: minimum register, bit width, packed offsets.
    pub(super) fn write(&self, out: &mut Vec<u8>) {
        let base = self.regs.iter().copied().min().unwrap_or(0);
        let top = self.regs.iter().copied().max().unwrap_or(0);
        let width = 8 - (top - base).leading_zeros();
        out.push(base);
        out.push(width as u8);
        let mut w = BitWriter::new(out);
        for &r in &self.regs {
            w.put(u32::from(r - base), width);
        }
        w.finish();
    }

    /// Reads and validates the wire form at precision `p`.
    ///
    /// # Errors
    ///
    /// [`Error::Truncated`] or [`Error::InvalidState`] (width above 6, a register above
    /// `65 − p`, wrong length, non-zero padding).
    pub(super) fn read(p: u8, bytes: &[u8]) -> Result<Dense> {
        let [base, width, packed @ ..] = bytes else {
            return Err(Error::Truncated {
                context: "Distinct dense header",
            });
        };
        let (base, width) = (*base, u32::from(*width));
        if width > 6 || base > max_rank(p) {
            return Err(Error::invalid_state("Distinct dense header out of range"));
        }
        let m = 1usize << p;
        if packed.len() != (m * width as usize).div_ceil(8) {
            return Err(Error::invalid_state(
                "Distinct dense registers: wrong length",
            ));
        }
        let mut r = BitReader::new(packed);
        let mut regs = Vec::with_capacity(m);
        for _ in 0..m {
            let v = u32::from(base) + r.get(width, "Distinct dense registers")?;
            match u8::try_from(v) {
                Ok(v) if v <= max_rank(p) => regs.push(v),
                _ => return Err(Error::invalid_state("Distinct register out of range")),
            }
        }
        r.finish("Distinct dense registers")?;
        Ok(Dense {
            regs,
            hist: OnceLock::new(),
            cached: OnceLock::new(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slot_caps_rank_at_65_minus_p() {
        for p in 4..=18u8 {
            assert_eq!(slot(p, 0), (0, 65 - p));
            assert_eq!(slot(p, u64::MAX), ((1 << p) - 1, 1));
            assert_eq!(slot(p, 1).1, 64 - p);
        }
    }

    #[test]
    fn fold_rank_matches_direct_slot() {
        let mut x = 0x1234_5678_9ABC_DEF0u64;
        for _ in 0..10_000 {
            x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            let h = x & !(u64::MAX >> (x % 40)); // many long zero runs
            for (from, to) in [(18u8, 4u8), (14, 12), (10, 9)] {
                let (i, r) = slot(from, h);
                let bits = from - to;
                let low = (i & ((1 << bits) - 1)) as u32;
                assert_eq!(fold_rank(low, bits, r), slot(to, h).1, "{h:x} {from}->{to}");
            }
        }
    }

    #[test]
    fn histogram_stays_current_through_inserts() {
        let mut d = Dense::empty(6);
        for h in [1u64, 2, 3, u64::MAX, 1 << 60, 12345 << 40] {
            d.insert_hash(6, h);
        }
        assert_eq!(d.hist.get(), Some(&histogram(&d.regs)));
    }
}
