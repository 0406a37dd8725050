//! Apache DataSketches t-digest images: [`Quantiles::to_datasketches`] and
//! [`Quantiles::from_datasketches`].
//!
//! The image is the serialized form of DataSketches' `tdigest_double` (C++ `tdigest<double>`,
//! Java `TDigestDouble`, Python `datasketches.tdigest_double`), serial version 1, sketch type
//! 20, all integers little-endian:
//!
//! ```text
//! byte 0     preamble longs: 1 (empty or single value), 2 (more values)
//! byte 1     serial version 1
//! byte 2     sketch type 20 (t-digest)
//! bytes 3-4  k, u16
//! byte 5     flags: bit 0 empty, bit 1 single value, bit 2 reverse merge
//! bytes 6-7  unused (0)
//! empty:        nothing more
//! single value: the value (f64)
//! otherwise:    C u32 (centroids), B u32 (buffered values; 0 when compressed),
//!               min f64, max f64, C × (mean f64, weight u64), B × value f64
//! ```
//!
//! `tdigest_float` writes the same header with `f32` values and `(f32 mean, u32 weight)`
//! centroids; the format has no flag for it, but its length differs from the double layout for
//! every `C` and `B` (`24 + 8C + 4B` against `32 + 16C + 8B` bytes, 12 against 16 for a single
//! value), so the importer reads both exactly (every `f32` is an `f64`). The exporter writes the
//! double layout only.
//!
//! # Compression
//!
//! DataSketches compresses with the same k₂ scale function as this crate, with internal
//! compression `2k`: its normaliser is `Z = 4·ln(n/2k) + 24`. So `k` maps to δ = 2k, and
//! only an even δ ≥ 20 has a `k` (DataSketches refuses k < 10); importing needs
//! `k ≤ MAX_COMPRESSION / 2`.
//!
//! # What crosses, what does not
//!
//! Count (the sum of the weights), min, max and the centroids cross both ways bit for bit:
//! exporting writes the flushed centroids, and importing keeps the image's centroids as they
//! are, except that `-0.0` reads as `+0.0`, centroids with equal means are put in this crate's
//! order (by weight), and a list longer than this crate's bound for δ = 2k (see
//! `scale::max_centroids`; DataSketches at small k can exceed it) is compressed once. Buffered
//! values are inserted as values.
//!
//! The image has no sum: an imported digest's [`Quantiles::sum`] is `Σ meanᵢ·weightᵢ`, computed
//! exactly from the stored means, so it is the true sum only up to the rounding of each mean.
//! Queries on an imported digest follow the [error bound](super#error-bound) with δ = 2k
//! (DataSketches' centroids obey the same k₂ size limit, a little tighter); as for digests built
//! here, that bound is checked by tests (`tests/quantiles_datasketches.rs`), not proven.

use super::compress::{Centroid, compress};
use super::scale::max_centroids;
use super::{MAX_COMPRESSION, Quantiles};
use crate::agg::SumF64;
use crate::agg::tally::Tally;
use crate::codec::Reader;
use crate::error::{Error, Result};
use crate::merge::{Insert, Merge};

const PREAMBLE_LONGS_EMPTY_OR_SINGLE: u8 = 1;
const PREAMBLE_LONGS_MULTIPLE: u8 = 2;
const SERIAL_VERSION: u8 = 1;
const SKETCH_TYPE: u8 = 20;
const FLAG_EMPTY: u8 = 1 << 0;
const FLAG_SINGLE_VALUE: u8 = 1 << 1;
const FLAG_REVERSE_MERGE: u8 = 1 << 2;

/// The smallest DataSketches t-digest `k` (DataSketches refuses smaller ones).
pub const DATASKETCHES_MIN_K: u16 = 10;
/// The largest DataSketches t-digest `k` an image may have to be imported: δ = 2k must not
/// pass [`MAX_COMPRESSION`].
pub const DATASKETCHES_MAX_K: u16 = (MAX_COMPRESSION / 2) as u16;

/// The DataSketches `k` of compression δ: `δ / 2`.
fn k_of(compression: u32) -> Result<u16> {
    let k = compression / 2;
    if !compression.is_multiple_of(2) || k < u32::from(DATASKETCHES_MIN_K) {
        return Err(Error::InvalidParameter {
            name: "compression",
            reason: format!(
                "δ = {compression} has no DataSketches k: δ = 2k needs an even δ ≥ {}",
                2 * DATASKETCHES_MIN_K
            ),
        });
    }
    u16::try_from(k).map_err(|_| Error::InvalidParameter {
        name: "compression",
        reason: format!("δ = {compression}: k = δ/2 does not fit in a u16"),
    })
}

/// The compression δ = 2k of a DataSketches `k`.
fn compression_of(k: u16) -> Result<u32> {
    if !(DATASKETCHES_MIN_K..=DATASKETCHES_MAX_K).contains(&k) {
        return Err(Error::invalid_state(format!(
            "DataSketches t-digest k = {k} outside {DATASKETCHES_MIN_K}..={DATASKETCHES_MAX_K}"
        )));
    }
    Ok(2 * u32::from(k))
}

impl Quantiles {
    /// The digest as an Apache DataSketches `tdigest_double` image (serial version 1), which
    /// `datasketches.tdigest_double.deserialize` (Python), `tdigest<double>::deserialize` (C++)
    /// and `TDigestDouble.heapify` (Java) read. Writes the flushed centroids, min and max
    /// exactly, with DataSketches `k = δ/2`; the exact sum is not part of the format. See the
    /// [module docs](self) for the layout.
    ///
    /// ```
    /// use shardfold::{Insert, Quantiles};
    /// let mut q = Quantiles::new(200); // DataSketches k = 100
    /// for i in 0..10_000 {
    ///     q.insert(f64::from(i))?;
    /// }
    /// let image = q.to_datasketches()?;
    /// assert_eq!(&image[..5], &[2, 1, 20, 100, 0]); // preamble longs, version, type, k
    /// let back = Quantiles::from_datasketches(&image)?;
    /// assert_eq!(back.compression(), 200);
    /// assert_eq!((back.count(), back.min(), back.max()), (10_000, Some(0.0), Some(9999.0)));
    /// assert_eq!(back.centroids(), q.centroids()); // bit for bit
    /// assert_eq!(back.to_datasketches()?, image);
    /// # Ok::<(), shardfold::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::InvalidParameter`] when the compression δ has no DataSketches `k`: δ must be
    /// even and at least 20.
    pub fn to_datasketches(&self) -> Result<Vec<u8>> {
        let k = k_of(self.compression)?;
        let (preamble, flags) = match self.count() {
            0 => (PREAMBLE_LONGS_EMPTY_OR_SINGLE, FLAG_EMPTY),
            1 => (PREAMBLE_LONGS_EMPTY_OR_SINGLE, FLAG_SINGLE_VALUE),
            _ => (PREAMBLE_LONGS_MULTIPLE, 0),
        };
        let centroids = self.centroids();
        let mut out = Vec::with_capacity(32 + 16 * centroids.len());
        out.extend_from_slice(&[preamble, SERIAL_VERSION, SKETCH_TYPE]);
        out.extend_from_slice(&k.to_le_bytes());
        out.extend_from_slice(&[flags, 0, 0]);
        let (Some(min), Some(max)) = (self.min(), self.max()) else {
            return Ok(out);
        };
        if self.count() == 1 {
            out.extend_from_slice(&min.to_le_bytes());
            return Ok(out);
        }
        let len = u32::try_from(centroids.len())
            .map_err(|_| Error::internal("t-digest: more than u32::MAX centroids"))?;
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&0u32.to_le_bytes()); // no buffered values
        out.extend_from_slice(&min.to_le_bytes());
        out.extend_from_slice(&max.to_le_bytes());
        for c in centroids.iter() {
            out.extend_from_slice(&c.mean.to_le_bytes());
            out.extend_from_slice(&c.weight.to_le_bytes());
        }
        Ok(out)
    }

    /// Reads an Apache DataSketches t-digest image (`tdigest_double`, or `tdigest_float`
    /// detected by its length) into a digest of compression δ = 2k. Centroids, min, max and
    /// count are kept exactly; the sum is `Σ meanᵢ·weightᵢ` (the format has no sum). See the
    /// [module docs](self) for what is kept and the bound that applies.
    ///
    /// # Errors
    ///
    /// * [`Error::Truncated`] when the image ends before a field it announces;
    /// * [`Error::InvalidState`] for anything else that is not a valid image: another sketch
    ///   type or serial version, the preamble length disagreeing with the flags, unknown flag
    ///   bits or non-zero unused bytes, `k` outside
    ///   [`DATASKETCHES_MIN_K`]`..=`[`DATASKETCHES_MAX_K`], trailing bytes, a NaN or infinite
    ///   value, min above max, a centroid of weight 0 or outside `[min, max]`, centroids not
    ///   sorted by mean, weights whose sum overflows a `u64`, and the big-endian format of the
    ///   original t-digest library (which DataSketches also reads; this crate does not).
    pub fn from_datasketches(bytes: &[u8]) -> Result<Quantiles> {
        let mut r = Reader::new(bytes);
        let header = Header::read(&mut r)?;
        let mut q = Quantiles::try_new(compression_of(header.k)?)?;
        if header.flags & FLAG_EMPTY != 0 {
            r.finish("DataSketches t-digest (empty)")?;
            return Ok(q);
        }
        if header.flags & FLAG_SINGLE_VALUE != 0 {
            let value = read_single(&mut r)?;
            q.insert(value)?;
            return Ok(q);
        }
        let body = Body::read(&mut r)?;
        body.into_digest(q)
    }
}

/// The first 8 bytes.
struct Header {
    k: u16,
    flags: u8,
}

impl Header {
    fn read(r: &mut Reader<'_>) -> Result<Header> {
        const CX: &str = "DataSketches t-digest preamble";
        let [preamble, version, kind] = r.array::<3>(CX)?;
        if [preamble, version, kind] == [0, 0, 0] {
            return Err(Error::invalid_state(
                "the original t-digest library's big-endian format is not supported",
            ));
        }
        if kind != SKETCH_TYPE {
            return Err(Error::invalid_state(format!(
                "DataSketches sketch type {kind}, expected {SKETCH_TYPE} (t-digest)"
            )));
        }
        if version != SERIAL_VERSION {
            return Err(Error::invalid_state(format!(
                "DataSketches t-digest serial version {version}, expected {SERIAL_VERSION}"
            )));
        }
        let k = r.u16(CX)?;
        let flags = r.u8(CX)?;
        let unused = r.u16(CX)?;
        if flags & !(FLAG_EMPTY | FLAG_SINGLE_VALUE | FLAG_REVERSE_MERGE) != 0 || unused != 0 {
            return Err(Error::invalid_state(
                "DataSketches t-digest: unknown flags or non-zero unused bytes",
            ));
        }
        let short = flags & (FLAG_EMPTY | FLAG_SINGLE_VALUE);
        let expected = match short {
            0 => PREAMBLE_LONGS_MULTIPLE,
            FLAG_EMPTY | FLAG_SINGLE_VALUE => PREAMBLE_LONGS_EMPTY_OR_SINGLE,
            _ => {
                return Err(Error::invalid_state(
                    "DataSketches t-digest flagged both empty and single value",
                ));
            }
        };
        if preamble != expected {
            return Err(Error::invalid_state(format!(
                "DataSketches t-digest preamble longs {preamble}, expected {expected}"
            )));
        }
        Ok(Header { k, flags })
    }
}

/// Whether values are `f64` (`tdigest_double`) or `f32` (`tdigest_float`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Width {
    Double,
    Float,
}

impl Width {
    fn value(self, r: &mut Reader<'_>, cx: &'static str) -> Result<f64> {
        let x = match self {
            Width::Double => f64::from_le_bytes(r.array(cx)?),
            Width::Float => f64::from(f32::from_le_bytes(r.array(cx)?)),
        };
        if !x.is_finite() {
            return Err(Error::invalid_state(format!("{cx}: {x} is not finite")));
        }
        Ok(x + 0.0) // -0.0 → +0.0
    }

    fn weight(self, r: &mut Reader<'_>, cx: &'static str) -> Result<u64> {
        match self {
            Width::Double => r.u64(cx),
            Width::Float => r.u32(cx).map(u64::from),
        }
    }
}

/// The value of a single-value image: 8 bytes (double) or 4 (float).
fn read_single(r: &mut Reader<'_>) -> Result<f64> {
    const CX: &str = "DataSketches t-digest single value";
    let width = match r.remaining() {
        8 => Width::Double,
        4 => Width::Float,
        n if n > 8 => {
            return Err(Error::invalid_state(
                "trailing bytes in DataSketches t-digest (single value)",
            ));
        }
        _ => return Err(Error::Truncated { context: CX }),
    };
    width.value(r, CX)
}

/// The rest of an image holding more than one value.
struct Body {
    min: f64,
    max: f64,
    centroids: Vec<Centroid>,
    buffered: Vec<f64>,
}

impl Body {
    fn read(r: &mut Reader<'_>) -> Result<Body> {
        const CX: &str = "DataSketches t-digest centroids";
        let c = u64::from(r.u32("DataSketches t-digest centroid count")?);
        let b = u64::from(r.u32("DataSketches t-digest buffered count")?);
        if c + b == 0 {
            return Err(Error::invalid_state(
                "DataSketches t-digest not flagged empty has no centroids and no values",
            ));
        }
        // the exact length decides the width, before anything is allocated
        let rest = r.remaining() as u64;
        let width = if rest == 16 + 16 * c + 8 * b {
            Width::Double
        } else if rest == 8 + 8 * c + 4 * b {
            Width::Float
        } else if rest < 16 + 16 * c + 8 * b {
            return Err(Error::Truncated { context: CX });
        } else {
            return Err(Error::invalid_state(
                "trailing bytes in DataSketches t-digest",
            ));
        };
        let min = width.value(r, "DataSketches t-digest min")?;
        let max = width.value(r, "DataSketches t-digest max")?;
        if min > max {
            return Err(Error::invalid_state("DataSketches t-digest min above max"));
        }
        let inside = |x: f64| (min..=max).contains(&x);
        let mut centroids = Vec::with_capacity(c as usize);
        for _ in 0..c {
            let mean = width.value(r, CX)?;
            let weight = width.weight(r, CX)?;
            if weight == 0 || !inside(mean) {
                return Err(Error::invalid_state(
                    "DataSketches t-digest centroid of weight 0 or outside [min, max]",
                ));
            }
            if centroids.last().is_some_and(|p: &Centroid| p.mean > mean) {
                return Err(Error::invalid_state(
                    "DataSketches t-digest centroids not sorted by mean",
                ));
            }
            centroids.push(Centroid { mean, weight });
        }
        let mut buffered = Vec::with_capacity(b as usize);
        for _ in 0..b {
            let x = width.value(r, "DataSketches t-digest buffered values")?;
            if !inside(x) {
                return Err(Error::invalid_state(
                    "DataSketches t-digest buffered value outside [min, max]",
                ));
            }
            buffered.push(x);
        }
        r.finish("DataSketches t-digest")?;
        // equal means in this crate's order (by weight); means are already non-decreasing
        centroids.sort_by(Centroid::total_cmp);
        Ok(Body {
            min,
            max,
            centroids,
            buffered,
        })
    }

    /// The digest `q` (empty, of the image's compression) holding these centroids and values.
    fn into_digest(self, mut q: Quantiles) -> Result<Quantiles> {
        let mut count = 0u64;
        let mut sum = SumF64::default();
        for c in &self.centroids {
            count = count.checked_add(c.weight).ok_or_else(|| {
                Error::invalid_state("DataSketches t-digest weights overflow a u64")
            })?;
            add_product(&mut sum, c.mean, c.weight)?;
        }
        if count > 0 {
            q.tally = Tally {
                count,
                min: self.min,
                max: self.max,
            };
            q.sum = sum;
            q.centroids = if self.centroids.len() as u64 > max_centroids(count, q.compression) {
                compress(&self.centroids, count, q.compression)
            } else {
                self.centroids
            };
            super::wire::validate(&q)?;
        }
        for &x in &self.buffered {
            q.insert(x).map_err(|_| {
                Error::invalid_state("DataSketches t-digest weights overflow a u64")
            })?;
        }
        // the image's extremes (every value lies within them)
        (q.tally.min, q.tally.max) = (self.min, self.max);
        Ok(q)
    }
}

/// Adds `mean · weight` to `sum` exactly: `mean · 2^j` for each bit `j` of `weight`, as an
/// `f64` while that is finite, then by doubling inside the accumulator.
fn add_product(sum: &mut SumF64, mean: f64, weight: u64) -> Result<()> {
    let mut last = mean; // mean · 2^j, while finite
    let mut wide: Option<SumF64> = None; // mean · 2^j once beyond f64
    for j in 0..(64 - weight.leading_zeros()) {
        let bit = weight >> j & 1 == 1;
        if wide.is_none() {
            let scaled = mean * f64::from_bits(u64::from(1023 + j) << 52); // exact, or ±inf
            if scaled.is_finite() {
                last = scaled;
                if bit {
                    sum.add_finite(scaled);
                }
                continue;
            }
        }
        let w = wide.get_or_insert_with(|| {
            let mut s = SumF64::default();
            s.add_finite(last);
            s
        });
        let copy = w.clone();
        w.merge(&copy)?;
        if bit {
            sum.merge(w)?;
        }
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn exact_sum(terms: &[(f64, u64)]) -> SumF64 {
        let mut s = SumF64::default();
        for &(m, w) in terms {
            add_product(&mut s, m, w).unwrap();
        }
        s
    }

    #[test]
    fn products_are_exact() {
        // 0.1 · 3 is 0.30000000000000001665… exactly; rounding the product gives 0.30000000000000004
        let s = exact_sum(&[(0.1, 3)]);
        let mut three = SumF64::default();
        for _ in 0..3 {
            three.add_finite(0.1);
        }
        assert_eq!(s, three);
        // beyond f64::MAX, and back
        let s = exact_sum(&[(f64::MAX, u64::MAX), (-f64::MAX, u64::MAX)]);
        assert!(s.is_zero());
        let s = exact_sum(&[(f64::MAX, 1 << 40), (-f64::MAX, (1 << 40) - 1)]);
        assert_eq!(s.value(), f64::MAX);
        let s = exact_sum(&[(5e-324, 1 << 63)]);
        assert_eq!(s.value(), 5e-324 * 2f64.powi(63));
    }

    #[test]
    fn k_mapping() {
        assert_eq!(k_of(500).unwrap(), 250);
        assert_eq!(k_of(20).unwrap(), 10);
        assert!(matches!(k_of(501), Err(Error::InvalidParameter { .. })));
        assert!(matches!(k_of(18), Err(Error::InvalidParameter { .. })));
        assert_eq!(compression_of(10).unwrap(), 20);
        assert_eq!(compression_of(5000).unwrap(), 10_000);
        assert!(compression_of(9).is_err());
        assert!(compression_of(5001).is_err());
    }
}
