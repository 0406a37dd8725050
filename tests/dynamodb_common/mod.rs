//! What the DynamoDB test binaries share (one per emulator: moto_server and dynalite): the
//! table URL, created once per process, and the adapter's own checks on a live server.
#![allow(dead_code)]

use std::sync::Arc;

use shardfold::store::{DynamoStore, KvStore};

/// The table the tests use (keys are unique per run: runs never see each other's keys).
pub const TABLE: &str = "shardfold-test";

/// `dynamodb://shardfold-test?endpoint=…` (the endpoint from `$endpoint_var`, else
/// `default_endpoint`), after creating the table; or `$url_var` whole. Without AWS credentials
/// in the environment the URL names an endpoint where nothing listens, so the tests skip (the
/// SDK would otherwise wait for instance metadata).
pub fn table_url(endpoint_var: &str, default_endpoint: &str) -> String {
    if std::env::var("AWS_ACCESS_KEY_ID").is_err() {
        eprintln!("NOTICE: AWS_ACCESS_KEY_ID unset (source .ci/services.sh): no DynamoDB server");
        return "dynamodb://no-aws-credentials?endpoint=http://127.0.0.1:1".to_owned();
    }
    let endpoint = std::env::var(endpoint_var).unwrap_or_else(|_| default_endpoint.to_owned());
    let url = format!("dynamodb://{TABLE}?endpoint={endpoint}");
    // once per endpoint and process (moto and dynalite tests share the binary); on a thread of
    // its own (the caller may be inside a runtime)
    static CREATED: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());
    let mut created = CREATED.lock().unwrap_or_else(|e| e.into_inner());
    if !created.contains(&endpoint) {
        created.push(endpoint.clone());
        let u = url.clone();
        let made = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(DynamoStore::create_table(&u)).map(|_| ())
        })
        .join()
        .expect("create_table thread");
        if let Err(e) = made {
            eprintln!("NOTICE: cannot create table {TABLE} at {endpoint}: {e}");
        }
    }
    url
}

/// The store at `url`, or `None` (skip) when the server is absent.
pub async fn store(url: &str) -> Option<Arc<dyn KvStore>> {
    super::store_common::store_or_skip(url).await
}

/// The adapter's own checks on a live server, for a test binary that defined `backend_url()`
/// (through `backend_tests!`).
#[macro_export]
macro_rules! dynamodb_tests {
    () => {
        /// A 500 KB value is refused with the typed size error naming the limit and the fix,
        /// before any request: on the live table (the key stays absent) and on a store whose
        /// endpoint does not answer (no connection error: nothing was sent).
        #[tokio::test]
        async fn a_500_kb_value_is_a_typed_error_before_any_write() {
            let Some(store) = dynamodb_common::store(&backend_url()).await else {
                return;
            };
            let key = format!("{}/big", suite::unique_prefix("dynamodb-big")).into_bytes();
            let value = vec![0xa5u8; 500 * 1000];
            for res in [
                store.create(&key, &value).await,
                store.update(&key, &value, 1).await,
            ] {
                match res {
                    Err(e @ shardfold::Error::TooLarge { .. }) => {
                        let shardfold::Error::TooLarge { size, limit, fix } = &e else {
                            unreachable!()
                        };
                        assert_eq!(*size, 500_000);
                        assert!(*limit <= 407_524, "{e}");
                        assert!(fix.is_some_and(|f| f.contains("400 KB")), "{e}");
                        assert!(e.to_string().contains("more shards"), "{e}");
                    }
                    other => panic!("{other:?}"),
                }
            }
            assert_eq!(store.read(&key).await.unwrap(), None, "nothing written");
            // an endpoint where nothing listens: the size error comes first
            use shardfold::store::KvStore as _;
            let open = shardfold::store::DynamoStore::open_unchecked(
                "dynamodb://nowhere?endpoint=http://127.0.0.1:1",
            )
            .await
            .unwrap();
            assert!(matches!(
                open.create(&key, &value).await,
                Err(shardfold::Error::TooLarge { .. })
            ));
        }

        /// 70 000 events in one bucket shard: their fingerprints (≈ 450 KB) no longer fit one
        /// item, and the layout keeps them in sets that each do (before the sets were capped,
        /// this compaction failed with `TooLarge`).
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn fingerprints_beyond_one_item_are_kept_in_several_sets() {
            let Some(store) = dynamodb_common::store(&backend_url()).await else {
                return;
            };
            let metric = suite::unique_prefix("dynamodb-sets");
            let sizes =
                $crate::series_common::fingerprints_beyond_one_set(&store, &metric, 70_000, 5_000)
                    .await;
            assert!(sizes.iter().sum::<usize>() > 407_524, "{sizes:?}");
        }

        /// A table that does not exist is refused at connect, permanently, saying what to do.
        #[tokio::test]
        async fn a_missing_table_is_refused_at_connect() {
            let url = backend_url();
            if dynamodb_common::store(&url).await.is_none() {
                return;
            }
            let query = url.split_once('?').map_or("", |(_, q)| q);
            let missing = format!("dynamodb://shardfold-no-such-table?{query}");
            match shardfold::store::DynamoStore::connect(&missing).await {
                Err(e @ shardfold::Error::Store { .. }) => {
                    assert!(!e.is_transient(), "{e}");
                    let text = e.to_string();
                    assert!(text.contains("does not exist"), "{text}");
                    assert!(text.contains("create_table"), "{text}");
                }
                other => panic!("connected to a missing table: {other:?}"),
            }
        }

        /// Creating the table again uses the existing one.
        #[tokio::test]
        async fn create_table_is_idempotent() {
            use shardfold::store::KvStore as _;
            let url = backend_url();
            let Some(store) = dynamodb_common::store(&url).await else {
                return;
            };
            let key = format!("{}/k", suite::unique_prefix("dynamodb-ct")).into_bytes();
            assert!(matches!(
                store.create(&key, b"v").await.unwrap(),
                shardfold::store::WriteOutcome::Written(1)
            ));
            let again = shardfold::store::DynamoStore::create_table(&url)
                .await
                .unwrap();
            assert_eq!(again.read(&key).await.unwrap(), Some((b"v".to_vec(), 1)));
        }

        /// Listing a prefix without `/` would need a Scan: refused, typed.
        #[tokio::test]
        async fn a_prefix_without_a_slash_is_not_scanned() {
            let Some(store) = dynamodb_common::store(&backend_url()).await else {
                return;
            };
            assert!(matches!(
                store.list(b"no-slash").await,
                Err(shardfold::Error::NotImplemented { .. })
            ));
            assert!(store.list(b"has/").await.is_ok());
        }
    };
}
