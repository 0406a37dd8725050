//! [`TopK`]: a mergeable heavy-hitters (frequent items) sketch with a proven error bound.
//!
//! # Algorithm
//!
//! The Misra–Gries summary (J. Misra and D. Gries, "Finding repeated elements", 1982) in the
//! mergeable form of Agarwal, Cormode, Huang, Phillips, Wei and Yi, "Mergeable Summaries"
//! (PODS 2012, §3). A sketch of parameter `k` holds at most `k` counters `item → count`, and the
//! exact total weight `n` of everything inserted.
//!
//! * **Merge**: add the two counter sets item-wise (at most `2k` counters), then, if more than
//!   `k` remain, take the `(k+1)`-th largest counter value `c`, subtract `c` from every counter
//!   and drop those left at zero or below. At most `k` counters remain.
//! * **Insert** of `item` with weight `w` is a merge with the one-counter sketch `{item: w}`:
//!   add to the item's counter if present, else take a free counter, else subtract
//!   `c = min(w, smallest counter)` from all counters and keep `item` with `w − c` if positive.
//!   With unit weights this is the classic Misra–Gries step (decrement all when full).
//!
//! The reduction subtracts one *value* from all counters and drops every counter at or below
//! it, so ties need no item order: `a ⊔ b` and `b ⊔ a` are the same state, bit for bit, and
//! the encoding lists counters sorted by item, so equal states are equal bytes. Which counters
//! survive depends on the grouping of merges, within the bound below.
//!
//! # Error bound
//!
//! For every item with true count `c` (total weight inserted for it, over every part merged in
//! any order and any tree), the estimate `ĉ` ([`TopK::estimate`], 0 for an item without a
//! counter) satisfies
//!
//! ```text
//! c − (n − Σ)/(k+1)  ≤  ĉ  ≤  c,        (n − Σ)/(k+1) ≤ n/(k+1)
//! ```
//!
//! where `Σ` is the sum of the counters held ([`TopK::error_bound`] returns `⌊(n − Σ)/(k+1)⌋`).
//! Proof (the paper's): a counter only ever grows by true weight, so `ĉ ≤ c`; an item loses at
//! most `c` at each reduction, and each reduction with cut `c` removes at least `(k+1)·c` from
//! `Σ` (the `k+1` largest counters lose `c` each), so the cuts over the whole merge tree add up
//! to at most `(n − Σ)/(k+1)`, an integer bound because the cuts are integers. Hence every item
//! with `c > n/(k+1)` holds a counter: the sketch never misses a heavy hitter.
//!
//! # Items and weights
//!
//! Items are any `T: Ord + Clone` (the codec also needs `Serialize + DeserializeOwned`):
//! `String` (the default), `u64`, tuples, … They are encoded with postcard. Insert an item
//! ([`Insert<T>`], and `&str` for `TopK<String>`) or an item with a weight
//! ([`Insert<(T, u64)>`](Insert)); a weight of 0 changes nothing. The total `n` is checked: an
//! insert or merge that would take it past `u64::MAX` is [`Error::Overflow`] and changes
//! nothing (counters never exceed `n`, so they cannot overflow either).

mod wire;

use core::borrow::Borrow;
use std::collections::BTreeMap;

use crate::error::{Error, Result};
use crate::merge::{Insert, Merge};

/// A mergeable Misra–Gries heavy-hitters sketch (see the [module docs](self)).
///
/// ```
/// use shardfold::{Insert, Merge, TopK};
/// let (mut a, mut b) = (TopK::<String>::new(2), TopK::new(2));
/// for word in ["x", "y", "x", "z", "x"] {
///     a.insert(word)?;
/// }
/// b.insert(("y".to_string(), 3))?; // weighted
/// a.merge(&b)?;
/// assert_eq!(a.total(), 8);
/// assert_eq!(a.top(1), vec![("y".to_string(), 3)]); // true counts: y 4, x 3
/// assert!(a.estimate("x") + a.error_bound() >= 3); // x: 2, within ⌊(8 − 5)/3⌋ = 1
/// # Ok::<(), shardfold::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopK<T = String> {
    k: u32,
    n: u64,
    counters: BTreeMap<T, u64>,
}

impl<T: Ord + Clone> TopK<T> {
    /// The largest number of counters: 65 536.
    pub const MAX_K: u32 = 1 << 16;
    /// The number of counters of [`TopK::default`]: 64 (every item above 1/65 of the total
    /// weight is found).
    pub const DEFAULT_K: u32 = 64;

    /// An empty sketch of at most `k` counters.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidParameter`] unless `1 ≤ k ≤` [`MAX_K`](Self::MAX_K).
    ///
    /// # Examples
    ///
    /// ```
    /// use shardfold::TopK;
    /// assert_eq!(TopK::<u64>::try_new(100)?.k(), 100);
    /// assert!(TopK::<u64>::try_new(0).is_err());
    /// # Ok::<(), shardfold::Error>(())
    /// ```
    pub fn try_new(k: u32) -> Result<Self> {
        if !(1..=Self::MAX_K).contains(&k) {
            return Err(Error::InvalidParameter {
                name: "k",
                reason: format!("{k} is outside 1..={}", Self::MAX_K),
            });
        }
        Ok(TopK {
            k,
            n: 0,
            counters: BTreeMap::new(),
        })
    }

    /// An empty sketch of at most `k` counters.
    ///
    /// # Panics
    ///
    /// If `k` is 0 or above [`MAX_K`](Self::MAX_K); use [`try_new`](Self::try_new) for a
    /// checked constructor.
    ///
    /// # Examples
    ///
    /// ```
    /// let t = shardfold::TopK::<String>::new(16);
    /// assert_eq!((t.k(), t.total()), (16, 0));
    /// ```
    pub fn new(k: u32) -> Self {
        match Self::try_new(k) {
            Ok(t) => t,
            Err(e) => panic!("TopK::new: {e}"),
        }
    }

    /// The parameter `k`: the most counters the sketch holds.
    pub fn k(&self) -> u32 {
        self.k
    }

    /// The exact total weight inserted (`n`), over every merged part.
    pub fn total(&self) -> u64 {
        self.n
    }

    /// The number of counters held (at most `k`).
    pub fn len(&self) -> usize {
        self.counters.len()
    }

    /// Whether no counter is held (nothing inserted, or everything cancelled out).
    pub fn is_empty(&self) -> bool {
        self.counters.is_empty()
    }

    /// The lower bound on `item`'s true count: its counter, or 0. The true count is at most
    /// [`error_bound`](Self::error_bound) above it.
    pub fn estimate<Q: Ord + ?Sized>(&self, item: &Q) -> u64
    where
        T: Borrow<Q>,
    {
        self.counters.get(item).copied().unwrap_or(0)
    }

    /// The upper bound on `item`'s true count: [`estimate`](Self::estimate) plus
    /// [`error_bound`](Self::error_bound), at most [`total`](Self::total).
    pub fn upper_bound<Q: Ord + ?Sized>(&self, item: &Q) -> u64
    where
        T: Borrow<Q>,
    {
        self.estimate(item)
            .saturating_add(self.error_bound())
            .min(self.n)
    }

    /// The largest undercount of any item: `⌊(n − Σ)/(k+1)⌋`, where `Σ` is the sum of the
    /// counters; never more than `n/(k+1)`. 0 while no counter was ever dropped (the counts
    /// are exact).
    pub fn error_bound(&self) -> u64 {
        self.n.saturating_sub(self.held()) / (u64::from(self.k) + 1)
    }

    /// The `m` items with the largest estimates, with their estimates, sorted by estimate
    /// (largest first), then by item (smallest first).
    pub fn top(&self, m: usize) -> Vec<(T, u64)> {
        let mut all: Vec<(&T, u64)> = self.iter().collect();
        all.sort_unstable_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
        all.into_iter()
            .take(m)
            .map(|(t, c)| (t.clone(), c))
            .collect()
    }

    /// The counters `(item, estimate)`, sorted by item.
    pub fn iter(&self) -> impl Iterator<Item = (&T, u64)> + '_ {
        self.counters.iter().map(|(t, &c)| (t, c))
    }

    /// The sum of the counters (at most `n`).
    fn held(&self) -> u64 {
        self.counters
            .values()
            .fold(0u64, |sum, &c| sum.saturating_add(c))
    }

    /// Refuses a weight that would take the total past `u64::MAX`.
    fn check_weight(&self, w: u64) -> Result<()> {
        match self.n.checked_add(w) {
            Some(_) => Ok(()),
            None => Err(Error::Overflow { what: "TopK total" }),
        }
    }

    /// Folds `item` with weight `w` (already checked): a merge with the sketch `{item: w}`.
    fn add(&mut self, item: T, w: u64) {
        if w == 0 {
            return;
        }
        self.n = self.n.saturating_add(w);
        if let Some(c) = self.counters.get_mut(&item) {
            *c = c.saturating_add(w); // c ≤ n: never saturates
        } else if self.counters.len() < self.k as usize {
            self.counters.insert(item, w);
        } else {
            // the (k+1)-th largest of the k counters and w is the smallest of them
            let cut = match w {
                1 => 1,
                _ => self.counters.values().copied().fold(w, u64::min),
            };
            self.subtract(cut);
            if w > cut {
                self.counters.insert(item, w - cut);
            }
        }
    }

    /// Subtracts `cut` from every counter, dropping those that reach zero.
    fn subtract(&mut self, cut: u64) {
        self.counters.retain(|_, c| {
            *c = c.saturating_sub(cut);
            *c > 0
        });
    }

    /// Back to at most `k` counters: subtracts the `(k+1)`-th largest counter from all.
    fn reduce(&mut self) {
        let k = self.k as usize;
        if self.counters.len() <= k {
            return;
        }
        let mut values: Vec<u64> = self.counters.values().copied().collect();
        let (_, &mut cut, _) = values.select_nth_unstable_by(k, |a, b| b.cmp(a));
        self.subtract(cut);
    }
}

impl<T: Ord + Clone> Default for TopK<T> {
    /// An empty sketch of [`DEFAULT_K`](Self::DEFAULT_K) = 64 counters.
    fn default() -> Self {
        TopK::new(Self::DEFAULT_K)
    }
}

/// One occurrence of an item (weight 1). Fails only when the total would overflow.
impl<T: Ord + Clone> Insert<T> for TopK<T> {
    fn check_insert(&self, _item: &T) -> Result<()> {
        self.check_weight(1)
    }

    fn insert_unchecked(&mut self, item: T) -> Result<()> {
        self.add(item, 1); // total checked by check_insert
        Ok(())
    }
}

/// An item with a weight (its number of occurrences); weight 0 changes nothing.
impl<T: Ord + Clone> Insert<(T, u64)> for TopK<T> {
    fn check_insert(&self, value: &(T, u64)) -> Result<()> {
        self.check_weight(value.1)
    }

    fn insert_unchecked(&mut self, (item, w): (T, u64)) -> Result<()> {
        self.add(item, w); // total checked by check_insert
        Ok(())
    }
}

/// A string slice, stored as a `String` (allocated only when the item needs a new counter).
impl Insert<&str> for TopK<String> {
    fn check_insert(&self, _item: &&str) -> Result<()> {
        self.check_weight(1)
    }

    fn insert_unchecked(&mut self, item: &str) -> Result<()> {
        match self.counters.get_mut(item) {
            Some(c) => {
                self.n = self.n.saturating_add(1); // checked by check_insert
                *c = c.saturating_add(1);
            }
            None => self.add(item.to_owned(), 1),
        }
        Ok(())
    }
}

impl<T: Ord + Clone> Merge for TopK<T> {
    fn check_merge(&self, other: &Self) -> Result<()> {
        if self.k != other.k {
            return Err(Error::incompatible("TopK k", self.k, other.k));
        }
        self.check_weight(other.n)
    }

    /// Adds counters item-wise, then subtracts the `(k+1)`-th largest (see the
    /// [module docs](self)). Called by the provided [`merge`](Merge::merge):
    ///
    /// ```
    /// use shardfold::{Insert, Merge, TopK};
    /// let (mut a, mut b) = (TopK::<u64>::new(1), TopK::new(1));
    /// a.insert((7, 5))?;
    /// b.insert((8, 2))?;
    /// a.merge(&b)?; // {7: 5, 8: 2}: the 2nd largest, 2, is subtracted from both
    /// assert_eq!((a.estimate(&7), a.estimate(&8), a.error_bound()), (3, 0, 2));
    /// assert!(a.merge(&TopK::new(2)).is_err()); // different k: refused, a unchanged
    /// assert_eq!(a.total(), 7);
    /// # Ok::<(), shardfold::Error>(())
    /// ```
    fn merge_unchecked(&mut self, other: &Self) -> Result<()> {
        self.n = self.n.saturating_add(other.n); // checked by check_merge
        for (item, &c) in &other.counters {
            match self.counters.get_mut(item) {
                Some(mine) => *mine = mine.saturating_add(c),
                None => {
                    self.counters.insert(item.clone(), c);
                }
            }
        }
        self.reduce();
        Ok(())
    }
}
