//! The one error type of the crate.
//!
//! Every fallible operation in shardfold returns [`Error`]. Its variants are matchable and each
//! documents *when* it happens, so callers can tell bad input (refuse it, keep going) from a
//! contended store (retry later) from corrupted bytes (alert, keep the blob for inspection).

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
    #[error("blob too large: {size} bytes (limit {limit})")]
    TooLarge {
        /// The size found or announced.
        size: u64,
        /// The configured limit.
        limit: u64,
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
    #[error("{backend} store error: {message}")]
    Store {
        /// The backend (`"memory"`, `"sqlite"`, `"redis"`, `"postgres"`, `"nats"`).
        backend: &'static str,
        /// What went wrong, without secrets.
        message: String,
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
    /// taken. Nothing was changed. This is a bug in shardfold; please report it with the reason.
    #[error("internal error (a shardfold bug): {reason}")]
    Internal {
        /// Which invariant failed.
        reason: &'static str,
    },
}

impl Error {
    /// Shorthand for [`Error::Store`].
    #[cfg(feature = "store")]
    pub(crate) fn store(backend: &'static str, message: impl core::fmt::Display) -> Self {
        Error::Store {
            backend,
            message: message.to_string(),
        }
    }

    /// [`Error::Internal`] for a branch the crate's own checks make impossible; panics in debug
    /// builds so tests and fuzzing find it.
    pub(crate) fn internal(reason: &'static str) -> Self {
        debug_assert!(false, "internal error: {reason}");
        Error::Internal { reason }
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
