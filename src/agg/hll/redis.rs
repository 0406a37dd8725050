//! Redis `HYLL` strings: export of a Redis-profile [`Distinct`] as the dense encoding, import
//! of the dense and the sparse encodings (Redis 7 `src/hyperloglog.c`).
//!
//! A `HYLL` string is a 16-byte header — the magic `HYLL`, the encoding byte (0 dense, 1
//! sparse), three unused bytes, and a cached cardinality (u64 little-endian; the most
//! significant bit of its last byte set means "stale, recompute") — followed by:
//!
//! * **dense**: 16 384 registers of 6 bits, packed least significant bit first (register `i`
//!   starts at bit `6 i`), 12 288 bytes;
//! * **sparse**: run-length opcodes over the 16 384 registers, in order: `00xxxxxx` = ZERO
//!   (`xxxxxx + 1` empty registers), `01xxxxxx yyyyyyyy` = XZERO (`(xxxxxx << 8 | yyyyyyyy) + 1`
//!   empty registers), `1vvvvvxx` = VAL (`xx + 1` registers holding `vvvvv + 1`).

use super::bits::{BitReader, BitWriter};
use super::dense::{Dense, max_rank};
use super::{Distinct, HashProfile, Repr};
use crate::error::{Error, Result};

/// Redis's precision.
pub(super) const REDIS_P: u8 = 14;
/// Registers in a Redis HLL.
const REGISTERS: usize = 1 << REDIS_P;
/// Header bytes.
const HEADER: usize = 16;
/// Bytes of the dense register array.
const DENSE_BYTES: usize = REGISTERS * 6 / 8;
/// Encoding byte of the dense representation.
const ENC_DENSE: u8 = 0;
/// Encoding byte of the sparse representation.
const ENC_SPARSE: u8 = 1;

/// The dense `HYLL` string of a Redis-profile sketch, with the cached cardinality marked
/// stale so that Redis computes it from the registers.
pub(super) fn export(d: &Distinct) -> Result<Vec<u8>> {
    if d.profile != HashProfile::Redis {
        return Err(Error::incompatible(
            "hash profile for a Redis HYLL export",
            d.profile,
            HashProfile::Redis,
        ));
    }
    let regs = d.registers();
    let mut out = Vec::with_capacity(HEADER + DENSE_BYTES);
    out.extend_from_slice(b"HYLL");
    out.push(ENC_DENSE);
    out.extend_from_slice(&[0; 3]);
    out.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0x80]);
    let mut w = BitWriter::new(&mut out);
    for &r in &regs {
        w.put(u32::from(r), 6);
    }
    w.finish();
    Ok(out)
}

/// A Redis-profile sketch holding the registers of a `HYLL` string (dense representation).
///
/// # Errors
///
/// [`Error::Truncated`] when the header or an opcode is cut short; [`Error::InvalidState`]
/// for a bad magic, an unknown encoding byte, a dense string of the wrong length, a register
/// above 51, or sparse opcodes that do not cover exactly the 16 384 registers.
pub(super) fn import(bytes: &[u8]) -> Result<Distinct> {
    let Some((header, body)) = bytes.split_first_chunk::<HEADER>() else {
        return Err(Error::Truncated {
            context: "Redis HYLL header",
        });
    };
    if &header[..4] != b"HYLL" {
        return Err(Error::invalid_state("not a Redis HYLL string: bad magic"));
    }
    let regs = match header[4] {
        ENC_DENSE => dense_registers(body)?,
        ENC_SPARSE => sparse_registers(body)?,
        e => {
            return Err(Error::invalid_state(format!(
                "Redis HYLL: unknown encoding byte {e}"
            )));
        }
    };
    if regs.iter().any(|&r| r > max_rank(REDIS_P)) {
        return Err(Error::invalid_state(
            "Redis HYLL: a register above 51 (no MurmurHash64A value gives one)",
        ));
    }
    let mut d = Distinct::redis();
    d.repr = Repr::Dense(Dense::from_registers(regs));
    Ok(d)
}

/// The 6-bit registers of the dense encoding.
fn dense_registers(body: &[u8]) -> Result<Vec<u8>> {
    if body.len() < DENSE_BYTES {
        return Err(Error::Truncated {
            context: "Redis HYLL dense registers",
        });
    }
    if body.len() > DENSE_BYTES {
        return Err(Error::invalid_state(
            "Redis HYLL dense: bytes after the registers",
        ));
    }
    let mut r = BitReader::new(body);
    (0..REGISTERS)
        .map(|_| r.get(6, "Redis HYLL dense registers").map(|v| v as u8))
        .collect()
}

/// The registers the sparse opcodes stand for.
fn sparse_registers(body: &[u8]) -> Result<Vec<u8>> {
    let mut regs = vec![0u8; REGISTERS];
    let mut at = 0usize;
    let mut ops = body.iter();
    while let Some(&op) = ops.next() {
        let (run, value) = match op >> 6 {
            0 => (usize::from(op & 0x3F) + 1, 0),
            1 => {
                let Some(&low) = ops.next() else {
                    return Err(Error::Truncated {
                        context: "Redis HYLL sparse XZERO opcode",
                    });
                };
                ((usize::from(op & 0x3F) << 8 | usize::from(low)) + 1, 0)
            }
            _ => (usize::from(op & 0x3) + 1, (op >> 2 & 0x1F) + 1),
        };
        let Some(span) = regs.get_mut(at..at + run) else {
            return Err(Error::invalid_state(
                "Redis HYLL sparse: opcodes run past register 16383",
            ));
        };
        span.fill(value);
        at += run;
    }
    if at != REGISTERS {
        return Err(Error::invalid_state(format!(
            "Redis HYLL sparse: opcodes cover {at} registers, not 16384"
        )));
    }
    Ok(regs)
}
