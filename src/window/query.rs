//! Queries over [`Windowed`]: one window, a range, hopping windows.

use super::Windowed;
use crate::error::Result;
use crate::merge::Merge;

impl<A> Windowed<A> {
    /// The aggregate of the window starting at `start_ms`, if it is held.
    pub fn window(&self, start_ms: u64) -> Option<&A> {
        if !start_ms.is_multiple_of(self.width_ms) {
            None
        } else if self.is_open(start_ms) {
            self.open_ref(start_ms / self.width_ms).map(|w| &w.agg)
        } else {
            self.closed.get(&start_ms)
        }
    }

    /// The windows held, closed and open, by ascending start: `(start_ms, aggregate)`.
    pub fn windows(&self) -> impl Iterator<Item = (u64, &A)> {
        let closed = self.closed.iter().map(|(&s, a)| (s, a));
        closed.chain(self.open_windows().map(|(s, w)| (s, &w.agg)))
    }

    /// How many windows are held (closed and open).
    pub fn window_count(&self) -> usize {
        self.closed.len() + self.open.items().flatten().count()
    }
}

impl<A: Merge + Clone> Windowed<A> {
    /// The merge of the windows whose start lies in `[from_ms, to_ms)` (the template when
    /// none does).
    ///
    /// # Errors
    ///
    /// What the aggregate's merge returns ([`Error::Overflow`](crate::Error::Overflow) of an exact sum).
    pub fn range(&self, from_ms: u64, to_ms: u64) -> Result<A> {
        let mut out = self.template.clone();
        for (_, a) in self.windows().filter(|(s, _)| (from_ms..to_ms).contains(s)) {
            out.merge(a)?;
        }
        Ok(out)
    }

    /// Hopping (sliding) windows of width `k·W` and step `W`: for every aligned start `s` whose
    /// window `[s, s + k·W)` holds at least one window, `(s, merge of those windows)`, by
    /// ascending `s`. `k = 1` gives the tumbling windows themselves. Linear in the output (a
    /// two-stack queue: no window is merged more than a few times).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidParameter`](crate::Error::InvalidParameter) when `k` is 0 or above 65536;
    /// what the aggregate's merge returns.
    pub fn hopping(&self, k: u64) -> Result<Vec<(u64, A)>> {
        super::sliding::hopping(self.windows(), self.width_ms, k, &self.template)
    }
}
