//! Deduped<A>, IdDedup, SeqDedup: laws, exact models with duplicates and late events, splitting
//! over disjoint ID sets, bounded memory, 56-digit sequence numbers, golden bytes.

use crate::common;

use std::collections::{BTreeMap, BTreeSet};

use common::dedup::{check_golden, merge_tree, sweep_corruptions, unique_events};

use num_bigint::BigUint;
use proptest::prelude::*;
use shardfold::testkit::{Laws, SplitMix64};
use shardfold::{
    Codec, Count, Deduped, Error, Event, EventId, IdDedup, Insert, Merge, Outcome, SeqDedup,
    SeqNum, Stats, Sum, codec,
};

type Cs = (Count, Sum);
const H: u64 = 10_000;
const S: u64 = 1_000;

fn new_state() -> Deduped<Cs> {
    Deduped::new(H, S, Cs::default())
}

/// The default horizon: with unique IDs and times below it nothing is late, in any part.
const HOUR_MS: u64 = 3_600_000;

#[test]
fn laws_count_sum() {
    let events = unique_events(HOUR_MS, any::<i64>());
    Laws::<Deduped<Cs>, Event<i64>>::new("Deduped<(Count, Sum)>").check(events);
}

#[test]
fn laws_stats() {
    let events = unique_events(HOUR_MS, -1e9f64..1e9);
    Laws::<Deduped<Stats>, Event<f64>>::new("Deduped<Stats>").check(events);
}

type Delivery = (u64, u64, i64);

/// The slow, obvious model of one state.
#[derive(Default)]
struct Model {
    latest: Option<u64>,
    seen: BTreeMap<u64, BTreeSet<u64>>,
    count: u64,
    sum: i128,
    dups: u64,
    late: u64,
}

impl Model {
    fn cutoff(&self) -> u64 {
        self.latest.map_or(0, |t| t.saturating_sub(H))
    }

    fn offer(&mut self, (id, t, v): Delivery) -> Outcome {
        if t < self.cutoff() {
            self.late += 1;
            return Outcome::Late;
        }
        if !self.seen.entry(t / S).or_default().insert(id) {
            self.dups += 1;
            return Outcome::Duplicate;
        }
        (self.count, self.sum) = (self.count + 1, self.sum + i128::from(v));
        self.latest = self.latest.max(Some(t));
        Outcome::Folded
    }

    fn ids_held(&self) -> usize {
        let first = self.cutoff() / S;
        self.seen.range(first..).map(|(_, ids)| ids.len()).sum()
    }
}

fn fold(deliveries: &[Delivery]) -> Deduped<Cs> {
    let mut d = new_state();
    for &(id, t, v) in deliveries {
        d.insert(EventId::from(id), t, v).unwrap();
    }
    d
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn outcomes_match_a_sequential_model(seed in any::<u64>(), n in 1usize..400) {
        let mut rng = SplitMix64::new(seed);
        let (mut d, mut m, mut sent) = (new_state(), Model::default(), Vec::<Delivery>::new());
        for i in 0..n as u64 {
            let e = if !sent.is_empty() && rng.unit() < 0.3 {
                sent[rng.below(sent.len())] // a redelivery, of any age
            } else {
                (rng.next_u64(), 100_000 + i * 120 - rng.next_u64() % (2 * H), rng.next_u64() as i64 >> 4)
            };
            sent.push(e);
            prop_assert_eq!(d.insert(EventId::from(e.0), e.1, e.2).unwrap(), m.offer(e));
            prop_assert_eq!(d.id_dedup().ids_held(), m.ids_held());
        }
        let (c, s) = d.aggregate();
        prop_assert_eq!((c.get(), s.get(), d.duplicates(), d.late()), (m.count, m.sum, m.dups, m.late));
        let back: Deduped<Cs> = codec::decode(&codec::encode(&d)).unwrap();
        prop_assert_eq!(back, d);
    }

    #[test]
    fn disjoint_parts_merged_in_any_grouping_equal_one_stream(
        seed in any::<u64>(), n in 0usize..400, dup_pct in 0u32..=30, nparts in 1usize..=16
    ) {
        let mut rng = SplitMix64::new(seed);
        // a drifting clock, each event up to H/2 behind it: never late; redeliveries soon after
        let mut deliveries: Vec<Delivery> = Vec::new();
        let mut clock = 1_000_000u64;
        for i in 0..n as u64 {
            clock += rng.next_u64() % 300;
            let e = (i + 1, clock - rng.next_u64() % (H / 2), rng.next_u64() as i64);
            deliveries.push(e);
            if rng.below(100) < dup_pct as usize {
                deliveries.push(e);
            }
        }
        let single = fold(&deliveries);
        let mut parts: Vec<Deduped<Cs>> = (0..nparts)
            .map(|p| fold(&deliveries.iter().copied().filter(|d| d.0 as usize % nparts == p).collect::<Vec<_>>()))
            .collect();
        rng.shuffle(&mut parts);
        let merged = merge_tree(&parts, &new_state(), &mut rng);
        let distinct: BTreeSet<Delivery> = deliveries.iter().copied().collect();
        let (c, s) = merged.aggregate();
        prop_assert_eq!(c.get(), distinct.len() as u64);
        prop_assert_eq!(s.get(), distinct.iter().map(|d| i128::from(d.2)).sum::<i128>());
        prop_assert_eq!((merged.duplicates(), merged.late()), ((deliveries.len() - distinct.len()) as u64, 0));
        prop_assert_eq!(codec::encode(&merged), codec::encode(&single));
    }

    #[test]
    fn sequence_numbers_compare_as_integers(a in seq_digits(), b in seq_digits()) {
        let (x, y) = (SeqNum::parse(&a).unwrap(), SeqNum::parse(&b).unwrap());
        let (bx, by) = (big(&a), big(&b));
        prop_assert_eq!(x.cmp(&y), bx.cmp(&by));
        prop_assert_eq!(x.as_str(), bx.to_string());
    }
}

/// Kinesis-like 56-digit numbers sharing long prefixes, and other lengths with leading zeros.
fn seq_digits() -> impl Strategy<Value = String> {
    prop_oneof![
        proptest::string::string_regex("4959033827149025660855969[0-9]{31}").unwrap(),
        proptest::string::string_regex("0{0,3}[0-9]{1,60}").unwrap(),
    ]
}

fn big(digits: &str) -> BigUint {
    BigUint::parse_bytes(digits.as_bytes(), 10).unwrap()
}

#[test]
fn kinesis_sequence_numbers_dedup_retried_batches() {
    // two shards, each delivered in order in batches; every batch retried with probability 1/3
    let mut rng = SplitMix64::new(11);
    let mut d = Deduped::by_sequence(Cs::default());
    let (mut folded, mut dups) = (0u64, 0u64);
    let base = big("49590338271490256608559692538361571095921575989136588898");
    for shard in ["shardId-000000000000", "shardId-000000000001"] {
        let mut next = base.clone();
        for _ in 0..50 {
            let batch: Vec<SeqNum> = (0..10)
                .map(|_| {
                    next += BigUint::from(rng.next_u64() % (1u64 << 40)) + 1u32;
                    SeqNum::parse(&next.to_string()).unwrap()
                })
                .collect();
            let tries = if rng.below(3) == 0 { 2 } else { 1 };
            for t in 0..tries {
                for seq in &batch {
                    let out = d.insert_seq(shard, seq, 1).unwrap();
                    assert_eq!(
                        out,
                        if t == 0 {
                            Outcome::Folded
                        } else {
                            Outcome::Duplicate
                        }
                    );
                    *(if t == 0 { &mut folded } else { &mut dups }) += 1;
                }
                d.end_batch();
            }
        }
        assert_eq!(
            d.seq_dedup().mark(shard).map(|s| big(s.as_str())),
            Some(next)
        );
    }
    assert_eq!((d.aggregate().0.get(), d.duplicates()), (folded, dups));
    let back: Deduped<Cs, SeqDedup> = codec::decode(&codec::encode(&d)).unwrap();
    assert_eq!(back, d);
}

#[test]
fn malformed_sequence_numbers_are_typed_errors() {
    for bad in ["", "12a", "-1", " 1", "1.0", "１"] {
        assert!(
            matches!(SeqNum::parse(bad), Err(Error::InvalidValue { .. })),
            "{bad:?}"
        );
    }
    assert_eq!(SeqNum::parse("000").unwrap(), SeqNum::from(0));
}

#[test]
fn seq_states_sharing_a_partition_refuse_to_merge() {
    let (mut a, mut b, mut c) = (
        SeqDedup::default(),
        SeqDedup::default(),
        SeqDedup::default(),
    );
    a.advance("p0", &SeqNum::from(5));
    b.advance("p0", &SeqNum::from(9));
    c.advance("p1", &SeqNum::from(1));
    assert!(matches!(
        a.clone().merge(&b),
        Err(Error::OverlappingState { .. })
    ));
    a.merge(&c).unwrap();
    assert_eq!(a.marks().count(), 2);
    assert_eq!(codec::decode::<SeqDedup>(&codec::encode(&a)).unwrap(), a);
}

#[test]
fn overlapping_ids_refuse_to_merge_and_change_nothing() {
    let (mut a, mut b) = (new_state(), new_state());
    a.insert(EventId::from("x"), 5_000, 1).unwrap();
    b.insert(EventId::from("y"), 5_000, 2).unwrap();
    b.insert(EventId::from("x"), 5_000, 1).unwrap();
    let before = a.clone();
    assert!(matches!(a.merge(&b), Err(Error::OverlappingState { .. })));
    assert_eq!(a, before);
    let other = Deduped::new(H, S / 2, Cs::default());
    assert!(matches!(
        a.merge(&other),
        Err(Error::IncompatibleParams { .. })
    ));
    assert!(matches!(
        Deduped::try_new(0, S, Cs::default()),
        Err(Error::InvalidParameter { .. })
    ));
}

#[test]
fn a_refused_value_is_not_remembered() {
    let mut d = Deduped::new(H, S, Stats::default());
    assert!(d.insert(EventId::from("e"), 10, f64::NAN).is_err());
    assert_eq!(
        (d.id_dedup().ids_held(), d.id_dedup().latest_event_time()),
        (0, None)
    );
    assert_eq!(
        d.insert(EventId::from("e"), 10, 2.5).unwrap(),
        Outcome::Folded
    );
    assert_eq!(
        d.insert(EventId::from("e"), 10, f64::NAN).unwrap(),
        Outcome::Duplicate
    );
    let mut s = Deduped::by_sequence(Stats::default());
    assert!(s.insert_seq("p", &SeqNum::from(1), f64::INFINITY).is_err());
    assert!(s.seq_dedup().mark("p").is_none());
    assert!(Insert::check_insert(&d, &Event::new("f", 10, f64::NAN)).is_err());
    assert_eq!(d.aggregate().count(), 1);
}

#[test]
fn memory_holds_only_the_horizon_after_a_stream_100_times_longer() {
    let mut rng = SplitMix64::new(3);
    let mut d = IdDedup::new(H, S);
    let mut held: BTreeMap<u64, usize> = BTreeMap::new();
    for t in (0..100 * H).step_by(7) {
        let t = t.saturating_sub(rng.next_u64() % H);
        if d.insert(EventId::from(rng.next_u64()), t).unwrap() == Outcome::Folded {
            *held.entry(t / S).or_default() += 1;
        }
    }
    let cutoff = d.latest_event_time().unwrap() - H;
    let expected: usize = held.range(cutoff / S..).map(|(_, n)| n).sum();
    assert_eq!(d.ids_held(), expected);
    assert!(d.slots_held() as u64 <= H / S + 1);
    // resident memory: at most the horizon's slots, each sized for the busiest slot seen
    let peak = held.values().copied().max().unwrap_or(0);
    let ring = (H / S + 2) as usize;
    assert!(
        d.resident_bytes() <= ring * (16 * peak + 256),
        "{}",
        d.resident_bytes()
    );
}

fn golden_state() -> Deduped<Cs> {
    let mut rng = SplitMix64::new(20_261_123);
    let mut d = new_state();
    for i in 0..600u64 {
        let t = 50_000 + i * 30 - rng.next_u64() % (H / 2);
        let id = rng.next_u64() % 500;
        d.insert(EventId::from(id), t, (i as i64) - 300).unwrap();
    }
    d.insert(EventId::from("late"), 0, 1).unwrap();
    d
}

fn golden_seq_state() -> Deduped<Cs, SeqDedup> {
    let mut d = Deduped::by_sequence(Cs::default());
    let base = big("49590338271490256608559692538361571095921575989136588898");
    for (i, shard) in ["shardId-000000000007", "shardId-000000000008"]
        .iter()
        .enumerate()
    {
        for k in 0..5u32 {
            let seq = SeqNum::parse(&(base.clone() + k * 1000 + i as u32).to_string()).unwrap();
            d.insert_seq(shard, &seq, i64::from(k)).unwrap();
        }
    }
    let first = SeqNum::parse(&base.to_string()).unwrap();
    d.end_batch();
    d.insert_seq("shardId-000000000007", &first, 0).unwrap(); // a duplicate
    d
}

#[test]
fn golden_file_decodes_and_reencodes_byte_for_byte() {
    let d = check_golden("deduped.bin", &golden_state());
    assert!(d.late() == 1 && d.duplicates() > 0 && d.id_dedup().ids_held() > 100);
    let ids: IdDedup = codec::decode(&codec::encode(d.id_dedup())).unwrap();
    assert_eq!(&ids, d.id_dedup());
}

#[test]
fn seq_golden_file_decodes_and_reencodes_byte_for_byte() {
    let d = check_golden("deduped_seq.bin", &golden_seq_state());
    assert_eq!((d.duplicates(), d.seq_dedup().marks().count()), (1, 2));
    sweep_corruptions(&golden_seq_state(), |mut d: Deduped<Cs, SeqDedup>| {
        let _ = d.insert_seq("shardId-000000000007", &SeqNum::from(1), 1);
        let _ = d.clone().merge(&d);
        let _ = codec::encode(&d);
    });
}

#[test]
fn corrupted_payloads_are_errors_or_valid_states_never_panics() {
    sweep_corruptions(&golden_state(), |mut d: Deduped<Cs>| {
        let t = d.id_dedup().latest_event_time().unwrap_or(0);
        let _ = d.insert(EventId::from("probe"), t, 1);
        let _ = d.clone().merge(&d);
        let _ = codec::encode(&d);
    });
    sweep_corruptions(golden_state().id_dedup(), |mut d: IdDedup| {
        let _ = d.insert(EventId::from("probe"), d.latest_event_time().unwrap_or(0));
    });
}

#[test]
fn a_dedup_state_at_the_last_slot_encodes_decodes_and_queries() {
    // issue 11 defect 6: a slot index of u64::MAX overflowed the slot iterator
    for slot in [1, 7] {
        let mut d = Deduped::new(10, slot, Cs::default());
        for t in [u64::MAX - 3, u64::MAX - 1, u64::MAX] {
            assert_eq!(d.insert(EventId::from(t), t, 1).unwrap(), Outcome::Folded);
        }
        assert_eq!(
            d.insert(EventId::from(u64::MAX), u64::MAX, 1).unwrap(),
            Outcome::Duplicate
        );
        assert!(d.id_dedup().slots_held() >= 1);
        let back: Deduped<Cs> = codec::decode(&codec::encode(&d)).unwrap();
        assert_eq!(back, d);
        let mut merged = back.clone();
        merged
            .merge(&Deduped::new(10, slot, Cs::default()))
            .unwrap();
        assert_eq!((merged.aggregate().0.get(), merged.duplicates()), (3, 1));
        assert_eq!(
            merged.check(EventId::from(u64::MAX - 1), u64::MAX - 1),
            Outcome::Duplicate
        );
    }
}

#[test]
fn parameters_beyond_the_ring_bound_are_refused_even_in_blobs() {
    let max = shardfold::dedup::MAX_SLOTS;
    assert!(IdDedup::try_new(max * 1000, 1000).is_ok());
    assert!(matches!(
        IdDedup::try_new((max + 1) * 1000, 1000),
        Err(Error::InvalidParameter { .. })
    ));
    let mut params = Vec::new();
    params.extend_from_slice(&u64::MAX.to_le_bytes());
    params.extend_from_slice(&1u64.to_le_bytes());
    let mut payload = vec![1];
    payload.extend_from_slice(&u64::MAX.to_le_bytes());
    payload.extend_from_slice(&0u32.to_le_bytes());
    let got = IdDedup::read_parts(&params, &payload, &shardfold::Limits::default());
    assert!(matches!(got, Err(Error::InvalidState { .. })));
}

#[test]
fn builders_take_durations_and_name_bad_ones() {
    use std::time::Duration;
    let d = IdDedup::builder()
        .horizon(Duration::from_secs(10))
        .slot(Duration::from_secs(1))
        .build()
        .unwrap();
    assert_eq!(d, IdDedup::new(H, S));
    let dd = IdDedup::builder()
        .horizon(Duration::from_millis(H))
        .slot(Duration::from_millis(S))
        .build_deduped(Cs::default())
        .unwrap();
    assert_eq!(dd, new_state());
    let named = |b: shardfold::dedup::IdDedupBuilder| match b.build() {
        Err(Error::InvalidParameter { name, .. }) => name,
        other => panic!("{other:?}"),
    };
    assert_eq!(named(IdDedup::builder().horizon(Duration::ZERO)), "horizon");
    assert_eq!(named(IdDedup::builder().slot(Duration::ZERO)), "slot");
    assert_eq!(
        named(IdDedup::builder().slot(Duration::from_nanos(10))),
        "slot"
    );
    assert_eq!(named(IdDedup::builder().horizon(Duration::MAX)), "horizon");
    let too_many_slots = IdDedup::builder()
        .horizon(Duration::from_secs(3600))
        .slot(Duration::from_millis(100));
    assert_eq!(named(too_many_slots), "slot");
    assert!(matches!(
        IdDedup::builder()
            .slot(Duration::ZERO)
            .build_deduped(Cs::default()),
        Err(Error::InvalidParameter { name: "slot", .. })
    ));
}

#[test]
fn sequence_records_out_of_order_within_a_batch_are_late_not_duplicates() {
    let mut d = Deduped::by_sequence(Cs::default());
    let p = "shardId-000000000000";
    d.insert_seq(p, &SeqNum::from(5), 1).unwrap();
    d.end_batch();
    for (seq, want) in [
        (10, Outcome::Folded),
        (12, Outcome::Folded),
        (11, Outcome::Late), // below a record of this batch, above where it started
        (12, Outcome::Duplicate), // the same record twice
        (5, Outcome::Duplicate), // at or below where the batch started: an earlier range
        (7, Outcome::Late),
        (13, Outcome::Folded),
    ] {
        assert_eq!(
            d.insert_seq(p, &SeqNum::from(seq), 1).unwrap(),
            want,
            "{seq}"
        );
    }
    assert_eq!((d.aggregate().0.get(), d.duplicates(), d.late()), (4, 2, 2));
    // the batch does not survive encoding: a decoded state starts a new batch
    let mut back: Deduped<Cs, SeqDedup> = codec::decode(&codec::encode(&d)).unwrap();
    assert_eq!(
        back.insert_seq(p, &SeqNum::from(11), 1).unwrap(),
        Outcome::Duplicate
    );
    d.end_batch();
    assert_eq!(
        d.insert_seq(p, &SeqNum::from(11), 1).unwrap(),
        Outcome::Duplicate
    );
}
