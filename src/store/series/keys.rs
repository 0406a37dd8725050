//! Key names of a series (see the layout in the [module docs](super)). Fixed-width hex keeps
//! byte order equal to numeric order, so listing a directory returns records in key order.

use crate::store::KvStore;

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

    /// `<m>/cursor`: how far sealing and eviction have swept.
    pub(crate) fn cursor(&self) -> Vec<u8> {
        self.with("cursor")
    }

    /// `<m>/b/<bucket>/`: the directory of a bucket's bases.
    pub(crate) fn base_dir(&self, bucket: u64) -> Vec<u8> {
        self.with(&format!("b/{bucket:016x}/"))
    }

    /// `<m>/b/<bucket>/<shard>`: the base state of one shard of a bucket.
    pub(crate) fn base(&self, bucket: u64, shard: u32) -> Vec<u8> {
        self.with(&format!("b/{bucket:016x}/{shard:04x}"))
    }

    /// `<m>/i/<bucket>/`: the directory of a bucket's fingerprint sets.
    pub(crate) fn ids_dir(&self, bucket: u64) -> Vec<u8> {
        self.with(&format!("i/{bucket:016x}/"))
    }

    /// `<m>/i/<bucket>/<shard>/<set id>`: one immutable fingerprint set of a shard's base.
    pub(crate) fn ids(&self, bucket: u64, shard: u32, id: u128) -> Vec<u8> {
        self.with(&format!("i/{bucket:016x}/{shard:04x}/{id:032x}"))
    }

    /// `<m>/r/<bucket>/`: the directory of a bucket's pending records.
    pub(crate) fn record_dir(&self, bucket: u64) -> Vec<u8> {
        self.with(&format!("r/{bucket:016x}/"))
    }

    /// `<m>/r/<bucket>/<record id>`: one appended record.
    pub(crate) fn record(&self, bucket: u64, id: u128) -> Vec<u8> {
        self.with(&format!("r/{bucket:016x}/{id:032x}"))
    }

    /// The record id at the end of a key listed under [`record_dir`](Self::record_dir).
    pub(crate) fn record_id(&self, bucket: u64, key: &[u8]) -> Option<u128> {
        let dir = self.record_dir(bucket);
        let hex = key.strip_prefix(dir.as_slice())?;
        if hex.len() != 32 {
            return None;
        }
        u128::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()
    }
}
