//! NATS JetStream KV backend (feature `nats`, async-nats ~0.40).
//!
//! A key's version is its KV revision (the stream sequence of its last write). Create is a
//! publish with `Nats-Expected-Last-Subject-Sequence: 0` (the key must have no message), update
//! the same header with the revision read; the server refuses a mismatch atomically ("wrong
//! last sequence"), which is a [`WriteOutcome::Conflict`]. The bucket is created on first use
//! with `history = 1`.
//!
//! KV keys allow only `A-Z a-z 0-9 - _ / = .` (no leading or trailing `.`), so keys are
//! escaped: bytes of `A-Z a-z 0-9 - _ /` are kept, every other byte is written `=HH`
//! (uppercase hex) — an injective, readable encoding (`req/{x}` → `req/=7Bx=7D`).
//!
//! Values are limited by the server's `max_payload` (1 MiB by default) less 4 KiB for
//! headers; raise `max_payload` in the server configuration for larger states.
//!
//! Supported servers: nats-server 2.9 (Debian 12's 2.9.10 is what the suite runs against)
//! and later 2.x. async-nats is pinned to `~0.40` because 0.41 and later cannot create a KV
//! bucket on nats-server 2.9.

use async_nats::jetstream::kv::{Config, Operation, Store, UpdateErrorKind};
use bytes::Bytes;

use super::{KvStore, StoreFuture, Version, WriteOutcome, check_size};
use crate::error::{Error, Result};

const BACKEND: &str = "nats";

/// Room left for the subject and headers of a KV publish.
const HEADER_ROOM: usize = 4096;

fn err(e: impl std::fmt::Display) -> Error {
    Error::store(BACKEND, e)
}

/// A JetStream KV bucket (`nats://HOST:PORT/BUCKET`).
#[derive(Clone)]
pub struct NatsStore {
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
        let js = async_nats::jetstream::new(client);
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
            kv,
            max_value: max_payload.saturating_sub(HEADER_ROOM),
        })
    }

    async fn write(&self, key: &[u8], value: &[u8], expected: u64) -> Result<WriteOutcome> {
        check_size(value, self.max_value)?;
        let key = escape(key)?;
        match self
            .kv
            .update(&key, Bytes::copy_from_slice(value), expected)
            .await
        {
            Ok(revision) => Ok(WriteOutcome::Written(revision)),
            Err(e) if e.kind() == UpdateErrorKind::WrongLastRevision => Ok(WriteOutcome::Conflict),
            Err(e) => Err(err(e)),
        }
    }
}

/// Escapes arbitrary key bytes into a valid KV key (see the module docs).
fn escape(key: &[u8]) -> Result<String> {
    if key.is_empty() {
        return Err(err("empty key"));
    }
    let mut out = String::with_capacity(key.len());
    for &b in key {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'/') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("={b:02X}"));
        }
    }
    Ok(out)
}

impl KvStore for NatsStore {
    fn backend(&self) -> &'static str {
        BACKEND
    }

    fn read<'a>(&'a self, key: &'a [u8]) -> StoreFuture<'a, Option<(Vec<u8>, Version)>> {
        Box::pin(async move {
            let entry = self.kv.entry(escape(key)?).await.map_err(err)?;
            Ok(entry.and_then(|e| match e.operation {
                Operation::Put => Some((e.value.to_vec(), e.revision)),
                Operation::Delete | Operation::Purge => None,
            }))
        })
    }

    fn create<'a>(&'a self, key: &'a [u8], value: &'a [u8]) -> StoreFuture<'a, WriteOutcome> {
        Box::pin(self.write(key, value, 0))
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

    fn max_value_bytes(&self) -> usize {
        self.max_value
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::escape;

    #[test]
    fn escaping_is_injective_and_valid() {
        let keys: [&[u8]; 6] = [b"a.b", b"a=2Eb", b"a/b", b"\x00", b"{m}/0", b"..x"];
        let escaped: Vec<String> = keys.iter().map(|k| escape(k).unwrap()).collect();
        let mut unique = escaped.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), keys.len());
        for e in &escaped {
            assert!(
                e.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_/=".contains(&b))
            );
        }
        assert_eq!(escape(b"{m}/0").unwrap(), "=7Bm=7D/0");
        assert!(escape(b"").is_err());
    }
}
