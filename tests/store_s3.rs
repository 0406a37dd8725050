//! The conformance suite and fold races against an S3 emulator (moto_server on
//! `SHARDFOLD_S3_ENDPOINT`, default `http://127.0.0.1:5000`, bucket `shardfold-test`, created
//! here; or a whole store URL in `SHARDFOLD_S3_URL`), the same suite through the adapter over
//! object_store's `InMemory`, and the proof that a store ignoring conditional headers is caught.
//!
//! AWS credentials come from the environment (`.ci/services.d/aws-emulators.sh` exports
//! `AWS_ACCESS_KEY_ID=testing` and friends); without them the server tests skip.
#![cfg(all(feature = "s3", feature = "testkit"))]

use crate::store_common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use shardfold::store::conformance::{self as kv, CountingStore, TestEvent};
use shardfold::store::{KvStore, MemoryStore, Metric, S3Store, WriteOutcome};
use shardfold::{Error, StoreErrorKind};

const BUCKET: &str = "shardfold-test";

fn endpoint() -> String {
    store_common::url("SHARDFOLD_S3_ENDPOINT", "http://127.0.0.1:5000")
}

/// `s3://shardfold-test/<run>?endpoint=…`, after making sure the bucket exists (a plain
/// `PUT /bucket`, which moto accepts unsigned). Without AWS credentials in the environment the
/// URL names a bucket that cannot exist, so the tests skip (object_store would otherwise wait
/// for instance metadata).
fn s3_url() -> String {
    static URL: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    URL.get_or_init(|| {
        let endpoint = endpoint();
        if std::env::var("AWS_ACCESS_KEY_ID").is_err() {
            eprintln!("NOTICE: AWS_ACCESS_KEY_ID unset (source .ci/services.sh): no S3 server");
            return "s3://no-aws-credentials?endpoint=http://127.0.0.1:1".to_owned();
        }
        if let Err(e) = create_bucket(&endpoint, BUCKET) {
            eprintln!("NOTICE: cannot create bucket {BUCKET} at {endpoint}: {e}");
        }
        format!("s3://{BUCKET}/shardfold?endpoint={endpoint}")
    })
    .clone()
}

/// `PUT /<bucket>` over plain HTTP: 200 (created) or 409 (already there) are fine.
fn create_bucket(endpoint: &str, bucket: &str) -> std::io::Result<()> {
    use std::io::{Read, Write};
    let host = endpoint
        .strip_prefix("http://")
        .ok_or_else(|| std::io::Error::other("the test endpoint must be http://HOST:PORT"))?
        .trim_end_matches('/');
    let addr = std::net::ToSocketAddrs::to_socket_addrs(host)?
        .next()
        .ok_or_else(|| std::io::Error::other("no address"))?;
    let timeout = std::time::Duration::from_secs(5);
    let mut conn = std::net::TcpStream::connect_timeout(&addr, timeout)?;
    conn.set_read_timeout(Some(timeout))?;
    write!(
        conn,
        "PUT /{bucket} HTTP/1.1\r\nHost: {host}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )?;
    let mut reply = String::new();
    conn.read_to_string(&mut reply)?;
    let status = reply.split(' ').nth(1).unwrap_or_default();
    match status {
        "200" | "409" => Ok(()),
        _ => Err(std::io::Error::other(format!(
            "bucket PUT answered {status}"
        ))),
    }
}

// The shared backend suite on moto: conformance with an 8 × 50 many-writers race (16 × 1000
// contended increments through moto did not finish in 20 minutes), lost replies, the fold race
// across tasks and OS processes, the windowed end-to-end check, series expiry. The 32-writer
// series race is left to the faster servers (as for DynamoDB on moto).
backend_tests!(
    "s3-moto",
    "SHARDFOLD_S3_URL",
    s3_url(),
    increments = (8, 50),
    series_race = false
);

/// An object that is not this store's (no header) reads as a typed, permanent error naming
/// the decoding failure, on the real server.
#[tokio::test]
async fn an_object_without_the_header_is_rejected() {
    use object_store::ObjectStoreExt;
    let Some(store) = store_common::store_or_skip(&backend_url()).await else {
        return;
    };
    let prefix = kv::unique_prefix("s3-bad");
    let raw = object_store::aws::AmazonS3Builder::from_env()
        .with_bucket_name(BUCKET)
        .with_endpoint(endpoint())
        .with_allow_http(true)
        .build()
        .unwrap();
    let path = object_store::path::Path::parse(format!("shardfold/{prefix}/bad")).unwrap();
    raw.put(&path, b"not a shardfold object".to_vec().into())
        .await
        .unwrap();
    let key = format!("{prefix}/bad").into_bytes();
    assert_bad_object(store.read(&key).await, "BadMagic");
    assert_bad_object(
        store.update(&key, b"v", 1).await.map(|_| None::<()>),
        "BadMagic",
    );
    raw.put(&path, b"SFKV\x01\x00".to_vec().into())
        .await
        .unwrap();
    assert_bad_object(store.read(&key).await, "Truncated");
    assert!(
        store.delete(&key).await.unwrap(),
        "a bad object can be deleted"
    );
}

fn assert_bad_object<T: std::fmt::Debug>(res: Result<Option<T>, Error>, cause: &str) {
    match res {
        Err(Error::Store {
            backend: "s3",
            kind: StoreErrorKind::Rejected,
            message,
            source: Some(source),
        }) => {
            assert!(message.contains("not a shardfold value"), "{message}");
            let inner = std::error::Error::source(&source).expect("the decoding error");
            assert!(format!("{inner:?}").contains(cause), "{inner:?}");
        }
        other => panic!("expected a rejected object, got {other:?}"),
    }
}

/// A bucket that does not exist is refused when connecting (S3's `NoSuchBucket`, told apart
/// from a missing key), permanently.
#[tokio::test]
async fn a_missing_bucket_is_refused_at_connect() {
    if store_common::store_or_skip(&backend_url()).await.is_none() {
        return;
    }
    let url = format!("s3://shardfold-no-such-bucket/p?endpoint={}", endpoint());
    match S3Store::connect(&url).await {
        Err(Error::Store {
            backend: "s3",
            kind,
            message,
            ..
        }) => {
            assert_eq!(kind, StoreErrorKind::Rejected, "{message}");
            assert!(message.contains("NoSuchBucket"), "{message}");
        }
        other => panic!("connected to a missing bucket: {other:?}"),
    }
}

/// An endpoint where nothing listens: a transient connection error, quickly (no retries in
/// the client).
#[tokio::test]
async fn an_unreachable_endpoint_is_a_transient_error() {
    if std::env::var("AWS_ACCESS_KEY_ID").is_err() {
        return eprintln!("SKIPPED: no AWS credentials in the environment");
    }
    let started = Instant::now();
    match S3Store::connect("s3://b/p?endpoint=http://127.0.0.1:1").await {
        Err(e @ Error::Store { .. }) => {
            assert!(e.is_transient(), "{e}");
            assert!(
                matches!(&e, Error::Store { kind, .. } if *kind == StoreErrorKind::Connection),
                "{e}"
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(started.elapsed().as_secs() < 10, "{:?}", started.elapsed());
}

/// Fold throughput on the emulator beside the in-memory store (printed), and the request
/// counts per fold; both answers exact.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fold_throughput_on_the_emulator_and_in_memory() {
    let Some(s3) = store_common::store_or_skip(&backend_url()).await else {
        return;
    };
    let memory: Arc<dyn KvStore> = Arc::new(MemoryStore::new());
    for (name, store) in [("moto s3", s3), ("memory", memory)] {
        let counting = Arc::new(CountingStore::new(store));
        let metric = kv::unique_prefix("s3-speed");
        let m = Metric::<kv::IdSum>::open(counting.clone(), &metric, 4)
            .await
            .unwrap();
        let events: Vec<TestEvent> = (0..4000).map(TestEvent::new).collect();
        counting.reset();
        let started = Instant::now();
        for batch in events.chunks(200) {
            assert!(m.fold(batch).await.unwrap().is_complete());
        }
        let took = started.elapsed();
        let c = counting.counts();
        assert_eq!(m.query().await.unwrap(), kv::race::oracle(&events));
        eprintln!(
            "{name}: 20 folds of 200 events (K = 4) in {took:?}: {:.0} events/s, {:.1} ms/fold, \
             {} reads + {} writes",
            4000.0 / took.as_secs_f64(),
            took.as_secs_f64() * 1000.0 / 20.0,
            c.reads,
            c.writes,
        );
    }
}

// ----- the adapter over object_store's own stores (no server) -----

/// object_store's `InMemory`, optionally made to ignore conditions (every conditional PUT
/// becomes a plain overwrite, as s3rver does), counting GETs and PUTs.
#[derive(Debug, Default)]
struct Conditions {
    inner: object_store::memory::InMemory,
    ignored: bool,
    gets: AtomicU64,
    puts: AtomicU64,
}

impl std::fmt::Display for Conditions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Conditions(ignored: {})", self.ignored)
    }
}

mod desugared {
    //! `ObjectStore` is an `async_trait`: its methods, written out as that macro expands them.

    use std::future::Future;
    use std::pin::Pin;
    use std::sync::atomic::Ordering;

    use futures_util::stream::BoxStream;
    use object_store::path::Path;
    use object_store::{
        CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
        PutMode, PutMultipartOptions, PutOptions, PutPayload, PutResult, Result,
    };

    use super::Conditions;

    type Fut<'a, T> = Pin<Box<dyn Future<Output = Result<T>> + Send + 'a>>;

    impl ObjectStore for Conditions {
        fn put_opts<'l0, 'l1, 'a>(
            &'l0 self,
            location: &'l1 Path,
            payload: PutPayload,
            mut opts: PutOptions,
        ) -> Fut<'a, PutResult>
        where
            'l0: 'a,
            'l1: 'a,
            Self: 'a,
        {
            self.puts.fetch_add(1, Ordering::Relaxed);
            if !self.ignored {
                return self.inner.put_opts(location, payload, opts);
            }
            opts.mode = PutMode::Overwrite;
            Box::pin(async move {
                // let other writers in between a read and this write, as a network would (a
                // real pause: `yield_now` alone let a loaded CI run serialise every increment,
                // and the lost updates this store must show did not happen)
                tokio::time::sleep(std::time::Duration::from_millis(1)).await;
                self.inner.put_opts(location, payload, opts).await
            })
        }

        fn put_multipart_opts<'l0, 'l1, 'a>(
            &'l0 self,
            location: &'l1 Path,
            opts: PutMultipartOptions,
        ) -> Fut<'a, Box<dyn MultipartUpload>>
        where
            'l0: 'a,
            'l1: 'a,
            Self: 'a,
        {
            self.inner.put_multipart_opts(location, opts)
        }

        fn get_opts<'l0, 'l1, 'a>(
            &'l0 self,
            location: &'l1 Path,
            options: GetOptions,
        ) -> Fut<'a, GetResult>
        where
            'l0: 'a,
            'l1: 'a,
            Self: 'a,
        {
            self.gets.fetch_add(1, Ordering::Relaxed);
            self.inner.get_opts(location, options)
        }

        fn delete_stream(
            &self,
            locations: BoxStream<'static, Result<Path>>,
        ) -> BoxStream<'static, Result<Path>> {
            self.inner.delete_stream(locations)
        }

        fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, Result<ObjectMeta>> {
            self.inner.list(prefix)
        }

        fn list_with_delimiter<'l0, 'l1, 'a>(
            &'l0 self,
            prefix: Option<&'l1 Path>,
        ) -> Fut<'a, ListResult>
        where
            'l0: 'a,
            'l1: 'a,
            Self: 'a,
        {
            self.inner.list_with_delimiter(prefix)
        }

        fn copy_opts<'l0, 'l1, 'l2, 'a>(
            &'l0 self,
            from: &'l1 Path,
            to: &'l2 Path,
            options: CopyOptions,
        ) -> Fut<'a, ()>
        where
            'l0: 'a,
            'l1: 'a,
            'l2: 'a,
            Self: 'a,
        {
            self.inner.copy_opts(from, to, options)
        }
    }
}

fn over(objects: Arc<Conditions>, prefix: &str) -> Arc<dyn KvStore> {
    Arc::new(S3Store::from_object_store(objects, prefix).unwrap())
}

/// The whole key-value suite and the fold races through this adapter over `InMemory` (which
/// honours `Create` and `Update(etag)`): the adapter's own logic, without a server.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn conformance_suite_over_object_store_in_memory() {
    let store = over(Arc::new(Conditions::default()), "base/dir");
    kv::check_store(store.clone(), "m").await;
    kv::race::lost_reply(store.clone(), "lost").await;
    kv::race::race_tasks(&store, "race", 4, 0, 8).await;
    kv::race::check_race(store, "race", 4, 8).await;
}

/// The panic message of `check` run on a fresh store over `objects`, or `None` if it passed.
async fn violation<F, Fut>(objects: Arc<Conditions>, check: F) -> Option<String>
where
    F: FnOnce(Arc<dyn KvStore>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let err = tokio::spawn(check(over(objects, ""))).await.err()?;
    let panic = err.into_panic();
    let message = panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()));
    Some(message.unwrap_or_default())
}

/// A store that ignores `If-None-Match` / `If-Match` is caught: the conformance checks fail
/// on it with the violation named (a second create that overwrote, several winners of a create
/// race, lost increments), while the same checks pass on the store that honours them.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_store_ignoring_conditions_is_caught_by_the_conformance_suite() {
    let ignoring = || {
        Arc::new(Conditions {
            ignored: true,
            ..Conditions::default()
        })
    };
    let honouring = || Arc::new(Conditions::default());
    let cw = |s: Arc<dyn KvStore>| async move { kv::conditional_writes(&*s, "p").await };
    let race = |s: Arc<dyn KvStore>| async move { kv::create_race(&s, "p").await };
    let incr = |s: Arc<dyn KvStore>| async move { kv::concurrent_increments(&s, "p", 8, 50).await };

    let found = violation(ignoring(), cw)
        .await
        .expect("conditional_writes passed");
    assert!(found.contains("second create"), "{found}");
    let found = violation(ignoring(), race)
        .await
        .expect("create_race passed");
    assert!(found.contains("create race winners"), "{found}");
    let found = violation(ignoring(), incr)
        .await
        .expect("increments passed");
    assert!(found.contains("lost or doubled increments"), "{found}");

    assert_eq!(violation(honouring(), cw).await, None);
    assert_eq!(violation(honouring(), race).await, None);
    assert_eq!(violation(honouring(), incr).await, None);
}

/// The request costs of the type docs: an update after this store's read or write is one PUT;
/// an update by another instance (no remembered ETag) is a GET then a PUT; a stale version is
/// a conflict after one GET, with nothing written.
#[tokio::test]
async fn an_update_after_a_read_is_one_put() {
    let objects = Arc::new(Conditions::default());
    let a = over(objects.clone(), "p");
    let b = over(objects.clone(), "p");
    let counts = || {
        (
            objects.gets.swap(0, Ordering::Relaxed),
            objects.puts.swap(0, Ordering::Relaxed),
        )
    };
    assert_eq!(
        a.create(b"k", b"v1").await.unwrap(),
        WriteOutcome::Written(1)
    );
    assert_eq!(
        a.update(b"k", b"v2", 1).await.unwrap(),
        WriteOutcome::Written(2)
    );
    assert_eq!(counts(), (0, 2), "create then update: two PUTs, no GET");
    assert_eq!(
        b.update(b"k", b"v3", 2).await.unwrap(),
        WriteOutcome::Written(3)
    );
    assert_eq!(counts(), (1, 1), "another instance: GET then PUT");
    assert_eq!(
        a.update(b"k", b"v4", 2).await.unwrap(),
        WriteOutcome::Conflict
    );
    assert_eq!(counts(), (0, 1), "a stale remembered ETag: one PUT refused");
    assert_eq!(
        a.update(b"k", b"v4", 1).await.unwrap(),
        WriteOutcome::Conflict
    );
    assert_eq!(
        counts(),
        (1, 0),
        "an unknown version: one GET, nothing written"
    );
    assert_eq!(a.read(b"k").await.unwrap(), Some((b"v3".to_vec(), 3)));
    assert_eq!(
        a.update(b"k", b"v4", 3).await.unwrap(),
        WriteOutcome::Written(4)
    );
    assert_eq!(counts(), (1, 1), "read then update: GET, PUT");
}
