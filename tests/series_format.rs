//! The stored values of the bucketed layout (`store::Series`): golden files that must decode
//! and re-encode byte for byte, and every bit flip and truncation refused with a typed error.
#![cfg(feature = "store")]

use std::path::PathBuf;

use shardfold::store::series_wire::{goldens, reencode};

fn data(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

#[test]
fn golden_files_decode_and_reencode_byte_for_byte() {
    let bless = std::env::var_os("SHARDFOLD_BLESS").is_some();
    for (name, fresh) in goldens() {
        if bless {
            std::fs::write(data(name), &fresh).unwrap();
        }
        let golden = std::fs::read(data(name))
            .unwrap_or_else(|e| panic!("{name}: {e} (run with SHARDFOLD_BLESS=1 once)"));
        assert_eq!(
            reencode(&golden).unwrap(),
            golden,
            "{name}: re-encoding changed bytes"
        );
        assert_eq!(
            fresh, golden,
            "{name}: today's encoding of the same state differs"
        );
    }
}

#[test]
fn every_single_bit_flip_and_truncation_is_an_error() {
    for (name, blob) in goldens() {
        for bit in 0..blob.len() * 8 {
            let mut bad = blob.clone();
            bad[bit / 8] ^= 1 << (bit % 8);
            assert!(
                reencode(&bad).is_err(),
                "{name}: flipping bit {bit} was accepted"
            );
        }
        for len in 0..blob.len() {
            assert!(
                reencode(&blob[..len]).is_err(),
                "{name}: cut at {len} was accepted"
            );
        }
    }
}

#[test]
fn hostile_counts_are_refused_before_allocating() {
    use shardfold::codec::{encode_raw, tags};
    // a record claiming 2^32 − 1 events in 12 bytes; a base claiming 2^32 − 1 absorbed records
    let mut record = 0u64.to_le_bytes().to_vec();
    record.extend_from_slice(&u32::MAX.to_le_bytes());
    assert!(reencode(&encode_raw(tags::SERIES_RECORD, &[], &record)).is_err());
    let mut base = vec![0u8; 32];
    base.push(0);
    base.extend_from_slice(&u32::MAX.to_le_bytes());
    assert!(reencode(&encode_raw(tags::SERIES_BASE, &[], &base)).is_err());
}
