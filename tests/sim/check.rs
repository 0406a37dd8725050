//! The invariants of a finished run, against the exact truth.
//!
//! The truth is the set of events some record that *landed* in the store holds (the fault
//! wrapper logs every write the wrapped store applied, whatever its caller was told): a
//! delivery killed mid-fold, or reported `Failed` after a write whose reply was lost, may
//! still have landed, and a later redelivery of it past the horizon is then rightly `Late`.

use std::collections::{BTreeMap, HashSet};

use shardfold::codec;
use shardfold::store::{SeriesView, series_wire};
use shardfold::{Event, Insert, Quantiles, Stats};

use super::plan::*;
use super::world::{Seen, World};

/// The invariants every run checks, as printed at the end.
pub const INVARIANTS: &[&str] = &[
    "every event reported Accepted is folded (its record landed)",
    "every event not folded was reported Late (no silent loss), and no folded event was lost",
    "every event delivered only past the horizon came back Late and is not folded",
    "no pending record after the final compaction; no event rejected",
    "tally: folded = distinct events folded; folded + duplicates and late = what the landed records hold (between distinct record keys and every landing; none counted late at compaction)",
    "per window: count, exact sum, min, max (Stats bytes) equal one stream of the folded events",
    "per window: HLL (Distinct) and LogHistogram bytes equal one sketch of the folded events",
    "per window: t-digest count, min, max exact; over all windows every quantile within the rank bound",
];

/// What a run amounted to (summed over seeds for the report).
#[derive(Debug, Default, Clone, Copy)]
pub struct Totals {
    pub seeds: u64,
    pub events: u64,
    pub folded: u64,
    pub deliveries: u64,
    pub accepted: u64,
    pub late_reports: u64,
    pub failed_reports: u64,
    pub crashed: u64,
    pub duplicates: u64,
    pub late_after_landing: u64,
    pub windows: u64,
    pub faults: u64,
    pub lost_replies: u64,
    pub conflicts: u64,
    pub drops: u64,
    pub stalls: u64,
    pub sweeps: u64,
    pub relanded: u64,
}

impl Totals {
    pub fn add(&mut self, o: &Totals) {
        self.seeds += o.seeds;
        self.events += o.events;
        self.folded += o.folded;
        self.deliveries += o.deliveries;
        self.accepted += o.accepted;
        self.late_reports += o.late_reports;
        self.failed_reports += o.failed_reports;
        self.crashed += o.crashed;
        self.duplicates += o.duplicates;
        self.late_after_landing += o.late_after_landing;
        self.windows += o.windows;
        self.faults += o.faults;
        self.lost_replies += o.lost_replies;
        self.conflicts += o.conflicts;
        self.drops += o.drops;
        self.stalls += o.stalls;
        self.sweeps += o.sweeps;
        self.relanded += o.relanded;
    }
}

/// What the records that landed hold: the fingerprints of their events; event entries and
/// late counts over distinct record keys and over every landing. A record key can land twice:
/// a create whose reply was lost is retried with the same key, and if a compaction absorbed
/// and deleted the first landing meanwhile, the retry writes the record again.
struct Landed {
    fps: HashSet<u64>,
    entries: (u64, u64),
    late: (u64, u64),
    relanded: u64,
}

fn landed(world: &World) -> Landed {
    let mut l = Landed {
        fps: HashSet::new(),
        entries: (0, 0),
        late: (0, 0),
        relanded: 0,
    };
    let mut keys = HashSet::new();
    for (key, value) in world.faults.landed() {
        if !key.windows(3).any(|w| w == b"/r/") {
            continue;
        }
        let (events, late) =
            series_wire::record_events::<Val>(&value).expect("a landed record decodes");
        let first = keys.insert(key);
        let n = events.len() as u64;
        l.entries = (l.entries.0 + u64::from(first) * n, l.entries.1 + n);
        l.late = (l.late.0 + u64::from(first) * late, l.late.1 + late);
        l.relanded += u64::from(!first);
        l.fps.extend(events.iter().map(|&(fp, _)| fp));
    }
    l
}

/// Checks every invariant of [`INVARIANTS`]; panics naming the first that fails.
pub fn check(world: &World, view: &SeriesView<Agg>) -> Totals {
    let plan = &world.plan;
    assert!(!world.stuck.get(), "the queue never drained");
    let landed = landed(world);
    let fps = &landed.fps;
    let seen = world.seen.borrow();
    let mut truth: Vec<&Event<Val>> = Vec::new();
    let mut t = Totals {
        seeds: 1,
        events: plan.events.len() as u64,
        ..Totals::default()
    };
    for (i, e) in plan.events.iter().enumerate() {
        let s = &seen[i];
        let folded = fps.contains(&e.id.fingerprint());
        let count = |x: Seen| s.iter().filter(|&&y| y == x).count() as u64;
        t.deliveries += s.len() as u64;
        t.accepted += count(Seen::Accepted);
        t.late_reports += count(Seen::Late);
        t.failed_reports += count(Seen::Failed);
        t.crashed += count(Seen::Crashed);
        if count(Seen::Accepted) > 0 {
            assert!(
                folded,
                "event {i} was reported Accepted but no record of it landed: lost"
            );
        }
        if folded {
            truth.push(e);
            if count(Seen::Accepted) == 0 {
                t.late_after_landing += 1;
            }
        } else {
            assert!(
                count(Seen::Late) > 0,
                "event {i} ({s:?}) is neither folded nor reported Late: lost silently"
            );
        }
        if plan.beyond[i] {
            assert!(
                !folded && count(Seen::Accepted) == 0,
                "event {i} was delivered only past the horizon, yet folded ({s:?})"
            );
        }
    }
    let tally = view.tally();
    assert_eq!(
        view.pending_records(),
        0,
        "records left after the final compaction"
    );
    assert_eq!(tally.rejected, 0, "rejected events");
    assert_eq!(
        tally.folded,
        truth.len() as u64,
        "tally.folded vs distinct events folded"
    );
    // a record landed again after its first landing was compacted away may be counted again
    // (its events as duplicates, its late count twice): the tally lies between the counts
    // over distinct keys and over every landing
    let within = |x: u64, (lo, hi): (u64, u64)| lo <= x && x <= hi;
    assert!(
        within(tally.late, landed.late),
        "tally.late {} vs late counts of landed records {:?} (counted late at compaction?)",
        tally.late,
        landed.late
    );
    assert!(
        within(tally.folded + tally.duplicates, landed.entries),
        "folded {} + duplicates {} vs events in landed records {:?}",
        tally.folded,
        tally.duplicates,
        landed.entries
    );
    check_windows(view, &truth);
    check_quantiles(view, &truth);
    let f = world.faults.counts();
    let stats = *world.stats.borrow();
    t.folded = tally.folded;
    t.duplicates = tally.duplicates;
    t.windows = view.window_count() as u64;
    t.faults = f.failed_before + f.failed_after + f.conflicts + f.stalled + f.delayed;
    t.lost_replies = f.lost_replies;
    t.conflicts = f.conflicts;
    t.drops = f.drops;
    t.stalls = f.stalled;
    t.sweeps = stats.sweeps;
    t.relanded = landed.relanded;
    t
}

/// Per window, the stored aggregate against one stream of the window's folded events.
fn check_windows(view: &SeriesView<Agg>, truth: &[&Event<Val>]) {
    let mut want: BTreeMap<u64, Agg> = BTreeMap::new();
    for e in truth {
        let w = want.entry(e.time_ms - e.time_ms % WINDOW).or_default();
        w.insert(e.value).expect("insert");
    }
    let got: Vec<u64> = view.windows().map(|(s, _)| s).collect();
    assert_eq!(
        got,
        want.keys().copied().collect::<Vec<_>>(),
        "windows holding events"
    );
    for (start, agg) in view.windows() {
        let ((stats, hist, digest), users) = &agg.0;
        let ((w_stats, w_hist, w_digest), w_users) = &want[&start].0;
        assert_eq!(
            codec::encode(stats),
            codec::encode(w_stats),
            "window {start}: Stats (count {} vs {}, sum {} vs {})",
            stats.count(),
            w_stats.count(),
            stats.sum(),
            w_stats.sum()
        );
        assert_eq!(
            codec::encode(users),
            codec::encode(w_users),
            "window {start}: HLL registers"
        );
        assert_eq!(
            codec::encode(hist),
            codec::encode(w_hist),
            "window {start}: LogHistogram"
        );
        assert_eq!(
            (digest.count(), digest.min(), digest.max()),
            (w_digest.count(), w_digest.min(), w_digest.max()),
            "window {start}: t-digest count, min, max"
        );
    }
}

/// Over all windows: every quantile estimate within the t-digest's rank bound.
fn check_quantiles(view: &SeriesView<Agg>, truth: &[&Event<Val>]) {
    let total = view.total().expect("merge the windows");
    let ((stats, _, digest), _) = &total.0;
    let mut exact = Stats::default();
    let mut sorted: Vec<f64> = truth.iter().map(|e| e.value.0).collect();
    sorted
        .iter()
        .for_each(|&v| exact.insert(v).expect("insert"));
    assert_eq!(
        codec::encode(stats),
        codec::encode(&exact),
        "Stats over all windows"
    );
    sorted.sort_by(f64::total_cmp);
    check_rank_bound(digest, &sorted);
}

fn check_rank_bound(digest: &Quantiles, sorted: &[f64]) {
    let n = sorted.len() as f64;
    for q in [0.0, 0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99, 1.0] {
        let Some(x) = digest.quantile(q).expect("quantile") else {
            assert!(sorted.is_empty());
            return;
        };
        let below = sorted.partition_point(|&v| v < x) as f64 / n;
        let at_most = sorted.partition_point(|&v| v <= x) as f64 / n;
        let eps = digest.rank_error_bound(q);
        assert!(
            at_most >= q - eps && below <= q + eps,
            "q={q}: {x} has rank [{below}, {at_most}], bound ±{eps}"
        );
    }
}
