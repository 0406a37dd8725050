#![doc = include_str!("../README.md")]
#![deny(missing_docs)]
#![forbid(unsafe_code)]
#![warn(clippy::unwrap_used, clippy::expect_used)]

pub mod agg;
pub mod codec;
pub mod dedup;
mod error;
pub mod hash;
pub mod merge;
#[cfg(feature = "store")]
pub mod store;
#[cfg(feature = "testkit")]
pub mod testkit;
mod time;
pub mod window;

pub use agg::TopK;
pub use agg::{
    Count, Distinct, Extremum, Keyed, LogHistogram, Max, Mean, Min, Quantiles, Stats, Sum, SumF64,
    Zip,
};
pub use codec::{Codec, Limits, decode, encode};
pub use dedup::{Deduped, Event, EventId, IdDedup, Offer, Outcome, SeqDedup, SeqNum, StreamRecord};
pub use error::{Error, MergeError, Result, StoreErrorKind, StoreSource};
pub use merge::{Insert, Merge};
#[cfg(feature = "derive")]
pub use shardfold_derive::Aggregate;
pub use window::Windowed;

/// Everything a stored, mergeable aggregate is: mergeable, encodable, with an identity.
///
/// Implemented automatically for every type that has the parts.
pub trait Aggregate: Merge + Codec + Default + Clone + Send + Sync + 'static {}

impl<T: Merge + Codec + Default + Clone + Send + Sync + 'static> Aggregate for T {}
