//! `Distinct` with the DataSketches hash profile against Apache DataSketches itself (the PyPI
//! `datasketches` package, through `tests/foreign/datasketches_hll.py`; skipped with a notice
//! when `python3 -c 'import datasketches'` fails, unless `SHARDFOLD_REQUIRE_SERVICES=1`):
//! DataSketches reads our HLL_8 images within its bounds, its own images import with
//! identical registers, and a sketch goes shardfold → DataSketches union → shardfold.
//! Without Python: the merge laws for the profile, hostile images, golden files.

use std::path::PathBuf;
use std::process::Command;

use proptest::prelude::*;
use shardfold::agg::hll::{DistinctItem, HashProfile};
use shardfold::codec::{self, Codec, Limits, tags};
use shardfold::testkit::Laws;
use shardfold::{Distinct, Error, Insert, Merge, Result};

/// A DataSketches-profile `Distinct` at precision `P`, `Default` for the law suite.
#[derive(Debug, Clone, PartialEq)]
struct DsDistinct<const P: u8>(Distinct);

impl<const P: u8> Default for DsDistinct<P> {
    fn default() -> Self {
        DsDistinct(Distinct::datasketches(P).unwrap())
    }
}

impl<const P: u8, V: DistinctItem> Insert<V> for DsDistinct<P> {
    fn check_insert(&self, v: &V) -> Result<()> {
        self.0.check_insert(v)
    }
    fn insert_unchecked(&mut self, v: V) -> Result<()> {
        self.0.insert_unchecked(v)
    }
}

impl<const P: u8> Merge for DsDistinct<P> {
    fn check_merge(&self, other: &Self) -> Result<()> {
        self.0.check_merge(&other.0)
    }
    fn merge_unchecked(&mut self, other: &Self) -> Result<()> {
        self.0.merge_unchecked(&other.0)
    }
}

impl<const P: u8> Codec for DsDistinct<P> {
    const TYPE_TAG: u16 = tags::DISTINCT;
    fn write_params(&self, out: &mut Vec<u8>) {
        self.0.write_params(out)
    }
    fn write_payload(&self, out: &mut Vec<u8>) {
        self.0.write_payload(out)
    }
    fn read_parts(params: &[u8], payload: &[u8], limits: &Limits) -> Result<Self> {
        let d = Distinct::read_parts(params, payload, limits)?;
        assert_eq!(d.profile(), HashProfile::DataSketches);
        Ok(DsDistinct(d))
    }
}

/// A DataSketches-profile sketch at `lg_k` of `items`.
fn ds_sketch<V: DistinctItem>(lg_k: u8, items: impl IntoIterator<Item = V>) -> Distinct {
    let mut d = Distinct::datasketches(lg_k).unwrap();
    for v in items {
        d.insert(v).unwrap();
    }
    d
}

/// The items `tests/foreign/datasketches_hll.py` means by `spec` (`int:A:B`, `str:A:B`),
/// inserted into a sketch at `lg_k`.
fn ds_items(lg_k: u8, spec: &str) -> Distinct {
    let parts: Vec<&str> = spec.split(':').collect();
    let (a, b): (i64, i64) = (parts[1].parse().unwrap(), parts[2].parse().unwrap());
    match parts[0] {
        "int" => ds_sketch(lg_k, a..b),
        "str" => ds_sketch(lg_k, (a..b).map(|i| format!("item-{i}"))),
        other => panic!("{other}"),
    }
}

// ----- merge laws ----------------------------------------------------------------------------

#[test]
fn laws_datasketches_profile_p4() {
    Laws::<DsDistinct<4>, i64>::new("Distinct datasketches p=4")
        .lattice()
        .check(any::<i64>());
}

#[test]
fn laws_datasketches_profile_p6_strings() {
    Laws::<DsDistinct<6>, String>::new("Distinct datasketches p=6")
        .lattice()
        .cases(96)
        .check("[a-z]{0,12}");
}

#[test]
fn laws_datasketches_profile_p12() {
    Laws::<DsDistinct<12>, u64>::new("Distinct datasketches p=12")
        .lattice()
        .cases(8)
        .max_values(3_000)
        .check(any::<u64>());
}

#[test]
fn profile_rules() {
    let mut ds = ds_sketch(12, [1i64, 2, 3]);
    let xxh3 = Distinct::new(12);
    assert!(matches!(
        ds.merge(&xxh3),
        Err(Error::IncompatibleParams { .. })
    ));
    assert!(matches!(
        ds.merge(&Distinct::datasketches(11).unwrap()),
        Err(Error::IncompatibleParams { .. })
    ));
    assert!(ds.downgrade(10).is_err());
    assert!(matches!(
        xxh3.to_datasketches(),
        Err(Error::IncompatibleParams { .. })
    ));
    // integers are the number as a 64-bit integer, whatever their Rust type
    assert_eq!(ds_sketch(12, [5u8]), ds_sketch(12, [5i64]));
    assert_eq!(
        ds_sketch(12, [3_000_000_000u32]),
        ds_sketch(12, [3_000_000_000i64])
    );
    assert_eq!(ds_sketch(12, [u64::MAX]), ds_sketch(12, [-1i64]));
    // empty strings and byte strings are ignored, as DataSketches ignores them
    assert_eq!(ds_sketch(12, [""]).count(), 0);
    assert_eq!(ds_sketch(12, [Vec::<u8>::new()]).count(), 0);
    assert!(Distinct::datasketches(19).is_err());
}

// ----- hostile images ------------------------------------------------------------------------

#[test]
fn malformed_images_are_typed_errors() {
    let dense = ds_sketch(10, 0..20_000i64).to_datasketches().unwrap();
    let invalid = |bytes: &[u8], why: &str| match Distinct::from_datasketches(bytes) {
        Err(Error::InvalidState { .. } | Error::Truncated { .. }) => {}
        other => panic!("{why}: {other:?}"),
    };
    invalid(b"", "empty");
    for cut in 0..dense.len() {
        invalid(&dense[..cut], "cut short");
    }
    let mut longer = dense.clone();
    longer.push(0);
    invalid(&longer, "trailing byte");
    for (at, byte, why) in [
        (0, 2, "HLL mode with list preamble"),
        (1, 2, "serial version 2"),
        (2, 3, "family 3"),
        (3, 3, "lg_k 3"),
        (3, 19, "lg_k 19"),
        (3, 11, "lg_k 11: wrong length"),
        (7, 0x0E, "target type 3"),
        (7, 0x03, "mode 3"),
        (36, 1, "aux entries in HLL_8"),
        (40, 64, "register 64"),
    ] {
        let mut bad = dense.clone();
        bad[at] = byte;
        invalid(&bad, why);
    }
    let mut high = dense.clone();
    high[40] = 63;
    assert_eq!(
        Distinct::from_datasketches(&high).unwrap().registers()[0],
        55,
        "a register above 65 − lg_k is read as the cap"
    );
    // coupon list: count byte, coupon values
    let list = [2u8, 1, 7, 12, 3, 8, 1, 8];
    let coupon = |c: u32| [&list[..], &c.to_le_bytes()].concat();
    assert_eq!(
        Distinct::from_datasketches(&coupon(1 << 26 | 5))
            .unwrap()
            .count(),
        1
    );
    invalid(&coupon(5), "coupon value 0");
    invalid(&list, "count 1, no coupon");
    let mut two = coupon(1 << 26 | 5);
    two[6] = 2;
    invalid(&two, "count 2, one coupon");
    // coupon set: count u32 at 8
    let mut set = vec![3u8, 1, 7, 12, 5, 8, 0, 9];
    set.extend_from_slice(&2u32.to_le_bytes());
    set.extend_from_slice(&(3u32 << 26 | 9).to_le_bytes());
    invalid(&set, "set count 2, one coupon");
    set.extend_from_slice(&(1u32 << 26 | 10).to_le_bytes());
    assert_eq!(Distinct::from_datasketches(&set).unwrap().count(), 2);
}

proptest! {
    #[test]
    fn arbitrary_images_never_panic(
        pre in prop_oneof![Just(2u8), Just(3), Just(10), any::<u8>()],
        lg_k in prop_oneof![4u8..=18, any::<u8>()],
        flags in any::<u8>(), count in any::<u8>(), mode in any::<u8>(),
        body in proptest::collection::vec(any::<u8>(), 0..600),
    ) {
        let mut bytes = vec![pre, 1, 7, lg_k, 3, flags, count, mode];
        bytes.extend_from_slice(&body);
        if let Ok(d) = Distinct::from_datasketches(&bytes) {
            let _ = d.count();
            let back = Distinct::from_datasketches(&d.to_datasketches().unwrap()).unwrap();
            prop_assert_eq!(back.registers(), d.registers());
        }
    }
}

// ----- golden files --------------------------------------------------------------------------

fn data(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

/// Compares `fresh` with the golden file `name` (written when `SHARDFOLD_BLESS` is set).
fn golden(name: &str, fresh: &[u8]) -> Vec<u8> {
    if std::env::var_os("SHARDFOLD_BLESS").is_some() {
        std::fs::write(data(name), fresh).unwrap();
    }
    let golden = std::fs::read(data(name))
        .unwrap_or_else(|e| panic!("{name}: {e} (run with SHARDFOLD_BLESS=1 once)"));
    assert_eq!(fresh, golden, "{name}: today's bytes differ");
    golden
}

#[test]
fn golden_datasketches_profile_envelopes_and_image() {
    for (name, d) in [
        (
            "distinct_datasketches_sparse.bin",
            ds_items(12, "int:0:300"),
        ),
        (
            "distinct_datasketches_dense.bin",
            ds_items(10, "str:0:5000"),
        ),
    ] {
        let g = golden(name, &codec::encode(&d));
        let back: Distinct = codec::decode(&g).unwrap();
        assert_eq!(back, d);
        assert_eq!(back.profile(), HashProfile::DataSketches);
        assert_eq!(
            g[7..12],
            [2, 0, 0, 0, d.precision()],
            "{name}: 2-byte params"
        );
        assert_eq!(g[12], 2, "{name}: profile byte");
    }
    let image = golden(
        "datasketches_hll8.bin",
        &ds_items(10, "str:0:5000").to_datasketches().unwrap(),
    );
    assert_eq!(
        Distinct::from_datasketches(&image).unwrap().registers(),
        ds_items(10, "str:0:5000").registers()
    );
}

// ----- against DataSketches (Python) ---------------------------------------------------------

/// Whether `python3` imports `datasketches` (a panic under `SHARDFOLD_REQUIRE_SERVICES=1`
/// when it does not).
fn python_or_skip() -> bool {
    let ok = Command::new("python3")
        .args(["-c", "import datasketches"])
        .output()
        .is_ok_and(|o| o.status.success());
    let required = std::env::var("SHARDFOLD_REQUIRE_SERVICES").is_ok_and(|v| v == "1");
    if !ok && required {
        panic!("python3 with the datasketches package required but unavailable");
    }
    if !ok {
        eprintln!(
            "SKIPPED: python3 cannot import datasketches (pip install datasketches); set SHARDFOLD_REQUIRE_SERVICES=1 to fail instead"
        );
    }
    ok
}

/// Runs the checker script; returns its exit success and standard output.
fn script(args: &[&str]) -> (bool, String) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/foreign/datasketches_hll.py");
    let out = Command::new("python3")
        .arg(path)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success() || out.status.code() == Some(1),
        "script failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

/// A temporary file path of this test process.
fn tmp(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("shardfold-hll-{}-{name}", std::process::id()))
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len() / 2)
        .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap())
        .collect()
}

/// DataSketches' own MurmurHash3 and coupons: a native sketch of one item is a coupon list
/// whose import equals our sketch of that item, state for state.
#[test]
fn single_items_hash_as_datasketches_hashes_them() {
    if !python_or_skip() {
        return;
    }
    for (lg_k, spec) in [
        (12u8, "int:-300:300"),
        (12, "str:0:300"),
        (4, "int:0:100"),
        (18, "str:0:100"),
    ] {
        let (_, out) = script(&["singles", &lg_k.to_string(), spec]);
        let (a, b) = {
            let p: Vec<&str> = spec.split(':').collect();
            (p[1].parse::<i64>().unwrap(), p[2].parse::<i64>().unwrap())
        };
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len() as i64, b - a);
        for (line, i) in lines.iter().zip(a..b) {
            let theirs = Distinct::from_datasketches(&hex(line)).unwrap();
            let ours = ds_items(lg_k, &format!("{}:{i}:{}", &spec[..3], i + 1));
            assert_eq!(theirs, ours, "{spec} item {i}");
        }
    }
}

/// DataSketches reads our HLL_8 images; its estimate's 3-sigma bounds hold the exact count.
#[test]
fn exported_images_are_read_by_datasketches_within_bounds() {
    if !python_or_skip() {
        return;
    }
    for (lg_k, spec, exact) in [
        (12u8, "str:0:10", 10),
        (12, "int:0:1000", 1_000),
        (14, "str:0:100000", 100_000),
        (4, "int:0:50", 50),
        (18, "int:-5000:5000", 10_000),
    ] {
        let d = ds_items(lg_k, spec);
        let file = tmp(&format!("export-{lg_k}-{exact}"));
        std::fs::write(&file, d.to_datasketches().unwrap()).unwrap();
        let (within, out) = script(&["check", file.to_str().unwrap(), &exact.to_string()]);
        eprintln!("lg_k={lg_k} n={exact}: DataSketches estimate/lower/upper = {out}");
        assert!(within, "lg_k={lg_k} {spec}: {out}");
        std::fs::remove_file(&file).unwrap();
    }
}

/// Native DataSketches images — coupon list, coupon set, HLL_8 / HLL_6 / HLL_4 arrays;
/// compact and updatable — import with our registers (and, for coupons, our very state).
#[test]
fn native_images_import_with_identical_registers() {
    if !python_or_skip() {
        return;
    }
    let mut seen = std::collections::BTreeSet::new();
    for (lg_k, spec) in [
        (12u8, "int:0:5"),
        (12, "str:0:200"),
        (12, "int:0:20000"),
        (14, "str:0:100000"),
        (4, "int:0:6"),
        (6, "str:0:300"),
        (8, "int:0:100000"),
        (18, "int:0:1000"),
    ] {
        for tgt in ["hll8", "hll6", "hll4"] {
            for updatable in [false, true] {
                let file = tmp(&format!("native-{lg_k}-{tgt}-{updatable}"));
                let path = file.to_str().unwrap().to_string();
                let k = lg_k.to_string();
                let mut args = vec!["build", &k, spec, &path, tgt];
                if updatable {
                    args.push("updatable");
                }
                script(&args);
                let image = std::fs::read(&file).unwrap();
                std::fs::remove_file(&file).unwrap();
                let (mode, aux) = (image[7] & 3, image.get(36) != Some(&0));
                seen.insert((mode, image[7] >> 2 & 3, mode == 2 && image[0] == 10 && aux));
                let theirs = Distinct::from_datasketches(&image)
                    .unwrap_or_else(|e| panic!("lg_k={lg_k} {spec} {tgt} {updatable}: {e}"));
                let ours = ds_items(lg_k, spec);
                assert_eq!(
                    theirs.registers(),
                    ours.registers(),
                    "lg_k={lg_k} {spec} {tgt}"
                );
                if mode < 2 {
                    assert_eq!(
                        theirs, ours,
                        "lg_k={lg_k} {spec}: coupons give the very state"
                    );
                }
            }
        }
    }
    let modes: std::collections::BTreeSet<u8> = seen.iter().map(|s| s.0).collect();
    assert_eq!(
        modes.len(),
        3,
        "list, set and HLL modes all covered: {seen:?}"
    );
    assert!(
        seen.iter().any(|s| s.2),
        "an HLL_4 image with aux entries: {seen:?}"
    );
}

/// shardfold → DataSketches union with a native sketch of overlapping items → shardfold:
/// the union's registers are our merge's, and it counts the union.
#[test]
fn round_trip_through_a_datasketches_union() {
    if !python_or_skip() {
        return;
    }
    for (lg_k, n) in [(12u8, 1_000i64), (14, 60_000)] {
        let ours = ds_items(lg_k, &format!("int:0:{n}"));
        let theirs_spec = format!("int:{}:{}", n / 2, n + n / 2);
        let (input, output) = (
            tmp(&format!("rt-in-{lg_k}")),
            tmp(&format!("rt-out-{lg_k}")),
        );
        std::fs::write(&input, ours.to_datasketches().unwrap()).unwrap();
        script(&[
            "union",
            &lg_k.to_string(),
            input.to_str().unwrap(),
            &theirs_spec,
            output.to_str().unwrap(),
        ]);
        let back = Distinct::from_datasketches(&std::fs::read(&output).unwrap()).unwrap();
        let mut merged = ours.clone();
        merged.merge(&ds_items(lg_k, &theirs_spec)).unwrap();
        assert_eq!(back.registers(), merged.registers(), "lg_k={lg_k}");
        let exact = (n + n / 2) as f64;
        let err = (back.estimate() - exact).abs() / exact;
        assert!(
            err < 0.05,
            "lg_k={lg_k}: {} for a union of {exact}",
            back.estimate()
        );
        let (within, out) = script(&["check", output.to_str().unwrap(), &exact.to_string()]);
        assert!(within, "DataSketches' own bounds on the union: {out}");
        std::fs::remove_file(&input).unwrap();
        std::fs::remove_file(&output).unwrap();
    }
}
