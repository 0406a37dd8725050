//! Windowed<A>: laws, an exact per-window model under duplicates, reordering, splitting and
//! regrouping, late events, bounded memory, queries, parameters, golden bytes.

use crate::common;

use std::collections::{BTreeMap, BTreeSet};

use common::dedup::{check_golden, merge_tree, sweep_corruptions, unique_events};

use proptest::prelude::*;
use shardfold::testkit::{Laws, SplitMix64};
use shardfold::{
    Count, Distinct, Error, Event, EventId, Insert, Merge, Outcome, Quantiles, Stats, Sum,
    Windowed, Zip, codec,
};

type Cs = (Count, Sum);

/// Event times below the first closing of the default parameters (1 min windows, 5 min
/// lateness): with unique IDs nothing is ever late or duplicate, in any part.
const NEVER_CLOSING_MS: u64 = 360_000;

#[test]
fn laws_count_sum() {
    let events = unique_events(NEVER_CLOSING_MS, any::<i64>());
    Laws::<Windowed<Cs>, Event<i64>>::new("Windowed<(Count, Sum)>").check(events);
}

#[test]
fn laws_stats() {
    let events = unique_events(NEVER_CLOSING_MS, -1e12f64..1e12);
    Laws::<Windowed<Stats>, Event<f64>>::new("Windowed<Stats>").check(events);
}

/// One delivery: (id, event time, value).
type Delivery = (u64, u64, i64);

const W: u64 = 1_000;
const L: u64 = 3_000;
const R: u64 = 8_000;

/// A stream of distinct events plus redeliveries, each delivered within the allowed lateness
/// (event time ≥ latest so far − L): a clock drifting by `0..max_step` ms per event, each event
/// up to L behind it.
fn stream(rng: &mut SplitMix64, n: usize, dup_rate: f64, max_step: u64) -> (Vec<Delivery>, usize) {
    let mut clock = rng.next_u64() % 1_000_000_000;
    let mut out: Vec<Delivery> = Vec::new();
    for i in 0..n {
        clock += rng.next_u64() % max_step;
        let t = clock - (rng.next_u64() % (L + 1)).min(clock);
        out.push((i as u64 * 7919 + 1, t, (rng.next_u64() as i64) >> 8));
    }
    // redeliveries at random later positions, kept only where still within the lateness
    let originals = out.clone();
    for e in &originals {
        if rng.unit() < dup_rate {
            let at = out.iter().position(|x| x == e).unwrap_or(0) + 1 + rng.below(20);
            out.insert(at.min(out.len()), *e);
        }
    }
    let mut latest = 0u64;
    let mut kept = Vec::new();
    for d in out {
        if d.1 + L >= latest {
            latest = latest.max(d.1);
            kept.push(d);
        }
    }
    let dups = kept.len() - n;
    (kept, dups)
}

/// Folds `deliveries` into `empty`, each with the value `value` derives from it.
fn fold_with<A: Insert<V> + Clone, V>(
    empty: &Windowed<A>,
    deliveries: &[Delivery],
    value: impl Fn(&Delivery) -> V,
) -> Windowed<A> {
    let mut w = empty.clone();
    for d in deliveries {
        w.insert(EventId::from(d.0), d.1, value(d)).unwrap();
    }
    w
}

fn fold(deliveries: &[Delivery]) -> Windowed<Cs> {
    fold_with(&Windowed::new(W, L, R), deliveries, |d| d.2)
}

/// `deliveries` split over `nparts` disjoint ID sets, each part folded by `fold` in arrival
/// order, the parts shuffled and merged as a random tree.
fn split_and_regroup<A: Merge + Clone>(
    deliveries: &[Delivery],
    nparts: usize,
    empty: &A,
    fold: impl Fn(&[Delivery]) -> A,
    rng: &mut SplitMix64,
) -> A {
    let mut parts: Vec<A> = (0..nparts)
        .map(|p| {
            let mine: Vec<Delivery> = deliveries
                .iter()
                .copied()
                .filter(|d| d.0 as usize % nparts == p)
                .collect();
            fold(&mine)
        })
        .collect();
    rng.shuffle(&mut parts);
    merge_tree(&parts, empty, rng)
}

/// The distinct events of every retained window, by window start.
fn distinct_by_window(deliveries: &[Delivery]) -> BTreeMap<u64, Vec<Delivery>> {
    let latest = deliveries.iter().map(|d| d.1).max().unwrap_or(0);
    let distinct: BTreeSet<Delivery> = deliveries.iter().copied().collect();
    let mut m: BTreeMap<u64, Vec<Delivery>> = BTreeMap::new();
    for d in distinct {
        let s = d.1 - d.1 % W;
        if s + W + R > latest {
            m.entry(s).or_default().push(d);
        }
    }
    m
}

/// The exact answer: per retained window, (count, sum) of the distinct events.
fn model(deliveries: &[Delivery]) -> BTreeMap<u64, (u64, i128)> {
    distinct_by_window(deliveries)
        .into_iter()
        .map(|(s, ds)| {
            (
                s,
                (ds.len() as u64, ds.iter().map(|d| i128::from(d.2)).sum()),
            )
        })
        .collect()
}

fn observed(w: &Windowed<Cs>) -> BTreeMap<u64, (u64, i128)> {
    w.windows()
        .map(|(s, (c, x))| (s, (c.get(), x.get())))
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn split_regrouped_folds_equal_the_exact_model(
        seed in any::<u64>(), n in 0usize..400, dup_pct in 0u32..=30, nparts in 1usize..=16
    ) {
        let mut rng = SplitMix64::new(seed);
        let (deliveries, dups) = stream(&mut rng, n, f64::from(dup_pct) / 100.0, 400);
        let single = fold(&deliveries);
        let merged = split_and_regroup(&deliveries, nparts, &Windowed::new(W, L, R), fold, &mut rng);
        prop_assert_eq!(observed(&merged), model(&deliveries));
        prop_assert_eq!((merged.duplicates(), merged.late()), (dups as u64, 0));
        prop_assert_eq!(codec::encode(&merged), codec::encode(&single));
    }

    #[test]
    fn outcomes_match_a_sequential_model_with_late_redeliveries(seed in any::<u64>(), n in 1usize..300) {
        let mut rng = SplitMix64::new(seed);
        let mut w = Windowed::<Cs>::new(W, L, R);
        let mut m = SeqModel::default();
        let mut sent: Vec<Delivery> = Vec::new();
        for i in 0..n {
            // mostly fresh events wandering up to 2·L behind a clock, some redeliveries of any age
            let d = if !sent.is_empty() && rng.unit() < 0.3 {
                sent[rng.below(sent.len())]
            } else {
                let t = 1_000_000 + i as u64 * 150 - (rng.next_u64() % (2 * L)).min(1_000_000);
                (rng.next_u64(), t, (rng.next_u64() % 1000) as i64)
            };
            sent.push(d);
            let got = w.insert(EventId::from(d.0), d.1, d.2).unwrap();
            prop_assert_eq!(got, m.offer(d));
            prop_assert_eq!(w.ids_held(), m.ids_held());
        }
        prop_assert_eq!((w.duplicates(), w.late()), (m.dups, m.late));
        prop_assert_eq!(observed(&w), m.windows());
        let back: Windowed<Cs> = codec::decode(&codec::encode(&w)).unwrap();
        prop_assert_eq!(codec::encode(&back), codec::encode(&w));
    }
}

/// Amount to `Stats` and `Quantiles`, user ID to `Distinct`: the per-window bundle of the issue.
type Bundle = Zip<(Stats, Distinct, Quantiles)>;

/// The bundle's values of one event, all functions of the delivery (so a redelivery repeats
/// them): an amount in cents, one of 1 000 users.
fn bundle_values(&(_, _, v): &Delivery) -> (f64, u64, f64) {
    let amount = (v % 10_000_000) as f64 / 100.0;
    (amount, (v as u64 >> 7) % 1_000, amount)
}

/// `d`'s count, minimum and maximum are those of `amounts`, and every estimate at q = i/50 has
/// a true rank among `amounts` within the documented bound ± ε(q).
fn check_quantiles(d: &Quantiles, mut amounts: Vec<f64>) -> Result<(), TestCaseError> {
    amounts.sort_by(f64::total_cmp);
    let n = amounts.len() as f64;
    prop_assert_eq!(d.count(), amounts.len() as u64);
    prop_assert_eq!(
        (d.min(), d.max()),
        (amounts.first().copied(), amounts.last().copied())
    );
    for q in (0..=50).map(|i| f64::from(i) / 50.0) {
        let x = d.quantile(q).unwrap().unwrap();
        let (eps, rank) = (d.rank_error_bound(q), |f: &dyn Fn(&f64) -> bool| {
            amounts.partition_point(f) as f64 / n
        });
        let (below, at_most) = (rank(&|&a| a < x), rank(&|&a| a <= x));
        prop_assert!(
            at_most >= q - eps && below <= q + eps,
            "q={}: {} has rank [{}, {}], ±{}",
            q,
            x,
            below,
            at_most,
            eps
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// ~250 events per window: Distinct sparse and dense, Quantiles compressed (δ = 20, 100) or
    /// exact (δ = 500, everything buffered).
    #[test]
    fn sketch_bundles_split_and_regrouped_match_each_windows_deduplicated_events(
        seed in any::<u64>(), n in 0usize..3_000, dup_pct in 0u32..=30, nparts in 1usize..=16,
        p in prop::sample::select(vec![8u8, 11, 14]), delta in prop::sample::select(vec![20u32, 100, 500]),
    ) {
        let mut rng = SplitMix64::new(seed);
        let (deliveries, dups) = stream(&mut rng, n, f64::from(dup_pct) / 100.0, 8);
        let template = Zip((Stats::default(), Distinct::new(p), Quantiles::new(delta)));
        let empty = Windowed::<Bundle>::with_template(W, L, R, template.clone()).unwrap();
        let fold = |ds: &[Delivery]| fold_with(&empty, ds, bundle_values);
        let merged = split_and_regroup(&deliveries, nparts, &empty, fold, &mut rng);
        prop_assert_eq!((merged.duplicates(), merged.late()), (dups as u64, 0));
        let expected = distinct_by_window(&deliveries);
        let starts: Vec<u64> = merged.windows().map(|(s, _)| s).collect();
        prop_assert_eq!(starts, expected.keys().copied().collect::<Vec<_>>());
        for ((_, Zip((stats, users, amounts))), events) in merged.windows().zip(expected.values()) {
            let mut direct = template.clone();
            events.iter().for_each(|e| direct.insert(bundle_values(e)).unwrap());
            let Zip((direct_stats, direct_users, _)) = &direct;
            prop_assert_eq!(stats.count(), events.len() as u64);
            prop_assert_eq!(codec::encode(stats), codec::encode(direct_stats));
            prop_assert_eq!(codec::encode(users), codec::encode(direct_users));
            check_quantiles(amounts, events.iter().map(|e| bundle_values(e).0).collect())?;
        }
    }
}

/// A direct, slow model of one state: open windows with their ID sets, closing by latest.
#[derive(Default)]
struct SeqModel {
    latest: Option<u64>,
    seen: BTreeMap<u64, BTreeSet<u64>>,
    sums: BTreeMap<u64, (u64, i128)>,
    dups: u64,
    late: u64,
}

impl SeqModel {
    fn open(&self, s: u64) -> bool {
        self.latest.is_none_or(|t| s + W + L > t)
    }

    fn offer(&mut self, (id, t, v): Delivery) -> Outcome {
        let s = t - t % W;
        if !self.open(s) {
            self.late += 1;
            return Outcome::Late;
        }
        if !self.seen.entry(s).or_default().insert(id) {
            self.dups += 1;
            return Outcome::Duplicate;
        }
        let e = self.sums.entry(s).or_default();
        e.0 += 1;
        e.1 += i128::from(v);
        self.latest = self.latest.max(Some(t));
        Outcome::Folded
    }

    fn ids_held(&self) -> usize {
        self.seen
            .iter()
            .filter(|(s, _)| self.open(**s))
            .map(|(_, ids)| ids.len())
            .sum()
    }

    fn windows(&self) -> BTreeMap<u64, (u64, i128)> {
        let t = self.latest.unwrap_or(0);
        self.sums
            .iter()
            .filter(|(s, _)| **s + W + R > t)
            .map(|(s, x)| (*s, *x))
            .collect()
    }
}

#[test]
fn redelivery_after_its_window_closed_is_late_not_added() {
    let mut w = Windowed::<Cs>::new(W, L, R);
    let steps = [
        ("a", 500, Outcome::Folded),
        ("a", 500, Outcome::Duplicate),
        // latest reaches 0 + W + L − 1: window [0, W) still open
        ("b", W + L - 1, Outcome::Folded),
        ("a", 500, Outcome::Duplicate),
        // latest reaches W + L: window [0, W) closes and forgets its IDs
        ("c", W + L, Outcome::Folded),
        ("a", 500, Outcome::Late),
        ("new", 999, Outcome::Late),
    ];
    for (id, t, expected) in steps {
        let value = if t < W { 10 } else { 1 };
        assert_eq!(
            w.insert(EventId::from(id), t, value).unwrap(),
            expected,
            "{id}@{t}"
        );
    }
    let (c, s) = w.window(0).unwrap();
    assert_eq!((c.get(), s.get()), (1, 10));
    assert_eq!((w.duplicates(), w.late()), (2, 2));
    assert!(!w.is_open(0));
}

#[test]
fn memory_is_bounded_by_the_open_windows() {
    let mut rng = SplitMix64::new(42);
    let mut w = Windowed::<Cs>::new(W, L, R);
    let span = 100 * L;
    let mut by_window: BTreeMap<u64, BTreeSet<u64>> = BTreeMap::new();
    let mut max_held = 0;
    for i in 0..span / 2 {
        let t = i * 2;
        let id = rng.next_u64();
        let lag = rng.next_u64() % L;
        let t = t.saturating_sub(lag);
        if w.insert(EventId::from(id), t, 1).unwrap() == Outcome::Folded {
            by_window.entry(t - t % W).or_default().insert(id);
        }
        max_held = max_held.max(w.ids_held());
    }
    let open_ids: usize = by_window
        .iter()
        .filter(|(s, _)| w.is_open(**s))
        .map(|(_, ids)| ids.len())
        .sum();
    assert_eq!(w.ids_held(), open_ids);
    // (W + L) / W + 1 open windows at 500 events per window at most
    assert!(max_held <= ((W + L) / W + 1) as usize * 500, "{max_held}");
    assert!(w.windows().count() as u64 <= (W + R) / W + 1);
    assert!(
        w.windows()
            .all(|(s, _)| s + W + R > w.latest_event_time().unwrap())
    );
}

#[test]
fn range_and_hopping_are_merges_of_tumbling_windows() {
    let mut rng = SplitMix64::new(5);
    let mut w = Windowed::<Cs>::new(W, L, 100 * W);
    for i in 0..2000u64 {
        let t = 50_000 + rng.next_u64() % (20 * W);
        w.insert(EventId::from(i), t, i as i64).unwrap();
    }
    let all: BTreeMap<u64, (u64, i128)> = observed(&w);
    for k in [1u64, 2, 3, 7] {
        let hops = w.hopping(k).unwrap();
        assert!(!hops.is_empty());
        // exactly the aligned starts whose span holds a window, ascending
        let want: std::collections::BTreeSet<u64> = all
            .keys()
            .flat_map(|&s| (0..k).filter_map(move |j| s.checked_sub(j * W)))
            .collect();
        let got: Vec<u64> = hops.iter().map(|(s, _)| *s).collect();
        assert_eq!(got, want.into_iter().collect::<Vec<_>>(), "k={k}");
        for (s, (c, x)) in hops {
            let inside = all.range(s..s + k * W).map(|(_, v)| *v);
            let (ec, ex) = inside.fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1));
            assert!(ec > 0);
            assert_eq!((c.get(), x.get()), (ec, ex), "k={k} s={s}");
        }
    }
    let (c, _) = w.range(52_000, 55_500).unwrap();
    let expect: u64 = all.range(52_000..55_500).map(|(_, v)| v.0).sum();
    assert_eq!(c.get(), expect);
    assert!(matches!(w.hopping(0), Err(Error::InvalidParameter { .. })));
}

/// One day of one-second windows, hourly hopping windows: linear, not quadratic (this took
/// 110 s before the two-stack queue); spot-checked against direct range merges.
#[test]
fn hopping_over_a_day_of_one_second_windows() {
    let mut w = Windowed::<Cs>::new(1_000, 1_000, 2 * 86_400_000);
    for i in 0..86_400u64 {
        w.insert(EventId::from(i), i * 1_000, 1).unwrap();
    }
    let hops = w.hopping(3_600).unwrap();
    assert_eq!(hops.len(), 86_400);
    for &(s, (c, _)) in hops.iter().step_by(9_973) {
        let (direct, _) = w.range(s, s + 3_600_000).unwrap();
        assert_eq!(c.get(), direct.get(), "start {s}");
    }
}

#[test]
fn parameters_are_checked_on_merge_and_construction() {
    let a = Windowed::<Cs>::new(W, L, R);
    for other in [
        Windowed::<Cs>::new(2 * W, L, R),
        Windowed::<Cs>::new(W, L + 1, R),
        Windowed::<Cs>::new(W, L, R + 1),
    ] {
        let mut x = a.clone();
        assert!(matches!(
            x.merge(&other),
            Err(Error::IncompatibleParams { .. })
        ));
        assert_eq!(x, a);
    }
    assert!(Windowed::<Cs>::try_new(0, 0, 0).is_err());
    assert!(Windowed::<Cs>::try_new(W, L, L - 1).is_err());
}

#[test]
fn overlapping_windows_refuse_to_merge_and_change_nothing() {
    let mut a = Windowed::<Cs>::new(W, L, R);
    let mut b = a.clone();
    a.insert(EventId::from("x"), 10, 1).unwrap();
    b.insert(EventId::from("x"), 10, 1).unwrap();
    b.insert(EventId::from("y"), 20, 1).unwrap();
    let before = codec::encode(&a);
    assert!(matches!(a.merge(&b), Err(Error::OverlappingState { .. })));
    assert_eq!(codec::encode(&a), before);
}

#[test]
fn refused_values_are_not_remembered() {
    let mut w = Windowed::<Stats>::new(W, L, R);
    assert!(w.insert(EventId::from("e"), 10, f64::NAN).is_err());
    assert!(w.insert(EventId::from("e"), 5_000, f64::INFINITY).is_err());
    assert_eq!(
        (w.ids_held(), w.windows().count(), w.latest_event_time()),
        (0, 0, None)
    );
    assert_eq!(
        w.insert(EventId::from("e"), 10, 1.5).unwrap(),
        Outcome::Folded
    );
    assert!(Insert::check_insert(&w, &Event::new("f", 10, f64::NAN)).is_err());
}

fn golden_state() -> Windowed<Cs> {
    let mut rng = SplitMix64::new(20_261_123);
    let (deliveries, _) = stream(&mut rng, 300, 0.2, 400);
    let mut w = fold(&deliveries);
    w.insert(EventId::from("late"), 0, 1).unwrap();
    w
}

#[test]
fn golden_file_decodes_and_reencodes_byte_for_byte() {
    let w = check_golden("windowed.bin", &golden_state());
    assert!(w.late() == 1 && w.duplicates() > 0 && w.ids_held() > 0);
    assert!(w.windows().any(|(s, _)| !w.is_open(s)));
}

#[test]
fn corrupted_payloads_are_errors_or_valid_states_never_panics() {
    sweep_corruptions(&golden_state(), |mut w: Windowed<Cs>| {
        let _ = w.insert(
            EventId::from("probe"),
            w.latest_event_time().unwrap_or(0),
            1,
        );
        let _ = w.clone().merge(&w);
        let _ = w.hopping(3);
        let _ = codec::encode(&w);
    });
}

#[test]
fn windows_at_the_end_of_time_encode_decode_and_query() {
    // issue 11 defect 6: an open window of index u64::MAX overflowed the window iterator
    for width in [1, 7] {
        let mut w = Windowed::<Cs>::new(width, 3 * width, 10 * width);
        for t in [u64::MAX - 30, u64::MAX - 2, u64::MAX - 1, u64::MAX] {
            assert_eq!(w.insert(EventId::from(t), t, 1).unwrap(), Outcome::Folded);
        }
        assert_eq!(
            w.insert(EventId::from(u64::MAX), u64::MAX, 1).unwrap(),
            Outcome::Duplicate
        );
        assert!(w.ids_held() >= 1 && w.id_resident_bytes() > 0);
        let back: Windowed<Cs> = codec::decode(&codec::encode(&w)).unwrap();
        assert_eq!(back, w);
        let last = w.window_start(u64::MAX);
        assert!(w.window(last).is_some() && w.is_open(last));
        let below_max: u64 = w
            .windows()
            .filter(|(s, _)| *s < u64::MAX)
            .map(|(_, a)| a.0.get())
            .sum();
        assert_eq!(w.range(0, u64::MAX).unwrap().0.get(), below_max);
        assert!(!w.hopping(2).unwrap().is_empty());
        let mut merged = back.clone();
        merged
            .merge(&Windowed::new(width, 3 * width, 10 * width))
            .unwrap();
        assert_eq!(merged, w);
    }
}

#[test]
fn the_builder_takes_durations_and_names_bad_ones() {
    use std::time::Duration;
    let w = Windowed::builder()
        .width(Duration::from_millis(W))
        .lateness(Duration::from_millis(L))
        .retention(Duration::from_millis(R))
        .template(Cs::default())
        .build()
        .unwrap();
    assert_eq!(w, Windowed::<Cs>::new(W, L, R));
    let named = |b: shardfold::window::WindowedBuilder<Cs>| match b.build() {
        Err(Error::InvalidParameter { name, .. }) => name,
        other => panic!("{other:?}"),
    };
    let b = || Windowed::<Cs>::builder();
    assert_eq!(named(b().width(Duration::ZERO)), "width");
    assert_eq!(named(b().width(Duration::from_micros(1500))), "width");
    assert_eq!(named(b().lateness(Duration::from_nanos(1))), "lateness");
    assert_eq!(named(b().retention(Duration::MAX)), "retention");
    let short = b()
        .lateness(Duration::from_secs(60))
        .retention(Duration::from_secs(59));
    assert_eq!(named(short), "retention");
    let wide = b()
        .width(Duration::from_millis(1))
        .lateness(Duration::from_secs(3600))
        .retention(Duration::from_secs(3600));
    assert_eq!(named(wide), "lateness");
    // whole milliseconds up to u64::MAX are fine
    let far = b()
        .width(Duration::from_millis(u64::MAX))
        .lateness(Duration::ZERO)
        .retention(Duration::from_millis(u64::MAX));
    assert!(far.build().is_ok());
}
