//! Fold throughput into each store: batches of 1000 events with 1 % duplicates, K = 1 and
//! K = 16, beside a per-event read-modify-write peer (what a handler without batch folding
//! does). Prints round trips per batch, counted by a wrapper store. Server backends are
//! benched when their feature is on and the server answers (URLs as in the tests).
//!
//! `cargo bench --bench store --features sqlite,redis,postgres,nats -- --warm-up-time 1 --measurement-time 2`

use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use shardfold::store::conformance::{CountingStore, IdSum, TestEvent, unique_prefix};
use shardfold::store::{KvStore, MemoryStore, Metric, WriteOutcome, connect};
use shardfold::{Count, Insert, codec};

const BATCH: u64 = 1000;
/// A fresh metric every this many batches, so the ID set (unbounded in the test state) stays
/// the size a dedup horizon would keep.
const ROTATE: u64 = 20;

static NEXT_ID: AtomicU64 = AtomicU64::new(0);

/// 990 new events and 10 redeliveries of events of the same batch.
fn batch() -> Vec<TestEvent> {
    let start = NEXT_ID.fetch_add(BATCH, Ordering::Relaxed);
    let fresh = BATCH - BATCH / 100;
    let mut events: Vec<TestEvent> = (start..start + fresh).map(TestEvent::new).collect();
    events.extend((start..start + BATCH / 100).map(TestEvent::new));
    events
}

fn stores(rt: &tokio::runtime::Runtime) -> Vec<(&'static str, Arc<dyn KvStore>)> {
    let mut out: Vec<(&'static str, Arc<dyn KvStore>)> =
        vec![("memory", Arc::new(MemoryStore::new()))];
    let file = std::env::temp_dir().join(format!("{}.db", unique_prefix("bench")));
    let urls = [
        ("sqlite", format!("sqlite://{}", file.display())),
        ("redis", "redis://127.0.0.1:6379".to_owned()),
        (
            "postgres",
            "postgres://postgres@127.0.0.1:5432/test".to_owned(),
        ),
        ("nats", "nats://127.0.0.1:4222/shardfold_bench".to_owned()),
    ];
    for (name, url) in urls {
        match rt.block_on(connect(&url)) {
            Ok(s) => out.push((name, s)),
            Err(e) => eprintln!("bench: skipping {name}: {e}"),
        }
    }
    out
}

async fn fold_batches(store: &Arc<dyn KvStore>, shards: u32, iters: u64) -> Duration {
    let mut total = Duration::ZERO;
    let mut metric = None;
    for i in 0..iters {
        if i % ROTATE == 0 {
            let name = unique_prefix("bench-fold");
            metric = Some(
                Metric::<IdSum>::open(Arc::clone(store), &name, shards)
                    .await
                    .unwrap(),
            );
        }
        let events = batch();
        let m = metric.as_ref().unwrap();
        let t = Instant::now();
        let report = m.fold(&events).await.unwrap();
        total += t.elapsed();
        assert!(report.is_complete());
        black_box(report);
    }
    total
}

/// The peer: one read and one conditional write per event (no batching, no dedup).
async fn per_event(store: &dyn KvStore, iters: u64) -> Duration {
    let key = unique_prefix("bench-peer").into_bytes();
    let t = Instant::now();
    for _ in 0..iters {
        for _ in 0..BATCH {
            let cur = store.read(&key).await.unwrap();
            let mut c = match &cur {
                Some((b, _)) => codec::decode::<Count>(b).unwrap(),
                None => Count::default(),
            };
            c.insert(()).unwrap();
            let bytes = codec::encode(&c);
            let out = match cur {
                None => store.create(&key, &bytes).await.unwrap(),
                Some((_, v)) => store.update(&key, &bytes, v).await.unwrap(),
            };
            assert!(matches!(out, WriteOutcome::Written(_)));
        }
    }
    t.elapsed()
}

fn round_trips(rt: &tokio::runtime::Runtime, name: &str, store: &Arc<dyn KvStore>) {
    for shards in [1, 16] {
        let counting = Arc::new(CountingStore::new(Arc::clone(store)));
        let dynamic: Arc<dyn KvStore> = counting.clone();
        let name_m = unique_prefix("bench-rt");
        let m = rt
            .block_on(Metric::<IdSum>::open(dynamic, &name_m, shards))
            .unwrap();
        let (r0, w0) = counting.calls();
        for _ in 0..10 {
            assert!(rt.block_on(m.fold(&batch())).unwrap().is_complete());
        }
        let (r, w) = counting.calls();
        println!(
            "round trips per batch, {name}, K={shards}: {:.1} reads + {:.1} writes",
            (r - r0) as f64 / 10.0,
            (w - w0) as f64 / 10.0
        );
    }
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    for (name, store) in stores(&rt) {
        round_trips(&rt, name, &store);
        let mut g = c.benchmark_group(format!("store_fold_{name}"));
        g.throughput(Throughput::Elements(BATCH));
        g.sample_size(10);
        for shards in [1u32, 16] {
            g.bench_function(format!("shardfold batch fold K={shards}"), |b| {
                b.iter_custom(|iters| rt.block_on(fold_batches(&store, shards, iters)))
            });
        }
        g.bench_function("peer: per-event read+CAS", |b| {
            b.iter_custom(|iters| rt.block_on(per_event(&*store, iters)))
        });
        g.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
