//! End-to-end benchmark (issue 8, item 5): shardfold's `Series` against the per-event path
//! users write by hand today, all in one run against the same local Redis (and SQLite).
//!
//! ```text
//! . .ci/services.sh   # as root, if Redis is not running on 127.0.0.1:6379
//! cargo run --release -p shardfold-examples --features redis,sqlite,testkit --example e2e -- \
//!     [--events 1000000] [--events-at 10:100000] [--k 1,4,16] [--workers 1,4,16] \
//!     [--batch 10,100,1000] [--compact-every 16] [--sqlite] [--no-naive] [--seed 8]
//! ```
//!
//! Workload: N deliveries, of which 1 % redeliver an event sent 1 000 to 20 000 deliveries
//! earlier (so always in a later batch, for batches up to 1 000); event times uniform over the
//! last 10 minutes; each event has an ID string, a value (f64) and a user (u64).
//! `--events-at B:N,…` runs batch size B with N deliveries instead (default `10:100000`: a run
//! of 10⁶ at batch 10 takes minutes). `--compact-every` takes a list: each shardfold
//! configuration runs once per value (the `SeriesConfig::compact_every` default is 256).
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

mod fold;
mod naive;
mod workload;

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::error::Error as StdError;
use std::process::ExitCode;
use std::time::Duration;

use redis::aio::MultiplexedConnection;

use fold::{Backend, SeriesSpec, run_series};
use naive::run_naive;
use workload::{USERS, Workload, now_ms, workload};

type Res<T> = Result<T, Box<dyn StdError + Send + Sync>>;

const MINUTE: u64 = 60_000;

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
                    "unknown flag {flag} (see the docs at the top of examples/e2e/main.rs)"
                )
                .into());
            }
        }
    }
    Ok(o)
}

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
