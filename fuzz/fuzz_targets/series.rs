//! Decodes arbitrary bytes as every stored value of the bucketed layout (`store::Series`):
//! whatever decodes must re-encode to the same bytes, and nothing may panic.
//! Run: `cargo +nightly fuzz run series -- -max_total_time=60`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use shardfold::store::series_wire::reencode;

fuzz_target!(|bytes: &[u8]| {
    if let Ok(again) = reencode(bytes) {
        assert_eq!(again, bytes, "accepted a non-canonical blob");
    }
});
