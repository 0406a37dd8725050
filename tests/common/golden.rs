//! Golden files and corruption sweeps shared by the format tests.

use shardfold::Limits;
use shardfold::codec::{self, Codec, Envelope};

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
