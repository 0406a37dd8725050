//! The quantile sketches through the one law suite: exact laws for LogHistogram, the documented
//! rank-error bound for the t-digest's grouping-dependent centroids.

use crate::common;

use common::finite_f64;
use common::quantiles::within_bound;
use proptest::prelude::*;
use shardfold::codec::{Codec, Limits};
use shardfold::testkit::Laws;
use shardfold::{Insert, LogHistogram, Merge, Quantiles, Result};

#[test]
fn quantiles_default_compression() {
    Laws::<Quantiles, f64>::new("Quantiles")
        .approx(within_bound)
        .check(finite_f64());
}

#[test]
fn quantiles_many_values_log_normal_like() {
    Laws::<Quantiles, f64>::new("Quantiles, 1000 values")
        .max_values(1000)
        .cases(64)
        .approx(within_bound)
        .check((-8.0f64..8.0).prop_map(f64::exp));
}

/// A digest at compression 50, so that small cases compress heavily (at the minimum, 10, the
/// bound exceeds 1 around the median: nothing to check).
#[derive(Debug, Clone)]
struct Small(Quantiles);

impl Default for Small {
    fn default() -> Self {
        Small(Quantiles::new(50))
    }
}

impl Insert<f64> for Small {
    fn check_insert(&self, v: &f64) -> Result<()> {
        self.0.check_insert(v)
    }
    fn insert_unchecked(&mut self, v: f64) -> Result<()> {
        self.0.insert_unchecked(v)
    }
}

impl Merge for Small {
    fn check_merge(&self, other: &Self) -> Result<()> {
        self.0.check_merge(&other.0)
    }
    fn merge_unchecked(&mut self, other: &Self) -> Result<()> {
        self.0.merge_unchecked(&other.0)
    }
}

impl Codec for Small {
    const TYPE_TAG: u16 = Quantiles::TYPE_TAG;
    fn write_params(&self, out: &mut Vec<u8>) {
        self.0.write_params(out)
    }
    fn write_payload(&self, out: &mut Vec<u8>) {
        self.0.write_payload(out)
    }
    fn read_parts(params: &[u8], payload: &[u8], limits: &Limits) -> Result<Self> {
        Quantiles::read_parts(params, payload, limits).map(Small)
    }
}

#[test]
fn quantiles_small_compression_heavy_merging() {
    Laws::<Small, f64>::new("Quantiles(δ=50)")
        .max_values(3000)
        .cases(64)
        .approx(|a, b| within_bound(&a.0, &b.0))
        // Smooth data: with gaps of many orders of magnitude (finite_f64 mixed in) a value
        // interpolated inside a gap can read at quite different ranks in two groupings (kept as
        // `tdigest_gap_data_rank_within_bound` in tests/quantiles.rs, which checks true ranks).
        .check(prop_oneof![
            (-8.0f64..8.0).prop_map(f64::exp),
            (-1e6f64..1e6),
            (0u32..100).prop_map(f64::from),
        ]);
}

#[test]
fn log_histogram_exact_laws() {
    Laws::<LogHistogram, f64>::new("LogHistogram").check(finite_f64());
}

#[test]
fn log_histogram_exact_laws_spread_values() {
    // values over the whole range, many per case: sparse and dense buckets, both signs
    Laws::<LogHistogram, f64>::new("LogHistogram, spread")
        .max_values(1000)
        .cases(64)
        .check(prop_oneof![
            (-300i32..300, -1.0f64..1.0).prop_map(|(e, m)| m * 10f64.powi(e)),
            (0.5f64..2.0),
            Just(0.0),
        ]);
}
