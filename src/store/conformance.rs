//! The conformance suite every [`KvStore`] backend runs (feature `testkit`).
//!
//! [`check_store`] runs the key-value checks: conditional-write semantics, create-if-absent
//! races, values of 1 MiB and more (up to the backend's limit), binary-safe keys and values,
//! 16 concurrent writers × 1000 increments ending at the exact total, and [`listing`] by
//! prefix with deletes (alone and racing creates). The fold-level checks (a lost reply, a
//! many-writer race with duplicates, across tasks and OS processes) are in [`race`]. The checks panic with a message on failure, like assertions.

pub mod faults;
pub mod listing;
pub mod race;
mod wrappers;

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use super::{KvStore, RetryPolicy, Version, WriteOutcome};
use crate::codec;
use crate::error::Error;
use crate::{Count, Insert};

pub use faults::{FaultCounts, FaultPlan, FaultStore};
pub use listing::{list_and_delete, list_delete_race};
pub use race::{IdSum, TestEvent};
pub use wrappers::{CountingStore, Counts, LostReplyStore};

/// A key prefix unique to this process and moment, so reruns against a live server never see
/// each other's keys.
pub fn unique_prefix(tag: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("t-{tag}-{}-{nanos:x}", std::process::id())
}

/// Runs every key-value check against `store`, under keys starting with `prefix`: the
/// many-writers race at 16 writers × 1000 increments.
pub async fn check_store(store: Arc<dyn KvStore>, prefix: &str) {
    check_store_with(store, prefix, 16, 1000).await;
}

/// [`check_store`] with the many-writers race at `writers` × `each` increments: for stores
/// behind an HTTP emulator that serves a hundred requests a second (moto, dynalite), where
/// 16 × 1000 contended increments take many minutes. Every other check is the same.
pub async fn check_store_with(store: Arc<dyn KvStore>, prefix: &str, writers: u64, each: u64) {
    conditional_writes(&*store, prefix).await;
    create_race(&store, prefix).await;
    large_values(&*store, prefix).await;
    binary_keys_and_values(&*store, prefix).await;
    concurrent_increments(&store, prefix, writers, each).await;
    list_and_delete(&*store, prefix).await;
    list_delete_race(&store, prefix, 8, 50).await;
}

fn key(prefix: &str, name: &str) -> Vec<u8> {
    format!("{prefix}/{name}").into_bytes()
}

async fn must_read(store: &dyn KvStore, key: &[u8]) -> Option<(Vec<u8>, Version)> {
    match store.read(key).await {
        Ok(found) => found,
        Err(e) => panic!("{}: read failed: {e}", store.backend()),
    }
}

async fn must_write(
    store: &dyn KvStore,
    key: &[u8],
    value: &[u8],
    v: Option<Version>,
) -> WriteOutcome {
    let out = match v {
        None => store.create(key, value).await,
        Some(v) => store.update(key, value, v).await,
    };
    out.unwrap_or_else(|e| panic!("{}: write failed: {e}", store.backend()))
}

fn written(out: WriteOutcome, what: &str) -> Version {
    match out {
        WriteOutcome::Written(v) => v,
        WriteOutcome::Conflict => panic!("{what}: unexpected conflict"),
    }
}

/// Create only if absent, update only at the version read, versions that grow, conflicts as
/// outcomes.
pub async fn conditional_writes(store: &dyn KvStore, prefix: &str) {
    let k = key(prefix, "cas");
    let b = store.backend();
    assert_eq!(
        must_read(store, &k).await,
        None,
        "{b}: fresh key must be absent"
    );
    assert_eq!(
        must_write(store, &k, b"x", Some(1)).await,
        WriteOutcome::Conflict,
        "{b}: update of an absent key"
    );
    assert_eq!(
        must_read(store, &k).await,
        None,
        "{b}: a conflicting update must not create"
    );
    let v1 = written(must_write(store, &k, b"one", None).await, "create");
    assert_eq!(
        must_write(store, &k, b"two", None).await,
        WriteOutcome::Conflict,
        "{b}: second create"
    );
    assert_eq!(
        must_read(store, &k).await,
        Some((b"one".to_vec(), v1)),
        "{b}: create must not overwrite"
    );
    let v2 = written(must_write(store, &k, b"two", Some(v1)).await, "update");
    assert!(v2 > v1, "{b}: versions must grow ({v1} then {v2})");
    assert_eq!(
        must_write(store, &k, b"three", Some(v1)).await,
        WriteOutcome::Conflict,
        "{b}: stale update"
    );
    assert_eq!(
        must_read(store, &k).await,
        Some((b"two".to_vec(), v2)),
        "{b}: stale update must not write"
    );
    let v3 = written(
        must_write(store, &k, b"three", Some(v2)).await,
        "second update",
    );
    assert!(v3 > v2, "{b}: versions must grow ({v2} then {v3})");
    let other = key(prefix, "cas-other");
    assert_eq!(
        must_read(store, &other).await,
        None,
        "{b}: keys must be independent"
    );
}

/// 16 concurrent creates of one key: exactly one wins, and its value is stored.
pub async fn create_race(store: &Arc<dyn KvStore>, prefix: &str) {
    let k = key(prefix, "create-race");
    let tasks: Vec<_> = (0u8..16)
        .map(|i| {
            let (store, k) = (Arc::clone(store), k.clone());
            tokio::spawn(async move { (i, must_write(&*store, &k, &[i; 3], None).await) })
        })
        .collect();
    let mut winners = Vec::new();
    for t in tasks {
        let (i, out) = t.await.unwrap_or_else(|e| panic!("task: {e}"));
        if let WriteOutcome::Written(v) = out {
            winners.push((i, v));
        }
    }
    assert_eq!(
        winners.len(),
        1,
        "{}: create race winners {winners:?}",
        store.backend()
    );
    let (i, v) = winners[0];
    assert_eq!(must_read(&**store, &k).await, Some((vec![i; 3], v)));
}

/// Values of 1 MiB and more (or the backend's limit, if lower) round-trip; a value above the
/// limit is refused with `TooLarge` and changes nothing.
pub async fn large_values(store: &dyn KvStore, prefix: &str) {
    let limit = store.max_value_bytes();
    let size = (1 << 20) + 17;
    let size = size.min(limit);
    let big: Vec<u8> = (0..size).map(|i| (i * 31 % 251) as u8).collect();
    let k = key(prefix, "large");
    let v1 = written(must_write(store, &k, &big, None).await, "large create");
    assert_eq!(
        must_read(store, &k).await,
        Some((big.clone(), v1)),
        "{}: large value",
        store.backend()
    );
    let rev: Vec<u8> = big.iter().rev().copied().collect();
    let v2 = written(must_write(store, &k, &rev, Some(v1)).await, "large update");
    assert_eq!(must_read(store, &k).await, Some((rev.clone(), v2)));
    if let Some(over) = limit.checked_add(1).filter(|_| limit < (64 << 20)) {
        let too_big = vec![7u8; over];
        let res = store.update(&k, &too_big, v2).await;
        assert!(
            matches!(res, Err(Error::TooLarge { .. })),
            "{}: {res:?}",
            store.backend()
        );
        assert_eq!(must_read(store, &k).await, Some((rev, v2)));
    }
}

/// Keys with any bytes (NUL, 0xFF, separators, escapes, braces, wildcards) are distinct and
/// round-trip values holding every byte value.
pub async fn binary_keys_and_values(store: &dyn KvStore, prefix: &str) {
    let suffixes: [&[u8]; 10] = [
        b"\x00",
        b"\xff\xfe",
        b"a.b",
        b"a=2Eb",
        b"a=2eb",
        b"{x}*>",
        b"sp ace",
        b"/",
        b"\xc3\xa9",
        b"..",
    ];
    let all: Vec<u8> = (0..=255u8).collect();
    for (i, s) in suffixes.iter().enumerate() {
        let mut k = key(prefix, "bin/");
        k.extend_from_slice(s);
        let mut value = all.clone();
        value.push(i as u8);
        written(must_write(store, &k, &value, None).await, "binary create");
    }
    for (i, s) in suffixes.iter().enumerate() {
        let mut k = key(prefix, "bin/");
        k.extend_from_slice(s);
        let (value, _) = must_read(store, &k)
            .await
            .unwrap_or_else(|| panic!("key {s:?} lost"));
        assert_eq!(value.len(), 257, "{}: key {s:?}", store.backend());
        assert_eq!(
            value[..256],
            all[..],
            "{}: value bytes of key {s:?}",
            store.backend()
        );
        assert_eq!(
            value[256],
            i as u8,
            "{}: keys collide: {s:?}",
            store.backend()
        );
    }
}

/// `writers` tasks each add 1, `each` times, to one `Count` with read → update retries: the
/// stored count must be exactly `writers × each`.
pub async fn concurrent_increments(
    store: &Arc<dyn KvStore>,
    prefix: &str,
    writers: u64,
    each: u64,
) {
    let k = key(prefix, "counter");
    let tasks: Vec<_> = (0..writers)
        .map(|_| {
            let (store, k) = (Arc::clone(store), k.clone());
            tokio::spawn(async move {
                for _ in 0..each {
                    increment(&*store, &k).await;
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap_or_else(|e| panic!("writer task: {e}"));
    }
    let (bytes, _) = must_read(&**store, &k)
        .await
        .unwrap_or_else(|| panic!("counter missing"));
    let total = codec::decode::<Count>(&bytes).unwrap_or_else(|e| panic!("decode: {e}"));
    assert_eq!(
        total.get(),
        writers * each,
        "{}: lost or doubled increments",
        store.backend()
    );
}

async fn increment(store: &dyn KvStore, k: &[u8]) {
    let policy = RetryPolicy::default();
    for attempt in 1.. {
        let current = must_read(store, k).await;
        let mut count = match &current {
            Some((b, _)) => codec::decode::<Count>(b).unwrap_or_else(|e| panic!("decode: {e}")),
            None => Count::default(),
        };
        count.insert(()).unwrap_or_else(|e| panic!("insert: {e}"));
        let out = must_write(store, k, &codec::encode(&count), current.map(|(_, v)| v)).await;
        if out != WriteOutcome::Conflict {
            return;
        }
        policy.sleep(attempt.min(6)).await;
    }
}
