//! PostgreSQL backend (feature `postgres`, tokio-postgres): a version column.
//!
//! One table, created if absent:
//!
//! ```sql
//! CREATE TABLE shardfold_kv (key BYTEA PRIMARY KEY, version BIGINT NOT NULL, value BYTEA NOT NULL)
//! ```
//!
//! Create is `INSERT … VALUES ($1, 1, $2) ON CONFLICT (key) DO NOTHING`; update is
//! `UPDATE … SET value = $1, version = version + 1 WHERE key = $2 AND version = $3`; the row
//! count tells success from conflict. Both are single statements, atomic under PostgreSQL's
//! row locks at any isolation level. Delete is `DELETE … WHERE key = $1`. Listing a prefix is
//! a range scan of the primary key index, `key >= prefix AND key < successor` (`bytea`
//! compares bytewise), so it reads only the rows listed. Statements are prepared once per
//! connection and pipelined over it.
//!
//! # TLS
//!
//! With the `postgres-tls` feature (rustls with ring), `sslmode` in the URL (or key-value
//! string) asks for TLS, as in libpq:
//!
//! | `sslmode` | encrypted | server certificate checked |
//! |---|---|---|
//! | absent, `disable` | no | — |
//! | `allow`, `prefer` | if the server offers it, else plain | no |
//! | `require` | yes, or the connection fails | no: anyone on the path can pose as the server (with `sslrootcert` set it checks as `verify-ca`, as libpq does) |
//! | `verify-ca` | yes | the chain, up to a trusted root |
//! | `verify-full` | yes | the chain, and that it names the host dialed (use this for RDS, Cloud SQL and the like) |
//!
//! Trusted roots are the system's store (honouring `SSL_CERT_FILE`), or the CA file named by
//! `sslrootcert=PATH` (PEM; `sslrootcert=system` names the system store), or the CA given to
//! [`PostgresStore::connect_with_root_ca`]. The host name checked is the URL's host, also when
//! `hostaddr` gives the address to dial. Without the feature, a URL asking for TLS
//! (`require`, `verify-ca`, `verify-full`) is refused with an error naming it; `prefer` and
//! `allow` connect in plain text, as a libpq built without TLS does. SCRAM channel binding
//! (`-PLUS`) is not offered.
//!
//! # Reconnecting
//!
//! A connection that closed — dropped, reset, ended by the server's `idle_session_timeout` or
//! `pg_terminate_backend`, or lost while a Lambda instance was frozen — is noticed by the
//! client, and the next call dials a new one and prepares the statements again. A call that
//! was in flight when the connection closed fails with a transient [`Error::Store`]; the store
//! never re-sends a write itself, so a reconnect cannot apply one twice (the fold loop re-reads
//! before it retries).

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio_postgres::config::SslMode as PgSslMode;
use tokio_postgres::tls::{MakeTlsConnect, TlsConnect};
use tokio_postgres::{Client, Config, NoTls, Socket, Statement};

#[cfg(feature = "postgres-tls")]
#[path = "postgres_tls.rs"]
mod tls;

use super::memory::prefix_end;
use super::{KvStore, StoreFuture, Version, WriteOutcome, check_size, written_if};
use crate::error::{Error, Result, StoreErrorKind};

const BACKEND: &str = "postgres";

/// Largest value: below PostgreSQL's 1 GB limit for one field and one protocol message.
const MAX_VALUE: usize = 512 << 20;

/// How long dialing waits for the server, unless the URL sets `connect_timeout`.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

const TABLE: &str = "CREATE TABLE IF NOT EXISTS shardfold_kv (
    key BYTEA PRIMARY KEY, version BIGINT NOT NULL, value BYTEA NOT NULL)";

/// The crate error for `e`, keeping it as the source; a server error's message is its own
/// text and SQLSTATE (tokio-postgres prints only "db error").
fn err(e: tokio_postgres::Error) -> Error {
    if e.to_string() == "error performing TLS handshake" {
        return tls_err(e);
    }
    let kind = kind_of(&e);
    let db_message = e
        .as_db_error()
        .map(|db| format!("{} ({})", db.message(), db.code().code()));
    let mut error = Error::store_from(BACKEND, kind, e);
    if let (Some(db_message), Error::Store { message, .. }) = (db_message, &mut error) {
        *message = db_message;
    }
    error
}

/// A failed TLS handshake: the message says why (tokio-postgres prints only "error performing
/// TLS handshake"); a certificate the client refuses is [`StoreErrorKind::Auth`] (it will be
/// refused again), anything else a [`StoreErrorKind::Connection`] error.
fn tls_err(e: tokio_postgres::Error) -> Error {
    let cause = std::error::Error::source(&e).map(ToString::to_string);
    let refused = cause.as_deref().is_some_and(|c| {
        c.contains("invalid peer certificate") || (c.contains("certificate") && c.contains("alert"))
    });
    let kind = if refused {
        StoreErrorKind::Auth
    } else {
        StoreErrorKind::Connection
    };
    let mut error = Error::store_from(BACKEND, kind, e);
    if let (Some(cause), Error::Store { message, .. }) = (cause, &mut error) {
        *message = format!("TLS handshake failed: {cause}");
    }
    error
}

/// A configuration error (a URL the store cannot use), without the URL.
fn config_err(message: impl std::fmt::Display) -> Error {
    Error::store(BACKEND, StoreErrorKind::Config, message)
}

/// What the URL's `sslmode` asks for (libpq's values).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SslMode {
    Disable,
    /// `allow` or `prefer`: TLS if the server offers it, unchecked.
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl SslMode {
    fn parse(value: &str) -> Result<Self> {
        Ok(match value {
            "disable" => SslMode::Disable,
            "allow" | "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            other => {
                return Err(config_err(format!(
                    "sslmode `{}` is not one of disable, allow, prefer, require, verify-ca, \
                     verify-full",
                    other.chars().take(32).collect::<String>()
                )));
            }
        })
    }
}

/// The TLS parameters tokio-postgres does not parse itself (`sslmode` beyond `require`,
/// `sslrootcert`), taken out of the connection string.
#[derive(Debug, Default, PartialEq, Eq)]
struct TlsParams {
    mode: Option<SslMode>,
    root_cert: Option<String>,
}

/// Records `key`'s `value` in `params` when it is one of ours; whether it was.
fn take_param(params: &mut TlsParams, key: &str, value: String) -> Result<bool> {
    match key {
        "sslmode" => params.mode = Some(SslMode::parse(&value)?),
        "sslrootcert" => params.root_cert = Some(value),
        _ => return Ok(false),
    }
    Ok(true)
}

/// Splits `sslmode` and `sslrootcert` out of a `postgres://` URL's query or a key-value
/// string, returning the rest for tokio-postgres.
fn split_tls_params(url: &str) -> Result<(String, TlsParams)> {
    let mut params = TlsParams::default();
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        let Some((base, query)) = url.split_once('?') else {
            return Ok((url.to_owned(), params));
        };
        let mut kept = Vec::new();
        for pair in query.split('&') {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            let value = super::url::percent_decode(value).ok_or_else(|| {
                config_err("invalid %-escape (or text that is not UTF-8) in an ssl parameter")
            })?;
            if !take_param(&mut params, key, value)? {
                kept.push(pair);
            }
        }
        let rest = if kept.is_empty() {
            base.to_owned()
        } else {
            format!("{base}?{}", kept.join("&"))
        };
        return Ok((rest, params));
    }
    // key-value: `key = value` pairs, values bare or single-quoted with backslash escapes
    let mut rest = String::with_capacity(url.len());
    let mut chars = url.char_indices().peekable();
    let mut last = 0;
    while let Some(&(start, c)) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
            continue;
        }
        let mut key = String::new();
        while let Some(&(_, c)) = chars.peek() {
            if c == '=' || c.is_whitespace() {
                break;
            }
            key.push(c);
            chars.next();
        }
        while chars.next_if(|&(_, c)| c.is_whitespace()).is_some() {}
        if chars.next_if(|&(_, c)| c == '=').is_none() {
            // not `key = value`: leave it all to tokio-postgres, which reports it
            return Ok((url.to_owned(), TlsParams::default()));
        }
        while chars.next_if(|&(_, c)| c.is_whitespace()).is_some() {}
        let mut value = String::new();
        let quoted = chars.next_if(|&(_, c)| c == '\'').is_some();
        let mut end = url.len();
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => {
                    if let Some((_, escaped)) = chars.next() {
                        value.push(escaped);
                    }
                }
                '\'' if quoted => {
                    end = i + 1;
                    break;
                }
                c if c.is_whitespace() && !quoted => {
                    end = i;
                    break;
                }
                c => value.push(c),
            }
        }
        if take_param(&mut params, &key, value)? {
            rest.push_str(&url[last..start]);
            last = end;
        }
    }
    rest.push_str(&url[last..]);
    Ok((rest, params))
}

/// Whether `e` may pass on retry (see [`StoreErrorKind`]): by SQLSTATE for the server's
/// errors, else by what failed on the client.
fn kind_of(e: &tokio_postgres::Error) -> StoreErrorKind {
    if let Some(db) = e.as_db_error() {
        return sqlstate_kind(db.code().code());
    }
    if e.is_closed() {
        return StoreErrorKind::Connection;
    }
    let io = std::error::Error::source(e).and_then(|s| s.downcast_ref::<std::io::Error>());
    if let Some(io) = io {
        return match io.kind() {
            std::io::ErrorKind::TimedOut => StoreErrorKind::Timeout,
            _ => StoreErrorKind::Connection,
        };
    }
    // tokio-postgres's error kinds are private: tell them by their fixed messages
    match e.to_string().as_str() {
        "timeout waiting for server" => StoreErrorKind::Timeout,
        "error connecting to server" | "error communicating with the server" => {
            StoreErrorKind::Connection
        }
        "authentication error" => StoreErrorKind::Auth,
        "invalid connection string" | "invalid configuration" => StoreErrorKind::Config,
        _ => StoreErrorKind::Other,
    }
}

/// The kind of a server error by its SQLSTATE (PostgreSQL manual, appendix A).
fn sqlstate_kind(code: &str) -> StoreErrorKind {
    match code {
        "42501" => StoreErrorKind::Auth,           // insufficient_privilege
        "57014" => StoreErrorKind::Timeout,        // query_canceled (statement_timeout)
        "55P03" | "25006" => StoreErrorKind::Busy, // lock_not_available, read-only (standby)
        _ => match code.get(..2) {
            Some("08" | "57") => StoreErrorKind::Connection, // connection, shutdown, idle timeout
            Some("28") => StoreErrorKind::Auth,
            Some("40" | "53") => StoreErrorKind::Busy, // serialization, deadlock, resources
            Some("0A" | "22" | "23" | "3D" | "3F" | "42" | "44") => StoreErrorKind::Rejected,
            _ => StoreErrorKind::Other,
        },
    }
}

/// A PostgreSQL database (`postgres://…`), over one pipelined connection, dialed again after
/// it closes (see the module docs).
pub struct PostgresStore {
    config: Config,
    /// How each dial sets up TLS.
    tls: Tls,
    /// The live session, `None` once its connection failed.
    live: Mutex<Option<Arc<Session>>>,
    /// Held while dialing, so that one task dials at a time.
    dialing: tokio::sync::Mutex<()>,
}

/// How connections are made: plain, or over rustls.
enum Tls {
    Off,
    #[cfg(feature = "postgres-tls")]
    Rustls(tls::MakeRustls),
}

/// The TLS set-up `params` ask for, given the CA `root_ca_pem` (which makes `verify-full` the
/// default), and the mode to set on tokio-postgres's configuration (`None`: leave it).
fn tls_for(params: &TlsParams, root_ca_pem: Option<&[u8]>) -> Result<(Tls, Option<PgSslMode>)> {
    let root_given = root_ca_pem.is_some() || params.root_cert.is_some();
    let mode = match params.mode {
        Some(mode) => mode,
        None if root_ca_pem.is_some() => SslMode::VerifyFull,
        None => return Ok((Tls::Off, None)),
    };
    let mode = match mode {
        // libpq: require with a root CA checks as verify-ca
        SslMode::Require if root_given => SslMode::VerifyCa,
        SslMode::Disable | SslMode::Prefer if root_ca_pem.is_some() => {
            return Err(config_err(
                "a root CA was given, but sslmode is disable, allow or prefer: \
                 use verify-full (or verify-ca, require)",
            ));
        }
        mode => mode,
    };
    if mode == SslMode::Disable {
        return Ok((Tls::Off, Some(PgSslMode::Disable)));
    }
    #[cfg(feature = "postgres-tls")]
    {
        let check = match mode {
            SslMode::VerifyFull => tls::Check::Full,
            SslMode::VerifyCa => tls::Check::Chain,
            _ => tls::Check::Nothing,
        };
        let file;
        let roots = match (root_ca_pem, params.root_cert.as_deref()) {
            (Some(pem), _) => tls::Roots::Pem(pem),
            (None, None | Some("system")) => tls::Roots::System,
            (None, Some(path)) => {
                file = std::fs::read(path)
                    .map_err(|e| config_err(format!("sslrootcert: cannot read `{path}`: {e}")))?;
                tls::Roots::Pem(&file)
            }
        };
        let config = tls::client_config(check, roots).map_err(config_err)?;
        let pg_mode = if mode == SslMode::Prefer {
            PgSslMode::Prefer
        } else {
            PgSslMode::Require
        };
        Ok((
            Tls::Rustls(tls::MakeRustls(Arc::new(config))),
            Some(pg_mode),
        ))
    }
    #[cfg(not(feature = "postgres-tls"))]
    match mode {
        SslMode::Prefer => Ok((Tls::Off, Some(PgSslMode::Prefer))),
        mode => Err(config_err(format!(
            "sslmode={} needs cargo feature `postgres-tls`, not compiled into this build",
            match mode {
                SslMode::VerifyCa => "verify-ca",
                SslMode::VerifyFull => "verify-full",
                _ => "require",
            }
        ))),
    }
}

/// Dials with `tls` and spawns the connection's task; the client.
async fn open<T>(config: &Config, tls: T) -> Result<Client>
where
    T: MakeTlsConnect<Socket> + Send,
    T::Stream: Send + 'static,
    T::TlsConnect: Send,
    <T::TlsConnect as TlsConnect<Socket>>::Future: Send,
{
    let (client, connection) = config.connect(tls).await.map_err(err)?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!(error = %err(e), "postgres connection closed; the next call reconnects");
        }
    });
    Ok(client)
}

/// One connection and the statements prepared on it.
struct Session {
    client: Client,
    read: Statement,
    create: Statement,
    update: Statement,
    /// Keys in `[$1, $2)`.
    list_range: Statement,
    /// Keys from `$1` on (a prefix without successor: empty or all `0xFF`).
    list_from: Statement,
    delete: Statement,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore").finish_non_exhaustive()
    }
}

impl PostgresStore {
    /// Connects with a libpq-style URL or key-value string and creates the table if absent.
    /// Dialing times out after 5 s unless the URL sets `connect_timeout`. `sslmode` and
    /// `sslrootcert` ask for TLS (feature `postgres-tls`; see the module docs).
    ///
    /// # Errors
    ///
    /// [`Error::Store`] when the URL does not parse, asks for TLS without the `postgres-tls`
    /// feature ([`StoreErrorKind::Config`]), or the server cannot be reached or refuses
    /// (never repeating the connection string); a server certificate refused under
    /// `verify-ca`/`verify-full` is [`StoreErrorKind::Auth`].
    pub async fn connect(url: &str) -> Result<Self> {
        Self::connect_tls(url, None).await
    }

    /// Connects over TLS trusting the CA certificate(s) `root_ca_pem` (PEM) instead of the
    /// system's roots: for a private CA, or a provider's bundle (RDS's
    /// `global-bundle.pem`) shipped with the function. Without `sslmode` in the URL it checks
    /// as `verify-full`; `require` checks as `verify-ca` (see the module docs).
    ///
    /// # Errors
    ///
    /// As [`connect`](Self::connect); also [`Error::Store`] with
    /// [`StoreErrorKind::Config`] when `root_ca_pem` holds no usable certificate or the URL
    /// says `sslmode=disable|allow|prefer`, and with [`StoreErrorKind::Auth`] when the server's
    /// certificate is refused.
    #[cfg(feature = "postgres-tls")]
    pub async fn connect_with_root_ca(url: &str, root_ca_pem: &[u8]) -> Result<Self> {
        Self::connect_tls(url, Some(root_ca_pem)).await
    }

    async fn connect_tls(url: &str, root_ca_pem: Option<&[u8]>) -> Result<Self> {
        let (rest, params) = split_tls_params(url)?;
        let (tls, ssl_mode) = tls_for(&params, root_ca_pem)?;
        let mut config: Config = rest.parse().map_err(err)?;
        if let Some(mode) = ssl_mode {
            config.ssl_mode(mode);
        }
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        let store = PostgresStore {
            config,
            tls,
            live: Mutex::new(None),
            dialing: tokio::sync::Mutex::new(()),
        };
        let session = store.dial(true).await?;
        *store.live.lock().unwrap_or_else(PoisonError::into_inner) = Some(session);
        Ok(store)
    }

    /// Opens a connection (creating the table first when `create_table`) and prepares the
    /// statements on it.
    async fn dial(&self, create_table: bool) -> Result<Arc<Session>> {
        let client = match &self.tls {
            Tls::Off => open(&self.config, NoTls).await?,
            #[cfg(feature = "postgres-tls")]
            Tls::Rustls(make) => open(&self.config, make.clone()).await?,
        };
        if create_table && let Err(e) = client.batch_execute(TABLE).await {
            // concurrent CREATE TABLE IF NOT EXISTS can race on the catalog: the table exists
            let code = e.as_db_error().map(|d| d.code().code().to_owned());
            if !matches!(code.as_deref(), Some("23505" | "42P07")) {
                return Err(err(e));
            }
        }
        let prepare = |sql| client.prepare(sql);
        let read = prepare("SELECT value, version FROM shardfold_kv WHERE key = $1");
        let create = prepare(
            "INSERT INTO shardfold_kv (key, version, value) VALUES ($1, 1, $2) \
             ON CONFLICT (key) DO NOTHING",
        );
        let update = prepare(
            "UPDATE shardfold_kv SET value = $1, version = version + 1 \
             WHERE key = $2 AND version = $3",
        );
        let list_range =
            prepare("SELECT key FROM shardfold_kv WHERE key >= $1 AND key < $2 ORDER BY key");
        let list_from = prepare("SELECT key FROM shardfold_kv WHERE key >= $1 ORDER BY key");
        let delete = prepare("DELETE FROM shardfold_kv WHERE key = $1");
        let (read, create, update, list_range, list_from, delete) =
            tokio::try_join!(read, create, update, list_range, list_from, delete).map_err(err)?;
        Ok(Arc::new(Session {
            client,
            read,
            create,
            update,
            list_range,
            list_from,
            delete,
        }))
    }

    /// The live session, or `None` when there is none or its connection has closed.
    fn live(&self) -> Option<Arc<Session>> {
        let live = self.live.lock().unwrap_or_else(PoisonError::into_inner);
        live.as_ref().filter(|s| !s.client.is_closed()).cloned()
    }

    /// The live session, dialing a new one (and preparing its statements) when the last one
    /// closed: dropped, timed out by the server's `idle_session_timeout`, or never opened.
    async fn session(&self) -> Result<Arc<Session>> {
        if let Some(session) = self.live() {
            return Ok(session);
        }
        let _dialing = self.dialing.lock().await;
        if let Some(session) = self.live() {
            return Ok(session); // another task dialed meanwhile
        }
        let session = self.dial(false).await?;
        *self.live.lock().unwrap_or_else(PoisonError::into_inner) = Some(Arc::clone(&session));
        Ok(session)
    }
}

impl KvStore for PostgresStore {
    fn backend(&self) -> &'static str {
        BACKEND
    }

    fn read<'a>(&'a self, key: &'a [u8]) -> StoreFuture<'a, Option<(Vec<u8>, Version)>> {
        Box::pin(async move {
            let s = self.session().await?;
            let row = s.client.query_opt(&s.read, &[&key]).await.map_err(err)?;
            let Some(row) = row else { return Ok(None) };
            let value: Vec<u8> = row.try_get(0).map_err(err)?;
            let version: i64 = row.try_get(1).map_err(err)?;
            let version = u64::try_from(version)
                .map_err(|e| Error::store_from(BACKEND, StoreErrorKind::Rejected, e))?;
            Ok(Some((value, version)))
        })
    }

    fn create<'a>(&'a self, key: &'a [u8], value: &'a [u8]) -> StoreFuture<'a, WriteOutcome> {
        Box::pin(async move {
            check_size(value, MAX_VALUE)?;
            let s = self.session().await?;
            let n = s
                .client
                .execute(&s.create, &[&key, &value])
                .await
                .map_err(err)?;
            Ok(written_if(n == 1, 1))
        })
    }

    fn update<'a>(
        &'a self,
        key: &'a [u8],
        value: &'a [u8],
        expected: Version,
    ) -> StoreFuture<'a, WriteOutcome> {
        Box::pin(async move {
            check_size(value, MAX_VALUE)?;
            let Ok(exp) = i64::try_from(expected) else {
                return Ok(WriteOutcome::Conflict);
            };
            let s = self.session().await?;
            let n = s
                .client
                .execute(&s.update, &[&value, &key, &exp])
                .await
                .map_err(err)?;
            Ok(written_if(n == 1, expected + 1))
        })
    }

    fn list<'a>(&'a self, prefix: &'a [u8]) -> StoreFuture<'a, Vec<Vec<u8>>> {
        Box::pin(async move {
            let s = self.session().await?;
            let rows = match prefix_end(prefix) {
                Some(end) => {
                    let end = end.as_slice();
                    s.client.query(&s.list_range, &[&prefix, &end]).await
                }
                None => s.client.query(&s.list_from, &[&prefix]).await,
            }
            .map_err(err)?;
            rows.iter().map(|row| row.try_get(0).map_err(err)).collect()
        })
    }

    fn delete<'a>(&'a self, key: &'a [u8]) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            let s = self.session().await?;
            let n = s.client.execute(&s.delete, &[&key]).await.map_err(err)?;
            Ok(n == 1)
        })
    }

    fn max_value_bytes(&self) -> usize {
        MAX_VALUE
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn split(url: &str) -> (String, TlsParams) {
        split_tls_params(url).unwrap_or_else(|e| panic!("{url}: {e}"))
    }

    #[test]
    fn url_tls_params_are_taken_out_and_the_rest_kept() {
        let (rest, p) = split(
            "postgres://u:pw@h:5433/db?connect_timeout=3&sslmode=verify-full&sslrootcert=%2Ftmp%2Fca%20x.crt",
        );
        assert_eq!(rest, "postgres://u:pw@h:5433/db?connect_timeout=3");
        assert_eq!(p.mode, Some(SslMode::VerifyFull));
        assert_eq!(p.root_cert.as_deref(), Some("/tmp/ca x.crt"));
        let (rest, p) = split("postgresql://h/db?sslmode=require");
        assert_eq!(rest, "postgresql://h/db");
        assert_eq!(p.mode, Some(SslMode::Require));
        assert_eq!(
            split("postgres://h/db"),
            ("postgres://h/db".into(), TlsParams::default())
        );
        rest.parse::<Config>().unwrap();
    }

    #[test]
    fn key_value_tls_params_are_taken_out_and_the_rest_kept() {
        let (rest, p) = split(
            "host=h sslmode = verify-ca user='a b' sslrootcert='/tmp/it\\'s.pem' dbname=test",
        );
        assert_eq!(p.mode, Some(SslMode::VerifyCa));
        assert_eq!(p.root_cert.as_deref(), Some("/tmp/it's.pem"));
        let config: Config = rest.parse().unwrap_or_else(|e| panic!("{rest}: {e}"));
        assert_eq!(config.get_user(), Some("a b"));
        assert_eq!(config.get_dbname(), Some("test"));
        assert!(!rest.contains("ssl"), "{rest}");
    }

    #[test]
    fn a_bad_sslmode_is_a_config_error_naming_the_choices() {
        for url in [
            "postgres://h/db?sslmode=verify_full",
            "host=h sslmode=strict",
            "postgres://h/db?sslrootcert=%zz",
        ] {
            match split_tls_params(url) {
                Err(Error::Store { kind, message, .. }) => {
                    assert_eq!(kind, StoreErrorKind::Config, "{url}");
                    assert!(
                        message.contains("sslmode") || message.contains("escape"),
                        "{message}"
                    );
                }
                other => panic!("{url}: {other:?}"),
            }
        }
    }

    #[cfg(not(feature = "postgres-tls"))]
    #[test]
    fn tls_without_the_feature_names_it_and_prefer_stays_plain() {
        for mode in ["require", "verify-ca", "verify-full"] {
            let params = TlsParams {
                mode: Some(SslMode::parse(mode).unwrap()),
                root_cert: None,
            };
            match tls_for(&params, None) {
                Err(Error::Store { kind, message, .. }) => {
                    assert_eq!(kind, StoreErrorKind::Config);
                    assert!(
                        message.contains("cargo feature `postgres-tls`"),
                        "{message}"
                    );
                    assert!(message.contains(mode), "{message}");
                }
                Err(e) => panic!("{mode}: {e}"),
                Ok(_) => panic!("{mode}: accepted without TLS"),
            }
        }
        let prefer = TlsParams {
            mode: Some(SslMode::Prefer),
            root_cert: None,
        };
        assert!(matches!(
            tls_for(&prefer, None),
            Ok((Tls::Off, Some(PgSslMode::Prefer)))
        ));
    }
}
