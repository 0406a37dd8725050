//! The envelope: golden files, bit flips, hostile length prefixes, every error variant.

use std::path::PathBuf;

use proptest::prelude::*;
use shardfold::agg::Partials;
use shardfold::codec::{self, Codec, Envelope, Limits, encode_raw, tags};
use shardfold::testkit::SplitMix64;
use shardfold::{Count, Error, Insert, Max, Mean, Min, Stats, Sum, SumF64};

fn data(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

/// Deterministic mixed-magnitude values for golden states.
fn values(n: usize) -> Vec<f64> {
    let mut rng = SplitMix64::new(2026);
    (0..n)
        .map(|_| (rng.unit() - 0.5) * 10f64.powi(rng.below(40) as i32 - 20))
        .collect()
}

fn build<A: Default + Insert<f64>>(n: usize) -> A {
    let mut a = A::default();
    values(n).into_iter().for_each(|x| a.insert(x).unwrap());
    a
}

fn build_i64<A: Default + Insert<i64>>() -> A {
    let mut a = A::default();
    values(50)
        .into_iter()
        .for_each(|x| a.insert((x * 1e6) as i64).unwrap());
    a
}

/// Every golden file with the state the same inputs build today.
fn goldens() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("count.bin", codec::encode(&build::<Count>(1000))),
        ("sum_i64.bin", codec::encode(&build_i64::<Sum>())),
        ("sum_f64.bin", codec::encode(&build::<SumF64>(1000))),
        ("min_f64.bin", codec::encode(&build::<Min<f64>>(100))),
        ("max_f64.bin", codec::encode(&build::<Max<f64>>(100))),
        ("min_i64.bin", codec::encode(&build_i64::<Min<i64>>())),
        ("max_i64.bin", codec::encode(&build_i64::<Max<i64>>())),
        ("mean.bin", codec::encode(&build::<Mean>(100))),
        ("stats.bin", codec::encode(&build::<Stats>(100))),
        (
            "partials_stats.bin",
            codec::encode(&Partials::from(build::<Stats>(100))),
        ),
        (
            "tuple3.bin",
            codec::encode(&build::<(Count, SumF64, Max<f64>)>(100)),
        ),
    ]
}

/// Decodes `bytes` as the type its tag names and re-encodes it.
fn decode_any(bytes: &[u8]) -> Result<Vec<u8>, Error> {
    fn re<T: Codec>(b: &[u8]) -> Result<Vec<u8>, Error> {
        codec::decode::<T>(b).map(|v| codec::encode(&v))
    }
    let env = Envelope::parse(bytes, &Limits::default())?;
    match env.type_tag {
        tags::COUNT => re::<Count>(bytes),
        tags::SUM_I64 => re::<Sum>(bytes),
        tags::SUM_F64 => re::<SumF64>(bytes),
        tags::MIN_F64 => re::<Min<f64>>(bytes),
        tags::MAX_F64 => re::<Max<f64>>(bytes),
        tags::MIN_I64 => re::<Min<i64>>(bytes),
        tags::MAX_I64 => re::<Max<i64>>(bytes),
        tags::MEAN => re::<Mean>(bytes),
        tags::STATS => re::<Stats>(bytes),
        tags::TUPLE3 => re::<(Count, SumF64, Max<f64>)>(bytes),
        tags::PARTIALS => re::<Partials<Stats>>(bytes),
        other => Err(Error::WrongType {
            expected: 0,
            found: other,
        }),
    }
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
            decode_any(&golden).unwrap(),
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
fn every_single_bit_flip_is_an_error() {
    for (name, blob) in goldens() {
        for bit in 0..blob.len() * 8 {
            let mut bad = blob.clone();
            bad[bit / 8] ^= 1 << (bit % 8);
            let result = decode_any(&bad);
            assert!(result.is_err(), "{name}: flipping bit {bit} was accepted");
        }
    }
}

#[test]
fn every_truncation_is_an_error() {
    for (name, blob) in goldens() {
        for len in 0..blob.len() {
            assert!(
                decode_any(&blob[..len]).is_err(),
                "{name}: cut at {len} was accepted"
            );
        }
    }
}

#[test]
fn length_prefix_claiming_2_pow_60_is_a_typed_error() {
    // SumF64 payload: sign byte, then a postcard sequence length of 2^60 with nothing behind it
    let mut payload = vec![0u8];
    let mut n: u64 = 1 << 60;
    while n >= 0x80 {
        payload.push((n as u8) | 0x80);
        n >>= 7;
    }
    payload.push(n as u8);
    let blob = encode_raw(tags::SUM_F64, &[], &payload);
    assert!(matches!(
        codec::decode::<SumF64>(&blob),
        Err(Error::Truncated { .. } | Error::InvalidState { .. })
    ));
    // the envelope's own section length claiming 4 GiB
    let mut blob = codec::encode(&Count::new(3));
    blob[7..11].copy_from_slice(&u32::MAX.to_le_bytes());
    assert!(matches!(
        codec::decode::<Count>(&blob),
        Err(Error::Truncated { .. })
    ));
}

#[test]
fn each_error_variant() {
    let good = codec::encode(&Count::new(5));
    let mut bad_magic = good.clone();
    bad_magic[0] = b'X';
    assert_eq!(codec::decode::<Count>(&bad_magic), Err(Error::BadMagic));
    assert_eq!(codec::decode::<Count>(b"SH"), Err(Error::BadMagic));

    let mut newer = good.clone();
    newer[4] = codec::FORMAT_VERSION + 1;
    assert!(matches!(
        codec::decode::<Count>(&newer),
        Err(Error::UnsupportedVersion { found, supported }) if found == supported + 1
    ));

    assert!(matches!(
        codec::decode::<Sum>(&good),
        Err(Error::WrongType {
            expected: tags::SUM_I64,
            found: tags::COUNT
        })
    ));

    let mut corrupt = good.clone();
    let last = corrupt.len() - 5;
    corrupt[last] ^= 0x40;
    assert!(matches!(
        codec::decode::<Count>(&corrupt),
        Err(Error::ChecksumMismatch { .. })
    ));

    assert!(matches!(
        codec::decode::<Count>(&good[..good.len() - 1]),
        Err(Error::Truncated { .. })
    ));

    let tight = Limits { max_blob_bytes: 8 };
    assert!(matches!(
        codec::decode_with::<Count>(&good, &tight),
        Err(Error::TooLarge { limit: 8, .. })
    ));

    // overlong varint for 0: valid checksum, not the canonical encoding
    let overlong = encode_raw(tags::COUNT, &[], &[0x80, 0x00]);
    assert!(matches!(
        codec::decode::<Count>(&overlong),
        Err(Error::InvalidState { .. })
    ));
    // trailing payload bytes
    let trailing = encode_raw(tags::COUNT, &[], &[5, 0]);
    assert!(matches!(
        codec::decode::<Count>(&trailing),
        Err(Error::InvalidState { .. })
    ));
    // parameters where none belong
    let params = encode_raw(tags::COUNT, &[1], &[5]);
    assert!(matches!(
        codec::decode::<Count>(&params),
        Err(Error::InvalidState { .. })
    ));
}

#[test]
fn invariants_are_checked_after_decode() {
    let nan_min = {
        let mut p = vec![1u8];
        p.extend_from_slice(&f64::NAN.to_bits().to_le_bytes());
        encode_raw(tags::MIN_F64, &[], &p)
    };
    assert!(matches!(
        codec::decode::<Min<f64>>(&nan_min),
        Err(Error::InvalidState { .. })
    ));
    // SumF64 limbs out of order: (index 3, 1), (index 2, 1)
    let unsorted = encode_raw(tags::SUM_F64, &[], &[0, 2, 3, 1, 2, 1]);
    assert!(matches!(
        codec::decode::<SumF64>(&unsorted),
        Err(Error::InvalidState { .. })
    ));
    // SumF64 "negative zero"
    let neg_zero = encode_raw(tags::SUM_F64, &[], &[1, 0]);
    assert!(matches!(
        codec::decode::<SumF64>(&neg_zero),
        Err(Error::InvalidState { .. })
    ));
    // Stats with count 0 but a max: take a real Stats blob and zero its count section
    let empty_count = codec::encode(&Count::default());
    let one = {
        let mut s = Stats::default();
        s.insert(1.0).unwrap();
        s
    };
    let env_blob = codec::encode(&one);
    let env = Envelope::parse(&env_blob, &Limits::default()).unwrap();
    let count_section_len = 4 + 1; // u32 length + varint(1)
    let mut payload = vec![1, 0, 0, 0];
    payload.push(
        Envelope::parse(&empty_count, &Limits::default())
            .unwrap()
            .payload[0],
    );
    payload.extend_from_slice(&env.payload[count_section_len..]);
    let forged = encode_raw(tags::STATS, &[], &payload);
    assert!(matches!(
        codec::decode::<Stats>(&forged),
        Err(Error::InvalidState { .. })
    ));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let _ = decode_any(&bytes);
    }

    #[test]
    fn arbitrary_payloads_in_valid_envelopes_never_panic(
        tag in prop_oneof![Just(tags::SUM_F64), Just(tags::STATS), Just(tags::MEAN),
                           Just(tags::TUPLE3), Just(tags::MIN_F64), Just(tags::COUNT)],
        payload in proptest::collection::vec(any::<u8>(), 0..120),
    ) {
        // valid checksum, so the type's own decoder sees the garbage
        let blob = encode_raw(tag, &[], &payload);
        if let Ok(re) = decode_any(&blob) {
            prop_assert_eq!(re, blob, "accepted bytes must be canonical");
        }
    }
}

#[test]
fn format_md_example_sum_of_one() {
    // FORMAT.md: `1.0` is 2^1074 units = limb 33 holding 2^18 → payload 00 01 21 80 80 10
    let mut s = SumF64::default();
    s.insert(1.0).unwrap();
    let blob = codec::encode(&s);
    let env = Envelope::parse(&blob, &Limits::default()).unwrap();
    assert_eq!(env.payload, [0x00, 0x01, 0x21, 0x80, 0x80, 0x10]);
    assert_eq!(&blob[..7], b"SHFD\x01\x03\x00");
    assert_eq!(blob.len(), codec::ENVELOPE_OVERHEAD + 6);
}

/// Issue 11, defect 9: errors name the types, not only their hex tags.
#[test]
fn wrong_type_errors_name_both_types() {
    let blob = codec::encode(&shardfold::LogHistogram::default());
    let err = codec::decode::<Count>(&blob).unwrap_err();
    assert!(matches!(
        err,
        Error::WrongType {
            expected: tags::COUNT,
            found: tags::LOG_HISTOGRAM
        }
    ));
    assert_eq!(
        err.to_string(),
        "wrong type: expected Count (0x0001), found LogHistogram (0x0012)"
    );
    assert_eq!(tags::name(0x7FFF), "unknown type");
    assert_eq!(tags::name(0x8000), "user type");
    // every tag the crate defines has its own name
    let names: std::collections::BTreeSet<&str> =
        tags::ALL.iter().map(|&t| tags::name(t)).collect();
    assert_eq!(names.len(), tags::ALL.len());
    assert!(tags::ALL.is_sorted());
    assert!(!names.contains("unknown type"));
}
