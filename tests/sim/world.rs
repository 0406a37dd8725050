//! One simulated run: stateless workers (each invocation opens its own `Series` handle) take
//! batches from an at-least-once queue and fold them through a fault-injecting store, a
//! maintainer runs sweeps and compactions beside them, invocations are killed mid-fold at
//! random await points, and the writers' `ManualClock` follows tokio's clock (virtual when
//! paused), `speed` times faster.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use shardfold::store::conformance::{FaultPlan, FaultStore};
use shardfold::store::{
    Clock, EventOutcome, FoldReport, KvStore, ManualClock, Series, SeriesConfig, SeriesView,
};
use shardfold::testkit::SplitMix64;
use shardfold::{Event, Outcome, Result};

use super::plan::*;

/// What one delivery of an event came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen {
    Accepted,
    Late,
    /// Reported `Failed` (or the whole invocation failed): nacked, redelivered.
    Failed,
    /// The invocation was killed before it answered: redelivered after the visibility timeout.
    Crashed,
}

/// The at-least-once queue: a message is invisible for [`VISIBILITY`] after each receive,
/// until acknowledged; a batch is a random choice among the visible messages (reordering).
struct Queue {
    visible: Vec<u64>,
    acked: Vec<bool>,
    left: usize,
}

impl Queue {
    fn new(plan: &Plan) -> Self {
        Queue {
            visible: plan.messages.iter().map(|m| m.at).collect(),
            acked: vec![false; plan.messages.len()],
            left: plan.messages.len(),
        }
    }

    fn receive(&mut self, now: u64, max: usize, rng: &mut SplitMix64) -> Vec<usize> {
        let mut ready: Vec<usize> = (0..self.visible.len())
            .filter(|&i| !self.acked[i] && self.visible[i] <= now)
            .collect();
        rng.shuffle(&mut ready);
        ready.truncate(max);
        for &i in &ready {
            self.visible[i] = now + VISIBILITY;
        }
        ready
    }

    fn ack(&mut self, i: usize) {
        if !self.acked[i] {
            self.acked[i] = true;
            self.left -= 1;
        }
    }

    fn nack(&mut self, i: usize, at: u64) {
        if !self.acked[i] {
            self.visible[i] = at;
        }
    }
}

/// Counters of a run.
#[derive(Debug, Default, Clone, Copy)]
pub struct RunStats {
    pub invocations: u64,
    pub crashes: u64,
    pub invocation_errors: u64,
    pub sweeps: u64,
    pub sweep_errors: u64,
    pub sweep_crashes: u64,
}

/// A run's shared world (one thread: a current-thread runtime and a `LocalSet`).
pub struct World {
    pub plan: Plan,
    pub faults: Arc<FaultStore>,
    store: Arc<dyn KvStore>,
    pub name: String,
    clock: ManualClock,
    speed: u32,
    start: tokio::time::Instant,
    queue: RefCell<Queue>,
    /// Per event, each delivery's fate.
    pub seen: RefCell<Vec<Vec<Seen>>>,
    pub stats: RefCell<RunStats>,
    stop: Cell<bool>,
    pub stuck: Cell<bool>,
}

/// `plan`'s durations (ms of the writers' clock) on tokio's clock.
fn scaled(p: FaultPlan, speed: u32) -> FaultPlan {
    FaultPlan {
        latency_max: p.latency_max / speed,
        stall_max: p.stall_max / speed,
        down_max: p.down_max / speed,
        ..p
    }
}

impl World {
    pub fn new(plan: Plan, inner: Arc<dyn KvStore>, name: String, speed: u32) -> Rc<Self> {
        let faults = Arc::new(FaultStore::new(
            inner,
            scaled(plan.params.faults, speed),
            plan.seed,
        ));
        faults.set_enabled(false);
        let n = plan.events.len();
        Rc::new(World {
            queue: RefCell::new(Queue::new(&plan)),
            plan,
            store: faults.clone(),
            faults,
            name,
            clock: ManualClock::new(T0),
            speed,
            start: tokio::time::Instant::now(),
            seen: RefCell::new(vec![Vec::new(); n]),
            stats: RefCell::new(RunStats::default()),
            stop: Cell::new(false),
            stuck: Cell::new(false),
        })
    }

    pub fn config(&self) -> SeriesConfig<Agg> {
        SeriesConfig::new(Agg::default())
            .window(Duration::from_millis(WINDOW))
            .bucket_windows(BUCKET_WINDOWS)
            .horizon(Duration::from_millis(HORIZON))
            .grace(Duration::from_millis(GRACE))
            .retention(Duration::from_millis(RETENTION))
            .max_skew(Duration::from_millis(SKEW))
            .shards(self.plan.params.shards)
            .compact_every(2)
            .retry(policy(self.speed))
            .clock(Arc::new(self.clock.clone()))
    }

    pub async fn open(&self) -> Result<Series<Agg, Val>> {
        Series::open(self.store.clone(), &self.name, self.config()).await
    }

    /// The writers' clock now (tokio's elapsed time, `speed` times faster, from [`T0`]).
    fn now(&self) -> u64 {
        let ms = self.start.elapsed().as_millis() as u64;
        T0 + ms * u64::from(self.speed)
    }

    /// Sleeps `ms` of the writers' clock.
    async fn pause(&self, ms: u64) {
        tokio::time::sleep(Duration::from_millis(ms) / self.speed).await;
    }

    /// Runs `job`, or drops it (a killed process) after `crash_at` ms: `None` then.
    async fn maybe_crash<T>(
        &self,
        job: impl Future<Output = T>,
        crash_at: Option<u64>,
    ) -> Option<T> {
        match crash_at {
            None => Some(job.await),
            Some(ms) => tokio::select! {
                biased;
                out = job => Some(out),
                () = self.pause(ms) => None,
            },
        }
    }

    async fn invoke(
        &self,
        events: &[Event<Val>],
        crash_at: Option<u64>,
    ) -> Option<Result<FoldReport>> {
        let job = async {
            let series = self.open().await?;
            series.fold(events).await
        };
        self.maybe_crash(job, crash_at).await
    }

    /// Records what each delivery came to; acks what is done, nacks what failed.
    fn settle(&self, msgs: &[usize], result: Option<Result<FoldReport>>, rng: &mut SplitMix64) {
        let now = self.clock.now_ms();
        let mut queue = self.queue.borrow_mut();
        let mut seen = self.seen.borrow_mut();
        let mut stats = self.stats.borrow_mut();
        stats.invocations += 1;
        let event = |m: usize| self.plan.messages[m].event;
        match result {
            None => {
                stats.crashes += 1;
                msgs.iter()
                    .for_each(|&m| seen[event(m)].push(Seen::Crashed));
            }
            Some(Err(_)) => {
                stats.invocation_errors += 1;
                for &m in msgs {
                    seen[event(m)].push(Seen::Failed);
                    queue.nack(m, now + 200 + rng.below(800) as u64);
                }
            }
            Some(Ok(report)) => {
                assert_eq!(report.outcomes.len(), msgs.len(), "one outcome per event");
                for (&m, outcome) in msgs.iter().zip(&report.outcomes) {
                    let fate = match outcome {
                        EventOutcome::Accepted => Seen::Accepted,
                        EventOutcome::Done(Outcome::Late) => Seen::Late,
                        EventOutcome::Failed(_) => Seen::Failed,
                        other => {
                            panic!("a Series fold reports Accepted, Late or Failed: {other:?}")
                        }
                    };
                    seen[event(m)].push(fate);
                    if fate == Seen::Failed {
                        queue.nack(m, now + 200 + rng.below(800) as u64);
                    } else {
                        queue.ack(m);
                    }
                }
            }
        }
    }

    async fn worker(self: Rc<Self>, w: usize) {
        let mut rng =
            SplitMix64::new(self.plan.seed ^ (w as u64 + 1).wrapping_mul(0xA24B_AED4_963E_E407));
        while !self.stop.get() {
            self.pause(10 + rng.below(60) as u64).await;
            let now = self.clock.now_ms();
            let msgs = self
                .queue
                .borrow_mut()
                .receive(now, self.plan.params.batch, &mut rng);
            if msgs.is_empty() {
                continue;
            }
            let events: Vec<Event<Val>> = msgs
                .iter()
                .map(|&m| self.plan.events[self.plan.messages[m].event].clone())
                .collect();
            let crash_at = (rng.unit() < self.plan.params.crash).then(|| rng.below(80) as u64);
            let result = self.invoke(&events, crash_at).await;
            self.settle(&msgs, result, &mut rng);
        }
    }

    /// Sweeps and compactions racing the writers, sometimes killed too.
    async fn maintainer(self: Rc<Self>) {
        let mut rng = SplitMix64::new(self.plan.seed ^ 0x6D61_696E_7461_696E);
        let bucket_ms = WINDOW * BUCKET_WINDOWS;
        while !self.stop.get() {
            self.pause(300 + rng.below(1_500) as u64).await;
            let crash_at = (rng.unit() < 0.2).then(|| rng.below(60) as u64);
            let sweep = rng.unit() < 0.5;
            let bucket = (T0 + rng.below((SPAN + bucket_ms) as usize) as u64) / bucket_ms;
            let job = async {
                let series = self.open().await?;
                if sweep {
                    series.maintain().await.map(drop)
                } else {
                    series.compact_bucket(bucket).await.map(drop)
                }
            };
            let out = self.maybe_crash(job, crash_at).await;
            let mut stats = self.stats.borrow_mut();
            stats.sweeps += 1;
            match out {
                None => stats.sweep_crashes += 1,
                Some(Err(_)) => stats.sweep_errors += 1,
                Some(Ok(())) => {}
            }
        }
    }

    /// Moves the writers' clock with tokio's; stops the run once the queue is drained (or
    /// after an hour of the writers' clock: stuck).
    async fn ticker(self: Rc<Self>) {
        loop {
            self.pause(40).await;
            self.clock.set(self.now());
            if self.queue.borrow().left == 0 {
                break;
            }
            if self.now() > T0 + 3_600_000 {
                self.stuck.set(true);
                break;
            }
        }
        self.stop.set(true);
    }

    /// Runs the simulation until the queue drains and every task has returned.
    pub async fn run(self: &Rc<Self>) {
        // the series exists before the faults start (its creation is tested elsewhere)
        self.open().await.expect("create the series");
        self.faults.set_enabled(true);
        let mut tasks = vec![
            tokio::task::spawn_local(self.clone().ticker()),
            tokio::task::spawn_local(self.clone().maintainer()),
        ];
        for w in 0..self.plan.params.workers {
            tasks.push(tokio::task::spawn_local(self.clone().worker(w)));
        }
        for t in tasks {
            t.await.expect("simulated task panicked");
        }
        // writes sent by killed invocations run to their end (as on a server)
        self.pause(5_000).await;
        self.faults.set_enabled(false);
    }

    /// After the run, without faults: compacts every bucket, sweeps, and reads every
    /// retained window.
    pub async fn settle_and_query(&self) -> SeriesView<Agg> {
        let series = self.open().await.expect("open");
        let now = self.clock.now_ms();
        let bucket_ms = WINDOW * BUCKET_WINDOWS;
        series
            .compact_range(T0 - bucket_ms, now + SKEW + bucket_ms)
            .await
            .expect("final compaction");
        series.maintain().await.expect("final sweep");
        series.query().await.expect("final query")
    }
}
