//! Composite aggregates: [`Mean`], [`Stats`] and tuples, merged field by field.
//!
//! A composite checks every part before changing any (`check_insert` / `check_merge` on all
//! parts first), so a value refused by one part leaves every part untouched.

use crate::agg::no_params;
use crate::agg::{Count, Max, Min, SumF64};
use crate::codec::nested;
use crate::codec::{Codec, Limits, Reader, tags};
use crate::error::{Error, Result};
use crate::merge::{Insert, Merge};

/// Reads a parameterless component from the next section of `r`.
fn read_component<T: Codec>(r: &mut Reader<'_>, limits: &Limits) -> Result<T> {
    nested::read_payload(&[], r, limits)
}

/// The mean of finite `f64` values, from an exact [`SumF64`] and a [`Count`]: bit-identical in
/// any order and grouping.
///
/// ```
/// use shardfold::{Insert, Mean};
/// let mut m = Mean::default();
/// assert_eq!(m.value(), None);
/// for x in [1.0, 2.0, 6.0] {
///     m.insert(x)?;
/// }
/// assert_eq!(m.value(), Some(3.0));
/// # Ok::<(), shardfold::Error>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Mean {
    sum: SumF64,
    count: Count,
}

impl Mean {
    /// The exact mean, rounded once (the exact sum divided by the count, correctly rounded: within
    /// `[min, max]` and finite for finite values); `None` when empty.
    pub fn value(&self) -> Option<f64> {
        mean_of(&self.sum, &self.count)
    }

    /// The exact sum.
    pub fn sum(&self) -> &SumF64 {
        &self.sum
    }

    /// How many values were inserted.
    pub fn count(&self) -> u64 {
        self.count.get()
    }
}

/// The exact sum divided by the count, rounded once (see [`SumF64::divided_by`]).
fn mean_of(sum: &SumF64, count: &Count) -> Option<f64> {
    sum.divided_by(count.get())
}

impl Insert<f64> for Mean {
    #[inline]
    fn check_insert(&self, value: &f64) -> Result<()> {
        self.sum.check_insert(value)?;
        self.count.check_insert(value)
    }

    #[inline]
    fn insert_unchecked(&mut self, value: f64) -> Result<()> {
        self.sum.insert_unchecked(value)?;
        self.count.insert_unchecked(value)
    }
}

impl Merge for Mean {
    fn check_merge(&self, other: &Self) -> Result<()> {
        self.sum.check_merge(&other.sum)?;
        self.count.check_merge(&other.count)
    }

    fn merge_unchecked(&mut self, other: &Self) -> Result<()> {
        self.sum.merge_unchecked(&other.sum)?;
        self.count.merge_unchecked(&other.count)
    }
}

impl Codec for Mean {
    const TYPE_TAG: u16 = tags::MEAN;

    fn write_payload(&self, out: &mut Vec<u8>) {
        nested::write_payload(&self.sum, out);
        nested::write_payload(&self.count, out);
    }

    fn read_parts(params: &[u8], payload: &[u8], limits: &Limits) -> Result<Self> {
        no_params(params)?;
        let mut r = Reader::new(payload);
        let m = Mean {
            sum: read_component(&mut r, limits)?,
            count: read_component(&mut r, limits)?,
        };
        r.finish("Mean payload")?;
        if m.count.get() == 0 && !m.sum.is_zero() {
            return Err(Error::invalid_state("Mean with a sum but no values"));
        }
        Ok(m)
    }
}

/// Count, exact sum, min, max and mean of finite `f64` values in one state.
///
/// ```
/// use shardfold::{Insert, Merge, Stats};
/// let mut a = Stats::default();
/// let mut b = Stats::default();
/// a.insert(2.0)?;
/// b.insert(-1.0)?;
/// b.insert(5.0)?;
/// a.merge(&b)?;
/// assert_eq!((a.count(), a.sum(), a.min(), a.max(), a.mean()), (3, 6.0, Some(-1.0), Some(5.0), Some(2.0)));
/// assert!(a.insert(f64::INFINITY).is_err());
/// assert_eq!(a.count(), 3); // the refused value changed nothing
/// # Ok::<(), shardfold::Error>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Stats {
    count: Count,
    sum: SumF64,
    min: Min<f64>,
    max: Max<f64>,
}

impl Stats {
    /// How many values were inserted.
    pub fn count(&self) -> u64 {
        self.count.get()
    }

    /// The exact sum, rounded once.
    pub fn sum(&self) -> f64 {
        self.sum.value()
    }

    /// The smallest value, `None` when empty.
    pub fn min(&self) -> Option<f64> {
        self.min.get()
    }

    /// The largest value, `None` when empty.
    pub fn max(&self) -> Option<f64> {
        self.max.get()
    }

    /// The mean, `None` when empty.
    pub fn mean(&self) -> Option<f64> {
        mean_of(&self.sum, &self.count)
    }
}

impl Insert<f64> for Stats {
    #[inline]
    fn check_insert(&self, value: &f64) -> Result<()> {
        self.sum.check_insert(value)?;
        self.count.check_insert(value)?;
        self.min.check_insert(value)?;
        self.max.check_insert(value)
    }

    #[inline]
    fn insert_unchecked(&mut self, value: f64) -> Result<()> {
        self.sum.insert_unchecked(value)?;
        self.count.insert_unchecked(value)?;
        self.min.insert_unchecked(value)?;
        self.max.insert_unchecked(value)
    }
}

impl Merge for Stats {
    fn check_merge(&self, other: &Self) -> Result<()> {
        self.sum.check_merge(&other.sum)?;
        self.count.check_merge(&other.count)?;
        self.min.check_merge(&other.min)?;
        self.max.check_merge(&other.max)
    }

    fn merge_unchecked(&mut self, other: &Self) -> Result<()> {
        self.sum.merge_unchecked(&other.sum)?;
        self.count.merge_unchecked(&other.count)?;
        self.min.merge_unchecked(&other.min)?;
        self.max.merge_unchecked(&other.max)
    }
}

impl Codec for Stats {
    const TYPE_TAG: u16 = tags::STATS;

    fn write_payload(&self, out: &mut Vec<u8>) {
        nested::write_payload(&self.count, out);
        nested::write_payload(&self.sum, out);
        nested::write_payload(&self.min, out);
        nested::write_payload(&self.max, out);
    }

    fn read_parts(params: &[u8], payload: &[u8], limits: &Limits) -> Result<Self> {
        no_params(params)?;
        let mut r = Reader::new(payload);
        let s = Stats {
            count: read_component(&mut r, limits)?,
            sum: read_component(&mut r, limits)?,
            min: read_component(&mut r, limits)?,
            max: read_component(&mut r, limits)?,
        };
        r.finish("Stats payload")?;
        let empty = s.count.get() == 0;
        let consistent = empty == s.min.get().is_none()
            && empty == s.max.get().is_none()
            && (!empty || s.sum.is_zero())
            && s.min.get().zip(s.max.get()).is_none_or(|(lo, hi)| lo <= hi)
            && s.min
                .get()
                .into_iter()
                .chain(s.max.get())
                .all(f64::is_finite);
        if !consistent {
            return Err(Error::invalid_state("inconsistent Stats fields"));
        }
        Ok(s)
    }
}

macro_rules! tuple_aggregate {
    ($tag:ident; $($T:ident $i:tt),+) => {
        impl<V: Clone, $($T: Insert<V>),+> Insert<V> for ($($T,)+) {
            fn check_insert(&self, value: &V) -> Result<()> {
                $(self.$i.check_insert(value)?;)+
                Ok(())
            }

            fn insert_unchecked(&mut self, value: V) -> Result<()> {
                $(self.$i.insert_unchecked(value.clone())?;)+
                Ok(())
            }
        }

        impl<$($T: Merge),+> Merge for ($($T,)+) {
            fn check_merge(&self, other: &Self) -> Result<()> {
                $(self.$i.check_merge(&other.$i)?;)+
                Ok(())
            }

            fn merge_unchecked(&mut self, other: &Self) -> Result<()> {
                $(self.$i.merge_unchecked(&other.$i)?;)+
                Ok(())
            }
        }

        /// The nested codec ([`codec::nested`](crate::codec::nested)): parameter block: each
        /// component's type tag (u16 LE) and its parameter block as a section; payload: each
        /// component's payload as a section.
        impl<$($T: Codec),+> Codec for ($($T,)+) {
            const TYPE_TAG: u16 = tags::$tag;

            fn write_params(&self, out: &mut Vec<u8>) {
                $(nested::write_params(&self.$i, out);)+
            }

            fn write_payload(&self, out: &mut Vec<u8>) {
                $(nested::write_payload(&self.$i, out);)+
            }

            fn read_parts(params: &[u8], payload: &[u8], limits: &Limits) -> Result<Self> {
                let mut p = Reader::new(params);
                let mut q = Reader::new(payload);
                let value = ($(nested::read::<$T>(&mut p, &mut q, limits)?,)+);
                p.finish("tuple params")?;
                q.finish("tuple payload")?;
                Ok(value)
            }
        }
    };
}

tuple_aggregate!(TUPLE2; A 0, B 1);
tuple_aggregate!(TUPLE3; A 0, B 1, C 2);
tuple_aggregate!(TUPLE4; A 0, B 1, C 2, D 3);

/// A tuple of aggregates that takes a tuple of values, one per component — where a plain tuple
/// gives every component the same value.
///
/// Merging and the stored bytes are exactly those of the inner tuple (same type tag), so a
/// `Zip<(A, B)>` blob decodes as `(A, B)` and back; only `insert` differs.
///
/// ```
/// use shardfold::{Distinct, Insert, Quantiles, Stats, Zip};
/// // per order: the amount feeds Stats and Quantiles, the user ID feeds Distinct
/// let mut m = Zip::<(Stats, Distinct, Quantiles)>::default();
/// for (amount, user) in [(12.5, 7u64), (3.0, 7), (99.0, 8)] {
///     m.insert((amount, user, amount))?;
/// }
/// let (stats, users, _amounts) = &m.0;
/// assert_eq!(stats.count(), 3);
/// assert_eq!(users.estimate().round(), 2.0);
/// # Ok::<(), shardfold::Error>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Zip<T>(pub T);

impl<T: Merge> Merge for Zip<T> {
    fn check_merge(&self, other: &Self) -> Result<()> {
        self.0.check_merge(&other.0)
    }

    fn merge_unchecked(&mut self, other: &Self) -> Result<()> {
        self.0.merge_unchecked(&other.0)
    }
}

impl<T: Codec> Codec for Zip<T> {
    const TYPE_TAG: u16 = T::TYPE_TAG;

    fn write_params(&self, out: &mut Vec<u8>) {
        self.0.write_params(out);
    }

    fn write_payload(&self, out: &mut Vec<u8>) {
        self.0.write_payload(out);
    }

    fn read_parts(params: &[u8], payload: &[u8], limits: &Limits) -> Result<Self> {
        T::read_parts(params, payload, limits).map(Zip)
    }
}

macro_rules! zip_insert {
    ($($T:ident $V:ident $i:tt),+) => {
        impl<$($V, $T: Insert<$V>),+> Insert<($($V,)+)> for Zip<($($T,)+)> {
            fn check_insert(&self, value: &($($V,)+)) -> Result<()> {
                $(self.0.$i.check_insert(&value.$i)?;)+
                Ok(())
            }

            fn insert_unchecked(&mut self, value: ($($V,)+)) -> Result<()> {
                $(self.0.$i.insert_unchecked(value.$i)?;)+
                Ok(())
            }
        }
    };
}

zip_insert!(A VA 0, B VB 1);
zip_insert!(A VA 0, B VB 1, C VC 2);
zip_insert!(A VA 0, B VB 1, C VC 2, D VD 3);
