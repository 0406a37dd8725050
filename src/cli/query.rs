//! `shardfold query`: read the CLI metric over a time range and print it as JSON, a table
//! with a small chart, or OpenMetrics text (see [`render`]).
//!
//! A query reads every bucket of the range — compacted bases and the records no compaction
//! has folded yet, deduplicated as a compaction would — so it sees every event an `ingest`
//! accepted before it started, with nothing else to run first.

use std::process::ExitCode;

use clap::{Args, ValueEnum};

use super::metric::{CliAgg, CliSeries, load_spec};
use super::parse::parse_time_flag;
use super::render::{self, KeyOut, QueryOut, StatsOut, WindowOut};
use super::{CliError, CliResult};
use crate::Keyed;
use crate::store::SeriesView;

/// Output formats of `shardfold query`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// The JSON document described in [`render::json`].
    Json,
    /// A table with a per-window chart of count and p99, for people.
    Table,
    /// OpenMetrics text (Prometheus), ending with `# EOF`.
    Prometheus,
}

/// Arguments of `shardfold query`.
#[derive(Debug, Clone, Args)]
pub struct QueryArgs {
    /// Store URL: sqlite:///path/file.db, redis://host:port, postgres://…, memory://
    #[arg(long, env = "SHARDFOLD_STORE")]
    pub store: String,
    /// Metric name.
    #[arg(long)]
    pub metric: String,
    /// Start of the range (ms since the epoch or RFC 3339); default: the retained range.
    #[arg(long, value_parser = parse_time_flag)]
    pub from: Option<u64>,
    /// End of the range, exclusive (ms since the epoch or RFC 3339); default: now plus the
    /// allowed clock skew.
    #[arg(long, value_parser = parse_time_flag)]
    pub to: Option<u64>,
    /// Only this group-by key (grouped metrics).
    #[arg(long, conflicts_with_all = ["top", "by"])]
    pub key: Option<String>,
    /// The N keys with the largest `--by` stat (grouped metrics).
    #[arg(long, requires = "by")]
    pub top: Option<usize>,
    /// The stat `--top` ranks by: count, sum, min, max, mean, distinct, or pNN (p50, p99, p999:
    /// a t-digest quantile).
    #[arg(long, requires = "top")]
    pub by: Option<String>,
    /// Quantiles to report, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "0.5,0.9,0.99")]
    pub quantiles: Vec<f64>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Json)]
    pub format: Format,
}

/// The widest range a query may span, in windows.
const MAX_WINDOWS: u64 = 10_000_000;

/// Runs `shardfold query`.
///
/// # Errors
///
/// No such metric, a bad range or quantile, `--key`/`--top` on an ungrouped metric, store
/// errors, a damaged stored value in the range.
pub async fn run(args: QueryArgs) -> CliResult {
    for &q in &args.quantiles {
        if !(0.0..=1.0).contains(&q) {
            return Err(CliError::Usage(format!("quantile {q} is outside [0, 1]")));
        }
    }
    let select = Select::from_args(&args)?;
    let store = crate::store::connect(&args.store).await?;
    let spec = load_spec(&*store, &args.metric).await?;
    let series = CliSeries::open(store, &args.metric, &spec).await?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let from = args.from.unwrap_or_else(|| {
        let f = now.saturating_sub(spec.retention_ms.saturating_add(spec.window_ms));
        f - f % spec.window_ms.max(1)
    });
    let to = args.to.unwrap_or(now.saturating_add(3_600_000));
    if to <= from {
        return Err(CliError::Usage(format!(
            "--to ({to}) must be after --from ({from})"
        )));
    }
    if (to - from) / spec.window_ms.max(1) > MAX_WINDOWS {
        return Err(CliError::Usage(format!(
            "the range spans more than {MAX_WINDOWS} windows: narrow --from/--to"
        )));
    }
    let mut out = QueryOut {
        metric: args.metric.clone(),
        window_ms: spec.window_ms,
        late: 0,
        duplicates: 0,
        total: StatsOut::default(),
        windows: Vec::new(),
        keys: None,
    };
    match &series {
        CliSeries::Plain(s) => {
            if !matches!(select, Select::All) {
                return Err(CliError::Usage(format!(
                    "metric `{}` is not grouped: --key and --top need a metric created with --group-by",
                    args.metric
                )));
            }
            let view = s.query_range(from, to).await?;
            plain(&view, &args.quantiles, &mut out)?;
        }
        CliSeries::Grouped(s) => {
            let view = s.query_range(from, to).await?;
            grouped(&view, &args.quantiles, &select, &mut out)?;
        }
    }
    let text = match args.format {
        Format::Json => render::json(&out),
        Format::Table => render::table(&out),
        Format::Prometheus => render::prometheus(&out),
    };
    println!("{text}");
    Ok(ExitCode::SUCCESS)
}

/// Which keys of a grouped metric to report.
#[derive(Debug, Clone, PartialEq)]
pub enum Select {
    /// Every key.
    All,
    /// One key; the totals and windows are that key's.
    Key(String),
    /// The `n` keys with the largest stat.
    Top(usize, By),
}

impl Select {
    fn from_args(args: &QueryArgs) -> Result<Self, CliError> {
        Ok(match (&args.key, args.top, &args.by) {
            (Some(k), _, _) => Select::Key(k.clone()),
            (None, Some(n), Some(by)) => Select::Top(n, By::parse(by)?),
            _ => Select::All,
        })
    }
}

/// A stat keys are ranked by.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum By {
    /// Events.
    Count,
    /// Exact sum of values.
    Sum,
    /// Smallest value.
    Min,
    /// Largest value.
    Max,
    /// Mean value.
    Mean,
    /// Distinct items.
    Distinct,
    /// A t-digest quantile of the values.
    Quantile(f64),
}

impl By {
    /// Parses `count`, `sum`, `min`, `max`, `mean`, `distinct` or `pNN` (`p99` = 0.99,
    /// `p999` = 0.999, `p5` = 0.5, `p100` = 1).
    ///
    /// # Errors
    ///
    /// [`CliError::Usage`] for anything else.
    pub fn parse(text: &str) -> Result<Self, CliError> {
        Ok(match text {
            "count" => By::Count,
            "sum" => By::Sum,
            "min" => By::Min,
            "max" => By::Max,
            "mean" => By::Mean,
            "distinct" => By::Distinct,
            "p100" => By::Quantile(1.0),
            p if p.len() > 1
                && p.starts_with('p')
                && p[1..].bytes().all(|b| b.is_ascii_digit()) =>
            {
                let q: f64 = format!("0.{}", &p[1..]).parse().map_err(|_| bad_by(text))?;
                By::Quantile(q)
            }
            _ => return Err(bad_by(text)),
        })
    }

    /// The score of one key's aggregate (`None` when it has no such value).
    pub fn score(self, a: &CliAgg) -> Option<f64> {
        match self {
            By::Count => Some(a.events.get() as f64),
            By::Sum => Some(a.stats.sum()),
            By::Min => a.stats.min(),
            By::Max => a.stats.max(),
            By::Mean => a.stats.mean(),
            By::Distinct => Some(a.distinct.count() as f64),
            By::Quantile(q) => a.tdigest.quantile(q).ok().flatten(),
        }
    }
}

fn bad_by(text: &str) -> CliError {
    CliError::Usage(format!(
        "--by `{text}`: expected count, sum, min, max, mean, distinct or pNN (p50, p99)"
    ))
}

/// The stats of one aggregate.
///
/// # Errors
///
/// A quantile outside [0, 1].
pub fn stats_of(a: &CliAgg, quantiles: &[f64]) -> crate::Result<StatsOut> {
    let mut out = StatsOut {
        count: a.events.get(),
        values: a.stats.count(),
        sum: a.stats.sum(),
        min: a.stats.min(),
        max: a.stats.max(),
        mean: a.stats.mean(),
        distinct: a.distinct.count(),
        quantiles: Vec::with_capacity(quantiles.len()),
        quantiles_loghist: Vec::with_capacity(quantiles.len()),
    };
    for &q in quantiles {
        out.quantiles.push((q, a.tdigest.quantile(q)?));
        out.quantiles_loghist.push((q, a.loghist.quantile(q)?));
    }
    Ok(out)
}

fn window_out(start: u64, w: u64, a: &CliAgg, quantiles: &[f64]) -> crate::Result<WindowOut> {
    Ok(WindowOut {
        start,
        end: start.saturating_add(w),
        stats: stats_of(a, quantiles)?,
    })
}

/// Fills `out` from an ungrouped view.
///
/// # Errors
///
/// Merge errors of the aggregate; a quantile outside [0, 1].
pub fn plain(view: &SeriesView<CliAgg>, q: &[f64], out: &mut QueryOut) -> crate::Result<()> {
    let tally = view.tally();
    (out.late, out.duplicates) = (tally.late, tally.duplicates);
    out.total = stats_of(&view.total()?, q)?;
    for (start, a) in view.windows() {
        out.windows.push(window_out(start, view.window_ms(), a, q)?);
    }
    Ok(())
}

/// Fills `out` from a grouped view, with the keys `select` picks.
///
/// # Errors
///
/// As [`plain`].
pub fn grouped(
    view: &SeriesView<Keyed<String, CliAgg>>,
    q: &[f64],
    select: &Select,
    out: &mut QueryOut,
) -> crate::Result<()> {
    let tally = view.tally();
    (out.late, out.duplicates) = (tally.late, tally.duplicates);
    let all = view.total()?;
    let keys: Vec<String> = match select {
        Select::All => all.iter().map(|(k, _)| k.clone()).collect(),
        Select::Key(k) => vec![k.clone()],
        Select::Top(n, by) => all
            .top_by(*n, |a| by.score(a).unwrap_or(f64::NEG_INFINITY))
            .into_iter()
            .map(|(k, _)| k.clone())
            .collect(),
    };
    let empty = all.template().clone();
    let mut key_outs = Vec::with_capacity(keys.len());
    for k in &keys {
        let mut windows = Vec::new();
        for (start, w) in view.windows() {
            if let Some(a) = w.get(k.as_str()) {
                windows.push(window_out(start, view.window_ms(), a, q)?);
            }
        }
        let total = stats_of(all.get(k.as_str()).unwrap_or(&empty), q)?;
        key_outs.push(KeyOut {
            key: k.clone(),
            total,
            windows,
        });
    }
    if let (Select::Key(_), Some(only)) = (select, key_outs.first()) {
        out.total = only.total.clone();
        out.windows = only.windows.clone();
    } else {
        out.total = stats_of(&all.total()?, q)?;
        for (start, w) in view.windows() {
            out.windows
                .push(window_out(start, view.window_ms(), &w.total()?, q)?);
        }
    }
    out.keys = Some(key_outs);
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::Insert;
    use crate::cli::metric::{CliEvent, MetricSpec};

    #[test]
    fn by_parses_stats_and_quantiles() {
        assert_eq!(By::parse("count").unwrap(), By::Count);
        assert_eq!(By::parse("p99").unwrap(), By::Quantile(0.99));
        assert_eq!(By::parse("p999").unwrap(), By::Quantile(0.999));
        assert_eq!(By::parse("p100").unwrap(), By::Quantile(1.0));
        for bad in ["", "p", "px", "p-1", "median"] {
            assert!(By::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn stats_of_counts_events_without_values() {
        let mut a = CliAgg::empty(&MetricSpec::default()).unwrap();
        for v in [Some(1.0), None, Some(3.0)] {
            a.insert(CliEvent {
                value: v,
                item: None,
            })
            .unwrap();
        }
        let s = stats_of(&a, &[0.5]).unwrap();
        assert_eq!((s.count, s.values, s.sum), (3, 2, 4.0));
        assert_eq!((s.min, s.max, s.mean), (Some(1.0), Some(3.0), Some(2.0)));
        assert_eq!(s.distinct, 0);
        assert_eq!(By::Count.score(&a), Some(3.0));
        assert_eq!(By::Max.score(&a), Some(3.0));
    }
}
