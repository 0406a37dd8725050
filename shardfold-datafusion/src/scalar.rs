//! `sf_quantile(state, q)`: a quantile read from a t-digest state.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, Float64Array, Float64Builder};
use datafusion::arrow::datatypes::{DataType, Float64Type};
use datafusion::common::{Result, exec_err, plan_err};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, TypeSignature,
    Volatility,
};
use shardfold::Quantiles;

use crate::to_df;
use crate::udaf::StateError;

/// `sf_quantile(state, q)`.
#[derive(Debug, PartialEq, Eq, Hash)]
struct Quantile {
    signature: Signature,
}

pub(crate) fn quantile() -> ScalarUDF {
    let binary = [
        DataType::Binary,
        DataType::LargeBinary,
        DataType::BinaryView,
    ];
    ScalarUDF::from(Quantile {
        signature: Signature::one_of(
            binary
                .into_iter()
                .map(|b| TypeSignature::Exact(vec![b, DataType::Float64]))
                .collect(),
            Volatility::Immutable,
        ),
    })
}

impl ScalarUDFImpl for Quantile {
    fn name(&self) -> &str {
        "sf_quantile"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        match arg_types {
            [_, DataType::Float64] => Ok(DataType::Float64),
            other => plan_err!(
                "sf_quantile(state, q) takes a t-digest state and a DOUBLE, got {other:?}"
            ),
        }
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let rows = args.number_rows;
        let [state, q] = args.args.as_slice() else {
            return exec_err!("sf_quantile(state, q) takes two arguments");
        };
        let states = state.to_array(rows)?;
        let qs = q.to_array(rows)?;
        let qs = qs.as_primitive::<Float64Type>();
        let mut out = Float64Builder::with_capacity(rows);
        for i in 0..rows {
            let bytes = binary_at(&states, i)?;
            match (bytes, qs.is_null(i)) {
                (Some(bytes), false) => {
                    let digest: Quantiles = shardfold::decode(bytes).map_err(|e| {
                        datafusion::common::DataFusionError::External(Box::new(StateError {
                            function: "sf_quantile".into(),
                            source: e,
                        }))
                    })?;
                    out.append_option(digest.quantile(qs.value(i)).map_err(to_df)?);
                }
                _ => out.append_null(),
            }
        }
        let out: Float64Array = out.finish();
        Ok(ColumnarValue::Array(Arc::new(out)))
    }
}

/// Row `i` of a binary column of any layout.
fn binary_at(states: &ArrayRef, i: usize) -> Result<Option<&[u8]>> {
    if states.is_null(i) {
        return Ok(None);
    }
    Ok(Some(match states.data_type() {
        DataType::Binary => states.as_binary::<i32>().value(i),
        DataType::LargeBinary => states.as_binary::<i64>().value(i),
        DataType::BinaryView => states.as_binary_view().value(i),
        other => return exec_err!("sf_quantile: a state is binary, got {other}"),
    }))
}
