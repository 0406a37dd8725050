//! PostgreSQL over TLS against the TLS-only cluster `.ci/services.sh` starts on 127.0.0.1:5433
//! (a throw-away CA in `/tmp/shardfold-pg-tls`; `SHARDFOLD_POSTGRES_TLS_URL`,
//! `SHARDFOLD_PG_CA`): every backend test over `sslmode=verify-full`, `require`, `verify-ca`,
//! and the refusals — a plain connection, a certificate from an unknown CA, a host name the
//! certificate does not name — and reconnecting over TLS after the server cut the connection.
#![cfg(feature = "postgres-tls")]

use crate::store_common;

use shardfold::store::{KvStore, PostgresStore, WriteOutcome};
use shardfold::{Error, StoreErrorKind};

const TLS_DIR: &str = "/tmp/shardfold-pg-tls";

fn ca_file() -> String {
    store_common::url("SHARDFOLD_PG_CA", &format!("{TLS_DIR}/ca.crt"))
}

/// The second throw-away CA, which signed nothing the server shows.
fn other_ca_file() -> String {
    std::path::Path::new(&ca_file())
        .with_file_name("other-ca.crt")
        .to_string_lossy()
        .into_owned()
}

/// `postgres://postgres@HOST:5433/test?QUERY`.
fn url_with(host: &str, query: &str) -> String {
    format!("postgres://postgres@{host}:5433/test?{query}")
}

backend_tests!(
    "postgres-tls",
    "SHARDFOLD_POSTGRES_TLS_URL",
    url_with(
        "localhost",
        &format!("sslmode=verify-full&sslrootcert={}", ca_file())
    )
);

/// Whether the TLS server answers (over `verify-full`); prints a notice when not, and panics
/// under `SHARDFOLD_REQUIRE_SERVICES=1`.
async fn server_up() -> bool {
    store_common::store_or_skip(&backend_url()).await.is_some()
}

/// The store error of a connection that must fail.
async fn refused(url: &str) -> (StoreErrorKind, String) {
    match PostgresStore::connect(url).await {
        Err(Error::Store { kind, message, .. }) => (kind, message),
        Err(e) => panic!("{url}: not a store error: {e}"),
        Ok(_) => panic!("{url}: connected, but must be refused"),
    }
}

/// A store that works: writes a key and reads it back.
async fn round_trip(store: &dyn KvStore, name: &str) {
    let key = shardfold::store::conformance::unique_prefix(name).into_bytes();
    let value = format!("value of {name}").into_bytes();
    assert_eq!(
        store.create(&key, &value).await.unwrap(),
        WriteOutcome::Written(1)
    );
    assert_eq!(store.read(&key).await.unwrap(), Some((value, 1)));
    assert!(store.delete(&key).await.unwrap());
}

#[tokio::test]
async fn require_encrypts_without_checking_and_verify_ca_skips_the_name() {
    if !server_up().await {
        return;
    }
    let require = PostgresStore::connect(&url_with("127.0.0.1", "sslmode=require"))
        .await
        .unwrap();
    round_trip(&require, "pg-tls-require").await;
    // verify-ca checks the chain but not the name: a name the certificate lacks still passes
    let ca = ca_file();
    let wrong_name = url_with(
        "wrong-name.invalid",
        &format!("hostaddr=127.0.0.1&sslmode=verify-ca&sslrootcert={ca}"),
    );
    let verify_ca = PostgresStore::connect(&wrong_name).await.unwrap();
    round_trip(&verify_ca, "pg-tls-verify-ca").await;
    // the CA given in code: verify-full without sslmode in the URL
    let pem = std::fs::read(&ca).unwrap();
    let given =
        PostgresStore::connect_with_root_ca("postgres://postgres@localhost:5433/test", &pem)
            .await
            .unwrap();
    round_trip(&given, "pg-tls-given-ca").await;
    // and the same URL through the generic constructor, key-value style
    let kv = format!(
        "host=127.0.0.1 port=5433 user=postgres dbname=test sslmode=verify-full sslrootcert='{ca}'"
    );
    let store = shardfold::store::connect(&format!(
        "postgres://postgres@127.0.0.1:5433/test?sslmode=verify-full&sslrootcert={ca}"
    ))
    .await
    .unwrap();
    round_trip(store.as_ref(), "pg-tls-url").await;
    round_trip(&PostgresStore::connect(&kv).await.unwrap(), "pg-tls-kv").await;
}

#[tokio::test]
async fn a_plain_connection_to_the_tls_only_server_is_refused() {
    if !server_up().await {
        return;
    }
    for url in [
        url_with("127.0.0.1", "sslmode=disable"),
        "postgres://postgres@127.0.0.1:5433/test".to_owned(),
    ] {
        let (kind, message) = refused(&url).await;
        assert_eq!(kind, StoreErrorKind::Auth, "{message}");
        assert!(message.contains("no encryption"), "{message}");
    }
}

#[tokio::test]
async fn a_certificate_from_an_unknown_ca_is_refused() {
    if !server_up().await {
        return;
    }
    let other = other_ca_file();
    for mode in ["verify-full", "verify-ca", "require"] {
        // require with sslrootcert checks the chain, as libpq does
        let (kind, message) = refused(&url_with(
            "localhost",
            &format!("sslmode={mode}&sslrootcert={other}"),
        ))
        .await;
        assert_eq!(kind, StoreErrorKind::Auth, "{mode}: {message}");
        assert!(message.starts_with("TLS handshake failed"), "{message}");
        assert!(message.contains("UnknownIssuer"), "{mode}: {message}");
    }
    let pem = std::fs::read(&other).unwrap();
    let refused_in_code =
        PostgresStore::connect_with_root_ca(&url_with("localhost", "sslmode=verify-full"), &pem)
            .await;
    assert!(
        matches!(&refused_in_code, Err(Error::Store { kind: StoreErrorKind::Auth, message, .. }) if message.contains("UnknownIssuer")),
        "{:?}",
        refused_in_code.err()
    );
    // the system's roots do not hold the throw-away CA either (an empty store is a Config error)
    let system = PostgresStore::connect(&url_with("localhost", "sslmode=verify-full")).await;
    assert!(
        matches!(
            &system,
            Err(Error::Store {
                kind: StoreErrorKind::Auth | StoreErrorKind::Config,
                ..
            })
        ),
        "{:?}",
        system.err()
    );
}

#[tokio::test]
async fn a_host_name_the_certificate_does_not_name_is_refused_under_verify_full() {
    if !server_up().await {
        return;
    }
    let url = url_with(
        "wrong-name.invalid",
        &format!(
            "hostaddr=127.0.0.1&sslmode=verify-full&sslrootcert={}",
            ca_file()
        ),
    );
    let (kind, message) = refused(&url).await;
    assert_eq!(kind, StoreErrorKind::Auth, "{message}");
    assert!(message.contains("not valid for name"), "{message}");
}

#[tokio::test]
async fn a_bad_root_ca_is_a_config_error() {
    let url = url_with("localhost", "sslmode=verify-full");
    for pem in [&b""[..], b"not a certificate"] {
        match PostgresStore::connect_with_root_ca(&url, pem).await {
            Err(Error::Store { kind, message, .. }) => {
                assert_eq!(kind, StoreErrorKind::Config, "{message}");
                assert!(message.contains("root CA"), "{message}");
            }
            other => panic!("{other:?}"),
        }
    }
    let missing = url_with(
        "localhost",
        "sslmode=verify-full&sslrootcert=/nonexistent/ca.pem",
    );
    let (kind, message) = refused(&missing).await;
    assert_eq!(kind, StoreErrorKind::Config, "{message}");
    assert!(message.contains("/nonexistent/ca.pem"), "{message}");
}

/// The server ends the store's connection (`pg_terminate_backend`); the store dials again over
/// TLS, checking the certificate, and what it wrote before is still read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnects_over_tls_after_the_server_cut_the_connection() {
    if !server_up().await {
        return;
    }
    let app = format!("shardfold-tls-cut-{}", std::process::id());
    let url = format!("{}&application_name={app}", backend_url());
    let store = PostgresStore::connect(&url).await.unwrap();
    let key = shardfold::store::conformance::unique_prefix("pg-tls-cut").into_bytes();
    assert_eq!(
        store.create(&key, b"before").await.unwrap(),
        WriteOutcome::Written(1)
    );
    let admin = "host=127.0.0.1 port=5433 user=postgres dbname=test sslmode=require";
    let sql = format!(
        "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE application_name = '{app}') t"
    );
    let Some(out) = store_common::run_client("psql", &[admin, "-Atc", &sql]) else {
        return;
    };
    assert_eq!(
        String::from_utf8(out).unwrap().trim(),
        "1",
        "one connection cut"
    );
    // the call that finds the connection closed may fail (transient); a later one reconnects
    let mut read = None;
    for _ in 0..50 {
        match store.read(&key).await {
            Ok(found) => {
                read = Some(found);
                break;
            }
            Err(e) => {
                assert!(e.is_transient(), "{e}");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        }
    }
    assert_eq!(read, Some(Some((b"before".to_vec(), 1))));
    let sql = format!(
        "SELECT count(*) FROM pg_stat_ssl JOIN pg_stat_activity USING (pid) \
         WHERE application_name = '{app}' AND ssl"
    );
    let out = store_common::run_client("psql", &[admin, "-Atc", &sql]).unwrap();
    assert_eq!(
        String::from_utf8(out).unwrap().trim(),
        "1",
        "the new connection is TLS"
    );
    assert!(store.delete(&key).await.unwrap());
}
