//! The [`Merge`] trait and the laws every aggregate obeys.
//!
//! shardfold folds partial results computed by many stateless function instances, in whatever
//! order they reach the store. That is only correct if merging does not care about order or
//! grouping. Every aggregate in this crate therefore obeys these laws, checked by property tests
//! for every type through one shared suite (the `testkit` feature, module `testkit`):
//!
//! | law | statement |
//! |---|---|
//! | identity | `A::default()` merged with `a`, either side, is `a` |
//! | commutativity | `a ⊔ b = b ⊔ a` |
//! | associativity | `(a ⊔ b) ⊔ c = a ⊔ (b ⊔ c)` |
//! | any order, any grouping | folding any permutation of parts `p₁ … pₙ` in any tree shape gives the same state |
//! | split-then-merge | inserting values into parts and merging them equals inserting all values into one state |
//! | idempotence (lattice types only: `Min`, `Max`, `Distinct`) | `a ⊔ a = a` |
//!
//! "The same" means **bit-identical encoded bytes** for exact types (`Count`, `Sum`, `SumF64`,
//! `Min`, `Max`, `Mean`, `Stats`, …) and "within the documented error bound" for sketches whose
//! compression depends on grouping.
//!
//! A merge never half-happens: [`Merge::check_merge`] validates everything that can fail
//! (parameters, overflow) before [`Merge::merge`] changes anything, so a failed merge leaves
//! `self` untouched. [`Insert`] follows the same rule for values.

use crate::error::MergeError;

/// A value that can absorb another value of its type.
///
/// # Contract
///
/// * `check_merge(other)` returns `Ok` exactly when `merge(other)` would succeed; it changes
///   nothing.
/// * `merge(other)` either succeeds, or returns the error `check_merge` would have returned and
///   leaves `self` untouched.
/// * The laws in the [module docs](self) hold.
///
/// # Examples
///
/// ```
/// use shardfold::{Count, Insert, Merge};
/// let mut a = Count::default();
/// let mut b = Count::default();
/// a.insert(())?;
/// b.insert(())?;
/// b.insert(())?;
/// a.merge(&b)?;
/// assert_eq!(a.get(), 3);
/// # Ok::<(), shardfold::Error>(())
/// ```
pub trait Merge {
    /// Checks whether `other` can be merged into `self` without changing anything.
    ///
    /// # Errors
    ///
    /// [`Error::IncompatibleParams`](crate::Error::IncompatibleParams) when parameters differ,
    /// [`Error::Overflow`](crate::Error::Overflow) when an exact accumulator would overflow,
    /// [`Error::OverlappingState`](crate::Error::OverlappingState) when both sides remember the
    /// same events.
    fn check_merge(&self, other: &Self) -> Result<(), MergeError>;

    /// Merges `other` into `self`.
    ///
    /// # Errors
    ///
    /// As [`check_merge`](Merge::check_merge); on error `self` is unchanged.
    fn merge(&mut self, other: &Self) -> Result<(), MergeError>;
}

/// Folding one value of type `V` into an aggregate.
///
/// `insert` either folds the value or returns an error and changes nothing, so composite
/// aggregates (tuples, [`Stats`](crate::Stats)) can call [`check_insert`](Insert::check_insert)
/// on every part before inserting into any of them.
///
/// # Examples
///
/// ```
/// use shardfold::{Insert, SumF64};
/// let mut s = SumF64::default();
/// for x in [1e100, 1.0, -1e100] {
///     s.insert(x)?;
/// }
/// assert_eq!(s.value(), 1.0); // exact sum, rounded once; naive summation gives 0.0
/// assert!(s.insert(f64::NAN).is_err()); // refused, nothing changed
/// assert_eq!(s.value(), 1.0);
/// # Ok::<(), shardfold::Error>(())
/// ```
pub trait Insert<V> {
    /// Checks whether `value` would be accepted, without changing anything.
    ///
    /// # Errors
    ///
    /// As [`insert`](Insert::insert).
    fn check_insert(&self, value: &V) -> crate::Result<()>;

    /// Folds `value` into the aggregate.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidValue`](crate::Error::InvalidValue) for values the aggregate refuses
    /// (NaN, ±inf where meaningless), [`Error::Overflow`](crate::Error::Overflow) when an exact
    /// accumulator is full. On error nothing changed.
    fn insert(&mut self, value: V) -> crate::Result<()>;
}

/// Checks that `x` is finite: the rule for sums, means and quantile sketches.
#[inline]
pub(crate) fn check_finite(x: f64) -> crate::Result<()> {
    if x.is_finite() {
        Ok(())
    } else if x.is_nan() {
        Err(crate::Error::InvalidValue { reason: "NaN" })
    } else {
        Err(crate::Error::InvalidValue {
            reason: "infinite value",
        })
    }
}
