//! `shardfold inspect`: decode one stored value — a file, or a key of a store — and print its
//! envelope header (format version, type tag and name, parameter and payload sizes, CRC32C),
//! its parameters and a summary of its contents; or one line naming what is wrong with the
//! bytes (exit status 1). Never panics: every decoder it calls is safe on untrusted bytes.
//!
//! Summaries: the CLI metric's aggregate (one window, grouped or not) and its `<metric>/cli`
//! description, the plain aggregates (Count, Stats, Distinct, Quantiles, LogHistogram, …), a
//! series' meta, cursor and records. A series base or fingerprint set shows its header only
//! (their decoders are private to the store layer; its checksum is still verified).

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use super::metric::{CliAgg, CliEvent, MetricSpec};
use super::parse::format_duration_ms;
use super::render::format_rfc3339_ms;
use super::{CliError, CliResult};
use crate::codec::{self, Envelope, Limits, Reader, tags};
use crate::{Count, Distinct, Keyed, LogHistogram, Quantiles, Stats, SumF64};

/// Arguments of `shardfold inspect`.
#[derive(Debug, Clone, Args)]
pub struct InspectArgs {
    /// A file holding one stored value.
    #[arg(required_unless_present = "key", conflicts_with_all = ["store", "key"])]
    pub file: Option<PathBuf>,
    /// Store URL to read the value from (with --key).
    #[arg(long, requires = "key")]
    pub store: Option<String>,
    /// The store key, as the store spells it (`<metric>/meta`; on Redis `{<metric>}/meta`).
    #[arg(long, requires = "store")]
    pub key: Option<String>,
}

/// Runs `shardfold inspect`.
///
/// # Errors
///
/// The one-line reason the bytes are not a valid value; an unreadable file; a missing key;
/// store errors.
pub async fn run(args: InspectArgs) -> CliResult {
    let bytes = match (&args.file, &args.store, &args.key) {
        (Some(path), _, _) => std::fs::read(path)
            .map_err(|e| CliError::Usage(format!("cannot read `{}`: {e}", path.display())))?,
        (None, Some(url), Some(key)) => {
            let store = crate::store::connect(url).await?;
            match store.read(key.as_bytes()).await? {
                Some((bytes, _)) => bytes,
                None => return Err(CliError::Usage(format!("no key `{key}` in the store"))),
            }
        }
        _ => return Err(CliError::Usage("give a FILE, or --store and --key".into())),
    };
    print!("{}", describe(&bytes)?);
    Ok(ExitCode::SUCCESS)
}

/// Describes one stored value (see the [module docs](self)).
///
/// # Errors
///
/// [`CliError::Usage`] with the reason the bytes do not decode: bad magic, unsupported
/// version, truncation, checksum mismatch, or contents its type's decoder refuses.
pub fn describe(bytes: &[u8]) -> Result<String, CliError> {
    if bytes.first() == Some(&b'{') {
        return describe_spec(bytes);
    }
    let env = Envelope::parse(bytes, &Limits::default())
        .map_err(|e| CliError::Usage(format!("not a valid shardfold value: {e}")))?;
    let mut t = String::new();
    let crc = bytes
        .get(bytes.len().saturating_sub(4)..)
        .and_then(|b| <[u8; 4]>::try_from(b).ok())
        .map_or(0, u32::from_le_bytes);
    let _ = writeln!(
        t,
        "envelope: {} bytes, format version {}, type 0x{:04X} ({}), params {} bytes, payload {} bytes, crc32c 0x{crc:08X} (ok)",
        bytes.len(),
        env.version,
        env.type_tag,
        tags::name(env.type_tag),
        env.params.len(),
        env.payload.len(),
    );
    if !env.params.is_empty() {
        let shown = env.params.len().min(48);
        let hex: String = env.params[..shown]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let more = if shown < env.params.len() { "…" } else { "" };
        let _ = writeln!(t, "params: {hex}{more}");
    }
    summary(bytes, &env, &mut t).map_err(|e| {
        CliError::Usage(format!(
            "{} value does not decode: {e}",
            tags::name(env.type_tag)
        ))
    })?;
    Ok(t)
}

fn describe_spec(bytes: &[u8]) -> Result<String, CliError> {
    let spec: MetricSpec = serde_json::from_slice(bytes).map_err(|e| {
        CliError::Usage(format!(
            "not a shardfold value nor a CLI metric description: {e}"
        ))
    })?;
    spec.validate()?;
    Ok(format!(
        "CLI metric description (version {}): window {}, horizon {}, retention {}, shards {}, \
         HLL precision {}, t-digest compression {}, log-histogram alpha {}, group by {}, max keys {}\n",
        spec.version,
        format_duration_ms(spec.window_ms),
        format_duration_ms(spec.horizon_ms),
        format_duration_ms(spec.retention_ms),
        spec.shards,
        spec.precision,
        spec.compression,
        spec.alpha,
        spec.group_by.as_deref().unwrap_or("(none)"),
        spec.max_keys
    ))
}

fn agg_line(a: &CliAgg) -> String {
    let q = |x: crate::Result<Option<f64>>| x.ok().flatten().map_or("-".into(), |v| v.to_string());
    format!(
        "events {}, values {}, sum {}, min {}, max {}, distinct ≈{}, p50 {}, p99 {} (t-digest δ={}), p99 {} (log histogram α={}), HLL p={}",
        a.events.get(),
        a.stats.count(),
        a.stats.sum(),
        a.stats.min().map_or("-".into(), |v| v.to_string()),
        a.stats.max().map_or("-".into(), |v| v.to_string()),
        a.distinct.count(),
        q(a.tdigest.quantile(0.5)),
        q(a.tdigest.quantile(0.99)),
        a.tdigest.compression(),
        q(a.loghist.quantile(0.99)),
        a.loghist.alpha(),
        a.distinct.precision(),
    )
}

fn summary(bytes: &[u8], env: &Envelope<'_>, t: &mut String) -> crate::Result<()> {
    let line = match env.type_tag {
        tags::STRUCT => match codec::decode::<CliAgg>(bytes) {
            Ok(a) => format!("CLI metric aggregate: {}", agg_line(&a)),
            Err(crate::Error::IncompatibleParams { .. }) => {
                "a struct of aggregates of another schema (not the CLI metric's)".into()
            }
            Err(e) => return Err(e),
        },
        tags::KEYED => match codec::decode::<Keyed<String, CliAgg>>(bytes) {
            Ok(k) => {
                let mut s = format!(
                    "CLI metric grouped aggregate: {} keys{}, total: {}",
                    k.len(),
                    if k.other().is_some() {
                        " (+ overflow)"
                    } else {
                        ""
                    },
                    agg_line(&k.total()?)
                );
                for (key, a) in k.top_by(5, |a| a.events.get()) {
                    let _ = write!(s, "\n  key {key:?}: {} events", a.events.get());
                }
                s
            }
            Err(crate::Error::IncompatibleParams { .. } | crate::Error::WrongType { .. }) => {
                "a grouped aggregate of another type".into()
            }
            Err(e) => return Err(e),
        },
        tags::COUNT => format!("count {}", codec::decode::<Count>(bytes)?.get()),
        tags::SUM_F64 => format!("sum {}", codec::decode::<SumF64>(bytes)?.value()),
        tags::STATS => {
            let s = codec::decode::<Stats>(bytes)?;
            format!(
                "count {}, sum {}, min {:?}, max {:?}",
                s.count(),
                s.sum(),
                s.min(),
                s.max()
            )
        }
        tags::DISTINCT => {
            let d = codec::decode::<Distinct>(bytes)?;
            format!("distinct ≈{} (precision {})", d.count(), d.precision())
        }
        tags::QUANTILES => {
            let q = codec::decode::<Quantiles>(bytes)?;
            format!(
                "{} values, compression {}, p50 {:?}",
                q.count(),
                q.compression(),
                q.quantile(0.5)?
            )
        }
        tags::LOG_HISTOGRAM => {
            let h = codec::decode::<LogHistogram>(bytes)?;
            format!(
                "{} values, alpha {}, p50 {:?}",
                h.count(),
                h.alpha(),
                h.quantile(0.5)?
            )
        }
        tags::SERIES_META => series_meta(env.payload)?,
        tags::SERIES_CURSOR => {
            let mut r = Reader::new(env.payload);
            let (a, b, c) = (r.u64("cursor")?, r.u64("cursor")?, r.u64("cursor")?);
            r.finish("cursor")?;
            format!("series cursor: next bucket to settle {a}, to seal {b}, to evict {c}")
        }
        tags::SERIES_RECORD => series_record(bytes)?,
        tags::SERIES_BASE => series_base(env.payload)?,
        tags::SERIES_IDS => format!(
            "series fingerprint set: {} bytes of Golomb–Rice coded event-ID fingerprints (header and checksum verified)",
            env.payload.len()
        ),
        _ => "no summary for this type".into(),
    };
    let _ = writeln!(t, "{line}");
    Ok(())
}

fn series_meta(payload: &[u8]) -> crate::Result<String> {
    let mut r = Reader::new(payload);
    let mut next = |what| r.u64(what);
    let (w, b, h, ret, g) = (
        next("window")?,
        next("bucket")?,
        next("horizon")?,
        next("retention")?,
        next("grace")?,
    );
    let shards = r.u32("shards")?;
    let tag = r.u16("type tag")?;
    let params = r.section("aggregate params")?;
    r.finish("series meta")?;
    Ok(format!(
        "series meta: window {}, bucket {}, horizon {}, retention {}, grace {}, shards {shards}, aggregate 0x{tag:04X} ({}) with {} bytes of parameters",
        format_duration_ms(w),
        format_duration_ms(b),
        format_duration_ms(h),
        format_duration_ms(ret),
        format_duration_ms(g),
        tags::name(tag),
        params.len()
    ))
}

/// A series base (FORMAT.md, `SERIES_BASE`): its tally, fingerprint-set slots, absorbed
/// records and windows; each window's aggregate (a whole envelope) is checked and, when it is
/// the CLI metric's, summarised.
fn series_base(payload: &[u8]) -> crate::Result<String> {
    let mut r = Reader::new(payload);
    let (folded, duplicates, late, rejected) = (
        r.u64("folded")?,
        r.u64("duplicates")?,
        r.u64("late")?,
        r.u64("rejected")?,
    );
    let slots = r.u32("fingerprint-set slots")?;
    let mut sets = 0u32;
    for _ in 0..slots {
        match r.u8("fingerprint-set slot flag")? {
            0 => {}
            1 => {
                r.take(16, "fingerprint-set id")?;
                sets += 1;
            }
            other => {
                return Err(crate::Error::invalid_state(format!(
                    "fingerprint-set slot flag {other} (0 or 1)"
                )));
            }
        }
    }
    let records = r.u32("absorbed records")?;
    r.take(16 * records as usize, "absorbed record ids")?;
    let windows = r.u32("windows")?;
    let mut s = format!(
        "series base: folded {folded}, duplicates {duplicates}, late {late}, rejected {rejected}; \
         {sets} of {slots} shards hold fingerprint sets; {records} records absorbed; {windows} windows"
    );
    for _ in 0..windows {
        let start = r.u64("window start")?;
        let agg = r.section("window aggregate")?;
        let env = Envelope::parse(agg, &Limits::default())?;
        let line = match env.type_tag {
            tags::STRUCT => codec::decode::<CliAgg>(agg).map(|a| agg_line(&a)),
            tags::KEYED => codec::decode::<Keyed<String, CliAgg>>(agg)
                .and_then(|k| Ok(format!("{} keys, {}", k.len(), agg_line(&k.total()?)))),
            other => Ok(format!("{} ({} bytes)", tags::name(other), agg.len())),
        }
        .unwrap_or_else(|e| {
            format!(
                "{} ({} bytes; not the CLI metric's: {e})",
                tags::name(env.type_tag),
                agg.len()
            )
        });
        let _ = write!(s, "\n  window {}: {line}", format_rfc3339_ms(start));
    }
    r.finish("series base")?;
    Ok(s)
}

fn series_record(bytes: &[u8]) -> crate::Result<String> {
    use crate::store::series_wire::record_events;
    let (events, late, kind) = match record_events::<CliEvent>(bytes) {
        Ok((e, l)) => (e, l, "CLI metric"),
        Err(_) => match record_events::<(String, CliEvent)>(bytes) {
            Ok((e, l)) => (e, l, "grouped CLI metric"),
            Err(e) => return Err(e),
        },
    };
    let span = match (
        events.iter().map(|e| e.1).min(),
        events.iter().map(|e| e.1).max(),
    ) {
        (Some(lo), Some(hi)) => format!(
            ", event times {} … {}",
            format_rfc3339_ms(lo),
            format_rfc3339_ms(hi)
        ),
        _ => String::new(),
    };
    Ok(format!(
        "series record ({kind}): {} events, {late} late{span}",
        events.len()
    ))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::merge::Insert;

    #[test]
    fn good_and_damaged_values() {
        let mut a = CliAgg::empty(&MetricSpec::default()).unwrap();
        a.insert(CliEvent {
            value: Some(3.0),
            item: Some("i".into()),
        })
        .unwrap();
        let bytes = codec::encode(&a);
        let text = describe(&bytes).unwrap();
        assert!(text.contains("events 1"), "{text}");
        for cut in [0, 3, 10, bytes.len() / 2, bytes.len() - 1] {
            let e = describe(&bytes[..cut]).unwrap_err().to_string();
            assert!(!e.contains('\n'), "{e}");
        }
        let mut flipped = bytes.clone();
        let mid = flipped.len() / 2;
        flipped[mid] ^= 0x40;
        assert!(describe(&flipped).is_err());
    }
}
