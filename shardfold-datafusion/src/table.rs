//! [`SeriesTable`]: a stored metric's windows (and keys) as rows.

use std::collections::HashSet;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::array::{ArrayRef, BinaryBuilder, Int64Builder, StringBuilder};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::{Result, exec_err, plan_err};
use datafusion::datasource::{MemTable, TableType};
use datafusion::logical_expr::Expr;
use datafusion::physical_plan::ExecutionPlan;
use shardfold::agg::keyed::Key;
use shardfold::store::{Series, SeriesValue, SeriesView};
use shardfold::{Aggregate, Codec, Insert, Keyed};

use crate::to_df;

/// A named part of an aggregate, exposed as a state column (one shardfold envelope per row).
pub struct Column<T> {
    name: String,
    encode: Encode<T>,
}

/// Encodes a column's part of an aggregate.
type Encode<T> = Arc<dyn Fn(&T) -> Vec<u8> + Send + Sync>;

impl<T> Column<T> {
    /// The part `project` picks out of each window's aggregate, as column `name`. For a
    /// `Zip<(Count, Sum, Distinct)>`, `Column::new("users", |a: &Agg| &a.0.2)` is the
    /// distinct-count state, ready for `sf_distinct_merge`.
    pub fn new<B: Codec + 'static>(
        name: impl Into<String>,
        project: impl Fn(&T) -> &B + Send + Sync + 'static,
    ) -> Self {
        Column {
            name: name.into(),
            encode: Arc::new(move |t| shardfold::encode(project(t))),
        }
    }

    /// The whole aggregate, as column `name`.
    pub fn whole(name: impl Into<String>) -> Self
    where
        T: Codec + 'static,
    {
        Column {
            name: name.into(),
            encode: Arc::new(|t| shardfold::encode(t)),
        }
    }
}

impl<T> fmt::Debug for Column<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Column").field("name", &self.name).finish()
    }
}

/// One row's key (`None`: an unkeyed row, or the overflow bucket of a [`Keyed`]) and states.
type Row = (Option<String>, Vec<Vec<u8>>);
type Rows<A> = Arc<dyn Fn(&A) -> Vec<Row> + Send + Sync>;
type ViewFuture<'a, A> =
    Pin<Box<dyn Future<Output = shardfold::Result<SeriesView<A>>> + Send + 'a>>;

/// Where a table reads its windows: a [`Series`] with its value type erased.
trait Source<A>: Send + Sync {
    fn view(&self, range: Option<(u64, u64)>) -> ViewFuture<'_, A>;
    fn name(&self) -> &str;
}

impl<A, V> Source<A> for Series<A, V>
where
    A: Aggregate + Insert<V>,
    V: SeriesValue,
{
    fn view(&self, range: Option<(u64, u64)>) -> ViewFuture<'_, A> {
        Box::pin(async move {
            match range {
                Some((from, to)) => self.query_range(from, to).await,
                None => self.query().await,
            }
        })
    }

    fn name(&self) -> &str {
        Series::name(self)
    }
}

/// A stored metric as a DataFusion table: one row per window — or per window and key, for a
/// [`Keyed`] part — read from the store at every scan (each query sees what has been folded).
///
/// Columns: `window_start_ms` and `window_end_ms` (`BIGINT`, Unix milliseconds, the window is
/// `[start, end)`), `key` (`TEXT`, keyed tables only; `NULL` for the overflow bucket beyond the
/// key bound), then one `BINARY` state column per [`Column`]: shardfold envelopes that the
/// `sf_*_merge` functions read.
///
/// ```no_run
/// # async fn demo() -> datafusion::error::Result<()> {
/// use std::sync::Arc;
/// use datafusion::prelude::SessionContext;
/// use shardfold::store::{Series, SeriesConfig, connect};
/// use shardfold::{Count, Distinct, Zip};
/// use shardfold_datafusion::{Column, SeriesTable};
///
/// type Agg = Zip<(Count, Distinct)>;
/// let store = connect("sqlite:///tmp/metrics.db").await.map_err(shardfold_datafusion::to_df)?;
/// let series: Series<Agg, (u64, u64)> = Series::open(store, "visits", SeriesConfig::new(Agg::default()))
///     .await
///     .map_err(shardfold_datafusion::to_df)?;
/// let table = SeriesTable::new(
///     Arc::new(series),
///     vec![Column::new("visits", |a: &Agg| &a.0.0), Column::new("users", |a: &Agg| &a.0.1)],
/// )?;
/// let ctx = SessionContext::new();
/// shardfold_datafusion::register(&ctx);
/// ctx.register_table("visits", Arc::new(table))?;
/// ctx.sql("SELECT window_start_ms, sf_count_merge(visits), sf_distinct_merge(users)
///          FROM visits GROUP BY window_start_ms ORDER BY window_start_ms")
///     .await?
///     .show()
///     .await?;
/// # Ok(())
/// # }
/// ```
pub struct SeriesTable<A> {
    source: Arc<dyn Source<A>>,
    range: Option<(u64, u64)>,
    rows: Rows<A>,
    keyed: bool,
    schema: SchemaRef,
}

impl<A: Aggregate> SeriesTable<A> {
    /// A table of `series`' windows with `columns` (at least one).
    ///
    /// # Errors
    ///
    /// A plan error when `columns` is empty or two columns share a name (or take a name of
    /// the window columns).
    pub fn new<V>(series: Arc<Series<A, V>>, columns: Vec<Column<A>>) -> Result<Self>
    where
        A: Insert<V>,
        V: SeriesValue,
    {
        let schema = schema(false, &columns)?;
        let rows: Rows<A> =
            Arc::new(move |a: &A| vec![(None, columns.iter().map(|c| (c.encode)(a)).collect())]);
        Ok(SeriesTable {
            source: series,
            range: None,
            rows,
            keyed: false,
            schema,
        })
    }

    /// A table with one row per window and key of the [`Keyed`] part `project` picks (keys
    /// written with `Display`; the overflow bucket as a `NULL` key), `columns` taken from each
    /// key's aggregate.
    ///
    /// # Errors
    ///
    /// As [`new`](Self::new).
    pub fn keyed<V, K, B>(
        series: Arc<Series<A, V>>,
        project: impl Fn(&A) -> &Keyed<K, B> + Send + Sync + 'static,
        columns: Vec<Column<B>>,
    ) -> Result<Self>
    where
        A: Insert<V>,
        V: SeriesValue,
        K: Key + fmt::Display + 'static,
        B: 'static,
    {
        let schema = schema(true, &columns)?;
        let rows: Rows<A> = Arc::new(move |a: &A| {
            let keyed = project(a);
            let states = |b: &B| columns.iter().map(|c| (c.encode)(b)).collect();
            let mut rows: Vec<Row> = keyed
                .iter()
                .map(|(k, b)| (Some(k.to_string()), states(b)))
                .collect();
            if let Some(other) = keyed.other() {
                rows.push((None, states(other)));
            }
            rows
        });
        Ok(SeriesTable {
            source: series,
            range: None,
            rows,
            keyed: true,
            schema,
        })
    }

    /// Only the windows starting in `[from_ms, to_ms)` (by default: every retained window).
    pub fn range(mut self, from_ms: u64, to_ms: u64) -> Self {
        self.range = Some((from_ms, to_ms));
        self
    }

    /// Reads the windows now, as one record batch.
    ///
    /// # Errors
    ///
    /// The store's errors (a damaged or vanished bucket among them: see
    /// [`Series::query_range`]), as DataFusion's `External` error.
    pub async fn batch(&self) -> Result<RecordBatch> {
        let view = self.source.view(self.range).await.map_err(to_df)?;
        let width = view.window_ms();
        let columns = self.schema.fields().len() - if self.keyed { 3 } else { 2 };
        let mut starts = Int64Builder::new();
        let mut ends = Int64Builder::new();
        let mut keys = StringBuilder::new();
        let mut states: Vec<BinaryBuilder> = (0..columns).map(|_| BinaryBuilder::new()).collect();
        for (start, aggregate) in view.windows() {
            let (Ok(s), Some(Ok(e))) = (
                i64::try_from(start),
                start.checked_add(width).map(i64::try_from),
            ) else {
                return exec_err!(
                    "{}: window start {start} ms is beyond a BIGINT",
                    self.source.name()
                );
            };
            for (key, row) in (self.rows)(aggregate) {
                starts.append_value(s);
                ends.append_value(e);
                if self.keyed {
                    keys.append_option(key);
                }
                for (builder, bytes) in states.iter_mut().zip(row) {
                    builder.append_value(bytes);
                }
            }
        }
        let mut arrays: Vec<ArrayRef> = vec![Arc::new(starts.finish()), Arc::new(ends.finish())];
        if self.keyed {
            arrays.push(Arc::new(keys.finish()));
        }
        arrays.extend(states.iter_mut().map(|b| Arc::new(b.finish()) as ArrayRef));
        Ok(RecordBatch::try_new(Arc::clone(&self.schema), arrays)?)
    }
}

/// The table's schema, checking the columns' names.
fn schema<T>(keyed: bool, columns: &[Column<T>]) -> Result<SchemaRef> {
    if columns.is_empty() {
        return plan_err!("a SeriesTable needs at least one state column");
    }
    let mut fields = vec![
        Field::new("window_start_ms", DataType::Int64, false),
        Field::new("window_end_ms", DataType::Int64, false),
    ];
    if keyed {
        fields.push(Field::new("key", DataType::Utf8, true));
    }
    let mut names: HashSet<&str> = fields.iter().map(|f| f.name().as_str()).collect();
    for c in columns {
        if !names.insert(&c.name) {
            return plan_err!("column name {:?} is used twice in a SeriesTable", c.name);
        }
    }
    fields.extend(
        columns
            .iter()
            .map(|c| Field::new(&c.name, DataType::Binary, false)),
    );
    Ok(Arc::new(Schema::new(fields)))
}

impl<A> fmt::Debug for SeriesTable<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SeriesTable")
            .field("series", &self.source.name())
            .field("range", &self.range)
            .field("schema", &self.schema)
            .finish()
    }
}

#[async_trait]
impl<A: Aggregate> TableProvider for SeriesTable<A> {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let batch = self.batch().await?;
        MemTable::try_new(Arc::clone(&self.schema), vec![vec![batch]])?
            .scan(state, projection, filters, limit)
            .await
    }
}
