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
//! A merge never half-happens, by construction: an implementation writes two halves,
//! [`Merge::check_merge`] (validate everything that can fail — parameters, overflow, overlap —
//! changing nothing) and [`Merge::merge_unchecked`] (mutate, assuming the check passed), and
//! the provided [`Merge::merge`] runs the first, then the second. A failed merge therefore
//! leaves `self` untouched without any `merge` repeating "check, then mutate" by hand.
//! [`Insert`] is built the same way: [`Insert::check_insert`], [`Insert::insert_unchecked`],
//! and the provided [`Insert::insert`].
//!
//! # Writing an implementation
//!
//! * `check_*` returns every error the operation can have and changes nothing.
//! * `*_unchecked` may assume `check_*` just passed for the same arguments and state. It
//!   returns `Result` only for impossible branches: it may fail **only** with
//!   [`Error::Internal`](crate::Error::Internal) (an invariant the check relies on did not
//!   hold — a bug; `self` may then be partly changed). A composite's `*_unchecked` calls its
//!   parts' `*_unchecked`, which keeps that true by induction; counters it owns are added
//!   without a second overflow check (the check covered them).
//! * A type whose check needs the work itself (group-by eviction,
//!   [`Keyed`](crate::Keyed)) computes on a copy in `check_*`; its `*_unchecked` may redo
//!   the work.
//! * Calling `*_unchecked` without the check is not undefined behaviour (the crate has no
//!   `unsafe`) but may give a wrong state, [`Error::Internal`](crate::Error::Internal), or a
//!   debug-build panic. Callers call `merge` / `insert`.
//! * `merge` and `insert` are overridden only to avoid doing the check's work twice, and then
//!   only by a construction that keeps the guarantee: [`Keyed`](crate::Keyed)'s `merge`
//!   computes the merged state on a copy and swaps it in on success; an `insert` through
//!   [`InsertAll`] checks every field before changing any, computing each field's value once
//!   (the `insert` that `#[derive(Aggregate)]` writes). Nothing else in the crate overrides
//!   them.

use crate::error::MergeError;

/// A value that can absorb another value of its type.
///
/// Implement [`check_merge`](Merge::check_merge) and [`merge_unchecked`](Merge::merge_unchecked);
/// call [`merge`](Merge::merge). See [writing an implementation](self#writing-an-implementation).
///
/// # Contract
///
/// * `check_merge(other)` returns `Ok` exactly when `merge(other)` would succeed; it changes
///   nothing.
/// * `merge_unchecked(other)`, called after `check_merge(other)` passed, merges; it fails only
///   with [`Error::Internal`](crate::Error::Internal).
/// * Hence `merge(other)` either succeeds, or returns the error `check_merge` returned and
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
///
/// Implementing it for a struct of aggregates by hand (`#[derive(Aggregate)]`, feature
/// `derive`, writes the same):
///
/// ```
/// use shardfold::{Count, Distinct, Merge, Result};
///
/// #[derive(Default)]
/// struct Visits { hits: Count, visitors: Distinct }
///
/// impl Merge for Visits {
///     fn check_merge(&self, other: &Self) -> Result<()> {
///         self.hits.check_merge(&other.hits)?;
///         self.visitors.check_merge(&other.visitors)
///     }
///
///     fn merge_unchecked(&mut self, other: &Self) -> Result<()> {
///         self.hits.merge_unchecked(&other.hits)?;
///         self.visitors.merge_unchecked(&other.visitors)
///     }
/// }
///
/// let mut a = Visits::default();
/// let b = Visits { hits: Count::default(), visitors: Distinct::new(12) };
/// assert!(a.merge(&b).is_err()); // precisions differ: refused, nothing merged
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

    /// Merges `other` into `self`, assuming [`check_merge`](Merge::check_merge) just passed
    /// for them. Call [`merge`](Merge::merge) instead, unless you are implementing `Merge` for
    /// a type made of parts whose checks you already ran.
    ///
    /// # Errors
    ///
    /// Only [`Error::Internal`](crate::Error::Internal), when an invariant the check relies on
    /// did not hold (a bug); `self` may then be partly merged.
    fn merge_unchecked(&mut self, other: &Self) -> Result<(), MergeError>;

    /// Merges `other` into `self`: [`check_merge`](Merge::check_merge), then
    /// [`merge_unchecked`](Merge::merge_unchecked).
    ///
    /// # Errors
    ///
    /// As [`check_merge`](Merge::check_merge); on error `self` is unchanged.
    #[inline]
    fn merge(&mut self, other: &Self) -> Result<(), MergeError> {
        self.check_merge(other)?;
        self.merge_unchecked(other)
    }
}

/// Folding one value of type `V` into an aggregate.
///
/// Implement [`check_insert`](Insert::check_insert) and
/// [`insert_unchecked`](Insert::insert_unchecked); call [`insert`](Insert::insert), which
/// either folds the value or returns an error and changes nothing. Composite aggregates (tuples,
/// [`Stats`](crate::Stats)) call `check_insert` on every part, then `insert_unchecked` on
/// each. See [writing an implementation](self#writing-an-implementation).
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
    /// [`Error::InvalidValue`](crate::Error::InvalidValue) for values the aggregate refuses
    /// (NaN, ±inf where meaningless), [`Error::Overflow`](crate::Error::Overflow) when an exact
    /// accumulator is full.
    fn check_insert(&self, value: &V) -> crate::Result<()>;

    /// Folds `value`, assuming [`check_insert`](Insert::check_insert) just passed for it. Call
    /// [`insert`](Insert::insert) instead, unless you are implementing `Insert` for a type made
    /// of parts whose checks you already ran.
    ///
    /// # Errors
    ///
    /// Only [`Error::Internal`](crate::Error::Internal), when an invariant the check relies on
    /// did not hold (a bug); the aggregate may then be partly changed.
    fn insert_unchecked(&mut self, value: V) -> crate::Result<()>;

    /// Folds `value` into the aggregate: [`check_insert`](Insert::check_insert), then
    /// [`insert_unchecked`](Insert::insert_unchecked).
    ///
    /// # Errors
    ///
    /// As [`check_insert`](Insert::check_insert). On error nothing changed.
    #[inline]
    fn insert(&mut self, value: V) -> crate::Result<()> {
        self.check_insert(&value)?;
        self.insert_unchecked(value)
    }
}

/// Folds one value into each of several aggregates, all or nothing: every value is checked
/// ([`Insert::check_insert`]) as it is added, and nothing is inserted until
/// [`insert`](InsertAll::insert) (then with [`Insert::insert_unchecked`]), so a value refused
/// by one aggregate leaves all of them unchanged.
///
/// It is the one way to override [`Insert::insert`] for a struct of aggregates and keep its
/// guarantee: each field's value is computed once (the provided `insert` computes it in
/// `check_insert` and again in `insert_unchecked`), without allocating. The `insert` that
/// `#[derive(Aggregate)]` writes (feature `derive`) is this.
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
///         if r.is_error {
///             self.errors.check_insert(&())?;
///         }
///         self.latency.check_insert(&r.latency_ms)
///     }
///
///     fn insert_unchecked(&mut self, r: Request) -> Result<()> {
///         self.requests.insert_unchecked(())?;
///         if r.is_error {
///             self.errors.insert_unchecked(())?;
///         }
///         self.latency.insert_unchecked(r.latency_ms)
///     }
///
///     // optional: checks and inserts in one pass, each value computed once
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

    /// Inserts every value ([`Insert::insert_unchecked`]: each was checked when added), in the
    /// order they were added.
    ///
    /// # Errors
    ///
    /// Only [`Error::Internal`](crate::Error::Internal), if an aggregate breaks the [`Insert`]
    /// contract.
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
            Some(v) => last.agg.insert_unchecked(v),
            None => Ok(()),
        }
    }
}

/// The result of a checked operation inside a `*_unchecked` whose check already covered it:
/// an error there is a broken invariant, [`Error::Internal`](crate::Error::Internal) (a panic in
/// debug builds) naming `reason`.
#[inline]
pub(crate) fn after_check<T>(r: crate::Result<T>, reason: &'static str) -> crate::Result<T> {
    r.map_err(|_| crate::Error::internal(reason))
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
