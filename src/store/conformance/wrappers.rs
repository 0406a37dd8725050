//! Store wrappers for tests and benches: count round trips, lose replies.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::Error;
use crate::store::{KvStore, StoreFuture, Version, WriteOutcome};

/// Counts the calls (round trips) made to the wrapped store.
pub struct CountingStore {
    inner: Arc<dyn KvStore>,
    reads: AtomicU64,
    writes: AtomicU64,
}

impl CountingStore {
    /// Wraps `inner`.
    pub fn new(inner: Arc<dyn KvStore>) -> Self {
        CountingStore {
            inner,
            reads: AtomicU64::new(0),
            writes: AtomicU64::new(0),
        }
    }

    /// Reads and writes so far.
    pub fn calls(&self) -> (u64, u64) {
        (
            self.reads.load(Ordering::Relaxed),
            self.writes.load(Ordering::Relaxed),
        )
    }
}

impl KvStore for CountingStore {
    fn backend(&self) -> &'static str {
        self.inner.backend()
    }

    fn read<'a>(&'a self, key: &'a [u8]) -> StoreFuture<'a, Option<(Vec<u8>, Version)>> {
        self.reads.fetch_add(1, Ordering::Relaxed);
        self.inner.read(key)
    }

    fn create<'a>(&'a self, key: &'a [u8], value: &'a [u8]) -> StoreFuture<'a, WriteOutcome> {
        self.writes.fetch_add(1, Ordering::Relaxed);
        self.inner.create(key, value)
    }

    fn update<'a>(
        &'a self,
        key: &'a [u8],
        value: &'a [u8],
        v: Version,
    ) -> StoreFuture<'a, WriteOutcome> {
        self.writes.fetch_add(1, Ordering::Relaxed);
        self.inner.update(key, value, v)
    }

    fn max_value_bytes(&self) -> usize {
        self.inner.max_value_bytes()
    }

    fn metric_key(&self, metric: &str, part: &str) -> Vec<u8> {
        self.inner.metric_key(metric, part)
    }
}

/// Injects "write applied, reply lost": every odd-numbered write (1st, 3rd, …) is applied by
/// the wrapped store, then reported as an [`Error::Store`] — as a timeout after sending
/// would. Even-numbered writes fail *before* reaching the store when `also_fail_before` is
/// set, so both kinds of unknown outcome are exercised.
pub struct LostReplyStore {
    inner: Arc<dyn KvStore>,
    writes: AtomicU64,
    also_fail_before: bool,
    lost: AtomicU64,
}

impl LostReplyStore {
    /// Wraps `inner`.
    pub fn new(inner: Arc<dyn KvStore>, also_fail_before: bool) -> Self {
        LostReplyStore {
            inner,
            writes: AtomicU64::new(0),
            also_fail_before,
            lost: AtomicU64::new(0),
        }
    }

    /// How many writes were applied with their reply dropped.
    pub fn lost_replies(&self) -> u64 {
        self.lost.load(Ordering::Relaxed)
    }

    fn wrap<'a>(
        &'a self,
        write: impl FnOnce() -> StoreFuture<'a, WriteOutcome> + Send + 'a,
    ) -> StoreFuture<'a, WriteOutcome> {
        let n = self.writes.fetch_add(1, Ordering::Relaxed);
        Box::pin(async move {
            if n % 2 == 1 && self.also_fail_before {
                return Err(Error::store(
                    "lost-reply",
                    "injected: failed before sending",
                ));
            }
            let out = write().await?;
            if n.is_multiple_of(2) && matches!(out, WriteOutcome::Written(_)) {
                self.lost.fetch_add(1, Ordering::Relaxed);
                return Err(Error::store(
                    "lost-reply",
                    "injected: write applied, reply lost",
                ));
            }
            Ok(out)
        })
    }
}

impl KvStore for LostReplyStore {
    fn backend(&self) -> &'static str {
        self.inner.backend()
    }

    fn read<'a>(&'a self, key: &'a [u8]) -> StoreFuture<'a, Option<(Vec<u8>, Version)>> {
        self.inner.read(key)
    }

    fn create<'a>(&'a self, key: &'a [u8], value: &'a [u8]) -> StoreFuture<'a, WriteOutcome> {
        self.wrap(move || self.inner.create(key, value))
    }

    fn update<'a>(
        &'a self,
        key: &'a [u8],
        value: &'a [u8],
        v: Version,
    ) -> StoreFuture<'a, WriteOutcome> {
        self.wrap(move || self.inner.update(key, value, v))
    }

    fn max_value_bytes(&self) -> usize {
        self.inner.max_value_bytes()
    }

    fn metric_key(&self, metric: &str, part: &str) -> Vec<u8> {
        self.inner.metric_key(metric, part)
    }
}
