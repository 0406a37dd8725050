//! Queries: read the buckets of a time range (bases and pending records), merge their shards.

use std::collections::BTreeMap;

use futures_util::future::join_all;

use super::base::Tally;
use super::{Series, SeriesValue};
use crate::Aggregate;
use crate::error::Result;
use crate::merge::Insert;
use crate::store::Readable;

/// The windows of a series over a time range, every shard and pending record merged.
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesView<A> {
    window_ms: u64,
    template: A,
    windows: BTreeMap<u64, A>,
    tally: Tally,
    pending: usize,
}

impl<A: Aggregate> SeriesView<A> {
    /// The window width in milliseconds.
    pub fn window_ms(&self) -> u64 {
        self.window_ms
    }

    /// The aggregate of the window starting at `start`, if it holds events.
    pub fn window(&self, start: u64) -> Option<&A> {
        self.windows.get(&start)
    }

    /// Every window holding events, by start, ascending.
    pub fn windows(&self) -> impl Iterator<Item = (u64, &A)> + '_ {
        self.windows.iter().map(|(s, a)| (*s, a))
    }

    /// How many windows hold events.
    pub fn window_count(&self) -> usize {
        self.windows.len()
    }

    /// Counters of the buckets read: folded, duplicate, late and rejected events (pending
    /// records included).
    pub fn tally(&self) -> Tally {
        self.tally
    }

    /// Records read that no compaction had folded yet.
    pub fn pending_records(&self) -> usize {
        self.pending
    }

    /// The merge of every window.
    ///
    /// # Errors
    ///
    /// A merge error of the aggregate (none for windows of one series).
    pub fn total(&self) -> Result<A> {
        self.range(0, u64::MAX)
    }

    /// The merge of the windows starting in `[from_ms, to_ms)`.
    ///
    /// # Errors
    ///
    /// As [`total`](Self::total).
    pub fn range(&self, from_ms: u64, to_ms: u64) -> Result<A> {
        let mut acc = self.template.clone();
        for a in self.windows.range(from_ms..to_ms).map(|(_, a)| a) {
            acc.merge(a)?;
        }
        Ok(acc)
    }

    /// Hopping windows of width `k` windows and step one window: for every aligned start `s`
    /// whose span `[s, s + k·W)` holds a window, `(s, merge of those windows)`, ascending; as
    /// [`Windowed::hopping`](crate::Windowed::hopping), linear in the output.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidParameter`](crate::Error::InvalidParameter) when `k` is 0 or above
    /// 65536; a merge error of the aggregate.
    pub fn hopping(&self, k: u64) -> Result<Vec<(u64, A)>> {
        crate::window::sliding::hopping(self.windows(), self.window_ms, k, &self.template)
    }
}

impl<A, V> Series<A, V>
where
    A: Aggregate + Insert<V>,
    V: SeriesValue,
{
    /// The windows starting in `[from_ms, to_ms)`: reads only the buckets that hold them
    /// (bases and pending records), whatever the series' retention.
    ///
    /// # Errors
    ///
    /// [`Error::Store`](crate::Error::Store); [`Error::Damaged`](crate::Error::Damaged) naming
    /// the first stored value of the range that fails to decode, or
    /// [`Error::Vanished`](crate::Error::Vanished) the first bucket base that vanished (see
    /// [`query_range_readable`](Self::query_range_readable) for an answer without it).
    pub async fn query_range(&self, from_ms: u64, to_ms: u64) -> Result<SeriesView<A>> {
        let readable = self.query_range_readable(from_ms, to_ms).await?;
        match readable.unreadable.into_iter().next() {
            Some(damaged) => Err(damaged),
            None => Ok(readable.value),
        }
    }

    /// As [`query_range`](Self::query_range), but a bucket holding a value that does not decode
    /// (its base, one of its records or fingerprint sets, or the cursor) is left out and listed
    /// ([`Error::Damaged`](crate::Error::Damaged), naming the key) instead of failing the
    /// query: the answer covers the other buckets.
    ///
    /// **Repair.** Compactions of a damaged bucket fail (and are logged) until it is repaired;
    /// folds are not affected (they only append). Keep the damaged bytes for inspection, then
    /// delete the key (`KvStore::delete`): a damaged *record* loses its events (redeliver
    /// them: within the horizon they are folded once); a damaged *fingerprint set* loses only
    /// that shard's dedup memory for the bucket (a redelivery of its events would be folded
    /// again); a damaged *base* loses the bucket's compacted windows — delete the base and its
    /// sets, acknowledge the loss with [`accept_vanished`](Self::accept_vanished), then replay
    /// the bucket's events from the source.
    ///
    /// A base that **vanished** (written once, now absent: flushed, evicted by a memory
    /// policy) is listed the same way, as [`Error::Vanished`](crate::Error::Vanished) naming its
    /// key, never taken for an empty bucket. A damaged cursor is rebuilt by
    /// the next [`maintain`](Self::maintain) once deleted.
    ///
    /// # Errors
    ///
    /// [`Error::Store`](crate::Error::Store); merge errors.
    pub async fn query_range_readable(
        &self,
        from_ms: u64,
        to_ms: u64,
    ) -> Result<Readable<SeriesView<A>>> {
        let mut view = SeriesView {
            window_ms: self.meta.window_ms,
            template: self.cfg.template.clone(),
            windows: BTreeMap::new(),
            tally: Tally::default(),
            pending: 0,
        };
        let mut unreadable = Vec::new();
        if to_ms <= from_ms {
            return Ok(Readable {
                value: view,
                unreadable,
            });
        }
        let now = self.cfg.clock.now_ms();
        let buckets: Vec<u64> = (self.bucket_of(from_ms)..=self.bucket_of(to_ms - 1))
            .filter(|&b| !self.due(b, now).1)
            .collect();
        for chunk in buckets.chunks(64) {
            let loads = join_all(chunk.iter().map(|&b| self.load_settled(b))).await;
            for loaded in loads {
                let loaded = match loaded {
                    Ok(loaded) => loaded,
                    Err(e @ (crate::Error::Damaged { .. } | crate::Error::Vanished { .. })) => {
                        unreadable.push(e);
                        continue;
                    }
                    Err(e) => return Err(e),
                };
                view.pending += loaded.records.len();
                let (base, _, _) = self.fold_bucket(&loaded);
                view.tally.add(&base.tally);
                for (start, a) in base.windows.range(from_ms..to_ms) {
                    match view.windows.get_mut(start) {
                        Some(acc) => acc.merge(a)?,
                        None => {
                            view.windows.insert(*start, a.clone());
                        }
                    }
                }
            }
        }
        Ok(Readable {
            value: view,
            unreadable,
        })
    }

    /// Loads a bucket, re-reading while a concurrent compaction replaces what was read.
    async fn load_settled(&self, bucket: u64) -> Result<super::compact::Loaded<A, V>> {
        let policy = &self.cfg.policy;
        for attempt in 1..=policy.max_attempts {
            if let Some(loaded) = self.load(bucket).await? {
                return Ok(loaded);
            }
            policy.sleep(attempt).await;
        }
        Err(crate::Error::Contended {
            metric: self.name.clone(),
            shard: 0,
            attempts: policy.max_attempts,
        })
    }

    /// As [`query`](Self::query), leaving out (and listing) damaged buckets: see
    /// [`query_range_readable`](Self::query_range_readable).
    ///
    /// # Errors
    ///
    /// As [`query_range_readable`](Self::query_range_readable).
    pub async fn query_readable(&self) -> Result<Readable<SeriesView<A>>> {
        let (from, to) = self.retained_range();
        self.query_range_readable(from, to).await
    }

    /// The range [`query`](Self::query) reads.
    fn retained_range(&self) -> (u64, u64) {
        let now = self.cfg.clock.now_ms();
        let from = now.saturating_sub(self.meta.retention_ms.saturating_add(self.meta.bucket_ms));
        let to = now
            .saturating_add(self.cfg.skew_ms)
            .saturating_add(self.meta.bucket_ms);
        (from - from % self.meta.bucket_ms, to)
    }

    /// Every retained window (the buckets from `now − retention` to `now + max skew`).
    ///
    /// # Errors
    ///
    /// As [`query_range`](Self::query_range).
    pub async fn query(&self) -> Result<SeriesView<A>> {
        let (from, to) = self.retained_range();
        self.query_range(from, to).await
    }
}
