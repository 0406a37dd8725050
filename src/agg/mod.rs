//! The aggregates: exact types here, one folder per sketch family.

mod composite;
mod count;
mod detmath;
mod extrema;
pub mod hll;
pub mod keyed;
pub mod loghist;
pub mod partials;
mod sum;
mod sum_f64;
mod tally;
pub mod tdigest;
pub mod topk;

pub use composite::{Mean, Stats, Zip};
pub use count::Count;
pub(crate) use count::no_params;
pub use extrema::{Extremum, Max, Min};
pub use hll::Distinct;
pub use keyed::Keyed;
pub use loghist::LogHistogram;
pub use partials::{Partial, Partials};
pub use sum::Sum;
pub use sum_f64::SumF64;
pub use tdigest::Quantiles;
pub use topk::TopK;
