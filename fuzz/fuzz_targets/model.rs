//! Structure-aware: random operation sequences checked step by step against a simple model,
//! as redb's `fuzz_redb.rs` does.
//!
//! * **Windows**: events (IDs, event times, values) routed by ID class to three
//!   `Windowed<(Count, SumF64)>` replicas — as write shards are — whose states are merged
//!   (mutating, or all at query time in two orders), encoded and decoded; after every step
//!   each replica's outcome (folded, duplicate, late), counters and per-window count and sum
//!   equal those of a model: a `BTreeMap` of folded `(window, ID)` pairs and exact integer sums.
//! * **Store**: batches folded through a `Metric<Deduped<(Count, SumF64)>>` over a memory store
//!   whose calls fail after a countdown (before the call reaches the store, or after a write
//!   landed, its reply lost). Every event's reported outcome must agree with a model of the
//!   IDs folded and the IDs whose fold failed (landed or not); after redelivering every failed
//!   event, the count and exact sum equal those of the distinct IDs delivered.
//!
//! Run: `cargo +nightly fuzz run model -- -max_total_time=60`.
#![no_main]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use shardfold::store::{
    EventOutcome, KvStore, MemoryStore, Metric, RetryPolicy, StoreFuture, Version, WriteOutcome,
};
use shardfold::{Count, Deduped, Error, Event, EventId, Merge, Outcome, SumF64, Windowed, codec};

#[derive(Arbitrary, Debug)]
struct Input {
    windows: Vec<WinOp>,
    store: Vec<StoreOp>,
}

/// An event time: near the epoch, or near the end of time (slot and window indexes near
/// `u64::MAX`).
#[derive(Arbitrary, Debug, Clone, Copy)]
enum Time {
    Near(u16),
    Far(u8),
}

impl Time {
    fn ms(self) -> u64 {
        match self {
            Time::Near(t) => u64::from(t),
            Time::Far(t) => u64::MAX - u64::from(t),
        }
    }
}

#[derive(Arbitrary, Debug)]
enum WinOp {
    /// Offer an event to the replica its ID class routes to; `nan` offers a refused value.
    Insert {
        id: u8,
        time: Time,
        value: i16,
        nan: bool,
    },
    /// Merge replica `from` into `into`, then empty `from` (its ID classes go to `into`).
    MergeInto { from: u8, into: u8 },
    /// Merge all replicas into a new state, in two orders: equal bytes, equal to the model.
    QueryAll,
    /// Encode a replica, decode it and carry on with the decoded state.
    RoundTrip { replica: u8 },
}

#[derive(Arbitrary, Debug)]
enum StoreOp {
    /// Fold a batch of event IDs (value and time follow from the ID); the store call number
    /// `fail_at` (if any) fails, after reaching the store when `after`.
    Fold {
        ids: Vec<u8>,
        fail_at: Option<u8>,
        after: bool,
    },
    /// Query (no failures): the count and sum must lie between what surely and what possibly
    /// landed, and equal it when nothing is in doubt.
    Query,
}

// ---------------------------------------------------------------- windows

const WIDTH: u64 = 64;
const LATENESS: u64 = 256;
const RETENTION: u64 = 1024;
const REPLICAS: usize = 3;

type W = Windowed<(Count, SumF64)>;

fn new_replica() -> W {
    Windowed::new(WIDTH, LATENESS, RETENTION)
}

/// What one replica must hold.
#[derive(Debug, Clone, Default)]
struct WinModel {
    latest: Option<u64>,
    folded: BTreeSet<(u64, u8)>,
    /// window index → (count, exact sum)
    windows: BTreeMap<u64, (u64, i64)>,
    duplicates: u64,
    late: u64,
}

impl WinModel {
    fn first_open(&self) -> u64 {
        self.latest
            .map_or(0, |t| t.saturating_sub(LATENESS) / WIDTH)
    }

    fn first_kept(&self) -> u64 {
        self.latest
            .map_or(0, |t| t.saturating_sub(RETENTION) / WIDTH)
    }

    fn outcome(&self, id: u8, t: u64) -> Outcome {
        let k = t / WIDTH;
        if k < self.first_open() {
            Outcome::Late
        } else if self.folded.contains(&(k, id)) {
            Outcome::Duplicate
        } else {
            Outcome::Folded
        }
    }

    fn apply(&mut self, id: u8, t: u64, value: i16, outcome: Outcome) {
        match outcome {
            Outcome::Late => self.late += 1,
            Outcome::Duplicate => self.duplicates += 1,
            _ => {
                let k = t / WIDTH;
                self.folded.insert((k, id));
                let w = self.windows.entry(k).or_default();
                w.0 += 1;
                w.1 += i64::from(value);
                self.latest = self.latest.max(Some(t));
            }
        }
    }

    fn merge(&mut self, other: &WinModel) {
        self.latest = self.latest.max(other.latest);
        self.folded.extend(other.folded.iter().copied());
        for (k, (c, s)) in &other.windows {
            let w = self.windows.entry(*k).or_default();
            w.0 += c;
            w.1 += s;
        }
        self.duplicates += other.duplicates;
        self.late += other.late;
    }

    /// The state holds exactly the model's kept windows, counters and latest time.
    fn verify(&self, w: &W) {
        assert_eq!(w.latest_event_time(), self.latest, "latest event time");
        assert_eq!(
            (w.duplicates(), w.late()),
            (self.duplicates, self.late),
            "counters"
        );
        let kept: Vec<_> = self.windows.range(self.first_kept()..).collect();
        assert_eq!(
            w.window_count(),
            kept.len(),
            "windows held: {:?}",
            w.windows().map(|x| x.0).collect::<Vec<_>>()
        );
        for (k, (count, sum)) in kept {
            let a = w.window(k * WIDTH).expect("a kept window is missing");
            assert_eq!(a.0.get(), *count, "count of window {k}");
            assert_eq!(a.1.value(), *sum as f64, "sum of window {k}");
        }
    }
}

struct Windows {
    states: Vec<W>,
    models: Vec<WinModel>,
    /// ID class (`id % REPLICAS`) → replica
    route: [usize; REPLICAS],
}

impl Windows {
    fn new() -> Self {
        Windows {
            states: (0..REPLICAS).map(|_| new_replica()).collect(),
            models: vec![WinModel::default(); REPLICAS],
            route: [0, 1, 2],
        }
    }

    fn step(&mut self, op: &WinOp) {
        match *op {
            WinOp::Insert {
                id,
                time,
                value,
                nan,
            } => self.insert(id, time.ms(), value, nan),
            WinOp::MergeInto { from, into } => {
                let (from, into) = (usize::from(from) % REPLICAS, usize::from(into) % REPLICAS);
                if from == into {
                    return;
                }
                let source = std::mem::replace(&mut self.states[from], new_replica());
                self.states[into]
                    .merge(&source)
                    .expect("disjoint replicas must merge");
                let model = std::mem::take(&mut self.models[from]);
                self.models[into].merge(&model);
                for r in &mut self.route {
                    if *r == from {
                        *r = into;
                    }
                }
                self.models[into].verify(&self.states[into]);
            }
            WinOp::QueryAll => self.query_all(),
            WinOp::RoundTrip { replica } => {
                let r = usize::from(replica) % REPLICAS;
                let bytes = codec::encode(&self.states[r]);
                let back: W = codec::decode(&bytes).expect("an encoded state must decode");
                assert_eq!(codec::encode(&back), bytes, "re-encoding changed the bytes");
                self.models[r].verify(&back);
                self.states[r] = back;
            }
        }
    }

    fn insert(&mut self, id: u8, t: u64, value: i16, nan: bool) {
        let r = self.route[usize::from(id) % REPLICAS];
        let (state, model) = (&mut self.states[r], &mut self.models[r]);
        let expected = model.outcome(id, t);
        assert_eq!(
            state.check(EventId::from(u64::from(id)), t),
            expected,
            "check"
        );
        let v = if nan { f64::NAN } else { f64::from(value) };
        let got = state.insert(EventId::from(u64::from(id)), t, v);
        if nan && expected == Outcome::Folded {
            assert!(got.is_err(), "a NaN was folded");
        } else {
            assert_eq!(
                got.expect("a valid event must be offered"),
                expected,
                "outcome"
            );
            model.apply(id, t, value, expected);
        }
        model.verify(state);
    }

    fn query_all(&self) {
        let mut forward = new_replica();
        let mut model = WinModel::default();
        for (s, m) in self.states.iter().zip(&self.models) {
            forward.merge(s).expect("disjoint replicas must merge");
            model.merge(m);
        }
        let mut backward = new_replica();
        for s in self.states.iter().rev() {
            backward.merge(s).expect("disjoint replicas must merge");
        }
        assert_eq!(
            codec::encode(&forward),
            codec::encode(&backward),
            "merge order matters"
        );
        model.verify(&forward);
    }
}

// ---------------------------------------------------------------- store

/// A memory store whose call number `countdown` fails (before reaching the store, or after
/// when `after`); a negative countdown fails nothing.
struct Failing {
    inner: MemoryStore,
    countdown: AtomicI64,
    after: AtomicBool,
}

impl Failing {
    fn arm(&self, fail_at: Option<u8>, after: bool) {
        self.countdown
            .store(fail_at.map_or(-1, i64::from), Ordering::SeqCst);
        self.after.store(after, Ordering::SeqCst);
    }

    /// Runs `call`, failing it when the countdown reaches zero.
    fn guard<'a, T: Send + 'a>(&'a self, call: StoreFuture<'a, T>) -> StoreFuture<'a, T> {
        let fire = self.countdown.fetch_sub(1, Ordering::SeqCst) == 0;
        let after = self.after.load(Ordering::SeqCst);
        Box::pin(async move {
            let injected = Error::NotImplemented {
                backend: "failing",
                operation: "injected",
            };
            match (fire, after) {
                (false, _) => call.await,
                (true, false) => Err(injected),
                (true, true) => call.await.and(Err(injected)),
            }
        })
    }
}

impl KvStore for Failing {
    fn backend(&self) -> &'static str {
        "failing"
    }

    fn read<'a>(&'a self, key: &'a [u8]) -> StoreFuture<'a, Option<(Vec<u8>, Version)>> {
        self.guard(self.inner.read(key))
    }

    fn create<'a>(&'a self, key: &'a [u8], value: &'a [u8]) -> StoreFuture<'a, WriteOutcome> {
        self.guard(self.inner.create(key, value))
    }

    fn update<'a>(
        &'a self,
        key: &'a [u8],
        value: &'a [u8],
        expected: Version,
    ) -> StoreFuture<'a, WriteOutcome> {
        self.guard(self.inner.update(key, value, expected))
    }

    fn list<'a>(&'a self, prefix: &'a [u8]) -> StoreFuture<'a, Vec<Vec<u8>>> {
        self.guard(self.inner.list(prefix))
    }

    fn delete<'a>(&'a self, key: &'a [u8]) -> StoreFuture<'a, bool> {
        self.guard(self.inner.delete(key))
    }
}

type D = Deduped<(Count, SumF64)>;

fn value_of(id: u8) -> i64 {
    i64::from(id) * 7 - 900
}

fn event(id: u8) -> Event<f64> {
    Event::new(
        u64::from(id),
        1_800_000_000_000 + u64::from(id) * 1000,
        value_of(id) as f64,
    )
}

struct StoreModel {
    /// IDs surely folded once.
    folded: BTreeSet<u8>,
    /// IDs whose fold failed: folded once or not at all.
    doubtful: BTreeSet<u8>,
}

impl StoreModel {
    fn judge(&mut self, id: u8, outcome: &EventOutcome) {
        match outcome {
            EventOutcome::Done(Outcome::Folded) => {
                assert!(!self.folded.contains(&id), "event {id} folded twice");
                self.doubtful.remove(&id);
                self.folded.insert(id);
            }
            EventOutcome::Done(Outcome::Duplicate) => {
                assert!(
                    self.folded.contains(&id) || self.doubtful.remove(&id),
                    "event {id} called a duplicate but never folded"
                );
                self.folded.insert(id);
            }
            EventOutcome::Failed(_) => {
                if !self.folded.contains(&id) {
                    self.doubtful.insert(id);
                }
            }
            other => panic!("event {id}: unexpected {other:?}"),
        }
    }

    fn verify(&self, state: &D) {
        let (count, sum) = (state.aggregate().0.get(), state.aggregate().1.value());
        let sure: i64 = self.folded.iter().map(|&i| value_of(i)).sum();
        let n = self.folded.len() as u64;
        assert!(
            count >= n && count <= n + self.doubtful.len() as u64,
            "count {count}"
        );
        if self.doubtful.is_empty() {
            assert_eq!((count, sum), (n, sure as f64), "count and exact sum");
        }
    }
}

static RUNTIME: LazyLock<tokio::runtime::Runtime> = LazyLock::new(|| {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a runtime")
});

async fn run_store(ops: &[StoreOp]) {
    let store = Arc::new(Failing {
        inner: MemoryStore::new(),
        countdown: AtomicI64::new(-1),
        after: AtomicBool::new(false),
    });
    let mut policy = RetryPolicy::default();
    policy.max_attempts = 3;
    policy.base_delay = Duration::ZERO;
    policy.max_delay = Duration::ZERO;
    let metric = Metric::builder(store.clone() as Arc<dyn KvStore>, "m")
        .shards(2)
        .retry(policy)
        .template(D::new(86_400_000, 60_000, Default::default()))
        .open()
        .await
        .expect("open");
    let mut model = StoreModel {
        folded: BTreeSet::new(),
        doubtful: BTreeSet::new(),
    };
    for op in ops.iter().take(32) {
        match op {
            StoreOp::Fold {
                ids,
                fail_at,
                after,
            } => {
                let ids: Vec<u8> = ids.iter().copied().take(64).collect();
                store.arm(*fail_at, *after);
                let events: Vec<_> = ids.iter().map(|&i| event(i)).collect();
                // an error for the whole batch fails every event of it
                let outcomes = match metric.fold(&events).await {
                    Ok(report) => report.outcomes,
                    Err(e) => vec![EventOutcome::Failed(e); ids.len()],
                };
                assert_eq!(outcomes.len(), ids.len());
                for (id, o) in ids.iter().zip(&outcomes) {
                    model.judge(*id, o);
                }
            }
            StoreOp::Query => {
                store.arm(None, false);
                model.verify(&metric.query().await.expect("query"));
            }
        }
    }
    // redeliver every event in doubt, without failures: then all is exact
    store.arm(None, false);
    let doubtful: Vec<_> = model.doubtful.iter().map(|&i| event(i)).collect();
    let ids: Vec<u8> = model.doubtful.iter().copied().collect();
    let report = metric.fold(&doubtful).await.expect("fold");
    for (id, o) in ids.iter().zip(&report.outcomes) {
        model.judge(*id, o);
    }
    assert!(
        model.doubtful.is_empty(),
        "redelivery without failures failed"
    );
    model.verify(&metric.query().await.expect("query"));
}

fuzz_target!(|input: Input| {
    let mut windows = Windows::new();
    for op in input.windows.iter().take(128) {
        windows.step(op);
    }
    windows.query_all();
    RUNTIME.block_on(run_store(&input.store));
});
