//! Redis backend (feature `redis`): one round trip per read and per conditional write.
//!
//! A key is a Redis hash with two fields: `v`, the version (decimal, 1 at create, +1 per
//! update), and `d`, the value bytes. A read is one `HMGET key v d`; create and update are Lua
//! scripts (`EVALSHA`, atomic on the server, falling back to `EVAL` once per connection):
//!
//! * create: `EXISTS` → 0, else `HSET key v 1 d value` and `ZADD index 0 key` → 1 (no
//!   `ZADD` for an untagged key on a cluster: see below);
//! * update: `HGET key v` must equal the expected version, then `HSET key v n+1 d value` → n+1,
//!   else 0 (an update never creates, so it leaves the index alone);
//! * delete: `DEL key` and `ZREM index key` → whether the key existed.
//!
//! Metric keys carry a cluster hash tag, `{<metric>}/<k>`, so that a Redis Cluster keeps one
//! metric's shards and metadata in one slot (see [`RedisStore`]).
//!
//! # Listing: the key index
//!
//! `SCAN` walks the whole keyspace, so listing keeps its own index instead: a sorted set whose
//! members are the keys, all with score 0, so that `ZRANGEBYLEX index [prefix (successor`
//! returns the keys under a prefix in byte order, in O(log N + keys listed). The index of a
//! key lives in the key's cluster slot, so create and delete stay one atomic script:
//!
//! * a key with a hash tag (Redis's rule: the first `{` and the first `}` after it, with
//!   something between them) is indexed in `{tag}\xffidx` (the bytes `{`, the tag, `}`,
//!   `0xFF`, `idx`);
//! * every other key is indexed in the global `shardfold\xffidx` (on a single server; a
//!   cluster keeps no index of untagged keys and lists them with `SCAN`).
//!
//! These index keys are reserved: creating or deleting one is refused. A listing reads one
//! index: the one of the prefix's tag when the prefix holds a complete `{tag}`, else the
//! global one. So a prefix that stops before the end of a key's hash tag (`""`, `{met`) does
//! not list that tagged key: list under the tag (`{metric}/…`), as shardfold's layouts do.
//! Keys created before the index existed (shardfold 0.1 without listing) are not indexed and
//! never listed.
//!
//! `rediss://` (TLS) needs the `redis-tls` feature: rustls, with the system's root
//! certificates, or a private CA given to [`RedisStore::connect_with_root_ca`]. Replies time out
//! after 10 s (the fold loop re-reads and retries; a timed-out write may have landed).
//!
//! # Redis Cluster
//!
//! `redis+cluster://` (feature `redis-cluster`): see the [`RedisStore`] docs for what lands
//! where and how listing works on a cluster.
//!
//! # Reconnecting
//!
//! The store holds one multiplexed connection and dials a new one when it is gone: a call
//! that fails because the connection dropped (reset, closed by the server's `timeout`, a
//! Lambda instance frozen and thawed) or timed out returns its transient [`Error::Store`] and
//! drops that connection; the next call dials again (5 s connection timeout). A write is never
//! re-sent by the store itself, so a reconnect cannot apply a write twice: the fold loop
//! re-reads before it retries. A cluster connection reconnects to each node by itself.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use redis::aio::{ConnectionLike, MultiplexedConnection};
#[cfg(feature = "redis-cluster")]
use redis::cluster_async::ClusterConnection;
use redis::{
    AsyncConnectionConfig, Client, Cmd, ErrorKind, Pipeline, RedisError, RedisFuture, Script,
    ServerErrorKind, Value,
};

use super::memory::prefix_end;
use super::{KvStore, StoreFuture, Version, WriteOutcome, check_size, written_if};
use crate::error::{Error, Result, StoreErrorKind};

const BACKEND: &str = "redis";

/// Largest value: Redis's default `proto-max-bulk-len` (512 MiB).
const MAX_VALUE: usize = 512 << 20;

/// `KEYS[1]` the key, `KEYS[2]` its index (absent: an untagged key on a cluster).
const CREATE: &str = r"
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'v', 1, 'd', ARGV[1])
if KEYS[2] then redis.call('ZADD', KEYS[2], 0, KEYS[1]) end
return 1";

/// `KEYS[1]` the key, `KEYS[2]` its index (absent: an untagged key on a cluster).
const DELETE: &str = r"
local n = redis.call('DEL', KEYS[1])
if KEYS[2] then redis.call('ZREM', KEYS[2], KEYS[1]) end
return n";

/// What follows `{tag}` in the name of a tag's index.
const INDEX_SUFFIX: &[u8] = b"\xffidx";

/// The index of keys without a hash tag.
const GLOBAL_INDEX: &[u8] = b"shardfold\xffidx";

const UPDATE: &str = r"
local v = redis.call('HGET', KEYS[1], 'v')
if v ~= ARGV[1] then return 0 end
local n = tonumber(v) + 1
redis.call('HSET', KEYS[1], 'v', n, 'd', ARGV[2])
return n";

pub(super) fn err(e: RedisError) -> Error {
    Error::store_from(BACKEND, kind_of(&e), e)
}

/// An error of this store's own checks: the key holds something else, or is reserved.
fn rejected(message: &str) -> Error {
    Error::store(BACKEND, StoreErrorKind::Rejected, message)
}

/// Whether `e` may pass on retry (see [`StoreErrorKind`]).
fn kind_of(e: &RedisError) -> StoreErrorKind {
    if e.is_timeout() {
        return StoreErrorKind::Timeout;
    }
    if e.is_io_error() || e.is_connection_dropped() || e.is_connection_refusal() {
        return StoreErrorKind::Connection;
    }
    match e.kind() {
        ErrorKind::AuthenticationFailed | ErrorKind::Server(ServerErrorKind::NoPerm) => {
            StoreErrorKind::Auth
        }
        ErrorKind::ClusterConnectionNotFound => StoreErrorKind::Connection,
        ErrorKind::Server(
            ServerErrorKind::BusyLoading
            | ServerErrorKind::TryAgain
            | ServerErrorKind::Moved
            | ServerErrorKind::Ask
            | ServerErrorKind::ClusterDown
            | ServerErrorKind::MasterDown
            | ServerErrorKind::ReadOnly,
        ) => StoreErrorKind::Busy,
        ErrorKind::Server(ServerErrorKind::ResponseError)
            if e.detail()
                .is_some_and(|d| d.contains("max number of clients")) =>
        {
            StoreErrorKind::Busy
        }
        ErrorKind::Server(_) | ErrorKind::UnexpectedReturnType => StoreErrorKind::Rejected,
        ErrorKind::Parse => StoreErrorKind::Connection,
        ErrorKind::InvalidClientConfig => StoreErrorKind::Config,
        ErrorKind::Extension => match e.code() {
            Some("WRONGTYPE" | "NOSCRIPT" | "NOTBUSY") => StoreErrorKind::Rejected,
            Some("NOAUTH" | "WRONGPASS") => StoreErrorKind::Auth,
            Some("OOM" | "BUSY" | "MISCONF" | "NOREPLICAS" | "LOADING") => StoreErrorKind::Busy,
            _ => StoreErrorKind::Other,
        },
        _ => StoreErrorKind::Other,
    }
}

/// A Redis server (`redis://HOST:PORT[/DB]`), over one multiplexed connection, dialed again
/// after it drops, or a Redis Cluster (`redis+cluster://HOST:PORT,…`, feature
/// `redis-cluster`) over one cluster connection (see below). Clones share the connection.
///
/// # Redis Cluster
///
/// With the feature `redis-cluster`, [`RedisStore::connect`] also takes
/// `redis+cluster://[user:password@]HOST:PORT[,HOST:PORT…]`: the seed nodes of a cluster (one
/// is enough; list several so that connecting survives one being down). The client learns the
/// slot map from them, sends each command to the primary of its key's slot, follows `MOVED` and
/// `ASK`, and refreshes the map after a failover. What the cluster must offer: every slot
/// covered (`cluster_state:ok`; `CLUSTERDOWN` and `TRYAGAIN` are transient errors), Lua
/// (`EVALSHA`, `SCRIPT LOAD`), and `SCAN … TYPE` (Redis ≥ 6). The keys and values are the ones
/// a single server holds; only the placement differs:
///
/// * every script names keys of **one slot** only: a key and its tag's index share the tag,
///   so create and delete stay one atomic script on one primary; a key **without** a hash tag
///   has no index on a cluster (a global index would live in another slot), so it is created
///   and deleted alone;
/// * **one metric is one slot.** Both layouts spell every key of a metric under its root
///   `{<metric>}/` ([`Metric`](super::Metric): `meta`, `present`, the K shards;
///   [`Series`](super::Series): `meta`, `cursor`, records, bases, fingerprint sets), because
///   listing a directory of a metric (`{<metric>}/r/<bucket>/`, which compaction and sweeps do
///   all the time) must read one index in O(log N), and an index can only be kept atomically
///   with the keys of its own slot. Different metrics hash to different slots, so the metrics
///   spread over the primaries; one metric's load stays on one primary (and its replicas). The
///   spelling is FORMAT.md's, the same as on a single server, so data moved between a server
///   and a cluster (`redis-cli --cluster import`) keeps working;
/// * a listing under a prefix that holds a complete tag (`{<metric>}/…`, what the layouts
///   list) reads that tag's index on its primary, as on a single server; any other prefix
///   `SCAN`s **every primary** (`MATCH <prefix>* TYPE hash`) and sorts the union: it finds
///   untagged and tagged hashes alike, costs a pass over every primary's keyspace, and, like
///   `SCAN`, never reports a key deleted before it began and may miss one created while it
///   runs.
///
/// The cluster client re-sends a request itself after a reconnect or a redirect. Every write
/// is conditional (create if absent, update at a version), so a re-sent write that had
/// already landed reports [`WriteOutcome::Conflict`] and the fold loop re-reads; a re-sent
/// delete reports `false`.
///
#[derive(Clone)]
pub struct RedisStore {
    conn: Conn,
    create: Script,
    update: Script,
    delete: Script,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore").finish_non_exhaustive()
    }
}

impl RedisStore {
    /// Connects to the server at `url` (`redis://[user:password@]HOST:PORT[/DB]`), or with
    /// the feature `redis-cluster` to the cluster of the seed nodes of
    /// `redis+cluster://[user:password@]HOST:PORT[,HOST:PORT…]` (see the
    /// [Redis Cluster](RedisStore#redis-cluster) section).
    ///
    /// # Errors
    ///
    /// [`Error::Store`] when the URL does not parse or the server cannot be reached (the
    /// message never contains the URL); [`Error::InvalidParameter`] (`store url`) when a
    /// cluster URL names no `HOST:PORT` seed node or has a database, path or options.
    pub async fn connect(url: &str) -> Result<Self> {
        #[cfg(feature = "redis-cluster")]
        if url.starts_with(super::redis_cluster::SCHEME) {
            let conn = super::redis_cluster::connect(url).await?;
            return Ok(Self::with_conn(Conn::Cluster(conn)));
        }
        Self::with_client(Client::open(url).map_err(err)?).await
    }

    /// Whether this store talks to a Redis Cluster (`redis+cluster://`).
    pub fn is_cluster(&self) -> bool {
        match self.conn {
            Conn::Single(_) => false,
            #[cfg(feature = "redis-cluster")]
            Conn::Cluster(_) => true,
        }
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
        #[cfg(feature = "redis-tls")]
        install_rustls_provider();
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(5)))
            .set_response_timeout(Some(Duration::from_secs(10)));
        let link = Arc::new(Link {
            client,
            config,
            live: Mutex::new((0, None)),
            dialing: tokio::sync::Mutex::new(()),
        });
        link.get().await?;
        Ok(Self::with_conn(Conn::Single(link)))
    }

    fn with_conn(conn: Conn) -> Self {
        RedisStore {
            conn,
            create: Script::new(CREATE),
            update: Script::new(UPDATE),
            delete: Script::new(DELETE),
        }
    }

    /// The connection for one call (dialing one if needed).
    async fn handle(&self) -> Result<Handle> {
        Ok(match &self.conn {
            Conn::Single(link) => {
                let (generation, conn) = link.get().await?;
                Handle::Single(Arc::clone(link), generation, conn)
            }
            #[cfg(feature = "redis-cluster")]
            Conn::Cluster(conn) => Handle::Cluster(conn.clone()),
        })
    }

    /// `result` as a crate result; a dead single-server connection is dropped so that the next
    /// call dials again (a cluster connection reconnects by itself).
    fn done<T>(&self, handle: &Handle, result: redis::RedisResult<T>) -> Result<T> {
        result.map_err(|e| {
            match handle {
                Handle::Single(link, generation, _) if is_dead(&e) => {
                    tracing::debug!(error = %e, "redis connection lost; the next call reconnects");
                    link.forget(*generation);
                }
                _ => {}
            }
            err(e)
        })
    }

    /// The index `key` is kept in: `None` for an untagged key on a cluster (see the type's
    /// docs). Index keys themselves are refused.
    fn index_for(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        let index = index_of(key);
        if index == key {
            return Err(rejected("reserved key (a shardfold list index)"));
        }
        Ok((hash_tag(key).is_some() || !self.is_cluster()).then_some(index))
    }
}

/// How a [`RedisStore`] reaches its data.
#[derive(Clone)]
enum Conn {
    Single(Arc<Link>),
    #[cfg(feature = "redis-cluster")]
    Cluster(ClusterConnection),
}

/// The connection one call uses; a single server's with its [`Link`] and generation.
enum Handle {
    Single(Arc<Link>, u64, MultiplexedConnection),
    #[cfg(feature = "redis-cluster")]
    Cluster(ClusterConnection),
}

impl ConnectionLike for Handle {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Handle::Single(_, _, conn) => conn.req_packed_command(cmd),
            #[cfg(feature = "redis-cluster")]
            Handle::Cluster(conn) => conn.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        cmd: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Handle::Single(_, _, conn) => conn.req_packed_commands(cmd, offset, count),
            #[cfg(feature = "redis-cluster")]
            Handle::Cluster(conn) => conn.req_packed_commands(cmd, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Handle::Single(_, _, conn) => conn.get_db(),
            #[cfg(feature = "redis-cluster")]
            Handle::Cluster(conn) => conn.get_db(),
        }
    }
}

/// The connection of a [`RedisStore`]: the one live multiplexed connection with its generation
/// (`None` once dropped), and a lock so that one task dials at a time.
struct Link {
    client: Client,
    config: AsyncConnectionConfig,
    live: Mutex<(u64, Option<MultiplexedConnection>)>,
    dialing: tokio::sync::Mutex<()>,
}

impl Link {
    fn live(&self) -> Option<(u64, MultiplexedConnection)> {
        let live = self.live.lock().unwrap_or_else(PoisonError::into_inner);
        live.1.clone().map(|c| (live.0, c))
    }

    async fn get(&self) -> Result<(u64, MultiplexedConnection)> {
        if let Some(live) = self.live() {
            return Ok(live);
        }
        let _dialing = self.dialing.lock().await;
        if let Some(live) = self.live() {
            return Ok(live); // another task dialed meanwhile
        }
        let conn = self
            .client
            .get_multiplexed_async_connection_with_config(&self.config)
            .await
            .map_err(err)?;
        let mut live = self.live.lock().unwrap_or_else(PoisonError::into_inner);
        live.0 += 1;
        live.1 = Some(conn.clone());
        Ok((live.0, conn))
    }

    /// Drops the connection of `generation` if it is still the live one.
    fn forget(&self, generation: u64) {
        let mut live = self.live.lock().unwrap_or_else(PoisonError::into_inner);
        if live.0 == generation {
            live.1 = None;
        }
    }
}

/// Whether `e` means the connection is unusable: dropped, reset, a protocol error, or no reply
/// in time (a half-open connection looks like that).
fn is_dead(e: &RedisError) -> bool {
    e.is_unrecoverable_error() || e.is_connection_dropped() || e.is_timeout()
}

/// The hash tag of `key` with its braces (`{tag}`), by Redis's rule: the first `{`, the first
/// `}` after it, and at least one byte between them. `None` when the key has none.
fn hash_tag(key: &[u8]) -> Option<&[u8]> {
    let open = key.iter().position(|&b| b == b'{')?;
    let len = key[open + 1..].iter().position(|&b| b == b'}')?;
    (len > 0).then(|| &key[open..open + len + 2])
}

/// The index holding `key`, or the index to list for the prefix `key` (see the module docs).
fn index_of(key: &[u8]) -> Vec<u8> {
    match hash_tag(key) {
        Some(tag) => [tag, INDEX_SUFFIX].concat(),
        None => GLOBAL_INDEX.to_vec(),
    }
}

/// The `ZRANGEBYLEX` bounds of the keys starting with `prefix`.
fn lex_range(prefix: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let min = [b"[", prefix].concat();
    let max = prefix_end(prefix).map_or_else(|| b"+".to_vec(), |end| [b"(", &end[..]].concat());
    (min, max)
}

impl KvStore for RedisStore {
    fn backend(&self) -> &'static str {
        BACKEND
    }

    fn read<'a>(&'a self, key: &'a [u8]) -> StoreFuture<'a, Option<(Vec<u8>, Version)>> {
        Box::pin(async move {
            let mut conn = self.handle().await?;
            let reply = redis::cmd("HMGET")
                .arg(key)
                .arg("v")
                .arg("d")
                .query_async(&mut conn)
                .await;
            let (v, d): (Option<u64>, Option<Vec<u8>>) = self.done(&conn, reply)?;
            match (v, d) {
                (Some(v), Some(d)) => Ok(Some((d, v))),
                (None, None) => Ok(None),
                _ => Err(rejected("key is not a shardfold hash (fields v, d)")),
            }
        })
    }

    fn create<'a>(&'a self, key: &'a [u8], value: &'a [u8]) -> StoreFuture<'a, WriteOutcome> {
        Box::pin(async move {
            check_size(value, MAX_VALUE)?;
            let index = self.index_for(key)?;
            let mut conn = self.handle().await?;
            let mut call = self.create.key(key);
            call.key(index).arg(value); // `None`: no KEYS[2]
            let reply = call.invoke_async(&mut conn).await;
            let n: u64 = self.done(&conn, reply)?;
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
            let mut conn = self.handle().await?;
            let reply = self
                .update
                .key(key)
                .arg(expected.to_string())
                .arg(value)
                .invoke_async(&mut conn)
                .await;
            let n: u64 = self.done(&conn, reply)?;
            Ok(written_if(n != 0, n))
        })
    }

    fn list<'a>(&'a self, prefix: &'a [u8]) -> StoreFuture<'a, Vec<Vec<u8>>> {
        Box::pin(async move {
            let mut conn = self.handle().await?;
            #[cfg(feature = "redis-cluster")]
            if let (Handle::Cluster(cluster), None) = (&mut conn, hash_tag(prefix)) {
                let reply = super::redis_cluster::scan_all(cluster, prefix).await;
                return self.done(&conn, reply);
            }
            let (min, max) = lex_range(prefix);
            let reply = redis::cmd("ZRANGEBYLEX")
                .arg(index_of(prefix))
                .arg(min)
                .arg(max)
                .query_async(&mut conn)
                .await;
            self.done(&conn, reply)
        })
    }

    fn delete<'a>(&'a self, key: &'a [u8]) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            let index = self.index_for(key)?;
            let mut conn = self.handle().await?;
            let mut call = self.delete.key(key);
            call.key(index);
            let reply = call.invoke_async(&mut conn).await;
            let n: u64 = self.done(&conn, reply)?;
            Ok(n == 1)
        })
    }

    fn max_value_bytes(&self) -> usize {
        MAX_VALUE
    }

    fn metric_key(&self, metric: &str, part: &str) -> Vec<u8> {
        format!("{{{metric}}}/{part}").into_bytes()
    }
}

/// The redis client builds its TLS configuration with rustls' process-wide default crypto
/// provider, which rustls cannot choose by itself when a build enables two (ring, which
/// `redis-tls` uses, and aws-lc-rs, which the AWS crates of the `s3`/`dynamodb` features
/// enable): it would panic. When no default is installed yet, ring's is installed; a
/// provider the application installed first is kept.
#[cfg(feature = "redis-tls")]
fn install_rustls_provider() {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        // a concurrent install wins the race harmlessly
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
}

#[cfg(test)]
mod tests {
    use super::{hash_tag, index_of, lex_range};

    #[test]
    fn hash_tags_follow_the_redis_rule() {
        assert_eq!(hash_tag(b"{m}/0"), Some(&b"{m}"[..]));
        assert_eq!(hash_tag(b"a{b}c{d}"), Some(&b"{b}"[..]));
        assert_eq!(
            hash_tag(b"{}x{y}"),
            None,
            "empty first tag: whole key hashed"
        );
        assert_eq!(hash_tag(b"{{a}}"), Some(&b"{{a}"[..]));
        assert_eq!(hash_tag(b"{abc"), None);
        assert_eq!(hash_tag(b"plain/key"), None);
    }

    #[test]
    fn a_key_and_its_prefixes_with_the_whole_tag_share_an_index() {
        assert_eq!(index_of(b"{m}/0"), b"{m}\xffidx");
        assert_eq!(index_of(b"{m}/"), index_of(b"{m}/0"));
        assert_eq!(index_of(b"{m}"), index_of(b"{m}/0"));
        assert_eq!(index_of(b"{m"), b"shardfold\xffidx");
        assert_eq!(index_of(b"t/x"), b"shardfold\xffidx");
        assert_eq!(index_of(&index_of(b"{m}/0")), index_of(b"{m}/0"));
    }

    #[test]
    fn lex_ranges_cover_exactly_the_prefix() {
        assert_eq!(lex_range(b"a/"), (b"[a/".to_vec(), b"(a0".to_vec()));
        assert_eq!(lex_range(b"\xff"), (b"[\xff".to_vec(), b"+".to_vec()));
        assert_eq!(lex_range(b""), (b"[".to_vec(), b"+".to_vec()));
    }
}
