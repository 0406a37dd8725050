//! Compaction (fold a bucket's records into its bases), sealing and eviction.

use std::collections::BTreeMap;

use futures_util::future::{join, join_all};

use super::base::{Base, Folder, IdSet, NewSets, Tally};
use super::keys::{GROUP, Kind};
use super::record::Record;
use super::{Series, SeriesValue};
use crate::Aggregate;
use crate::codec::{self, Codec, Limits, Reader, tags};
use crate::error::{Error, Result};
use crate::merge::Insert;
use crate::store::{Version, WriteOutcome};

/// The most buckets one [`Series::maintain`] call seals and evicts (each).
const MAX_SWEEP: u64 = 1024;

/// A bucket as stored: sealed or not, its pending records (ascending id), its base and the
/// base's fingerprints per shard.
pub(crate) struct Loaded<A, V> {
    pub(crate) sealed: bool,
    pub(crate) records: Vec<(u128, Vec<u8>, Record<V>)>,
    pub(crate) base: Option<(Base<A>, Version)>,
    /// Per shard, its fingerprint sets (each ascending).
    pub(crate) ids: Vec<Vec<Vec<u64>>>,
}

/// What `<m>/cursor` holds (type tag [`tags::SERIES_CURSOR`]): buckets before `settle_next`
/// were compacted once after their grace, buckets before `seal_next` are sealed (their IDs
/// forgotten), buckets before `evict_next` deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Cursor {
    pub(crate) settle_next: u64,
    pub(crate) seal_next: u64,
    pub(crate) evict_next: u64,
}

impl Codec for Cursor {
    const TYPE_TAG: u16 = tags::SERIES_CURSOR;

    fn write_payload(&self, out: &mut Vec<u8>) {
        for x in [self.settle_next, self.seal_next, self.evict_next] {
            out.extend_from_slice(&x.to_le_bytes());
        }
    }

    fn read_parts(params: &[u8], payload: &[u8], _: &Limits) -> Result<Self> {
        crate::agg::no_params(params)?;
        let mut r = Reader::new(payload);
        let c = Cursor {
            settle_next: r.u64("cursor settle")?,
            seal_next: r.u64("cursor seal")?,
            evict_next: r.u64("cursor evict")?,
        };
        r.finish("cursor")?;
        Ok(c)
    }
}

/// What one [`Series::maintain`] call did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Maintenance {
    /// Buckets compacted once their grace had passed (most writes to them are over).
    pub settled: u64,
    /// Buckets sealed: pending records folded, then their remembered IDs deleted.
    pub sealed: u64,
    /// Buckets deleted from the store.
    pub evicted: u64,
    /// Keys deleted (fingerprint sets of sealed buckets; every key of evicted ones).
    pub keys_deleted: u64,
}

impl<A, V> Series<A, V>
where
    A: Aggregate + Insert<V>,
    V: SeriesValue,
{
    /// [`Error::Damaged`] for the value at `key` of this series.
    fn named(&self, key: &[u8], e: Error) -> Error {
        Error::damaged(&self.name, key, e)
    }

    /// The sweep cursor, if written.
    async fn cursor(&self) -> Result<Option<(Cursor, Version)>> {
        let key = self.keys.cursor();
        match self.store.read(&key).await? {
            None => Ok(None),
            Some((bytes, v)) => Ok(Some((
                codec::decode(&bytes).map_err(|e| self.named(&key, e))?,
                v,
            ))),
        }
    }

    /// Reads a bucket: the cursor, its base and the base's fingerprint sets, then its records
    /// — the base first, so that the whole view is checked by the base's compare-and-set: a
    /// record absorbed (and deleted, and dropped from `absorbed`) by a compaction that ran
    /// after this read can only be seen together with a base that changed since, and the
    /// write fails. `None` when a fingerprint set vanished under a concurrent compaction or
    /// seal: retry.
    pub(crate) async fn load(&self, bucket: u64) -> Result<Option<Loaded<A, V>>> {
        let key = self.keys.base(bucket);
        let (cursor, base) = join(self.cursor(), self.store.read(&key)).await;
        let sealed = cursor?.is_some_and(|(c, _)| bucket < c.seal_next);
        let base = match base? {
            // absent: new, or vanished (the mark is read after the base: see `vanish`)
            None if self.base_was_written(bucket).await? => {
                return if self.still_vanished(bucket).await? {
                    Err(self.vanished(bucket))
                } else {
                    Ok(None) // created or evicted meanwhile: read again
                };
            }
            None => None,
            Some((bytes, v)) => Some((
                codec::decode::<Base<A>>(&bytes).map_err(|e| self.named(&key, e))?,
                v,
            )),
        };
        let shards = self.meta.shards as usize;
        let set_keys = match &base {
            Some((b, _)) if !sealed => b.ids_keys.as_slice(),
            _ => &[],
        };
        if !set_keys.is_empty() && set_keys.len() != shards {
            return Err(self.named(&key, Error::invalid_state("id-set count is not K")));
        }
        // the base is read: its sets and the records (listed only now) load side by side
        let sets = join_all(set_keys.iter().enumerate().flat_map(|(k, ids)| {
            ids.iter()
                .map(move |id| async move { (k, self.read_ids(bucket, k as u32, *id).await) })
        }));
        let (sets, records) = join(sets, self.read_records(bucket)).await;
        let mut ids = vec![Vec::new(); shards];
        // `join_all` keeps the order: each shard's sets arrive oldest first
        for (k, set) in sets {
            match (set?, ids.get_mut(k)) {
                (Some(set), Some(slot)) => slot.push(set),
                (None, _) => return Ok(None),
                (Some(_), None) => {
                    return Err(self.named(&key, Error::invalid_state("id-set shard out of range")));
                }
            }
        }
        Ok(Some(Loaded {
            sealed,
            records: records?,
            base,
            ids,
        }))
    }

    async fn read_records(&self, bucket: u64) -> Result<Vec<(u128, Vec<u8>, Record<V>)>> {
        let listed = self
            .store
            .list(&self.keys.dir(Kind::Record, bucket))
            .await?;
        let reads = join_all(listed.iter().map(|k| self.store.read(k))).await;
        let mut records = Vec::with_capacity(listed.len());
        for (key, read) in listed.into_iter().zip(reads) {
            let Some(id) = self.keys.record_id(bucket, &key) else {
                continue; // not a record key of this layout
            };
            let Some((bytes, _)) = read? else {
                // deleted by a compaction: absorbed by the base read, or by a newer one (then
                // this compaction's write fails and it starts over)
                continue;
            };
            let rec: Record<V> = codec::decode(&bytes).map_err(|e| self.named(&key, e))?;
            if rec
                .events
                .iter()
                .any(|&(_, t, _)| self.bucket_of(t) != bucket)
            {
                return Err(self.named(
                    &key,
                    Error::invalid_state("event outside the record's bucket"),
                ));
            }
            records.push((id, key, rec));
        }
        Ok(records)
    }

    /// The fingerprints of one of shard `shard`'s sets; `None` when the set is gone (a
    /// concurrent compaction replaced it, or a seal deleted it).
    async fn read_ids(&self, bucket: u64, shard: u32, id: u128) -> Result<Option<Vec<u64>>> {
        let key = self.keys.ids(bucket, shard, id);
        match self.store.read(&key).await? {
            None => Ok(None),
            Some((bytes, _)) => Ok(Some(
                // canonical by construction (see `IdSet`)
                codec::decode_canonical_by_construction::<IdSet>(&bytes)
                    .map_err(|e| self.named(&key, e))?
                    .0,
            )),
        }
    }

    /// Folds `loaded`'s records into its base: the new base, the new fingerprint sets of the
    /// shards that gained IDs, and whether anything changed.
    pub(crate) fn fold_bucket(&self, loaded: &Loaded<A, V>) -> (Base<A>, Vec<NewSets>, bool) {
        let base = loaded
            .base
            .as_ref()
            .map_or_else(Base::default, |(b, _)| b.clone());
        let mut folder = Folder::new(
            base,
            &loaded.ids,
            loaded.sealed,
            &self.cfg.template,
            self.meta.window_ms,
        );
        for (id, _, rec) in &loaded.records {
            folder.absorb(*id, rec);
        }
        let changed = folder.changed;
        let absorbed = loaded.records.iter().map(|(id, _, _)| *id).collect();
        let (base, sets) = folder.finish(absorbed);
        (base, sets, changed)
    }

    /// Whether the clock says bucket `b` is past its horizon (seal) or retention (evict).
    pub(crate) fn due(&self, bucket: u64, now: u64) -> (bool, bool) {
        let end = self.bucket_end(bucket);
        let m = &self.meta;
        let seal = end.saturating_add(m.horizon_ms).saturating_add(m.grace_ms) <= now;
        let evict = end
            .saturating_add(m.retention_ms)
            .saturating_add(m.grace_ms)
            <= now;
        (seal, evict)
    }

    /// Compacts bucket number `bucket` (event time / bucket width; see
    /// [`compact_range`](Self::compact_range) to name buckets by time): folds its pending
    /// records into its base (exactly once, deduplicated by ID; counted late if the bucket is
    /// sealed), evicts it past retention, and deletes the records folded. Safe to run from any
    /// number of writers at once.
    ///
    /// # Errors
    ///
    /// [`Error::Contended`] (its `shard` field is 0: a bucket has one base) after the retry
    /// policy's attempts; [`Error::Store`]; a stored
    /// record or base that fails to decode ([`Error::Damaged`] naming its key);
    /// [`Error::Vanished`] when the bucket's base was written and is gone (nothing is written:
    /// see [`accept_vanished`](Self::accept_vanished)).
    pub async fn compact_bucket(&self, bucket: u64) -> Result<Tally> {
        let policy = &self.cfg.policy;
        for attempt in 1..=policy.max_attempts {
            if let Some(tally) = self.compact_once(bucket).await? {
                return Ok(tally);
            }
            tracing::debug!(series = %self.name, bucket, attempt, "compaction conflict, retrying");
            if attempt < policy.max_attempts {
                policy.sleep(attempt).await;
            }
        }
        Err(Error::Contended {
            metric: self.name.clone(),
            shard: 0,
            attempts: policy.max_attempts,
        })
    }

    /// One attempt: `None` when the base's conditional write lost a race.
    async fn compact_once(&self, bucket: u64) -> Result<Option<Tally>> {
        if self.due(bucket, self.cfg.clock.now_ms()).1 {
            self.evict_bucket(bucket).await?;
            return Ok(Some(Tally::default()));
        }
        let Some(loaded) = self.load(bucket).await? else {
            return Ok(None);
        };
        let (mut base, sets, changed) = self.fold_bucket(&loaded);
        let tally = base.tally;
        let blank = base.windows.is_empty() && base.tally == Tally::default();
        let mut stale: Vec<Vec<u8>> = loaded.records.iter().map(|(_, k, _)| k.clone()).collect();
        if changed && !(loaded.base.is_none() && blank) {
            base.ids_keys.resize(self.meta.shards as usize, Vec::new());
            let mut created = Vec::with_capacity(sets.len());
            for new in &sets {
                let k = new.shard;
                let Some(slot) = base.ids_keys.get_mut(k as usize) else {
                    return Err(Error::internal(
                        "a fingerprint set for a shard out of range",
                    ));
                };
                if new.replaces_last
                    && let Some(old) = slot.pop()
                {
                    stale.push(self.keys.ids(bucket, k, old));
                }
                for set in &new.sets {
                    let id = self.ids.next();
                    slot.push(id);
                    created.push((self.keys.ids(bucket, k, id), codec::encode(set)));
                }
            }
            if !self
                .write_base(
                    bucket,
                    &base,
                    loaded.base.as_ref().map(|(_, v)| *v),
                    &created,
                )
                .await?
            {
                return Ok(None);
            }
        }
        // the base exists (written now or before): make sure its mark does, so that its loss
        // is reported (a crash between creating a base and marking it is healed here)
        if (loaded.base.is_some() || (changed && !blank))
            && let Err(e) = self.mark_base(bucket).await
        {
            tracing::warn!(series = %self.name, bucket, error = %e, "marking a bucket base failed");
        }
        // the base lists the records it absorbed: deleting them is safe, and a crash before
        // (or a failed delete) only leaves records the next compaction skips
        for r in join_all(stale.iter().map(|key| self.store.delete(key))).await {
            if let Err(e) = r {
                tracing::warn!(series = %self.name, bucket, error = %e, "delete after compaction failed");
            }
        }
        Ok(Some(tally))
    }

    /// Stores the new fingerprint sets (fresh keys), then the base (compare-and-set).
    /// `false` when the base lost a race (its new sets are deleted again).
    async fn write_base(
        &self,
        bucket: u64,
        base: &Base<A>,
        version: Option<Version>,
        sets: &[(Vec<u8>, Vec<u8>)],
    ) -> Result<bool> {
        for r in join_all(sets.iter().map(|(k, v)| self.store.create(k, v))).await {
            r?;
        }
        let key = self.keys.base(bucket);
        let bytes = codec::encode(base);
        let outcome = match version {
            None => self.store.create(&key, &bytes).await?,
            Some(v) => self.store.update(&key, &bytes, v).await?,
        };
        if outcome == WriteOutcome::Conflict {
            let _ = join_all(sets.iter().map(|(k, _)| self.store.delete(k))).await;
            return Ok(false);
        }
        Ok(true)
    }

    /// The keys of `kind` of the buckets in `[from, to)`, by bucket: one listing per bucket
    /// for a short range, one per group of 256 buckets for a long one.
    async fn keys_in_range(
        &self,
        kind: Kind,
        from: u64,
        to: u64,
    ) -> Result<BTreeMap<u64, Vec<Vec<u8>>>> {
        let mut out: BTreeMap<u64, Vec<Vec<u8>>> = BTreeMap::new();
        if to <= from {
            return Ok(out);
        }
        let dirs: Vec<Vec<u8>> = if to - from <= 32 {
            (from..to).map(|b| self.keys.dir(kind, b)).collect()
        } else {
            (from / GROUP..=(to - 1) / GROUP)
                .map(|g| self.keys.group_dir(kind, g))
                .collect()
        };
        for listed in join_all(dirs.iter().map(|d| self.store.list(d))).await {
            for key in listed? {
                match self.keys.bucket_of_key(kind, &key) {
                    Some(b) if (from..to).contains(&b) => out.entry(b).or_default().push(key),
                    _ => {}
                }
            }
        }
        Ok(out)
    }

    /// Deletes the keys of `kinds` of the buckets in `[from, to)`; how many existed.
    async fn delete_range(&self, kinds: &[Kind], from: u64, to: u64) -> Result<u64> {
        let mut keys = Vec::new();
        for &kind in kinds {
            keys.extend(
                self.keys_in_range(kind, from, to)
                    .await?
                    .into_values()
                    .flatten(),
            );
        }
        let mut deleted = 0;
        for r in join_all(keys.iter().map(|k| self.store.delete(k))).await {
            deleted += u64::from(r?);
        }
        Ok(deleted)
    }

    /// Deletes a bucket's bases, fingerprint sets and records.
    async fn evict_bucket(&self, bucket: u64) -> Result<u64> {
        self.unmark_bases(bucket, bucket + 1).await?;
        self.delete_range(&[Kind::Record, Kind::Base, Kind::Ids], bucket, bucket + 1)
            .await
    }

    /// Compacts the buckets in `[from, to)` that have pending records.
    async fn compact_pending(&self, from: u64, to: u64) -> Result<()> {
        let pending = self.keys_in_range(Kind::Record, from, to).await?;
        let buckets: Vec<u64> = pending.into_keys().collect();
        // up to 16 at once: a sweep after a quiet spell must not keep a fold waiting long
        for chunk in buckets.chunks(16) {
            for r in join_all(chunk.iter().map(|&b| self.compact_bucket(b))).await {
                r?;
            }
        }
        Ok(())
    }

    /// The first bucket not yet `lag` past its end: buckets before it ended at least `lag`
    /// milliseconds ago.
    fn bound(&self, now: u64, lag: u64) -> u64 {
        now.saturating_sub(lag) / self.meta.bucket_ms
    }

    /// Compacts every bucket that overlaps `[from_ms, to_ms)`.
    ///
    /// # Errors
    ///
    /// As [`compact_bucket`](Self::compact_bucket).
    pub async fn compact_range(&self, from_ms: u64, to_ms: u64) -> Result<Tally> {
        let mut tally = Tally::default();
        if to_ms <= from_ms {
            return Ok(tally);
        }
        for b in self.bucket_of(from_ms)..=self.bucket_of(to_ms - 1) {
            tally.add(&self.compact_bucket(b).await?);
        }
        Ok(tally)
    }

    /// The cursor a new series starts from: no accepted event can be older than
    /// `now − horizon − skew`.
    pub(crate) async fn create_cursor(&self) -> Result<()> {
        let now = self.cfg.clock.now_ms();
        let first = self.bucket_of(
            now.saturating_sub(self.meta.horizon_ms)
                .saturating_sub(self.cfg.skew_ms),
        );
        let cursor = Cursor {
            settle_next: first,
            seal_next: first,
            evict_next: first,
        };
        self.store
            .create(&self.keys.cursor(), &codec::encode(&cursor))
            .await?;
        Ok(())
    }

    /// Compacts the buckets that ended a grace ago (so their last records do not wait for
    /// the seal), seals the buckets whose horizon (plus grace) has passed — folds their pending records,
    /// advances the cursor so that every later compaction counts their events late, then
    /// deletes their fingerprint sets — and deletes the buckets past retention; resumes where
    /// the last sweep stopped (`<m>/cursor`, compare-and-set), at most 1024 buckets of each
    /// per call. Folds run it now and then; a scheduled job may call it too.
    ///
    /// # Errors
    ///
    /// As [`compact_bucket`](Self::compact_bucket).
    pub async fn maintain(&self) -> Result<Maintenance> {
        let (cursor, version) = match self.cursor().await? {
            Some((c, v)) => (c, Some(v)),
            None => {
                // the creator crashed before writing it: start from the oldest bucket a
                // retained window can be in
                let first = self.bucket_of(
                    self.cfg
                        .clock
                        .now_ms()
                        .saturating_sub(self.meta.retention_ms),
                );
                let c = Cursor {
                    settle_next: first,
                    seal_next: first,
                    evict_next: first,
                };
                (c, None)
            }
        };
        let now = self.cfg.clock.now_ms();
        let m = &self.meta;
        let step = |from: u64, bound: u64| (from, bound.min(from + MAX_SWEEP).max(from));
        let settle = step(cursor.settle_next, self.bound(now, m.grace_ms));
        let seal = step(
            cursor.seal_next,
            self.bound(now, m.horizon_ms.saturating_add(m.grace_ms)),
        );
        let evict = step(
            cursor.evict_next,
            self.bound(now, m.retention_ms.saturating_add(m.grace_ms)),
        );
        // settle: compact a bucket's last records once it is a grace old; seal: fold what is
        // still pending, with dedup, before the seal becomes visible
        self.compact_pending(settle.0, settle.1).await?;
        self.compact_pending(seal.0, seal.1).await?;
        let mut done = Maintenance {
            settled: settle.1 - settle.0,
            sealed: seal.1 - seal.0,
            evicted: evict.1 - evict.0,
            keys_deleted: 0,
        };
        // marks first: a base found absent after this is an evicted one, not a vanished one
        self.unmark_bases(evict.0, evict.1).await?;
        done.keys_deleted += self
            .delete_range(&[Kind::Record, Kind::Base, Kind::Ids], evict.0, evict.1)
            .await?;
        let next = Cursor {
            settle_next: settle.1,
            seal_next: seal.1,
            evict_next: evict.1,
        };
        if next == cursor {
            return Ok(done);
        }
        let bytes = codec::encode(&next);
        let written = match version {
            None => self.store.create(&self.keys.cursor(), &bytes).await?,
            Some(v) => self.store.update(&self.keys.cursor(), &bytes, v).await?,
        };
        if written == WriteOutcome::Conflict {
            // another writer swept meanwhile; it deletes what it sealed
            return Ok(Maintenance::default());
        }
        // the seal is visible: no compaction reads these fingerprint sets any more
        done.keys_deleted += self.delete_range(&[Kind::Ids], seal.0, seal.1).await?;
        Ok(done)
    }
}
