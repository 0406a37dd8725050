//! The aggregates: exact types here, one folder per sketch family.

mod composite;
mod count;
mod extrema;
pub mod hll;
mod sum;
mod sum_f64;

pub use composite::{Mean, Stats};
pub use count::Count;
pub(crate) use count::no_params;
pub use extrema::{Extremum, Max, Min};
pub use hll::Distinct;
pub use sum::Sum;
pub use sum_f64::SumF64;
