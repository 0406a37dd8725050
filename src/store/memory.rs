//! The in-memory store: the conformance reference and the store for tests.
//!
//! Keys live in a `BTreeMap`, so listing a prefix is a range scan from the prefix to its
//! [successor](prefix_end): its cost is proportional to the keys listed, not to the map.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::{Arc, Mutex, PoisonError};

use super::{KvStore, StoreFuture, Version, WriteOutcome, check_size};
use crate::error::Result;

type Map = BTreeMap<Vec<u8>, (Vec<u8>, Version)>;

/// A store held in this process's memory (`memory://`). Clones share the same map.
///
/// Versions are per-key counters: 1 at create, +1 per update. Nothing outlives the process.
///
/// ```
/// use shardfold::store::{KvStore, MemoryStore, WriteOutcome};
/// # tokio_test_block_on(async {
/// let store = MemoryStore::new();
/// assert_eq!(store.create(b"k", b"v1").await?, WriteOutcome::Written(1));
/// assert_eq!(store.create(b"k", b"v2").await?, WriteOutcome::Conflict);
/// assert_eq!(store.update(b"k", b"v2", 1).await?, WriteOutcome::Written(2));
/// assert_eq!(store.read(b"k").await?, Some((b"v2".to_vec(), 2)));
/// # Ok::<(), shardfold::Error>(()) }).unwrap();
/// # fn tokio_test_block_on<F: std::future::Future>(f: F) -> F::Output {
/// #     tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f)
/// # }
/// ```
#[derive(Debug, Clone, Default)]
pub struct MemoryStore {
    map: Arc<Mutex<Map>>,
    limit: Option<usize>,
}

impl MemoryStore {
    /// An empty store without a value size limit.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty store refusing values above `limit` bytes (to test size handling).
    pub fn with_value_limit(limit: usize) -> Self {
        MemoryStore {
            limit: Some(limit),
            ..Self::default()
        }
    }

    /// Number of keys held.
    pub fn len(&self) -> usize {
        self.with(|m| m.len())
    }

    /// Whether the store holds no key.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn with<T>(&self, f: impl FnOnce(&mut Map) -> T) -> T {
        // A panic while holding the lock cannot leave the map half-updated (every mutation is a
        // single insert), so a poisoned lock is still consistent.
        let mut guard = self.map.lock().unwrap_or_else(PoisonError::into_inner);
        f(&mut guard)
    }

    fn keys_under(&self, prefix: &[u8]) -> Vec<Vec<u8>> {
        let end = prefix_end(prefix);
        let upper = end.as_deref().map_or(Bound::Unbounded, Bound::Excluded);
        let range = (Bound::Included(prefix), upper);
        self.with(|m| m.range::<[u8], _>(range).map(|(k, _)| k.clone()).collect())
    }

    fn write(&self, key: &[u8], value: &[u8], expected: Option<Version>) -> Result<WriteOutcome> {
        check_size(value, self.max_value_bytes())?;
        Ok(self.with(|m| {
            let current = m.get(key).map(|(_, v)| *v);
            if current != expected {
                return WriteOutcome::Conflict;
            }
            let version = current.map_or(1, |v| v + 1);
            m.insert(key.to_vec(), (value.to_vec(), version));
            WriteOutcome::Written(version)
        }))
    }
}

/// The smallest byte string greater than every string starting with `prefix`: the prefix with
/// its trailing `0xFF` bytes dropped and its last byte incremented. `None` when there is none
/// (an empty or all-`0xFF` prefix): every key from `prefix` on starts with it.
///
/// The exclusive upper bound of a prefix listing, for every ordered backend.
pub(crate) fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let keep = prefix.iter().rposition(|&b| b != 0xFF)?;
    let mut end = prefix[..=keep].to_vec();
    end[keep] += 1;
    Some(end)
}

impl KvStore for MemoryStore {
    fn backend(&self) -> &'static str {
        "memory"
    }

    fn read<'a>(&'a self, key: &'a [u8]) -> StoreFuture<'a, Option<(Vec<u8>, Version)>> {
        Box::pin(async move { Ok(self.with(|m| m.get(key).cloned())) })
    }

    fn create<'a>(&'a self, key: &'a [u8], value: &'a [u8]) -> StoreFuture<'a, WriteOutcome> {
        Box::pin(async move { self.write(key, value, None) })
    }

    fn update<'a>(
        &'a self,
        key: &'a [u8],
        value: &'a [u8],
        expected: Version,
    ) -> StoreFuture<'a, WriteOutcome> {
        Box::pin(async move { self.write(key, value, Some(expected)) })
    }

    fn list<'a>(&'a self, prefix: &'a [u8]) -> StoreFuture<'a, Vec<Vec<u8>>> {
        Box::pin(async move { Ok(self.keys_under(prefix)) })
    }

    fn delete<'a>(&'a self, key: &'a [u8]) -> StoreFuture<'a, bool> {
        Box::pin(async move { Ok(self.with(|m| m.remove(key).is_some())) })
    }

    fn max_value_bytes(&self) -> usize {
        self.limit.unwrap_or(usize::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::prefix_end;

    #[test]
    fn prefix_end_is_the_least_upper_bound_of_a_prefix() {
        assert_eq!(prefix_end(b"a/"), Some(b"a0".to_vec()));
        assert_eq!(prefix_end(b"a\xff\xff"), Some(b"b".to_vec()));
        assert_eq!(prefix_end(b"\x00"), Some(b"\x01".to_vec()));
        assert_eq!(prefix_end(b"\xff\xff"), None);
        assert_eq!(prefix_end(b""), None);
    }
}
