//! The encoded form of [`LogHistogram`], validated on decode.
//!
//! ```text
//! params   u64 LE  α, f64 bits
//! payload  u64 LE  count n
//!          u64 LE  min, f64 bits (+0.0 when n = 0)
//!          u64 LE  max, f64 bits (+0.0 when n = 0)
//!          u64 LE  zero count
//!          store   negative buckets (by magnitude), then
//!          store   positive buckets
//! store    varint  number of buckets E, then E × (varint key, varint count ≥ 1): the first key
//!                  is the bucket index, zigzag-encoded; later keys are the gap (≥ 1) from the
//!                  previous index
//! ```
//!
//! Varints are unsigned LEB128 (7 bits per byte, low first, high bit = more), shortest form.

use super::store::Store;
use super::{Bucket, LogHistogram, MAX_ALPHA, MIN_ALPHA};
use crate::agg::tally::Tally;
use crate::codec::{Codec, Limits, Reader, tags};
use crate::error::{Error, Result};

fn write_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn read_varint(r: &mut Reader<'_>) -> Result<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let b = r.u8("LogHistogram varint")?;
        let bits = u64::from(b & 0x7F);
        if shift == 63 && bits > 1 {
            break;
        }
        v |= bits << shift;
        if b & 0x80 == 0 {
            return Ok(v);
        }
    }
    Err(Error::invalid_state("LogHistogram varint overflows u64"))
}

fn write_store(out: &mut Vec<u8>, store: &Store) {
    let entries = store.entries();
    write_varint(out, entries.len() as u64);
    let mut prev: Option<i32> = None;
    for (i, n) in entries {
        let key = match prev {
            None => (i64::from(i) << 1 ^ i64::from(i) >> 63) as u64, // zigzag
            Some(p) => (i64::from(i) - i64::from(p)) as u64,
        };
        write_varint(out, key);
        write_varint(out, n);
        prev = Some(i);
    }
}

/// Reads a store, checking indexes are increasing and within `range`; returns it and its total.
fn read_store(r: &mut Reader<'_>, range: (i32, i32)) -> Result<(Store, u64)> {
    let len = read_varint(r)?;
    // every entry takes at least two bytes: refuse impossible lengths before looping
    if len > r.remaining() as u64 / 2 {
        return Err(Error::Truncated {
            context: "LogHistogram buckets",
        });
    }
    let (mut store, mut total) = (Store::default(), 0u64);
    let mut index = 0i64;
    for k in 0..len {
        let key = read_varint(r)?;
        index = if k == 0 {
            (key >> 1) as i64 ^ -((key & 1) as i64)
        } else if key == 0 {
            return Err(Error::invalid_state(
                "LogHistogram bucket indexes not increasing",
            ));
        } else {
            index.saturating_add(i64::try_from(key).unwrap_or(i64::MAX))
        };
        let n = read_varint(r)?;
        let i = i32::try_from(index)
            .ok()
            .filter(|i| (range.0..=range.1).contains(i) && n > 0)
            .ok_or_else(|| Error::invalid_state("LogHistogram bucket out of range or empty"))?;
        total = total
            .checked_add(n)
            .ok_or_else(|| Error::invalid_state("LogHistogram counts overflow"))?;
        store.add(i, n);
    }
    Ok((store, total))
}

impl Codec for LogHistogram {
    const TYPE_TAG: u16 = tags::LOG_HISTOGRAM;

    fn write_params(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.alpha.to_bits().to_le_bytes());
    }

    fn write_payload(&self, out: &mut Vec<u8>) {
        self.tally.write(out);
        out.extend_from_slice(&self.zero.to_le_bytes());
        write_store(out, &self.negative);
        write_store(out, &self.positive);
    }

    fn read_parts(params: &[u8], payload: &[u8], _: &Limits) -> Result<Self> {
        let mut p = Reader::new(params);
        let alpha = f64::from_bits(p.u64("LogHistogram alpha")?);
        p.finish("LogHistogram parameters")?;
        if !(MIN_ALPHA..=MAX_ALPHA).contains(&alpha) {
            return Err(Error::invalid_state("LogHistogram alpha out of range"));
        }
        let mut h = LogHistogram::try_new(alpha)?;
        let mut r = Reader::new(payload);
        h.tally = Tally::read(&mut r)?;
        h.zero = r.u64("LogHistogram zero count")?;
        let range = h.mapping.index_range();
        let (negative, neg_total) = read_store(&mut r, range)?;
        let (positive, pos_total) = read_store(&mut r, range)?;
        r.finish("LogHistogram payload")?;
        (h.negative, h.positive) = (negative, positive);
        let total = [neg_total, pos_total]
            .into_iter()
            .try_fold(h.zero, u64::checked_add);
        if total != Some(h.tally.count) {
            return Err(Error::invalid_state("LogHistogram counts do not add up"));
        }
        check_extreme_buckets(&h)?;
        Ok(h)
    }
}

/// Min and max (already finite and ordered) must sit in the first and last non-empty buckets.
fn check_extreme_buckets(h: &LogHistogram) -> Result<()> {
    let (Some(min), Some(max)) = (h.tally.min(), h.tally.max()) else {
        return Ok(()); // empty: no buckets, checked by the counts
    };
    if extreme_buckets(h) != (Some(h.bucket(min)), Some(h.bucket(max))) {
        return Err(Error::invalid_state(
            "LogHistogram min/max not in the extreme buckets",
        ));
    }
    Ok(())
}

/// The first and last non-empty buckets in value order (most negative first).
fn extreme_buckets(h: &LogHistogram) -> (Option<Bucket>, Option<Bucket>) {
    let (neg, pos) = (h.negative.entries(), h.positive.entries());
    let negative = |e: Option<&(i32, u64)>| e.map(|&(i, _)| Bucket::Negative(i));
    let positive = |e: Option<&(i32, u64)>| e.map(|&(i, _)| Bucket::Positive(i));
    let zero = (h.zero > 0).then_some(Bucket::Zero);
    let first = negative(neg.last()).or(zero).or(positive(pos.first()));
    let last = positive(pos.last()).or(zero).or(negative(neg.first()));
    (first, last)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::super::mapping::Mapping;
    use super::*;
    use crate::merge::Insert;
    use crate::testkit::SplitMix64;

    fn hist() -> LogHistogram {
        let mut h = LogHistogram::default();
        for v in [-5.0, -1.0, 0.0, 0.5, 1.0, 2.0, 3.0, 1e30] {
            h.insert(v).unwrap();
        }
        h
    }

    fn parts(h: &LogHistogram) -> (Vec<u8>, Vec<u8>) {
        let (mut p, mut l) = (Vec::new(), Vec::new());
        h.write_params(&mut p);
        h.write_payload(&mut l);
        (p, l)
    }

    fn read(p: &[u8], l: &[u8]) -> Result<LogHistogram> {
        LogHistogram::read_parts(p, l, &Limits::default())
    }

    fn payload(count: u64, zero: u64, min: f64, max: f64, neg: &[u64], pos: &[u64]) -> Vec<u8> {
        let mut l = Vec::new();
        for v in [count, min.to_bits(), max.to_bits(), zero] {
            l.extend_from_slice(&v.to_le_bytes());
        }
        for store in [neg, pos] {
            store.iter().for_each(|&v| write_varint(&mut l, v));
        }
        l
    }

    #[test]
    fn round_trip() {
        let (p, l) = parts(&hist());
        assert_eq!(parts(&read(&p, &l).unwrap()), (p, l));
    }

    #[test]
    fn each_broken_invariant_is_refused() {
        let p = DEFAULT_ALPHA_BITS.to_le_bytes();
        let m = Mapping::new(0.01);
        let i1 = m.index(1.0);
        let zz = |i: i32| (i64::from(i) << 1 ^ i64::from(i) >> 63) as u64;
        // a valid one-value payload first, so each case below breaks exactly one thing
        assert!(read(&p, &payload(1, 0, 1.0, 1.0, &[0], &[1, zz(i1), 1])).is_ok());
        let cases: Vec<(&str, Vec<u8>)> = vec![
            (
                "count mismatch",
                payload(2, 0, 1.0, 1.0, &[0], &[1, zz(i1), 1]),
            ),
            (
                "zero bucket count",
                payload(1, 0, 1.0, 1.0, &[0], &[2, zz(i1), 1, 1, 0]),
            ),
            (
                "gap of zero",
                payload(2, 0, 1.0, 1.0, &[0], &[2, zz(i1), 1, 0, 1]),
            ),
            (
                "index out of range",
                payload(1, 0, 1.0, 1.0, &[0], &[1, zz(i32::MAX), 1]),
            ),
            (
                "min not in first bucket",
                payload(1, 0, 0.5, 1.0, &[0], &[1, zz(i1), 1]),
            ),
            (
                "max not in last bucket",
                payload(1, 0, 1.0, 7.0, &[0], &[1, zz(i1), 1]),
            ),
            (
                "NaN min",
                payload(1, 0, f64::NAN, 1.0, &[0], &[1, zz(i1), 1]),
            ),
            ("-0.0 extremes", payload(1, 1, -0.0, -0.0, &[0], &[0])),
            ("empty with extremes", payload(0, 0, 1.0, 1.0, &[0], &[0])),
            (
                "huge bucket count",
                payload(1, 0, 1.0, 1.0, &[0], &[u64::MAX, 1]),
            ),
            ("varint overflow", {
                let mut l = payload(1, 0, 1.0, 1.0, &[0], &[]);
                l.extend_from_slice(&[0xFF; 11]);
                l
            }),
        ];
        for (name, l) in cases {
            assert!(read(&p, &l).is_err(), "{name} accepted");
        }
        assert!(read(&0.7f64.to_bits().to_le_bytes(), &parts(&hist()).1).is_err());
    }

    const DEFAULT_ALPHA_BITS: u64 = 0x3F84_7AE1_47AE_147B; // 0.01

    #[test]
    fn default_alpha_bits() {
        assert_eq!(
            f64::from_bits(DEFAULT_ALPHA_BITS),
            super::super::DEFAULT_ALPHA
        );
    }

    #[test]
    fn random_payload_damage_never_panics() {
        let h = hist();
        let (p, l) = parts(&h);
        let mut rng = SplitMix64::new(7);
        for _ in 0..20_000 {
            let mut bad = l.clone();
            for _ in 0..1 + rng.below(3) {
                let i = rng.below(bad.len());
                bad[i] = rng.next_u64() as u8;
            }
            if let Ok(d) = read(&p, &bad) {
                for q in [0.0, 0.3, 0.5, 1.0] {
                    let _ = d.quantile(q);
                }
                assert_eq!(parts(&read(&p, &parts(&d).1).unwrap()), parts(&d));
            }
        }
    }
}
