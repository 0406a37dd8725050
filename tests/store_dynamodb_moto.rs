//! The DynamoDB backend on moto_server (`SHARDFOLD_DYNAMODB_MOTO_ENDPOINT`, default
//! `http://127.0.0.1:5000`; or a whole store URL in `SHARDFOLD_DYNAMODB_MOTO_URL`): the shared
//! backend suite (conformance with an 8 × 50 many-writers race, lost replies, the fold race
//! across tasks and OS processes, the windowed end-to-end check, series expiry) and the
//! adapter's own checks. The 32-writer series race runs on dynalite only: on moto it takes
//! over five minutes (measured 321 s; about 2 000 layout requests at moto's pace).
//!
//! The URL carries `max_value_bytes=300000`: moto counts a binary attribute by its base64
//! length (4/3 of its bytes) towards the 400 KB item limit, so it refuses items real DynamoDB
//! and dynalite accept (dynalite runs the suite at the adapter's full 407 524-byte limit).
#![cfg(all(feature = "dynamodb", feature = "testkit"))]

use crate::dynamodb_common;
use crate::store_common;

backend_tests!(
    "dynamodb-moto",
    "SHARDFOLD_DYNAMODB_MOTO_URL",
    dynamodb_common::table_url("SHARDFOLD_DYNAMODB_MOTO_ENDPOINT", "http://127.0.0.1:5000")
        + "&max_value_bytes=300000",
    increments = (8, 50),
    series_race = false
);
dynamodb_tests!();
