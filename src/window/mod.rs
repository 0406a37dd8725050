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
//! Open windows live in a ring indexed by `start / W` (O(1) per event; at most
//! `L / W + 2` of them), closed ones in an ordered map.
//!
//! Two states with equal `W`, `L`, `R` and aggregate parameters merge window by window (the
//! aggregates merge, the open windows' ID sets unite, counters add); then closing and eviction
//! are applied for the merged `T = max(T₁, T₂)`. Closing and eviction are a pure function of the
//! set of windows and `T`, and `max` is commutative and associative, so the merge is too. A
//! window whose ID sets share a fingerprint on both sides is refused with
//! [`Error::OverlappingState`]. Overlap can only be seen while a window is open on both sides:
//! a closed window has dropped its IDs, so two states that share events of a window closed on
//! either side cannot be told apart from disjoint ones. Merge states folded from disjoint event
//! sets — write shards are, by construction (an event's shard is the hash of its ID). Folding
//! disjoint event sets separately and merging equals folding them in one stream whenever no
//! event was late in either: events are never late when each arrives within the allowed
//! lateness.
//!
//! # Queries
//!
//! One window ([`Windowed::window`]), the merge of the windows starting in a time range
//! ([`Windowed::range`]), and hopping windows of width `k·W` and step `W`
//! ([`Windowed::hopping`]), each a merge of tumbling windows.

mod builder;
mod codec;
mod merge;
mod query;
pub(crate) mod sliding;

pub use builder::WindowedBuilder;

use std::collections::BTreeMap;

use crate::dedup::{Event, EventId, FpSet, Offer, Outcome, Refused};
use crate::error::{Error, Result};
use crate::merge::{Insert, after_check};
use crate::time::TimeRing;

/// The most windows the allowed lateness may span (`L / W`): bounds the ring of open windows
/// (one pointer each), also when decoding untrusted bytes.
pub const MAX_OPEN_WINDOWS: u64 = 4096;

/// One open tumbling window: its aggregate and its events' fingerprints.
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
/// // one-minute windows, 30 s allowed lateness, kept for an hour (in milliseconds; or
/// // `Windowed::builder().width(Duration::from_secs(60))…`, see [`WindowedBuilder`])
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
    /// Open windows by index `start / W`; the ring's base is the first open window, earlier
    /// ones are closed. Never ends with `None`.
    open: TimeRing<Option<Box<Window<A>>>>,
    /// Closed windows by start: aggregates only.
    closed: BTreeMap<u64, A>,
    refused: Refused,
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
    } else if lateness_ms / width_ms > MAX_OPEN_WINDOWS {
        bad("lateness_ms", "lateness / width must be at most 4096")
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
            open: TimeRing::new(width_ms),
            closed: BTreeMap::new(),
            refused: Refused::default(),
        }
    }

    /// Empty windows of `width_ms`, allowed lateness `lateness_ms` and retention
    /// `retention_ms` (all in milliseconds, retention measured from a window's end), each
    /// starting as `A::default()`. A shorthand for [`Windowed::builder`], which takes
    /// [`Duration`](std::time::Duration)s.
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
    /// [`Error::InvalidParameter`] when `width_ms` is 0, `retention_ms < lateness_ms`, or
    /// `lateness_ms / width_ms` exceeds [`MAX_OPEN_WINDOWS`].
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
        self.refused.duplicates
    }

    /// How many events were refused as late.
    pub fn late(&self) -> u64 {
        self.refused.late
    }

    /// The aggregate new windows start from.
    pub fn template(&self) -> &A {
        &self.template
    }

    /// The start of the window holding `time_ms`.
    pub fn window_start(&self, time_ms: u64) -> u64 {
        self.open.start(self.open.index(time_ms))
    }

    /// The start of the oldest open window (later windows are open too).
    pub fn first_open_start(&self) -> u64 {
        self.open.start(self.open.base())
    }

    /// Whether the window starting at `start` is open (accepts events).
    pub fn is_open(&self, start: u64) -> bool {
        self.open.index(start) >= self.open.base()
    }

    /// How many event fingerprints the open windows hold (closed windows hold none).
    pub fn ids_held(&self) -> usize {
        self.open_windows().map(|(_, w)| w.ids.len()).sum()
    }

    /// Heap bytes held by the open windows' fingerprint tables.
    pub fn id_resident_bytes(&self) -> usize {
        self.open_windows()
            .map(|(_, w)| w.ids.resident_bytes())
            .sum()
    }

    /// The open windows, ascending: `(start, window)`.
    fn open_windows(&self) -> impl Iterator<Item = (u64, &Window<A>)> {
        self.open
            .iter()
            .filter_map(|(k, w)| w.as_deref().map(|w| (self.open.start(k), w)))
    }

    /// The open window of index `k`, if held.
    fn open_ref(&self, k: u64) -> Option<&Window<A>> {
        self.open.get(k)?.as_deref()
    }

    /// The open window of index `k`, if held, mutably.
    fn open_mut(&mut self, k: u64) -> Option<&mut Window<A>> {
        self.open.get_mut(k)?.as_deref_mut()
    }

    /// Puts a window at index `k ≥ base` (the ring is at most `L / W + 2` long there).
    fn place(&mut self, k: u64, window: Window<A>) -> Result<()> {
        match self.open.entry(k, |_| None) {
            Some(slot) => {
                *slot = Some(Box::new(window));
                Ok(())
            }
            None => Err(Error::internal(
                "Windowed: a window placed below the open base",
            )),
        }
    }

    /// What [`insert`](Windowed::insert) would return for the event, ignoring its value.
    pub fn check(&self, id: EventId, time_ms: u64) -> Outcome {
        let k = self.open.index(time_ms);
        if k < self.open.base() {
            Outcome::Late
        } else if self
            .open_ref(k)
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
        let outcome = self.check(id, time_ms);
        if outcome != Outcome::Folded {
            return self.refused.count(outcome);
        }
        let (k, fp) = (self.open.index(time_ms), id.fingerprint());
        let fresh = match self.open_mut(k) {
            Some(w) => {
                w.agg.insert(value)?;
                w.ids.insert(fp);
                None
            }
            None => {
                let mut agg = self.template.clone();
                agg.insert(value)?;
                // sized like the fullest open window: little growth in steady streams
                let mut ids = FpSet::default();
                ids.reserve(
                    self.open_windows()
                        .map(|(_, w)| w.ids.len())
                        .max()
                        .unwrap_or(0),
                );
                ids.insert(fp);
                Some(Window { agg, ids })
            }
        };
        if self.latest.is_none_or(|t| time_ms > t) {
            self.advance(time_ms);
        }
        if let Some(w) = fresh {
            self.place(k, w)?;
        }
        Ok(Outcome::Folded)
    }

    /// Raises the latest event time to `time_ms`: closes the windows that end at or before
    /// `time_ms − L` (moving them to the closed map without their IDs) and evicts those that
    /// end at or before `time_ms − R`.
    fn advance(&mut self, time_ms: u64) {
        self.latest = Some(time_ms);
        let first_open = self.open.index(time_ms.saturating_sub(self.lateness_ms));
        let (closed, width) = (&mut self.closed, self.width_ms);
        self.open.advance_to(first_open, |k, w| {
            if let Some(w) = w {
                closed.insert(k.saturating_mul(width), w.agg);
            }
        });
        let kept = self.window_start(time_ms.saturating_sub(self.retention_ms));
        if self
            .closed
            .first_key_value()
            .is_some_and(|(&s, _)| s < kept)
        {
            self.closed = self.closed.split_off(&kept);
        }
    }

    /// The start below which windows are evicted.
    fn first_kept_start(&self) -> u64 {
        self.window_start(
            self.latest
                .map_or(0, |t| t.saturating_sub(self.retention_ms)),
        )
    }
}

impl<A: Insert<V> + Clone, V> Insert<Event<V>> for Windowed<A> {
    fn check_insert(&self, e: &Event<V>) -> Result<()> {
        match self.check(e.id, e.time_ms) {
            Outcome::Folded => match self.open_ref(self.open.index(e.time_ms)) {
                Some(w) => w.agg.check_insert(&e.value),
                None => self.template.check_insert(&e.value),
            },
            other => self.refused.check_count(other),
        }
    }

    /// [`offer`](Offer::offer), which folds or counts the event as `check_insert` found.
    fn insert_unchecked(&mut self, e: Event<V>) -> Result<()> {
        after_check(self.offer(e), "Windowed: offering a checked event failed").map(drop)
    }
}

impl<A: Insert<V> + Clone, V> Offer<Event<V>> for Windowed<A> {
    fn offer(&mut self, e: Event<V>) -> Result<Outcome> {
        Windowed::insert(self, e.id, e.time_ms, e.value)
    }
}
