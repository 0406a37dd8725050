//! SQLite backend (feature `sqlite`): the embedded store, safe with many OS processes.
//!
//! One table, `shardfold_kv(key BLOB PRIMARY KEY, version INTEGER NOT NULL, value BLOB NOT
//! NULL) WITHOUT ROWID`, in WAL mode (readers never block the writer) with `synchronous =
//! NORMAL` and a 30 s busy timeout, so many processes can write one file at once: SQLite
//! serialises their write transactions with its file locks. Create is `INSERT … ON CONFLICT
//! DO NOTHING` (1 at create); update is `UPDATE … SET version = version + 1 WHERE key = ? AND
//! version = ?`; the number of changed rows tells success from conflict. Delete is `DELETE …
//! WHERE key = ?`. Listing a prefix is a range on the primary key, `key >= prefix AND key <
//! successor` (BLOBs compare with `memcmp`), so it reads only the rows listed. Each call runs
//! on tokio's blocking pool.

use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use rusqlite::{Connection, ErrorCode, OptionalExtension, params};

use super::memory::prefix_end;
use super::{KvStore, StoreFuture, Version, WriteOutcome, check_size, written_if};
use crate::error::{Error, Result, StoreErrorKind};

const BACKEND: &str = "sqlite";

/// Largest value: SQLite's default `SQLITE_MAX_LENGTH` (1 000 000 000 bytes).
const MAX_VALUE: usize = 1_000_000_000;

/// The crate error for a client error `e`, keeping it as the source.
fn err<E: std::error::Error + Send + Sync + 'static>(e: E) -> Error {
    let kind = match (&e as &dyn std::error::Error).downcast_ref::<rusqlite::Error>() {
        Some(rusqlite::Error::SqliteFailure(f, _)) => match f.code {
            ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked | ErrorCode::OutOfMemory => {
                StoreErrorKind::Busy
            }
            ErrorCode::PermissionDenied
            | ErrorCode::ReadOnly
            | ErrorCode::AuthorizationForStatementDenied => StoreErrorKind::Auth,
            ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt | ErrorCode::TooBig => {
                StoreErrorKind::Rejected
            }
            _ => StoreErrorKind::Other,
        },
        _ => StoreErrorKind::Other,
    };
    Error::store_from(BACKEND, kind, e)
}

/// A SQLite database file (`sqlite://PATH`).
#[derive(Clone)]
pub struct SqliteStore {
    conn: Arc<Mutex<Connection>>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore").finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path` and its table.
    ///
    /// # Errors
    ///
    /// [`Error::Store`] when the file cannot be opened or initialised.
    pub async fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref().to_owned();
        let conn = tokio::task::spawn_blocking(move || init(&path))
            .await
            .map_err(err)??;
        Ok(SqliteStore {
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T> {
        let conn = Arc::clone(&self.conn);
        tokio::task::spawn_blocking(move || {
            // rusqlite leaves the connection usable after a panic in a statement
            let guard = conn.lock().unwrap_or_else(PoisonError::into_inner);
            f(&guard)
        })
        .await
        .map_err(err)?
        .map_err(err)
    }
}

/// Opens the file and sets it up, retrying while another connection holds the lock: many
/// processes opening a new file at once race to switch it to WAL and create the table, and
/// SQLite answers some of those races with `SQLITE_BUSY` at once, without waiting on the busy
/// timeout.
fn init(path: &Path) -> Result<Connection> {
    let mut attempt = 0u32;
    loop {
        match init_once(path) {
            Err(Error::Store {
                kind: StoreErrorKind::Busy,
                ..
            }) if attempt < 100 => {
                attempt += 1;
                // 1–50 ms, growing with the attempt (the busy timeout does not apply here)
                let jitter = u64::from(attempt.wrapping_mul(7919) % 13);
                std::thread::sleep(Duration::from_millis(u64::from(attempt.min(37)) + jitter));
            }
            other => return other,
        }
    }
}

fn init_once(path: &Path) -> Result<Connection> {
    let conn = Connection::open(path).map_err(err)?;
    conn.busy_timeout(Duration::from_secs(30)).map_err(err)?;
    conn.pragma_update(None, "journal_mode", "WAL")
        .map_err(err)?;
    conn.pragma_update(None, "synchronous", "NORMAL")
        .map_err(err)?;
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS shardfold_kv (
             key BLOB PRIMARY KEY NOT NULL,
             version INTEGER NOT NULL,
             value BLOB NOT NULL
         ) WITHOUT ROWID;",
    )
    .map_err(err)?;
    Ok(conn)
}

impl KvStore for SqliteStore {
    fn backend(&self) -> &'static str {
        BACKEND
    }

    fn read<'a>(&'a self, key: &'a [u8]) -> StoreFuture<'a, Option<(Vec<u8>, Version)>> {
        let key = key.to_vec();
        Box::pin(async move {
            let row = self
                .run(move |c| {
                    c.prepare_cached("SELECT value, version FROM shardfold_kv WHERE key = ?1")?
                        .query_row(params![key], |r| Ok((r.get(0)?, r.get::<_, i64>(1)?)))
                        .optional()
                })
                .await?;
            row.map(|(v, ver)| Ok((v, u64::try_from(ver).map_err(err)?)))
                .transpose()
        })
    }

    fn create<'a>(&'a self, key: &'a [u8], value: &'a [u8]) -> StoreFuture<'a, WriteOutcome> {
        let (key, value) = (key.to_vec(), value.to_vec());
        Box::pin(async move {
            check_size(&value, MAX_VALUE)?;
            let changed = self
                .run(move |c| {
                    c.prepare_cached(
                        "INSERT INTO shardfold_kv (key, version, value) VALUES (?1, 1, ?2)
                         ON CONFLICT (key) DO NOTHING",
                    )?
                    .execute(params![key, value])
                })
                .await?;
            Ok(written_if(changed == 1, 1))
        })
    }

    fn update<'a>(
        &'a self,
        key: &'a [u8],
        value: &'a [u8],
        expected: Version,
    ) -> StoreFuture<'a, WriteOutcome> {
        let (key, value) = (key.to_vec(), value.to_vec());
        Box::pin(async move {
            check_size(&value, MAX_VALUE)?;
            let Ok(exp) = i64::try_from(expected) else {
                return Ok(WriteOutcome::Conflict);
            };
            let changed = self
                .run(move |c| {
                    c.prepare_cached(
                        "UPDATE shardfold_kv SET value = ?1, version = version + 1
                         WHERE key = ?2 AND version = ?3",
                    )?
                    .execute(params![value, key, exp])
                })
                .await?;
            Ok(written_if(changed == 1, expected + 1))
        })
    }

    fn list<'a>(&'a self, prefix: &'a [u8]) -> StoreFuture<'a, Vec<Vec<u8>>> {
        let (prefix, end) = (prefix.to_vec(), prefix_end(prefix));
        Box::pin(self.run(move |c| {
            match end {
                Some(end) => c
                    .prepare_cached(
                        "SELECT key FROM shardfold_kv WHERE key >= ?1 AND key < ?2 ORDER BY key",
                    )?
                    .query_map(params![prefix, end], |r| r.get(0))?
                    .collect(),
                None => c
                    .prepare_cached("SELECT key FROM shardfold_kv WHERE key >= ?1 ORDER BY key")?
                    .query_map(params![prefix], |r| r.get(0))?
                    .collect(),
            }
        }))
    }

    fn delete<'a>(&'a self, key: &'a [u8]) -> StoreFuture<'a, bool> {
        let key = key.to_vec();
        Box::pin(async move {
            let changed = self
                .run(move |c| {
                    c.prepare_cached("DELETE FROM shardfold_kv WHERE key = ?1")?
                        .execute(params![key])
                })
                .await?;
            Ok(changed == 1)
        })
    }

    fn max_value_bytes(&self) -> usize {
        MAX_VALUE
    }
}
