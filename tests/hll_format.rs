//! `Distinct` on the wire: sizes, golden files, and decoding of corrupted or hostile bytes
//! (typed errors, never a panic, and a decoded sketch is always safe to use).

use proptest::prelude::*;
use shardfold::codec::{self, MAGIC};
use shardfold::testkit::SplitMix64;
use shardfold::{Distinct, Error, Insert, Merge};

/// A sketch of precision `p` holding the values `seed << 40 | i` for `i < n`.
fn built(p: u8, seed: u64, n: u64) -> Distinct {
    let mut d = Distinct::new(p);
    for i in 0..n {
        d.insert(seed << 40 | i).unwrap();
    }
    d
}

/// A well-formed envelope (valid checksum) around any parameter block and payload.
fn envelope(params: &[u8], payload: &[u8]) -> Vec<u8> {
    let mut out = MAGIC.to_vec();
    out.push(codec::FORMAT_VERSION);
    out.extend_from_slice(&codec::tags::DISTINCT.to_le_bytes());
    for section in [params, payload] {
        out.extend_from_slice(&(section.len() as u32).to_le_bytes());
        out.extend_from_slice(section);
    }
    let crc = crc32c::crc32c(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// The parameter block and payload of a sketch.
fn parts(d: &Distinct) -> (Vec<u8>, Vec<u8>) {
    use shardfold::Codec;
    let (mut params, mut payload) = (Vec::new(), Vec::new());
    d.write_params(&mut params);
    d.write_payload(&mut payload);
    (params, payload)
}

/// Decodes; whatever is accepted must be canonical and usable without panicking.
fn decode_checked(bytes: &[u8]) -> Result<Distinct, Error> {
    let d: Distinct = codec::decode(bytes)?;
    assert_eq!(codec::encode(&d), bytes, "accepted a non-canonical blob");
    let e = d.estimate();
    assert!(e >= 0.0, "{e}");
    let mut twice = d.clone();
    twice.merge(&d).unwrap();
    assert_eq!(twice, d);
    twice.insert(12_345u64).unwrap();
    let _ = twice.downgrade(4).unwrap().count();
    Ok(d)
}

fn samples() -> Vec<Distinct> {
    vec![
        Distinct::default(),
        built(14, 1, 1),
        built(14, 2, 300),
        built(14, 3, 5_000),
        built(4, 4, 3),
        built(4, 5, 100),
        built(18, 6, 2_000),
        built(9, 7, 1_000),
    ]
}

proptest! {
    #[test]
    fn random_payloads_never_panic(
        p in prop_oneof![4u8..=18, any::<u8>()],
        kind in 0u8..3,
        body in proptest::collection::vec(any::<u8>(), 0..400),
    ) {
        let mut payload = vec![kind];
        payload.extend_from_slice(&body);
        let _ = decode_checked(&envelope(&[p], &payload));
        let _ = decode_checked(&envelope(&body, &payload));
    }

    #[test]
    fn mutated_valid_blobs_never_panic(which in 0usize..8, edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..4)) {
        let (params, mut payload) = parts(&samples()[which]);
        for (at, byte) in edits {
            if !payload.is_empty() {
                let i = at % payload.len();
                payload[i] = byte;
            }
        }
        let _ = decode_checked(&envelope(&params, &payload));
    }
}

#[test]
fn valid_blobs_round_trip_and_every_truncation_is_an_error() {
    for d in samples() {
        let (params, payload) = parts(&d);
        assert_eq!(decode_checked(&envelope(&params, &payload)).unwrap(), d);
        for cut in 0..payload.len() {
            assert!(
                decode_checked(&envelope(&params, &payload[..cut])).is_err(),
                "cut {cut}"
            );
        }
        let mut longer = payload.clone();
        longer.push(0);
        assert!(decode_checked(&envelope(&params, &longer)).is_err());
    }
}

#[test]
fn invalid_states_are_refused_with_typed_errors() {
    let invalid = |params: &[u8], payload: &[u8]| {
        let err = decode_checked(&envelope(params, payload)).unwrap_err();
        assert!(
            matches!(err, Error::InvalidState { .. } | Error::Truncated { .. }),
            "{params:?} {payload:?}: {err}"
        );
    };
    let empty_sparse = [0u8, 0, 20]; // kind, n = 0, Rice k = 20
    invalid(&[3], &empty_sparse); // precision below 4
    invalid(&[19], &empty_sparse); // precision above 18
    invalid(&[], &empty_sparse);
    invalid(&[14, 0], &empty_sparse);
    invalid(&[14], &[]); // no kind byte
    invalid(&[14], &[2, 0, 20]); // unknown kind
    invalid(&[14], &[0, 0, 19]); // non-canonical Rice parameter
    invalid(&[4], &[0, 5, 17]); // 5 entries > 2^4 / 4
    // one entry whose slot is 2^20, past the last slot: unary 2 ("110"), then 19 zero bits
    invalid(&[14], &[0, 1, 19, 0b011, 0, 0]);
    // slot 0 needs a rank ρ' in 1..=45 (6 bits from bit 20): 0 and 46 are refused
    invalid(&[14], &[0, 1, 19, 0, 0, 0, 0]);
    invalid(&[14], &[0, 1, 19, 0, 0, (46 & 15) << 4, 46 >> 4]);
    // dense p = 4: base above 61, width above 6, a register above 61, wrong length
    invalid(&[4], &[1, 62, 0]);
    invalid(&[4], &[1, 0, 7, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    invalid(&[4], &[1, 60, 1, 0xFF, 0xFF]);
    invalid(&[4], &[1, 0, 1, 0xFF]);
    // the same sketch, valid: decodes
    assert!(decode_checked(&envelope(&[4], &[1, 60, 1, 0x01, 0x00])).is_ok());
    assert!(decode_checked(&envelope(&[14], &[0, 1, 19, 0, 0, (45 & 15) << 4, 45 >> 4])).is_ok());
}

// ----- wire sizes -----------------------------------------------------------------------------

#[test]
fn wire_sizes_at_p14_meet_the_targets() {
    let sizes: Vec<(u64, usize)> = [1_000u64, 4_000, 100_000]
        .iter()
        .map(|&n| (n, codec::encode(&built(14, 3, n)).len()))
        .collect();
    println!("Distinct p=14 wire sizes (bytes, envelope included): {sizes:?}");
    assert!(sizes[0].1 <= 1_900, "1e3: {} bytes", sizes[0].1);
    assert!(sizes[1].1 <= 6_000, "4e3 (sparse): {} bytes", sizes[1].1);
    assert!(sizes[2].1 <= 12_300, "1e5: {} bytes", sizes[2].1);
}

// ----- golden files ---------------------------------------------------------------------------

/// The seeded streams the golden files were generated from.
fn golden_sketch(n: usize) -> Distinct {
    let mut rng = SplitMix64::new(0x5EED_D157_1AC7);
    let mut d = Distinct::default();
    for _ in 0..n {
        d.insert(rng.next_u64()).unwrap();
    }
    d
}

/// `tests/data/distinct_{sparse,dense}.bin` were written once by this test with
/// `SHARDFOLD_WRITE_GOLDEN=1`; they must keep decoding and re-encoding byte for byte.
#[test]
fn golden_files_decode_and_reencode_byte_for_byte() {
    for (file, n, sparse) in [
        ("distinct_sparse.bin", 1_000, true),
        ("distinct_dense.bin", 50_000, false),
    ] {
        let path = format!("{}/tests/data/{file}", env!("CARGO_MANIFEST_DIR"));
        let fresh = golden_sketch(n);
        if std::env::var_os("SHARDFOLD_WRITE_GOLDEN").is_some() {
            std::fs::write(&path, codec::encode(&fresh)).unwrap();
        }
        let bytes = std::fs::read(&path).unwrap();
        let decoded = decode_checked(&bytes).unwrap();
        assert_eq!(codec::encode(&decoded), bytes, "{file}");
        assert_eq!(decoded.is_sparse(), sparse, "{file}");
        assert_eq!(
            decoded.estimate().to_bits(),
            fresh.estimate().to_bits(),
            "{file}"
        );
        assert_eq!(decoded, fresh, "{file}");
    }
}
