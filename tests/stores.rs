//! Integration tests of the store layer: every backend, the fold loop, the bucketed layout, the
//! simulation, SIGKILL crashes, the CLI and the Lambda glue. One test binary (each module was a
//! binary of its own; one binary links once and compiles the shared generic code once); tests
//! that need other OS processes re-invoke this binary with their test's full name.
//! `cargo test --test stores MODULE::` runs one module.

#[cfg(feature = "store")]
#[macro_use]
mod store_common;
#[cfg(feature = "store")]
mod series_common;
#[cfg(all(feature = "dynamodb", feature = "testkit"))]
#[macro_use]
mod dynamodb_common;

mod cli;
mod cli_simulate;
mod crash;
mod damaged;
mod deadline;
mod lambda;
mod series;
mod sim;
mod store_dynamodb_dynalite;
mod store_dynamodb_moto;
mod store_errors;
mod store_fold;
mod store_memory;
mod store_nats;
mod store_postgres;
mod store_postgres_tls;
mod store_reconnect;
mod store_redis;
mod store_redis_cluster;
mod store_s3;
mod store_sqlite;
mod stream;
