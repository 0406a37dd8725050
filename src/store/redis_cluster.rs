//! The Redis Cluster side of [`RedisStore`](super::RedisStore) (feature `redis-cluster`): the
//! `redis+cluster://` URL, the cluster connection, and listing across every primary.
//!
//! Reads and the create/update/delete scripts go through `redis::cluster_async`, which routes
//! each to the primary of its first key's slot and follows `MOVED`/`ASK` itself. A listing of
//! keys without a hash tag has no index to read (see the module docs of `redis.rs`), so it
//! `SCAN`s every primary: `SCAN cursor MATCH <prefix>* TYPE hash COUNT 1000` on each, until
//! each cursor comes back to 0.

use std::time::Duration;

use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{Route, RoutingInfo, SingleNodeRoutingInfo, SlotAddr};
use redis::{RedisResult, Value};

use crate::error::{Error, Result};

/// The URL scheme of a cluster.
pub(super) const SCHEME: &str = "redis+cluster://";

/// Keys a `SCAN` step examines on a node.
const SCAN_COUNT: u32 = 1000;

fn bad(reason: &str) -> Error {
    Error::InvalidParameter {
        name: "store url",
        reason: reason.into(),
    }
}

/// The seed nodes of `redis+cluster://[user:password@]HOST:PORT[,HOST:PORT…]`, each as a
/// `redis://` URL carrying the credentials. Error messages never repeat the URL.
pub(super) fn node_urls(url: &str) -> Result<Vec<String>> {
    let rest = url
        .strip_prefix(SCHEME)
        .ok_or_else(|| bad("a cluster URL starts with redis+cluster://"))?;
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    let (auth, hosts) = match rest.rsplit_once('@') {
        Some((auth, hosts)) => (Some(auth), hosts),
        None => (None, rest),
    };
    if hosts.contains(['/', '?', '#']) {
        return Err(bad(
            "redis+cluster:// takes no database, path or options (a cluster has database 0 only)",
        ));
    }
    let nodes = hosts
        .split(',')
        .map(|node| node_url(auth, node))
        .collect::<Result<Vec<_>>>()?;
    Ok(nodes)
}

fn node_url(auth: Option<&str>, node: &str) -> Result<String> {
    let (host, port) = node.rsplit_once(':').ok_or_else(|| {
        bad("redis+cluster:// needs HOST:PORT of each seed node, separated by commas")
    })?;
    if host.is_empty() || port.parse::<u16>().is_err() {
        return Err(bad(
            "redis+cluster:// seed nodes are HOST:PORT with a port 1..=65535",
        ));
    }
    Ok(match auth {
        Some(auth) => format!("redis://{auth}@{node}"),
        None => format!("redis://{node}"),
    })
}

/// Connects to the cluster that `url`'s seed nodes belong to (5 s per connection attempt,
/// 10 s per request including the client's own retries and redirects).
pub(super) async fn connect(url: &str) -> Result<ClusterConnection> {
    let client = ClusterClient::builder(node_urls(url)?)
        .connection_timeout(Duration::from_secs(5))
        .response_timeout(Duration::from_secs(10))
        .build()
        .map_err(super::redis::err)?;
    client
        .get_async_connection()
        .await
        .map_err(super::redis::err)
}

/// `prefix` as a `SCAN MATCH` pattern that matches exactly the keys starting with it.
fn glob(prefix: &[u8]) -> Vec<u8> {
    let mut pattern = Vec::with_capacity(prefix.len() + 2);
    for &b in prefix {
        if matches!(b, b'*' | b'?' | b'[' | b']' | b'\\') {
            pattern.push(b'\\');
        }
        pattern.push(b);
    }
    pattern.push(b'*');
    pattern
}

/// One slot served by each primary, from `CLUSTER SLOTS` (`[start, end, [host, port, id], …]`
/// per slot range): a route to each primary that the client resolves through its slot map.
fn primaries(slots: &Value) -> Vec<u16> {
    let Value::Array(ranges) = slots else {
        return Vec::new();
    };
    let mut seen: Vec<(&Value, u16)> = Vec::new();
    for range in ranges {
        let Value::Array(fields) = range else {
            continue;
        };
        let (Some(Value::Int(start)), Some(Value::Array(master))) = (fields.first(), fields.get(2))
        else {
            continue;
        };
        let (Some(id), Ok(start)) = (master.get(2), u16::try_from(*start)) else {
            continue;
        };
        if !seen.iter().any(|(seen_id, _)| *seen_id == id) {
            seen.push((id, start));
        }
    }
    seen.into_iter().map(|(_, slot)| slot).collect()
}

/// Every hash key starting with `prefix`, over all primaries, in ascending byte order.
pub(super) async fn scan_all(
    conn: &mut ClusterConnection,
    prefix: &[u8],
) -> RedisResult<Vec<Vec<u8>>> {
    let slots = conn
        .route_command(
            redis::cmd("CLUSTER").arg("SLOTS").clone(),
            RoutingInfo::SingleNode(SingleNodeRoutingInfo::RandomPrimary),
        )
        .await?;
    let primaries = primaries(&slots);
    if primaries.is_empty() {
        return Err(redis::RedisError::from((
            redis::ErrorKind::UnexpectedReturnType,
            "CLUSTER SLOTS named no primary",
        )));
    }
    let pattern = glob(prefix);
    let mut keys = Vec::new();
    for slot in primaries {
        scan_node(conn, slot, &pattern, &mut keys).await?;
    }
    keys.retain(|k| k.starts_with(prefix));
    keys.sort_unstable();
    keys.dedup(); // SCAN may return a key twice (the node's table grew meanwhile)
    Ok(keys)
}

/// `SCAN`s the primary serving `slot` to the end, appending the keys matching `pattern`.
async fn scan_node(
    conn: &mut ClusterConnection,
    slot: u16,
    pattern: &[u8],
    keys: &mut Vec<Vec<u8>>,
) -> RedisResult<()> {
    let route = RoutingInfo::SingleNode(SingleNodeRoutingInfo::SpecificNode(Route::new(
        slot,
        SlotAddr::Master,
    )));
    let mut cursor: u64 = 0;
    loop {
        let mut scan = redis::cmd("SCAN");
        scan.arg(cursor)
            .arg("MATCH")
            .arg(pattern)
            .arg("TYPE")
            .arg("hash")
            .arg("COUNT")
            .arg(SCAN_COUNT);
        let reply = conn.route_command(scan, route.clone()).await?;
        let (next, batch): (u64, Vec<Vec<u8>>) = redis::FromRedisValue::from_redis_value(reply)?;
        keys.extend(batch);
        if next == 0 {
            return Ok(());
        }
        cursor = next;
    }
}

#[cfg(test)]
mod tests {
    use super::{glob, node_urls, primaries};
    use crate::Error;
    use redis::Value;

    fn reason(url: &str) -> String {
        match node_urls(url) {
            Err(Error::InvalidParameter { reason, .. }) => reason,
            other => panic!("{url}: {other:?}"),
        }
    }

    #[test]
    fn cluster_urls_name_seed_nodes_with_their_credentials() {
        let nodes = node_urls("redis+cluster://127.0.0.1:7000,127.0.0.1:7001/");
        let want = ["redis://127.0.0.1:7000", "redis://127.0.0.1:7001"].map(String::from);
        assert_eq!(nodes.ok(), Some(want.to_vec()));
        let nodes = node_urls("redis+cluster://u:p@w@h:1,[::1]:2");
        let want = ["redis://u:p@w@h:1", "redis://u:p@w@[::1]:2"].map(String::from);
        assert_eq!(nodes.ok(), Some(want.to_vec()));
    }

    #[test]
    fn bad_cluster_urls_are_refused_without_the_password() {
        assert!(reason("redis+cluster://:hunter2@h").contains("HOST:PORT"));
        assert!(reason("redis+cluster://:hunter2@h:1,h:x").contains("port"));
        assert!(reason("redis+cluster://:hunter2@h:1,").contains("HOST:PORT"));
        assert!(reason("redis+cluster://:hunter2@h:1/0").contains("no database"));
        assert!(reason("redis+cluster://:hunter2@:1").contains("HOST:PORT"));
        assert!(!reason("redis+cluster://:hunter2@h:99999").contains("hunter2"));
    }

    #[test]
    fn glob_patterns_match_the_prefix_literally() {
        assert_eq!(glob(b"a/b"), b"a/b*");
        assert_eq!(glob(b""), b"*");
        assert_eq!(glob(b"{x}*?[^]\\\xff"), b"{x}\\*\\?\\[^\\]\\\\\xff*");
    }

    #[test]
    fn one_slot_per_primary() {
        let node = |id: &str| {
            Value::Array(vec![
                Value::BulkString(b"127.0.0.1".to_vec()),
                Value::Int(7000),
                Value::BulkString(id.as_bytes().to_vec()),
            ])
        };
        let range =
            |start, end, id| Value::Array(vec![Value::Int(start), Value::Int(end), node(id)]);
        let slots = Value::Array(vec![
            range(0, 99, "a"),
            range(100, 199, "b"),
            range(200, 16383, "a"),
        ]);
        assert_eq!(primaries(&slots), [0, 100]);
        assert_eq!(primaries(&Value::Nil), Vec::<u16>::new());
    }
}
