//! Event-time windows: [`Windowed`] keeps one aggregate per tumbling window, deduplicated.
//!
//! # Model
//!
//! * **Tumbling windows** `[s, s + W)` with `s` a multiple of the width `W` milliseconds since
//!   the Unix epoch (UTC). An event goes to the window of its **event time**, not its arrival.
//! * **Latest event time** `T`: the largest event time folded so far.
//! * **Closing**: window `[s, s + W)` closes once `T ≥ s + W + L` (allowed lateness `L`). An
//!   event for a closed window is refused as [`Outcome::Late`] and counted, never folded. A
//!   closed window keeps its aggregate but drops its dedup memory: nothing can be folded into
//!   it any more, so nothing needs remembering. Memory for event IDs is therefore bounded by
//!   the open windows, about `(W + L) / W` of them.
//! * **Eviction**: a window is dropped entirely once `T ≥ s + W + R` (retention `R ≥ L`), so the
//!   state holds about `(W + R) / W` windows.
//! * **Dedup**: each open window remembers the 64-bit fingerprints of its events' IDs (see
//!   [`crate::dedup`] for the false-duplicate odds, `n / 2⁶⁴` with `n` IDs in the window); a
//!   redelivered event of an open window is an [`Outcome::Duplicate`]. A redelivery after its
//!   window closed is Late.
//!
//! # Merging
//!
//! Two states with equal `W`, `L`, `R` and aggregate parameters merge window by window (the
//! aggregates merge, the open windows' ID sets unite, counters add); then closing and eviction
//! are applied for the merged `T = max(T₁, T₂)`. Closing and eviction are a pure function of the
//! set of windows and `T`, and `max` is commutative and associative, so the merge is too. A
//! window whose ID sets share a fingerprint on both sides is refused with
//! [`Error::OverlappingState`](crate::Error::OverlappingState). Folding disjoint event sets
//! separately and merging equals folding them in one stream whenever no event was late in
//! either: events are never late when each arrives within the allowed lateness.
//!
//! # Queries
//!
//! One window ([`Windowed::window`]), the merge of the windows starting in a time range
//! ([`Windowed::range`]), and hopping windows of width `k·W` and step `W`
//! ([`Windowed::hopping`]), each a merge of tumbling windows.

mod codec;

use std::collections::{BTreeMap, BTreeSet};

use crate::dedup::{Event, EventId, FpSet, Outcome, add, bump};
use crate::error::{Error, Result};
use crate::merge::{Insert, Merge};

/// One tumbling window: its aggregate and, while open, its events' fingerprints.
#[derive(Debug, Clone, PartialEq)]
struct Window<A> {
    agg: A,
    ids: FpSet,
}

/// Tumbling event-time windows of an aggregate `A`, each deduplicated by event ID. See the
/// [module docs](self).
///
/// ```
/// use shardfold::{EventId, Outcome, Stats, Windowed};
/// // one-minute windows, 30 s allowed lateness, kept for an hour
/// let mut w: Windowed<Stats> = Windowed::new(60_000, 30_000, 3_600_000);
/// assert_eq!(w.insert(EventId::from("a"), 61_000, 2.0)?, Outcome::Folded);
/// assert_eq!(w.insert(EventId::from("a"), 61_000, 2.0)?, Outcome::Duplicate);
/// assert_eq!(w.insert(EventId::from("b"), 150_000, 4.0)?, Outcome::Folded); // closes [60 s, 120 s)
/// assert_eq!(w.insert(EventId::from("c"), 119_000, 8.0)?, Outcome::Late);
/// assert_eq!(w.window(60_000).map(|s| s.sum()), Some(2.0));
/// assert_eq!(w.range(0, 180_000)?.count(), 2);
/// assert_eq!((w.duplicates(), w.late(), w.ids_held()), (1, 1, 1));
/// # Ok::<(), shardfold::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Windowed<A> {
    width_ms: u64,
    lateness_ms: u64,
    retention_ms: u64,
    template: A,
    latest: Option<u64>,
    windows: BTreeMap<u64, Window<A>>,
    duplicates: u64,
    late: u64,
}

/// One-minute windows, five minutes of allowed lateness, kept for a day.
impl<A: Default> Default for Windowed<A> {
    fn default() -> Self {
        Windowed::blank(60_000, 300_000, 86_400_000, A::default())
    }
}

fn check_params(width_ms: u64, lateness_ms: u64, retention_ms: u64) -> Result<()> {
    let bad = |name, reason: &str| {
        Err(Error::InvalidParameter {
            name,
            reason: reason.into(),
        })
    };
    if width_ms == 0 {
        bad("width_ms", "must be at least 1")
    } else if retention_ms < lateness_ms {
        bad("retention_ms", "must be at least the allowed lateness")
    } else {
        Ok(())
    }
}

impl<A> Windowed<A> {
    fn blank(width_ms: u64, lateness_ms: u64, retention_ms: u64, template: A) -> Self {
        Windowed {
            width_ms,
            lateness_ms,
            retention_ms,
            template,
            latest: None,
            windows: BTreeMap::new(),
            duplicates: 0,
            late: 0,
        }
    }

    /// Empty windows of `width_ms`, allowed lateness `lateness_ms` and retention
    /// `retention_ms` (all in milliseconds, retention measured from a window's end), each
    /// starting as `A::default()`.
    ///
    /// # Panics
    ///
    /// When the parameters are invalid, see [`Windowed::try_new`].
    pub fn new(width_ms: u64, lateness_ms: u64, retention_ms: u64) -> Self
    where
        A: Default,
    {
        match Self::try_new(width_ms, lateness_ms, retention_ms) {
            Ok(w) => w,
            Err(e) => panic!("{e}"),
        }
    }

    /// As [`Windowed::new`].
    ///
    /// # Errors
    ///
    /// [`Error::InvalidParameter`] when `width_ms` is 0 or `retention_ms < lateness_ms`.
    pub fn try_new(width_ms: u64, lateness_ms: u64, retention_ms: u64) -> Result<Self>
    where
        A: Default,
    {
        Self::with_template(width_ms, lateness_ms, retention_ms, A::default())
    }

    /// As [`Windowed::try_new`], each new window starting as a clone of `template` (an empty
    /// aggregate with the parameters wanted, such as a sketch's precision).
    ///
    /// # Errors
    ///
    /// As [`Windowed::try_new`].
    pub fn with_template(
        width_ms: u64,
        lateness_ms: u64,
        retention_ms: u64,
        template: A,
    ) -> Result<Self> {
        check_params(width_ms, lateness_ms, retention_ms)?;
        Ok(Self::blank(width_ms, lateness_ms, retention_ms, template))
    }

    /// Window width in milliseconds.
    pub fn width_ms(&self) -> u64 {
        self.width_ms
    }

    /// Allowed lateness in milliseconds.
    pub fn lateness_ms(&self) -> u64 {
        self.lateness_ms
    }

    /// Retention in milliseconds after a window's end.
    pub fn retention_ms(&self) -> u64 {
        self.retention_ms
    }

    /// The largest event time folded, if any.
    pub fn latest_event_time(&self) -> Option<u64> {
        self.latest
    }

    /// How many events were refused as duplicates.
    pub fn duplicates(&self) -> u64 {
        self.duplicates
    }

    /// How many events were refused as late.
    pub fn late(&self) -> u64 {
        self.late
    }

    /// The start of the window holding `time_ms`.
    pub fn window_start(&self, time_ms: u64) -> u64 {
        time_ms - time_ms % self.width_ms
    }

    /// Starts below this belong to windows at or past `span` after their end.
    fn first_start_after(&self, span: u64) -> u64 {
        let t = self.latest.map_or(0, |t| t.saturating_sub(span));
        self.window_start(t)
    }

    /// The start of the oldest window still open (later windows are open too).
    pub fn first_open_start(&self) -> u64 {
        self.first_start_after(self.lateness_ms)
    }

    fn first_kept_start(&self) -> u64 {
        self.first_start_after(self.retention_ms)
    }

    /// Whether the window starting at `start` is open (accepts events).
    pub fn is_open(&self, start: u64) -> bool {
        start >= self.first_open_start()
    }

    /// How many event fingerprints the open windows hold (closed windows hold none).
    pub fn ids_held(&self) -> usize {
        self.windows.values().map(|w| w.ids.len()).sum()
    }

    /// Heap bytes held by the open windows' fingerprint tables.
    pub fn id_resident_bytes(&self) -> usize {
        self.windows.values().map(|w| w.ids.resident_bytes()).sum()
    }

    /// The aggregate new windows start from.
    pub fn template(&self) -> &A {
        &self.template
    }

    /// The aggregate of the window starting at `start_ms`, if it is held.
    pub fn window(&self, start_ms: u64) -> Option<&A> {
        self.windows.get(&start_ms).map(|w| &w.agg)
    }

    /// The windows held, by ascending start: `(start_ms, aggregate)`.
    pub fn windows(&self) -> impl Iterator<Item = (u64, &A)> {
        self.windows.iter().map(|(&s, w)| (s, &w.agg))
    }

    /// What [`insert`](Windowed::insert) would return for the event, ignoring its value.
    pub fn check(&self, id: EventId, time_ms: u64) -> Outcome {
        let start = self.window_start(time_ms);
        if !self.is_open(start) {
            Outcome::Late
        } else if self
            .windows
            .get(&start)
            .is_some_and(|w| w.ids.contains(id.fingerprint()))
        {
            Outcome::Duplicate
        } else {
            Outcome::Folded
        }
    }

    /// Offers an event: folds `value` into its window if the event is new and its window open,
    /// else counts it as a duplicate or late.
    ///
    /// # Errors
    ///
    /// What the aggregate's [`Insert::insert`] returns for `value` (checked only for new
    /// events), or [`Error::Overflow`] of a counter. On error nothing changed: the ID is not
    /// remembered.
    pub fn insert<V>(&mut self, id: EventId, time_ms: u64, value: V) -> Result<Outcome>
    where
        A: Insert<V> + Clone,
    {
        match self.check(id, time_ms) {
            Outcome::Duplicate => {
                self.duplicates = bump(self.duplicates, "duplicate count")?;
                return Ok(Outcome::Duplicate);
            }
            Outcome::Late => {
                self.late = bump(self.late, "late count")?;
                return Ok(Outcome::Late);
            }
            Outcome::Folded => {}
        }
        let start = self.window_start(time_ms);
        if let Some(w) = self.windows.get_mut(&start) {
            w.agg.insert(value)?;
            w.ids.insert(id.fingerprint());
        } else {
            let mut agg = self.template.clone();
            agg.insert(value)?;
            let ids = FpSet::from_fingerprints(&[id.fingerprint()]);
            self.windows.insert(start, Window { agg, ids });
        }
        if self.latest.is_none_or(|t| time_ms > t) {
            let open_before = self.first_open_start();
            self.latest = Some(time_ms);
            self.settle(open_before);
        }
        Ok(Outcome::Folded)
    }

    /// Applies closing and eviction for the current latest time; windows starting below
    /// `open_before` are known to be closed already.
    fn settle(&mut self, open_before: u64) {
        let open_now = self.first_open_start();
        if open_before < open_now {
            for w in self.windows.range_mut(open_before..open_now) {
                w.1.ids.clear();
            }
        }
        let kept = self.first_kept_start();
        if self
            .windows
            .first_key_value()
            .is_some_and(|(&s, _)| s < kept)
        {
            self.windows = self.windows.split_off(&kept);
        }
    }
}

impl<A: Merge + Clone> Windowed<A> {
    /// The merge of the windows whose start lies in `[from_ms, to_ms)` (the template when
    /// none does).
    ///
    /// # Errors
    ///
    /// What the aggregate's merge returns ([`Error::Overflow`] of an exact sum).
    pub fn range(&self, from_ms: u64, to_ms: u64) -> Result<A> {
        let mut out = self.template.clone();
        if from_ms < to_ms {
            for w in self.windows.range(from_ms..to_ms).map(|(_, w)| w) {
                out.merge(&w.agg)?;
            }
        }
        Ok(out)
    }

    /// Hopping (sliding) windows of width `k·W` and step `W`: for every aligned start `s` whose
    /// window `[s, s + k·W)` holds at least one window, `(s, merge of those windows)`, by
    /// ascending `s`. `k = 1` gives the tumbling windows themselves.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidParameter`] when `k` is 0; what the aggregate's merge returns.
    pub fn hopping(&self, k: u64) -> Result<Vec<(u64, A)>> {
        if k == 0 {
            return Err(Error::InvalidParameter {
                name: "k",
                reason: "a hopping window spans at least one window".into(),
            });
        }
        let span = k.saturating_mul(self.width_ms);
        let mut starts = BTreeSet::new();
        for &s in self.windows.keys() {
            let lowest = self.window_start(s.saturating_sub(span - self.width_ms));
            starts
                .extend((lowest..=s).step_by(usize::try_from(self.width_ms).unwrap_or(usize::MAX)));
        }
        starts
            .into_iter()
            .map(|s| Ok((s, self.range(s, s.saturating_add(span))?)))
            .collect()
    }
}

impl<A: Insert<V> + Clone, V> Insert<Event<V>> for Windowed<A> {
    fn check_insert(&self, e: &Event<V>) -> Result<()> {
        match self.check(e.id, e.time_ms) {
            Outcome::Duplicate => bump(self.duplicates, "duplicate count").map(drop),
            Outcome::Late => bump(self.late, "late count").map(drop),
            Outcome::Folded => match self.windows.get(&self.window_start(e.time_ms)) {
                Some(w) => w.agg.check_insert(&e.value),
                None => self.template.check_insert(&e.value),
            },
        }
    }

    fn insert(&mut self, e: Event<V>) -> Result<()> {
        Windowed::insert(self, e.id, e.time_ms, e.value).map(drop)
    }
}

impl<A: Merge + Clone + crate::Codec> Merge for Windowed<A> {
    fn check_merge(&self, other: &Self) -> Result<()> {
        self.check_params_match(other)?;
        for (s, b) in &other.windows {
            if let Some(a) = self.windows.get(s) {
                crate::dedup::check_disjoint([(&a.ids, &b.ids)].into_iter(), "windows")?;
                a.agg.check_merge(&b.agg)?;
            }
        }
        add(self.duplicates, other.duplicates, "duplicate count")?;
        add(self.late, other.late, "late count").map(drop)
    }

    fn merge(&mut self, other: &Self) -> Result<()> {
        self.check_merge(other)?;
        let open_before = self.first_open_start().min(other.first_open_start());
        for (&s, b) in &other.windows {
            match self.windows.get_mut(&s) {
                Some(a) => {
                    a.agg.merge(&b.agg)?;
                    a.ids.union_with(&b.ids);
                }
                None => {
                    self.windows.insert(s, b.clone());
                }
            }
        }
        self.duplicates = add(self.duplicates, other.duplicates, "duplicate count")?;
        self.late = add(self.late, other.late, "late count")?;
        self.latest = self.latest.max(other.latest);
        self.settle(open_before);
        Ok(())
    }
}

impl<A: crate::Codec> Windowed<A> {
    fn check_params_match(&self, other: &Self) -> Result<()> {
        let pairs = [
            ("window width (ms)", self.width_ms, other.width_ms),
            ("allowed lateness (ms)", self.lateness_ms, other.lateness_ms),
            ("retention (ms)", self.retention_ms, other.retention_ms),
        ];
        for (what, l, r) in pairs {
            if l != r {
                return Err(Error::incompatible(what, l, r));
            }
        }
        let (mut l, mut r) = (Vec::new(), Vec::new());
        self.template.write_params(&mut l);
        other.template.write_params(&mut r);
        if l != r {
            return Err(Error::incompatible(
                "windowed aggregate parameters",
                format!("{l:02x?}"),
                format!("{r:02x?}"),
            ));
        }
        Ok(())
    }
}
