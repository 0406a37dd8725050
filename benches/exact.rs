//! Exact aggregates: insert, merge, encode, decode — with the summation a user would otherwise
//! pick (naive `+=`, Kahan, the `xsum` crate's exact accumulators) in the same groups.
//!
//! `cargo bench --bench exact -- --warm-up-time 1 --measurement-time 3`

use std::hint::black_box;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use shardfold::testkit::SplitMix64;
use shardfold::{Count, Insert, Mean, Merge, Stats, Sum, SumF64, codec};
use xsum::Xsum;

const N: usize = 10_000;

fn mixed(n: usize) -> Vec<f64> {
    let mut rng = SplitMix64::new(7);
    (0..n)
        .map(|_| (rng.unit() - 0.5) * 10f64.powi(rng.below(61) as i32 - 30))
        .collect()
}

fn filled<A: Default + Insert<f64>>(values: &[f64]) -> A {
    let mut a = A::default();
    values.iter().for_each(|&x| a.insert(x).unwrap());
    a
}

fn insert(c: &mut Criterion) {
    let values = mixed(N);
    let mut g = c.benchmark_group("sum_f64_insert");
    g.throughput(Throughput::Elements(N as u64));
    g.bench_function("shardfold SumF64 (exact, mergeable)", |b| {
        b.iter(|| {
            let mut s = SumF64::default();
            for &x in black_box(&values) {
                s.insert(x).unwrap();
            }
            s
        })
    });
    g.bench_function("xsum XsumSmall (exact, no merge)", |b| {
        b.iter(|| {
            let mut s = xsum::XsumSmall::new();
            for &x in black_box(&values) {
                s.add(x);
            }
            s
        })
    });
    g.bench_function("xsum XsumLarge (exact, no merge)", |b| {
        b.iter(|| {
            let mut s = xsum::XsumLarge::new();
            for &x in black_box(&values) {
                s.add(x);
            }
            s
        })
    });
    g.bench_function("naive += (order-dependent)", |b| {
        b.iter(|| black_box(&values).iter().fold(0.0, |a, &x| a + x))
    });
    g.bench_function("Kahan (order-dependent)", |b| {
        b.iter(|| {
            let (mut sum, mut comp) = (0.0f64, 0.0f64);
            for &x in black_box(&values) {
                let y = x - comp;
                let t = sum + y;
                comp = (t - sum) - y;
                sum = t;
            }
            sum
        })
    });
    g.bench_function("shardfold Stats (count,sum,min,max)", |b| {
        b.iter(|| filled::<Stats>(black_box(&values)))
    });
    g.finish();
}

/// The per-value cost of the smallest aggregates: the check and the update of `insert`.
fn insert_small(c: &mut Criterion) {
    let values = mixed(N);
    let ints: Vec<i64> = values.iter().map(|&x| x as i64).collect();
    let mut g = c.benchmark_group("small_insert");
    g.throughput(Throughput::Elements(N as u64));
    g.bench_function("shardfold Count", |b| {
        b.iter(|| {
            // through black_box: else the whole loop folds into one addition of the length
            let mut n = Count::default();
            for x in black_box(&values) {
                black_box(&mut n).insert(x).unwrap();
            }
            n
        })
    });
    g.bench_function("shardfold Sum (i64)", |b| {
        b.iter(|| {
            let mut s = Sum::default();
            for &x in black_box(&ints) {
                s.insert(x).unwrap();
            }
            s
        })
    });
    g.bench_function("shardfold Mean", |b| {
        b.iter(|| filled::<Mean>(black_box(&values)))
    });
    g.finish();
}

fn merge_and_read(c: &mut Criterion) {
    let values = mixed(N);
    let a: SumF64 = filled(&values[..N / 2]);
    let b2: SumF64 = filled(&values[N / 2..]);
    let mut g = c.benchmark_group("exact_merge");
    g.bench_function("SumF64 merge", |b| {
        b.iter_batched_ref(
            || a.clone(),
            |x| x.merge(black_box(&b2)),
            BatchSize::SmallInput,
        )
    });
    g.bench_function("SumF64 value (carry + round)", |b| {
        b.iter(|| black_box(&a).value())
    });
    let sa: Stats = filled(&values[..N / 2]);
    let sb: Stats = filled(&values[N / 2..]);
    g.bench_function("Stats merge", |b| {
        b.iter_batched_ref(
            || sa.clone(),
            |x| x.merge(black_box(&sb)),
            BatchSize::SmallInput,
        )
    });
    let ca = Count::new(5);
    g.bench_function("Count merge", |b| {
        b.iter_batched_ref(|| ca, |x| x.merge(black_box(&ca)), BatchSize::SmallInput)
    });
    g.finish();
}

fn encode_decode(c: &mut Criterion) {
    let values = mixed(N);
    let sum: SumF64 = filled(&values);
    let stats: Stats = filled(&values);
    let sum_bytes = codec::encode(&sum);
    let stats_bytes = codec::encode(&stats);
    let mut g = c.benchmark_group("exact_codec");
    g.bench_function("SumF64 encode", |b| {
        b.iter(|| codec::encode(black_box(&sum)))
    });
    g.bench_function("SumF64 decode", |b| {
        b.iter(|| codec::decode::<SumF64>(black_box(&sum_bytes)).unwrap())
    });
    g.bench_function("Stats encode", |b| {
        b.iter(|| codec::encode(black_box(&stats)))
    });
    g.bench_function("Stats decode", |b| {
        b.iter(|| codec::decode::<Stats>(black_box(&stats_bytes)).unwrap())
    });
    g.finish();
    println!(
        "encoded sizes: SumF64 {} B, Stats {} B",
        sum_bytes.len(),
        stats_bytes.len()
    );
}

criterion_group!(benches, insert, insert_small, merge_and_read, encode_decode);
criterion_main!(benches);
