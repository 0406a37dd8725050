//! [`SqsBatch`]: an `SqsEvent` parsed into events, and the `SqsBatchResponse` of their fold.

use std::fmt::Display;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};

use super::{ItemOutcome, Items, LatePolicy, Summary};
use crate::dedup::Event;
use crate::error::Result;
use crate::store::FoldReport;

/// The messages of one `SqsEvent`: the events your closure parsed from them, each mapped back
/// to its message ID, and the messages it could not parse (see the [module docs](super)).
///
/// ```
/// use aws_lambda_events::event::sqs::SqsEvent;
/// use shardfold::Event;
/// use shardfold::lambda::SqsBatch;
/// use shardfold::store::{EventOutcome, FoldReport};
///
/// let event: SqsEvent = serde_json::from_str(r#"{"Records": [
///     {"messageId": "a", "body": "5"}, {"messageId": "b", "body": "five"}]}"#)?;
/// let batch = SqsBatch::parse(&event, |m| {
///     let v: i64 = m.body.as_deref().unwrap_or_default().parse().map_err(|e| format!("{e}"))?;
///     Ok::<_, String>(Event::new(m.message_id.as_deref().unwrap_or_default(), 0, v))
/// });
/// assert_eq!(batch.events().len(), 1);
/// assert_eq!(batch.message_id(0), Some("a"));
/// // as if the fold had appended the event
/// let folded = Ok(FoldReport { outcomes: vec![EventOutcome::Accepted] });
/// let failed: Vec<_> = batch.response(&folded).batch_item_failures
///     .into_iter().map(|f| f.item_identifier).collect();
/// assert_eq!(failed, ["b"]);
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct SqsBatch<V> {
    items: Items,
    events: Vec<Event<V>>,
    /// The message index of each event.
    owners: Vec<usize>,
}

impl<V> SqsBatch<V> {
    /// Runs `parse` on every message of `event`, in order. A message for which it returns
    /// `Err` is unparsable (its reason is the error's `Display`): never folded, always
    /// reported as failed. So is a message without a `messageId`, whatever `parse` says.
    ///
    /// `parse` chooses each event's ID — the message ID, or a business ID from the body (see
    /// the [module docs](super#sqs-which-event-id)) — its time and its value.
    pub fn parse<E: Display>(
        event: &SqsEvent,
        mut parse: impl FnMut(&SqsMessage) -> std::result::Result<Event<V>, E>,
    ) -> Self {
        let mut batch = SqsBatch {
            items: Items::default(),
            events: Vec::with_capacity(event.records.len()),
            owners: Vec::with_capacity(event.records.len()),
        };
        for (i, message) in event.records.iter().enumerate() {
            let parsed = match message.message_id.as_deref() {
                Some(id) if !id.is_empty() => parse(message).map_err(|e| e.to_string()),
                _ => Err("the message has no messageId".to_owned()),
            };
            let id = message.message_id.clone().unwrap_or_default();
            if let Some(e) = batch.items.push(id, parsed) {
                batch.events.push(e);
                batch.owners.push(i);
            }
        }
        batch.items.folded = batch.events.len();
        batch
    }

    /// Whether a late event is reported as failed ([`LatePolicy::Acknowledge`] by default).
    pub fn late_policy(mut self, late: LatePolicy) -> Self {
        self.items.late = late;
        self
    }

    /// The events to fold, in message order (unparsable messages left out).
    pub fn events(&self) -> &[Event<V>] {
        &self.events
    }

    /// The number of messages in the batch.
    pub fn len(&self) -> usize {
        self.items.ids.len()
    }

    /// Whether the batch has no message.
    pub fn is_empty(&self) -> bool {
        self.items.ids.is_empty()
    }

    /// The message ID of `events()[event]`.
    pub fn message_id(&self, event: usize) -> Option<&str> {
        let owner = *self.owners.get(event)?;
        self.items.ids.get(owner).map(String::as_str)
    }

    /// The unparsable messages: `(message ID, reason)`, in message order.
    pub fn unparsable(&self) -> impl Iterator<Item = (&str, &str)> {
        self.items.unparsable()
    }

    /// Every message's ID and outcome, given the fold's result, in message order.
    pub fn outcomes<'r>(
        &'r self,
        folded: &'r Result<FoldReport>,
    ) -> impl Iterator<Item = (&'r str, ItemOutcome<'r>)> + 'r {
        self.items.outcomes(folded)
    }

    /// The IDs of the messages to deliver again, each once, in message order: unparsable
    /// ones, `Failed` ones (every one when the fold returned `Err`), and late ones under
    /// [`LatePolicy::Retry`].
    pub fn failed_ids<'r>(&'r self, folded: &'r Result<FoldReport>) -> Vec<&'r str> {
        self.items.failures(folded)
    }

    /// The partial batch response: exactly [`failed_ids`](Self::failed_ids). Empty when every
    /// message was folded (or was a duplicate, or appended): Lambda then deletes them all.
    pub fn response(&self, folded: &Result<FoldReport>) -> SqsBatchResponse {
        let mut response = SqsBatchResponse::default();
        response.set_failures(self.failed_ids(folded));
        response
    }

    /// A response naming every message: for a handler that could not fold at all (the store
    /// could not be opened) but wants to answer rather than fail the invocation.
    pub fn fail_all(&self) -> SqsBatchResponse {
        let mut response = SqsBatchResponse::default();
        let mut seen = std::collections::BTreeSet::new();
        let ids = self.items.ids.iter().filter(|id| seen.insert(id.as_str()));
        response.set_failures(ids.cloned());
        response
    }

    /// How many messages ended each way.
    pub fn summary(&self, folded: &Result<FoldReport>) -> Summary {
        self.items.summary(folded, self.failed_ids(folded).len())
    }
}

/// The message's `SentTimestamp` attribute (Unix milliseconds, set by SQS when it accepted the
/// message): an event time for bodies that carry none. `None` when absent or not a number.
pub fn sent_timestamp_ms(message: &SqsMessage) -> Option<u64> {
    message.attributes.get("SentTimestamp")?.parse().ok()
}
