//! The sketches side by side with the crates a user would otherwise pick, in one run:
//! `Distinct` (HyperLogLog) against hyperloglogplus and cardinality-estimator, `Quantiles`
//! (t-digest) and `LogHistogram` against tdigest and sketches-ddsketch.
//!
//! `cargo bench --bench sketches -- --warm-up-time 1 --measurement-time 3` (filter with `hll` or
//! `quantiles`).

use criterion::{criterion_group, criterion_main};

#[path = "sketches/hll.rs"]
mod hll;
#[path = "sketches/quantiles.rs"]
mod quantiles;

criterion_group!(sketches, hll::benches, quantiles::benches);
criterion_main!(sketches);
