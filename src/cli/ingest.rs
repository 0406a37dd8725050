//! `shardfold ingest`: fold NDJSON events (see [`parse`](super::parse) for the line format)
//! into the CLI metric of a store.
//!
//! The input is read in batches of `--batch` lines. Each batch is parsed first: a bad line is
//! reported on stderr with its line number and reason, then skipped and counted — or, with
//! `--strict`, the run fails before anything of that batch is written (the metric's
//! description and the series' parameters are recorded when the run starts, so a failed
//! first run leaves an empty metric). The good events of a
//! batch are folded into the metric's [`Series`](crate::store::Series) (appended, then folded
//! exactly once by compactions); events whose write failed with a transient error are folded
//! again, up to three attempts (`retries`). At the end the buckets the run touched are
//! compacted (best effort: a compaction that loses a race with another writer's is a
//! `conflict`, left to the next one — the query reads pending records anyway).
//!
//! The summary (stdout) gives this run's lines, accepted, late, rejected (bad lines and events
//! the metric refuses: a value stamped too far in the future, …), failed, retries and
//! conflicts, then the stored tally of the buckets it touched (all writers): folded,
//! duplicate, late, rejected. Exit status 1 when any line was bad, rejected or failed (the
//! good lines are written all the same, except with `--strict`).

use std::io::{BufRead, IsTerminal};
use std::process::ExitCode;

use clap::Args;

use super::metric::{CliEvent, CliSeries, MetricSpec, SpecFlags, ensure_spec};
use super::parse::{ParsedEvent, parse_duration_ms, parse_line};
use super::{CliError, CliResult};
use crate::Event;
use crate::store::{EventOutcome, FoldReport, Tally};
use crate::{Error, Outcome};

/// Arguments of `shardfold ingest`.
#[derive(Debug, Clone, Args)]
pub struct IngestArgs {
    /// Store URL: sqlite:///path/file.db, redis://host:port, postgres://…, memory://
    #[arg(long, env = "SHARDFOLD_STORE")]
    pub store: String,
    /// Metric name (created on first ingest with the parameters given).
    #[arg(long)]
    pub metric: String,
    /// Event-time window width (e.g. 60s, 5m; default 60s). Stored when the metric is created.
    #[arg(long, value_parser = parse_duration_ms)]
    pub window: Option<u64>,
    /// Dedup horizon: older events are late (default 6h). Stored at creation.
    #[arg(long, value_parser = parse_duration_ms)]
    pub horizon: Option<u64>,
    /// How long windows are kept (default 7d). Stored at creation.
    #[arg(long, value_parser = parse_duration_ms)]
    pub retention: Option<u64>,
    /// Write shards per bucket (default 4). Stored at creation.
    #[arg(long)]
    pub shards: Option<u32>,
    /// HLL precision of the distinct count, 4..=18 (default 14). Stored at creation.
    #[arg(long)]
    pub precision: Option<u8>,
    /// t-digest compression, 10..=10000 (default 500). Stored at creation.
    #[arg(long)]
    pub compression: Option<u32>,
    /// Relative accuracy α of the log-histogram quantiles (default 0.01). Stored at creation.
    #[arg(long)]
    pub alpha: Option<f64>,
    /// Group by this event field (a grouped metric). Stored at creation.
    #[arg(long)]
    pub group_by: Option<String>,
    /// Lines per batch (one fold per batch).
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..))]
    pub batch: u32,
    /// Fail on the first bad line, before anything of its batch is written.
    #[arg(long)]
    pub strict: bool,
    /// NDJSON input file; `-` or nothing for stdin.
    pub file: Option<String>,
}

impl IngestArgs {
    fn flags(&self) -> SpecFlags {
        SpecFlags {
            window_ms: self.window,
            horizon_ms: self.horizon,
            retention_ms: self.retention,
            shards: self.shards,
            precision: self.precision,
            compression: self.compression,
            alpha: self.alpha,
            group_by: self.group_by.clone(),
        }
    }
}

/// What one run did (see the [module docs](self)).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    /// Non-blank lines read.
    pub lines: u64,
    /// Events appended (each folded once, or counted a duplicate, by a compaction).
    pub accepted: u64,
    /// Events refused as late (older than the horizon).
    pub late: u64,
    /// Bad lines skipped.
    pub bad_lines: u64,
    /// Events the metric refused (never redeliverable as is).
    pub rejected: u64,
    /// Events not written after every retry (redeliver them).
    pub failed: u64,
    /// Events folded again after a transient failure.
    pub retries: u64,
    /// Compactions at the end that lost a race with another writer.
    pub conflicts: u64,
    /// The stored tally of the buckets this run touched, all writers, after its compactions.
    pub touched: Tally,
}

impl Summary {
    /// The summary as printed.
    pub fn render(&self) -> String {
        format!(
            "lines {}, accepted {}, late {}, rejected {} (bad lines {}, refused {}), failed {}, retries {}, conflicts {}\n\
             buckets touched (all writers): folded {}, duplicate {}, late {}, rejected {}",
            self.lines,
            self.accepted,
            self.late,
            self.bad_lines + self.rejected,
            self.bad_lines,
            self.rejected,
            self.failed,
            self.retries,
            self.conflicts,
            self.touched.folded,
            self.touched.duplicates,
            self.touched.late,
            self.touched.rejected,
        )
    }
}

/// Runs `shardfold ingest`.
///
/// # Errors
///
/// A bad store URL or unreachable store, a metric created with other parameters, an
/// unreadable input, a bad line with `--strict`.
pub async fn run(args: IngestArgs) -> CliResult {
    let store = crate::store::connect(&args.store).await?;
    let spec = ensure_spec(&*store, &args.metric, &args.flags()).await?;
    let series = CliSeries::open(store.clone(), &args.metric, &spec).await?;
    let input: Box<dyn BufRead> = match args.file.as_deref() {
        None | Some("-") => Box::new(std::io::stdin().lock()),
        Some(path) => Box::new(std::io::BufReader::new(
            std::fs::File::open(path)
                .map_err(|e| CliError::Usage(format!("cannot open `{path}`: {e}")))?,
        )),
    };
    let progress = progress_bar();
    let mut run = Run {
        series: &series,
        spec: &spec,
        summary: Summary::default(),
        span: None,
    };
    let mut batch: Vec<(u64, String)> = Vec::with_capacity(args.batch as usize);
    for (n, line) in input.lines().enumerate() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        batch.push((n as u64 + 1, line));
        if batch.len() >= args.batch as usize {
            run.batch(&std::mem::take(&mut batch), args.strict).await?;
            progress.set_position(run.summary.lines);
        }
    }
    run.batch(&batch, args.strict).await?;
    progress.finish_and_clear();
    run.finish().await;
    println!("{}", run.summary.render());
    let s = &run.summary;
    if s.bad_lines + s.rejected + s.failed > 0 {
        eprintln!(
            "error: {} line(s) not ingested (see above)",
            s.bad_lines + s.rejected + s.failed
        );
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

fn progress_bar() -> indicatif::ProgressBar {
    if !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new_spinner();
    if let Ok(style) = indicatif::ProgressStyle::with_template("{spinner} {pos} lines {per_sec}") {
        bar.set_style(style);
    }
    bar
}

struct Run<'a> {
    series: &'a CliSeries,
    spec: &'a MetricSpec,
    summary: Summary,
    /// The event-time range accepted events fell in.
    span: Option<(u64, u64)>,
}

impl Run<'_> {
    /// Parses then folds one batch of `(line number, line)`.
    async fn batch(&mut self, lines: &[(u64, String)], strict: bool) -> Result<(), CliError> {
        let group_by = self.spec.group_by.as_deref();
        let mut good: Vec<(u64, ParsedEvent)> = Vec::with_capacity(lines.len());
        for (n, line) in lines {
            self.summary.lines += 1;
            match parse_line(line, group_by) {
                Ok(e) => good.push((*n, e)),
                Err(reason) if strict => {
                    return Err(CliError::Usage(format!(
                        "line {n}: {reason} (--strict: nothing of this batch was written)"
                    )));
                }
                Err(reason) => {
                    eprintln!("line {n}: {reason}");
                    self.summary.bad_lines += 1;
                }
            }
        }
        let mut todo = good;
        for attempt in 1..=3 {
            if todo.is_empty() {
                break;
            }
            if attempt > 1 {
                self.summary.retries += todo.len() as u64;
            }
            let report = self.fold(&todo).await?;
            todo = self.tally(todo, &report, attempt == 3);
        }
        Ok(())
    }

    async fn fold(&self, events: &[(u64, ParsedEvent)]) -> Result<FoldReport, CliError> {
        Ok(match self.series {
            CliSeries::Plain(s) => {
                let batch: Vec<Event<CliEvent>> = events
                    .iter()
                    .map(|(_, e)| Event::new(e.id, e.time_ms, e.event.clone()))
                    .collect();
                s.fold(&batch).await?
            }
            CliSeries::Grouped(s) => {
                let batch: Vec<Event<(String, CliEvent)>> = events
                    .iter()
                    .map(|(_, e)| {
                        let key = e.group.clone().unwrap_or_default();
                        Event::new(e.id, e.time_ms, (key, e.event.clone()))
                    })
                    .collect();
                s.fold(&batch).await?
            }
        })
    }

    /// Counts a fold's outcomes; returns the events to fold again (transient failures).
    fn tally(
        &mut self,
        events: Vec<(u64, ParsedEvent)>,
        report: &FoldReport,
        last: bool,
    ) -> Vec<(u64, ParsedEvent)> {
        let mut again = Vec::new();
        for ((n, e), outcome) in events.into_iter().zip(&report.outcomes) {
            match outcome {
                EventOutcome::Accepted | EventOutcome::Done(Outcome::Folded) => {
                    self.summary.accepted += 1;
                    let (lo, hi) = self.span.unwrap_or((e.time_ms, e.time_ms));
                    self.span = Some((lo.min(e.time_ms), hi.max(e.time_ms)));
                }
                EventOutcome::Done(Outcome::Late) => self.summary.late += 1,
                EventOutcome::Done(_) => self.summary.accepted += 1,
                EventOutcome::Failed(err) if err.is_transient() && !last => again.push((n, e)),
                EventOutcome::Failed(err) if err.is_transient() => {
                    eprintln!("line {n}: not written: {err}");
                    self.summary.failed += 1;
                }
                EventOutcome::Failed(err) => {
                    eprintln!("line {n}: refused: {err}");
                    self.summary.rejected += 1;
                }
            }
        }
        again
    }

    /// Compacts the buckets the run touched and reads their tally.
    async fn finish(&mut self) {
        let Some((lo, hi)) = self.span else { return };
        let to = hi.saturating_add(1);
        let result = match self.series {
            CliSeries::Plain(s) => s.compact_range(lo, to).await,
            CliSeries::Grouped(s) => s.compact_range(lo, to).await,
        };
        match result {
            Ok(t) => self.summary.touched = t,
            Err(Error::Contended { .. }) => self.summary.conflicts += 1,
            Err(e) => eprintln!("warning: compaction left for later: {e}"),
        }
        if self.summary.conflicts > 0 {
            // the records are durable and a query reads them: only the tally is not final
            let view = match self.series {
                CliSeries::Plain(s) => s.query_range(lo, to).await.map(|v| v.tally()),
                CliSeries::Grouped(s) => s.query_range(lo, to).await.map(|v| v.tally()),
            };
            if let Ok(t) = view {
                self.summary.touched = t;
            }
        }
    }
}
