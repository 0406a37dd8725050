//! The aggregates' decoders (counts, sums, extrema, means, stats, tuples, HLL, t-digest,
//! log-histogram): arbitrary bytes decoded as each; whatever decodes must re-encode to the
//! same bytes (the format is canonical) and survive being merged with itself and queried.
//! Dedup, windows, group-by/struct/TopK, store values and the series layout have their own
//! targets. Run: `cargo +nightly fuzz run decode -- -max_total_time=60`.
#![no_main]

mod common;

use common::{check, raw_and_wrapped};
use libfuzzer_sys::fuzz_target;
use shardfold::codec::tags;
use shardfold::{Count, Distinct, LogHistogram, Max, Mean, Min, Quantiles, Stats, Sum, SumF64};

const FAMILY: &[u16] = &[
    tags::COUNT,
    tags::SUM_I64,
    tags::SUM_F64,
    tags::MIN_F64,
    tags::MAX_F64,
    tags::MIN_I64,
    tags::MAX_I64,
    tags::MEAN,
    tags::STATS,
    tags::DISTINCT,
    tags::QUANTILES,
    tags::LOG_HISTOGRAM,
    tags::TUPLE2,
    tags::TUPLE3,
];

fn all(bytes: &[u8]) {
    check::<Count>(bytes);
    check::<Sum>(bytes);
    check::<SumF64>(bytes);
    check::<Min<f64>>(bytes);
    check::<Max<f64>>(bytes);
    check::<Min<i64>>(bytes);
    check::<Max<i64>>(bytes);
    if let Some(m) = check::<Mean>(bytes) {
        let _ = m.value();
    }
    if let Some(s) = check::<Stats>(bytes) {
        let _ = (s.mean(), s.min(), s.max());
    }
    check::<(Count, SumF64)>(bytes);
    check::<(Count, SumF64, Max<f64>)>(bytes);
    if let Some(d) = check::<Distinct>(bytes) {
        let _ = d.estimate();
    }
    if let Some(q) = check::<Quantiles>(bytes) {
        let _ = (q.quantile(0.5), q.quantile(0.999), q.cdf(1.0));
    }
    if let Some(h) = check::<LogHistogram>(bytes) {
        let _ = h.quantile(0.99);
    }
}

fuzz_target!(|data: &[u8]| raw_and_wrapped(data, FAMILY, all));
