//! Store wrappers for tests and benches: count round trips (and the bytes and keys they
//! move), lose replies.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use crate::error::{Error, StoreErrorKind};
use crate::store::{KvStore, StoreFuture, Version, WriteOutcome};

/// What a [`CountingStore`] has seen since it was made or [reset](CountingStore::reset).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Calls to `read`.
    pub reads: u64,
    /// Calls to `create` and `update`.
    pub writes: u64,
    /// Calls to `list`.
    pub lists: u64,
    /// Calls to `delete`.
    pub deletes: u64,
    /// Bytes of the values `read` returned.
    pub bytes_read: u64,
    /// Bytes of the values passed to `create` and `update`.
    pub bytes_written: u64,
    /// Keys `list` returned.
    pub keys_listed: u64,
    /// The largest value passed to `create` or `update`, in bytes.
    pub largest_write: u64,
}

/// Counts the calls (round trips) made to the wrapped store, and the bytes and keys they
/// moved.
pub struct CountingStore {
    inner: Arc<dyn KvStore>,
    counts: Mutex<Counts>,
}

impl CountingStore {
    /// Wraps `inner`.
    pub fn new(inner: Arc<dyn KvStore>) -> Self {
        CountingStore {
            inner,
            counts: Mutex::new(Counts::default()),
        }
    }

    /// Reads and writes so far.
    pub fn calls(&self) -> (u64, u64) {
        let c = self.counts();
        (c.reads, c.writes)
    }

    /// Everything counted so far.
    pub fn counts(&self) -> Counts {
        self.tally(|c| *c)
    }

    /// Sets every count back to zero.
    pub fn reset(&self) {
        self.tally(|c| *c = Counts::default());
    }

    fn tally<T>(&self, f: impl FnOnce(&mut Counts) -> T) -> T {
        // counts are plain numbers: a panic elsewhere cannot leave them inconsistent
        f(&mut self.counts.lock().unwrap_or_else(PoisonError::into_inner))
    }

    fn wrote(&self, value: &[u8]) {
        self.tally(|c| {
            c.writes += 1;
            c.bytes_written += value.len() as u64;
            c.largest_write = c.largest_write.max(value.len() as u64);
        });
    }
}

impl KvStore for CountingStore {
    fn backend(&self) -> &'static str {
        self.inner.backend()
    }

    fn read<'a>(&'a self, key: &'a [u8]) -> StoreFuture<'a, Option<(Vec<u8>, Version)>> {
        self.tally(|c| c.reads += 1);
        Box::pin(async move {
            let found = self.inner.read(key).await?;
            let n = found.as_ref().map_or(0, |(v, _)| v.len() as u64);
            self.tally(|c| c.bytes_read += n);
            Ok(found)
        })
    }

    fn create<'a>(&'a self, key: &'a [u8], value: &'a [u8]) -> StoreFuture<'a, WriteOutcome> {
        self.wrote(value);
        self.inner.create(key, value)
    }

    fn update<'a>(
        &'a self,
        key: &'a [u8],
        value: &'a [u8],
        v: Version,
    ) -> StoreFuture<'a, WriteOutcome> {
        self.wrote(value);
        self.inner.update(key, value, v)
    }

    fn list<'a>(&'a self, prefix: &'a [u8]) -> StoreFuture<'a, Vec<Vec<u8>>> {
        self.tally(|c| c.lists += 1);
        Box::pin(async move {
            let keys = self.inner.list(prefix).await?;
            self.tally(|c| c.keys_listed += keys.len() as u64);
            Ok(keys)
        })
    }

    fn delete<'a>(&'a self, key: &'a [u8]) -> StoreFuture<'a, bool> {
        self.tally(|c| c.deletes += 1);
        self.inner.delete(key)
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
                    StoreErrorKind::Connection,
                    "injected: failed before sending",
                ));
            }
            let out = write().await?;
            if n.is_multiple_of(2) && matches!(out, WriteOutcome::Written(_)) {
                self.lost.fetch_add(1, Ordering::Relaxed);
                return Err(Error::store(
                    "lost-reply",
                    StoreErrorKind::Timeout,
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

    fn list<'a>(&'a self, prefix: &'a [u8]) -> StoreFuture<'a, Vec<Vec<u8>>> {
        self.inner.list(prefix)
    }

    fn delete<'a>(&'a self, key: &'a [u8]) -> StoreFuture<'a, bool> {
        self.inner.delete(key)
    }

    fn max_value_bytes(&self) -> usize {
        self.inner.max_value_bytes()
    }

    fn metric_key(&self, metric: &str, part: &str) -> Vec<u8> {
        self.inner.metric_key(metric, part)
    }
}
