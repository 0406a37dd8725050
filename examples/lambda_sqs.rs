//! An SQS-triggered AWS Lambda function that folds orders into a windowed series, answering
//! with a partial batch response: only the messages that failed come back.
//!
//! `cargo run -p shardfold-examples --features lambda,sqlite --example lambda_sqs`
//!
//! Deployed (the event source mapping with `FunctionResponseTypes: ["ReportBatchItemFailures"]`),
//! `AWS_LAMBDA_RUNTIME_API` is set and `main` runs the Lambda runtime; the store is
//! `SHARDFOLD_URL` (for example `redis://…` or `postgres://…`; an SQLite file in `/tmp` is
//! only per instance). Anywhere else it runs the same handler on an SQS event built here —
//! three orders, a malformed body, an order with no items whose mean price is 0/0 = NaN —
//! against a temporary SQLite store, twice (SQS redelivers a whole batch whose invocation
//! timed out), prints both responses and checks them and the stored totals against the exact
//! truth. It exits non-zero on a wrong answer.
//!
//! In your own crate: `shardfold = { version = "0.1", features = ["lambda", "sqlite"] }`,
//! `lambda_runtime = "1.5"`, `serde` (`derive`), `serde_json`, `tokio` (`macros`,
//! `rt-multi-thread`); the event types come from `shardfold::lambda::aws_lambda_events`.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use lambda_runtime::{LambdaEvent, service_fn};
use serde::Deserialize;
use shardfold::lambda::aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use shardfold::lambda::{LatePolicy, SqsBatch, json_body};
use shardfold::store::{Clock, Series, SeriesConfig, SystemClock, connect};
use shardfold::{Event, Stats};

/// Per minute: count, sum, min, max of the orders' mean item price.
type Prices = Series<Stats, f64>;

/// A message body, as the producer sends it.
#[derive(Deserialize)]
struct Order {
    /// The producer's order ID: the event ID, so a resent order folds once.
    order: String,
    time_ms: u64,
    total: f64,
    items: u32,
}

/// The parse step: a body that is not an `Order` is unparsable (reported, never folded).
fn parse(message: &SqsMessage) -> shardfold::Result<Event<f64>> {
    let o: Order = json_body(message)?;
    // no items: 0 / 0 is NaN, which the aggregate refuses at the fold
    let mean = o.total / f64::from(o.items);
    Ok(Event::new(o.order.as_str(), o.time_ms, mean))
}

/// The handler: parse, fold by the invocation's deadline, answer with the failed messages.
async fn handle(series: &Prices, event: &SqsEvent, deadline: Instant) -> SqsBatchResponse {
    let batch = SqsBatch::parse(event, parse);
    let folded = series.fold_by(batch.events(), deadline).await;
    for (id, outcome) in batch.outcomes(&folded) {
        if outcome.is_failure(LatePolicy::Acknowledge) {
            eprintln!("message {id}: {outcome:?}");
        }
    }
    eprintln!("{:?}", batch.summary(&folded));
    batch.response(&folded)
}

async fn open(url: &str) -> shardfold::Result<Prices> {
    let config = SeriesConfig::new(Stats::default()).window(Duration::from_secs(60));
    Series::open(connect(url).await?, "order-prices", config).await
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

/// The deployed function: the series is opened once per instance, every invocation folds.
async fn lambda() -> Result<(), lambda_runtime::Error> {
    let url =
        std::env::var("SHARDFOLD_URL").unwrap_or_else(|_| "sqlite:///tmp/shardfold.db".into());
    let series = Arc::new(open(&url).await?);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| {
        let series = Arc::clone(&series);
        async move {
            // keep 500 ms to answer: a fold cut short reports its events as failed
            let left = event.context.deadline().duration_since(SystemTime::now());
            let deadline = Instant::now()
                + left
                    .unwrap_or_default()
                    .saturating_sub(Duration::from_millis(500));
            Ok::<_, lambda_runtime::Error>(handle(&series, &event.payload, deadline).await)
        }
    }))
    .await
}

/// Off Lambda: the handler on a built event, delivered twice, checked against the truth.
async fn demo() -> Result<(), lambda_runtime::Error> {
    let path = std::env::temp_dir().join(format!("shardfold-lambda-sqs-{}.db", std::process::id()));
    let url = format!("sqlite://{}", path.display());
    let result = demo_on(&url).await;
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    result
}

async fn demo_on(url: &str) -> Result<(), lambda_runtime::Error> {
    let now = SystemClock.now_ms();
    // (message ID, order ID, total, items): the good orders and the NaN one
    let orders = [
        ("m-1", "o-1", 30.0, 3),
        ("m-2", "o-2", 12.5, 5),
        ("m-3", "o-3", 0.0, 0),
        ("m-4", "o-4", 99.0, 4),
    ];
    let mut records: Vec<serde_json::Value> = orders
        .iter()
        .map(|(m, o, total, items)| {
            let body =
                serde_json::json!({ "order": o, "time_ms": now, "total": total, "items": items });
            serde_json::json!({ "messageId": m, "body": body.to_string(),
                "attributes": { "SentTimestamp": now.to_string() }, "eventSource": "aws:sqs" })
        })
        .collect();
    records.insert(
        2,
        serde_json::json!({ "messageId": "m-5", "body": "{\"order\": \"o-5\", " }),
    );
    let event: SqsEvent = serde_json::from_value(serde_json::json!({ "Records": records }))?;

    let series = open(url).await?;
    let expected = r#"{"batchItemFailures":[{"itemIdentifier":"m-5"},{"itemIdentifier":"m-3"}]}"#;
    let mut ok = true;
    for delivery in ["first delivery", "redelivery"] {
        let response = handle(&series, &event, Instant::now() + Duration::from_secs(10)).await;
        let json = serde_json::to_string(&response)?;
        println!("{delivery}: {json}");
        ok &= json == expected;
    }

    // the truth: the finite mean prices, each order once
    let means: Vec<f64> = orders
        .iter()
        .map(|&(_, _, total, items)| total / f64::from(items))
        .filter(|m| m.is_finite())
        .collect();
    let minute = now - now % 60_000;
    let view = series.query_range(minute, minute + 60_000).await?;
    let stats = view.total()?;
    let exact_sum: f64 = means.iter().sum(); // 10 + 2.5 + 24.75: exact in binary
    println!(
        "stored: {} orders, mean prices summing to {} (truth: {} and {}); duplicates refused: {}",
        stats.count(),
        stats.sum(),
        means.len(),
        exact_sum,
        view.tally().duplicates
    );
    ok &= stats.count() == means.len() as u64
        && stats.sum() == exact_sum
        && view.tally().duplicates == means.len() as u64;
    if ok {
        println!(
            "ok: the malformed and the NaN message reported, the redelivery not counted twice"
        );
        Ok(())
    } else {
        Err("MISMATCH".into())
    }
}
