//! Golden files and decode robustness for the quantile sketches.
//!
//! The golden files were generated once from the seeded data below (run with
//! `SHARDFOLD_BLESS=1` to write a missing file) and are committed: they must keep decoding and
//! re-encoding byte for byte, and today's code must still build the same bytes from the same data.

use std::path::PathBuf;

use shardfold::codec::{self, Codec};
use shardfold::testkit::SplitMix64;
use shardfold::{Error, Insert, LogHistogram, Merge, Quantiles};

/// Skewed positive values built from bits only (no `libm`, so the same on every platform):
/// a random significand in [1, 2) times 2^k, k in -10..10 weighted towards small k.
fn skewed(n: usize, seed: u64) -> Vec<f64> {
    let mut rng = SplitMix64::new(seed);
    (0..n)
        .map(|_| {
            let k = rng.below(10) as i64 - rng.below(10) as i64;
            let significand = rng.next_u64() >> 12;
            f64::from_bits(((1023 + k) as u64) << 52 | significand)
        })
        .collect()
}

/// 3000 skewed values in three shards, merged: singletons and heavy centroids.
fn golden_quantiles() -> Quantiles {
    let values = skewed(3000, 1);
    let mut parts = vec![Quantiles::default(); 3];
    for (i, &v) in values.iter().enumerate() {
        parts[i % 3].insert(v).unwrap();
    }
    let mut d = parts[0].clone();
    d.merge(&parts[1]).unwrap();
    d.merge(&parts[2]).unwrap();
    d
}

/// Both signs, zeros, a subnormal, an outlier of 1e30 (sparse bucket).
fn golden_loghist() -> LogHistogram {
    let mut h = LogHistogram::default();
    for (i, v) in skewed(2000, 2).into_iter().enumerate() {
        h.insert(if i % 4 == 0 { -v } else { v }).unwrap();
    }
    for v in [0.0, 0.0, 1e-320, 1e30, -1e-200] {
        h.insert(v).unwrap();
    }
    h
}

fn golden<T: Codec>(name: &str, built: &T) -> Vec<u8> {
    let path: PathBuf = [env!("CARGO_MANIFEST_DIR"), "tests", "data", name]
        .iter()
        .collect();
    let bytes = codec::encode(built);
    if !path.exists() && std::env::var_os("SHARDFOLD_BLESS").is_some() {
        std::fs::write(&path, &bytes).unwrap();
    }
    let stored = std::fs::read(&path).unwrap();
    let decoded: T = codec::decode(&stored).unwrap();
    assert_eq!(
        codec::encode(&decoded),
        stored,
        "{name}: re-encoding changed bytes"
    );
    assert_eq!(
        bytes, stored,
        "{name}: the same data no longer builds the same bytes"
    );
    stored
}

#[test]
fn quantiles_golden_file() {
    let stored = golden("quantiles.bin", &golden_quantiles());
    let d: Quantiles = codec::decode(&stored).unwrap();
    assert_eq!(d.count(), 3000);
    assert!(
        d.centroids().len() < 3000,
        "the golden digest holds merged centroids"
    );
    assert!(d.centroids().iter().any(|c| c.weight > 1));
}

#[test]
fn loghist_golden_file() {
    let stored = golden("loghist.bin", &golden_loghist());
    let h: LogHistogram = codec::decode(&stored).unwrap();
    assert_eq!(h.count(), 2005);
    assert_eq!(h.max(), Some(1e30));
    assert_eq!(h.zero_count(), 3);
}

/// Every truncation and every single-bit flip is refused with a typed error, never a panic.
fn refuses_damage<T: Codec + core::fmt::Debug>(bytes: &[u8]) {
    for len in 0..bytes.len() {
        assert!(
            codec::decode::<T>(&bytes[..len]).is_err(),
            "truncated to {len}"
        );
    }
    for i in 0..bytes.len() {
        for bit in 0..8 {
            let mut b = bytes.to_vec();
            b[i] ^= 1 << bit;
            assert!(
                codec::decode::<T>(&b).is_err(),
                "bit {bit} of byte {i} flipped"
            );
        }
    }
}

#[test]
fn quantiles_refuse_damaged_blobs() {
    refuses_damage::<Quantiles>(&codec::encode(&golden_quantiles()));
}

#[test]
fn loghist_refuses_damaged_blobs() {
    refuses_damage::<LogHistogram>(&codec::encode(&golden_loghist()));
}

#[test]
fn wrong_type_is_refused() {
    let q = codec::encode(&golden_quantiles());
    assert!(matches!(
        codec::decode::<LogHistogram>(&q),
        Err(Error::WrongType { .. })
    ));
    let h = codec::encode(&golden_loghist());
    assert!(matches!(
        codec::decode::<Quantiles>(&h),
        Err(Error::WrongType { .. })
    ));
}

#[test]
fn encoding_does_not_depend_on_buffer_state() {
    let mut buffered = Quantiles::default();
    for v in skewed(1000, 5) {
        buffered.insert(v).unwrap();
    }
    let mut flushed = buffered.clone();
    flushed.flush();
    let bytes = codec::encode(&buffered);
    assert_eq!(bytes, codec::encode(&flushed));
    let back: Quantiles = codec::decode(&bytes).unwrap();
    assert_eq!(codec::encode(&back), bytes);
    for q in [0.0, 0.1, 0.5, 0.99, 1.0] {
        assert_eq!(buffered.quantile(q).unwrap(), back.quantile(q).unwrap());
    }
}

#[test]
fn bad_values_and_parameters_are_refused_without_change() {
    let mut q = golden_quantiles();
    let mut h = golden_loghist();
    let (qb, hb) = (codec::encode(&q), codec::encode(&h));
    for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
        assert!(matches!(q.insert(bad), Err(Error::InvalidValue { .. })));
        assert!(matches!(h.insert(bad), Err(Error::InvalidValue { .. })));
    }
    assert!(q.quantile(1.5).is_err() && q.quantile(f64::NAN).is_err() && q.cdf(f64::NAN).is_err());
    assert!(h.quantile(-0.1).is_err());
    assert!(matches!(
        q.merge(&Quantiles::new(100)),
        Err(Error::IncompatibleParams { .. })
    ));
    assert!(matches!(
        h.merge(&LogHistogram::new(0.02)),
        Err(Error::IncompatibleParams { .. })
    ));
    assert_eq!(codec::encode(&q), qb);
    assert_eq!(codec::encode(&h), hb);
    assert!(Quantiles::try_new(9).is_err() && Quantiles::try_new(10_001).is_err());
    assert!(LogHistogram::try_new(0.0).is_err() && LogHistogram::try_new(0.6).is_err());
    assert!(std::panic::catch_unwind(|| Quantiles::new(0)).is_err());
    assert!(std::panic::catch_unwind(|| LogHistogram::new(f64::NAN)).is_err());
}

#[test]
fn empty_sketches_answer_none() {
    let q = Quantiles::default();
    let h = LogHistogram::default();
    assert_eq!(q.quantile(0.5).unwrap(), None);
    assert_eq!(q.cdf(1.0).unwrap(), None);
    assert_eq!((q.min(), q.max(), q.mean()), (None, None, None));
    assert_eq!(h.quantile(0.5).unwrap(), None);
    assert_eq!((h.min(), h.max()), (None, None));
    let qb = codec::encode(&q);
    assert_eq!(codec::encode(&codec::decode::<Quantiles>(&qb).unwrap()), qb);
    let hb = codec::encode(&h);
    assert_eq!(
        codec::encode(&codec::decode::<LogHistogram>(&hb).unwrap()),
        hb
    );
}
