//! Merging [`Windowed`] states window by window.

use super::{Window, Windowed};
use crate::codec::Codec;
use crate::dedup::check_disjoint;
use crate::error::{Error, Result};
use crate::merge::{Merge, after_check};

impl<A: Merge + Clone + Codec> Merge for Windowed<A> {
    fn check_merge(&self, other: &Self) -> Result<()> {
        self.check_params_match(other)?;
        for (s, b) in other.open_windows() {
            if let Some(a) = self.open_ref(s / self.width_ms) {
                check_disjoint([(&a.ids, &b.ids)].into_iter(), "windows")?;
            }
        }
        for (s, b) in other.windows() {
            if let Some(a) = self.window(s) {
                a.check_merge(b)?;
            }
        }
        self.refused.plus(&other.refused).map(drop)
    }

    /// Window pairs are merged with the checked [`merge`](Merge::merge) (their pairing goes
    /// through `advance`), so a pair the check missed is an internal error, not a silent wrong
    /// sum.
    fn merge_unchecked(&mut self, other: &Self) -> Result<()> {
        if let Some(t) = other.latest.filter(|&t| self.latest.is_none_or(|l| t > l)) {
            self.advance(t);
        }
        let kept = self.first_kept_start();
        for (&s, b) in other.closed.range(kept..) {
            after_check(
                self.merge_closed(s, b),
                "Windowed: a checked window merge failed",
            )?;
        }
        for (s, b) in other.open_windows().filter(|(s, _)| *s >= kept) {
            let merged = if self.is_open(s) {
                self.merge_open(s, b)
            } else {
                self.merge_closed(s, &b.agg)
            };
            after_check(merged, "Windowed: a checked window merge failed")?;
        }
        self.refused = after_check(
            self.refused.plus(&other.refused),
            "Windowed: checked refusal counts overflowed",
        )?;
        Ok(())
    }
}

impl<A: Merge + Clone + Codec> Windowed<A> {
    fn merge_closed(&mut self, start: u64, b: &A) -> Result<()> {
        match self.closed.get_mut(&start) {
            Some(a) => a.merge(b),
            None => {
                self.closed.insert(start, b.clone());
                Ok(())
            }
        }
    }

    fn merge_open(&mut self, start: u64, b: &Window<A>) -> Result<()> {
        let k = start / self.width_ms;
        match self.open_mut(k) {
            Some(a) => {
                a.agg.merge(&b.agg)?;
                a.ids.union_with(&b.ids);
            }
            None => self.place(k, b.clone())?,
        }
        Ok(())
    }

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
