//! The aggregate functions: one generic [`StateUdaf`] per (aggregate, mode).

use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray};
use datafusion::arrow::datatypes::{
    DataType, Field, FieldRef, Float64Type, Int8Type, Int16Type, Int32Type, Int64Type, UInt8Type,
    UInt16Type, UInt32Type, UInt64Type,
};
use datafusion::common::{DataFusionError, Result, ScalarValue, exec_err, plan_err};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{
    Accumulator, AggregateUDF, AggregateUDFImpl, Signature, TypeSignature, Volatility,
};
use datafusion::physical_expr::expressions::Literal;
use shardfold::{Count, Distinct, Insert, Merge, Quantiles, Sum, SumF64};

use crate::{Kind, Mode, to_df};

/// One of the crate's aggregate functions: `kind` chooses the shardfold aggregate, `mode` what
/// the function reads (values or states) and returns (the value or a state).
#[derive(Debug)]
pub(crate) struct StateUdaf {
    kind: Kind,
    mode: Mode,
    name: String,
    signature: Signature,
}

impl PartialEq for StateUdaf {
    fn eq(&self, other: &Self) -> bool {
        (self.kind, self.mode) == (other.kind, other.mode)
    }
}

impl Eq for StateUdaf {}

impl Hash for StateUdaf {
    fn hash<H: Hasher>(&self, state: &mut H) {
        (self.kind, self.mode).hash(state);
    }
}

impl StateUdaf {
    pub(crate) fn new(kind: Kind, mode: Mode) -> Self {
        let signature = if mode.reads_states() {
            // a state column: any binary layout (Parquet reads BinaryView)
            Signature::one_of(
                vec![
                    TypeSignature::Exact(vec![DataType::Binary]),
                    TypeSignature::Exact(vec![DataType::LargeBinary]),
                    TypeSignature::Exact(vec![DataType::BinaryView]),
                ],
                Volatility::Immutable,
            )
        } else if kind.takes_parameter() {
            // the values, optionally a literal parameter (HLL precision, t-digest compression)
            Signature::one_of(
                vec![TypeSignature::Any(1), TypeSignature::Any(2)],
                Volatility::Immutable,
            )
        } else {
            Signature::any(1, Volatility::Immutable)
        };
        StateUdaf {
            kind,
            mode,
            name: mode.function_name(kind),
            signature,
        }
    }

    pub(crate) fn udaf(kind: Kind, mode: Mode) -> AggregateUDF {
        AggregateUDF::from(StateUdaf::new(kind, mode))
    }
}

impl AggregateUDFImpl for StateUdaf {
    fn name(&self) -> &str {
        &self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        if !self.mode.reads_states()
            && let Some(t) = arg_types.first()
        {
            self.kind.check_input(&self.name, t)?;
        }
        Ok(if self.mode.returns_state() {
            DataType::Binary
        } else {
            self.kind.value_type()
        })
    }

    fn is_nullable(&self) -> bool {
        false
    }

    fn default_value(&self, _data_type: &DataType) -> Result<ScalarValue> {
        // an aggregate over no rows is the identity, as a state or as a value
        let empty = self.kind.empty(None)?;
        if self.mode.returns_state() {
            empty.state()
        } else {
            empty.value()
        }
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        Ok(vec![Arc::new(Field::new(
            format!("{}[{}]", args.name, self.kind.state_name()),
            DataType::Binary,
            false,
        ))])
    }

    fn accumulator(&self, acc_args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        let parameter = if self.mode.reads_states() {
            None
        } else {
            match acc_args.exprs.get(1) {
                None => None,
                Some(expr) => {
                    let Some(literal) = expr.downcast_ref::<Literal>() else {
                        return plan_err!(
                            "{}: the second argument ({}) must be a literal integer",
                            self.name,
                            self.kind.parameter_name()
                        );
                    };
                    Some(parameter_value(&self.name, self.kind, literal.value())?)
                }
            }
        };
        let input = if self.mode.reads_states() {
            None
        } else {
            acc_args.expr_fields.first().map(|f| f.data_type().clone())
        };
        Ok(Box::new(StateAccumulator {
            state: self.kind.empty(parameter)?,
            adopt: self.mode.reads_states(),
            mode: self.mode,
            input,
            name: self.name.clone(),
        }))
    }
}

/// A literal parameter as a `u32` in range for `kind`.
fn parameter_value(name: &str, kind: Kind, value: &ScalarValue) -> Result<u32> {
    let n = match value {
        ScalarValue::Int64(Some(n)) => u32::try_from(*n).ok(),
        ScalarValue::Int32(Some(n)) => u32::try_from(*n).ok(),
        ScalarValue::UInt64(Some(n)) => u32::try_from(*n).ok(),
        ScalarValue::UInt32(Some(n)) => Some(*n),
        ScalarValue::Int16(Some(n)) => u32::try_from(*n).ok(),
        ScalarValue::Int8(Some(n)) => u32::try_from(*n).ok(),
        ScalarValue::UInt16(Some(n)) => Some(u32::from(*n)),
        ScalarValue::UInt8(Some(n)) => Some(u32::from(*n)),
        _ => None,
    };
    match n {
        Some(n) => Ok(n),
        None => plan_err!(
            "{name}: the {} must be a non-negative integer literal, got {value:?}",
            kind.parameter_name()
        ),
    }
}

/// The running state of one aggregate function in one group.
#[derive(Debug)]
pub(crate) enum State {
    Count(Count),
    Sum(Sum),
    SumF64(SumF64),
    Distinct(Distinct),
    Quantiles(Quantiles),
}

impl Kind {
    /// The identity of `self`, with its parameter (HLL precision, t-digest compression) when
    /// given; invalid parameters are a typed error.
    pub(crate) fn empty(self, parameter: Option<u32>) -> Result<State> {
        Ok(match (self, parameter) {
            (Kind::Count, _) => State::Count(Count::default()),
            (Kind::Sum, _) => State::Sum(Sum::default()),
            (Kind::SumF64, _) => State::SumF64(SumF64::default()),
            (Kind::Distinct, None) => State::Distinct(Distinct::default()),
            (Kind::Distinct, Some(p)) => {
                let p = u8::try_from(p).map_err(|_| {
                    to_df(shardfold::Error::InvalidParameter {
                        name: "precision",
                        reason: format!("{p} is not a HyperLogLog precision"),
                    })
                })?;
                State::Distinct(Distinct::try_new(p).map_err(to_df)?)
            }
            (Kind::Quantiles, None) => State::Quantiles(Quantiles::default()),
            (Kind::Quantiles, Some(c)) => State::Quantiles(Quantiles::try_new(c).map_err(to_df)?),
        })
    }

    /// A plan error unless `self` can read values of type `t`.
    fn check_input(self, name: &str, t: &DataType) -> Result<()> {
        use DataType::*;
        let ok = match self {
            Kind::Count => true,
            Kind::Sum => matches!(
                t,
                Int8 | Int16 | Int32 | Int64 | UInt8 | UInt16 | UInt32 | Null
            ),
            Kind::SumF64 | Kind::Quantiles => matches!(
                t,
                Float64 | Float32 | Int8 | Int16 | Int32 | Int64 | UInt8 | UInt16 | UInt32 | Null
            ),
            Kind::Distinct => matches!(
                t,
                Int32
                    | Int64
                    | UInt32
                    | UInt64
                    | Utf8
                    | LargeUtf8
                    | Utf8View
                    | Binary
                    | LargeBinary
                    | BinaryView
                    | Null
            ),
        };
        if ok {
            Ok(())
        } else {
            plan_err!("{name} does not take {t} values ({})", self.accepts())
        }
    }
}

impl State {
    /// The state as one shardfold envelope.
    pub(crate) fn state(&self) -> Result<ScalarValue> {
        let bytes = match self {
            State::Count(a) => shardfold::encode(a),
            State::Sum(a) => shardfold::encode(a),
            State::SumF64(a) => shardfold::encode(a),
            State::Distinct(a) => shardfold::encode(a),
            State::Quantiles(a) => shardfold::encode(a),
        };
        Ok(ScalarValue::Binary(Some(bytes)))
    }

    /// The final value (the state itself for `Quantiles`: read it with `sf_quantile`).
    pub(crate) fn value(&self) -> Result<ScalarValue> {
        Ok(match self {
            State::Count(a) => ScalarValue::UInt64(Some(a.get())),
            State::Sum(a) => {
                let v = a.get();
                if v.unsigned_abs() > MAX_DECIMAL38 {
                    return Err(to_df(shardfold::Error::Overflow {
                        what: "sf_sum: the exact sum exceeds DECIMAL(38, 0); read the state",
                    }));
                }
                ScalarValue::Decimal128(Some(v), 38, 0)
            }
            State::SumF64(a) => ScalarValue::Float64(Some(a.value())),
            State::Distinct(a) => ScalarValue::UInt64(Some(a.count())),
            State::Quantiles(_) => return self.state(),
        })
    }

    /// Merges the envelope `bytes` into `self` — or, when `adopt`, takes the decoded state as
    /// it is (its parameters with it). A typed error (wrong type, corrupt, mismatched
    /// parameters) leaves `self` as it was.
    fn merge_bytes(&mut self, bytes: &[u8], adopt: bool) -> shardfold::Result<()> {
        fn merge<A: Merge + shardfold::Codec>(
            a: &mut A,
            bytes: &[u8],
            adopt: bool,
        ) -> shardfold::Result<()> {
            let other: A = shardfold::decode(bytes)?;
            if adopt {
                *a = other;
                Ok(())
            } else {
                a.merge(&other)
            }
        }
        match self {
            State::Count(a) => merge(a, bytes, adopt),
            State::Sum(a) => merge(a, bytes, adopt),
            State::SumF64(a) => merge(a, bytes, adopt),
            State::Distinct(a) => merge(a, bytes, adopt),
            State::Quantiles(a) => merge(a, bytes, adopt),
        }
    }

    fn size(&self) -> usize {
        std::mem::size_of::<Self>()
            + match self {
                State::Distinct(a) if !a.is_sparse() => 1usize << a.precision(),
                State::Distinct(_) => 1024,
                State::Quantiles(a) => a.compression() as usize * 2 * 16,
                _ => 0,
            }
    }
}

/// 10³⁸ − 1, the largest magnitude of `DECIMAL(38, 0)`.
const MAX_DECIMAL38: u128 = 99_999_999_999_999_999_999_999_999_999_999_999_999;

#[derive(Debug)]
struct StateAccumulator {
    state: State,
    /// Whether `state` is a placeholder with default parameters, to be replaced by the first
    /// state merged: a `_merge` function learns the HLL precision or t-digest compression from
    /// the states it reads.
    adopt: bool,
    mode: Mode,
    /// The values' type (`None` when the function reads states).
    input: Option<DataType>,
    name: String,
}

impl StateAccumulator {
    fn merge_states(&mut self, states: &ArrayRef) -> Result<()> {
        let name = &self.name;
        let (state, adopt) = (&mut self.state, &mut self.adopt);
        let mut merge = |bytes: Option<&[u8]>| -> Result<()> {
            match bytes {
                None => Ok(()),
                Some(b) => {
                    state.merge_bytes(b, *adopt).map_err(|e| {
                        DataFusionError::External(Box::new(StateError {
                            function: name.clone(),
                            source: e,
                        }))
                    })?;
                    *adopt = false;
                    Ok(())
                }
            }
        };
        match states.data_type() {
            DataType::Binary => states.as_binary::<i32>().iter().try_for_each(&mut merge),
            DataType::LargeBinary => states.as_binary::<i64>().iter().try_for_each(&mut merge),
            DataType::BinaryView => states.as_binary_view().iter().try_for_each(&mut merge),
            other => exec_err!("{name}: states are binary shardfold envelopes, got {other}"),
        }
    }

    fn insert_values(&mut self, values: &ArrayRef) -> Result<()> {
        match &mut self.state {
            State::Count(a) => {
                let n = (values.len() - values.logical_null_count()) as u64;
                a.add(n).map_err(to_df)
            }
            State::Sum(a) => insert_ints(a, values),
            State::SumF64(a) => insert_floats(a, values),
            State::Quantiles(a) => insert_floats(a, values),
            State::Distinct(a) => insert_items(a, values),
        }
    }
}

/// Integers into an exact `Sum`.
fn insert_ints(a: &mut Sum, values: &ArrayRef) -> Result<()> {
    macro_rules! each {
        ($t:ty) => {
            for v in values.as_primitive::<$t>().iter().flatten() {
                a.insert(i64::from(v)).map_err(to_df)?;
            }
        };
    }
    match values.data_type() {
        DataType::Int8 => each!(Int8Type),
        DataType::Int16 => each!(Int16Type),
        DataType::Int32 => each!(Int32Type),
        DataType::Int64 => each!(Int64Type),
        DataType::UInt8 => each!(UInt8Type),
        DataType::UInt16 => each!(UInt16Type),
        DataType::UInt32 => each!(UInt32Type),
        DataType::Null => {}
        other => return exec_err!("sf_sum: cannot sum {other} values"),
    }
    Ok(())
}

/// Numbers into an `f64` aggregate (`SumF64`, `Quantiles`): NaN and infinities are a typed
/// error, as in every shardfold aggregate.
fn insert_floats<A: Insert<f64>>(a: &mut A, values: &ArrayRef) -> Result<()> {
    macro_rules! each {
        ($t:ty) => {
            for v in values.as_primitive::<$t>().iter().flatten() {
                a.insert(f64::from(v)).map_err(to_df)?;
            }
        };
    }
    match values.data_type() {
        DataType::Float64 => each!(Float64Type),
        DataType::Float32 => each!(datafusion::arrow::datatypes::Float32Type),
        DataType::Int8 => each!(Int8Type),
        DataType::Int16 => each!(Int16Type),
        DataType::Int32 => each!(Int32Type),
        DataType::Int64 => {
            for v in values.as_primitive::<Int64Type>().iter().flatten() {
                // exactly representable only up to 2⁵³: beyond, rounding would change the value
                if v.unsigned_abs() > 1 << 53 {
                    return Err(to_df(shardfold::Error::InvalidValue {
                        reason: "an integer beyond ±2⁵³ has no exact f64 value",
                    }));
                }
                a.insert(v as f64).map_err(to_df)?;
            }
        }
        DataType::UInt8 => each!(UInt8Type),
        DataType::UInt16 => each!(UInt16Type),
        DataType::UInt32 => each!(UInt32Type),
        DataType::Null => {}
        other => return exec_err!("cannot read {other} values as numbers"),
    }
    Ok(())
}

/// Items into a `Distinct`, hashed as the Rust value of the same type is (`i64` for BIGINT,
/// `&str` for text, `&[u8]` for binary), so registers equal those a function built.
fn insert_items(a: &mut Distinct, values: &ArrayRef) -> Result<()> {
    macro_rules! each_primitive {
        ($t:ty) => {
            for v in values.as_primitive::<$t>().iter().flatten() {
                a.insert(v).map_err(to_df)?;
            }
        };
    }
    macro_rules! each {
        ($iter:expr) => {
            for v in $iter.flatten() {
                a.insert(v).map_err(to_df)?;
            }
        };
    }
    match values.data_type() {
        DataType::Int32 => each_primitive!(Int32Type),
        DataType::Int64 => each_primitive!(Int64Type),
        DataType::UInt32 => each_primitive!(UInt32Type),
        DataType::UInt64 => each_primitive!(UInt64Type),
        DataType::Utf8 => each!(values.as_string::<i32>().iter()),
        DataType::LargeUtf8 => each!(values.as_string::<i64>().iter()),
        DataType::Utf8View => each!(values.as_string_view().iter()),
        DataType::Binary => each!(values.as_binary::<i32>().iter()),
        DataType::LargeBinary => each!(values.as_binary::<i64>().iter()),
        DataType::BinaryView => each!(values.as_binary_view().iter()),
        DataType::Null => {}
        other => return exec_err!("sf_distinct: cannot hash {other} values"),
    }
    Ok(())
}

impl Accumulator for StateAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let Some(values) = values.first() else {
            return exec_err!("{}: no argument", self.name);
        };
        if self.input.is_none() {
            self.merge_states(values)
        } else {
            self.insert_values(values)
        }
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        match states.first() {
            Some(states) => self.merge_states(states),
            None => exec_err!("{}: no state column", self.name),
        }
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        Ok(vec![self.state.state()?])
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        if self.mode.returns_state() {
            self.state.state()
        } else {
            self.state.value()
        }
    }

    fn size(&self) -> usize {
        std::mem::size_of::<Self>() + self.state.size()
    }
}

/// A state that could not be merged: which function read it, and shardfold's typed error
/// (wrong type, damaged bytes, mismatched parameters) as its source.
#[derive(Debug)]
pub struct StateError {
    /// The SQL function that read the state.
    pub function: String,
    /// Why it could not be merged.
    pub source: shardfold::Error,
}

impl fmt::Display for StateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: a state could not be merged: {}",
            self.function, self.source
        )
    }
}

impl std::error::Error for StateError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}
