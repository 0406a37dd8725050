//! The store's own values: a metric's metadata record (`STORE_META`, read when a metric is
//! opened) and a `Snapshot` (`SNAPSHOT`). A snapshot that decodes must re-encode to the same
//! bytes, merge and yield its state; metadata bytes stored under a metric's `meta` key must
//! open the metric or fail with an error, never panic.
//! Run: `cargo +nightly fuzz run store_values -- -max_total_time=60`.
#![no_main]

mod common;

use std::future::Future;
use std::sync::{Arc, LazyLock};

use common::{check, raw_and_wrapped};
use libfuzzer_sys::fuzz_target;
use shardfold::codec::tags;
use shardfold::store::{KvStore, MemoryStore, Metric, Snapshot};
use shardfold::{Count, Deduped, Stats};

const FAMILY: &[u16] = &[tags::STORE_META, tags::SNAPSHOT];

static RUNTIME: LazyLock<tokio::runtime::Runtime> = LazyLock::new(|| {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a runtime")
});

/// Runs a store future to completion.
fn now<F: Future>(f: F) -> F::Output {
    RUNTIME.block_on(f)
}

/// Opens metrics of two types over `bytes` stored as their metadata record.
fn open_with_meta(bytes: &[u8]) {
    let store = Arc::new(MemoryStore::new());
    let key = store.metric_key("m", "meta");
    let _ = now(store.create(&key, bytes));
    let store: Arc<dyn KvStore> = store;
    for shards in [1, 4] {
        if let Ok(m) = now(Metric::<Count>::open(store.clone(), "m", shards)) {
            let _ = now(m.query());
        }
        let _ = now(Metric::<Deduped<Stats>>::open(store.clone(), "m", shards));
    }
}

fn all(bytes: &[u8]) {
    if let Some(s) = check::<Snapshot>(bytes) {
        let _ = (s.state::<Count>(), s.state::<Stats>());
    }
    open_with_meta(bytes);
}

fuzz_target!(|data: &[u8]| raw_and_wrapped(data, FAMILY, all));
