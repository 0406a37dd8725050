//! [`Sum`]: an exact integer sum that never wraps.

use crate::agg::no_params;
use crate::codec::{self, Codec, Limits, tags};
use crate::error::{Error, Result};
use crate::merge::{Insert, Merge};

/// The exact sum of `i64` values, accumulated in an `i128` (room for 2^64 values of any
/// `i64`). Leaving the `i128` range is an [`Error::Overflow`], never a silent wrap.
///
/// ```
/// use shardfold::{Insert, Merge, Sum};
/// let mut a = Sum::default();
/// a.insert(i64::MAX)?;
/// a.insert(i64::MAX)?; // no wrap: the accumulator is wider than the inputs
/// assert_eq!(a.get(), 2 * i64::MAX as i128);
/// assert!(a.to_i64().is_none());
/// # Ok::<(), shardfold::Error>(())
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Sum(i128);

impl Sum {
    /// The exact sum.
    pub fn get(&self) -> i128 {
        self.0
    }

    /// The sum as an `i64`, or `None` when it does not fit.
    pub fn to_i64(&self) -> Option<i64> {
        i64::try_from(self.0).ok()
    }
}

#[inline]
fn checked(a: i128, b: i128) -> Result<i128> {
    a.checked_add(b).ok_or(Error::Overflow { what: "Sum" })
}

impl Insert<i64> for Sum {
    #[inline]
    fn check_insert(&self, value: &i64) -> Result<()> {
        checked(self.0, i128::from(*value)).map(|_| ())
    }

    #[inline]
    fn insert_unchecked(&mut self, value: i64) -> Result<()> {
        self.0 = self.0.wrapping_add(i128::from(value)); // no overflow: checked by check_insert
        Ok(())
    }
}

impl Merge for Sum {
    fn check_merge(&self, other: &Self) -> Result<()> {
        checked(self.0, other.0).map(|_| ())
    }

    fn merge_unchecked(&mut self, other: &Self) -> Result<()> {
        self.0 = self.0.wrapping_add(other.0); // no overflow: checked by check_merge
        Ok(())
    }
}

impl Codec for Sum {
    const TYPE_TAG: u16 = tags::SUM_I64;

    fn write_payload(&self, out: &mut Vec<u8>) {
        codec::write_postcard(&self.0, out);
    }

    fn read_parts(params: &[u8], payload: &[u8], _: &Limits) -> Result<Self> {
        no_params(params)?;
        codec::read_postcard(payload, "Sum payload").map(Sum)
    }
}
