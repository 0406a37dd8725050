//! The encoding of [`Windowed`].

use std::collections::BTreeMap;

use super::{Window, Windowed, check_params};
use crate::codec::{Codec, Limits, Reader, tags, write_section_with};
use crate::dedup::{
    FpSet, read_latest, read_nested_params, read_sorted, write_latest, write_nested_params,
    write_sorted,
};
use crate::error::{Error, Result};

/// Parameter block: width, lateness, retention (u64 LE each), the aggregate's type tag u16 LE
/// and a section with its parameters. Payload: latest (flag u8, u64 LE if 1), duplicates u64
/// LE, late u64 LE, a section with the template's payload, window count u32 LE, then per
/// window by ascending start: start u64 LE, a section with the Rice-coded fingerprints (empty
/// set for closed windows), a section with the aggregate's payload.
impl<A: Codec> Codec for Windowed<A> {
    const TYPE_TAG: u16 = tags::WINDOWED;

    fn write_params(&self, out: &mut Vec<u8>) {
        for x in [self.width_ms, self.lateness_ms, self.retention_ms] {
            out.extend_from_slice(&x.to_le_bytes());
        }
        write_nested_params(&self.template, out);
    }

    fn write_payload(&self, out: &mut Vec<u8>) {
        write_latest(self.latest, out);
        out.extend_from_slice(&self.duplicates.to_le_bytes());
        out.extend_from_slice(&self.late.to_le_bytes());
        write_section_with(out, |o| self.template.write_payload(o));
        let n = u32::try_from(self.windows.len()).unwrap_or(u32::MAX);
        out.extend_from_slice(&n.to_le_bytes());
        for (start, w) in &self.windows {
            out.extend_from_slice(&start.to_le_bytes());
            write_section_with(out, |o| write_sorted(&w.ids.sorted(), o));
            write_section_with(out, |o| w.agg.write_payload(o));
        }
    }

    fn read_parts(params: &[u8], payload: &[u8], limits: &Limits) -> Result<Self> {
        let mut p = Reader::new(params);
        let (w, l, r) = (p.u64("width")?, p.u64("lateness")?, p.u64("retention")?);
        check_params(w, l, r).map_err(|e| Error::invalid_state(e.to_string()))?;
        let agg_params = read_nested_params::<A>(&mut p)?;
        p.finish("Windowed params")?;
        let mut q = Reader::new(payload);
        let latest = read_latest(&mut q)?;
        let duplicates = q.u64("duplicate count")?;
        let late = q.u64("late count")?;
        let template = A::read_parts(agg_params, q.section("window template")?, limits)?;
        let mut out = Windowed::blank(w, l, r, template);
        (out.latest, out.duplicates, out.late) = (latest, duplicates, late);
        out.windows = read_windows(&mut q, agg_params, limits)?;
        q.finish("Windowed payload")?;
        out.validate()?;
        Ok(out)
    }
}

fn read_windows<A: Codec>(
    q: &mut Reader<'_>,
    agg_params: &[u8],
    limits: &Limits,
) -> Result<BTreeMap<u64, Window<A>>> {
    let mut windows = BTreeMap::new();
    for _ in 0..q.u32("window count")? {
        let start = q.u64("window start")?;
        let ids = FpSet::from_fingerprints(&read_sorted(q.section("window ids")?)?);
        let agg = A::read_parts(agg_params, q.section("window aggregate")?, limits)?;
        if windows
            .last_key_value()
            .is_some_and(|(&last, _)| last >= start)
        {
            return Err(Error::invalid_state("windows not ascending"));
        }
        windows.insert(start, Window { agg, ids });
    }
    Ok(windows)
}

impl<A> Windowed<A> {
    /// Checks alignment, closing and eviction against the latest event time.
    fn validate(&self) -> Result<()> {
        let Some(latest) = self.latest else {
            let empty = self.windows.is_empty() && self.duplicates == 0 && self.late == 0;
            return ok_or(empty, "events counted or windows held before any event");
        };
        // the event at `latest` was folded into an open window, the last one
        let last_is_latest = self
            .windows
            .last_key_value()
            .is_some_and(|(&s, _)| s == self.window_start(latest));
        ok_or(last_is_latest, "no window holds the latest event")?;
        let (open, kept) = (self.first_open_start(), self.first_kept_start());
        for (&s, w) in &self.windows {
            ok_or(s % self.width_ms == 0, "window start not aligned")?;
            ok_or(s >= kept, "window past retention")?;
            ok_or(
                (s >= open) != w.ids.is_empty(),
                "window ids inconsistent with closing",
            )?;
        }
        Ok(())
    }
}

fn ok_or(ok: bool, reason: &str) -> Result<()> {
    if ok {
        Ok(())
    } else {
        Err(Error::invalid_state(reason))
    }
}
