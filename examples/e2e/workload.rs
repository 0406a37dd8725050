//! The workload (deliveries with 1 % redeliveries) and its exact truth.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use shardfold::testkit::SplitMix64;
use shardfold::{Distinct, Event, Insert, Stats};

use crate::fold::Value;
use crate::{MINUTE, Res};

const SPREAD_MS: u64 = 10 * MINUTE;
pub(crate) const USERS: usize = 100_000;
const REDELIVER_MIN: usize = 1_000;
const REDELIVER_SPAN: usize = 19_000;
// workload and exact truth

#[derive(Clone)]
pub(crate) struct Delivery {
    pub(crate) id: String,
    pub(crate) time_ms: u64,
    pub(crate) value: f64,
    pub(crate) user: u64,
}

/// One window of the exact truth: Stats and Distinct fed the deduplicated events in one
/// stream, and the exact distinct users.
#[derive(Default)]
pub(crate) struct TruthWindow {
    pub(crate) stats: Stats,
    pub(crate) users: Distinct,
    pub(crate) exact_users: HashSet<u64>,
}

pub(crate) struct Workload {
    pub(crate) deliveries: Arc<Vec<Delivery>>,
    pub(crate) events: Arc<Vec<Event<Value>>>,
    pub(crate) unique: usize,
    pub(crate) from_ms: u64,
    pub(crate) to_ms: u64,
    pub(crate) truth: BTreeMap<u64, TruthWindow>,
}

pub(crate) fn now_ms() -> u64 {
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

pub(crate) fn workload(n: usize, seed: u64) -> Res<Workload> {
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
    pub(crate) fn count(&self) -> u64 {
        self.truth.values().map(|w| w.stats.count()).sum()
    }

    pub(crate) fn sum(&self) -> f64 {
        self.truth.values().map(|w| w.stats.sum()).sum()
    }
}
