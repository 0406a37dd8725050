//! The conformance suite and fold race against a real Redis server
//! (`SHARDFOLD_REDIS_URL`, default `redis://127.0.0.1:6379`), and a check with `redis-cli`
//! that what is stored is envelopes `codec::decode` reads.
#![cfg(feature = "redis")]

mod store_common;

backend_tests!("redis", "SHARDFOLD_REDIS_URL", "redis://127.0.0.1:6379");
