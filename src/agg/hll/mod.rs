//! [`Distinct`]: a HyperLogLog distinct-count sketch, sparse while small, dense above.
//!
//! # Algorithm
//!
//! Every value is hashed with the crate's stable hash ([`crate::hash`], xxh3-64 with a fixed
//! seed), so sketches written by any process, platform or crate version merge. For precision
//! `p` (4 ..= 18, default 14) there are `m = 2^p` registers: the top `p` bits of a hash choose
//! a register, and the register keeps the maximum *rank* seen, the position of the first one
//! bit among the remaining `64 − p` bits (HyperLogLog, Flajolet, Fusy, Gandouet and Meunier,
//! "HyperLogLog: the analysis of a near-optimal cardinality estimation algorithm", AofA 2007).
//!
//! * **Sparse** (HLL++, Heule, Nunkesser and Hall, "HyperLogLog in practice", EDBT 2013): while
//!   few values are present the sketch keeps the set of occupied *slots* at the finer
//!   precision `p' = 20` (plus the rank after the slot where the dense rank needs it), and
//!   estimates by linear counting over `2^20` slots: near-exact (relative standard error at
//!   most 0.07 % up to the conversion point, and exact in practice for tens of values). It
//!   converts to dense automatically once it would be larger than the dense registers, that is
//!   beyond `2^p / 4` entries (4 096 at `p = 14`).
//! * **Dense**: `2^p` one-byte registers. Merge is a byte-wise maximum that compiles to SIMD.
//! * **Estimator**: Ertl's improved raw estimator (O. Ertl, "New cardinality estimation
//!   algorithms for HyperLogLog sketches", 2017, Algorithm 6), computed from the register
//!   histogram. Its `σ`/`τ` corrections remove the small- and large-range bias without
//!   empirical tables, so there is no bias bump anywhere from 1 to 10⁹ and beyond (a raw
//!   estimator shows a 1.35 % bump near 5·10⁴ at `p = 14`). The histogram is updated by every
//!   insert that raises a register and the estimate is cached, so [`Distinct::estimate`] costs
//!   a few nanoseconds (about 0.2 µs after a register changed), not a register scan. A merge
//!   invalidates the histogram, which is rebuilt once at the first query (one 2^p-byte scan,
//!   about 10 µs at `p = 14`): a query that merges `K` shards pays `K` byte-wise maxima and one
//!   scan.
//!
//! # Error bound
//!
//! Dense: relative standard error `≈ 1.04 / √m` — **0.81 % at `p = 14`**, 1.6 % at `p = 12`,
//! 0.41 % at `p = 16`. Sparse: at most 0.07 %. The tests check RMS relative error ≤ 0.89 % at
//! `p = 14` from 10 to 10⁷ distinct values (`tests/hll.rs`).
//!
//! # Merging
//!
//! [`Merge::merge`] is the register maximum (the union of slots between two sparse sketches),
//! for every pair of representations. It is commutative, associative and idempotent, and the
//! result is bit-identical to a sketch built from all the values in one stream (the
//! representation depends only on the set of occupied slots, never on history). Both sketches
//! must have the same precision: a mismatch is [`Error::IncompatibleParams`]. To combine
//! different precisions, [`Distinct::merge_coarsening`] folds the finer sketch down to the
//! coarser precision first ([`Distinct::downgrade`]); the result equals a sketch built at the
//! coarser precision directly.

mod bits;
mod dense;
mod estimate;
mod sparse;

use core::fmt;

use dense::Dense;
use sparse::Sparse;

use crate::codec::{Codec, Limits, tags};
use crate::error::{Error, Result};
use crate::hash::StableHash;
use crate::merge::{Insert, Merge};

/// A HyperLogLog distinct-count sketch (see the [module docs](self)).
///
/// ```
/// use shardfold::{Distinct, Insert, Merge};
/// let mut a = Distinct::new(14);
/// let mut b = Distinct::default();
/// for i in 0..1000u64 {
///     a.insert(i)?;
///     b.insert(i + 500)?;
/// }
/// a.insert("a string")?;
/// a.merge(&b)?;
/// assert!((a.estimate() - 1501.0).abs() < 10.0);
/// # Ok::<(), shardfold::Error>(())
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Distinct {
    p: u8,
    repr: Repr,
}

#[derive(Clone, PartialEq, Eq)]
enum Repr {
    Sparse(Sparse),
    Dense(Dense),
}

/// Payload tag of the sparse representation.
const KIND_SPARSE: u8 = 0;
/// Payload tag of the dense representation.
const KIND_DENSE: u8 = 1;

impl Distinct {
    /// The smallest precision.
    pub const MIN_PRECISION: u8 = 4;
    /// The largest precision (256 KiB of registers).
    pub const MAX_PRECISION: u8 = 18;
    /// The default precision: 16 KiB of registers in memory, 12 KiB on the wire at most, 0.81 %
    /// relative standard error.
    pub const DEFAULT_PRECISION: u8 = 14;

    /// An empty sketch of precision `p` (`2^p` registers).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidParameter`] unless `p` is in
    /// [`MIN_PRECISION`](Self::MIN_PRECISION)`..=`[`MAX_PRECISION`](Self::MAX_PRECISION).
    ///
    /// # Examples
    ///
    /// ```
    /// use shardfold::Distinct;
    /// assert_eq!(Distinct::try_new(12)?.precision(), 12);
    /// assert!(Distinct::try_new(30).is_err());
    /// # Ok::<(), shardfold::Error>(())
    /// ```
    pub fn try_new(p: u8) -> Result<Self> {
        if !(Self::MIN_PRECISION..=Self::MAX_PRECISION).contains(&p) {
            return Err(Error::InvalidParameter {
                name: "precision",
                reason: format!("{p} is outside 4..=18"),
            });
        }
        Ok(Distinct {
            p,
            repr: Repr::Sparse(Sparse::default()),
        })
    }

    /// An empty sketch of precision `p`.
    ///
    /// # Panics
    ///
    /// If `p` is outside `4..=18`; use [`try_new`](Self::try_new) for a checked constructor.
    ///
    /// # Examples
    ///
    /// ```
    /// let d = shardfold::Distinct::new(16);
    /// assert_eq!(d.count(), 0);
    /// ```
    pub fn new(p: u8) -> Self {
        match Self::try_new(p) {
            Ok(d) => d,
            Err(e) => panic!("Distinct::new: {e}"),
        }
    }

    /// The precision `p`.
    pub fn precision(&self) -> u8 {
        self.p
    }

    /// Whether the sketch is still in its sparse representation.
    pub fn is_sparse(&self) -> bool {
        matches!(self.repr, Repr::Sparse(_))
    }

    /// Folds in a value already hashed with [`crate::hash`] (for example a hash computed once
    /// and used for several sketches). Hashes from any other function do not merge with
    /// sketches built by [`Insert::insert`].
    #[inline]
    pub fn insert_hash(&mut self, hash: u64) {
        match &mut self.repr {
            Repr::Dense(d) => d.insert_hash(self.p, hash),
            Repr::Sparse(_) => self.insert_sparse(hash),
        }
    }

    /// The sparse path, kept out of line so the dense hot path stays a few instructions.
    #[inline(never)]
    fn insert_sparse(&mut self, hash: u64) {
        let p = self.p;
        if let Repr::Sparse(s) = &mut self.repr
            && s.insert_hash(p, hash) > sparse::max_entries(p)
        {
            self.repr = Repr::Dense(s.to_dense(p));
        }
    }

    /// The estimated number of distinct values.
    pub fn estimate(&self) -> f64 {
        match &self.repr {
            Repr::Sparse(s) => s.estimate(),
            Repr::Dense(d) => d.estimate(self.p),
        }
    }

    /// The estimate rounded to the nearest integer.
    pub fn count(&self) -> u64 {
        self.estimate().round() as u64
    }

    /// The same hashes at the coarser precision `p`: equal to a sketch built at `p` directly
    /// from the same values (sparse if that one would be).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidParameter`] when `p` is above this sketch's precision or below 4.
    pub fn downgrade(&self, p: u8) -> Result<Distinct> {
        if !(Self::MIN_PRECISION..=self.p).contains(&p) {
            return Err(Error::InvalidParameter {
                name: "precision",
                reason: format!("cannot fold precision {} to {p}", self.p),
            });
        }
        let repr = match &self.repr {
            Repr::Dense(d) => Repr::Dense(d.downgrade(self.p, p)),
            Repr::Sparse(s) => {
                let s = s.downgrade(p);
                if s.len() > sparse::max_entries(p) {
                    Repr::Dense(s.to_dense(p))
                } else {
                    Repr::Sparse(s)
                }
            }
        };
        Ok(Distinct { p, repr })
    }

    /// Merges sketches of any precisions: the finer one is folded down to the coarser
    /// precision ([`downgrade`](Self::downgrade)) and the two are merged. Afterwards `self` has
    /// the smaller of the two precisions and equals a sketch built at that precision from both
    /// streams. [`Merge::merge`] instead refuses different precisions.
    ///
    /// ```
    /// use shardfold::{Distinct, Insert};
    /// let (mut fine, mut coarse) = (Distinct::new(16), Distinct::new(12));
    /// fine.insert(1u64)?;
    /// coarse.insert(2u64)?;
    /// fine.merge_coarsening(&coarse);
    /// assert_eq!((fine.precision(), fine.count()), (12, 2));
    /// # Ok::<(), shardfold::Error>(())
    /// ```
    pub fn merge_coarsening(&mut self, other: &Distinct) {
        let p = self.p.min(other.p);
        if let Ok(d) = self.downgrade(p) {
            *self = d;
        }
        match other.downgrade(p) {
            Ok(o) => self.merge_same(&o),
            Err(_) => self.merge_same(other),
        }
    }

    /// The merge proper; precisions are equal.
    fn merge_same(&mut self, other: &Distinct) {
        let p = self.p;
        match (&mut self.repr, &other.repr) {
            (Repr::Dense(a), Repr::Dense(b)) => a.max_with(b),
            (Repr::Dense(a), Repr::Sparse(b)) => b.fold_into(p, a),
            (Repr::Sparse(a), Repr::Dense(b)) => {
                let mut d = b.clone();
                a.fold_into(p, &mut d);
                self.repr = Repr::Dense(d);
            }
            (Repr::Sparse(a), Repr::Sparse(b)) => {
                a.union(b);
                if a.len() > sparse::max_entries(p) {
                    self.repr = Repr::Dense(a.to_dense(p));
                }
            }
        }
    }
}

impl Default for Distinct {
    /// An empty sketch at [`DEFAULT_PRECISION`](Self::DEFAULT_PRECISION) (14).
    fn default() -> Self {
        Distinct::new(Self::DEFAULT_PRECISION)
    }
}

impl fmt::Debug for Distinct {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (kind, len) = match &self.repr {
            Repr::Sparse(s) => ("sparse", s.len()),
            Repr::Dense(d) => ("dense", d.registers().iter().filter(|&&r| r > 0).count()),
        };
        f.debug_struct("Distinct")
            .field("precision", &self.p)
            .field("repr", &kind)
            .field("occupied", &len)
            .field("estimate", &self.estimate())
            .finish()
    }
}

/// Any [`StableHash`] value (integers, `&str`, `String`, `&[u8]`, …) is hashed with the stable
/// hash and folded in. Never fails.
impl<V: StableHash> Insert<V> for Distinct {
    #[inline]
    fn check_insert(&self, _value: &V) -> Result<()> {
        Ok(())
    }

    #[inline]
    fn insert_unchecked(&mut self, value: V) -> Result<()> {
        self.insert_hash(value.stable_hash());
        Ok(())
    }
}

impl Merge for Distinct {
    fn check_merge(&self, other: &Self) -> Result<()> {
        if self.p == other.p {
            Ok(())
        } else {
            Err(Error::incompatible("Distinct precision", self.p, other.p))
        }
    }

    /// Register maximum (see the [module docs](self)). Called by the provided
    /// [`merge`](Merge::merge):
    ///
    /// ```
    /// use shardfold::{Distinct, Insert, Merge};
    /// let (mut a, mut b) = (Distinct::default(), Distinct::default());
    /// a.insert("same")?;
    /// b.insert("same")?;
    /// a.merge(&b)?;
    /// assert_eq!(a.count(), 1);
    /// assert!(a.merge(&Distinct::new(12)).is_err());
    /// # Ok::<(), shardfold::Error>(())
    /// ```
    fn merge_unchecked(&mut self, other: &Self) -> Result<()> {
        self.merge_same(other); // same precision: checked by check_merge
        Ok(())
    }
}

/// Parameter block: the precision (1 byte). Payload: a kind byte, then the sparse or dense
/// wire form (see `FORMAT.md`).
impl Codec for Distinct {
    const TYPE_TAG: u16 = tags::DISTINCT;

    fn write_params(&self, out: &mut Vec<u8>) {
        out.push(self.p);
    }

    fn write_payload(&self, out: &mut Vec<u8>) {
        match &self.repr {
            Repr::Sparse(s) => {
                out.push(KIND_SPARSE);
                s.write(out);
            }
            Repr::Dense(d) => {
                out.push(KIND_DENSE);
                d.write(out);
            }
        }
    }

    fn read_parts(params: &[u8], payload: &[u8], _limits: &Limits) -> Result<Self> {
        let p = match params {
            [p] if (Self::MIN_PRECISION..=Self::MAX_PRECISION).contains(p) => *p,
            _ => {
                return Err(Error::invalid_state(
                    "Distinct precision missing or out of range",
                ));
            }
        };
        let repr = match payload.split_first() {
            Some((&KIND_SPARSE, rest)) => Repr::Sparse(Sparse::read(p, rest)?),
            Some((&KIND_DENSE, rest)) => Repr::Dense(Dense::read(p, rest)?),
            Some(_) => return Err(Error::invalid_state("unknown Distinct representation")),
            None => {
                return Err(Error::Truncated {
                    context: "Distinct payload",
                });
            }
        };
        Ok(Distinct { p, repr })
    }
}
