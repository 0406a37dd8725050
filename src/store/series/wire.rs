//! The series' stored values, for golden files and fuzzing (not a stable API).

use std::collections::BTreeMap;

use super::base::{Base, IdSet, Tally};
use super::compact::Cursor;
use super::config::SeriesMeta;
use super::record::Record;
use crate::codec::{self, Codec, Envelope, Limits, tags};
use crate::error::{Error, Result};
use crate::store::presence::Presence;
use crate::{Distinct, Insert, Stats, Zip};

/// The aggregate and event value the golden files and the fuzz target use.
pub type Agg = Zip<(Stats, Distinct)>;

fn re<T: Codec>(bytes: &[u8]) -> Result<Vec<u8>> {
    codec::decode::<T>(bytes).map(|v| codec::encode(&v))
}

/// Decodes `bytes` as the series value its type tag names (records of `(f64, u64)`, bases of
/// [`Agg`]) and re-encodes it.
///
/// # Errors
///
/// Every decode error; [`Error::WrongType`] for a tag that is not a series value.
pub fn reencode(bytes: &[u8]) -> Result<Vec<u8>> {
    match Envelope::parse(bytes, &Limits::default())?.type_tag {
        tags::SERIES_META => re::<SeriesMeta>(bytes),
        tags::SERIES_RECORD => re::<Record<(f64, u64)>>(bytes),
        tags::SERIES_BASE => re::<Base<Agg>>(bytes),
        tags::SERIES_CURSOR => re::<Cursor>(bytes),
        // a series keeps one presence record per group of buckets (`<m>/p/<group>`)
        tags::STORE_PRESENCE => re::<Presence>(bytes),
        // read as compactions read it: without the re-encoding check (the fuzz target and the
        // golden test compare the re-encoding with the input)
        tags::SERIES_IDS => {
            codec::decode_canonical_by_construction::<IdSet>(bytes).map(|v| codec::encode(&v))
        }
        other => Err(Error::WrongType {
            expected: tags::SERIES_META,
            found: other,
        }),
    }
}

/// The `(fingerprint, event time)` of each event of a stored record whose values are `V`,
/// and the count of late events the record carries: what a simulation's oracle needs to know
/// which events a record that landed in the store holds.
///
/// # Errors
///
/// Every decode error of the record.
pub fn record_events<V>(bytes: &[u8]) -> Result<(Vec<(u64, u64)>, u64)>
where
    V: serde::Serialize + serde::de::DeserializeOwned,
{
    let record = codec::decode::<Record<V>>(bytes)?;
    let events = record.events.iter().map(|&(fp, t, _)| (fp, t)).collect();
    Ok((events, record.late))
}

/// A value of every series type, built from fixed inputs: `(file name, envelope)`.
pub fn goldens() -> Vec<(&'static str, Vec<u8>)> {
    let meta = SeriesMeta {
        window_ms: 60_000,
        bucket_ms: 60_000,
        horizon_ms: 21_600_000,
        retention_ms: 604_800_000,
        grace_ms: 600_000,
        shards: 4,
        type_tag: tags::TUPLE2,
        params: {
            let mut p = Vec::new();
            Agg::default().write_params(&mut p);
            p
        },
    };
    let events: Vec<(u64, u64, (f64, u64))> = (0..40u64)
        .map(|i| {
            let fp = crate::hash::hash_bytes(&i.to_le_bytes());
            (
                fp,
                1_800_000_000_000 + i * 997,
                (i as f64 * 1.25 - 7.0, i % 13),
            )
        })
        .collect();
    let record = Record {
        late: 3,
        events: events.clone(),
    };
    let mut windows: BTreeMap<u64, Agg> = BTreeMap::new();
    for (_, t, v) in &events {
        let w = windows.entry(t - t % 60_000).or_default();
        // fixed finite inputs: an insert cannot fail
        let _ = w.insert(*v);
    }
    let base = Base {
        tally: Tally {
            folded: 40,
            duplicates: 5,
            late: 3,
            rejected: 1,
        },
        absorbed: vec![7, 1 << 70, u128::MAX],
        windows,
        ids_keys: vec![
            vec![0x0123_4567_89ab_cdef_0011_2233_4455_6677],
            Vec::new(),
            vec![5],
            Vec::new(),
        ],
    };
    // a shard whose fingerprints fill several sets (flag 2: a list of set ids)
    let mut chunked = base.clone();
    if let Some(slot) = chunked.ids_keys.get_mut(1) {
        *slot = vec![9, 1 << 100, 3];
    }
    let mut ids: Vec<u64> = events.iter().map(|e| e.0).collect();
    ids.sort_unstable();
    let cursor = Cursor {
        settle_next: 30_000_000,
        seal_next: 29_999_640,
        evict_next: 29_989_920,
    };
    let mut presence = Presence::new(256);
    presence.set_range(3..70, true);
    presence.set_range(200..201, true);
    vec![
        ("series_meta.bin", codec::encode(&meta)),
        ("series_presence.bin", codec::encode(&presence)),
        ("series_record.bin", codec::encode(&record)),
        ("series_base.bin", codec::encode(&base)),
        ("series_base_sets.bin", codec::encode(&chunked)),
        ("series_cursor.bin", codec::encode(&cursor)),
        ("series_ids.bin", codec::encode(&IdSet(ids))),
    ]
}
