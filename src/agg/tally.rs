//! [`Tally`]: the exact count, minimum and maximum every quantile sketch carries.
//!
//! Shared by [`Quantiles`](crate::Quantiles) and [`LogHistogram`](crate::LogHistogram): the
//! count is checked (never wraps), the extremes are exact and kept as `+∞`/`−∞` while empty (so
//! folding a value needs no branch), `-0.0` is folded as `+0.0`, and the encoded form is
//! `count (u64 LE), min (f64 bits), max (f64 bits)` with `+0.0` for both extremes when empty.

use crate::codec::Reader;
use crate::error::{Error, Result};
use crate::merge::check_finite;

/// Exact count, minimum and maximum of finite values.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Tally {
    pub(crate) count: u64,
    pub(crate) min: f64,
    pub(crate) max: f64,
}

impl Default for Tally {
    fn default() -> Self {
        Tally {
            count: 0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
        }
    }
}

impl Tally {
    /// Refuses NaN, ±∞, and a value that would overflow the count; `what` names the sketch.
    #[inline]
    pub(crate) fn check_insert(&self, x: f64, what: &'static str) -> Result<()> {
        if x.is_finite() && self.count < u64::MAX {
            return Ok(()); // the hot path, without a call
        }
        check_finite(x)?;
        if self.count == u64::MAX {
            return Err(Error::Overflow { what });
        }
        Ok(())
    }

    /// Folds a value already checked by [`Tally::check_insert`]; returns it with `-0.0` as `+0.0`.
    #[inline]
    pub(crate) fn insert(&mut self, x: f64) -> f64 {
        let x = x + 0.0;
        // x is finite and the extremes never NaN or -0.0: a plain comparison (one `minsd`/`maxsd`)
        // gives what `f64::min`/`max` give, without their NaN handling
        self.min = if x < self.min { x } else { self.min };
        self.max = if x > self.max { x } else { self.max };
        self.count += 1;
        x
    }

    /// Refuses a merge whose count would overflow.
    pub(crate) fn check_merge(&self, other: &Tally, what: &'static str) -> Result<()> {
        match self.count.checked_add(other.count) {
            Some(_) => Ok(()),
            None => Err(Error::Overflow { what }),
        }
    }

    /// Merges a tally already checked by [`Tally::check_merge`].
    pub(crate) fn merge(&mut self, other: &Tally) {
        self.count += other.count;
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
    }

    /// The minimum, `None` when empty.
    pub(crate) fn min(&self) -> Option<f64> {
        (self.count > 0).then_some(self.min)
    }

    /// The maximum, `None` when empty.
    pub(crate) fn max(&self) -> Option<f64> {
        (self.count > 0).then_some(self.max)
    }

    /// Appends `count, min, max` (extremes `+0.0` when empty).
    pub(crate) fn write(&self, out: &mut Vec<u8>) {
        let (min, max) = if self.count == 0 {
            (0.0f64, 0.0f64)
        } else {
            (self.min, self.max)
        };
        for v in [self.count, min.to_bits(), max.to_bits()] {
            out.extend_from_slice(&v.to_le_bytes());
        }
    }

    /// Reads what [`Tally::write`] wrote and checks it: `+0.0` extremes when empty, else finite
    /// extremes, not `-0.0`, `min ≤ max`.
    pub(crate) fn read(r: &mut Reader<'_>) -> Result<Tally> {
        let count = r.u64("count")?;
        let min = f64::from_bits(r.u64("min")?);
        let max = f64::from_bits(r.u64("max")?);
        if count == 0 {
            if min.to_bits() != 0 || max.to_bits() != 0 {
                return Err(Error::invalid_state("empty sketch with extremes"));
            }
            return Ok(Tally::default());
        }
        let clean = |x: f64| x.is_finite() && x.to_bits() != 1 << 63;
        if !clean(min) || !clean(max) || min > max {
            return Err(Error::invalid_state("extremes not finite and ordered"));
        }
        Ok(Tally { count, min, max })
    }
}

/// Refuses a quantile outside `[0, 1]` (or NaN).
pub(crate) fn check_quantile(q: f64) -> Result<()> {
    if (0.0..=1.0).contains(&q) {
        Ok(())
    } else {
        Err(Error::InvalidValue {
            reason: "quantile outside [0, 1]",
        })
    }
}
