//! [`LogHistogram`]: relative-error quantiles whose merge is exact (DDSketch-style).
//!
//! # Algorithm
//!
//! DDSketch (Masson, Rim & Lee, *DDSketch: A Fast and Fully-Mergeable Quantile Sketch with
//! Relative-Error Guarantees*, VLDB 2019): a value `x > 0` is counted in the logarithmic bucket
//! `⌊log_γ x⌋` with `γ = (1 + α)/(1 − α)`; every value in a bucket is within α (relative) of the
//! bucket's representative value. Negative values are counted by magnitude in a second set of
//! buckets. The logarithm is DDSketch's cubic approximation of log₂ from the bits of the double
//! (a few multiplications, no `ln`, the same on every platform), with the multiplier chosen so
//! the guarantee holds exactly (see `mapping`).
//!
//! Counts are integers, so a merge adds counts per bucket: the result is **bit-identical in any
//! order and grouping** (an exact law, not an approximation), and merging never loses the
//! minimum, the maximum or a sign (both are kept exactly).
//!
//! # Range
//!
//! Buckets are stored sparsely (a dense window for the bulk, a sorted map for outliers) and are
//! never collapsed, so the whole `f64` range is covered at full accuracy: one value of 1e30 among
//! values near 1 takes one bucket and does not move p50. Magnitudes below `f64::MIN_POSITIVE`
//! (2.2250738585072014e-308: zeros and subnormals) are counted in the zero bucket and read back as
//! 0 (clamped to the exact minimum and maximum): for those the error is absolute, below 2.3e-308.
//! NaN and ±infinity are refused with [`Error::InvalidValue`]; `-0.0` is stored as `+0.0`.
//!
//! # Error bound
//!
//! `quantile(q)` returns a value within α·|x| of `x`, the element at 0-based rank
//! `⌊q·n⌋` (clamped to `n − 1`) of the sorted values, for every `q` and every input (magnitudes
//! below `f64::MIN_POSITIVE` aside, see above). Ranks 0 and `n − 1` (so `q = 0` and `q = 1`)
//! return the exact minimum and maximum.

mod mapping;
mod store;

use mapping::Mapping;
use store::Store;

use crate::agg::tally::{Tally, check_quantile};
use crate::error::{Error, Result};
use crate::merge::{Insert, Merge};

mod wire;

/// The default relative accuracy α: 1 %.
pub const DEFAULT_ALPHA: f64 = 0.01;
/// The smallest relative accuracy accepted.
pub const MIN_ALPHA: f64 = 1e-4;
/// The largest relative accuracy accepted.
pub const MAX_ALPHA: f64 = 0.5;

/// Relative-error quantiles with exact, order-independent merges. See the [module docs](self).
///
/// ```
/// use shardfold::{Insert, LogHistogram, Merge};
/// let mut a = LogHistogram::default();
/// for i in 1..=1000 {
///     a.insert(f64::from(i))?;
/// }
/// a.insert(1e30)?; // an outlier does not disturb the median
/// let p50 = a.quantile(0.5)?.unwrap();
/// assert!((p50 - 501.0).abs() <= 0.01 * 501.0);
/// let mut b = LogHistogram::default();
/// b.insert(-3.5)?;
/// let mut ab = a.clone();
/// ab.merge(&b)?;
/// b.merge(&a)?;
/// assert_eq!(shardfold::encode(&ab), shardfold::encode(&b)); // exact, any order
/// assert_eq!(ab.min(), Some(-3.5));
/// # Ok::<(), shardfold::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct LogHistogram {
    alpha: f64,
    mapping: Mapping,
    /// Buckets of positive values.
    positive: Store,
    /// Buckets of negative values, by magnitude.
    negative: Store,
    zero: u64,
    /// Exact count, minimum and maximum.
    tally: Tally,
}

impl Default for LogHistogram {
    fn default() -> Self {
        LogHistogram::new(DEFAULT_ALPHA)
    }
}

impl LogHistogram {
    /// An empty histogram with relative accuracy `alpha`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidParameter`] unless `MIN_ALPHA ≤ alpha ≤ MAX_ALPHA`.
    ///
    /// # Examples
    ///
    /// ```
    /// use shardfold::LogHistogram;
    /// assert!(LogHistogram::try_new(0.005).is_ok());
    /// assert!(LogHistogram::try_new(1.0).is_err());
    /// assert!(LogHistogram::try_new(f64::NAN).is_err());
    /// ```
    pub fn try_new(alpha: f64) -> Result<Self> {
        if !(MIN_ALPHA..=MAX_ALPHA).contains(&alpha) {
            return Err(Error::InvalidParameter {
                name: "alpha",
                reason: format!("{alpha} is outside [{MIN_ALPHA}, {MAX_ALPHA}]"),
            });
        }
        Ok(LogHistogram {
            alpha,
            mapping: Mapping::new(alpha),
            positive: Store::default(),
            negative: Store::default(),
            zero: 0,
            tally: Tally::default(),
        })
    }

    /// An empty histogram with relative accuracy `alpha`.
    ///
    /// # Panics
    ///
    /// Unless `MIN_ALPHA ≤ alpha ≤ MAX_ALPHA`; use [`LogHistogram::try_new`] for an α that is
    /// not a constant.
    ///
    /// # Examples
    ///
    /// ```
    /// let h = shardfold::LogHistogram::new(0.02);
    /// assert_eq!(h.alpha(), 0.02);
    /// ```
    pub fn new(alpha: f64) -> Self {
        match Self::try_new(alpha) {
            Ok(h) => h,
            Err(e) => panic!("LogHistogram::new: {e}"),
        }
    }

    /// The relative accuracy α.
    pub fn alpha(&self) -> f64 {
        self.alpha
    }

    /// How many values were inserted (exact).
    pub fn count(&self) -> u64 {
        self.tally.count
    }

    /// Whether no value was inserted.
    pub fn is_empty(&self) -> bool {
        self.tally.count == 0
    }

    /// The smallest value (exact), `None` when empty.
    pub fn min(&self) -> Option<f64> {
        self.tally.min()
    }

    /// The largest value (exact), `None` when empty.
    pub fn max(&self) -> Option<f64> {
        self.tally.max()
    }

    /// How many values had a magnitude below `f64::MIN_POSITIVE` (zeros and subnormals).
    pub fn zero_count(&self) -> u64 {
        self.zero
    }

    /// The value at quantile `q`: within α (relative) of the element of rank `⌊q·n⌋` of the
    /// sorted values; `None` when empty. See the [error bound](self#error-bound).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidValue`] unless `0 ≤ q ≤ 1`.
    pub fn quantile(&self, q: f64) -> Result<Option<f64>> {
        check_quantile(q)?;
        if self.tally.count == 0 {
            return Ok(None);
        }
        let rank = ((q * self.tally.count as f64) as u64).min(self.tally.count - 1);
        if rank == 0 {
            return Ok(Some(self.tally.min));
        }
        if rank == self.tally.count - 1 {
            return Ok(Some(self.tally.max));
        }
        let v = self.value_at_rank(rank);
        Ok(Some(v.max(self.tally.min).min(self.tally.max)))
    }

    /// The bucket value of the element of 0-based `rank < count`, in sorted order.
    fn value_at_rank(&self, rank: u64) -> f64 {
        let mut seen = 0u64;
        for (i, n) in self.negative.entries().into_iter().rev() {
            seen += n;
            if rank < seen {
                return -self.mapping.value(i);
            }
        }
        seen += self.zero;
        if rank < seen {
            return 0.0;
        }
        for (i, n) in self.positive.entries() {
            seen += n;
            if rank < seen {
                return self.mapping.value(i);
            }
        }
        self.tally.max
    }

    /// Where `x` (finite, `-0.0` normalised) is counted: its sign and bucket, or the zero bucket.
    #[inline]
    fn bucket(&self, x: f64) -> Bucket {
        if x >= f64::MIN_POSITIVE {
            Bucket::Positive(self.mapping.index(x))
        } else if x <= -f64::MIN_POSITIVE {
            Bucket::Negative(self.mapping.index(-x))
        } else {
            Bucket::Zero
        }
    }

    #[inline]
    fn add(&mut self, bucket: Bucket, n: u64) {
        match bucket {
            Bucket::Positive(i) => self.positive.add(i, n),
            Bucket::Negative(i) => self.negative.add(i, n),
            Bucket::Zero => self.zero += n,
        }
    }
}

/// Where a value is counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Bucket {
    Negative(i32),
    Zero,
    Positive(i32),
}

impl Insert<f64> for LogHistogram {
    #[inline]
    fn check_insert(&self, value: &f64) -> Result<()> {
        self.tally.check_insert(*value, "LogHistogram count")
    }

    #[inline]
    fn insert_unchecked(&mut self, value: f64) -> Result<()> {
        let x = self.tally.insert(value); // -0.0 → +0.0
        self.add(self.bucket(x), 1);
        Ok(())
    }
}

impl Merge for LogHistogram {
    fn check_merge(&self, other: &Self) -> Result<()> {
        if self.alpha.to_bits() != other.alpha.to_bits() {
            return Err(Error::incompatible(
                "LogHistogram alpha",
                self.alpha,
                other.alpha,
            ));
        }
        self.tally.check_merge(&other.tally, "LogHistogram count")?;
        Ok(())
    }

    fn merge_unchecked(&mut self, other: &Self) -> Result<()> {
        if other.tally.count == 0 {
            return Ok(());
        }
        self.tally.merge(&other.tally);
        self.zero += other.zero;
        self.positive.merge(&other.positive);
        self.negative.merge(&other.negative);
        Ok(())
    }
}
