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
    match bytes.len() {
        4..=8 => short::xxh3_4to8(first_u32(bytes), last_u32(bytes), bytes.len() as u64),
        9..=16 => short::xxh3_9to16(first_u64(bytes), last_u64(bytes), bytes.len() as u64),
        _ => xxh3_64_with_seed(bytes, SEED),
    }
}

#[inline(always)]
fn first_u32(b: &[u8]) -> u32 {
    b.first_chunk().map_or(0, |c| u32::from_le_bytes(*c))
}

#[inline(always)]
fn last_u32(b: &[u8]) -> u32 {
    b.last_chunk().map_or(0, |c| u32::from_le_bytes(*c))
}

#[inline(always)]
fn first_u64(b: &[u8]) -> u64 {
    b.first_chunk().map_or(0, |c| u64::from_le_bytes(*c))
}

#[inline(always)]
fn last_u64(b: &[u8]) -> u64 {
    b.last_chunk().map_or(0, |c| u64::from_le_bytes(*c))
}

/// xxh3-64's short-input paths (4–16 bytes) with our seed, inlined so that hashing an integer
/// or a short key costs a few instructions instead of a call. Bit-identical to xxhash-rust's
/// `xxh3_64_with_seed` (a property test compares them on random inputs of every length, and
/// the golden vectors pin both).
mod short {
    use super::SEED;

    /// xxh3's default secret, bytes 8..56 (the only ones the 4–16-byte paths read).
    const SECRET: [u8; 48] = [
        0x7c, 0x01, 0x81, 0x2c, 0xf7, 0x21, 0xad, 0x1c, 0xde, 0xd4, 0x6d, 0xe9, 0x83, 0x90, 0x97,
        0xdb, 0x72, 0x40, 0xa4, 0xa4, 0xb7, 0xb3, 0x67, 0x1f, 0xcb, 0x79, 0xe6, 0x4e, 0xcc, 0xc0,
        0xe5, 0x78, 0x82, 0x5a, 0xd0, 0x7d, 0xcc, 0xff, 0x72, 0x21, 0xb8, 0x08, 0x46, 0x74, 0xf7,
        0x43, 0x24, 0x8e,
    ];

    /// Little-endian u64 at absolute secret offset `at` (8 ≤ at ≤ 48).
    const fn secret64(at: usize) -> u64 {
        let i = at - 8;
        u64::from_le_bytes([
            SECRET[i],
            SECRET[i + 1],
            SECRET[i + 2],
            SECRET[i + 3],
            SECRET[i + 4],
            SECRET[i + 5],
            SECRET[i + 6],
            SECRET[i + 7],
        ])
    }

    const SEED_4TO8: u64 = SEED ^ (((SEED as u32).swap_bytes() as u64) << 32);
    const FLIP_4TO8: u64 = (secret64(8) ^ secret64(16)).wrapping_sub(SEED_4TO8);
    const FLIP1_9TO16: u64 = (secret64(24) ^ secret64(32)).wrapping_add(SEED);
    const FLIP2_9TO16: u64 = (secret64(40) ^ secret64(48)).wrapping_sub(SEED);

    #[inline(always)]
    pub(super) fn xxh3_4to8(first: u32, last: u32, len: u64) -> u64 {
        let keyed = (u64::from(last).wrapping_add(u64::from(first) << 32)) ^ FLIP_4TO8;
        strong_avalanche(keyed, len)
    }

    #[inline(always)]
    pub(super) fn xxh3_9to16(first: u64, last: u64, len: u64) -> u64 {
        let lo = first ^ FLIP1_9TO16;
        let hi = last ^ FLIP2_9TO16;
        let product = u128::from(lo) * u128::from(hi);
        let folded = (product as u64) ^ ((product >> 64) as u64);
        let acc = len
            .wrapping_add(lo.swap_bytes())
            .wrapping_add(hi)
            .wrapping_add(folded);
        avalanche(acc)
    }

    #[inline(always)]
    fn strong_avalanche(mut h: u64, len: u64) -> u64 {
        h ^= h.rotate_left(49) ^ h.rotate_left(24);
        h = h.wrapping_mul(0x9FB2_1C65_1E98_DF25);
        h ^= (h >> 35).wrapping_add(len);
        h = h.wrapping_mul(0x9FB2_1C65_1E98_DF25);
        h ^ (h >> 28)
    }

    #[inline(always)]
    fn avalanche(mut h: u64) -> u64 {
        h ^= h >> 37;
        h = h.wrapping_mul(0x1656_6791_9E37_79F9);
        h ^ (h >> 32)
    }
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
int_stable_hash!(u8, u16, u128, i8, i16, i128);

impl StableHash for u32 {
    #[inline]
    fn stable_hash(&self) -> u64 {
        short::xxh3_4to8(*self, *self, 4)
    }
}

impl StableHash for i32 {
    #[inline]
    fn stable_hash(&self) -> u64 {
        (*self as u32).stable_hash()
    }
}

impl StableHash for u64 {
    #[inline]
    fn stable_hash(&self) -> u64 {
        short::xxh3_4to8(*self as u32, (*self >> 32) as u32, 8)
    }
}

impl StableHash for i64 {
    #[inline]
    fn stable_hash(&self) -> u64 {
        (*self as u64).stable_hash()
    }
}

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
