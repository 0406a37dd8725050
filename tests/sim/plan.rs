//! What a seed decides before anything runs: the metric's layout, the events, their
//! at-least-once deliveries (copies, delays within and beyond the horizon), the number of
//! workers and shards, and how often the store and the workers fail.

use std::time::Duration;

use shardfold::store::RetryPolicy;
use shardfold::store::conformance::FaultPlan;
use shardfold::testkit::SplitMix64;
use shardfold::{Distinct, Event, LogHistogram, Quantiles, Stats, Zip};

/// Per window: count, exact sum, min, max (Stats); a log histogram and a t-digest of the
/// amount; distinct users (HLL).
pub type Agg = Zip<((Stats, LogHistogram, Quantiles), Distinct)>;
/// (amount, user)
pub type Val = (f64, u64);

/// The simulation's epoch on the writers' clock (2027-01-15T08:00:00Z).
pub const T0: u64 = 1_800_000_000_000;
/// Window width (ms of the writers' clock, as every duration below).
pub const WINDOW: u64 = 1_000;
/// Windows per bucket.
pub const BUCKET_WINDOWS: u64 = 2;
/// The dedup horizon H.
pub const HORIZON: u64 = 30_000;
/// The grace G: longer than any fold's appends can take under the injected faults.
pub const GRACE: u64 = 20_000;
/// Retention: longer than a run, so nothing is evicted before the final query.
pub const RETENTION: u64 = 3_600_000;
/// Allowed clock skew.
pub const SKEW: u64 = 1_000;
/// Event times fall in `[T0, T0 + SPAN)`.
pub const SPAN: u64 = 20_000;
/// The queue's visibility timeout: an unacknowledged delivery comes back this long after it
/// was received.
pub const VISIBILITY: u64 = 4_000;

/// How a seed's run is shaped.
#[derive(Debug, Clone)]
pub struct Params {
    pub workers: usize,
    pub shards: u32,
    pub batch: usize,
    /// Probability that an invocation is killed mid-fold.
    pub crash: f64,
    pub faults: FaultPlan,
}

/// One message of the queue: a copy of an event, first visible at `at`.
#[derive(Debug, Clone, Copy)]
pub struct Message {
    pub event: usize,
    pub at: u64,
}

/// A seed's scenario.
#[derive(Debug, Clone)]
pub struct Plan {
    pub seed: u64,
    pub params: Params,
    pub events: Vec<Event<Val>>,
    /// Events every copy of which is delivered after the horizon: must come back Late.
    pub beyond: Vec<bool>,
    pub messages: Vec<Message>,
}

/// The faults of a run, durations in ms of the writers' clock.
fn faults(rng: &mut SplitMix64) -> FaultPlan {
    let heavy = rng.unit() < 0.3;
    FaultPlan {
        fail_before: if heavy { 0.08 } else { 0.03 },
        fail_after: if heavy { 0.08 } else { 0.03 },
        latency: 0.3,
        latency_max: Duration::from_millis(30),
        stall: 0.02,
        stall_max: Duration::from_millis(1_500),
        conflict: 0.1,
        drop_connection: if heavy { 0.01 } else { 0.003 },
        down_max: Duration::from_millis(3_000),
        vanish: 0.0,
    }
}

/// A value that stresses an exact float sum: magnitudes from 10⁻⁶ to 10¹², both signs.
fn amount(rng: &mut SplitMix64) -> f64 {
    let scale = [1e-6, 1.0, 1e3, 1e12][rng.below(4)];
    (rng.unit() - 0.3) * scale
}

/// The scenario of `seed`: `events` events (a small random number when `None`).
pub fn plan(seed: u64, events: Option<usize>) -> Plan {
    let mut rng = SplitMix64::new(seed ^ 0x5348_4152_4446_4f4c);
    let n = events.unwrap_or(20 + rng.below(40));
    let params = Params {
        workers: 2 + rng.below(4),
        shards: 1 + rng.below(4) as u32,
        batch: 2 + rng.below(9),
        crash: [0.0, 0.1, 0.25][rng.below(3)],
        faults: faults(&mut rng),
    };
    let events: Vec<Event<Val>> = (0..n as u64)
        .map(|i| {
            let t = T0 + rng.below(SPAN as usize) as u64;
            Event::new(i, t, (amount(&mut rng), rng.below(40) as u64))
        })
        .collect();
    let mut beyond = vec![false; n];
    let mut messages = Vec::new();
    for (i, e) in events.iter().enumerate() {
        let copies = 1 + usize::from(rng.unit() < 0.3) + usize::from(rng.unit() < 0.1);
        beyond[i] = rng.unit() < 0.08;
        for _ in 0..copies {
            let r = rng.unit();
            let delay = if beyond[i] {
                // past the horizon on any writer's clock
                HORIZON + SKEW + 100 + rng.below(15_000) as u64
            } else if r < 0.15 {
                // late redeliveries, still within the horizon
                HORIZON / 3 + rng.below((HORIZON * 2 / 3 - 5_000) as usize) as u64
            } else {
                rng.below(3_000) as u64
            };
            messages.push(Message {
                event: i,
                at: e.time_ms + delay,
            });
        }
    }
    Plan {
        seed,
        params,
        events,
        beyond,
        messages,
    }
}

/// Retries: few and quick, so a dropped connection outlasts them and folds come back
/// Failed; the fold deadline (half the grace on the writers' clock, run `speed` times faster
/// than tokio's) keeps every fold's appends within the grace.
pub fn policy(speed: u32) -> RetryPolicy {
    RetryPolicy {
        max_attempts: 4,
        base_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(20),
        deadline: Duration::from_millis(GRACE / 2 / u64::from(speed)),
    }
}
