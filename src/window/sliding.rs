//! Hopping windows in linear time: a two-stack queue of window aggregates.
//!
//! Merges have no inverse (a maximum or a sketch cannot be "subtracted"), so a sliding merge
//! cannot remove the window that leaves. The two-stack queue avoids it: the back stack keeps a
//! running merge of what was pushed, the front stack keeps suffix merges, rebuilt from the back
//! stack when it runs dry. Each window is pushed and popped once; each output is one merge.

use crate::error::{Error, Result};
use crate::merge::Merge;

/// A FIFO of `(start, aggregate)` with an amortised O(1) merge of its contents.
struct TwoStacks<A> {
    template: A,
    /// `(start, merge of this element and every element pushed after it, up to the refill)`;
    /// the oldest element is on top.
    front: Vec<(u64, A)>,
    back: Vec<(u64, A)>,
    back_merged: A,
}

impl<A: Merge + Clone> TwoStacks<A> {
    fn new(template: A) -> Self {
        TwoStacks {
            back_merged: template.clone(),
            template,
            front: Vec::new(),
            back: Vec::new(),
        }
    }

    fn push(&mut self, start: u64, a: &A) -> Result<()> {
        self.back_merged.merge(a)?;
        self.back.push((start, a.clone()));
        Ok(())
    }

    /// Pops every element that starts before `min_start`.
    fn drop_before(&mut self, min_start: u64) -> Result<()> {
        loop {
            if self.front.is_empty() {
                if self.back.first().is_none_or(|(s, _)| *s >= min_start) {
                    return Ok(());
                }
                self.refill()?;
            }
            match self.front.last() {
                Some((s, _)) if *s < min_start => {
                    self.front.pop();
                }
                _ => return Ok(()),
            }
        }
    }

    fn refill(&mut self) -> Result<()> {
        let mut acc = self.template.clone();
        while let Some((s, a)) = self.back.pop() {
            acc.merge(&a)?;
            self.front.push((s, acc.clone()));
        }
        self.back_merged = self.template.clone();
        Ok(())
    }

    fn merged(&self) -> Result<A> {
        let mut acc = self.back_merged.clone();
        if let Some((_, f)) = self.front.last() {
            acc.merge(f)?;
        }
        Ok(acc)
    }
}

/// Hopping windows of width `k·width` and step `width` over `held` (tumbling windows by
/// ascending start): for every aligned start `s` whose window `[s, s + k·width)` holds at least
/// one window, `(s, merge of those windows)`, by ascending `s`. Time linear in the output.
///
/// # Errors
///
/// [`Error::InvalidParameter`] when `k` is 0 or above 65536; what the aggregate's merge
/// returns.
pub(crate) fn hopping<'a, A: Merge + Clone + 'a>(
    held: impl IntoIterator<Item = (u64, &'a A)>,
    width: u64,
    k: u64,
    template: &A,
) -> Result<Vec<(u64, A)>> {
    if !(1..=1 << 16).contains(&k) {
        return Err(Error::InvalidParameter {
            name: "k",
            reason: "a hopping window spans 1 to 65536 windows".into(),
        });
    }
    let held: Vec<(u64, &A)> = held.into_iter().collect();
    let span = k.saturating_mul(width);
    let mut queue = TwoStacks::new(template.clone());
    let mut out = Vec::new();
    let mut next = 0;
    let mut last_start = None;
    for &(w, _) in &held {
        // the starts whose window covers w, ascending, not yet emitted
        let first = w.saturating_sub((k - 1).min(w / width.max(1)) * width);
        let first = last_start.map_or(first, |l: u64| first.max(l.saturating_add(width)));
        let mut s = first;
        while s <= w {
            while let Some(&(start, a)) = held
                .get(next)
                .filter(|(st, _)| *st < s.saturating_add(span))
            {
                queue.push(start, a)?;
                next += 1;
            }
            queue.drop_before(s)?;
            out.push((s, queue.merged()?));
            last_start = Some(s);
            s = s.saturating_add(width.max(1));
            if s == u64::MAX {
                break;
            }
        }
    }
    Ok(out)
}
