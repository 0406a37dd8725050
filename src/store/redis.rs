//! Redis backend (feature `redis`): one round trip per read and per conditional write.
//!
//! A key is a Redis hash with two fields: `v`, the version (decimal, 1 at create, +1 per
//! update), and `d`, the value bytes. A read is one `HMGET key v d`; create and update are Lua
//! scripts (`EVALSHA`, atomic on the server, falling back to `EVAL` once per connection):
//!
//! * create: `EXISTS` → 0, else `HSET key v 1 d value` → 1;
//! * update: `HGET key v` must equal the expected version, then `HSET key v n+1 d value` → n+1,
//!   else 0.
//!
//! Metric keys carry a cluster hash tag, `{<metric>}/<k>`, so that a Redis Cluster keeps one
//! metric's shards and metadata in one slot.
//!
//! `rediss://` (TLS) needs the `redis-tls` feature: rustls, with the system's root
//! certificates, or a private CA given to [`RedisStore::connect_with_root_ca`]. Replies time out
//! after 10 s (the fold loop re-reads and retries; a timed-out write may have landed).

use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, Client, Script};

use super::{KvStore, StoreFuture, Version, WriteOutcome, check_size, written_if};
use crate::error::{Error, Result};

const BACKEND: &str = "redis";

/// Largest value: Redis's default `proto-max-bulk-len` (512 MiB).
const MAX_VALUE: usize = 512 << 20;

const CREATE: &str = r"
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'v', 1, 'd', ARGV[1])
return 1";

const UPDATE: &str = r"
local v = redis.call('HGET', KEYS[1], 'v')
if v ~= ARGV[1] then return 0 end
local n = tonumber(v) + 1
redis.call('HSET', KEYS[1], 'v', n, 'd', ARGV[2])
return n";

fn err(e: impl std::fmt::Display) -> Error {
    Error::store(BACKEND, e)
}

/// A Redis server (`redis://HOST:PORT[/DB]`), over one multiplexed connection.
#[derive(Clone)]
pub struct RedisStore {
    conn: MultiplexedConnection,
    create: Script,
    update: Script,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore").finish_non_exhaustive()
    }
}

impl RedisStore {
    /// Connects to the server at `url` (`redis://[user:password@]HOST:PORT[/DB]`).
    ///
    /// # Errors
    ///
    /// [`Error::Store`] when the URL does not parse or the server cannot be reached (the
    /// message never contains the URL).
    pub async fn connect(url: &str) -> Result<Self> {
        Self::with_client(Client::open(url).map_err(err)?).await
    }

    /// Connects over TLS (`rediss://…`) trusting the CA certificate `root_ca_pem` (PEM) instead
    /// of the system's roots.
    ///
    /// # Errors
    ///
    /// As [`connect`](Self::connect), and when the certificate does not parse.
    #[cfg(feature = "redis-tls")]
    pub async fn connect_with_root_ca(url: &str, root_ca_pem: &[u8]) -> Result<Self> {
        let certs = redis::TlsCertificates {
            client_tls: None,
            root_cert: Some(root_ca_pem.to_vec()),
        };
        Self::with_client(Client::build_with_tls(url, certs).map_err(err)?).await
    }

    async fn with_client(client: Client) -> Result<Self> {
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(5)))
            .set_response_timeout(Some(Duration::from_secs(10)));
        let conn = client
            .get_multiplexed_async_connection_with_config(&config)
            .await
            .map_err(err)?;
        Ok(RedisStore {
            conn,
            create: Script::new(CREATE),
            update: Script::new(UPDATE),
        })
    }
}

impl KvStore for RedisStore {
    fn backend(&self) -> &'static str {
        BACKEND
    }

    fn read<'a>(&'a self, key: &'a [u8]) -> StoreFuture<'a, Option<(Vec<u8>, Version)>> {
        Box::pin(async move {
            let mut conn = self.conn.clone();
            let (v, d): (Option<u64>, Option<Vec<u8>>) = redis::cmd("HMGET")
                .arg(key)
                .arg("v")
                .arg("d")
                .query_async(&mut conn)
                .await
                .map_err(err)?;
            match (v, d) {
                (Some(v), Some(d)) => Ok(Some((d, v))),
                (None, None) => Ok(None),
                _ => Err(err("key is not a shardfold hash (fields v, d)")),
            }
        })
    }

    fn create<'a>(&'a self, key: &'a [u8], value: &'a [u8]) -> StoreFuture<'a, WriteOutcome> {
        Box::pin(async move {
            check_size(value, MAX_VALUE)?;
            let mut conn = self.conn.clone();
            let n: u64 = self
                .create
                .key(key)
                .arg(value)
                .invoke_async(&mut conn)
                .await
                .map_err(err)?;
            Ok(written_if(n == 1, 1))
        })
    }

    fn update<'a>(
        &'a self,
        key: &'a [u8],
        value: &'a [u8],
        expected: Version,
    ) -> StoreFuture<'a, WriteOutcome> {
        Box::pin(async move {
            check_size(value, MAX_VALUE)?;
            let mut conn = self.conn.clone();
            let n: u64 = self
                .update
                .key(key)
                .arg(expected.to_string())
                .arg(value)
                .invoke_async(&mut conn)
                .await
                .map_err(err)?;
            Ok(written_if(n != 0, n))
        })
    }

    fn max_value_bytes(&self) -> usize {
        MAX_VALUE
    }

    fn metric_key(&self, metric: &str, part: &str) -> Vec<u8> {
        format!("{{{metric}}}/{part}").into_bytes()
    }
}
