//! The conformance suite and fold checks against the in-memory reference store.
#![cfg(feature = "store")]

use std::sync::Arc;

use shardfold::store::conformance::{self as suite, race};
use shardfold::store::{KvStore, MemoryStore};

fn store() -> Arc<dyn KvStore> {
    Arc::new(MemoryStore::new())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn conformance_suite() {
    suite::check_store(store(), "m").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn conformance_suite_with_a_value_limit() {
    // a backend with a size limit (like NATS) must refuse oversized values and keep the old one
    suite::check_store(Arc::new(MemoryStore::with_value_limit(300_000)), "m").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn write_applied_reply_lost_neither_loses_nor_doubles() {
    race::lost_reply(store(), "lost").await;
}

/// One process cannot share a memory store with others: 12 tasks instead of 8 + 4 processes.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fold_race_tasks() {
    let s = store();
    race::race_tasks(&s, "race", 4, 0, 12).await;
    race::check_race(s, "race", 4, 12).await;
}
