//! The renderers of `shardfold query`: JSON, a table with a small chart, OpenMetrics text.

use std::fmt::Write as _;

use serde_json::Value;

/// The stats of one window, one key or a total.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StatsOut {
    /// Events.
    pub count: u64,
    /// Events with a value (not in the JSON: the summaries' `_count`).
    pub values: u64,
    /// Exact sum of the values (rounded once).
    pub sum: f64,
    /// Smallest value, `None` without values.
    pub min: Option<f64>,
    /// Largest value.
    pub max: Option<f64>,
    /// Mean value.
    pub mean: Option<f64>,
    /// Distinct items (HLL estimate).
    pub distinct: u64,
    /// `(q, value)` from the t-digest, in the order asked.
    pub quantiles: Vec<(f64, Option<f64>)>,
    /// `(q, value)` from the log histogram.
    pub quantiles_loghist: Vec<(f64, Option<f64>)>,
}

/// One window.
#[derive(Debug, Clone, PartialEq)]
pub struct WindowOut {
    /// Start, ms since the epoch.
    pub start: u64,
    /// End (exclusive).
    pub end: u64,
    /// Its stats.
    pub stats: StatsOut,
}

/// One key of a grouped metric.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyOut {
    /// The key.
    pub key: String,
    /// Over the whole range.
    pub total: StatsOut,
    /// Per window holding events of the key, ascending.
    pub windows: Vec<WindowOut>,
}

/// A query's answer, before rendering.
#[derive(Debug, Clone, PartialEq)]
pub struct QueryOut {
    /// The metric's name.
    pub metric: String,
    /// Window width, ms.
    pub window_ms: u64,
    /// Late events counted in the buckets read.
    pub late: u64,
    /// Duplicate deliveries counted in the buckets read.
    pub duplicates: u64,
    /// Over the whole range (one key's with `--key`).
    pub total: StatsOut,
    /// Per window holding events, ascending.
    pub windows: Vec<WindowOut>,
    /// Grouped metrics: the keys selected, in selection order.
    pub keys: Option<Vec<KeyOut>>,
}

/// A JSON object with its keys in the order given; values are JSON text already.
fn obj<'a>(fields: impl IntoIterator<Item = (&'a str, String)>) -> String {
    let body: Vec<String> = fields
        .into_iter()
        .map(|(k, v)| format!("{}:{v}", Value::from(k)))
        .collect();
    format!("{{{}}}", body.join(","))
}

fn num(x: f64) -> String {
    serde_json::Number::from_f64(x).map_or("null".into(), |n| n.to_string())
}

fn opt(x: Option<f64>) -> String {
    x.map_or("null".into(), num)
}

fn quantile_map(qs: &[(f64, Option<f64>)]) -> String {
    let keys: Vec<String> = qs.iter().map(|(q, _)| q.to_string()).collect();
    obj(keys.iter().zip(qs).map(|(k, (_, v))| (k.as_str(), opt(*v))))
}

fn stats_fields(s: &StatsOut) -> Vec<(&'static str, String)> {
    vec![
        ("count", s.count.to_string()),
        ("sum", num(s.sum)),
        ("min", opt(s.min)),
        ("max", opt(s.max)),
        ("mean", opt(s.mean)),
        ("distinct", s.distinct.to_string()),
        ("quantiles", quantile_map(&s.quantiles)),
        ("quantiles_loghist", quantile_map(&s.quantiles_loghist)),
    ]
}

fn windows_json(ws: &[WindowOut]) -> String {
    let list: Vec<String> = ws
        .iter()
        .map(|w| {
            let mut f = vec![("start", w.start.to_string()), ("end", w.end.to_string())];
            f.extend(stats_fields(&w.stats));
            obj(f)
        })
        .collect();
    format!("[{}]", list.join(","))
}

/// The JSON document, keys in this order: `{"metric", "window_ms", "late", "duplicates",
/// "total": STATS, "windows": [{"start", "end", ...STATS}]}`, plus `"keys": {KEY: {"total":
/// STATS, "windows": [...]}}` when grouped (keys in selection order: by key, or best first
/// with `--top`); `STATS = {"count", "sum", "min", "max", "mean", "distinct", "quantiles":
/// {"0.5": x, ...}, "quantiles_loghist": {...}}` (`null` for a value of no values).
pub fn json(out: &QueryOut) -> String {
    let mut f = vec![
        ("metric", Value::from(out.metric.as_str()).to_string()),
        ("window_ms", out.window_ms.to_string()),
        ("late", out.late.to_string()),
        ("duplicates", out.duplicates.to_string()),
        ("total", obj(stats_fields(&out.total))),
        ("windows", windows_json(&out.windows)),
    ];
    if let Some(keys) = &out.keys {
        let per_key = keys.iter().map(|k| {
            let v = obj([
                ("total", obj(stats_fields(&k.total))),
                ("windows", windows_json(&k.windows)),
            ]);
            (k.key.as_str(), v)
        });
        f.push(("keys", obj(per_key)));
    }
    obj(f)
}

/// `ms` since the epoch as `YYYY-MM-DDTHH:MM:SS.mmmZ`.
pub fn format_rfc3339_ms(ms: u64) -> String {
    let (days, rem) = (ms / 86_400_000, ms % 86_400_000);
    // civil from days (Howard Hinnant's algorithm)
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + u64::from(m <= 2);
    let (h, mi, s, milli) = (
        rem / 3_600_000,
        rem / 60_000 % 60,
        rem / 1000 % 60,
        rem % 1000,
    );
    format!("{y:04}-{m:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{milli:03}Z")
}

fn fmt_opt(x: Option<f64>) -> String {
    x.map_or("-".into(), |v| format!("{v:.4}"))
}

fn bar(x: f64, max: f64, width: usize) -> String {
    let n = if max > 0.0 && x.is_finite() && x > 0.0 {
        ((x / max) * width as f64).round().clamp(1.0, width as f64) as usize
    } else {
        0
    };
    format!("{}{}", "█".repeat(n), " ".repeat(width - n))
}

fn p99(s: &StatsOut) -> Option<f64> {
    s.quantiles
        .iter()
        .find(|(q, _)| *q == 0.99)
        .or(s.quantiles.last())
        .and_then(|(_, v)| *v)
}

/// A table for people: the totals, then one row per window with a bar of its count and of its
/// p99 (the 0.99 quantile if asked, else the last one asked), then the keys.
pub fn table(out: &QueryOut) -> String {
    let mut t = String::new();
    let _ = writeln!(
        t,
        "metric {}  window {}  late {}  duplicates {}",
        out.metric,
        super::parse::format_duration_ms(out.window_ms),
        out.late,
        out.duplicates
    );
    let s = &out.total;
    let _ = writeln!(
        t,
        "total: count {}  sum {}  min {}  max {}  mean {}  distinct {}",
        s.count,
        s.sum,
        fmt_opt(s.min),
        fmt_opt(s.max),
        fmt_opt(s.mean),
        s.distinct
    );
    for (q, v) in &s.quantiles {
        let lh = s.quantiles_loghist.iter().find(|(x, _)| x == q);
        let _ = writeln!(
            t,
            "  p{q}: {} (t-digest)  {} (log histogram)",
            fmt_opt(*v),
            fmt_opt(lh.and_then(|(_, v)| *v))
        );
    }
    let max_count = out.windows.iter().map(|w| w.stats.count).max().unwrap_or(0) as f64;
    let max_p99 = out
        .windows
        .iter()
        .filter_map(|w| p99(&w.stats))
        .fold(0.0f64, f64::max);
    let _ = writeln!(
        t,
        "{:<24} {:>10} {:>12}  {:<20}  {:<20}",
        "window start (UTC)", "count", "p99", "count", "p99"
    );
    for w in &out.windows {
        let p = p99(&w.stats);
        let _ = writeln!(
            t,
            "{:<24} {:>10} {:>12}  {}  {}",
            format_rfc3339_ms(w.start),
            w.stats.count,
            fmt_opt(p),
            bar(w.stats.count as f64, max_count, 20),
            bar(p.unwrap_or(0.0), max_p99, 20)
        );
    }
    if let Some(keys) = &out.keys {
        let _ = writeln!(
            t,
            "{:<24} {:>10} {:>14} {:>12} {:>10}",
            "key", "count", "sum", "p99", "distinct"
        );
        for k in keys {
            let _ = writeln!(
                t,
                "{:<24} {:>10} {:>14} {:>12} {:>10}",
                k.key,
                k.total.count,
                k.total.sum,
                fmt_opt(p99(&k.total)),
                k.total.distinct
            );
        }
    }
    t.truncate(t.trim_end().len());
    t
}

/// Escapes an OpenMetrics label value (`\`, `"`, newline).
pub fn escape_label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn om_num(x: f64) -> String {
    if x.is_nan() {
        "NaN".into()
    } else if x.is_infinite() {
        if x > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        }
    } else {
        format!("{x}")
    }
}

/// The label sets and stats a family is written for: the total, then each key.
fn subjects(out: &QueryOut) -> Vec<(String, &StatsOut)> {
    let base = format!("metric=\"{}\"", escape_label(&out.metric));
    let mut v = vec![(base.clone(), &out.total)];
    for k in out.keys.iter().flatten() {
        v.push((format!("{base},key=\"{}\"", escape_label(&k.key)), &k.total));
    }
    v
}

/// OpenMetrics text over the whole range (a textfile collector or a scrape): counters
/// `shardfold_events_total`, `shardfold_duplicates_total`, `shardfold_late_total`, gauges
/// `shardfold_distinct_items`, `shardfold_value_min`, `shardfold_value_max`, summaries
/// `shardfold_value` (t-digest) and `shardfold_value_loghist` (quantiles, `_sum`, `_count`);
/// label `metric`, and `key` per group-by key; ends with `# EOF`.
pub fn prometheus(out: &QueryOut) -> String {
    let subjects = subjects(out);
    let base = format!("metric=\"{}\"", escape_label(&out.metric));
    let mut t = String::new();
    let mut family = |name: &str, kind: &str, help: &str| {
        let _ = writeln!(t, "# TYPE {name} {kind}\n# HELP {name} {help}");
    };
    family("shardfold_events", "counter", "Events folded.");
    let mut lines = String::new();
    for (labels, s) in &subjects {
        let _ = writeln!(lines, "shardfold_events_total{{{labels}}} {}", s.count);
    }
    t.push_str(&lines);
    let _ = writeln!(
        t,
        "# TYPE shardfold_duplicates counter\n# HELP shardfold_duplicates Duplicate deliveries.\nshardfold_duplicates_total{{{base}}} {}",
        out.duplicates
    );
    let _ = writeln!(
        t,
        "# TYPE shardfold_late counter\n# HELP shardfold_late Events refused as late.\nshardfold_late_total{{{base}}} {}",
        out.late
    );
    let _ = writeln!(
        t,
        "# TYPE shardfold_distinct_items gauge\n# HELP shardfold_distinct_items Distinct items (HyperLogLog estimate)."
    );
    for (labels, s) in &subjects {
        let _ = writeln!(t, "shardfold_distinct_items{{{labels}}} {}", s.distinct);
    }
    for (name, help, pick) in [
        (
            "shardfold_value_min",
            "Smallest value.",
            (|s: &StatsOut| s.min) as fn(&StatsOut) -> Option<f64>,
        ),
        ("shardfold_value_max", "Largest value.", |s: &StatsOut| {
            s.max
        }),
    ] {
        let _ = writeln!(t, "# TYPE {name} gauge\n# HELP {name} {help}");
        for (labels, s) in &subjects {
            if let Some(v) = pick(s) {
                let _ = writeln!(t, "{name}{{{labels}}} {}", om_num(v));
            }
        }
    }
    for (name, help, loghist) in [
        ("shardfold_value", "Values (t-digest quantiles).", false),
        (
            "shardfold_value_loghist",
            "Values (log-histogram quantiles).",
            true,
        ),
    ] {
        let _ = writeln!(t, "# TYPE {name} summary\n# HELP {name} {help}");
        for (labels, s) in &subjects {
            let qs = if loghist {
                &s.quantiles_loghist
            } else {
                &s.quantiles
            };
            for (q, v) in qs {
                if let Some(v) = v {
                    let _ = writeln!(t, "{name}{{{labels},quantile=\"{q}\"}} {}", om_num(*v));
                }
            }
            let _ = writeln!(t, "{name}_sum{{{labels}}} {}", om_num(s.sum));
            let _ = writeln!(t, "{name}_count{{{labels}}} {}", s.values);
        }
    }
    t.push_str("# EOF");
    t
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn sample() -> QueryOut {
        let stats = StatsOut {
            count: 2,
            values: 1,
            sum: 1.5,
            min: Some(1.5),
            max: Some(1.5),
            mean: Some(1.5),
            distinct: 1,
            quantiles: vec![(0.5, Some(1.5)), (0.99, None)],
            quantiles_loghist: vec![(0.5, Some(1.49))],
        };
        QueryOut {
            metric: "m\"x".into(),
            window_ms: 60_000,
            late: 1,
            duplicates: 2,
            total: stats.clone(),
            windows: vec![WindowOut {
                start: 0,
                end: 60_000,
                stats: stats.clone(),
            }],
            keys: Some(vec![KeyOut {
                key: "a\"b\\c\nd".into(),
                total: stats,
                windows: Vec::new(),
            }]),
        }
    }

    #[test]
    fn json_is_valid_and_ordered() {
        let text = json(&sample());
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["metric"], "m\"x");
        assert_eq!(v["total"]["quantiles"]["0.99"], Value::Null);
        assert_eq!(v["windows"][0]["end"], 60_000);
        assert_eq!(v["keys"]["a\"b\\c\nd"]["total"]["count"], 2);
        let pos = |k: &str| text.find(&format!("\"{k}\":")).unwrap();
        assert!(pos("metric") < pos("window_ms") && pos("windows") < pos("keys"));
    }

    #[test]
    fn openmetrics_escapes_labels_and_ends_with_eof() {
        let text = prometheus(&sample());
        assert!(text.ends_with("# EOF"));
        assert!(text.contains(r#"key="a\"b\\c\nd""#), "{text}");
        assert!(
            text.contains(r#"shardfold_value_count{metric="m\"x"} 1"#),
            "{text}"
        );
        assert_eq!(
            format_rfc3339_ms(951_782_400_500),
            "2000-02-29T00:00:00.500Z"
        );
    }
}
