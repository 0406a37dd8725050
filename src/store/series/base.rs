//! The base state of a bucket: each window's aggregate, the records already absorbed,
//! counters, and per shard the names of the immutable keys holding the fingerprints of that
//! shard's folded events ([`IdSet`]s of at most [`IDS_PER_SET`] each: a compaction that adds
//! IDs replaces the shard's last set, or adds sets once it is full; all are deleted when the
//! bucket is sealed). Compaction folds pending records into it; a query does
//! the same on a copy.

use std::collections::{BTreeMap, HashSet};

use super::record::Record;
use crate::Aggregate;
use crate::codec::{self, Codec, Limits, Reader, tags, write_section_with};
use crate::dedup::{read_sorted, write_sorted};
use crate::error::{Error, Result};
use crate::merge::Insert;

/// Counters of what became of the events offered to a bucket shard.
///
/// The windows' aggregates are exact; these counters are diagnostics with one known
/// over-count: when a fold's append of a record landed but its reply was lost, and a
/// compaction folded and deleted the record before the fold's retry created it again, the
/// second copy's events count as `duplicates` (they are not folded twice) and its `late`
/// count is added twice. Keeping every absorbed record's id long enough to recognise such a
/// retry would make bases grow with the number of appends.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    /// Events folded into a window.
    pub folded: u64,
    /// Deliveries of an event already folded (refused, not folded).
    pub duplicates: u64,
    /// Events refused as late: by the writer (older than the horizon) or at compaction
    /// (their bucket had been sealed).
    pub late: u64,
    /// Events whose value the aggregate refused at compaction (an exact sum leaving its
    /// range): counted, not folded, not remembered.
    pub rejected: u64,
}

impl Tally {
    pub(crate) fn add(&mut self, other: &Tally) {
        self.folded = self.folded.saturating_add(other.folded);
        self.duplicates = self.duplicates.saturating_add(other.duplicates);
        self.late = self.late.saturating_add(other.late);
        self.rejected = self.rejected.saturating_add(other.rejected);
    }
}

/// One bucket (type tag [`tags::SERIES_BASE`]).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Base<A> {
    pub(crate) tally: Tally,
    /// Records folded into this base and perhaps not yet deleted (ascending).
    pub(crate) absorbed: Vec<u128>,
    /// Window start → aggregate.
    pub(crate) windows: BTreeMap<u64, A>,
    /// Per shard, the ids of the [`IdSet`] keys holding the fingerprints of the shard's
    /// folded events, oldest first (empty: no event yet). Empty until the first write, else K
    /// entries.
    pub(crate) ids_keys: Vec<Vec<u128>>,
}

impl<A> Default for Base<A> {
    fn default() -> Self {
        Base {
            tally: Tally::default(),
            absorbed: Vec::new(),
            windows: BTreeMap::new(),
            ids_keys: Vec::new(),
        }
    }
}

/// Fingerprints per [`IdSet`] that compactions write (a reader accepts any size): a full set
/// takes about 105 KB (Golomb–Rice coded, about 6.4 bytes per ID at this size), so a
/// set stays well inside the smallest value limit of a backend (DynamoDB's 400 KB item)
/// however many events a bucket shard holds, and a compaction rewrites at most one set per
/// shard, not everything the shard remembers.
pub(crate) const IDS_PER_SET: usize = 16_384;

/// Fingerprints of events folded into a base (type tag [`tags::SERIES_IDS`]): ascending,
/// Golomb–Rice coded (about 7 bytes per ID from a few thousand IDs up). A shard's
/// fingerprints are the union of its sets, which are disjoint.
///
/// Canonical by construction, so it is read with
/// [`decode_canonical_by_construction`](codec::decode_canonical_by_construction): with `n`
/// fixed, `k` is fixed and every gap has one code; the reader requires strictly ascending
/// values, zero padding and no trailing byte, and an empty parameter block.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct IdSet(pub(crate) Vec<u64>);

impl Codec for IdSet {
    const TYPE_TAG: u16 = tags::SERIES_IDS;

    fn write_payload(&self, out: &mut Vec<u8>) {
        write_sorted(&self.0, out);
    }

    fn read_parts(params: &[u8], payload: &[u8], _: &Limits) -> Result<Self> {
        crate::agg::no_params(params)?;
        let ids = read_sorted(payload)?;
        if ids.windows(2).any(|w| w[0] >= w[1]) {
            return Err(Error::invalid_state("fingerprints not ascending"));
        }
        Ok(IdSet(ids))
    }
}

/// Folds records into a base: dedups against the base's IDs and the IDs folded so far, or,
/// in a sealed bucket, counts every event late.
pub(crate) struct Folder<'a, A> {
    pub(crate) base: Base<A>,
    /// Per shard, the fingerprints already folded: the shard's sets, in the order of its keys
    /// (each ascending); empty when sealed.
    ids: &'a [Vec<Vec<u64>>],
    sealed: bool,
    template: &'a A,
    window_ms: u64,
    new_ids: HashSet<u64>,
    /// Whether anything changed.
    pub(crate) changed: bool,
}

impl<'a, A: Aggregate> Folder<'a, A> {
    /// `ids[k]`: shard k's fingerprint sets (each ascending); ignored when `sealed`.
    pub(crate) fn new(
        base: Base<A>,
        ids: &'a [Vec<Vec<u64>>],
        sealed: bool,
        template: &'a A,
        window_ms: u64,
    ) -> Self {
        Folder {
            base,
            ids,
            sealed,
            template,
            window_ms,
            new_ids: HashSet::new(),
            changed: false,
        }
    }

    fn seen(&self, fp: u64) -> bool {
        if self.new_ids.contains(&fp) {
            return true;
        }
        let shard = fp % (self.ids.len().max(1) as u64);
        self.ids
            .get(shard as usize)
            .is_some_and(|sets| sets.iter().any(|set| set.binary_search(&fp).is_ok()))
    }

    /// Folds the events of `record`, unless the base absorbed the record already.
    pub(crate) fn absorb<V>(&mut self, id: u128, record: &Record<V>)
    where
        A: Insert<V>,
        V: Clone,
    {
        if self.base.absorbed.binary_search(&id).is_ok() {
            return;
        }
        self.changed = true;
        self.base.tally.late = self.base.tally.late.saturating_add(record.late);
        for (fp, t, v) in &record.events {
            self.offer(*fp, *t, v);
        }
    }

    fn offer<V: Clone>(&mut self, fp: u64, time_ms: u64, value: &V)
    where
        A: Insert<V>,
    {
        if self.sealed {
            self.base.tally.late = self.base.tally.late.saturating_add(1);
            return;
        }
        if self.seen(fp) {
            self.base.tally.duplicates = self.base.tally.duplicates.saturating_add(1);
            return;
        }
        let start = time_ms - time_ms % self.window_ms;
        let inserted = match self.base.windows.get_mut(&start) {
            Some(window) => window.insert(value.clone()),
            None => {
                let mut window = self.template.clone();
                let r = window.insert(value.clone());
                if r.is_ok() {
                    self.base.windows.insert(start, window);
                }
                r
            }
        };
        let tally = &mut self.base.tally;
        match inserted {
            Ok(()) => {
                self.new_ids.insert(fp);
                tally.folded = tally.folded.saturating_add(1);
            }
            Err(_) => tally.rejected = tally.rejected.saturating_add(1),
        }
    }

    /// The base after folding, with `absorbed` as its record list, and for every shard that
    /// gained IDs its new fingerprint sets (to store under new keys before the base is
    /// written).
    pub(crate) fn finish(mut self, absorbed: Vec<u128>) -> (Base<A>, Vec<NewSets>) {
        self.base.absorbed = absorbed;
        let shards = self.ids.len().max(1);
        let mut fresh: Vec<Vec<u64>> = vec![Vec::new(); shards];
        for fp in self.new_ids.drain() {
            if let Some(v) = fresh.get_mut((fp % shards as u64) as usize) {
                v.push(fp);
            }
        }
        let mut sets = Vec::new();
        for (k, mut new) in fresh.into_iter().enumerate() {
            if new.is_empty() {
                continue;
            }
            new.sort_unstable();
            let last = self.ids.get(k).and_then(|sets| sets.last());
            sets.push(match last {
                // room in the shard's last set: a copy of it with the new IDs replaces it
                Some(last) if last.len() + new.len() <= IDS_PER_SET => NewSets {
                    shard: k as u32,
                    replaces_last: true,
                    sets: vec![IdSet(merge_sorted(last, &new))],
                },
                // none yet, or full: the new IDs go to sets of their own
                _ => NewSets {
                    shard: k as u32,
                    replaces_last: false,
                    sets: new.chunks(IDS_PER_SET).map(|c| IdSet(c.to_vec())).collect(),
                },
            });
        }
        (self.base, sets)
    }
}

/// The fingerprint sets a compaction writes for one shard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NewSets {
    pub(crate) shard: u32,
    /// Whether the first of `sets` replaces the shard's last set (which it contains); else
    /// they are all added after it.
    pub(crate) replaces_last: bool,
    pub(crate) sets: Vec<IdSet>,
}

/// Merges two ascending, disjoint lists.
fn merge_sorted(a: &[u64], b: &[u64]) -> Vec<u64> {
    let mut out = Vec::with_capacity(a.len() + b.len());
    let (mut i, mut j) = (0, 0);
    while let (Some(&x), Some(&y)) = (a.get(i), b.get(j)) {
        if x < y {
            out.push(x);
            i += 1;
        } else {
            out.push(y);
            j += 1;
        }
    }
    out.extend_from_slice(a.get(i..).unwrap_or_default());
    out.extend_from_slice(b.get(j..).unwrap_or_default());
    out
}

impl<A: Codec> Codec for Base<A> {
    const TYPE_TAG: u16 = tags::SERIES_BASE;

    fn write_payload(&self, out: &mut Vec<u8>) {
        let t = &self.tally;
        for x in [t.folded, t.duplicates, t.late, t.rejected] {
            out.extend_from_slice(&x.to_le_bytes());
        }
        let n = u32::try_from(self.ids_keys.len()).unwrap_or(u32::MAX);
        out.extend_from_slice(&n.to_le_bytes());
        for keys in &self.ids_keys {
            // 0: none; 1: one set (the only form before sets were capped); 2: a count ≥ 2
            match keys.as_slice() {
                [] => out.push(0),
                [id] => {
                    out.push(1);
                    out.extend_from_slice(&id.to_le_bytes());
                }
                many => {
                    out.push(2);
                    let n = u32::try_from(many.len()).unwrap_or(u32::MAX);
                    out.extend_from_slice(&n.to_le_bytes());
                    for id in many {
                        out.extend_from_slice(&id.to_le_bytes());
                    }
                }
            }
        }
        let n = u32::try_from(self.absorbed.len()).unwrap_or(u32::MAX);
        out.extend_from_slice(&n.to_le_bytes());
        for id in &self.absorbed {
            out.extend_from_slice(&id.to_le_bytes());
        }
        let n = u32::try_from(self.windows.len()).unwrap_or(u32::MAX);
        out.extend_from_slice(&n.to_le_bytes());
        for (start, agg) in &self.windows {
            out.extend_from_slice(&start.to_le_bytes());
            write_section_with(out, |o| codec::encode_into(agg, o));
        }
    }

    fn read_parts(params: &[u8], payload: &[u8], limits: &Limits) -> Result<Self> {
        crate::agg::no_params(params)?;
        let mut r = Reader::new(payload);
        let tally = Tally {
            folded: r.u64("base folded")?,
            duplicates: r.u64("base duplicates")?,
            late: r.u64("base late")?,
            rejected: r.u64("base rejected")?,
        };
        let ids_keys = read_ids_keys(&mut r)?;
        let absorbed = read_absorbed(&mut r)?;
        let windows = read_windows(&mut r, limits)?;
        r.finish("base")?;
        Ok(Base {
            tally,
            absorbed,
            windows,
            ids_keys,
        })
    }
}

fn read_ids_keys(r: &mut Reader<'_>) -> Result<Vec<Vec<u128>>> {
    let n = r.u32("base id-set count")?;
    if n > super::config::MAX_SHARDS {
        return Err(Error::invalid_state(format!("{n} id sets")));
    }
    let key = |r: &mut Reader<'_>| Ok(u128::from_le_bytes(r.array::<16>("base id-set key")?));
    (0..n)
        .map(|_| match r.u8("base id-set flag")? {
            0 => Ok(Vec::new()),
            1 => Ok(vec![key(r)?]),
            2 => {
                let sets = r.u32("base id-set list length")? as usize;
                // canonical: one set is flag 1
                if sets < 2 {
                    return Err(Error::invalid_state(format!("a list of {sets} id sets")));
                }
                if sets.saturating_mul(16) > r.remaining() {
                    return Err(Error::Truncated {
                        context: "base id-set list",
                    });
                }
                (0..sets).map(|_| key(r)).collect()
            }
            f => Err(Error::invalid_state(format!("base id-set flag {f:#04x}"))),
        })
        .collect()
}

fn read_absorbed(r: &mut Reader<'_>) -> Result<Vec<u128>> {
    let n = r.u32("absorbed record count")? as usize;
    if n.saturating_mul(16) > r.remaining() {
        return Err(Error::Truncated {
            context: "absorbed records",
        });
    }
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let id = u128::from_le_bytes(r.array::<16>("absorbed record")?);
        if out.last().is_some_and(|&last| last >= id) {
            return Err(Error::invalid_state("absorbed records not ascending"));
        }
        out.push(id);
    }
    Ok(out)
}

fn read_windows<A: Codec>(r: &mut Reader<'_>, limits: &Limits) -> Result<BTreeMap<u64, A>> {
    let n = r.u32("base window count")? as usize;
    // every window takes at least 12 bytes (start and section length)
    if n.saturating_mul(12) > r.remaining() {
        return Err(Error::Truncated {
            context: "base windows",
        });
    }
    let mut out = BTreeMap::new();
    let mut prev = None;
    for _ in 0..n {
        let start = r.u64("window start")?;
        if prev.is_some_and(|p| p >= start) {
            return Err(Error::invalid_state("base windows not ascending"));
        }
        prev = Some(start);
        let agg = codec::decode_with::<A>(r.section("window aggregate")?, limits)?;
        out.insert(start, agg);
    }
    Ok(out)
}
