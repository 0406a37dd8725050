//! The merge-law suite, for every aggregate of this crate and for your own.
//!
//! Enabled by the `testkit` feature. Given a [`mod@proptest`] strategy of input values, [`Laws`]
//! checks, for each generated case (default 256):
//!
//! * **identity**: `default ⊔ a = a = a ⊔ default`;
//! * **commutativity**: `a ⊔ b = b ⊔ a` (always bit-identical);
//! * **associativity**: `(a ⊔ b) ⊔ c = a ⊔ (b ⊔ c)`;
//! * **any order, any grouping**: the values are split at random into 2..=16 parts, each part
//!   folded on its own, and the parts merged in two random permutations, each in a random
//!   tree-shaped grouping; both results must equal the single-stream state (all values inserted
//!   into one state);
//! * **idempotence** ([`Laws::lattice`] types): `a ⊔ a = a`;
//! * **format**: `encode → decode → encode` is byte-identical for every state built.
//!
//! "Equal" is equality of encoded bytes unless [`Laws::approx`] installs a tolerance for types
//! whose state depends on grouping (sketches), used for the associativity and grouping checks.
//!
//! ```
//! use proptest::prelude::*;
//! use shardfold::{testkit::Laws, Count};
//! Laws::<Count, u8>::new("Count").cases(16).check(any::<u8>());
//! ```

use core::fmt::Debug;
use core::marker::PhantomData;

use proptest::collection::vec;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};

use crate::codec::{self, Codec};
use crate::merge::{Insert, Merge};

/// A tolerance check: `Ok` when the two states are close enough, else why not.
pub type Approx<A> = fn(expected: &A, actual: &A) -> Result<(), String>;

/// A small, fast, seedable generator (SplitMix64) for splitting and grouping inside a case.
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    /// A generator from `seed`.
    pub fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    /// A uniform `f64` in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Shuffles `items` (Fisher–Yates).
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            items.swap(i, self.below(i + 1));
        }
    }
}

/// The law suite for aggregate `A` fed with values of type `V`. See the [module docs](self).
pub struct Laws<A, V> {
    name: &'static str,
    cases: u32,
    max_values: usize,
    lattice: bool,
    approx: Option<Approx<A>>,
    _values: PhantomData<fn(V)>,
}

impl<A, V> Laws<A, V>
where
    A: Merge + Codec + Default + Clone + Debug + Insert<V>,
    V: Clone + Debug,
{
    /// The suite for a type called `name` in failure messages: 256 cases, up to 200 values each,
    /// bit-identical comparisons.
    pub fn new(name: &'static str) -> Self {
        Laws {
            name,
            cases: 256,
            max_values: 200,
            lattice: false,
            approx: None,
            _values: PhantomData,
        }
    }

    /// Sets the number of generated cases.
    pub fn cases(mut self, cases: u32) -> Self {
        self.cases = cases;
        self
    }

    /// Sets the largest number of values in one case.
    pub fn max_values(mut self, n: usize) -> Self {
        self.max_values = n.max(1);
        self
    }

    /// Also checks idempotence (`a ⊔ a = a`): for lattice types.
    pub fn lattice(mut self) -> Self {
        self.lattice = true;
        self
    }

    /// Compares grouped results to the single-stream state with `approx` instead of bytes.
    pub fn approx(mut self, approx: Approx<A>) -> Self {
        self.approx = Some(approx);
        self
    }

    /// Runs the suite.
    ///
    /// # Panics
    ///
    /// When a law fails, with the (shrunk) input that breaks it.
    pub fn check<S: Strategy<Value = V>>(&self, values: S) {
        let config = Config {
            cases: self.cases,
            failure_persistence: None,
            ..Config::default()
        };
        let strategy = (vec(values, 0..=self.max_values), any::<u64>());
        let result = TestRunner::new(config).run(&strategy, |(vals, seed)| self.case(&vals, seed));
        if let Err(e) = result {
            panic!("{}: merge law broken: {e}", self.name);
        }
    }

    fn case(&self, values: &[V], seed: u64) -> Result<(), TestCaseError> {
        let mut rng = SplitMix64::new(seed);
        let single = fold(values)?;
        let parts = split(values, &mut rng)?;
        for state in parts.iter().chain([&single]) {
            round_trip(state)?;
        }
        self.identity(&parts[0])?;
        commutativity(&parts[0], &parts[1])?;
        let c = parts.get(2).cloned().unwrap_or_default();
        self.associativity(&parts[0], &parts[1], &c)?;
        if self.lattice {
            same(&merged(&parts[0], &parts[0])?, &parts[0], "idempotence")?;
            same(&merged(&single, &parts[1])?, &single, "absorbing a part")?;
        }
        let first = grouped(&parts, &mut rng)?;
        let second = grouped(&parts, &mut rng)?;
        round_trip(&first)?;
        self.equal(
            &single,
            &first,
            "random order and grouping vs single stream",
        )?;
        self.equal(&first, &second, "two random orders and groupings")
    }

    fn identity(&self, a: &A) -> Result<(), TestCaseError> {
        same(&merged(&A::default(), a)?, a, "identity (default ⊔ a)")?;
        same(&merged(a, &A::default())?, a, "identity (a ⊔ default)")
    }

    fn associativity(&self, a: &A, b: &A, c: &A) -> Result<(), TestCaseError> {
        let left = merged(&merged(a, b)?, c)?;
        let right = merged(a, &merged(b, c)?)?;
        self.equal(&left, &right, "associativity")
    }

    fn equal(&self, expected: &A, actual: &A, law: &str) -> Result<(), TestCaseError> {
        match self.approx {
            None => same(expected, actual, law),
            Some(f) => {
                f(expected, actual).map_err(|why| TestCaseError::fail(format!("{law}: {why}")))
            }
        }
    }
}

fn fold<A: Default + Insert<V>, V: Clone>(values: &[V]) -> Result<A, TestCaseError> {
    let mut a = A::default();
    for v in values {
        a.insert(v.clone())
            .map_err(|e| TestCaseError::fail(format!("insert refused a generated value: {e}")))?;
    }
    Ok(a)
}

/// Shuffles the values and cuts them into 2..=16 parts (some possibly empty), each folded.
fn split<A: Default + Insert<V>, V: Clone>(
    values: &[V],
    rng: &mut SplitMix64,
) -> Result<Vec<A>, TestCaseError> {
    let n = 2 + rng.below(15);
    let mut shuffled = values.to_vec();
    rng.shuffle(&mut shuffled);
    let mut buckets: Vec<Vec<V>> = vec![Vec::new(); n];
    for v in shuffled {
        buckets[rng.below(n)].push(v);
    }
    buckets.iter().map(|b| fold(b)).collect()
}

/// Merges the parts in a random permutation and a random binary-tree grouping.
fn grouped<A: Merge + Clone + Default>(
    parts: &[A],
    rng: &mut SplitMix64,
) -> Result<A, TestCaseError> {
    let mut order: Vec<&A> = parts.iter().collect();
    rng.shuffle(&mut order);
    tree(&order, rng)
}

fn tree<A: Merge + Clone + Default>(
    parts: &[&A],
    rng: &mut SplitMix64,
) -> Result<A, TestCaseError> {
    match parts {
        [] => Ok(A::default()),
        [one] => Ok((*one).clone()),
        _ => {
            let cut = 1 + rng.below(parts.len() - 1);
            let left = tree(&parts[..cut], rng)?;
            let right = tree(&parts[cut..], rng)?;
            merged(&left, &right)
        }
    }
}

fn merged<A: Merge + Clone>(a: &A, b: &A) -> Result<A, TestCaseError> {
    let mut out = a.clone();
    a.check_merge(b)
        .map_err(|e| TestCaseError::fail(format!("check_merge refused: {e}")))?;
    out.merge(b)
        .map_err(|e| TestCaseError::fail(format!("merge refused after check_merge passed: {e}")))?;
    Ok(out)
}

fn commutativity<A: Merge + Codec + Clone + Debug>(a: &A, b: &A) -> Result<(), TestCaseError> {
    same(&merged(a, b)?, &merged(b, a)?, "commutativity")
}

fn same<A: Codec + Debug>(expected: &A, actual: &A, law: &str) -> Result<(), TestCaseError> {
    if codec::encode(expected) == codec::encode(actual) {
        Ok(())
    } else {
        Err(TestCaseError::fail(format!(
            "{law}: states differ\n expected {expected:?}\n actual   {actual:?}"
        )))
    }
}

fn round_trip<A: Codec + Debug>(a: &A) -> Result<(), TestCaseError> {
    let bytes = codec::encode(a);
    let back: A = codec::decode(&bytes)
        .map_err(|e| TestCaseError::fail(format!("decode of own encoding failed: {e}")))?;
    prop_assert_eq!(
        codec::encode(&back),
        bytes,
        "encode → decode → encode changed bytes"
    );
    Ok(())
}
