//! Duration flags (`500ms`, `60s`, `5m`, `6h`, `7d`): parsed and spelled back.

/// Parses a duration flag: a non-negative integer and a unit, `ms`, `s`, `m`, `h` or `d`
/// (`500ms`, `60s`, `6h`, `7d`), in milliseconds.
///
/// # Errors
///
/// A message naming what is wrong (no unit, unknown unit, overflow).
pub fn parse_duration_ms(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    if digits.is_empty() {
        return Err(format!(
            "`{text}`: expected a number and a unit (60s, 6h, 7d, 500ms)"
        ));
    }
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("`{text}`: number too large"))?;
    let scale: u64 = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        "" => return Err(format!("`{text}`: missing unit (ms, s, m, h or d)")),
        other => {
            return Err(format!(
                "`{text}`: unknown unit `{other}` (ms, s, m, h or d)"
            ));
        }
    };
    n.checked_mul(scale)
        .ok_or_else(|| format!("`{text}`: too long"))
}

/// Spells milliseconds with the largest unit that divides them exactly (`60000` → `1m`).
pub fn format_duration_ms(ms: u64) -> String {
    for (unit, scale) in [
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1_000),
    ] {
        if ms > 0 && ms.is_multiple_of(scale) {
            return format!("{}{unit}", ms / scale);
        }
    }
    format!("{ms}ms")
}
