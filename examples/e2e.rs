//! End-to-end benchmark (issue 8, item 5): shardfold's `Series` against the per-event path
//! users write by hand today, all in one run against the same local Redis (and SQLite).
//!
//! ```text
//! . .ci/services.sh   # as root, if Redis is not running on 127.0.0.1:6379
//! cargo run --release --features redis,sqlite,testkit --example e2e -- \
//!     [--events 1000000] [--events-at 10:100000] [--k 1,4,16] [--workers 1,4,16] \
//!     [--batch 10,100,1000] [--compact-every 16] [--sqlite] [--no-naive] [--seed 8]
//! ```
//!
//! Workload: N deliveries, of which 1 % redeliver an event sent 1 000 to 20 000 deliveries
//! earlier (so always in a later batch, for batches up to 1 000); event times uniform over the
//! last 10 minutes; each event has an ID string, a value (f64) and a user (u64).
//! `--events-at B:N,…` runs batch size B with N deliveries instead (default `10:100000`: a run
//! of 10⁶ at batch 10 takes minutes). `--compact-every` takes a list: each shardfold
//! configuration runs once per value (the `SeriesConfig::compact_every` default is 16).
//!
//! Paths, each with 1/4/16 concurrent workers (tokio tasks pulling the next batch):
//! * naive exactly-once: per event one `EVALSHA` (`SET id NX EX 21600`, and if new `INCR`,
//!   `INCRBYFLOAT`, `PFADD` per minute), pipelined per batch;
//! * naive without dedup: `INCR` + `INCRBYFLOAT` + `PFADD` per event, pipelined per batch;
//! * shardfold `Series<Zip<(Stats, Distinct)>, (f64, u64)>`, K shards, each worker with its
//!   own `Series` on its own connection (a stateless function instance), wrapped in a
//!   `CountingStore`. After the fold phase one `compact_range` over the events' time range and
//!   a `query_range`; the answer must equal the exact truth (count and sum bit for bit, HLL
//!   bytes equal to one `Distinct` fed the deduplicated users), else the example exits 1.
//!
//! Every key this run creates starts with `e2e-<run id>` and is deleted (`SCAN` + `UNLINK`)
//! after each path, so `INFO memory` deltas are per path.

use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::error::Error as StdError;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use redis::aio::MultiplexedConnection;
use shardfold::store::conformance::{CountingStore, Counts};
use shardfold::store::{
    EventOutcome, KvStore, RedisStore, Series, SeriesConfig, SeriesView, SqliteStore,
};
use shardfold::testkit::SplitMix64;
use shardfold::{Distinct, Event, Insert, Stats, Zip};

type Res<T> = Result<T, Box<dyn StdError + Send + Sync>>;
type Agg = Zip<(Stats, Distinct)>;
type Value = (f64, u64);

const MINUTE: u64 = 60_000;
const SPREAD_MS: u64 = 10 * MINUTE;
const USERS: usize = 100_000;
const REDELIVER_MIN: usize = 1_000;
const REDELIVER_SPAN: usize = 19_000;

/// `KEYS`: id, count, sum, users; `ARGV`: value, user.
const NAIVE_EXACTLY_ONCE: &str = r"
if redis.call('SET', KEYS[1], 1, 'NX', 'EX', 21600) then
  redis.call('INCR', KEYS[2])
  redis.call('INCRBYFLOAT', KEYS[3], ARGV[1])
  redis.call('PFADD', KEYS[4], ARGV[2])
  return 1
end
return 0";

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
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

// ---------------------------------------------------------------------------------------------
// options

struct Opts {
    events: usize,
    events_at: Vec<(usize, usize)>,
    ks: Vec<u32>,
    workers: Vec<usize>,
    batches: Vec<usize>,
    compact_every: Vec<u32>,
    sqlite: bool,
    naive: bool,
    seed: u64,
    url: String,
}

fn list<T: std::str::FromStr>(s: &str) -> Res<Vec<T>> {
    s.split(',')
        .map(|x| {
            x.trim()
                .parse::<T>()
                .map_err(|_| format!("bad list item {x:?}").into())
        })
        .collect()
}

/// `B:N,B:N`: batch size, deliveries.
fn pairs(s: &str) -> Res<Vec<(usize, usize)>> {
    s.split(',')
        .map(|x| {
            let (b, n) = x.split_once(':').ok_or_else(|| format!("bad pair {x:?}"))?;
            Ok((b.trim().parse()?, n.trim().parse()?))
        })
        .collect()
}

impl Opts {
    fn events_for(&self, batch: usize) -> usize {
        self.events_at
            .iter()
            .find(|(b, _)| *b == batch)
            .map_or(self.events, |(_, n)| *n)
    }
}

fn parse_opts() -> Res<Opts> {
    let mut o = Opts {
        events: 1_000_000,
        events_at: vec![(10, 100_000)],
        ks: vec![1, 4, 16],
        workers: vec![1, 4, 16],
        batches: vec![10, 100, 1000],
        compact_every: vec![16],
        sqlite: false,
        naive: true,
        seed: 8,
        url: "redis://127.0.0.1:6379".into(),
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut val = || args.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--events" => o.events = val()?.parse()?,
            "--events-at" => o.events_at = pairs(&val()?)?,
            "--k" => o.ks = list(&val()?)?,
            "--workers" => o.workers = list(&val()?)?,
            "--batch" => o.batches = list(&val()?)?,
            "--compact-every" => o.compact_every = list(&val()?)?,
            "--seed" => o.seed = val()?.parse()?,
            "--url" => o.url = val()?,
            "--sqlite" => o.sqlite = true,
            "--no-naive" => o.naive = false,
            _ => {
                return Err(format!(
                    "unknown flag {flag} (see the docs at the top of examples/e2e.rs)"
                )
                .into());
            }
        }
    }
    Ok(o)
}

// ---------------------------------------------------------------------------------------------
// workload and exact truth

#[derive(Clone)]
struct Delivery {
    id: String,
    time_ms: u64,
    value: f64,
    user: u64,
}

/// One window of the exact truth: Stats and Distinct fed the deduplicated events in one
/// stream, and the exact distinct users.
#[derive(Default)]
struct TruthWindow {
    stats: Stats,
    users: Distinct,
    exact_users: HashSet<u64>,
}

struct Workload {
    deliveries: Arc<Vec<Delivery>>,
    events: Arc<Vec<Event<Value>>>,
    unique: usize,
    from_ms: u64,
    to_ms: u64,
    truth: BTreeMap<u64, TruthWindow>,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn fresh(rng: &mut SplitMix64, from_ms: u64) -> Delivery {
    Delivery {
        id: format!("evt-{:016x}", rng.next_u64()),
        time_ms: from_ms + rng.next_u64() % SPREAD_MS,
        value: rng.unit() * 1000.0,
        user: rng.below(USERS) as u64,
    }
}

fn deliveries(n: usize, seed: u64, from_ms: u64) -> Vec<Delivery> {
    let mut rng = SplitMix64::new(seed);
    let mut out: Vec<Delivery> = Vec::with_capacity(n);
    while out.len() < n {
        let i = out.len();
        let redeliver = i >= REDELIVER_MIN && rng.below(100) == 0;
        let next = if redeliver {
            let back = REDELIVER_MIN + rng.below(REDELIVER_SPAN.min(i - REDELIVER_MIN + 1));
            out[i - back].clone()
        } else {
            fresh(&mut rng, from_ms)
        };
        out.push(next);
    }
    out
}

fn truth(deliveries: &[Delivery]) -> Res<(BTreeMap<u64, TruthWindow>, usize)> {
    let mut seen = HashSet::with_capacity(deliveries.len());
    let mut windows: BTreeMap<u64, TruthWindow> = BTreeMap::new();
    for d in deliveries.iter().filter(|d| seen.insert(d.id.as_str())) {
        let w = windows.entry(d.time_ms - d.time_ms % MINUTE).or_default();
        w.stats.insert(d.value)?;
        w.users.insert(d.user)?;
        w.exact_users.insert(d.user);
    }
    Ok((windows, seen.len()))
}

fn workload(n: usize, seed: u64) -> Res<Workload> {
    let to_ms = now_ms();
    let from_ms = to_ms - SPREAD_MS;
    let list = deliveries(n, seed, from_ms);
    let events = list
        .iter()
        .map(|d| Event::new(d.id.as_str(), d.time_ms, (d.value, d.user)))
        .collect();
    let (truth, unique) = truth(&list)?;
    Ok(Workload {
        deliveries: Arc::new(list),
        events: Arc::new(events),
        unique,
        from_ms,
        to_ms,
        truth,
    })
}

impl Workload {
    fn count(&self) -> u64 {
        self.truth.values().map(|w| w.stats.count()).sum()
    }

    fn sum(&self) -> f64 {
        self.truth.values().map(|w| w.stats.sum()).sum()
    }
}

// ---------------------------------------------------------------------------------------------
// one row of results

#[derive(Default)]
struct Row {
    path: String,
    k: Option<u32>,
    compact_every: Option<u32>,
    workers: usize,
    batch: usize,
    n: usize,
    fold_secs: f64,
    final_secs: Option<f64>,
    /// Commands (naive) or store calls (shardfold) in the fold phase.
    calls: u64,
    /// Pipelines (naive) or store calls (shardfold) in the fold phase.
    round_trips: u64,
    bytes_written: u64,
    mem_per_event: Option<f64>,
    answer: String,
    exact: Option<bool>,
}

impl Row {
    fn rate(&self) -> f64 {
        self.n as f64 / self.fold_secs
    }

    fn per_k(&self, x: u64) -> f64 {
        x as f64 * 1000.0 / self.n as f64
    }
}

// ---------------------------------------------------------------------------------------------
// Redis helpers: memory, cleanup

/// A connection whose replies may take long: a loaded 2-core machine stalls Redis for seconds.
async fn connect(client: &redis::Client) -> Res<MultiplexedConnection> {
    let config =
        redis::AsyncConnectionConfig::new().set_response_timeout(Some(Duration::from_secs(120)));
    Ok(client
        .get_multiplexed_async_connection_with_config(&config)
        .await?)
}

async fn used_memory(conn: &mut MultiplexedConnection) -> Res<i64> {
    let info: String = redis::cmd("INFO").arg("memory").query_async(conn).await?;
    let line = info
        .lines()
        .find_map(|l| l.strip_prefix("used_memory:"))
        .ok_or("INFO memory has no used_memory")?;
    Ok(line.trim().parse()?)
}

/// Unlinks every key of path `tag` (naive keys `tag:…`, series keys `{tag}/…` and the series'
/// list index `{tag}\xffidx`); returns how many.
async fn unlink_tagged(conn: &mut MultiplexedConnection, tag: &str) -> Res<u64> {
    let mut cursor = 0u64;
    let mut n = 0;
    loop {
        let (next, keys): (u64, Vec<Vec<u8>>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(format!("*{tag}[:}}]*"))
            .arg("COUNT")
            .arg(1000)
            .query_async(conn)
            .await?;
        if !keys.is_empty() {
            n += keys.len() as u64;
            let _: u64 = redis::cmd("UNLINK").arg(keys).query_async(conn).await?;
        }
        if next == 0 {
            // UNLINK frees in the background: let it finish before the next `used_memory`
            tokio::time::sleep(Duration::from_millis(300)).await;
            return Ok(n);
        }
        cursor = next;
    }
}

/// Memory per retained event: `used_memory` now minus `before`, over `unique` events.
async fn mem_per_event(conn: &mut MultiplexedConnection, before: i64, unique: usize) -> Res<f64> {
    Ok((used_memory(conn).await? - before) as f64 / unique as f64)
}

// ---------------------------------------------------------------------------------------------
// naive paths

struct NaiveCtx {
    prefix: String,
    sha: Option<String>,
    batch: usize,
    next: AtomicUsize,
    commands: AtomicU64,
    pipelines: AtomicU64,
    bytes: AtomicU64,
}

fn naive_keys(prefix: &str, d: &Delivery) -> [String; 3] {
    let m = d.time_ms / MINUTE;
    [
        format!("{prefix}count:{m}"),
        format!("{prefix}sum:{m}"),
        format!("{prefix}users:{m}"),
    ]
}

fn naive_pipe(ctx: &NaiveCtx, batch: &[Delivery]) -> redis::Pipeline {
    let mut p = redis::pipe();
    for d in batch {
        let [count, sum, users] = naive_keys(&ctx.prefix, d);
        match &ctx.sha {
            Some(sha) => {
                let id = format!("{}id:{}", ctx.prefix, d.id);
                p.cmd("EVALSHA")
                    .arg(sha)
                    .arg(4)
                    .arg(id)
                    .arg(count)
                    .arg(sum)
                    .arg(users);
                p.arg(d.value).arg(d.user).ignore();
            }
            None => {
                p.cmd("INCR").arg(count).ignore();
                p.cmd("INCRBYFLOAT").arg(sum).arg(d.value).ignore();
                p.cmd("PFADD").arg(users).arg(d.user).ignore();
            }
        }
    }
    p
}

async fn naive_worker(
    ctx: Arc<NaiveCtx>,
    list: Arc<Vec<Delivery>>,
    client: redis::Client,
) -> Res<()> {
    let mut conn = connect(&client).await?;
    let per_event = if ctx.sha.is_some() { 1 } else { 3 };
    loop {
        let i = ctx.next.fetch_add(1, Ordering::Relaxed) * ctx.batch;
        let Some(batch) = list
            .get(i..(i + ctx.batch).min(list.len()))
            .filter(|b| !b.is_empty())
        else {
            return Ok(());
        };
        let pipe = naive_pipe(&ctx, batch);
        ctx.bytes
            .fetch_add(pipe.get_packed_pipeline().len() as u64, Ordering::Relaxed);
        ctx.commands
            .fetch_add(per_event * batch.len() as u64, Ordering::Relaxed);
        ctx.pipelines.fetch_add(1, Ordering::Relaxed);
        pipe.query_async::<()>(&mut conn).await?;
    }
}

/// Reads back the naive answer and compares it with the truth.
async fn naive_answer(
    conn: &mut MultiplexedConnection,
    prefix: &str,
    work: &Workload,
) -> Res<String> {
    let (mut count, mut sum, mut dist_err) = (0u64, 0f64, 0f64);
    for (start, w) in &work.truth {
        let m = start / MINUTE;
        let c: Option<u64> = redis::cmd("GET")
            .arg(format!("{prefix}count:{m}"))
            .query_async(conn)
            .await?;
        let s: Option<f64> = redis::cmd("GET")
            .arg(format!("{prefix}sum:{m}"))
            .query_async(conn)
            .await?;
        let u: u64 = redis::cmd("PFCOUNT")
            .arg(format!("{prefix}users:{m}"))
            .query_async(conn)
            .await?;
        count += c.unwrap_or(0);
        sum += s.unwrap_or(0.0);
        let exact = w.exact_users.len() as f64;
        dist_err = dist_err.max(((u as f64 - exact) / exact).abs());
    }
    let (tc, ts) = (work.count(), work.sum());
    let count_err = (count as f64 - tc as f64) / tc as f64;
    let sum_err = (sum - ts) / ts;
    Ok(format!(
        "count {:+.3} %, sum {:+.1e} rel, distinct ≤ {:.2} % off",
        count_err * 100.0,
        sum_err,
        dist_err * 100.0
    ))
}

async fn load_script(conn: &mut MultiplexedConnection) -> Res<String> {
    let load = redis::cmd("SCRIPT")
        .arg("LOAD")
        .arg(NAIVE_EXACTLY_ONCE)
        .clone();
    Ok(load.query_async::<String>(conn).await?)
}

/// Runs `workers` naive workers over the workload; returns the seconds taken.
async fn naive_phase(
    ctx: &Arc<NaiveCtx>,
    client: &redis::Client,
    workers: usize,
    work: &Workload,
) -> Res<f64> {
    let start = Instant::now();
    let tasks: Vec<_> = (0..workers)
        .map(|_| {
            tokio::spawn(naive_worker(
                Arc::clone(ctx),
                Arc::clone(&work.deliveries),
                client.clone(),
            ))
        })
        .collect();
    for t in tasks {
        t.await??;
    }
    Ok(start.elapsed().as_secs_f64())
}

async fn run_naive(
    opts: &Opts,
    tag: &str,
    exactly_once: bool,
    workers: usize,
    batch: usize,
    work: &Workload,
) -> Res<Row> {
    let client = redis::Client::open(opts.url.as_str())?;
    let mut conn = connect(&client).await?;
    let sha = if exactly_once {
        Some(load_script(&mut conn).await?)
    } else {
        None
    };
    let before = used_memory(&mut conn).await?;
    let ctx = Arc::new(NaiveCtx {
        prefix: format!("{tag}:"),
        sha,
        batch,
        next: AtomicUsize::new(0),
        commands: AtomicU64::new(0),
        pipelines: AtomicU64::new(0),
        bytes: AtomicU64::new(0),
    });
    let fold_secs = naive_phase(&ctx, &client, workers, work).await?;
    let mem = mem_per_event(&mut conn, before, work.unique).await?;
    let answer = naive_answer(&mut conn, &ctx.prefix, work).await?;
    unlink_tagged(&mut conn, tag).await?;
    Ok(Row {
        path: if exactly_once {
            "naive exactly-once (Lua)"
        } else {
            "naive, no dedup"
        }
        .into(),
        workers,
        batch,
        n: work.deliveries.len(),
        fold_secs,
        calls: ctx.commands.load(Ordering::Relaxed),
        round_trips: ctx.pipelines.load(Ordering::Relaxed),
        bytes_written: ctx.bytes.load(Ordering::Relaxed),
        mem_per_event: Some(mem),
        answer,
        ..Row::default()
    })
}

// ---------------------------------------------------------------------------------------------
// shardfold

#[derive(Clone, Copy, PartialEq)]
enum Backend {
    Redis,
    Sqlite,
}

struct Worker {
    series: Series<Agg, Value>,
    counts: Arc<CountingStore>,
}

async fn open_store(opts: &Opts, backend: Backend, db: &std::path::Path) -> Res<Arc<dyn KvStore>> {
    Ok(match backend {
        Backend::Redis => Arc::new(RedisStore::connect(&opts.url).await?),
        Backend::Sqlite => Arc::new(SqliteStore::open(db).await?),
    })
}

fn series_config(k: u32, compact_every: u32) -> SeriesConfig<Agg> {
    SeriesConfig::new(Agg::default())
        .window(Duration::from_millis(MINUTE))
        .horizon(Duration::from_secs(6 * 3600))
        .shards(k)
        .compact_every(compact_every)
}

async fn open_worker(
    opts: &Opts,
    spec: &SeriesSpec,
    db: &std::path::Path,
    name: &str,
) -> Res<Worker> {
    let counts = Arc::new(CountingStore::new(
        open_store(opts, spec.backend, db).await?,
    ));
    let store: Arc<dyn KvStore> = Arc::clone(&counts) as Arc<dyn KvStore>;
    let series = Series::open(store, name, series_config(spec.k, spec.compact_every)).await?;
    Ok(Worker { series, counts })
}

/// Outcomes the fold phase saw: (accepted, duplicate, late, failed).
#[derive(Default, Clone, Copy)]
struct Outcomes([u64; 4]);

async fn fold_worker(
    w: Arc<Worker>,
    events: Arc<Vec<Event<Value>>>,
    next: Arc<AtomicUsize>,
    batch: usize,
) -> Res<Outcomes> {
    let mut seen = Outcomes::default();
    loop {
        let i = next.fetch_add(1, Ordering::Relaxed) * batch;
        let Some(slice) = events
            .get(i..(i + batch).min(events.len()))
            .filter(|b| !b.is_empty())
        else {
            return Ok(seen);
        };
        let report = w.series.fold(slice).await?;
        for o in &report.outcomes {
            let slot = match o {
                EventOutcome::Accepted | EventOutcome::Folded => 0,
                EventOutcome::Duplicate => 1,
                EventOutcome::Late => 2,
                _ => 3,
            };
            seen.0[slot] += 1;
        }
    }
}

fn sum_counts(workers: &[Arc<Worker>]) -> Counts {
    let mut c = Counts::default();
    for w in workers.iter().map(|w| w.counts.counts()) {
        c.reads += w.reads;
        c.writes += w.writes;
        c.lists += w.lists;
        c.deletes += w.deletes;
        c.bytes_read += w.bytes_read;
        c.bytes_written += w.bytes_written;
        c.keys_listed += w.keys_listed;
    }
    c
}

/// Compares the query with the truth: count and sum bit for bit, HLL bytes equal.
fn verify(view: &SeriesView<Agg>, work: &Workload) -> Result<f64, String> {
    if view.window_count() != work.truth.len() {
        return Err(format!(
            "{} windows, expected {}",
            view.window_count(),
            work.truth.len()
        ));
    }
    let mut dist_err = 0f64;
    for (start, t) in &work.truth {
        let Zip((stats, users)) = view
            .window(*start)
            .ok_or(format!("window {start} missing"))?;
        if stats.count() != t.stats.count() || stats.sum().to_bits() != t.stats.sum().to_bits() {
            return Err(format!(
                "window {start}: count {} sum {} (expected {} / {})",
                stats.count(),
                stats.sum(),
                t.stats.count(),
                t.stats.sum()
            ));
        }
        if shardfold::encode(users) != shardfold::encode(&t.users) {
            return Err(format!(
                "window {start}: HLL bytes differ from one-stream HLL"
            ));
        }
        let exact = t.exact_users.len() as f64;
        dist_err = dist_err.max(((users.estimate() - exact) / exact).abs());
    }
    Ok(dist_err)
}

struct SeriesSpec {
    backend: Backend,
    k: u32,
    compact_every: u32,
    workers: usize,
    batch: usize,
}

async fn fold_phase(
    spec: &SeriesSpec,
    workers: &[Arc<Worker>],
    work: &Workload,
) -> Res<(f64, Outcomes)> {
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let tasks: Vec<_> = workers
        .iter()
        .map(|w| {
            tokio::spawn(fold_worker(
                Arc::clone(w),
                Arc::clone(&work.events),
                Arc::clone(&next),
                spec.batch,
            ))
        })
        .collect();
    let mut all = Outcomes::default();
    for t in tasks {
        let o = t.await??;
        for (a, b) in all.0.iter_mut().zip(o.0) {
            *a += b;
        }
    }
    Ok((start.elapsed().as_secs_f64(), all))
}

/// Store calls (each one round trip).
fn calls(c: &Counts) -> u64 {
    c.reads + c.writes + c.lists + c.deletes
}

/// One compaction over the workload's time range, then the range query: (seconds, answer).
async fn final_phase(series: &Series<Agg, Value>, work: &Workload) -> Res<(f64, SeriesView<Agg>)> {
    let start = Instant::now();
    series.compact_range(work.from_ms, work.to_ms + 1).await?;
    let view = series
        .query_range(work.from_ms - work.from_ms % MINUTE, work.to_ms + 1)
        .await?;
    Ok((start.elapsed().as_secs_f64(), view))
}

async fn run_series(opts: &Opts, tag: &str, spec: &SeriesSpec, work: &Workload) -> Res<Row> {
    let client = redis::Client::open(opts.url.as_str())?;
    let mut conn = connect(&client).await?;
    let db = std::env::temp_dir().join(format!("{tag}.db"));
    let before = used_memory(&mut conn).await?;
    let mut workers = Vec::with_capacity(spec.workers);
    for _ in 0..spec.workers {
        workers.push(Arc::new(open_worker(opts, spec, &db, tag).await?));
    }
    let opened = sum_counts(&workers);
    let (fold_secs, outcomes) = fold_phase(spec, &workers, work).await?;
    let folded = sum_counts(&workers);
    let first = workers.first().ok_or("no workers")?;
    let (final_secs, view) = final_phase(&first.series, work).await?;
    let mem = match spec.backend {
        Backend::Redis => Some(mem_per_event(&mut conn, before, work.unique).await?),
        Backend::Sqlite => None,
    };
    let (answer, exact) = describe(verify(&view, work), &view, outcomes, work.events.len());
    cleanup(&mut conn, spec.backend, tag, &db).await?;
    let backend = if spec.backend == Backend::Redis {
        "Redis"
    } else {
        "SQLite"
    };
    Ok(Row {
        path: format!("shardfold Series, {backend}"),
        k: Some(spec.k),
        compact_every: Some(spec.compact_every),
        workers: spec.workers,
        batch: spec.batch,
        n: work.events.len(),
        fold_secs,
        final_secs: Some(final_secs),
        calls: calls(&folded) - calls(&opened),
        round_trips: calls(&folded) - calls(&opened),
        bytes_written: folded.bytes_written - opened.bytes_written,
        mem_per_event: mem,
        answer,
        exact: Some(exact),
    })
}

fn describe(
    check: Result<f64, String>,
    view: &SeriesView<Agg>,
    o: Outcomes,
    deliveries: usize,
) -> (String, bool) {
    let t = view.tally();
    let [_, _, late, failed] = o.0;
    let mut note = String::new();
    if t.folded + t.duplicates != deliveries as u64 {
        note = format!(
            "; tally {} folded + {} dup ≠ {deliveries} deliveries",
            t.folded, t.duplicates
        );
    }
    match check {
        Ok(err) if late == 0 && failed == 0 => (
            format!(
                "exact; distinct ≤ {:.2} % off, HLL = one stream{note}",
                err * 100.0
            ),
            true,
        ),
        Ok(_) => (
            format!("exact, but {late} late / {failed} failed at fold{note}"),
            false,
        ),
        Err(e) => (format!("**WRONG**: {e}{note}"), false),
    }
}

async fn cleanup(
    conn: &mut MultiplexedConnection,
    backend: Backend,
    tag: &str,
    db: &std::path::Path,
) -> Res<()> {
    unlink_tagged(conn, tag).await?;
    if backend == Backend::Sqlite {
        for suffix in ["", "-wal", "-shm"] {
            let mut p = db.as_os_str().to_owned();
            p.push(suffix);
            let _ = std::fs::remove_file(p);
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// the matrix and the table

fn print_header(opts: &Opts, run: &str) {
    println!("# shardfold e2e (issue 8, item 5) — run {run}");
    println!();
    println!(
        "N = {} deliveries (other N per batch size: {:?}), 1 % redeliveries 1 000–20 000 \
         deliveries later, event time uniform over 10 min, {USERS} users; K {:?}, workers {:?}, \
         batches {:?}, compact_every {:?}",
        opts.events, opts.events_at, opts.ks, opts.workers, opts.batches, opts.compact_every
    );
    println!();
}

const TABLE_HEAD: &str = "| path | K | compact every | workers | batch | N | events/s | vs naive exactly-once | final compact+query | events/s incl. final (vs naive) | calls (round trips) / 1k ev | KB written / 1k ev | Redis B / retained event | answer |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|";

/// One table line; the ratio is to the naive exactly-once row of the same batch, workers, N.
fn table_row(rows: &[Row], r: &Row) -> String {
    let base = rows.iter().find(|b| {
        b.path.starts_with("naive exactly")
            && b.batch == r.batch
            && b.workers == r.workers
            && b.n == r.n
    });
    let ratio = base.map_or("—".into(), |b| format!("{:.2}×", r.rate() / b.rate()));
    let overall = r.final_secs.map_or("—".into(), |f| {
        let rate = r.n as f64 / (r.fold_secs + f);
        let vs = base.map_or("—".into(), |b| format!("{:.2}×", rate / b.rate()));
        format!("{rate:.0} ({vs})")
    });
    format!(
        "| {} | {} | {} | {} | {} | {} | {:.0} | {} | {} | {} | {:.1} ({:.1}) | {:.1} | {} | {} |",
        r.path,
        r.k.map_or("—".into(), |k| k.to_string()),
        r.compact_every.map_or("—".into(), |c| c.to_string()),
        r.workers,
        r.batch,
        r.n,
        r.rate(),
        ratio,
        r.final_secs
            .map_or("—".into(), |s| format!("{:.0} ms", s * 1000.0)),
        overall,
        r.per_k(r.calls),
        r.per_k(r.round_trips),
        r.per_k(r.bytes_written) / 1024.0,
        r.mem_per_event.map_or("—".into(), |m| format!("{m:.0}")),
        r.answer
    )
}

fn push_row(rows: &mut Vec<Row>, row: Row) {
    rows.push(row);
    if let Some(r) = rows.last() {
        eprintln!("{}", table_row(rows, r));
    }
}

/// A key prefix unique to the next row of this run.
fn next_tag(run: &str, rows: &[Row]) -> String {
    format!("{run}-{}", rows.len() + 1)
}

async fn run_batch(
    opts: &Opts,
    run: &str,
    work: &Workload,
    batch: usize,
    rows: &mut Vec<Row>,
) -> Res<()> {
    for &workers in &opts.workers {
        for exactly_once in [true, false].into_iter().filter(|_| opts.naive) {
            let row = run_naive(
                opts,
                &next_tag(run, rows),
                exactly_once,
                workers,
                batch,
                work,
            )
            .await
            .map_err(|e| format!("naive (workers {workers}, batch {batch}): {e}"))?;
            push_row(rows, row);
        }
        let backends: &[Backend] = if opts.sqlite {
            &[Backend::Redis, Backend::Sqlite]
        } else {
            &[Backend::Redis]
        };
        for &backend in backends {
            run_grid(opts, run, work, (backend, workers, batch), rows).await?;
        }
    }
    Ok(())
}

/// Every K × compact_every configuration of one backend, worker count and batch size.
async fn run_grid(
    opts: &Opts,
    run: &str,
    work: &Workload,
    (backend, workers, batch): (Backend, usize, usize),
    rows: &mut Vec<Row>,
) -> Res<()> {
    for &k in &opts.ks {
        for &compact_every in &opts.compact_every {
            let spec = SeriesSpec {
                backend,
                k,
                compact_every,
                workers,
                batch,
            };
            let row = run_series(opts, &next_tag(run, rows), &spec, work)
                .await
                .map_err(|e| format!("shardfold (K {k}, compact every {compact_every}, workers {workers}, batch {batch}): {e}"))?;
            push_row(rows, row);
        }
    }
    Ok(())
}

async fn run() -> Res<bool> {
    let opts = parse_opts()?;
    let run = format!("e2e-{:x}", now_ms());
    print_header(&opts, &run);
    eprintln!("{TABLE_HEAD}");
    let mut works: HashMap<usize, Workload> = HashMap::new();
    let mut rows = Vec::new();
    for &batch in &opts.batches {
        let n = opts.events_for(batch);
        let work = match works.entry(n) {
            Entry::Occupied(e) => e.into_mut(),
            Entry::Vacant(e) => e.insert(workload(n, opts.seed)?),
        };
        run_batch(&opts, &run, work, batch, &mut rows).await?;
    }
    println!("{TABLE_HEAD}");
    for r in &rows {
        println!("{}", table_row(&rows, r));
    }
    let ok = rows.iter().all(|r| r.exact != Some(false));
    if !ok {
        eprintln!("error: a shardfold answer differs from the exact truth");
    }
    Ok(ok)
}
