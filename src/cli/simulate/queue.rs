//! The at-least-once queue the coordinator hands jobs out of, and what it learns from the
//! answers: a job not acknowledged (its worker crashed, or the fold failed as a whole) comes
//! back after the visibility timeout, to whichever worker asks first; events a fold reported
//! `Failed` come back as a job of their own.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use super::plan::Plan;
use super::work::{Answer, Job};

/// After this many attempts at one message the run gives up (the store is down, say).
pub(crate) const MAX_ATTEMPTS: u32 = 64;

/// What a worker gets when it asks for work.
#[derive(Debug)]
pub(crate) enum Take {
    /// A job to fold.
    Job(Job),
    /// Nothing visible now; ask again shortly.
    Wait,
    /// Everything is acknowledged.
    Done,
}

/// What became of a job handed out.
#[derive(Debug)]
pub(crate) enum Ending {
    /// The worker answered.
    Answered(Answer),
    /// The worker died (was killed) before answering.
    Crashed,
}

/// Counters of a run, and what the answers said about each event.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    /// Jobs handed to a worker.
    pub sent: u64,
    /// Jobs acknowledged.
    pub acked: u64,
    /// Crashes drawn (some come too late: the worker had answered).
    pub planned_crashes: u64,
    /// Workers that died mid-job.
    pub crashes: u64,
    /// Worker processes started again after one died.
    pub restarts: u64,
    /// Folds that failed as a whole (not acknowledged).
    pub failures: u64,
    /// Events a fold reported `Failed` (redelivered).
    pub failed_events: u64,
    /// Jobs put back in the queue (crashes, failures, failed events).
    pub redeliveries: u64,
    /// Event deliveries sent (each event of each job), on time and late.
    pub sent_on_time: u64,
    /// Late event deliveries sent.
    pub sent_late: u64,
    /// On-time event deliveries an acknowledged fold accepted.
    pub acked_on_time: u64,
    /// Late event deliveries an acknowledged fold reported late.
    pub acked_late: u64,
    /// Answers that disagree with the plan (an on-time event reported late, …).
    pub surprises: u64,
    /// The first few of them, described.
    pub surprise_notes: Vec<String>,
    /// The last whole-fold failure message.
    pub last_failure: Option<String>,
}

/// The queue and the run's counters (kept behind one mutex by the coordinator).
#[derive(Debug)]
pub(crate) struct Queue {
    ready: VecDeque<Job>,
    delayed: Vec<(Instant, Job)>,
    in_flight: usize,
    next_id: u64,
    attempts: BTreeMap<(u32, Option<Vec<u32>>), u32>,
    visibility: Duration,
    /// Counters so far.
    pub counters: Counters,
    /// Per event: an acknowledged fold accepted it (on time) or reported it late.
    pub answered: Vec<bool>,
}

impl Queue {
    /// Every delivery of `plan`, in order, visible now.
    pub(crate) fn new(plan: &Plan, visibility: Duration) -> Self {
        let ready: VecDeque<Job> = (0..plan.deliveries.len() as u32)
            .map(|d| Job {
                id: u64::from(d),
                delivery: d,
                positions: None,
                abort_at: None,
            })
            .collect();
        Queue {
            next_id: ready.len() as u64,
            ready,
            delayed: Vec::new(),
            in_flight: 0,
            attempts: BTreeMap::new(),
            visibility,
            counters: Counters::default(),
            answered: vec![false; plan.events.len()],
        }
    }

    /// The next visible job, if any.
    ///
    /// # Errors
    ///
    /// A message that was attempted [`MAX_ATTEMPTS`] times.
    pub(crate) fn take(&mut self, plan: &Plan) -> Result<Take, String> {
        let now = Instant::now();
        let (due, later): (Vec<_>, Vec<_>) = std::mem::take(&mut self.delayed)
            .into_iter()
            .partition(|(t, _)| *t <= now);
        self.delayed = later;
        self.ready.extend(due.into_iter().map(|(_, j)| j));
        let Some(job) = self.ready.pop_front() else {
            return Ok(if self.in_flight == 0 && self.delayed.is_empty() {
                Take::Done
            } else {
                Take::Wait
            });
        };
        let tries = self
            .attempts
            .entry((job.delivery, job.positions.clone()))
            .or_insert(0);
        *tries += 1;
        if *tries > MAX_ATTEMPTS {
            return Err(format!(
                "delivery {} was not acknowledged after {MAX_ATTEMPTS} attempts (last failure: {})",
                job.delivery,
                self.counters.last_failure.as_deref().unwrap_or("none")
            ));
        }
        self.in_flight += 1;
        let c = &mut self.counters;
        c.sent += 1;
        for e in job.events(plan) {
            if plan.late.get(e as usize).copied().unwrap_or(false) {
                c.sent_late += 1;
            } else {
                c.sent_on_time += 1;
            }
        }
        Ok(Take::Job(job))
    }

    /// Records what became of `job`, and puts back what was not acknowledged.
    pub(crate) fn finish(&mut self, plan: &Plan, job: Job, ending: Ending) {
        self.in_flight = self.in_flight.saturating_sub(1);
        match ending {
            Ending::Crashed => {
                self.counters.crashes += 1;
                self.put_back(job.delivery, job.positions);
            }
            Ending::Answered(Answer::Fail(msg)) => {
                self.counters.failures += 1;
                self.counters.last_failure = Some(msg);
                self.put_back(job.delivery, job.positions);
            }
            Ending::Answered(Answer::Ack {
                accepted,
                late,
                failed,
            }) => {
                self.counters.acked += 1;
                self.acknowledge(plan, &job, accepted, late, &failed);
                if !failed.is_empty() {
                    self.counters.failed_events += failed.len() as u64;
                    self.put_back(job.delivery, Some(failed));
                }
            }
        }
    }

    fn put_back(&mut self, delivery: u32, positions: Option<Vec<u32>>) {
        self.counters.redeliveries += 1;
        let job = Job {
            id: self.next_id,
            delivery,
            positions,
            abort_at: None,
        };
        self.next_id += 1;
        self.delayed.push((Instant::now() + self.visibility, job));
    }

    /// Checks an acknowledgement against the plan (late events late, the rest accepted or
    /// failed) and marks its events answered.
    fn acknowledge(&mut self, plan: &Plan, job: &Job, accepted: u64, late: u64, failed: &[u32]) {
        let all = plan
            .deliveries
            .get(job.delivery as usize)
            .map_or(&[][..], Vec::as_slice);
        let failed_events: Vec<u32> = failed
            .iter()
            .filter_map(|&p| all.get(p as usize).copied())
            .collect();
        let is_late = |e: u32| plan.late.get(e as usize).copied().unwrap_or(false);
        let events = job.events(plan);
        let want_late = events.iter().filter(|&&e| is_late(e)).count() as u64;
        let want_on_time = events.len() as u64 - want_late;
        let mut ok = late == want_late
            && accepted + failed.len() as u64 == want_on_time
            && failed_events.len() == failed.len()
            && failed_events.iter().all(|&e| !is_late(e));
        // an event failed in this job is answered by the job that redelivers it
        let mut skip = failed_events.clone();
        for e in events {
            if let Some(k) = skip.iter().position(|&f| f == e) {
                skip.swap_remove(k);
                continue;
            }
            match self.answered.get_mut(e as usize) {
                Some(a) => *a = true,
                None => ok = false,
            }
        }
        self.counters.acked_late += late;
        self.counters.acked_on_time += accepted;
        if ok {
            return;
        }
        self.counters.surprises += 1;
        if self.counters.surprise_notes.len() < 10 {
            self.counters.surprise_notes.push(format!(
                "job {} (delivery {}): {accepted} accepted, {late} late, {} failed; the plan has \
                 {want_on_time} on time and {want_late} late",
                job.id,
                job.delivery,
                failed.len()
            ));
        }
    }
}
