//! The `lambda` feature (issue 10 item 3): SQS partial batch responses and Kinesis
//! first-failed-sequence responses built from a fold's report, on JSON fixtures as Lambda
//! delivers them — a malformed body, a NaN value and a store failure each reported with the
//! right identifiers; redeliveries never counted twice (checked against the exact truth).
#![cfg(all(feature = "lambda", feature = "sqlite"))]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_lambda_events::event::kinesis::KinesisEvent;
use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use serde::Deserialize;
use shardfold::lambda::{
    ItemOutcome, KinesisBatch, LatePolicy, SqsBatch, json_body, json_data, sent_timestamp_ms,
};
use shardfold::store::{
    EventOutcome, FoldReport, KvStore, ManualClock, Metric, RetryPolicy, Series, SeriesConfig,
    ShardKey, SqliteStore, StoreFuture, Version, WriteOutcome,
};
use shardfold::{Deduped, Error, Event, Outcome, SeqDedup, Stats, StoreErrorKind, StreamRecord};

/// 2025-12-02T00:00:00Z: the fixtures' event times are minutes after it.
const T0: u64 = 1_764_633_600_000;

const SQS_BATCH: &str = include_str!("fixtures/lambda/sqs_batch.json");
const SQS_REDELIVERY: &str = include_str!("fixtures/lambda/sqs_redelivery.json");
const KINESIS_BATCH: &str = include_str!("fixtures/lambda/kinesis_batch.json");

// ----- the handlers' parse step, as an application writes it ------------------------------

/// An SQS message body.
#[derive(Deserialize)]
struct Order {
    order: String,
    time_ms: u64,
    total: f64,
    items: u32,
}

/// A Kinesis record's data.
#[derive(Deserialize)]
struct StreamOrder {
    total: f64,
    items: u32,
}

/// The event of a message: the order ID (so a producer's resend folds once), the mean price.
fn order_event(m: &SqsMessage) -> shardfold::Result<Event<f64>> {
    let o: Order = json_body(m)?;
    Ok(Event::new(
        o.order.as_str(),
        o.time_ms,
        o.total / f64::from(o.items),
    ))
}

fn mean_price(r: &aws_lambda_events::event::kinesis::KinesisEventRecord) -> shardfold::Result<f64> {
    let o: StreamOrder = json_data(r)?;
    Ok(o.total / f64::from(o.items))
}

// ----- independent truth from the fixtures ------------------------------------------------

/// What a message body really holds, decided without shardfold: `None` when it is not a
/// complete order (missing field, wrong type, truncated JSON).
fn truth_of(body: &str) -> Option<(String, u64, f64)> {
    let v: serde_json::Value = serde_json::from_str(body).ok()?;
    let total = v.get("total")?.as_f64()?;
    let items = v.get("items")?.as_u64()?;
    let time = v
        .get("time_ms")
        .and_then(serde_json::Value::as_u64)
        .unwrap_or(0);
    Some((
        v.get("order")?.as_str()?.to_owned(),
        time,
        total / items as f64,
    ))
}

fn sqs(json: &str) -> SqsEvent {
    serde_json::from_str(json).unwrap()
}

fn kinesis(json: &str) -> KinesisEvent {
    serde_json::from_str(json).unwrap()
}

fn ids(response: &aws_lambda_events::event::sqs::SqsBatchResponse) -> Vec<String> {
    let failures = response.batch_item_failures.iter();
    failures.map(|f| f.item_identifier.clone()).collect()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

// ----- a store whose writes fail on demand -------------------------------------------------

/// Wraps a store; while `failing` is set, every create/update of a key that `matches`
/// fails with a connection error before reaching the store (the database is down).
struct FailingStore {
    inner: Arc<dyn KvStore>,
    failing: AtomicBool,
    matches: Mutex<KeyFilter>,
}

/// Which keys a [`FailingStore`] refuses to write.
type KeyFilter = Box<dyn Fn(&[u8]) -> bool + Send + Sync>;

impl FailingStore {
    fn new(inner: Arc<dyn KvStore>) -> Arc<Self> {
        Arc::new(FailingStore {
            inner,
            failing: AtomicBool::new(false),
            matches: Mutex::new(Box::new(|_| true)),
        })
    }

    fn fail(&self, on: bool) {
        self.failing.store(on, Ordering::SeqCst);
    }

    fn fail_keys(&self, matches: impl Fn(&[u8]) -> bool + Send + Sync + 'static) {
        *self.matches.lock().unwrap() = Box::new(matches);
        self.fail(true);
    }

    fn refuses(&self, key: &[u8]) -> bool {
        self.failing.load(Ordering::SeqCst) && (self.matches.lock().unwrap())(key)
    }

    fn down() -> Error {
        Error::Store {
            backend: "test",
            kind: StoreErrorKind::Connection,
            message: "connection refused (injected)".to_owned(),
            source: None,
        }
    }
}

impl KvStore for FailingStore {
    fn backend(&self) -> &'static str {
        self.inner.backend()
    }
    fn read<'a>(&'a self, key: &'a [u8]) -> StoreFuture<'a, Option<(Vec<u8>, Version)>> {
        self.inner.read(key)
    }
    fn create<'a>(&'a self, key: &'a [u8], value: &'a [u8]) -> StoreFuture<'a, WriteOutcome> {
        if self.refuses(key) {
            return Box::pin(async { Err(FailingStore::down()) });
        }
        self.inner.create(key, value)
    }
    fn update<'a>(
        &'a self,
        key: &'a [u8],
        value: &'a [u8],
        expected: Version,
    ) -> StoreFuture<'a, WriteOutcome> {
        if self.refuses(key) {
            return Box::pin(async { Err(FailingStore::down()) });
        }
        self.inner.update(key, value, expected)
    }
    fn list<'a>(&'a self, prefix: &'a [u8]) -> StoreFuture<'a, Vec<Vec<u8>>> {
        self.inner.list(prefix)
    }
    fn delete<'a>(&'a self, key: &'a [u8]) -> StoreFuture<'a, bool> {
        self.inner.delete(key)
    }
    fn metric_key(&self, metric: &str, part: &str) -> Vec<u8> {
        self.inner.metric_key(metric, part)
    }
}

/// A fresh SQLite store in a temp file (removed on drop).
struct TempDb(std::path::PathBuf);

impl TempDb {
    fn new(name: &str) -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let path = std::env::temp_dir().join(format!(
            "shardfold-lambda-{name}-{}-{nanos}.db",
            std::process::id()
        ));
        TempDb(path)
    }

    async fn store(&self) -> Arc<dyn KvStore> {
        Arc::new(SqliteStore::open(&self.0).await.unwrap())
    }
}

impl Drop for TempDb {
    fn drop(&mut self) {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", self.0.display()));
        }
    }
}

fn fast_retry() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 3,
        base_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(5),
        ..RetryPolicy::default()
    }
}

async fn open_series(store: Arc<dyn KvStore>) -> Series<Stats, f64> {
    let config = SeriesConfig::new(Stats::default())
        .window(Duration::from_secs(60))
        .retry(fast_retry())
        .clock(Arc::new(ManualClock::new(T0 + 15 * 60_000)));
    Series::open(store, "orders", config).await.unwrap()
}

/// The stored count and sum over the fixtures' hour.
async fn stored(series: &Series<Stats, f64>) -> (u64, f64, shardfold::store::Tally) {
    let view = series.query_range(T0, T0 + 3_600_000).await.unwrap();
    let total = view.total().unwrap();
    (total.count(), total.sum(), view.tally())
}

/// Count and sum of the distinct orders, summed in the fold's order-independent exact way:
/// the values here are exact binary fractions, so any order gives the same sum.
fn truth(orders: &BTreeMap<String, f64>) -> (u64, f64) {
    (orders.len() as u64, orders.values().sum())
}

// ----- SQS ---------------------------------------------------------------------------------

#[test]
fn sqs_fixture_malformed_and_nan_are_reported_by_message_id() {
    let event = sqs(SQS_BATCH);
    // the truth, from the bodies alone: which messages are not orders, which are NaN, which late
    let mut malformed = BTreeSet::new();
    let mut nan = BTreeSet::new();
    let mut good = BTreeMap::new();
    for m in &event.records {
        let id = m.message_id.clone().unwrap();
        match truth_of(m.body.as_deref().unwrap()) {
            None => _ = malformed.insert(id),
            Some((_, _, v)) if v.is_nan() => _ = nan.insert(id),
            Some((order, time, v)) if time + 6 * 3_600_000 >= T0 + 15 * 60_000 => {
                good.insert(order, v);
            }
            Some(_) => {} // late
        }
    }
    assert_eq!((malformed.len(), nan.len(), good.len()), (2, 1, 3));
    runtime().block_on(async {
        let db = TempDb::new("sqs-fixture");
        let series = open_series(db.store().await).await;
        let batch = SqsBatch::parse(&event, order_event);
        let unparsable: BTreeSet<String> =
            batch.unparsable().map(|(id, _)| id.to_owned()).collect();
        assert_eq!(unparsable, malformed);
        assert_eq!(batch.events().len(), event.records.len() - malformed.len());
        let folded = series.fold(batch.events()).await;
        // NaN: the closure parsed it, the aggregate refused it at the fold
        for (id, outcome) in batch.outcomes(&folded) {
            if nan.contains(id) {
                assert!(
                    matches!(
                        outcome,
                        ItemOutcome::Folded(EventOutcome::Failed(Error::InvalidValue { .. }))
                    ),
                    "{outcome:?}"
                );
            }
        }
        let failed: BTreeSet<String> = ids(&batch.response(&folded)).into_iter().collect();
        let expected: BTreeSet<String> = malformed.union(&nan).cloned().collect();
        assert_eq!(failed, expected);
        // in message order, each once
        let in_order: Vec<String> = event
            .records
            .iter()
            .filter_map(|m| m.message_id.clone())
            .filter(|id| expected.contains(id))
            .collect();
        assert_eq!(ids(&batch.response(&folded)), in_order);
        let summary = batch.summary(&folded);
        assert_eq!(summary.unparsable, malformed.len());
        assert_eq!(summary.failed, nan.len());
        assert_eq!(summary.late, 1);
        assert_eq!(summary.accepted, good.len());
        assert_eq!(summary.reported, expected.len());
        let (count, sum, tally) = stored(&series).await;
        assert_eq!((count, sum), truth(&good));
        assert_eq!(tally.late, 1);
    });
}

#[test]
fn sqs_redelivered_and_resent_messages_are_not_counted_twice() {
    let (first, again) = (sqs(SQS_BATCH), sqs(SQS_REDELIVERY));
    // the truth: every distinct order that is complete, finite and not late, once
    let mut good = BTreeMap::new();
    for m in first.records.iter().chain(&again.records) {
        if let Some((order, time, v)) = truth_of(m.body.as_deref().unwrap())
            && v.is_finite()
            && time >= T0
        {
            good.insert(order, v);
        }
    }
    runtime().block_on(async {
        let db = TempDb::new("sqs-redelivery");
        let series = open_series(db.store().await).await;
        for event in [&first, &again, &again] {
            let batch = SqsBatch::parse(event, order_event);
            let folded = series.fold(batch.events()).await;
            // only the NaN and the malformed ones come back
            for id in ids(&batch.response(&folded)) {
                let m = event
                    .records
                    .iter()
                    .find(|m| m.message_id.as_deref() == Some(&id));
                let body = m.unwrap().body.as_deref().unwrap();
                assert!(truth_of(body).is_none_or(|(_, _, v)| v.is_nan()), "{id}");
            }
        }
        let (count, sum, tally) = stored(&series).await;
        assert_eq!((count, sum), truth(&good));
        // m-1 twice more, o-4 resent twice, o-9 once more
        assert_eq!(tally.duplicates, 2 + 2 + 1);
    });
}

#[test]
fn sqs_store_failure_fails_every_message_then_heals_exactly() {
    let event = sqs(SQS_BATCH);
    runtime().block_on(async {
        let db = TempDb::new("sqs-down");
        let store = FailingStore::new(db.store().await);
        let series = open_series(store.clone()).await;
        let batch = SqsBatch::parse(&event, order_event);
        let (count_before, ..) = stored(&series).await;
        store.fail(true);
        let folded = series.fold(batch.events()).await;
        store.fail(false);
        // every message but the late one (refused before any write, acknowledged)
        let late: Vec<&str> = batch
            .outcomes(&folded)
            .filter(|(_, o)| *o == ItemOutcome::Folded(&EventOutcome::Done(Outcome::Late)))
            .map(|(id, _)| id)
            .collect();
        assert_eq!(late.len(), 1);
        let all: Vec<String> = event
            .records
            .iter()
            .filter_map(|m| m.message_id.clone())
            .filter(|id| id != late[0])
            .collect();
        assert_eq!(ids(&batch.response(&folded)), all);
        let store_errors = batch.outcomes(&folded).filter(|(_, o)| {
            matches!(
                o,
                ItemOutcome::Folded(EventOutcome::Failed(Error::Store { .. }))
            )
        });
        assert_eq!(store_errors.count(), 3, "the three good orders");
        assert_eq!(stored(&series).await.0, count_before);
        // the redelivery, store healthy: the good orders fold once
        let folded = series.fold(batch.events()).await;
        assert_eq!(ids(&batch.response(&folded)).len(), 3, "malformed ×2, NaN");
        assert_eq!(stored(&series).await.0, 3);
    });
}

/// A `Metric` of ID-deduped stats, one of whose four shards is down: exactly the messages
/// whose events hash to that shard fail.
#[test]
fn sqs_store_failure_of_one_shard_names_exactly_its_messages() {
    let event = sqs(SQS_BATCH);
    runtime().block_on(async {
        let db = TempDb::new("sqs-shard");
        let store = FailingStore::new(db.store().await);
        let template = Deduped::new(24 * 3_600_000, 60_000, Stats::default());
        let metric = Metric::builder(store.clone(), "orders-metric")
            .shards(4)
            .retry(fast_retry())
            .template(template)
            .open()
            .await
            .unwrap();
        let batch = SqsBatch::parse(&event, order_event);
        let down = batch.events()[0].shard_key() % 4;
        let down_key = metric.shard_store_key(down as u32);
        store.fail_keys(move |k| k == down_key.as_slice());
        let folded = metric.fold(batch.events()).await;
        store.fail(false);
        let on_down_shard: BTreeSet<&str> = batch
            .events()
            .iter()
            .enumerate()
            .filter(|(_, e)| e.shard_key() % 4 == down)
            .map(|(i, _)| batch.message_id(i).unwrap())
            .collect();
        assert!(
            !on_down_shard.is_empty(),
            "the fixture must touch the shard"
        );
        let nan_or_malformed: BTreeSet<&str> = event
            .records
            .iter()
            .filter(|m| truth_of(m.body.as_deref().unwrap()).is_none_or(|(_, _, v)| v.is_nan()))
            .filter_map(|m| m.message_id.as_deref())
            .collect();
        let expected: BTreeSet<String> = on_down_shard
            .union(&nan_or_malformed)
            .map(|s| (*s).to_owned())
            .collect();
        let failed: BTreeSet<String> = ids(&batch.response(&folded)).into_iter().collect();
        assert_eq!(failed, expected);
        // the redelivery of the whole batch: nothing counted twice
        metric.fold(batch.events()).await.unwrap();
        let state = metric.query().await.unwrap();
        let finite = event
            .records
            .iter()
            .filter_map(|m| truth_of(m.body.as_deref().unwrap()).filter(|(_, _, v)| v.is_finite()));
        assert_eq!(state.aggregate().count(), finite.count() as u64);
    });
}

#[test]
fn sqs_late_events_are_acknowledged_unless_asked_to_retry() {
    let event = sqs(SQS_BATCH);
    let late_id = event.records[5].message_id.clone().unwrap();
    runtime().block_on(async {
        let db = TempDb::new("sqs-late");
        let series = open_series(db.store().await).await;
        let batch = SqsBatch::parse(&event, order_event);
        let folded = series.fold(batch.events()).await;
        assert!(!ids(&batch.response(&folded)).contains(&late_id));
        let retrying = batch.late_policy(LatePolicy::Retry);
        let failed = ids(&retrying.response(&folded));
        assert!(failed.contains(&late_id));
        assert_eq!(failed.len(), 4);
    });
}

#[test]
fn sqs_whole_fold_error_or_foreign_report_fails_every_message() {
    let event = sqs(SQS_BATCH);
    let batch = SqsBatch::parse(&event, order_event);
    let every: Vec<String> = event
        .records
        .iter()
        .map(|m| m.message_id.clone().unwrap())
        .collect();
    let err: shardfold::Result<FoldReport> = Err(FailingStore::down());
    assert_eq!(ids(&batch.response(&err)), every);
    assert_eq!(batch.summary(&err).failed, batch.events().len());
    // a report of another batch (wrong length): nothing can be acknowledged
    let foreign = Ok(FoldReport {
        outcomes: vec![EventOutcome::Accepted],
    });
    assert_eq!(ids(&batch.response(&foreign)), every);
    assert_eq!(ids(&batch.fail_all()), every);
}

#[test]
fn sqs_message_without_id_fails_the_whole_batch_and_duplicates_are_named_once() {
    let mut event = sqs(SQS_BATCH);
    event.records.truncate(2);
    let mut anonymous = event.records[0].clone();
    anonymous.message_id = None;
    event.records.push(anonymous);
    let twin = event.records[1].clone(); // malformed, delivered twice in one batch
    event.records.push(twin);
    let batch = SqsBatch::parse(&event, order_event);
    assert_eq!(batch.events().len(), 1);
    let folded = Ok(FoldReport {
        outcomes: vec![EventOutcome::Accepted],
    });
    let failed = ids(&batch.response(&folded));
    // the empty identifier makes Lambda fail the whole batch
    assert_eq!(
        failed,
        [event.records[1].message_id.clone().unwrap(), String::new()]
    );
    let reasons: Vec<&str> = batch.unparsable().map(|(_, r)| r).collect();
    assert!(
        reasons.iter().any(|r| r.contains("no messageId")),
        "{reasons:?}"
    );
}

#[test]
fn sqs_response_serializes_as_lambda_expects() {
    let event = sqs(SQS_BATCH);
    let batch = SqsBatch::parse(&event, order_event);
    let nothing_failed = Ok(FoldReport {
        outcomes: vec![EventOutcome::Accepted; batch.events().len()],
    });
    let response = batch.response(&nothing_failed);
    let m2 = event.records[1].message_id.clone().unwrap();
    let m7 = event.records[6].message_id.clone().unwrap();
    let expected = serde_json::json!({ "batchItemFailures": [
        { "itemIdentifier": m2 }, { "itemIdentifier": m7 },
    ]});
    assert_eq!(serde_json::to_value(&response).unwrap(), expected);
    let empty = SqsBatch::parse(&sqs(r#"{"Records": []}"#), order_event);
    let response = empty.response(&Ok(FoldReport { outcomes: vec![] }));
    assert_eq!(
        serde_json::to_string(&response).unwrap(),
        r#"{"batchItemFailures":[]}"#
    );
}

#[test]
fn sqs_sent_timestamp_is_read_from_the_attributes() {
    let event = sqs(SQS_BATCH);
    let sent = event.records[0].attributes["SentTimestamp"]
        .parse::<u64>()
        .unwrap();
    assert_eq!(sent_timestamp_ms(&event.records[0]), Some(sent));
    assert_eq!(sent_timestamp_ms(&SqsMessage::default()), None);
}

// ----- Kinesis -----------------------------------------------------------------------------

type SeqStats = Deduped<Stats, SeqDedup>;

async fn open_marks(store: Arc<dyn KvStore>) -> Metric<SeqStats> {
    Metric::builder(store, "orders-stream")
        .shards(4)
        .retry(fast_retry())
        .template(Deduped::by_sequence(Stats::default()))
        .open()
        .await
        .unwrap()
}

/// The handler: parse, screen against the metric's template, fold, respond.
async fn kinesis_handler(
    metric: &Metric<SeqStats>,
    event: &KinesisEvent,
) -> (KinesisBatch<f64>, shardfold::Result<FoldReport>) {
    let mut batch = KinesisBatch::parse(event, mean_price);
    batch.screen(&Deduped::by_sequence(Stats::default()));
    let folded = metric.fold(batch.records()).await;
    (batch, folded)
}

fn seq_of(event: &KinesisEvent, i: usize) -> String {
    event.records[i].kinesis.sequence_number.clone()
}

fn first_failed(response: &aws_lambda_events::event::streams::KinesisEventResponse) -> Vec<String> {
    let failures = response.batch_item_failures.iter();
    failures.filter_map(|f| f.item_identifier.clone()).collect()
}

/// The fixture's records: for each, `Some(value)` when it is a complete order.
fn kinesis_truth(event: &KinesisEvent) -> Vec<Option<f64>> {
    let data = event.records.iter().map(|r| r.kinesis.data.0.clone());
    data.map(|d| truth_of(std::str::from_utf8(&d).unwrap()).map(|(_, _, v)| v))
        .collect()
}

/// Lambda's side of a Kinesis shard with `ReportBatchItemFailures`: deliver batches of
/// `size` from the checkpoint, restart from the reported sequence number, and after
/// `retries` failed deliveries of one record skip it (`MaximumRetryAttempts`, bisect). Returns
/// the sequence numbers skipped.
async fn lambda_shard(
    metric: &Metric<SeqStats>,
    event: &KinesisEvent,
    size: usize,
    retries: usize,
) -> Vec<String> {
    let mut at = 0;
    let mut attempts: BTreeMap<String, usize> = BTreeMap::new();
    let mut skipped = Vec::new();
    while at < event.records.len() {
        let mut delivery = event.clone();
        delivery.records = event.records[at..(at + size).min(event.records.len())].to_vec();
        let (batch, folded) = kinesis_handler(metric, &delivery).await;
        match first_failed(&batch.response(&folded)).first() {
            None => at += delivery.records.len(),
            Some(seq) => {
                let i = event
                    .records
                    .iter()
                    .position(|r| &r.kinesis.sequence_number == seq)
                    .unwrap();
                let n = attempts.entry(seq.clone()).or_default();
                *n += 1;
                at = if *n > retries {
                    skipped.push(seq.clone());
                    i + 1
                } else {
                    i
                };
            }
        }
    }
    skipped
}

#[test]
fn kinesis_malformed_record_is_the_first_failure_and_nothing_after_it_is_folded() {
    let mut event = kinesis(KINESIS_BATCH);
    let truth = kinesis_truth(&event);
    let malformed = truth.iter().position(Option::is_none).unwrap();
    // the records around the malformed one, without the NaN
    event.records = [0, 1, 3, malformed, 5]
        .iter()
        .map(|&i| event.records[i].clone())
        .collect();
    runtime().block_on(async {
        let db = TempDb::new("kinesis-malformed");
        let metric = open_marks(db.store().await).await;
        let (batch, folded) = kinesis_handler(&metric, &event).await;
        assert_eq!(batch.records().len(), 3);
        let response = batch.response(&folded);
        assert_eq!(first_failed(&response), [seq_of(&event, 3)]);
        assert_eq!(
            serde_json::to_value(&response).unwrap(),
            serde_json::json!({"batchItemFailures": [{"itemIdentifier": seq_of(&event, 3)}]})
        );
        let outcomes: Vec<ItemOutcome<'_>> = batch.outcomes(&folded).map(|(_, o)| o).collect();
        assert!(matches!(outcomes[3], ItemOutcome::Unparsable(_)));
        assert_eq!(outcomes[4], ItemOutcome::NotFolded);
        let summary = batch.summary(&folded);
        assert_eq!((summary.folded, summary.reported), (3, 2));
        assert_eq!(metric.query().await.unwrap().aggregate().count(), 3);
    });
}

#[test]
fn kinesis_nan_is_screened_out_before_the_fold_and_reported() {
    let mut event = kinesis(KINESIS_BATCH);
    let truth = kinesis_truth(&event);
    let nan = truth
        .iter()
        .position(|v| v.is_some_and(f64::is_nan))
        .unwrap();
    event.records.truncate(nan + 2);
    runtime().block_on(async {
        let db = TempDb::new("kinesis-nan");
        let metric = open_marks(db.store().await).await;
        let (batch, folded) = kinesis_handler(&metric, &event).await;
        assert_eq!(
            first_failed(&batch.response(&folded)),
            [seq_of(&event, nan)]
        );
        let (_, reason) = batch.unparsable().next().unwrap();
        assert!(
            reason.contains("NaN") || reason.contains("invalid value"),
            "{reason}"
        );
        let state = metric.query().await.unwrap();
        assert_eq!(state.aggregate().count(), nan as u64);
        // redelivered from the NaN on: reported again (a poison record), never a duplicate
        let mut again = event.clone();
        again.records.drain(..nan);
        let (batch, folded) = kinesis_handler(&metric, &again).await;
        assert_eq!(
            first_failed(&batch.response(&folded)),
            [seq_of(&event, nan)]
        );
        assert_eq!(metric.query().await.unwrap().duplicates(), 0);
    });
}

/// Why [`KinesisBatch::screen`] exists: without it, the fold refuses the NaN record but folds
/// the next one, whose sequence number raises the mark above the NaN's — so the NaN's
/// redelivery would be taken for a duplicate. The response still names the NaN first.
#[test]
fn kinesis_nan_without_screen_is_reported_but_its_redelivery_passes_the_mark() {
    let mut event = kinesis(KINESIS_BATCH);
    let truth = kinesis_truth(&event);
    let nan = truth
        .iter()
        .position(|v| v.is_some_and(f64::is_nan))
        .unwrap();
    event.records.truncate(nan + 2);
    runtime().block_on(async {
        let db = TempDb::new("kinesis-unscreened");
        let metric = open_marks(db.store().await).await;
        let batch = KinesisBatch::parse(&event, mean_price);
        let folded = metric.fold(batch.records()).await;
        assert_eq!(
            first_failed(&batch.response(&folded)),
            [seq_of(&event, nan)]
        );
        let again = metric.fold(&batch.records()[nan..nan + 1]).await.unwrap();
        assert_eq!(again.outcomes[0], EventOutcome::Done(Outcome::Duplicate));
    });
}

#[test]
fn kinesis_store_failure_reports_the_first_record_then_heals_exactly() {
    let event = kinesis(KINESIS_BATCH);
    let truth = kinesis_truth(&event);
    runtime().block_on(async {
        let db = TempDb::new("kinesis-down");
        let store = FailingStore::new(db.store().await);
        let metric = open_marks(store.clone()).await;
        store.fail(true);
        let (batch, folded) = kinesis_handler(&metric, &event).await;
        store.fail(false);
        assert_eq!(first_failed(&batch.response(&folded)), [seq_of(&event, 0)]);
        let first = batch.outcomes(&folded).next().unwrap().1;
        assert!(
            matches!(
                first,
                ItemOutcome::Folded(EventOutcome::Failed(Error::Store { .. }))
            ),
            "{first:?}"
        );
        assert_eq!(metric.query().await.unwrap().aggregate().count(), 0);
        // Lambda takes over: restarts from the reported record, skips poison after 2 retries
        let skipped = lambda_shard(&metric, &event, 8, 2).await;
        let poison: Vec<String> = (0..event.records.len())
            .filter(|&i| truth[i].is_none_or(f64::is_nan))
            .map(|i| seq_of(&event, i))
            .collect();
        assert_eq!(skipped, poison);
        let good: Vec<f64> = truth
            .iter()
            .flatten()
            .copied()
            .filter(|v| v.is_finite())
            .collect();
        let state = metric.query().await.unwrap();
        assert_eq!(state.aggregate().count(), good.len() as u64);
        assert_eq!(state.aggregate().sum(), good.iter().sum::<f64>());
    });
}

#[test]
fn kinesis_redelivered_batch_is_not_counted_twice() {
    let mut event = kinesis(KINESIS_BATCH);
    let truth = kinesis_truth(&event);
    let good: Vec<usize> = (0..truth.len())
        .filter(|&i| truth[i].is_some_and(f64::is_finite))
        .collect();
    event.records = good.iter().map(|&i| event.records[i].clone()).collect();
    runtime().block_on(async {
        let db = TempDb::new("kinesis-again");
        let metric = open_marks(db.store().await).await;
        for delivery in 0..3 {
            let (batch, folded) = kinesis_handler(&metric, &event).await;
            assert!(first_failed(&batch.response(&folded)).is_empty());
            let summary = batch.summary(&folded);
            let expected = if delivery == 0 {
                (good.len(), 0)
            } else {
                (0, good.len())
            };
            assert_eq!((summary.folded, summary.duplicates), expected);
        }
        let state = metric.query().await.unwrap();
        assert_eq!(state.aggregate().count(), good.len() as u64);
        let sum: f64 = good.iter().map(|&i| truth[i].unwrap()).sum();
        assert_eq!(state.aggregate().sum(), sum);
        assert_eq!(state.duplicates(), 2 * good.len() as u64);
        let partition = shardfold::lambda::kinesis_partition(&event.records[0]).unwrap();
        assert_eq!(
            state
                .seq_dedup()
                .mark(&partition)
                .map(|s| s.as_str().to_owned()),
            Some(seq_of(&event, event.records.len() - 1))
        );
    });
}

/// ID dedup by (shard, sequence number) through a `Series`: `KinesisBatch::events`.
#[test]
fn kinesis_events_fold_once_into_a_series() {
    let event = kinesis(KINESIS_BATCH);
    let truth = kinesis_truth(&event);
    runtime().block_on(async {
        let db = TempDb::new("kinesis-series");
        let series = open_series(db.store().await).await;
        let mut responses = Vec::new();
        for _ in 0..2 {
            let batch = KinesisBatch::parse(&event, mean_price);
            let events = batch.events();
            assert_eq!(
                events[0].id,
                StreamRecord::new(
                    shardfold::lambda::kinesis_partition(&event.records[0]).unwrap(),
                    event.records[0].kinesis.sequence_number.parse().unwrap(),
                    0,
                    0.0,
                )
                .seq_id()
            );
            let folded = series.fold(&events).await;
            responses.push(first_failed(&batch.response(&folded)));
        }
        // the NaN comes first in the stream: Series refuses it, Lambda restarts there; the
        // records after it up to the malformed one are folded (their redelivery: duplicates)
        let nan = truth
            .iter()
            .position(|v| v.is_some_and(f64::is_nan))
            .unwrap();
        let malformed = truth.iter().position(Option::is_none).unwrap();
        assert!(nan < malformed);
        assert_eq!(responses, vec![vec![seq_of(&event, nan)]; 2]);
        let (count, sum, tally) = stored(&series).await;
        let folded: Vec<f64> = truth[..malformed]
            .iter()
            .flatten()
            .copied()
            .filter(|v| v.is_finite())
            .collect();
        assert_eq!((count, sum), (folded.len() as u64, folded.iter().sum()));
        assert_eq!(tally.duplicates, folded.len() as u64);
    });
}

#[test]
fn kinesis_bad_event_ids_and_sequence_numbers_are_unparsable() {
    let mut event = kinesis(KINESIS_BATCH);
    event.records.truncate(3);
    event.records[1].event_id = Some("not-a-shard".to_owned());
    event.records[2].kinesis.sequence_number = "12x".to_owned();
    let batch = KinesisBatch::parse(&event, mean_price);
    let reasons: Vec<(&str, &str)> = batch.unparsable().collect();
    assert_eq!(reasons.len(), 2);
    assert!(reasons[0].1.contains("shard"), "{reasons:?}");
    assert!(reasons[1].1.contains("sequence number"), "{reasons:?}");
    assert_eq!(batch.records().len(), 1);
    let err: shardfold::Result<FoldReport> = Err(FailingStore::down());
    assert_eq!(first_failed(&batch.response(&err)), [seq_of(&event, 0)]);
    assert_eq!(first_failed(&batch.fail_all()), [seq_of(&event, 0)]);
}

#[test]
fn kinesis_event_time_is_the_arrival_time_or_the_payloads() {
    let mut event = kinesis(KINESIS_BATCH);
    event.records.truncate(2);
    // Lambda's three decimals survive aws_lambda_events' parsing exactly
    let mut json: serde_json::Value = serde_json::from_str(KINESIS_BATCH).unwrap();
    json["Records"][1]["kinesis"]["approximateArrivalTimestamp"] =
        serde_json::json!(1764633661.987);
    let three_decimals = kinesis(&json.to_string());
    let batch = KinesisBatch::parse(&three_decimals, mean_price);
    assert_eq!(batch.records()[0].time_ms, T0 + 60_000);
    assert_eq!(batch.records()[1].time_ms, T0 + 61_987);
    // the payload's own time
    let batch = KinesisBatch::parse_timed(&event, |r| {
        let seq: u64 = r.kinesis.sequence_number[50..].parse().unwrap();
        mean_price(r).map(|v| (T0 + seq, v))
    });
    for (record, r) in batch.records().iter().zip(&event.records) {
        let tail: u64 = r.kinesis.sequence_number[50..].parse().unwrap();
        assert_eq!(record.time_ms, T0 + tail);
    }
}
