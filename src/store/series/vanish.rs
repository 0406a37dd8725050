//! Bucket bases that vanished: which bases were written is recorded per group of 256 buckets
//! (`<m>/p/<group>`, one bit per bucket), so that a base that disappeared from the store
//! (flushed, evicted by a memory policy, deleted by hand) is reported as [`Error::Vanished`]
//! by queries and compactions instead of being taken for an empty bucket — a compaction that
//! took it for empty would write a fresh base and forget every event compacted before.
//!
//! * A bucket's bit is set after its base is first created, and set again by the first
//!   compaction in each process that finds the base present (so a crash between the two writes
//!   is healed by a later compaction).
//! * Eviction clears the bits of the buckets it deletes **before** deleting them, and deletes a
//!   group's record once every bucket of the group is evicted: a reader that finds a base absent
//!   reads the bit after the base, so it never sees an evicted bucket as vanished.
//! * [`Series::accept_vanished`] acknowledges a loss: it clears the bits of absent bases.
//!
//! Not detected: a store flushed whole (the metadata vanishes too and the series looks new);
//! a record that vanished before any compaction folded it (its events are lost — redeliver
//! them within the horizon); a fingerprint set that vanished makes compactions of its bucket
//! fail with [`Error::Contended`] until the bucket is repaired (see
//! [`Series::query_range_readable`]).

use super::keys::GROUP;
use super::{Series, SeriesValue};
use crate::Aggregate;
use crate::error::{Error, Result};
use crate::merge::Insert;
use crate::store::presence;

/// Buckets per presence record, as the record's "shard count".
const BITS: u32 = GROUP as u32;

/// The most bucket numbers a handle remembers as marked before it forgets them all.
const MARKED_CACHE: usize = 1 << 16;

/// Bit of `bucket` in its group's record.
fn bit(bucket: u64) -> u32 {
    (bucket % GROUP) as u32
}

impl<A, V> Series<A, V>
where
    A: Aggregate + Insert<V>,
    V: SeriesValue,
{
    /// [`Error::Vanished`] for the base of `bucket`.
    pub(crate) fn vanished(&self, bucket: u64) -> Error {
        Error::Vanished {
            metric: self.name.clone(),
            key: String::from_utf8_lossy(&self.keys.base(bucket)).into_owned(),
        }
    }

    /// Whether the base of `bucket` was written (and not evicted): read after finding the base
    /// absent.
    pub(crate) async fn base_was_written(&self, bucket: u64) -> Result<bool> {
        let key = self.keys.presence(bucket / GROUP);
        let (p, _) = presence::read(&*self.store, &key, BITS)
            .await
            .map_err(|e| match e {
                Error::Store { .. } => e,
                e => Error::damaged(&self.name, &key, e),
            })?;
        Ok(p.has(bit(bucket)))
    }

    /// After a base was found absent and its mark set: whether it is still so. A compaction
    /// may have created the base between the two reads (it marks after creating), or an
    /// eviction deleted it (it unmarks before deleting): the base is read again, then the mark.
    pub(crate) async fn still_vanished(&self, bucket: u64) -> Result<bool> {
        if self.store.read(&self.keys.base(bucket)).await?.is_some() {
            return Ok(false);
        }
        self.base_was_written(bucket).await
    }

    /// Records that the base of `bucket` exists (once per handle and bucket).
    pub(crate) async fn mark_base(&self, bucket: u64) -> Result<()> {
        if self.marked_contains(bucket) {
            return Ok(());
        }
        let key = self.keys.presence(bucket / GROUP);
        presence::modify(&*self.store, &self.name, &key, BITS, 0, |p| {
            p.set_range(bit(bucket)..bit(bucket) + 1, true)
        })
        .await?;
        if let Ok(mut marked) = self.marked.lock() {
            if marked.len() >= MARKED_CACHE {
                marked.clear();
            }
            marked.insert(bucket);
        }
        Ok(())
    }

    fn marked_contains(&self, bucket: u64) -> bool {
        self.marked.lock().is_ok_and(|m| m.contains(&bucket))
    }

    /// Clears the bits of the buckets in `[from, to)` (about to be evicted); deletes a group's
    /// record once the group is wholly before `to` and no bit is left.
    pub(crate) async fn unmark_bases(&self, from: u64, to: u64) -> Result<()> {
        if to <= from {
            return Ok(());
        }
        if let Ok(mut marked) = self.marked.lock() {
            marked.retain(|b| !(from..to).contains(b));
        }
        for group in from / GROUP..=(to - 1) / GROUP {
            let first = group * GROUP;
            let lo = from.max(first) - first;
            let hi = to.min(first + GROUP) - first;
            let key = self.keys.presence(group);
            let p = presence::modify(&*self.store, &self.name, &key, BITS, 0, |p| {
                p.set_range(lo as u32..hi as u32, false)
            })
            .await?;
            if p.is_empty() && first + GROUP <= to {
                self.store.delete(&key).await?;
            }
        }
        Ok(())
    }

    /// Acknowledges that the bases of the buckets overlapping `[from_ms, to_ms)` that are
    /// absent from the store vanished ([`Error::Vanished`]): clears their marks, so queries and
    /// compactions take those buckets as empty again. Returns how many buckets were
    /// acknowledged. Then replay those buckets' events from the source (within the horizon
    /// they are folded once; older ones count late).
    ///
    /// Buckets whose base is present are left as they are.
    ///
    /// # Errors
    ///
    /// [`Error::Store`]; [`Error::Contended`] when the marks keep changing under it.
    pub async fn accept_vanished(&self, from_ms: u64, to_ms: u64) -> Result<u64> {
        if to_ms <= from_ms {
            return Ok(0);
        }
        let mut accepted = 0;
        for bucket in self.bucket_of(from_ms)..=self.bucket_of(to_ms - 1) {
            if !self.base_was_written(bucket).await? || !self.still_vanished(bucket).await? {
                continue;
            }
            let key = self.keys.presence(bucket / GROUP);
            presence::modify(&*self.store, &self.name, &key, BITS, 0, |p| {
                p.set_range(bit(bucket)..bit(bucket) + 1, false)
            })
            .await?;
            if let Ok(mut marked) = self.marked.lock() {
                marked.remove(&bucket);
            }
            accepted += 1;
        }
        Ok(accepted)
    }
}
