//! Every exact aggregate through the one law suite, 256 cases each.

use crate::common;

use common::finite_f64;
use proptest::prelude::*;
use shardfold::testkit::Laws;
use shardfold::{Count, Max, Mean, Min, Stats, Sum, SumF64};

#[test]
fn count() {
    Laws::<Count, u32>::new("Count").check(any::<u32>());
}

#[test]
fn sum_i64() {
    Laws::<Sum, i64>::new("Sum").check(any::<i64>());
}

#[test]
fn sum_f64() {
    Laws::<SumF64, f64>::new("SumF64").check(finite_f64());
}

#[test]
fn sum_f64_huge_values_overflowing_f64() {
    // sums beyond f64::MAX read as ±inf but the states stay exact and order-independent
    Laws::<SumF64, f64>::new("SumF64 near f64::MAX").check(prop_oneof![
        Just(f64::MAX),
        Just(-f64::MAX),
        Just(f64::MIN_POSITIVE)
    ]);
}

#[test]
fn min_f64() {
    Laws::<Min<f64>, f64>::new("Min<f64>")
        .lattice()
        .check(proptest::num::f64::ANY.prop_filter("not NaN", |x| !x.is_nan()));
}

#[test]
fn max_f64() {
    Laws::<Max<f64>, f64>::new("Max<f64>")
        .lattice()
        .check(proptest::num::f64::ANY.prop_filter("not NaN", |x| !x.is_nan()));
}

#[test]
fn min_i64() {
    Laws::<Min<i64>, i64>::new("Min<i64>")
        .lattice()
        .check(any::<i64>());
}

#[test]
fn max_i64() {
    Laws::<Max<i64>, i64>::new("Max<i64>")
        .lattice()
        .check(any::<i64>());
}

#[test]
fn mean() {
    Laws::<Mean, f64>::new("Mean").check(finite_f64());
}

#[test]
fn stats() {
    Laws::<Stats, f64>::new("Stats").check(finite_f64());
}

#[test]
fn tuple_of_stats_and_count() {
    Laws::<(Stats, Count, Max<f64>), f64>::new("(Stats, Count, Max)").check(finite_f64());
}

#[test]
fn tuple_of_four() {
    Laws::<(Count, Sum, Min<i64>, Max<i64>), i64>::new("(Count, Sum, Min, Max)")
        .check(any::<i64>());
}

#[test]
fn zip_of_stats_distinct_count() {
    use shardfold::{Distinct, Zip};
    Laws::<Zip<(Stats, Distinct, Count)>, (f64, u64, ())>::new("Zip<(Stats, Distinct, Count)>")
        .check((finite_f64(), any::<u64>(), Just(())));
}
