//! [`SumF64`]: an exact, order-independent sum of `f64` values.
//!
//! # Algorithm
//!
//! Every finite `f64` is an integer multiple of 2^-1074 (the smallest subnormal), and every
//! finite `f64` is below 2^1024. So the exact sum of any number of finite doubles is an integer
//! number of units of 2^-1074, and fits in a fixed-point number of about 2100 bits plus room for
//! carries. The accumulator keeps that number in 67 signed 64-bit *chunks*, each standing for 32
//! bits ("small superaccumulator", R. M. Neal, *Fast exact summation using small and large
//! superaccumulators*, 2015, arXiv:1505.05571):
//!
//! * **insert** splits the 53-bit significand, shifted to its exponent, across three adjacent
//!   chunks and adds (or subtracts) it — no carry propagation, no branches on magnitude;
//! * the 31 spare bits of each chunk absorb 2^30 inserts or merges before carries must be
//!   propagated (*normalization*, done automatically);
//! * **merge** adds the chunks pairwise;
//! * **read** propagates carries, then rounds the exact value to the nearest `f64`, ties to even,
//!   once.
//!
//! Because integer addition is exact, the state after any permutation or grouping of the same
//! values is the same number, and its canonical encoding (sign and magnitude in 32-bit limbs) is
//! the same bytes. Naive or Kahan summation cannot promise that: their last bits depend on order.
//!
//! # Range
//!
//! NaN and ±infinity are refused. A sum whose magnitude exceeds `f64::MAX` reads as ±infinity
//! (the correctly rounded result); the accumulator itself holds magnitudes up to about 2^1099
//! beyond which a merge reports [`Error::Overflow`]. Reading a sum that is exactly zero gives
//! `+0.0` (the sign of a zero sum is not tracked, because it would depend on order).

use serde::{Deserialize, Serialize};

use crate::agg::no_params;
use crate::codec::{self, Codec, Limits, tags};
use crate::error::{Error, Result};
use crate::merge::{Insert, Merge, check_finite};

/// Number of 32-bit-digit chunks: 2^-1074 … 2^1024 is 2098 bits; 67 × 32 = 2144 leaves room for
/// the three chunks an insert touches at the top exponent.
const CHUNKS: usize = 67;
/// Canonical limbs: the top chunk carries up to 61 bits, so it spills into one more limb.
const LIMBS: usize = CHUNKS + 1;
/// Inserts/merges between normalizations: keeps every chunk below (2^30 + 1) · 2^32 < 2^63.
const MAX_PENDING: u32 = 1 << 30;
/// Bound on the top chunk; a merge that could pass it is an overflow.
const TOP_LIMIT: i64 = 1 << 61;
const LOW32: i64 = 0xFFFF_FFFF;

/// The exact sum of finite `f64` values, bit-identical in any order and grouping.
///
/// ```
/// use shardfold::{Insert, Merge, SumF64};
/// let mut a = SumF64::default();
/// for x in [1e100, 1.0, -1e100] {
///     a.insert(x)?;
/// }
/// assert_eq!(a.value(), 1.0); // naive summation gives 0.0
/// let mut b = SumF64::default();
/// for x in [-1e100, 1e100, 1.0] {
///     b.insert(x)?;
/// }
/// assert_eq!(shardfold::codec::encode(&a), shardfold::codec::encode(&b));
/// # Ok::<(), shardfold::Error>(())
/// ```
#[derive(Clone)]
pub struct SumF64 {
    /// Chunk `i` stands for 2^(32 i) units of 2^-1074; chunks are signed and not normalized.
    chunks: [i64; CHUNKS],
    /// Adds since the last normalization: every |chunk| ≤ (pending + 1) · 2^32.
    pending: u32,
}

impl Default for SumF64 {
    fn default() -> Self {
        SumF64 {
            chunks: [0; CHUNKS],
            pending: 0,
        }
    }
}

impl core::fmt::Debug for SumF64 {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SumF64")
            .field("value", &self.value())
            .finish()
    }
}

impl PartialEq for SumF64 {
    fn eq(&self, other: &Self) -> bool {
        self.canonical() == other.canonical()
    }
}
impl Eq for SumF64 {}

/// The canonical form: sign and magnitude in 32-bit limbs (little-endian order).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Canonical {
    negative: bool,
    limbs: [u32; LIMBS],
}

/// The wire form: sign and the non-zero limbs as (index, limb), indexes strictly increasing.
#[derive(Serialize, Deserialize)]
struct Wire {
    negative: bool,
    limbs: Vec<(u8, u32)>,
}

impl SumF64 {
    /// The exact sum, rounded once to the nearest `f64` (ties to even). Overflow beyond
    /// `f64::MAX` gives ±infinity; an empty or exactly-zero sum gives `+0.0`.
    pub fn value(&self) -> f64 {
        let c = self.canonical();
        let magnitude = round_to_f64(&c.limbs);
        if c.negative { -magnitude } else { magnitude }
    }

    /// The exact sum divided by `n`, rounded once to the nearest `f64` (ties to even): the
    /// correctly rounded mean of `n` values. Within `[min, max]` of the values whenever they are
    /// finite, and finite whenever they are (the mean of two `f64::MAX` is `f64::MAX`);
    /// `None` when `n` is 0.
    ///
    /// ```
    /// use shardfold::{Insert, SumF64};
    /// let mut s = SumF64::default();
    /// for x in [0.1, 0.1, 0.1] {
    ///     s.insert(x)?;
    /// }
    /// assert_eq!(s.divided_by(3), Some(0.1)); // s.value() / 3.0 rounds twice: 0.10000000000000002
    /// # Ok::<(), shardfold::Error>(())
    /// ```
    pub fn divided_by(&self, n: u64) -> Option<f64> {
        if n == 0 {
            return None;
        }
        let c = self.canonical();
        let (quotient, rem) = divide(&c.limbs, n);
        let magnitude = round_quotient(&quotient, rem, n);
        Some(if c.negative { -magnitude } else { magnitude })
    }

    /// Whether the exact sum is zero.
    pub fn is_zero(&self) -> bool {
        self.canonical().limbs.iter().all(|&l| l == 0)
    }

    /// Adds a finite value without checking it, for callers that already refused non-finite
    /// values (a sketch's own `check_insert`). `x` must be finite: an infinity or NaN would
    /// corrupt the sum (no panic, but a wrong value).
    #[inline]
    pub(crate) fn add_finite(&mut self, x: f64) {
        if self.pending >= MAX_PENDING {
            self.normalize();
        }
        self.pending += 1;
        let bits = x.to_bits();
        let exponent = (bits >> 52) & 0x7FF;
        // Subnormals (exponent 0) sit at unit 0; a normal with biased exponent e is
        // (2^52 + fraction) · 2^(e-1) units. Branch-free: `implicit` is 1 for normals.
        let implicit = u64::from(exponent != 0);
        let significand = (bits & ((1 << 52) - 1)) | (implicit << 52);
        let shift = exponent - implicit; // ≤ 2045
        let wide = u128::from(significand) << (shift % 32);
        // Conditional negation without a branch: mask is 0 for +, -1 for −.
        let mask = (bits as i64) >> 63;
        let signed = |part: u128| ((part as i64) ^ mask) - mask;
        let idx = (shift / 32) as usize; // ≤ 63, so idx + 2 ≤ 65 < CHUNKS
        if let Some([a, b, c]) = self.chunks.get_mut(idx..idx + 3) {
            *a += signed(wide & 0xFFFF_FFFF);
            *b += signed((wide >> 32) & 0xFFFF_FFFF);
            *c += signed(wide >> 64);
        }
    }

    /// Propagates carries: chunks 0..CHUNKS-1 land in [0, 2^32), the top chunk takes the rest.
    fn normalize(&mut self) {
        let mut carry = 0i64;
        for c in &mut self.chunks[..CHUNKS - 1] {
            let v = *c + carry;
            carry = v >> 32;
            *c = v & LOW32;
        }
        self.chunks[CHUNKS - 1] += carry;
        self.pending = 0;
    }

    fn normalized(&self) -> SumF64 {
        let mut n = self.clone();
        n.normalize();
        n
    }

    fn canonical(&self) -> Canonical {
        let mut n = self.normalized();
        let negative = n.chunks[CHUNKS - 1] < 0;
        if negative {
            n.chunks.iter_mut().for_each(|c| *c = -*c);
            n.normalize();
        }
        let mut limbs = [0u32; LIMBS];
        for (l, c) in limbs.iter_mut().zip(&n.chunks[..CHUNKS - 1]) {
            *l = *c as u32; // in [0, 2^32) after normalization
        }
        let top = n.chunks[CHUNKS - 1] as u64; // ≥ 0 and < 2^62
        limbs[CHUNKS - 1] = top as u32;
        limbs[CHUNKS] = (top >> 32) as u32;
        let negative = negative && limbs.iter().any(|&l| l != 0);
        Canonical { negative, limbs }
    }

    fn from_canonical(c: &Canonical) -> Result<SumF64> {
        let top = u64::from(c.limbs[CHUNKS - 1]) | (u64::from(c.limbs[CHUNKS]) << 32);
        if top >= TOP_LIMIT as u64 {
            return Err(Error::invalid_state("SumF64 magnitude out of range"));
        }
        let mut s = SumF64::default();
        let sign = if c.negative { -1 } else { 1 };
        for (chunk, &limb) in s.chunks.iter_mut().zip(&c.limbs[..CHUNKS - 1]) {
            *chunk = sign * i64::from(limb);
        }
        s.chunks[CHUNKS - 1] = sign * top as i64;
        Ok(s)
    }
}

/// `limbs / n` (long division, most significant limb first): quotient and remainder.
fn divide(limbs: &[u32; LIMBS], n: u64) -> ([u32; LIMBS], u64) {
    let mut quotient = [0u32; LIMBS];
    let mut rem = 0u128;
    for (q, &limb) in quotient.iter_mut().zip(limbs).rev() {
        let cur = (rem << 32) | u128::from(limb);
        // rem < n, so cur / n < 2^32
        *q = (cur / u128::from(n)) as u32;
        rem = cur % u128::from(n);
    }
    (quotient, rem as u64)
}

/// Rounds `quotient + rem / n` units of 2^-1074 (`rem < n`) to the nearest `f64`, ties to even.
fn round_quotient(quotient: &[u32; LIMBS], rem: u64, n: u64) -> f64 {
    let small = quotient[2..].iter().all(|&l| l == 0)
        && (u64::from(quotient[0]) | (u64::from(quotient[1]) << 32)) < 1 << 53;
    if !small {
        // the round bit is at unit 1 or above: the fraction only joins the sticky bit
        return round_with_sticky(quotient, rem != 0);
    }
    // below 2^53 units the result is an integer number of units: round the fraction itself
    let m = u64::from(quotient[0]) | (u64::from(quotient[1]) << 32);
    let twice = 2 * u128::from(rem);
    let up = twice > u128::from(n) || (twice == u128::from(n) && m & 1 == 1);
    f64::from_bits(m + u64::from(up))
}

/// Rounds a non-negative integer number of units of 2^-1074 (32-bit limbs) to the nearest
/// `f64`, ties to even.
fn round_to_f64(limbs: &[u32; LIMBS]) -> f64 {
    round_with_sticky(limbs, false)
}

/// As [`round_to_f64`], for an exact value a little above `limbs` when `below` (a nonzero
/// fraction of a unit, which only matters as a sticky bit when the result has units to spare).
fn round_with_sticky(limbs: &[u32; LIMBS], below: bool) -> f64 {
    let Some(h) = limbs.iter().rposition(|&l| l != 0) else {
        return 0.0;
    };
    let top_bit = h as i64 * 32 + 31 - i64::from(limbs[h].leading_zeros());
    if top_bit < 53 {
        // Below 2^53 units every integer is exactly a double, and its bit pattern is the integer.
        let m = u64::from(limbs[0]) | (u64::from(limbs[1]) << 32);
        return f64::from_bits(m);
    }
    // Window of 64 bits ending at the top bit: 53 significand bits, then the round bit, then 10
    // bits that join the sticky bit together with everything below the window.
    let lo = top_bit - 63;
    let window = bits_at(limbs, lo);
    let mut significand = window >> 11;
    let round = (window >> 10) & 1 == 1;
    let sticky = window & 0x3FF != 0 || any_bit_below(limbs, lo) || below;
    let mut exponent = top_bit - 52 + 1; // biased exponent of a normal number
    if round && (sticky || significand & 1 == 1) {
        significand += 1;
        if significand == 1 << 53 {
            significand >>= 1;
            exponent += 1;
        }
    }
    if exponent >= 0x7FF {
        return f64::INFINITY;
    }
    f64::from_bits(((exponent as u64) << 52) | (significand & ((1 << 52) - 1)))
}

/// The 64 bits at positions `lo .. lo + 64` (positions below 0 read as 0).
fn bits_at(limbs: &[u32; LIMBS], lo: i64) -> u64 {
    let mut out = 0u64;
    let first = lo.div_euclid(32);
    for k in 0..4 {
        let idx = first + k;
        if !(0..LIMBS as i64).contains(&idx) {
            continue;
        }
        let limb = u128::from(limbs[idx as usize]);
        let pos = idx * 32 - lo; // where this limb's bit 0 lands in the window; -31 ..= 96
        let placed = if pos >= 0 {
            limb << pos
        } else {
            limb >> (-pos)
        };
        out |= placed as u64;
    }
    out
}

/// Whether any bit at a position below `lo` is set.
fn any_bit_below(limbs: &[u32; LIMBS], lo: i64) -> bool {
    if lo <= 0 {
        return false;
    }
    let full = (lo / 32) as usize;
    let partial = (lo % 32) as u32;
    limbs[..full].iter().any(|&l| l != 0)
        || (partial > 0 && limbs[full] & ((1u32 << partial) - 1) != 0)
}

impl Insert<f64> for SumF64 {
    #[inline]
    fn check_insert(&self, value: &f64) -> Result<()> {
        check_finite(*value)
    }

    #[inline]
    fn insert_unchecked(&mut self, value: f64) -> Result<()> {
        self.add_finite(value); // finite: checked by check_insert
        Ok(())
    }
}

impl Merge for SumF64 {
    fn check_merge(&self, other: &Self) -> Result<()> {
        let top = |s: &SumF64| s.normalized().chunks[CHUNKS - 1].unsigned_abs();
        let (a, b) = (self.chunks[CHUNKS - 1], other.chunks[CHUNKS - 1]);
        // Fast path: tops far from the limit even after carries (≤ 2^33 each) cannot overflow.
        if a.unsigned_abs() < 1 << 59 && b.unsigned_abs() < 1 << 59 {
            return Ok(());
        }
        if top(self) + top(other) + (1 << 40) >= TOP_LIMIT as u64 {
            return Err(Error::Overflow { what: "SumF64" });
        }
        Ok(())
    }

    fn merge_unchecked(&mut self, other: &Self) -> Result<()> {
        if self.pending + other.pending >= MAX_PENDING {
            self.normalize();
            let o = other.normalized();
            self.add_chunks(&o.chunks);
            self.pending = 1;
        } else {
            self.add_chunks(&other.chunks);
            self.pending += other.pending + 1;
        }
        Ok(())
    }
}

impl SumF64 {
    fn add_chunks(&mut self, other: &[i64; CHUNKS]) {
        self.chunks
            .iter_mut()
            .zip(other)
            .for_each(|(a, b)| *a += *b);
    }
}

impl Codec for SumF64 {
    const TYPE_TAG: u16 = tags::SUM_F64;

    fn write_payload(&self, out: &mut Vec<u8>) {
        let c = self.canonical();
        let limbs = (0u8..)
            .zip(c.limbs)
            .filter(|&(_, l)| l != 0)
            .collect::<Vec<_>>();
        codec::write_postcard(
            &Wire {
                negative: c.negative,
                limbs,
            },
            out,
        );
    }

    fn read_parts(params: &[u8], payload: &[u8], _: &Limits) -> Result<Self> {
        no_params(params)?;
        let wire: Wire = codec::read_postcard(payload, "SumF64 payload")?;
        let mut c = Canonical {
            negative: wire.negative,
            limbs: [0; LIMBS],
        };
        let mut next = 0usize;
        for (idx, limb) in wire.limbs {
            let idx = usize::from(idx);
            if idx < next || idx >= LIMBS || limb == 0 {
                return Err(Error::invalid_state(
                    "SumF64 limbs must be non-zero with strictly increasing indexes",
                ));
            }
            c.limbs[idx] = limb;
            next = idx + 1;
        }
        if c.negative && next == 0 {
            return Err(Error::invalid_state("SumF64 negative zero"));
        }
        SumF64::from_canonical(&c)
    }
}
