//! Accuracy of the quantile sketches against the exact sorted array.

use shardfold::agg::tdigest::DEFAULT_COMPRESSION;
use shardfold::testkit::SplitMix64;
use shardfold::{Insert, LogHistogram, Merge, Quantiles};

/// `n` log-normal values (μ = 0, σ), Box–Muller from a seeded SplitMix64.
fn log_normal(n: usize, sigma: f64, seed: u64) -> Vec<f64> {
    let mut rng = SplitMix64::new(seed);
    (0..n)
        .map(|_| {
            let u1 = 1.0 - rng.unit(); // (0, 1]
            let u2 = rng.unit();
            let z = (-2.0 * u1.ln()).sqrt() * (core::f64::consts::TAU * u2).cos();
            (sigma * z).exp()
        })
        .collect()
}

/// The exact quantile: element ⌊q·n⌋ of the sorted values (the last one for q = 1).
fn exact(sorted: &[f64], q: f64) -> f64 {
    let i = ((q * sorted.len() as f64) as usize).min(sorted.len() - 1);
    sorted[i]
}

/// Splits `values` into `shards` digests and folds them in a random order and random grouping.
fn sharded_digest(values: &[f64], shards: usize, compression: u32, seed: u64) -> Quantiles {
    let mut rng = SplitMix64::new(seed);
    let mut parts = vec![Quantiles::new(compression); shards];
    for &v in values {
        parts[rng.below(shards)].insert(v).unwrap();
    }
    rng.shuffle(&mut parts);
    fold_tree(parts, &mut rng)
}

fn fold_tree(mut parts: Vec<Quantiles>, rng: &mut SplitMix64) -> Quantiles {
    // repeatedly merge a random adjacent pair: every binary tree shape can come out
    while parts.len() > 1 {
        let i = rng.below(parts.len() - 1);
        let right = parts.remove(i + 1);
        parts[i].merge(&right).unwrap();
    }
    parts.pop().unwrap()
}

fn check_tdigest(n: usize, shards: usize, compression: u32, seed: u64, limit: f64) {
    let values = log_normal(n, 1.0, seed);
    let mut sorted = values.clone();
    sorted.sort_by(f64::total_cmp);
    let digest = sharded_digest(&values, shards, compression, seed ^ 0xABCD);
    assert_eq!(digest.count(), n as u64);
    assert_eq!(digest.min(), Some(sorted[0]));
    assert_eq!(digest.max(), Some(sorted[n - 1]));
    for q in [0.5, 0.9, 0.99, 0.999] {
        let got = digest.quantile(q).unwrap().unwrap();
        let want = exact(&sorted, q);
        let rel = (got - want).abs() / want;
        eprintln!(
            "n={n} δ={compression} q={q}: {got} vs {want}: {:.4} %",
            rel * 100.0
        );
        assert!(
            rel <= limit,
            "q={q}: {got} vs exact {want}: {:.3} %",
            rel * 100.0
        );
    }
}

/// The fast version: 10⁵ values in 100 shards of about 1000. p99.9 then rests on 100 values
/// and each shard's tail is coarser, so the limit is 1 % here (0.5 % at 10⁶ below).
#[test]
fn tdigest_1e5_log_normal_100_shards() {
    for seed in 1..=3 {
        check_tdigest(100_000, 100, DEFAULT_COMPRESSION, seed, 0.01);
    }
}

#[test]
#[ignore = "1e6 values: run in release (the lead's CI runs ignored tests)"]
fn tdigest_1e6_log_normal_100_shards() {
    for seed in 1..=3 {
        check_tdigest(1_000_000, 100, DEFAULT_COMPRESSION, seed, 0.005);
    }
}

#[test]
fn tdigest_quantile_matches_exact_when_small() {
    // fewer values than the centroid limits merge: every value is its own centroid
    let values = log_normal(50, 2.0, 7);
    let mut sorted = values.clone();
    sorted.sort_by(f64::total_cmp);
    let mut d = Quantiles::default();
    values.iter().for_each(|&v| d.insert(v).unwrap());
    for i in 0..=1000 {
        let q = f64::from(i) / 1000.0;
        assert_eq!(d.quantile(q).unwrap(), Some(exact(&sorted, q)), "q={q}");
    }
}

#[test]
fn tdigest_cdf_tracks_exact_rank() {
    let values = log_normal(200_000, 1.0, 11);
    let mut sorted = values.clone();
    sorted.sort_by(f64::total_cmp);
    let d = sharded_digest(&values, 16, DEFAULT_COMPRESSION, 3);
    for i in 1..100 {
        let x = exact(&sorted, f64::from(i) / 100.0);
        let truth = sorted.partition_point(|&v| v <= x) as f64 / sorted.len() as f64;
        let got = d.cdf(x).unwrap().unwrap();
        let bound = d.rank_error_bound(truth);
        assert!(
            (got - truth).abs() <= bound,
            "x={x}: cdf {got} vs {truth} (bound {bound})"
        );
        assert_eq!(d.rank(x).unwrap(), Some(got * sorted.len() as f64));
    }
}

/// Every quantile of `h` within α of the exact one, for q in steps of 1/2000 and at 0 and 1.
fn check_log_histogram(values: &[f64], alpha: f64) {
    let mut h = LogHistogram::new(alpha);
    values.iter().for_each(|&v| h.insert(v).unwrap());
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    assert_eq!(h.count(), values.len() as u64);
    assert_eq!(h.min(), Some(sorted[0]));
    assert_eq!(h.max(), sorted.last().copied());
    for i in 0..=2000 {
        let q = f64::from(i) / 2000.0;
        let got = h.quantile(q).unwrap().unwrap();
        let want = exact(&sorted, q);
        assert!(
            (got - want).abs() <= alpha * want.abs(),
            "α={alpha} q={q}: {got} vs exact {want}"
        );
    }
}

#[test]
fn log_histogram_within_alpha_log_normal() {
    for alpha in [0.01, 0.001, 0.05] {
        check_log_histogram(&log_normal(100_000, 2.0, 5), alpha);
    }
}

#[test]
fn log_histogram_outlier_does_not_move_p50() {
    let mut values = log_normal(100_000, 1.0, 6);
    values.push(1e30);
    check_log_histogram(&values, 0.01);
    let mut h = LogHistogram::default();
    values.iter().for_each(|&v| h.insert(v).unwrap());
    let mut sorted = values.clone();
    sorted.sort_by(f64::total_cmp);
    let p50 = h.quantile(0.5).unwrap().unwrap();
    assert!((p50 - exact(&sorted, 0.5)).abs() <= 0.01 * exact(&sorted, 0.5));
    assert_eq!(h.max(), Some(1e30));
}

#[test]
fn log_histogram_negatives_zeros_and_extremes() {
    let mut rng = SplitMix64::new(9);
    let mut values: Vec<f64> = log_normal(50_000, 3.0, 8)
        .into_iter()
        .map(|v| if rng.below(3) == 0 { -v } else { v })
        .collect();
    values.extend([
        0.0,
        -0.0,
        0.0,
        f64::MAX,
        -f64::MAX,
        f64::MIN_POSITIVE,
        -1e-300,
    ]);
    values.extend(std::iter::repeat_n(0.0, 5000));
    check_log_histogram(&values, 0.01);
}

#[test]
fn log_histogram_sharded_equals_single_stream_and_stays_within_alpha() {
    let values = log_normal(100_000, 2.0, 12);
    let mut rng = SplitMix64::new(13);
    let mut parts = vec![LogHistogram::default(); 100];
    values
        .iter()
        .for_each(|&v| parts[rng.below(100)].insert(v).unwrap());
    rng.shuffle(&mut parts);
    let mut merged = parts.pop().unwrap();
    parts.iter().for_each(|p| merged.merge(p).unwrap());
    let mut single = LogHistogram::default();
    values.iter().for_each(|&v| single.insert(v).unwrap());
    assert_eq!(shardfold::encode(&merged), shardfold::encode(&single));
    check_log_histogram(&values, 0.01);
}

/// The shrunk law-suite case that led to smooth data in the δ = 50 law test: values near 1 and
/// values near 1e35 with nothing between. Two groupings interpolate differently inside the gap,
/// but every estimate still has a true rank (against the data) within the documented bound.
#[test]
fn tdigest_gap_data_rank_within_bound() {
    let mut values = log_normal(2000, 1.0, 21);
    values.extend(log_normal(600, 1.0, 22).into_iter().map(|v| v * 1e35));
    let mut sorted = values.clone();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len() as f64;
    for seed in 0..20 {
        let d = sharded_digest(&values, 16, 50, seed);
        for i in 0..=200 {
            let q = f64::from(i) / 200.0;
            let x = d.quantile(q).unwrap().unwrap();
            let below = sorted.partition_point(|&v| v < x) as f64 / n;
            let at_most = sorted.partition_point(|&v| v <= x) as f64 / n;
            let eps = d.rank_error_bound(q);
            assert!(
                at_most >= q - eps && below <= q + eps,
                "seed {seed} q={q}: {x} has rank [{below}, {at_most}], bound ±{eps}"
            );
        }
    }
}

/// Issue 11, defect 8: the error over many random shardings, not 3 seeds. One data set (10⁵
/// log-normal values, σ = 1), 1 000 random shardings into 2–100 shards merged in random order
/// and grouping. Every estimate must be within the documented rank bound; the relative value
/// errors at p50/p99/p99.9 are measured (median and worst, printed) and the worst must stay
/// within what the `tdigest` module docs state (1 %).
#[test]
fn tdigest_error_over_a_thousand_random_shardings() {
    let values = log_normal(100_000, 1.0, 2026);
    let mut sorted = values.clone();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len() as f64;
    let qs = [0.5, 0.99, 0.999];
    let mut errors: Vec<Vec<f64>> = vec![Vec::new(); qs.len()];
    let mut rng = SplitMix64::new(1);
    for _ in 0..1000 {
        let shards = 2 + rng.below(99);
        let d = sharded_digest(&values, shards, DEFAULT_COMPRESSION, rng.next_u64());
        for (i, &q) in qs.iter().enumerate() {
            let got = d.quantile(q).unwrap().unwrap();
            let want = exact(&sorted, q);
            errors[i].push((got - want).abs() / want);
            // the rank bound: some rank of `got` in the data is within n·ε(q) of q·n
            let lo = sorted.partition_point(|&v| v < got) as f64;
            let hi = sorted.partition_point(|&v| v <= got) as f64;
            let target = q * n;
            let dist = if target < lo {
                lo - target
            } else {
                (target - hi).max(0.0)
            };
            let eps = d.rank_error_bound(q);
            assert!(
                dist <= eps * n,
                "{shards} shards, q={q}: rank off by {dist} > {}",
                eps * n
            );
        }
    }
    for (errs, q) in errors.iter_mut().zip(qs) {
        errs.sort_by(f64::total_cmp);
        let (median, worst) = (errs[errs.len() / 2], errs[errs.len() - 1]);
        println!(
            "q={q}: relative value error median {:.3} %, worst {:.3} %",
            median * 100.0,
            worst * 100.0
        );
        assert!(worst <= 0.01, "q={q}: worst {:.3} % > 1 %", worst * 100.0);
    }
}
