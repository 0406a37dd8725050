//! The shardfold path: workers folding into a `Series`, then one compaction and a range query
//! checked against the exact truth.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use redis::aio::MultiplexedConnection;
use shardfold::store::conformance::{CountingStore, Counts};
use shardfold::store::{
    EventOutcome, KvStore, RedisStore, Series, SeriesConfig, SeriesView, SqliteStore,
};
use shardfold::{Distinct, Event, Outcome, Stats, Zip};

use crate::workload::Workload;
use crate::{MINUTE, Opts, Res, Row, connect, mem_per_event, unlink_tagged, used_memory};

pub(crate) type Agg = Zip<(Stats, Distinct)>;
pub(crate) type Value = (f64, u64);
// shardfold

#[derive(Clone, Copy, PartialEq)]
pub(crate) enum Backend {
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
                EventOutcome::Accepted | EventOutcome::Done(Outcome::Folded) => 0,
                EventOutcome::Done(Outcome::Duplicate) => 1,
                EventOutcome::Done(Outcome::Late) => 2,
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

pub(crate) struct SeriesSpec {
    pub(crate) backend: Backend,
    pub(crate) k: u32,
    pub(crate) compact_every: u32,
    pub(crate) workers: usize,
    pub(crate) batch: usize,
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

pub(crate) async fn run_series(
    opts: &Opts,
    tag: &str,
    spec: &SeriesSpec,
    work: &Workload,
) -> Res<Row> {
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
