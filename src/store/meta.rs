//! A metric's metadata record: its shard count K, aggregate type and the aggregate's
//! parameters (window width, dedup horizon, sketch precision, …), fixed at creation.

use super::{KvStore, WriteOutcome};
use crate::codec::{self, Codec, Limits, Reader, tags};
use crate::error::{Error, Result, StoreErrorKind};

/// The largest K a metric may have.
pub(crate) const MAX_SHARDS: u32 = 4096;

/// The largest metric name, in bytes.
pub(crate) const MAX_NAME: usize = 200;

/// What `<metric>/meta` holds (type tag [`tags::STORE_META`]).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct MetricMeta {
    pub(crate) shards: u32,
    pub(crate) type_tag: u16,
    /// The aggregate's parameter block; `None` in records written before parameters were
    /// recorded (then only K and the type are checked).
    pub(crate) params: Option<Vec<u8>>,
}

impl Codec for MetricMeta {
    const TYPE_TAG: u16 = tags::STORE_META;

    fn write_payload(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.shards.to_le_bytes());
        out.extend_from_slice(&self.type_tag.to_le_bytes());
        if let Some(p) = &self.params {
            crate::codec::write_section_with(out, |o| o.extend_from_slice(p));
        }
    }

    fn read_parts(params: &[u8], payload: &[u8], _: &Limits) -> Result<Self> {
        crate::agg::no_params(params)?;
        let mut r = Reader::new(payload);
        let shards = r.u32("meta shard count")?;
        let type_tag = r.u16("meta type tag")?;
        let params = if r.is_empty() {
            None
        } else {
            Some(r.section("meta aggregate params")?.to_vec())
        };
        r.finish("meta payload")?;
        if shards == 0 || shards > MAX_SHARDS {
            return Err(Error::invalid_state(format!("shard count {shards}")));
        }
        Ok(MetricMeta {
            shards,
            type_tag,
            params,
        })
    }
}

/// Checks a metric name and shard count.
pub(crate) fn validate(name: &str, shards: u32) -> Result<()> {
    if name.is_empty() || name.len() > MAX_NAME || name.chars().any(char::is_control) {
        return Err(Error::InvalidParameter {
            name: "metric name",
            reason: format!("must be 1..={MAX_NAME} bytes without control characters"),
        });
    }
    if shards == 0 || shards > MAX_SHARDS {
        return Err(Error::InvalidParameter {
            name: "shards",
            reason: format!("{shards} is outside 1..={MAX_SHARDS}"),
        });
    }
    Ok(())
}

/// Creates the metadata record if absent, then checks that the stored one agrees: the type,
/// K, and the aggregate's parameters (when the stored record has them).
pub(crate) async fn ensure(
    store: &dyn KvStore,
    key: &[u8],
    shards: u32,
    type_tag: u16,
    params: Vec<u8>,
) -> Result<()> {
    let wanted = MetricMeta {
        shards,
        type_tag,
        params: Some(params),
    };
    let stored = match store.read(key).await? {
        Some((bytes, _)) => codec::decode::<MetricMeta>(&bytes)?,
        None => match store.create(key, &codec::encode(&wanted)).await? {
            WriteOutcome::Written(_) => wanted.clone(),
            // another writer created it first: read theirs
            WriteOutcome::Conflict => match store.read(key).await? {
                Some((bytes, _)) => codec::decode::<MetricMeta>(&bytes)?,
                None => {
                    return Err(Error::store(
                        store.backend(),
                        StoreErrorKind::Other,
                        "metadata key vanished",
                    ));
                }
            },
        },
    };
    if stored.type_tag != type_tag {
        return Err(Error::WrongType {
            expected: type_tag,
            found: stored.type_tag,
        });
    }
    if stored.shards != shards {
        return Err(Error::incompatible(
            "metric shard count",
            shards,
            stored.shards,
        ));
    }
    match (&wanted.params, &stored.params) {
        (Some(asked), Some(found)) if asked != found => Err(Error::incompatible(
            "metric aggregate parameters",
            hex(asked),
            hex(found),
        )),
        _ => Ok(()),
    }
}

/// Parameter bytes as hex, for error messages.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
