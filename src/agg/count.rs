//! [`Count`]: how many values were folded.

use serde::{Deserialize, Serialize};

use crate::codec::{self, Codec, Limits, tags};
use crate::error::{Error, Result};
use crate::merge::{Insert, Merge};

/// Counts inserted values (of any type). Merge adds counts; overflow past `u64::MAX` is an
/// [`Error::Overflow`], never a silent wrap.
///
/// ```
/// use shardfold::{Count, Insert, Merge};
/// let mut a = Count::default();
/// a.insert("anything")?;
/// a.add(41)?;
/// assert_eq!(a.get(), 42);
/// # Ok::<(), shardfold::Error>(())
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Count(u64);

impl Count {
    /// A count of `n`.
    pub fn new(n: u64) -> Self {
        Count(n)
    }

    /// The count.
    pub fn get(&self) -> u64 {
        self.0
    }

    /// Adds `n` at once.
    ///
    /// # Errors
    ///
    /// [`Error::Overflow`] past `u64::MAX`; the count is unchanged.
    pub fn add(&mut self, n: u64) -> Result<()> {
        self.0 = checked(self.0, n)?;
        Ok(())
    }
}

#[inline]
fn checked(a: u64, b: u64) -> Result<u64> {
    a.checked_add(b).ok_or(Error::Overflow { what: "Count" })
}

impl<V> Insert<V> for Count {
    #[inline]
    fn check_insert(&self, _value: &V) -> Result<()> {
        checked(self.0, 1).map(|_| ())
    }

    #[inline]
    fn insert_unchecked(&mut self, _value: V) -> Result<()> {
        self.0 = self.0.wrapping_add(1); // no overflow: checked by check_insert
        Ok(())
    }
}

impl Merge for Count {
    fn check_merge(&self, other: &Self) -> Result<()> {
        checked(self.0, other.0).map(|_| ())
    }

    fn merge_unchecked(&mut self, other: &Self) -> Result<()> {
        self.0 = self.0.wrapping_add(other.0); // no overflow: checked by check_merge
        Ok(())
    }
}

impl Codec for Count {
    const TYPE_TAG: u16 = tags::COUNT;

    fn write_payload(&self, out: &mut Vec<u8>) {
        codec::write_postcard(&self.0, out);
    }

    fn read_parts(params: &[u8], payload: &[u8], _: &Limits) -> Result<Self> {
        no_params(params)?;
        codec::read_postcard(payload, "Count payload").map(Count)
    }
}

/// Refuses a non-empty parameter block for types that have no parameters.
pub(crate) fn no_params(params: &[u8]) -> Result<()> {
    if params.is_empty() {
        Ok(())
    } else {
        Err(Error::invalid_state("unexpected parameter block"))
    }
}
