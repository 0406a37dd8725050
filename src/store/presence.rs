//! Which shards of a [`Metric`](super::Metric) have been written: `<metric>/present`, so that a
//! shard key that vanished from the store (flushed, evicted by a memory policy, deleted by hand)
//! is reported as [`Error::Vanished`] instead of being taken for an empty shard. A
//! [`Series`](super::Series) keeps the same record per group of 256 buckets, one bit per
//! bucket base (`<m>/p/<group>`).
//!
//! A shard is marked after its first write (compare-and-set on the presence key, retried), and
//! marked again by the first fold of each process that finds it unmarked — so a crash between
//! the two writes is healed by the next fold. What cannot be detected: a store flushed whole
//! (the presence key and the metadata vanish with the shards, and the metric looks new).

use super::{KvStore, Version, WriteOutcome};
use crate::codec::{self, Codec, Limits, Reader, tags};
use crate::error::{Error, Result};

/// Conditional-write attempts to mark or unmark a shard before giving up.
const ATTEMPTS: u32 = 16;

/// What `<metric>/present` holds (type tag [`tags::STORE_PRESENCE`]): one bit per shard.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Presence {
    shards: u32,
    /// Bit `k % 8` of byte `k / 8` is shard `k`; bits at or above `shards` are zero.
    bits: Vec<u8>,
}

impl Presence {
    pub(crate) fn new(shards: u32) -> Self {
        Presence {
            shards,
            bits: vec![0; shards.div_ceil(8) as usize],
        }
    }

    /// Whether shard `k` was written.
    pub(crate) fn has(&self, k: u32) -> bool {
        self.bits
            .get((k / 8) as usize)
            .is_some_and(|b| b & (1 << (k % 8)) != 0)
    }

    /// Sets or clears shard `k`'s bit; `true` when that changed anything.
    fn set(&mut self, k: u32, on: bool) -> bool {
        let Some(b) = self.bits.get_mut((k / 8) as usize) else {
            return false;
        };
        let before = *b;
        if on {
            *b |= 1 << (k % 8);
        } else {
            *b &= !(1 << (k % 8));
        }
        *b != before
    }
}

/// Payload: the shard count K, u32 LE, then ⌈K/8⌉ bytes of bits (shard `k` is bit `k % 8` of
/// byte `k / 8`; bits at or above K are zero).
impl Codec for Presence {
    const TYPE_TAG: u16 = tags::STORE_PRESENCE;

    fn write_payload(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.shards.to_le_bytes());
        out.extend_from_slice(&self.bits);
    }

    fn read_parts(params: &[u8], payload: &[u8], _: &Limits) -> Result<Self> {
        crate::agg::no_params(params)?;
        let mut r = Reader::new(payload);
        let shards = r.u32("presence shard count")?;
        if shards == 0 || shards > super::meta::MAX_SHARDS {
            return Err(Error::invalid_state(format!("presence of {shards} shards")));
        }
        let bits = r
            .take(shards.div_ceil(8) as usize, "presence bits")?
            .to_vec();
        r.finish("presence payload")?;
        let p = Presence { shards, bits };
        if (shards..shards.div_ceil(8) * 8).any(|k| p.has(k)) {
            return Err(Error::invalid_state("presence bit beyond the shard count"));
        }
        Ok(p)
    }
}

/// The presence record at `key` (empty if absent), with its version.
pub(crate) async fn read(
    store: &dyn KvStore,
    key: &[u8],
    shards: u32,
) -> Result<(Presence, Option<Version>)> {
    match store.read(key).await? {
        None => Ok((Presence::new(shards), None)),
        Some((bytes, v)) => {
            let p: Presence = codec::decode(&bytes)?;
            if p.shards != shards {
                return Err(Error::invalid_state(format!(
                    "presence of {} shards in a metric of {shards}",
                    p.shards
                )));
            }
            Ok((p, Some(v)))
        }
    }
}

/// Sets (`on`) or clears shard `k`'s bit with compare-and-set, retrying conflicts.
pub(crate) async fn mark(
    store: &dyn KvStore,
    metric: &str,
    key: &[u8],
    shards: u32,
    k: u32,
    on: bool,
) -> Result<()> {
    modify(store, metric, key, shards, k, |p| p.set(k, on)).await?;
    Ok(())
}

/// Applies `change` (which says whether it changed anything) to the record at `key` with
/// compare-and-set, retrying conflicts: the record as written, or as read when `change` left
/// it as it was (then nothing is written). `Contended` names `shard` when the attempts run out.
pub(crate) async fn modify(
    store: &dyn KvStore,
    metric: &str,
    key: &[u8],
    shards: u32,
    shard: u32,
    change: impl Fn(&mut Presence) -> bool,
) -> Result<Presence> {
    for _ in 0..ATTEMPTS {
        let (mut p, version) = read(store, key, shards).await?;
        if !change(&mut p) {
            return Ok(p);
        }
        let bytes = codec::encode(&p);
        let written = match version {
            None => store.create(key, &bytes).await?,
            Some(v) => store.update(key, &bytes, v).await?,
        };
        if matches!(written, WriteOutcome::Written(_)) {
            return Ok(p);
        }
    }
    Err(Error::Contended {
        metric: metric.to_owned(),
        shard,
        attempts: ATTEMPTS,
    })
}

impl Presence {
    /// Sets or clears every bit in `range` (clamped to the shard count); `true` when that
    /// changed anything.
    pub(crate) fn set_range(&mut self, range: std::ops::Range<u32>, on: bool) -> bool {
        let mut changed = false;
        for k in range.start..range.end.min(self.shards) {
            changed |= self.set(k, on);
        }
        changed
    }

    /// Whether no bit is set.
    pub(crate) fn is_empty(&self) -> bool {
        self.bits.iter().all(|&b| b == 0)
    }
}
