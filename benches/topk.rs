//! `TopK` (mergeable Misra–Gries, k = 64) against `streaming_algorithms::Top` (the top-k list
//! of a crates.io user's usual pick: a k-entry ordered map backed by a count-min sketch with
//! conservative update, `Top::new(64, 0.99, 2/1000, ())`), side by side in the same groups and
//! the same run: insert throughput (u64 and strings, Zipf s = 1.1 over 10⁵ items), a merge of 100
//! sketches, and — printed once before the timings — accuracy and encoded size on 10⁶ values.
//!
//! ```text
//! cargo bench --bench topk -- --warm-up-time 1 --measurement-time 2
//! ```
//!
//! The peer's merge (`+=`) re-inserts both top lists into an empty `Top`: the count-min
//! counts of everything outside the lists are dropped, its iteration order (a randomly seeded
//! hash map) makes the result depend on the run, and different capacities panic.

use std::collections::HashMap;
use std::hint::black_box;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use shardfold::testkit::SplitMix64;
use shardfold::{Insert, Merge, TopK, codec};
use streaming_algorithms::Top;

const K: u32 = 64;
/// Values inserted per measured iteration: the figure per insert is the time / `BATCH`.
const BATCH: usize = 1024;

type Peer<T> = Top<T, usize>;

fn peer<T: std::hash::Hash + Eq + Clone>() -> Peer<T> {
    Top::new(K as usize, 0.99, 2.0 / 1000.0, ())
}

/// `n` Zipf(s) ranks over `0..universe` (inverse CDF), from `seed`.
fn zipf(s: f64, universe: usize, n: usize, seed: u64) -> Vec<u64> {
    let mut acc = 0.0;
    let cdf: Vec<f64> = (1..=universe)
        .map(|r| {
            acc += (r as f64).powf(-s);
            acc
        })
        .collect();
    let mut rng = SplitMix64::new(seed);
    (0..n)
        .map(|_| {
            let u = rng.unit() * acc;
            cdf.partition_point(|&c| c < u).min(universe - 1) as u64
        })
        .collect()
}

fn ours_of(values: &[u64]) -> TopK<u64> {
    ours_k(K, values)
}

fn ours_k(k: u32, values: &[u64]) -> TopK<u64> {
    let mut t = TopK::new(k);
    values.iter().for_each(|&v| {
        let _ = t.insert(v);
    });
    t
}

fn peer_of(values: &[u64]) -> Peer<u64> {
    let mut t = peer();
    values.iter().for_each(|&v| t.push(v, &1));
    t
}

/// Recall of the true heavy hitters (count > n/(k+1)) and the largest error on them, and the
/// largest error over every item a sketch reports (`reported` maps item → reported count).
fn accuracy(exact: &HashMap<u64, u64>, n: u64, reported: &HashMap<u64, u64>) -> String {
    // heavy hitters for k = 64 whatever the sketch's own k, so that rows compare
    let heavy: Vec<(&u64, &u64)> = exact
        .iter()
        .filter(|(_, c)| **c > n / u64::from(K + 1))
        .collect();
    let found = heavy
        .iter()
        .filter(|(v, _)| reported.contains_key(v))
        .count();
    let err = |v: &u64, c: u64| reported.get(v).copied().unwrap_or(0).abs_diff(c);
    let heavy_err = heavy.iter().map(|(v, c)| err(v, **c)).max().unwrap_or(0);
    let any_err = reported.keys().map(|v| err(v, exact[v])).max().unwrap_or(0);
    format!(
        "recall {found}/{} heavy hitters, max error on them {heavy_err}, max error on any reported item {any_err}",
        heavy.len()
    )
}

/// Prints accuracy and sizes for one stream of 10⁶ values, as one sketch and merged from 100.
fn report(s: f64) {
    let values = zipf(s, 100_000, 1_000_000, 7);
    let n = values.len() as u64;
    let mut exact = HashMap::new();
    values
        .iter()
        .for_each(|&v| *exact.entry(v).or_insert(0u64) += 1);
    let parts: Vec<&[u64]> = values.chunks(values.len() / 100).collect();
    let mut ours = ours_of(parts[0]);
    parts[1..]
        .iter()
        .for_each(|p| ours.merge(&ours_of(p)).unwrap_or(()));
    let mut theirs = peer_of(parts[0]);
    parts[1..].iter().for_each(|p| theirs += peer_of(p));
    for (how, o, p) in [
        ("one stream", ours_of(&values), peer_of(&values)),
        ("100 parts merged", ours, theirs),
    ] {
        let ours_map: HashMap<u64, u64> = o.iter().map(|(v, c)| (*v, c)).collect();
        let peer_map: HashMap<u64, u64> = p.iter().map(|(v, c)| (*v, *c as u64)).collect();
        eprintln!("zipf s={s}, n=1e6, k={K}, {how}:");
        eprintln!(
            "  shardfold TopK: error_bound {} (n/(k+1) = {}), {}, {} B encoded",
            o.error_bound(),
            n / u64::from(K + 1),
            accuracy(&exact, n, &ours_map),
            codec::encode(&o).len()
        );
        if how == "one stream" {
            // our sketch at about the peer's size (its count-min sketch is ~9 KB)
            let big = ours_k(1024, &values);
            let big_map: HashMap<u64, u64> = big.iter().map(|(v, c)| (*v, c)).collect();
            eprintln!(
                "  shardfold TopK k=1024: error_bound {}, {}, {} B encoded",
                big.error_bound(),
                accuracy(&exact, n, &big_map),
                codec::encode(&big).len()
            );
        }
        eprintln!(
            "  streaming_algorithms Top: {}, {} B (postcard)",
            accuracy(&exact, n, &peer_map),
            postcard::to_allocvec(&p).map_or(0, |b| b.len())
        );
    }
}

fn insert_u64(c: &mut Criterion) {
    let warm = zipf(1.1, 100_000, 100_000, 1);
    let stream = zipf(1.1, 100_000, 64 * BATCH, 2);
    let mut g = c.benchmark_group("topk_insert_u64_k64");
    g.throughput(Throughput::Elements(BATCH as u64));
    let (mut ours, mut theirs) = (ours_of(&warm), peer_of(&warm));
    let mut at = 0;
    g.bench_function("shardfold", |b| {
        b.iter(|| {
            at = (at + BATCH) % stream.len();
            for &v in &stream[at..at + BATCH] {
                let _ = ours.insert(black_box(v));
            }
        })
    });
    g.bench_function("streaming_algorithms", |b| {
        b.iter(|| {
            at = (at + BATCH) % stream.len();
            for &v in &stream[at..at + BATCH] {
                theirs.push(black_box(v), &1);
            }
        })
    });
    g.finish();
}

fn insert_str(c: &mut Criterion) {
    let name = |v: &u64| format!("item-{v:011}"); // 16 bytes
    let warm: Vec<String> = zipf(1.1, 100_000, 100_000, 1).iter().map(name).collect();
    let stream: Vec<String> = zipf(1.1, 100_000, 64 * BATCH, 2).iter().map(name).collect();
    let mut g = c.benchmark_group("topk_insert_str_k64");
    g.throughput(Throughput::Elements(BATCH as u64));
    let (mut ours, mut theirs) = (TopK::<String>::new(K), peer::<String>());
    for w in &warm {
        let _ = ours.insert(w.as_str());
        theirs.push(w.clone(), &1);
    }
    let mut at = 0;
    g.bench_function("shardfold", |b| {
        b.iter(|| {
            at = (at + BATCH) % stream.len();
            for w in &stream[at..at + BATCH] {
                let _ = ours.insert(black_box(w.as_str()));
            }
        })
    });
    // the peer takes owned keys: the clone is part of what a caller pays
    g.bench_function("streaming_algorithms", |b| {
        b.iter(|| {
            at = (at + BATCH) % stream.len();
            for w in &stream[at..at + BATCH] {
                theirs.push(black_box(w.clone()), &1);
            }
        })
    });
    g.finish();
}

fn merge_100(c: &mut Criterion) {
    let parts: Vec<Vec<u64>> = (0..100)
        .map(|i| zipf(1.1, 100_000, 10_000, 100 + i))
        .collect();
    let ours: Vec<TopK<u64>> = parts.iter().map(|p| ours_of(p)).collect();
    let theirs: Vec<Peer<u64>> = parts.iter().map(|p| peer_of(p)).collect();
    let mut g = c.benchmark_group("topk_merge_100_k64");
    g.bench_function("shardfold", |b| {
        b.iter(|| {
            let mut acc = TopK::<u64>::new(K);
            for t in &ours {
                let _ = acc.merge(black_box(t));
            }
            acc
        })
    });
    // `+=` consumes its right side: the clones are made outside the timing
    g.bench_function("streaming_algorithms", |b| {
        b.iter_batched(
            || theirs.clone(),
            |all| {
                let mut acc = peer::<u64>();
                for t in all {
                    acc += black_box(t);
                }
                acc
            },
            BatchSize::LargeInput,
        )
    });
    g.finish();
}

fn benches(c: &mut Criterion) {
    report(1.1);
    report(1.5);
    insert_u64(c);
    insert_str(c);
    merge_100(c);
}

criterion_group!(topk, benches);
criterion_main!(topk);
