//! The naive paths: per event one Lua call (exactly once) or three commands (no dedup),
//! pipelined per batch.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Instant;

use redis::aio::MultiplexedConnection;

use crate::workload::{Delivery, Workload};
use crate::{MINUTE, Opts, Res, Row, connect, mem_per_event, unlink_tagged, used_memory};

/// `KEYS`: id, count, sum, users; `ARGV`: value, user.
const NAIVE_EXACTLY_ONCE: &str = r"
if redis.call('SET', KEYS[1], 1, 'NX', 'EX', 21600) then
  redis.call('INCR', KEYS[2])
  redis.call('INCRBYFLOAT', KEYS[3], ARGV[1])
  redis.call('PFADD', KEYS[4], ARGV[2])
  return 1
end
return 0";
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

pub(crate) async fn run_naive(
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
