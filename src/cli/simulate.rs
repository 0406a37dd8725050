//! `shardfold simulate`: N concurrent stateless workers — tasks, or OS processes — fold a
//! generated event stream into a store with at-least-once redelivery, late events and
//! crashes; then the stored answer is compared with the exact truth, both are printed, and
//! the exit status says whether they are identical.
//!
//! # The run
//!
//! Everything is drawn from `--seed` (printed, so a run can be replayed): `--events` events
//! with IDs `0..M`, event times up to `--max-delay` behind the clock reading at the start,
//! values that are multiples of 1/1024 (so the exact sum is an integer computation), and items
//! for the distinct count. The events are cut into batches of `--batch`; with probability
//! `--dup-rate` a batch is delivered again later (whole or about half of it, reordered) and
//! with half of it one event of another batch rides along.
//!
//! The queue hands deliveries to `--workers` slots. A worker is stateless: each delivery opens
//! the series and folds its batch ([`Series::fold`](crate::store::Series::fold)); the
//! delivery is acknowledged once the fold returns, and the events it reports `Failed` are
//! delivered again. With probability `--crash-rate` a worker dies at a random moment of the
//! fold — a task's fold future is dropped, a worker process (`--processes`: this executable's
//! hidden `simulate-worker` subcommand, fed job numbers over stdin) is SIGKILLed and
//! replaced — and the delivery comes back after the visibility timeout, to any worker.
//!
//! Event times stay out of a band around the dedup horizon (`--horizon`, 6 h by default), so
//! that each event is either on time for the whole run or refused as late by every delivery:
//! with `--max-delay` beyond the horizon, late events are expected, and the check is that every
//! event was folded once or reported late.
//!
//! # The check
//!
//! When the queue has drained: maintenance and compaction of the run's range (every record
//! folded), a query, and the comparison with the truth over the on-time events, computed
//! here: count, exact sum, min and max of every window bit for bit, and the distinct sketch's
//! registers byte for byte against one sketch built here from the same items (merge of HLL
//! registers is a lattice, so the order and grouping of folds cannot change them). The stored
//! tally must count each on-time event folded once, and duplicates and late deliveries within
//! what the workers were sent and acknowledged.
//!
//! Every run writes a metric of its own (`shardfold-sim-<seed>-<start ms>`), deleted after a
//! run that matched unless `--keep`; nothing else in the store is touched. Exit status 0 when
//! everything matched, 2 when something differs, 1 on an error.

mod check;
mod coord;
mod plan;
mod queue;
mod work;

use std::io::{BufRead, Write};
use std::process::ExitCode;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::{CliError, CliResult};
use crate::store::{Clock, KvStore, Series, SystemClock, connect};
use coord::Shared;
use plan::{Agg, Scenario, Val};
use queue::Queue;
use work::{Job, Polls, deliver, polled};

/// Simulate stateless workers that crash and get redeliveries while they fold into a store,
/// then check the stored answer against the exact truth (exit status 0 only if identical).
#[derive(Debug, Clone, clap::Args)]
pub struct SimulateArgs {
    /// Store URL: sqlite:///path/file.db, redis://host:port, postgres://…, memory:// (tasks only).
    #[arg(long)]
    pub store: String,
    /// Concurrent workers.
    #[arg(long, default_value_t = 4)]
    pub workers: usize,
    /// Run the workers as OS processes (else as tasks of this process).
    #[arg(long)]
    pub processes: bool,
    /// Distinct events generated.
    #[arg(long, default_value_t = 10_000)]
    pub events: u64,
    /// Events per batch.
    #[arg(long, default_value_t = 100)]
    pub batch: u64,
    /// Probability that a batch is delivered again (whole or partly, reordered).
    #[arg(long, default_value_t = 0.2)]
    pub dup_rate: f64,
    /// Probability that a worker dies in the middle of a delivery.
    #[arg(long, default_value_t = 0.05)]
    pub crash_rate: f64,
    /// Largest lateness of an event time behind the clock (500ms, 30s, 10m, 6h, 2d).
    #[arg(long, default_value = "10m", value_parser = parse_duration)]
    pub max_delay: Duration,
    /// The series' dedup horizon: events older than this are refused as late.
    #[arg(long, default_value = "6h", value_parser = parse_duration)]
    pub horizon: Duration,
    /// Seed of every random draw (default: from the clock; printed).
    #[arg(long)]
    pub seed: Option<u64>,
    /// How long an unacknowledged delivery stays invisible before it is redelivered.
    #[arg(long, default_value = "100ms", value_parser = parse_duration)]
    pub visibility: Duration,
    /// Keep the run's metric in the store even when everything matched.
    #[arg(long)]
    pub keep: bool,
}

/// Arguments of the hidden `shardfold simulate-worker` (started by `simulate --processes`):
/// the scenario to rebuild; jobs arrive on stdin, answers leave on stdout.
#[derive(Debug, Clone, clap::Args)]
pub struct WorkerArgs {
    /// Store URL.
    #[arg(long)]
    pub store: String,
    /// The run's metric.
    #[arg(long)]
    pub metric: String,
    /// The run's seed.
    #[arg(long)]
    pub seed: u64,
    /// The clock reading event times are relative to.
    #[arg(long)]
    pub t0_ms: u64,
    /// Distinct events.
    #[arg(long)]
    pub events: u64,
    /// Events per batch.
    #[arg(long)]
    pub batch: u64,
    /// Redelivery probability.
    #[arg(long)]
    pub dup_rate: f64,
    /// Largest lateness (ms).
    #[arg(long)]
    pub max_delay_ms: u64,
    /// Dedup horizon (ms).
    #[arg(long)]
    pub horizon_ms: u64,
}

/// Parses a duration flag (`500ms`, `30s`, `10m`, `6h`, `2d`), as every other command does.
fn parse_duration(s: &str) -> Result<Duration, String> {
    super::duration::parse_duration_ms(s).map(Duration::from_millis)
}

/// The exit status of a worker process told to crash.
const CRASH_EXIT: i32 = 86;

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn usage(msg: impl Into<String>) -> CliError {
    CliError::Usage(msg.into())
}

impl SimulateArgs {
    fn validate(&self) -> Result<(), CliError> {
        if !(1..=256).contains(&self.workers) {
            return Err(usage("--workers must be 1..=256"));
        }
        if !(1..=10_000_000).contains(&self.events) {
            return Err(usage("--events must be 1..=10000000"));
        }
        if !(1..=100_000).contains(&self.batch) {
            return Err(usage("--batch must be 1..=100000"));
        }
        for (name, r) in [
            ("--dup-rate", self.dup_rate),
            ("--crash-rate", self.crash_rate),
        ] {
            if !(0.0..=1.0).contains(&r) {
                return Err(usage(format!("{name} must be within 0..=1")));
            }
        }
        if self.crash_rate >= 1.0 {
            return Err(usage("--crash-rate 1 would never finish"));
        }
        if self.processes && self.store.starts_with("memory:") {
            return Err(usage(
                "memory:// lives in one process: use --processes with sqlite, redis or postgres",
            ));
        }
        if self.horizon < Duration::from_secs(60) {
            return Err(usage("--horizon must be at least 1m (one window)"));
        }
        Ok(())
    }
}

/// Runs `shardfold simulate`: see the [module docs](self).
///
/// # Errors
///
/// [`CliError::Usage`] for bad arguments or a run that could not finish (a delivery never
/// acknowledged, a worker process that does not start); [`CliError::Shardfold`] when the store
/// cannot be reached or the check's query fails. A run that finishes but differs from the
/// truth is `Ok` with exit status 2.
pub async fn run(args: SimulateArgs) -> CliResult {
    args.validate()?;
    let t0_ms = SystemClock.now_ms();
    let seed = args
        .seed
        .unwrap_or(t0_ms.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 20);
    let scenario = Scenario {
        seed,
        t0_ms,
        events: args.events,
        batch: args.batch,
        dup_rate: args.dup_rate,
        max_delay_ms: millis(args.max_delay),
        horizon_ms: millis(args.horizon),
    };
    let metric = format!("shardfold-sim-{seed}-{t0_ms}");
    let plan = Arc::new(plan::plan(&scenario));
    let store = connect(&args.store).await?;
    // created (and its configuration checked) before any worker starts
    let series =
        Series::<Agg, Val>::open(Arc::clone(&store), &metric, work::config(&scenario)).await?;
    let late = plan.late.iter().filter(|l| **l).count();
    println!(
        "simulate: seed {seed}, {} events ({late} older than the horizon), {} batches + {} \
         copies, {} {} against {} (metric {metric})",
        plan.events.len(),
        plan.batches,
        plan.deliveries.len() - plan.batches,
        args.workers,
        if args.processes { "processes" } else { "tasks" },
        store.backend(),
    );
    let started = Instant::now();
    let shared = Arc::new(Shared {
        scenario: scenario.clone(),
        plan: Arc::clone(&plan),
        queue: Mutex::new(Queue::new(&plan, args.visibility)),
        store: Arc::clone(&store),
        url: args.store.clone(),
        metric: metric.clone(),
        crash_rate: args.crash_rate,
        fold_us: AtomicU64::new(0),
        polls: Polls::new(),
    });
    coord::drive(Arc::clone(&shared), args.workers, args.processes).await?;
    let ran = started.elapsed();
    let view = settle(&series, &scenario).await?;
    let ok = report(&shared, &view, ran, started.elapsed())?;
    finish(&store, &metric, ok, args.keep).await?;
    Ok(if ok {
        println!("OK: the stored answer equals the exact truth");
        ExitCode::SUCCESS
    } else {
        println!("MISMATCH: the stored answer differs from the exact truth (seed {seed})");
        ExitCode::from(2)
    })
}

/// Compares the view with the truth; prints the table and the run's summary; whether
/// everything matched.
fn report(
    shared: &Shared,
    view: &crate::store::SeriesView<Agg>,
    ran: Duration,
    total: Duration,
) -> Result<bool, CliError> {
    let queue = shared
        .queue
        .lock()
        .map_err(|_| usage("a worker slot panicked"))?;
    let verdict = check::compare(&shared.plan, view, &queue.counters, &queue.answered)?;
    println!();
    for line in &verdict.lines {
        println!("{line}");
    }
    let c = &queue.counters;
    println!(
        "\n{} deliveries ({} acknowledged), {} crashes of {} drawn ({} processes restarted), \
         {} folds failed whole, {} events failed, {} redeliveries; queue drained in {:.2} s, \
         checked in {:.2} s",
        c.sent,
        c.acked,
        c.crashes,
        c.planned_crashes,
        c.restarts,
        c.failures,
        c.failed_events,
        c.redeliveries,
        ran.as_secs_f64(),
        total.saturating_sub(ran).as_secs_f64(),
    );
    let margin = shared.scenario.margin_ms();
    if total > Duration::from_millis(margin) {
        println!(
            "note: the run outlasted the {margin} ms kept between event times and the horizon: \
             an on-time event may have turned late"
        );
    }
    Ok(verdict.ok)
}

/// Sweeps, compacts the run's range until no record is pending, and queries it.
async fn settle(
    series: &Series<Agg, Val>,
    s: &Scenario,
) -> Result<crate::store::SeriesView<Agg>, CliError> {
    let bucket = series.config().bucket_ms();
    let from = s
        .t0_ms
        .saturating_sub(s.max_delay_ms.min(s.horizon_ms))
        .saturating_sub(bucket);
    let to = SystemClock.now_ms().saturating_add(bucket);
    series.maintain().await?;
    let mut view = series.query_range(from, to).await?;
    for _ in 0..5 {
        if view.pending_records() == 0 {
            break;
        }
        series.compact_range(from, to).await?;
        view = series.query_range(from, to).await?;
    }
    Ok(view)
}

/// Deletes the run's metric after a run that matched (unless `keep`); says where it is kept
/// otherwise.
async fn finish(
    store: &Arc<dyn KvStore>,
    metric: &str,
    ok: bool,
    keep: bool,
) -> Result<(), CliError> {
    if !ok || keep {
        println!("the run's metric `{metric}` is kept in the store");
        return Ok(());
    }
    for key in store.list(&store.metric_key(metric, "")).await? {
        store.delete(&key).await?;
    }
    Ok(())
}

/// Runs the hidden `shardfold simulate-worker`: prints `ready`, then folds each job read from
/// stdin and prints its answer (the protocol of `simulate --processes`).
///
/// # Errors
///
/// [`CliError::Shardfold`] when the store cannot be reached; [`CliError::Io`] when stdin or
/// stdout fail; [`CliError::Usage`] for a line that is not a job.
pub async fn run_worker(args: WorkerArgs) -> CliResult {
    let scenario = Scenario {
        seed: args.seed,
        t0_ms: args.t0_ms,
        events: args.events,
        batch: args.batch,
        dup_rate: args.dup_rate,
        max_delay_ms: args.max_delay_ms,
        horizon_ms: args.horizon_ms,
    };
    let plan = plan::plan(&scenario);
    let store = connect(&args.store).await?;
    let polls = Polls::new();
    let mut out = std::io::stdout();
    writeln!(out, "ready")?;
    out.flush()?;
    // stdin is read by a thread of its own (a blocking read must not hold a runtime worker)
    let (tx, mut rx) = tokio::sync::mpsc::channel::<std::io::Result<String>>(16);
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            if tx.blocking_send(line).is_err() {
                break;
            }
        }
    });
    while let Some(line) = rx.recv().await {
        let line = line?;
        let Some(job) = Job::parse(&line) else {
            return Err(usage(format!("simulate-worker: not a job: {line}")));
        };
        let fold = deliver(&store, &args.metric, &scenario, &plan, &job);
        let limit = job.abort_at.map(|per_mille| polls.at(per_mille));
        let Some(answer) = polled(fold, limit, &polls).await else {
            // told to crash: the process ends at once, its fold unfinished, nothing answered
            std::process::exit(CRASH_EXIT);
        };
        writeln!(out, "{}", answer.to_line(job.id))?;
        out.flush()?;
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert!(parse_duration("30").is_err()); // a unit is required, as for ingest
        assert_eq!(parse_duration("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(parse_duration("6h"), Ok(Duration::from_secs(6 * 3600)));
        assert_eq!(parse_duration("2d"), Ok(Duration::from_secs(2 * 86_400)));
        assert!(parse_duration("3w").is_err());
        assert!(parse_duration("m").is_err());
        assert!(parse_duration("99999999999999999999d").is_err());
    }
}
