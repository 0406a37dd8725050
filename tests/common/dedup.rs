//! Helpers for the dedup and window tests: event strategies, random merge trees, golden files,
//! corruption sweeps.

use proptest::prelude::*;
use shardfold::codec::{self, Codec, Envelope};
use shardfold::testkit::SplitMix64;
use shardfold::{Event, Limits, Merge};

/// Events with unique random IDs (never shrunk, so never equal), times in `0..max_time_ms`,
/// values from `values`.
pub fn unique_events<V: core::fmt::Debug>(
    max_time_ms: u64,
    values: impl Strategy<Value = V>,
) -> impl Strategy<Value = Event<V>> {
    (any::<u64>().no_shrink(), 0..max_time_ms, values).prop_map(|(id, t, v)| Event::new(id, t, v))
}

/// Merges `parts` in their order, grouped as a random binary tree; `empty` when there are none.
pub fn merge_tree<A: Merge + Clone>(parts: &[A], empty: &A, rng: &mut SplitMix64) -> A {
    match parts {
        [] => empty.clone(),
        [one] => one.clone(),
        _ => {
            let cut = 1 + rng.below(parts.len() - 1);
            let mut left = merge_tree(&parts[..cut], empty, rng);
            left.merge(&merge_tree(&parts[cut..], empty, rng)).unwrap();
            left
        }
    }
}

/// Checks `tests/data/{name}` against `fresh` (a state rebuilt from a fixed seed): it decodes,
/// re-encodes byte for byte, and equals `fresh`'s encoding. With `SHARDFOLD_BLESS` set, writes
/// the file first. Returns the decoded state.
pub fn check_golden<T: Codec>(name: &str, fresh: &T) -> T {
    let path = format!("{}/tests/data/{name}", env!("CARGO_MANIFEST_DIR"));
    let fresh = codec::encode(fresh);
    if std::env::var_os("SHARDFOLD_BLESS").is_some() {
        std::fs::write(&path, &fresh).unwrap();
    }
    let bytes = std::fs::read(&path).unwrap();
    let decoded: T = codec::decode(&bytes).unwrap();
    assert_eq!(
        codec::encode(&decoded),
        bytes,
        "{name}: re-encoding changed bytes"
    );
    assert_eq!(
        bytes, fresh,
        "{name}: the format or the seeded generator changed"
    );
    decoded
}

/// Every truncation of `value`'s blob is refused; every payload with one byte flipped (three
/// ways) either fails validation or gives a state that `probe` can use without panicking.
pub fn sweep_corruptions<T: Codec>(value: &T, mut probe: impl FnMut(T)) {
    let bytes = codec::encode(value);
    for cut in 0..bytes.len() {
        assert!(codec::decode::<T>(&bytes[..cut]).is_err());
    }
    let env = Envelope::parse(&bytes, &Limits::default()).unwrap();
    let mut payload = env.payload.to_vec();
    for i in 0..payload.len() {
        for flip in [0x01u8, 0x80, 0xff] {
            payload[i] ^= flip;
            if let Ok(v) = T::read_parts(env.params, &payload, &Limits::default()) {
                probe(v);
            }
            payload[i] ^= flip;
        }
    }
}
