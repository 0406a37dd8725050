//! Cardinality estimators: Ertl's improved raw estimator for dense registers, linear counting
//! for the sparse representation.
//!
//! Both are plain functions of the state (a register histogram, a count of occupied sparse
//! slots), so equal states always give bit-identical estimates, whatever their history.

/// `α∞ = 1 / (2 ln 2)`, the limit of the HyperLogLog bias constant for large `m`.
const ALPHA_INF: f64 = 0.5 / core::f64::consts::LN_2;

/// Number of histogram slots: register values are `0..=q + 1 = 65 - p ≤ 61`.
pub(super) const HIST_LEN: usize = 64;

/// A register histogram: `hist[k]` is the number of registers holding `k`.
pub(super) type Histogram = [u32; HIST_LEN];

/// Ertl (2017), "New cardinality estimation algorithms for HyperLogLog sketches", Algorithm 6
/// (the *improved raw estimator*), for `m = 2^p` registers of `q + 1 = 65 - p` possible ranks.
///
/// ```text
/// n̂ = α∞ m² / ( m σ(C₀/m) + Σ_{k=1..q} C_k 2^{-k} + m τ(1 − C_{q+1}/m) 2^{-q} )
/// ```
///
/// `σ` corrects the small range (it tends to linear counting), `τ` the saturated range, so the
/// estimate has no bias bump anywhere between 1 and the hash space. The sum is evaluated in
/// Horner form from `k = q` down, as in the paper.
pub(super) fn ertl(hist: &Histogram, p: u8) -> f64 {
    let m = f64::from(1u32 << p);
    let q = 64 - usize::from(p);
    let c = |k: usize| f64::from(hist.get(k).copied().unwrap_or(0));
    let mut z = m * tau(1.0 - c(q + 1) / m);
    for k in (1..=q).rev() {
        z = 0.5 * (z + c(k));
    }
    z += m * sigma(c(0) / m);
    ALPHA_INF * m * m / z
}

/// `σ(x) = x + Σ_{k≥1} x^{2^k} 2^{k−1}`; `σ(1) = ∞` (all registers empty: estimate 0).
fn sigma(mut x: f64) -> f64 {
    if x >= 1.0 {
        return f64::INFINITY;
    }
    let mut y = 1.0;
    let mut z = x;
    loop {
        x *= x;
        let before = z;
        z += x * y;
        y += y;
        if z == before {
            return z;
        }
    }
}

/// `τ(x) = (1/3) (1 − x − Σ_{k≥1} (1 − x^{2^{−k}})² 2^{−k})`; `τ(0) = τ(1) = 0`.
fn tau(mut x: f64) -> f64 {
    if x <= 0.0 || x >= 1.0 {
        return 0.0;
    }
    let mut y = 1.0;
    let mut z = 1.0 - x;
    loop {
        x = x.sqrt();
        let before = z;
        y *= 0.5;
        let d = 1.0 - x;
        z -= d * d * y;
        if z == before {
            return z / 3.0;
        }
    }
}

/// Linear counting (Whang et al. 1990) over `2^bits` slots of which `occupied` are taken:
/// `m ln(m / (m − v))`, written with `ln_1p` so that small `v` stays exact to the last bits.
pub(super) fn linear_counting(occupied: usize, bits: u8) -> f64 {
    let m = f64::from(1u32 << bits);
    let v = occupied as f64;
    if v >= m {
        // Cannot happen for the sparse representation (it is far smaller than 2^bits), but
        // the estimate stays finite anyway.
        return m * (m.ln() + 1.0);
    }
    -m * (-v / m).ln_1p()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_histogram_estimates_zero() {
        let mut h = [0u32; HIST_LEN];
        h[0] = 1 << 14;
        assert_eq!(ertl(&h, 14), 0.0);
    }

    #[test]
    fn one_register_set_estimates_about_one() {
        let mut h = [0u32; HIST_LEN];
        h[0] = (1 << 14) - 1;
        h[1] = 1;
        let e = ertl(&h, 14);
        assert!((e - 1.0).abs() < 0.01, "{e}");
    }

    #[test]
    fn all_registers_saturated_is_huge() {
        let mut h = [0u32; HIST_LEN];
        h[64 - 14 + 1] = 1 << 14;
        let e = ertl(&h, 14);
        assert!(e > 1e18, "{e}"); // +inf: beyond what 64-bit hashes can tell
    }

    #[test]
    fn linear_counting_small_values_are_near_exact() {
        for v in [0usize, 1, 2, 10, 1000] {
            let e = linear_counting(v, 20);
            assert!((e - v as f64).abs() <= 0.5 + v as f64 * 1e-3, "{v} -> {e}");
        }
    }
}
