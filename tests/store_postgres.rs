//! The conformance suite and fold race against a real PostgreSQL server
//! (`SHARDFOLD_POSTGRES_URL`, default `postgres://postgres@127.0.0.1:5432/test`), and a check
//! with `psql` that the stored rows are envelopes `codec::decode` reads.
#![cfg(feature = "postgres")]

mod store_common;

backend_tests!(
    "postgres",
    "SHARDFOLD_POSTGRES_URL",
    "postgres://postgres@127.0.0.1:5432/test"
);
