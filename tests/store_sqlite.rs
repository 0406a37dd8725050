//! The conformance suite and fold race against SQLite files (no server needed).
#![cfg(feature = "sqlite")]

use crate::store_common;

backend_tests!("sqlite", "SHARDFOLD_SQLITE_URL", {
    let file = std::env::temp_dir().join(format!("{}.db", suite::unique_prefix("sqlite")));
    format!("sqlite://{}", file.display())
});
