//! [`Deduped`]: an aggregate that folds each event exactly once.

use super::{Event, EventId, IdDedup, Outcome, SeqDedup, SeqNum, add, bump};
use crate::codec::{Codec, Limits, Reader, tags, write_section_with};
use crate::error::{Error, Result};
use crate::merge::{Insert, Merge};

/// An aggregate `A` with its dedup state and counters of refused events.
///
/// Events offered by ID ([`insert`](Deduped::insert)) pass an [`IdDedup`]; events offered by
/// sequence number ([`insert_seq`](Deduped::insert_seq)) pass a [`SeqDedup`]. Use one kind per
/// metric: the two states do not know about each other. Duplicates and late events are counted
/// in the state ([`duplicates`](Deduped::duplicates), [`late`](Deduped::late)) and never folded.
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
pub struct Deduped<A> {
    ids: IdDedup,
    seqs: SeqDedup,
    agg: A,
    duplicates: u64,
    late: u64,
}

impl<A> Deduped<A> {
    /// An empty state: `aggregate` (normally empty) guarded by an [`IdDedup`] with the given
    /// horizon and slot width (see [`IdDedup::new`]).
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
        Ok(Deduped {
            ids: IdDedup::try_new(horizon_ms, slot_ms)?,
            seqs: SeqDedup::default(),
            agg: aggregate,
            duplicates: 0,
            late: 0,
        })
    }

    /// The aggregate of every folded event.
    pub fn aggregate(&self) -> &A {
        &self.agg
    }

    /// How many events were refused as duplicates.
    pub fn duplicates(&self) -> u64 {
        self.duplicates
    }

    /// How many events were refused as late.
    pub fn late(&self) -> u64 {
        self.late
    }

    /// The event-ID dedup state.
    pub fn id_dedup(&self) -> &IdDedup {
        &self.ids
    }

    /// The sequence-number dedup state.
    pub fn seq_dedup(&self) -> &SeqDedup {
        &self.seqs
    }

    /// What [`insert`](Deduped::insert) would do with the event, ignoring its value; changes
    /// nothing.
    pub fn check(&self, id: EventId, time_ms: u64) -> Outcome {
        self.ids.check(id, time_ms)
    }

    /// What [`insert_seq`](Deduped::insert_seq) would do with the event, ignoring its value.
    pub fn check_seq(&self, partition: &str, seq: &SeqNum) -> Outcome {
        self.seqs.check(partition, seq)
    }

    /// Counts a refused event.
    fn count(&mut self, outcome: Outcome) -> Result<Outcome> {
        match outcome {
            Outcome::Duplicate => self.duplicates = bump(self.duplicates, "duplicate count")?,
            Outcome::Late => self.late = bump(self.late, "late count")?,
            Outcome::Folded => {}
        }
        Ok(outcome)
    }

    fn check_count(&self, outcome: Outcome) -> Result<()> {
        match outcome {
            Outcome::Duplicate => bump(self.duplicates, "duplicate count").map(drop),
            Outcome::Late => bump(self.late, "late count").map(drop),
            Outcome::Folded => Ok(()),
        }
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
        let outcome = self.ids.check(id, time_ms);
        self.offer(outcome, value, |d| d.ids.insert(id, time_ms))
    }

    /// Offers an event by sequence number within `partition` (each partition in order): folds
    /// `value` if `seq` is above the partition's mark, else counts a duplicate.
    ///
    /// # Errors
    ///
    /// As [`insert`](Deduped::insert); on error the mark is not raised.
    pub fn insert_seq<V>(&mut self, partition: &str, seq: &SeqNum, value: V) -> Result<Outcome>
    where
        A: Insert<V>,
    {
        let outcome = self.seqs.check(partition, seq);
        self.offer(outcome, value, |d| d.seqs.advance(partition, seq))
    }

    /// Counts a refused event, or folds `value` and then lets `remember` record the event.
    fn offer<V>(
        &mut self,
        outcome: Outcome,
        value: V,
        remember: impl FnOnce(&mut Self) -> Outcome,
    ) -> Result<Outcome>
    where
        A: Insert<V>,
    {
        if outcome != Outcome::Folded {
            return self.count(outcome);
        }
        self.agg.insert(value)?;
        Ok(remember(self))
    }
}

impl<A: Insert<V>, V> Insert<Event<V>> for Deduped<A> {
    fn check_insert(&self, e: &Event<V>) -> Result<()> {
        match self.ids.check(e.id, e.time_ms) {
            Outcome::Folded => self.agg.check_insert(&e.value),
            other => self.check_count(other),
        }
    }

    fn insert(&mut self, e: Event<V>) -> Result<()> {
        Deduped::insert(self, e.id, e.time_ms, e.value).map(drop)
    }
}

impl<A: Merge> Merge for Deduped<A> {
    fn check_merge(&self, other: &Self) -> Result<()> {
        self.ids.check_merge(&other.ids)?;
        self.seqs.check_merge(&other.seqs)?;
        self.agg.check_merge(&other.agg)?;
        add(self.duplicates, other.duplicates, "duplicate count")?;
        add(self.late, other.late, "late count").map(drop)
    }

    fn merge(&mut self, other: &Self) -> Result<()> {
        self.check_merge(other)?;
        self.ids.merge(&other.ids)?;
        self.seqs.merge(&other.seqs)?;
        self.agg.merge(&other.agg)?;
        self.duplicates = add(self.duplicates, other.duplicates, "duplicate count")?;
        self.late = add(self.late, other.late, "late count")?;
        Ok(())
    }
}

/// Parameter block: a section with the [`IdDedup`] parameters, the aggregate's type tag u16 LE
/// and a section with its parameters. Payload: sections with the [`IdDedup`] and [`SeqDedup`]
/// payloads, duplicates u64 LE, late u64 LE, a section with the aggregate's payload.
impl<A: Codec> Codec for Deduped<A> {
    const TYPE_TAG: u16 = tags::DEDUPED;

    fn write_params(&self, out: &mut Vec<u8>) {
        write_section_with(out, |o| self.ids.write_params(o));
        write_nested_params(&self.agg, out);
    }

    fn write_payload(&self, out: &mut Vec<u8>) {
        write_section_with(out, |o| self.ids.write_payload(o));
        write_section_with(out, |o| self.seqs.write_payload(o));
        out.extend_from_slice(&self.duplicates.to_le_bytes());
        out.extend_from_slice(&self.late.to_le_bytes());
        write_section_with(out, |o| self.agg.write_payload(o));
    }

    fn read_parts(params: &[u8], payload: &[u8], limits: &Limits) -> Result<Self> {
        let mut p = Reader::new(params);
        let mut r = Reader::new(payload);
        let id_params = p.section("dedup params")?;
        let agg_params = read_nested_params::<A>(&mut p)?;
        p.finish("Deduped params")?;
        let d = Deduped {
            ids: IdDedup::read_parts(id_params, r.section("id dedup")?, limits)?,
            seqs: SeqDedup::read_parts(&[], r.section("seq dedup")?, limits)?,
            duplicates: r.u64("duplicate count")?,
            late: r.u64("late count")?,
            agg: A::read_parts(agg_params, r.section("deduped aggregate")?, limits)?,
        };
        r.finish("Deduped payload")?;
        let nothing_folded = d.ids.latest_event_time().is_none() && d.seqs.is_empty();
        if (nothing_folded && d.duplicates > 0)
            || (d.ids.latest_event_time().is_none() && d.late > 0)
        {
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
