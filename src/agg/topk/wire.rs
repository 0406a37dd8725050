//! The encoded form of [`TopK`], validated on decode.
//!
//! ```text
//! params   u32 LE   k, 1 ..= 65 536
//! payload  varint   total weight n
//!          varint   number of counters E ≤ k
//!          E × (postcard item, varint count ≥ 1), items strictly increasing; Σ counts ≤ n
//! ```

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::TopK;
use crate::codec::{Codec, Limits, Reader, tags, write_postcard};
use crate::error::{Error, Result};

impl<T> Codec for TopK<T>
where
    T: Ord + Clone + Serialize + DeserializeOwned,
{
    const TYPE_TAG: u16 = tags::TOP_K;

    fn write_params(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.k.to_le_bytes());
    }

    fn write_payload(&self, out: &mut Vec<u8>) {
        write_postcard(&self.n, out);
        write_postcard(&(self.counters.len() as u64), out);
        for (item, count) in &self.counters {
            write_postcard(item, out);
            write_postcard(count, out);
        }
    }

    fn read_parts(params: &[u8], payload: &[u8], _limits: &Limits) -> Result<Self> {
        let mut t = TopK::try_new(read_k(params)?)
            .map_err(|_| Error::invalid_state("TopK k out of range"))?;
        let mut rest = payload;
        t.n = take(&mut rest, "TopK total")?;
        let len: u64 = take(&mut rest, "TopK counter count")?;
        if len > u64::from(t.k) {
            return Err(Error::invalid_state("more TopK counters than k"));
        }
        // at most k ≤ 65 536 entries, each read from bytes present before it is stored
        for _ in 0..len {
            let item: T = take(&mut rest, "TopK item")?;
            let count: u64 = take(&mut rest, "TopK count")?;
            if t.counters
                .last_key_value()
                .is_some_and(|(last, _)| *last >= item)
            {
                return Err(Error::invalid_state("TopK items not strictly increasing"));
            }
            if count == 0 {
                return Err(Error::invalid_state("TopK counter of zero"));
            }
            t.counters.insert(item, count);
        }
        if !rest.is_empty() {
            return Err(Error::invalid_state("trailing bytes in TopK payload"));
        }
        check_counts(&t)?;
        Ok(t)
    }
}

/// The parameter block: exactly four bytes.
fn read_k(params: &[u8]) -> Result<u32> {
    let mut r = Reader::new(params);
    let k = r.u32("TopK k")?;
    r.finish("TopK parameters")?;
    Ok(k)
}

/// Takes one postcard value from the front of `bytes`.
fn take<V: DeserializeOwned>(bytes: &mut &[u8], context: &'static str) -> Result<V> {
    match postcard::take_from_bytes::<V>(bytes) {
        Ok((value, rest)) => {
            *bytes = rest;
            Ok(value)
        }
        Err(postcard::Error::DeserializeUnexpectedEnd) => Err(Error::Truncated { context }),
        Err(e) => Err(Error::invalid_state(format!("{context}: {e}"))),
    }
}

/// The counters add up to at most the total, without overflow (so each is at most `n`).
fn check_counts<T>(t: &TopK<T>) -> Result<()> {
    let mut sum = 0u64;
    for &c in t.counters.values() {
        sum = sum
            .checked_add(c)
            .filter(|&s| s <= t.n)
            .ok_or_else(|| Error::invalid_state("TopK counters exceed the total"))?;
    }
    Ok(())
}
