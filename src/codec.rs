//! The versioned, checksummed envelope every stored state travels in.
//!
//! ```text
//! offset     size  field
//! 0          4     magic "SHFD"
//! 4          1     format version (1)
//! 5          2     type tag, u16 little-endian (see `tags`)
//! 7          4     parameter block length P, u32 little-endian
//! 11         P     parameter block (type-specific; empty for exact types)
//! 11+P       4     payload length L, u32 little-endian
//! 15+P       L     payload (postcard)
//! 15+P+L     4     CRC32C (Castagnoli) of bytes [0, 15+P+L), u32 little-endian
//! ```
//!
//! `FORMAT.md` documents every type's parameter block and payload byte by byte.
//!
//! # Guarantees
//!
//! * **Canonical**: equal states encode to identical bytes, and [`decode`] accepts only the one
//!   canonical encoding of a state (it re-encodes and compares), so bytes and states are in
//!   one-to-one correspondence.
//! * **Safe on untrusted bytes**: decoding never panics. It refuses any blob longer than
//!   [`Limits::max_blob_bytes`] before reading it, checks every length prefix against the bytes
//!   actually present before using it, and never pre-allocates more than 1 MiB for a collection
//!   whatever its length prefix claims; so a decode allocates at most a small multiple of the
//!   blob's size (sparse sketches expand to at most their dense size, 2^p bytes).
//! * **Validated**: after decoding, every type checks its invariants (ranges, sortedness,
//!   finiteness, counts that add up), so a decoded value can never panic later.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{Error, Result};

pub mod nested;

/// The four bytes every shardfold blob starts with.
pub const MAGIC: [u8; 4] = *b"SHFD";

/// The newest envelope format version this build writes and reads.
pub const FORMAT_VERSION: u8 = 1;

/// Bytes of envelope around the parameter block and payload (header, two lengths, checksum).
pub const ENVELOPE_OVERHEAD: usize = 4 + 1 + 2 + 4 + 4 + 4;

pub mod tags;

/// Bounds applied while decoding untrusted bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The largest blob [`decode_with`] accepts, in bytes. Default: 64 MiB.
    pub max_blob_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_blob_bytes: 64 << 20,
        }
    }
}

/// A type that can be stored in the envelope.
///
/// Implemented by every aggregate of the crate. Implement it for your own aggregate with a type
/// tag of `0x8000` or above (reserved for users).
pub trait Codec: Sized {
    /// The type tag written in the envelope header.
    const TYPE_TAG: u16;

    /// Appends the parameter block (parameters that must agree for a merge). Default: empty.
    fn write_params(&self, _out: &mut Vec<u8>) {}

    /// Appends the canonical payload.
    fn write_payload(&self, out: &mut Vec<u8>);

    /// Rebuilds and validates a value from its parameter block and payload.
    ///
    /// # Errors
    ///
    /// [`Error::Truncated`] or [`Error::InvalidState`] when the bytes do not describe a valid
    /// value.
    fn read_parts(params: &[u8], payload: &[u8], limits: &Limits) -> Result<Self>;
}

/// Encodes `value` into a new envelope.
///
/// ```
/// use shardfold::{codec, Count, Insert};
/// let mut c = Count::default();
/// c.insert(())?;
/// let bytes = codec::encode(&c);
/// assert_eq!(codec::decode::<Count>(&bytes)?, c);
/// # Ok::<(), shardfold::Error>(())
/// ```
pub fn encode<T: Codec>(value: &T) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    encode_into(value, &mut out);
    out
}

/// Encodes `value`, appending the envelope to `out`.
pub fn encode_into<T: Codec>(value: &T, out: &mut Vec<u8>) {
    let start = out.len();
    out.extend_from_slice(&MAGIC);
    out.push(FORMAT_VERSION);
    out.extend_from_slice(&T::TYPE_TAG.to_le_bytes());
    write_section_with(out, |o| value.write_params(o));
    write_section_with(out, |o| value.write_payload(o));
    let crc = crc32c::crc32c(&out[start..]);
    out.extend_from_slice(&crc.to_le_bytes());
}

/// Wraps an arbitrary type tag, parameter block and payload in a valid envelope (correct
/// lengths and checksum), without checking that they describe a valid state. For tools and
/// tests that need to build blobs by hand; [`decode`] still validates the contents.
pub fn encode_raw(type_tag: u16, params: &[u8], payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(ENVELOPE_OVERHEAD + params.len() + payload.len());
    out.extend_from_slice(&MAGIC);
    out.push(FORMAT_VERSION);
    out.extend_from_slice(&type_tag.to_le_bytes());
    write_section_with(&mut out, |o| o.extend_from_slice(params));
    write_section_with(&mut out, |o| o.extend_from_slice(payload));
    let crc = crc32c::crc32c(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// Decodes a blob with the default [`Limits`].
///
/// # Errors
///
/// [`Error::BadMagic`], [`Error::UnsupportedVersion`], [`Error::Truncated`],
/// [`Error::TooLarge`], [`Error::ChecksumMismatch`], [`Error::WrongType`],
/// [`Error::InvalidState`].
pub fn decode<T: Codec>(bytes: &[u8]) -> Result<T> {
    decode_with(bytes, &Limits::default())
}

/// Decodes a blob with explicit [`Limits`].
///
/// # Errors
///
/// As [`decode`].
pub fn decode_with<T: Codec>(bytes: &[u8], limits: &Limits) -> Result<T> {
    let env = Envelope::parse(bytes, limits)?;
    if env.type_tag != T::TYPE_TAG {
        return Err(Error::WrongType {
            expected: T::TYPE_TAG,
            found: env.type_tag,
        });
    }
    let value = T::read_parts(env.params, env.payload, limits)?;
    // Canonical check: the only accepted encoding of a state is the one we write.
    let mut params = Vec::with_capacity(env.params.len());
    value.write_params(&mut params);
    let mut payload = Vec::with_capacity(env.payload.len());
    value.write_payload(&mut payload);
    if params != env.params || payload != env.payload {
        return Err(Error::invalid_state("non-canonical encoding"));
    }
    Ok(value)
}

/// As [`decode`], without re-encoding to check canonicity: only for types whose decoder
/// accepts nothing but the canonical bytes of a value by construction (each caller says why,
/// and a fuzz target checks that re-encoding what it accepts gives the same bytes).
#[cfg(feature = "store")]
pub(crate) fn decode_canonical_by_construction<T: Codec>(bytes: &[u8]) -> Result<T> {
    let limits = Limits::default();
    let env = Envelope::parse(bytes, &limits)?;
    if env.type_tag != T::TYPE_TAG {
        return Err(Error::WrongType {
            expected: T::TYPE_TAG,
            found: env.type_tag,
        });
    }
    T::read_parts(env.params, env.payload, &limits)
}

/// The parsed, checksum-verified parts of an envelope, borrowed from the blob.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Envelope<'a> {
    /// Format version of the blob.
    pub version: u8,
    /// Type tag of the blob (see [`tags`]).
    pub type_tag: u16,
    /// The parameter block.
    pub params: &'a [u8],
    /// The payload.
    pub payload: &'a [u8],
}

impl<'a> Envelope<'a> {
    /// Checks magic, version, lengths and checksum, and splits the blob into its parts. Does not
    /// look at the parameter block or payload: use it to inspect a blob of any type.
    ///
    /// # Errors
    ///
    /// As [`decode`], except [`Error::WrongType`] and [`Error::InvalidState`] about contents.
    pub fn parse(bytes: &'a [u8], limits: &Limits) -> Result<Self> {
        if bytes.len() > limits.max_blob_bytes {
            return Err(Error::TooLarge {
                size: bytes.len() as u64,
                limit: limits.max_blob_bytes as u64,
                fix: None,
            });
        }
        let mut r = Reader::new(bytes);
        let magic = r.take(4, "magic").map_err(|_| Error::BadMagic)?;
        if magic != MAGIC {
            return Err(Error::BadMagic);
        }
        let version = r.u8("format version")?;
        if version != FORMAT_VERSION {
            return Err(Error::UnsupportedVersion {
                found: version,
                supported: FORMAT_VERSION,
            });
        }
        let type_tag = r.u16("type tag")?;
        let params = r.section("parameter block")?;
        let payload = r.section("payload")?;
        let body_len = bytes.len() - r.remaining();
        let stored = r.u32("checksum")?;
        if !r.is_empty() {
            return Err(Error::invalid_state("trailing bytes after checksum"));
        }
        let computed = crc32c::crc32c(&bytes[..body_len]);
        if stored != computed {
            return Err(Error::ChecksumMismatch { stored, computed });
        }
        Ok(Envelope {
            version,
            type_tag,
            params,
            payload,
        })
    }
}

/// Appends a u32-length-prefixed section produced by `f`.
pub fn write_section_with(out: &mut Vec<u8>, f: impl FnOnce(&mut Vec<u8>)) {
    let at = out.len();
    out.extend_from_slice(&[0; 4]);
    f(out);
    let len = out.len() - at - 4;
    // Sections are bounded by `Limits::max_blob_bytes` on read; a state above 4 GiB cannot be
    // stored in any backend we support.
    let len32 = u32::try_from(len).unwrap_or(u32::MAX);
    out[at..at + 4].copy_from_slice(&len32.to_le_bytes());
}

/// A bounds-checked cursor over untrusted bytes. Every read checks the remaining length first.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    /// A reader over `bytes`.
    pub fn new(bytes: &'a [u8]) -> Self {
        Reader { rest: bytes }
    }

    /// Bytes not yet read.
    pub fn remaining(&self) -> usize {
        self.rest.len()
    }

    /// Whether everything was read.
    pub fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    /// Takes `n` bytes.
    ///
    /// # Errors
    ///
    /// [`Error::Truncated`] naming `context` when fewer than `n` bytes remain.
    pub fn take(&mut self, n: usize, context: &'static str) -> Result<&'a [u8]> {
        if n > self.rest.len() {
            return Err(Error::Truncated { context });
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }

    /// Takes `N` bytes as an array.
    ///
    /// # Errors
    ///
    /// [`Error::Truncated`] when fewer than `N` bytes remain.
    pub fn array<const N: usize>(&mut self, context: &'static str) -> Result<[u8; N]> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N, context)?);
        Ok(a)
    }

    /// Reads one byte.
    ///
    /// # Errors
    ///
    /// [`Error::Truncated`] at the end of input.
    pub fn u8(&mut self, context: &'static str) -> Result<u8> {
        Ok(self.array::<1>(context)?[0])
    }

    /// Reads a little-endian u16.
    ///
    /// # Errors
    ///
    /// [`Error::Truncated`] when fewer than 2 bytes remain.
    pub fn u16(&mut self, context: &'static str) -> Result<u16> {
        Ok(u16::from_le_bytes(self.array(context)?))
    }

    /// Reads a little-endian u32.
    ///
    /// # Errors
    ///
    /// [`Error::Truncated`] when fewer than 4 bytes remain.
    pub fn u32(&mut self, context: &'static str) -> Result<u32> {
        Ok(u32::from_le_bytes(self.array(context)?))
    }

    /// Reads a little-endian u64.
    ///
    /// # Errors
    ///
    /// [`Error::Truncated`] when fewer than 8 bytes remain.
    pub fn u64(&mut self, context: &'static str) -> Result<u64> {
        Ok(u64::from_le_bytes(self.array(context)?))
    }

    /// Reads a u32-length-prefixed section, checking the length against the bytes present.
    ///
    /// # Errors
    ///
    /// [`Error::Truncated`] when the prefix or the section is cut short.
    pub fn section(&mut self, context: &'static str) -> Result<&'a [u8]> {
        let len = self.u32(context)?;
        let len = usize::try_from(len).map_err(|_| Error::Truncated { context })?;
        self.take(len, context)
    }

    /// Fails unless everything was read.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidState`] naming `context` when bytes remain.
    pub fn finish(&self, context: &'static str) -> Result<()> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(Error::invalid_state(format!("trailing bytes in {context}")))
        }
    }
}

/// Appends the postcard encoding of `value` to `out`.
pub fn write_postcard<T: Serialize + ?Sized>(value: &T, out: &mut Vec<u8>) {
    // Serializing into memory cannot fail for our types (plain structs, sequences and
    // integers); should it ever, nothing is written and the canonical check on decode refuses
    // the blob, rather than a panic here.
    if let Ok(bytes) = postcard::to_allocvec(value) {
        out.extend_from_slice(&bytes);
    }
}

/// Decodes a postcard value that must use up all of `bytes`.
///
/// # Errors
///
/// [`Error::Truncated`] when the bytes end early, [`Error::InvalidState`] on malformed or
/// trailing bytes.
pub fn read_postcard<T: DeserializeOwned>(bytes: &[u8], context: &'static str) -> Result<T> {
    match postcard::take_from_bytes::<T>(bytes) {
        Ok((value, [])) => Ok(value),
        Ok((_, _rest)) => Err(Error::invalid_state(format!("trailing bytes in {context}"))),
        Err(postcard::Error::DeserializeUnexpectedEnd) => Err(Error::Truncated { context }),
        Err(e) => Err(Error::invalid_state(format!("{context}: {e}"))),
    }
}
