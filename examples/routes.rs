//! Per-route metrics as users write them: a named struct of aggregates (`#[derive(Aggregate)]`),
//! grouped by route (`Keyed`), folded from at-least-once deliveries into SQLite — and checked
//! against the exact truth.
//!
//! ```text
//! cargo run --release -p shardfold-examples --features sqlite,derive,testkit --example routes
//! ```
//!
//! 100 000 requests over 50 routes (popularity skewed, each route its own latency profile, 3 %
//! server errors) arrive in batches of 1 000, shuffled, with 15 % of requests delivered twice
//! and 5 whole batches retried — the at-least-once delivery of SQS or a retried Lambda. Every
//! delivery is folded twice into one SQLite file:
//!
//! * through `Series<Keyed<String, Route>, (String, Request)>` — the bucketed layout (one
//!   record appended per batch and minute, compacted later), one-minute windows;
//! * through `Metric<Deduped<Keyed<String, Route>>>` — one state per write shard, built with
//!   `Metric::builder`.
//!
//! Both must report, per route, exactly the requests and server errors sent (each counted
//! once), a p99 latency within the `LogHistogram`'s 1 % of the exact p99, and every redelivery
//! as a duplicate. Exits 1 otherwise.

use std::collections::BTreeMap;
use std::error::Error as StdError;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use shardfold::store::{
    EventOutcome, KvStore, ManualClock, Metric, Series, SeriesConfig, SqliteStore,
};
use shardfold::testkit::SplitMix64;
use shardfold::{Aggregate, Count, Deduped, Event, Keyed, LogHistogram, Outcome};

type BoxError = Box<dyn StdError + Send + Sync>;

/// One HTTP request, as the handler sees it.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Request {
    latency_ms: f64,
    status: u16,
}

/// What we keep per route: requests, server errors, latency quantiles.
#[derive(Aggregate, Debug, Clone, Default)]
#[aggregate(event = Request)]
struct Route {
    #[aggregate(insert = |_: &Request| ())]
    requests: Count,
    #[aggregate(insert_some = |r: &Request| (r.status >= 500).then_some(()))]
    errors: Count,
    #[aggregate(insert = |r: &Request| r.latency_ms)]
    latency: LogHistogram,
}

type ByRoute = Keyed<String, Route>;
type Delivery = Event<(String, Request)>;

const ROUTES: usize = 50;
const REQUESTS: usize = 100_000;
const BATCH: usize = 1_000;
/// 2027-01-15T08:00:00Z
const T0: u64 = 1_800_000_000_000; // a whole minute
/// Requests spread over ten minutes of event time.
const SPAN_MS: u64 = 600_000;

/// The exact truth of one route.
#[derive(Default)]
struct Truth {
    requests: u64,
    errors: u64,
    latencies: Vec<f64>,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<ExitCode, BoxError> {
    let (requests, truth) = generate();
    let (batches, redelivered) = deliveries(&requests);
    println!(
        "{REQUESTS} requests over {ROUTES} routes: {} deliveries in {} batches ({redelivered} redeliveries)",
        batches.iter().map(Vec::len).sum::<usize>(),
        batches.len()
    );
    let dir = std::env::temp_dir().join(format!("shardfold-routes-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let store: Arc<dyn KvStore> = Arc::new(SqliteStore::open(dir.join("routes.sqlite")).await?);
    let series = fold_series(store.clone(), &batches).await?;
    let metric = fold_metric(store, &batches).await?;
    std::fs::remove_dir_all(&dir)?;
    let mut ok = check("Series", &series.0, series.1, redelivered, &truth);
    ok &= check("Metric", &metric.0, metric.1, redelivered, &truth);
    print_top(&series.0);
    Ok(if ok {
        println!("per-route counts, errors and p99 match the exact truth");
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// The requests (route, id, time, request) and the exact per-route truth.
fn generate() -> (Vec<Delivery>, BTreeMap<String, Truth>) {
    let mut rng = SplitMix64::new(2026);
    let mut truth: BTreeMap<String, Truth> = BTreeMap::new();
    let requests = (0..REQUESTS)
        .map(|i| {
            // route r with weight ~ 1/(r+1): a few busy routes, a long tail
            let r = ((ROUTES as f64).powf(rng.unit()) as usize).min(ROUTES - 1);
            let route = format!("/api/v1/route{r:02}");
            // log-normal-ish latency around a per-route median of 5–60 ms
            let median = 5.0 * (1 + r % 12) as f64;
            let z = (0..4).map(|_| rng.unit()).sum::<f64>() - 2.0;
            let latency_ms = (median * (1.2 * z).exp() * 1000.0).round() / 1000.0;
            let status = if rng.below(100) < 3 { 503 } else { 200 };
            let t = truth.entry(route.clone()).or_default();
            t.requests += 1;
            t.errors += u64::from(status >= 500);
            t.latencies.push(latency_ms);
            let time = T0 + (i as u64 * SPAN_MS) / REQUESTS as u64;
            let request = Request { latency_ms, status };
            Event::new(format!("req-{i:06}").as_str(), time, (route, request))
        })
        .collect();
    (requests, truth)
}

/// Shuffled batches of deliveries: every request once, 15 % of them twice, and 5 batches
/// retried whole. Returns the batches and the number of redeliveries.
fn deliveries(requests: &[Delivery]) -> (Vec<Vec<Delivery>>, usize) {
    let mut rng = SplitMix64::new(7);
    let mut all: Vec<Delivery> = requests.to_vec();
    all.extend(requests.iter().filter(|_| rng.below(100) < 15).cloned());
    let mut redelivered = all.len() - requests.len();
    rng.shuffle(&mut all);
    let mut batches: Vec<Vec<Delivery>> = all.chunks(BATCH).map(<[Delivery]>::to_vec).collect();
    for _ in 0..5 {
        let again = batches[rng.below(batches.len())].clone();
        redelivered += again.len();
        batches.push(again);
    }
    (batches, redelivered)
}

/// Folds every batch into a `Series`; returns the whole range's per-route state and the
/// duplicates it counted.
async fn fold_series(
    store: Arc<dyn KvStore>,
    batches: &[Vec<Delivery>],
) -> Result<(ByRoute, u64), BoxError> {
    let clock = ManualClock::new(T0 + SPAN_MS + 60_000);
    let config = SeriesConfig::new(ByRoute::default())
        .window(Duration::from_secs(60))
        .shards(8)
        .clock(Arc::new(clock));
    let series: Series<ByRoute, (String, Request)> =
        Series::open(store, "routes-series", config).await?;
    let t = Instant::now();
    for batch in batches {
        let report = series.fold(batch).await?;
        if !report.is_complete() {
            return Err(format!("a Series fold failed: {:?}", report.failed().next()).into());
        }
    }
    println!(
        "Series: {} batches folded in {:.2?}",
        batches.len(),
        t.elapsed()
    );
    let view = series.query_range(T0, T0 + SPAN_MS).await?;
    Ok((view.total()?, view.tally().duplicates))
}

/// Folds every batch into a `Metric` of deduplicated per-route state.
async fn fold_metric(
    store: Arc<dyn KvStore>,
    batches: &[Vec<Delivery>],
) -> Result<(ByRoute, u64), BoxError> {
    let template = Deduped::try_new(3_600_000, 10_000, ByRoute::default())?;
    let metric = Metric::builder(store, "routes-metric")
        .shards(8)
        .template(template)
        .open()
        .await?;
    let t = Instant::now();
    let mut duplicates = 0;
    for batch in batches {
        let report = metric.fold(batch).await?;
        if !report.is_complete() {
            return Err(format!("a Metric fold failed: {:?}", report.failed().next()).into());
        }
        duplicates += report.count_outcome(Outcome::Duplicate);
        debug_assert_eq!(report.count(&EventOutcome::Done(Outcome::Late)), 0);
    }
    println!(
        "Metric: {} batches folded in {:.2?}",
        batches.len(),
        t.elapsed()
    );
    let state = metric.query().await?;
    if state.duplicates() != duplicates as u64 {
        return Err("the stored duplicate count differs from the fold reports".into());
    }
    Ok((state.aggregate().clone(), state.duplicates()))
}

/// Compares one layout's answer with the truth; prints every mismatch.
fn check(
    layout: &str,
    got: &ByRoute,
    duplicates: u64,
    redelivered: usize,
    truth: &BTreeMap<String, Truth>,
) -> bool {
    let mut ok = got.len() == truth.len() && got.other().is_none();
    if duplicates != redelivered as u64 {
        println!("{layout}: {duplicates} duplicates counted, {redelivered} redelivered");
        ok = false;
    }
    for (route, t) in truth {
        let Some(r) = got.get(route.as_str()) else {
            println!("{layout}: {route} missing");
            ok = false;
            continue;
        };
        let exact_p99 = exact_quantile(&t.latencies, 0.99);
        let p99 = r.latency.quantile(0.99).ok().flatten().unwrap_or(f64::NAN);
        let within = (p99 - exact_p99).abs() <= 0.01 * exact_p99.abs();
        if r.requests.get() != t.requests || r.errors.get() != t.errors || !within {
            println!(
                "{layout}: {route}: requests {} (exact {}), errors {} (exact {}), p99 {p99} (exact {exact_p99})",
                r.requests.get(),
                t.requests,
                r.errors.get(),
                t.errors
            );
            ok = false;
        }
    }
    ok
}

/// The element of rank ⌊q·n⌋ of the sorted values: what `LogHistogram::quantile` approximates.
fn exact_quantile(values: &[f64], q: f64) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = ((q * sorted.len() as f64) as usize).min(sorted.len() - 1);
    sorted[rank]
}

fn print_top(routes: &ByRoute) {
    println!("busiest routes:          requests  errors   p99 ms");
    for (route, r) in routes.top_by(5, |r| r.requests.get()) {
        let p99 = r.latency.quantile(0.99).ok().flatten().unwrap_or(f64::NAN);
        println!(
            "  {route:<22} {:>8} {:>7} {p99:>8.1}",
            r.requests.get(),
            r.errors.get()
        );
    }
    let slowest = routes.top_by(1, |r| r.latency.quantile(0.99).ok().flatten());
    if let Some((route, _)) = slowest.first() {
        println!("slowest p99: {route}");
    }
}
