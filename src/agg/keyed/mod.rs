//! [`Keyed`]: group-by — one aggregate per key (route, customer, region), merged key by key.
//!
//! # Bound on keys, and what happens beyond it
//!
//! A state holds at most `max_keys` keys ([`DEFAULT_MAX_KEYS`] unless set, at most
//! [`MAX_KEYS`]). Beyond that, values are not refused — an event source cannot fix its own
//! cardinality, and a refused event would come back forever — they go to one **overflow
//! bucket**, [`Keyed::other`], like Prometheus' `other` series or a `GROUP BY … WITH TOTALS`:
//! totals stay exact, only the per-key breakdown of the rarest-kept keys is folded together.
//!
//! *Which* keys are kept must not depend on the order or grouping in which values and states
//! arrive, or merging would not be associative. The rule is a **bottom-k sample by stable hash**:
//! the kept keys are the `max_keys` keys with the smallest `(hash(key), key)`, where `hash` is
//! the crate's stable hash ([`crate::hash`]) of the key's canonical (postcard) bytes; every other
//! key's values are in the overflow bucket. That set is a function of the keys seen, so a state
//! is the same whatever the order, grouping or number of parts it was folded from — the merge
//! laws hold, and the kept keys are a uniform sample of the keys, not the alphabetically first.
//! Keys are usually far fewer than the bound: then no key is ever folded into `other`.
//!
//! # Keys
//!
//! Any `K: Ord + Clone + Serialize + DeserializeOwned` whose postcard bytes are canonical:
//! strings, integers, `bool`, and tuples of them (`(String, u16)`). A key's encoding may be at
//! most [`MAX_KEY_BYTES`]; a longer key is refused at insert with a typed error. Keys are stored
//! in key order, so equal states encode to equal bytes.

mod codec;

use std::borrow::Borrow;
use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::codec::{Codec, write_postcard};
use crate::error::{Error, Result};
use crate::hash::hash_bytes;
use crate::merge::{Insert, Merge, after_check};

/// The default bound on keys per state.
pub const DEFAULT_MAX_KEYS: u32 = 16_384;

/// The largest bound on keys a state may have (also when decoding untrusted bytes).
pub const MAX_KEYS: u32 = 1 << 20;

/// The longest key, in bytes of its canonical (postcard) encoding.
pub const MAX_KEY_BYTES: usize = 1024;

/// What a group-by key must be: ordered, cloneable, with canonical bytes (see the
/// [module docs](self)).
pub trait Key: Ord + Clone + Serialize + DeserializeOwned {}
impl<T: Ord + Clone + Serialize + DeserializeOwned> Key for T {}

/// One aggregate `A` per key `K`, with an overflow bucket beyond a bound on keys (see the
/// [module docs](self)). Fed with `(key, value)` pairs; merges key by key.
///
/// ```
/// use shardfold::{Count, Insert, Keyed, Merge, Quantiles, Zip};
/// // per route: requests and latency
/// type Route = Zip<(Count, Quantiles)>;
/// let mut a = Keyed::<String, Route>::default();
/// let mut b = a.clone();
/// a.insert(("/cart".to_string(), ((), 12.0)))?;
/// a.insert(("/pay".to_string(), ((), 80.0)))?;
/// b.insert(("/cart".to_string(), ((), 15.0)))?;
/// a.merge(&b)?;
/// assert_eq!(a.get("/cart").map(|r| r.0.0.get()), Some(2));
/// let busiest = a.top_by(1, |r| r.0.0.get());
/// assert_eq!(busiest[0].0, "/cart");
/// # Ok::<(), shardfold::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Keyed<K: Key, A> {
    max_keys: u32,
    template: A,
    groups: BTreeMap<K, A>,
    /// `(hash, key)` of every kept key: its last element is the first to leave when full.
    rank: BTreeSet<(u64, K)>,
    other: Option<A>,
}

impl<K: Key, A: Default> Default for Keyed<K, A> {
    fn default() -> Self {
        Keyed::blank(DEFAULT_MAX_KEYS, A::default())
    }
}

/// The stable hash of a key's canonical bytes, or the typed error for an oversized key.
fn key_hash<K: Serialize>(key: &K) -> Result<u64> {
    let mut bytes = Vec::with_capacity(32);
    write_postcard(key, &mut bytes);
    if bytes.len() > MAX_KEY_BYTES {
        return Err(Error::InvalidValue {
            reason: "group-by key longer than MAX_KEY_BYTES (1024) bytes",
        });
    }
    Ok(hash_bytes(&bytes))
}

fn check_max_keys(max_keys: u32) -> Result<()> {
    if max_keys == 0 || max_keys > MAX_KEYS {
        return Err(Error::InvalidParameter {
            name: "max_keys",
            reason: format!("must be in 1..={MAX_KEYS}, got {max_keys}"),
        });
    }
    Ok(())
}

impl<K: Key, A> Keyed<K, A> {
    fn blank(max_keys: u32, template: A) -> Self {
        Keyed {
            max_keys,
            template,
            groups: BTreeMap::new(),
            rank: BTreeSet::new(),
            other: None,
        }
    }

    /// An empty state keeping at most `max_keys` keys, each key's aggregate starting as a
    /// clone of `template` (an empty aggregate with the parameters wanted).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidParameter`] when `max_keys` is 0 or above [`MAX_KEYS`].
    pub fn with_template(max_keys: u32, template: A) -> Result<Self> {
        check_max_keys(max_keys)?;
        Ok(Self::blank(max_keys, template))
    }

    /// As [`Keyed::with_template`] with `A::default()`.
    ///
    /// # Errors
    ///
    /// As [`Keyed::with_template`].
    pub fn with_max_keys(max_keys: u32) -> Result<Self>
    where
        A: Default,
    {
        Self::with_template(max_keys, A::default())
    }

    /// The bound on keys.
    pub fn max_keys(&self) -> u32 {
        self.max_keys
    }

    /// The aggregate every key starts from.
    pub fn template(&self) -> &A {
        &self.template
    }

    /// The aggregate of `key`, if the state holds it.
    pub fn get<Q>(&self, key: &Q) -> Option<&A>
    where
        K: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        self.groups.get(key)
    }

    /// Every kept key and its aggregate, in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&K, &A)> {
        self.groups.iter()
    }

    /// How many keys are kept.
    pub fn len(&self) -> usize {
        self.groups.len()
    }

    /// Whether no key is kept (and nothing overflowed).
    pub fn is_empty(&self) -> bool {
        self.groups.is_empty() && self.other.is_none()
    }

    /// The overflow bucket: the values of every key beyond the bound, folded together
    /// (`None` while no key overflowed).
    pub fn other(&self) -> Option<&A> {
        self.other.as_ref()
    }

    /// The `n` keys with the largest `score` (ties: smaller key first), descending.
    ///
    /// `score` reads any field: a count, a sum, a quantile. Scores that do not compare
    /// (NaN) rank as equal.
    pub fn top_by<S: PartialOrd>(&self, n: usize, score: impl Fn(&A) -> S) -> Vec<(&K, &A)> {
        let mut all: Vec<(S, &K, &A)> = self.groups.iter().map(|(k, a)| (score(a), k, a)).collect();
        all.sort_by(|x, y| {
            y.0.partial_cmp(&x.0)
                .unwrap_or(std::cmp::Ordering::Equal)
                .then_with(|| x.1.cmp(y.1))
        });
        all.into_iter().take(n).map(|(_, k, a)| (k, a)).collect()
    }

    /// The merge of every key's aggregate and the overflow bucket: the ungrouped total.
    ///
    /// # Errors
    ///
    /// A merge error of `A` (an exact accumulator overflowing).
    pub fn total(&self) -> Result<A>
    where
        A: Merge + Clone,
    {
        let mut total = self.template.clone();
        for a in self.groups.values().chain(&self.other) {
            total.merge(a)?;
        }
        Ok(total)
    }

    /// The key that leaves first when a smaller-ranked key arrives at a full state.
    fn last_kept(&self) -> Option<&(u64, K)> {
        self.rank.last()
    }

    fn enter(&mut self, h: u64, key: K, a: A) {
        self.rank.insert((h, key.clone()));
        self.groups.insert(key, a);
    }

    fn is_full(&self) -> bool {
        self.groups.len() >= self.max_keys as usize
    }
}

/// Where a value for a key goes.
enum Place<K> {
    /// The key is kept: fold into its aggregate.
    Kept,
    /// A new key with room: a fresh aggregate.
    New(u64),
    /// A new key (hash) ranked before the last kept one (hash, key) at a full state: it
    /// enters, that one moves to `other`.
    Displace(u64, u64, K),
    /// The overflow bucket.
    Other,
}

impl<K: Key, A: Merge + Clone> Keyed<K, A> {
    fn place(&self, key: &K) -> Result<Place<K>> {
        if self.groups.contains_key(key) {
            return Ok(Place::Kept);
        }
        let h = key_hash(key)?;
        if !self.is_full() {
            return Ok(Place::New(h));
        }
        match self.last_kept() {
            Some((lh, lk)) if (h, key) < (*lh, lk) => Ok(Place::Displace(h, *lh, lk.clone())),
            _ => Ok(Place::Other),
        }
    }

    /// Checks that the aggregate of `leaving` can be folded into the overflow bucket.
    fn check_evict(&self, leaving: &K) -> Result<()> {
        match (self.groups.get(leaving), &self.other) {
            (Some(a), Some(o)) => o.check_merge(a),
            (Some(_), None) => Ok(()),
            (None, _) => Err(Error::internal("group-by: evicting a key not held")),
        }
    }

    /// Moves `leaving`'s aggregate into the overflow bucket (checked by `check_evict`).
    fn evict(&mut self, h: u64, leaving: &K) -> Result<()> {
        let Some(a) = self.groups.remove(leaving) else {
            return Err(Error::internal("group-by: evicting a key not held"));
        };
        self.rank.remove(&(h, leaving.clone()));
        match &mut self.other {
            Some(o) => o.merge(&a)?,
            None => self.other = Some(a),
        }
        Ok(())
    }

    /// Merges `a` (the aggregate of `key` on another side) into `self`, evicting as needed.
    fn absorb(&mut self, key: &K, a: &A) -> Result<()> {
        match self.place(key)? {
            Place::Kept => match self.groups.get_mut(key) {
                Some(mine) => mine.merge(a)?,
                None => return Err(Error::internal("group-by: kept key not held")),
            },
            Place::New(h) => self.enter(h, key.clone(), a.clone()),
            Place::Displace(h, lh, leaving) => {
                self.evict(lh, &leaving)?;
                self.enter(h, key.clone(), a.clone());
            }
            Place::Other => match &mut self.other {
                Some(o) => o.merge(a)?,
                None => self.other = Some(a.clone()),
            },
        }
        Ok(())
    }

    fn check_same_params(&self, other: &Self) -> Result<()>
    where
        A: Codec,
    {
        if self.max_keys != other.max_keys {
            return Err(Error::incompatible(
                "group-by max_keys",
                self.max_keys,
                other.max_keys,
            ));
        }
        let (mut mine, mut theirs) = (Vec::new(), Vec::new());
        self.template.write_params(&mut mine);
        other.template.write_params(&mut theirs);
        if mine != theirs {
            return Err(Error::incompatible(
                "group-by aggregate parameters",
                format!("{mine:02x?}"),
                format!("{theirs:02x?}"),
            ));
        }
        Ok(())
    }

    /// `self ⊔ other`, computed on a copy so that `self` is untouched on error.
    fn merged(&self, other: &Self) -> Result<Self>
    where
        A: Codec,
    {
        self.check_same_params(other)?;
        let mut next = self.clone();
        for (k, a) in &other.groups {
            next.absorb(k, a)?;
        }
        if let Some(o) = &other.other {
            match &mut next.other {
                Some(mine) => mine.merge(o)?,
                None => next.other = Some(o.clone()),
            }
        }
        Ok(next)
    }
}

/// Merges key by key; keys beyond the bound move to the overflow bucket (see the
/// [module docs](self)). Which keys are evicted, and whether folding them into the overflow
/// bucket overflows, is known only by doing the merge: `check_merge` does it on a copy, and
/// `merge` (overridden) computes the merged copy once and swaps it in on success, so on error
/// `self` is unchanged.
impl<K: Key, A: Merge + Codec + Clone> Merge for Keyed<K, A> {
    fn check_merge(&self, other: &Self) -> Result<()> {
        self.merged(other).map(drop)
    }

    fn merge_unchecked(&mut self, other: &Self) -> Result<()> {
        match self.merged(other) {
            Ok(next) => *self = next,
            Err(_) => return Err(Error::internal("Keyed: a merge its check accepted failed")),
        }
        Ok(())
    }

    /// Copy-and-swap: [`check_merge`](Merge::check_merge)'s work, done once.
    fn merge(&mut self, other: &Self) -> Result<()> {
        *self = self.merged(other)?;
        Ok(())
    }
}

/// Folds `value` into the aggregate of `key` (or the overflow bucket).
impl<K: Key, V, A: Insert<V> + Merge + Clone> Insert<(K, V)> for Keyed<K, A> {
    fn check_insert(&self, (key, value): &(K, V)) -> Result<()> {
        if let Some(a) = self.groups.get(key) {
            return a.check_insert(value);
        }
        match self.place(key)? {
            Place::Kept => Err(Error::internal("group-by: kept key not held")),
            Place::New(_) => self.template.check_insert(value),
            Place::Displace(_, _, leaving) => {
                self.check_evict(&leaving)?;
                self.template.check_insert(value)
            }
            Place::Other => self
                .other
                .as_ref()
                .unwrap_or(&self.template)
                .check_insert(value),
        }
    }

    fn insert_unchecked(&mut self, (key, value): (K, V)) -> Result<()> {
        if let Some(a) = self.groups.get_mut(&key) {
            return a.insert_unchecked(value);
        }
        let fresh = |t: &A, value| {
            let mut a = t.clone();
            a.insert_unchecked(value).map(|()| a)
        };
        match after_check(self.place(&key), "group-by: a checked key failed to hash")? {
            Place::Kept => Err(Error::internal("group-by: kept key not held")),
            Place::New(h) => {
                let a = fresh(&self.template, value)?;
                self.enter(h, key, a);
                Ok(())
            }
            Place::Displace(h, lh, leaving) => {
                let a = fresh(&self.template, value)?;
                after_check(
                    self.evict(lh, &leaving),
                    "group-by: a checked eviction failed",
                )?;
                self.enter(h, key, a);
                Ok(())
            }
            Place::Other => match &mut self.other {
                Some(o) => o.insert_unchecked(value),
                None => {
                    self.other = Some(fresh(&self.template, value)?);
                    Ok(())
                }
            },
        }
    }
}
