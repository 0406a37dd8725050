//! The scenario of a run, rebuilt identically by the coordinator and by every worker process
//! from the same [`Scenario`]: the event stream and the deliveries (batches, copies, strays).

use crate::{Distinct, Event, Stats, Zip};

/// The aggregate every window keeps: count, exact sum, min, max — and distinct items.
pub(crate) type Agg = Zip<(Stats, Distinct)>;

/// An event's value: the number folded into [`Stats`], the item counted by [`Distinct`].
pub(crate) type Val = (f64, u64);

/// Values are multiples of `1 / SCALE` (a power of two), so the exact sum is an integer
/// number of units and its correctly rounded `f64` is computed without shardfold.
pub(crate) const SCALE: f64 = 1024.0;

/// What determines a run: everything the events and deliveries are generated from.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Scenario {
    /// The seed of every random draw.
    pub seed: u64,
    /// The clock reading the event times are relative to (ms since the epoch).
    pub t0_ms: u64,
    /// Distinct events generated.
    pub events: u64,
    /// Events per batch.
    pub batch: u64,
    /// Probability that a batch is delivered again (whole or partly, reordered), and half of
    /// it that one of its events is also slipped into another batch.
    pub dup_rate: f64,
    /// Largest lateness of an event time behind `t0_ms`.
    pub max_delay_ms: u64,
    /// The series' dedup horizon.
    pub horizon_ms: u64,
}

impl Scenario {
    /// Half-width of the band around the horizon no event time falls in: an event is either
    /// surely on time for the whole run (if the run lasts less than this) or surely late.
    pub(crate) fn margin_ms(&self) -> u64 {
        (self.horizon_ms / 4).min(10 * 60_000)
    }
}

/// The generated stream and its deliveries.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    /// Event `i` has ID `i`.
    pub events: Vec<Event<Val>>,
    /// Whether event `i` is older than the horizon (refused as late by every delivery).
    pub late: Vec<bool>,
    /// The deliveries in queue order: each a list of event indexes.
    pub deliveries: Vec<Vec<u32>>,
    /// How many of `deliveries` are the original batches (the rest are copies).
    pub batches: usize,
}

/// SplitMix64: a tiny, fast, well-mixed generator (Steele, Lea, Flood 2014).
#[derive(Debug, Clone)]
pub(crate) struct Rng(u64);

impl Rng {
    /// A generator for `seed` and stream `stream` (independent streams of one seed).
    pub(crate) fn new(seed: u64, stream: u64) -> Self {
        let mut r = Rng(seed ^ stream.wrapping_mul(0xD1B5_4A32_D192_ED03));
        r.next_u64();
        r
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (0 when `n` is 0).
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// Uniform in `[0, 1)`.
    pub(crate) fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    pub(crate) fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            let j = self.below(i as u64 + 1) as usize;
            v.swap(i, j);
        }
    }
}

/// Builds the plan of `s` (pure: the same scenario always gives the same plan).
pub(crate) fn plan(s: &Scenario) -> Plan {
    let (events, late) = generate(s);
    let batches: Vec<Vec<u32>> = (0..events.len() as u32)
        .collect::<Vec<_>>()
        .chunks(s.batch.max(1) as usize)
        .map(<[u32]>::to_vec)
        .collect();
    let n = batches.len();
    Plan {
        events,
        late,
        deliveries: redeliveries(s, batches),
        batches: n,
    }
}

/// Event `i`: time `t0 − delay` (delay uniform in `0..=max_delay`, kept out of the band of
/// [`Scenario::margin_ms`] around the horizon), value a signed multiple of `1/SCALE` up to
/// about ±3.4e10, item one of `events / 3`.
fn generate(s: &Scenario) -> (Vec<Event<Val>>, Vec<bool>) {
    let mut rng = Rng::new(s.seed, 1);
    let (h, m) = (s.horizon_ms, s.margin_ms());
    let items = (s.events / 3).max(1);
    let mut events = Vec::with_capacity(s.events as usize);
    let mut late = Vec::with_capacity(s.events as usize);
    for i in 0..s.events {
        let mut delay = rng.below(s.max_delay_ms.saturating_add(1));
        if delay > h.saturating_sub(m) && delay <= h.saturating_add(m) {
            delay = if delay <= h {
                h.saturating_sub(m)
            } else {
                h.saturating_add(m) + 1
            };
        }
        let units = (rng.next_u64() as i64) >> 18;
        let value = units as f64 / SCALE;
        let item = rng.below(items);
        events.push(Event::new(i, s.t0_ms.saturating_sub(delay), (value, item)));
        late.push(delay > h);
    }
    (events, late)
}

/// At-least-once delivery: every batch once, and with probability `dup_rate` a copy (whole,
/// or about half of its events), reordered, placed later in the queue; with probability
/// `dup_rate / 2` one event of another batch slipped into a batch.
fn redeliveries(s: &Scenario, mut batches: Vec<Vec<u32>>) -> Vec<Vec<u32>> {
    let mut rng = Rng::new(s.seed, 2);
    let n = batches.len();
    for i in 0..n {
        if n > 1 && rng.unit() < s.dup_rate / 2.0 {
            let other = rng.below(n as u64) as usize;
            let len = batches.get(other).map_or(0, Vec::len) as u64;
            let stray = batches
                .get(other)
                .and_then(|b| b.get(rng.below(len) as usize))
                .copied();
            if let (Some(e), Some(b)) = (stray, batches.get_mut(i)) {
                b.push(e);
            }
        }
    }
    let mut order = batches.clone();
    for (i, b) in batches.iter().enumerate() {
        if rng.unit() >= s.dup_rate {
            continue;
        }
        let mut copy: Vec<u32> = if rng.unit() < 0.5 {
            b.clone()
        } else {
            b.iter().copied().filter(|_| rng.unit() < 0.5).collect()
        };
        if copy.is_empty() {
            continue;
        }
        rng.shuffle(&mut copy);
        let at = i + 1 + rng.below((order.len() - i) as u64) as usize;
        order.insert(at.min(order.len()), copy);
    }
    order
}
