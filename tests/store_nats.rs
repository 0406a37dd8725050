//! The conformance suite and fold race against a real nats-server with JetStream
//! (`SHARDFOLD_NATS_URL`, default `nats://127.0.0.1:4222/shardfold_test`).
#![cfg(feature = "nats")]

mod store_common;

backend_tests!(
    "nats",
    "SHARDFOLD_NATS_URL",
    "nats://127.0.0.1:4222/shardfold_test"
);
