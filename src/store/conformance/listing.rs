//! Listing by prefix and deleting: exact prefix semantics in byte order, deletes that report
//! once, and a listing that neither loses nor repeats keys while others create and delete.
//!
//! Listed keys hold no `{`: Redis indexes a key with a hash tag under its tag, so only a
//! prefix holding that whole tag lists it (see the Redis backend docs); the tag case is
//! checked with a prefix that holds the tag.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use super::{key, must_read, must_write, written};
use crate::store::{KvStore, WriteOutcome};

/// The keys the listing checks create, relative to their directory.
const LISTED: [&[u8]; 13] = [
    b"p/a/x",
    b"p/a/b/y",
    b"p/a/",
    b"p/a",
    b"p/ab",
    b"p/a/\x00",
    b"p/a/\xff\xfe",
    b"p/a/\xff",
    b"p/a/a.b*>",
    b"p/a/=2F",
    b"p/a//z",
    b"p/a/sp ace/\xc3\xa9",
    b"q",
];

async fn must_list(store: &dyn KvStore, prefix: &[u8]) -> Vec<Vec<u8>> {
    match store.list(prefix).await {
        Ok(keys) => keys,
        Err(e) => panic!("{}: list failed: {e}", store.backend()),
    }
}

async fn must_delete(store: &dyn KvStore, key: &[u8]) -> bool {
    match store.delete(key).await {
        Ok(existed) => existed,
        Err(e) => panic!("{}: delete failed: {e}", store.backend()),
    }
}

/// Lists `prefix` and compares with the keys of `all` that start with it, in byte order.
async fn expect_listing(store: &dyn KvStore, prefix: &[u8], all: &BTreeSet<Vec<u8>>) {
    let want: Vec<Vec<u8>> = all
        .iter()
        .filter(|k| k.starts_with(prefix))
        .cloned()
        .collect();
    let got = must_list(store, prefix).await;
    assert_eq!(
        got,
        want,
        "{}: list {:?}",
        store.backend(),
        String::from_utf8_lossy(prefix)
    );
}

/// `list` returns exactly the keys under a prefix, in byte order (binary keys, nested
/// directories, a sibling `p/ab` not under `p/a/`, the key `p/a` itself); an empty directory
/// lists nothing. `delete` reports `true` then `false`; a deleted key reads as absent, is no
/// longer listed, cannot be updated, and can be created again.
pub async fn list_and_delete(store: &dyn KvStore, prefix: &str) {
    let b = store.backend();
    let dir = key(prefix, "list/");
    let under = |rel: &[u8]| [&dir[..], rel].concat();
    let mut all: BTreeSet<Vec<u8>> = LISTED.iter().map(|rel| under(rel)).collect();
    for k in &all {
        written(must_write(store, k, k, None).await, "list create");
    }
    for rel in [
        &b""[..],
        b"p/",
        b"p/a/",
        b"p/a",
        b"p/a/b/",
        b"p/a/\xff",
        b"p/a//",
        b"empty/",
        b"p/a/x/",
        b"p/a/none",
    ] {
        expect_listing(store, &under(rel), &all).await;
    }
    let k = under(b"p/a/x");
    let (_, old) = must_read(store, &k)
        .await
        .unwrap_or_else(|| panic!("{b}: key lost"));
    assert!(must_delete(store, &k).await, "{b}: delete of a present key");
    assert!(!must_delete(store, &k).await, "{b}: second delete");
    assert!(
        !must_delete(store, &under(b"p/a/never")).await,
        "{b}: delete of an absent key"
    );
    assert_eq!(
        must_read(store, &k).await,
        None,
        "{b}: a deleted key must read absent"
    );
    all.remove(&k);
    expect_listing(store, &under(b"p/a/"), &all).await;
    assert_eq!(
        must_write(store, &k, b"again", Some(old)).await,
        WriteOutcome::Conflict,
        "{b}: update of a deleted key"
    );
    assert_eq!(
        must_read(store, &k).await,
        None,
        "{b}: an update must not re-create"
    );
    let v = written(
        must_write(store, &k, b"again", None).await,
        "create after delete",
    );
    assert_eq!(must_read(store, &k).await, Some((b"again".to_vec(), v)));
    assert_eq!(
        must_write(store, &k, b"twice", None).await,
        WriteOutcome::Conflict,
        "{b}: second create after delete"
    );
    all.insert(k);
    expect_listing(store, &under(b"p/"), &all).await;
    tagged_directory(store, prefix).await;
}

/// Keys with a hash tag list under a prefix that holds the tag.
async fn tagged_directory(store: &dyn KvStore, prefix: &str) {
    let dir = key(prefix, "list-tag/{t}/");
    let all: BTreeSet<Vec<u8>> = [&b"k"[..], b"j/1", b"j/2"]
        .iter()
        .map(|rel| [&dir[..], rel].concat())
        .collect();
    for k in &all {
        written(must_write(store, k, k, None).await, "tagged create");
    }
    expect_listing(store, &dir, &all).await;
    expect_listing(store, &[&dir[..], b"j/"].concat(), &all).await;
}

/// `writers` tasks each create `each` keys under one directory while another task lists it
/// and deletes what it lists: every created key ends deleted exactly once or still listed,
/// and no listing repeats a key or shows a deleted one.
pub async fn list_delete_race(store: &Arc<dyn KvStore>, prefix: &str, writers: u32, each: u32) {
    let dir = key(prefix, "list-race/");
    let done = Arc::new(AtomicBool::new(false));
    let deleter = {
        let (store, dir, done) = (Arc::clone(store), dir.clone(), Arc::clone(&done));
        tokio::spawn(async move {
            let mut deleted = BTreeSet::new();
            while !done.load(Ordering::Acquire) {
                delete_listed(&*store, &dir, &mut deleted).await;
                tokio::task::yield_now().await;
            }
            delete_listed(&*store, &dir, &mut deleted).await;
            deleted
        })
    };
    let created = create_many(store, &dir, writers, each).await;
    done.store(true, Ordering::Release);
    let deleted = deleter
        .await
        .unwrap_or_else(|e| panic!("deleter task: {e}"));
    let left: BTreeSet<Vec<u8>> = must_list(&**store, &dir).await.into_iter().collect();
    let b = store.backend();
    assert!(left.is_disjoint(&deleted), "{b}: a deleted key is listed");
    let ended: BTreeSet<Vec<u8>> = left.union(&deleted).cloned().collect();
    assert_eq!(
        ended, created,
        "{b}: keys lost or invented by list and delete"
    );
}

async fn create_many(
    store: &Arc<dyn KvStore>,
    dir: &[u8],
    writers: u32,
    each: u32,
) -> BTreeSet<Vec<u8>> {
    let tasks: Vec<_> = (0..writers)
        .map(|w| {
            let (store, dir) = (Arc::clone(store), dir.to_vec());
            tokio::spawn(async move {
                let mut mine = Vec::new();
                for i in 0..each {
                    let k = [&dir[..], format!("w{w}-{i:03}").as_bytes()].concat();
                    written(must_write(&*store, &k, b"x", None).await, "race create");
                    mine.push(k);
                }
                mine
            })
        })
        .collect();
    let mut created = BTreeSet::new();
    for t in tasks {
        created.extend(t.await.unwrap_or_else(|e| panic!("writer task: {e}")));
    }
    created
}

/// Lists `dir` once and deletes every key listed, each of which must be new to `deleted`.
async fn delete_listed(store: &dyn KvStore, dir: &[u8], deleted: &mut BTreeSet<Vec<u8>>) {
    let b = store.backend();
    let listed = must_list(store, dir).await;
    assert!(
        listed.windows(2).all(|w| w[0] < w[1]),
        "{b}: a listing is not strictly ascending"
    );
    for k in listed {
        assert!(!deleted.contains(&k), "{b}: listed again after its delete");
        assert!(
            must_delete(store, &k).await,
            "{b}: a listed key was already gone"
        );
        deleted.insert(k);
    }
}
