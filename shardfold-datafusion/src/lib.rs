//! SQL over [shardfold] states, with [DataFusion](https://datafusion.apache.org).
//!
//! The functions that fold events live keep their aggregates as shardfold envelopes; this crate
//! computes **the same envelopes in SQL** — over Parquet, CSV or any DataFusion table — so months
//! of history backfilled by a query merge with what functions folded, exactly (count, sums) or
//! register for register (HyperLogLog), and exposes a stored metric's windows as a table.
//!
//! # Functions
//!
//! [`register`] adds, for each aggregate, four functions in ClickHouse's `-State` / `-Merge`
//! sense:
//!
//! | aggregate | `sf_X(values)` | `sf_X_state(values)` | `sf_X_merge(states)` | `sf_X_merge_state(states)` |
//! |---|---|---|---|---|
//! | `count`: [`Count`](shardfold::Count) of non-null values | `BIGINT UNSIGNED` | state | value | state |
//! | `sum`: exact [`Sum`](shardfold::Sum) of integers | `DECIMAL(38, 0)` | state | value | state |
//! | `sum_f64`: exact [`SumF64`](shardfold::SumF64) of floats, rounded once | `DOUBLE` | state | value | state |
//! | `distinct`: HyperLogLog [`Distinct`](shardfold::Distinct) | estimate, `BIGINT UNSIGNED` | state | value | state |
//! | `quantiles`: t-digest [`Quantiles`](shardfold::Quantiles) | state | state | state | state |
//!
//! A *state* is a `BINARY` value holding one shardfold envelope (versioned, checksummed,
//! canonical): exactly what [`shardfold::encode`] writes for that aggregate, so it merges with
//! states folded by functions, read from a store, or computed by another query. DataFusion's own
//! partial aggregation passes the same envelopes between partitions, so the result does not
//! depend on `target_partitions`: exact results and HyperLogLog states are the same bytes
//! whatever the parallelism.
//!
//! `sf_distinct(x, p)` and `sf_quantiles(x, c)` take the HLL precision and t-digest compression
//! as a literal (defaults as [`Distinct::default`](shardfold::Distinct) and
//! [`Quantiles::default`](shardfold::Quantiles)); they must equal those of the states they will
//! be merged with. `sf_quantile(state, q)` reads a quantile from a t-digest state.
//!
//! Values are hashed for `sf_distinct` as the Rust value of the matching type is (`BIGINT` as
//! `i64`, `INT` as `i32`, `BIGINT UNSIGNED` as `u64`, text as `&str`, binary as `&[u8]`): fold
//! the same type live and the registers agree.
//!
//! Bad input is an error, never a wrong answer: NaN or infinite values, a state of another
//! aggregate, damaged bytes, or states of different parameters fail the query with a
//! [`StateError`] (or the shardfold error) as the source of DataFusion's `External` error.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> datafusion::error::Result<()> {
//! use datafusion::prelude::SessionContext;
//! let ctx = SessionContext::new();
//! shardfold_datafusion::register(&ctx);
//! let df = ctx
//!     .sql("SELECT sf_count(x) AS n, sf_sum(x) AS total, sf_distinct(x) AS users
//!           FROM (VALUES (1), (2), (2), (NULL)) AS t(x)")
//!     .await?;
//! let batches = df.collect().await?;
//! assert_eq!(batches[0].num_rows(), 1);
//! # Ok(())
//! # }
//! ```
//!
//! # Stored metrics as tables
//!
//! [`SeriesTable`] is a table provider over a [`Series`](shardfold::store::Series): one row per
//! window (and per key, for a [`Keyed`](shardfold::Keyed) part), with the window's bounds and
//! chosen parts of its aggregate as state columns, read from the store at each scan.
//!
//! [shardfold]: https://docs.rs/shardfold
#![cfg_attr(docsrs, feature(doc_cfg))]
#![deny(clippy::unwrap_used, clippy::expect_used)]

mod scalar;
mod table;
mod udaf;

use datafusion::common::DataFusionError;
use datafusion::logical_expr::{AggregateUDF, ScalarUDF};

pub use table::{Column, SeriesTable};
pub use udaf::StateError;

/// The shardfold aggregate a function computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// [`Count`](shardfold::Count): how many non-null values.
    Count,
    /// [`Sum`](shardfold::Sum): the exact sum of integers.
    Sum,
    /// [`SumF64`](shardfold::SumF64): the exact sum of finite floats, rounded once.
    SumF64,
    /// [`Distinct`](shardfold::Distinct): HyperLogLog.
    Distinct,
    /// [`Quantiles`](shardfold::Quantiles): t-digest.
    Quantiles,
}

impl Kind {
    /// Every kind.
    pub const ALL: [Kind; 5] = [
        Kind::Count,
        Kind::Sum,
        Kind::SumF64,
        Kind::Distinct,
        Kind::Quantiles,
    ];

    /// The name in the functions' names (`sf_{name}`).
    pub fn name(self) -> &'static str {
        match self {
            Kind::Count => "count",
            Kind::Sum => "sum",
            Kind::SumF64 => "sum_f64",
            Kind::Distinct => "distinct",
            Kind::Quantiles => "quantiles",
        }
    }

    fn state_name(self) -> &'static str {
        match self {
            Kind::Count => "shardfold.Count",
            Kind::Sum => "shardfold.Sum",
            Kind::SumF64 => "shardfold.SumF64",
            Kind::Distinct => "shardfold.Distinct",
            Kind::Quantiles => "shardfold.Quantiles",
        }
    }

    fn takes_parameter(self) -> bool {
        matches!(self, Kind::Distinct | Kind::Quantiles)
    }

    fn parameter_name(self) -> &'static str {
        match self {
            Kind::Distinct => "HyperLogLog precision",
            Kind::Quantiles => "t-digest compression",
            _ => "parameter",
        }
    }

    fn accepts(self) -> &'static str {
        match self {
            Kind::Count => "any values",
            Kind::Sum => "integers up to 32 bits unsigned or 64 bits signed",
            Kind::SumF64 | Kind::Quantiles => "floats, or integers",
            Kind::Distinct => "32- or 64-bit integers, text or binary",
        }
    }

    fn value_type(self) -> datafusion::arrow::datatypes::DataType {
        use datafusion::arrow::datatypes::DataType;
        match self {
            Kind::Count | Kind::Distinct => DataType::UInt64,
            Kind::Sum => DataType::Decimal128(38, 0),
            Kind::SumF64 => DataType::Float64,
            Kind::Quantiles => DataType::Binary,
        }
    }
}

/// What a function reads and returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mode {
    /// `sf_X(values)`: reads values, returns the value.
    Value,
    /// `sf_X_state(values)`: reads values, returns the state.
    State,
    /// `sf_X_merge(states)`: merges states, returns the value.
    Merge,
    /// `sf_X_merge_state(states)`: merges states, returns the state.
    MergeState,
}

impl Mode {
    /// Every mode.
    pub const ALL: [Mode; 4] = [Mode::Value, Mode::State, Mode::Merge, Mode::MergeState];

    /// The SQL name of the function computing `kind` in this mode.
    pub fn function_name(self, kind: Kind) -> String {
        let suffix = match self {
            Mode::Value => "",
            Mode::State => "_state",
            Mode::Merge => "_merge",
            Mode::MergeState => "_merge_state",
        };
        format!("sf_{}{suffix}", kind.name())
    }

    fn reads_states(self) -> bool {
        matches!(self, Mode::Merge | Mode::MergeState)
    }

    fn returns_state(self) -> bool {
        matches!(self, Mode::State | Mode::MergeState)
    }
}

/// The aggregate function computing `kind` in `mode`.
pub fn udaf(kind: Kind, mode: Mode) -> AggregateUDF {
    udaf::StateUdaf::udaf(kind, mode)
}

/// Every aggregate function of the crate (each [`Kind`] in each [`Mode`]).
pub fn udafs() -> Vec<AggregateUDF> {
    Kind::ALL
        .iter()
        .flat_map(|&k| Mode::ALL.iter().map(move |&m| udaf(k, m)))
        .collect()
}

/// Every scalar function of the crate: `sf_quantile(state, q)`.
pub fn udfs() -> Vec<ScalarUDF> {
    vec![scalar::quantile()]
}

/// Registers every function of the crate with `ctx`.
///
/// Functions of the same names registered before are replaced. For a `SessionState` built
/// otherwise, register [`udafs`] and [`udfs`] with its builder.
pub fn register(ctx: &datafusion::prelude::SessionContext) {
    for f in udafs() {
        ctx.register_udaf(f);
    }
    for f in udfs() {
        ctx.register_udf(f);
    }
}

/// A shardfold error as DataFusion's `External` error (the typed error stays its source, for
/// `downcast_ref::<shardfold::Error>()`).
pub fn to_df(e: shardfold::Error) -> DataFusionError {
    DataFusionError::External(Box::new(e))
}
