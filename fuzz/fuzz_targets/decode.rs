//! Decodes arbitrary bytes as every shardfold type; whatever decodes must re-encode to the same
//! bytes (the format is canonical) and survive being merged with itself and queried.
//! Run: `cargo +nightly fuzz run decode -- -max_total_time=60`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use shardfold::{Keyed, TopK};
use shardfold::codec::{self, Codec, encode_raw, tags};
use shardfold::{
    Count, Deduped, Distinct, IdDedup, LogHistogram, Max, Mean, Merge, Min, Quantiles, SeqDedup,
    Stats, Sum, SumF64, Windowed,
};

/// A struct of aggregates (`#[derive(Aggregate)]`, type tag `STRUCT`).
#[derive(shardfold::Aggregate, Clone, Default)]
struct Route {
    requests: Count,
    users: Distinct,
    latency: Quantiles,
    amounts: Stats,
}

fn check<T: Codec + Merge + Clone>(bytes: &[u8]) {
    if let Ok(v) = codec::decode::<T>(bytes) {
        assert_eq!(codec::encode(&v), bytes, "accepted a non-canonical blob");
        // a decoded value must be safe to use: merging must not panic
        let mut twice = v.clone();
        let _ = twice.merge(&v);
    }
}

fn all(bytes: &[u8]) {
    check::<Count>(bytes);
    check::<Sum>(bytes);
    check::<SumF64>(bytes);
    check::<Min<f64>>(bytes);
    check::<Max<f64>>(bytes);
    check::<Min<i64>>(bytes);
    check::<Max<i64>>(bytes);
    check::<Mean>(bytes);
    check::<Stats>(bytes);
    check::<(Count, SumF64, Max<f64>)>(bytes);
    check::<Distinct>(bytes);
    if let Ok(d) = codec::decode::<Distinct>(bytes) {
        let _ = d.estimate();
    }
    check::<Quantiles>(bytes);
    if let Ok(q) = codec::decode::<Quantiles>(bytes) {
        let _ = (q.quantile(0.5), q.quantile(0.999), q.cdf(1.0));
    }
    check::<LogHistogram>(bytes);
    if let Ok(h) = codec::decode::<LogHistogram>(bytes) {
        let _ = h.quantile(0.99);
    }
    check::<TopK<String>>(bytes);
    check::<TopK<u64>>(bytes);
    check::<Keyed<String, Stats>>(bytes);
    check::<Keyed<(String, u16), Count>>(bytes);
    if let Ok(k) = codec::decode::<Keyed<String, Stats>>(bytes) {
        let _ = (k.total(), k.top_by(3, Stats::count));
    }
    if let Ok(t) = codec::decode::<TopK<String>>(bytes) {
        let _ = (t.top(3), t.error_bound(), t.upper_bound(""));
    }
    check::<IdDedup>(bytes);
    check::<SeqDedup>(bytes);
    check::<Deduped<Stats>>(bytes);
    check::<Deduped<Stats, SeqDedup>>(bytes);
    check::<Windowed<(Count, Sum)>>(bytes);
    check::<Windowed<Distinct>>(bytes);
    check::<Route>(bytes);
}

/// Every tag the crate defines (type-specific decoders, store values too) and one unknown.
fn tag(i: u8) -> u16 {
    let all = &tags::ALL;
    all.get(usize::from(i) % (all.len() + 1)).copied().unwrap_or(0x7FFF)
}

fuzz_target!(|data: &[u8]| {
    // As raw blobs (exercises the envelope) ...
    all(data);
    // ... and as contents of a valid envelope (exercises each type's decoder): the first byte
    // picks the tag, the second where the rest splits into parameter block and payload.
    if data.len() >= 2 {
        let tag = tag(data[0]);
        let split = usize::from(data[1]).min(data.len() - 2);
        let (params, payload) = data[2..].split_at(split);
        all(&encode_raw(tag, params, payload));
    }
});
