//! Persistence: fold batches of events into any key-value store (design layer 4).
//!
//! Two layouts sit on the same small [`KvStore`] contract:
//!
//! * [`Series`] — **windowed metrics, the layout to use**: state partitioned by event-time
//!   bucket and shard; a fold appends its batch (no read), compactions fold records into
//!   per-shard bases exactly once, queries read only the buckets of their range, and the
//!   writer's clock (never an event time) decides what is late, sealed and expired. Its keys
//!   and rules are in the [`Series`] docs and FORMAT.md.
//! * [`Metric`] — the whole state of each of K shards in one value (read → fold →
//!   compare-and-set), drawn below: simple, and right for small un-windowed states; its cost
//!   grows with the state, so not for windows kept over time.
//!
//! ```text
//!  Metric::fold:
//!  batch ──► split by shard ──► per shard, concurrently:
//!            (stable hash of      read <metric>/<k> → (bytes, version) or absent
//!             the event ID)       decode, dedup, fold only this batch's new events, encode
//!                                 write if the version is still the one read (or create)
//!                                 conflict? back off (exponential, full jitter), re-read, redo
//!  query ────────────────────►  read <metric>/0 … <metric>/(K-1), merge in any order
//! ```
//!
//! # The contract every backend keeps ([`KvStore`])
//!
//! A store adapter does three things, each natively and atomically on its server:
//!
//! * [`read`](KvStore::read) a key → `None`, or its bytes and its [`Version`];
//! * [`create`](KvStore::create) a key only if it is absent;
//! * [`update`](KvStore::update) a key only if its version is still the one read.
//!
//! and, for the bucketed layout, [`list`](KvStore::list) the keys under a prefix (ascending
//! bytes) and [`delete`](KvStore::delete) a key — each natively, single-key, so object stores
//! (conditional PUT) and DynamoDB (conditional writes, `Query` on a sort key) can implement
//! them.
//!
//! A lost race is [`WriteOutcome::Conflict`], never an error and never a silent overwrite.
//! Every successful write returns the key's new version, which is strictly greater than every
//! version the key had before (versions only grow, per key). Keys and values are arbitrary
//! bytes. A value larger than [`KvStore::max_value_bytes`] is refused with
//! [`Error::TooLarge`] before anything is sent. Any other failure is an [`Error::Store`]; after
//! a failed write the store may or may not hold the new value (a reply can be lost after the
//! server applied it): callers re-read, as [`Metric::fold`] does.
//!
//! What a version is, per backend:
//!
//! | backend | version |
//! |---|---|
//! | memory, sqlite, postgres, redis | a per-key counter kept beside the value: 1 at create, +1 per update |
//! | nats | the JetStream KV revision (the stream sequence of the key's last write) |
//! | s3 | a per-key counter in the object's header: 1 at create, +1 per update (the ETag is only the write's condition) |
//! | dynamodb | a per-key counter in the item's `v` attribute: 1 at create, +1 per update |
//!
//! Versions of one key grow with every write, so a [`Snapshot`] keeps the newer state of a
//! shard by keeping the higher version. They are comparable between copies of one store
//! (backups, replicas, an edge buffer synced back), not between unrelated stores.
//!
//! # Write sharding
//!
//! A metric lives in K keys `<metric>/<k>` (Redis: `{<metric>}/<k>`, so a cluster keeps them in
//! one slot) plus a metadata key `<metric>/meta` holding K and the aggregate's type tag. K is
//! fixed when the metric is first opened; opening it with another K or another aggregate type
//! is an error. An event goes to shard `event.shard_key() % K`, so its dedup memory lives in
//! one key and writers of different shards never conflict.
//!
//! # Exactly once
//!
//! The fold loop never applies part of a shard's batch: a shard's events are folded into the
//! state read, and written in one conditional write, or not at all. A write whose result is
//! unknown is retried from a fresh read: if it had landed, the state's dedup memory reports
//! the events as duplicates and nothing is counted twice. See [`fold`].

mod backoff;
#[cfg(feature = "testkit")]
#[doc(hidden)]
pub mod conformance;
#[cfg(feature = "dynamodb")]
mod dynamodb;
pub mod fold;
mod memory;
mod meta;
#[cfg(feature = "nats")]
mod nats;
#[cfg(feature = "postgres")]
mod postgres;
mod presence;
#[cfg(feature = "redis")]
mod redis;
#[cfg(feature = "redis-cluster")]
mod redis_cluster;
#[cfg(feature = "s3")]
mod s3;
mod series;
#[doc(hidden)]
pub use series::wire as series_wire;
mod snapshot;
#[cfg(feature = "sqlite")]
mod sqlite;
mod url;

use std::future::Future;
use std::pin::Pin;

use crate::error::{Error, Result};

pub use backoff::RetryPolicy;
#[cfg(feature = "dynamodb")]
#[cfg_attr(docsrs, doc(cfg(feature = "dynamodb")))]
pub use dynamodb::{DynamoStore, EXPIRY_ATTRIBUTE as DYNAMODB_EXPIRY_ATTRIBUTE};
pub use fold::{EventOutcome, FoldReport, FoldState, Metric, MetricBuilder, Readable, ShardKey};
pub use memory::MemoryStore;
#[cfg(feature = "nats")]
#[cfg_attr(docsrs, doc(cfg(feature = "nats")))]
pub use nats::NatsStore;
#[cfg(feature = "postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
pub use postgres::PostgresStore;
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub use redis::RedisStore;
#[cfg(feature = "s3")]
#[cfg_attr(docsrs, doc(cfg(feature = "s3")))]
pub use s3::S3Store;
pub use series::{
    Clock, MAX_WINDOWS_PER_BUCKET, Maintenance, ManualClock, Series, SeriesConfig, SeriesValue,
    SeriesView, SystemClock, Tally,
};
pub use snapshot::{ShardSnapshot, Snapshot};
#[cfg(feature = "sqlite")]
#[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
pub use sqlite::SqliteStore;
pub use url::connect;

/// The version of a stored key: grows with every write of that key (see the module docs for
/// what it is on each backend).
pub type Version = u64;

/// A boxed future returned by [`KvStore`] methods (keeps the trait object-safe).
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T>> + Send + 'a>>;

/// What a conditional write did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteOutcome {
    /// The value was stored; the key now has this version.
    Written(Version),
    /// The condition failed: the key exists (create) or its version changed (update).
    /// Nothing was written.
    Conflict,
}

/// A key-value store with versioned reads and conditional writes: all a backend must offer.
///
/// Object-safe: use it as `Arc<dyn KvStore>`. See the [module docs](self) for the contract.
pub trait KvStore: Send + Sync {
    /// The backend's name, as in [`Error::Store::backend`].
    fn backend(&self) -> &'static str;

    /// Reads `key`: `None` when absent, else its value and version.
    ///
    /// # Errors
    ///
    /// [`Error::Store`] when the backend fails.
    fn read<'a>(&'a self, key: &'a [u8]) -> StoreFuture<'a, Option<(Vec<u8>, Version)>>;

    /// Stores `value` under `key` only if `key` is absent.
    ///
    /// # Errors
    ///
    /// [`Error::TooLarge`] above [`max_value_bytes`](KvStore::max_value_bytes);
    /// [`Error::Store`] when the backend fails (the write may have landed).
    fn create<'a>(&'a self, key: &'a [u8], value: &'a [u8]) -> StoreFuture<'a, WriteOutcome>;

    /// Replaces the value of `key` only if its version is still `expected`.
    ///
    /// # Errors
    ///
    /// As [`create`](KvStore::create).
    fn update<'a>(
        &'a self,
        key: &'a [u8],
        value: &'a [u8],
        expected: Version,
    ) -> StoreFuture<'a, WriteOutcome>;

    /// Lists every key that starts with `prefix`, in ascending byte order.
    ///
    /// Layouts list "directories": prefixes that end with `/`. Backends may rely on that to
    /// list efficiently (NATS lists whole subject tokens); any other prefix still works but
    /// may cost a listing of its parent directory.
    ///
    /// # Errors
    ///
    /// [`Error::Store`] when the backend fails; [`Error::NotImplemented`] from a backend
    /// that cannot list (the default).
    fn list<'a>(&'a self, prefix: &'a [u8]) -> StoreFuture<'a, Vec<Vec<u8>>> {
        let _ = prefix;
        Box::pin(async move {
            Err(Error::NotImplemented {
                backend: self.backend(),
                operation: "list",
            })
        })
    }

    /// Deletes `key` whatever its version: `true` when it existed.
    ///
    /// Versions of a key created again after a delete may start over, so a layout must not
    /// re-create a deleted key that a writer may still hold a version of (shardfold's layouts
    /// delete only keys that are never written again: expired buckets, compacted records).
    ///
    /// # Errors
    ///
    /// As [`list`](KvStore::list).
    fn delete<'a>(&'a self, key: &'a [u8]) -> StoreFuture<'a, bool> {
        let _ = key;
        Box::pin(async move {
            Err(Error::NotImplemented {
                backend: self.backend(),
                operation: "delete",
            })
        })
    }

    /// The largest value this store accepts, in bytes. Default: unbounded.
    fn max_value_bytes(&self) -> usize {
        usize::MAX
    }

    /// The key of `part` (a shard number or `meta`) of `metric`: `<metric>/<part>` by default.
    /// Redis overrides it to `{<metric>}/<part>` (a cluster hash tag).
    fn metric_key(&self, metric: &str, part: &str) -> Vec<u8> {
        format!("{metric}/{part}").into_bytes()
    }
}

impl std::fmt::Debug for dyn KvStore + '_ {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "KvStore({})", self.backend())
    }
}

/// `Written(version)` when a conditional statement changed one row/key, else `Conflict`.
#[allow(dead_code)] // used by the backends, each behind its feature
pub(crate) fn written_if(changed: bool, version: Version) -> WriteOutcome {
    if changed {
        WriteOutcome::Written(version)
    } else {
        WriteOutcome::Conflict
    }
}

/// What a backend found under a key that is not a value it wrote (an S3 object without the
/// header, a DynamoDB item without its attributes): the source of an [`Error::Store`] of kind
/// [`StoreErrorKind::Rejected`](crate::StoreErrorKind::Rejected), whose own source is the
/// decoding error.
#[cfg(any(feature = "s3", feature = "dynamodb"))]
#[derive(Debug)]
pub(crate) struct NotAValue {
    /// What the store holds: "object", "item".
    pub(crate) what: &'static str,
    /// Its name in the store (path, key).
    pub(crate) name: String,
    pub(crate) cause: Error,
}

#[cfg(any(feature = "s3", feature = "dynamodb"))]
impl std::fmt::Display for NotAValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (what, name, cause) = (self.what, &self.name, &self.cause);
        write!(f, "{what} {name} is not a shardfold value: {cause}")
    }
}

#[cfg(any(feature = "s3", feature = "dynamodb"))]
impl std::error::Error for NotAValue {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.cause)
    }
}

/// Refuses a value above `limit` with [`Error::TooLarge`], for backends.
pub(crate) fn check_size(value: &[u8], limit: usize) -> Result<()> {
    if value.len() > limit {
        return Err(Error::TooLarge {
            size: value.len() as u64,
            limit: limit as u64,
            fix: None,
        });
    }
    Ok(())
}
