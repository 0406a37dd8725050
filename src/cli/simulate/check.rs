//! The exact truth of a run, computed here without shardfold's sums, and its comparison with
//! what the store answers: per window count, sum, min and max bit for bit, and the distinct
//! sketch's registers byte for byte; the stored tally against what the workers reported.

use std::collections::BTreeMap;

use super::plan::{Agg, Plan, SCALE};
use super::queue::Counters;
use crate::store::SeriesView;
use crate::{Distinct, Insert, encode};

/// The exact answer of one window (or of all of them).
#[derive(Debug, Clone, Default)]
pub(crate) struct Exact {
    count: u64,
    /// The sum in units of `1 / SCALE`: exact.
    units: i128,
    min: Option<f64>,
    max: Option<f64>,
    /// A sketch of the window's items built here, in one go.
    distinct: Distinct,
    /// The number of distinct items (exact).
    items: std::collections::BTreeSet<u64>,
}

impl Exact {
    fn add(&mut self, value: f64, item: u64) -> crate::Result<()> {
        self.count += 1;
        // a multiple of 1/SCALE (a power of two) times SCALE is an exact integer
        self.units += (value * SCALE) as i128;
        self.min = Some(self.min.map_or(value, |m| m.min(value)));
        self.max = Some(self.max.map_or(value, |m| m.max(value)));
        self.items.insert(item);
        self.distinct.insert(item)
    }

    /// The correctly rounded exact sum: the integer rounds once to `f64`, and dividing by a
    /// power of two is exact.
    fn sum(&self) -> f64 {
        self.units as f64 / SCALE
    }

    /// Whether `got` equals this, bit for bit; what differs otherwise.
    fn compare(&self, got: &Agg) -> Vec<&'static str> {
        let (stats, distinct) = (&got.0.0, &got.0.1);
        let bits = |x: Option<f64>| x.map(f64::to_bits);
        let mut diff = Vec::new();
        if stats.count() != self.count {
            diff.push("count");
        }
        if stats.sum().to_bits() != self.sum().to_bits() {
            diff.push("sum");
        }
        if bits(stats.min()) != bits(self.min) {
            diff.push("min");
        }
        if bits(stats.max()) != bits(self.max) {
            diff.push("max");
        }
        if encode(distinct) != encode(&self.distinct) {
            diff.push("distinct registers");
        }
        diff
    }
}

/// Per window start, the exact answer over the on-time events, and over all of them.
pub(crate) fn truth(plan: &Plan, window_ms: u64) -> crate::Result<(BTreeMap<u64, Exact>, Exact)> {
    let mut windows: BTreeMap<u64, Exact> = BTreeMap::new();
    let mut total = Exact::default();
    for (e, &late) in plan.events.iter().zip(&plan.late) {
        if late {
            continue;
        }
        let (value, item) = e.value;
        let start = e.time_ms - e.time_ms % window_ms.max(1);
        windows.entry(start).or_default().add(value, item)?;
        total.add(value, item)?;
    }
    Ok((windows, total))
}

/// The verdict of a run: the table to print and whether everything matched.
#[derive(Debug)]
pub(crate) struct Verdict {
    /// Lines to print.
    pub lines: Vec<String>,
    /// Everything matched.
    pub ok: bool,
}

/// One row of the table.
struct Row<'a> {
    what: &'a str,
    stored: String,
    exact: String,
    ok: bool,
}

/// Compares the stored view with the truth and the workers' reports.
pub(crate) fn compare(
    plan: &Plan,
    view: &SeriesView<Agg>,
    counters: &Counters,
    answered: &[bool],
) -> crate::Result<Verdict> {
    let (windows, total) = truth(plan, view.window_ms())?;
    let stored_total = view.total()?;
    let mut notes = Vec::new();
    let mut identical = 0usize;
    for (start, got) in view.windows() {
        match windows.get(&start) {
            None => notes.push(format!("window {start}: stored, but no event falls in it")),
            Some(want) => {
                let diff = want.compare(got);
                if diff.is_empty() {
                    identical += 1;
                } else {
                    notes.push(format!("window {start}: {} differ", diff.join(", ")));
                }
            }
        }
    }
    for start in windows.keys().filter(|s| view.window(**s).is_none()) {
        notes.push(format!("window {start}: missing from the store"));
    }
    let on_time = total.count;
    let tally = view.tally();
    let (stats, distinct) = (&stored_total.0.0, &stored_total.0.1);
    let opt = |x: Option<f64>| x.map_or("-".to_owned(), |v| v.to_string());
    let bits = |x: Option<f64>| x.map(f64::to_bits);
    let dup_range = (
        counters.acked_on_time.saturating_sub(on_time),
        counters.sent_on_time.saturating_sub(on_time),
    );
    let unanswered = answered.iter().filter(|a| !**a).count();
    let rows = [
        Row {
            what: "windows (identical)",
            stored: format!("{} ({identical})", view.window_count()),
            exact: windows.len().to_string(),
            ok: identical == windows.len() && view.window_count() == windows.len(),
        },
        Row {
            what: "count",
            stored: stats.count().to_string(),
            exact: on_time.to_string(),
            ok: stats.count() == on_time,
        },
        Row {
            what: "sum",
            stored: stats.sum().to_string(),
            exact: total.sum().to_string(),
            ok: stats.sum().to_bits() == total.sum().to_bits(),
        },
        Row {
            what: "min",
            stored: opt(stats.min()),
            exact: opt(total.min),
            ok: bits(stats.min()) == bits(total.min),
        },
        Row {
            what: "max",
            stored: opt(stats.max()),
            exact: opt(total.max),
            ok: bits(stats.max()) == bits(total.max),
        },
        Row {
            what: "distinct items",
            stored: format!("≈ {:.1}", distinct.estimate()),
            exact: format!(
                "{} (sketch ≈ {:.1})",
                total.items.len(),
                total.distinct.estimate()
            ),
            ok: encode(distinct) == encode(&total.distinct),
        },
        Row {
            what: "folded",
            stored: tally.folded.to_string(),
            exact: on_time.to_string(),
            ok: tally.folded == on_time,
        },
        Row {
            what: "late deliveries",
            stored: tally.late.to_string(),
            exact: format!("{}..={}", counters.acked_late, counters.sent_late),
            ok: (counters.acked_late..=counters.sent_late).contains(&tally.late),
        },
        Row {
            what: "duplicates",
            stored: tally.duplicates.to_string(),
            exact: format!("{}..={}", dup_range.0, dup_range.1),
            ok: (dup_range.0..=dup_range.1).contains(&tally.duplicates),
        },
        Row {
            what: "rejected",
            stored: tally.rejected.to_string(),
            exact: "0".into(),
            ok: tally.rejected == 0,
        },
        Row {
            what: "pending records",
            stored: view.pending_records().to_string(),
            exact: "0".into(),
            ok: view.pending_records() == 0,
        },
        Row {
            what: "events answered",
            stored: (answered.len() - unanswered).to_string(),
            exact: answered.len().to_string(),
            ok: unanswered == 0,
        },
        Row {
            what: "surprising answers",
            stored: counters.surprises.to_string(),
            exact: "0".into(),
            ok: counters.surprises == 0,
        },
    ];
    let mut lines = vec![format!(
        "{:<20} {:>26} {:>34}",
        "", "stored", "exact (computed here)"
    )];
    let mut ok = notes.is_empty();
    for r in &rows {
        ok &= r.ok;
        lines.push(format!(
            "{:<20} {:>26} {:>34}  {}",
            r.what,
            r.stored,
            r.exact,
            if r.ok { "✓" } else { "✗ MISMATCH" }
        ));
    }
    lines.extend(notes.iter().take(20).cloned());
    lines.extend(counters.surprise_notes.iter().cloned());
    Ok(Verdict { lines, ok })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn stored(values: &[(f64, u64)]) -> Agg {
        let mut a = Agg::default();
        for &v in values {
            a.insert(v).unwrap();
        }
        a
    }

    /// The comparison that decides the exit status finds every kind of difference.
    #[test]
    fn every_difference_is_found() {
        let events = [(1.5, 1), (-0.25, 2), (3.0, 1), (0.5, 9)];
        let mut exact = Exact::default();
        for &(v, i) in &events {
            exact.add(v, i).unwrap();
        }
        assert!(exact.compare(&stored(&events)).is_empty());

        let mut one_lost = events.to_vec();
        one_lost.pop();
        let d = exact.compare(&stored(&one_lost));
        assert!(
            d.contains(&"count") && d.contains(&"sum") && d.contains(&"distinct registers"),
            "{d:?}"
        );

        let mut doubled = events.to_vec();
        doubled.push(events[1]);
        let d = exact.compare(&stored(&doubled));
        assert!(d.contains(&"count") && d.contains(&"sum"), "{d:?}");
        assert!(!d.contains(&"distinct registers"), "{d:?}");

        let mut nudged = events.to_vec();
        nudged[2].0 = 3.0 + f64::EPSILON * 4.0; // the max, one ulp-ish off
        let d = exact.compare(&stored(&nudged));
        assert!(d.contains(&"max") && d.contains(&"sum"), "{d:?}");

        let mut lower = events.to_vec();
        lower[1].0 = -0.5;
        assert!(exact.compare(&stored(&lower)).contains(&"min"));
    }
}
