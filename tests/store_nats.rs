//! The conformance suite and fold race against a real nats-server with JetStream
//! (`SHARDFOLD_NATS_URL`, default `nats://127.0.0.1:4222/shardfold_test`).
#![cfg(feature = "nats")]

use crate::store_common;

backend_tests!(
    "nats",
    "SHARDFOLD_NATS_URL",
    "nats://127.0.0.1:4222/shardfold_test"
);

/// Values of 1 MiB and more, against a nats-server whose `max_payload` allows them
/// (`SHARDFOLD_NATS_BIG_URL`, default the 8 MB server `.ci/services.sh` starts on port 4223).
#[tokio::test]
async fn values_of_1_mib_and_more_with_a_raised_max_payload() {
    let url = store_common::url(
        "SHARDFOLD_NATS_BIG_URL",
        "nats://127.0.0.1:4223/shardfold_big",
    );
    let Some(store) = store_common::store_or_skip(&url).await else {
        return;
    };
    assert!(
        store.max_value_bytes() > (1 << 20) + 17,
        "server max_payload not raised"
    );
    suite::large_values(&*store, &suite::unique_prefix("nats-big")).await;
}

/// The default server's limit is reported, and a value above it is refused before sending.
#[tokio::test]
async fn the_server_payload_limit_is_reported() {
    let Some(store) = store_common::store_or_skip(&backend_url()).await else {
        return;
    };
    let limit = store.max_value_bytes();
    assert!(limit > 512 << 10 && limit < usize::MAX, "limit {limit}");
}

#[tokio::test]
async fn connection_errors_never_show_the_password() {
    store_common::connect_errors_hide_password("nats", &["nats://u:hunter2@127.0.0.1:1/b"]).await;
}
