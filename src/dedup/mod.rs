//! Exactly-once effect: dedup by event ID and by sequence number.
//!
//! Event sources deliver *at least once*. An aggregate that is not idempotent (a count, a sum,
//! a t-digest) must never see an event twice, so every event passes a dedup state first, and
//! [`Outcome`] says what happened to it.
//!
//! # By event ID ([`IdDedup`], used by [`Deduped`] and [`Windowed`](crate::Windowed))
//!
//! For sources without order (SQS, EventBridge, HTTP). An [`EventId`] is the 64-bit stable hash
//! ([`crate::hash`]) of the ID's canonical bytes. The state remembers fingerprints for a time
//! *horizon*, grouped by event-time *slot* so expiry drops whole slots at once:
//!
//! * `latest` is the largest event time folded so far; `cutoff = latest − horizon`.
//! * An event with time `< cutoff` is [`Outcome::Late`]: the state may already have forgotten
//!   whether it saw it, so it is refused and counted — never folded. Exactly once within the
//!   horizon, honest outside it.
//! * A slot `[k·slot, (k+1)·slot)` is dropped once it ends at or before the cutoff. Memory is
//!   bounded by the IDs of the last `horizon + slot` milliseconds of event time.
//!
//! A redelivered event carries its original event time, so a fingerprint is looked up only in
//! its event time's slot: O(1) per event (a ring of slots indexed by `time / slot`, a
//! reciprocal instead of a divide). **Choosing the slot**: `horizon / slot` is at most
//! [`MAX_SLOTS`]; slots of a few thousand IDs keep each table in cache (the
//! benchmark's one million IDs per hour insert fastest with 10 s slots); each slot costs 16
//! bytes encoded. The default is one hour in 10 s slots.
//!
//! **False duplicates.** Two different IDs with the same 64-bit fingerprint are taken for one
//! event. With `n` fingerprints held in the event's slot, a new event is wrongly called a
//! duplicate with probability about `n / 2⁶⁴` (about 5.4·10⁻¹⁴ per event for a million IDs
//! held; over 10¹² events with a million held, about 5 %). There are no false negatives: a
//! redelivered event within the horizon is always caught.
//!
//! **Memory.** In memory each slot is an open-addressing table of `u64` (load 0.53–0.8:
//! 10–15 bytes per ID). Persisted, each slot is its sorted fingerprints, Golomb–Rice coded
//! (about `66 − log₂ n` bits per ID; under 7 bytes from a few thousand IDs per slot up). The
//! in-memory layout and its per-process seed never reach the bytes.
//!
//! # By sequence number (Kinesis, Kafka)
//!
//! A record of an ordered stream is a [`StreamRecord`]: partition (Kinesis shard, Kafka
//! partition), sequence number ([`SeqNum`]: unsigned decimal of any length — Kinesis's have 56
//! digits, beyond 128 bits — compared as numbers), event time, value, and optionally the
//! producer's payload ID. Through a `store::Metric` it goes to the shard of its
//! partition's stable hash, so one partition's dedup memory lives in one stored key. Pick the
//! state by how the stream is read:
//!
//! | state | dedups by | memory | correct when |
//! |---|---|---|---|
//! | `Deduped<A, SeqDedup>` | a high-water mark per partition | O(partitions) | each partition is folded **in order by one writer at a time**: Kinesis with `ParallelizationFactor = 1`, one Kafka consumer per partition |
//! | `Deduped<A>` (an [`IdDedup`]), records without payload ID | [`StreamRecord::seq_id`], the stable hash of (partition, sequence) | the IDs of one horizon of event time | any order, any number of concurrent batches per partition; redeliveries within the horizon |
//! | `Deduped<A>`, records with [`payload_id`](StreamRecord::payload_id) | the producer's payload ID | the same | as above, **and** the producer retried a put (its retry got a new sequence number) |
//!
//! **High-water marks** ([`SeqDedup`]): a record above its partition's mark is folded and
//! raises it; a re-read or retried range (a batch retried whole, a bisected half, a checkpoint
//! suffix, a consumer restarted from an older position) is at or below it:
//! [`Outcome::Duplicate`]. A record below the mark but above where the current batch started
//! came after a later record of its partition *in the same batch*: the stream is out of order,
//! and the record is refused as [`Outcome::Late`] and counted ([`Deduped::late`]) — never
//! folded, never taken for a duplicate. A *gap* (a skipped record) cannot be seen: Kinesis
//! sequence numbers are not contiguous, Kafka offsets have holes (transactions, compaction).
//! Shard split and merge need nothing: a child shard is a new partition, and the consumer
//! reads the parent to its end before the children.
//!
//! **Trap 1 — parallel batches.** With a Kinesis `ParallelizationFactor` above 1, Lambda folds
//! several batches of one shard at once (each in order by partition *key*, interleaved in
//! sequence numbers). Whichever batch is written second sees a mark raised by the other and
//! its records are below it: a high-water mark takes that whole batch for duplicates, and no
//! state of O(partitions) memory can tell it from a retried batch. Use `Deduped<A>` (IDs) there:
//! every record is remembered by (partition, sequence), so batches fold in any order.
//!
//! **Trap 2 — producer retries.** A producer whose `PutRecord` timed out after Kinesis stored
//! the record puts it again and gets a *new* sequence number: to both a mark and a
//! (partition, sequence) ID it is a new record. If the producer stamps each payload with its
//! own ID, set [`StreamRecord::with_payload_id`] and fold into `Deduped<A>`: the retry is then a
//! [`Outcome::Duplicate`] within the horizon. (The retry must land in the same partition — same
//! partition key, no reshard in between — since the metric is sharded by partition; otherwise
//! fold [`Event`]s keyed by the payload ID, sharded by it.)
//!
//! `SeqDedup` also works alone ([`SeqDedup::advance`]) or through
//! [`Deduped::insert_seq`].
//!
//! # Merging
//!
//! Two dedup states built from **disjoint** event sets (write shards split by the hash of the
//! event ID; Kinesis shards) merge freely. If both remember the same event ID, or both hold a
//! mark for the same partition, the merge is refused with
//! [`Error::OverlappingState`](crate::Error::OverlappingState): adding their aggregates would
//! count those events twice.

pub(crate) mod deduped;
mod fpset;
mod id;
mod refused;
mod rice;
mod seq;
mod stream;

pub use deduped::Deduped;
pub(crate) use deduped::{read_nested_params, write_nested_params};
pub(crate) use fpset::FpSet;
pub(crate) use id::check_disjoint;
pub use id::{IdDedup, IdDedupBuilder, MAX_SLOTS};
pub(crate) use refused::Refused;
pub(crate) use rice::{read_sorted, write_sorted};
pub use seq::{SeqDedup, SeqNum};
pub use stream::StreamRecord;

use crate::codec::Codec;
use crate::error::Result;
use crate::hash::{StableHash, hash_bytes};
use crate::merge::{Insert, Merge};

/// What happened to an offered event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// New: folded into the aggregate and remembered.
    Folded,
    /// Already folded (same event ID within the horizon, or a sequence number at or below the
    /// partition's mark): counted, not folded.
    Duplicate,
    /// Older than the state can vouch for: before `latest − horizon`, for a closed window, or
    /// — sequence dedup — below its partition's mark yet above where the batch started, i.e.
    /// out of order within the batch. Counted, not folded.
    Late,
}

/// Folding events exactly once: an [`Insert`] of events that also says what happened to each
/// ([`Deduped`], [`Windowed`](crate::Windowed)). [`Insert::insert`] is `offer` without the
/// verdict; a `store::Metric` folds through `offer` (its `FoldState` is an
/// [`Aggregate`](crate::Aggregate) that implements this).
pub trait Offer<E>: Insert<E> {
    /// Folds `event` if it is new, else counts it as a duplicate or late; says which.
    ///
    /// # Errors
    ///
    /// What the aggregate's [`Insert::insert`] returns for the event's value (checked only for
    /// new events), or [`Error::Overflow`](crate::Error::Overflow) of a counter. On error
    /// nothing changed: the event is not remembered, so a corrected redelivery is folded.
    fn offer(&mut self, event: E) -> Result<Outcome>;
}

/// A kind of dedup memory a [`Deduped`] holds: [`IdDedup`] (event IDs for a horizon) or
/// [`SeqDedup`] (a high-water mark per partition). [`DedupBy`] says which events it reads.
pub trait Dedup: Merge + Codec + Clone + Default {
    /// Whether nothing was remembered yet (no event folded through it).
    fn is_blank(&self) -> bool;
}

/// How a [`Dedup`] kind decides about events of type `E`: asked before the value is folded,
/// told after.
pub trait DedupBy<E: ?Sized>: Dedup {
    /// Whether `event` is new ([`Outcome::Folded`]), a duplicate or late; changes nothing.
    fn verdict(&self, event: &E) -> Outcome;

    /// Remembers `event`, which [`verdict`](DedupBy::verdict) just called new.
    ///
    /// # Errors
    ///
    /// [`Error::Internal`](crate::Error::Internal) if the verdict changed in between (a bug).
    fn remember(&mut self, event: &E) -> Result<()>;
}

impl Dedup for IdDedup {
    fn is_blank(&self) -> bool {
        self.latest_event_time().is_none()
    }
}

impl Dedup for SeqDedup {
    fn is_blank(&self) -> bool {
        self.is_empty()
    }
}

impl<V> DedupBy<Event<V>> for IdDedup {
    fn verdict(&self, e: &Event<V>) -> Outcome {
        self.check(e.id, e.time_ms)
    }

    fn remember(&mut self, e: &Event<V>) -> Result<()> {
        remembered(self.insert(e.id, e.time_ms)?)
    }
}

/// Checks that remembering an event the verdict called new did remember it.
pub(crate) fn remembered(outcome: Outcome) -> Result<()> {
    match outcome {
        Outcome::Folded => Ok(()),
        _ => Err(crate::Error::internal(
            "dedup refused an event its verdict called new",
        )),
    }
}

/// An event's identity: the 64-bit stable hash (xxh3-64, fixed seed, see [`crate::hash`]) of its
/// ID's canonical bytes.
///
/// The fingerprint is 64 bits wide: with `n` IDs held, a new event collides with one of them
/// (a *false duplicate*) with probability about `n / 2⁶⁴`. The same ID gives the same
/// fingerprint in every process, platform and version of the crate.
///
/// ```
/// use shardfold::EventId;
/// let a = EventId::new("059f36b4-87a3-44ab-83d2-661975830a7d");
/// assert_eq!(a, EventId::from("059f36b4-87a3-44ab-83d2-661975830a7d"));
/// assert_eq!(EventId::new(&42u64), EventId::from(42u64));
/// assert_ne!(EventId::new(&42u64), EventId::new(&42u32)); // integers hash at their own width
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EventId(u64);

impl EventId {
    /// The ID of any value with canonical bytes (strings, byte slices, integers).
    pub fn new<T: StableHash + ?Sized>(id: &T) -> Self {
        EventId(id.stable_hash())
    }

    /// The ID of raw bytes.
    pub fn from_bytes(bytes: &[u8]) -> Self {
        EventId(hash_bytes(bytes))
    }

    /// An ID from a fingerprint computed earlier with [`EventId::fingerprint`].
    pub fn from_fingerprint(fingerprint: u64) -> Self {
        EventId(fingerprint)
    }

    /// The 64-bit fingerprint.
    pub fn fingerprint(self) -> u64 {
        self.0
    }
}

impl From<&str> for EventId {
    fn from(id: &str) -> Self {
        EventId::new(id)
    }
}

impl From<&String> for EventId {
    fn from(id: &String) -> Self {
        EventId::new(id)
    }
}

impl From<&[u8]> for EventId {
    fn from(id: &[u8]) -> Self {
        EventId::from_bytes(id)
    }
}

impl From<u64> for EventId {
    fn from(id: u64) -> Self {
        EventId::new(&id)
    }
}

impl From<u128> for EventId {
    fn from(id: u128) -> Self {
        EventId::new(&id)
    }
}

/// One event offered to a [`Deduped`] or [`Windowed`](crate::Windowed) state through the
/// [`Insert`] trait: its ID, event time (Unix milliseconds, UTC) and value.
#[derive(Debug, Clone, PartialEq)]
pub struct Event<V> {
    /// The event's identity.
    pub id: EventId,
    /// Event time, milliseconds since the Unix epoch (UTC).
    pub time_ms: u64,
    /// The value folded into the aggregate.
    pub value: V,
}

impl<V> Event<V> {
    /// An event.
    pub fn new(id: impl Into<EventId>, time_ms: u64, value: V) -> Self {
        Event {
            id: id.into(),
            time_ms,
            value,
        }
    }
}

/// Writes an optional latest event time: a flag byte, then the u64 LE when present.
pub(crate) fn write_latest(latest: Option<u64>, out: &mut Vec<u8>) {
    match latest {
        None => out.push(0),
        Some(t) => {
            out.push(1);
            out.extend_from_slice(&t.to_le_bytes());
        }
    }
}

/// Reads what [`write_latest`] wrote.
pub(crate) fn read_latest(r: &mut crate::codec::Reader<'_>) -> crate::Result<Option<u64>> {
    match r.u8("latest event time flag")? {
        0 => Ok(None),
        1 => r.u64("latest event time").map(Some),
        _ => Err(crate::Error::invalid_state("bad latest event time flag")),
    }
}
