//! What every decoding target shares: the canonical-bytes check and the envelope wrapper.
#![allow(dead_code)] // each target uses a part

use shardfold::Merge;
use shardfold::codec::{self, Codec, encode_raw, tags};

/// Decodes `bytes` as `T`; whatever decodes must re-encode to the same bytes (the format is
/// canonical) and survive being merged with itself. Returns the value for further use.
pub fn check<T: Codec + Merge + Clone>(bytes: &[u8]) -> Option<T> {
    let v = codec::decode::<T>(bytes).ok()?;
    assert_eq!(codec::encode(&v), bytes, "accepted a non-canonical blob");
    // a decoded value must be safe to use: merging must not panic
    let mut twice = v.clone();
    let _ = twice.merge(&v);
    Some(v)
}

/// Runs `all` on `data` as a raw blob (exercises the envelope) and as the contents of a valid
/// envelope (exercises each type's decoder): the first byte picks a tag from `family` (or,
/// one time in `family.len() + 1`, any tag the crate defines), the second where the rest
/// splits into parameter block and payload.
pub fn raw_and_wrapped(data: &[u8], family: &[u16], all: impl Fn(&[u8])) {
    all(data);
    if data.len() >= 2 {
        let tag = pick_tag(data[0], family);
        let split = usize::from(data[1]).min(data.len() - 2);
        let (params, payload) = data[2..].split_at(split);
        all(&encode_raw(tag, params, payload));
    }
}

/// A tag of `family`, else one of every tag this build defines, else an unknown one.
fn pick_tag(i: u8, family: &[u16]) -> u16 {
    let i = usize::from(i);
    if let Some(&t) = family.get(i % (family.len() + 1)) {
        return t;
    }
    let all = &tags::ALL;
    all.get(i % (all.len() + 1)).copied().unwrap_or(0x7FFF)
}
