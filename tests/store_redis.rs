//! The conformance suite and fold race against a real Redis server
//! (`SHARDFOLD_REDIS_URL`, default `redis://127.0.0.1:6379`), and a check with `redis-cli`
//! that what is stored is envelopes `codec::decode` reads.
#![cfg(feature = "redis")]

use crate::store_common;

backend_tests!("redis", "SHARDFOLD_REDIS_URL", "redis://127.0.0.1:6379");

/// After a fold, `redis-cli` reads each shard's `d` field: an envelope `decode` reads, and
/// together the shards are exactly the folded events.
#[tokio::test]
async fn stored_values_are_envelopes_read_with_redis_cli() {
    use shardfold::codec;
    use shardfold::store::conformance::IdSum;
    let Some(store) = store_common::store_or_skip(&backend_url()).await else {
        return;
    };
    let (m, want) = store_common::folded_metric(store, &suite::unique_prefix("redis-cli")).await;
    let mut merged = IdSum::default();
    for k in 0..m.shards() {
        let key = String::from_utf8(m.shard_store_key(k)).unwrap();
        assert!(key.starts_with('{'), "cluster hash tag: {key}");
        let args = ["-u", &backend_url(), "--raw", "HGET", &key, "d"];
        let Some(mut out) = store_common::run_client("redis-cli", &args) else {
            return;
        };
        assert_eq!(
            out.pop(),
            Some(b'\n'),
            "redis-cli --raw ends with a newline"
        );
        let shard: IdSum = codec::decode(&out).expect("redis holds an envelope");
        shardfold::Merge::merge(&mut merged, &shard).unwrap();
    }
    assert_eq!(merged, want);
}

#[tokio::test]
async fn connection_errors_never_show_the_password() {
    store_common::connect_errors_hide_password(
        "redis",
        &[
            "redis://:hunter2@127.0.0.1:1",
            "redis://user:hunter2@127.0.0.1:1/0",
        ],
    )
    .await;
}

/// Redis over TLS (`rediss://`, the server `.ci/services.sh` starts on port 6380 with a
/// throw-away CA): the whole suite passes, and without trusting the CA the connection is
/// refused (the certificate is verified).
#[cfg(feature = "redis-tls")]
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn conformance_suite_over_tls() {
    use shardfold::store::{KvStore, RedisStore};
    use std::sync::Arc;
    let url = store_common::url("SHARDFOLD_REDISS_URL", "rediss://127.0.0.1:6380");
    let ca_file = store_common::url("SHARDFOLD_REDIS_CA", "/tmp/shardfold-redis-tls/ca.crt");
    let store = match std::fs::read(&ca_file) {
        Ok(ca) => RedisStore::connect_with_root_ca(&url, &ca).await,
        Err(e) => Err(shardfold::Error::Store {
            backend: "redis",
            kind: shardfold::StoreErrorKind::Config,
            message: format!("{ca_file}: {e}"),
            source: None,
        }),
    };
    let store: Arc<dyn KvStore> = match store {
        Ok(s) => Arc::new(s),
        Err(e) if store_common::require_services() => panic!("TLS Redis required: {e}"),
        Err(e) => return eprintln!("SKIPPED: TLS Redis unavailable ({e})"),
    };
    let untrusted = shardfold::store::connect(&url).await;
    assert!(
        untrusted.is_err(),
        "a certificate from an unknown CA must be refused"
    );
    suite::check_store(store, &suite::unique_prefix("rediss")).await;
}
