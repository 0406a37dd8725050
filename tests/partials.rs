//! `Partials<A>`: whole partial aggregates folded as values (an edge device's offline
//! pre-aggregate, a batch job's partial). The law suite, parameters checked before merging,
//! tampered partials refused, and uploads through a `Series` deduplicated by contribution ID.

use crate::common;

use common::finite_f64;
use proptest::prelude::*;
use shardfold::agg::{Partial, Partials};
use shardfold::testkit::Laws;
use shardfold::{Distinct, Error, Insert, Stats, codec};

fn stats_of(values: &[f64]) -> Stats {
    let mut s = Stats::default();
    for &v in values {
        s.insert(v).unwrap();
    }
    s
}

#[test]
fn partials_of_stats_obey_the_laws() {
    Laws::<Partials<Stats>, Partial<Stats>>::new("Partials<Stats>")
        .max_values(20)
        .check(prop::collection::vec(finite_f64(), 0..20).prop_map(|v| Partial(stats_of(&v))));
}

#[test]
fn partials_of_distinct_obey_the_laws_and_are_a_lattice() {
    Laws::<Partials<Distinct>, Partial<Distinct>>::new("Partials<Distinct>")
        .max_values(20)
        .lattice()
        .check(
            prop::collection::vec(any::<u64>(), 0..50).prop_map(|items| {
                let mut d = Distinct::default();
                for i in items {
                    d.insert(i).unwrap();
                }
                Partial(d)
            }),
        );
}

#[test]
fn folding_partials_equals_folding_their_values() {
    let values: Vec<f64> = (0..1000).map(|i| (i as f64 * 0.37).sin() * 1e6).collect();
    let mut partials = Partials::<Stats>::default();
    for chunk in values.chunks(77) {
        partials.insert(Partial(stats_of(chunk))).unwrap();
    }
    assert_eq!(
        codec::encode(partials.get()),
        codec::encode(&stats_of(&values))
    );
}

#[test]
fn a_partial_of_other_parameters_is_refused_and_nothing_changes() {
    let mut server = Partials::new(Distinct::new(14));
    server.insert(Partial(Distinct::new(14))).unwrap();
    let before = codec::encode(&server);
    let mut coarse = Distinct::new(12);
    coarse.insert(7u64).unwrap();
    let err = server.insert(Partial(coarse)).unwrap_err();
    assert!(matches!(err, Error::IncompatibleParams { .. }), "{err}");
    assert_eq!(codec::encode(&server), before);
}

#[test]
fn partials_and_plain_states_are_different_types_on_disk() {
    let s = stats_of(&[1.0, 2.0]);
    let wrapped = codec::encode(&Partials::from(s.clone()));
    assert!(matches!(
        codec::decode::<Stats>(&wrapped),
        Err(Error::WrongType { .. })
    ));
    assert!(matches!(
        codec::decode::<Partials<Stats>>(&codec::encode(&s)),
        Err(Error::WrongType { .. })
    ));
    let back: Partials<Stats> = codec::decode(&wrapped).unwrap();
    assert_eq!(back.into_inner(), s);
}

#[test]
fn a_partial_serializes_as_its_envelope_and_tampered_bytes_fail_to_deserialize() {
    let p = Partial(stats_of(&[0.5, 1.5, 2.5]));
    let bytes = postcard::to_allocvec(&p).unwrap();
    let back: Partial<Stats> = postcard::from_bytes(&bytes).unwrap();
    assert_eq!(back, p);
    for i in 0..bytes.len() {
        let mut bad = bytes.clone();
        bad[i] ^= 0x10;
        // a flipped byte is caught by the length prefix, the envelope or its checksum
        if let Ok(q) = postcard::from_bytes::<Partial<Stats>>(&bad) {
            panic!("byte {i} flipped and accepted: {q:?}");
        }
    }
}

#[cfg(feature = "sqlite")]
mod through_a_series {
    use std::sync::Arc;
    use std::time::Duration;

    use shardfold::store::{EventOutcome, ManualClock, Series, SeriesConfig, connect};
    use shardfold::{Event, Merge, Outcome, Zip};

    type Z = Zip<(Stats, Distinct)>;

    use super::*;

    const T0: u64 = 1_800_000_000_000;

    #[tokio::test]
    async fn uploads_are_deduplicated_by_contribution_id_and_mismatches_fail_only_themselves() {
        let dir = std::env::temp_dir().join(format!("sf-partials-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let url = format!("sqlite://{}", dir.join("p.db").display());
        let config = SeriesConfig::new(Partials::new(Zip((Stats::default(), Distinct::new(12)))))
            .window(Duration::from_secs(60))
            .clock(Arc::new(ManualClock::new(T0 + 600_000)));
        let series: Series<Partials<Z>, Partial<Z>> =
            Series::open(connect(&url).await.unwrap(), "uploads", config)
                .await
                .unwrap();

        // three devices, each one partial per minute
        let mut truth = Zip((Stats::default(), Distinct::new(12)));
        let mut uploads = Vec::new();
        for device in 0..3u64 {
            for minute in 0..5u64 {
                let mut part = Zip((Stats::default(), Distinct::new(12)));
                for i in 0..40u64 {
                    let n = device * 1000 + minute * 40 + i;
                    let v = (n as f64 / 8.0, n % 97);
                    part.insert(v).unwrap();
                    truth.insert(v).unwrap();
                }
                uploads.push(Event::new(
                    format!("dev-{device}/{minute}").as_str(),
                    T0 + minute * 60_000,
                    Partial(part),
                ));
            }
        }
        // one upload of other parameters (another HLL precision)
        let mut wrong = Zip((Stats::default(), Distinct::new(14)));
        wrong.insert((1.0, 1)).unwrap();
        uploads.push(Event::new("dev-9/0", T0, Partial(wrong)));

        let first = series.fold(&uploads).await.unwrap();
        assert_eq!(first.failed().collect::<Vec<_>>(), vec![15]);
        assert!(matches!(
            &first.outcomes[15],
            EventOutcome::Failed(Error::IncompatibleParams { .. })
        ));
        let once = series.query_range(T0, T0 + 300_000).await.unwrap();
        assert_eq!(
            codec::encode(once.total().unwrap().get()),
            codec::encode(&truth)
        );

        // the same uploads again (a retry, an app restart): nothing changes
        let again = series.fold(&uploads[..15]).await.unwrap();
        assert!(again.failed().next().is_none());
        series.maintain().await.unwrap();
        let twice = series.query_range(T0, T0 + 300_000).await.unwrap();
        assert_eq!(
            codec::encode(&twice.total().unwrap()),
            codec::encode(&once.total().unwrap())
        );
        assert_eq!(twice.tally().duplicates, 15);
        assert_eq!(twice.window_count(), 5);
        // a redelivery after compaction is answered as a duplicate
        let third = series.fold(&uploads[..1]).await.unwrap();
        assert!(matches!(
            third.outcomes[0],
            EventOutcome::Accepted | EventOutcome::Done(Outcome::Duplicate)
        ));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn merge_of_partials_checks_first() {
        let mut a = Partials::new(Distinct::new(12));
        let b = Partials::new(Distinct::new(13));
        assert!(a.merge(&b).is_err());
    }
}
