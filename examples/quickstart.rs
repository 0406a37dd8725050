//! Quickstart: sixteen stateless "function instances" fold about a million checkout events —
//! delivered at least once, 5 % of them twice, in shuffled order — into one shared, windowed
//! metric in the embedded SQLite store. Then the answer is printed next to the exact truth.
//!
//! `cargo run --release -p shardfold-examples --example quickstart`
//!
//! Each instance is what a Lambda handler would be: it holds nothing between batches, opens the
//! series, folds its batch with `Series::fold` (an append to the batch's minute buckets), and
//! reports failures per event (a real handler returns them to the queue for redelivery). A
//! redelivered event may reach another instance, in another batch, minutes later; compactions
//! fold every event exactly once, so counts and sums are exact.
//!
//! This file uses only shardfold's published `sqlite` feature, tokio and std: copy it into a
//! new crate (`shardfold = { version = "0.1", features = ["sqlite"] }`, `tokio` with `macros`
//! and `rt-multi-thread`) and it runs as is.

use std::collections::{BTreeMap, HashSet};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use shardfold::store::{Clock, FoldReport, Series, SeriesConfig, SeriesView, SystemClock, connect};
use shardfold::{Distinct, Event, Quantiles, Stats, Zip};

/// Per minute: amount stats (count, exact sum, min, max, mean), distinct users, amount
/// quantiles (t-digest).
type Checkout = Zip<(Stats, Distinct, Quantiles)>;
/// What one event feeds each part: (amount, user, amount).
type Value = (f64, u64, f64);

const MINUTE: u64 = 60_000;
const EVENTS: u64 = 1_000_000;
const INSTANCES: usize = 16;
const BATCH: usize = 1_000;
const REDELIVERED: f64 = 0.05;
const USERS: u64 = 200_000;

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> shardfold::Result<bool> {
    let path = std::env::temp_dir().join(format!("shardfold-quickstart-{}.db", std::process::id()));
    let url = format!("sqlite://{}", path.display());
    // the last 15 minutes: events older than the dedup horizon (6 h) would be refused as late
    let now = SystemClock.now_ms();
    let start = now - now % MINUTE - 15 * MINUTE;
    let events = checkout_events(start);
    let batches = deliveries(&events);
    println!(
        "{} distinct events, {} deliveries (5 % redelivered, shuffled) in {} batches, \
         {INSTANCES} instances → {url}",
        events.len(),
        batches.iter().map(Vec::len).sum::<usize>(),
        batches.len()
    );

    // sixteen concurrent instances, each taking every sixteenth batch
    let t = Instant::now();
    let batches = Arc::new(batches);
    let instances: Vec<_> = (0..INSTANCES)
        .map(|i| {
            let (url, batches) = (url.clone(), Arc::clone(&batches));
            tokio::spawn(async move { instance(&url, &batches, i).await })
        })
        .collect();
    let mut failed = 0;
    for task in instances {
        failed += task
            .await
            .map_err(|e| shardfold::Error::InvalidParameter {
                name: "task",
                reason: e.to_string(),
            })??;
    }
    let folded_in = t.elapsed();

    // a query from yet another stateless process: the buckets of the range, merged
    let t = Instant::now();
    let series = open(&url).await?;
    let view = series.query_range(start, start + 15 * MINUTE).await?;
    println!(
        "folded in {:.1} s ({:.0} deliveries/s), queried in {:.2} s; {failed} events failed \
         (redelivered by their instance)",
        folded_in.as_secs_f64(),
        batches.iter().map(Vec::len).sum::<usize>() as f64 / folded_in.as_secs_f64(),
        t.elapsed().as_secs_f64(),
    );
    let redelivered = batches.iter().map(Vec::len).sum::<usize>() - events.len();
    let ok = report(&view, &events, start, redelivered as u64)?;
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    Ok(ok)
}

/// Minute windows, 8 shards per minute bucket; the other parameters are the defaults
/// (6 h dedup horizon, 7 days of retention). Recorded when the series is created; every later
/// open checks them.
async fn open(url: &str) -> shardfold::Result<Series<Checkout, Value>> {
    let config = SeriesConfig::new(Checkout::default())
        .window(Duration::from_secs(60))
        .shards(8);
    Series::open(connect(url).await?, "checkout", config).await
}

/// One stateless instance: for each of its batches, open, fold, and redeliver what failed (a
/// Lambda returns those as `batchItemFailures`; the queue sends them again). Returns how many
/// events needed a redelivery.
async fn instance(url: &str, batches: &[Vec<Event<Value>>], me: usize) -> shardfold::Result<usize> {
    let mut failed = 0;
    for batch in batches.iter().skip(me).step_by(INSTANCES) {
        let mut pending = batch.clone();
        for attempt in 0.. {
            let series = open(url).await?;
            let report: FoldReport = series.fold(&pending).await?;
            let again: Vec<usize> = report.failed().collect();
            if again.is_empty() {
                break;
            }
            if attempt == 10 {
                return Err(shardfold::Error::InvalidParameter {
                    name: "batch",
                    reason: format!(
                        "{} events still failing: {:?}",
                        again.len(),
                        report.outcomes[again[0]]
                    ),
                });
            }
            failed += again.len();
            pending = again.into_iter().map(|i| pending[i].clone()).collect();
        }
    }
    Ok(failed)
}

/// Checkout events over 10 minutes: log-normal amounts in 1/64ths of a unit (exact binary
/// fractions, so the truth below is computed exactly with integers), Zipf-ish users.
fn checkout_events(start: u64) -> Vec<Event<Value>> {
    let mut rng = Rng(11);
    (0..EVENTS)
        .map(|i| {
            let (u1, u2) = (rng.unit().max(1e-12), rng.unit());
            let normal = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
            let amount = ((3.0 + 0.8 * normal).exp() * 64.0).round() / 64.0;
            let user = (rng.unit() * rng.unit() * USERS as f64) as u64;
            let time = start + i * 10 * MINUTE / EVENTS + rng.below(2_000);
            Event::new(format!("order-{i}").as_str(), time, (amount, user, amount))
        })
        .collect()
}

/// At-least-once delivery: 5 % of the events are delivered a second time; all deliveries are
/// shuffled (so a redelivery lands in another batch, usually another instance, at another
/// time) and cut into batches of 1 000.
fn deliveries(events: &[Event<Value>]) -> Vec<Vec<Event<Value>>> {
    let mut rng = Rng(12);
    let mut all: Vec<&Event<Value>> = events.iter().collect();
    all.extend(events.iter().filter(|_| rng.unit() < REDELIVERED));
    for i in (1..all.len()).rev() {
        all.swap(i, rng.below(i as u64 + 1) as usize);
    }
    all.chunks(BATCH)
        .map(|c| c.iter().map(|&e| e.clone()).collect())
        .collect()
}

/// Per minute: the stored answer next to the exact truth.
fn report(
    view: &SeriesView<Checkout>,
    events: &[Event<Value>],
    start: u64,
    redelivered: u64,
) -> shardfold::Result<bool> {
    #[derive(Default)]
    struct Truth {
        sixty_fourths: i128,
        amounts: Vec<f64>,
        users: HashSet<u64>,
    }
    let mut truth: BTreeMap<u64, Truth> = BTreeMap::new();
    for e in events {
        let w = truth.entry(e.time_ms - e.time_ms % MINUTE).or_default();
        w.sixty_fourths += (e.value.0 * 64.0) as i128;
        w.amounts.push(e.value.0);
        w.users.insert(e.value.1);
    }
    println!(
        "\n minute |   count (exact)    |          sum (exact)           |   min / max   | \
         distinct users (exact) |  p99 (its true rank)"
    );
    let mut ok = view.window_count() == truth.len();
    for (w, Zip((stats, users, amounts))) in view.windows() {
        let Some(t) = truth.get_mut(&w) else {
            println!("unexpected window {w}");
            return Ok(false);
        };
        t.amounts.sort_by(f64::total_cmp);
        let n = t.amounts.len() as u64;
        // exact: every amount is a multiple of 1/64 and the total fits in 53 bits
        let exact_sum = t.sixty_fourths as f64 / 64.0;
        let (min, max) = (t.amounts[0], t.amounts[t.amounts.len() - 1]);
        let p99 = amounts.quantile(0.99)?.unwrap_or(f64::NAN);
        // t-digest bounds the *rank* error: where the estimate really falls among the values
        // (amounts repeat, so it covers a range of ranks)
        let below = t.amounts.partition_point(|&v| v < p99) as f64 / n as f64;
        let true_rank = t.amounts.partition_point(|&v| v <= p99) as f64 / n as f64;
        let bound = amounts.rank_error_bound(0.99);
        let distinct_ok = (users.estimate() - t.users.len() as f64).abs()
            <= 3.0 * 1.04 / 128.0 * t.users.len() as f64; // 3 σ at p = 14
        let exact = stats.count() == n
            && stats.sum() == exact_sum
            && stats.min() == Some(min)
            && stats.max() == Some(max);
        ok &= exact && distinct_ok && below - bound <= 0.99 && 0.99 <= true_rank + bound;
        println!(
            " {:>6} | {:>8} {:>8} | {:>14.4} {:>14.4} | {:>5.2} {:>7.2} | {:>10.0} {:>10} | {:>7.2} (q{:.4})",
            (w - start) / MINUTE,
            stats.count(),
            n,
            stats.sum(),
            exact_sum,
            stats.min().unwrap_or(f64::NAN),
            stats.max().unwrap_or(f64::NAN),
            users.estimate(),
            t.users.len(),
            p99,
            true_rank,
        );
    }
    println!(
        "\nduplicates refused: {} (deliveries − events = {}), late: {}; windows: {} (expected {}); \
         records not yet compacted: {}",
        view.tally().duplicates,
        redelivered,
        view.tally().late,
        view.window_count(),
        truth.len(),
        view.pending_records()
    );
    ok &= view.tally().late == 0 && view.tally().duplicates == redelivered;
    println!(
        "{}",
        if ok {
            "MATCH: every count, sum, min and max equals the exact truth (every redelivery \
             refused); distinct users within 3 σ; p99 within the t-digest's rank bound"
        } else {
            "MISMATCH"
        }
    );
    Ok(ok)
}

/// SplitMix64: a tiny deterministic generator, so every run folds the same events.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
}
