//! [`Deduped`]: an aggregate that folds each event exactly once.

use super::{
    Dedup, DedupBy, Event, EventId, IdDedup, Offer, Outcome, Refused, SeqDedup, SeqNum,
    StreamRecord,
};
use crate::codec::{Codec, Limits, Reader, tags, write_section_with};
use crate::error::{Error, Result};
use crate::merge::{Insert, Merge, after_check};

/// An aggregate `A` guarded by one kind of dedup memory `D` ([`IdDedup`] by default, or
/// [`SeqDedup`]), with counters of refused events.
///
/// With [`IdDedup`], events are offered by ID ([`insert`](Deduped::insert), [`Event`],
/// [`StreamRecord`] by its [`dedup_id`](StreamRecord::dedup_id)); with [`SeqDedup`], stream
/// records by partition and sequence number ([`insert_seq`](Deduped::insert_seq),
/// [`StreamRecord`]). Duplicates and late events are counted in the state
/// ([`duplicates`](Deduped::duplicates), [`late`](Deduped::late)) and never folded.
///
/// Merging two states that remember a common event ID (or a common sequence partition) is
/// refused with [`Error::OverlappingState`]; states folded from disjoint events — write shards,
/// partial results — merge freely, their counters add up.
///
/// ```
/// use shardfold::{Deduped, EventId, Merge, Outcome, Sum};
/// let mut shard0 = Deduped::new(3_600_000, 10_000, Sum::default());
/// let mut shard1 = shard0.clone();
/// assert_eq!(shard0.insert(EventId::from("m-1"), 1_000, 5)?, Outcome::Folded);
/// assert_eq!(shard0.insert(EventId::from("m-1"), 1_000, 5)?, Outcome::Duplicate); // redelivered
/// assert_eq!(shard1.insert(EventId::from("m-2"), 2_000, 7)?, Outcome::Folded);
/// shard0.merge(&shard1)?;
/// assert_eq!((shard0.aggregate().get(), shard0.duplicates()), (12, 1));
/// assert!(shard0.merge(&shard1).is_err()); // would count m-2 twice
/// # Ok::<(), shardfold::Error>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Deduped<A, D = IdDedup> {
    dedup: D,
    agg: A,
    refused: Refused,
}

impl<A, D> Deduped<A, D> {
    /// `aggregate` (normally empty) guarded by `dedup` (normally empty).
    pub fn with_dedup(dedup: D, aggregate: A) -> Self {
        Deduped {
            dedup,
            agg: aggregate,
            refused: Refused::default(),
        }
    }

    /// The aggregate of every folded event.
    pub fn aggregate(&self) -> &A {
        &self.agg
    }

    /// The dedup memory.
    pub fn dedup(&self) -> &D {
        &self.dedup
    }

    /// How many events were refused as duplicates.
    pub fn duplicates(&self) -> u64 {
        self.refused.duplicates
    }

    /// How many events were refused as late: beyond the horizon ([`IdDedup`]), or out of order
    /// within a batch ([`SeqDedup`]).
    pub fn late(&self) -> u64 {
        self.refused.late
    }

    /// Counts a refused event, or folds `value` and then lets `remember` record the event.
    fn offer_value<V>(
        &mut self,
        outcome: Outcome,
        value: V,
        remember: impl FnOnce(&mut D) -> Result<()>,
    ) -> Result<Outcome>
    where
        A: Insert<V>,
    {
        if outcome != Outcome::Folded {
            return self.refused.count(outcome);
        }
        self.agg.insert(value)?;
        remember(&mut self.dedup)?;
        Ok(Outcome::Folded)
    }

    /// Offers an event through the dedup kind: counts it if refused; else checks its value,
    /// remembers the event and folds the value ([`Insert::insert_unchecked`]: checked first).
    fn offer_event<E, V>(&mut self, event: E) -> Result<Outcome>
    where
        D: DedupBy<E>,
        A: Insert<V>,
        E: HasValue<V>,
    {
        let outcome = self.dedup.verdict(&event);
        if outcome != Outcome::Folded {
            return self.refused.count(outcome);
        }
        self.agg.check_insert(event.value())?;
        self.dedup.remember(&event)?;
        self.agg.insert_unchecked(event.into_value())?;
        Ok(Outcome::Folded)
    }

    /// What offering `event` would do, ignoring its value.
    fn check_event<E, V>(&self, event: &E, value: &V) -> Result<()>
    where
        D: DedupBy<E>,
        A: Insert<V>,
    {
        match self.dedup.verdict(event) {
            Outcome::Folded => self.agg.check_insert(value),
            other => self.refused.check_count(other),
        }
    }
}

impl<A> Deduped<A> {
    /// An empty state: `aggregate` (normally empty) guarded by an [`IdDedup`] with the given
    /// horizon and slot width (see [`IdDedup::new`]). From durations:
    ///
    /// ```
    /// use std::time::Duration;
    /// use shardfold::{IdDedup, Sum};
    /// let d = IdDedup::builder()
    ///     .horizon(Duration::from_secs(6 * 3600))
    ///     .slot(Duration::from_secs(30))
    ///     .build_deduped(Sum::default())?;
    /// assert_eq!(d.id_dedup().horizon_ms(), 21_600_000);
    /// # Ok::<(), shardfold::Error>(())
    /// ```
    ///
    /// # Panics
    ///
    /// When the parameters are invalid, see [`Deduped::try_new`].
    pub fn new(horizon_ms: u64, slot_ms: u64, aggregate: A) -> Self {
        match Self::try_new(horizon_ms, slot_ms, aggregate) {
            Ok(d) => d,
            Err(e) => panic!("{e}"),
        }
    }

    /// As [`Deduped::new`].
    ///
    /// # Errors
    ///
    /// [`Error::InvalidParameter`] as [`IdDedup::try_new`].
    pub fn try_new(horizon_ms: u64, slot_ms: u64, aggregate: A) -> Result<Self> {
        Ok(Deduped::with_dedup(
            IdDedup::try_new(horizon_ms, slot_ms)?,
            aggregate,
        ))
    }

    /// The event-ID dedup state.
    pub fn id_dedup(&self) -> &IdDedup {
        &self.dedup
    }

    /// What [`insert`](Deduped::insert) would do with the event, ignoring its value; changes
    /// nothing.
    pub fn check(&self, id: EventId, time_ms: u64) -> Outcome {
        self.dedup.check(id, time_ms)
    }

    /// Offers an event by ID: folds `value` into the aggregate if the event is new, else counts
    /// it as a duplicate or late.
    ///
    /// # Errors
    ///
    /// What the aggregate's [`Insert::insert`] returns for `value` (checked only for new
    /// events), or [`Error::Overflow`] of a counter. On error nothing changed: in particular the
    /// ID is **not** remembered, so a corrected redelivery is still folded.
    pub fn insert<V>(&mut self, id: EventId, time_ms: u64, value: V) -> Result<Outcome>
    where
        A: Insert<V>,
    {
        let outcome = self.dedup.check(id, time_ms);
        self.offer_value(outcome, value, |d| {
            super::remembered(d.insert(id, time_ms)?)
        })
    }
}

impl<A> Deduped<A, SeqDedup> {
    /// An empty state: `aggregate` (normally empty) guarded by per-partition high-water marks.
    pub fn by_sequence(aggregate: A) -> Self {
        Deduped::with_dedup(SeqDedup::default(), aggregate)
    }

    /// The sequence-number dedup state.
    pub fn seq_dedup(&self) -> &SeqDedup {
        &self.dedup
    }

    /// Ends the current batch (see [`SeqDedup::end_batch`]).
    pub fn end_batch(&mut self) {
        self.dedup.end_batch();
    }

    /// What [`insert_seq`](Deduped::insert_seq) would do with the event, ignoring its value.
    pub fn check_seq(&self, partition: &str, seq: &SeqNum) -> Outcome {
        self.dedup.check(partition, seq)
    }

    /// Offers a record by sequence number within `partition` (each partition in order): folds
    /// `value` if `seq` is above the partition's mark, else counts a duplicate (or, out of
    /// order within the batch, a late record).
    ///
    /// # Errors
    ///
    /// As [`insert`](Deduped::insert); on error the mark is not raised.
    pub fn insert_seq<V>(&mut self, partition: &str, seq: &SeqNum, value: V) -> Result<Outcome>
    where
        A: Insert<V>,
    {
        let outcome = self.dedup.check(partition, seq);
        self.offer_value(outcome, value, |d| {
            super::remembered(d.advance(partition, seq))
        })
    }
}

impl<A, D> Deduped<A, D> {
    /// Offers a stream record to the dedup kind `D` (see [`StreamRecord`]).
    ///
    /// # Errors
    ///
    /// As [`insert`](Deduped::insert).
    pub fn insert_record<V>(&mut self, record: StreamRecord<V>) -> Result<Outcome>
    where
        A: Insert<V>,
        D: DedupBy<StreamRecord<V>>,
    {
        self.offer(record)
    }
}

impl<A: Insert<V>, V, D: DedupBy<Event<V>>> Offer<Event<V>> for Deduped<A, D> {
    fn offer(&mut self, e: Event<V>) -> Result<Outcome> {
        self.offer_event(e)
    }
}

impl<A: Insert<V>, V, D: DedupBy<Event<V>>> Insert<Event<V>> for Deduped<A, D> {
    fn check_insert(&self, e: &Event<V>) -> Result<()> {
        self.check_event(e, &e.value)
    }

    /// [`offer`](Offer::offer), which folds or counts the event as `check_insert` found.
    fn insert_unchecked(&mut self, e: Event<V>) -> Result<()> {
        after_check(self.offer(e), "Deduped: offering a checked event failed").map(drop)
    }
}

impl<A: Insert<V>, V, D: DedupBy<StreamRecord<V>>> Offer<StreamRecord<V>> for Deduped<A, D> {
    fn offer(&mut self, r: StreamRecord<V>) -> Result<Outcome> {
        self.offer_event(r)
    }
}

impl<A: Insert<V>, V, D: DedupBy<StreamRecord<V>>> Insert<StreamRecord<V>> for Deduped<A, D> {
    fn check_insert(&self, r: &StreamRecord<V>) -> Result<()> {
        self.check_event(r, &r.value)
    }

    /// [`offer`](Offer::offer), which folds or counts the record as `check_insert` found.
    fn insert_unchecked(&mut self, r: StreamRecord<V>) -> Result<()> {
        after_check(self.offer(r), "Deduped: offering a checked record failed").map(drop)
    }
}

/// An event carrying a value of type `V`.
trait HasValue<V> {
    fn value(&self) -> &V;
    fn into_value(self) -> V;
}

impl<V> HasValue<V> for Event<V> {
    fn value(&self) -> &V {
        &self.value
    }
    fn into_value(self) -> V {
        self.value
    }
}

impl<V> HasValue<V> for StreamRecord<V> {
    fn value(&self) -> &V {
        &self.value
    }
    fn into_value(self) -> V {
        self.value
    }
}

impl<A: Merge, D: Dedup> Merge for Deduped<A, D> {
    fn check_merge(&self, other: &Self) -> Result<()> {
        self.dedup.check_merge(&other.dedup)?;
        self.agg.check_merge(&other.agg)?;
        self.refused.plus(&other.refused).map(drop)
    }

    fn merge_unchecked(&mut self, other: &Self) -> Result<()> {
        self.refused = after_check(
            self.refused.plus(&other.refused),
            "Deduped: checked refusal counts overflowed",
        )?;
        self.dedup.merge_unchecked(&other.dedup)?;
        self.agg.merge_unchecked(&other.agg)
    }
}

/// Parameter block: the dedup kind's type tag u16 LE and a section with its parameters, the
/// aggregate's type tag u16 LE and a section with its parameters. Payload: a section with the
/// dedup kind's payload, duplicates u64 LE, late u64 LE, a section with the aggregate's
/// payload.
impl<A: Codec, D: Dedup> Codec for Deduped<A, D> {
    const TYPE_TAG: u16 = tags::DEDUPED;

    fn write_params(&self, out: &mut Vec<u8>) {
        write_nested_params(&self.dedup, out);
        write_nested_params(&self.agg, out);
    }

    fn write_payload(&self, out: &mut Vec<u8>) {
        write_section_with(out, |o| self.dedup.write_payload(o));
        self.refused.write(out);
        write_section_with(out, |o| self.agg.write_payload(o));
    }

    fn read_parts(params: &[u8], payload: &[u8], limits: &Limits) -> Result<Self> {
        let mut p = Reader::new(params);
        let mut r = Reader::new(payload);
        let dedup_params = read_nested_params::<D>(&mut p)?;
        let agg_params = read_nested_params::<A>(&mut p)?;
        p.finish("Deduped params")?;
        let d = Deduped {
            dedup: D::read_parts(dedup_params, r.section("dedup state")?, limits)?,
            refused: Refused::read(&mut r)?,
            agg: A::read_parts(agg_params, r.section("deduped aggregate")?, limits)?,
        };
        r.finish("Deduped payload")?;
        if d.dedup.is_blank() && !d.refused.is_zero() {
            return Err(Error::invalid_state(
                "refused events counted but nothing folded",
            ));
        }
        Ok(d)
    }
}

/// Appends a nested aggregate's type tag (u16 LE) and its parameter block as a section.
pub(crate) fn write_nested_params<A: Codec>(agg: &A, out: &mut Vec<u8>) {
    out.extend_from_slice(&A::TYPE_TAG.to_le_bytes());
    write_section_with(out, |o| agg.write_params(o));
}

/// Reads what [`write_nested_params`] wrote, checking the tag.
pub(crate) fn read_nested_params<'a, A: Codec>(p: &mut Reader<'a>) -> Result<&'a [u8]> {
    let found = p.u16("nested aggregate tag")?;
    if found != A::TYPE_TAG {
        return Err(Error::WrongType {
            expected: A::TYPE_TAG,
            found,
        });
    }
    p.section("nested aggregate params")
}
