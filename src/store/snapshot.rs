//! Snapshots of a metric: shard → (version, state bytes), merged as a state-based CRDT.
//!
//! Two snapshots merge by keeping, per shard, the entry with the higher version. Entries are
//! compared as `(version, state bytes)` so that two different states claiming the same version
//! (which one store never produces, but two diverged copies can) resolve to the same winner
//! on every replica: the merge is the join of a product of total orders, hence commutative,
//! associative and idempotent (checked by the law suite in `tests/store_snapshot.rs`).
//! Versions are those of [`KvStore`](super::KvStore): comparable between copies of one store.

use std::collections::BTreeMap;

use crate::codec::{self, Codec, Limits, Reader, tags};
use crate::error::Result;
use crate::merge::{Insert, Merge};
use crate::{Aggregate, Error};

/// One shard of a snapshot.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct ShardSnapshot {
    /// The shard's version in the store it was read from.
    pub version: u64,
    /// The shard's encoded state (an envelope).
    pub state: Vec<u8>,
}

/// A map shard → [`ShardSnapshot`], taken with [`Metric::snapshot`](super::Metric::snapshot).
///
/// ```
/// use shardfold::Merge;
/// use shardfold::store::Snapshot;
/// let mut a = Snapshot::default();
/// a.insert_shard(0, 3, b"old".to_vec());
/// let mut b = Snapshot::default();
/// b.insert_shard(0, 4, b"new".to_vec());
/// b.insert_shard(1, 1, b"x".to_vec());
/// a.merge(&b)?;
/// assert_eq!(a.shard(0).map(|s| s.version), Some(4));
/// assert_eq!(a.len(), 2);
/// # Ok::<(), shardfold::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Snapshot {
    shards: BTreeMap<u32, ShardSnapshot>,
}

impl Snapshot {
    /// Sets shard `k` to `(version, state)` if that is newer than what the snapshot holds
    /// (the merge rule for a single shard).
    pub fn insert_shard(&mut self, k: u32, version: u64, state: Vec<u8>) {
        let new = ShardSnapshot { version, state };
        match self.shards.get_mut(&k) {
            Some(old) if *old >= new => {}
            Some(old) => *old = new,
            None => {
                self.shards.insert(k, new);
            }
        }
    }

    /// Shard `k`, if present.
    pub fn shard(&self, k: u32) -> Option<&ShardSnapshot> {
        self.shards.get(&k)
    }

    /// The shards present, in shard order.
    pub fn iter(&self) -> impl Iterator<Item = (u32, &ShardSnapshot)> {
        self.shards.iter().map(|(k, s)| (*k, s))
    }

    /// Number of shards present.
    pub fn len(&self) -> usize {
        self.shards.len()
    }

    /// Whether no shard is present.
    pub fn is_empty(&self) -> bool {
        self.shards.is_empty()
    }

    /// Decodes every shard's state and merges them: the metric's value at snapshot time.
    ///
    /// # Errors
    ///
    /// Decode errors of a shard's bytes; merge errors.
    pub fn state<A: Aggregate>(&self) -> Result<A> {
        super::fold::merge_all(self.shards.values().map(|s| codec::decode::<A>(&s.state)))
    }
}

impl Merge for Snapshot {
    fn check_merge(&self, _: &Self) -> Result<()> {
        Ok(())
    }

    fn merge_unchecked(&mut self, other: &Self) -> Result<()> {
        for (k, s) in &other.shards {
            self.insert_shard(*k, s.version, s.state.clone());
        }
        Ok(())
    }
}

impl Insert<(u32, u64, Vec<u8>)> for Snapshot {
    fn check_insert(&self, _: &(u32, u64, Vec<u8>)) -> Result<()> {
        Ok(())
    }

    fn insert_unchecked(&mut self, (k, version, state): (u32, u64, Vec<u8>)) -> Result<()> {
        self.insert_shard(k, version, state);
        Ok(())
    }
}

/// Payload: u32 shard count, then per shard (ascending): u32 shard, u64 version, u32-prefixed
/// state bytes. No parameters.
impl Codec for Snapshot {
    const TYPE_TAG: u16 = tags::SNAPSHOT;

    fn write_payload(&self, out: &mut Vec<u8>) {
        let n = u32::try_from(self.shards.len()).unwrap_or(u32::MAX);
        out.extend_from_slice(&n.to_le_bytes());
        for (k, s) in &self.shards {
            out.extend_from_slice(&k.to_le_bytes());
            out.extend_from_slice(&s.version.to_le_bytes());
            codec::write_section_with(out, |o| o.extend_from_slice(&s.state));
        }
    }

    fn read_parts(params: &[u8], payload: &[u8], _: &Limits) -> Result<Self> {
        crate::agg::no_params(params)?;
        let mut r = Reader::new(payload);
        let n = r.u32("snapshot shard count")?;
        let mut snap = Snapshot::default();
        for _ in 0..n {
            let k = r.u32("snapshot shard")?;
            let version = r.u64("snapshot version")?;
            let state = r.section("snapshot state")?.to_vec();
            if snap
                .shards
                .last_key_value()
                .is_some_and(|(last, _)| *last >= k)
            {
                return Err(Error::invalid_state(
                    "snapshot shards not strictly ascending",
                ));
            }
            snap.shards.insert(k, ShardSnapshot { version, state });
        }
        r.finish("snapshot payload")?;
        Ok(snap)
    }
}
