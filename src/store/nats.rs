//! NATS JetStream KV backend (feature `nats`, async-nats ~0.40).
//!
//! A key's version is its KV revision (the stream sequence of its last write). Create is a
//! publish with `Nats-Expected-Last-Subject-Sequence: 0` (the key must have no message), update
//! the same header with the revision read; the server refuses a mismatch atomically ("wrong
//! last sequence"), which is a [`WriteOutcome::Conflict`]. The bucket is created on first use
//! with `history = 1`.
//!
//! # Keys: one subject token per `/`-separated segment
//!
//! KV keys allow only `A-Z a-z 0-9 - _ / = .` (no leading or trailing `.`, no empty token),
//! and a subject wildcard matches whole `.`-separated tokens. So a key is split on `/`, each
//! segment is escaped, and the segments are joined with `.`: bytes of `A-Z a-z 0-9 - _` are
//! kept, every other byte is written `=HH` (uppercase hex), and an empty segment is written
//! `=` alone (no other escaped segment is). The encoding is injective and readable:
//! `{m}/0` → `=7Bm=7D.0`, `a//b` → `a.=.b`, `req/x.y` → `req.x=2Ey`. A "directory" (a prefix
//! ending with `/`) is then a subject prefix: `$KV.<bucket>.<escaped tokens>.>`.
//!
//! Keys written by shardfold 0.1, which kept `/` inside one token (`req/=7Bx=7D`), are not
//! read, listed or deleted by this version: fold such metrics again or copy their keys.
//!
//! # Listing and deleting
//!
//! [`list`](KvStore::list) reads the last message of every subject under the prefix's
//! directory through an ephemeral ordered consumer (`DeliverPolicy::LastPerSubject`, headers
//! only, filtered on the directory's subject), skips delete and purge markers, unescapes the
//! subjects and keeps the keys that start with the whole prefix. Its cost is one consumer
//! creation plus one headers-only message per key (or marker) under the directory (nested
//! ones included), not per key in the bucket; a prefix that does not end with `/` pays for
//! its whole directory.
//! [`delete`](KvStore::delete) reads the key and purges it at the revision read (so of two
//! concurrent deletes one reports `true`); a purge leaves a marker that reads as absent. A
//! create over a marker publishes with the marker's revision as the expected last sequence,
//! so a deleted key can be created again, still at most once, with a version above every
//! version it had.
//!
//! Values are limited by the server's `max_payload` (1 MiB by default) less 4 KiB for
//! headers; raise `max_payload` in the server configuration for larger states.
//!
//! Supported servers: nats-server 2.9 (Debian 12's 2.9.10 is what the suite runs against)
//! and later 2.x. async-nats is pinned to `~0.40` because 0.41 and later cannot create a KV
//! bucket on nats-server 2.9.

use std::time::Duration;

use async_nats::jetstream::consumer::{DeliverPolicy, push};
use async_nats::jetstream::kv::{
    Config, EntryError, EntryErrorKind, Operation, Store, UpdateError, UpdateErrorKind,
};
use async_nats::{Client, ConnectErrorKind, HeaderMap};
use bytes::Bytes;
use futures_util::StreamExt;

use super::{KvStore, StoreFuture, Version, WriteOutcome, check_size};
use crate::error::{Error, Result, StoreErrorKind};

const BACKEND: &str = "nats";

/// Room left for the subject and headers of a KV publish.
const HEADER_ROOM: usize = 4096;

/// How long a listing waits for its next message before giving up.
const LIST_TIMEOUT: Duration = Duration::from_secs(10);

/// The crate error for a client error `e`, keeping it as the source.
fn err<E: std::error::Error + Send + Sync + 'static>(e: E) -> Error {
    Error::store_from(BACKEND, kind_of(&e), e)
}

/// Whether `e` may pass on retry (see [`StoreErrorKind`]): by the client's error kinds where
/// it has them, else by the causes (I/O errors, timeouts, authorization).
fn kind_of(e: &(dyn std::error::Error + 'static)) -> StoreErrorKind {
    if let Some(e) = e.downcast_ref::<async_nats::ConnectError>() {
        return match e.kind() {
            ConnectErrorKind::Authentication | ConnectErrorKind::AuthorizationViolation => {
                StoreErrorKind::Auth
            }
            ConnectErrorKind::ServerParse | ConnectErrorKind::Tls => StoreErrorKind::Config,
            ConnectErrorKind::TimedOut => StoreErrorKind::Timeout,
            _ => StoreErrorKind::Connection,
        };
    }
    let keyed = match (
        e.downcast_ref::<EntryError>(),
        e.downcast_ref::<UpdateError>(),
    ) {
        (Some(e), _) => Some(matches!(e.kind(), EntryErrorKind::InvalidKey)),
        (_, Some(e)) => Some(matches!(e.kind(), UpdateErrorKind::InvalidKey)),
        _ => None,
    };
    if keyed == Some(true) {
        return StoreErrorKind::Rejected;
    }
    let mut cause = Some(e);
    while let Some(c) = cause {
        if let Some(io) = c.downcast_ref::<std::io::Error>() {
            return match io.kind() {
                std::io::ErrorKind::TimedOut => StoreErrorKind::Timeout,
                _ => StoreErrorKind::Connection,
            };
        }
        let text = c.to_string().to_ascii_lowercase();
        if text.contains("timed out") || text.contains("timeout") {
            return StoreErrorKind::Timeout;
        }
        if text.contains("authorization") || text.contains("permissions violation") {
            return StoreErrorKind::Auth;
        }
        cause = c.source();
    }
    StoreErrorKind::Other
}

/// A JetStream KV bucket (`nats://HOST:PORT/BUCKET`).
#[derive(Clone)]
pub struct NatsStore {
    client: Client,
    kv: Store,
    max_value: usize,
}

impl std::fmt::Debug for NatsStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NatsStore")
            .field("max_value", &self.max_value)
            .finish_non_exhaustive()
    }
}

impl NatsStore {
    /// Connects to `server` (`HOST:PORT`) and opens `bucket`, creating it if absent.
    ///
    /// # Errors
    ///
    /// [`Error::Store`] when the server cannot be reached, has no JetStream, or refuses the
    /// bucket.
    pub async fn connect(server: &str, bucket: &str) -> Result<Self> {
        let client = async_nats::connect(server).await.map_err(err)?;
        let max_payload = client.server_info().max_payload;
        let js = async_nats::jetstream::new(client.clone());
        let kv = match js.get_key_value(bucket).await {
            Ok(kv) => kv,
            Err(_) => {
                let config = Config {
                    bucket: bucket.to_owned(),
                    history: 1,
                    ..Config::default()
                };
                match js.create_key_value(config).await {
                    Ok(kv) => kv,
                    // another process may have created it meanwhile
                    Err(e) => js.get_key_value(bucket).await.map_err(|_| err(e))?,
                }
            }
        };
        Ok(NatsStore {
            client,
            kv,
            max_value: max_payload.saturating_sub(HEADER_ROOM),
        })
    }

    async fn write(&self, key: &[u8], value: &[u8], expected: u64) -> Result<WriteOutcome> {
        check_size(value, self.max_value)?;
        match self
            .kv
            .update(escape(key), Bytes::copy_from_slice(value), expected)
            .await
        {
            Ok(revision) => Ok(WriteOutcome::Written(revision)),
            Err(e) if e.kind() == UpdateErrorKind::WrongLastRevision => Ok(WriteOutcome::Conflict),
            Err(e) => Err(err(e)),
        }
    }

    /// Creates `key`: absent, or over its delete or purge marker (at the marker's revision).
    async fn create_key(&self, key: &[u8], value: &[u8]) -> Result<WriteOutcome> {
        if let written @ WriteOutcome::Written(_) = self.write(key, value, 0).await? {
            return Ok(written);
        }
        match self.kv.entry(escape(key)).await.map_err(err)? {
            Some(e) if e.operation != Operation::Put => self.write(key, value, e.revision).await,
            _ => Ok(WriteOutcome::Conflict),
        }
    }

    /// Purges `key` at the revision read, re-reading when a write came in between.
    async fn delete_key(&self, key: &[u8]) -> Result<bool> {
        let key = escape(key);
        loop {
            let revision = match self.kv.entry(key.as_str()).await.map_err(err)? {
                Some(e) if e.operation == Operation::Put => e.revision,
                _ => return Ok(false),
            };
            match self.kv.purge_expect_revision(&key, Some(revision)).await {
                Ok(()) => return Ok(true),
                Err(e) if e.kind() == UpdateErrorKind::WrongLastRevision => continue,
                Err(e) => return Err(err(e)),
            }
        }
    }

    /// The keys starting with `prefix`: the live subjects of its directory, filtered.
    async fn list_keys(&self, prefix: &[u8]) -> Result<Vec<Vec<u8>>> {
        let subjects = match prefix.iter().rposition(|&b| b == b'/') {
            Some(slash) => format!("{}{}.>", self.kv.prefix, escape(&prefix[..slash])),
            None => format!("{}>", self.kv.prefix),
        };
        let consumer = self
            .kv
            .stream
            .create_consumer(push::OrderedConfig {
                deliver_subject: self.client.new_inbox(),
                description: Some("shardfold list".to_owned()),
                filter_subject: subjects,
                headers_only: true,
                deliver_policy: DeliverPolicy::LastPerSubject,
                ..Default::default()
            })
            .await
            .map_err(err)?;
        let mut pending = consumer.cached_info().num_pending;
        let mut messages = consumer.messages().await.map_err(err)?;
        let mut keys = Vec::new();
        while pending > 0 {
            let message = tokio::time::timeout(LIST_TIMEOUT, messages.next())
                .await
                .map_err(|_| Error::store(BACKEND, StoreErrorKind::Timeout, "listing timed out"))?
                .ok_or_else(|| {
                    Error::store(BACKEND, StoreErrorKind::Connection, "listing ended early")
                })?
                .map_err(err)?;
            pending = message
                .info()
                .map_err(|e| Error::store(BACKEND, kind_of(&*e), e))?
                .pending;
            if is_marker(message.headers.as_ref()) {
                continue;
            }
            let subject = message.subject.as_str();
            let key = subject.strip_prefix(&self.kv.prefix).and_then(unescape);
            keys.extend(key.filter(|k| k.starts_with(prefix)));
        }
        keys.sort_unstable();
        keys.dedup();
        Ok(keys)
    }
}

/// Whether a KV message is a delete or purge marker (header `KV-Operation: DEL | PURGE`).
fn is_marker(headers: Option<&HeaderMap>) -> bool {
    let op = headers.and_then(|h| h.get("KV-Operation"));
    op.is_some_and(|op| matches!(op.as_str(), "DEL" | "PURGE"))
}

/// Escapes arbitrary key bytes into a valid KV key, one token per `/`-separated segment (see
/// the module docs).
fn escape(key: &[u8]) -> String {
    let mut out = String::with_capacity(key.len() + 4);
    for (i, segment) in key.split(|&b| b == b'/').enumerate() {
        if i > 0 {
            out.push('.');
        }
        if segment.is_empty() {
            out.push('=');
        }
        for &b in segment {
            if kept(b) {
                out.push(char::from(b));
            } else {
                out.push_str(&format!("={b:02X}"));
            }
        }
    }
    out
}

/// The key bytes [`escape`] turned into `escaped`; `None` for a string it never produces
/// (another writer's key, or one escaped by shardfold 0.1).
fn unescape(escaped: &str) -> Option<Vec<u8>> {
    let mut key = Vec::with_capacity(escaped.len());
    for (i, token) in escaped.split('.').enumerate() {
        if i > 0 {
            key.push(b'/');
        }
        let mut bytes = token.bytes();
        while let Some(b) = bytes.next() {
            match b {
                b'=' if token == "=" => {}
                b'=' => key.push((hex(bytes.next()?)? << 4) | hex(bytes.next()?)?),
                b if kept(b) => key.push(b),
                _ => return None,
            }
        }
    }
    // only the canonical form (uppercase hex, kept bytes not escaped) maps back
    (escape(&key) == escaped).then_some(key)
}

fn kept(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_')
}

fn hex(digit: u8) -> Option<u8> {
    char::from(digit)
        .to_digit(16)
        .and_then(|d| u8::try_from(d).ok())
}

impl KvStore for NatsStore {
    fn backend(&self) -> &'static str {
        BACKEND
    }

    fn read<'a>(&'a self, key: &'a [u8]) -> StoreFuture<'a, Option<(Vec<u8>, Version)>> {
        Box::pin(async move {
            let entry = self.kv.entry(escape(key)).await.map_err(err)?;
            Ok(entry.and_then(|e| match e.operation {
                Operation::Put => Some((e.value.to_vec(), e.revision)),
                Operation::Delete | Operation::Purge => None,
            }))
        })
    }

    fn create<'a>(&'a self, key: &'a [u8], value: &'a [u8]) -> StoreFuture<'a, WriteOutcome> {
        Box::pin(self.create_key(key, value))
    }

    fn update<'a>(
        &'a self,
        key: &'a [u8],
        value: &'a [u8],
        expected: Version,
    ) -> StoreFuture<'a, WriteOutcome> {
        Box::pin(async move {
            if expected == 0 {
                // revision 0 would mean "absent": never a version we returned
                return Ok(WriteOutcome::Conflict);
            }
            self.write(key, value, expected).await
        })
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
    use proptest::prelude::*;

    use super::{escape, unescape};

    /// A valid KV key whose tokens hold no `/`: what a subject wildcard can select by token.
    fn assert_valid(e: &str) {
        assert!(
            !e.is_empty() && !e.starts_with('.') && !e.ends_with('.'),
            "{e}"
        );
        assert!(e.split('.').all(|t| !t.is_empty()), "empty token: {e}");
        assert!(
            e.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_=.".contains(&b)),
            "{e}"
        );
    }

    #[test]
    fn escaping_is_injective_and_valid() {
        let keys: [&[u8]; 16] = [
            b"a.b", b"a=2Eb", b"a/b", b"\x00", b"{m}/0", b"..x", b"", b"/", b"//", b"a/", b"/a",
            b"a//b", b"=", b"a/=/b", b"a=2F", b"=2F",
        ];
        let escaped: Vec<String> = keys.iter().map(|k| escape(k)).collect();
        let mut unique = escaped.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), keys.len());
        for (k, e) in keys.iter().zip(&escaped) {
            assert_valid(e);
            assert_eq!(unescape(e).as_deref(), Some(*k), "{e}");
        }
        assert_eq!(escape(b"{m}/0"), "=7Bm=7D.0");
        assert_eq!(escape(b"a//b"), "a.=.b");
        assert_eq!(escape(b""), "=");
        assert_eq!(escape(b"p/a/"), "p.a.=");
    }

    #[test]
    fn only_canonical_escapes_unescape() {
        for bad in [
            "a=2e",
            "=2D",
            "req/=7Bx=7D",
            "a..b",
            "a=",
            "a=4",
            "a=GG",
            "==",
            "a*",
        ] {
            assert_eq!(unescape(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_directory_is_a_token_prefix() {
        // every key under `p/a/` escapes to `p.a.` + more tokens; `p/ab` and `p/a` do not
        for k in [&b"p/a/x"[..], b"p/a/b/y", b"p/a/"] {
            assert!(escape(k).starts_with("p.a."), "{k:?}");
        }
        assert!(!escape(b"p/ab").starts_with("p.a."));
        assert!(!escape(b"p/a").starts_with("p.a."));
    }

    proptest! {
        #[test]
        fn escape_round_trips(key in prop::collection::vec(
            prop_oneof![Just(b'/'), Just(b'.'), Just(b'='), any::<u8>()], 0..24,
        )) {
            let e = escape(&key);
            assert_valid(&e);
            prop_assert_eq!(unescape(&e), Some(key));
        }
    }
}
