//! The coordinator: N worker slots take jobs from the [`Queue`] until it drains. A slot runs
//! each job as a task (a crash drops the fold future at a random moment) or hands it to its
//! worker process over a line of stdin (a crash is a SIGKILL at a random moment, then a new
//! process).

use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};
use tokio::task::JoinSet;

use super::plan::{Plan, Rng, Scenario};
use super::queue::{Ending, Queue, Take};
use super::work::{Answer, Job, Polls, deliver, polled};
use crate::cli::CliError;
use crate::store::KvStore;

/// How long to wait for a new worker process to say it is ready.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// How long a slot waits before asking the queue again when nothing is visible.
const POLL: Duration = Duration::from_millis(2);

/// Everything a slot needs.
pub(crate) struct Shared {
    pub scenario: Scenario,
    pub plan: Arc<Plan>,
    pub queue: Mutex<Queue>,
    pub store: Arc<dyn KvStore>,
    pub url: String,
    pub metric: String,
    pub crash_rate: f64,
    /// A running mean of how long an answered job took (µs): signals are sent within it.
    pub fold_us: AtomicU64,
    /// How many polls a fold of a task worker usually takes: crashes are placed within it.
    pub polls: Polls,
}

impl Shared {
    fn take(&self) -> Result<Take, CliError> {
        let mut q = self.queue.lock().map_err(|_| poisoned())?;
        q.take(&self.plan).map_err(CliError::Usage)
    }

    fn finish(&self, job: Job, ending: Ending) -> Result<(), CliError> {
        let mut q = self.queue.lock().map_err(|_| poisoned())?;
        q.finish(&self.plan, job, ending);
        Ok(())
    }

    fn restarted(&self) -> Result<(), CliError> {
        let mut q = self.queue.lock().map_err(|_| poisoned())?;
        q.counters.restarts += 1;
        Ok(())
    }

    /// Whether the job's worker crashes (drawn with probability `crash_rate` from the seed and
    /// the job id): how far into a usual fold (per mille), and whether by a signal from here
    /// (process workers, half of the time) rather than by the worker itself.
    fn crash_plan(&self, job: &Job, processes: bool) -> Result<Option<(u64, bool)>, CliError> {
        let mut rng = Rng::new(self.scenario.seed ^ 0xC4A5_11ED, job.id);
        if rng.unit() >= self.crash_rate {
            return Ok(None);
        }
        let mut q = self.queue.lock().map_err(|_| poisoned())?;
        q.counters.planned_crashes += 1;
        Ok(Some((rng.below(1000), processes && rng.unit() < 0.5)))
    }

    /// The moment `per_mille` of the way through a usual job.
    fn signal_after(&self, per_mille: u64) -> Duration {
        let usual = self.fold_us.load(Ordering::Relaxed).max(500);
        Duration::from_micros(usual.saturating_mul(per_mille) / 1000)
    }

    fn timed(&self, took: Duration) {
        let us = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        let old = self.fold_us.load(Ordering::Relaxed);
        let new = if old == 0 { us } else { (old * 7 + us) / 8 };
        self.fold_us.store(new, Ordering::Relaxed);
    }
}

fn poisoned() -> CliError {
    CliError::Usage("a worker slot panicked".into())
}

/// Runs `workers` slots until the queue drains; the first error stops them all.
pub(crate) async fn drive(
    shared: Arc<Shared>,
    workers: usize,
    processes: bool,
) -> Result<(), CliError> {
    let mut set = JoinSet::new();
    for _ in 0..workers {
        let shared = Arc::clone(&shared);
        if processes {
            set.spawn(process_slot(shared));
        } else {
            set.spawn(task_slot(shared));
        }
    }
    while let Some(joined) = set.join_next().await {
        let error = match joined {
            Ok(Ok(())) => continue,
            Ok(Err(e)) => e,
            Err(e) => CliError::Usage(format!("worker slot: {e}")),
        };
        set.abort_all();
        return Err(error);
    }
    Ok(())
}

/// A slot whose worker is a task: each job a fresh invocation, maybe dropped mid-fold.
async fn task_slot(shared: Arc<Shared>) -> Result<(), CliError> {
    loop {
        let job = match shared.take()? {
            Take::Done => return Ok(()),
            Take::Wait => {
                tokio::time::sleep(POLL).await;
                continue;
            }
            Take::Job(job) => job,
        };
        let fold = deliver(
            &shared.store,
            &shared.metric,
            &shared.scenario,
            &shared.plan,
            &job,
        );
        let limit = shared
            .crash_plan(&job, false)?
            .map(|(per_mille, _)| shared.polls.at(per_mille));
        let ending = match polled(fold, limit, &shared.polls).await {
            Some(answer) => Ending::Answered(answer),
            None => Ending::Crashed,
        };
        shared.finish(job, ending)?;
    }
}

/// A worker process: `<this executable> simulate-worker …`, its stdin and its answers.
struct Worker {
    child: Child,
    stdin: ChildStdin,
    lines: Lines<BufReader<ChildStdout>>,
}

impl Worker {
    async fn start(shared: &Shared) -> Result<Worker, CliError> {
        let exe = std::env::current_exe()?;
        let s = &shared.scenario;
        let mut child = Command::new(exe)
            .arg("simulate-worker")
            .args(["--store", &shared.url, "--metric", &shared.metric])
            .args(["--seed", &s.seed.to_string()])
            .args(["--t0-ms", &s.t0_ms.to_string()])
            .args(["--events", &s.events.to_string()])
            .args(["--batch", &s.batch.to_string()])
            .args(["--dup-rate", &s.dup_rate.to_string()])
            .args(["--max-delay-ms", &s.max_delay_ms.to_string()])
            .args(["--horizon-ms", &s.horizon_ms.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()?;
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            return Err(CliError::Usage("worker process without pipes".into()));
        };
        let mut lines = BufReader::new(stdout).lines();
        match tokio::time::timeout(START_TIMEOUT, lines.next_line()).await {
            Ok(Ok(Some(line))) if line == "ready" => Ok(Worker {
                child,
                stdin,
                lines,
            }),
            Ok(Ok(Some(line))) => Err(CliError::Usage(format!(
                "worker process did not start: {line}"
            ))),
            Ok(Ok(None)) => Err(CliError::Usage(
                "worker process exited before it was ready (see its error above)".into(),
            )),
            Ok(Err(e)) => Err(e.into()),
            Err(_) => Err(CliError::Usage(format!(
                "worker process not ready after {START_TIMEOUT:?}"
            ))),
        }
    }

    /// The answer to job `id`; `None` if the process ended first.
    async fn answer(&mut self, id: u64) -> Result<Option<Answer>, CliError> {
        let Some(line) = self.lines.next_line().await? else {
            return Ok(None);
        };
        match Answer::parse(&line) {
            Some((got, answer)) if got == id => Ok(Some(answer)),
            _ => Err(CliError::Usage(format!(
                "unexpected line from a worker process: {line}"
            ))),
        }
    }

    async fn kill(mut self) -> Result<(), CliError> {
        self.child.start_kill()?;
        self.child.wait().await?;
        Ok(())
    }
}

/// A slot whose worker is an OS process, SIGKILLed at random moments and replaced.
async fn process_slot(shared: Arc<Shared>) -> Result<(), CliError> {
    let mut worker = Worker::start(&shared).await?;
    loop {
        let job = match shared.take()? {
            Take::Done => break,
            Take::Wait => {
                tokio::time::sleep(POLL).await;
                continue;
            }
            Take::Job(job) => job,
        };
        let started = tokio::time::Instant::now();
        let mut job = job;
        let mut signal = None;
        match shared.crash_plan(&job, true)? {
            Some((per_mille, true)) => signal = Some(shared.signal_after(per_mille)),
            Some((per_mille, false)) => job.abort_at = Some(per_mille),
            None => {}
        }
        let line = format!("{}\n", job.to_line());
        let sent = async {
            worker.stdin.write_all(line.as_bytes()).await?;
            worker.stdin.flush().await?;
            worker.answer(job.id).await
        };
        let answer = match signal {
            None => sent.await,
            Some(after) => tokio::time::timeout(after, sent).await.unwrap_or(Ok(None)),
        };
        let answer = match answer {
            Ok(a) => a,
            // a broken pipe: the process died on its own; it is replaced below
            Err(CliError::Io(_)) => None,
            Err(e) => return Err(e),
        };
        match answer {
            Some(a) => {
                shared.timed(started.elapsed());
                shared.finish(job, Ending::Answered(a))?;
            }
            None => {
                worker.kill().await?;
                shared.finish(job, Ending::Crashed)?;
                worker = Worker::start(&shared).await?;
                shared.restarted()?;
            }
        }
    }
    drop(worker.stdin);
    worker.child.wait().await?;
    Ok(())
}
