#![doc = include_str!("../README.md")]
// missing_docs, unsafe_code: the workspace's [lints] table (Cargo.toml). These two apply to
// the library only (tests, examples and benches unwrap freely).
#![warn(clippy::unwrap_used, clippy::expect_used)]
// docs.rs (and .ci/run) document with `--cfg docsrs` on nightly: every feature-gated item
// shows the feature it needs.
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod agg;
#[cfg(feature = "cli")]
#[cfg_attr(docsrs, doc(cfg(feature = "cli")))]
pub mod cli;
pub mod codec;
pub mod dedup;
mod error;
pub mod hash;
#[cfg(feature = "lambda")]
#[cfg_attr(docsrs, doc(cfg(feature = "lambda")))]
pub mod lambda;
pub mod merge;
#[cfg(feature = "store")]
#[cfg_attr(docsrs, doc(cfg(feature = "store")))]
pub mod store;
#[cfg(feature = "testkit")]
#[cfg_attr(docsrs, doc(cfg(feature = "testkit")))]
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
#[cfg_attr(docsrs, doc(cfg(feature = "derive")))]
pub use shardfold_derive::Aggregate;
pub use window::Windowed;

/// Everything a stored, mergeable aggregate is: mergeable, encodable, with an identity.
///
/// Implemented automatically for every type that has the parts.
pub trait Aggregate: Merge + Codec + Default + Clone + Send + Sync + 'static {}

impl<T: Merge + Codec + Default + Clone + Send + Sync + 'static> Aggregate for T {}
