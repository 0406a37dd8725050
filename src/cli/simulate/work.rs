//! One delivery, as a stateless worker folds it, and the line protocol between the
//! coordinator and worker processes.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::Poll;
use std::time::Duration;

use super::plan::{Agg, Plan, Scenario, Val};
use crate::Event;
use crate::dedup::Outcome;
use crate::store::{EventOutcome, KvStore, Series, SeriesConfig};

/// A message of the queue: delivery `delivery` of the plan, or only the events at
/// `positions` of it (a partial redelivery of events that failed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Job {
    /// Unique per message sent.
    pub id: u64,
    /// Index into [`Plan::deliveries`].
    pub delivery: u32,
    /// Positions within the delivery; `None`: all of it.
    pub positions: Option<Vec<u32>>,
    /// A worker process told to crash: it aborts when its fold has been polled this fraction
    /// (per mille) of the polls its folds usually take.
    pub abort_at: Option<u64>,
}

impl Job {
    /// The plan's event indexes this job carries, in delivery order.
    pub(crate) fn events(&self, plan: &Plan) -> Vec<u32> {
        let all = plan
            .deliveries
            .get(self.delivery as usize)
            .map_or(&[][..], Vec::as_slice);
        match &self.positions {
            None => all.to_vec(),
            Some(p) => p
                .iter()
                .filter_map(|&i| all.get(i as usize).copied())
                .collect(),
        }
    }

    /// `job <id> <delivery> <pos>,<pos>,…|- [abort <per mille>]`
    pub(crate) fn to_line(&self) -> String {
        let p = self.positions.as_deref().map_or("-".to_owned(), join);
        match self.abort_at {
            None => format!("job {} {} {p}", self.id, self.delivery),
            Some(a) => format!("job {} {} {p} abort {a}", self.id, self.delivery),
        }
    }

    /// Parses [`to_line`](Self::to_line)'s output.
    pub(crate) fn parse(line: &str) -> Option<Job> {
        let mut parts = line.split_whitespace();
        if parts.next()? != "job" {
            return None;
        }
        let id = parts.next()?.parse().ok()?;
        let delivery = parts.next()?.parse().ok()?;
        let positions = match parts.next()? {
            "-" => None,
            list => Some(split(list)?),
        };
        let abort_at = match parts.next() {
            None => None,
            Some("abort") => Some(parts.next()?.parse().ok()?),
            Some(_) => return None,
        };
        parts.next().is_none().then_some(Job {
            id,
            delivery,
            positions,
            abort_at,
        })
    }
}

/// What a worker answers for a job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Answer {
    /// The fold returned: counts of accepted and late events, and the positions (within the
    /// job's position list, or the delivery) of the events that failed.
    Ack {
        accepted: u64,
        late: u64,
        failed: Vec<u32>,
    },
    /// The fold (or opening the series) failed as a whole: nothing acknowledged.
    Fail(String),
}

impl Answer {
    /// `ack <id> <accepted> <late> <failed,…|->` or `fail <id> <message>`.
    pub(crate) fn to_line(&self, id: u64) -> String {
        match self {
            Answer::Ack {
                accepted,
                late,
                failed,
            } => {
                let f = if failed.is_empty() {
                    "-".to_owned()
                } else {
                    join(failed)
                };
                format!("ack {id} {accepted} {late} {f}")
            }
            Answer::Fail(msg) => format!("fail {id} {}", msg.replace('\n', " ")),
        }
    }

    /// Parses [`to_line`](Self::to_line)'s output: the job id and the answer.
    pub(crate) fn parse(line: &str) -> Option<(u64, Answer)> {
        let (kind, rest) = line.split_once(' ')?;
        let (id, rest) = rest.split_once(' ').unwrap_or((rest, ""));
        let id = id.parse().ok()?;
        match kind {
            "fail" => Some((id, Answer::Fail(rest.to_owned()))),
            "ack" => {
                let mut p = rest.split_whitespace();
                let accepted = p.next()?.parse().ok()?;
                let late = p.next()?.parse().ok()?;
                let failed = match p.next()? {
                    "-" => Vec::new(),
                    list => split(list)?,
                };
                Some((
                    id,
                    Answer::Ack {
                        accepted,
                        late,
                        failed,
                    },
                ))
            }
            _ => None,
        }
    }
}

fn join(v: &[u32]) -> String {
    v.iter().map(u32::to_string).collect::<Vec<_>>().join(",")
}

fn split(list: &str) -> Option<Vec<u32>> {
    list.split(',').map(|s| s.parse().ok()).collect()
}

/// A running mean of how many polls a fold takes, to place crashes inside folds.
#[derive(Debug)]
pub(crate) struct Polls(AtomicU64);

impl Polls {
    /// No fold seen yet: assume a few polls.
    pub(crate) fn new() -> Self {
        Polls(AtomicU64::new(4))
    }

    /// The poll at which a crash `per_mille` of the way through a usual fold happens.
    pub(crate) fn at(&self, per_mille: u64) -> u64 {
        self.0.load(Ordering::Relaxed).saturating_mul(per_mille) / 1000
    }

    fn record(&self, polls: u64) {
        let old = self.0.load(Ordering::Relaxed);
        self.0.store((old * 7 + polls) / 8, Ordering::Relaxed);
    }
}

/// Runs `fut`, but drops it unfinished at its `limit`-th poll (`None` then): a worker dying
/// at an await point of the fold. Finished folds teach `polls` their length.
pub(crate) async fn polled<F: Future>(
    fut: F,
    limit: Option<u64>,
    polls: &Polls,
) -> Option<F::Output> {
    let mut fut = std::pin::pin!(fut);
    let mut count = 0u64;
    let out = std::future::poll_fn(|cx| {
        if limit.is_some_and(|l| count >= l) {
            return Poll::Ready(None);
        }
        count += 1;
        fut.as_mut().poll(cx).map(Some)
    })
    .await;
    if out.is_some() {
        polls.record(count);
    }
    out
}

/// How the series is configured by everyone: one-minute windows, the scenario's horizon.
pub(crate) fn config(s: &Scenario) -> SeriesConfig<Agg> {
    SeriesConfig::new(Agg::default())
        .window(Duration::from_secs(60))
        .horizon(Duration::from_millis(s.horizon_ms))
}

/// One stateless invocation: opens the series, folds the job's events, reports.
pub(crate) async fn deliver(
    store: &Arc<dyn KvStore>,
    metric: &str,
    scenario: &Scenario,
    plan: &Plan,
    job: &Job,
) -> Answer {
    let batch: Vec<Event<Val>> = job
        .events(plan)
        .iter()
        .filter_map(|&i| plan.events.get(i as usize).cloned())
        .collect();
    let series = match Series::<Agg, Val>::open(Arc::clone(store), metric, config(scenario)).await {
        Ok(s) => s,
        Err(e) => return Answer::Fail(format!("open: {e}")),
    };
    let report = match series.fold(&batch).await {
        Ok(r) => r,
        Err(e) => return Answer::Fail(format!("fold: {e}")),
    };
    let mut failed = Vec::new();
    let (mut accepted, mut late) = (0, 0);
    for (i, o) in report.outcomes.iter().enumerate() {
        match o {
            EventOutcome::Failed(_) => failed.push(i as u32),
            EventOutcome::Done(Outcome::Late) => late += 1,
            _ => accepted += 1,
        }
    }
    // positions of the failed events within the delivery
    let failed = match &job.positions {
        None => failed,
        Some(p) => failed
            .iter()
            .filter_map(|&i| p.get(i as usize).copied())
            .collect(),
    };
    Answer::Ack {
        accepted,
        late,
        failed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_round_trip() {
        for job in [
            Job {
                id: 7,
                delivery: 3,
                positions: None,
                abort_at: None,
            },
            Job {
                id: 8,
                delivery: 0,
                positions: Some(vec![4, 0, 2]),
                abort_at: Some(250),
            },
        ] {
            assert_eq!(Job::parse(&job.to_line()), Some(job));
        }
        for a in [
            Answer::Ack {
                accepted: 3,
                late: 1,
                failed: vec![],
            },
            Answer::Ack {
                accepted: 0,
                late: 0,
                failed: vec![5, 1],
            },
            Answer::Fail("store: down\nagain".into()),
        ] {
            let Some((id, back)) = Answer::parse(&a.to_line(9)) else {
                panic!("{a:?} does not parse back")
            };
            assert_eq!(id, 9);
            match (&a, back) {
                (Answer::Fail(_), Answer::Fail(m)) => assert_eq!(m, "store: down again"),
                (_, b) => assert_eq!(b, a),
            }
        }
        assert_eq!(Job::parse("jobs 1 2 -"), None);
        assert_eq!(Job::parse("job 1 2 - abort"), None);
        assert_eq!(Answer::parse("ack 1 x 0 -"), None);
    }
}
