//! Key names of a series (see the layout in the [module docs](super)). Fixed-width hex keeps
//! byte order equal to numeric order, so listing a directory returns records in key order.
//!
//! A bucket `b` is spelt `<b >> 8 as 14 hex digits>/<b & 0xff as 2 hex digits>`: each kind of
//! key (`b` bases, `i` fingerprint sets, `r` records) has one directory per group of 256
//! consecutive buckets, so a sweep over many buckets lists a few directories, not one per
//! bucket (every backend lists whole directories cheaply; NATS only those).

use crate::store::KvStore;

/// The kinds of per-bucket keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// `<m>/b/…`: bases.
    Base,
    /// `<m>/i/…`: fingerprint sets.
    Ids,
    /// `<m>/r/…`: appended records.
    Record,
}

impl Kind {
    fn letter(self) -> char {
        match self {
            Kind::Base => 'b',
            Kind::Ids => 'i',
            Kind::Record => 'r',
        }
    }
}

/// Buckets per group directory.
pub(crate) const GROUP: u64 = 256;

/// The store keys of one series.
#[derive(Debug, Clone)]
pub(crate) struct Keys {
    /// `<metric>/` as the store spells it (Redis adds a hash tag).
    root: Vec<u8>,
}

impl Keys {
    pub(crate) fn new(store: &dyn KvStore, metric: &str) -> Self {
        let mut root = store.metric_key(metric, "");
        // `metric_key(m, "")` ends with the separator: `<m>/` (or `{<m>}/`)
        if root.last() != Some(&b'/') {
            root.push(b'/');
        }
        Keys { root }
    }

    fn with(&self, rest: &str) -> Vec<u8> {
        let mut k = self.root.clone();
        k.extend_from_slice(rest.as_bytes());
        k
    }

    /// `<m>/meta`: the series' parameters.
    pub(crate) fn meta(&self) -> Vec<u8> {
        self.with("meta")
    }

    /// `<m>/cursor`: how far settling, sealing and eviction have swept.
    pub(crate) fn cursor(&self) -> Vec<u8> {
        self.with("cursor")
    }

    /// `<m>/p/<group>`: which bucket bases of a group of 256 buckets were written.
    pub(crate) fn presence(&self, group: u64) -> Vec<u8> {
        self.with(&format!("p/{group:014x}"))
    }

    /// `<m>/<kind>/<group>/`: the keys of a kind for 256 consecutive buckets.
    pub(crate) fn group_dir(&self, kind: Kind, group: u64) -> Vec<u8> {
        self.with(&format!("{}/{group:014x}/", kind.letter()))
    }

    /// `<m>/<kind>/<group>/<low>/`: the keys of a kind for one bucket.
    pub(crate) fn dir(&self, kind: Kind, bucket: u64) -> Vec<u8> {
        let (g, lo) = (bucket / GROUP, bucket % GROUP);
        self.with(&format!("{}/{g:014x}/{lo:02x}/", kind.letter()))
    }

    fn in_dir(&self, kind: Kind, bucket: u64, rest: &str) -> Vec<u8> {
        let mut k = self.dir(kind, bucket);
        k.extend_from_slice(rest.as_bytes());
        k
    }

    /// The base state of a bucket.
    pub(crate) fn base(&self, bucket: u64) -> Vec<u8> {
        self.in_dir(Kind::Base, bucket, "base")
    }

    /// One immutable fingerprint set of a shard's base.
    pub(crate) fn ids(&self, bucket: u64, shard: u32, id: u128) -> Vec<u8> {
        self.in_dir(Kind::Ids, bucket, &format!("{shard:04x}/{id:032x}"))
    }

    /// One appended record.
    pub(crate) fn record(&self, bucket: u64, id: u128) -> Vec<u8> {
        self.in_dir(Kind::Record, bucket, &format!("{id:032x}"))
    }

    /// The bucket of a key of `kind` (listed under a group directory).
    pub(crate) fn bucket_of_key(&self, kind: Kind, key: &[u8]) -> Option<u64> {
        let rest = key.strip_prefix(self.root.as_slice())?;
        let rest = rest.strip_prefix(format!("{}/", kind.letter()).as_bytes())?;
        let (g, rest) = (rest.get(..14)?, rest.get(14..)?);
        let (lo, rest) = (rest.get(1..3)?, rest.get(3..)?);
        if !key.ends_with(b"/") && rest.first() == Some(&b'/') {
            let g = u64::from_str_radix(std::str::from_utf8(g).ok()?, 16).ok()?;
            let lo = u64::from_str_radix(std::str::from_utf8(lo).ok()?, 16).ok()?;
            return g.checked_mul(GROUP)?.checked_add(lo);
        }
        None
    }

    /// The record id at the end of a key listed under [`dir`](Self::dir)`(Record, bucket)`.
    pub(crate) fn record_id(&self, bucket: u64, key: &[u8]) -> Option<u128> {
        let dir = self.dir(Kind::Record, bucket);
        let hex = key.strip_prefix(dir.as_slice())?;
        if hex.len() != 32 {
            return None;
        }
        u128::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MemoryStore;

    #[test]
    fn keys_parse_back_to_their_bucket() {
        let k = Keys::new(&MemoryStore::new(), "m");
        for b in [0u64, 255, 256, 29_999_999, (1 << 56) - 1] {
            assert_eq!(k.bucket_of_key(Kind::Base, &k.base(b)), Some(b));
            assert_eq!(k.bucket_of_key(Kind::Ids, &k.ids(b, 3, 9)), Some(b));
            assert_eq!(k.bucket_of_key(Kind::Record, &k.record(b, 7)), Some(b));
            assert_eq!(k.record_id(b, &k.record(b, 7)), Some(7));
            assert!(
                k.record(b, 7)
                    .starts_with(&k.group_dir(Kind::Record, b / GROUP))
            );
        }
        assert_eq!(k.bucket_of_key(Kind::Record, &k.base(5)), None);
        assert_eq!(k.bucket_of_key(Kind::Base, b"m/b/short"), None);
    }
}
