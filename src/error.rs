//! The one error type of the crate.
//!
//! Every fallible operation in shardfold returns [`Error`](enum@Error). Its variants are matchable and each
//! documents *when* it happens, so callers can tell bad input (refuse it, keep going) from a
//! contended store (retry later) from corrupted bytes (alert, keep the blob for inspection).

use std::sync::Arc;

use thiserror::Error;

/// Result alias used throughout the crate.
pub type Result<T, E = Error> = core::result::Result<T, E>;

/// The error [`Merge::merge`](crate::Merge::merge) returns: the crate error, whose merge-related
/// variants are [`Error::IncompatibleParams`], [`Error::Overflow`] and
/// [`Error::OverlappingState`].
pub type MergeError = Error;

/// Everything that can go wrong in shardfold.
///
/// New variants may be added in minor releases, hence `#[non_exhaustive]`.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum Error {
    // ----- values -----
    /// An inserted value is not acceptable to the aggregate: NaN anywhere, ±infinity where a
    /// finite value is required (sums, means, quantile sketches). Nothing was changed.
    #[error("invalid value: {reason}")]
    InvalidValue {
        /// Why the value was refused.
        reason: &'static str,
    },

    /// An exact integer accumulator would exceed its range (a `Count` above `u64::MAX`, an
    /// integer `Sum` outside `i128`). Nothing was changed.
    #[error("overflow in {what}")]
    Overflow {
        /// The quantity that would overflow.
        what: &'static str,
    },

    /// A constructor or builder was given parameters outside their documented range
    /// (for example an HLL precision of 30). Nothing was created.
    #[error("invalid parameter {name}: {reason}")]
    InvalidParameter {
        /// The parameter's name.
        name: &'static str,
        /// What is wrong with it.
        reason: String,
    },

    // ----- merges -----
    /// Two states whose parameters must agree (HLL precision, t-digest compression, window
    /// width, …) were merged. `self` is left untouched.
    #[error("cannot merge {what}: {left} vs {right}")]
    IncompatibleParams {
        /// The parameter that differs.
        what: &'static str,
        /// Its value on the receiving side.
        left: String,
        /// Its value on the merged-in side.
        right: String,
    },

    /// Two states that remember overlapping events (for example two dedup states that both saw
    /// an event ID) were merged: summing them would count those events twice. `self` is left
    /// untouched.
    #[error("refusing to merge overlapping states: {reason}")]
    OverlappingState {
        /// What overlaps.
        reason: String,
    },

    // ----- decoding -----
    /// The bytes do not start with the shardfold magic: they are not a shardfold blob at all.
    #[error("bad magic: not a shardfold blob")]
    BadMagic,

    /// The blob was written in a newer format version than this build understands. Upgrade the
    /// reader; the blob is not damaged.
    #[error("unsupported format version {found} (this build reads up to {supported})")]
    UnsupportedVersion {
        /// The version in the blob.
        found: u8,
        /// The newest version this build reads.
        supported: u8,
    },

    /// The blob holds a different aggregate type than the one asked for.
    #[error(
        "wrong type: expected {}, found {}",
        crate::codec::tags::describe(*expected),
        crate::codec::tags::describe(*found)
    )]
    WrongType {
        /// The tag of the requested type.
        expected: u16,
        /// The tag in the blob.
        found: u16,
    },

    /// The CRC32C stored at the end of the blob does not match its contents: the bytes were
    /// corrupted in storage or transit.
    #[error("checksum mismatch: stored {stored:#010x}, computed {computed:#010x}")]
    ChecksumMismatch {
        /// The checksum stored in the blob.
        stored: u32,
        /// The checksum of the bytes as read.
        computed: u32,
    },

    /// The blob ends before a field it announces (a header, a length-prefixed section, a
    /// payload field).
    #[error("truncated blob: {context}")]
    Truncated {
        /// Which part was cut short.
        context: &'static str,
    },

    /// The blob (or a length it announces) is larger than the configured
    /// [`Limits::max_blob_bytes`](crate::codec::Limits::max_blob_bytes). Nothing was allocated
    /// for it.
    #[error("blob too large: {size} bytes (limit {limit}){}", .fix.map(|f| format!("; {f}")).unwrap_or_default())]
    TooLarge {
        /// The size found or announced.
        size: u64,
        /// The configured limit.
        limit: u64,
        /// What to change so that values fit, where the limit is a store's (DynamoDB's item
        /// size); `None` for the codec's configurable limit.
        fix: Option<&'static str>,
    },

    /// The blob is well-formed but its contents break an invariant of the type (unsorted
    /// centroids, a register out of range, a parameter outside its range, a non-canonical
    /// encoding, trailing bytes).
    #[error("invalid encoded state: {reason}")]
    InvalidState {
        /// The invariant that does not hold.
        reason: String,
    },

    // ----- stores -----
    /// A key-value store backend failed: the server could not be reached, refused a command,
    /// timed out, or returned something unexpected. The message never contains a password, a
    /// token or a URL with credentials. A write that failed this way may or may not have
    /// landed; the fold loop re-reads before retrying, so retrying is always safe.
    ///
    /// `kind` tells whether retrying can help ([`StoreErrorKind::is_transient`]):
    ///
    /// | kind | what | retried by the fold loops |
    /// |---|---|---|
    /// | [`Connection`](StoreErrorKind::Connection) | refused, reset, dropped, closed; the client reconnects on the next call | yes |
    /// | [`Timeout`](StoreErrorKind::Timeout) | no reply in time (a write may have landed) | yes |
    /// | [`Busy`](StoreErrorKind::Busy) | the server refuses for now: loading, too many clients, out of memory, a serialization failure, a read-only replica during failover | yes |
    /// | [`Other`](StoreErrorKind::Other) | not classified | yes (retrying is safe) |
    /// | [`Auth`](StoreErrorKind::Auth) | authentication or permission refused | no |
    /// | [`Rejected`](StoreErrorKind::Rejected) | the server refuses the command itself and will again: a key of another type (Redis `WRONGTYPE`), a script error, a missing table or column, a value it does not accept | no |
    /// | [`Config`](StoreErrorKind::Config) | the client's configuration is invalid (a URL that does not parse) | no |
    ///
    /// `store::Metric::fold` and `store::Series`
    /// appends retry the transient kinds with backoff, within their retry policy; a permanent
    /// one fails the shard's events at once.
    #[error("{backend} store error ({kind}): {message}")]
    Store {
        /// The backend (`"memory"`, `"sqlite"`, `"redis"`, `"postgres"`, `"nats"`).
        backend: &'static str,
        /// What kind of failure: transient or permanent.
        kind: StoreErrorKind,
        /// What went wrong, without secrets.
        message: String,
        /// The backend client's own error, when there is one (downcast it with
        /// [`StoreSource::downcast_ref`]).
        #[source]
        source: Option<StoreSource>,
    },

    /// A value read from the store does not decode — corrupted or truncated bytes, or a value
    /// of another type written under the key. Names the metric and the store key (which names
    /// the shard: `<metric>/<k>` for a `store::Metric`, `<series>/b/…` and `<series>/r/…` for
    /// a `store::Series` bucket) and keeps the decoding
    /// error. Only that shard's events fail, and the partial queries
    /// (`Metric::query_readable`, `Series::query_range_readable`) answer from the rest; the
    /// value is left as it is (see the layouts' repair notes).
    #[error("metric {metric}: stored value {key} is damaged: {cause}")]
    Damaged {
        /// The metric or series.
        metric: String,
        /// The store key of the damaged value (lossy UTF-8).
        key: String,
        /// Why it does not decode.
        cause: Box<Error>,
    },

    /// A shard that had been written is absent from the store — flushed, evicted by a memory
    /// policy (Redis `maxmemory`), deleted by hand. Its data is lost; the fold refuses to take
    /// it for an empty shard (that would hide the loss and fold redeliveries a second time
    /// into a fresh state). `Metric::accept_vanished` acknowledges the loss; then replay the
    /// shard's events from the source.
    #[error("metric {metric}: shard value {key} vanished from the store (it had been written)")]
    Vanished {
        /// The metric.
        metric: String,
        /// The store key that vanished (lossy UTF-8).
        key: String,
    },

    /// The backend does not offer an operation a layout needs (for example listing keys by
    /// prefix); nothing was written.
    #[error("{backend} store does not implement {operation}")]
    NotImplemented {
        /// The backend.
        backend: &'static str,
        /// The missing operation (`"list"`, `"delete"`).
        operation: &'static str,
    },

    /// An event's time is further ahead of the writer's clock than the metric's allowed skew
    /// (a timestamp in microseconds, a wrong producer clock). Refused per event, nothing
    /// folded or written for it: one outlier must not move a metric's clock or hide its data.
    #[error("event time {time_ms} ms is more than {skew_ms} ms ahead of the clock ({now_ms} ms)")]
    FutureEvent {
        /// The event's time, milliseconds since the epoch.
        time_ms: u64,
        /// The writer's clock when it checked.
        now_ms: u64,
        /// The metric's allowed skew ahead of the clock.
        skew_ms: u64,
    },

    /// A fold ran out of time: its deadline (the metric's default, or the one the caller
    /// passed — e.g. the Lambda context's remaining time) passed before these events were
    /// applied. Redeliver them: a write that landed just before the deadline makes the
    /// redelivery a duplicate, never a double count.
    #[error(
        "metric {metric}: fold deadline of {deadline_ms} ms passed before the events were applied"
    )]
    DeadlineExceeded {
        /// The metric or series.
        metric: String,
        /// The time the fold was given, in milliseconds.
        deadline_ms: u64,
    },

    /// A conditional write kept losing to concurrent writers: the fold loop gave up on one
    /// shard of a metric after its bounded number of attempts. Nothing of that shard's part of
    /// the batch was applied; fold the same events again later (dedup makes that safe).
    #[error("metric {metric} shard {shard}: still contended after {attempts} attempts")]
    Contended {
        /// The metric.
        metric: String,
        /// The shard that could not be written.
        shard: u32,
        /// How many read-fold-write attempts were made.
        attempts: u32,
    },

    // ----- bugs -----
    /// An invariant of the crate did not hold: a branch its own checks make impossible was
    /// taken. Usually nothing was changed, but an internal error from a `*_unchecked` merge or
    /// insert may leave the value partly changed: discard it. This is a bug in shardfold;
    /// please report it with the reason.
    #[error("internal error (a shardfold bug): {reason}")]
    Internal {
        /// Which invariant failed.
        reason: &'static str,
    },
}

impl Error {
    /// Whether retrying the operation later may succeed: an [`Error::Store`] of a transient
    /// [`StoreErrorKind`], or [`Error::Contended`]. Everything else fails the same way again.
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Store { kind, .. } => kind.is_transient(),
            Error::Contended { .. } | Error::DeadlineExceeded { .. } => true,
            _ => false,
        }
    }

    /// Shorthand for [`Error::Store`] without a source.
    #[cfg(feature = "store")]
    pub(crate) fn store(
        backend: &'static str,
        kind: StoreErrorKind,
        message: impl core::fmt::Display,
    ) -> Self {
        Error::Store {
            backend,
            kind,
            message: message.to_string(),
            source: None,
        }
    }

    /// [`Error::Store`] caused by a backend client's error `cause`: its message is the cause's
    /// (which must hold no secret), and it is kept as the source.
    #[cfg(feature = "store")]
    #[allow(dead_code)] // used by the backends, each behind its feature
    pub(crate) fn store_from(
        backend: &'static str,
        kind: StoreErrorKind,
        cause: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Error::Store {
            backend,
            kind,
            message: cause.to_string(),
            source: Some(StoreSource(Arc::new(cause))),
        }
    }

    /// [`Error::Internal`] for a branch the crate's own checks make impossible; panics in debug
    /// builds so tests and fuzzing find it.
    pub(crate) fn internal(reason: &'static str) -> Self {
        debug_assert!(false, "internal error: {reason}");
        Error::Internal { reason }
    }

    /// [`Error::Damaged`]: the value at `key` of `metric` fails to decode with `cause`.
    #[cfg(feature = "store")]
    pub(crate) fn damaged(metric: &str, key: &[u8], cause: Error) -> Self {
        Error::Damaged {
            metric: metric.to_owned(),
            key: String::from_utf8_lossy(key).into_owned(),
            cause: Box::new(cause),
        }
    }

    /// Shorthand for [`Error::InvalidState`].
    pub(crate) fn invalid_state(reason: impl Into<String>) -> Self {
        Error::InvalidState {
            reason: reason.into(),
        }
    }

    /// Shorthand for [`Error::IncompatibleParams`].
    pub(crate) fn incompatible(
        what: &'static str,
        left: impl core::fmt::Display,
        right: impl core::fmt::Display,
    ) -> Self {
        Error::IncompatibleParams {
            what,
            left: left.to_string(),
            right: right.to_string(),
        }
    }
}

/// What kind of failure an [`Error::Store`] is, and so whether retrying can help (see the
/// table on [`Error::Store`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum StoreErrorKind {
    /// The connection was refused, reset, dropped or closed (by the server's idle timeout, a
    /// proxy, a network change, a frozen and thawed function instance). Transient: the client
    /// reconnects on its next call.
    Connection,
    /// No reply in time. Transient; a write may have landed.
    Timeout,
    /// The server is up but refuses for now: loading its data, too many clients, out of
    /// memory, a lock or serialization failure, a read-only replica during a failover.
    /// Transient.
    Busy,
    /// Authentication or a permission was refused (Redis `NOAUTH`/`WRONGPASS`/`NOPERM`,
    /// PostgreSQL SQLSTATE class 28 and 42501). Permanent.
    Auth,
    /// The server refuses the command itself and will again: a key holding another type
    /// (Redis `WRONGTYPE`, or a key that is not a shardfold value), a script error, a missing
    /// table or column (PostgreSQL class 42), a value it does not accept. Permanent.
    Rejected,
    /// The client's configuration is invalid (a URL that does not parse). Permanent.
    Config,
    /// Not classified. Retried as transient: a retry is always safe, and bounded.
    Other,
}

impl StoreErrorKind {
    /// Whether an error of this kind may pass on retry: [`Connection`](Self::Connection),
    /// [`Timeout`](Self::Timeout), [`Busy`](Self::Busy) and [`Other`](Self::Other).
    pub fn is_transient(self) -> bool {
        matches!(
            self,
            Self::Connection | Self::Timeout | Self::Busy | Self::Other
        )
    }
}

impl core::fmt::Display for StoreErrorKind {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Self::Connection => "connection",
            Self::Timeout => "timeout",
            Self::Busy => "busy",
            Self::Auth => "auth",
            Self::Rejected => "rejected",
            Self::Config => "config",
            Self::Other => "other",
        })
    }
}

/// The backend client's error behind an [`Error::Store`], shared so that [`Error`](enum@Error) stays
/// `Clone`. Two sources are equal when they are the same error or print the same. `Debug`
/// prints only what `Display` prints (the client's error message, which holds no secret).
#[derive(Clone)]
pub struct StoreSource(Arc<dyn std::error::Error + Send + Sync>);

impl StoreSource {
    /// The client's error as a `T` (for example `redis::RedisError` or
    /// `tokio_postgres::Error`), if it is one.
    pub fn downcast_ref<T: std::error::Error + 'static>(&self) -> Option<&T> {
        self.0.downcast_ref()
    }
}

impl core::fmt::Display for StoreSource {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        self.0.fmt(f)
    }
}

impl core::fmt::Debug for StoreSource {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "StoreSource({:?})", self.0.to_string())
    }
}

impl std::error::Error for StoreSource {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.source()
    }
}

impl PartialEq for StoreSource {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0) || self.0.to_string() == other.0.to_string()
    }
}

impl Eq for StoreSource {}
