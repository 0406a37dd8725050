//! `Distinct` (HyperLogLog, p = 14) against hyperloglogplus (ahash with fixed seeds) and
//! cardinality-estimator, side by side in the same groups and the same run.
//!
//! ```text
//! cargo bench --bench sketches -- --warm-up-time 1 --measurement-time 2 hll
//! ```

use std::hint::black_box;

use ahash::RandomState;
use cardinality_estimator::CardinalityEstimator;
use criterion::{BatchSize, Criterion, Throughput};
use hyperloglogplus::{HyperLogLog, HyperLogLogPlus};
use shardfold::hash::stable_hash;
use shardfold::{Distinct, Insert, Merge, codec};
use wyhash::WyHash;

const P: u8 = 14;
/// Values in each sketch before measuring: well past the sparse phase of every crate.
const FILL: u64 = 100_000;

type Hllp<T> = HyperLogLogPlus<T, RandomState>;
type Card<T> = CardinalityEstimator<T, WyHash, 14, 6>;

fn seeds() -> RandomState {
    RandomState::with_seeds(1, 2, 3, 4)
}

fn ours(seed: u64) -> Distinct {
    let mut d = Distinct::new(P);
    for i in 0..FILL {
        let _ = d.insert(seed << 40 | i);
    }
    d
}

fn hllp(seed: u64) -> Hllp<u64> {
    let mut h = Hllp::new(P, seeds()).unwrap_or_else(|e| panic!("{e:?}"));
    for i in 0..FILL {
        h.insert(&(seed << 40 | i));
    }
    h
}

fn card(seed: u64) -> Card<u64> {
    let mut c = Card::new();
    for i in 0..FILL {
        c.insert(&(seed << 40 | i));
    }
    c
}

/// Values inserted per measured iteration: the figure per insert is the time / `BATCH`.
const BATCH: u64 = 1024;

fn insert_u64(c: &mut Criterion) {
    let mut g = c.benchmark_group("hll_insert_u64_p14");
    g.throughput(Throughput::Elements(BATCH));
    let (mut d, mut h, mut e) = (ours(1), hllp(1), card(1));
    let mut next = 1u64 << 50;
    let mut batch = move || {
        next += BATCH;
        next..next + BATCH
    };
    g.bench_function("shardfold", |b| {
        b.iter(|| {
            for i in batch() {
                let _ = d.insert(black_box(i));
            }
        })
    });
    g.bench_function("hyperloglogplus_ahash", |b| {
        b.iter(|| batch().for_each(|i| h.insert(black_box(&i))))
    });
    g.bench_function("cardinality_estimator", |b| {
        b.iter(|| batch().for_each(|i| e.insert(black_box(&i))))
    });
    g.finish();
}

fn insert_str(c: &mut Criterion) {
    let words: Vec<String> = (0..BATCH)
        .map(|i| format!("{:016x}", i * 0x9E37_79B9))
        .collect();
    let mut g = c.benchmark_group("hll_insert_str16_p14");
    g.throughput(Throughput::Elements(BATCH));
    let mut d = ours(2);
    let mut h: Hllp<str> = Hllp::new(P, seeds()).unwrap_or_else(|e| panic!("{e:?}"));
    let mut e: Card<str> = Card::new();
    for i in 0..FILL {
        let s = format!("{i:016}");
        let _ = d.insert(s.as_str());
        h.insert(s.as_str());
        e.insert(s.as_str());
    }
    g.bench_function("shardfold", |b| {
        b.iter(|| {
            for w in &words {
                let _ = d.insert(black_box(w.as_str()));
            }
        })
    });
    g.bench_function("hyperloglogplus_ahash", |b| {
        b.iter(|| words.iter().for_each(|w| h.insert(black_box(w.as_str()))))
    });
    g.bench_function("cardinality_estimator", |b| {
        b.iter(|| words.iter().for_each(|w| e.insert(black_box(w.as_str()))))
    });
    g.finish();
}

fn merge_dense(c: &mut Criterion) {
    let mut g = c.benchmark_group("hll_merge_dense_p14");
    let (a, b2) = (ours(3), ours(4));
    g.bench_function("shardfold", |b| {
        b.iter_batched_ref(
            || a.clone(),
            |x| x.merge(black_box(&b2)),
            BatchSize::SmallInput,
        )
    });
    let (ha, hb) = (hllp(3), hllp(4));
    g.bench_function("hyperloglogplus_ahash", |b| {
        b.iter_batched_ref(
            || ha.clone(),
            |x| x.merge(black_box(&hb)),
            BatchSize::SmallInput,
        )
    });
    let (ea, eb) = (card(3), card(4));
    g.bench_function("cardinality_estimator", |b| {
        b.iter_batched_ref(
            || ea.clone(),
            |x| x.merge(black_box(&eb)),
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

fn count_dense(c: &mut Criterion) {
    let mut g = c.benchmark_group("hll_count_dense_p14");
    let d = ours(5);
    g.bench_function("shardfold", |b| b.iter(|| black_box(&d).estimate()));
    let mut merged = ours(5);
    let other = ours(6);
    g.bench_function("shardfold_first_count_after_merge", |b| {
        b.iter_batched_ref(
            || {
                let mut x = merged.clone();
                let _ = x.merge(&other);
                x
            },
            |x| x.estimate(),
            BatchSize::SmallInput,
        )
    });
    let _ = merged.merge(&other);
    let mut h = hllp(5);
    g.bench_function("hyperloglogplus_ahash", |b| {
        b.iter(|| black_box(&mut h).count())
    });
    let e = card(5);
    g.bench_function("cardinality_estimator", |b| {
        b.iter(|| black_box(&e).estimate())
    });
    g.finish();
}

fn codec_and_sizes(c: &mut Criterion) {
    for n in [1_000u64, 100_000, 10_000_000] {
        let mut d = Distinct::new(P);
        for i in 0..n {
            let _ = d.insert(i);
        }
        let bytes = codec::encode(&d);
        println!(
            "Distinct p=14 wire size at {n:>10} distinct: {:>6} bytes ({}, envelope included)",
            bytes.len(),
            if d.is_sparse() { "sparse" } else { "dense" }
        );
    }
    let mut g = c.benchmark_group("hll_codec_dense_p14");
    let d = ours(7);
    let bytes = codec::encode(&d);
    g.bench_function("encode", |b| b.iter(|| codec::encode(black_box(&d))));
    g.bench_function("decode", |b| {
        b.iter(|| codec::decode::<Distinct>(black_box(&bytes)))
    });
    g.finish();
}

fn insert_prehashed(c: &mut Criterion) {
    let mut g = c.benchmark_group("hll_insert_prehashed_p14");
    g.throughput(Throughput::Elements(BATCH));
    let (mut d, mut e) = (ours(1), card(1));
    // fresh random hashes each batch (a SplitMix64 stream), as a stream of new values would be
    let mut rng = shardfold::testkit::SplitMix64::new(42);
    let mut hashes = vec![0u64; BATCH as usize];
    let mut batch = move || {
        hashes.iter_mut().for_each(|h| *h = rng.next_u64());
        hashes.clone()
    };
    g.bench_function("shardfold", |b| {
        b.iter_batched(
            &mut batch,
            |hs| hs.iter().for_each(|&h| d.insert_hash(black_box(h))),
            BatchSize::SmallInput,
        )
    });
    g.bench_function("cardinality_estimator", |b| {
        b.iter_batched(
            &mut batch,
            |hs| hs.iter().for_each(|&h| e.insert_hash(black_box(h))),
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

/// Filling fresh sketches: the sparse phase (up to 4 096 values at p = 14) and the conversion.
fn build_from_empty(c: &mut Criterion) {
    for n in [1_000u64, 10_000] {
        let mut g = c.benchmark_group(format!("hll_build_{n}_distinct_p14"));
        g.throughput(Throughput::Elements(n));
        g.bench_function("shardfold", |b| {
            b.iter(|| {
                let mut d = Distinct::new(P);
                (0..n).for_each(|i| drop(d.insert(black_box(i))));
                d
            })
        });
        g.bench_function("hyperloglogplus_ahash", |b| {
            b.iter(|| {
                let mut h: Hllp<u64> = Hllp::new(P, seeds()).unwrap_or_else(|e| panic!("{e:?}"));
                (0..n).for_each(|i| h.insert(black_box(&i)));
                h
            })
        });
        g.bench_function("cardinality_estimator", |b| {
            b.iter(|| {
                let mut e = Card::<u64>::new();
                (0..n).for_each(|i| e.insert(black_box(&i)));
                e
            })
        });
        g.finish();
    }
}

/// The stable hash alone, to split an insert's cost between hashing and the sketch.
fn hash_only(c: &mut Criterion) {
    let words: Vec<String> = (0..BATCH)
        .map(|i| format!("{:016x}", i * 0x9E37_79B9))
        .collect();
    let mut g = c.benchmark_group("hll_hash_only");
    g.throughput(Throughput::Elements(BATCH));
    g.bench_function("stable_hash_u64", |b| {
        b.iter(|| {
            (0..BATCH)
                .map(|i| stable_hash(&black_box(i)))
                .fold(0, u64::wrapping_add)
        })
    });
    g.bench_function("stable_hash_str16", |b| {
        b.iter(|| {
            let sum = words.iter().map(|w| stable_hash(black_box(w.as_str())));
            sum.fold(0, u64::wrapping_add)
        })
    });
    g.finish();
}

/// Every HyperLogLog benchmark.
pub fn benches(c: &mut Criterion) {
    insert_u64(c);
    insert_prehashed(c);
    insert_str(c);
    hash_only(c);
    build_from_empty(c);
    merge_dense(c);
    count_dense(c);
    codec_and_sizes(c);
}
