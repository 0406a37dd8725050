//! A fault-injecting [`KvStore`] wrapper driven by a seed: errors before a write, errors
//! after a write that landed (a lost reply), added latency, bounded stalls, forced conflicts,
//! dropped connections and, when asked, keys that vanish — with a log of every write that
//! reached the wrapped store, so a simulation's oracle knows what landed.
//!
//! Every fault keeps the [`KvStore`] contract a real backend keeps: an error may hide a write
//! that landed, but a `Conflict` is only ever the truth. A forced conflict is made real — the
//! wrapper rewrites the key's current bytes first (as a concurrent writer that changed
//! nothing would), so the caller's compare-and-set genuinely fails.
//!
//! Latency and stalls sleep on tokio's clock, so under a paused runtime
//! (`tokio::time::pause`) a simulation spends no real time on them.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use crate::error::{Error, StoreErrorKind};
use crate::store::{KvStore, StoreFuture, Version, WriteOutcome};
use crate::testkit::SplitMix64;

/// How often each fault fires, per call (probabilities in `[0, 1]`), and how long the timed
/// ones last. [`Default`] injects nothing.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct FaultPlan {
    /// A call fails before reaching the store.
    pub fail_before: f64,
    /// A call reaches the store (a write lands), then fails: the reply is lost.
    pub fail_after: f64,
    /// A call is delayed by up to [`latency_max`](Self::latency_max) (before or after it
    /// reaches the store).
    pub latency: f64,
    /// The longest added latency.
    pub latency_max: Duration,
    /// A call stalls for up to [`stall_max`](Self::stall_max) before reaching the store.
    pub stall: f64,
    /// The longest stall.
    pub stall_max: Duration,
    /// An `update` meets a concurrent rewrite of the key (same bytes, new version) and so
    /// conflicts.
    pub conflict: f64,
    /// The connection drops: this call and every call for up to
    /// [`down_max`](Self::down_max) after it fail before reaching the store.
    pub drop_connection: f64,
    /// The longest time the connection stays down.
    pub down_max: Duration,
    /// The key of this call is deleted before the call (evicted, flushed): data loss the
    /// layout must detect or report. Keep it 0 in runs that check exactness.
    pub vanish: f64,
}

/// How many faults of each kind a [`FaultStore`] injected.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FaultCounts {
    /// Calls made to the wrapper.
    pub calls: u64,
    /// Calls failed before reaching the store (including while the connection was down).
    pub failed_before: u64,
    /// Calls that reached the store and then failed (writes among them landed).
    pub failed_after: u64,
    /// Writes that landed but whose reply was lost.
    pub lost_replies: u64,
    /// Calls delayed.
    pub delayed: u64,
    /// Calls stalled.
    pub stalled: u64,
    /// Updates made to conflict by a concurrent rewrite.
    pub conflicts: u64,
    /// Connection drops.
    pub drops: u64,
    /// Keys deleted by the wrapper.
    pub vanished: u64,
}

/// One call's fate, drawn when it starts.
#[derive(Debug, Clone, Copy, Default)]
struct Fate {
    down: bool,
    fail_before: bool,
    fail_after: bool,
    conflict: bool,
    vanish: bool,
    delay_before: Duration,
    delay_after: Duration,
}

struct State {
    rng: SplitMix64,
    counts: FaultCounts,
    down_until: Option<tokio::time::Instant>,
}

/// The writes the wrapped store applied.
type Log = Arc<Mutex<Vec<(Vec<u8>, Vec<u8>)>>>;

/// Wraps a store and injects the faults of a [`FaultPlan`], drawn from a seeded generator.
/// [`set_enabled(false)`](Self::set_enabled) lets every call through untouched (to check the
/// final state). Every write that reached the wrapped store and was applied (whatever the
/// caller was told) is logged: see [`landed`](Self::landed).
pub struct FaultStore {
    inner: Arc<dyn KvStore>,
    plan: FaultPlan,
    enabled: AtomicBool,
    state: Mutex<State>,
    log: Log,
}

impl FaultStore {
    /// Wraps `inner`; faults follow `plan`, drawn from `seed`.
    pub fn new(inner: Arc<dyn KvStore>, plan: FaultPlan, seed: u64) -> Self {
        FaultStore {
            inner,
            plan,
            enabled: AtomicBool::new(true),
            state: Mutex::new(State {
                rng: SplitMix64::new(seed),
                counts: FaultCounts::default(),
                down_until: None,
            }),
            log: Log::default(),
        }
    }

    /// Turns injection on or off (the landing log is kept either way).
    pub fn set_enabled(&self, on: bool) {
        self.enabled.store(on, Ordering::SeqCst);
    }

    /// The faults injected so far.
    pub fn counts(&self) -> FaultCounts {
        self.with(|s| s.counts)
    }

    /// Every `(key, value)` a `create` or `update` applied to the wrapped store, in order —
    /// also those whose reply the wrapper then lost, or whose caller was dropped meanwhile.
    ///
    /// A write, once sent, runs to its end in a task of its own even if its caller is dropped
    /// (a killed process, a fold past its deadline): as on a server that received the request.
    pub fn landed(&self) -> Vec<(Vec<u8>, Vec<u8>)> {
        self.log
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn with<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        // plain counters and a log: a panic elsewhere cannot leave them inconsistent
        f(&mut self.state.lock().unwrap_or_else(PoisonError::into_inner))
    }

    fn draw(&self, is_update: bool) -> Fate {
        let p = self.plan;
        let on = self.enabled.load(Ordering::SeqCst);
        let now = tokio::time::Instant::now();
        self.with(|s| {
            s.counts.calls += 1;
            if !on {
                return Fate::default();
            }
            let mut fate = Fate::default();
            if s.down_until.is_some_and(|until| now < until) {
                fate.down = true;
            } else if s.rng.unit() < p.drop_connection {
                s.counts.drops += 1;
                s.down_until = Some(now + scaled(&mut s.rng, p.down_max));
                fate.down = true;
            }
            if fate.down {
                s.counts.failed_before += 1;
                return fate;
            }
            let r = &mut s.rng;
            fate.fail_before = r.unit() < p.fail_before;
            fate.fail_after = !fate.fail_before && r.unit() < p.fail_after;
            fate.conflict = is_update && !fate.fail_before && r.unit() < p.conflict;
            fate.vanish = r.unit() < p.vanish;
            if r.unit() < p.latency {
                let d = scaled(r, p.latency_max);
                if r.unit() < 0.5 {
                    fate.delay_before = d;
                } else {
                    fate.delay_after = d;
                }
                s.counts.delayed += 1;
            }
            if s.rng.unit() < p.stall {
                fate.delay_before += scaled(&mut s.rng, p.stall_max);
                s.counts.stalled += 1;
            }
            let c = &mut s.counts;
            c.failed_before += u64::from(fate.fail_before);
            c.failed_after += u64::from(fate.fail_after);
            c.conflicts += u64::from(fate.conflict);
            fate
        })
    }

    /// Runs one call under its fate: `op` is the call to the wrapped store; `wrote` says
    /// whether its result means a write was applied.
    async fn run<'a, T>(
        &'a self,
        fate: Fate,
        key: &'a [u8],
        op: impl FnOnce() -> StoreFuture<'a, T>,
        wrote: impl FnOnce(&T) -> bool,
    ) -> crate::Result<T> {
        if fate.down {
            return Err(Error::store(
                "faults",
                StoreErrorKind::Connection,
                "injected: connection dropped",
            ));
        }
        sleep(fate.delay_before).await;
        if fate.vanish && matches!(self.inner.delete(key).await, Ok(true)) {
            self.with(|s| s.counts.vanished += 1);
        }
        if fate.fail_before {
            return Err(Error::store(
                "faults",
                StoreErrorKind::Connection,
                "injected: failed before sending",
            ));
        }
        let out = op().await?;
        if wrote(&out) && fate.fail_after {
            self.with(|s| s.counts.lost_replies += 1);
        }
        sleep(fate.delay_after).await;
        if fate.fail_after {
            return Err(Error::store(
                "faults",
                StoreErrorKind::Timeout,
                "injected: reply lost",
            ));
        }
        Ok(out)
    }

    /// A write (`create` without `expected`, else `update`) sent in a task of its own, which
    /// logs it when the wrapped store applied it — even if the caller is dropped meanwhile.
    /// `conflict`: a concurrent rewrite of the key's current bytes goes first.
    fn detached(
        &self,
        key: &[u8],
        value: &[u8],
        expected: Option<Version>,
        conflict: bool,
    ) -> StoreFuture<'static, WriteOutcome> {
        let (inner, log) = (Arc::clone(&self.inner), Arc::clone(&self.log));
        let (key, value) = (key.to_vec(), value.to_vec());
        Box::pin(async move {
            let task = tokio::spawn(async move {
                if conflict && let Ok(Some((bytes, v))) = inner.read(&key).await {
                    let _ = inner.update(&key, &bytes, v).await;
                }
                let out = match expected {
                    None => inner.create(&key, &value).await,
                    Some(v) => inner.update(&key, &value, v).await,
                };
                if matches!(out, Ok(WriteOutcome::Written(_))) {
                    log.lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .push((key, value));
                }
                out
            });
            task.await.unwrap_or_else(|e| {
                Err(Error::store(
                    "faults",
                    StoreErrorKind::Other,
                    format!("write task failed: {e}"),
                ))
            })
        })
    }
}

/// A random duration in `[0, max]`.
fn scaled(rng: &mut SplitMix64, max: Duration) -> Duration {
    max.mul_f64(rng.unit())
}

async fn sleep(d: Duration) {
    if !d.is_zero() {
        tokio::time::sleep(d).await;
    }
}

fn written(out: &WriteOutcome) -> bool {
    matches!(out, WriteOutcome::Written(_))
}

impl KvStore for FaultStore {
    fn backend(&self) -> &'static str {
        self.inner.backend()
    }

    fn read<'a>(&'a self, key: &'a [u8]) -> StoreFuture<'a, Option<(Vec<u8>, Version)>> {
        let fate = self.draw(false);
        Box::pin(self.run(fate, key, || self.inner.read(key), |_| false))
    }

    fn create<'a>(&'a self, key: &'a [u8], value: &'a [u8]) -> StoreFuture<'a, WriteOutcome> {
        let fate = self.draw(false);
        let write = self.detached(key, value, None, false);
        Box::pin(self.run(fate, key, move || write, written))
    }

    fn update<'a>(
        &'a self,
        key: &'a [u8],
        value: &'a [u8],
        expected: Version,
    ) -> StoreFuture<'a, WriteOutcome> {
        let fate = self.draw(true);
        let write = self.detached(key, value, Some(expected), fate.conflict);
        Box::pin(self.run(fate, key, move || write, written))
    }

    fn list<'a>(&'a self, prefix: &'a [u8]) -> StoreFuture<'a, Vec<Vec<u8>>> {
        let mut fate = self.draw(false);
        fate.vanish = false; // a prefix is not a key
        Box::pin(self.run(fate, prefix, || self.inner.list(prefix), |_| false))
    }

    fn delete<'a>(&'a self, key: &'a [u8]) -> StoreFuture<'a, bool> {
        let fate = self.draw(false);
        Box::pin(self.run(fate, key, || self.inner.delete(key), |_| false))
    }

    fn max_value_bytes(&self) -> usize {
        self.inner.max_value_bytes()
    }

    fn metric_key(&self, metric: &str, part: &str) -> Vec<u8> {
        self.inner.metric_key(metric, part)
    }
}
