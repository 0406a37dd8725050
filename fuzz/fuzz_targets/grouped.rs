//! The group-by, struct and heavy-hitter decoders (`Keyed`, a `#[derive(Aggregate)]` struct,
//! `TopK`): whatever decodes must re-encode to the same bytes, merge with itself and answer
//! queries. Run: `cargo +nightly fuzz run grouped -- -max_total_time=60`.
#![no_main]

mod common;

use common::{check, raw_and_wrapped};
use libfuzzer_sys::fuzz_target;
use shardfold::codec::tags;
use shardfold::{Count, Distinct, Keyed, Quantiles, Stats, TopK};

/// A struct of aggregates (`#[derive(Aggregate)]`, type tag `STRUCT`).
#[derive(shardfold::Aggregate, Clone, Default)]
struct Route {
    requests: Count,
    users: Distinct,
    latency: Quantiles,
    amounts: Stats,
}

const FAMILY: &[u16] = &[tags::KEYED, tags::TOP_K, tags::STRUCT];

fn all(bytes: &[u8]) {
    if let Some(t) = check::<TopK<String>>(bytes) {
        let _ = (t.top(3), t.error_bound(), t.upper_bound(""));
    }
    check::<TopK<u64>>(bytes);
    if let Some(k) = check::<Keyed<String, Stats>>(bytes) {
        let _ = (k.total(), k.top_by(3, Stats::count));
    }
    check::<Keyed<(String, u16), Count>>(bytes);
    check::<Route>(bytes);
}

fuzz_target!(|data: &[u8]| raw_and_wrapped(data, FAMILY, all));
