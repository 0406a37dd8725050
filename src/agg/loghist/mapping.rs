//! The value → bucket index mapping: a cubic approximation of log₂ from the bits of a double.
//!
//! For `x = 2^e · (1 + s)` with `s ∈ [0, 1)`, `L(x) = e + P(s)` with
//! `P(s) = A s³ + B s² + C s`, `A = 6/35`, `B = −3/5`, `C = 10/7` (the cubic of DDSketch's
//! `CubicallyInterpolatedMapping`, Masson, Rim & Lee 2019). `P(0) = 0`, `P(1) = 1`, so `L` is
//! continuous and increasing, and `dL/d(ln x) = (1 + s) P'(s) ≥ C` (the minimum, reached at
//! `s = 0` and `s = 2/3`). The bucket of `x` is `⌊L(x) · m⌋` with `m = 1/(C · ln γ)`,
//! `γ = (1 + α)/(1 − α)`: every bucket spans at most a factor γ, so the value
//! `2·lo·hi/(lo + hi)` is within α (relative) of everything in `[lo, hi]`.
//!
//! Only bit manipulation and `+ − ×` are used per value (no `ln`, no platform `libm`), so the
//! index of a value is the same on every platform and costs a few nanoseconds.

use crate::agg::detmath::ln;

const A: f64 = 6.0 / 35.0;
const B: f64 = -3.0 / 5.0;
const C: f64 = 10.0 / 7.0;
/// The internal accuracy is this much tighter than the documented α, so floating-point rounding
/// in the mapping and its inverse (≈ 1e-15) can never push an estimate past α.
const MARGIN: f64 = 1.0 - 1e-7;

/// A value → index mapping for relative accuracy α.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Mapping {
    multiplier: f64,
}

impl Mapping {
    /// The mapping for relative accuracy `alpha` (`0 < alpha < 1`).
    pub(crate) fn new(alpha: f64) -> Self {
        let a = alpha * MARGIN;
        let ln_gamma = ln((1.0 + a) / (1.0 - a));
        Mapping {
            multiplier: 1.0 / (C * ln_gamma),
        }
    }

    /// The bucket of a positive, finite, normal `x` (`x ≥ f64::MIN_POSITIVE`).
    #[inline]
    pub(crate) fn index(&self, x: f64) -> i32 {
        let bits = x.to_bits();
        let e = ((bits >> 52) & 0x7FF) as i64 - 1023;
        let s = f64::from_bits((bits & ((1 << 52) - 1)) | (1023 << 52)) - 1.0;
        let l = ((A * s + B) * s + C) * s + e as f64;
        floor_i32(l * self.multiplier)
    }

    /// The smallest and largest index a normal positive double can have.
    pub(crate) fn index_range(&self) -> (i32, i32) {
        (self.index(f64::MIN_POSITIVE), self.index(f64::MAX))
    }

    /// The representative value of bucket `i`: within α of every value the bucket holds.
    pub(crate) fn value(&self, i: i32) -> f64 {
        // the bucket's values lie in [lo, hi] ∩ [f64::MIN_POSITIVE, f64::MAX]
        let lo = inverse(f64::from(i) / self.multiplier).max(f64::MIN_POSITIVE);
        let hi = inverse((f64::from(i) + 1.0) / self.multiplier).min(f64::MAX);
        // 2·lo·hi/(lo + hi) written so that nothing overflows (the result is ≤ hi)
        lo / ((1.0 + lo / hi) / 2.0)
    }
}

/// 1.5 · 2^52: adding it to `|v| < 2^51` rounds `v` to an integer (ties to even) that sits, in
/// two's complement, in the low bits of the sum.
const ROUNDER: f64 = 6_755_399_441_055_744.0;

/// `⌊v⌋` for `|v| < 2^31`, with neither a libm call nor a saturating float → int conversion:
/// round to the nearest integer with [`ROUNDER`], then step down if that went above `v`. For
/// every index this crate computes, |v| ≤ 1024 / (C · ln γ) < 2^31.
#[inline]
fn floor_i32(v: f64) -> i32 {
    let y = v + ROUNDER;
    let nearest = y.to_bits() as u32 as i32; // the low 32 bits: round(v) in two's complement
    nearest - i32::from(y - ROUNDER > v)
}

/// `L⁻¹(y)`: the `x` with `L(x) = y`.
fn inverse(y: f64) -> f64 {
    let e = y.floor();
    let t = y - e;
    // Newton on P(s) = t; P is increasing with P' ≥ 1/2 on [0, 1], so this converges fast.
    let mut s = t;
    for _ in 0..8 {
        let p = ((A * s + B) * s + C) * s;
        let dp = (3.0 * A * s + 2.0 * B) * s + C;
        s = (s - (p - t) / dp).clamp(0.0, 1.0);
    }
    (1.0 + s) * 2f64.powi(e as i32)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::testkit::SplitMix64;

    #[test]
    fn every_value_is_within_alpha_of_its_bucket_value() {
        for alpha in [1e-4, 0.001, 0.01, 0.05, 0.5] {
            let m = Mapping::new(alpha);
            let mut rng = SplitMix64::new(alpha.to_bits());
            for _ in 0..100_000 {
                // uniform over the bit patterns of normal positive doubles: every binade
                let bits = (1u64 << 52) + rng.next_u64() % ((0x7FEu64 << 52) - (1 << 52));
                let x = f64::from_bits(bits);
                let v = m.value(m.index(x));
                assert!((v - x).abs() <= alpha * x, "α={alpha} x={x} v={v}");
            }
            for x in [f64::MIN_POSITIVE, 1.0, 2.0, f64::MAX] {
                let v = m.value(m.index(x));
                assert!((v - x).abs() <= alpha * x, "α={alpha} x={x} v={v}");
            }
        }
    }

    #[test]
    fn floor_matches_std() {
        let mut rng = SplitMix64::new(7);
        let edges = [
            0.0,
            0.5,
            -0.5,
            1.0,
            -1.0,
            2.5,
            -2.5,
            1e-300,
            -1e-300,
            0.999_999_999_999_9,
        ];
        let big = [
            2_147_483_647.0,
            -2_147_483_648.0,
            2_147_483_646.5,
            -2_147_483_647.5,
        ];
        let random = (0..100_000).map(|_| (rng.unit() - 0.5) * 2f64.powi(rng.below(32) as i32));
        for v in edges.into_iter().chain(big).chain(random) {
            assert_eq!(f64::from(floor_i32(v)), v.floor(), "{v}");
        }
    }

    #[test]
    fn index_is_monotone() {
        let m = Mapping::new(0.01);
        let mut x = f64::MIN_POSITIVE;
        let mut last = m.index(x);
        while x < 1e300 {
            x *= 1.0001;
            let i = m.index(x);
            assert!(i >= last && i <= last + 1);
            last = i;
        }
    }
}
