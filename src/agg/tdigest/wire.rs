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
        out.extend_from_slice(&self.count.to_le_bytes());
        let (min, max) = if self.count == 0 {
            (0.0f64, 0.0f64)
        } else {
            (self.min, self.max)
        };
        out.extend_from_slice(&min.to_bits().to_le_bytes());
        out.extend_from_slice(&max.to_bits().to_le_bytes());
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
        let count = r.u64("t-digest count")?;
        let min = f64::from_bits(r.u64("t-digest min")?);
        let max = f64::from_bits(r.u64("t-digest max")?);
        let sum = SumF64::read_parts(&[], r.section("t-digest sum")?, limits)?;
        let centroids = read_centroids(&mut r, count, compression)?;
        r.finish("t-digest payload")?;
        let mut q = Quantiles::try_new(compression)?;
        (q.count, q.min, q.max, q.sum, q.centroids) = (count, min, max, sum, centroids);
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
    Ok(bytes
        .chunks_exact(16)
        .map(|b| {
            let (m, w) = b.split_at(8);
            Centroid {
                mean: f64::from_bits(u64::from_le_bytes(m.try_into().unwrap_or_default())),
                weight: u64::from_le_bytes(w.try_into().unwrap_or_default()),
            }
        })
        .collect())
}

fn invalid(reason: &'static str) -> Error {
    Error::invalid_state(reason)
}

/// Every invariant a digest built by this crate holds, so a decoded digest cannot panic later.
fn validate(q: &Quantiles) -> Result<()> {
    if q.count == 0 {
        let empty = q.min.to_bits() == 0 && q.max.to_bits() == 0;
        if !empty || !q.sum.is_zero() || !q.centroids.is_empty() {
            return Err(invalid("empty t-digest with values"));
        }
        return Ok(());
    }
    let clean = |x: f64| x.is_finite() && x.to_bits() != NEG_ZERO;
    if !clean(q.min) || !clean(q.max) || q.min > q.max {
        return Err(invalid("t-digest min/max not finite and ordered"));
    }
    if q.centroids
        .windows(2)
        .any(|w| w[0].total_cmp(&w[1]).is_gt())
    {
        return Err(invalid("t-digest centroids not sorted"));
    }
    let mut total = 0u64;
    for c in &q.centroids {
        if !clean(c.mean) || c.weight == 0 || c.mean < q.min || c.mean > q.max {
            return Err(invalid(
                "t-digest centroid not finite, positive, within [min, max]",
            ));
        }
        total = total
            .checked_add(c.weight)
            .ok_or_else(|| invalid("t-digest weights overflow"))?;
    }
    if total != q.count {
        return Err(invalid("t-digest weights do not add up to the count"));
    }
    check_mean(q)
}

/// The exact sum, when finite, must be consistent with min and max.
fn check_mean(q: &Quantiles) -> Result<()> {
    let mean = q.sum.value() / q.count as f64;
    if !mean.is_finite() {
        return Ok(()); // sums beyond f64::MAX read as ±inf; nothing to compare
    }
    let slack = 1e-9 * q.min.abs().max(q.max.abs());
    if mean < q.min - slack || mean > q.max + slack {
        return Err(invalid("t-digest sum inconsistent with min and max"));
    }
    Ok(())
}
