//! The encoding of [`Windowed`].

use super::{Window, Windowed, check_params};
use crate::codec::{Codec, Limits, Reader, tags, write_section_with};
use crate::dedup::{
    FpSet, Refused, read_latest, read_nested_params, read_sorted, write_latest,
    write_nested_params, write_sorted,
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
        self.refused.write(out);
        write_section_with(out, |o| self.template.write_payload(o));
        let n = u32::try_from(self.window_count()).unwrap_or(u32::MAX);
        out.extend_from_slice(&n.to_le_bytes());
        for (start, agg) in &self.closed {
            write_window(*start, &[], agg, out);
        }
        for (start, w) in self.open_windows() {
            write_window(start, &w.ids.sorted(), &w.agg, out);
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
        let refused = Refused::read(&mut q)?;
        let template = A::read_parts(agg_params, q.section("window template")?, limits)?;
        let mut out = Windowed::blank(w, l, r, template);
        out.refused = refused;
        if let Some(t) = latest {
            out.advance(t);
        }
        read_windows(&mut out, &mut q, agg_params, limits)?;
        q.finish("Windowed payload")?;
        // the event at `latest` was folded into an open window, the last one
        let last = out.open_windows().last().map(|(s, _)| s);
        let consistent = match latest {
            None => out.window_count() == 0 && refused.is_zero(),
            Some(t) => last == Some(out.window_start(t)),
        };
        ok_or(
            consistent,
            "windows or counters inconsistent with the latest event time",
        )?;
        Ok(out)
    }
}

fn write_window<A: Codec>(start: u64, ids: &[u64], agg: &A, out: &mut Vec<u8>) {
    out.extend_from_slice(&start.to_le_bytes());
    write_section_with(out, |o| write_sorted(ids, o));
    write_section_with(out, |o| agg.write_payload(o));
}

/// Reads the windows into `out` (whose latest time is set), checking alignment, order,
/// retention and that exactly the open windows hold IDs.
fn read_windows<A: Codec>(
    out: &mut Windowed<A>,
    q: &mut Reader<'_>,
    agg_params: &[u8],
    limits: &Limits,
) -> Result<()> {
    let (kept, latest) = (out.first_kept_start(), out.latest.unwrap_or(0));
    let mut last = None;
    for _ in 0..q.u32("window count")? {
        let start = q.u64("window start")?;
        let ids = read_sorted(q.section("window ids")?)?;
        let agg = A::read_parts(agg_params, q.section("window aggregate")?, limits)?;
        ok_or(
            start.is_multiple_of(out.width_ms),
            "window start not aligned",
        )?;
        ok_or(last.is_none_or(|l| l < start), "windows not ascending")?;
        ok_or(start >= kept && start <= latest, "window outside retention")?;
        ok_or(
            out.is_open(start) != ids.is_empty(),
            "window IDs inconsistent with closing",
        )?;
        last = Some(start);
        if out.is_open(start) {
            let ids = FpSet::from_fingerprints(&ids);
            out.place(start / out.width_ms, Window { agg, ids })?;
        } else {
            out.closed.insert(start, agg);
        }
    }
    Ok(())
}

fn ok_or(ok: bool, reason: &str) -> Result<()> {
    if ok {
        Ok(())
    } else {
        Err(Error::invalid_state(reason))
    }
}
