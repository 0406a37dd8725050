//! The conformance suite and fold race against a real PostgreSQL server
//! (`SHARDFOLD_POSTGRES_URL`, default `postgres://postgres@127.0.0.1:5432/test`), and a check
//! with `psql` that the stored rows are envelopes `codec::decode` reads.
#![cfg(feature = "postgres")]

use crate::store_common;

backend_tests!(
    "postgres",
    "SHARDFOLD_POSTGRES_URL",
    "postgres://postgres@127.0.0.1:5432/test"
);

/// After a fold, `psql` reads each shard's row: an envelope `decode` reads, and together the
/// shards are exactly the folded events.
#[tokio::test]
async fn stored_rows_are_envelopes_read_with_psql() {
    use shardfold::codec;
    use shardfold::store::conformance::IdSum;
    let Some(store) = store_common::store_or_skip(&backend_url()).await else {
        return;
    };
    let (m, want) = store_common::folded_metric(store, &suite::unique_prefix("psql")).await;
    let mut merged = IdSum::default();
    for k in 0..m.shards() {
        let key_hex: String = m
            .shard_store_key(k)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let sql = format!(
            "SELECT encode(value, 'hex') FROM shardfold_kv WHERE key = decode('{key_hex}', 'hex')"
        );
        let url = backend_url();
        let Some(out) = store_common::run_client("psql", &[&url, "-At", "-c", &sql]) else {
            return;
        };
        let hex = String::from_utf8(out).unwrap();
        let hex = hex.trim();
        let bytes: Vec<u8> = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
            .collect();
        let shard: IdSum = codec::decode(&bytes).expect("postgres holds an envelope");
        shardfold::Merge::merge(&mut merged, &shard).unwrap();
    }
    assert_eq!(merged, want);
}

#[tokio::test]
async fn connection_errors_never_show_the_password() {
    store_common::connect_errors_hide_password(
        "postgres",
        &[
            "postgres://postgres:hunter2@127.0.0.1:1/test",
            "postgresql://u:hunter2@127.0.0.1:1",
        ],
    )
    .await;
}
