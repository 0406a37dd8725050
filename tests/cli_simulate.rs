//! `shardfold simulate`, run as the real binary: crashing worker processes against SQLite and
//! Redis, task workers with many redeliveries, late events beyond the horizon, determinism
//! from the seed, the cleanup of the run's metric, and argument errors.
#![cfg(feature = "cli")]

use std::process::{Command, Output};

use shardfold::store::connect;

const BIN: &str = env!("CARGO_BIN_EXE_shardfold");

/// Runs `shardfold simulate ARGS`; its output (stdout and stderr echoed for a failing test).
fn simulate(args: &[&str]) -> Output {
    let out = Command::new(BIN)
        .arg("simulate")
        .args(args)
        .output()
        .expect("run shardfold");
    println!("{}", String::from_utf8_lossy(&out.stdout));
    eprintln!("{}", String::from_utf8_lossy(&out.stderr));
    out
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A row of the printed table: its stored and exact columns, and whether it is marked equal.
fn row(text: &str, name: &str) -> (String, String, bool) {
    let line = text
        .lines()
        .find(|l| l.starts_with(name))
        .unwrap_or_else(|| panic!("no row {name:?} in\n{text}"));
    let cells: Vec<&str> = line[name.len()..].split_whitespace().collect();
    let ok = line.trim_end().ends_with('✓');
    (cells[0].to_owned(), cells[1].to_owned(), ok)
}

fn number(cell: &str) -> u64 {
    cell.parse()
        .unwrap_or_else(|_| panic!("{cell:?} is not a number"))
}

/// The number just before `phrase` in the output, e.g. `12` for `" crashes of"`.
fn counted(text: &str, phrase: &str) -> u64 {
    let at = text
        .find(phrase)
        .unwrap_or_else(|| panic!("no `{phrase}` in\n{text}"));
    let before = text[..at].split_whitespace().last().expect("a number");
    number(before.trim_start_matches('('))
}

/// A run that exited 0 and said every row matched.
fn assert_matched(out: &Output) -> String {
    let text = stdout(out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(
        text.contains("OK: the stored answer equals the exact truth"),
        "{text}"
    );
    assert!(!text.contains('✗'), "{text}");
    for name in [
        "count",
        "sum",
        "min",
        "max",
        "distinct items",
        "folded",
        "duplicates",
    ] {
        assert!(row(&text, name).2, "row {name} not marked equal:\n{text}");
    }
    let (stored, exact, _) = row(&text, "count");
    assert_eq!(stored, exact);
    text
}

/// The metric name a run printed.
fn metric(text: &str) -> String {
    let at = text.find("(metric ").expect("metric name printed") + "(metric ".len();
    text[at..]
        .split(')')
        .next()
        .expect("metric name")
        .to_owned()
}

fn sqlite_url(tag: &str) -> (String, std::path::PathBuf) {
    let file = std::env::temp_dir().join(format!(
        "{}.db",
        shardfold::store::conformance::unique_prefix(tag)
    ));
    (format!("sqlite://{}", file.display()), file)
}

/// The number of keys the store holds under `prefix`.
async fn keys(url: &str, prefix: &str) -> usize {
    let store = connect(url).await.expect("connect");
    store.list(prefix.as_bytes()).await.expect("list").len()
}

/// Crashing worker processes: the run exits 0, some workers really died and were replaced,
/// and the run's metric is gone from the store afterwards.
async fn processes_crash(url: &str) {
    let out = simulate(&[
        "--store",
        url,
        "--processes",
        "--crash-rate",
        "0.1",
        "--events",
        "5000",
        "--seed",
        "42",
    ]);
    let text = assert_matched(&out);
    assert!(counted(&text, " drawn") > 0, "{text}");
    assert!(counted(&text, " crashes of") > 0, "no worker died:\n{text}");
    let restarted = counted(&text, " processes restarted");
    assert_eq!(restarted, counted(&text, " crashes of"), "{text}");
    assert_eq!(keys(url, &format!("{}/", metric(&text))).await, 0);
}

#[tokio::test]
async fn processes_crashing_sqlite() {
    let (url, file) = sqlite_url("cli-sim");
    processes_crash(&url).await;
    let _ = std::fs::remove_file(file);
}

#[tokio::test]
async fn processes_crashing_redis() {
    let url = std::env::var("SHARDFOLD_REDIS_URL").unwrap_or("redis://127.0.0.1:6379".into());
    if let Err(e) = connect(&url).await {
        if std::env::var("SHARDFOLD_REQUIRE_SERVICES").is_ok_and(|v| v == "1") {
            panic!("server required but unavailable: {e}");
        }
        eprintln!("SKIPPED: Redis unavailable ({e}); set SHARDFOLD_REQUIRE_SERVICES=1 to fail");
        return;
    }
    processes_crash(&url).await;
}

/// Task workers, half the batches delivered again, a fifth of the folds dropped mid-way:
/// duplicates are counted and refused, and `--keep` leaves the metric in the store.
#[tokio::test]
async fn tasks_with_redeliveries_sqlite() {
    let (url, file) = sqlite_url("cli-sim-dup");
    let out = simulate(&[
        "--store",
        &url,
        "--workers",
        "6",
        "--dup-rate",
        "0.5",
        "--crash-rate",
        "0.2",
        "--events",
        "4000",
        "--batch",
        "50",
        "--seed",
        "7",
        "--keep",
    ]);
    let text = assert_matched(&out);
    let (dups, range, _) = row(&text, "duplicates");
    assert!(number(&dups) > 0, "{text}");
    assert!(range.contains("..="), "{text}");
    assert!(counted(&text, " crashes of") > 0, "{text}");
    assert!(text.contains("is kept in the store"), "{text}");
    assert!(keys(&url, &format!("{}/", metric(&text))).await > 0);
    let _ = std::fs::remove_file(file);
}

/// Event times up to three horizons back: two thirds of the events are refused as late by
/// every delivery, the rest folded exactly, and the run still exits 0.
#[test]
fn late_events_beyond_the_horizon() {
    let out = simulate(&[
        "--store",
        "memory://",
        "--horizon",
        "5m",
        "--max-delay",
        "15m",
        "--crash-rate",
        "0.1",
        "--events",
        "3000",
        "--seed",
        "3",
    ]);
    let text = assert_matched(&out);
    let (late, _, ok) = row(&text, "late deliveries");
    assert!(ok, "{text}");
    assert!(number(&late) > 0, "{text}");
    let older = counted(&text, " older than");
    assert!(older > 1000, "{text}");
    let folded = number(&row(&text, "folded").0);
    assert_eq!(
        folded + older,
        3000,
        "every event folded once or late:\n{text}"
    );
}

/// The same seed generates the same stream (the exact totals agree; the event times, relative
/// to the start, differ), another seed another stream.
#[test]
fn seeded() {
    let run = |seed: &str| {
        let text = assert_matched(&simulate(&[
            "--store",
            "memory://",
            "--events",
            "1500",
            "--seed",
            seed,
        ]));
        ["count", "sum", "min", "max"].map(|r| row(&text, r).1)
    };
    let (a, b, c) = (run("11"), run("11"), run("12"));
    assert_eq!(a, b);
    assert_ne!(a[1], c[1]);
}

#[test]
fn argument_errors_exit_1() {
    for (args, says) in [
        (vec!["--store", "memory://", "--processes"], "memory://"),
        (
            vec!["--store", "memory://", "--crash-rate", "1.5"],
            "--crash-rate",
        ),
        (vec!["--store", "memory://", "--max-delay", "3w"], "unit"),
        (vec!["--store", "ftp://x"], "unknown scheme"),
    ] {
        let out = simulate(&args);
        assert_ne!(out.status.code(), Some(0), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(says), "{args:?}: {err}");
    }
}
