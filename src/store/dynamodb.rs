//! DynamoDB backend (feature `dynamodb`): one item per key, conditional writes on a version
//! attribute, listing by `Query` on the sort key.

mod errors;

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::retry::RetryConfig;
use aws_sdk_dynamodb::config::timeout::TimeoutConfig;
use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType, ReturnValue,
    ScalarAttributeType, TableStatus, TimeToLiveSpecification,
};

use super::{KvStore, StoreFuture, Version, WriteOutcome};
use crate::error::{Error, Result, StoreErrorKind};
use errors::{Op, err, is_condition_failed, is_table_in_use};

const BACKEND: &str = "dynamodb";

/// Partition key attribute: the key up to and including its first `/` (the whole key when it
/// has none).
const PK: &str = "pk";
/// Sort key attribute: the whole key.
const SK: &str = "sk";
/// The version attribute (a number).
const VER: &str = "v";
/// The value attribute: the format byte, then the value.
const DATA: &str = "d";
/// The attribute the table's TTL is enabled on (see [`DynamoStore::create_table`]).
pub const EXPIRY_ATTRIBUTE: &str = "expires_at";

/// The item format this build writes and reads (first byte of [`DATA`]).
const FORMAT: u8 = 1;

/// DynamoDB's largest item: 400 KB, counted as attribute names plus values.
const MAX_ITEM: usize = 400 * 1024;
/// DynamoDB's longest sort key (the partition key is a prefix of it).
const MAX_KEY: usize = 1024;
/// The most bytes a version number can take in an item (DynamoDB sizes a number as about one
/// byte per two significant digits plus one; a `u64` has at most 20 digits).
const MAX_NUMBER: usize = 21;
/// The largest value: the item limit less the attribute names, the two key attributes at their
/// longest, the version and the format byte — so any value up to it fits, whatever its key.
const MAX_VALUE: usize =
    MAX_ITEM - (PK.len() + SK.len() + VER.len() + DATA.len()) - 2 * MAX_KEY - MAX_NUMBER - 1;

/// What a user can change when a value exceeds the item limit.
const TOO_LARGE_FIX: &str = "DynamoDB items are limited to 400 KB: use more shards (each \
                             shard's state is one item) or smaller buckets, or a store without \
                             this limit (postgres, s3)";

/// How often the client retries a read, query or delete that failed transiently.
const READ_ATTEMPTS: u32 = 3;

/// A DynamoDB table (`dynamodb://TABLE`): every key one item, written only under a condition.
///
/// # URL and configuration
///
/// `dynamodb://TABLE`, `dynamodb://TABLE?endpoint=URL`, optionally `&max_value_bytes=N` (see
/// Limits). Credentials, region and the rest come
/// from the usual AWS environment through `aws-config`'s default chain (`AWS_ACCESS_KEY_ID`,
/// `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, `AWS_REGION`, profiles, web identity,
/// ECS/EKS container credentials, instance metadata); the endpoint is DynamoDB's, or
/// `AWS_ENDPOINT_URL_DYNAMODB` / `AWS_ENDPOINT_URL`, or — overriding both — the URL parameter
/// `endpoint` (`dynamodb://shardfold?endpoint=http://127.0.0.1:4567` for a local emulator).
/// The table must exist: [`DynamoStore::create_table`] creates it. Permissions needed:
/// `dynamodb:GetItem`, `PutItem`, `DeleteItem`, `Query` (and `CreateTable`,
/// `DescribeTable`, `UpdateTimeToLive` for `create_table`).
///
/// # Items
///
/// | attribute | type | holds |
/// |---|---|---|
/// | `pk` (partition key) | B | the key up to and including its first `/` (the metric name and `/`) |
/// | `sk` (sort key) | B | the whole key |
/// | `v` | N | the key's version: 1 at create, +1 per update |
/// | `d` | B | a format byte (1), then the value |
///
/// [`create`](KvStore::create) is a `PutItem` with `attribute_not_exists(pk)`;
/// [`update`](KvStore::update) a `PutItem` with `v = :expected`. A failed condition is
/// [`WriteOutcome::Conflict`], never an error. Reads are strongly consistent. A key deleted
/// and created again starts over at version 1 (as the contract allows).
///
/// # Listing without a Scan
///
/// All keys of one metric share a partition key, so [`list`](KvStore::list) is one `Query`
/// (`pk = :p AND begins_with(sk, :prefix)`, consistent, paginated, only `sk` projected);
/// binary sort keys are ordered as unsigned bytes, the contract's order. A prefix must
/// therefore hold a `/` (the layouts only list such prefixes); one without is refused with
/// [`Error::NotImplemented`] rather than scanned. One partition key per metric also means one
/// metric's writes share one partition's throughput (1 000 write units per second, where a
/// unit is 1 KB written; DynamoDB splits a hot partition by sort-key range over time).
///
/// # Limits
///
/// Keys are at most 1 024 bytes (DynamoDB's sort-key limit) and not empty: others are refused
/// with [`Error::InvalidParameter`]. Values are at most 407 524 bytes, so that any item fits
/// in DynamoDB's 400 KB whatever its key; a larger value is refused with [`Error::TooLarge`]
/// naming the limit and the fix, before anything is sent. The URL parameter
/// `max_value_bytes=N` lowers that limit (never raises it): moto_server counts a binary
/// attribute by its base64 length, 4/3 of its size, so against moto use
/// `max_value_bytes=300000`. The [`Series`](super::Series)
/// layout closes records at 256 KiB; a compacted shard's set of event fingerprints
/// (Rice-coded) grows by about 6 bytes per event of its bucket, so above roughly 60 000
/// events per bucket and shard a compaction
/// fails with that error: use more shards or shorter buckets.
///
/// # Retries and timeouts
///
/// The SDK retries `GetItem`, `Query` and `DeleteItem` (safe to repeat) up to 3 attempts on
/// throttling and transient errors, never a `PutItem`: a conditional write re-sent after it
/// landed would come back as a false conflict, so a failed write is an [`Error::Store`] and the
/// fold loops retry it after re-reading. Every attempt times out after 10 s (connect: 3 s).
#[derive(Clone, Debug)]
pub struct DynamoStore {
    /// Reads, queries and deletes: retried by the SDK.
    reads: Client,
    /// Conditional writes: never re-sent by the SDK.
    writes: Client,
    table: String,
    /// The largest value accepted: [`MAX_VALUE`], or lower as the URL asks.
    max_value: usize,
}

/// `dynamodb://TABLE[?endpoint=URL][&max_value_bytes=N]`, parsed.
struct StoreUrl {
    table: String,
    endpoint: Option<String>,
    max_value: usize,
}

impl StoreUrl {
    fn parse(url: &str) -> Result<Self> {
        let config = |reason: &str| Error::store(BACKEND, StoreErrorKind::Config, reason);
        let rest = url
            .strip_prefix("dynamodb://")
            .ok_or_else(|| config("a dynamodb store URL starts with dynamodb://"))?;
        let (table, query) = rest.split_once('?').unwrap_or((rest, ""));
        let table = table.trim_end_matches('/');
        let valid = (3..=255).contains(&table.len())
            && table
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
        if !valid {
            return Err(config(
                "dynamodb://TABLE: a table name is 3 to 255 characters of A-Z a-z 0-9 _ - .",
            ));
        }
        let mut endpoint = None;
        let mut max_value = MAX_VALUE;
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            match pair.split_once('=') {
                Some(("endpoint", v)) if !v.is_empty() => {
                    let v = super::url::percent_decode(v);
                    endpoint = Some(v.ok_or_else(|| config("a bad %-escape in the endpoint"))?);
                }
                Some(("max_value_bytes", v)) => {
                    max_value = v
                        .parse::<usize>()
                        .ok()
                        .filter(|n| (1..=MAX_VALUE).contains(n))
                        .ok_or_else(|| {
                            config("dynamodb:// max_value_bytes is 1 to 407524 (it only lowers the limit)")
                        })?;
                }
                _ => {
                    return Err(config(
                        "dynamodb:// takes the URL parameters endpoint=URL and max_value_bytes=N",
                    ));
                }
            }
        }
        Ok(StoreUrl {
            table: table.to_owned(),
            endpoint,
            max_value,
        })
    }
}

impl DynamoStore {
    /// Opens `dynamodb://TABLE[?endpoint=URL]` (see the type docs) and checks that the table
    /// answers (one `GetItem` of a key no store key maps to).
    ///
    /// # Errors
    ///
    /// [`Error::Store`]: [`StoreErrorKind::Config`] for a URL that does not parse;
    /// [`StoreErrorKind::Rejected`] when the table does not exist (the message says so, and
    /// names [`DynamoStore::create_table`]); `Auth` when the credentials are refused;
    /// `Connection` when the endpoint cannot be reached.
    pub async fn connect(url: &str) -> Result<Self> {
        let store = Self::open(url).await?;
        store.probe().await?;
        Ok(store)
    }

    /// Creates the table `dynamodb://TABLE` names if it does not exist — partition key `pk`
    /// and sort key `sk`, both binary; on-demand billing — waits until it is active, and
    /// enables TTL on the attribute [`EXPIRY_ATTRIBUTE`] (`expires_at`, epoch seconds). Then
    /// connects to it. An existing table is used as it is.
    ///
    /// shardfold deletes what its layouts expire itself and writes no expiry attribute; the TTL
    /// is there for items you mark (a metric you retire, say). An emulator without TTL support
    /// (dynalite) still gets its table: the TTL step is skipped there with a `tracing` warning.
    ///
    /// # Errors
    ///
    /// As [`connect`](Self::connect); [`StoreErrorKind::Timeout`] when the table is not active
    /// after 60 s.
    pub async fn create_table(url: &str) -> Result<Self> {
        let store = Self::open(url).await?;
        let attr = |name: &str| {
            AttributeDefinition::builder()
                .attribute_name(name)
                .attribute_type(ScalarAttributeType::B)
                .build()
        };
        let key = |name: &str, kind: KeyType| {
            KeySchemaElement::builder()
                .attribute_name(name)
                .key_type(kind)
                .build()
        };
        let built = (|| {
            Ok::<_, aws_sdk_dynamodb::error::BuildError>((
                [attr(PK)?, attr(SK)?],
                [key(PK, KeyType::Hash)?, key(SK, KeyType::Range)?],
            ))
        })();
        let (attrs, schema) =
            built.map_err(|e| Error::store_from(BACKEND, StoreErrorKind::Config, e))?;
        let created = store
            .writes
            .create_table()
            .table_name(&store.table)
            .set_attribute_definitions(Some(attrs.to_vec()))
            .set_key_schema(Some(schema.to_vec()))
            .billing_mode(BillingMode::PayPerRequest)
            .send()
            .await;
        match created {
            Ok(_) => {}
            Err(e) if is_table_in_use(&e) => {}
            Err(e) => return Err(err(Op::CreateTable, &store.table, e)),
        }
        store.wait_active().await?;
        let ttl = TimeToLiveSpecification::builder()
            .attribute_name(EXPIRY_ATTRIBUTE)
            .enabled(true)
            .build()
            .map_err(|e| Error::store_from(BACKEND, StoreErrorKind::Config, e))?;
        let ttl = store
            .writes
            .update_time_to_live()
            .table_name(&store.table)
            .time_to_live_specification(ttl)
            .send()
            .await;
        if let Err(e) = ttl {
            let e = err(Op::UpdateTimeToLive, &store.table, e);
            // already enabled (a table created before) is fine; anything else is reported
            let text = e.to_string();
            if !text.contains("already enabled") {
                tracing::warn!(table = %store.table, "TTL not enabled: {text}");
            }
        }
        store.probe().await?;
        Ok(store)
    }

    /// A store over `TABLE` with the configuration of `url`, without any request (for tests:
    /// what the adapter refuses before sending anything).
    ///
    /// # Errors
    ///
    /// [`Error::Store`] ([`StoreErrorKind::Config`]) for a URL that does not parse.
    #[doc(hidden)]
    pub async fn open_unchecked(url: &str) -> Result<Self> {
        Self::open(url).await
    }

    /// A store over `TABLE` with the configuration of `url`, without any request.
    async fn open(url: &str) -> Result<Self> {
        let url = StoreUrl::parse(url)?;
        let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
        if let Some(endpoint) = &url.endpoint {
            loader = loader.endpoint_url(endpoint);
        }
        let sdk = loader.load().await;
        let timeouts = TimeoutConfig::builder()
            .connect_timeout(Duration::from_secs(3))
            .operation_attempt_timeout(Duration::from_secs(10))
            .build();
        let client = |retry: RetryConfig| {
            let config = aws_sdk_dynamodb::config::Builder::from(&sdk)
                .retry_config(retry)
                .timeout_config(timeouts.clone())
                .build();
            Client::from_conf(config)
        };
        Ok(DynamoStore {
            reads: client(RetryConfig::standard().with_max_attempts(READ_ATTEMPTS)),
            writes: client(RetryConfig::disabled()),
            table: url.table,
            max_value: url.max_value,
        })
    }

    /// A `GetItem` of a key no store key maps to (`pk` holds a `/` or is a whole key; this one
    /// is the empty key's, which no key has): a missing table, refused credentials or an
    /// unreachable endpoint fail here.
    async fn probe(&self) -> Result<()> {
        let probe = Blob::new(b"\0shardfold-probe".to_vec());
        self.reads
            .get_item()
            .table_name(&self.table)
            .key(PK, AttributeValue::B(probe.clone()))
            .key(SK, AttributeValue::B(probe))
            .send()
            .await
            .map_err(|e| err(Op::Get, &self.table, e))?;
        Ok(())
    }

    async fn wait_active(&self) -> Result<()> {
        for _ in 0..120 {
            let described = self
                .reads
                .describe_table()
                .table_name(&self.table)
                .send()
                .await
                .map_err(|e| err(Op::DescribeTable, &self.table, e))?;
            let status = described.table().and_then(|t| t.table_status());
            if status == Some(&TableStatus::Active) {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        Err(Error::store(
            BACKEND,
            StoreErrorKind::Timeout,
            format!("table {} not active after 60 s", self.table),
        ))
    }

    async fn get(&self, key: &[u8]) -> Result<Option<(Vec<u8>, Version)>> {
        let (pk, sk) = item_key(key)?;
        let got = self
            .reads
            .get_item()
            .table_name(&self.table)
            .key(PK, pk)
            .key(SK, sk)
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| err(Op::Get, &self.table, e))?;
        got.item().map(|item| decode_item(item, key)).transpose()
    }

    async fn put(
        &self,
        key: &[u8],
        value: &[u8],
        expected: Option<Version>,
    ) -> Result<WriteOutcome> {
        if value.len() > self.max_value {
            return Err(Error::TooLarge {
                size: value.len() as u64,
                limit: self.max_value as u64,
                fix: Some(TOO_LARGE_FIX),
            });
        }
        let (pk, sk) = item_key(key)?;
        let version = match expected {
            None => 1,
            Some(v) => match v.checked_add(1).filter(|_| v > 0) {
                Some(next) => next,
                None => return Ok(WriteOutcome::Conflict), // never a version of this store
            },
        };
        let mut data = Vec::with_capacity(1 + value.len());
        data.push(FORMAT);
        data.extend_from_slice(value);
        let request = self
            .writes
            .put_item()
            .table_name(&self.table)
            .item(PK, pk)
            .item(SK, sk)
            .item(VER, AttributeValue::N(version.to_string()))
            .item(DATA, AttributeValue::B(Blob::new(data)));
        let request = match expected {
            None => request
                .condition_expression("attribute_not_exists(#pk)")
                .expression_attribute_names("#pk", PK),
            Some(v) => request
                .condition_expression("#v = :v")
                .expression_attribute_names("#v", VER)
                .expression_attribute_values(":v", AttributeValue::N(v.to_string())),
        };
        match request.send().await {
            Ok(_) => Ok(WriteOutcome::Written(version)),
            Err(e) if is_condition_failed(&e) => Ok(WriteOutcome::Conflict),
            Err(e) => Err(err(Op::Put, &self.table, e)),
        }
    }

    async fn list_keys(&self, prefix: &[u8]) -> Result<Vec<Vec<u8>>> {
        let Some(slash) = prefix.iter().position(|&b| b == b'/') else {
            return Err(Error::NotImplemented {
                backend: BACKEND,
                operation: "list of a prefix without `/` (it would need a Scan)",
            });
        };
        let pk = Blob::new(prefix[..=slash].to_vec());
        let mut keys = Vec::new();
        let mut start: Option<HashMap<String, AttributeValue>> = None;
        loop {
            let page = self
                .reads
                .query()
                .table_name(&self.table)
                .key_condition_expression("#pk = :pk AND begins_with(#sk, :prefix)")
                .expression_attribute_names("#pk", PK)
                .expression_attribute_names("#sk", SK)
                .expression_attribute_values(":pk", AttributeValue::B(pk.clone()))
                .expression_attribute_values(":prefix", AttributeValue::B(Blob::new(prefix)))
                .projection_expression("#sk")
                .consistent_read(true)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| err(Op::Query, &self.table, e))?;
            for item in page.items() {
                match item.get(SK) {
                    Some(AttributeValue::B(sk)) => keys.push(sk.as_ref().to_vec()),
                    _ => return Err(bad_item(prefix, "no binary sort key")),
                }
            }
            match page.last_evaluated_key() {
                Some(last) if !last.is_empty() => start = Some(last.clone()),
                _ => break,
            }
        }
        keys.sort_unstable();
        keys.dedup();
        Ok(keys)
    }

    async fn delete_key(&self, key: &[u8]) -> Result<bool> {
        let (pk, sk) = item_key(key)?;
        let deleted = self
            .reads
            .delete_item()
            .table_name(&self.table)
            .key(PK, pk)
            .key(SK, sk)
            .return_values(ReturnValue::AllOld)
            .send()
            .await
            .map_err(|e| err(Op::Delete, &self.table, e))?;
        Ok(deleted.attributes().is_some_and(|a| !a.is_empty()))
    }
}

/// The item key of `key`: (partition key, sort key).
fn item_key(key: &[u8]) -> Result<(AttributeValue, AttributeValue)> {
    if key.is_empty() || key.len() > MAX_KEY {
        return Err(Error::InvalidParameter {
            name: "key",
            reason: format!(
                "dynamodb keys are 1 to {MAX_KEY} bytes (DynamoDB's sort-key limit); this one \
                 is {} bytes",
                key.len()
            ),
        });
    }
    let pk = match key.iter().position(|&b| b == b'/') {
        Some(slash) => &key[..=slash],
        None => key,
    };
    Ok((
        AttributeValue::B(Blob::new(pk)),
        AttributeValue::B(Blob::new(key)),
    ))
}

/// An item's value and version.
fn decode_item(item: &HashMap<String, AttributeValue>, key: &[u8]) -> Result<(Vec<u8>, Version)> {
    let version = match item.get(VER) {
        Some(AttributeValue::N(n)) => n
            .parse::<u64>()
            .ok()
            .filter(|&v| v > 0)
            .ok_or_else(|| bad_item(key, "a version that is not a positive integer"))?,
        _ => return Err(bad_item(key, "no number attribute `v`")),
    };
    let data = match item.get(DATA) {
        Some(AttributeValue::B(b)) => b.as_ref(),
        _ => return Err(bad_item(key, "no binary attribute `d`")),
    };
    match data.split_first() {
        Some((&FORMAT, value)) => Ok((value.to_vec(), version)),
        Some((&other, _)) => Err(Error::store_from(
            BACKEND,
            StoreErrorKind::Rejected,
            super::NotAValue {
                what: "item",
                name: String::from_utf8_lossy(key).into_owned(),
                cause: Error::UnsupportedVersion {
                    found: other,
                    supported: FORMAT,
                },
            },
        )),
        None => Err(bad_item(key, "an empty `d`")),
    }
}

fn bad_item(key: &[u8], what: &'static str) -> Error {
    let bad = super::NotAValue {
        what: "item",
        name: String::from_utf8_lossy(key).into_owned(),
        cause: Error::invalid_state(what),
    };
    Error::store_from(BACKEND, StoreErrorKind::Rejected, bad)
}

impl KvStore for DynamoStore {
    fn backend(&self) -> &'static str {
        BACKEND
    }

    fn read<'a>(&'a self, key: &'a [u8]) -> StoreFuture<'a, Option<(Vec<u8>, Version)>> {
        Box::pin(self.get(key))
    }

    fn create<'a>(&'a self, key: &'a [u8], value: &'a [u8]) -> StoreFuture<'a, WriteOutcome> {
        Box::pin(self.put(key, value, None))
    }

    fn update<'a>(
        &'a self,
        key: &'a [u8],
        value: &'a [u8],
        expected: Version,
    ) -> StoreFuture<'a, WriteOutcome> {
        Box::pin(self.put(key, value, Some(expected)))
    }

    fn list<'a>(&'a self, prefix: &'a [u8]) -> StoreFuture<'a, Vec<Vec<u8>>> {
        Box::pin(self.list_keys(prefix))
    }

    fn delete<'a>(&'a self, key: &'a [u8]) -> StoreFuture<'a, bool> {
        Box::pin(self.delete_key(key))
    }

    fn max_value_bytes(&self) -> usize {
        self.max_value
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_value_limit_leaves_room_for_the_longest_key() {
        assert_eq!(MAX_VALUE, 407_524);
        let item = PK.len() + MAX_KEY + SK.len() + MAX_KEY + VER.len() + MAX_NUMBER;
        assert_eq!(item + DATA.len() + 1 + MAX_VALUE, MAX_ITEM);
    }

    #[test]
    fn item_keys_split_at_the_first_slash() {
        let (pk, sk) = item_key(b"metric/r/0001/7").unwrap();
        assert_eq!(pk, AttributeValue::B(Blob::new(b"metric/".to_vec())));
        assert_eq!(
            sk,
            AttributeValue::B(Blob::new(b"metric/r/0001/7".to_vec()))
        );
        let (pk, _) = item_key(b"plain").unwrap();
        assert_eq!(pk, AttributeValue::B(Blob::new(b"plain".to_vec())));
        let (pk, _) = item_key(b"/x").unwrap();
        assert_eq!(pk, AttributeValue::B(Blob::new(b"/".to_vec())));
        assert!(matches!(item_key(b""), Err(Error::InvalidParameter { .. })));
        assert!(item_key(&[b'a'; MAX_KEY]).is_ok());
        assert!(matches!(
            item_key(&[b'a'; MAX_KEY + 1]),
            Err(Error::InvalidParameter { .. })
        ));
    }

    #[test]
    fn urls_parse_or_say_what_is_wrong() {
        let u = StoreUrl::parse("dynamodb://shardfold-test").unwrap();
        assert_eq!((u.table.as_str(), u.endpoint), ("shardfold-test", None));
        assert_eq!(u.max_value, MAX_VALUE);
        let u =
            StoreUrl::parse("dynamodb://tab?max_value_bytes=300000&endpoint=http://h:1").unwrap();
        assert_eq!(
            (u.max_value, u.endpoint.as_deref()),
            (300_000, Some("http://h:1"))
        );
        let u = StoreUrl::parse("dynamodb://t.a_b?endpoint=http%3A%2F%2F127.0.0.1%3A4567").unwrap();
        assert_eq!(u.endpoint.as_deref(), Some("http://127.0.0.1:4567"));
        let u = StoreUrl::parse("dynamodb://tab/?endpoint=http://127.0.0.1:5000").unwrap();
        assert_eq!(
            (u.table.as_str(), u.endpoint.as_deref()),
            ("tab", Some("http://127.0.0.1:5000"))
        );
        for bad in [
            "dynamodb://",
            "dynamodb://ab",
            "dynamodb://a/b",
            "dynamodb://tab?region=x",
            "dynamodb://tab?endpoint=%zz",
            "dynamodb://tab?max_value_bytes=0",
            "dynamodb://tab?max_value_bytes=407525",
            "dynamodb://tab?max_value_bytes=x",
        ] {
            assert!(
                matches!(
                    StoreUrl::parse(bad),
                    Err(Error::Store {
                        kind: StoreErrorKind::Config,
                        ..
                    })
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn items_decode_or_are_rejected_with_the_cause() {
        let item = |v: Option<&str>, d: Option<&[u8]>| {
            let mut m = HashMap::new();
            if let Some(v) = v {
                m.insert(VER.to_owned(), AttributeValue::N(v.to_owned()));
            }
            if let Some(d) = d {
                m.insert(DATA.to_owned(), AttributeValue::B(Blob::new(d)));
            }
            m
        };
        assert_eq!(
            decode_item(&item(Some("7"), Some(b"\x01abc")), b"k").unwrap(),
            (b"abc".to_vec(), 7)
        );
        assert_eq!(
            decode_item(&item(Some("18446744073709551615"), Some(b"\x01")), b"k").unwrap(),
            (Vec::new(), u64::MAX)
        );
        for bad in [
            item(None, Some(b"\x01")),
            item(Some("0"), Some(b"\x01")),
            item(Some("-1"), Some(b"\x01")),
            item(Some("1.5"), Some(b"\x01")),
            item(Some("1"), None),
            item(Some("1"), Some(b"")),
            item(Some("1"), Some(b"\x02x")),
        ] {
            match decode_item(&bad, b"k") {
                Err(e @ Error::Store { .. }) => {
                    assert!(!e.is_transient());
                    assert!(e.to_string().contains("not a shardfold value"), "{e}");
                }
                other => panic!("{other:?}"),
            }
        }
    }
}
