//! A Kinesis-triggered AWS Lambda function that folds orders exactly once with a sequence
//! high-water mark per Kinesis shard, answering with the first failed sequence number.
//!
//! `cargo run -p shardfold-examples --features lambda,sqlite --example lambda_kinesis`
//!
//! The metric is a `Metric<Deduped<Stats, SeqDedup>>`: one mark per Kinesis shard, so a retried
//! batch, a bisected half or a restart from a reported sequence number is a duplicate, with
//! O(shards) memory. That is right for an event source mapping with `ParallelizationFactor = 1`
//! (the default) and `FunctionResponseTypes: ["ReportBatchItemFailures"]`. With a higher
//! parallelization, fold `KinesisBatch::events` (IDs by shard and sequence number) into a
//! `Series` instead — see the `shardfold::lambda` docs.
//!
//! Deployed, `AWS_LAMBDA_RUNTIME_API` is set and `main` runs the Lambda runtime on the store
//! `SHARDFOLD_URL`. Anywhere else it plays Lambda's part over a Kinesis event built here (six
//! orders of one shard: one with no items — mean price 0/0 = NaN — and one malformed), against
//! a temporary SQLite store: it delivers the batch, delivers it again (an invocation that timed
//! out), restarts from each reported sequence number, skips a record after two failed retries
//! (`MaximumRetryAttempts = 2`), prints every response, and checks the stored totals against the
//! exact truth. It exits non-zero on a wrong answer.
//!
//! In your own crate: `shardfold = { version = "0.1", features = ["lambda", "sqlite"] }`,
//! `lambda_runtime = "1.5"`, `serde` (`derive`), `serde_json`, `tokio` (`macros`,
//! `rt-multi-thread`); the event types come from `shardfold::lambda::aws_lambda_events`.

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use lambda_runtime::{LambdaEvent, service_fn};
use serde::Deserialize;
use shardfold::lambda::aws_lambda_events::event::kinesis::{KinesisEvent, KinesisEventRecord};
use shardfold::lambda::aws_lambda_events::event::streams::KinesisEventResponse;
use shardfold::lambda::{KinesisBatch, json_data};
use shardfold::store::{Metric, connect};
use shardfold::{Deduped, SeqDedup, Stats};

/// Count, sum, min, max of the orders' mean item price, deduped by sequence number.
type Prices = Metric<Deduped<Stats, SeqDedup>>;

/// A record's data, as the producer puts it.
#[derive(Deserialize)]
struct Order {
    total: f64,
    items: u32,
}

/// The parse step: data that is not an `Order` is unparsable (reported, never folded).
fn parse(record: &KinesisEventRecord) -> shardfold::Result<f64> {
    let o: Order = json_data(record)?;
    Ok(o.total / f64::from(o.items)) // no items: NaN, which the aggregate refuses
}

/// The handler: parse, screen the values (before a mark can pass a refused record), fold by
/// the deadline, answer with the first failed sequence number.
async fn handle(metric: &Prices, event: &KinesisEvent, deadline: Instant) -> KinesisEventResponse {
    let mut batch = KinesisBatch::parse(event, parse);
    batch.screen(&Deduped::by_sequence(Stats::default()));
    for (seq, reason) in batch.unparsable() {
        eprintln!("record {seq} refused: {reason}");
    }
    let folded = metric.fold_by(batch.records(), deadline).await;
    eprintln!("{:?}", batch.summary(&folded));
    batch.response(&folded)
}

async fn open(url: &str) -> shardfold::Result<Prices> {
    Metric::builder(connect(url).await?, "order-prices-stream")
        .shards(4)
        .template(Deduped::by_sequence(Stats::default()))
        .open()
        .await
}

#[tokio::main]
async fn main() -> ExitCode {
    let result = if std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_some() {
        lambda().await
    } else {
        demo().await
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The deployed function: the metric is opened once per instance, every invocation folds.
async fn lambda() -> Result<(), lambda_runtime::Error> {
    let url =
        std::env::var("SHARDFOLD_URL").unwrap_or_else(|_| "sqlite:///tmp/shardfold.db".into());
    let metric = Arc::new(open(&url).await?);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<KinesisEvent>| {
        let metric = Arc::clone(&metric);
        async move {
            // keep 500 ms to answer: a fold cut short reports its records as failed
            let left = event.context.deadline().duration_since(SystemTime::now());
            let budget = left
                .unwrap_or_default()
                .saturating_sub(Duration::from_millis(500));
            let response = handle(&metric, &event.payload, Instant::now() + budget).await;
            Ok::<_, lambda_runtime::Error>(response)
        }
    }))
    .await
}

/// Off Lambda: Lambda's part played over a built event, checked against the truth.
async fn demo() -> Result<(), lambda_runtime::Error> {
    let path = std::env::temp_dir().join(format!(
        "shardfold-lambda-kinesis-{}.db",
        std::process::id()
    ));
    let url = format!("sqlite://{}", path.display());
    let result = demo_on(&url).await;
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    result
}

/// The payloads of one shard, in order: `(total, items)` orders, or raw bytes.
fn payloads() -> Vec<Result<(f64, u32), &'static str>> {
    vec![
        Ok((30.0, 3)),
        Ok((12.5, 5)),
        Ok((0.0, 0)), // NaN
        Ok((99.0, 4)),
        Err(r#"{"total": 8.0, "items""#), // malformed
        Ok((7.5, 1)),
    ]
}

/// A Kinesis event as Lambda sends it: base64 data, 56-digit sequence numbers.
fn kinesis_event() -> Result<KinesisEvent, serde_json::Error> {
    let arn = "arn:aws:kinesis:eu-west-1:123456789012:stream/orders";
    let records: Vec<serde_json::Value> = payloads()
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let data = match p {
                Ok((total, items)) => {
                    serde_json::json!({ "total": total, "items": items }).to_string()
                }
                Err(raw) => (*raw).to_owned(),
            };
            let seq = format!(
                "4959033827149025660855969253836157109592157598913658{:04}",
                10 * i + 1
            );
            serde_json::json!({
                "eventID": format!("shardId-000000000000:{seq}"),
                "eventSourceARN": arn,
                "eventSource": "aws:kinesis",
                "kinesis": {
                    "sequenceNumber": seq,
                    "partitionKey": format!("customer-{}", i % 2),
                    "data": base64(data.as_bytes()),
                    "approximateArrivalTimestamp": 1_764_633_600.0 + i as f64,
                },
            })
        })
        .collect();
    serde_json::from_value(serde_json::json!({ "Records": records }))
}

async fn demo_on(url: &str) -> Result<(), lambda_runtime::Error> {
    let event = kinesis_event()?;
    let metric = open(url).await?;
    let deadline = || Instant::now() + Duration::from_secs(10);
    let mut at = 0; // Lambda's checkpoint
    let mut failures: BTreeMap<String, u32> = BTreeMap::new();
    let mut first = true;
    while at < event.records.len() {
        let mut delivery = event.clone();
        delivery.records.drain(..at);
        let response = handle(&metric, &delivery, deadline()).await;
        println!("records {at}..: {}", serde_json::to_string(&response)?);
        if first {
            // the invocation "timed out": Lambda delivers the same batch again
            first = false;
            let again = handle(&metric, &delivery, deadline()).await;
            println!("records {at}.. again: {}", serde_json::to_string(&again)?);
            if again != response {
                return Err("MISMATCH: a redelivery answered differently".into());
            }
        }
        let Some(seq) = response
            .batch_item_failures
            .first()
            .and_then(|f| f.item_identifier.clone())
        else {
            break; // all checkpointed
        };
        let Some(i) = event
            .records
            .iter()
            .position(|r| r.kinesis.sequence_number == seq)
        else {
            return Err(format!("MISMATCH: unknown sequence number {seq}").into());
        };
        let retries = failures.entry(seq).or_default();
        *retries += 1;
        // MaximumRetryAttempts = 2: after that, Lambda skips the record
        at = if *retries > 2 { i + 1 } else { i };
    }

    // the truth: the finite mean prices, each once; the records Lambda had to skip
    let means: Vec<f64> = payloads()
        .iter()
        .filter_map(|p| p.ok())
        .map(|(total, items)| total / f64::from(items))
        .filter(|m| m.is_finite())
        .collect();
    let skipped: Vec<usize> = (0..payloads().len())
        .filter(|&i| payloads()[i].is_err() || payloads()[i].is_ok_and(|(_, n)| n == 0))
        .collect();
    let state = metric.query().await?;
    let stats = state.aggregate();
    let exact_sum: f64 = means.iter().sum(); // exact binary fractions
    println!(
        "stored: {} orders, mean prices summing to {} (truth: {} and {}); duplicates refused: {}",
        stats.count(),
        stats.sum(),
        means.len(),
        exact_sum,
        state.duplicates()
    );
    let reported: Vec<usize> = failures
        .keys()
        .filter_map(|s| {
            event
                .records
                .iter()
                .position(|r| &r.kinesis.sequence_number == s)
        })
        .collect();
    println!("records skipped after their retries: {reported:?} (truth: {skipped:?})");
    if stats.count() == means.len() as u64
        && stats.sum() == exact_sum
        && reported == skipped
        && skipped
            .first()
            .is_some_and(|&n| state.duplicates() == n as u64)
    {
        println!("ok: the NaN and the malformed record reported, nothing counted twice");
        Ok(())
    } else {
        Err("MISMATCH".into())
    }
}

/// Standard base64 with padding (what Lambda puts in `kinesis.data`).
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for k in 0..4 {
            if k <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * k)) as usize & 63]));
            } else {
                out.push('=');
            }
        }
    }
    out
}
