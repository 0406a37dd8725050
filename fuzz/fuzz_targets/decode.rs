//! Decodes arbitrary bytes as every shardfold type; whatever decodes must re-encode to the same
//! bytes (the format is canonical). Run: `cargo +nightly fuzz run decode -- -max_total_time=60`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use shardfold::codec::{self, Codec, encode_raw};
use shardfold::{Count, Max, Mean, Min, Stats, Sum, SumF64};

fn check<T: Codec>(bytes: &[u8]) {
    if let Ok(v) = codec::decode::<T>(bytes) {
        assert_eq!(codec::encode(&v), bytes, "accepted a non-canonical blob");
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
}

fuzz_target!(|data: &[u8]| {
    // As raw blobs (exercises the envelope) ...
    all(data);
    // ... and as contents of a valid envelope for every tag (exercises each type's decoder):
    // first two bytes pick the tag, the rest is split into parameter block and payload.
    if data.len() >= 3 {
        let tag = u16::from_le_bytes([data[0], data[1]]) % 0x20;
        let split = usize::from(data[2]).min(data.len() - 3);
        let (params, payload) = data[3..].split_at(split);
        let blob = encode_raw(tag, params, payload);
        all(&blob);
        let blob = encode_raw(0x00F3, params, payload);
        all(&blob);
    }
});
