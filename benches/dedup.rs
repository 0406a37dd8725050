//! Event-ID dedup against hashbrown's HashSet<u128> (same IDs, same run), memory per ID, fold
//! throughput of windowed and deduplicated Stats, and of a windowed Stats + Distinct +
//! Quantiles bundle beside windowed Stats alone.
//!
//! `cargo bench --bench dedup -- --warm-up-time 1 --measurement-time 2`

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use shardfold::testkit::SplitMix64;
use shardfold::{
    Deduped, Distinct, EventId, IdDedup, Insert, Quantiles, Stats, Windowed, Zip, codec,
};

const N: usize = 1_000_000;
const HOUR: u64 = 3_600_000;

/// N random 128-bit IDs (UUID-like), event times spread evenly over one hour, arriving in
/// time order with up to 10 s of jitter.
fn workload() -> Vec<(u128, u64)> {
    let mut rng = SplitMix64::new(1);
    (0..N)
        .map(|i| {
            let id = (u128::from(rng.next_u64()) << 64) | u128::from(rng.next_u64());
            let t = 10_000 + (i as u64 * HOUR) / N as u64 - rng.next_u64() % 10_000;
            (id, t)
        })
        .collect()
}

fn ours(events: &[(u128, u64)], slot_ms: u64) -> IdDedup {
    let mut d = IdDedup::new(HOUR, slot_ms);
    for &(id, t) in events {
        let _ = black_box(d.insert(EventId::from(id), t));
    }
    d
}

fn peer(events: &[(u128, u64)]) -> hashbrown::HashSet<u128> {
    let mut s = hashbrown::HashSet::with_capacity(events.len());
    for &(id, _) in events {
        black_box(s.insert(id));
    }
    s
}

/// Resident bytes of a hashbrown table: 16-byte buckets plus one control byte each (plus a
/// group of trailing control bytes), buckets a power of two at load ≤ 7/8.
fn hashbrown_bytes(s: &hashbrown::HashSet<u128>) -> usize {
    let buckets = (s.capacity() * 8 / 7).next_power_of_two();
    buckets * (16 + 1) + 16
}

fn report_memory(events: &[(u128, u64)]) {
    let s = peer(events);
    println!(
        "resident bytes/ID: hashbrown HashSet<u128> {:.2}",
        hashbrown_bytes(&s) as f64 / s.len() as f64
    );
    for slot_ms in SLOTS {
        let d = ours(events, slot_ms);
        let n = d.ids_held() as f64;
        println!(
            "resident bytes/ID: IdDedup {} s slots {:.2} ({} IDs, {} slots); encoded bytes/ID {:.2} (envelope included)",
            slot_ms / 1000,
            d.resident_bytes() as f64 / n,
            d.ids_held(),
            d.slots_held(),
            codec::encode(&d).len() as f64 / n
        );
    }
}

/// Slot widths measured: 10 s (≈ 2 800 IDs per slot here, cache-resident tables) and 60 s.
const SLOTS: [u64; 2] = [10_000, 60_000];

fn id_dedup(c: &mut Criterion) {
    let events = workload();
    report_memory(&events);
    let mut g = c.benchmark_group("id_dedup_insert_1e6");
    g.throughput(Throughput::Elements(N as u64));
    g.sample_size(10);
    for slot_ms in SLOTS {
        let name = format!("shardfold IdDedup {} s slots", slot_ms / 1000);
        g.bench_function(name, |b| b.iter(|| ours(&events, slot_ms).ids_held()));
    }
    g.bench_function("hashbrown HashSet<u128> reserved", |b| {
        b.iter(|| peer(&events).len())
    });
    g.finish();
}

const M: usize = 100_000;

fn fold_events() -> Vec<(u64, u64, f64)> {
    let mut rng = SplitMix64::new(2);
    (0..M as u64)
        .map(|i| {
            let t = 100_000 + i * 10 - rng.next_u64() % 4_000;
            (rng.next_u64(), t, rng.unit() * 100.0)
        })
        .collect()
}

fn fold(c: &mut Criterion) {
    let events = fold_events();
    let mut g = c.benchmark_group("fold_stats_1e5");
    g.throughput(Throughput::Elements(M as u64));
    g.bench_function("Windowed<Stats> 1 s windows, 5 s lateness", |b| {
        b.iter(|| {
            let mut w: Windowed<Stats> = Windowed::new(1_000, 5_000, 60_000);
            for &(id, t, v) in &events {
                black_box(w.insert(EventId::from(id), t, v).ok());
            }
            w.ids_held()
        })
    });
    g.bench_function("Deduped<Stats> 1 min horizon", |b| {
        b.iter(|| {
            let mut d = Deduped::new(60_000, 1_000, Stats::default());
            for &(id, t, v) in &events {
                black_box(d.insert(EventId::from(id), t, v).ok());
            }
            d.aggregate().count()
        })
    });
    g.bench_function("plain Stats, no dedup (reference)", |b| {
        b.iter(|| {
            let mut s = Stats::default();
            for &(_, _, v) in &events {
                black_box(s.insert(v).ok());
            }
            s.count()
        })
    });
    g.finish();
}

/// One delivery of the bundle workload: (id, event time, amount, user).
type Order = (u64, u64, f64, u64);

/// M deliveries over five 1-minute windows (3 ms apart, up to 4 s late), ~1 % of them
/// redeliveries of one of the previous 100; amounts in 0..100, 10 000 users (≈ 8 600 distinct
/// per window, so each window's Distinct is dense).
fn orders() -> Vec<Order> {
    let mut rng = SplitMix64::new(3);
    let mut out: Vec<Order> = Vec::with_capacity(M);
    while out.len() < M {
        if out.len() > 100 && rng.below(100) == 0 {
            out.push(out[out.len() - 1 - rng.below(100)]);
            continue;
        }
        let t = 100_000 + out.len() as u64 * 3 - rng.next_u64() % 4_000;
        out.push((
            rng.next_u64(),
            t,
            rng.unit() * 100.0,
            rng.next_u64() % 10_000,
        ));
    }
    out
}

type Bundle = Zip<(Stats, Distinct, Quantiles)>;

fn fold_bundle(c: &mut Criterion) {
    let orders = orders();
    let (width, lateness, retention) = (60_000, 5_000, 600_000);
    let mut g = c.benchmark_group("fold_bundle_1e5");
    g.throughput(Throughput::Elements(M as u64));
    g.sample_size(10);
    g.bench_function(
        "Windowed<Zip<(Stats, Distinct, Quantiles)>> 1 min windows",
        |b| {
            b.iter(|| {
                let mut w: Windowed<Bundle> = Windowed::new(width, lateness, retention);
                for &(id, t, amount, user) in &orders {
                    black_box(w.insert(EventId::from(id), t, (amount, user, amount)).ok());
                }
                (w.duplicates(), w.window_count())
            })
        },
    );
    g.bench_function("Windowed<Stats> 1 min windows (same events)", |b| {
        b.iter(|| {
            let mut w: Windowed<Stats> = Windowed::new(width, lateness, retention);
            for &(id, t, amount, _) in &orders {
                black_box(w.insert(EventId::from(id), t, amount).ok());
            }
            (w.duplicates(), w.window_count())
        })
    });
    g.finish();
}

criterion_group!(benches, id_dedup, fold, fold_bundle);
criterion_main!(benches);
