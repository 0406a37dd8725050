//! The CLI's default metric: what one event feeds, what is kept per window and in total, and
//! the description stored when the metric is created.
//!
//! # What is kept
//!
//! Per event-time window, optionally per group-by key ([`Keyed`]), one [`CliAgg`]:
//!
//! | field | aggregate | fed with |
//! |---|---|---|
//! | `events` | [`Count`] | every event, with or without a `value` |
//! | `stats` | [`Stats`] | `value` when present: exact sum (rounded once), min, max, mean |
//! | `distinct` | [`Distinct`] (HLL, precision `p`) | `item` when present |
//! | `tdigest` | [`Quantiles`] (t-digest, compression `δ`) | `value` when present |
//! | `loghist` | [`LogHistogram`] (relative accuracy `α`) | `value` when present |
//!
//! # The stored description
//!
//! The metric lives in a [`Series`] of that name. Its parameters —
//! window, horizon, retention, shards, HLL precision, t-digest compression, α and group-by
//! field — are written once, when the metric is created, as a small versioned JSON document
//! under `<metric>/cli` (a [`MetricSpec`]); later commands read it, so they need no flags. An
//! `ingest` that passes a flag with another value than the stored one fails before writing
//! anything, naming the parameter and both values. The series also records (and checks) its
//! own layout parameters in `<metric>/meta`.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::CliError;
use crate::codec::nested::{self, Schema};
use crate::codec::{Codec, Limits, tags};
use crate::merge::{Insert, Merge};
use crate::store::{KvStore, Series, SeriesConfig, WriteOutcome};
use crate::{Count, Distinct, Keyed, LogHistogram, Quantiles, Stats};

/// One event as the metric sees it: an optional number and an optional item.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CliEvent {
    /// `value`: fed to the sum, min, max, mean and both quantile sketches.
    pub value: Option<f64>,
    /// `item`: fed to the distinct count.
    pub item: Option<String>,
}

/// The aggregate of one window (and of one key when grouped); see the [module docs](self).
#[derive(Debug, Clone, Default)]
pub struct CliAgg {
    /// Every event.
    pub events: Count,
    /// Count, exact sum, min, max and mean of the values.
    pub stats: Stats,
    /// Distinct items (HyperLogLog).
    pub distinct: Distinct,
    /// Quantiles of the values (t-digest).
    pub tdigest: Quantiles,
    /// Quantiles of the values (log histogram, relative error α).
    pub loghist: LogHistogram,
}

const SCHEMA: Schema = Schema::new(
    "ShardfoldCli",
    &["events", "stats", "distinct", "tdigest", "loghist"],
);

impl CliAgg {
    /// An empty aggregate with the sketch parameters of `spec`.
    ///
    /// # Errors
    ///
    /// [`crate::Error::InvalidParameter`] for a precision, compression or α out of range.
    pub fn empty(spec: &MetricSpec) -> crate::Result<Self> {
        Ok(CliAgg {
            events: Count::default(),
            stats: Stats::default(),
            distinct: Distinct::try_new(spec.precision)?,
            tdigest: Quantiles::try_new(spec.compression)?,
            loghist: LogHistogram::try_new(spec.alpha)?,
        })
    }
}

impl Merge for CliAgg {
    fn check_merge(&self, other: &Self) -> crate::Result<()> {
        self.events.check_merge(&other.events)?;
        self.stats.check_merge(&other.stats)?;
        self.distinct.check_merge(&other.distinct)?;
        self.tdigest.check_merge(&other.tdigest)?;
        self.loghist.check_merge(&other.loghist)
    }

    fn merge_unchecked(&mut self, other: &Self) -> crate::Result<()> {
        self.events.merge_unchecked(&other.events)?;
        self.stats.merge_unchecked(&other.stats)?;
        self.distinct.merge_unchecked(&other.distinct)?;
        self.tdigest.merge_unchecked(&other.tdigest)?;
        self.loghist.merge_unchecked(&other.loghist)
    }
}

impl Codec for CliAgg {
    const TYPE_TAG: u16 = tags::STRUCT;

    fn write_params(&self, out: &mut Vec<u8>) {
        SCHEMA
            .write_params(out)
            .field(&self.events)
            .field(&self.stats)
            .field(&self.distinct)
            .field(&self.tdigest)
            .field(&self.loghist);
    }

    fn write_payload(&self, out: &mut Vec<u8>) {
        nested::write_payload(&self.events, out);
        nested::write_payload(&self.stats, out);
        nested::write_payload(&self.distinct, out);
        nested::write_payload(&self.tdigest, out);
        nested::write_payload(&self.loghist, out);
    }

    fn read_parts(params: &[u8], payload: &[u8], limits: &Limits) -> crate::Result<Self> {
        let mut r = SCHEMA.read(params, payload, limits)?;
        let value = CliAgg {
            events: r.field()?,
            stats: r.field()?,
            distinct: r.field()?,
            tdigest: r.field()?,
            loghist: r.field()?,
        };
        r.finish()?;
        Ok(value)
    }
}

impl Insert<CliEvent> for CliAgg {
    fn check_insert(&self, e: &CliEvent) -> crate::Result<()> {
        self.events.check_insert(&())?;
        if let Some(v) = e.value {
            self.stats.check_insert(&v)?;
            self.tdigest.check_insert(&v)?;
            self.loghist.check_insert(&v)?;
        }
        if let Some(item) = &e.item {
            self.distinct.check_insert(item)?;
        }
        Ok(())
    }

    fn insert_unchecked(&mut self, e: CliEvent) -> crate::Result<()> {
        self.events.insert_unchecked(())?;
        if let Some(v) = e.value {
            self.stats.insert_unchecked(v)?;
            self.tdigest.insert_unchecked(v)?;
            self.loghist.insert_unchecked(v)?;
        }
        if let Some(item) = e.item {
            self.distinct.insert_unchecked(item)?;
        }
        Ok(())
    }
}

/// The version of the [`MetricSpec`] document this build writes and reads.
pub const SPEC_VERSION: u32 = 1;

/// The most keys a grouped metric keeps per window (more fall into an overflow bucket,
/// counted in the totals).
pub const MAX_KEYS: u32 = crate::agg::keyed::DEFAULT_MAX_KEYS;

/// The parameters of a CLI metric, stored under `<metric>/cli` as JSON when it is created.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricSpec {
    /// Document version ([`SPEC_VERSION`]).
    pub version: u32,
    /// Window width in milliseconds.
    pub window_ms: u64,
    /// Dedup horizon in milliseconds.
    pub horizon_ms: u64,
    /// Retention in milliseconds.
    pub retention_ms: u64,
    /// Write shards per bucket.
    pub shards: u32,
    /// HLL precision of the distinct count.
    pub precision: u8,
    /// t-digest compression.
    pub compression: u32,
    /// Relative accuracy α of the log histogram.
    pub alpha: f64,
    /// The event field the metric is grouped by, if any.
    pub group_by: Option<String>,
    /// The most keys kept per window when grouped.
    pub max_keys: u32,
}

impl Default for MetricSpec {
    fn default() -> Self {
        MetricSpec {
            version: SPEC_VERSION,
            window_ms: 60_000,
            horizon_ms: 6 * 3_600_000,
            retention_ms: 7 * 86_400_000,
            shards: 4,
            precision: Distinct::DEFAULT_PRECISION,
            compression: crate::agg::tdigest::DEFAULT_COMPRESSION,
            alpha: crate::agg::loghist::DEFAULT_ALPHA,
            group_by: None,
            max_keys: MAX_KEYS,
        }
    }
}

/// Parameters given on the command line; `None` means "the stored value, or the default".
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SpecFlags {
    /// `--window`, in ms.
    pub window_ms: Option<u64>,
    /// `--horizon`, in ms.
    pub horizon_ms: Option<u64>,
    /// `--retention`, in ms.
    pub retention_ms: Option<u64>,
    /// `--shards`.
    pub shards: Option<u32>,
    /// `--precision`.
    pub precision: Option<u8>,
    /// `--compression`.
    pub compression: Option<u32>,
    /// `--alpha`.
    pub alpha: Option<f64>,
    /// `--group-by`.
    pub group_by: Option<String>,
}

impl SpecFlags {
    /// The spec of a new metric: every flag given, defaults for the rest.
    pub fn to_spec(&self) -> MetricSpec {
        let d = MetricSpec::default();
        MetricSpec {
            window_ms: self.window_ms.unwrap_or(d.window_ms),
            horizon_ms: self.horizon_ms.unwrap_or(d.horizon_ms),
            retention_ms: self.retention_ms.unwrap_or(d.retention_ms),
            shards: self.shards.unwrap_or(d.shards),
            precision: self.precision.unwrap_or(d.precision),
            compression: self.compression.unwrap_or(d.compression),
            alpha: self.alpha.unwrap_or(d.alpha),
            group_by: self.group_by.clone(),
            ..d
        }
    }

    /// Checks every flag given against the stored spec of metric `name`.
    ///
    /// # Errors
    ///
    /// [`CliError::Usage`] naming the first parameter that differs, with both values.
    pub fn check(&self, name: &str, stored: &MetricSpec) -> Result<(), CliError> {
        let differs = |what: &str, asked: String, found: String| {
            Err(CliError::Usage(format!(
                "metric `{name}` was created with {what} {found}; this run asks for {what} {asked} \
                 (drop the flag to use the stored value, or use another metric name)"
            )))
        };
        let ms = |v: u64| super::duration::format_duration_ms(v);
        let pairs: [(&str, Option<String>, String); 7] = [
            ("--window", self.window_ms.map(ms), ms(stored.window_ms)),
            ("--horizon", self.horizon_ms.map(ms), ms(stored.horizon_ms)),
            (
                "--retention",
                self.retention_ms.map(ms),
                ms(stored.retention_ms),
            ),
            (
                "--shards",
                self.shards.map(|v| v.to_string()),
                stored.shards.to_string(),
            ),
            (
                "--precision",
                self.precision.map(|v| v.to_string()),
                stored.precision.to_string(),
            ),
            (
                "--compression",
                self.compression.map(|v| v.to_string()),
                stored.compression.to_string(),
            ),
            (
                "--alpha",
                self.alpha.map(|v| v.to_string()),
                stored.alpha.to_string(),
            ),
        ];
        for (what, asked, found) in pairs {
            if let Some(asked) = asked
                && asked != found
            {
                return differs(what, asked, found);
            }
        }
        if let Some(g) = &self.group_by
            && stored.group_by.as_ref() != Some(g)
        {
            let found = stored
                .group_by
                .as_ref()
                .map_or("no grouping".to_owned(), |s| format!("`{s}`"));
            return differs("--group-by", format!("`{g}`"), found);
        }
        Ok(())
    }
}

impl MetricSpec {
    /// Checks the values: version, ranges of the sketch parameters, durations.
    ///
    /// # Errors
    ///
    /// [`CliError::Usage`] naming the bad parameter.
    pub fn validate(&self) -> Result<(), CliError> {
        if self.version != SPEC_VERSION {
            return Err(CliError::Usage(format!(
                "metric description version {} is not supported (this build reads {SPEC_VERSION})",
                self.version
            )));
        }
        CliAgg::empty(self)?;
        if self.max_keys == 0 || self.max_keys > crate::agg::keyed::MAX_KEYS {
            return Err(CliError::Usage(format!(
                "max_keys {} out of range",
                self.max_keys
            )));
        }
        if let Some(g) = &self.group_by
            && g.is_empty()
        {
            return Err(CliError::Usage("--group-by needs a field name".into()));
        }
        Ok(())
    }

    /// The series configuration of this spec with aggregate template `template`.
    pub fn series_config<A>(&self, template: A) -> SeriesConfig<A> {
        SeriesConfig::new(template)
            .window(Duration::from_millis(self.window_ms))
            .horizon(Duration::from_millis(self.horizon_ms))
            .retention(Duration::from_millis(self.retention_ms))
            .shards(self.shards)
    }
}

/// The store key of metric `name`'s description: `<metric>/cli`.
pub fn spec_key(store: &dyn KvStore, name: &str) -> Vec<u8> {
    store.metric_key(name, "cli")
}

fn decode_spec(name: &str, bytes: &[u8]) -> Result<MetricSpec, CliError> {
    let spec: MetricSpec = serde_json::from_slice(bytes).map_err(|e| {
        CliError::Usage(format!(
            "the description of metric `{name}` (key `{name}/cli`) is damaged: {e}"
        ))
    })?;
    spec.validate()?;
    Ok(spec)
}

/// Reads the stored description of metric `name`.
///
/// # Errors
///
/// [`CliError::Usage`] when the metric does not exist or its description is damaged; store
/// errors.
pub async fn load_spec(store: &dyn KvStore, name: &str) -> Result<MetricSpec, CliError> {
    match store.read(&spec_key(store, name)).await? {
        Some((bytes, _)) => decode_spec(name, &bytes),
        None => Err(CliError::Usage(format!(
            "no metric `{name}` in this store (run `shardfold ingest` first)"
        ))),
    }
}

/// Reads the description of metric `name`, creating it from `flags` if absent (create-if-absent:
/// of concurrent creators one wins and the others compare with it); checks every flag given.
///
/// # Errors
///
/// As [`SpecFlags::check`] and [`load_spec`]; [`CliError::Usage`] for invalid flag values.
pub async fn ensure_spec(
    store: &dyn KvStore,
    name: &str,
    flags: &SpecFlags,
) -> Result<MetricSpec, CliError> {
    let key = spec_key(store, name);
    let stored = match store.read(&key).await? {
        Some((bytes, _)) => decode_spec(name, &bytes)?,
        None => {
            let spec = flags.to_spec();
            spec.validate()?;
            let bytes = serde_json::to_vec(&spec)
                .map_err(|e| CliError::Usage(format!("cannot encode the description: {e}")))?;
            match store.create(&key, &bytes).await? {
                WriteOutcome::Written(_) => return Ok(spec),
                WriteOutcome::Conflict => load_spec(store, name).await?,
            }
        }
    };
    flags.check(name, &stored)?;
    Ok(stored)
}

/// The ungrouped series of the CLI metric.
pub type PlainSeries = Series<CliAgg, CliEvent>;
/// The grouped series of the CLI metric: one [`CliAgg`] per key.
pub type GroupedSeries = Series<Keyed<String, CliAgg>, (String, CliEvent)>;

/// The metric's series, of the type its description names.
#[derive(Debug)]
pub enum CliSeries {
    /// Not grouped.
    Plain(Box<PlainSeries>),
    /// Grouped by [`MetricSpec::group_by`].
    Grouped(Box<GroupedSeries>),
}

impl CliSeries {
    /// Opens (or creates) the series of metric `name` as `spec` describes it.
    ///
    /// # Errors
    ///
    /// The series' own errors: parameters that differ from what `<metric>/meta` records,
    /// another type stored under that name, store errors.
    pub async fn open(
        store: Arc<dyn KvStore>,
        name: &str,
        spec: &MetricSpec,
    ) -> Result<Self, CliError> {
        let template = CliAgg::empty(spec)?;
        Ok(if spec.group_by.is_some() {
            let keyed = Keyed::with_template(spec.max_keys, template)?;
            CliSeries::Grouped(Box::new(
                Series::open(store, name, spec.series_config(keyed)).await?,
            ))
        } else {
            CliSeries::Plain(Box::new(
                Series::open(store, name, spec.series_config(template)).await?,
            ))
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn agg_round_trips_and_counts_events_without_values() {
        let spec = MetricSpec::default();
        let mut a = CliAgg::empty(&spec).unwrap();
        a.insert(CliEvent::default()).unwrap();
        a.insert(CliEvent {
            value: Some(2.5),
            item: Some("x".into()),
        })
        .unwrap();
        assert!(
            a.insert(CliEvent {
                value: Some(f64::NAN),
                item: None
            })
            .is_err()
        );
        assert_eq!(a.events.get(), 2);
        assert_eq!(a.stats.count(), 1);
        let back: CliAgg = crate::codec::decode(&crate::codec::encode(&a)).unwrap();
        assert_eq!(crate::codec::encode(&back), crate::codec::encode(&a));
    }

    #[test]
    fn flags_check_names_the_parameter() {
        let stored = MetricSpec::default();
        let flags = SpecFlags {
            window_ms: Some(30_000),
            ..SpecFlags::default()
        };
        let e = flags.check("m", &stored).unwrap_err().to_string();
        assert!(
            e.contains("--window") && e.contains("30s") && e.contains("1m"),
            "{e}"
        );
        let same = SpecFlags {
            window_ms: Some(60_000),
            ..SpecFlags::default()
        };
        assert!(same.check("m", &stored).is_ok());
        let grouped = SpecFlags {
            group_by: Some("route".into()),
            ..SpecFlags::default()
        };
        assert!(grouped.check("m", &stored).is_err());
    }
}
