//! [`Partials<A>`]: an aggregate fed with whole partial aggregates instead of single values.
//!
//! A device that pre-aggregates offline, a nightly batch job, or a function that already
//! reduced its batch in memory sends **one partial state** instead of its events. Wrapped in a
//! [`Partial`] and given a contribution ID, the partial is an event like any other: it goes
//! through the same dedup (uploading it twice changes nothing), the same windows (its event
//! time picks the window), the same stores. Folding it merges it into the stored state, with
//! [`Merge::check_merge`] run first: a partial of other parameters (another HLL precision,
//! another t-digest compression) is refused with a typed error, and nothing changes.
//!
//! ```
//! use shardfold::agg::{Partial, Partials};
//! use shardfold::{Insert, Stats};
//!
//! // a device folded its readings offline ...
//! let mut offline = Stats::default();
//! for x in [3.5, 4.0, 2.25] {
//!     offline.insert(x)?;
//! }
//! // ... and the server folds the whole partial as one value
//! let mut server = Partials::<Stats>::default();
//! server.insert(Partial(offline.clone()))?;
//! assert_eq!(server.get().count(), 3);
//! assert_eq!(server.get().sum(), 9.75);
//! # Ok::<(), shardfold::Error>(())
//! ```
//!
//! A `Partial<A>` serializes (serde) as the bytes of its envelope ([`codec::encode`]) and
//! deserializes by decoding and validating them, so a `Series<Partials<A>, Partial<A>>` stores
//! partials in its records like any event value, and a tampered one fails to decode rather than
//! being folded.
//!
//! [`codec::encode`]: crate::codec::encode

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::Aggregate;
use crate::codec::{self, Codec, Limits, Reader, tags};
use crate::dedup::deduped::{read_nested_params, write_nested_params};
use crate::error::Result;
use crate::merge::{Insert, Merge};

/// One partial aggregate, as the value of an event folded into [`Partials<A>`].
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Partial<A>(pub A);

impl<A: Codec> Serialize for Partial<A> {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        serializer.serialize_bytes(&codec::encode(&self.0))
    }
}

impl<'de, A: Codec> Deserialize<'de> for Partial<A> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        let bytes = serde_bytes_vec(deserializer)?;
        codec::decode::<A>(&bytes)
            .map(Partial)
            .map_err(|e| D::Error::custom(format!("partial aggregate: {e}")))
    }
}

/// Reads a byte string (postcard, JSON arrays of numbers, …) into a `Vec<u8>`.
fn serde_bytes_vec<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Vec<u8>, D::Error> {
    struct Bytes;
    impl<'de> serde::de::Visitor<'de> for Bytes {
        type Value = Vec<u8>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("the bytes of an encoded aggregate")
        }
        fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> std::result::Result<Vec<u8>, E> {
            Ok(v.to_vec())
        }
        fn visit_byte_buf<E: serde::de::Error>(
            self,
            v: Vec<u8>,
        ) -> std::result::Result<Vec<u8>, E> {
            Ok(v)
        }
        fn visit_seq<S: serde::de::SeqAccess<'de>>(
            self,
            mut seq: S,
        ) -> std::result::Result<Vec<u8>, S::Error> {
            let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1 << 16));
            while let Some(b) = seq.next_element::<u8>()? {
                out.push(b);
            }
            Ok(out)
        }
    }
    d.deserialize_bytes(Bytes)
}

/// An aggregate `A` that folds whole partial states ([`Partial<A>`]) as its values: each
/// insert is a [`Merge::merge`]. See the [module docs](crate::agg::partials).
///
/// Stored under its own type tag (`PARTIALS`, 0x0024) wrapping `A`'s parameters and payload,
/// so a metric of partials and a metric of single values never open the same stored state.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Partials<A>(A);

impl<A> Partials<A> {
    /// An empty state with `template`'s parameters (precision, compression, …): partials of
    /// other parameters are refused.
    pub fn new(template: A) -> Self {
        Partials(template)
    }

    /// The merged state.
    pub fn get(&self) -> &A {
        &self.0
    }

    /// The merged state, by value.
    pub fn into_inner(self) -> A {
        self.0
    }
}

impl<A: Merge> Merge for Partials<A> {
    fn check_merge(&self, other: &Self) -> Result<()> {
        self.0.check_merge(&other.0)
    }

    fn merge_unchecked(&mut self, other: &Self) -> Result<()> {
        self.0.merge_unchecked(&other.0)
    }
}

impl<A: Aggregate> Insert<Partial<A>> for Partials<A> {
    fn check_insert(&self, value: &Partial<A>) -> Result<()> {
        self.0.check_merge(&value.0)
    }

    fn insert_unchecked(&mut self, value: Partial<A>) -> Result<()> {
        self.0.merge_unchecked(&value.0)
    }
}

impl<A: Codec> Codec for Partials<A> {
    const TYPE_TAG: u16 = tags::PARTIALS;

    fn write_params(&self, out: &mut Vec<u8>) {
        write_nested_params(&self.0, out);
    }

    fn write_payload(&self, out: &mut Vec<u8>) {
        codec::write_section_with(out, |o| self.0.write_payload(o));
    }

    fn read_parts(params: &[u8], payload: &[u8], limits: &Limits) -> Result<Self> {
        let mut p = Reader::new(params);
        let inner_params = read_nested_params::<A>(&mut p)?;
        p.finish("Partials params")?;
        let mut r = Reader::new(payload);
        let inner = A::read_parts(inner_params, r.section("partials state")?, limits)?;
        r.finish("Partials payload")?;
        Ok(Partials(inner))
    }
}

impl<A> From<A> for Partials<A> {
    fn from(a: A) -> Self {
        Partials(a)
    }
}
