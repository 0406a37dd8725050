//! [`Min`] and [`Max`]: the smallest and largest value seen, for `f64` and `i64`.
//!
//! Empty is the identity and reads as `None` — never as 0 or ±infinity. `f64` values are ordered
//! by IEEE 754 `totalOrder` (so `-0.0 < +0.0`, and the result does not depend on which zero came
//! first); NaN is refused, ±infinity accepted. Both are lattices: merging a state with itself
//! changes nothing.

use core::cmp::Ordering;

use crate::agg::no_params;
use crate::codec::{self, Codec, Limits, tags};
use crate::error::{Error, Result};
use crate::merge::{Insert, Merge};

/// Value types [`Min`] and [`Max`] accept: `f64` and `i64`.
pub trait Extremum: Copy + core::fmt::Debug + sealed::Sealed {
    /// A total order on accepted values.
    fn total_cmp(&self, other: &Self) -> Ordering;
    /// Refuses values that have no place in the order (NaN).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidValue`] for NaN.
    fn check(&self) -> Result<()>;
    #[doc(hidden)]
    const MIN_TAG: u16;
    #[doc(hidden)]
    const MAX_TAG: u16;
    #[doc(hidden)]
    fn write(&self, out: &mut Vec<u8>);
    #[doc(hidden)]
    fn read(bytes: &[u8]) -> Result<Self>;
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for f64 {}
    impl Sealed for i64 {}
}

impl Extremum for f64 {
    fn total_cmp(&self, other: &Self) -> Ordering {
        f64::total_cmp(self, other)
    }
    fn check(&self) -> Result<()> {
        if self.is_nan() {
            Err(Error::InvalidValue { reason: "NaN" })
        } else {
            Ok(())
        }
    }
    const MIN_TAG: u16 = tags::MIN_F64;
    const MAX_TAG: u16 = tags::MAX_F64;
    fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_bits().to_le_bytes());
    }
    fn read(bytes: &[u8]) -> Result<Self> {
        let mut r = codec::Reader::new(bytes);
        let v = f64::from_bits(r.u64("f64 extremum")?);
        r.finish("extremum payload")?;
        v.check()
            .map_err(|_| Error::invalid_state("NaN extremum"))?;
        Ok(v)
    }
}

impl Extremum for i64 {
    fn total_cmp(&self, other: &Self) -> Ordering {
        self.cmp(other)
    }
    fn check(&self) -> Result<()> {
        Ok(())
    }
    const MIN_TAG: u16 = tags::MIN_I64;
    const MAX_TAG: u16 = tags::MAX_I64;
    fn write(&self, out: &mut Vec<u8>) {
        codec::write_postcard(self, out);
    }
    fn read(bytes: &[u8]) -> Result<Self> {
        codec::read_postcard(bytes, "i64 extremum")
    }
}

macro_rules! extremum {
    ($(#[$doc:meta])* $name:ident, $keep:expr, $tag:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq)]
        pub struct $name<T: Extremum>(Option<T>);

        impl<T: Extremum> Default for $name<T> {
            fn default() -> Self {
                $name(None)
            }
        }

        impl<T: Extremum> $name<T> {
            /// The extreme value, or `None` when nothing was inserted.
            pub fn get(&self) -> Option<T> {
                self.0
            }

            fn offer(&mut self, v: T) {
                match self.0 {
                    Some(cur) if !$keep(v.total_cmp(&cur)) => {}
                    _ => self.0 = Some(v),
                }
            }
        }

        impl<T: Extremum> Insert<T> for $name<T> {
            #[inline]
            fn check_insert(&self, value: &T) -> Result<()> {
                value.check()
            }

            #[inline]
            fn insert_unchecked(&mut self, value: T) -> Result<()> {
                self.offer(value);
                Ok(())
            }
        }

        impl<T: Extremum> Merge for $name<T> {
            fn check_merge(&self, _other: &Self) -> Result<()> {
                Ok(())
            }

            fn merge_unchecked(&mut self, other: &Self) -> Result<()> {
                if let Some(v) = other.0 {
                    self.offer(v);
                }
                Ok(())
            }
        }

        impl<T: Extremum> Codec for $name<T> {
            const TYPE_TAG: u16 = T::$tag;

            fn write_payload(&self, out: &mut Vec<u8>) {
                match self.0 {
                    None => out.push(0),
                    Some(v) => {
                        out.push(1);
                        v.write(out);
                    }
                }
            }

            fn read_parts(params: &[u8], payload: &[u8], _: &Limits) -> Result<Self> {
                no_params(params)?;
                match payload.split_first() {
                    Some((0, [])) => Ok($name(None)),
                    Some((1, rest)) => T::read(rest).map(|v| $name(Some(v))),
                    Some(_) => Err(Error::invalid_state("bad extremum flag")),
                    None => Err(Error::Truncated { context: "extremum payload" }),
                }
            }
        }
    };
}

extremum!(
    /// The smallest value inserted (`f64` or `i64`); `None` when empty.
    ///
    /// ```
    /// use shardfold::{Insert, Merge, Min};
    /// let mut m = Min::<f64>::default();
    /// assert_eq!(m.get(), None);
    /// m.insert(3.0)?;
    /// m.insert(-0.0)?;
    /// m.insert(0.0)?;
    /// assert_eq!(m.get().map(f64::to_bits), Some((-0.0f64).to_bits()));
    /// # Ok::<(), shardfold::Error>(())
    /// ```
    Min,
    |o| o == Ordering::Less,
    MIN_TAG
);

extremum!(
    /// The largest value inserted (`f64` or `i64`); `None` when empty.
    ///
    /// ```
    /// use shardfold::{Insert, Max};
    /// let mut m = Max::<i64>::default();
    /// m.insert(-5)?;
    /// m.insert(7)?;
    /// assert_eq!(m.get(), Some(7));
    /// # Ok::<(), shardfold::Error>(())
    /// ```
    Max,
    |o| o == Ordering::Greater,
    MAX_TAG
);
