//! Apache DataSketches HLL images: export of a DataSketches-profile [`Distinct`] as an HLL_8
//! image, import of HLL_8 and HLL_6 images in HLL mode and of coupon-list and coupon-set
//! images (the modes DataSketches keeps small sketches in) of any target type, and HLL_4
//! images in HLL mode (4-bit offsets from `cur_min` plus an aux map of larger values).
//!
//! The image (DataSketches `PreambleUtil` / `hll_constants`, serial version 1, family 7)
//! starts with 8 bytes: preamble ints (2 list, 3 set, 10 HLL), serial version `1`, family `7`,
//! `lg_k`, `lg_arr`, flags (4 empty, 8 compact, 16 out of order, 32 full size), the list
//! count (list mode) or `cur_min` (HLL mode), and the mode byte (low 2 bits: 0 list, 1 set,
//! 2 HLL; next 2 bits: target type 0 HLL_4, 1 HLL_6, 2 HLL_8). Then:
//!
//! * **list** (from byte 8) and **set** (coupon count u32 at byte 8, coupons from 12): u32
//!   little-endian coupons `value << 26 | addr26`; compact images hold exactly the count,
//!   updatable ones `2^lg_arr` slots where 0 is empty;
//! * **HLL** (from byte 8): the HIP accumulator, `kxq0` and `kxq1` (f64 little-endian), the
//!   number of registers at `cur_min` and the aux count (u32 little-endian), then from byte
//!   40 the registers: `2^lg_k` bytes for HLL_8, 6-bit little-endian packing for HLL_6,
//!   nibbles (low first) for HLL_4, the value 15 meaning "in the aux map", which follows as
//!   coupons `value << 26 | slot` (compact: the aux count of them; updatable: a table).
//!
//! The export is in HLL mode with the out-of-order flag set: the HIP accumulator depends on
//! the order values arrived in, which a register state does not record, so DataSketches
//! estimates the image with its composite estimator from `kxq0`, `kxq1` and the count of
//! empty registers, all computed here from the registers.

use super::bits::BitReader;
use super::dense::{Dense, max_rank};
use super::profile;
use super::{Distinct, HashProfile, Repr};
use crate::error::{Error, Result};

const SER_VER: u8 = 1;
const FAMILY: u8 = 7;
const FLAG_EMPTY: u8 = 4;
const FLAG_COMPACT: u8 = 8;
const FLAG_OUT_OF_ORDER: u8 = 16;
const MODE_LIST: u8 = 0;
const MODE_SET: u8 = 1;
const MODE_HLL: u8 = 2;
const TGT_HLL4: u8 = 0;
const TGT_HLL6: u8 = 1;
const TGT_HLL8: u8 = 2;
const LIST_PREINTS: u8 = 2;
const SET_PREINTS: u8 = 3;
const HLL_PREINTS: u8 = 10;
const HLL_START: usize = 40;

/// The HLL_8 image of a DataSketches-profile sketch (compact, out of order).
pub(super) fn export(d: &Distinct) -> Result<Vec<u8>> {
    if d.profile != HashProfile::DataSketches {
        return Err(Error::incompatible(
            "hash profile for a DataSketches image",
            d.profile,
            HashProfile::DataSketches,
        ));
    }
    let regs = d.registers();
    let (mut kxq0, mut kxq1, mut zeros) = (0f64, 0f64, 0u32);
    for &r in &regs {
        let inv = (-f64::from(r)).exp2();
        if r < 32 {
            kxq0 += inv;
        } else {
            kxq1 += inv;
        }
        zeros += u32::from(r == 0);
    }
    let empty = zeros as usize == regs.len();
    let mut out = Vec::with_capacity(HLL_START + regs.len());
    out.extend_from_slice(&[HLL_PREINTS, SER_VER, FAMILY, d.p, 0]);
    out.push(FLAG_COMPACT | FLAG_OUT_OF_ORDER | if empty { FLAG_EMPTY } else { 0 });
    out.push(0); // cur_min: always 0 for HLL_8
    out.push(MODE_HLL | TGT_HLL8 << 2);
    for x in [0.0, kxq0, kxq1] {
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.extend_from_slice(&zeros.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes()); // aux count
    out.extend_from_slice(&regs);
    Ok(out)
}

/// The little-endian u32 at `at`.
fn u32_at(bytes: &[u8], at: usize, context: &'static str) -> Result<u32> {
    bytes
        .get(at..at + 4)
        .and_then(|b| b.try_into().ok())
        .map(u32::from_le_bytes)
        .ok_or(Error::Truncated { context })
}

/// A DataSketches-profile sketch at precision `lg_k` holding what the image holds.
///
/// # Errors
///
/// [`Error::Truncated`] when the image is shorter than its preamble announces;
/// [`Error::InvalidState`] for a wrong serial version or family, a preamble size that does
/// not match the mode, an unknown mode or target type, `lg_k` outside `4..=18` (shardfold's
/// precisions), a coupon whose value is not `1..=63`, a coupon count that does not match the
/// coupons, a register above 63, an HLL_4 image in HLL mode (not supported), or trailing
/// bytes.
pub(super) fn import(bytes: &[u8]) -> Result<Distinct> {
    let Some(pre) = bytes.first_chunk::<8>() else {
        return Err(Error::Truncated {
            context: "DataSketches HLL preamble",
        });
    };
    let [
        pre_ints,
        ser_ver,
        family,
        lg_k,
        lg_arr,
        flags,
        count_or_min,
        mode_byte,
    ] = *pre;
    if ser_ver != SER_VER || family != FAMILY {
        return Err(Error::invalid_state(format!(
            "not a DataSketches HLL image (serial version {ser_ver}, family {family})"
        )));
    }
    if Distinct::datasketches(lg_k).is_err() {
        return Err(Error::invalid_state(format!(
            "DataSketches HLL lg_k {lg_k}: shardfold holds 4..=18"
        )));
    }
    let (mode, tgt) = (mode_byte & 3, mode_byte >> 2 & 3);
    if tgt > TGT_HLL8 {
        return Err(Error::invalid_state(
            "DataSketches HLL: unknown target type",
        ));
    }
    let compact = flags & FLAG_COMPACT != 0;
    match (mode, pre_ints) {
        (MODE_LIST, LIST_PREINTS) => {
            let n = u32::from(count_or_min);
            coupons(lg_k, bytes, 8, n, compact, lg_arr)
        }
        (MODE_SET, SET_PREINTS) => {
            let n = u32_at(bytes, 8, "DataSketches HLL coupon count")?;
            coupons(lg_k, bytes, 12, n, compact, lg_arr)
        }
        (MODE_HLL, HLL_PREINTS) => hll_array(lg_k, tgt, count_or_min, compact, bytes),
        _ => Err(Error::invalid_state(
            "DataSketches HLL: mode and preamble size disagree",
        )),
    }
}

/// Imports the coupons starting at `start`: `n` of them (compact) or `2^lg_arr` slots.
fn coupons(
    lg_k: u8,
    bytes: &[u8],
    start: usize,
    n: u32,
    compact: bool,
    lg_arr: u8,
) -> Result<Distinct> {
    let slots = if compact {
        n as usize
    } else if lg_arr <= 26 {
        1usize << lg_arr
    } else {
        return Err(Error::invalid_state("DataSketches HLL: lg_arr above 26"));
    };
    let body = bytes.get(start..).unwrap_or(&[]);
    let need = slots.saturating_mul(4);
    if body.len() < need {
        return Err(Error::Truncated {
            context: "DataSketches HLL coupons",
        });
    }
    if body.len() > need {
        return Err(Error::invalid_state(
            "DataSketches HLL: bytes after the coupons",
        ));
    }
    let mut d = Distinct::datasketches(lg_k)?;
    let mut seen = 0u32;
    for c in body.chunks_exact(4) {
        let c = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        if c == 0 && !compact {
            continue;
        }
        if !(1..=63).contains(&(c >> 26)) {
            return Err(Error::invalid_state(
                "DataSketches HLL: a coupon value outside 1..=63",
            ));
        }
        seen += 1;
        d.insert_hash(profile::datasketches_form(lg_k, c));
    }
    if seen != n {
        return Err(Error::invalid_state(format!(
            "DataSketches HLL: {seen} coupons, count says {n}"
        )));
    }
    Ok(d)
}

/// Imports the registers of an HLL-mode image, capping each at `65 − lg_k`.
fn hll_array(lg_k: u8, tgt: u8, cur_min: u8, compact: bool, bytes: &[u8]) -> Result<Distinct> {
    let k = 1usize << lg_k;
    let aux = u32_at(bytes, 36, "DataSketches HLL preamble")?;
    let body = bytes.get(HLL_START..).unwrap_or(&[]);
    let array_len = match tgt {
        TGT_HLL8 => k,
        TGT_HLL6 => k * 3 / 4 + 1,
        _ => k / 2,
    };
    let (array, rest) = body.split_at_checked(array_len).ok_or(Error::Truncated {
        context: "DataSketches HLL registers",
    })?;
    let raw: Vec<u8> = match tgt {
        TGT_HLL8 => array.to_vec(),
        TGT_HLL6 => {
            let mut r = BitReader::new(array);
            (0..k)
                .map(|_| r.get(6, "DataSketches HLL_6 registers").map(|v| v as u8))
                .collect::<Result<_>>()?
        }
        _ => hll4_registers(lg_k, cur_min, array, aux, compact, rest)?,
    };
    if tgt != TGT_HLL4 && (aux != 0 || !rest.is_empty()) {
        return Err(Error::invalid_state(
            "DataSketches HLL: aux entries or bytes after the registers",
        ));
    }
    if raw.iter().any(|&r| r > 63) {
        return Err(Error::invalid_state(
            "DataSketches HLL: a register above 63",
        ));
    }
    let cap = max_rank(lg_k);
    let regs = raw.into_iter().map(|r| r.min(cap)).collect();
    let mut d = Distinct::datasketches(lg_k)?;
    d.repr = Repr::Dense(Dense::from_registers(regs));
    Ok(d)
}

/// The nibble of an HLL_4 register that says "see the aux map".
const AUX_TOKEN: u8 = 15;

/// HLL_4 registers: 4-bit offsets from `cur_min` (low nibble first), the value `15` standing
/// for an entry of the aux map that follows the array (`aux` coupons `value << 26 | slot`;
/// compact: exactly those, updatable: a table of slots, 0 = empty).
fn hll4_registers(
    lg_k: u8,
    cur_min: u8,
    array: &[u8],
    aux: u32,
    compact: bool,
    rest: &[u8],
) -> Result<Vec<u8>> {
    const CTX: &str = "DataSketches HLL_4 aux map";
    let need = (aux as usize).saturating_mul(4);
    if rest.len() < need || !rest.len().is_multiple_of(4) {
        return Err(Error::Truncated { context: CTX });
    }
    if compact && rest.len() != need {
        return Err(Error::invalid_state(
            "DataSketches HLL_4: bytes after the aux map",
        ));
    }
    let k = 1usize << lg_k;
    let mut exceptions = vec![None; k];
    let mut seen = 0u32;
    for c in rest.chunks_exact(4) {
        let c = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        if c == 0 && !compact {
            continue;
        }
        let slot = (c & profile::ADDR_MASK) as usize & (k - 1);
        match exceptions.get_mut(slot) {
            Some(e @ None) => *e = Some((c >> 26) as u8),
            _ => {
                return Err(Error::invalid_state(
                    "DataSketches HLL_4: aux slot given twice",
                ));
            }
        }
        seen += 1;
    }
    if seen != aux {
        return Err(Error::invalid_state(
            "DataSketches HLL_4: aux count mismatch",
        ));
    }
    let mut regs = Vec::with_capacity(k);
    for (i, exception) in exceptions.into_iter().enumerate() {
        let byte = array.get(i / 2).copied().unwrap_or(0);
        let nibble = if i % 2 == 1 { byte >> 4 } else { byte & 0x0F };
        regs.push(match (nibble, exception) {
            (AUX_TOKEN, Some(v)) => v,
            (AUX_TOKEN, None) => {
                return Err(Error::invalid_state(
                    "DataSketches HLL_4: a register points to a missing aux entry",
                ));
            }
            (_, Some(_)) => {
                return Err(Error::invalid_state(
                    "DataSketches HLL_4: an aux entry for an ordinary register",
                ));
            }
            (n, None) => n.saturating_add(cur_min),
        });
    }
    Ok(regs)
}
