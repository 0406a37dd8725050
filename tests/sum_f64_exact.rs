//! SumF64 against an independent exact oracle (big-integer arithmetic), in many orders.

use crate::common;

use num_bigint::{BigInt, Sign};
use num_traits::{Signed, ToPrimitive, Zero};
use proptest::prelude::*;
use shardfold::testkit::SplitMix64;
use shardfold::{Insert, Merge, SumF64, codec};

/// `x` as an exact integer number of units of 2^-1074.
fn units(x: f64) -> BigInt {
    let bits = x.to_bits();
    let exp = ((bits >> 52) & 0x7FF) as u32;
    let frac = bits & ((1 << 52) - 1);
    let (m, shift) = if exp == 0 {
        (frac, 0)
    } else {
        (frac | 1 << 52, exp - 1)
    };
    let mag = BigInt::from(m) << shift;
    if x.is_sign_negative() { -mag } else { mag }
}

/// Correctly rounded (ties to even) conversion of `n` units of 2^-1074 to f64, independent of the
/// library: scale to a 53-bit integer significand with BigInt division and compare remainders.
fn round_units(n: &BigInt) -> f64 {
    if n.is_zero() {
        return 0.0;
    }
    let neg = n.sign() == Sign::Minus;
    let mag = n.abs();
    let bits = mag.bits() as i64; // top bit position + 1
    // exponent shift so the significand has 53 bits, but not below the subnormal unit
    let shift = (bits - 53).max(0);
    let q: BigInt = &mag >> shift as usize;
    let rem: BigInt = &mag - (&q << shift as usize);
    let half = if shift > 0 {
        BigInt::from(1) << (shift as usize - 1)
    } else {
        BigInt::zero()
    };
    let mut sig = q.to_u64().unwrap();
    let mut shift = shift;
    if shift > 0 && (rem > half || (rem == half && sig & 1 == 1)) {
        sig += 1;
        if sig == 1 << 53 {
            sig >>= 1;
            shift += 1;
        }
    }
    // value = sig · 2^shift units = sig · 2^(shift - 1074)
    let v = ldexp(sig as f64, shift - 1074);
    if neg { -v } else { v }
}

/// `x · 2^e`, exactly while in range, in steps that never overflow on the way (an exact
/// power-of-two scaling; overflow at the end gives infinity, as rounding would).
fn ldexp(mut x: f64, mut e: i64) -> f64 {
    // bring x into [0.5, 1) first so the intermediate steps stay in range
    x *= 2f64.powi(-53);
    e += 53;
    while e > 0 {
        let step = e.min(500);
        x *= 2f64.powi(step as i32);
        e -= step;
    }
    while e < 0 {
        let step = (-e).min(500);
        x *= 2f64.powi(-(step as i32));
        e += step;
    }
    x
}

fn mixed_values(rng: &mut SplitMix64, n: usize) -> Vec<f64> {
    let mut v = Vec::with_capacity(n);
    while v.len() < n {
        let e = rng.below(601) as i32 - 300;
        let x = (rng.unit() * 2.0 - 1.0) * 10f64.powi(e);
        v.push(x);
        // heavy cancellation: often add an exact negation or a near-negation
        match rng.below(4) {
            0 => v.push(-x),
            1 => v.push(-x * (1.0 + f64::EPSILON)),
            _ => {}
        }
    }
    v.truncate(n);
    v
}

#[test]
fn oracle_rounding_agrees_with_hardware_on_single_values() {
    let mut rng = SplitMix64::new(1);
    for x in mixed_values(&mut rng, 2000)
        .into_iter()
        .chain([5e-324, -2.2250738585072014e-308])
    {
        assert_eq!(round_units(&units(x)).to_bits(), x.to_bits(), "{x:e}");
    }
}

#[test]
fn ten_thousand_mixed_values_in_a_hundred_orders_and_groupings() {
    let mut rng = SplitMix64::new(0x5eed);
    let values = mixed_values(&mut rng, 10_000);
    let exact: BigInt = values.iter().map(|&x| units(x)).sum();
    let expected = round_units(&exact);
    let mut reference: Option<Vec<u8>> = None;
    for round in 0..100 {
        let mut order = values.clone();
        rng.shuffle(&mut order);
        // random grouping: cut into 1..=64 parts, fold each, merge the parts in a random tree
        let cuts = 1 + rng.below(64);
        let mut parts: Vec<SumF64> = order
            .chunks(order.len().div_ceil(cuts))
            .map(|c| {
                let mut s = SumF64::default();
                c.iter().for_each(|&x| s.insert(x).unwrap());
                s
            })
            .collect();
        while parts.len() > 1 {
            let i = rng.below(parts.len());
            let a = parts.swap_remove(i);
            let j = rng.below(parts.len());
            parts[j].merge(&a).unwrap();
        }
        let total = parts.pop().unwrap();
        let bytes = codec::encode(&total);
        assert_eq!(total.value().to_bits(), expected.to_bits(), "round {round}");
        match &reference {
            None => reference = Some(bytes),
            Some(r) => assert_eq!(&bytes, r, "state bytes differ in round {round}"),
        }
    }
    // the naive sum is visibly order-dependent on this data, which is the point
    let naive: f64 = values.iter().sum();
    let naive_rev: f64 = values.iter().rev().sum();
    println!("exact {expected:e}, naive {naive:e}, naive reversed {naive_rev:e}");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]
    #[test]
    fn matches_oracle(values in proptest::collection::vec(common::finite_f64(), 0..300)) {
        let mut s = SumF64::default();
        for &x in &values {
            s.insert(x).unwrap();
        }
        let exact: BigInt = values.iter().map(|&x| units(x)).sum();
        prop_assert_eq!(s.value().to_bits(), round_units(&exact).to_bits());
    }
}

#[test]
fn ties_round_to_even() {
    // 2^53 + 1 is halfway between 2^53 and 2^53 + 2: ties to even gives 2^53
    let mut s = SumF64::default();
    s.insert(9007199254740992.0).unwrap();
    s.insert(1.0).unwrap();
    assert_eq!(s.value(), 9007199254740992.0);
    s.insert(f64::MIN_POSITIVE * 0.5).unwrap(); // a hair above the tie: rounds up
    assert_eq!(s.value(), 9007199254740994.0);
}

#[test]
fn refuses_nan_and_infinity_without_change() {
    let mut s = SumF64::default();
    s.insert(1.5).unwrap();
    let before = codec::encode(&s);
    for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
        assert!(matches!(
            s.insert(bad),
            Err(shardfold::Error::InvalidValue { .. })
        ));
    }
    assert_eq!(codec::encode(&s), before);
}

#[test]
fn overflow_beyond_f64_reads_as_infinity_and_comes_back() {
    let mut s = SumF64::default();
    s.insert(f64::MAX).unwrap();
    s.insert(f64::MAX).unwrap();
    assert_eq!(s.value(), f64::INFINITY);
    s.insert(-f64::MAX).unwrap();
    assert_eq!(s.value(), f64::MAX);
}

#[test]
fn billions_of_inserts_normalize_without_loss() {
    // 2^31 + 5 inserts of the largest value cross the normalization threshold twice
    let mut s = SumF64::default();
    let mut b = SumF64::default();
    b.insert(1.0).unwrap();
    for _ in 0..(1u64 << 22) {
        s.insert(1.0).unwrap();
    }
    let mut total = SumF64::default();
    for _ in 0..600 {
        total.merge(&s).unwrap();
    }
    total.merge(&b).unwrap();
    assert_eq!(total.value(), 600.0 * (1u64 << 22) as f64 + 1.0);
}

/// Correctly rounded (ties to even) `num / den` units of 2^-1074, independent of the library.
fn round_ratio(num: &BigInt, den: u64) -> f64 {
    if num.is_zero() {
        return 0.0;
    }
    let neg = num.sign() == Sign::Minus;
    let mag = num.abs();
    let d = BigInt::from(den);
    // the smallest shift ≥ 0 with a quotient of at most 53 bits
    let mut shift = (mag.bits() as i64 - d.bits() as i64 - 54).max(0);
    while (&mag / (&d << shift as usize)).bits() > 53 {
        shift += 1;
    }
    let den_s = &d << shift as usize;
    let q = &mag / &den_s;
    let twice = (&mag - &q * &den_s) * 2;
    let mut sig = q.to_u64().unwrap();
    if twice > den_s || (twice == den_s && sig & 1 == 1) {
        sig += 1;
        if sig == 1 << 53 && shift > 0 {
            sig >>= 1;
            shift += 1;
        }
    }
    let v = ldexp(sig as f64, shift - 1074);
    if neg { -v } else { v }
}

proptest! {
    /// `divided_by(n)` is the exact sum over n, rounded once — against the big-integer oracle,
    /// for counts equal to the number of values (a mean) and for any other n.
    #[test]
    fn divided_by_is_the_correctly_rounded_quotient(
        values in prop::collection::vec(common::finite_f64(), 1..40),
        other_n in 1u64..u64::MAX,
    ) {
        let mut s = SumF64::default();
        let mut exact = BigInt::zero();
        for &x in &values {
            s.insert(x).unwrap();
            exact += units(x);
        }
        for n in [values.len() as u64, other_n, 1, 3, 7] {
            let got = s.divided_by(n).unwrap();
            let want = round_ratio(&exact, n);
            prop_assert_eq!(got.to_bits(), want.to_bits(), "n = {}: {} vs {}", n, got, want);
        }
        let mean = s.divided_by(values.len() as u64).unwrap();
        let lo = values.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        prop_assert!(lo <= mean && mean <= hi, "mean {} outside [{}, {}]", mean, lo, hi);
    }
}

/// Issue 11, defect 7: the means rounded twice (sum rounded, then divided).
#[test]
fn means_are_rounded_once() {
    use shardfold::{Mean, Quantiles, Stats};
    fn means(values: &[f64]) -> [Option<f64>; 3] {
        let (mut m, mut s, mut q) = (Mean::default(), Stats::default(), Quantiles::default());
        for &x in values {
            m.insert(x).unwrap();
            s.insert(x).unwrap();
            q.insert(x).unwrap();
        }
        [m.value(), s.mean(), q.mean()]
    }
    assert_eq!(means(&[0.1, 0.1, 0.1]), [Some(0.1); 3]); // was 0.10000000000000002
    assert_eq!(means(&[f64::MAX, f64::MAX]), [Some(f64::MAX); 3]); // was infinity
    assert_eq!(
        means(&[-f64::MAX, -f64::MAX, -f64::MAX]),
        [Some(-f64::MAX); 3]
    );
    assert_eq!(means(&[5e-324, 0.0]), [Some(0.0); 3]); // half a unit: ties to even
    assert_eq!(means(&[5e-324, 5e-324, 0.0]), [Some(5e-324); 3]); // 2/3 of a unit rounds up
    assert_eq!(SumF64::default().divided_by(0), None);
}
