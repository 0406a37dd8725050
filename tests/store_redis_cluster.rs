//! The conformance suite, the fold races (tasks and OS processes, `Metric` and `Series`) and
//! the windowed end-to-end check against a real 3-master Redis Cluster
//! (`SHARDFOLD_REDIS_CLUSTER_URL`, default the one `.ci/services.d/redis-cluster.sh` starts on
//! 127.0.0.1:7000-7002); then where the keys land, asked of the cluster itself
//! (`CLUSTER KEYSLOT`, `CLUSTER NODES`, a `SCAN` of each primary).
#![cfg(feature = "redis-cluster")]

use crate::store_common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use crate::series_common::{self as sc, T0};
use shardfold::store::{KvStore, ManualClock, Metric, WriteOutcome};

const DEFAULT_URL: &str = "redis+cluster://127.0.0.1:7000,127.0.0.1:7001,127.0.0.1:7002";

backend_tests!("redis-cluster", "SHARDFOLD_REDIS_CLUSTER_URL", DEFAULT_URL);

/// What `redis-cli` prints against node `addr` (`HOST:PORT`); `None` when redis-cli is not
/// installed.
fn cli_bytes(addr: &str, args: &[&str]) -> Option<Vec<u8>> {
    let (host, port) = addr.rsplit_once(':').expect("HOST:PORT");
    let all: Vec<&str> = ["-h", host, "-p", port]
        .iter()
        .chain(args)
        .copied()
        .collect();
    store_common::run_client("redis-cli", &all)
}

/// [`cli_bytes`] as text.
fn cli(addr: &str, args: &[&str]) -> Option<String> {
    let out = cli_bytes(addr, args)?;
    Some(String::from_utf8(out).expect("redis-cli prints text"))
}

/// The first seed node of the cluster URL.
fn seed() -> String {
    let url = backend_url();
    let hosts = url.strip_prefix("redis+cluster://").expect("cluster url");
    let hosts = hosts.rsplit_once('@').map_or(hosts, |(_, h)| h);
    hosts.split(',').next().expect("a seed").to_owned()
}

/// The primaries of the cluster (`CLUSTER NODES`): address → its slot ranges.
fn primaries() -> Option<BTreeMap<String, Vec<(u16, u16)>>> {
    let nodes = cli(&seed(), &["CLUSTER", "NODES"])?;
    let mut out = BTreeMap::new();
    for line in nodes.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 8 || !f[2].split(',').any(|flag| flag == "master") {
            continue;
        }
        let addr = f[1].split('@').next().expect("addr").to_owned();
        let ranges = f[8..]
            .iter()
            .filter(|r| !r.starts_with('['))
            .map(|r| {
                let (a, b) = r.split_once('-').unwrap_or((r, r));
                (a.parse().expect("slot"), b.parse().expect("slot"))
            })
            .collect();
        out.insert(addr, ranges);
    }
    Some(out)
}

/// The slot the cluster computes for each key (`CLUSTER KEYSLOT`, one redis-cli for all,
/// commands on its standard input).
fn keyslots(keys: &[Vec<u8>]) -> Vec<u16> {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let addr = seed();
    let (host, port) = addr.rsplit_once(':').expect("HOST:PORT");
    let mut child = Command::new("redis-cli")
        .args(["-h", host, "-p", port])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("redis-cli");
    let mut stdin = child.stdin.take().expect("stdin");
    for k in keys {
        assert!(
            !k.contains(&b' ') && !k.contains(&b'\n'),
            "plain key: {k:?}"
        );
        stdin.write_all(b"CLUSTER KEYSLOT ").expect("write");
        stdin.write_all(k).expect("write");
        stdin.write_all(b"\n").expect("write");
    }
    drop(stdin);
    let out = child.wait_with_output().expect("redis-cli output");
    assert!(out.status.success(), "redis-cli failed");
    let slots: Vec<u16> = String::from_utf8(out.stdout)
        .expect("text")
        .lines()
        .map(|l| l.trim().parse().expect("a slot number"))
        .collect();
    assert_eq!(slots.len(), keys.len(), "one slot per key");
    slots
}

fn keyslot(key: &[u8]) -> u16 {
    keyslots(&[key.to_vec()])[0]
}

/// The keys matching `pattern` that the primary at `addr` itself holds.
fn keys_on(addr: &str, pattern: &str) -> BTreeSet<Vec<u8>> {
    let out = cli(addr, &["--scan", "--pattern", pattern]).expect("redis-cli");
    out.lines().map(|l| l.as_bytes().to_vec()).collect()
}

fn owner(primaries: &BTreeMap<String, Vec<(u16, u16)>>, slot: u16) -> &str {
    primaries
        .iter()
        .find(|(_, ranges)| ranges.iter().any(|&(a, b)| (a..=b).contains(&slot)))
        .map(|(addr, _)| addr.as_str())
        .unwrap_or_else(|| panic!("slot {slot} served by no primary"))
}

/// A `Series` and a `Metric` keep all their keys in the slot of their hash tag, on the one
/// primary that serves it (checked by asking every primary what it holds); 48 metrics cover
/// all three primaries; untagged keys spread over the primaries, and one `list` finds them all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_land_on_the_slots_and_primaries_the_layout_names() {
    let Some(store) = store_common::store_or_skip(&backend_url()).await else {
        return;
    };
    let Some(primaries) = primaries() else {
        return;
    };
    assert_eq!(primaries.len(), 3, "a 3-master cluster: {primaries:?}");
    let name = suite::unique_prefix("dist");

    // a Series over 3 hours of events: records, bases, fingerprint sets, meta, cursor
    let clock = ManualClock::new(T0 + 3 * sc::HOUR);
    let series = sc::open(&store, &clock, &format!("{name}-series"), 4).await;
    for batch in sc::events(3_000, 180, 11).chunks(250) {
        assert!(series.fold(batch).await.expect("fold").is_complete());
    }
    let series_name = format!("{name}-series");
    let appended = metric_keys_in_one_slot(&store, &primaries, &series_name).await;
    has_kinds(&appended, &["/meta", "/r/"]);
    series
        .compact_range(T0, T0 + 4 * sc::HOUR)
        .await
        .expect("compact");
    let compacted = metric_keys_in_one_slot(&store, &primaries, &series_name).await;
    has_kinds(&compacted, &["/meta", "/b/", "/i/"]);

    // 48 `Metric`s of K = 4: each whole in one slot; together on every primary
    let mut per_primary: BTreeMap<String, usize> = BTreeMap::new();
    for i in 0..48 {
        let m = format!("{name}-m{i}");
        let (metric, _) = store_common::folded_metric(Arc::clone(&store), &m).await;
        let keys = metric_keys_in_one_slot(&store, &primaries, &m).await;
        assert_eq!(keys.len(), 4 + 2, "K shards + meta + present: {keys:?}");
        assert!(keys.contains(&metric.shard_store_key(3)));
        let slot = keyslot(&keys[0]);
        *per_primary
            .entry(owner(&primaries, slot).to_owned())
            .or_default() += 1;
    }
    eprintln!("metrics per primary: {per_primary:?}");
    assert_eq!(
        per_primary.len(),
        3,
        "metrics on every primary: {per_primary:?}"
    );

    // untagged keys hash whole: one directory spreads over the primaries, and list finds all
    let dir = format!("{name}-plain/");
    let mut want = Vec::new();
    for i in 0..24 {
        let k = format!("{dir}k{i:02}").into_bytes();
        assert_eq!(
            store.create(&k, b"x").await.expect("create"),
            WriteOutcome::Written(1)
        );
        want.push(k);
    }
    let mut holders = BTreeSet::new();
    for addr in primaries.keys() {
        if !keys_on(addr, &format!("{dir}*")).is_empty() {
            holders.insert(addr.clone());
        }
    }
    assert!(
        holders.len() >= 2,
        "24 untagged keys on one primary only: {holders:?}"
    );
    assert_eq!(store.list(dir.as_bytes()).await.expect("list"), want);
}

/// Some key of each kind (a part of the key name) is among `keys`.
fn has_kinds(keys: &[Vec<u8>], kinds: &[&str]) {
    for kind in kinds {
        assert!(
            keys.iter()
                .any(|k| String::from_utf8_lossy(k).contains(kind)),
            "no {kind} key among {} series keys",
            keys.len()
        );
    }
}

/// Lists every key of metric `m` (under its tag) and checks them against the cluster: one
/// slot, that of `{m}`, and every key held by that slot's primary and by no other.
async fn metric_keys_in_one_slot(
    store: &Arc<dyn KvStore>,
    primaries: &BTreeMap<String, Vec<(u16, u16)>>,
    m: &str,
) -> Vec<Vec<u8>> {
    let root = store.metric_key(m, "");
    let keys = store.list(&root).await.expect("list");
    assert!(!keys.is_empty(), "{m}: no keys");
    let slot = keyslot(format!("{{{m}}}").as_bytes());
    for (k, s) in keys.iter().zip(keyslots(&keys)) {
        assert_eq!(s, slot, "{}", String::from_utf8_lossy(k));
    }
    let home = owner(primaries, slot);
    let pattern = format!("{{{m}}}/*");
    for addr in primaries.keys() {
        let held = keys_on(addr, &pattern);
        if addr == home {
            let listed: BTreeSet<Vec<u8>> = keys.iter().cloned().collect();
            assert_eq!(held, listed, "{m}: the keys its primary holds");
        } else {
            assert!(
                held.is_empty(),
                "{m}: keys on {addr}, not its slot's primary"
            );
        }
    }
    keys
}

/// After a fold, `redis-cli -c` reads each shard's `d` field from the primary of its slot: an
/// envelope `decode` reads, and together the shards are exactly the folded events.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stored_values_are_envelopes_read_with_redis_cli() {
    use shardfold::codec;
    use shardfold::store::conformance::IdSum;
    let Some(store) = store_common::store_or_skip(&backend_url()).await else {
        return;
    };
    let (m, want) = store_common::folded_metric(store, &suite::unique_prefix("cluster-cli")).await;
    let mut merged = IdSum::default();
    for k in 0..m.shards() {
        let key = String::from_utf8(m.shard_store_key(k)).unwrap();
        let Some(mut out) = cli_bytes(&seed(), &["-c", "--raw", "HGET", &key, "d"]) else {
            return;
        };
        assert_eq!(
            out.pop(),
            Some(b'\n'),
            "redis-cli --raw ends with a newline"
        );
        let shard: IdSum = codec::decode(&out).expect("the cluster holds an envelope");
        shardfold::Merge::merge(&mut merged, &shard).unwrap();
    }
    assert_eq!(merged, want);
}

/// A metric folded through one connection reads the same through a second one, made from a
/// URL whose first seed node is down (port 1): the other seeds are enough.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_connection_sees_the_same_metric() {
    use shardfold::store::conformance::IdSum;
    let Some(a) = store_common::store_or_skip(&backend_url()).await else {
        return;
    };
    let url = backend_url().replacen("redis+cluster://", "redis+cluster://127.0.0.1:1,", 1);
    let b = shardfold::store::connect(&url)
        .await
        .expect("second connection");
    let name = suite::unique_prefix("cluster-two");
    let (m, want) = store_common::folded_metric(a, &name).await;
    let again: Metric<IdSum> = Metric::open(b, &name, m.shards()).await.expect("open");
    assert_eq!(again.query().await.expect("query"), want);
}

#[tokio::test]
async fn connection_errors_never_show_the_password() {
    store_common::connect_errors_hide_password(
        "redis",
        &[
            "redis+cluster://:hunter2@127.0.0.1:1",
            "redis+cluster://user:hunter2@127.0.0.1:1,127.0.0.1:2",
        ],
    )
    .await;
}
