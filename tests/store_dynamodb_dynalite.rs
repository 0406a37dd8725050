//! The DynamoDB backend on dynalite (`SHARDFOLD_DYNAMODB_DYNALITE_ENDPOINT`, default
//! `http://127.0.0.1:4567`; or a whole store URL in `SHARDFOLD_DYNAMODB_DYNALITE_URL`): the shared
//! backend suite (conformance with a 16 writers × 250 increments race — at 16 × 1000 the suite
//! took 68 s of CI's time —, lost replies, fold and series races across tasks and OS processes,
//! expiry) and the adapter's own checks.
#![cfg(all(feature = "dynamodb", feature = "testkit"))]

use crate::dynamodb_common;
use crate::store_common;

backend_tests!(
    "dynamodb-dynalite",
    "SHARDFOLD_DYNAMODB_DYNALITE_URL",
    dynamodb_common::table_url(
        "SHARDFOLD_DYNAMODB_DYNALITE_ENDPOINT",
        "http://127.0.0.1:4567"
    ),
    increments = (16, 250)
);
dynamodb_tests!();
