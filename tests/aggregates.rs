//! Integration tests of the aggregates, their codecs and the foreign sketch formats: one test
//! binary (each module was a binary of its own; one binary links once and compiles the shared
//! generic code once). `cargo test --test aggregates MODULE::` runs one module.

mod common;

mod codec;
mod dedup;
mod derive;
mod hash;
mod hll;
mod hll_datasketches;
mod hll_format;
mod hll_redis;
mod keyed;
mod laws;
mod partials;
mod policy;
mod quantiles;
mod quantiles_datasketches;
mod series_format;
mod sketch_codec;
mod sketch_laws;
mod sum_f64_exact;
mod topk;
mod window;
