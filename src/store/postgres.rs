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
//! connection and pipelined over it. TLS (`sslmode=require`) is not built in yet.
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

use tokio_postgres::{Client, Config, NoTls, Statement};

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
    /// The live session, `None` once its connection failed.
    live: Mutex<Option<Arc<Session>>>,
    /// Held while dialing, so that one task dials at a time.
    dialing: tokio::sync::Mutex<()>,
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
    /// Dialing times out after 5 s unless the URL sets `connect_timeout`.
    ///
    /// # Errors
    ///
    /// [`Error::Store`] when the URL does not parse, or the server cannot be reached or
    /// refuses (never repeating the connection string).
    pub async fn connect(url: &str) -> Result<Self> {
        let mut config: Config = url.parse().map_err(err)?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        let store = PostgresStore {
            config,
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
        let (client, connection) = self.config.connect(NoTls).await.map_err(err)?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %err(e), "postgres connection closed; the next call reconnects");
            }
        });
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
