//! Cost growth as a metric ages (issue 8, item 6): what one fold costs, hour by hour, over 48
//! hours of event time — the bucketed `Series` beside the old one-value-per-shard `Metric`.
//!
//! ```text
//! . .ci/services.sh   # as root, if Redis is not running on 127.0.0.1:6379
//! cargo run --release -p shardfold-examples --features sqlite,redis,testkit --example aging -- \
//!     [--backend sqlite|redis|both|memory] [--hours 48] [--old-hours 12] \
//!     [--redis redis://127.0.0.1:6379/] [--compact-every N]
//! ```
//!
//! Workload: a `ManualClock` replays event time. Every minute 200 events (unique ID, a value
//! `f64`, a user `u64`) with times spread over that minute arrive in 4 batches of 50, the
//! clock set to the minute's end. Aggregate `Zip<(Stats, Distinct)>`, one-minute windows,
//! retention 7 days, K = 8 shards.
//!
//! * new: `Series<Zip<(Stats, Distinct)>, (f64, u64)>` with the default horizon (6 h), grace
//!   and compaction rate (`--compact-every` overrides it); its folds run the compactions and
//!   maintenance sweeps they trigger;
//! * old: `Metric<Windowed<Zip<(Stats, Distinct)>>>` (`Windowed::try_new(60 s, 5 min, 7 d)`),
//!   run for the first `--old-hours` only: every fold rewrites each shard's whole value.
//!
//! Each store is wrapped in a `CountingStore` (round trips, bytes read and written, the
//! largest value written). Printed per hour: bytes read + written per
//! fold, round trips per fold, wall milliseconds per fold (the `fold` calls only) and the
//! slowest fold, how many folds did more than append, the largest value written that hour. At
//! the end a Markdown table of hours 1, 2, 6, 7, 12, 24, 48 and the growth ratios (target for
//! the new layout: bytes per fold at hour 48 ≤ 1.2 × hour 1; as single hours of the new layout
//! swing with where the probabilistic compactions and sweeps fell, also the 6-hour means of
//! the last hours over hours 2–7). The answer is checked at the end (event count of a range query; exits 1 if wrong). SQLite runs
//! on temporary files, Redis under a unique metric name; both are deleted afterwards.

use std::error::Error as StdError;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use shardfold::store::conformance::{CountingStore, Counts, unique_prefix};
use shardfold::store::{
    EventOutcome, FoldReport, KvStore, ManualClock, MemoryStore, Metric, RedisStore, Series,
    SeriesConfig, SqliteStore,
};
use shardfold::testkit::SplitMix64;
use shardfold::{Distinct, Event, Outcome, Stats, Windowed, Zip};

type Agg = Zip<(Stats, Distinct)>;
type Val = (f64, u64);
type BoxError = Box<dyn StdError + Send + Sync>;

const MINUTE: u64 = 60_000;
const HOUR: u64 = 60 * MINUTE;
/// 2027-01-15T08:00:00Z
const T0: u64 = 1_800_000_000_000 - 1_800_000_000_000 % HOUR;
const EVENTS_PER_MINUTE: usize = 200;
const BATCH: usize = 50;
const SHARDS: u32 = 8;
const RETENTION_MS: u64 = 7 * 86_400_000;
const TABLE_HOURS: [u64; 7] = [1, 2, 6, 7, 12, 24, 48];

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<ExitCode, BoxError> {
    let exact = run().await?;
    Ok(if exact {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Command-line options.
struct Args {
    hours: u64,
    old_hours: u64,
    backends: Vec<Backend>,
    redis_url: String,
    compact_every: Option<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Backend {
    Sqlite,
    Redis,
    Memory,
}

impl Backend {
    fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Redis => "redis",
            Backend::Memory => "memory",
        }
    }
}

fn parse_args() -> Result<Args, BoxError> {
    let mut args = Args {
        hours: 48,
        old_hours: 12,
        backends: vec![Backend::Sqlite, Backend::Redis],
        redis_url: "redis://127.0.0.1:6379/".into(),
        compact_every: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--hours" => args.hours = value()?.parse()?,
            "--old-hours" => args.old_hours = value()?.parse()?,
            "--redis" => args.redis_url = value()?,
            "--compact-every" => args.compact_every = Some(value()?.parse()?),
            "--backend" => {
                args.backends = match value()?.as_str() {
                    "sqlite" => vec![Backend::Sqlite],
                    "redis" => vec![Backend::Redis],
                    "both" => vec![Backend::Sqlite, Backend::Redis],
                    "memory" => vec![Backend::Memory],
                    other => return Err(format!("unknown backend {other}").into()),
                }
            }
            other => return Err(format!("unknown flag {other}").into()),
        }
    }
    args.old_hours = args.old_hours.min(args.hours);
    Ok(args)
}

async fn run() -> Result<bool, BoxError> {
    let args = parse_args()?;
    let mut results = Vec::new();
    for &backend in &args.backends {
        let new = run_layout(backend, Layout::New, args.hours, &args).await?;
        let old = if args.old_hours > 0 {
            run_layout(backend, Layout::Old, args.old_hours, &args).await?
        } else {
            Run::default()
        };
        results.push((backend, new, old));
    }
    let mut ok = true;
    for (backend, new, old) in &results {
        println!();
        print_table(*backend, new, old);
        print_ratios(new, old);
        ok &= new.exact && (old.hours.is_empty() || old.exact);
    }
    Ok(ok)
}

/// The layout under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Layout {
    New,
    Old,
}

/// One opened metric of either layout.
enum Folder {
    New(Series<Agg, Val>),
    Old(Metric<Windowed<Agg>>),
}

impl Folder {
    async fn open(
        layout: Layout,
        store: Arc<dyn KvStore>,
        name: &str,
        clock: &ManualClock,
        compact_every: Option<u32>,
    ) -> Result<Self, BoxError> {
        Ok(match layout {
            Layout::New => {
                let config = SeriesConfig::new(Agg::default())
                    .window(Duration::from_secs(60))
                    .retention(Duration::from_millis(RETENTION_MS))
                    .shards(SHARDS)
                    .clock(Arc::new(clock.clone()));
                let config = match compact_every {
                    Some(n) => config.compact_every(n),
                    None => config,
                };
                Folder::New(Series::open(store, name, config).await?)
            }
            Layout::Old => {
                let template = Windowed::try_new(MINUTE, 5 * MINUTE, RETENTION_MS)?;
                Folder::Old(Metric::open_with(store, name, SHARDS, template).await?)
            }
        })
    }

    async fn fold(&self, batch: &[Event<Val>]) -> shardfold::Result<FoldReport> {
        match self {
            Folder::New(s) => s.fold(batch).await,
            Folder::Old(m) => m.fold(batch).await,
        }
    }

    /// Events counted by the stored state over `[from, to)`.
    async fn count(&self, from: u64, to: u64) -> shardfold::Result<u64> {
        Ok(match self {
            Folder::New(s) => {
                let view = s.query_range(from, to).await?;
                view.windows().map(|(_, a)| a.0.0.count()).sum()
            }
            Folder::Old(m) => {
                let state = m.query().await?;
                state.windows().map(|(_, a)| a.0.0.count()).sum()
            }
        })
    }
}

/// A fresh store of `backend`: a temporary SQLite file (returned for deletion) or Redis.
async fn open_store(
    backend: Backend,
    args: &Args,
    tag: &str,
) -> Result<(Arc<dyn KvStore>, Option<PathBuf>), BoxError> {
    match backend {
        Backend::Sqlite => {
            let path = std::env::temp_dir().join(format!("{}.db", unique_prefix(tag)));
            Ok((Arc::new(SqliteStore::open(&path).await?), Some(path)))
        }
        Backend::Redis => Ok((Arc::new(RedisStore::connect(&args.redis_url).await?), None)),
        Backend::Memory => Ok((Arc::new(MemoryStore::new()), None)),
    }
}

/// Deletes what a run left: the SQLite files, or the metric's Redis keys.
async fn clean_up(store: &dyn KvStore, name: &str, path: Option<PathBuf>) -> Result<(), BoxError> {
    if let Some(path) = path {
        for suffix in ["", "-wal", "-shm"] {
            let mut p = path.clone().into_os_string();
            p.push(suffix);
            let _ = std::fs::remove_file(p);
        }
        return Ok(());
    }
    let keys = store.list(&store.metric_key(name, "")).await?;
    for key in &keys {
        store.delete(key).await?;
    }
    Ok(())
}

/// What one layout did on one backend, hour by hour.
#[derive(Default)]
struct Run {
    hours: Vec<HourStat>,
    exact: bool,
}

impl Run {
    fn hour(&self, h: u64) -> Option<&HourStat> {
        self.hours.iter().find(|s| s.hour == h)
    }

    /// Bytes, round trips and ms per fold over hours `from..=to`.
    fn mean(&self, from: u64, to: u64) -> (f64, f64, f64) {
        let hours = || self.hours.iter().filter(|s| (from..=to).contains(&s.hour));
        let folds = hours().map(|s| s.folds).sum::<u64>().max(1) as f64;
        let sum =
            |f: fn(&HourStat) -> f64| hours().map(|s| f(s) * s.folds as f64).sum::<f64>() / folds;
        (
            sum(HourStat::bytes),
            sum(HourStat::trips),
            sum(HourStat::ms),
        )
    }
}

/// One hour of event time.
#[derive(Debug, Clone, Copy)]
struct HourStat {
    hour: u64,
    folds: u64,
    counts: Counts,
    max_value: u64,
    elapsed: Duration,
    slowest: Duration,
    refused: u64,
    /// Folds that did more than append (ran a compaction or a maintenance sweep).
    busy: u64,
}

impl HourStat {
    fn per_fold(&self, x: u64) -> f64 {
        x as f64 / self.folds.max(1) as f64
    }

    fn bytes(&self) -> f64 {
        self.per_fold(self.counts.bytes_read + self.counts.bytes_written)
    }

    fn trips(&self) -> f64 {
        let c = &self.counts;
        self.per_fold(c.reads + c.writes + c.lists + c.deletes)
    }

    fn ms(&self) -> f64 {
        self.elapsed.as_secs_f64() * 1e3 / self.folds.max(1) as f64
    }

    fn line(&self, backend: Backend, layout: Layout) -> String {
        let c = &self.counts;
        format!(
            "{:6} {:3} hour {:2}: {:8.0} B/fold (read {:.0}, written {:.0}), {:5.2} trips/fold \
             (r {:.2} w {:.2} l {:.2} d {:.2}), {:7.2} ms/fold (slowest {:.1}), {:3} folds of {} did more than \
             append, largest value written {}{}",
            backend.name(),
            if layout == Layout::New { "new" } else { "old" },
            self.hour,
            self.bytes(),
            self.per_fold(c.bytes_read),
            self.per_fold(c.bytes_written),
            self.trips(),
            self.per_fold(c.reads),
            self.per_fold(c.writes),
            self.per_fold(c.lists),
            self.per_fold(c.deletes),
            self.ms(),
            self.slowest.as_secs_f64() * 1e3,
            self.busy,
            self.folds,
            kb(self.max_value),
            if self.refused > 0 {
                format!(", {} events NOT accepted", self.refused)
            } else {
                String::new()
            },
        )
    }
}

fn kb(bytes: u64) -> String {
    format!("{:.1} KB", bytes as f64 / 1024.0)
}

/// 200 events a minute, unique IDs, times spread over the minute.
struct Workload {
    rng: SplitMix64,
    n: u64,
}

impl Workload {
    fn minute(&mut self, start: u64) -> Vec<Event<Val>> {
        (0..EVENTS_PER_MINUTE)
            .map(|_| {
                self.n += 1;
                let t = start + self.rng.below(MINUTE as usize) as u64;
                let value = (
                    (self.rng.unit() * 10_000.0).round() / 100.0,
                    self.rng.next_u64() % 10_000,
                );
                Event::new(format!("ev-{}", self.n).as_str(), t, value)
            })
            .collect()
    }
}

/// Runs `hours` hours of event time through a fresh metric of `layout` on `backend`.
async fn run_layout(
    backend: Backend,
    layout: Layout,
    hours: u64,
    args: &Args,
) -> Result<Run, BoxError> {
    let tag = format!(
        "aging-{}",
        if layout == Layout::New { "new" } else { "old" }
    );
    let (inner, path) = open_store(backend, args, &tag).await?;
    let watch = Arc::new(CountingStore::new(inner.clone()));
    let name = unique_prefix(&tag);
    let clock = ManualClock::new(T0);
    let folder = Folder::open(layout, watch.clone(), &name, &clock, args.compact_every).await?;
    let mut workload = Workload {
        rng: SplitMix64::new(6),
        n: 0,
    };
    let mut run = Run::default();
    for hour in 0..hours {
        let stat = run_hour(&folder, &watch, &clock, &mut workload, hour).await?;
        println!("{}", stat.line(backend, layout));
        run.hours.push(stat);
    }
    let counted = folder.count(T0, T0 + hours * HOUR).await?;
    run.exact = counted == workload.n;
    println!(
        "{} {}: {} events sent, {} counted by the query{}",
        backend.name(),
        if layout == Layout::New { "new" } else { "old" },
        workload.n,
        counted,
        if run.exact { "" } else { "  <-- WRONG" }
    );
    clean_up(&*inner, &name, path).await?;
    Ok(run)
}

/// One hour: 60 minutes of 4 batches, the counters reset at its start.
async fn run_hour(
    folder: &Folder,
    watch: &CountingStore,
    clock: &ManualClock,
    workload: &mut Workload,
    hour: u64,
) -> Result<HourStat, BoxError> {
    watch.reset();
    let (mut folds, mut refused, mut busy) = (0, 0, 0);
    let (mut elapsed, mut slowest) = (Duration::ZERO, Duration::ZERO);
    let extra = |c: Counts| c.reads + c.lists + c.deletes;
    for minute in 0..60 {
        let start = T0 + hour * HOUR + minute * MINUTE;
        clock.set(start + MINUTE);
        let events = workload.minute(start);
        for batch in events.chunks(BATCH) {
            let before = extra(watch.counts());
            let t = Instant::now();
            let report = folder.fold(batch).await?;
            let took = t.elapsed();
            elapsed += took;
            slowest = slowest.max(took);
            folds += 1;
            busy += u64::from(extra(watch.counts()) > before);
            refused += report
                .outcomes
                .iter()
                .filter(|o| {
                    !matches!(
                        o,
                        EventOutcome::Accepted | EventOutcome::Done(Outcome::Folded)
                    )
                })
                .count() as u64;
        }
    }
    Ok(HourStat {
        hour: hour + 1,
        folds,
        counts: watch.counts(),
        max_value: watch.counts().largest_write,
        elapsed,
        slowest,
        refused,
        busy,
    })
}

fn print_table(backend: Backend, new: &Run, old: &Run) {
    println!("### {}\n", backend.name());
    println!(
        "| hour | new B/fold | new trips/fold | new ms/fold | new largest value | \
         old B/fold | old trips/fold | old ms/fold | old largest value |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for h in TABLE_HOURS {
        let Some(n) = new.hour(h) else { continue };
        let o = old.hour(h).map_or_else(
            || "— | — | — | —".to_owned(),
            |o| {
                format!(
                    "{:.0} | {:.1} | {:.2} | {}",
                    o.bytes(),
                    o.trips(),
                    o.ms(),
                    kb(o.max_value)
                )
            },
        );
        println!(
            "| {h} | {:.0} | {:.1} | {:.2} | {} | {o} |",
            n.bytes(),
            n.trips(),
            n.ms(),
            kb(n.max_value)
        );
    }
    println!();
}

fn print_ratios(new: &Run, old: &Run) {
    let ratio = |run: &Run| {
        let (first, last) = (run.hours.first()?, run.hours.last()?);
        Some((
            last.hour,
            last.bytes() / first.bytes(),
            last.trips() / first.trips(),
            last.ms() / first.ms(),
        ))
    };
    if let Some((h, b, t, ms)) = ratio(new) {
        let verdict = if b <= 1.2 { "met" } else { "MISSED" };
        println!(
            "new: hour {h} / hour 1: bytes/fold {b:.2}× (target ≤ 1.2×: {verdict}), trips/fold {t:.2}×, ms/fold {ms:.2}×"
        );
    }
    // hour 1 settles only the buckets that ended a grace (10 min) before its end: 6-hour
    // means from hour 2 on show whether cost grows, apart from that start-up effect
    let n = new.hours.len() as u64;
    if n >= 13 {
        let (early, late) = (new.mean(2, 7), new.mean(n - 5, n));
        println!(
            "new: mean of hours {}–{n} / mean of hours 2–7: bytes/fold {:.2}×, trips/fold {:.2}×, ms/fold {:.2}×",
            n - 5,
            late.0 / early.0,
            late.1 / early.1,
            late.2 / early.2
        );
    }
    if let Some((h, b, t, ms)) = ratio(old) {
        println!(
            "old: hour {h} / hour 1: bytes/fold {b:.2}×, trips/fold {t:.2}×, ms/fold {ms:.2}×"
        );
    }
}
