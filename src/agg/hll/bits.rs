//! Bit-level writing and bounds-checked reading for the packed wire formats (LSB first).

use crate::error::{Error, Result};

/// Appends values of up to 32 bits to a byte vector, least significant bit first.
pub(super) struct BitWriter<'a> {
    out: &'a mut Vec<u8>,
    acc: u64,
    filled: u32,
}

impl<'a> BitWriter<'a> {
    /// A writer appending to `out`.
    pub(super) fn new(out: &'a mut Vec<u8>) -> Self {
        BitWriter {
            out,
            acc: 0,
            filled: 0,
        }
    }

    /// Appends the low `bits` (≤ 32) bits of `value`.
    #[inline]
    pub(super) fn put(&mut self, value: u32, bits: u32) {
        let mask = if bits >= 32 {
            u32::MAX
        } else {
            (1 << bits) - 1
        };
        self.acc |= u64::from(value & mask) << self.filled;
        self.filled += bits;
        while self.filled >= 8 {
            self.out.push(self.acc as u8);
            self.acc >>= 8;
            self.filled -= 8;
        }
    }

    /// Appends `count` one bits followed by a zero bit (unary code of `count`).
    pub(super) fn unary(&mut self, mut count: u32) {
        while count >= 16 {
            self.put(0xFFFF, 16);
            count -= 16;
        }
        self.put((1 << count) - 1, count + 1);
    }

    /// Flushes the last partial byte, padded with zero bits.
    pub(super) fn finish(self) {
        if self.filled > 0 {
            self.out.push(self.acc as u8);
        }
    }
}

/// Reads bits written by [`BitWriter`] through a 64-bit window; every read checks the bits
/// left.
pub(super) struct BitReader<'a> {
    bytes: &'a [u8],
    next: usize,
    acc: u64,
    filled: u32,
}

impl<'a> BitReader<'a> {
    /// A reader over `bytes`.
    pub(super) fn new(bytes: &'a [u8]) -> Self {
        BitReader {
            bytes,
            next: 0,
            acc: 0,
            filled: 0,
        }
    }

    /// Bits not yet read.
    pub(super) fn remaining(&self) -> usize {
        self.bytes.len().saturating_sub(self.next) * 8 + self.filled as usize
    }

    /// Tops the window up to at least 57 bits, or to the end of the bytes.
    #[inline]
    fn refill(&mut self) {
        while self.filled <= 56 {
            let Some(&b) = self.bytes.get(self.next) else {
                return;
            };
            self.acc |= u64::from(b) << self.filled;
            self.filled += 8;
            self.next += 1;
        }
    }

    /// Reads one bit.
    ///
    /// # Errors
    ///
    /// [`Error::Truncated`] at the end of the bytes.
    #[inline]
    pub(super) fn bit(&mut self, context: &'static str) -> Result<u32> {
        self.get(1, context)
    }

    /// Reads a `bits`-bit value (≤ 32 bits).
    ///
    /// # Errors
    ///
    /// [`Error::Truncated`] when fewer than `bits` bits remain.
    #[inline]
    pub(super) fn get(&mut self, bits: u32, context: &'static str) -> Result<u32> {
        let bits = bits.min(32);
        if self.filled < bits {
            self.refill();
            if self.filled < bits {
                return Err(Error::Truncated { context });
            }
        }
        let v = self.acc & ((1u64 << bits) - 1);
        self.acc >>= bits;
        self.filled -= bits;
        Ok(v as u32)
    }

    /// Reads a unary code: the number of one bits before the next zero bit, refusing more
    /// than `max` ones.
    ///
    /// # Errors
    ///
    /// [`Error::Truncated`] at the end of the bytes, [`Error::InvalidState`] past `max`.
    pub(super) fn unary(&mut self, max: u32, context: &'static str) -> Result<u32> {
        let mut count = 0u32;
        while self.bit(context)? == 1 {
            count += 1;
            if count > max {
                return Err(Error::invalid_state(format!(
                    "{context}: unary code too long"
                )));
            }
        }
        Ok(count)
    }

    /// Checks that only zero padding (less than one byte) is left.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidState`] on trailing bytes or non-zero padding bits.
    pub(super) fn finish(mut self, context: &'static str) -> Result<()> {
        if self.remaining() >= 8 {
            return Err(Error::invalid_state(format!("trailing bytes in {context}")));
        }
        while self.remaining() > 0 {
            if self.bit(context)? != 0 {
                return Err(Error::invalid_state(format!("{context}: non-zero padding")));
            }
        }
        Ok(())
    }
}

/// Appends `v` as an unsigned LEB128 varint.
pub(super) fn put_varint(mut v: u32, out: &mut Vec<u8>) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Reads an unsigned LEB128 varint of at most 5 bytes from the front of `bytes`, returning the
/// value and the rest.
///
/// # Errors
///
/// [`Error::Truncated`] when the varint is cut short, [`Error::InvalidState`] past `u32`.
pub(super) fn take_varint<'a>(bytes: &'a [u8], context: &'static str) -> Result<(u32, &'a [u8])> {
    let mut v = 0u64;
    for (i, &b) in bytes.iter().enumerate().take(5) {
        v |= u64::from(b & 0x7F) << (7 * i);
        if b & 0x80 == 0 {
            let v = u32::try_from(v)
                .map_err(|_| Error::invalid_state(format!("{context}: varint too large")))?;
            return Ok((v, bytes.get(i + 1..).unwrap_or(&[])));
        }
    }
    if bytes.len() >= 5 {
        Err(Error::invalid_state(format!("{context}: varint too long")))
    } else {
        Err(Error::Truncated { context })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bits_round_trip() -> Result<()> {
        let mut out = Vec::new();
        let mut w = BitWriter::new(&mut out);
        w.put(5, 3);
        w.unary(37);
        w.put(0xABCDE, 20);
        w.unary(0);
        w.finish();
        let mut r = BitReader::new(&out);
        assert_eq!(r.get(3, "t")?, 5);
        assert_eq!(r.unary(100, "t")?, 37);
        assert_eq!(r.get(20, "t")?, 0xABCDE);
        assert_eq!(r.unary(100, "t")?, 0);
        r.finish("t")
    }

    #[test]
    fn unary_limit_and_truncation_are_errors() {
        let bytes = [0xFF, 0xFF];
        assert!(BitReader::new(&bytes).unary(3, "t").is_err());
        assert!(matches!(
            BitReader::new(&bytes).unary(100, "t"),
            Err(Error::Truncated { .. })
        ));
    }

    #[test]
    fn varints_round_trip_and_refuse_garbage() -> Result<()> {
        for v in [0u32, 1, 127, 128, 300, 65_536, u32::MAX] {
            let mut out = Vec::new();
            put_varint(v, &mut out);
            assert_eq!(take_varint(&out, "t")?, (v, &[][..]));
        }
        assert!(take_varint(&[0x80], "t").is_err());
        assert!(take_varint(&[0xFF; 6], "t").is_err());
        assert!(take_varint(&[0xFF, 0xFF, 0xFF, 0xFF, 0x7F], "t").is_err());
        Ok(())
    }
}
