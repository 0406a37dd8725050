//! The encoded form of [`Quantiles`]: the flushed digest, validated on decode.
//!
//! ```text
//! params   u32 LE  compression δ
//! payload  u64 LE  count n
//!          u64 LE  min, f64 bits (+0.0 when n = 0)
//!          u64 LE  max, f64 bits (+0.0 when n = 0)
//!          u32 LE  length S, then S bytes: the SumF64 payload
//!          u32 LE  number of centroids C
//!          C × (u64 LE mean f64 bits, u64 LE weight)
//! ```

use super::compress::Centroid;
use super::scale::max_centroids;
use super::{MAX_COMPRESSION, MIN_COMPRESSION, Quantiles};
use crate::agg::SumF64;
use crate::agg::tally::Tally;
use crate::codec::{Codec, Limits, Reader, tags, write_section_with};
use crate::error::{Error, Result};

const NEG_ZERO: u64 = 1 << 63;

impl Codec for Quantiles {
    const TYPE_TAG: u16 = tags::QUANTILES;

    fn write_params(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.compression.to_le_bytes());
    }

    fn write_payload(&self, out: &mut Vec<u8>) {
        let centroids = self.centroids();
        self.tally.write(out);
        write_section_with(out, |o| self.sum.write_payload(o));
        // at most max_centroids(count) ≤ u32::MAX centroids
        let len = u32::try_from(centroids.len()).unwrap_or(u32::MAX);
        out.extend_from_slice(&len.to_le_bytes());
        for c in centroids.iter() {
            out.extend_from_slice(&c.mean.to_bits().to_le_bytes());
            out.extend_from_slice(&c.weight.to_le_bytes());
        }
    }

    fn read_parts(params: &[u8], payload: &[u8], limits: &Limits) -> Result<Self> {
        let mut p = Reader::new(params);
        let compression = p.u32("t-digest compression")?;
        p.finish("t-digest parameters")?;
        if !(MIN_COMPRESSION..=MAX_COMPRESSION).contains(&compression) {
            return Err(Error::invalid_state("t-digest compression out of range"));
        }
        let mut r = Reader::new(payload);
        let tally = Tally::read(&mut r)?;
        let sum = SumF64::read_parts(&[], r.section("t-digest sum")?, limits)?;
        let centroids = read_centroids(&mut r, tally.count, compression)?;
        r.finish("t-digest payload")?;
        let mut q = Quantiles::try_new(compression)?;
        (q.tally, q.sum, q.centroids) = (tally, sum, centroids);
        validate(&q)?;
        Ok(q)
    }
}

fn read_centroids(r: &mut Reader<'_>, count: u64, compression: u32) -> Result<Vec<Centroid>> {
    let len = u64::from(r.u32("t-digest centroid count")?);
    if len > max_centroids(count, compression) {
        return Err(Error::invalid_state(
            "more t-digest centroids than the bound",
        ));
    }
    let bytes = r.take(len as usize * 16, "t-digest centroids")?;
    bytes
        .chunks_exact(16)
        .map(|b| match (b[..8].try_into(), b[8..].try_into()) {
            (Ok(m), Ok(w)) => Ok(Centroid {
                mean: f64::from_bits(u64::from_le_bytes(m)),
                weight: u64::from_le_bytes(w),
            }),
            _ => Err(Error::internal("t-digest: a 16-byte chunk is not two u64")),
        })
        .collect()
}

fn invalid(reason: &'static str) -> Error {
    Error::invalid_state(reason)
}

/// Every invariant a digest built by this crate holds, so a decoded digest cannot panic later
/// (count and extremes are checked by [`Tally::read`]).
pub(super) fn validate(q: &Quantiles) -> Result<()> {
    let (Some(min), Some(max)) = (q.tally.min(), q.tally.max()) else {
        return if q.sum.is_zero() && q.centroids.is_empty() {
            Ok(())
        } else {
            Err(invalid("empty t-digest with values"))
        };
    };
    if q.centroids
        .windows(2)
        .any(|w| w[0].total_cmp(&w[1]).is_gt())
    {
        return Err(invalid("t-digest centroids not sorted"));
    }
    let mut total = 0u64;
    for c in &q.centroids {
        let clean = c.mean.is_finite() && c.mean.to_bits() != NEG_ZERO;
        if !clean || c.weight == 0 || c.mean < min || c.mean > max {
            return Err(invalid(
                "t-digest centroid not finite, positive, within [min, max]",
            ));
        }
        total = total
            .checked_add(c.weight)
            .ok_or_else(|| invalid("t-digest weights overflow"))?;
    }
    if total != q.tally.count {
        return Err(invalid("t-digest weights do not add up to the count"));
    }
    check_mean(q, min, max)
}

/// The exact sum, when finite, must be consistent with min and max.
fn check_mean(q: &Quantiles, min: f64, max: f64) -> Result<()> {
    let mean = q.sum.value() / q.tally.count as f64;
    if !mean.is_finite() {
        return Ok(()); // sums beyond f64::MAX read as ±inf; nothing to compare
    }
    // the exact sum is rounded once and divided once: a few ulps, absolute for subnormals
    let slack = 1e-9 * min.abs().max(max.abs()) + f64::MIN_POSITIVE;
    if mean < min - slack || mean > max + slack {
        return Err(invalid("t-digest sum inconsistent with min and max"));
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::merge::{Insert, Merge};
    use crate::testkit::SplitMix64;

    fn digest() -> Quantiles {
        let mut a = Quantiles::new(20);
        let mut b = Quantiles::new(20);
        for i in 0..500 {
            a.insert(f64::from(i)).unwrap();
            b.insert(f64::from(i) * 0.5 - 50.0).unwrap();
        }
        a.merge(&b).unwrap();
        a
    }

    fn parts(q: &Quantiles) -> (Vec<u8>, Vec<u8>) {
        let (mut p, mut l) = (Vec::new(), Vec::new());
        q.write_params(&mut p);
        q.write_payload(&mut l);
        (p, l)
    }

    type Tamper = Box<dyn Fn(&mut Vec<u8>)>;

    fn read(p: &[u8], l: &[u8]) -> Result<Quantiles> {
        Quantiles::read_parts(p, l, &Limits::default())
    }

    /// Offset of centroid `i`'s mean in the payload.
    fn centroid_at(l: &[u8], i: usize) -> usize {
        let sum_len = u32::from_le_bytes(l[24..28].try_into().unwrap()) as usize;
        28 + sum_len + 4 + 16 * i
    }

    fn set_u64(l: &mut [u8], at: usize, v: u64) {
        l[at..at + 8].copy_from_slice(&v.to_le_bytes());
    }

    #[test]
    fn round_trip() {
        let (p, l) = parts(&digest());
        let back = read(&p, &l).unwrap();
        assert_eq!(parts(&back), (p, l));
    }

    #[test]
    fn subnormal_and_huge_values_round_trip() {
        for v in [5e-324, -1e-320, 2.2e-308, f64::MAX, -f64::MAX] {
            for n in [1, 3, 7, 1000] {
                let mut q = Quantiles::new(20);
                (0..n).for_each(|_| q.insert(v).unwrap());
                let (p, l) = parts(&q);
                assert_eq!(parts(&read(&p, &l).unwrap()), (p, l), "{n} × {v}");
            }
        }
    }

    #[test]
    fn each_broken_invariant_is_refused() {
        let q = digest();
        let (p, l) = parts(&q);
        let n = q.centroids.len();
        let c0 = centroid_at(&l, 0);
        let cases: Vec<(&str, Tamper)> = vec![
            (
                "NaN mean",
                Box::new(move |l| set_u64(l, c0, f64::NAN.to_bits())),
            ),
            ("-0.0 mean", Box::new(move |l| set_u64(l, c0, NEG_ZERO))),
            (
                "mean below min",
                Box::new(move |l| set_u64(l, c0, (-1e9f64).to_bits())),
            ),
            ("zero weight", Box::new(move |l| set_u64(l, c0 + 8, 0))),
            (
                "weights off by one",
                Box::new(move |l| set_u64(l, c0 + 8, 2)),
            ),
            (
                "unsorted",
                Box::new(move |l| {
                    let c1 = c0 + 16;
                    let (a, b) = (l[c0..c0 + 16].to_vec(), l[c1..c1 + 16].to_vec());
                    l[c0..c0 + 16].copy_from_slice(&b);
                    l[c1..c1 + 16].copy_from_slice(&a);
                }),
            ),
            (
                "min above max",
                Box::new(|l| set_u64(l, 8, 1e9f64.to_bits())),
            ),
            (
                "infinite max",
                Box::new(|l| set_u64(l, 16, f64::INFINITY.to_bits())),
            ),
            ("count not the weights", Box::new(|l| set_u64(l, 0, 999))),
            (
                "huge centroid count",
                Box::new(move |l| {
                    l[c0 - 4..c0].copy_from_slice(&u32::MAX.to_le_bytes());
                }),
            ),
            (
                "one centroid missing",
                Box::new(move |l| {
                    l[c0 - 4..c0].copy_from_slice(&(n as u32 - 1).to_le_bytes());
                }),
            ),
            ("trailing byte", Box::new(|l| l.push(0))),
        ];
        for (name, tamper) in cases {
            let mut bad = l.clone();
            tamper(&mut bad);
            assert!(read(&p, &bad).is_err(), "{name} accepted");
        }
        assert!(
            read(&9u32.to_le_bytes(), &l).is_err(),
            "compression 9 accepted"
        );
        assert!(read(&[], &l).is_err(), "missing parameters accepted");
    }

    #[test]
    fn random_payload_damage_never_panics() {
        let q = digest();
        let (p, l) = parts(&q);
        let mut rng = SplitMix64::new(42);
        for _ in 0..20_000 {
            let mut bad = l.clone();
            for _ in 0..1 + rng.below(3) {
                let i = rng.below(bad.len());
                bad[i] = rng.next_u64() as u8;
            }
            if rng.below(8) == 0 {
                bad.truncate(rng.below(bad.len()));
            }
            if let Ok(d) = read(&p, &bad) {
                // whatever was accepted is a digest that answers without panicking
                let _ = (d.quantile(0.5), d.cdf(1.0), d.rank_error_bound(0.9));
                let mut m = d.clone();
                let _ = m.merge(&q);
                assert_eq!(parts(&read(&p, &parts(&d).1).unwrap()), parts(&d));
            }
        }
    }
}
