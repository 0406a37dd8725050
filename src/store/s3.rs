//! S3 backend (feature `s3`): object_store's conditional PUT, one object per key.

mod config;
mod errors;
mod keys;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use futures_util::StreamExt;
use object_store::path::Path;
use object_store::{
    GetOptions, ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload, UpdateVersion,
};

use super::{KvStore, StoreFuture, Version, WriteOutcome, check_size};
use crate::error::{Error, Result, StoreErrorKind};
use errors::{err, is_conflict, is_missing_bucket};

const BACKEND: &str = "s3";

/// The first bytes of every object: magic, then the format byte.
const MAGIC: &[u8; 4] = b"SFKV";
/// The object format this build writes and reads.
const FORMAT: u8 = 1;
/// Magic, format byte, big-endian `u64` version.
const HEADER: usize = MAGIC.len() + 1 + 8;

/// S3's largest single PUT (5 GiB), less the header.
const MAX_OBJECT: u64 = 5 << 30;

/// How often the client retries a GET, HEAD, LIST or DELETE that failed with a 5xx or 429 or
/// could not be sent (backing off from 100 ms, within 10 s).
const READ_RETRIES: usize = 3;

/// How many keys' ETags a store remembers (about 100 bytes each).
const ETAG_MEMORY: usize = 4096;

/// An S3 bucket, or any S3-compatible object store that honours conditional writes
/// (`s3://BUCKET/PREFIX`).
///
/// # URL and configuration
///
/// `s3://BUCKET` or `s3://BUCKET/PREFIX`: keys live under `PREFIX/` (a prefix of its own; the
/// store lists it). Credentials, region and the rest come from the usual AWS environment
/// variables through object_store's `AmazonS3Builder::from_env` (`AWS_ACCESS_KEY_ID`,
/// `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, `AWS_REGION` / `AWS_DEFAULT_REGION`, web
/// identity, ECS/EKS container credentials, instance metadata). The endpoint is S3's, or
/// `AWS_ENDPOINT_URL_S3`, `AWS_ENDPOINT_URL`, or — overriding both — the URL parameter
/// `?endpoint=URL` (percent-encoded or not): `s3://shardfold/metrics?endpoint=http://127.0.0.1:5000`.
/// With an endpoint, requests are path-style (`ENDPOINT/BUCKET/KEY`), and plain `http://` is
/// allowed when the endpoint is on this machine (127.0.0.0/8, `localhost`, `[::1]`; elsewhere
/// set `AWS_ALLOW_HTTP=true`). The bucket must exist. Permissions needed: `s3:GetObject`,
/// `s3:PutObject`, `s3:DeleteObject`, `s3:ListBucket` (without it S3 answers 403 instead of 404
/// for a missing key).
///
/// # Versions live in the objects
///
/// An ETag tells that an object changed, not which version is newer, so each object starts
/// with a 13-byte header: the magic `SFKV`, a format byte (1) and the key's version (`u64`,
/// big-endian), then the value. [`create`](KvStore::create) writes version 1 with
/// `If-None-Match: *`; [`update`](KvStore::update) writes `expected + 1` with `If-Match:
/// <ETag>`, where the ETag is the one this store saw for version `expected` — remembered from
/// its last read or write of the key (for up to 4096 keys), or else fetched by a GET first (a
/// version other than `expected` is a [`WriteOutcome::Conflict`] without writing). A refused
/// precondition (412, or S3's 409 for concurrent conditional writes) is a `Conflict`, never an
/// error. An object whose header is not this one is an [`Error::Store`] of kind
/// [`StoreErrorKind::Rejected`] whose source is the decoding error ([`Error::BadMagic`],
/// [`Error::Truncated`], [`Error::UnsupportedVersion`]). A key deleted and created again starts
/// over at version 1 (as the contract allows).
///
/// # What an S3-compatible store must honour
///
/// `If-None-Match: *` and `If-Match` on `PutObject`, **atomically** (two concurrent writes with
/// the same condition: one wins), and ETags that change with the content. AWS S3 does (since
/// 2024), as do Cloudflare R2 and MinIO; a store that ignores the headers silently overwrites,
/// and the conformance suite (`create_race`, `conditional_writes`) fails on it — run it before
/// trusting a store (`tests/store_s3.rs` shows it catching such a store). FACTS: moto_server
/// honours both atomically; s3s-fs checks them non-atomically (loses updates); s3rver ignores
/// them.
///
/// # Keys, listing, deleting
///
/// Keys (any bytes) map to object paths by a reversible escaping that keeps `/` as the
/// separator and preserves byte order (letters, digits and `-` are kept; see the `keys`
/// module). [`list`](KvStore::list) lists the prefix's directory (all pages, 1000 keys per
/// LIST request, nested ones included), skips objects whose path is not an escaped key, and
/// returns the keys that start with the prefix, sorted. [`delete`](KvStore::delete) is a HEAD
/// then a DELETE (S3's DELETE does not say whether the object existed): two concurrent deletes
/// of one key may both report `true`, and a create landing between them is deleted.
///
/// # Costs (requests)
///
/// | operation | requests |
/// |---|---|
/// | read | 1 GET |
/// | create | 1 PUT |
/// | update after this store read or wrote the key | 1 PUT |
/// | update otherwise | 1 GET + 1 PUT |
/// | list | 1 LIST per 1000 objects in the directory |
/// | delete | 1 HEAD + 1 DELETE |
///
/// So a `Metric` fold costs 1 GET + 1 PUT per shard touched (plus 1 GET + 1 PUT per lost
/// race); a `Series` append is 1 PUT per record, its compactions GETs, PUTs, LISTs and
/// DELETEs. Values are read and written whole; the largest is 5 GiB (S3's single PUT) less
/// the header. The client retries GET, HEAD, LIST and DELETE (safe to repeat) up to 3 times
/// on a 5xx, a 429 or a request that could not be sent, but never a PUT: a failed write is an
/// [`Error::Store`] (transient for timeouts, connection errors, 5xx and 429; the write may
/// have landed), and the fold loops retry it after re-reading, so a write is never re-sent
/// blindly (a blind re-send of a PUT that had landed would come back as a false conflict).
#[derive(Clone)]
pub struct S3Store {
    /// GET, HEAD, LIST and DELETE (safe to repeat): the client retries them.
    store: Arc<dyn ObjectStore>,
    /// Conditional PUTs: never re-sent by the client.
    writes: Arc<dyn ObjectStore>,
    /// The objects' prefix, empty or ending with `/`.
    base: String,
    etags: Arc<Mutex<EtagMemory>>,
}

impl std::fmt::Debug for S3Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Store")
            .field("store", &self.store.to_string())
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

impl S3Store {
    /// Opens `s3://BUCKET[/PREFIX][?endpoint=URL]` (see the type docs) and checks that the
    /// bucket answers (one GET of an object name no key escapes to).
    ///
    /// # Errors
    ///
    /// [`Error::Store`]: [`StoreErrorKind::Config`] for a URL that does not parse or a client
    /// configuration object_store refuses (such as a secret key without its key ID);
    /// [`StoreErrorKind::Rejected`] when the bucket does not exist, `Auth` when the
    /// credentials are refused, `Connection` when the endpoint cannot be reached.
    pub async fn connect(url: &str) -> Result<Self> {
        let url = config::StoreUrl::parse(url)?;
        let mut store =
            S3Store::from_object_store(Arc::new(url.build(READ_RETRIES)?), &url.prefix)?;
        store.writes = Arc::new(url.build(0)?);
        store.probe().await?;
        Ok(store)
    }

    /// A store over any object_store `ObjectStore` under `prefix` (no request is made). For
    /// tests: the conformance suite run over `InMemory`, or over a store that ignores
    /// conditions, through this adapter's code.
    ///
    /// # Errors
    ///
    /// [`Error::Store`] ([`StoreErrorKind::Config`]) when `prefix` is not a valid path.
    #[doc(hidden)]
    pub fn from_object_store(store: Arc<dyn ObjectStore>, prefix: &str) -> Result<Self> {
        let prefix = prefix.trim_matches('/');
        let base = match prefix {
            "" => String::new(),
            p if Path::parse(p).is_ok() => format!("{p}/"),
            _ => {
                return Err(Error::store(
                    BACKEND,
                    StoreErrorKind::Config,
                    "the s3 prefix must be a path without empty, `.` or `..` segments",
                ));
            }
        };
        Ok(S3Store {
            writes: Arc::clone(&store),
            store,
            base,
            etags: Arc::new(Mutex::new(EtagMemory::default())),
        })
    }

    /// GETs an object no key maps to (`.z` is always followed by `/` in an escaped key): a
    /// missing bucket, refused credentials or an unreachable endpoint fail here.
    async fn probe(&self) -> Result<()> {
        let path = self.path(".zprobe")?;
        match self.store.get_opts(&path, GetOptions::default()).await {
            Err(e) if is_missing_bucket(&e) => Err(err(e)),
            Ok(_) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(err(e)),
        }
    }

    fn path(&self, escaped: &str) -> Result<Path> {
        Path::parse(format!("{}{escaped}", self.base))
            .map_err(|_| Error::internal("an escaped s3 key is not a valid object path"))
    }

    fn key_path(&self, key: &[u8]) -> Result<Path> {
        self.path(&keys::escape(key))
    }

    /// GETs `key`: its version, value and ETag, or `None` when absent.
    async fn get(&self, key: &[u8]) -> Result<Option<(Version, Vec<u8>, Option<String>)>> {
        let path = self.key_path(key)?;
        let got = match self.store.get_opts(&path, GetOptions::default()).await {
            Err(e) if is_missing_bucket(&e) => return Err(err(e)),
            Err(object_store::Error::NotFound { .. }) => {
                self.memory().forget(key);
                return Ok(None);
            }
            got => got.map_err(err)?,
        };
        let e_tag = got.meta.e_tag.clone();
        let bytes = got.bytes().await.map_err(err)?;
        let (version, value) = decode(&bytes).map_err(|cause| bad_object(&path, cause))?;
        if let Some(tag) = &e_tag {
            self.memory().remember(key, version, tag);
        }
        Ok(Some((version, value.to_vec(), e_tag)))
    }

    /// PUTs `value` at `version` under `mode`: `Written(version)`, or `Conflict` when the
    /// condition failed.
    async fn put(
        &self,
        key: &[u8],
        value: &[u8],
        version: Version,
        mode: PutMode,
    ) -> Result<WriteOutcome> {
        let path = self.key_path(key)?;
        let payload = PutPayload::from(encode(version, value));
        match self
            .writes
            .put_opts(&path, payload, PutOptions::from(mode))
            .await
        {
            Ok(put) => {
                match put.e_tag {
                    Some(tag) => self.memory().remember(key, version, &tag),
                    None => self.memory().forget(key),
                }
                Ok(WriteOutcome::Written(version))
            }
            Err(e) if is_conflict(&e) => {
                self.memory().forget(key);
                Ok(WriteOutcome::Conflict)
            }
            Err(e) => {
                self.memory().forget(key);
                Err(err(e))
            }
        }
    }

    async fn update_key(
        &self,
        key: &[u8],
        value: &[u8],
        expected: Version,
    ) -> Result<WriteOutcome> {
        check_size(value, self.max_value_bytes())?;
        let Some(next) = expected.checked_add(1).filter(|_| expected > 0) else {
            return Ok(WriteOutcome::Conflict); // never a version this store returned
        };
        let recalled = self.memory().recall(key, expected);
        let e_tag = match recalled {
            Some(tag) => tag,
            None => match self.get(key).await? {
                Some((version, _, _)) if version != expected => return Ok(WriteOutcome::Conflict),
                None => return Ok(WriteOutcome::Conflict),
                Some((_, _, Some(tag))) => tag,
                Some((_, _, None)) => {
                    return Err(Error::NotImplemented {
                        backend: BACKEND,
                        operation: "conditional put (the store returns no ETag)",
                    });
                }
            },
        };
        let version = UpdateVersion {
            e_tag: Some(e_tag),
            version: None,
        };
        self.put(key, value, next, PutMode::Update(version)).await
    }

    async fn list_keys(&self, prefix: &[u8]) -> Result<Vec<Vec<u8>>> {
        // the directory holding every key under `prefix`: its escaped path, else the base
        let dir = match keys::directory(prefix) {
            Some(dir) => Some(self.path(&dir)?),
            None if self.base.is_empty() => None,
            None => Some(self.path("")?),
        };
        let mut objects = self.store.list(dir.as_ref());
        let mut keys = Vec::new();
        while let Some(meta) = objects.next().await {
            let meta = meta.map_err(err)?;
            let relative = meta.location.as_ref().strip_prefix(self.base.as_str());
            let key = relative.and_then(keys::unescape);
            keys.extend(key.filter(|k| k.starts_with(prefix)));
        }
        keys.sort_unstable();
        keys.dedup();
        Ok(keys)
    }

    async fn delete_key(&self, key: &[u8]) -> Result<bool> {
        let path = self.key_path(key)?;
        self.memory().forget(key);
        match self.store.head(&path).await {
            Err(e) if is_missing_bucket(&e) => return Err(err(e)),
            Err(object_store::Error::NotFound { .. }) => return Ok(false),
            other => other.map_err(err)?,
        };
        self.store.delete(&path).await.map_err(err)?;
        Ok(true)
    }

    fn memory(&self) -> std::sync::MutexGuard<'_, EtagMemory> {
        // plain data: a panic elsewhere cannot leave it inconsistent
        self.etags.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The ETag this store last saw per key, with the version it goes with; bounded (an arbitrary
/// entry goes when full, costing one GET at its next update).
#[derive(Default)]
struct EtagMemory {
    map: HashMap<Vec<u8>, (Version, String)>,
}

impl EtagMemory {
    fn remember(&mut self, key: &[u8], version: Version, e_tag: &str) {
        if self.map.len() >= ETAG_MEMORY && !self.map.contains_key(key) {
            let victim = self.map.keys().next().cloned();
            if let Some(victim) = victim {
                self.map.remove(&victim);
            }
        }
        self.map.insert(key.to_vec(), (version, e_tag.to_owned()));
    }

    fn recall(&self, key: &[u8], version: Version) -> Option<String> {
        match self.map.get(key) {
            Some((v, tag)) if *v == version => Some(tag.clone()),
            _ => None,
        }
    }

    fn forget(&mut self, key: &[u8]) {
        self.map.remove(key);
    }
}

/// An object: the header, then `value`.
fn encode(version: Version, value: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER + value.len());
    out.extend_from_slice(MAGIC);
    out.push(FORMAT);
    out.extend_from_slice(&version.to_be_bytes());
    out.extend_from_slice(value);
    out
}

/// An object's version and value.
fn decode(object: &[u8]) -> Result<(Version, &[u8])> {
    if object.len() < MAGIC.len() || &object[..MAGIC.len()] != MAGIC {
        return Err(Error::BadMagic);
    }
    let Some((&format, rest)) = object[MAGIC.len()..].split_first() else {
        return Err(Error::Truncated {
            context: "s3 object header",
        });
    };
    if format != FORMAT {
        return Err(Error::UnsupportedVersion {
            found: format,
            supported: FORMAT,
        });
    }
    let Some((version, value)) = rest.split_first_chunk::<8>() else {
        return Err(Error::Truncated {
            context: "s3 object header",
        });
    };
    match u64::from_be_bytes(*version) {
        0 => Err(Error::invalid_state("s3 object version 0")),
        version => Ok((version, value)),
    }
}

fn bad_object(path: &Path, cause: Error) -> Error {
    let bad = super::NotAValue {
        what: "object",
        name: path.to_string(),
        cause,
    };
    Error::store_from(BACKEND, StoreErrorKind::Rejected, bad)
}

impl KvStore for S3Store {
    fn backend(&self) -> &'static str {
        BACKEND
    }

    fn read<'a>(&'a self, key: &'a [u8]) -> StoreFuture<'a, Option<(Vec<u8>, Version)>> {
        Box::pin(async move {
            let got = self.get(key).await?;
            Ok(got.map(|(version, value, _)| (value, version)))
        })
    }

    fn create<'a>(&'a self, key: &'a [u8], value: &'a [u8]) -> StoreFuture<'a, WriteOutcome> {
        Box::pin(async move {
            check_size(value, self.max_value_bytes())?;
            self.put(key, value, 1, PutMode::Create).await
        })
    }

    fn update<'a>(
        &'a self,
        key: &'a [u8],
        value: &'a [u8],
        expected: Version,
    ) -> StoreFuture<'a, WriteOutcome> {
        Box::pin(self.update_key(key, value, expected))
    }

    fn list<'a>(&'a self, prefix: &'a [u8]) -> StoreFuture<'a, Vec<Vec<u8>>> {
        Box::pin(self.list_keys(prefix))
    }

    fn delete<'a>(&'a self, key: &'a [u8]) -> StoreFuture<'a, bool> {
        Box::pin(self.delete_key(key))
    }

    fn max_value_bytes(&self) -> usize {
        usize::try_from(MAX_OBJECT - HEADER as u64).unwrap_or(usize::MAX - HEADER)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn objects_round_trip_and_bad_headers_are_typed() {
        let object = encode(7, b"value");
        assert_eq!(object.len(), HEADER + 5);
        assert_eq!(&object[..5], b"SFKV\x01");
        assert_eq!(decode(&object).unwrap(), (7, &b"value"[..]));
        assert_eq!(
            decode(&encode(u64::MAX, b"")).unwrap(),
            (u64::MAX, &b""[..])
        );
        assert_eq!(decode(b"SFK"), Err(Error::BadMagic));
        assert_eq!(decode(b"xxxx\x01\0\0\0\0\0\0\0\x01"), Err(Error::BadMagic));
        assert!(matches!(decode(b"SFKV"), Err(Error::Truncated { .. })));
        assert!(matches!(
            decode(b"SFKV\x01\0\0\0"),
            Err(Error::Truncated { .. })
        ));
        assert!(matches!(
            decode(b"SFKV\x02\0\0\0\0\0\0\0\x01"),
            Err(Error::UnsupportedVersion {
                found: 2,
                supported: 1
            })
        ));
        assert!(matches!(
            decode(&encode(0, b"v")),
            Err(Error::InvalidState { .. })
        ));
    }

    #[test]
    fn the_etag_memory_is_bounded_and_keyed_by_version() {
        let mut m = EtagMemory::default();
        m.remember(b"k", 3, "\"a\"");
        assert_eq!(m.recall(b"k", 3).as_deref(), Some("\"a\""));
        assert_eq!(m.recall(b"k", 2), None);
        m.remember(b"k", 4, "\"b\"");
        assert_eq!(m.recall(b"k", 3), None);
        for i in 0..2 * ETAG_MEMORY {
            m.remember(format!("k{i}").as_bytes(), 1, "\"t\"");
            assert!(m.map.len() <= ETAG_MEMORY);
        }
        let last = format!("k{}", 2 * ETAG_MEMORY - 1);
        assert!(m.recall(last.as_bytes(), 1).is_some());
        m.forget(last.as_bytes());
        assert!(m.recall(last.as_bytes(), 1).is_none());
    }
}
