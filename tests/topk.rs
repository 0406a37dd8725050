//! `TopK` (mergeable Misra–Gries): the law suite with the `n/(k+1)` bound checked against exact
//! counts, accuracy on Zipf streams, the golden file, hostile bytes, refused merges.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::path::PathBuf;

use proptest::prelude::*;
use shardfold::codec::{self, Codec, Limits, encode_raw, tags, write_section_with};
use shardfold::testkit::{Laws, SplitMix64};
use shardfold::{Error, Insert, Merge, Result, TopK};

// ----- the bound, checked against exact counts -----

/// `t` is within its documented bound of the exact counts: totals equal, every estimate in
/// `[c − error_bound, c]`, `error_bound ≤ n/(k+1)`, no counter for an item never inserted.
fn within_exact<T: Ord + Clone + Debug>(
    t: &TopK<T>,
    exact: &BTreeMap<T, u64>,
) -> Result<(), String> {
    let n: u64 = exact.values().sum();
    let (eb, k1) = (t.error_bound(), u64::from(t.k()) + 1);
    if t.len() > t.k() as usize {
        return Err(format!("{} counters for k = {}", t.len(), t.k()));
    }
    if t.total() != n || eb > n / k1 {
        return Err(format!(
            "total {} vs {n}, bound {eb} vs n/(k+1) = {}",
            t.total(),
            n / k1
        ));
    }
    for (item, &c) in exact {
        let est = t.estimate(item);
        if est > c || c > est + eb || c > t.upper_bound(item) {
            return Err(format!("{item:?}: true {c}, estimate {est}, bound {eb}"));
        }
        if c > n / k1 && est == 0 {
            return Err(format!("heavy hitter {item:?} ({c} > n/(k+1)) missing"));
        }
    }
    match t.iter().find(|(item, _)| !exact.contains_key(item)) {
        Some(stray) => Err(format!("counter for an item never inserted: {stray:?}")),
        None => Ok(()),
    }
}

/// Two sketches of the same stream agree within the larger of their bounds.
fn within_each_other<T: Ord + Clone + Debug>(a: &TopK<T>, b: &TopK<T>) -> Result<(), String> {
    let k1 = u64::from(a.k()) + 1;
    if a.total() != b.total() || a.k() != b.k() {
        return Err(format!("totals or k differ: {a:?} vs {b:?}"));
    }
    let eb = a.error_bound().max(b.error_bound());
    if eb > a.total() / k1 {
        return Err(format!("bound {eb} above n/(k+1)"));
    }
    for (item, _) in a.iter().chain(b.iter()) {
        if a.estimate(item).abs_diff(b.estimate(item)) > eb {
            return Err(format!(
                "{item:?}: {} vs {}, bound {eb}",
                a.estimate(item),
                b.estimate(item)
            ));
        }
    }
    Ok(())
}

/// A `TopK<u16>` of `K` counters carried with the exact counts of what it saw, so that the law
/// suite's tolerance can check the bound against the truth for every merge tree it builds.
#[derive(Debug, Clone, PartialEq)]
struct Checked<const K: u32> {
    sketch: TopK<u16>,
    exact: BTreeMap<u16, u64>,
}

impl<const K: u32> Default for Checked<K> {
    fn default() -> Self {
        Checked {
            sketch: TopK::new(K),
            exact: BTreeMap::new(),
        }
    }
}

impl<const K: u32> Insert<(u16, u64)> for Checked<K> {
    fn check_insert(&self, v: &(u16, u64)) -> Result<()> {
        self.sketch.check_insert(v)
    }
    fn insert_unchecked(&mut self, v: (u16, u64)) -> Result<()> {
        self.sketch.insert_unchecked(v)?;
        *self.exact.entry(v.0).or_default() += v.1;
        Ok(())
    }
}

impl<const K: u32> Merge for Checked<K> {
    fn check_merge(&self, other: &Self) -> Result<()> {
        self.sketch.check_merge(&other.sketch)
    }
    fn merge_unchecked(&mut self, other: &Self) -> Result<()> {
        self.sketch.merge_unchecked(&other.sketch)?;
        for (&item, &c) in &other.exact {
            *self.exact.entry(item).or_default() += c;
        }
        Ok(())
    }
}

impl<const K: u32> Codec for Checked<K> {
    const TYPE_TAG: u16 = 0x8013;
    fn write_params(&self, out: &mut Vec<u8>) {
        self.sketch.write_params(out)
    }
    fn write_payload(&self, out: &mut Vec<u8>) {
        write_section_with(out, |o| self.sketch.write_payload(o));
        codec::write_postcard(&self.exact, out);
    }
    fn read_parts(params: &[u8], payload: &[u8], limits: &Limits) -> Result<Self> {
        let mut r = codec::Reader::new(payload);
        let sketch = TopK::read_parts(params, r.section("sketch")?, limits)?;
        let exact = codec::read_postcard(r.take(r.remaining(), "exact")?, "exact")?;
        Ok(Checked { sketch, exact })
    }
}

fn against_exact<const K: u32>(expected: &Checked<K>, actual: &Checked<K>) -> Result<(), String> {
    if expected.exact != actual.exact {
        return Err("exact counts differ".into());
    }
    within_exact(&expected.sketch, &expected.exact)?;
    within_exact(&actual.sketch, &actual.exact)
}

/// Skewed items: a few heavy ones, a mid range, a long tail; weights mostly 1, some 0 and large.
fn weighted_items() -> impl Strategy<Value = (u16, u64)> {
    let item = prop_oneof![4 => 0u16..4, 3 => 0u16..40, 2 => any::<u16>()];
    let weight = prop_oneof![8 => Just(1u64), 1 => Just(0u64), 2 => 1u64..50];
    (item, weight)
}

#[test]
fn laws_small_k_bound_against_exact_counts() {
    Laws::<Checked<1>, (u16, u64)>::new("TopK k=1")
        .approx(against_exact)
        .check(weighted_items());
    Laws::<Checked<3>, (u16, u64)>::new("TopK k=3")
        .max_values(400)
        .approx(against_exact)
        .check(weighted_items());
    Laws::<Checked<8>, (u16, u64)>::new("TopK k=8")
        .max_values(600)
        .approx(against_exact)
        .check(weighted_items());
}

#[test]
fn laws_strings_default_k() {
    Laws::<TopK<String>, String>::new("TopK<String>")
        .max_values(400)
        .approx(within_each_other)
        .check(prop_oneof![3 => "[a-d]", 2 => "[a-z]{2}", 1 => ".{0,3}"]);
}

#[test]
fn laws_u64_weighted_default_k() {
    Laws::<TopK<u64>, (u64, u64)>::new("TopK<u64> weighted")
        .max_values(400)
        .approx(within_each_other)
        .check((prop_oneof![0u64..8, 0u64..500, any::<u64>()], 0u64..1000));
}

// ----- Zipf streams -----

/// Ranks `0..universe` drawn with probability ∝ 1/(rank+1)^s, by inverting the CDF.
struct Zipf(Vec<f64>);

impl Zipf {
    fn new(s: f64, universe: usize) -> Self {
        let mut acc = 0.0;
        let mut cdf: Vec<f64> = (1..=universe)
            .map(|r| {
                acc += (r as f64).powf(-s);
                acc
            })
            .collect();
        cdf.iter_mut().for_each(|c| *c /= acc);
        Zipf(cdf)
    }

    fn stream(&self, n: usize, seed: u64) -> Vec<u64> {
        let mut rng = SplitMix64::new(seed);
        let last = self.0.len() - 1;
        (0..n)
            .map(|_| {
                let u = rng.unit();
                self.0.partition_point(|&c| c < u).min(last) as u64
            })
            .collect()
    }
}

fn exact_counts(values: &[u64]) -> BTreeMap<u64, u64> {
    let mut m = BTreeMap::new();
    values.iter().for_each(|&v| *m.entry(v).or_default() += 1);
    m
}

fn fold(k: u32, values: &[u64]) -> TopK<u64> {
    let mut t = TopK::new(k);
    values.iter().for_each(|&v| t.insert(v).unwrap());
    t
}

/// Folds `values` into `parts` parts dealt at random, merged in a random order and tree.
fn fold_merged(k: u32, values: &[u64], parts: usize, rng: &mut SplitMix64) -> TopK<u64> {
    let mut sketches = vec![TopK::new(k); parts];
    for &v in values {
        sketches[rng.below(parts)].insert(v).unwrap();
    }
    rng.shuffle(&mut sketches);
    while sketches.len() > 1 {
        let i = rng.below(sketches.len() - 1);
        let right = sketches.remove(i + 1);
        sketches[i].merge(&right).unwrap();
    }
    sketches.pop().unwrap()
}

/// The largest undercount over all items.
fn max_error(t: &TopK<u64>, exact: &BTreeMap<u64, u64>) -> u64 {
    exact
        .iter()
        .map(|(v, &c)| c - t.estimate(v))
        .max()
        .unwrap_or(0)
}

#[test]
fn zipf_accuracy_single_stream_and_merged() {
    let mut rng = SplitMix64::new(9);
    for s in [1.1, 1.5] {
        let values = Zipf::new(s, 100_000).stream(1_000_000, s.to_bits());
        let exact = exact_counts(&values);
        let n = values.len() as u64;
        for k in [16, 64, 256] {
            let heavy = exact
                .values()
                .filter(|&&c| c > n / (u64::from(k) + 1))
                .count();
            assert!(heavy > 0, "s={s} k={k}: no heavy hitter to find");
            for (how, t) in [
                ("single stream", fold(k, &values)),
                ("64 parts merged", fold_merged(k, &values, 64, &mut rng)),
            ] {
                within_exact(&t, &exact).unwrap_or_else(|e| panic!("s={s} k={k} {how}: {e}"));
                println!(
                    "s={s} k={k:>3} {how:<15}: max error {:>6}, error_bound {:>6}, n/(k+1) {:>6}, \
                     {heavy} heavy hitters all found, {} counters",
                    max_error(&t, &exact),
                    t.error_bound(),
                    n / (u64::from(k) + 1),
                    t.len()
                );
            }
        }
    }
}

#[test]
fn split_then_merge_stays_within_bound_of_one_stream() {
    let values = Zipf::new(1.2, 5_000).stream(200_000, 3);
    let exact = exact_counts(&values);
    let mut rng = SplitMix64::new(4);
    for k in [1, 7, 32] {
        let single = fold(k, &values);
        for parts in [2, 16, 500] {
            let merged = fold_merged(k, &values, parts, &mut rng);
            within_exact(&merged, &exact).unwrap_or_else(|e| panic!("k={k} parts={parts}: {e}"));
            within_each_other(&single, &merged).unwrap();
        }
    }
}

/// The insert fast paths (present, free counter, full) are exactly a merge with the sketch
/// `{item: w}`: same state, bit for bit.
#[test]
fn insert_is_a_merge_with_a_one_counter_sketch() {
    let mut rng = SplitMix64::new(5);
    for k in [1, 2, 5] {
        let (mut by_insert, mut by_merge) = (TopK::<u64>::new(k), TopK::<u64>::new(k));
        for _ in 0..20_000 {
            let item = rng.below(12) as u64;
            let w = [0, 1, 1, 1, 2, 7][rng.below(6)];
            let mut one = TopK::<u64>::new(k);
            one.insert((item, w)).unwrap();
            by_merge.merge(&one).unwrap();
            by_insert.insert((item, w)).unwrap();
            assert_eq!(codec::encode(&by_insert), codec::encode(&by_merge), "k={k}");
        }
        assert!(by_insert.error_bound() > 0, "k={k}: no reduction exercised");
    }
}

#[test]
fn str_insert_equals_string_insert_and_borrowed_lookups() {
    let words: Vec<String> = Zipf::new(1.3, 200)
        .stream(5_000, 6)
        .iter()
        .map(|i| format!("w{i}"))
        .collect();
    let (mut by_str, mut by_string) = (TopK::<String>::new(10), TopK::<String>::new(10));
    for w in &words {
        by_str.insert(w.as_str()).unwrap();
        by_string.insert(w.clone()).unwrap();
    }
    assert_eq!(by_str, by_string);
    let (item, est) = by_str.top(1).remove(0);
    assert_eq!(by_str.estimate(item.as_str()), est);
}

#[test]
fn top_sorts_by_estimate_then_item() {
    let values = Zipf::new(1.0, 40).stream(3_000, 7);
    let t = fold(TopK::<u64>::DEFAULT_K, &values); // 40 items < k: exact
    assert_eq!(t.error_bound(), 0);
    let mut expected: Vec<(u64, u64)> = exact_counts(&values).into_iter().collect();
    expected.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    for m in [0, 1, 5, 40, 100] {
        assert_eq!(
            t.top(m),
            expected[..m.min(expected.len())].to_vec(),
            "m={m}"
        );
    }
}

// ----- refused operations -----

#[test]
fn merging_different_k_is_refused_and_changes_nothing() {
    let mut a = fold(8, &[1, 2, 2, 3]);
    let before = a.clone();
    let err = a.merge(&fold(9, &[4])).unwrap_err();
    assert!(matches!(err, Error::IncompatibleParams { .. }), "{err}");
    assert_eq!(a, before);
}

#[test]
fn overflow_is_refused_and_changes_nothing() {
    let mut a = TopK::<u64>::new(2);
    a.insert((1, u64::MAX - 1)).unwrap();
    let before = a.clone();
    assert!(matches!(a.insert((2, 2)), Err(Error::Overflow { .. })));
    assert!(a.check_insert(&(2, 2)).is_err());
    a.insert(3).unwrap(); // exactly u64::MAX
    assert!(matches!(a.insert(1), Err(Error::Overflow { .. })));
    assert!(matches!(a.merge(&before), Err(Error::Overflow { .. })));
    assert_eq!(a.total(), u64::MAX);
    assert_eq!((a.estimate(&1), a.estimate(&3)), (u64::MAX - 1, 1));
}

#[test]
fn k_out_of_range_is_refused() {
    for k in [0, TopK::<u64>::MAX_K + 1, u32::MAX] {
        assert!(matches!(
            TopK::<u64>::try_new(k),
            Err(Error::InvalidParameter { .. })
        ));
    }
    assert_eq!(
        TopK::<u64>::try_new(TopK::<u64>::MAX_K).unwrap().k(),
        1 << 16
    );
}

#[test]
#[should_panic(expected = "TopK::new")]
fn new_panics_on_k_zero() {
    let _ = TopK::<String>::new(0);
}

// ----- format -----

fn data(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

/// A k = 8 sketch of 2 000 words over 30, merged from three parts (error bound > 0).
fn golden_state() -> TopK<String> {
    let values = Zipf::new(1.2, 30).stream(2_000, 2026);
    let mut parts = vec![TopK::<String>::new(8); 3];
    for (i, v) in values.iter().enumerate() {
        parts[i % 3].insert(format!("item-{v}")).unwrap();
    }
    let mut t = parts[0].clone();
    t.merge(&parts[1]).unwrap();
    t.merge(&parts[2]).unwrap();
    t
}

#[test]
fn golden_file_decodes_and_reencodes_byte_for_byte() {
    let fresh = codec::encode(&golden_state());
    if std::env::var_os("SHARDFOLD_BLESS").is_some() {
        std::fs::write(data("topk.bin"), &fresh).unwrap();
    }
    let golden = std::fs::read(data("topk.bin")).expect("tests/data/topk.bin (SHARDFOLD_BLESS=1)");
    let decoded: TopK<String> = codec::decode(&golden).unwrap();
    assert!(decoded.error_bound() > 0 && decoded.len() > 1);
    assert_eq!(codec::encode(&decoded), golden, "re-encoding changed bytes");
    assert_eq!(fresh, golden, "today's encoding of the same state differs");
}

fn varint(mut v: u64, out: &mut Vec<u8>) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// A payload from `n` and `(item, count)` entries, as written, in the order given.
fn payload(n: u64, entries: &[(u64, u64)]) -> Vec<u8> {
    let mut out = Vec::new();
    varint(n, &mut out);
    varint(entries.len() as u64, &mut out);
    for &(item, c) in entries {
        varint(item, &mut out);
        varint(c, &mut out);
    }
    out
}

fn decode_parts(k: u32, payload: &[u8]) -> Result<TopK<u64>> {
    codec::decode(&encode_raw(tags::TOP_K, &k.to_le_bytes(), payload))
}

/// The parameter block and payload of `c`.
fn parts<C: Codec>(c: &C) -> (Vec<u8>, Vec<u8>) {
    let (mut params, mut payload) = (Vec::new(), Vec::new());
    c.write_params(&mut params);
    c.write_payload(&mut payload);
    (params, payload)
}

/// The worked example of FORMAT.md, byte for byte.
#[test]
fn format_md_example() {
    let mut t = TopK::<String>::new(2);
    ["a", "b", "a"]
        .into_iter()
        .for_each(|w| t.insert(w).unwrap());
    let (params, body) = parts(&t);
    assert_eq!(params, [2, 0, 0, 0]);
    assert_eq!(body, [3, 2, 1, b'a', 2, 1, b'b', 1]);
}

#[test]
fn hand_built_payload_decodes() {
    let t = decode_parts(3, &payload(10, &[(1, 4), (5, 2), (300, 1)])).unwrap();
    assert_eq!((t.total(), t.len(), t.estimate(&300)), (10, 3, 1));
    assert_eq!(t.error_bound(), (10 - 7) / 4);
}

#[test]
fn hostile_payloads_are_typed_errors() {
    let invalid = |e: &Error| matches!(e, Error::InvalidState { .. });
    let truncated = |e: &Error| matches!(e, Error::Truncated { .. });
    let mut huge_len = Vec::new();
    varint(5, &mut huge_len);
    varint(1 << 60, &mut huge_len);
    let mut long_string = payload(3, &[]);
    long_string[1] = 1; // one entry: a u64 item whose varint never ends
    long_string.extend([0xFF; 12]);
    type Check = fn(&Error) -> bool;
    let cases: Vec<(&str, u32, Vec<u8>, Check)> = vec![
        ("unsorted", 4, payload(9, &[(5, 1), (1, 1)]), invalid),
        ("duplicate", 4, payload(9, &[(5, 1), (5, 1)]), invalid),
        ("zero count", 4, payload(9, &[(5, 0)]), invalid),
        ("count above n", 4, payload(3, &[(5, 4)]), invalid),
        (
            "counts add above n",
            4,
            payload(5, &[(1, 3), (2, 3)]),
            invalid,
        ),
        (
            "counts overflow",
            4,
            payload(u64::MAX, &[(1, u64::MAX), (2, 1)]),
            invalid,
        ),
        (
            "more entries than k",
            1,
            payload(9, &[(1, 1), (2, 1)]),
            invalid,
        ),
        ("length 2^60", 4, huge_len, invalid),
        ("overlong varint", 4, long_string, invalid),
        (
            "entries missing",
            4,
            payload(9, &[(1, 1), (2, 1)])[..4].to_vec(),
            truncated,
        ),
        ("empty payload", 4, Vec::new(), truncated),
        (
            "trailing byte",
            4,
            [payload(9, &[(1, 1)]), vec![0]].concat(),
            invalid,
        ),
        ("k = 0", 0, payload(0, &[]), invalid),
        ("k = 2^16 + 1", (1 << 16) + 1, payload(0, &[]), invalid),
    ];
    for (name, k, bytes, expected) in cases {
        match decode_parts(k, &bytes) {
            Err(e) if expected(&e) => {}
            other => panic!("{name}: {other:?}"),
        }
    }
    let short_params = encode_raw(tags::TOP_K, &[4, 0], &payload(0, &[]));
    assert!(matches!(
        codec::decode::<TopK<u64>>(&short_params),
        Err(Error::Truncated { .. })
    ));
    let long_params = encode_raw(tags::TOP_K, &[4, 0, 0, 0, 0], &payload(0, &[]));
    assert!(codec::decode::<TopK<u64>>(&long_params).is_err());
    // a non-canonical varint (0x81 0x00 for 1) is refused by the re-encode check
    assert!(decode_parts(4, &[0x81, 0x00, 0x00]).is_err());
    // a string item that is not UTF-8
    let bad_utf8 = [1, 1, 1, 0xFF, 1];
    let blob = encode_raw(tags::TOP_K, &4u32.to_le_bytes(), &bad_utf8);
    assert!(matches!(
        codec::decode::<TopK<String>>(&blob),
        Err(Error::InvalidState { .. })
    ));
}

#[test]
fn every_truncation_of_the_golden_payload_is_an_error() {
    let t = golden_state();
    let (params, body) = parts(&t);
    for len in 0..body.len() {
        let blob = encode_raw(tags::TOP_K, &params, &body[..len]);
        assert!(
            codec::decode::<TopK<String>>(&blob).is_err(),
            "cut at {len} accepted"
        );
    }
}

#[test]
fn random_payload_damage_never_panics() {
    let t = golden_state();
    let (params, body) = parts(&t);
    let mut rng = SplitMix64::new(11);
    let mut accepted = 0;
    for _ in 0..20_000 {
        let mut bad = body.clone();
        for _ in 0..1 + rng.below(3) {
            let i = rng.below(bad.len());
            bad[i] = rng.next_u64() as u8;
        }
        if rng.below(8) == 0 {
            bad.truncate(rng.below(bad.len()));
        }
        let blob = encode_raw(tags::TOP_K, &params, &bad);
        if let Ok(d) = codec::decode::<TopK<String>>(&blob) {
            accepted += 1;
            assert_eq!(codec::encode(&d), blob);
            let _ = (d.top(3), d.error_bound(), d.upper_bound("item-0"));
            let mut m = d.clone();
            m.merge(&t).unwrap();
            m.merge(&d).unwrap();
            assert!(m.len() <= 8);
        }
    }
    assert!(
        accepted > 0,
        "no damaged payload was valid: the checks above never ran"
    );
}
