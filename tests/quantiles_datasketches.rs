//! `Quantiles` ↔ Apache DataSketches t-digest images, checked by the reference implementation
//! itself: the PyPI `datasketches` package (C++ `tdigest<double>` behind it), driven through
//! `tests/foreign/datasketches_tdigest.py`. Without `python3 -c 'import datasketches'` the
//! Python tests print a notice and pass, unless `SHARDFOLD_REQUIRE_SERVICES=1`.
//!
//! Accuracy is checked against the exact sorted data in ranks: an estimate `x` for quantile `q`
//! passes when some rank of `x` in the data (between the number of values `< x` and `≤ x`)
//! lies within `ε(q)·n` of `q·n`, ε being the documented bound
//! ([`Quantiles::rank_error_bound`]) for the digest's `n` and δ = 2k.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

use proptest::prelude::*;
use serde_json::Value;
use shardfold::testkit::SplitMix64;
use shardfold::{Error, Insert, Merge, Quantiles, decode, encode};

const QS: [f64; 5] = [0.01, 0.5, 0.9, 0.99, 0.999];
const N: usize = 100_000;
/// δ = 500 (this crate's default), DataSketches k = 250.
const DELTA: u32 = 500;
const K: u16 = 250;

// ---------- data ----------

fn log_normal(n: usize, seed: u64) -> Vec<f64> {
    let mut rng = SplitMix64::new(seed);
    (0..n)
        .map(|_| {
            let u1 = 1.0 - rng.unit();
            let u2 = rng.unit();
            ((-2.0 * u1.ln()).sqrt() * (core::f64::consts::TAU * u2).cos()).exp()
        })
        .collect()
}

fn uniform(n: usize, seed: u64) -> Vec<f64> {
    let mut rng = SplitMix64::new(seed);
    (0..n).map(|_| rng.unit() * 1000.0 - 250.0).collect()
}

fn datasets() -> [(&'static str, Vec<f64>); 2] {
    [("log-normal", log_normal(N, 7)), ("uniform", uniform(N, 8))]
}

/// `values` split at random over `shards` digests, merged in a random order.
fn sharded(values: &[f64], shards: usize, compression: u32, seed: u64) -> Quantiles {
    let mut rng = SplitMix64::new(seed);
    let mut parts = vec![Quantiles::new(compression); shards];
    for &v in values {
        parts[rng.below(shards)].insert(v).unwrap();
    }
    rng.shuffle(&mut parts);
    let mut acc = parts.pop().unwrap();
    for p in &parts {
        acc.merge(p).unwrap();
    }
    acc
}

fn sorted(values: &[f64]) -> Vec<f64> {
    let mut s = values.to_vec();
    s.sort_by(f64::total_cmp);
    s
}

/// `Ok` when `x` has a rank in `sorted` within `eps·n` of `q·n`; prints the rank error as a
/// fraction of the bound.
fn within_rank(sorted: &[f64], q: f64, x: f64, eps: f64) -> Result<(), String> {
    let n = sorted.len() as f64;
    let below = sorted.partition_point(|&v| v < x) as f64;
    let at_most = sorted.partition_point(|&v| v <= x) as f64;
    let (lo, hi) = ((q - eps) * n, (q + eps) * n);
    if at_most < lo || below > hi {
        return Err(format!(
            "q={q}: {x} has ranks [{below}, {at_most}], outside [{lo:.1}, {hi:.1}] (ε = {eps:.5})"
        ));
    }
    let off = (q * n - at_most).max(below - q * n).max(0.0);
    eprintln!(
        "  q={q}: rank error {off} = {:.3} of the bound",
        off / (eps * n)
    );
    Ok(())
}

/// The mid-rank of `x` in `sorted`: between the number of values `< x` and `≤ x`.
fn rank(sorted: &[f64], x: f64) -> f64 {
    let below = sorted.partition_point(|&v| v < x) as f64;
    let at_most = sorted.partition_point(|&v| v <= x) as f64;
    (below + at_most) / 2.0
}

/// The bound ε(q) for `n` values at compression δ (it depends on nothing else).
fn bound(n: usize, compression: u32, q: f64) -> f64 {
    let mut d = Quantiles::new(compression);
    // rank_error_bound reads only count and compression: a digest of n equal values has them
    let probe: Vec<f64> = vec![1.0; n];
    for v in probe {
        d.insert(v).unwrap();
    }
    d.rank_error_bound(q)
}

// ---------- the Python side ----------

fn require_services() -> bool {
    std::env::var("SHARDFOLD_REQUIRE_SERVICES").is_ok_and(|v| v == "1")
}

/// The checker, or `None` (after a notice) when Python or `datasketches` is missing.
fn python() -> Option<Py> {
    let ok = Command::new("python3")
        .args(["-c", "import datasketches"])
        .output()
        .is_ok_and(|o| o.status.success());
    if ok {
        return Some(Py::new());
    }
    assert!(
        !require_services(),
        "python3 with the datasketches package is required (SHARDFOLD_REQUIRE_SERVICES=1)"
    );
    eprintln!(
        "SKIPPED: `python3 -c 'import datasketches'` fails (pip install datasketches); \
         set SHARDFOLD_REQUIRE_SERVICES=1 to fail instead"
    );
    None
}

/// A scratch directory for one test and the script's path.
struct Py {
    dir: PathBuf,
}

impl Py {
    fn new() -> Py {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "shardfold-datasketches-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        Py { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    fn write_values(&self, name: &str, values: &[f64]) -> PathBuf {
        let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        let p = self.path(name);
        std::fs::write(&p, bytes).unwrap();
        p
    }

    fn write(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let p = self.path(name);
        std::fs::write(&p, bytes).unwrap();
        p
    }

    fn run(&self, args: &[&Path]) -> Report {
        let script: PathBuf = [env!("CARGO_MANIFEST_DIR"), "tests", "foreign"]
            .iter()
            .collect::<PathBuf>()
            .join("datasketches_tdigest.py");
        let out = Command::new("python3")
            .arg(script)
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "checker failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Report(serde_json::from_slice(&out.stdout).unwrap())
    }

    /// Python deserializes `image`; returns its report and its re-serialized image.
    fn read(&self, image: &[u8]) -> (Report, Vec<u8>) {
        let input = self.write("in.bin", image);
        let out = self.path("out.bin");
        let r = self.run(&[Path::new("read"), &input, &out]);
        (r, std::fs::read(out).unwrap())
    }

    /// Python builds a native sketch of `values` (`kind`: double or float).
    fn build(&self, values: &[f64], k: u16, kind: &str) -> (Report, Vec<u8>) {
        let data = self.write_values("values.bin", values);
        let out = self.path("native.bin");
        let k = k.to_string();
        let r = self.run(&[
            Path::new("build"),
            &data,
            Path::new(&k),
            Path::new(kind),
            &out,
        ]);
        (r, std::fs::read(out).unwrap())
    }

    /// Python builds a native sketch of `values` and merges `image` into it.
    fn merge(&self, values: &[f64], k: u16, image: &[u8]) -> Report {
        let data = self.write_values("values.bin", values);
        let input = self.write("in.bin", image);
        let k = k.to_string();
        self.run(&[Path::new("merge"), &data, Path::new(&k), &input])
    }
}

impl Drop for Py {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// What the checker printed.
struct Report(Value);

impl Report {
    /// An f64 the checker sent as its IEEE bits.
    fn f64(&self, key: &str) -> f64 {
        f64::from_bits(self.0[key].as_u64().unwrap())
    }
    fn u64(&self, key: &str) -> u64 {
        self.0[key].as_u64().unwrap()
    }
    /// DataSketches' estimate at rank `q` (one of the checker's ranks).
    fn quantile(&self, q: f64) -> f64 {
        let list = self.0["quantiles"].as_array().unwrap();
        let pair = list
            .iter()
            .find(|p| p[0].as_u64() == Some(q.to_bits()))
            .unwrap_or_else(|| panic!("no quantile {q} in the report"));
        f64::from_bits(pair[1].as_u64().unwrap())
    }
    /// `(mean, weight)` as `to_string(True)` printed them (6 significant digits).
    fn centroids(&self) -> Vec<(f64, u64)> {
        self.0["centroids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| (c[0].as_f64().unwrap(), c[1].as_u64().unwrap()))
            .collect()
    }
}

/// Our centroids agree with DataSketches' printed ones: weights exactly, means to the 6
/// significant digits printed.
fn assert_printed_centroids(ours: &Quantiles, printed: &[(f64, u64)]) {
    let ours = ours.centroids();
    assert_eq!(ours.len(), printed.len(), "number of centroids");
    for (i, (c, &(mean, weight))) in ours.iter().zip(printed).enumerate() {
        assert_eq!(c.weight, weight, "centroid {i} weight");
        let tol = 5e-6 * c.mean.abs() + 1e-300;
        assert!(
            (c.mean - mean).abs() <= tol,
            "centroid {i}: mean {} printed as {mean}",
            c.mean
        );
    }
}

/// The image with the reverse-merge flag cleared (DataSketches' internal alternation state,
/// which the importer ignores and the exporter writes as 0).
fn without_reverse_flag(image: &[u8]) -> Vec<u8> {
    let mut v = image.to_vec();
    if v.len() > 5 {
        v[5] &= !4;
    }
    v
}

// ---------- shardfold → DataSketches ----------

#[test]
fn datasketches_reads_shardfold_images() {
    let Some(py) = python() else { return };
    for (name, values) in datasets() {
        let exact = sorted(&values);
        let digest = sharded(&values, 16, DELTA, 11);
        let image = digest.to_datasketches().unwrap();
        let (report, reserialized) = py.read(&image);

        assert_eq!(report.u64("k"), u64::from(K));
        assert_eq!(report.u64("total_weight"), N as u64, "{name}");
        assert_eq!(report.f64("min").to_bits(), exact[0].to_bits(), "{name}");
        assert_eq!(
            report.f64("max").to_bits(),
            exact[N - 1].to_bits(),
            "{name}"
        );
        assert_printed_centroids(&digest, &report.centroids());
        for q in QS {
            let eps = digest.rank_error_bound(q);
            let theirs = report.quantile(q);
            let ours = digest.quantile(q).unwrap().unwrap();
            within_rank(&exact, q, theirs, eps)
                .map_err(|e| format!("{name} python: {e}"))
                .unwrap();
            within_rank(&exact, q, ours, eps)
                .map_err(|e| format!("{name} ours: {e}"))
                .unwrap();
            // The same centroids, two interpolations: DataSketches 5.2 weights each of the two
            // bracketing centroids by its own distance instead of the other's (fixed upstream
            // in apache/datasketches-java#755), so its estimate can sit anywhere between them.
            // Stated tolerance: the two estimates' ranks in the data differ by at most ε(q)·n.
            let (r_theirs, r_ours) = (rank(&exact, theirs), rank(&exact, ours));
            eprintln!(
                "{name} q={q}: python {theirs} ours {ours}: ranks differ by {:.1} (ε·n = {:.1})",
                (r_theirs - r_ours).abs(),
                eps * N as f64
            );
            assert!((r_theirs - r_ours).abs() <= eps * N as f64, "{name} q={q}");
        }

        // shardfold → Python → shardfold: the same image, the same centroids bit for bit
        assert_eq!(
            reserialized, image,
            "{name}: Python re-serialized other bytes"
        );
        let back = Quantiles::from_datasketches(&reserialized).unwrap();
        assert_eq!(back.centroids(), digest.centroids());
        assert_eq!(
            (back.count(), back.min(), back.max()),
            (digest.count(), digest.min(), digest.max())
        );
        assert_eq!(back.compression(), DELTA);
    }
}

#[test]
fn empty_and_single_value_images_cross_both_ways() {
    let Some(py) = python() else { return };
    let empty = Quantiles::new(DELTA);
    let (report, again) = py.read(&empty.to_datasketches().unwrap());
    assert_eq!(report.0["empty"], Value::Bool(true));
    assert_eq!(report.u64("k"), u64::from(K));
    let back = Quantiles::from_datasketches(&again).unwrap();
    assert!(back.is_empty());
    assert_eq!(back.compression(), DELTA);

    for v in [3.5, -1e-310, f64::MAX] {
        let mut one = Quantiles::new(DELTA);
        one.insert(v).unwrap();
        let (report, again) = py.read(&one.to_datasketches().unwrap());
        assert_eq!(report.u64("total_weight"), 1);
        assert_eq!(report.f64("min").to_bits(), v.to_bits());
        assert_eq!(report.quantile(0.5).to_bits(), v.to_bits());
        let back = Quantiles::from_datasketches(&again).unwrap();
        assert_eq!((back.count(), back.quantile(0.3).unwrap()), (1, Some(v)));
        // and the natively built single-value sketch
        let (_, native) = py.build(&[v], K, "double");
        assert_eq!(native.len(), 16);
        assert_eq!(
            without_reverse_flag(&native),
            one.to_datasketches().unwrap()
        );
    }
}

// ---------- DataSketches → shardfold ----------

#[test]
fn shardfold_reads_native_datasketches_images() {
    let Some(py) = python() else { return };
    for (name, values) in datasets() {
        let exact = sorted(&values);
        let (report, native) = py.build(&values, K, "double");
        let digest = Quantiles::from_datasketches(&native).unwrap();
        assert_eq!(digest.compression(), DELTA);
        assert_eq!(digest.count(), report.u64("total_weight"));
        assert_eq!(digest.count(), N as u64);
        assert_eq!(digest.min(), Some(exact[0]));
        assert_eq!(digest.max(), Some(exact[N - 1]));
        // the centroids are DataSketches' own: as printed, and as serialized (bit for bit)
        assert_printed_centroids(&digest, &report.centroids());
        assert_eq!(
            digest.to_datasketches().unwrap(),
            without_reverse_flag(&native)
        );
        // the sum is Σ mean·weight: the data's sum up to the rounding of the means
        let true_sum: f64 = {
            let mut s = shardfold::SumF64::default();
            values.iter().for_each(|&v| s.insert(v).unwrap());
            s.value()
        };
        assert!(
            (digest.sum() - true_sum).abs() <= 1e-9 * true_sum.abs(),
            "{name} sum"
        );
        for q in QS {
            let eps = digest.rank_error_bound(q);
            let ours = digest.quantile(q).unwrap().unwrap();
            let theirs = report.quantile(q);
            within_rank(&exact, q, ours, eps)
                .map_err(|e| format!("{name} ours: {e}"))
                .unwrap();
            within_rank(&exact, q, theirs, eps)
                .map_err(|e| format!("{name} python: {e}"))
                .unwrap();
        }
        // an imported digest merges with digests built here
        let mut merged = digest.clone();
        merged.merge(&sharded(&values, 10, DELTA, 3)).unwrap();
        assert_eq!(merged.count(), 2 * N as u64);
        let exact2 = sorted(&[values.clone(), values.clone()].concat());
        for q in QS {
            let x = merged.quantile(q).unwrap().unwrap();
            within_rank(&exact2, q, x, merged.rank_error_bound(q)).unwrap();
        }
    }
}

#[test]
fn shardfold_reads_tdigest_float_images() {
    let Some(py) = python() else { return };
    let values = log_normal(20_000, 5);
    let (report, native) = py.build(&values, 100, "float");
    let digest = Quantiles::from_datasketches(&native).unwrap();
    assert_eq!(digest.compression(), 200);
    assert_eq!(digest.count(), 20_000);
    assert_eq!(digest.min(), Some(report.f64("min")));
    assert_eq!(digest.max(), Some(report.f64("max")));
    assert_printed_centroids(&digest, &report.centroids());
    for c in digest.centroids().iter() {
        assert_eq!(
            f64::from(c.mean as f32),
            c.mean,
            "an f32 mean, widened exactly"
        );
    }
    let exact = sorted(
        &values
            .iter()
            .map(|&v| f64::from(v as f32))
            .collect::<Vec<_>>(),
    );
    for q in QS {
        let x = digest.quantile(q).unwrap().unwrap();
        within_rank(&exact, q, x, digest.rank_error_bound(q)).unwrap();
    }
}

// ---------- merged in DataSketches ----------

#[test]
fn datasketches_merges_a_shardfold_half() {
    let Some(py) = python() else { return };
    for (name, values) in datasets() {
        let exact = sorted(&values);
        let (native_half, our_half) = values.split_at(N / 2);
        let ours = sharded(our_half, 10, DELTA, 21);
        let report = py.merge(native_half, K, &ours.to_datasketches().unwrap());
        assert_eq!(report.u64("total_weight"), N as u64, "{name}");
        assert_eq!(report.f64("min"), exact[0]);
        assert_eq!(report.f64("max"), exact[N - 1]);
        for q in QS {
            let x = report.quantile(q);
            within_rank(&exact, q, x, bound(N, DELTA, q))
                .map_err(|e| format!("{name} merged in python: {e}"))
                .unwrap();
        }
    }
}

// ---------- the importer on bad input ----------

fn golden_digest() -> Quantiles {
    sharded(&log_normal(5_000, 3), 4, 100, 9)
}

fn golden_image() -> Vec<u8> {
    let path: PathBuf = [
        env!("CARGO_MANIFEST_DIR"),
        "tests",
        "data",
        "quantiles_datasketches.bin",
    ]
    .iter()
    .collect();
    let built = golden_digest().to_datasketches().unwrap();
    if !path.exists() && std::env::var_os("SHARDFOLD_BLESS").is_some() {
        std::fs::write(&path, &built).unwrap();
    }
    let stored = std::fs::read(&path).unwrap();
    assert_eq!(built, stored, "the exporter's bytes changed");
    stored
}

#[test]
fn golden_image_is_pinned() {
    let stored = golden_image();
    assert_eq!(&stored[..8], &[2, 1, 20, 50, 0, 0, 0, 0]);
    let q = Quantiles::from_datasketches(&stored).unwrap();
    assert_eq!((q.compression(), q.count()), (100, 5_000));
    assert_eq!(q.to_datasketches().unwrap(), stored);
    assert_eq!(q.centroids(), golden_digest().centroids());
    // and through this crate's own codec
    let again: Quantiles = decode(&encode(&q)).unwrap();
    assert_eq!(again.to_datasketches().unwrap(), stored);
    if let Some(py) = python() {
        let (report, reserialized) = py.read(&stored);
        assert_eq!(report.u64("total_weight"), 5_000);
        assert_eq!(reserialized, stored);
    }
}

#[test]
fn every_truncation_is_an_error() {
    let image = golden_image();
    for len in 0..image.len() {
        assert!(
            Quantiles::from_datasketches(&image[..len]).is_err(),
            "prefix of {len} bytes accepted"
        );
    }
    let mut one = Quantiles::new(100);
    one.insert(2.5).unwrap();
    let single = one.to_datasketches().unwrap();
    for len in 0..single.len() {
        if len == 12 {
            continue; // 8 + 4 bytes is a tdigest_float single value
        }
        assert!(
            Quantiles::from_datasketches(&single[..len]).is_err(),
            "{len}"
        );
    }
    let empty = Quantiles::new(100).to_datasketches().unwrap();
    for len in 0..empty.len() {
        assert!(
            Quantiles::from_datasketches(&empty[..len]).is_err(),
            "{len}"
        );
    }
}

fn set(image: &mut [u8], at: usize, bytes: &[u8]) {
    image[at..at + bytes.len()].copy_from_slice(bytes);
}

/// Offset of centroid `i` in a double image.
fn centroid(i: usize) -> usize {
    32 + 16 * i
}

#[test]
fn each_broken_field_is_a_typed_error() {
    let image = golden_image();
    let n = u32::from_le_bytes(image[8..12].try_into().unwrap()) as usize;
    let nan = f64::NAN.to_le_bytes();
    let inf = f64::INFINITY.to_le_bytes();
    type Tamper = Box<dyn Fn(&mut Vec<u8>)>;
    let cases: Vec<(&str, Tamper)> = vec![
        ("preamble longs 1", Box::new(|b| b[0] = 1)),
        ("preamble longs 3", Box::new(|b| b[0] = 3)),
        ("serial version 2", Box::new(|b| b[1] = 2)),
        ("sketch type 7 (HLL)", Box::new(|b| b[2] = 7)),
        ("k = 9", Box::new(|b| set(b, 3, &9u16.to_le_bytes()))),
        ("k = 5001", Box::new(|b| set(b, 3, &5001u16.to_le_bytes()))),
        (
            "k = 65535",
            Box::new(|b| set(b, 3, &u16::MAX.to_le_bytes())),
        ),
        ("unknown flag", Box::new(|b| b[5] = 8)),
        ("empty and single", Box::new(|b| b[5] = 3)),
        ("empty flag with centroids", Box::new(|b| b[5] = 1)),
        ("unused bytes", Box::new(|b| b[6] = 1)),
        ("reference format", Box::new(|b| set(b, 0, &[0, 0, 0, 1]))),
        ("NaN min", Box::new(move |b| set(b, 16, &nan))),
        ("infinite max", Box::new(move |b| set(b, 24, &inf))),
        (
            "min above max",
            Box::new(|b| set(b, 16, &1e300f64.to_le_bytes())),
        ),
        ("NaN mean", Box::new(move |b| set(b, centroid(3), &nan))),
        (
            "infinite mean",
            Box::new(move |b| set(b, centroid(3), &inf)),
        ),
        (
            "mean below min",
            Box::new(|b| set(b, centroid(0), &(-1.0f64).to_le_bytes())),
        ),
        (
            "zero weight",
            Box::new(|b| set(b, centroid(2) + 8, &0u64.to_le_bytes())),
        ),
        (
            "weights overflow",
            Box::new(|b| {
                set(b, centroid(1) + 8, &(u64::MAX / 2).to_le_bytes());
                set(b, centroid(2) + 8, &(u64::MAX / 2).to_le_bytes());
            }),
        ),
        (
            "unsorted",
            Box::new(|b| {
                let (a, c) = (
                    b[centroid(4)..centroid(5)].to_vec(),
                    b[centroid(5)..centroid(6)].to_vec(),
                );
                set(b, centroid(4), &c);
                set(b, centroid(5), &a);
            }),
        ),
        ("trailing byte", Box::new(|b| b.push(0))),
        (
            "one centroid more announced",
            Box::new(move |b| set(b, 8, &(n as u32 + 1).to_le_bytes())),
        ),
        (
            "u32::MAX centroids announced",
            Box::new(|b| set(b, 8, &u32::MAX.to_le_bytes())),
        ),
        (
            "buffered values announced",
            Box::new(|b| set(b, 12, &3u32.to_le_bytes())),
        ),
        ("no centroids", Box::new(|b| set(b, 8, &0u32.to_le_bytes()))),
    ];
    for (name, tamper) in cases {
        let mut bad = image.clone();
        tamper(&mut bad);
        match Quantiles::from_datasketches(&bad) {
            Err(Error::InvalidState { .. } | Error::Truncated { .. }) => {}
            other => panic!("{name}: {other:?}"),
        }
    }
}

#[test]
fn buffered_values_are_read_as_values() {
    // the layout C++ writes with `serialize(0, true)`: centroids (2.0, 3) and (9.0, 1),
    // then the raw values 4.0, 1.0, 5.0
    let mut b = vec![2, 1, 20, 10, 0, 0, 0, 0];
    b.extend_from_slice(&2u32.to_le_bytes());
    b.extend_from_slice(&3u32.to_le_bytes());
    b.extend_from_slice(&1.0f64.to_le_bytes());
    b.extend_from_slice(&9.0f64.to_le_bytes());
    for (m, w) in [(2.0f64, 3u64), (9.0, 1)] {
        b.extend_from_slice(&m.to_le_bytes());
        b.extend_from_slice(&w.to_le_bytes());
    }
    for x in [4.0f64, 1.0, 5.0] {
        b.extend_from_slice(&x.to_le_bytes());
    }
    let q = Quantiles::from_datasketches(&b).unwrap();
    assert_eq!((q.count(), q.min(), q.max()), (7, Some(1.0), Some(9.0)));
    assert_eq!(q.sum(), 2.0 * 3.0 + 9.0 + 4.0 + 1.0 + 5.0);
    // a buffered value outside [min, max] is refused
    let at = b.len() - 8;
    set(&mut b, at, &10.0f64.to_le_bytes());
    assert!(matches!(
        Quantiles::from_datasketches(&b),
        Err(Error::InvalidState { .. })
    ));
}

#[test]
fn more_centroids_than_the_bound_are_compressed_once() {
    // 100 singletons at k = 10: more than this crate keeps for n = 100, δ = 20
    let mut b = vec![2, 1, 20, 10, 0, 0, 0, 0];
    b.extend_from_slice(&100u32.to_le_bytes());
    b.extend_from_slice(&0u32.to_le_bytes());
    b.extend_from_slice(&0.0f64.to_le_bytes());
    b.extend_from_slice(&99.0f64.to_le_bytes());
    for i in 0..100 {
        b.extend_from_slice(&f64::from(i).to_le_bytes());
        b.extend_from_slice(&1u64.to_le_bytes());
    }
    let q = Quantiles::from_datasketches(&b).unwrap();
    assert!(q.centroids().len() < 100);
    assert_eq!(
        (q.count(), q.min(), q.max(), q.sum()),
        (100, Some(0.0), Some(99.0), 4950.0)
    );
    let exact: Vec<f64> = (0..100).map(f64::from).collect();
    for q_ in QS {
        let x = q.quantile(q_).unwrap().unwrap();
        within_rank(&exact, q_, x, q.rank_error_bound(q_)).unwrap();
    }
    exercise(&q);
}

#[test]
fn exporting_refuses_compressions_without_a_k() {
    for delta in [10, 15, 19, 501, 9_999] {
        let mut q = Quantiles::new(delta);
        q.insert(1.0).unwrap();
        assert!(
            matches!(
                q.to_datasketches(),
                Err(Error::InvalidParameter {
                    name: "compression",
                    ..
                })
            ),
            "δ = {delta}"
        );
    }
    assert!(Quantiles::new(20).to_datasketches().is_ok());
    assert!(Quantiles::new(10_000).to_datasketches().is_ok());
}

/// A digest the importer accepted behaves: queries answer, it merges, it encodes and decodes,
/// and it exports again.
fn exercise(q: &Quantiles) {
    let _ = (
        q.quantile(0.5).unwrap(),
        q.cdf(1.0).unwrap(),
        q.rank_error_bound(0.9),
    );
    let mut m = q.clone();
    m.merge(&Quantiles::new(q.compression())).unwrap();
    let again: Quantiles = decode(&encode(q)).unwrap();
    assert_eq!(encode(&again), encode(q));
    let image = q.to_datasketches().unwrap();
    let back = Quantiles::from_datasketches(&image).unwrap();
    assert_eq!(back.to_datasketches().unwrap(), image);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    #[test]
    fn flipped_bytes_give_an_error_or_a_valid_digest(
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
        cut in proptest::option::of(any::<prop::sample::Index>()),
    ) {
        let mut bad = golden_image();
        for (at, byte) in flips {
            let i = at.index(bad.len());
            bad[i] = byte;
        }
        if let Some(c) = cut {
            bad.truncate(c.index(bad.len()));
        }
        if let Ok(q) = Quantiles::from_datasketches(&bad) {
            exercise(&q);
        }
    }

    #[test]
    fn random_bytes_give_an_error_or_a_valid_digest(
        bytes in proptest::collection::vec(any::<u8>(), 0..200),
        header in 0usize..4,
    ) {
        let mut b = bytes;
        // often a plausible header, so the body is reached
        let prefix: &[u8] = match header {
            0 => &[2, 1, 20, 10, 0, 0, 0, 0],
            1 => &[1, 1, 20, 10, 0, 2, 0, 0],
            2 => &[2, 1, 20, 10, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0],
            _ => &[],
        };
        b.splice(0..0, prefix.iter().copied());
        if let Ok(q) = Quantiles::from_datasketches(&b) {
            exercise(&q);
        }
    }
}
