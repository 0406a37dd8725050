//! The `shardfold` binary end to end: concurrent `ingest` processes fed overlapping slices of
//! one event file into SQLite and Redis, then `query` compared with the exact truth; grouped
//! metrics; `--strict`; bad lines; a mismatched second ingest; OpenMetrics output; `inspect` on
//! good and damaged values.
//!
//! Redis: `SHARDFOLD_REDIS_URL` (default `redis://127.0.0.1:6379`); skipped with a notice when
//! absent, unless `SHARDFOLD_REQUIRE_SERVICES=1`.
#![cfg(feature = "cli")]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::Value;
use shardfold::cli::render::format_rfc3339_ms;

const BIN: &str = env!("CARGO_BIN_EXE_shardfold");
const WINDOW_MS: u64 = 60_000;
const ROUTES: [&str; 4] = ["/a", "/b", "/c", "/d"];

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// A name no other test of this run (nor an earlier run) uses.
fn unique(name: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("{name}-{}-{}-{n}", std::process::id(), now_ms())
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("shardfold-cli-{}", unique(name)));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn shardfold(args: &[&str]) -> Output {
    Command::new(BIN).args(args).output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// One unique event of the truth.
#[derive(Debug, Clone)]
struct Ev {
    time_ms: u64,
    value: Option<f64>,
    item: String,
    route: &'static str,
}

/// The event file: unique events (some deduplicated by `(partition, seq)` with a different
/// `id` per delivery), and the lines of each slice (every event in one slice, 30 % again in
/// another slice, some twice in the same slice).
struct Data {
    truth: Vec<Ev>,
    slices: Vec<Vec<String>>,
}

fn line(i: usize, e: &Ev, delivery: u32) -> String {
    let ts = if i.is_multiple_of(3) {
        Value::String(format_rfc3339_ms(e.time_ms))
    } else {
        Value::from(e.time_ms)
    };
    let mut o = serde_json::Map::new();
    if i.is_multiple_of(5) {
        // sequence dedup: the id differs per delivery, (partition, seq) does not
        o.insert("id".into(), format!("d{delivery}-{i}").into());
        o.insert("partition".into(), format!("p{}", i % 3).into());
        o.insert(
            "seq".into(),
            if i.is_multiple_of(2) {
                Value::from(i as u64)
            } else {
                Value::from(i.to_string())
            },
        );
    } else {
        o.insert("id".into(), format!("e{i}").into());
    }
    o.insert("ts".into(), ts);
    if let Some(v) = e.value {
        o.insert("value".into(), v.into());
    }
    o.insert("item".into(), e.item.clone().into());
    o.insert("route".into(), e.route.into());
    Value::Object(o).to_string()
}

fn data(n: usize, slices: usize) -> Data {
    let start = now_ms() - 50 * 60_000;
    let mut rng = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let truth: Vec<Ev> = (0..n)
        .map(|i| Ev {
            time_ms: start + next() % (40 * 60_000),
            // multiples of 1/4 well inside 2^53: every summation order is exact
            value: (i % 7 != 0).then(|| (next() % 4000) as f64 * 0.25 - 300.0),
            item: format!("user-{}", next() % 700),
            route: ROUTES[(next() % 10).min(3) as usize],
        })
        .collect();
    let mut out = vec![Vec::new(); slices];
    for (i, e) in truth.iter().enumerate() {
        let home = i % slices;
        out[home].push(line(i, e, 0));
        if slices > 1 && next() % 10 < 3 {
            let other = (home + 1 + (next() % (slices as u64 - 1)) as usize) % slices;
            out[other].push(line(i, e, 1));
        }
        if next() % 50 == 0 {
            out[home].push(line(i, e, 2));
        }
    }
    Data { truth, slices: out }
}

/// Exact count, sum, min, max and distinct items of events.
fn exact<'a>(events: impl Iterator<Item = &'a Ev>) -> (u64, f64, Option<f64>, Option<f64>, usize) {
    let (mut n, mut sum, mut min, mut max) = (0, 0.0, None::<f64>, None::<f64>);
    let mut items = BTreeSet::new();
    for e in events {
        n += 1;
        items.insert(e.item.clone());
        if let Some(v) = e.value {
            sum += v;
            min = Some(min.map_or(v, |m| m.min(v)));
            max = Some(max.map_or(v, |m| m.max(v)));
        }
    }
    (n, sum, min, max, items.len())
}

fn check_stats(got: &Value, truth: &[&Ev], what: &str) {
    let (n, sum, min, max, distinct) = exact(truth.iter().copied());
    assert_eq!(got["count"].as_u64(), Some(n), "{what}: count");
    assert_eq!(got["sum"].as_f64(), Some(sum), "{what}: sum");
    assert_eq!(got["min"].as_f64(), min, "{what}: min");
    assert_eq!(got["max"].as_f64(), max, "{what}: max");
    let est = got["distinct"].as_u64().unwrap() as f64;
    // HLL p = 14: standard error 0.81 %; small sets are counted nearly exactly
    assert!(
        (est - distinct as f64).abs() <= 0.04 * distinct as f64 + 2.0,
        "{what}: distinct {est} vs exact {distinct}"
    );
    let mut values: Vec<f64> = truth.iter().filter_map(|e| e.value).collect();
    values.sort_by(f64::total_cmp);
    for family in ["quantiles", "quantiles_loghist"] {
        let q = &got[family];
        let (p50, p90, p99) = (q["0.5"].as_f64(), q["0.9"].as_f64(), q["0.99"].as_f64());
        if values.is_empty() {
            assert!(p50.is_none(), "{what}: {family} of no values");
            continue;
        }
        let (p50, p90, p99) = (p50.unwrap(), p90.unwrap(), p99.unwrap());
        let (lo, hi) = (min.unwrap(), max.unwrap());
        assert!(
            lo <= p50 && p50 <= p90 && p90 <= p99 && p99 <= hi,
            "{what}: {family} {q}"
        );
        // the median: between the values of rank 47 % and 53 % (one more either side for
        // tiny windows), give or take the log histogram's 1 % relative error
        let n = values.len();
        let lo = values[((0.47 * n as f64).floor() as usize)
            .saturating_sub(1)
            .min(n - 1)];
        let hi = values[((0.53 * n as f64).ceil() as usize).min(n - 1)];
        let slack = 0.011 * lo.abs().max(hi.abs());
        assert!(
            lo - slack <= p50 && p50 <= hi + slack,
            "{what}: {family} p50 {p50} outside [{lo}, {hi}] of {n} values"
        );
    }
}

fn ingest_concurrently(store: &str, metric: &str, files: &[PathBuf], extra: &[&str]) {
    let children: Vec<_> = files
        .iter()
        .map(|f| {
            let mut args = vec![
                "ingest", "--store", store, "--metric", metric, "--batch", "97",
            ];
            args.extend_from_slice(extra);
            args.push(f.to_str().unwrap());
            Command::new(BIN)
                .args(&args)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for c in children {
        let out = c.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "ingest failed: {}\n{}",
            text(&out.stdout),
            text(&out.stderr)
        );
        assert!(
            text(&out.stdout).contains("accepted"),
            "{}",
            text(&out.stdout)
        );
    }
}

fn query_json(store: &str, metric: &str, extra: &[&str]) -> Value {
    let mut args = vec![
        "query", "--store", store, "--metric", metric, "--format", "json",
    ];
    args.extend_from_slice(extra);
    let out = shardfold(&args);
    assert!(out.status.success(), "query: {}", text(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn write_slices(dir: &Path, d: &Data) -> Vec<PathBuf> {
    d.slices
        .iter()
        .enumerate()
        .map(|(i, lines)| {
            let p = dir.join(format!("slice{i}.ndjson"));
            std::fs::write(&p, lines.join("\n") + "\n").unwrap();
            p
        })
        .collect()
}

/// Concurrent ingests, then the plain query against the exact truth.
fn plain_end_to_end(store: &str) {
    let dir = scratch("plain");
    let d = data(3000, 5);
    let files = write_slices(&dir, &d);
    let metric = unique("plain");
    ingest_concurrently(store, &metric, &files, &[]);
    let got = query_json(store, &metric, &[]);
    assert_eq!(got["metric"].as_str(), Some(metric.as_str()));
    assert_eq!(got["window_ms"].as_u64(), Some(WINDOW_MS));
    assert_eq!(got["late"].as_u64(), Some(0));
    let delivered: usize = d.slices.iter().map(Vec::len).sum();
    assert_eq!(
        got["duplicates"].as_u64(),
        Some((delivered - d.truth.len()) as u64)
    );
    let all: Vec<&Ev> = d.truth.iter().collect();
    check_stats(&got["total"], &all, "total");
    let mut by_window: BTreeMap<u64, Vec<&Ev>> = BTreeMap::new();
    for e in &d.truth {
        by_window
            .entry(e.time_ms - e.time_ms % WINDOW_MS)
            .or_default()
            .push(e);
    }
    let windows = got["windows"].as_array().unwrap();
    let starts: Vec<u64> = windows
        .iter()
        .map(|w| w["start"].as_u64().unwrap())
        .collect();
    assert_eq!(starts, by_window.keys().copied().collect::<Vec<_>>());
    for w in windows {
        let s = w["start"].as_u64().unwrap();
        assert_eq!(w["end"].as_u64(), Some(s + WINDOW_MS));
        check_stats(w, &by_window[&s], &format!("window {s}"));
    }
    assert!(got.get("keys").is_none());
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn concurrent_ingests_into_sqlite_match_the_truth() {
    let dir = scratch("sqlite");
    let store = format!("sqlite://{}", dir.join("m.db").display());
    plain_end_to_end(&store);
}

/// `$var` or `default`, when its server accepts a TCP connection; else a notice and `None`
/// (a panic under `SHARDFOLD_REQUIRE_SERVICES=1`).
fn server_url(var: &str, default: &str) -> Option<String> {
    let url = std::env::var(var).unwrap_or_else(|_| default.to_owned());
    let rest = url.split_once("://").map_or(url.as_str(), |(_, r)| r);
    let rest = rest.rsplit('@').next().unwrap_or(rest);
    let addr = rest.split('/').next().unwrap_or(rest).to_owned();
    match std::net::TcpStream::connect(&addr) {
        Ok(_) => Some(url),
        Err(e) if std::env::var("SHARDFOLD_REQUIRE_SERVICES").is_ok_and(|v| v == "1") => {
            panic!("server required but unavailable at {addr}: {e}")
        }
        Err(e) => {
            eprintln!(
                "SKIPPED: server unavailable at {addr} ({e}); set SHARDFOLD_REQUIRE_SERVICES=1 to fail instead"
            );
            None
        }
    }
}

#[test]
fn concurrent_ingests_into_redis_match_the_truth() {
    if let Some(url) = server_url("SHARDFOLD_REDIS_URL", "redis://127.0.0.1:6379") {
        plain_end_to_end(&url);
    }
}

#[test]
fn concurrent_ingests_into_postgres_match_the_truth() {
    let default = "postgres://postgres@127.0.0.1:5432/test";
    if let Some(url) = server_url("SHARDFOLD_POSTGRES_URL", default) {
        plain_end_to_end(&url);
    }
}

#[test]
fn grouped_metric_per_key_top_and_key() {
    let dir = scratch("grouped");
    let store = format!("sqlite://{}", dir.join("g.db").display());
    let d = data(1500, 4);
    let files = write_slices(&dir, &d);
    ingest_concurrently(&store, "grouped", &files, &["--group-by", "route"]);
    let got = query_json(&store, "grouped", &[]);
    let all: Vec<&Ev> = d.truth.iter().collect();
    check_stats(&got["total"], &all, "grouped total");
    let keys = got["keys"].as_object().unwrap();
    let mut by_route: BTreeMap<&str, Vec<&Ev>> = BTreeMap::new();
    for e in &d.truth {
        by_route.entry(e.route).or_default().push(e);
    }
    assert_eq!(
        keys.keys().map(String::as_str).collect::<Vec<_>>(),
        by_route.keys().copied().collect::<Vec<_>>()
    );
    for (route, evs) in &by_route {
        check_stats(&keys[*route]["total"], evs, route);
        let wsum: u64 = keys[*route]["windows"]
            .as_array()
            .unwrap()
            .iter()
            .map(|w| w["count"].as_u64().unwrap())
            .sum();
        assert_eq!(wsum, evs.len() as u64, "{route}: windows add up");
    }
    // --top 2 --by count: the two busiest routes
    let mut busiest: Vec<(&str, usize)> = by_route.iter().map(|(r, e)| (*r, e.len())).collect();
    busiest.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    let top = query_json(&store, "grouped", &["--top", "2", "--by", "count"]);
    let top_keys: BTreeSet<&str> = top["keys"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(top_keys, busiest[..2].iter().map(|b| b.0).collect());
    // --key: totals and windows of that key only
    let one = query_json(&store, "grouped", &["--key", "/c"]);
    check_stats(&one["total"], &by_route["/c"], "--key /c");
    // --top needs --by
    let out = shardfold(&[
        "query", "--store", &store, "--metric", "grouped", "--top", "1",
    ]);
    assert!(!out.status.success());
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn strict_bad_line_writes_nothing() {
    let dir = scratch("strict");
    let store = format!("sqlite://{}", dir.join("s.db").display());
    let d = data(20, 1);
    let mut lines = d.slices[0].clone();
    lines.insert(2, r#"{"id": "x", "ts": "yesterday"}"#.to_owned());
    let file = dir.join("in.ndjson");
    std::fs::write(&file, lines.join("\n")).unwrap();
    let f = file.to_str().unwrap();
    let out = shardfold(&["ingest", "--store", &store, "--metric", "s", "--strict", f]);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(err.starts_with("error: line 3: "), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    let got = query_json(&store, "s", &[]);
    assert_eq!(got["total"]["count"].as_u64(), Some(0));
    assert_eq!(got["windows"].as_array().map(Vec::len), Some(0));
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn bad_lines_are_skipped_counted_and_reported() {
    let dir = scratch("bad");
    let store = format!("sqlite://{}", dir.join("b.db").display());
    let d = data(30, 1);
    let mut lines = d.slices[0].clone();
    lines.insert(1, "{not json".to_owned());
    lines.insert(4, r#"{"id": "y", "ts": 1, "value": "NaN"}"#.to_owned());
    lines.insert(6, String::new()); // blank: ignored
    // older than the 6 h horizon: refused as late, counted, not an error
    let late = now_ms() - 7 * 3_600_000;
    lines.push(format!(r#"{{"id": "old", "ts": {late}, "value": 1e9}}"#));
    let file = dir.join("in.ndjson");
    std::fs::write(&file, lines.join("\n")).unwrap();
    let out = shardfold(&[
        "ingest",
        "--store",
        &store,
        "--metric",
        "b",
        file.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.contains("line 2: invalid JSON"), "{err}");
    assert!(err.contains("line 5: `value` must be a number"), "{err}");
    let summary = text(&out.stdout);
    assert!(summary.contains("bad lines 2"), "{summary}");
    let good = lines.iter().filter(|l| !l.trim().is_empty()).count() - 2;
    assert!(
        summary.contains(&format!("lines {}", good + 2)),
        "{summary}"
    );
    assert!(summary.contains("late 1,"), "{summary}");
    let got = query_json(&store, "b", &[]);
    assert_eq!(got["late"].as_u64(), Some(1));
    let all: Vec<&Ev> = d.truth.iter().collect();
    check_stats(&got["total"], &all, "good lines");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn mismatched_second_ingest_fails_clearly() {
    let dir = scratch("mismatch");
    let store = format!("sqlite://{}", dir.join("m.db").display());
    let file = dir.join("in.ndjson");
    let lines = data(10, 1).slices[0].clone();
    std::fs::write(&file, lines.join("\n")).unwrap();
    let f = file.to_str().unwrap();
    let first = shardfold(&["ingest", "--store", &store, "--metric", "m", f]);
    assert!(first.status.success(), "{}", text(&first.stderr));
    // no flags: the stored parameters; `-`: standard input
    let mut child = Command::new(BIN)
        .args(["ingest", "--store", &store, "--metric", "m", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(
        &mut child.stdin.take().unwrap(),
        lines.join("\n").as_bytes(),
    )
    .unwrap();
    let again = child.wait_with_output().unwrap();
    assert!(again.status.success(), "{}", text(&again.stderr));
    assert!(
        text(&again.stdout).contains(&format!("lines {},", lines.len())),
        "{}",
        text(&again.stdout)
    );
    let other = shardfold(&[
        "ingest", "--store", &store, "--metric", "m", "--window", "30s", f,
    ]);
    assert_eq!(other.status.code(), Some(1));
    let err = text(&other.stderr);
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(
        err.starts_with("error: ") && err.contains("--window 1m") && err.contains("--window 30s"),
        "{err}"
    );
    let grouped = shardfold(&[
        "ingest",
        "--store",
        &store,
        "--metric",
        "m",
        "--group-by",
        "route",
        f,
    ]);
    assert!(text(&grouped.stderr).contains("--group-by"));
    assert!(!grouped.status.success());
    // the same value spelt otherwise is the same parameter
    let same = shardfold(&[
        "ingest", "--store", &store, "--metric", "m", "--window", "60000ms", f,
    ]);
    assert!(same.status.success(), "{}", text(&same.stderr));
    let got = query_json(&store, "m", &[]);
    assert_eq!(got["total"]["count"].as_u64(), Some(10));
    assert_eq!(
        got["duplicates"].as_u64(),
        Some(3 * lines.len() as u64 - 10)
    );
    std::fs::remove_dir_all(dir).unwrap();
}

/// Checks OpenMetrics text line by line; returns the samples `(name{labels}, value)`.
fn parse_openmetrics(t: &str) -> BTreeMap<String, f64> {
    let lines: Vec<&str> = t.lines().collect();
    assert_eq!(lines.last(), Some(&"# EOF"), "must end with # EOF");
    let mut families: BTreeMap<String, String> = BTreeMap::new();
    let mut current = String::new();
    let mut samples = BTreeMap::new();
    for l in &lines[..lines.len() - 1] {
        if let Some(rest) = l.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap();
            assert!(
                ["counter", "gauge", "summary"].contains(&kind),
                "type {kind}"
            );
            assert!(
                families.insert(name.to_owned(), kind.to_owned()).is_none(),
                "family {name} declared twice"
            );
            current = name.to_owned();
        } else if let Some(rest) = l.strip_prefix("# HELP ") {
            assert!(rest.starts_with(&format!("{current} ")), "{l}");
        } else {
            assert!(!l.starts_with('#'), "unexpected comment {l}");
            let (series, value) = l.rsplit_once(' ').unwrap();
            let name = &series[..series.find('{').unwrap_or(series.len())];
            assert!(
                name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
                "{name}"
            );
            let kind = &families[&current];
            let suffix = name
                .strip_prefix(current.as_str())
                .unwrap_or_else(|| panic!("sample {name} outside its family {current}"));
            let ok = match kind.as_str() {
                "counter" => suffix == "_total",
                "gauge" => suffix.is_empty(),
                _ => ["", "_sum", "_count"].contains(&suffix),
            };
            assert!(ok, "{name} in {kind} {current}");
            if let Some(labels) = series.strip_prefix(name)
                && !labels.is_empty()
            {
                assert!(labels.starts_with('{') && labels.ends_with('}'), "{labels}");
            }
            let v: f64 = value.parse().unwrap_or_else(|_| panic!("value {value}"));
            samples.insert(series.to_owned(), v);
        }
    }
    samples
}

#[test]
fn prometheus_output_is_openmetrics_and_table_renders() {
    let dir = scratch("prom");
    let store = format!("sqlite://{}", dir.join("p.db").display());
    let d = data(400, 2);
    let files = write_slices(&dir, &d);
    ingest_concurrently(&store, "p", &files, &["--group-by", "route"]);
    let out = shardfold(&[
        "query",
        "--store",
        &store,
        "--metric",
        "p",
        "--format",
        "prometheus",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let samples = parse_openmetrics(&text(&out.stdout));
    let (n, sum, ..) = exact(d.truth.iter());
    assert_eq!(samples[r#"shardfold_events_total{metric="p"}"#], n as f64);
    assert_eq!(samples[r#"shardfold_value_sum{metric="p"}"#], sum);
    let a = d.truth.iter().filter(|e| e.route == "/a").count();
    assert_eq!(
        samples[r#"shardfold_events_total{metric="p",key="/a"}"#],
        a as f64
    );
    assert!(samples.contains_key(r#"shardfold_value{metric="p",quantile="0.99"}"#));
    let table = shardfold(&[
        "query", "--store", &store, "--metric", "p", "--format", "table",
    ]);
    assert!(table.status.success());
    let t = text(&table.stdout);
    assert!(t.contains("window start (UTC)") && t.contains('█'), "{t}");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn inspect_good_and_damaged_values() {
    let dir = scratch("inspect");
    let store = format!("sqlite://{}", dir.join("i.db").display());
    let file = dir.join("in.ndjson");
    std::fs::write(&file, data(10, 1).slices[0].join("\n")).unwrap();
    let out = shardfold(&[
        "ingest",
        "--store",
        &store,
        "--metric",
        "i",
        file.to_str().unwrap(),
    ]);
    assert!(out.status.success());
    let meta = shardfold(&["inspect", "--store", &store, "--key", "i/meta"]);
    assert!(meta.status.success(), "{}", text(&meta.stderr));
    let m = text(&meta.stdout);
    assert!(m.contains("SeriesMeta") || m.contains("series meta"), "{m}");
    assert!(m.contains("window 1m"), "{m}");
    let cli = shardfold(&["inspect", "--store", &store, "--key", "i/cli"]);
    assert!(
        text(&cli.stdout).contains("HLL precision 14"),
        "{}",
        text(&cli.stdout)
    );
    // a value in a file: good, then truncated, then with a flipped bit, then not ours
    let mut agg = shardfold::Stats::default();
    shardfold::Insert::insert(&mut agg, 2.5).unwrap();
    let bytes = shardfold::encode(&agg);
    let good = dir.join("good.bin");
    std::fs::write(&good, &bytes).unwrap();
    let ok = shardfold(&["inspect", good.to_str().unwrap()]);
    assert!(ok.status.success());
    assert!(
        text(&ok.stdout).contains("type 0x0009 (Stats)"),
        "{}",
        text(&ok.stdout)
    );
    let mut flipped = bytes.clone();
    flipped[bytes.len() / 2] ^= 0x10;
    for (name, damaged) in [
        ("truncated", bytes[..bytes.len() - 3].to_vec()),
        ("flipped", flipped),
        ("empty", Vec::new()),
        ("garbage", b"\x00\x01hello".to_vec()),
    ] {
        let p = dir.join(name);
        std::fs::write(&p, damaged).unwrap();
        let out = shardfold(&["inspect", p.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(1), "{name}");
        let err = text(&out.stderr);
        assert!(
            err.starts_with("error: ") && err.trim_end().lines().count() == 1,
            "{name}: {err}"
        );
        assert!(!err.contains("panicked"), "{name}: {err}");
        assert!(out.stdout.is_empty(), "{name}");
    }
    let missing = shardfold(&["inspect", "--store", &store, "--key", "i/nope"]);
    assert_eq!(missing.status.code(), Some(1));
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn help_everywhere() {
    for sub in [&[][..], &["ingest"], &["query"], &["inspect"]] {
        let mut args = sub.to_vec();
        args.push("--help");
        let out = shardfold(&args);
        assert!(out.status.success(), "{args:?}");
        assert!(text(&out.stdout).contains("Usage"), "{args:?}");
    }
    let out = shardfold(&["query", "--metric", "x", "--store", "memory://"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("no metric `x`"));
}

#[test]
fn inspect_summarises_a_series_base() {
    use shardfold::store::{Clock, Series, SeriesConfig, SystemClock, connect};
    use shardfold::{Event, Stats};

    let dir = scratch("inspect-base");
    let store_url = format!("sqlite://{}", dir.join("b.db").display());
    let rt = tokio::runtime::Runtime::new().unwrap();
    let key = rt.block_on(async {
        let store = connect(&store_url).await.unwrap();
        let now = SystemClock.now_ms();
        let series: Series<Stats, f64> =
            Series::open(store.clone(), "bm", SeriesConfig::new(Stats::default()))
                .await
                .unwrap();
        let batch = [Event::new("a", now, 1.5), Event::new("b", now, 2.5)];
        series.fold(&batch).await.unwrap();
        series.fold(&batch[..1]).await.unwrap(); // a redelivery
        series
            .compact_range(now - 3_600_000, now + 60_000)
            .await
            .unwrap();
        let keys = store.list(b"bm/b/").await.unwrap();
        let base = keys.iter().find(|k| k.ends_with(b"/base")).cloned();
        String::from_utf8(base.expect("a base after compaction")).unwrap()
    });
    let out = shardfold(&["inspect", "--store", &store_url, "--key", &key]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let t = text(&out.stdout);
    assert!(
        t.contains("series base: folded 2, duplicates 1, late 0, rejected 0"),
        "{t}"
    );
    assert!(t.contains("1 windows") && t.contains("Stats"), "{t}");
    std::fs::remove_dir_all(dir).unwrap();
}
