//! Decodes arbitrary bytes as every stored value of the bucketed layout (`store::Series`:
//! metadata, cursor, record, base, fingerprint set): whatever decodes must re-encode to the
//! same bytes, and nothing may panic.
//! Run: `cargo +nightly fuzz run series -- -max_total_time=60`.
#![no_main]

mod common;

use common::raw_and_wrapped;
use libfuzzer_sys::fuzz_target;
use shardfold::codec::tags;
use shardfold::store::series_wire::reencode;

const FAMILY: &[u16] = &[
    tags::SERIES_META,
    tags::SERIES_RECORD,
    tags::SERIES_BASE,
    tags::SERIES_CURSOR,
    tags::SERIES_IDS,
];

fn all(bytes: &[u8]) {
    if let Ok(again) = reencode(bytes) {
        assert_eq!(again, bytes, "accepted a non-canonical blob");
    }
}

fuzz_target!(|data: &[u8]| raw_and_wrapped(data, FAMILY, all));
