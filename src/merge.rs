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

/// Folds one value into each of several aggregates, all or nothing: every value is checked
/// ([`Insert::check_insert`]) as it is added, and nothing is inserted until
/// [`insert`](InsertAll::insert), so a value refused by one aggregate leaves all of them
/// unchanged. The `insert` of a struct of aggregates, without allocating; it is what
/// `#[derive(Aggregate)]` writes (feature `derive`).
///
/// # Examples
///
/// ```
/// use shardfold::merge::InsertAll;
/// use shardfold::{Count, Insert, Quantiles, Result};
///
/// struct Request { latency_ms: f64, is_error: bool }
///
/// #[derive(Default)]
/// struct Route { requests: Count, errors: Count, latency: Quantiles }
///
/// impl Insert<Request> for Route {
///     fn check_insert(&self, r: &Request) -> Result<()> {
///         self.requests.check_insert(&())?;
///         self.errors.check_insert(&())?;
///         self.latency.check_insert(&r.latency_ms)
///     }
///
///     fn insert(&mut self, r: Request) -> Result<()> {
///         InsertAll::new()
///             .field(&mut self.requests, ())?
///             .field_some(&mut self.errors, r.is_error.then_some(()))? // None: not fed
///             .field(&mut self.latency, r.latency_ms)?
///             .insert()
///     }
/// }
///
/// let mut route = Route::default();
/// route.insert(Request { latency_ms: 12.0, is_error: true })?;
/// route.insert(Request { latency_ms: 3.0, is_error: false })?;
/// assert!(route.insert(Request { latency_ms: f64::NAN, is_error: true }).is_err());
/// assert_eq!((route.requests.get(), route.errors.get()), (2, 1)); // the NaN changed nothing
/// # Ok::<(), shardfold::Error>(())
/// ```
#[derive(Debug, Default)]
#[must_use = "nothing is inserted until `insert` is called"]
pub struct InsertAll<P = ()>(P);

impl InsertAll {
    /// An empty list of inserts.
    pub fn new() -> Self {
        InsertAll(())
    }
}

impl<P: PendingInserts> InsertAll<P> {
    /// Checks that `agg` accepts `value` and adds the insert to the list.
    ///
    /// # Errors
    ///
    /// As `agg`'s [`check_insert`](Insert::check_insert); nothing was inserted anywhere.
    pub fn field<A: Insert<V>, V>(
        self,
        agg: &mut A,
        value: V,
    ) -> crate::Result<InsertAll<(P, Pending<'_, A, V>)>> {
        self.field_some(agg, Some(value))
    }

    /// As [`field`](InsertAll::field) for `Some(value)`; `None` leaves `agg` out.
    ///
    /// # Errors
    ///
    /// As `agg`'s [`check_insert`](Insert::check_insert); nothing was inserted anywhere.
    pub fn field_some<A: Insert<V>, V>(
        self,
        agg: &mut A,
        value: Option<V>,
    ) -> crate::Result<InsertAll<(P, Pending<'_, A, V>)>> {
        if let Some(v) = &value {
            agg.check_insert(v)?;
        }
        Ok(InsertAll((self.0, Pending { agg, value })))
    }

    /// Inserts every value, in the order they were added.
    ///
    /// # Errors
    ///
    /// Only if an aggregate breaks the [`Insert`] contract (refuses a value its `check_insert`
    /// accepted).
    pub fn insert(self) -> crate::Result<()> {
        self.0.insert_all()
    }
}

/// One checked insert waiting in an [`InsertAll`].
#[derive(Debug)]
pub struct Pending<'a, A, V> {
    agg: &'a mut A,
    value: Option<V>,
}

/// The checked inserts an [`InsertAll`] holds: `()` or `(earlier, Pending)`. Implemented by
/// the crate only; you never name it.
pub trait PendingInserts {
    /// Inserts every value, earliest first.
    ///
    /// # Errors
    ///
    /// As [`InsertAll::insert`].
    fn insert_all(self) -> crate::Result<()>;
}

impl PendingInserts for () {
    fn insert_all(self) -> crate::Result<()> {
        Ok(())
    }
}

impl<P: PendingInserts, A: Insert<V>, V> PendingInserts for (P, Pending<'_, A, V>) {
    fn insert_all(self) -> crate::Result<()> {
        let (earlier, last) = self;
        earlier.insert_all()?;
        match last.value {
            Some(v) => last.agg.insert(v),
            None => Ok(()),
        }
    }
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
