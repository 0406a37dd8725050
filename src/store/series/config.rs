//! A series' parameters: the builder users fill in, and the metadata record that fixes them
//! when the series is created.

use std::sync::Arc;
use std::time::Duration;

use super::clock::{Clock, SystemClock};
use crate::Aggregate;
use crate::codec::{Codec, Limits, Reader, tags, write_section_with};
use crate::error::{Error, Result};
use crate::store::RetryPolicy;

/// The largest number of write shards per bucket.
pub(crate) const MAX_SHARDS: u32 = 4096;

/// The most windows one bucket may group.
pub const MAX_WINDOWS_PER_BUCKET: u64 = 1440;

/// How a [`Series`](super::Series) is laid out and when events count as late. Built with
/// durations; every parameter that decides what is stored is recorded when the series is
/// created and checked when it is opened.
///
/// Parameters are checked when the series is opened: an invalid one — a zero window, a
/// duration that is not a whole number of milliseconds or does not fit in a `u64` of them —
/// is [`Error::InvalidParameter`] naming it, before anything is written.
///
/// ```
/// use std::time::Duration;
/// use shardfold::store::SeriesConfig;
/// use shardfold::Stats;
/// let config = SeriesConfig::new(Stats::default())
///     .window(Duration::from_secs(60))
///     .horizon(Duration::from_secs(6 * 3600))
///     .retention(Duration::from_secs(7 * 86_400))
///     .shards(4);
/// assert_eq!(config.bucket_ms(), 60_000);
/// ```
#[derive(Debug, Clone)]
pub struct SeriesConfig<A> {
    pub(crate) template: A,
    pub(crate) window_ms: u64,
    pub(crate) bucket_windows: Option<u64>,
    pub(crate) horizon_ms: u64,
    pub(crate) retention_ms: u64,
    pub(crate) grace_ms: u64,
    pub(crate) skew_ms: u64,
    pub(crate) shards: u32,
    pub(crate) compact_every: u32,
    pub(crate) policy: RetryPolicy,
    pub(crate) clock: Arc<dyn Clock>,
    /// The first duration that could not be taken in whole milliseconds: reported by `open`.
    pub(crate) invalid: Option<Error>,
}

impl<A> SeriesConfig<A> {
    /// Defaults: one-minute windows, buckets of at least a minute, a six-hour dedup horizon,
    /// seven days of retention, 10 minutes of grace, 5 minutes of allowed clock skew, 4
    /// shards, a compaction about every 16 384 events or 256 appends to a bucket, the system
    /// clock. `template`
    /// is the empty aggregate every window starts from (it carries the sketch parameters).
    pub fn new(template: A) -> Self {
        SeriesConfig {
            template,
            window_ms: 60_000,
            bucket_windows: None,
            horizon_ms: 6 * 3_600_000,
            retention_ms: 7 * 86_400_000,
            grace_ms: 600_000,
            skew_ms: 300_000,
            shards: 4,
            compact_every: 256,
            policy: RetryPolicy::default(),
            clock: Arc::new(SystemClock),
            invalid: None,
        }
    }

    /// `d` in milliseconds; a duration that is not a whole number of them (or too long) is
    /// remembered as the configuration's error, reported when the series is opened.
    fn ms(&mut self, name: &'static str, d: Duration, current: u64) -> u64 {
        match crate::time::millis(name, d) {
            Ok(ms) => ms,
            Err(e) => {
                self.invalid.get_or_insert(e);
                current
            }
        }
    }

    /// Width of the tumbling event-time windows.
    pub fn window(mut self, width: Duration) -> Self {
        self.window_ms = self.ms("window", width, self.window_ms);
        self
    }

    /// Windows per bucket (the unit of storage). Default: enough windows to span a minute.
    pub fn bucket_windows(mut self, windows: u64) -> Self {
        self.bucket_windows = Some(windows);
        self
    }

    /// The dedup horizon H: an event is folded exactly once if it arrives before
    /// `event time + H` on the writer's clock; after that it is refused as late.
    pub fn horizon(mut self, horizon: Duration) -> Self {
        self.horizon_ms = self.ms("horizon", horizon, self.horizon_ms);
        self
    }

    /// How long a window is kept after it ends; older buckets are deleted from the store.
    pub fn retention(mut self, retention: Duration) -> Self {
        self.retention_ms = self.ms("retention", retention, self.retention_ms);
        self
    }

    /// The longest a fold may take from reading its clock to its last append. A bucket drops
    /// its remembered IDs (is *sealed*) only `horizon + grace` after it ends.
    pub fn grace(mut self, grace: Duration) -> Self {
        self.grace_ms = self.ms("grace", grace, self.grace_ms);
        self
    }

    /// How far ahead of the writer's clock an event time may be before it is refused with
    /// [`Error::FutureEvent`]. Not stored: a writer-side check.
    pub fn max_skew(mut self, skew: Duration) -> Self {
        self.skew_ms = self.ms("max_skew", skew, self.skew_ms);
        self
    }

    /// Number of shards per bucket: a bucket's remembered IDs are split by the hash of the
    /// event ID into K sets, keeping each stored value small (100 000 events a minute at
    /// K = 4: sets of about 160 KB).
    pub fn shards(mut self, shards: u32) -> Self {
        self.shards = shards;
        self
    }

    /// A fold compacts each bucket it appended `e` events to with probability
    /// `max(1 / n, e / 16 384)`: about once per 16 384 events or `n` appends, whichever comes
    /// first (`n = 1`: after every fold; `0`: never, and no sweeps either — run
    /// [`Series::compact_range`](super::Series::compact_range) or
    /// [`Series::maintain`](super::Series::maintain) yourself). A compaction rewrites the
    /// bucket's remembered IDs, so rarer compactions fold faster; until then a query reads
    /// the pending records too (up to about `n` small records per bucket). A bucket is also
    /// compacted once a grace after it ends, by the sweeps folds run. Default 256.
    pub fn compact_every(mut self, n: u32) -> Self {
        self.compact_every = n;
        self
    }

    /// Retries for appends and compactions.
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// The clock (default: the system clock).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The window width in milliseconds.
    pub fn window_ms(&self) -> u64 {
        self.window_ms
    }

    /// The bucket width in milliseconds (a whole number of windows).
    pub fn bucket_ms(&self) -> u64 {
        self.window_ms.saturating_mul(self.windows_per_bucket())
    }

    pub(crate) fn windows_per_bucket(&self) -> u64 {
        self.bucket_windows
            .unwrap_or_else(|| 60_000u64.div_ceil(self.window_ms.max(1)))
    }

    /// Checks every parameter.
    pub(crate) fn validate(&self) -> Result<()> {
        if let Some(e) = &self.invalid {
            return Err(e.clone());
        }
        let bad = |name, reason: String| Err(Error::InvalidParameter { name, reason });
        let per_bucket = self.windows_per_bucket();
        if self.window_ms == 0 {
            return bad("window", "must be at least 1 ms".into());
        }
        if per_bucket == 0 || per_bucket > MAX_WINDOWS_PER_BUCKET {
            return bad(
                "bucket_windows",
                format!("{per_bucket} is outside 1..=1440"),
            );
        }
        if self.bucket_ms() > 31 * 86_400_000 {
            return bad("bucket_windows", "a bucket may span at most 31 days".into());
        }
        if self.shards == 0 || self.shards > MAX_SHARDS {
            return bad(
                "shards",
                format!("{} is outside 1..={MAX_SHARDS}", self.shards),
            );
        }
        if self.retention_ms < self.window_ms {
            return bad("retention", "must be at least one window".into());
        }
        if self.grace_ms == 0 {
            return bad("grace", "must be positive".into());
        }
        self.policy.validate()
    }

    pub(crate) fn meta(&self) -> SeriesMeta
    where
        A: Codec,
    {
        let mut params = Vec::new();
        self.template.write_params(&mut params);
        SeriesMeta {
            window_ms: self.window_ms,
            bucket_ms: self.bucket_ms(),
            horizon_ms: self.horizon_ms,
            retention_ms: self.retention_ms,
            grace_ms: self.grace_ms,
            shards: self.shards,
            type_tag: A::TYPE_TAG,
            params,
        }
    }
}

impl<A: Aggregate> Default for SeriesConfig<A> {
    fn default() -> Self {
        SeriesConfig::new(A::default())
    }
}

/// What `<metric>/meta` of a series holds (type tag [`tags::SERIES_META`]).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct SeriesMeta {
    pub(crate) window_ms: u64,
    pub(crate) bucket_ms: u64,
    pub(crate) horizon_ms: u64,
    pub(crate) retention_ms: u64,
    pub(crate) grace_ms: u64,
    pub(crate) shards: u32,
    pub(crate) type_tag: u16,
    /// The aggregate's parameter block (sketch precision, compression, …).
    pub(crate) params: Vec<u8>,
}

impl SeriesMeta {
    /// Checks that `stored` (the record found in the store) equals `self` (what the opener
    /// asked for): the first difference is an error naming both values.
    pub(crate) fn check_against(&self, stored: &SeriesMeta) -> Result<()> {
        if self.type_tag != stored.type_tag {
            return Err(Error::WrongType {
                expected: self.type_tag,
                found: stored.type_tag,
            });
        }
        let pairs: [(&'static str, u64, u64); 6] = [
            ("series window width (ms)", self.window_ms, stored.window_ms),
            ("series bucket width (ms)", self.bucket_ms, stored.bucket_ms),
            (
                "series dedup horizon (ms)",
                self.horizon_ms,
                stored.horizon_ms,
            ),
            (
                "series retention (ms)",
                self.retention_ms,
                stored.retention_ms,
            ),
            ("series grace (ms)", self.grace_ms, stored.grace_ms),
            (
                "series shard count",
                self.shards.into(),
                stored.shards.into(),
            ),
        ];
        for (what, asked, found) in pairs {
            if asked != found {
                return Err(Error::incompatible(what, asked, found));
            }
        }
        if self.params != stored.params {
            return Err(Error::incompatible(
                "series aggregate parameters",
                crate::store::meta::hex(&self.params),
                crate::store::meta::hex(&stored.params),
            ));
        }
        Ok(())
    }
}

impl Codec for SeriesMeta {
    const TYPE_TAG: u16 = tags::SERIES_META;

    fn write_payload(&self, out: &mut Vec<u8>) {
        for x in [
            self.window_ms,
            self.bucket_ms,
            self.horizon_ms,
            self.retention_ms,
            self.grace_ms,
        ] {
            out.extend_from_slice(&x.to_le_bytes());
        }
        out.extend_from_slice(&self.shards.to_le_bytes());
        out.extend_from_slice(&self.type_tag.to_le_bytes());
        write_section_with(out, |o| o.extend_from_slice(&self.params));
    }

    fn read_parts(params: &[u8], payload: &[u8], _: &Limits) -> Result<Self> {
        crate::agg::no_params(params)?;
        let mut r = Reader::new(payload);
        let meta = SeriesMeta {
            window_ms: r.u64("series window")?,
            bucket_ms: r.u64("series bucket")?,
            horizon_ms: r.u64("series horizon")?,
            retention_ms: r.u64("series retention")?,
            grace_ms: r.u64("series grace")?,
            shards: r.u32("series shards")?,
            type_tag: r.u16("series type tag")?,
            params: r.section("series aggregate params")?.to_vec(),
        };
        r.finish("series meta")?;
        let ok = meta.window_ms > 0
            && meta.bucket_ms >= meta.window_ms
            && meta.bucket_ms.is_multiple_of(meta.window_ms)
            && meta.bucket_ms / meta.window_ms <= MAX_WINDOWS_PER_BUCKET
            && (1..=MAX_SHARDS).contains(&meta.shards)
            && meta.grace_ms > 0;
        if !ok {
            return Err(Error::invalid_state("series parameters out of range"));
        }
        Ok(meta)
    }
}
