//! [`StreamRecord`]: a record of an ordered stream (a Kinesis shard, a Kafka partition), and how
//! each dedup kind reads it.

use super::{DedupBy, EventId, IdDedup, Outcome, SeqDedup, SeqNum, remembered};
use crate::error::Result;

/// One record of an ordered stream: its partition (Kinesis shard ID, Kafka `topic-partition`),
/// its sequence number in that partition (of any length: Kinesis's have 56 digits), its event
/// time (Unix ms, UTC; Kinesis's approximate arrival timestamp will do), its value, and
/// optionally the producer's own ID for its payload.
///
/// Which dedup it meets is the state's choice (see the [module docs](crate::dedup#by-sequence-number)):
///
/// * [`SeqDedup`] reads `(partition, seq)` against the partition's high-water mark;
/// * [`IdDedup`] reads [`dedup_id`](StreamRecord::dedup_id) at `time_ms`: the payload ID when
///   the record has one (a producer's retry, which gets a new sequence number, is then a
///   duplicate too), else [`seq_id`](StreamRecord::seq_id), the stable hash of
///   `(partition, seq)`.
///
/// Through a `store::Metric` a record goes to the shard of its partition's
/// stable hash, so a partition's mark (or IDs) live in one stored key.
///
/// ```
/// use shardfold::{Deduped, Outcome, SeqDedup, SeqNum, StreamRecord, Sum};
/// let seq: SeqNum = "49590338271490256608559692538361571095921575989136588898".parse()?;
/// let r = StreamRecord::new("shardId-000000000000", seq, 1_700_000_000_000, 5i64);
/// let mut d = Deduped::by_sequence(Sum::default());
/// assert_eq!(d.insert_record(r.clone())?, Outcome::Folded);
/// d.end_batch();
/// assert_eq!(d.insert_record(r)?, Outcome::Duplicate); // the batch, retried
/// # Ok::<(), shardfold::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct StreamRecord<V> {
    /// The partition: a Kinesis shard ID, a Kafka `topic-partition`.
    pub partition: String,
    /// The record's sequence number (Kinesis) or offset (Kafka) in its partition.
    pub seq: SeqNum,
    /// Event time, milliseconds since the Unix epoch (UTC).
    pub time_ms: u64,
    /// The value folded into the aggregate.
    pub value: V,
    /// The producer's ID for the payload, when it sets one (kept across its retries).
    pub payload_id: Option<EventId>,
}

impl<V> StreamRecord<V> {
    /// A record without a payload ID.
    pub fn new(partition: impl Into<String>, seq: SeqNum, time_ms: u64, value: V) -> Self {
        StreamRecord {
            partition: partition.into(),
            seq,
            time_ms,
            value,
            payload_id: None,
        }
    }

    /// The record with the producer's payload ID (for dedup by payload under [`IdDedup`]).
    pub fn with_payload_id(mut self, id: impl Into<EventId>) -> Self {
        self.payload_id = Some(id.into());
        self
    }

    /// The stable ID of `(partition, seq)`: the [`EventId`] of the bytes `len(partition)` (u64
    /// LE), the partition's UTF-8 bytes, the sequence number's normalized decimal digits.
    pub fn seq_id(&self) -> EventId {
        let (p, s) = (self.partition.as_bytes(), self.seq.as_str().as_bytes());
        let mut bytes = Vec::with_capacity(8 + p.len() + s.len());
        bytes.extend_from_slice(&(p.len() as u64).to_le_bytes());
        bytes.extend_from_slice(p);
        bytes.extend_from_slice(s);
        EventId::from_bytes(&bytes)
    }

    /// The ID [`IdDedup`] remembers: the payload ID if set, else [`seq_id`](Self::seq_id).
    pub fn dedup_id(&self) -> EventId {
        self.payload_id.unwrap_or_else(|| self.seq_id())
    }
}

/// By ID ([`StreamRecord::dedup_id`]) at the record's event time: safe with any number of
/// concurrent batches per partition, memory bounded by the horizon.
impl<V> DedupBy<StreamRecord<V>> for IdDedup {
    fn verdict(&self, r: &StreamRecord<V>) -> Outcome {
        self.check(r.dedup_id(), r.time_ms)
    }

    fn remember(&mut self, r: &StreamRecord<V>) -> Result<()> {
        remembered(self.insert(r.dedup_id(), r.time_ms)?)
    }
}

/// By the partition's high-water mark: one mark per partition, in-order single writer only.
impl<V> DedupBy<StreamRecord<V>> for SeqDedup {
    fn verdict(&self, r: &StreamRecord<V>) -> Outcome {
        self.check(&r.partition, &r.seq)
    }

    fn remember(&mut self, r: &StreamRecord<V>) -> Result<()> {
        remembered(self.advance(&r.partition, &r.seq))
    }
}
