//! Type tags: which aggregate a blob holds. Part of the format; never reuse a number.
//!
//! A leaf module (it uses nothing of the crate), so that errors can name types.

/// [`Count`](crate::Count).
pub const COUNT: u16 = 0x0001;
/// [`Sum`](crate::Sum) over integers.
pub const SUM_I64: u16 = 0x0002;
/// [`SumF64`](crate::SumF64).
pub const SUM_F64: u16 = 0x0003;
/// [`Min<f64>`](crate::Min).
pub const MIN_F64: u16 = 0x0004;
/// [`Max<f64>`](crate::Max).
pub const MAX_F64: u16 = 0x0005;
/// [`Min<i64>`](crate::Min).
pub const MIN_I64: u16 = 0x0006;
/// [`Max<i64>`](crate::Max).
pub const MAX_I64: u16 = 0x0007;
/// [`Mean`](crate::Mean).
pub const MEAN: u16 = 0x0008;
/// [`Stats`](crate::Stats).
pub const STATS: u16 = 0x0009;
/// [`Distinct`](crate::Distinct) (HyperLogLog).
pub const DISTINCT: u16 = 0x0010;
/// [`Quantiles`](crate::Quantiles) (t-digest).
pub const QUANTILES: u16 = 0x0011;
/// [`LogHistogram`](crate::LogHistogram).
pub const LOG_HISTOGRAM: u16 = 0x0012;
/// [`TopK`](crate::TopK): Misra–Gries heavy hitters (items and counts, sorted by item).
pub const TOP_K: u16 = 0x0013;
/// [`IdDedup`](crate::IdDedup): event-ID fingerprints by event-time slot.
pub const DEDUP_ID: u16 = 0x0020;
/// [`SeqDedup`](crate::SeqDedup): sequence-number high-water marks per partition.
pub const DEDUP_SEQ: u16 = 0x0021;
/// [`Deduped`](crate::Deduped): an aggregate with its dedup state; the aggregate's tag is in
/// its parameter block.
pub const DEDUPED: u16 = 0x0022;
/// [`Windowed`](crate::Windowed): tumbling event-time windows of an aggregate.
pub const WINDOWED: u16 = 0x0023;
/// [`Partials`](crate::agg::Partials): an aggregate fed with whole partial states; the
/// aggregate's tag is in its parameter block.
pub const PARTIALS: u16 = 0x0024;
/// The metadata record of a stored metric (shard count, aggregate type).
pub const STORE_META: u16 = 0x0030;
/// A `store::Snapshot` of a metric's shards (feature `store`).
pub const SNAPSHOT: u16 = 0x0031;
/// The metadata record of a stored series (`store::Series`: windows, horizon,
/// retention, shards, aggregate type and parameters).
pub const SERIES_META: u16 = 0x0032;
/// One appended record of a series bucket: a batch's events, not yet compacted.
pub const SERIES_RECORD: u16 = 0x0033;
/// The base state of one shard of a series bucket: window aggregates, remembered IDs.
pub const SERIES_BASE: u16 = 0x0034;
/// A series' sweep cursor: how far sealing and eviction have gone.
pub const SERIES_CURSOR: u16 = 0x0035;
/// The fingerprints of the events folded into one series base.
pub const SERIES_IDS: u16 = 0x0036;
/// Which shards of a stored metric have been written (`<metric>/present`): a shard key
/// that vanished is reported, not taken for an empty shard.
pub const STORE_PRESENCE: u16 = 0x0037;
/// [`Keyed`](crate::Keyed): one aggregate per group-by key; the aggregate's tag is in its
/// parameter block.
pub const KEYED: u16 = 0x0040;
/// The dedup-by-ID sum used by the store conformance suite (tests only).
pub const CONFORMANCE_ID_SUM: u16 = 0x003F;
/// A tuple of 2 aggregates; its components' tags are in its parameter block.
pub const TUPLE2: u16 = 0x00F2;
/// A tuple of 3 aggregates.
pub const TUPLE3: u16 = 0x00F3;
/// A tuple of 4 aggregates.
pub const TUPLE4: u16 = 0x00F4;
/// A struct of named aggregates (`#[derive(Aggregate)]`, [`Schema`](crate::codec::nested::Schema)):
/// its name and every field's name, tag and parameters are in its parameter block.
pub const STRUCT: u16 = 0x00F8;

/// Every tag this build defines, ascending.
pub const ALL: [u16; 32] = [
    COUNT,
    SUM_I64,
    SUM_F64,
    MIN_F64,
    MAX_F64,
    MIN_I64,
    MAX_I64,
    MEAN,
    STATS,
    DISTINCT,
    QUANTILES,
    LOG_HISTOGRAM,
    TOP_K,
    DEDUP_ID,
    DEDUP_SEQ,
    DEDUPED,
    WINDOWED,
    PARTIALS,
    STORE_META,
    SNAPSHOT,
    SERIES_META,
    SERIES_RECORD,
    SERIES_BASE,
    SERIES_CURSOR,
    SERIES_IDS,
    STORE_PRESENCE,
    CONFORMANCE_ID_SUM,
    KEYED,
    TUPLE2,
    TUPLE3,
    TUPLE4,
    STRUCT,
];

/// The name of the type a tag stands for, for messages: `"Count"`, `"Quantiles"`, `"Keyed"`,
/// `"user type"` for tags `0x8000` and above, `"unknown type"` otherwise.
///
/// ```
/// use shardfold::codec::tags;
/// assert_eq!(tags::name(tags::LOG_HISTOGRAM), "LogHistogram");
/// assert_eq!(tags::name(0x8001), "user type");
/// ```
pub fn name(tag: u16) -> &'static str {
    match tag {
        COUNT => "Count",
        SUM_I64 => "Sum",
        SUM_F64 => "SumF64",
        MIN_F64 => "Min<f64>",
        MAX_F64 => "Max<f64>",
        MIN_I64 => "Min<i64>",
        MAX_I64 => "Max<i64>",
        MEAN => "Mean",
        STATS => "Stats",
        DISTINCT => "Distinct",
        QUANTILES => "Quantiles",
        LOG_HISTOGRAM => "LogHistogram",
        TOP_K => "TopK",
        DEDUP_ID => "IdDedup",
        DEDUP_SEQ => "SeqDedup",
        DEDUPED => "Deduped",
        WINDOWED => "Windowed",
        PARTIALS => "Partials",
        STORE_META => "metric metadata",
        SNAPSHOT => "Snapshot",
        SERIES_META => "series metadata",
        SERIES_RECORD => "series record",
        SERIES_BASE => "series base",
        SERIES_CURSOR => "series cursor",
        SERIES_IDS => "series fingerprint set",
        STORE_PRESENCE => "metric shard presence",
        KEYED => "Keyed",
        CONFORMANCE_ID_SUM => "conformance IdSum",
        TUPLE2 => "tuple of 2",
        TUPLE3 => "tuple of 3",
        TUPLE4 => "tuple of 4",
        STRUCT => "struct of aggregates",
        0x8000.. => "user type",
        _ => "unknown type",
    }
}

/// `"Count (0x0001)"`: a tag's name and number.
pub(crate) fn describe(tag: u16) -> String {
    format!("{} ({tag:#06x})", name(tag))
}
