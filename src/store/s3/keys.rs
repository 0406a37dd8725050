//! Store keys (arbitrary bytes) ↔ object paths: a reversible escaping that keeps `/` as the
//! directory separator and preserves byte order.
//!
//! A key is split on `/` and each segment is written as a sequence of per-byte codes:
//!
//! | bytes | code | lead |
//! |---|---|---|
//! | `0x00`–`0x2C` | `!HH` | `!` (0x21) |
//! | `-` | itself | |
//! | `.` | `.2E` | `.` (0x2E) |
//! | `0`–`9` | itself | |
//! | `0x3A`–`0x40` (`:;<=>?@`) | `=HH` | `=` (0x3D) |
//! | `A`–`Z` | itself | |
//! | `0x5B`–`0x60` (`` [\]^_` ``) | `_HH` | `_` (0x5F) |
//! | `a`–`z` | itself | |
//! | `0x7B`–`0xFF` | `~HH` | `~` (0x7E) |
//!
//! (`HH`: the byte in uppercase hex.) Each escaped range has a lead character that lies inside
//! the range itself, between the kept characters below and above it, and no code is a prefix of
//! another: comparing two escaped keys therefore compares the original bytes, so the store's
//! listing order (bytes of the object key) is the keys' order. An empty segment (`a//b`, a
//! trailing `/`, the empty key) has no bytes to code: a last one is written `!` (below every
//! code, as the end of a key is below every byte), any other `.z` (between `.2E` and `0`, as
//! the `/` that follows it lies between `.` and `0`). Every segment is then non-empty, never
//! `.` or `..`, and ASCII without control characters: a valid object path segment. Examples:
//! `{m}/0` → `~7Bm~7D/0`, `a//b` → `a/.z/b`, `p/a/` → `p/a/!`, `v1.2` → `v1.2E2`.

/// Escapes `key` into an object path relative to the store's prefix (see the module docs).
pub(crate) fn escape(key: &[u8]) -> String {
    let mut out = String::with_capacity(key.len() + 8);
    let segments: Vec<&[u8]> = key.split(|&b| b == b'/').collect();
    for (i, segment) in segments.iter().enumerate() {
        if i > 0 {
            out.push('/');
        }
        escape_segment(segment, i + 1 == segments.len(), &mut out);
    }
    out
}

/// The escaped path of the "directory" holding every key that starts with `prefix`: the
/// segments before the last `/` of `prefix`, or `None` when `prefix` has no `/` (the whole
/// store). A listing of that directory (which ends where `/` follows) holds every such key.
pub(crate) fn directory(prefix: &[u8]) -> Option<String> {
    let slash = prefix.iter().rposition(|&b| b == b'/')?;
    let mut out = String::with_capacity(slash + 8);
    for (i, segment) in prefix[..slash].split(|&b| b == b'/').enumerate() {
        if i > 0 {
            out.push('/');
        }
        escape_segment(segment, false, &mut out);
    }
    Some(out)
}

fn escape_segment(segment: &[u8], last: bool, out: &mut String) {
    if segment.is_empty() {
        out.push_str(if last { "!" } else { ".z" });
    }
    for &b in segment {
        match lead(b) {
            None => out.push(char::from(b)),
            Some(lead) => {
                out.push(char::from(lead));
                out.push(char::from(HEX[usize::from(b >> 4)]));
                out.push(char::from(HEX[usize::from(b & 0xF)]));
            }
        }
    }
}

const HEX: &[u8; 16] = b"0123456789ABCDEF";

/// The lead character of byte `b`'s code, or `None` when `b` is kept as itself.
fn lead(b: u8) -> Option<u8> {
    match b {
        b'-' | b'0'..=b'9' | b'A'..=b'Z' | b'a'..=b'z' => None,
        0x00..=0x2C => Some(b'!'),
        b'.' => Some(b'.'),
        0x3A..=0x40 => Some(b'='),
        0x5B..=0x60 => Some(b'_'),
        _ => Some(b'~'), // 0x7B..=0xFF; `/` never reaches here
    }
}

/// The key [`escape`] turned into `path`; `None` for a path it never produces (another
/// program's object under the store's prefix).
pub(crate) fn unescape(path: &str) -> Option<Vec<u8>> {
    let segments: Vec<&str> = path.split('/').collect();
    let mut key = Vec::with_capacity(path.len());
    for (i, segment) in segments.iter().enumerate() {
        if i > 0 {
            key.push(b'/');
        }
        let last = i + 1 == segments.len();
        match (*segment, last) {
            ("!", true) | (".z", false) => continue,
            _ => unescape_segment(segment.as_bytes(), &mut key)?,
        }
    }
    // only the canonical form maps back (no escaped kept byte, no lowercase hex)
    (escape(&key) == path).then_some(key)
}

fn unescape_segment(mut s: &[u8], key: &mut Vec<u8>) -> Option<()> {
    if s.is_empty() {
        return None;
    }
    while let Some((&c, rest)) = s.split_first() {
        if lead(c).is_none() && c != b'/' {
            key.push(c);
            s = rest;
            continue;
        }
        let [hi, lo, rest @ ..] = rest else {
            return None;
        };
        let b = (hex(*hi)? << 4) | hex(*lo)?;
        if lead(b) != Some(c) {
            return None;
        }
        key.push(b);
        s = rest;
    }
    Some(())
}

fn hex(digit: u8) -> Option<u8> {
    HEX.iter()
        .position(|&h| h == digit)
        .and_then(|d| u8::try_from(d).ok())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use proptest::prelude::*;

    use super::{directory, escape, unescape};

    /// Every segment is a valid object path segment (object_store's `Path::parse` rules, and
    /// characters an S3 key holds without trouble).
    fn assert_valid(e: &str) {
        for segment in e.split('/') {
            assert!(!segment.is_empty(), "empty segment in {e:?}");
            assert!(segment != "." && segment != "..", "{e:?}");
            assert!(
                segment
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"!-.=_~".contains(&b)),
                "{e:?}"
            );
        }
    }

    #[test]
    fn examples() {
        assert_eq!(escape(b"{m}/0"), "~7Bm~7D/0");
        assert_eq!(escape(b"a//b"), "a/.z/b");
        assert_eq!(escape(b"p/a/"), "p/a/!");
        assert_eq!(escape(b""), "!");
        assert_eq!(escape(b"/"), ".z/!");
        assert_eq!(escape(b"v1.2"), "v1.2E2");
        assert_eq!(escape(b"t-s3-12/b/0"), "t-s3-12/b/0");
        assert_eq!(escape(b"."), ".2E");
        assert_eq!(escape(b".."), ".2E.2E");
        assert_eq!(escape(b"\x00\xff a"), "!00~FF!20a");
        assert_eq!(escape(b"x:y_z"), "x=3Ay_5Fz");
    }

    #[test]
    fn the_conformance_keys_are_distinct_ordered_and_round_trip() {
        let keys: [&[u8]; 22] = [
            b"",
            b"/",
            b"//",
            b"a",
            b"a/",
            b"a//",
            b"a//z",
            b"a/\x00",
            b"a/\xff\xfe",
            b"a/\xff",
            b"a/a.b*>",
            b"a/=2F",
            b"a/sp ace/\xc3\xa9",
            b"a/b/y",
            b"a/x",
            b"ab",
            b"{x}*>",
            b"..",
            b".",
            b"a.b",
            b"a=2Eb",
            b"a=2eb",
        ];
        let mut sorted = keys.to_vec();
        sorted.sort();
        let escaped: Vec<String> = sorted.iter().map(|k| escape(k)).collect();
        for (k, e) in sorted.iter().zip(&escaped) {
            assert_valid(e);
            assert_eq!(unescape(e).as_deref(), Some(*k), "{e}");
        }
        for pair in escaped.windows(2) {
            assert!(pair[0] < pair[1], "order: {:?} then {:?}", pair[0], pair[1]);
        }
    }

    #[test]
    fn only_canonical_escapes_unescape() {
        for bad in [
            "", "a//b", "a/", "!/a", ".z", "a/.z", "!2", "!2D", "!7B", "~00", ".2F", "_41", "=7E",
            "!0a", "~fF", "a*", "a b", "a%20", ".", "..", "!!", ".zz/a",
        ] {
            assert_eq!(unescape(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn a_directory_is_a_path_prefix_of_its_keys() {
        assert_eq!(directory(b"p/a/"), Some("p/a".to_owned()));
        assert_eq!(directory(b"p/a/x"), Some("p/a".to_owned()));
        assert_eq!(directory(b"p//"), Some("p/.z".to_owned()));
        assert_eq!(directory(b"/"), Some(".z".to_owned()));
        assert_eq!(directory(b"p"), None);
        assert_eq!(directory(b""), None);
        for (prefix, key) in [
            (&b"p/a/"[..], &b"p/a/"[..]),
            (b"p/a/", b"p/a//z"),
            (b"p/a/\xff", b"p/a/\xff\xfe"),
            (b"p//", b"p//"),
            (b"p//", b"p///q"),
            (b"/", b"/x"),
        ] {
            let dir = directory(prefix).unwrap();
            assert!(escape(key).starts_with(&format!("{dir}/")), "{key:?}");
        }
    }

    /// Keys over an alphabet rich in the bytes at the edges of the escaped ranges.
    fn key() -> impl Strategy<Value = Vec<u8>> {
        let byte = prop_oneof![
            3 => Just(b'/'),
            3 => prop::sample::select(&b"\x00\x2c-.0:@AZ[`az{\xff"[..]),
            2 => any::<u8>(),
        ];
        prop::collection::vec(byte, 0..12)
    }

    proptest! {
        #[test]
        fn escape_round_trips_and_is_valid(k in key()) {
            let e = escape(&k);
            assert_valid(&e);
            prop_assert_eq!(unescape(&e), Some(k));
        }

        #[test]
        fn escape_preserves_byte_order(a in key(), b in key()) {
            prop_assert_eq!(escape(&a).cmp(&escape(&b)), a.cmp(&b), "{:?} {:?}", a, b);
        }

        #[test]
        fn keys_under_a_prefix_lie_in_its_directory(p in key(), rest in key()) {
            let k = [&p[..], &rest[..]].concat();
            if let Some(dir) = directory(&p) {
                let dir = dir + "/";
                prop_assert!(escape(&k).starts_with(&dir), "{:?} {:?}", k, dir);
            }
        }
    }
}
