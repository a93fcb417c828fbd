//! The per-extension key-value store: one SQLite file per extension under
//! `NEXUS_HOME/plugin-data/<id>/`, so one extension cannot reach another's
//! keys, with a byte quota checked in the same transaction as the write.

use std::path::Path;
use std::sync::Mutex;

use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

/// The default quota: 10 MB of keys and values.
pub const QUOTA: u64 = 10 * 1000 * 1000;

/// The longest key.
pub const MAX_KEY: usize = 1024;

/// A store failure.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum StoreError {
    /// The write would pass the quota.
    #[error("the store's quota of {quota} bytes would be exceeded ({used} used, {wanted} more asked for); delete keys first")]
    Quota {
        /// Bytes in use.
        used: u64,
        /// Bytes the write adds.
        wanted: u64,
        /// The quota.
        quota: u64,
    },
    /// A bad key.
    #[error("invalid key: {0}")]
    Key(String),
    /// The database failed.
    #[error("the extension store: {0}")]
    Db(String),
}

fn db(e: rusqlite::Error) -> StoreError {
    StoreError::Db(e.to_string())
}

/// One extension's store.
#[derive(Debug)]
pub struct Store {
    conn: Mutex<Connection>,
    quota: u64,
}

fn check_key(key: &str) -> Result<(), StoreError> {
    if key.is_empty() || key.len() > MAX_KEY || key.chars().any(char::is_control) {
        return Err(StoreError::Key(format!(
            "keys are 1-{MAX_KEY} bytes without control characters"
        )));
    }
    Ok(())
}

impl Store {
    /// Opens (or creates) the store in `dir` with `quota` bytes.
    pub fn open(dir: &Path, quota: u64) -> Result<Store, StoreError> {
        nexus_core::private_dir(dir)
            .map_err(|e| StoreError::Db(format!("{}: {e}", dir.display())))?;
        let path = dir.join("store.db");
        nexus_core::private_db_file(&path).map_err(|e| StoreError::Db(e.to_string()))?;
        let conn = Connection::open(&path).map_err(db)?;
        conn.busy_timeout(std::time::Duration::from_secs(10))
            .map_err(db)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(db)?;
        // Survives a killed process (WAL); an OS crash may lose the last
        // writes, as for the cost ledger.
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(db)?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value BLOB NOT NULL) WITHOUT ROWID;
             CREATE TABLE IF NOT EXISTS usage (id INTEGER PRIMARY KEY CHECK (id = 0), bytes INTEGER NOT NULL);
             INSERT OR IGNORE INTO usage (id, bytes) VALUES (0, 0);",
        )
        .map_err(db)?;
        Ok(Store {
            conn: Mutex::new(conn),
            // Counted in SQLite's i64.
            quota: quota.min(i64::MAX as u64),
        })
    }

    fn with<T>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut c = self
            .conn
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&mut c)
    }

    /// The value of `key`.
    pub fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        check_key(key)?;
        self.with(|c| {
            c.query_row("SELECT value FROM kv WHERE key = ?1", params![key], |r| {
                r.get(0)
            })
            .optional()
            .map_err(db)
        })
    }

    /// Sets `key` to `value`, unless that would pass the quota.
    pub fn put(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        check_key(key)?;
        let quota = self.quota;
        self.with(|c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate).map_err(db)?;
            let used: i64 = tx.query_row("SELECT bytes FROM usage WHERE id = 0", [], |r| r.get(0)).map_err(db)?;
            let old: Option<i64> = tx
                .query_row("SELECT length(key) + length(value) FROM kv WHERE key = ?1", params![key], |r| r.get(0))
                .optional()
                .map_err(db)?;
            let new = (key.len() + value.len()) as i64;
            let after = used - old.unwrap_or(0) + new;
            if after > quota as i64 {
                return Err(StoreError::Quota {
                    used: used as u64,
                    wanted: (new - old.unwrap_or(0)).max(0) as u64,
                    quota,
                });
            }
            tx.execute("INSERT INTO kv (key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = excluded.value", params![key, value])
                .map_err(db)?;
            tx.execute("UPDATE usage SET bytes = ?1 WHERE id = 0", params![after]).map_err(db)?;
            tx.commit().map_err(db)
        })
    }

    /// Removes `key`; whether it was there.
    pub fn delete(&self, key: &str) -> Result<bool, StoreError> {
        check_key(key)?;
        self.with(|c| {
            let tx = c
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(db)?;
            let old: Option<i64> = tx
                .query_row(
                    "SELECT length(key) + length(value) FROM kv WHERE key = ?1",
                    params![key],
                    |r| r.get(0),
                )
                .optional()
                .map_err(db)?;
            let Some(old) = old else { return Ok(false) };
            tx.execute("DELETE FROM kv WHERE key = ?1", params![key])
                .map_err(db)?;
            tx.execute(
                "UPDATE usage SET bytes = bytes - ?1 WHERE id = 0",
                params![old],
            )
            .map_err(db)?;
            tx.commit().map_err(db)?;
            Ok(true)
        })
    }

    /// Keys starting with `prefix`, in order (at most `limit`).
    pub fn list(&self, prefix: &str, limit: usize) -> Result<Vec<String>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.with(|c| {
            let mut st = c
                .prepare_cached("SELECT key FROM kv WHERE substr(key, 1, length(?1)) = ?1 ORDER BY key LIMIT ?2")
                .map_err(db)?;
            let rows = st.query_map(params![prefix, limit], |r| r.get(0)).map_err(db)?;
            rows.collect::<Result<_, _>>().map_err(db)
        })
    }

    /// Bytes in use.
    pub fn used(&self) -> Result<u64, StoreError> {
        self.with(|c| {
            c.query_row("SELECT bytes FROM usage WHERE id = 0", [], |r| {
                r.get::<_, i64>(0)
            })
            .map(|b| b.max(0) as u64)
            .map_err(db)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn get_put_delete_list_and_the_quota() {
        let d = tempfile::tempdir().unwrap();
        let s = Store::open(&d.path().join("a"), 100).unwrap();
        s.put("k1", b"hello").unwrap();
        s.put("k2", b"world").unwrap();
        assert_eq!(s.get("k1").unwrap().as_deref(), Some(&b"hello"[..]));
        assert_eq!(s.list("k", 10).unwrap(), ["k1", "k2"]);
        assert_eq!(s.used().unwrap(), 14);
        let e = s.put("big", &[0u8; 90]).unwrap_err();
        assert!(matches!(e, StoreError::Quota { quota: 100, .. }), "{e}");
        assert_eq!(
            s.get("big").unwrap(),
            None,
            "nothing written past the quota"
        );
        // Overwriting counts the difference only.
        s.put("k1", &[1u8; 80]).unwrap();
        assert!(s.delete("k1").unwrap());
        assert!(!s.delete("k1").unwrap());
        assert_eq!(s.used().unwrap(), 7);
        assert!(s.put("", b"x").is_err());
        // Another extension's directory is another store.
        let other = Store::open(&d.path().join("b"), 100).unwrap();
        assert_eq!(other.get("k2").unwrap(), None);
    }
}
