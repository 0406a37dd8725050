//! What a fold costs with many group-by keys (issue 9, item 2): a `Series` of
//! `Keyed<String, Stats>` fed batches whose events spread over 10 keys, then over 10 000.
//!
//! ```text
//! cargo run --release -p shardfold-examples --features sqlite,testkit --example keyed_cost -- [--minutes 20] [--keys 10,10000]
//! ```
//!
//! Workload: a `ManualClock` replays event time. Every minute 4 000 events (unique ID, a
//! route key drawn uniformly from K keys, a latency `f64`) arrive in 4 batches of 1 000, the
//! clock set to the minute's end. One-minute windows, K = 4 write shards, SQLite on a
//! temporary file, wrapped in a `CountingStore`. Two passes per key count: appends only
//! (`compact_every(0)`: what a fold itself does), then the default compaction rate (the folds
//! *and* the compactions and sweeps they trigger). Printed: wall microseconds, bytes moved
//! (read + written) and round trips per event, and the largest value written (a bucket's base
//! holds one `Stats` per key of its minute). The answer is checked at
//! the end: every key's count over the whole range equals the number of events sent for it
//! (exit 1 otherwise).

use std::collections::BTreeMap;
use std::error::Error as StdError;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use shardfold::store::conformance::{CountingStore, unique_prefix};
use shardfold::store::{KvStore, ManualClock, Series, SeriesConfig, SqliteStore};
use shardfold::testkit::SplitMix64;
use shardfold::{Event, Keyed, Stats};

type Agg = Keyed<String, Stats>;
type Val = (String, f64);
type BoxError = Box<dyn StdError + Send + Sync>;

const MINUTE: u64 = 60_000;
/// 2027-01-15T08:00:00Z
const T0: u64 = 1_800_000_000_000 - 1_800_000_000_000 % MINUTE;
const EVENTS_PER_MINUTE: usize = 4_000;
const BATCH: usize = 1_000;

/// One run's figures.
struct Run {
    keys: usize,
    events: u64,
    micros: f64,
    bytes: u64,
    compaction: bool,
    round_trips: u64,
    largest: u64,
    exact: bool,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<ExitCode, BoxError> {
    let mut minutes = 20u64;
    let mut key_counts = vec![10usize, 10_000];
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--minutes" => minutes = value.parse()?,
            "--keys" => key_counts = value.split(',').map(str::parse).collect::<Result<_, _>>()?,
            other => return Err(format!("unknown flag {other}").into()),
        }
    }
    let mut runs = Vec::new();
    for compaction in [false, true] {
        for &k in &key_counts {
            runs.push(run(k, minutes, compaction).await?);
        }
    }
    println!(
        "| folds | active keys | events | µs / event | bytes moved / event | round trips / 1 000 events | largest value written |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for r in &runs {
        let per = |x: u64| x as f64 / r.events as f64;
        println!(
            "| {} | {} | {} | {:.2} | {:.0} | {:.1} | {} |",
            if r.compaction {
                "append + compaction"
            } else {
                "append only"
            },
            r.keys,
            r.events,
            r.micros / r.events as f64,
            per(r.bytes),
            per(r.round_trips) * 1000.0,
            r.largest
        );
    }
    for compaction in [false, true] {
        let mine: Vec<&Run> = runs.iter().filter(|r| r.compaction == compaction).collect();
        if let (Some(a), Some(b)) = (mine.first(), mine.last()) {
            println!(
                "ratio {} keys / {} keys ({}): time per event {:.2}×, bytes per event {:.2}×",
                b.keys,
                a.keys,
                if compaction {
                    "append + compaction"
                } else {
                    "append only"
                },
                (b.micros / b.events as f64) / (a.micros / a.events as f64),
                (b.bytes as f64 / b.events as f64) / (a.bytes as f64 / a.events as f64)
            );
        }
    }
    Ok(if runs.iter().all(|r| r.exact) {
        ExitCode::SUCCESS
    } else {
        eprintln!("a per-key count differs from the events sent");
        ExitCode::FAILURE
    })
}

async fn run(keys: usize, minutes: u64, compaction: bool) -> Result<Run, BoxError> {
    let dir = std::env::temp_dir().join(unique_prefix("keyed-cost"));
    std::fs::create_dir_all(&dir)?;
    let sqlite: Arc<dyn KvStore> = Arc::new(SqliteStore::open(dir.join("db.sqlite")).await?);
    let counting = Arc::new(CountingStore::new(sqlite));
    let clock = ManualClock::new(T0);
    let template = Agg::with_max_keys(16_384)?;
    let config = SeriesConfig::new(template)
        .window(Duration::from_secs(60))
        .shards(4)
        .compact_every(if compaction { 256 } else { 0 })
        .clock(Arc::new(clock.clone()));
    let series: Series<Agg, Val> = Series::open(counting.clone(), "routes", config).await?;
    let routes: Vec<String> = (0..keys).map(|i| format!("/api/v1/route/{i}")).collect();
    let mut rng = SplitMix64::new(keys as u64);
    let mut truth: BTreeMap<&str, u64> = BTreeMap::new();
    let (mut elapsed, mut events) = (Duration::ZERO, 0u64);
    counting.reset();
    for m in 0..minutes {
        let start = T0 + m * MINUTE;
        clock.set(start + MINUTE);
        for b in 0..EVENTS_PER_MINUTE / BATCH {
            let batch: Vec<Event<Val>> = (0..BATCH)
                .map(|i| {
                    let route = &routes[rng.below(keys)];
                    *truth.entry(route.as_str()).or_default() += 1;
                    let id = format!("{m}-{b}-{i}");
                    let t = start + rng.below(MINUTE as usize) as u64;
                    Event::new(id.as_str(), t, (route.clone(), rng.unit() * 100.0))
                })
                .collect();
            let t = Instant::now();
            let report = series.fold(&batch).await?;
            elapsed += t.elapsed();
            if !report.is_complete() {
                return Err("a fold failed".into());
            }
            events += batch.len() as u64;
        }
    }
    let c = counting.counts();
    let view = series.query_range(T0, T0 + minutes * MINUTE).await?;
    let total = view.total()?;
    let exact = truth
        .iter()
        .all(|(k, n)| total.get(*k).map(Stats::count) == Some(*n))
        && total.other().is_none();
    std::fs::remove_dir_all(&dir)?;
    Ok(Run {
        keys,
        events,
        micros: elapsed.as_secs_f64() * 1e6,
        bytes: c.bytes_read + c.bytes_written,
        compaction,
        round_trips: c.reads + c.writes + c.lists + c.deletes,
        largest: c.largest_write,
        exact,
    })
}
