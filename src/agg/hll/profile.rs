//! Hash profiles: which hash function turns a value into the 64-bit *register form* the
//! sketch works on, so that a [`Distinct`](super::Distinct) can hold exactly the registers
//! another system builds for the same items.
//!
//! The sparse and dense code only ever sees a 64-bit value `H` in the crate's register form:
//! the top `p` bits choose the register, the leading zeros of the rest give the rank, the top
//! 20 bits are the sparse slot. Each profile maps its own hash into that form:
//!
//! * [`HashProfile::Xxh3`]: `H` is the crate's stable hash ([`crate::hash`]) itself.
//! * [`HashProfile::Redis`]: Redis's `MurmurHash64A` with seed `0xadc83b19`, `p = 14`. Redis
//!   takes the register from the **low** 14 bits and the count from the **trailing** zeros of
//!   the 50 bits above them (with bit 50 forced, so at most 51). `H` puts the index on top and
//!   the 50 bits above it bit-reversed below, so the crate's leading-zero rank is exactly
//!   Redis's count; the bits after the first one stay uniform, so the sparse `p' = 20` slots
//!   keep their distribution.
//! * [`HashProfile::DataSketches`]: `MurmurHash3_x64_128` with seed 9001, as Apache
//!   DataSketches `HllSketch` hashes. DataSketches keeps a *coupon* per item: the low 26 bits
//!   of the first 64-bit half (`addr26`, whose low `lg_k` bits are the slot) and
//!   `value = min(lz(h2), 62) + 1` from the second half. `H` puts the slot on top, then
//!   `min(lz(h2), 62)` zero bits, a one bit, then the remaining `26 − p` bits of `addr26`. A
//!   uniform bit string *is* "geometric zeros, a one, uniform bits", so the sparse slots stay
//!   uniform, and `H` depends on the coupon only: a DataSketches coupon list imports to the
//!   very sparse state a shardfold sketch of the same items holds. Ranks above `65 − p` (one
//!   item in 2^(64−p)) are capped as every shardfold rank is; a DataSketches register above
//!   the cap is read as the cap.

use core::fmt;

use crate::hash::StableHash;

/// Which hash function a [`Distinct`](super::Distinct) uses (see the [module docs](super);
/// `FORMAT.md` defines how each profile's hash maps to registers).
/// Sketches of different profiles never merge (a typed error), and the profile is part of the
/// encoded state (`FORMAT.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum HashProfile {
    /// The crate's stable hash, xxh3-64 with a fixed seed: the fastest, any precision. The
    /// profile of every sketch written before profiles existed.
    #[default]
    Xxh3,
    /// Redis's `PFADD`: `MurmurHash64A`, seed `0xadc83b19`, precision 14 only. Exports to and
    /// imports from Redis `HYLL` strings.
    Redis,
    /// Apache DataSketches `HllSketch`: `MurmurHash3_x64_128`, seed 9001. Exports to and
    /// imports from DataSketches HLL images.
    DataSketches,
}

impl HashProfile {
    /// The profile's byte in the parameter block (`FORMAT.md`); xxh3 writes none.
    pub(super) fn id(self) -> u8 {
        match self {
            HashProfile::Xxh3 => 0,
            HashProfile::Redis => 1,
            HashProfile::DataSketches => 2,
        }
    }

    /// The profile with parameter byte `id`, if any.
    pub(super) fn from_id(id: u8) -> Option<Self> {
        match id {
            0 => Some(HashProfile::Xxh3),
            1 => Some(HashProfile::Redis),
            2 => Some(HashProfile::DataSketches),
            _ => None,
        }
    }

    /// The register-form hash of raw element bytes at precision `p`, or `None` when the
    /// profile ignores the input (DataSketches ignores empty strings and byte arrays).
    #[inline]
    pub fn hash_bytes(self, p: u8, bytes: &[u8]) -> Option<u64> {
        match self {
            HashProfile::Xxh3 => Some(crate::hash::hash_bytes(bytes)),
            HashProfile::Redis => Some(redis_form(murmur64a(bytes, REDIS_SEED))),
            HashProfile::DataSketches => {
                if bytes.is_empty() {
                    return None;
                }
                let (h1, h2) = murmur3_x64_128(bytes, DATASKETCHES_SEED);
                Some(datasketches_form(p, coupon(h1, h2)))
            }
        }
    }
}

impl fmt::Display for HashProfile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            HashProfile::Xxh3 => "xxh3",
            HashProfile::Redis => "redis",
            HashProfile::DataSketches => "datasketches",
        })
    }
}

/// Redis's HLL hash seed (`hllPatLen`).
pub const REDIS_SEED: u32 = 0xadc8_3b19;

/// DataSketches' default update seed.
pub const DATASKETCHES_SEED: u64 = 9001;

/// Mask of the 50 hash bits above Redis's 14 index bits.
const REDIS_TAIL: u64 = (1 << 50) - 1;

/// Redis's `(index = low 14 bits, count = trailing zeros of the rest + 1)` as the crate's
/// `(top 14 bits, leading zeros of the rest + 1)`: index on top, the other 50 bits reversed.
#[inline]
pub(super) fn redis_form(hash: u64) -> u64 {
    ((hash & 0x3FFF) << 50) | (hash.reverse_bits() & REDIS_TAIL)
}

/// `MurmurHash64A` (Austin Appleby's MurmurHash2, 64-bit), as Redis computes it: blocks of 8
/// bytes read little-endian, tail bytes xored in little-endian order.
pub fn murmur64a(bytes: &[u8], seed: u32) -> u64 {
    const M: u64 = 0xc6a4_a793_5bd1_e995;
    const R: u32 = 47;
    let mut h = u64::from(seed) ^ (bytes.len() as u64).wrapping_mul(M);
    let mut blocks = bytes.chunks_exact(8);
    for block in &mut blocks {
        let mut k = u64::from_le_bytes(block.try_into().unwrap_or([0; 8]));
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h ^= k;
        h = h.wrapping_mul(M);
    }
    let tail = blocks.remainder();
    if !tail.is_empty() {
        for (i, &b) in tail.iter().enumerate() {
            h ^= u64::from(b) << (8 * i);
        }
        h = h.wrapping_mul(M);
    }
    h ^= h >> R;
    h = h.wrapping_mul(M);
    h ^ (h >> R)
}

/// `MurmurHash3_x64_128` (Austin Appleby), the two 64-bit halves `(h1, h2)`, as DataSketches
/// hashes items (blocks of 16 bytes read as two little-endian `u64`).
pub fn murmur3_x64_128(bytes: &[u8], seed: u64) -> (u64, u64) {
    const C1: u64 = 0x87c3_7b91_1142_53d5;
    const C2: u64 = 0x4cf5_ad43_2745_937f;
    let (mut h1, mut h2) = (seed, seed);
    let mut blocks = bytes.chunks_exact(16);
    for block in &mut blocks {
        let (lo, hi) = block.split_at(8);
        let k1 = u64::from_le_bytes(lo.try_into().unwrap_or([0; 8]));
        let k2 = u64::from_le_bytes(hi.try_into().unwrap_or([0; 8]));
        h1 ^= k1.wrapping_mul(C1).rotate_left(31).wrapping_mul(C2);
        h1 = h1
            .rotate_left(27)
            .wrapping_add(h2)
            .wrapping_mul(5)
            .wrapping_add(0x52dc_e729);
        h2 ^= k2.wrapping_mul(C2).rotate_left(33).wrapping_mul(C1);
        h2 = h2
            .rotate_left(31)
            .wrapping_add(h1)
            .wrapping_mul(5)
            .wrapping_add(0x3849_5ab5);
    }
    let tail = blocks.remainder();
    let word = |bytes: &[u8]| {
        bytes
            .iter()
            .enumerate()
            .fold(0u64, |w, (i, &b)| w | u64::from(b) << (8 * i))
    };
    if tail.len() > 8 {
        let k2 = word(&tail[8..]);
        h2 ^= k2.wrapping_mul(C2).rotate_left(33).wrapping_mul(C1);
    }
    if !tail.is_empty() {
        let k1 = word(&tail[..tail.len().min(8)]);
        h1 ^= k1.wrapping_mul(C1).rotate_left(31).wrapping_mul(C2);
    }
    let len = bytes.len() as u64;
    h1 ^= len;
    h2 ^= len;
    h1 = h1.wrapping_add(h2);
    h2 = h2.wrapping_add(h1);
    h1 = fmix64(h1);
    h2 = fmix64(h2);
    h1 = h1.wrapping_add(h2);
    h2 = h2.wrapping_add(h1);
    (h1, h2)
}

/// MurmurHash3's 64-bit finaliser.
#[inline]
fn fmix64(mut k: u64) -> u64 {
    k ^= k >> 33;
    k = k.wrapping_mul(0xff51_afd7_ed55_8ccd);
    k ^= k >> 33;
    k = k.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    k ^ (k >> 33)
}

/// Mask of a coupon's 26 address bits.
pub(super) const ADDR_MASK: u32 = (1 << 26) - 1;

/// The DataSketches coupon of a 128-bit hash: `value << 26 | addr26`, `value` in `1..=63`.
#[inline]
pub(super) fn coupon(h1: u64, h2: u64) -> u32 {
    let value = h2.leading_zeros().min(62) + 1;
    value << 26 | (h1 as u32 & ADDR_MASK)
}

/// The register form of a DataSketches coupon at precision `p` (`4..=18`; see the
/// [module docs](self)): slot on top, `value − 1` zeros, a one, the other address bits.
#[inline]
pub(super) fn datasketches_form(p: u8, coupon: u32) -> u64 {
    let p = u32::from(p);
    let addr = u64::from(coupon & ADDR_MASK);
    let zeros = (coupon >> 26).saturating_sub(1);
    let slot = addr & ((1 << p) - 1);
    let rest = addr >> p; // 26 − p bits
    let word = 1 << 63 | rest << (37 + p);
    let tail = word.checked_shr(zeros + p).unwrap_or(0);
    slot << (64 - p) | tail
}

/// A value a [`Distinct`](super::Distinct) counts under every [`HashProfile`]: its canonical
/// bytes for the stable hash ([`StableHash`]), and the bytes the foreign systems hash for it.
///
/// | value | Redis (`PFADD` argument) | DataSketches (`update`) |
/// |---|---|---|
/// | `str`, `String` | UTF-8 bytes | UTF-8 bytes (empty: ignored, as DataSketches does) |
/// | `[u8]`, `Vec<u8>`, `[u8; N]` | the bytes | the bytes (empty: ignored) |
/// | integers up to 64 bits | decimal ASCII, as `PFADD key 42` sends `42` | the number as a 64-bit integer, 8 bytes little-endian, as Java's `update(long)` and Python's `update(int)` (so `5u8` and `5i64` are the same item) |
/// | `u128`, `i128` | decimal ASCII | 16 bytes little-endian (as `update(byte[])`) |
/// | `bool` | `"1"` / `"0"` | the integer 1 / 0 |
pub trait DistinctItem: StableHash {
    /// Calls `f` with the bytes Redis's `PFADD` hashes for this value.
    fn with_redis_bytes<R>(&self, f: impl FnOnce(&[u8]) -> R) -> R;
    /// Calls `f` with the bytes DataSketches hashes for this value.
    fn with_datasketches_bytes<R>(&self, f: impl FnOnce(&[u8]) -> R) -> R;
}

/// Decimal ASCII of an integer, in a stack buffer.
fn with_decimal<R>(negative: bool, mut magnitude: u128, f: impl FnOnce(&[u8]) -> R) -> R {
    let mut buf = [0u8; 40];
    let mut at = buf.len();
    loop {
        at -= 1;
        buf[at] = b'0' + (magnitude % 10) as u8;
        magnitude /= 10;
        if magnitude == 0 {
            break;
        }
    }
    if negative {
        at -= 1;
        buf[at] = b'-';
    }
    f(&buf[at..])
}

macro_rules! small_int_item {
    ($($t:ty),*) => {$(
        impl DistinctItem for $t {
            #[inline]
            fn with_redis_bytes<R>(&self, f: impl FnOnce(&[u8]) -> R) -> R {
                let v = i128::from(*self);
                with_decimal(v < 0, v.unsigned_abs(), f)
            }
            #[inline]
            fn with_datasketches_bytes<R>(&self, f: impl FnOnce(&[u8]) -> R) -> R {
                f(&(i128::from(*self) as i64).to_le_bytes())
            }
        }
    )*};
}
small_int_item!(u8, u16, u32, u64, i8, i16, i32, i64);

impl DistinctItem for u128 {
    fn with_redis_bytes<R>(&self, f: impl FnOnce(&[u8]) -> R) -> R {
        with_decimal(false, *self, f)
    }
    fn with_datasketches_bytes<R>(&self, f: impl FnOnce(&[u8]) -> R) -> R {
        f(&self.to_le_bytes())
    }
}

impl DistinctItem for i128 {
    fn with_redis_bytes<R>(&self, f: impl FnOnce(&[u8]) -> R) -> R {
        with_decimal(*self < 0, self.unsigned_abs(), f)
    }
    fn with_datasketches_bytes<R>(&self, f: impl FnOnce(&[u8]) -> R) -> R {
        f(&self.to_le_bytes())
    }
}

impl DistinctItem for bool {
    fn with_redis_bytes<R>(&self, f: impl FnOnce(&[u8]) -> R) -> R {
        f(if *self { b"1" } else { b"0" })
    }
    fn with_datasketches_bytes<R>(&self, f: impl FnOnce(&[u8]) -> R) -> R {
        f(&i64::from(*self).to_le_bytes())
    }
}

macro_rules! bytes_item {
    ($($t:ty => $b:ident),*) => {$(
        impl DistinctItem for $t {
            #[inline]
            fn with_redis_bytes<R>(&self, f: impl FnOnce(&[u8]) -> R) -> R {
                let $b = self;
                f($b.as_ref())
            }
            #[inline]
            fn with_datasketches_bytes<R>(&self, f: impl FnOnce(&[u8]) -> R) -> R {
                let $b = self;
                f($b.as_ref())
            }
        }
    )*};
}
bytes_item!(str => s, String => s, [u8] => b, Vec<u8> => b);

impl<const N: usize> DistinctItem for [u8; N] {
    fn with_redis_bytes<R>(&self, f: impl FnOnce(&[u8]) -> R) -> R {
        f(self)
    }
    fn with_datasketches_bytes<R>(&self, f: impl FnOnce(&[u8]) -> R) -> R {
        f(self)
    }
}

impl<T: DistinctItem + ?Sized> DistinctItem for &T {
    #[inline]
    fn with_redis_bytes<R>(&self, f: impl FnOnce(&[u8]) -> R) -> R {
        (**self).with_redis_bytes(f)
    }
    #[inline]
    fn with_datasketches_bytes<R>(&self, f: impl FnOnce(&[u8]) -> R) -> R {
        (**self).with_datasketches_bytes(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agg::hll::dense::slot;

    /// Redis's `hllPatLen`, written as Redis writes it (a bit loop), for comparison.
    fn redis_pat_len(hash: u64) -> (usize, u8) {
        let index = (hash & 0x3FFF) as usize;
        let mut rest = (hash >> 14) | 1 << 50;
        let mut count = 1;
        while rest & 1 == 0 {
            count += 1;
            rest >>= 1;
        }
        (index, count)
    }

    #[test]
    fn redis_form_gives_redis_index_and_count() {
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        for i in 0..20_000u64 {
            x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(i);
            let h = x & !(u64::MAX << (i % 64)).rotate_left(14); // long zero runs
            for h in [h, x, h & 0x3FFF, 0, u64::MAX] {
                assert_eq!(slot(14, redis_form(h)), redis_pat_len(h), "{h:x}");
            }
        }
    }

    #[test]
    fn datasketches_form_gives_the_coupon_slot_and_value() {
        let mut x = 1u64;
        for i in 0..20_000u64 {
            x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(i);
            let h2 = x >> (i % 64);
            let c = coupon(x.rotate_left(17), h2);
            for p in [4u8, 11, 14, 18] {
                let (idx, rank) = slot(p, datasketches_form(p, c));
                assert_eq!(idx as u32, c & ((1 << p) - 1));
                assert_eq!(rank, ((c >> 26) as u8).min(65 - p), "{c:x} p={p}");
            }
        }
    }

    /// The Redis bytes of `v` as a string.
    fn redis_text<T: DistinctItem>(v: T) -> String {
        v.with_redis_bytes(|b| String::from_utf8_lossy(b).into_owned())
    }

    #[test]
    fn decimal_bytes_are_what_a_client_sends() {
        assert_eq!(redis_text(0u8), "0");
        assert_eq!(redis_text(-42i32), "-42");
        assert_eq!(redis_text(i64::MIN), i64::MIN.to_string());
        assert_eq!(redis_text(u128::MAX), u128::MAX.to_string());
        assert_eq!(redis_text(i128::MIN), i128::MIN.to_string());
        assert_eq!(redis_text(true), "1");
    }

    #[test]
    fn murmur3_known_vectors() {
        // MurmurHash3_x64_128 of the empty input with seed 0 is all zeros (reference
        // implementation); other vectors are checked against DataSketches itself in
        // tests/hll_datasketches.rs.
        assert_eq!(murmur3_x64_128(b"", 0), (0, 0));
    }
}
