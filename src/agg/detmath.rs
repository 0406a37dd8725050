//! Logarithm and exponential from IEEE 754 basic operations only.
//!
//! Platform `libm`s may differ in the last bit, and a parameter derived from a logarithm decides
//! which bucket or centroid a value lands in. These versions use only `+ − × ÷` and bit
//! manipulation, so every platform computes the same bits, and states built from the same
//! inputs encode to the same bytes everywhere. Accuracy: within 1e-14 relative of `std`.

/// Natural logarithm of a positive, finite, normal `x`.
pub(crate) fn ln(x: f64) -> f64 {
    let bits = x.to_bits();
    let exponent = ((bits >> 52) & 0x7FF) as i64 - 1023;
    // m in [1, 2): ln x = e · ln 2 + ln m, and ln m = 2 · atanh((m − 1) / (m + 1)).
    let m = f64::from_bits((bits & ((1 << 52) - 1)) | (1023 << 52));
    let s = (m - 1.0) / (m + 1.0); // in [0, 1/3)
    let s2 = s * s;
    let mut term = s;
    let mut series = 0.0;
    for k in 0..24 {
        series += term / f64::from(2 * k + 1);
        term *= s2;
    }
    exponent as f64 * core::f64::consts::LN_2 + 2.0 * series
}

/// `e^y` for `0 ≤ y ≤ 700`.
pub(crate) fn exp(y: f64) -> f64 {
    let k = (y / core::f64::consts::LN_2).floor();
    let r = y - k * core::f64::consts::LN_2; // in [0, ln 2)
    let mut term = 1.0;
    let mut series = 1.0;
    for i in 1..24 {
        term *= r / f64::from(i);
        series += term;
    }
    // 2^k as an exact power of two (0 ≤ k ≤ 1010).
    series * f64::from_bits(((k as u64) + 1023) << 52)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn ln_matches_std() {
        for x in [1e-300, 0.001, 0.5, 1.0, 1.5, 2.0, 3.0, 1e6, 1.7e308] {
            let rel = (ln(x) - x.ln()).abs() / x.ln().abs().max(1.0);
            assert!(rel < 1e-14, "ln({x}) = {} vs {}", ln(x), x.ln());
        }
    }

    #[test]
    fn exp_matches_std() {
        for y in [0.0, 1e-6, 0.1, 0.69, 0.7, 1.0, 2.4, 10.0, 700.0] {
            let rel = (exp(y) - y.exp()).abs() / y.exp();
            assert!(rel < 1e-14, "exp({y}) = {} vs {}", exp(y), y.exp());
        }
    }
}
