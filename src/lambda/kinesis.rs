//! [`KinesisBatch`]: a `KinesisEvent` parsed into stream records, and the
//! `KinesisEventResponse` naming the first failed sequence number.

use std::fmt::Display;

use aws_lambda_events::event::kinesis::{KinesisEvent, KinesisEventRecord};
use aws_lambda_events::event::streams::KinesisEventResponse;
use serde::de::DeserializeOwned;

use super::{ItemOutcome, Items, LatePolicy, Slot, Summary};
use crate::dedup::{Event, SeqNum, StreamRecord};
#[cfg(doc)]
use crate::error::Error;
use crate::error::Result;
use crate::merge::Insert;
use crate::store::FoldReport;

/// The records of one `KinesisEvent` (one Kinesis shard, in order) as [`StreamRecord`]s, each
/// mapped back to its sequence number, and the records your closure could not parse. Only
/// the records before the first unparsable one are folded: Lambda redelivers everything from
/// the first failure on (see the [module docs](super#kinesis-first-failed-sequence-number)).
///
/// ```
/// use aws_lambda_events::event::kinesis::KinesisEvent;
/// use shardfold::lambda::KinesisBatch;
/// use shardfold::store::{EventOutcome, FoldReport};
/// use shardfold::Outcome;
///
/// // data is base64: "7", "x", "9"
/// let event: KinesisEvent = serde_json::from_str(r#"{"Records": [
///   {"eventID": "shardId-000000000000:101", "eventSourceARN": "arn:aws:kinesis:eu-west-1:1:stream/s",
///    "kinesis": {"sequenceNumber": "101", "data": "Nw==", "approximateArrivalTimestamp": 1700000000.987}},
///   {"eventID": "shardId-000000000000:102", "eventSourceARN": "arn:aws:kinesis:eu-west-1:1:stream/s",
///    "kinesis": {"sequenceNumber": "102", "data": "eA==", "approximateArrivalTimestamp": 1700000001}},
///   {"eventID": "shardId-000000000000:103", "eventSourceARN": "arn:aws:kinesis:eu-west-1:1:stream/s",
///    "kinesis": {"sequenceNumber": "103", "data": "OQ==", "approximateArrivalTimestamp": 1700000002}}
/// ]}"#)?;
/// let batch = KinesisBatch::parse(&event, |r| std::str::from_utf8(&r.kinesis.data)
///     .map_err(|e| e.to_string())?.parse::<i64>().map_err(|e| e.to_string()));
/// // "x" cannot be parsed: only the record before it is folded; 102 and 103 come again
/// assert_eq!(batch.records().len(), 1);
/// assert_eq!(batch.records()[0].partition, "arn:aws:kinesis:eu-west-1:1:stream/s/shardId-000000000000");
/// assert_eq!(batch.records()[0].time_ms, 1_700_000_000_987);
/// let folded = Ok(FoldReport { outcomes: vec![EventOutcome::Done(Outcome::Folded)] });
/// assert_eq!(batch.first_failure(&folded), Some("102"));
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct KinesisBatch<V> {
    items: Items,
    /// Every parsed record (the folded ones are the first `items.folded`).
    records: Vec<StreamRecord<V>>,
    /// The batch index of each parsed record.
    owners: Vec<usize>,
}

impl<V> KinesisBatch<V> {
    /// Runs `parse` on every record of `event`, in order (its data is already decoded from
    /// base64: `record.kinesis.data`). A record for which it returns `Err` is unparsable (its
    /// reason is the error's `Display`); so is one without a valid sequence number or shard
    /// ID ([`kinesis_partition`]).
    ///
    /// Each parsed value becomes a [`StreamRecord`]: partition [`kinesis_partition`], the
    /// record's sequence number, and its approximate arrival time as the event time.
    ///
    /// That time is only as good as `aws_lambda_events` makes it: version 1.2.1 reads the
    /// digits after the decimal point of `approximateArrivalTimestamp` as milliseconds, so
    /// Lambda's usual three decimals (`1700000000.987`) are exact, but a value serialized
    /// with fewer (`1700000000.5`, `…000.98`) comes out up to a second early (`…000.005`,
    /// `…000.098`). The time places a record in its window (a high-water mark ignores it);
    /// if windows must be exact to the millisecond, put the event time in the payload and use
    /// [`parse_timed`](Self::parse_timed).
    pub fn parse<E: Display>(
        event: &KinesisEvent,
        mut parse: impl FnMut(&KinesisEventRecord) -> std::result::Result<V, E>,
    ) -> Self {
        Self::parse_with(event, |r| parse(r).map(|v| (None, v)))
    }

    /// As [`parse`](Self::parse), with the event time (Unix milliseconds) from your closure —
    /// the payload's own time — instead of the approximate arrival time.
    pub fn parse_timed<E: Display>(
        event: &KinesisEvent,
        mut parse: impl FnMut(&KinesisEventRecord) -> std::result::Result<(u64, V), E>,
    ) -> Self {
        Self::parse_with(event, |r| parse(r).map(|(t, v)| (Some(t), v)))
    }

    fn parse_with<E: Display>(
        event: &KinesisEvent,
        mut parse: impl FnMut(&KinesisEventRecord) -> std::result::Result<(Option<u64>, V), E>,
    ) -> Self {
        let mut batch = KinesisBatch {
            items: Items::default(),
            records: Vec::with_capacity(event.records.len()),
            owners: Vec::with_capacity(event.records.len()),
        };
        for (i, record) in event.records.iter().enumerate() {
            let parsed = stream_record(record, &mut parse);
            let id = record.kinesis.sequence_number.clone();
            if let Some(r) = batch.items.push(id, parsed) {
                batch.records.push(r);
                batch.owners.push(i);
            }
        }
        // the records before the first unparsable one
        batch.items.folded = batch
            .items
            .slots
            .iter()
            .take_while(|s| matches!(s, Slot::Parsed(_)))
            .count();
        batch
    }

    /// Checks every record to fold against `template` — the state the metric starts from,
    /// e.g. `Deduped::by_sequence(A::default())` — before anything is written: the first one
    /// it refuses ([`Insert::check_insert`]: a NaN, an infinity in a sum) becomes unparsable,
    /// with the aggregate's error as its reason, and the records from it on are not folded.
    ///
    /// Needed with a sequence high-water mark (`Deduped<A, SeqDedup>`): the fold would refuse
    /// that record but fold the later ones, raising the mark above it, and its redelivery
    /// would then pass for a duplicate. Harmless (and cheap) with any other state.
    pub fn screen<T: Insert<StreamRecord<V>>>(&mut self, template: &T) {
        let refused = self
            .records
            .iter()
            .take(self.items.folded)
            .enumerate()
            .find_map(|(j, r)| template.check_insert(r).err().map(|e| (j, e)));
        let Some((j, e)) = refused else { return };
        if let Some(slot) = self
            .owners
            .get(j)
            .and_then(|&i| self.items.slots.get_mut(i))
        {
            *slot = Slot::Unparsable(format!("refused by the aggregate: {e}"));
        }
        self.items.folded = j;
    }

    /// Whether a late record is reported as failed ([`LatePolicy::Acknowledge`] by default).
    /// Under a sequence mark a record is late when it comes after a higher one of its shard in
    /// the same batch (out of order).
    pub fn late_policy(mut self, late: LatePolicy) -> Self {
        self.items.late = late;
        self
    }

    /// The records to fold: those before the first unparsable (or screened) one, in order.
    pub fn records(&self) -> &[StreamRecord<V>] {
        self.records.get(..self.items.folded).unwrap_or_default()
    }

    /// [`records`](Self::records) as [`Event`]s for dedup by ID — into a
    /// [`Series`](crate::store::Series) or a `Deduped<A>` metric: the ID is
    /// [`StreamRecord::dedup_id`], the stable hash of (partition, sequence number).
    pub fn events(&self) -> Vec<Event<V>>
    where
        V: Clone,
    {
        let records = self.records().iter();
        records
            .map(|r| Event::new(r.dedup_id(), r.time_ms, r.value.clone()))
            .collect()
    }

    /// The number of records in the batch.
    pub fn len(&self) -> usize {
        self.items.ids.len()
    }

    /// Whether the batch has no record.
    pub fn is_empty(&self) -> bool {
        self.items.ids.is_empty()
    }

    /// The unparsable (or screened) records: `(sequence number, reason)`, in order.
    pub fn unparsable(&self) -> impl Iterator<Item = (&str, &str)> {
        self.items.unparsable()
    }

    /// Every record's sequence number and outcome, given the fold's result, in batch order.
    pub fn outcomes<'r>(
        &'r self,
        folded: &'r Result<FoldReport>,
    ) -> impl Iterator<Item = (&'r str, ItemOutcome<'r>)> + 'r {
        self.items.outcomes(folded)
    }

    /// The sequence number of the first failed record in batch order, if any: Lambda restarts
    /// the shard from it.
    pub fn first_failure<'r>(&'r self, folded: &'r Result<FoldReport>) -> Option<&'r str> {
        let late = self.items.late;
        self.outcomes(folded)
            .find(|(_, o)| o.is_failure(late))
            .map(|(seq, _)| seq)
    }

    /// The response: empty when nothing failed (Lambda checkpoints the whole batch), else the
    /// [`first_failure`](Self::first_failure) alone — Lambda redelivers from it, and dedup
    /// makes the records after it that were folded duplicates.
    pub fn response(&self, folded: &Result<FoldReport>) -> KinesisEventResponse {
        let mut response = KinesisEventResponse::default();
        response.set_failures(self.first_failure(folded));
        response
    }

    /// A response that redelivers the whole batch (its first record's sequence number).
    pub fn fail_all(&self) -> KinesisEventResponse {
        let mut response = KinesisEventResponse::default();
        response.set_failures(self.items.ids.first());
        response
    }

    /// How many records ended each way (`reported`: the records from the first failure on).
    pub fn summary(&self, folded: &Result<FoldReport>) -> Summary {
        let late = self.items.late;
        let first = self.outcomes(folded).position(|(_, o)| o.is_failure(late));
        let reported = first.map_or(0, |i| self.len() - i);
        self.items.summary(folded, reported)
    }
}

/// Parses one record: its partition, sequence number, and (by `parse`) value and maybe time.
fn stream_record<V, E: Display>(
    record: &KinesisEventRecord,
    parse: &mut impl FnMut(&KinesisEventRecord) -> std::result::Result<(Option<u64>, V), E>,
) -> std::result::Result<StreamRecord<V>, String> {
    let partition = kinesis_partition(record).ok_or_else(|| {
        format!(
            "no shard ID in eventID {:?} (expected shardId-…:<sequence number>)",
            record.event_id.as_deref().unwrap_or_default()
        )
    })?;
    let seq = SeqNum::parse(&record.kinesis.sequence_number)
        .map_err(|e| format!("sequence number {:?}: {e}", record.kinesis.sequence_number))?;
    let (time, value) = parse(record).map_err(|e| e.to_string())?;
    let arrival = || {
        let arrived = &record.kinesis.approximate_arrival_timestamp.0;
        u64::try_from(arrived.timestamp_millis()).unwrap_or(0)
    };
    let time_ms = time.unwrap_or_else(arrival);
    Ok(StreamRecord::new(partition, seq, time_ms, value))
}

/// The partition a record's sequence number belongs to: its Kinesis shard, from the `eventID`
/// (`shardId-000000000000:<sequence number>`), qualified by the stream's ARN when the record
/// has one (`<eventSourceARN>/shardId-000000000000`), so that two streams feeding one metric
/// never share a high-water mark. `None` when the `eventID` has no `shardId-` prefix.
pub fn kinesis_partition(record: &KinesisEventRecord) -> Option<String> {
    let event_id = record.event_id.as_deref()?;
    let (shard, _) = event_id.split_once(':')?;
    if !shard.starts_with("shardId-") {
        return None;
    }
    Some(match record.event_source_arn.as_deref() {
        Some(arn) if !arn.is_empty() => format!("{arn}/{shard}"),
        _ => shard.to_owned(),
    })
}

/// Parses a Kinesis record's data (already decoded from base64) as JSON into `T` (for a
/// closure of [`KinesisBatch::parse`]).
///
/// # Errors
///
/// [`Error::InvalidParameter`] named `record body` when the data is not JSON of the shape
/// of `T`.
pub fn json_data<T: DeserializeOwned>(record: &KinesisEventRecord) -> Result<T> {
    super::json(&record.kinesis.data)
}
