//! `Keyed` group-by: the merge laws (with and without overflow), the bottom-k rule against a
//! model, the format (golden file, hostile bytes), and refusals that change nothing.

use crate::common;

use std::collections::BTreeMap;
use std::path::PathBuf;

use common::finite_f64;
use proptest::prelude::*;
use shardfold::codec::{self, Codec, Limits};
use shardfold::hash::hash_bytes;
use shardfold::testkit::{Laws, SplitMix64};
use shardfold::{
    Count, Distinct, Error, Insert, Keyed, Merge, Quantiles, Stats, SumF64, Windowed, Zip,
};

#[test]
fn laws_string_keys_exact_values() {
    let keys = prop_oneof![
        Just("/cart"),
        Just("/pay"),
        Just("/"),
        Just("/search"),
        Just("")
    ];
    Laws::<Keyed<String, Stats>, (String, f64)>::new("Keyed<String, Stats>")
        .check((keys.prop_map(str::to_string), finite_f64()));
}

#[test]
fn laws_tuple_keys() {
    Laws::<Keyed<(String, u16), Zip<(Count, SumF64)>>, ((String, u16), ((), f64))>::new(
        "Keyed<(String, u16), Zip<(Count, SumF64)>>",
    )
    .check((
        ("[ab]{0,2}", 0u16..4),
        Just(()).prop_flat_map(|u| finite_f64().prop_map(move |x| (u, x))),
    ));
}

#[test]
fn laws_lattice_values_are_idempotent() {
    Laws::<Keyed<u8, Distinct>, (u8, u64)>::new("Keyed<u8, Distinct>")
        .lattice()
        .check((0u8..16, any::<u64>()));
}

/// `Keyed` with a bound of 4 keys, so most cases overflow: a newtype gives it a `Default`.
#[derive(Debug, Clone, PartialEq)]
struct Small(Keyed<u16, Stats>);

impl Default for Small {
    fn default() -> Self {
        Small(Keyed::with_max_keys(4).unwrap())
    }
}

impl Merge for Small {
    fn check_merge(&self, other: &Self) -> Result<(), Error> {
        self.0.check_merge(&other.0)
    }
    fn merge_unchecked(&mut self, other: &Self) -> Result<(), Error> {
        self.0.merge_unchecked(&other.0)
    }
}

impl Codec for Small {
    const TYPE_TAG: u16 = <Keyed<u16, Stats>>::TYPE_TAG;
    fn write_params(&self, out: &mut Vec<u8>) {
        self.0.write_params(out)
    }
    fn write_payload(&self, out: &mut Vec<u8>) {
        self.0.write_payload(out)
    }
    fn read_parts(params: &[u8], payload: &[u8], limits: &Limits) -> Result<Self, Error> {
        Keyed::read_parts(params, payload, limits).map(Small)
    }
}

impl Insert<(u16, f64)> for Small {
    fn check_insert(&self, v: &(u16, f64)) -> Result<(), Error> {
        self.0.check_insert(v)
    }
    fn insert_unchecked(&mut self, v: (u16, f64)) -> Result<(), Error> {
        self.0.insert_unchecked(v)
    }
}

#[test]
fn laws_with_overflow_bucket() {
    Laws::<Small, (u16, f64)>::new("Keyed (max 4 keys) with overflow")
        .check((0u16..40, (-1000i32..1000).prop_map(f64::from)));
}

fn key_rank(k: u16) -> (u64, u16) {
    (hash_bytes(&postcard_u16(k)), k)
}

/// postcard's encoding of a u16 (a varint), the bytes the stable hash of a key reads.
fn postcard_u16(k: u16) -> Vec<u8> {
    let mut out = Vec::new();
    let mut v = k;
    loop {
        let byte = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(byte);
            return out;
        }
        out.push(byte | 0x80);
    }
}

proptest! {
    /// The kept keys are the `max_keys` with the smallest (hash, key); the rest, and only they,
    /// are in the overflow bucket; totals are exact — against a model, whatever the order.
    #[test]
    fn bottom_k_rule_matches_a_model(values in prop::collection::vec((0u16..200, -50i32..50), 0..300), max in 1u32..12) {
        let mut state = Keyed::<u16, Stats>::with_max_keys(max).unwrap();
        let mut model: BTreeMap<u16, Vec<f64>> = BTreeMap::new();
        for &(k, x) in &values {
            state.insert((k, f64::from(x))).unwrap();
            model.entry(k).or_default().push(f64::from(x));
        }
        let mut ranked: Vec<u16> = model.keys().copied().collect();
        ranked.sort_by_key(|&k| key_rank(k));
        let kept: Vec<u16> = {
            let mut v = ranked.iter().copied().take(max as usize).collect::<Vec<_>>();
            v.sort();
            v
        };
        prop_assert_eq!(state.iter().map(|(k, _)| *k).collect::<Vec<_>>(), kept.clone());
        for (k, xs) in &model {
            if let Some(s) = state.get(k) {
                prop_assert_eq!(s.count(), xs.len() as u64);
                prop_assert_eq!(s.sum(), xs.iter().sum::<f64>());
            }
        }
        let overflow: Vec<f64> = model.iter().filter(|(k, _)| !kept.contains(k)).flat_map(|(_, xs)| xs.clone()).collect();
        prop_assert_eq!(state.other().map_or(0, Stats::count), overflow.len() as u64);
        prop_assert_eq!(state.total().unwrap().count(), values.len() as u64);
    }
}

#[test]
fn top_by_any_field_and_lookup_by_borrowed_key() {
    let mut k = Keyed::<String, Zip<(Count, Quantiles)>>::default();
    for (route, n, lat) in [("/a", 5, 10.0), ("/b", 50, 5.0), ("/c", 20, 900.0)] {
        for i in 0..n {
            k.insert((route.to_string(), ((), lat + f64::from(i))))
                .unwrap();
        }
    }
    let by_count: Vec<&str> = k
        .top_by(2, |r| r.0.0.get())
        .into_iter()
        .map(|(k, _)| k.as_str())
        .collect();
    assert_eq!(by_count, ["/b", "/c"]);
    let by_p99: Vec<&str> = k
        .top_by(3, |r| {
            r.0.1.quantile(0.99).ok().flatten().unwrap_or(f64::NAN)
        })
        .into_iter()
        .map(|(k, _)| k.as_str())
        .collect();
    assert_eq!(by_p99, ["/c", "/b", "/a"]);
    assert_eq!(k.get("/a").map(|r| r.0.0.get()), Some(5));
    assert!(k.get("/zzz").is_none());
    assert_eq!(k.total().unwrap().0.0.get(), 75);
}

#[test]
fn refused_values_change_nothing() {
    let mut k = Keyed::<u8, Stats>::with_max_keys(2).unwrap();
    k.insert((1, 1.0)).unwrap();
    k.insert((2, 2.0)).unwrap();
    let before = k.clone();
    for key in [1u8, 3, 200] {
        assert!(matches!(
            k.insert((key, f64::NAN)),
            Err(Error::InvalidValue { .. })
        ));
        assert_eq!(k, before);
    }
    let long = "x".repeat(2000);
    let mut s = Keyed::<String, Count>::default();
    assert!(matches!(
        s.insert((long, ())),
        Err(Error::InvalidValue { .. })
    ));
    assert!(s.is_empty());
}

#[test]
fn mismatched_parameters_are_refused_untouched() {
    let mut a = Keyed::<u8, Count>::with_max_keys(8).unwrap();
    a.insert((1, ())).unwrap();
    let b = Keyed::<u8, Count>::with_max_keys(9).unwrap();
    let before = a.clone();
    assert!(matches!(
        a.merge(&b),
        Err(Error::IncompatibleParams {
            what: "group-by max_keys",
            ..
        })
    ));
    assert_eq!(a, before);
    let mut q1 = Keyed::<u8, Quantiles>::with_template(8, Quantiles::new(100)).unwrap();
    let q2 = Keyed::<u8, Quantiles>::with_template(8, Quantiles::new(200)).unwrap();
    assert!(matches!(
        q1.merge(&q2),
        Err(Error::IncompatibleParams { .. })
    ));
    assert!(Keyed::<u8, Count>::with_max_keys(0).is_err());
    assert!(Keyed::<u8, Count>::with_max_keys(shardfold::agg::keyed::MAX_KEYS + 1).is_err());
}

#[test]
fn windowed_keyed_folds_by_window_and_key() {
    let mut w: Windowed<Keyed<String, Count>> = Windowed::new(60_000, 60_000, 3_600_000);
    for i in 0..100u64 {
        let route = format!("/r{}", i % 7);
        w.insert(shardfold::EventId::from(i), i * 1000, (route, ()))
            .unwrap();
    }
    let first = w.window(0).unwrap();
    assert_eq!(first.len(), 7);
    assert_eq!(first.total().unwrap().get(), 60);
    assert_eq!(
        w.range(0, 120_000).unwrap().get("/r0").map(Count::get),
        Some(15)
    );
}

fn data(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

fn golden_state() -> Keyed<(String, u16), Stats> {
    let mut rng = SplitMix64::new(9);
    let mut k = Keyed::with_max_keys(16).unwrap();
    for _ in 0..400 {
        let route = format!("/route/{}", rng.below(24));
        let status = [200u16, 404, 500][rng.below(3)];
        k.insert(((route, status), (rng.unit() * 1e3).round()))
            .unwrap();
    }
    k
}

#[test]
fn golden_file_decodes_and_reencodes_byte_for_byte() {
    let path = data("keyed.bin");
    let built = codec::encode(&golden_state());
    if !path.exists() {
        std::fs::write(&path, &built).unwrap();
    }
    let stored = std::fs::read(&path).unwrap();
    let decoded: Keyed<(String, u16), Stats> = codec::decode(&stored).unwrap();
    assert_eq!(codec::encode(&decoded), stored);
    assert_eq!(
        stored, built,
        "the same inputs no longer build the stored bytes"
    );
    assert!(
        decoded.other().is_some(),
        "the golden state exercises the overflow bucket"
    );
}

#[test]
fn hostile_bytes_are_typed_errors() {
    let good = codec::encode(&golden_state());
    let env = codec::Envelope::parse(&good, &Limits::default()).unwrap();
    let (params, payload) = (env.params.to_vec(), env.payload.to_vec());
    let try_decode = |p: &[u8], q: &[u8]| -> Result<Keyed<(String, u16), Stats>, Error> {
        codec::decode(&codec::encode_raw(codec::tags::KEYED, p, q))
    };
    assert!(try_decode(&params, &payload).is_ok());
    // every truncation, every single-byte change of the payload: an error or a valid state
    for cut in 0..payload.len() {
        assert!(try_decode(&params, &payload[..cut]).is_err());
    }
    for i in 0..payload.len() {
        let mut q = payload.clone();
        q[i] ^= 0x5a;
        let _ = try_decode(&params, &q);
    }
    // a key count beyond the bound, max_keys out of range
    let mut q = payload.clone();
    q[..4].copy_from_slice(&u32::MAX.to_le_bytes());
    assert!(matches!(
        try_decode(&params, &q),
        Err(Error::InvalidState { .. })
    ));
    let mut p = params.clone();
    p[..4].copy_from_slice(&0u32.to_le_bytes());
    assert!(try_decode(&p, &payload).is_err());
    // keys out of order: swap the first two entries
    let entries = split_entries(&payload);
    let mut swapped = payload[..4].to_vec();
    swapped.extend_from_slice(&entries[1]);
    swapped.extend_from_slice(&entries[0]);
    swapped.extend_from_slice(&payload[4 + entries[0].len() + entries[1].len()..]);
    assert!(matches!(
        try_decode(&params, &swapped),
        Err(Error::InvalidState { .. })
    ));
}

/// The first two (key section, payload section) entries of a keyed payload, as raw bytes.
fn split_entries(payload: &[u8]) -> Vec<Vec<u8>> {
    let mut at = 4;
    let mut out = Vec::new();
    for _ in 0..2 {
        let start = at;
        for _ in 0..2 {
            let len = u32::from_le_bytes(payload[at..at + 4].try_into().unwrap()) as usize;
            at += 4 + len;
        }
        out.push(payload[start..at].to_vec());
    }
    out
}

/// A batch with events for 50 routes is one fold; redeliveries are not counted twice; a query
/// returns one key, all keys, or the top N by any field.
#[cfg(feature = "store")]
#[test]
fn through_series_one_fold_for_fifty_routes() {
    use shardfold::Event;
    use shardfold::store::{EventOutcome, ManualClock, MemoryStore, Series, SeriesConfig};
    use std::sync::Arc;
    use std::time::Duration;

    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            let t0 = 1_800_000_000_000u64;
            let clock = ManualClock::new(t0 + 600_000);
            let config = SeriesConfig::new(Keyed::<String, Stats>::default())
                .window(Duration::from_secs(60))
                .clock(Arc::new(clock.clone()));
            let store = Arc::new(MemoryStore::new());
            let series: Series<Keyed<String, Stats>, (String, f64)> =
                Series::open(store, "routes", config).await.unwrap();
            let mut rng = SplitMix64::new(50);
            let mut truth: BTreeMap<String, (u64, f64)> = BTreeMap::new();
            let batch: Vec<Event<(String, f64)>> = (0..5_000u64)
                .map(|i| {
                    let route = format!("/r/{}", rng.below(50));
                    let ms = (rng.below(1000) as f64).round();
                    let t = &mut truth.entry(route.clone()).or_default();
                    t.0 += 1;
                    t.1 += ms;
                    Event::new(i, t0 + rng.below(600_000) as u64, (route, ms))
                })
                .collect();
            let report = series.fold(&batch).await.unwrap();
            assert_eq!(report.count(&EventOutcome::Accepted), batch.len());
            // a redelivery of a third of the batch, after a compaction folded the first
            series.compact_range(t0, t0 + 600_000).await.unwrap();
            series.fold(&batch[..1_700]).await.unwrap();
            let view = series.query_range(t0, t0 + 600_000).await.unwrap();
            assert_eq!(view.tally().duplicates, 1_700);
            let all = view.total().unwrap();
            assert_eq!(all.len(), 50);
            for (route, (n, sum)) in &truth {
                let s = all.get(route.as_str()).unwrap();
                assert_eq!((s.count(), s.sum()), (*n, *sum), "{route}");
            }
            let busiest = all.top_by(3, Stats::count);
            let mut expected: Vec<(&String, u64)> = truth.iter().map(|(k, v)| (k, v.0)).collect();
            expected.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
            let got: Vec<(&String, u64)> = busiest.iter().map(|(k, s)| (*k, s.count())).collect();
            assert_eq!(got, expected[..3].to_vec());
        });
}
