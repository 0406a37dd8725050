//! An appended record: one batch's events of one bucket, written once under a unique key and
//! folded into the bucket's bases by a later compaction.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::codec::{Codec, Limits, Reader, tags};
use crate::error::{Error, Result};

/// Fixed bytes per event before its value: fingerprint and time.
const EVENT_HEAD: usize = 16;

/// One record (type tag [`tags::SERIES_RECORD`]).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Record<V> {
    /// Events of the batch refused as late by the writer (counted once, in shard 0's base).
    pub(crate) late: u64,
    /// `(fingerprint, event time ms, value)`, in batch order.
    pub(crate) events: Vec<(u64, u64, V)>,
}

impl<V> Default for Record<V> {
    fn default() -> Self {
        Record {
            late: 0,
            events: Vec::new(),
        }
    }
}

impl<V: Serialize + DeserializeOwned> Record<V> {
    /// Appends one event's bytes (as in the payload) to `out`; on error `out` is unchanged.
    pub(crate) fn write_event(fp: u64, time_ms: u64, value: &V, out: &mut Vec<u8>) -> Result<()> {
        let at = out.len();
        out.extend_from_slice(&fp.to_le_bytes());
        out.extend_from_slice(&time_ms.to_le_bytes());
        match postcard::to_extend(value, Appender(out)) {
            Ok(_) => Ok(()),
            Err(_) => {
                out.truncate(at);
                Err(Error::InvalidValue {
                    reason: "event value cannot be serialized",
                })
            }
        }
    }
}

/// Lets postcard append to a borrowed buffer (which survives a serialization error).
struct Appender<'a>(&'a mut Vec<u8>);

impl Extend<u8> for Appender<'_> {
    fn extend<I: IntoIterator<Item = u8>>(&mut self, iter: I) {
        self.0.extend(iter);
    }
}

/// Builds a record's envelope event by event, without holding the events (the fold's path).
pub(crate) struct RecordWriter {
    payload: Vec<u8>,
    count: u32,
}

impl RecordWriter {
    pub(crate) fn new() -> Self {
        RecordWriter {
            payload: vec![0; 12], // late and count, filled in by `finish`
            count: 0,
        }
    }

    /// Bytes so far.
    pub(crate) fn len(&self) -> usize {
        self.payload.len()
    }

    /// Events so far.
    pub(crate) fn count(&self) -> u32 {
        self.count
    }

    /// Appends an event; on error nothing is appended.
    pub(crate) fn push<V: Serialize + DeserializeOwned>(
        &mut self,
        fp: u64,
        time_ms: u64,
        value: &V,
    ) -> Result<()> {
        Record::<V>::write_event(fp, time_ms, value, &mut self.payload)?;
        self.count += 1;
        Ok(())
    }

    /// The record's envelope, with `late` refused events counted in it.
    pub(crate) fn finish(mut self, late: u64) -> Vec<u8> {
        self.payload[..8].copy_from_slice(&late.to_le_bytes());
        self.payload[8..12].copy_from_slice(&self.count.to_le_bytes());
        crate::codec::encode_raw(tags::SERIES_RECORD, &[], &self.payload)
    }
}

impl<V: Serialize + DeserializeOwned> Codec for Record<V> {
    const TYPE_TAG: u16 = tags::SERIES_RECORD;

    fn write_payload(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.late.to_le_bytes());
        let n = u32::try_from(self.events.len()).unwrap_or(u32::MAX);
        out.extend_from_slice(&n.to_le_bytes());
        for (fp, t, v) in &self.events {
            // a value that cannot be serialized was refused when the record was built; should
            // one slip through, the canonical check on decode refuses the blob
            let _ = Self::write_event(*fp, *t, v, out);
        }
    }

    fn read_parts(params: &[u8], payload: &[u8], _: &Limits) -> Result<Self> {
        crate::agg::no_params(params)?;
        let mut r = Reader::new(payload);
        let late = r.u64("record late count")?;
        let n = r.u32("record event count")? as usize;
        if n.saturating_mul(EVENT_HEAD) > r.remaining() {
            return Err(Error::Truncated {
                context: "record events",
            });
        }
        let mut rest = r.take(r.remaining(), "record events")?;
        let mut events = Vec::with_capacity(n);
        for _ in 0..n {
            let mut head = Reader::new(rest);
            let fp = head.u64("event fingerprint")?;
            let t = head.u64("event time")?;
            let tail = rest.get(EVENT_HEAD..).unwrap_or_default();
            let (value, after) = match postcard::take_from_bytes::<V>(tail) {
                Ok(ok) => ok,
                Err(postcard::Error::DeserializeUnexpectedEnd) => {
                    return Err(Error::Truncated {
                        context: "event value",
                    });
                }
                Err(e) => return Err(Error::invalid_state(format!("event value: {e}"))),
            };
            events.push((fp, t, value));
            rest = after;
        }
        if !rest.is_empty() {
            return Err(Error::invalid_state("trailing bytes in record"));
        }
        Ok(Record { late, events })
    }
}
