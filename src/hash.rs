//! The one stable hash for everything persisted or merged across processes.
//!
//! Sketch states written by a Lambda on x86, a Lambda on Graviton and a laptop running another
//! version of this crate must merge. So every hash that reaches a stored state (HLL registers,
//! event-ID fingerprints, write-shard choice) is **xxh3-64 with the fixed seed [`SEED`] over the
//! value's canonical bytes**:
//!
//! | input | canonical bytes |
//! |---|---|
//! | integers (`u8`…`u128`, `i8`…`i128`) | little-endian, at their own width |
//! | `str` / `String` | UTF-8 bytes |
//! | `[u8]` / `Vec<u8>` / `[u8; N]` | the bytes as they are |
//! | `bool` | one byte, 0 or 1 |
//!
//! Golden vectors in the tests pin this function: any change to it fails the build. `ahash` and
//! std's `RandomState` are fine for in-memory maps but never for anything persisted: their
//! output differs by CPU features, crate version and process.

use xxhash_rust::xxh3::xxh3_64_with_seed;

/// The fixed seed: the ASCII bytes `"shrdfold"` read as a little-endian `u64`. Part of the
/// persisted format; never change it.
pub const SEED: u64 = u64::from_le_bytes(*b"shrdfold");

/// Hashes raw canonical bytes with the stable hash.
///
/// ```
/// assert_eq!(shardfold::hash::hash_bytes(b"abc"), shardfold::hash::stable_hash("abc"));
/// ```
#[inline]
pub fn hash_bytes(bytes: &[u8]) -> u64 {
    xxh3_64_with_seed(bytes, SEED)
}

/// Hashes any [`StableHash`] value.
///
/// ```
/// use shardfold::hash::{stable_hash, hash_bytes};
/// assert_eq!(stable_hash(&7u32), hash_bytes(&7u32.to_le_bytes()));
/// ```
#[inline]
pub fn stable_hash<T: StableHash + ?Sized>(value: &T) -> u64 {
    value.stable_hash()
}

/// A value with canonical bytes, hashed by the stable hash (see the [module docs](self)).
pub trait StableHash {
    /// The stable hash of the value's canonical bytes.
    fn stable_hash(&self) -> u64;
}

macro_rules! int_stable_hash {
    ($($t:ty),*) => {$(
        impl StableHash for $t {
            #[inline]
            fn stable_hash(&self) -> u64 {
                hash_bytes(&self.to_le_bytes())
            }
        }
    )*};
}
int_stable_hash!(u8, u16, u32, u64, u128, i8, i16, i32, i64, i128);

impl StableHash for bool {
    #[inline]
    fn stable_hash(&self) -> u64 {
        hash_bytes(&[u8::from(*self)])
    }
}

impl StableHash for str {
    #[inline]
    fn stable_hash(&self) -> u64 {
        hash_bytes(self.as_bytes())
    }
}

impl StableHash for String {
    #[inline]
    fn stable_hash(&self) -> u64 {
        hash_bytes(self.as_bytes())
    }
}

impl StableHash for [u8] {
    #[inline]
    fn stable_hash(&self) -> u64 {
        hash_bytes(self)
    }
}

impl StableHash for Vec<u8> {
    #[inline]
    fn stable_hash(&self) -> u64 {
        hash_bytes(self)
    }
}

impl<const N: usize> StableHash for [u8; N] {
    #[inline]
    fn stable_hash(&self) -> u64 {
        hash_bytes(self)
    }
}

impl<T: StableHash + ?Sized> StableHash for &T {
    #[inline]
    fn stable_hash(&self) -> u64 {
        (**self).stable_hash()
    }
}
