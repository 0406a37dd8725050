//! The stored form of [`Keyed`]: keys in key order, one payload section per key.

use super::{Key, Keyed, MAX_KEY_BYTES, check_max_keys, key_hash};
use crate::codec::nested;
use crate::codec::{
    Codec, Limits, Reader, read_postcard, tags, write_postcard, write_section_with,
};
use crate::error::{Error, Result};

/// Parameter block: `max_keys` u32 LE, the aggregate's type tag u16 LE, a section with its
/// parameters and a section with the template's payload (normally empty). Payload: the key count u32 LE; per key in ascending key order a section with the
/// key's postcard bytes and a section with its aggregate's payload; then 0 (no overflow bucket)
/// or 1 and a section with the overflow bucket's payload.
impl<K: Key, A: Codec> Codec for Keyed<K, A> {
    const TYPE_TAG: u16 = tags::KEYED;

    fn write_params(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.max_keys.to_le_bytes());
        nested::write_params(&self.template, out);
        write_section_with(out, |o| self.template.write_payload(o));
    }

    fn write_payload(&self, out: &mut Vec<u8>) {
        let n = u32::try_from(self.groups.len()).unwrap_or(u32::MAX);
        out.extend_from_slice(&n.to_le_bytes());
        for (k, a) in &self.groups {
            write_section_with(out, |o| write_postcard(k, o));
            write_section_with(out, |o| a.write_payload(o));
        }
        match &self.other {
            None => out.push(0),
            Some(a) => {
                out.push(1);
                write_section_with(out, |o| a.write_payload(o));
            }
        }
    }

    fn read_parts(params: &[u8], payload: &[u8], limits: &Limits) -> Result<Self> {
        let mut p = Reader::new(params);
        let max_keys = p.u32("group-by max_keys")?;
        check_max_keys(max_keys)
            .map_err(|_| Error::invalid_state("group-by max_keys out of range"))?;
        let agg_params = nested::read_params::<A>(&mut p)?;
        let template = A::read_parts(agg_params, p.section("group-by template")?, limits)?;
        p.finish("group-by params")?;
        let mut state = Keyed::blank(max_keys, template);
        let mut r = Reader::new(payload);
        let n = r.u32("group-by key count")?;
        if n > max_keys {
            return Err(Error::invalid_state(
                "group-by holds more keys than its bound",
            ));
        }
        for _ in 0..n {
            let key_bytes = r.section("group-by key")?;
            if key_bytes.len() > MAX_KEY_BYTES {
                return Err(Error::invalid_state(
                    "group-by key longer than MAX_KEY_BYTES",
                ));
            }
            let key: K = read_postcard(key_bytes, "group-by key")?;
            if state
                .groups
                .last_key_value()
                .is_some_and(|(last, _)| *last >= key)
            {
                return Err(Error::invalid_state("group-by keys not strictly ascending"));
            }
            let a = A::read_parts(agg_params, r.section("group-by aggregate")?, limits)?;
            let h = key_hash(&key)?;
            state.enter(h, key, a);
        }
        state.other = match r.u8("group-by overflow flag")? {
            0 => None,
            1 => Some(A::read_parts(
                agg_params,
                r.section("group-by overflow")?,
                limits,
            )?),
            _ => return Err(Error::invalid_state("bad group-by overflow flag")),
        };
        r.finish("group-by payload")?;
        if state.other.is_some() && !state.is_full() {
            return Err(Error::invalid_state(
                "group-by overflow bucket while below the bound on keys",
            ));
        }
        Ok(state)
    }
}
