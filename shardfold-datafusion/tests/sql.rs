//! SQL over shardfold states: a Parquet backfill merged with a live SQLite metric; the
//! functions' errors; tables over stored metrics.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BinaryArray, Float64Array, Int64Array, RecordBatch, StringArray,
};
use datafusion::arrow::datatypes::{DataType, Decimal128Type, Field, Schema, UInt64Type};
use datafusion::datasource::MemTable;
use datafusion::error::DataFusionError;
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::parquet::file::properties::WriterProperties;
use datafusion::prelude::{ParquetReadOptions, SessionConfig, SessionContext};
use shardfold::store::{ManualClock, Series, SeriesConfig, connect};
use shardfold::{Count, Distinct, Event, Insert, Keyed, Quantiles, Sum, Zip};
use shardfold_datafusion::{Column, SeriesTable, StateError};

const MINUTE: u64 = 60_000;
/// 2027-01-15 08:00 UTC, a whole minute.
const T0: u64 = 1_800_000_000_000 - 1_800_000_000_000 % MINUTE;
const WINDOWS: u64 = 10;

type Agg = Zip<(Count, Sum, Distinct, Quantiles)>;
/// (counted, amount in cents, user, latency in ms)
type Value = (i64, i64, i64, f64);

/// One checkout: the row of the Parquet history, or the event a function folds.
#[derive(Clone, Debug)]
struct Checkout {
    id: String,
    ts: u64,
    amount: i64,
    user: i64,
    latency: f64,
}

/// Deterministic checkouts over `WINDOWS` minutes: heavy-tailed amounts (some negative:
/// refunds), users drawn with repeats, latencies with a long tail.
fn checkouts(n: u64) -> Vec<Checkout> {
    let mut s = 0x5eed_u64;
    let mut next = move || {
        s = s.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = s;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    };
    (0..n)
        .map(|i| {
            let r = next();
            let amount = (r % 1_000_000) as i64 * if r >> 60 == 0 { -1 } else { 1 };
            let user = (next() % 5_000) as i64 * (next() % 4) as i64;
            let latency = ((next() % 10_000) as f64 / 100.0).powf(1.5);
            Checkout {
                id: format!("order-{i}"),
                ts: T0 + next() % (WINDOWS * MINUTE),
                amount,
                user,
                latency,
            }
        })
        .collect()
}

/// Writes `rows` to `files` Parquet files in `dir`, in small row groups (so DataFusion has
/// several partitions to read in parallel).
fn write_parquet(dir: &std::path::Path, rows: &[Checkout], files: usize) {
    std::fs::create_dir_all(dir).unwrap();
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Utf8, false),
        Field::new("ts", DataType::Int64, false),
        Field::new("amount", DataType::Int64, false),
        Field::new("user_id", DataType::Int64, false),
        Field::new("latency", DataType::Float64, false),
    ]));
    for (f, part) in rows.chunks(rows.len().div_ceil(files)).enumerate() {
        let columns: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from_iter_values(
                part.iter().map(|c| c.id.as_str()),
            )),
            Arc::new(Int64Array::from_iter_values(
                part.iter().map(|c| c.ts as i64),
            )),
            Arc::new(Int64Array::from_iter_values(part.iter().map(|c| c.amount))),
            Arc::new(Int64Array::from_iter_values(part.iter().map(|c| c.user))),
            Arc::new(Float64Array::from_iter_values(
                part.iter().map(|c| c.latency),
            )),
        ];
        let batch = RecordBatch::try_new(Arc::clone(&schema), columns).unwrap();
        let file = std::fs::File::create(dir.join(format!("part-{f}.parquet"))).unwrap();
        let props = WriterProperties::builder()
            .set_max_row_group_row_count(Some(1_500))
            .build();
        let mut writer = ArrowWriter::try_new(file, Arc::clone(&schema), Some(props)).unwrap();
        writer.write(&batch).unwrap();
        writer.close().unwrap();
    }
}

fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("shardfold-df-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn open_live(url: &str) -> Series<Agg, Value> {
    let config = SeriesConfig::new(Agg::default())
        .window(Duration::from_secs(60))
        .shards(4)
        .clock(Arc::new(ManualClock::new(T0 + (WINDOWS + 1) * MINUTE)));
    Series::open(connect(url).await.unwrap(), "checkout", config)
        .await
        .unwrap()
}

/// What one stream of every event gives, per window.
#[derive(Default)]
struct Truth {
    count: Count,
    sum: Sum,
    distinct: Distinct,
    latencies: Vec<f64>,
}

const BACKFILL_SQL: &str = "
    WITH history AS (
        SELECT ts - ts % 60000 AS w,
               sf_count_state(amount) AS c, sf_sum_state(amount) AS s,
               sf_distinct_state(user_id) AS d, sf_quantiles_state(latency) AS q
        FROM history GROUP BY ts - ts % 60000
    ), live AS (
        SELECT window_start_ms AS w, c, s, d, q FROM live
    )
    SELECT w,
           sf_count_merge(c) AS n, sf_sum_merge(s) AS total, sf_distinct_merge(d) AS users,
           sf_count_merge_state(c) AS c_state, sf_sum_merge_state(s) AS s_state,
           sf_distinct_merge_state(d) AS d_state,
           sf_quantile(sf_quantiles_merge(q), 0.5) AS p50,
           sf_quantile(sf_quantiles_merge(q), 0.99) AS p99,
           sf_quantiles_merge_state(q) AS q_state
    FROM (SELECT * FROM history UNION ALL SELECT * FROM live)
    GROUP BY w ORDER BY w";

/// Half the events backfilled from Parquet by SQL, half folded live into SQLite (some twice):
/// per window, the merged count and sum are exact, the HLL registers are those of one stream
/// of all events, the quantiles within the t-digest's bound — and every result is the same
/// bytes with 1 and with 4 target partitions.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parquet_backfill_merges_with_a_live_sqlite_metric_exactly() {
    let events = checkouts(30_000);
    let (history, live): (Vec<_>, Vec<_>) = events
        .iter()
        .cloned()
        .enumerate()
        .partition(|(i, _)| i % 2 == 0);
    let history: Vec<Checkout> = history.into_iter().map(|(_, c)| c).collect();
    let live: Vec<Checkout> = live.into_iter().map(|(_, c)| c).collect();

    let dir = temp_dir("backfill");
    write_parquet(&dir.join("history"), &history, 3);

    let url = format!("sqlite://{}", dir.join("live.db").display());
    let series = Arc::new(open_live(&url).await);
    let as_event =
        |c: &Checkout| Event::new(c.id.as_str(), c.ts, (c.amount, c.amount, c.user, c.latency));
    for chunk in live.chunks(1_000) {
        let batch: Vec<Event<Value>> = chunk.iter().map(as_event).collect();
        let report = series.fold(&batch).await.unwrap();
        assert_eq!(report.failed().count(), 0);
        // redelivered: folded once
        let again = series.fold(&batch[..100]).await.unwrap();
        assert_eq!(again.failed().count(), 0);
    }

    let mut truth: BTreeMap<u64, Truth> = BTreeMap::new();
    for c in &events {
        let t = truth.entry(c.ts - c.ts % MINUTE).or_default();
        t.count.insert(()).unwrap();
        t.sum.insert(c.amount).unwrap();
        t.distinct.insert(c.user).unwrap();
        t.latencies.push(c.latency);
    }
    assert_eq!(truth.len() as u64, WINDOWS);

    let mut results = Vec::new();
    for partitions in [1, 4] {
        let ctx = SessionContext::new_with_config(
            SessionConfig::new().with_target_partitions(partitions),
        );
        shardfold_datafusion::register(&ctx);
        ctx.register_parquet(
            "history",
            dir.join("history").to_str().unwrap(),
            ParquetReadOptions::default(),
        )
        .await
        .unwrap();
        let table = SeriesTable::new(
            Arc::clone(&series),
            vec![
                Column::new("c", |a: &Agg| &a.0.0),
                Column::new("s", |a: &Agg| &a.0.1),
                Column::new("d", |a: &Agg| &a.0.2),
                Column::new("q", |a: &Agg| &a.0.3),
            ],
        )
        .unwrap()
        .range(T0, T0 + WINDOWS * MINUTE);
        ctx.register_table("live", Arc::new(table)).unwrap();
        let batches = ctx
            .sql(BACKFILL_SQL)
            .await
            .unwrap()
            .collect()
            .await
            .unwrap();
        let batch =
            datafusion::arrow::compute::concat_batches(&batches[0].schema(), &batches).unwrap();
        results.push(batch);
    }
    // exact results and HLL states: the same bytes whatever the parallelism (t-digest merges
    // are within their bound, not bit-identical across groupings: checked against the truth)
    for column in ["w", "n", "total", "users", "c_state", "s_state", "d_state"] {
        assert_eq!(
            results[0].column_by_name(column),
            results[1].column_by_name(column),
            "{column} differs between 1 and 4 target partitions"
        );
    }

    let batch = &results[1];
    assert_eq!(batch.num_rows() as u64, WINDOWS);
    let windows = batch
        .column_by_name("w")
        .unwrap()
        .as_primitive::<datafusion::arrow::datatypes::Int64Type>();
    let n = batch
        .column_by_name("n")
        .unwrap()
        .as_primitive::<UInt64Type>();
    let total = batch
        .column_by_name("total")
        .unwrap()
        .as_primitive::<Decimal128Type>();
    let users = batch
        .column_by_name("users")
        .unwrap()
        .as_primitive::<UInt64Type>();
    let binary = |name: &str| {
        batch
            .column_by_name(name)
            .unwrap()
            .as_binary::<i32>()
            .clone()
    };
    let (c_state, s_state, d_state, q_state) = (
        binary("c_state"),
        binary("s_state"),
        binary("d_state"),
        binary("q_state"),
    );
    let p50 = batch
        .column_by_name("p50")
        .unwrap()
        .as_primitive::<datafusion::arrow::datatypes::Float64Type>();
    let p99 = batch
        .column_by_name("p99")
        .unwrap()
        .as_primitive::<datafusion::arrow::datatypes::Float64Type>();

    for (row, (&w, t)) in truth.iter().enumerate() {
        assert_eq!(windows.value(row) as u64, w);
        assert_eq!(n.value(row), t.count.get(), "count of window {w}");
        assert_eq!(total.value(row), t.sum.get(), "sum of window {w}");
        assert_eq!(
            users.value(row),
            t.distinct.count(),
            "distinct of window {w}"
        );
        // the states are the single stream's, byte for byte (exact) and register for register
        assert_eq!(c_state.value(row), shardfold::encode(&t.count).as_slice());
        assert_eq!(s_state.value(row), shardfold::encode(&t.sum).as_slice());
        let merged: Distinct = shardfold::decode(d_state.value(row)).unwrap();
        assert_eq!(
            merged.registers(),
            t.distinct.registers(),
            "HLL registers of window {w}"
        );
        assert_eq!(
            d_state.value(row),
            shardfold::encode(&t.distinct).as_slice()
        );
        // quantiles: the exact rank of the answer within the digest's rank bound
        let digest: Quantiles = shardfold::decode(q_state.value(row)).unwrap();
        assert_eq!(digest.count(), t.count.get());
        let mut sorted = t.latencies.clone();
        sorted.sort_by(f64::total_cmp);
        for (q, got) in [(0.5, p50.value(row)), (0.99, p99.value(row))] {
            let below = sorted.partition_point(|&x| x < got) as f64;
            let upto = sorted.partition_point(|&x| x <= got) as f64;
            let len = sorted.len() as f64;
            let bound = digest.rank_error_bound(q);
            assert!(
                below / len <= q + bound && upto / len >= q - bound,
                "window {w}: q{q} = {got} has rank [{}, {}], bound {bound}",
                below / len,
                upto / len
            );
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// The table is read at each scan: a fold between two queries shows in the second.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_series_table_sees_later_folds() {
    let dir = temp_dir("live");
    let url = format!("sqlite://{}", dir.join("live.db").display());
    let series = Arc::new(open_live(&url).await);
    let ctx = SessionContext::new();
    shardfold_datafusion::register(&ctx);
    let table = SeriesTable::new(
        Arc::clone(&series),
        vec![Column::new("c", |a: &Agg| &a.0.0)],
    )
    .unwrap()
    .range(T0, T0 + WINDOWS * MINUTE);
    ctx.register_table("live", Arc::new(table)).unwrap();
    let count = async || {
        let batches = ctx
            .sql("SELECT sf_count_merge(c) AS n FROM live")
            .await
            .unwrap()
            .collect()
            .await
            .unwrap();
        batches[0].column(0).as_primitive::<UInt64Type>().value(0)
    };
    assert_eq!(count().await, 0);
    let events: Vec<Event<Value>> = checkouts(500)
        .iter()
        .map(|c| Event::new(c.id.as_str(), c.ts, (0, c.amount, c.user, c.latency)))
        .collect();
    series.fold(&events[..200]).await.unwrap();
    assert_eq!(count().await, 200);
    series.fold(&events).await.unwrap();
    assert_eq!(count().await, 500);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A keyed metric: one row per window and key; each key's state is what that key's events
/// give.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_keyed_series_table_has_a_row_per_window_and_key() {
    type ByRoute = Keyed<String, Zip<(Count, Sum)>>;
    let dir = temp_dir("keyed");
    let url = format!("sqlite://{}", dir.join("keyed.db").display());
    let config = SeriesConfig::new(ByRoute::with_max_keys(2).unwrap())
        .clock(Arc::new(ManualClock::new(T0 + (WINDOWS + 1) * MINUTE)));
    let series: Series<ByRoute, (String, (i64, i64))> =
        Series::open(connect(&url).await.unwrap(), "routes", config)
            .await
            .unwrap();
    let routes = ["/a", "/b", "/c", "/d"];
    let mut truth: BTreeMap<(u64, Option<&str>), (u64, i128)> = BTreeMap::new();
    let events: Vec<Event<(String, (i64, i64))>> = checkouts(2_000)
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let route = routes[i % 4];
            Event::new(c.id.as_str(), c.ts, (route.to_string(), (0, c.amount)))
        })
        .collect();
    series.fold(&events).await.unwrap();
    let view = series.query_range(T0, T0 + WINDOWS * MINUTE).await.unwrap();
    for (start, keyed) in view.windows() {
        for (k, a) in keyed.iter() {
            truth.insert((start, Some(k.as_str())), (a.0.0.get(), a.0.1.get()));
        }
        if let Some(a) = keyed.other() {
            truth.insert((start, None), (a.0.0.get(), a.0.1.get()));
        }
    }
    let table = SeriesTable::keyed(
        Arc::new(series),
        |a: &ByRoute| a,
        vec![
            Column::new("n", |a: &Zip<(Count, Sum)>| &a.0.0),
            Column::new("s", |a: &Zip<(Count, Sum)>| &a.0.1),
        ],
    )
    .unwrap()
    .range(T0, T0 + WINDOWS * MINUTE);
    let ctx = SessionContext::new();
    shardfold_datafusion::register(&ctx);
    ctx.register_table("routes", Arc::new(table)).unwrap();
    let batches = ctx
        .sql(
            "SELECT window_start_ms, key, sf_count_merge(n) AS n, sf_sum_merge(s) AS s
              FROM routes GROUP BY window_start_ms, key",
        )
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    let mut got: BTreeMap<(u64, Option<String>), (u64, i128)> = BTreeMap::new();
    for b in &batches {
        let w = b
            .column(0)
            .as_primitive::<datafusion::arrow::datatypes::Int64Type>();
        let k = b.column(1).as_string::<i32>();
        let n = b.column(2).as_primitive::<UInt64Type>();
        let s = b.column(3).as_primitive::<Decimal128Type>();
        for i in 0..b.num_rows() {
            let key = (!k.is_null(i)).then(|| k.value(i).to_string());
            got.insert((w.value(i) as u64, key), (n.value(i), s.value(i)));
        }
    }
    let truth: BTreeMap<(u64, Option<String>), (u64, i128)> = truth
        .into_iter()
        .map(|((w, k), v)| ((w, k.map(str::to_string)), v))
        .collect();
    assert_eq!(got, truth);
    // two keys kept per window, the rest in the overflow row: all 2 000 events counted
    assert!(got.keys().any(|(_, k)| k.is_none()));
    assert_eq!(got.values().map(|v| v.0).sum::<u64>(), 2_000);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A context with the functions and table `t` of one Binary column `s` and one Float64 `x`.
async fn context_with(states: Vec<Option<Vec<u8>>>, xs: Vec<Option<f64>>) -> SessionContext {
    let schema = Arc::new(Schema::new(vec![
        Field::new("s", DataType::Binary, true),
        Field::new("x", DataType::Float64, true),
    ]));
    let states = BinaryArray::from_iter(states);
    let xs = Float64Array::from_iter(xs);
    let batch =
        RecordBatch::try_new(Arc::clone(&schema), vec![Arc::new(states), Arc::new(xs)]).unwrap();
    let ctx = SessionContext::new();
    shardfold_datafusion::register(&ctx);
    ctx.register_table(
        "t",
        Arc::new(MemTable::try_new(schema, vec![vec![batch]]).unwrap()),
    )
    .unwrap();
    ctx
}

/// The shardfold error in a DataFusion error's chain.
fn shardfold_error(e: &DataFusionError) -> Option<&shardfold::Error> {
    let mut at: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = at {
        if let Some(found) = err.downcast_ref::<shardfold::Error>() {
            return Some(found);
        }
        if let Some(found) = err.downcast_ref::<StateError>() {
            return Some(&found.source);
        }
        at = err.source();
    }
    None
}

async fn run(ctx: &SessionContext, sql: &str) -> Result<Vec<RecordBatch>, DataFusionError> {
    ctx.sql(sql).await?.collect().await
}

#[tokio::test]
async fn nan_and_infinite_values_are_typed_errors() {
    for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
        let ctx = context_with(vec![None, None], vec![Some(1.0), Some(bad)]).await;
        for f in ["sf_quantiles", "sf_sum_f64"] {
            let e = run(&ctx, &format!("SELECT {f}(x) FROM t"))
                .await
                .unwrap_err();
            assert!(
                matches!(
                    shardfold_error(&e),
                    Some(shardfold::Error::InvalidValue { .. })
                ),
                "{f}({bad}): {e}"
            );
        }
    }
}

#[tokio::test]
async fn damaged_or_foreign_states_are_typed_errors() {
    let count = shardfold::encode(&Count::new(3));
    let mut flipped = count.clone();
    let last = flipped.len() - 1;
    flipped[last] ^= 0x40;
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (b"not a state".to_vec(), "garbage"),
        (count[..count.len() - 1].to_vec(), "truncated"),
        (flipped, "a flipped bit"),
    ];
    for (bytes, what) in cases {
        let ctx = context_with(vec![Some(count.clone()), Some(bytes)], vec![None, None]).await;
        let e = run(&ctx, "SELECT sf_count_merge(s) FROM t")
            .await
            .unwrap_err();
        assert!(shardfold_error(&e).is_some(), "{what}: {e}");
        assert!(e.to_string().contains("sf_count_merge"), "{what}: {e}");
    }
    // a Count state is not a Sum state
    let ctx = context_with(vec![Some(count.clone())], vec![None]).await;
    let e = run(&ctx, "SELECT sf_sum_merge(s) FROM t")
        .await
        .unwrap_err();
    assert!(
        matches!(
            shardfold_error(&e),
            Some(shardfold::Error::WrongType { .. })
        ),
        "{e}"
    );
    // the valid states alone merge
    let ctx = context_with(vec![Some(count.clone()), None, Some(count)], vec![None; 3]).await;
    let b = run(&ctx, "SELECT sf_count_merge(s) FROM t").await.unwrap();
    assert_eq!(b[0].column(0).as_primitive::<UInt64Type>().value(0), 6);
}

#[tokio::test]
async fn sketches_of_different_parameters_do_not_merge() {
    let mut p12 = Distinct::try_new(12).unwrap();
    let mut p14 = Distinct::default();
    p12.insert(1_i64).unwrap();
    p14.insert(1_i64).unwrap();
    let ctx = context_with(
        vec![Some(shardfold::encode(&p12)), Some(shardfold::encode(&p14))],
        vec![None, None],
    )
    .await;
    let e = run(&ctx, "SELECT sf_distinct_merge(s) FROM t")
        .await
        .unwrap_err();
    assert!(
        matches!(
            shardfold_error(&e),
            Some(shardfold::Error::IncompatibleParams { .. })
        ),
        "{e}"
    );
    // states of one precision merge, whatever it is: the merge takes it from the states
    let mut other12 = Distinct::try_new(12).unwrap();
    other12.insert(2_i64).unwrap();
    let mut both12 = p12.clone();
    both12.insert(2_i64).unwrap();
    let only12 = context_with(
        vec![
            Some(shardfold::encode(&p12)),
            None,
            Some(shardfold::encode(&other12)),
        ],
        vec![None; 3],
    )
    .await;
    let b = run(
        &only12,
        "SELECT sf_distinct_merge(s), sf_distinct_merge_state(s) FROM t",
    )
    .await
    .unwrap();
    assert_eq!(
        b[0].column(0).as_primitive::<UInt64Type>().value(0),
        both12.count()
    );
    assert_eq!(
        b[0].column(1).as_binary::<i32>().value(0),
        shardfold::encode(&both12).as_slice()
    );
    let mut q50 = Quantiles::try_new(50).unwrap();
    q50.insert(1.5).unwrap();
    let quantiles = context_with(vec![Some(shardfold::encode(&q50))], vec![None]).await;
    let b = run(
        &quantiles,
        "SELECT sf_quantile(sf_quantiles_merge(s), 0.5) FROM t",
    )
    .await
    .unwrap();
    assert_eq!(
        b[0].column(0)
            .as_primitive::<datafusion::arrow::datatypes::Float64Type>()
            .value(0),
        1.5
    );
    // a precision given in SQL makes states that merge with p = 12 sketches
    let b = run(
        &ctx,
        "SELECT sf_distinct_state(CAST(x AS BIGINT), 12) FROM (VALUES (1.0)) AS v(x)",
    )
    .await
    .unwrap();
    let sql_state: Distinct =
        shardfold::decode(b[0].column(0).as_binary::<i32>().value(0)).unwrap();
    assert_eq!(sql_state.registers(), p12.registers());
    let e = run(&ctx, "SELECT sf_distinct(CAST(x AS BIGINT), 40) FROM t")
        .await
        .unwrap_err();
    assert!(
        matches!(
            shardfold_error(&e),
            Some(shardfold::Error::InvalidParameter { .. })
        ),
        "{e}"
    );
}

/// Exact float sums: the SQL state equals the Rust one, whatever the order of the rows.
#[tokio::test]
async fn float_sums_are_exact_and_order_free() {
    let xs = [0.1, 1e300, 0.2, -1e300, 0.3, 5e-324, 1e16, 1.0, -1e16];
    let mut expected = shardfold::SumF64::default();
    for x in xs {
        expected.insert(x).unwrap();
    }
    for order in [xs.to_vec(), xs.iter().rev().copied().collect()] {
        let ctx = context_with(
            vec![None; order.len()],
            order.into_iter().map(Some).collect(),
        )
        .await;
        let b = run(&ctx, "SELECT sf_sum_f64(x), sf_sum_f64_state(x) FROM t")
            .await
            .unwrap();
        assert_eq!(
            b[0].column(0)
                .as_primitive::<datafusion::arrow::datatypes::Float64Type>()
                .value(0),
            expected.value()
        );
        assert_eq!(
            b[0].column(1).as_binary::<i32>().value(0),
            shardfold::encode(&expected).as_slice()
        );
    }
}

/// Over no rows, every function returns the aggregate's identity.
#[tokio::test]
async fn empty_input_gives_the_identity() {
    let ctx = context_with(vec![], vec![]).await;
    let b = run(
        &ctx,
        "SELECT sf_count(x), sf_sum(CAST(x AS BIGINT)), sf_distinct(CAST(x AS BIGINT)),
                sf_count_state(x), sf_count_merge(s) FROM t",
    )
    .await
    .unwrap();
    assert_eq!(b[0].column(0).as_primitive::<UInt64Type>().value(0), 0);
    assert_eq!(b[0].column(1).as_primitive::<Decimal128Type>().value(0), 0);
    assert_eq!(b[0].column(2).as_primitive::<UInt64Type>().value(0), 0);
    assert_eq!(
        b[0].column(3).as_binary::<i32>().value(0),
        shardfold::encode(&Count::default()).as_slice()
    );
    assert_eq!(b[0].column(4).as_primitive::<UInt64Type>().value(0), 0);
}
