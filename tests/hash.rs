//! Golden vectors pinning the stable hash. If one of these fails, persisted sketches and
//! fingerprints written by earlier versions no longer merge with new ones: do not "fix" the
//! expected values, fix the hash.

use shardfold::hash::{SEED, hash_bytes, stable_hash};

#[test]
fn underlying_function_is_reference_xxh3() {
    // Published XXH3-64 test vector: empty input, seed 0.
    assert_eq!(xxhash_rust::xxh3::xxh3_64(b""), 0x2d06_8005_38d3_94c2);
    assert_eq!(SEED, u64::from_le_bytes(*b"shrdfold"));
}

#[test]
fn golden_vectors() {
    let long: Vec<u8> = (0..=255u8).collect();
    let cases: [(&str, u64, u64); 13] = [
        ("empty", hash_bytes(b""), 0xe8f4_0cae_f678_d562),
        ("str abc", stable_hash("abc"), 0x532d_9244_86c3_f63e),
        ("u64 0", stable_hash(&0u64), 0x6e78_cd4d_fe34_3f49),
        ("u64 1", stable_hash(&1u64), 0xb6f0_906f_b098_824f),
        ("u64 max", stable_hash(&u64::MAX), 0xf737_5949_95c4_e30e),
        ("i64 -1", stable_hash(&-1i64), 0xf737_5949_95c4_e30e),
        ("u32 42", stable_hash(&42u32), 0x4940_02b1_e1af_5135),
        (
            "u128",
            stable_hash(&0x0123_4567_89ab_cdef_fedc_ba98_7654_3210u128),
            0xe7b7_4e10_bfdb_550d,
        ),
        (
            "uuid str",
            stable_hash("3f2504e0-4f89-11d3-9a0c-0305e82c3301"),
            0xb538_dbe9_b982_2b31,
        ),
        (
            "bytes",
            stable_hash(&[0u8, 1, 2, 255][..]),
            0x87d7_63e7_200b_5d2f,
        ),
        ("bool", stable_hash(&true), 0xac28_36e1_9ae7_68c1),
        ("256 bytes", stable_hash(&long), 0x137f_ea45_a0f6_205e),
        ("utf-8", stable_hash("événement ✓"), 0x8b5f_2666_0ff0_cc40),
    ];
    for (name, got, want) in cases {
        assert_eq!(got, want, "{name}: got {got:#018x}");
    }
}

#[test]
fn canonical_bytes_are_little_endian_and_utf8() {
    assert_eq!(stable_hash(&0x0102_0304u32), hash_bytes(&[4, 3, 2, 1]));
    assert_eq!(stable_hash("é"), hash_bytes(&[0xc3, 0xa9]));
    assert_eq!(stable_hash(&String::from("x")), stable_hash("x"));
    assert_eq!(stable_hash(&vec![1u8, 2]), stable_hash(&[1u8, 2]));
    // widths matter: the same number at two widths is two different inputs
    assert_ne!(stable_hash(&7u32), stable_hash(&7u64));
}

mod inline_fast_path {
    use proptest::prelude::*;
    use shardfold::hash::{SEED, hash_bytes, stable_hash};
    use xxhash_rust::xxh3::xxh3_64_with_seed;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4096))]
        /// The inlined short-input paths equal the reference implementation at every length.
        #[test]
        fn bytes_of_every_short_length(bytes in proptest::collection::vec(any::<u8>(), 0..=40)) {
            prop_assert_eq!(hash_bytes(&bytes), xxh3_64_with_seed(&bytes, SEED));
        }

        #[test]
        fn integers(x in any::<u64>(), y in any::<u32>(), z in any::<i64>(), w in any::<i32>()) {
            prop_assert_eq!(stable_hash(&x), xxh3_64_with_seed(&x.to_le_bytes(), SEED));
            prop_assert_eq!(stable_hash(&y), xxh3_64_with_seed(&y.to_le_bytes(), SEED));
            prop_assert_eq!(stable_hash(&z), xxh3_64_with_seed(&z.to_le_bytes(), SEED));
            prop_assert_eq!(stable_hash(&w), xxh3_64_with_seed(&w.to_le_bytes(), SEED));
        }
    }
}
