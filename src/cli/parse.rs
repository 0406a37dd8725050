//! Parsing what the CLI reads: duration flags (`500ms`, `60s`, `5m`, `6h`, `7d`), RFC 3339
//! timestamps, and NDJSON event lines.
//!
//! # Event lines
//!
//! One JSON object per line:
//!
//! ```text
//! {"id": "e1", "ts": 1767225600000, "value": 12.5, "item": "user-7", "partition": "p0", "seq": 42, "route": "/a"}
//! ```
//!
//! * `id` (string, required, non-empty);
//! * `ts`: integer milliseconds since the Unix epoch, or an RFC 3339 string
//!   (`2026-01-01T00:00:00.250Z`, `2026-01-01T01:00:00+01:00`; fractions beyond milliseconds
//!   are truncated; leap seconds are refused);
//! * `value` (number), `item` (string): optional, `null` means absent;
//! * `partition` (string) and `seq` (string or non-negative integer): optional. An event with
//!   both is deduplicated by `(partition, seq)` — its event ID is derived from them, so two
//!   deliveries of sequence 42 of partition `p0` count once whatever their `id` (the
//!   `Series` dedups by ID: this is ID-dedup keyed by the sequence, safe with any number of
//!   parallel writers and with out-of-order delivery, unlike a high-water mark). The integer
//!   `42` and the string `"42"` are the same sequence. Others are deduplicated by `id`;
//!   Either way a redelivery must carry the same `ts`: the series remembers IDs per
//!   event-time bucket, so the same ID at a time in another bucket is another event;
//! * any other field may be the `--group-by` field: a string is the key as is, a number or
//!   boolean its JSON text; a missing or `null` field is the key `""`.

use crate::EventId;

pub use super::duration::{format_duration_ms, parse_duration_ms};
use super::metric::CliEvent;

/// Parses a `--from`/`--to` time: integer milliseconds since the epoch or RFC 3339.
///
/// # Errors
///
/// As [`parse_rfc3339_ms`].
pub fn parse_time_flag(text: &str) -> Result<u64, String> {
    let t = text.trim();
    if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) {
        return t.parse().map_err(|_| format!("`{text}`: too large"));
    }
    parse_rfc3339_ms(t)
}

fn digits(s: &[u8], at: usize, n: usize) -> Option<u64> {
    let part = s.get(at..at + n)?;
    part.iter().try_fold(0u64, |acc, &b| {
        b.is_ascii_digit().then(|| acc * 10 + u64::from(b - b'0'))
    })
}

fn expect(s: &[u8], at: usize, allowed: &[u8]) -> Option<()> {
    s.get(at).filter(|b| allowed.contains(b)).map(|_| ())
}

/// Days from 1970-01-01 to the given civil date (proleptic Gregorian), for years ≥ 1970.
fn days_from_civil(y: u64, m: u64, d: u64) -> u64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn days_in_month(y: u64, m: u64) -> u64 {
    match m {
        2 if (y.is_multiple_of(4) && !y.is_multiple_of(100)) || y.is_multiple_of(400) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Parses an RFC 3339 date-time (`YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)`, `T` or a space
/// between date and time) into milliseconds since the Unix epoch, truncating the fraction to
/// milliseconds.
///
/// # Errors
///
/// A message naming the first problem: the shape, a field out of range (month 13, February 30,
/// hour 24, second 60: leap seconds are refused), a missing offset, or a time before 1970.
pub fn parse_rfc3339_ms(text: &str) -> Result<u64, String> {
    let s = text.as_bytes();
    let bad = |what: &str| format!("`{text}` is not an RFC 3339 time: {what}");
    let shape = || bad("expected YYYY-MM-DDTHH:MM:SS[.fff](Z|±HH:MM)");
    let field = |at, n| digits(s, at, n).ok_or_else(shape);
    let (y, mo, d) = (field(0, 4)?, field(5, 2)?, field(8, 2)?);
    expect(s, 4, b"-").ok_or_else(shape)?;
    expect(s, 7, b"-").ok_or_else(shape)?;
    expect(s, 10, b"Tt ").ok_or_else(shape)?;
    let (h, mi, se) = (field(11, 2)?, field(14, 2)?, field(17, 2)?);
    expect(s, 13, b":").ok_or_else(shape)?;
    expect(s, 16, b":").ok_or_else(shape)?;
    if !(1..=12).contains(&mo) || d == 0 || d > days_in_month(y, mo) {
        return Err(bad("no such date"));
    }
    if h > 23 || mi > 59 {
        return Err(bad("hour or minute out of range"));
    }
    if se > 59 {
        return Err(bad("second out of range (leap seconds are not supported)"));
    }
    let mut at = 19;
    let mut ms = 0u64;
    if s.get(at) == Some(&b'.') {
        at += 1;
        let start = at;
        while s.get(at).is_some_and(u8::is_ascii_digit) {
            if at - start < 3 {
                ms = ms * 10 + u64::from(s[at] - b'0');
            }
            at += 1;
        }
        if at == start {
            return Err(bad("empty fraction"));
        }
        for _ in (at - start)..3 {
            ms *= 10;
        }
    }
    let offset_min: i64 = match s.get(at) {
        Some(b'Z' | b'z') if s.len() == at + 1 => 0,
        Some(&sign @ (b'+' | b'-')) if s.len() == at + 6 => {
            expect(s, at + 3, b":").ok_or_else(shape)?;
            let (oh, om) = (field(at + 1, 2)?, field(at + 4, 2)?);
            if oh > 23 || om > 59 {
                return Err(bad("offset out of range"));
            }
            let m = (oh * 60 + om) as i64;
            if sign == b'-' { -m } else { m }
        }
        None => return Err(bad("missing offset (Z or ±HH:MM)")),
        _ => return Err(shape()),
    };
    if y < 1970 {
        return Err(bad("before 1970"));
    }
    let secs = days_from_civil(y, mo, d) * 86_400 + h * 3_600 + mi * 60 + se;
    let local_ms = (secs * 1_000 + ms) as i64;
    let utc = local_ms - offset_min * 60_000;
    u64::try_from(utc).map_err(|_| bad("before 1970"))
}

/// One parsed event line.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedEvent {
    /// The dedup ID: from `id`, or from `(partition, seq)` when both are present.
    pub id: EventId,
    /// Event time, ms since the epoch.
    pub time_ms: u64,
    /// What the metric is fed.
    pub event: CliEvent,
    /// The group-by key, when a group-by field was asked for.
    pub group: Option<String>,
}

/// The event ID of sequence `seq` of `partition`.
pub fn sequence_id(partition: &str, seq: &str) -> EventId {
    let mut bytes = Vec::with_capacity(partition.len() + seq.len() + 5);
    bytes.extend_from_slice(b"seq\0");
    bytes.extend_from_slice(partition.as_bytes());
    bytes.push(0);
    bytes.extend_from_slice(seq.as_bytes());
    EventId::from_bytes(&bytes)
}

type Obj = serde_json::Map<String, serde_json::Value>;

fn opt<'a>(o: &'a Obj, key: &str) -> Option<&'a serde_json::Value> {
    o.get(key).filter(|v| !v.is_null())
}

fn opt_str(o: &Obj, key: &str) -> Result<Option<String>, String> {
    match opt(o, key) {
        None => Ok(None),
        Some(serde_json::Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(format!("`{key}` must be a string")),
    }
}

fn parse_ts(o: &Obj) -> Result<u64, String> {
    match opt(o, "ts") {
        None => Err("missing `ts`".into()),
        Some(serde_json::Value::Number(n)) => n
            .as_u64()
            .ok_or_else(|| format!("`ts` {n} must be a non-negative integer of milliseconds")),
        Some(serde_json::Value::String(s)) => parse_rfc3339_ms(s),
        Some(_) => Err("`ts` must be an integer or an RFC 3339 string".into()),
    }
}

fn parse_seq(o: &Obj) -> Result<Option<String>, String> {
    match opt(o, "seq") {
        None => Ok(None),
        Some(serde_json::Value::String(s)) => Ok(Some(s.clone())),
        Some(serde_json::Value::Number(n)) => n
            .as_u64()
            .map(|v| Some(v.to_string()))
            .ok_or_else(|| format!("`seq` {n} must be a non-negative integer or a string")),
        Some(_) => Err("`seq` must be a string or an integer".into()),
    }
}

fn group_key(o: &Obj, field: &str) -> Result<String, String> {
    match opt(o, field) {
        None => Ok(String::new()),
        Some(serde_json::Value::String(s)) => Ok(s.clone()),
        Some(v @ (serde_json::Value::Number(_) | serde_json::Value::Bool(_))) => Ok(v.to_string()),
        Some(_) => Err(format!(
            "group-by field `{field}` must be a string, number or boolean"
        )),
    }
}

/// Parses one NDJSON line (see the [module docs](self)); `group_by` names the group-by field.
///
/// # Errors
///
/// A one-line reason: not JSON, not an object, a missing or mistyped field.
pub fn parse_line(line: &str, group_by: Option<&str>) -> Result<ParsedEvent, String> {
    let v: serde_json::Value =
        serde_json::from_str(line).map_err(|e| format!("invalid JSON: {e}"))?;
    let serde_json::Value::Object(o) = v else {
        return Err("not a JSON object".into());
    };
    let id = match opt_str(&o, "id")? {
        Some(id) if !id.is_empty() => id,
        Some(_) => return Err("`id` is empty".into()),
        None => return Err("missing `id`".into()),
    };
    let time_ms = parse_ts(&o)?;
    let value = match opt(&o, "value") {
        None => None,
        Some(serde_json::Value::Number(n)) => Some(
            n.as_f64()
                .filter(|x| x.is_finite())
                .ok_or_else(|| format!("`value` {n} is not a finite number"))?,
        ),
        Some(_) => return Err("`value` must be a number".into()),
    };
    let item = opt_str(&o, "item")?;
    let partition = opt_str(&o, "partition")?;
    let seq = parse_seq(&o)?;
    let id = match (&partition, &seq) {
        (Some(p), Some(s)) => sequence_id(p, s),
        _ => EventId::new(id.as_str()),
    };
    let group = group_by.map(|f| group_key(&o, f)).transpose()?;
    Ok(ParsedEvent {
        id,
        time_ms,
        event: CliEvent { value, item },
        group,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration_ms("500ms"), Ok(500));
        assert_eq!(parse_duration_ms("60s"), Ok(60_000));
        assert_eq!(parse_duration_ms("6h"), Ok(21_600_000));
        assert_eq!(parse_duration_ms("7d"), Ok(604_800_000));
        assert!(parse_duration_ms("60").is_err());
        assert!(parse_duration_ms("s").is_err());
        assert!(parse_duration_ms("1w").is_err());
        assert!(parse_duration_ms("99999999999999999999d").is_err());
        for ms in [1, 500, 1_000, 60_000, 90_000, 3_600_000, 86_400_000] {
            assert_eq!(parse_duration_ms(&format_duration_ms(ms)), Ok(ms));
        }
    }

    #[test]
    fn rfc3339_against_days_count() {
        assert_eq!(parse_rfc3339_ms("1970-01-01T00:00:00Z"), Ok(0));
        // 2000-03-01: 11 017 days after the epoch
        assert_eq!(
            parse_rfc3339_ms("2000-03-01T00:00:00.5Z"),
            Ok(11_017 * 86_400_000 + 500)
        );
        assert_eq!(
            parse_rfc3339_ms("2026-01-01T01:00:00.123456+01:00"),
            parse_rfc3339_ms("2026-01-01T00:00:00.123Z")
        );
        assert_eq!(
            parse_rfc3339_ms("2024-02-29t23:59:59-00:30"),
            parse_rfc3339_ms("2024-03-01T00:29:59Z")
        );
        for bad in [
            "2023-02-29T00:00:00Z",
            "2026-13-01T00:00:00Z",
            "2026-01-01T24:00:00Z",
            "2026-01-01T00:00:60Z",
            "2026-01-01T00:00:00",
            "2026-01-01T00:00:00.Z",
            "2026-01-01",
            "1969-12-31T23:59:59Z",
            "1970-01-01T00:00:00+01:00",
            "2026-01-01T00:00:00Zjunk",
        ] {
            assert!(parse_rfc3339_ms(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn lines() {
        let e = parse_line(
            r#"{"id":"a","ts":"2026-01-01T00:00:00Z","value":2,"item":"u","route":7}"#,
            Some("route"),
        )
        .unwrap();
        assert_eq!(e.id, EventId::new("a"));
        assert_eq!(e.event.value, Some(2.0));
        assert_eq!(e.group.as_deref(), Some("7"));
        let s1 = parse_line(r#"{"id":"x","ts":5,"partition":"p","seq":42}"#, None).unwrap();
        let s2 = parse_line(r#"{"id":"y","ts":5,"partition":"p","seq":"42"}"#, None).unwrap();
        assert_eq!(s1.id, s2.id);
        assert_ne!(s1.id, EventId::new("x"));
        for bad in [
            "not json",
            "[1]",
            r#"{"ts":1}"#,
            r#"{"id":"a"}"#,
            r#"{"id":"a","ts":-1}"#,
            r#"{"id":"a","ts":1.5}"#,
            r#"{"id":"a","ts":1,"value":"3"}"#,
            r#"{"id":"a","ts":1,"item":3}"#,
            r#"{"id":"a","ts":1,"seq":-2,"partition":"p"}"#,
        ] {
            assert!(parse_line(bad, None).is_err(), "{bad}");
        }
    }
}
