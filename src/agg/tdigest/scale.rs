//! The k₂ scale function, evaluated with deterministic arithmetic.
//!
//! k₂(q) = (δ / Z(n)) · ln(q / (1 − q)) with the normaliser Z(n) = 4 · ln(max(n/δ, 1)) + 24
//! (Dunning & Ertl 2019, §2.1, scale function k₂). A centroid that starts after `w₀` of the `n`
//! values may grow to `w₁` values as long as k₂(w₁/n) − k₂(w₀/n) ≤ 1. In odds form that is
//! `odds(w₁) ≤ odds(w₀) · g` with `g = exp(Z(n)/δ)`, so once `g` is known the limit of every
//! centroid is a few multiplications and one division — no logarithm per centroid.
//!
//! `g` is computed once per compression with the deterministic `ln` and `exp` of
//! `agg::detmath`, which use only IEEE 754 basic operations (no platform `libm`), so the same
//! inputs give the same centroids, and the same bytes, on every platform.

use crate::agg::detmath::{exp, ln};

/// The normaliser Z(n) of k₂.
pub(crate) fn normaliser(n: u64, compression: u32) -> f64 {
    let ratio = n as f64 / f64::from(compression);
    4.0 * ln(ratio.max(1.0)) + 24.0
}

/// `g = exp(Z(n)/δ)`: the largest odds ratio one centroid may span.
pub(crate) fn growth(n: u64, compression: u32) -> f64 {
    exp(normaliser(n, compression) / f64::from(compression))
}

/// Centroid limits for one compression pass over `n` values.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Scale {
    n: f64,
    /// `g = exp(Z(n)/δ)`: the largest odds ratio one centroid may span.
    g: f64,
}

impl Scale {
    /// The scale for compressing `n` values with compression δ.
    pub(crate) fn new(n: u64, compression: u32) -> Self {
        Scale {
            n: n as f64,
            g: growth(n, compression),
        }
    }

    /// The largest cumulative weight a centroid starting after `start` values may reach.
    ///
    /// A centroid always takes its first input, whatever its weight; further inputs join while
    /// the cumulative weight stays at or below this limit. At `start = 0` the limit is 0, so the
    /// smallest value is always a centroid of its own (and symmetrically at the top).
    #[inline]
    pub(crate) fn limit(&self, start: u64) -> u64 {
        let w0 = start as f64;
        let limit = self.n * self.g * w0 / ((self.n - w0) + self.g * w0);
        // The limit is ≥ 0, so truncation is `floor`; `as` saturates: a limit beyond u64::MAX
        // cannot be reached anyway.
        limit as u64
    }
}

/// The most centroids a compression pass over `n` values can produce with compression δ.
///
/// Two adjacent centroids together span more than one unit of k₂ (the greedy pass closed the
/// first because its next input would not fit), and between the first and the last value k₂
/// spans (δ/Z)·2·ln(n − 1), so there are at most 4·δ·ln(n − 1)/Z + 4 centroids. Decoding
/// allows 10 % more (plus 8) so rounding can never make a valid digest undecodable.
pub(crate) fn max_centroids(n: u64, compression: u32) -> u64 {
    if n < 16 {
        return n;
    }
    let span = 4.0 * f64::from(compression) * (n as f64).ln() / normaliser(n, compression);
    let bound = (span * 1.1).ceil() as u64 + 8;
    bound.min(n)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn limit_is_one_unit_of_k2() {
        let (n, delta) = (1_000_000u64, 100u32);
        let s = Scale::new(n, delta);
        let k = |w: f64| {
            let q = w / n as f64;
            f64::from(delta) / normaliser(n, delta) * (q / (1.0 - q)).ln()
        };
        for start in [1u64, 10, 1000, 500_000, 999_000, 999_990] {
            let lim = s.limit(start);
            assert!(k(lim as f64) - k(start as f64) <= 1.0 + 1e-9);
            assert!(k(lim as f64 + 1.0) - k(start as f64) > 1.0 - 1e-9);
        }
        assert_eq!(s.limit(0), 0);
    }
}
