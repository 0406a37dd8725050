//! Store URLs: one constructor for every backend.

use std::sync::Arc;

use super::{KvStore, MemoryStore};
use crate::error::{Error, Result};

/// Opens the store a URL names.
///
/// | URL | backend | cargo feature |
/// |---|---|---|
/// | `memory://` | a new, empty [`MemoryStore`] | `store` |
/// | `sqlite://PATH` (`sqlite:///abs/path`, `sqlite://rel/path`) | SQLite file, created if absent | `sqlite` |
/// | `redis://[user:pass@]HOST:PORT[/DB]` | Redis | `redis` |
/// | `postgres://…` / `postgresql://…` | PostgreSQL (table `shardfold_kv`) | `postgres` |
/// | `nats://HOST:PORT/BUCKET` | NATS JetStream KV bucket, created if absent | `nats` |
/// | `s3://BUCKET[/PREFIX][?endpoint=URL]` | S3 or a compatible store ([`S3Store`](super::S3Store)); AWS environment | `s3` |
/// | `dynamodb://TABLE[?endpoint=URL]` | a DynamoDB table ([`DynamoStore`](super::DynamoStore)); AWS environment | `dynamodb` |
///
/// `rediss://…` is Redis over TLS (feature `redis-tls`).
/// `redis+cluster://[user:pass@]HOST:PORT[,HOST:PORT…]` is a Redis Cluster given by its seed
/// nodes (feature `redis-cluster`; see [`RedisStore`](super::RedisStore)).
/// `postgres://…?sslmode=verify-full` (or `require`, `verify-ca`; `sslrootcert=PATH` names a CA
/// file) is PostgreSQL over TLS (feature `postgres-tls`; see [`PostgresStore`](super::PostgresStore)).
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let store = shardfold::store::connect("memory://").await?;
/// assert_eq!(store.backend(), "memory");
/// let err = shardfold::store::connect("ftp://x").await.unwrap_err();
/// assert!(err.to_string().contains("unknown scheme"));
/// # Ok::<(), shardfold::Error>(()) }).unwrap();
/// ```
///
/// # Errors
///
/// [`Error::InvalidParameter`] (`store url`) naming what is wrong: no scheme, an unknown
/// scheme, a backend whose cargo feature is not compiled in, a missing path or bucket. Error
/// messages never repeat the URL, which may hold a password. [`Error::Store`] when the
/// server cannot be reached.
pub async fn connect(url: &str) -> Result<Arc<dyn KvStore>> {
    let Some((scheme, rest)) = url.split_once("://") else {
        return Err(bad(
            "missing `scheme://` (memory, sqlite, redis, postgres, nats, s3, dynamodb)".into(),
        ));
    };
    match scheme {
        "memory" if rest.is_empty() => Ok(Arc::new(MemoryStore::new())),
        "memory" => Err(bad("memory:// takes no host or path".into())),
        "sqlite" => sqlite(rest).await,
        "redis" => redis(url).await,
        "rediss" => rediss(url).await,
        "redis+cluster" => redis_cluster(url).await,
        "postgres" | "postgresql" => postgres(url).await,
        "nats" => nats(rest).await,
        "s3" => s3(url).await,
        "dynamodb" => dynamodb(url).await,
        other => Err(bad(format!(
            "unknown scheme `{}` (expected memory, sqlite, redis, rediss, redis+cluster, \
             postgres, nats, s3 or dynamodb)",
            other.chars().take(32).collect::<String>()
        ))),
    }
}

fn bad(reason: String) -> Error {
    Error::InvalidParameter {
        name: "store url",
        reason,
    }
}

#[allow(dead_code)] // used only when a backend feature is off
fn not_compiled(scheme: &str, feature: &str) -> Error {
    bad(format!(
        "{scheme}:// needs cargo feature `{feature}`, not compiled into this build"
    ))
}

async fn sqlite(path: &str) -> Result<Arc<dyn KvStore>> {
    if path.is_empty() {
        return Err(bad(
            "sqlite:// needs a file path, e.g. sqlite:///var/lib/app.db".into(),
        ));
    }
    #[cfg(feature = "sqlite")]
    return Ok(Arc::new(super::SqliteStore::open(path).await?));
    #[cfg(not(feature = "sqlite"))]
    Err(not_compiled("sqlite", "sqlite"))
}

async fn redis(url: &str) -> Result<Arc<dyn KvStore>> {
    #[cfg(feature = "redis")]
    return Ok(Arc::new(super::RedisStore::connect(url).await?));
    #[cfg(not(feature = "redis"))]
    {
        let _ = url;
        Err(not_compiled("redis", "redis"))
    }
}

async fn rediss(url: &str) -> Result<Arc<dyn KvStore>> {
    #[cfg(feature = "redis-tls")]
    return Ok(Arc::new(super::RedisStore::connect(url).await?));
    #[cfg(not(feature = "redis-tls"))]
    {
        let _ = url;
        Err(not_compiled("rediss (Redis over TLS)", "redis-tls"))
    }
}

async fn redis_cluster(url: &str) -> Result<Arc<dyn KvStore>> {
    #[cfg(feature = "redis-cluster")]
    return Ok(Arc::new(super::RedisStore::connect(url).await?));
    #[cfg(not(feature = "redis-cluster"))]
    {
        let _ = url;
        Err(not_compiled(
            "redis+cluster (Redis Cluster)",
            "redis-cluster",
        ))
    }
}

async fn postgres(url: &str) -> Result<Arc<dyn KvStore>> {
    #[cfg(feature = "postgres")]
    return Ok(Arc::new(super::PostgresStore::connect(url).await?));
    #[cfg(not(feature = "postgres"))]
    {
        let _ = url;
        Err(not_compiled("postgres", "postgres"))
    }
}

/// Splits `HOST:PORT/BUCKET`.
fn nats_parts(rest: &str) -> Result<(&str, &str)> {
    let (server, bucket) = rest.split_once('/').unwrap_or((rest, ""));
    if server.is_empty() {
        return Err(bad(
            "nats:// needs a server, e.g. nats://127.0.0.1:4222/BUCKET".into(),
        ));
    }
    if bucket.is_empty() {
        return Err(bad("nats:// needs a bucket: nats://HOST:PORT/BUCKET".into()));
    }
    let valid = bucket
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !valid {
        return Err(bad("nats bucket names allow only A-Z a-z 0-9 - _".into()));
    }
    Ok((server, bucket))
}

async fn nats(rest: &str) -> Result<Arc<dyn KvStore>> {
    let (server, bucket) = nats_parts(rest)?;
    #[cfg(feature = "nats")]
    return Ok(Arc::new(super::NatsStore::connect(server, bucket).await?));
    #[cfg(not(feature = "nats"))]
    {
        let _ = (server, bucket);
        Err(not_compiled("nats", "nats"))
    }
}

async fn s3(url: &str) -> Result<Arc<dyn KvStore>> {
    #[cfg(feature = "s3")]
    return Ok(Arc::new(super::S3Store::connect(url).await?));
    #[cfg(not(feature = "s3"))]
    {
        let _ = url;
        Err(not_compiled("s3", "s3"))
    }
}

async fn dynamodb(url: &str) -> Result<Arc<dyn KvStore>> {
    #[cfg(feature = "dynamodb")]
    return Ok(Arc::new(super::DynamoStore::connect(url).await?));
    #[cfg(not(feature = "dynamodb"))]
    {
        let _ = url;
        Err(not_compiled("dynamodb", "dynamodb"))
    }
}

/// Decodes the `%XX` escapes of a URL query value (the store URLs' parameters: an endpoint, a
/// CA file path); `None` for a bad escape or a result that is not UTF-8.
#[cfg(any(feature = "postgres", feature = "s3", feature = "dynamodb"))]
pub(crate) fn percent_decode(value: &str) -> Option<String> {
    let mut out = Vec::with_capacity(value.len());
    let mut bytes = value.bytes();
    while let Some(b) = bytes.next() {
        if b != b'%' {
            out.push(b);
            continue;
        }
        // two hex digits, nothing else (`from_str_radix` would take a sign: `%+1`)
        let hi = char::from(bytes.next()?).to_digit(16)?;
        let lo = char::from(bytes.next()?).to_digit(16)?;
        out.push(u8::try_from(hi * 16 + lo).ok()?);
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(url: &str) -> String {
        let rt = tokio::runtime::Builder::new_current_thread().build();
        let rt = rt.unwrap_or_else(|e| panic!("runtime: {e}"));
        match rt.block_on(connect(url)) {
            Err(Error::InvalidParameter { name, reason }) => {
                assert_eq!(name, "store url");
                reason
            }
            Err(other) => panic!("{url}: unexpected error {other}"),
            Ok(_) => panic!("{url}: accepted"),
        }
    }

    #[cfg(any(feature = "postgres", feature = "s3", feature = "dynamodb"))]
    #[test]
    fn percent_escapes_decode_and_bad_ones_are_refused() {
        assert_eq!(
            percent_decode("http%3A%2F%2F127.0.0.1%3a5000/x").as_deref(),
            Some("http://127.0.0.1:5000/x")
        );
        assert_eq!(percent_decode("plain").as_deref(), Some("plain"));
        assert_eq!(percent_decode("%C3%A9").as_deref(), Some("\u{e9}"));
        for bad in ["%zz", "%4", "%", "%ff", "a%+1"] {
            assert_eq!(percent_decode(bad), None, "{bad}");
        }
    }

    #[test]
    fn wrong_urls_say_what_is_wrong_without_repeating_secrets() {
        assert!(reason("no-scheme").contains("missing `scheme://`"));
        assert!(reason("ftp://user:hunter2@x").contains("unknown scheme `ftp`"));
        assert!(reason("memory://x").contains("no host"));
        assert!(reason("sqlite://").contains("needs a file path"));
        assert!(reason("nats://127.0.0.1:4222").contains("needs a bucket"));
        assert!(reason("nats:///b").contains("needs a server"));
        assert!(reason("nats://h:1/a.b").contains("bucket names"));
        assert!(!reason("ftp://user:hunter2@x").contains("hunter2"));
    }

    #[cfg(not(feature = "redis"))]
    #[test]
    fn a_backend_not_compiled_in_names_its_feature() {
        assert!(reason("redis://127.0.0.1:6379").contains("cargo feature `redis`"));
    }

    #[cfg(not(feature = "redis-cluster"))]
    #[test]
    fn redis_cluster_without_its_feature_names_it() {
        let r = reason("redis+cluster://:hunter2@h:1,h:2");
        assert!(r.contains("cargo feature `redis-cluster`"), "{r}");
        assert!(!r.contains("hunter2"));
    }

    #[cfg(not(feature = "s3"))]
    #[test]
    fn s3_not_compiled_in_names_its_feature() {
        assert!(reason("s3://bucket/prefix").contains("cargo feature `s3`"));
    }

    #[cfg(not(feature = "dynamodb"))]
    #[test]
    fn dynamodb_not_compiled_in_names_its_feature() {
        assert!(reason("dynamodb://table").contains("cargo feature `dynamodb`"));
    }

    #[cfg(not(feature = "redis-tls"))]
    #[test]
    fn rediss_without_tls_names_its_feature_not_the_password() {
        let r = reason("rediss://:hunter2@h:1");
        assert!(r.contains("cargo feature `redis-tls`"), "{r}");
        assert!(!r.contains("hunter2"));
    }
}
