//! Quantile sketches against the crates a user would otherwise pick, side by side per group.
//!
//! `cargo bench --bench sketches -- --warm-up-time 1 --measurement-time 2 quantiles`

use std::hint::black_box;

use criterion::{BatchSize, Criterion, Throughput};
use shardfold::testkit::SplitMix64;
use shardfold::{Insert, LogHistogram, Merge, Quantiles};
use sketches_ddsketch::{Config, DDSketch};
use tdigest::TDigest;

const INGEST: usize = 100_000;
const PARTS: usize = 100;
const PART_VALUES: usize = 10_000;

/// Log-normal values (μ = 0, σ = 1), Box–Muller from a seeded generator.
fn log_normal(n: usize, seed: u64) -> Vec<f64> {
    let mut rng = SplitMix64::new(seed);
    (0..n)
        .map(|_| {
            let (u1, u2) = (1.0 - rng.unit(), rng.unit());
            ((-2.0 * u1.ln()).sqrt() * (core::f64::consts::TAU * u2).cos()).exp()
        })
        .collect()
}

fn ingest(c: &mut Criterion) {
    let values = log_normal(INGEST, 1);
    let mut g = c.benchmark_group("quantiles/ingest 1e5 f64");
    g.throughput(Throughput::Elements(INGEST as u64));
    g.bench_function("shardfold Quantiles(500), flushed", |b| {
        b.iter(|| {
            let mut d = Quantiles::default();
            for &v in &values {
                d.insert(black_box(v)).unwrap();
            }
            d.flush();
            black_box(d)
        })
    });
    for size in [100, 500] {
        g.bench_function(format!("tdigest({size}) push + flush"), |b| {
            b.iter(|| {
                let mut d = TDigest::new_with_size(size);
                for &v in &values {
                    d.push(black_box(v));
                }
                d.flush();
                black_box(d)
            })
        });
    }
    g.bench_function("shardfold LogHistogram(1 %)", |b| {
        b.iter(|| {
            let mut h = LogHistogram::default();
            for &v in &values {
                h.insert(black_box(v)).unwrap();
            }
            black_box(h)
        })
    });
    g.bench_function("sketches-ddsketch(1 %)", |b| {
        b.iter(|| {
            let mut h = DDSketch::new(Config::defaults());
            for &v in &values {
                h.add(black_box(v));
            }
            black_box(h)
        })
    });
    g.finish();
}

fn merge(c: &mut Criterion) {
    let parts: Vec<Vec<f64>> = (0..PARTS)
        .map(|i| log_normal(PART_VALUES, 100 + i as u64))
        .collect();
    let ours: Vec<Quantiles> = parts
        .iter()
        .map(|p| {
            let mut d = Quantiles::default();
            p.iter().for_each(|&v| d.insert(v).unwrap());
            d.flush();
            d
        })
        .collect();
    let peers = |size: usize| -> Vec<TDigest> {
        parts
            .iter()
            .map(|p| TDigest::new_with_size(size).merge_unsorted(p.clone()))
            .collect()
    };
    let hists: Vec<LogHistogram> = parts
        .iter()
        .map(|p| {
            let mut h = LogHistogram::default();
            p.iter().for_each(|&v| h.insert(v).unwrap());
            h
        })
        .collect();
    let dds: Vec<DDSketch> = parts
        .iter()
        .map(|p| {
            let mut h = DDSketch::new(Config::defaults());
            p.iter().for_each(|&v| h.add(v));
            h
        })
        .collect();
    let mut g = c.benchmark_group("quantiles/merge 100 sketches of 1e4 values");
    g.bench_function("shardfold Quantiles(500)", |b| {
        b.iter(|| {
            let mut acc = Quantiles::default();
            for d in &ours {
                acc.merge(black_box(d)).unwrap();
            }
            black_box(acc)
        })
    });
    for size in [100, 500] {
        let digests = peers(size);
        g.bench_function(format!("tdigest({size}) merge_digests"), |b| {
            b.iter_batched(
                || digests.clone(),
                |ds| black_box(TDigest::merge_digests(ds)),
                BatchSize::SmallInput,
            )
        });
    }
    g.bench_function("shardfold LogHistogram(1 %)", |b| {
        b.iter(|| {
            let mut acc = LogHistogram::default();
            for h in &hists {
                acc.merge(black_box(h)).unwrap();
            }
            black_box(acc)
        })
    });
    g.bench_function("sketches-ddsketch(1 %)", |b| {
        b.iter(|| {
            let mut acc = DDSketch::new(Config::defaults());
            for h in &dds {
                acc.merge(black_box(h)).unwrap();
            }
            black_box(acc)
        })
    });
    g.finish();
}

/// All quantile-sketch benches (callable from a combined bench binary).
pub fn benches(c: &mut Criterion) {
    ingest(c);
    merge(c);
}
