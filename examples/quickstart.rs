//! Quickstart: eight stateless "function instances" fold at-least-once batches of checkout
//! events into one shared, windowed metric in the embedded SQLite store — then the answer is
//! checked against the exact truth.
//!
//! `cargo run --release --features sqlite --example quickstart`
//!
//! Each instance is what a Lambda handler would be: it holds nothing between batches, opens the
//! series, folds its batch with `Series::fold` (an append to the batch's minute buckets), and
//! reports failures per event. The event source redelivers 15 % of batches (as SQS does after a
//! visibility timeout) and sends some events to two instances; compactions fold every event
//! exactly once, so counts and sums are exact.

use std::collections::{BTreeMap, BTreeSet};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use shardfold::store::{Clock, Series, SeriesConfig, SeriesView, SystemClock, connect};
use shardfold::testkit::SplitMix64;
use shardfold::{Distinct, Event, Quantiles, Stats, Zip};

/// Per minute: amount stats, distinct users, amount quantiles.
type Checkout = Zip<(Stats, Distinct, Quantiles)>;
type Value = (f64, u64, f64);

const MINUTE: u64 = 60_000;

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
    let path = std::env::temp_dir().join("shardfold-quickstart.db");
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    let url = format!("sqlite://{}", path.display());
    // the last 15 minutes: events older than the dedup horizon (6 h) would be refused as late
    let now = SystemClock.now_ms();
    let start = now - now % MINUTE - 15 * MINUTE;
    let events = checkout_events(20_000, start);
    let batches = deliveries(&events);
    println!(
        "{} distinct events, {} deliveries in {} batches (redeliveries included), 8 instances → {url}",
        events.len(),
        batches.iter().map(Vec::len).sum::<usize>(),
        batches.len()
    );

    // eight concurrent instances, each taking every eighth batch
    let batches = Arc::new(batches);
    let instances: Vec<_> = (0..8)
        .map(|i| {
            let (url, batches) = (url.clone(), Arc::clone(&batches));
            tokio::spawn(async move { instance(&url, &batches, i).await })
        })
        .collect();
    for task in instances {
        task.await
            .map_err(|e| shardfold::Error::InvalidParameter {
                name: "task",
                reason: e.to_string(),
            })??;
    }

    // a query from yet another stateless process: the buckets of the range, merged
    let series = open(&url).await?;
    let view = series.query_range(start, start + 15 * MINUTE).await?;
    report(&view, &events, start)
}

/// Minute windows, 8 shards per minute bucket; the other parameters are the defaults
/// (6 h dedup horizon, 7 days of retention). Recorded when the series is created.
async fn open(url: &str) -> shardfold::Result<Series<Checkout, Value>> {
    let config = SeriesConfig::new(Checkout::default())
        .window(Duration::from_secs(60))
        .shards(8);
    Series::open(connect(url).await?, "checkout", config).await
}

/// One stateless instance: for each of its batches, open, fold, report per-event failures.
async fn instance(url: &str, batches: &[Vec<Event<Value>>], me: usize) -> shardfold::Result<()> {
    for batch in batches.iter().skip(me).step_by(8) {
        let series = open(url).await?;
        let report = series.fold(batch).await?;
        if let Some(i) = report.failed().next() {
            return Err(shardfold::Error::InvalidParameter {
                name: "batch",
                reason: format!("event {i} failed: {:?}", report.outcomes[i]),
            });
        }
    }
    Ok(())
}

/// Checkout events over 10 minutes: log-normal amounts, 2,000 users.
fn checkout_events(n: u64, start: u64) -> Vec<Event<Value>> {
    let mut rng = SplitMix64::new(11);
    (0..n)
        .map(|i| {
            let (u1, u2) = (rng.unit().max(1e-12), rng.unit());
            let normal = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
            let amount = ((3.0 + 0.8 * normal).exp() * 100.0).round() / 100.0;
            let user = rng.next_u64() % 2_000;
            let time = start + i * 10 * MINUTE / n + rng.below(2_000) as u64;
            Event::new(format!("order-{i}").as_str(), time, (amount, user, amount))
        })
        .collect()
}

/// At-least-once delivery: batches of 100, 15 % of them delivered twice, 2 % of events also
/// slipped into a neighbouring batch.
fn deliveries(events: &[Event<Value>]) -> Vec<Vec<Event<Value>>> {
    let mut rng = SplitMix64::new(12);
    let mut batches: Vec<Vec<Event<Value>>> = events.chunks(100).map(<[_]>::to_vec).collect();
    let extra: Vec<Vec<Event<Value>>> = batches
        .iter()
        .filter(|_| rng.unit() < 0.15)
        .cloned()
        .collect();
    for i in 1..batches.len() {
        if rng.unit() < 0.5 {
            let stray = batches[i - 1][rng.below(100)].clone();
            batches[i].push(stray);
        }
    }
    batches.extend(extra);
    batches
}

fn report(
    view: &SeriesView<Checkout>,
    events: &[Event<Value>],
    start: u64,
) -> shardfold::Result<bool> {
    let mut truth: BTreeMap<u64, (Vec<f64>, BTreeSet<u64>)> = BTreeMap::new();
    for e in events {
        let w = truth.entry(e.time_ms - e.time_ms % MINUTE).or_default();
        w.0.push(e.value.0);
        w.1.insert(e.value.1);
    }
    println!(
        "\n minute | count (exact) | sum (exact)        | users est/exact | p99 estimate (its true rank)"
    );
    let mut ok = true;
    for (w, Zip((stats, users, amounts))) in view.windows() {
        let Some((values, ids)) = truth.get_mut(&w) else {
            println!("unexpected window {w}");
            return Ok(false);
        };
        values.sort_by(f64::total_cmp);
        let exact_sum: f64 = exact_sum(values);
        let p99 = amounts.quantile(0.99)?.unwrap_or(f64::NAN);
        // t-digest bounds the *rank* error: where the estimate really falls among the values
        let true_rank = values.partition_point(|&v| v <= p99) as f64 / values.len() as f64;
        let exact = stats.count() == values.len() as u64 && stats.sum() == exact_sum;
        ok &= exact;
        println!(
            " {:>6} | {:>6} {:>6} | {:>12.2} {:>5} | {:>6.0} / {:<6} | {:>7.2} (q{:.4})",
            (w - start) / MINUTE,
            stats.count(),
            if stats.count() == values.len() as u64 {
                "✓"
            } else {
                "✗"
            },
            stats.sum(),
            if stats.sum() == exact_sum {
                "✓"
            } else {
                "✗"
            },
            users.estimate(),
            ids.len(),
            p99,
            true_rank,
        );
    }
    println!(
        "\nduplicates refused: {}, late: {}; windows: {} (expected {}); records not yet compacted: {}",
        view.tally().duplicates,
        view.tally().late,
        view.window_count(),
        truth.len(),
        view.pending_records()
    );
    ok &= view.window_count() == truth.len() && view.tally().late == 0;
    println!(
        "{}",
        if ok {
            "exact: every count and sum equals the truth, with every redelivery refused"
        } else {
            "MISMATCH"
        }
    );
    Ok(ok)
}

/// The correctly rounded exact sum, computed independently of shardfold by exact integer
/// arithmetic on cents (every amount here has two decimals).
fn exact_sum(values: &[f64]) -> f64 {
    let cents: i128 = values.iter().map(|v| (v * 100.0).round() as i128).sum();
    cents as f64 / 100.0
}
