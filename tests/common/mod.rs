//! Strategies and helpers shared by the integration tests.
#![allow(dead_code)]

use proptest::prelude::*;

pub mod dedup;
pub mod quantiles;

/// Finite doubles of every magnitude and sign, subnormals and zeros included.
pub fn finite_f64() -> impl Strategy<Value = f64> {
    use proptest::num::f64 as f;
    prop_oneof![
        (f::POSITIVE | f::NEGATIVE | f::NORMAL | f::SUBNORMAL | f::ZERO),
        // small integers and their negatives: heavy cancellation, exact-looking results
        (-1000i32..1000).prop_map(f64::from),
        // mixed magnitudes from 1e-300 to 1e300
        (-300i32..300, -1.0f64..1.0).prop_map(|(e, m)| m * 10f64.powi(e)),
    ]
}
