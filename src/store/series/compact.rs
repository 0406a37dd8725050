//! Compaction (fold a bucket's records into its bases), sealing and eviction.

use futures_util::future::join_all;

use super::base::{Base, Folder, Tally};
use super::record::Record;
use super::{Series, SeriesValue};
use crate::Aggregate;
use crate::codec::{self, Codec, Limits, Reader, tags};
use crate::error::{Error, Result};
use crate::merge::Insert;
use crate::store::{Version, WriteOutcome};

/// The most buckets one [`Series::maintain`] call seals and evicts (each).
const MAX_SWEEP: u64 = 256;

/// A bucket as stored: its pending records (ascending id) and the base of every shard.
pub(crate) struct Loaded<A, V> {
    pub(crate) records: Vec<(u128, Vec<u8>, Record<V>)>,
    pub(crate) bases: Vec<Option<(Base<A>, Version)>>,
}

/// What `<m>/cursor` holds (type tag [`tags::SERIES_CURSOR`]): the next bucket to seal and
/// the next bucket to evict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Cursor {
    pub(crate) seal_next: u64,
    pub(crate) evict_next: u64,
}

impl Codec for Cursor {
    const TYPE_TAG: u16 = tags::SERIES_CURSOR;

    fn write_payload(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.seal_next.to_le_bytes());
        out.extend_from_slice(&self.evict_next.to_le_bytes());
    }

    fn read_parts(params: &[u8], payload: &[u8], _: &Limits) -> Result<Self> {
        crate::agg::no_params(params)?;
        let mut r = Reader::new(payload);
        let c = Cursor {
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
    /// Buckets compacted and sealed.
    pub sealed: u64,
    /// Buckets deleted from the store.
    pub evicted: u64,
    /// Keys deleted (bases and records of evicted buckets).
    pub keys_deleted: u64,
}

fn named(key: &[u8], e: Error) -> Error {
    Error::invalid_state(format!("{}: {e}", String::from_utf8_lossy(key)))
}

impl<A, V> Series<A, V>
where
    A: Aggregate + Insert<V>,
    V: SeriesValue,
{
    /// Reads a bucket: lists and reads its records, then reads its K bases (in that order, so
    /// that a record deleted meanwhile was absorbed by the bases read).
    pub(crate) async fn load(&self, bucket: u64) -> Result<Loaded<A, V>> {
        let listed = self.store.list(&self.keys.record_dir(bucket)).await?;
        let reads = join_all(listed.iter().map(|k| self.store.read(k))).await;
        let mut records = Vec::with_capacity(listed.len());
        for (key, read) in listed.into_iter().zip(reads) {
            let Some(id) = self.keys.record_id(bucket, &key) else {
                continue; // not a record key of this layout
            };
            let Some((bytes, _)) = read? else {
                continue; // deleted after its compaction: the bases read below absorbed it
            };
            let rec: Record<V> = codec::decode(&bytes).map_err(|e| named(&key, e))?;
            if rec.events.iter().any(|&(_, t, _)| self.bucket_of(t) != bucket) {
                return Err(named(&key, Error::invalid_state("event outside the record's bucket")));
            }
            records.push((id, key, rec));
        }
        let keys: Vec<Vec<u8>> = (0..self.meta.shards).map(|k| self.keys.base(bucket, k)).collect();
        let reads = join_all(keys.iter().map(|k| self.store.read(k))).await;
        let mut bases = Vec::with_capacity(keys.len());
        for (key, read) in keys.iter().zip(reads) {
            bases.push(match read? {
                None => None,
                Some((bytes, v)) => Some((codec::decode::<Base<A>>(&bytes).map_err(|e| named(key, e))?, v)),
            });
        }
        Ok(Loaded { records, bases })
    }

    /// Folds `loaded`'s records into shard `shard`'s base (sealing it when `seal`).
    pub(crate) fn fold_shard(&self, loaded: &Loaded<A, V>, shard: u32, seal: bool) -> Result<(Base<A>, bool)> {
        let base = loaded
            .bases
            .get(shard as usize)
            .and_then(|b| b.as_ref())
            .map_or_else(Base::default, |(b, _)| b.clone());
        let mut folder = Folder::new(base, &self.cfg.template, self.meta.window_ms);
        let shards = u64::from(self.meta.shards);
        for (id, _, rec) in &loaded.records {
            folder.absorb(*id, rec, |fp| fp % shards == u64::from(shard), shard == 0)?;
        }
        if seal {
            folder.seal();
        }
        let changed = folder.changed;
        let absorbed = loaded.records.iter().map(|(id, _, _)| *id).collect();
        Ok((folder.finish(absorbed), changed))
    }

    /// Whether the clock says bucket `b` is past its horizon (seal) or retention (evict).
    pub(crate) fn due(&self, bucket: u64, now: u64) -> (bool, bool) {
        let end = self.bucket_end(bucket);
        let m = &self.meta;
        let seal = end.saturating_add(m.horizon_ms).saturating_add(m.grace_ms) <= now;
        let evict = end.saturating_add(m.retention_ms).saturating_add(m.grace_ms) <= now;
        (seal, evict)
    }

    /// Compacts one bucket: folds its pending records into its shards' bases (exactly once,
    /// deduplicated by ID), seals it when its horizon has passed, evicts it past retention,
    /// and deletes the records folded. Safe to run from any number of writers at once.
    ///
    /// # Errors
    ///
    /// [`Error::Contended`] after the retry policy's attempts; [`Error::Store`]; a stored
    /// record or base that fails to decode ([`Error::InvalidState`] naming its key).
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

    /// One attempt: `None` when a base's conditional write lost a race.
    async fn compact_once(&self, bucket: u64) -> Result<Option<Tally>> {
        let now = self.cfg.clock.now_ms();
        let (seal, evict) = self.due(bucket, now);
        if evict {
            self.evict_bucket(bucket).await?;
            return Ok(Some(Tally::default()));
        }
        let loaded = self.load(bucket).await?;
        let mut writes = Vec::new();
        let mut tally = Tally::default();
        for shard in 0..self.meta.shards {
            let (base, changed) = self.fold_shard(&loaded, shard, seal)?;
            tally.add(&base.tally);
            let stored = loaded.bases.get(shard as usize).and_then(|b| b.as_ref()).map(|(_, v)| *v);
            if changed && !(stored.is_none() && is_blank(&base)) {
                writes.push((self.keys.base(bucket, shard), codec::encode(&base), stored));
            }
        }
        let results = join_all(writes.iter().map(|(key, bytes, v)| async move {
            match v {
                None => self.store.create(key, bytes).await,
                Some(v) => self.store.update(key, bytes, *v).await,
            }
        }))
        .await;
        let mut conflict = false;
        for r in results {
            conflict |= r? == WriteOutcome::Conflict;
        }
        if conflict {
            return Ok(None);
        }
        // every base now lists the records it absorbed: deleting them is safe, and a crash
        // before (or a failed delete) only leaves records the next compaction skips
        for r in join_all(loaded.records.iter().map(|(_, key, _)| self.store.delete(key))).await {
            if let Err(e) = r {
                tracing::warn!(series = %self.name, bucket, error = %e, "record delete failed");
            }
        }
        Ok(Some(tally))
    }

    /// Deletes a bucket's bases and records.
    async fn evict_bucket(&self, bucket: u64) -> Result<u64> {
        let mut keys = self.store.list(&self.keys.record_dir(bucket)).await?;
        keys.extend(self.store.list(&self.keys.base_dir(bucket)).await?);
        let mut deleted = 0;
        for r in join_all(keys.iter().map(|k| self.store.delete(k))).await {
            deleted += u64::from(r?);
        }
        Ok(deleted)
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
            seal_next: first,
            evict_next: first,
        };
        self.store.create(&self.keys.cursor(), &codec::encode(&cursor)).await?;
        Ok(())
    }

    /// Seals the buckets whose horizon has passed (compacting them first) and deletes those
    /// past retention, resuming where the last sweep stopped (`<m>/cursor`, compare-and-set),
    /// at most 256 buckets of each per call. Folds run it now and then; a scheduled job may
    /// call it too.
    ///
    /// # Errors
    ///
    /// As [`compact_bucket`](Self::compact_bucket).
    pub async fn maintain(&self) -> Result<Maintenance> {
        let key = self.keys.cursor();
        let (cursor, version) = match self.store.read(&key).await? {
            Some((bytes, v)) => (codec::decode::<Cursor>(&bytes).map_err(|e| named(&key, e))?, Some(v)),
            None => {
                // the creator crashed before writing it: start from the oldest bucket a
                // retained window can be in
                let now = self.cfg.clock.now_ms();
                let first = self.bucket_of(now.saturating_sub(self.meta.retention_ms));
                (Cursor { seal_next: first, evict_next: first }, None)
            }
        };
        let now = self.cfg.clock.now_ms();
        let mut done = Maintenance::default();
        let mut next = cursor;
        while next.seal_next < cursor.seal_next + MAX_SWEEP && self.due(next.seal_next, now).0 {
            self.compact_bucket(next.seal_next).await?;
            next.seal_next += 1;
            done.sealed += 1;
        }
        while next.evict_next < cursor.evict_next + MAX_SWEEP && self.due(next.evict_next, now).1 {
            done.keys_deleted += self.evict_bucket(next.evict_next).await?;
            next.evict_next += 1;
            done.evicted += 1;
        }
        if next != cursor {
            let bytes = codec::encode(&next);
            // a lost race means another writer swept as far: nothing to redo
            let _ = match version {
                None => self.store.create(&key, &bytes).await?,
                Some(v) => self.store.update(&key, &bytes, v).await?,
            };
        }
        Ok(done)
    }
}

/// A base with nothing in it: not worth creating, even sealed (a shard that never held an
/// event has no IDs to forget).
fn is_blank<A>(base: &Base<A>) -> bool {
    base.windows.is_empty() && base.tally == Tally::default()
}
