//! AWS Lambda glue: what every SQS or Kinesis handler would otherwise write by hand.
//!
//! A handler does three things with a batch: parse each record into an event, fold the
//! events, and tell Lambda which records to deliver again. This module does the first and
//! the last, around your own `fold`:
//!
//! 1. [`SqsBatch::parse`] / [`KinesisBatch::parse`] run your closure on every record. A record
//!    it refuses (malformed JSON, a missing field, …) is kept aside as *unparsable*, with the
//!    closure's reason, and reported as a failure: it is **never folded**.
//! 2. You fold [`SqsBatch::events`] (or [`KinesisBatch::records`] / [`KinesisBatch::events`])
//!    with [`Series::fold`](crate::store::Series::fold) or
//!    [`Metric::fold`](crate::store::Metric::fold) — both return the same
//!    [`FoldReport`], one outcome per event in order.
//! 3. [`SqsBatch::response`] / [`KinesisBatch::response`] turn that result into the *partial
//!    batch response* Lambda expects when the event source mapping has
//!    `FunctionResponseTypes: ["ReportBatchItemFailures"]`:
//!    `{"batchItemFailures":[{"itemIdentifier":"…"}]}`.
//!
//! # What counts as a failure
//!
//! | outcome of a record | reported as failed? |
//! |---|---|
//! | unparsable (the closure returned `Err`) | yes |
//! | [`EventOutcome::Failed`]: a value the aggregate refuses (NaN, ±∞ in a sum…), a store error, contention, the fold's deadline | yes |
//! | the whole fold returned `Err` | yes, every record |
//! | not folded (Kinesis: after the batch's first failure; or a report that does not match the batch) | yes |
//! | [`EventOutcome::Done`]`(`[`Outcome::Folded`]`)`, [`Outcome::Duplicate`], [`EventOutcome::Accepted`] | no |
//! | [`Outcome::Late`] | no by default ([`LatePolicy::Acknowledge`]); yes with [`LatePolicy::Retry`] |
//!
//! A *duplicate* is a success: the event is already in the stored state (an earlier delivery,
//! or a write of this very batch whose reply was lost). A *late* event is older than the
//! dedup horizon (or out of order in a stream): it is refused and counted in the stored
//! state's late counter, and no redelivery will ever make it foldable — retrying it only
//! delays the queue, so by default it is acknowledged. Choose [`LatePolicy::Retry`] if your
//! queue's redrive policy should move such messages to a dead-letter queue for inspection.
//!
//! A value the aggregate refuses (NaN) is a *poison* record: it fails on every delivery.
//! SQS moves it to the queue's dead-letter queue after `maxReceiveCount` receives; a Kinesis
//! mapping retries it until `MaximumRetryAttempts` or `MaximumRecordAgeInSeconds`, then
//! skips it (sending it to the on-failure destination). Nothing else of the batch waits for it
//! on SQS; on Kinesis the records after it are held back with it (stream order).
//!
//! # SQS: which event ID
//!
//! Dedup is by the [`Event::id`] your closure chooses. SQS redelivers a message (visibility
//! timeout, a partial batch failure) with the **same `messageId`**, so the message ID is
//! enough to fold every SQS redelivery once. A *producer* that sends the same business event
//! again (its `SendMessage` timed out, it replays a file) creates a new message with a new
//! `messageId`: if that can happen, take the event's ID from the body (an order ID, an
//! idempotency key) — then both kinds of repeat fold once. Messages without a `messageId`
//! (not a real SQS event) cannot be acknowledged one by one: they are unparsable, and their
//! empty `itemIdentifier` makes Lambda retry the whole batch (AWS documents that an empty
//! identifier fails the whole batch).
//!
//! FIFO queues: AWS advises a handler that processes in order to stop at the first failure
//! and report the rest of the batch too. Folding commutes — the stored aggregate does not
//! depend on the order its events arrive in — so reporting only the failed messages is
//! safe here; report the rest yourself (from [`SqsBatch::outcomes`]) if something else in
//! your handler depends on order.
//!
//! # Kinesis: first failed sequence number
//!
//! A Kinesis batch holds records of one shard, in order. With `ReportBatchItemFailures`,
//! Lambda checkpoints before the reported sequence number and restarts the shard **from** it:
//! everything after it in the batch is delivered again. So the response names only the
//! *first* failed record (in batch order), and [`KinesisBatch::records`] holds only the
//! records before the first unparsable one — later ones will come again, so they are not
//! folded now (a record folded now and redelivered would be a harmless duplicate, but a
//! *failed* record overtaken by a later one is not: under a sequence high-water mark its
//! redelivery would sit below the mark and pass for a duplicate). For the same reason call
//! [`KinesisBatch::screen`] with the metric's template before folding into a
//! `Deduped<A, SeqDedup>`: it finds values the aggregate refuses (NaN) before anything is
//! written, and cuts the batch there.
//!
//! Each record becomes a [`StreamRecord`] whose partition is the Kinesis shard (the
//! `eventID`'s `shardId-…` prefix, qualified by the stream ARN so that two streams never
//! share a mark), whose sequence number is the record's, and whose time is its approximate
//! arrival time. Fold them into a [`Metric`](crate::store::Metric) of `Deduped<A, SeqDedup>`
//! (one high-water mark per shard; needs `ParallelizationFactor = 1`), or fold
//! [`KinesisBatch::events`] — events whose ID is the stable hash of (shard, sequence number)
//! — into a [`Series`](crate::store::Series) or a `Deduped<A>` metric (any parallelization);
//! the [`dedup`](crate::dedup#by-sequence-number) module docs compare them.
//!
//! # Example
//!
//! An SQS handler's logic (with `lambda_runtime` it runs inside `service_fn`; see
//! `examples/lambda_sqs.rs`): a good message, a malformed body, and an order with no items
//! whose mean price is `0 / 0` — NaN, refused by the aggregate.
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Duration;
//! use aws_lambda_events::event::sqs::SqsEvent;
//! use shardfold::lambda::{SqsBatch, json_body};
//! use shardfold::store::{Clock, MemoryStore, Series, SeriesConfig, SystemClock};
//! use shardfold::{Event, Stats};
//!
//! /// The message body.
//! #[derive(serde::Deserialize)]
//! struct Order { order: String, time_ms: u64, total: f64, items: u32 }
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let now = SystemClock.now_ms();
//! let body = |order: &str, total: f64, items: u32| {
//!     format!(r#"{{"order":"{order}","time_ms":{now},"total":{total:?},"items":{items}}}"#)
//! };
//! let records = serde_json::json!({ "Records": [
//!     { "messageId": "m-1", "body": body("o-1", 30.0, 3) },
//!     { "messageId": "m-2", "body": "{\"order\": " },
//!     { "messageId": "m-3", "body": body("o-3", 0.0, 0) },
//! ]});
//! let event: SqsEvent = serde_json::from_value(records)?;
//!
//! // the handler: parse, fold, respond
//! let config = SeriesConfig::new(Stats::default()).window(Duration::from_secs(60));
//! let series = Series::<Stats, f64>::open(Arc::new(MemoryStore::new()), "prices", config).await?;
//! let batch = SqsBatch::parse(&event, |message| {
//!     let o: Order = json_body(message)?;
//!     // the order ID, not the message ID: a producer's resend folds once too
//!     Ok::<_, shardfold::Error>(Event::new(o.order.as_str(), o.time_ms, o.total / f64::from(o.items)))
//! });
//! assert_eq!(batch.events().len(), 2); // m-2 is never folded
//! let folded = series.fold(batch.events()).await;
//! let response = batch.response(&folded);
//! assert_eq!(
//!     serde_json::to_string(&response)?,
//!     r#"{"batchItemFailures":[{"itemIdentifier":"m-2"},{"itemIdentifier":"m-3"}]}"#
//! );
//! let view = series.query_range(now - now % 60_000, now + 60_000).await?;
//! assert_eq!(view.total()?.count(), 1); // o-1 only, with its mean price 10
//! # Ok::<(), Box<dyn std::error::Error>>(()) }).unwrap();
//! ```

mod kinesis;
mod sqs;

use std::collections::BTreeSet;
use std::fmt::Display;

use serde::de::DeserializeOwned;

use crate::dedup::Outcome;
use crate::error::{Error, Result};
use crate::store::{EventOutcome, FoldReport};
#[cfg(doc)]
use crate::{Event, StreamRecord};

/// The `aws_lambda_events` crate this module is built on (features `sqs`, `kinesis`,
/// `streams`): use its event and response types through this path and they always match
/// shardfold's, without a dependency of your own.
pub use aws_lambda_events;
pub use kinesis::{KinesisBatch, json_data, kinesis_partition};
pub use sqs::{SqsBatch, sent_timestamp_ms};

/// Whether a record refused as [`Outcome::Late`] is reported as a failure.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum LatePolicy {
    /// Acknowledge it (the default): it is counted in the stored state's late counter, and no
    /// redelivery could ever fold it.
    #[default]
    Acknowledge,
    /// Report it as failed, so the event source delivers it again and, after the queue's
    /// `maxReceiveCount`, moves it to the dead-letter queue.
    Retry,
}

/// What happened to one record of a batch ([`SqsBatch::outcomes`], [`KinesisBatch::outcomes`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ItemOutcome<'r> {
    /// The parse closure refused it (or [`KinesisBatch::screen`] did), for this reason. Never
    /// folded; a failure.
    Unparsable(&'r str),
    /// The fold's outcome for its event.
    Folded(&'r EventOutcome),
    /// The whole fold returned this error: a failure.
    BatchFailed(&'r Error),
    /// Not folded: a Kinesis record after the batch's first failure (redelivered with it), or
    /// a record of a batch whose report does not match its events. A failure.
    NotFolded,
}

impl ItemOutcome<'_> {
    /// Whether the record must be delivered again (see the [module docs](self)).
    pub fn is_failure(&self, late: LatePolicy) -> bool {
        match self {
            ItemOutcome::Unparsable(_) | ItemOutcome::BatchFailed(_) | ItemOutcome::NotFolded => {
                true
            }
            ItemOutcome::Folded(EventOutcome::Failed(_)) => true,
            ItemOutcome::Folded(EventOutcome::Done(Outcome::Late)) => late == LatePolicy::Retry,
            ItemOutcome::Folded(_) => false,
        }
    }
}

/// How many records of a batch ended each way: for logs and metrics of the handler.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Summary {
    /// Records in the batch.
    pub records: usize,
    /// Folded into a stored state ([`Outcome::Folded`]).
    pub folded: usize,
    /// Appended to a series' records ([`EventOutcome::Accepted`]); a compaction folds each
    /// exactly once.
    pub accepted: usize,
    /// Already in the stored state ([`Outcome::Duplicate`]).
    pub duplicates: usize,
    /// Refused as late ([`Outcome::Late`]), failed or not as the [`LatePolicy`] says.
    pub late: usize,
    /// [`EventOutcome::Failed`] or [`ItemOutcome::BatchFailed`].
    pub failed: usize,
    /// Refused by the parse closure or the screen.
    pub unparsable: usize,
    /// Not folded ([`ItemOutcome::NotFolded`]).
    pub not_folded: usize,
    /// Distinct records reported as failed in the response (for Kinesis, the records from the
    /// first failure on).
    pub reported: usize,
}

/// Parses a record body as JSON into `T`.
///
/// # Errors
///
/// [`Error::InvalidParameter`] named `record body`, with serde_json's message (line and
/// column), when `body` is not JSON of the shape of `T`.
pub fn json<T: DeserializeOwned>(body: &[u8]) -> Result<T> {
    serde_json::from_slice(body).map_err(|e| Error::InvalidParameter {
        name: "record body",
        reason: e.to_string(),
    })
}

/// Parses an SQS message's body as JSON into `T` (for a closure of [`SqsBatch::parse`]).
///
/// # Errors
///
/// [`Error::InvalidParameter`] named `record body` when the message has no body or it is
/// not JSON of the shape of `T`.
pub fn json_body<T: DeserializeOwned>(
    message: &aws_lambda_events::event::sqs::SqsMessage,
) -> Result<T> {
    match message.body.as_deref() {
        Some(body) => json(body.as_bytes()),
        None => Err(Error::InvalidParameter {
            name: "record body",
            reason: "the message has no body".to_owned(),
        }),
    }
}

/// Where a record's event is: its index among the parsed events, or the reason it has none.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Slot {
    Parsed(usize),
    Unparsable(String),
}

/// The records of a batch in order: each one's identifier for the response, and its slot.
#[derive(Debug, Clone, Default)]
struct Items {
    ids: Vec<String>,
    slots: Vec<Slot>,
    /// How many parsed events are folded (all, or a prefix for ordered batches).
    folded: usize,
    parsed: usize,
    late: LatePolicy,
}

impl Items {
    /// Adds a record: its event (the index it gets is returned) or the reason it has none.
    fn push<T, E: Display>(&mut self, id: String, parsed: std::result::Result<T, E>) -> Option<T> {
        self.ids.push(id);
        match parsed {
            Ok(value) => {
                self.slots.push(Slot::Parsed(self.parsed));
                self.parsed += 1;
                Some(value)
            }
            Err(e) => {
                self.slots.push(Slot::Unparsable(e.to_string()));
                None
            }
        }
    }

    /// The unparsable records: `(identifier, reason)`, in batch order.
    fn unparsable(&self) -> impl Iterator<Item = (&str, &str)> {
        self.ids
            .iter()
            .zip(&self.slots)
            .filter_map(|(id, slot)| match slot {
                Slot::Unparsable(reason) => Some((id.as_str(), reason.as_str())),
                Slot::Parsed(_) => None,
            })
    }

    /// Every record's identifier and outcome, in batch order.
    fn outcomes<'r>(
        &'r self,
        folded: &'r Result<FoldReport>,
    ) -> impl Iterator<Item = (&'r str, ItemOutcome<'r>)> + 'r {
        let report = match folded {
            Ok(r) if r.outcomes.len() == self.folded => Ok(Some(&r.outcomes)),
            Ok(_) => Ok(None),
            Err(e) => Err(e),
        };
        self.ids.iter().zip(&self.slots).map(move |(id, slot)| {
            let outcome = match (slot, &report) {
                (Slot::Unparsable(reason), _) => ItemOutcome::Unparsable(reason),
                (Slot::Parsed(_), Err(e)) => ItemOutcome::BatchFailed(e),
                (Slot::Parsed(i), Ok(Some(outcomes))) => outcomes
                    .get(*i)
                    .map_or(ItemOutcome::NotFolded, ItemOutcome::Folded),
                (Slot::Parsed(_), Ok(None)) => ItemOutcome::NotFolded,
            };
            (id.as_str(), outcome)
        })
    }

    /// The identifiers of the failed records, each once, in batch order.
    fn failures<'r>(&'r self, folded: &'r Result<FoldReport>) -> Vec<&'r str> {
        let mut seen = BTreeSet::new();
        self.outcomes(folded)
            .filter(|(_, o)| o.is_failure(self.late))
            .filter_map(|(id, _)| seen.insert(id).then_some(id))
            .collect()
    }

    fn summary(&self, folded: &Result<FoldReport>, reported: usize) -> Summary {
        let mut s = Summary {
            records: self.ids.len(),
            reported,
            ..Summary::default()
        };
        for (_, o) in self.outcomes(folded) {
            let counter = match o {
                ItemOutcome::Unparsable(_) => &mut s.unparsable,
                ItemOutcome::NotFolded => &mut s.not_folded,
                ItemOutcome::BatchFailed(_) | ItemOutcome::Folded(EventOutcome::Failed(_)) => {
                    &mut s.failed
                }
                ItemOutcome::Folded(EventOutcome::Accepted) => &mut s.accepted,
                ItemOutcome::Folded(EventOutcome::Done(Outcome::Folded)) => &mut s.folded,
                ItemOutcome::Folded(EventOutcome::Done(Outcome::Duplicate)) => &mut s.duplicates,
                ItemOutcome::Folded(EventOutcome::Done(Outcome::Late)) => &mut s.late,
            };
            *counter += 1;
        }
        s
    }
}
